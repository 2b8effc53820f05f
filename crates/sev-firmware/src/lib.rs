//! # sev-firmware
//!
//! A software model of the AMD Secure Processor for SEV, SEV-ES and SEV-SNP:
//! "the software AMD-SP". It speaks AMD's command interface byte for byte —
//! one entry point, [`Firmware::execute`], taking a command id and AMD's
//! command buffer and returning AMD's status code — so the same bytes can be
//! forwarded from a socket, a VMM, or a test.
//!
//! * Platform: UNINIT / INIT / WORKING; INIT (with SEV-ES), INIT_EX,
//!   SHUTDOWN, PLATFORM_RESET, PLATFORM_STATUS, PEK_GEN, PDH_GEN, PEK_CSR,
//!   PEK_CERT_IMPORT, PDH_CERT_EXPORT, GET_ID, DF_FLUSH, NOP.
//! * Identity ([`identity`]): a chip with its CUK, CEK and an emulated AMD
//!   root (ARK, ASK; RSA-4096 PSS, key ids prefixed `sevkitEM`, never AMD's),
//!   and a persistent store with OCA, PEK, PDH, in AMD's formats. It persists
//!   in a state directory ([`store`]: atomic writes, corrupted or foreign
//!   files refused), and a seed makes everything byte-identical.
//! * Guests: handles, an ASID pool with the SEV-ES split, ACTIVATE(_EX),
//!   DEACTIVATE, DECOMMISSION, GUEST_STATUS, LAUNCH_START (with or without
//!   an owner session), LAUNCH_UPDATE_DATA/VMSA, LAUNCH_MEASURE,
//!   LAUNCH_SECRET, LAUNCH_FINISH, ATTESTATION, DBG_DECRYPT/ENCRYPT.
//! * Memory ([`memory`], [`crypt`]): commands act on a [`SystemMemory`];
//!   guest pages are stored as AES-128-XTS ciphertext tweaked by the
//!   physical address, so host reads of encrypted pages show ciphertext.
//! * Every guest's launch log ([`Firmware::launch_log`]) in sev-measure's
//!   [`LaunchLog`](sev_measure::LaunchLog) type, diffable with the
//!   predictor's.
//!
//! * SEV-SNP ([`snp`]): SNP_INIT(_EX), SNP_SHUTDOWN(_EX),
//!   SNP_PLATFORM_STATUS, SNP_CONFIG, SNP_COMMIT, SNP_FEATURE_INFO,
//!   SNP_VLEK_LOAD, SNP_DF_FLUSH; the RMP with the host's RMPUPDATE / PSMASH
//!   and the guest's PVALIDATE ([`Firmware::rmp_update`],
//!   [`Firmware::pvalidate`]); SNP_GCTX_CREATE, SNP_LAUNCH_START / UPDATE
//!   (every page type, the SHA-384 PAGE_INFO chain) / FINISH (ID block and
//!   ID auth), SNP_ACTIVATE(_EX), SNP_GUEST_STATUS, SNP_DECOMMISSION,
//!   SNP_DBG_DECRYPT / ENCRYPT, SNP_PAGE_RECLAIM, SNP_GUEST_REQUEST. The
//!   committed TCB and the SNP_CONFIG persist in the state directory
//!   (`snp.sevfw`); a current TCB below the committed one is refused.
//!
//! Not modelled (answer `UNSUPPORTED`): SEND_* / RECEIVE_* migration,
//! DOWNLOAD_FIRMWARE, RING_BUFFER, COPY, SWAP_*, SNP page swap / move /
//! metadata / set-state / unsmash and SNP_DOWNLOAD_FIRMWARE_EX.
//!
//! ```no_run
//! use sev_abi::commands::{InitBuffer, PlatformStatusBuffer, SevCommand};
//! use sev_abi::status::FirmwareStatus;
//! use sev_firmware::{Firmware, FirmwareConfig, VecMemory};
//! use zerocopy::FromZeros;
//!
//! let mut fw = Firmware::open(FirmwareConfig::default()).unwrap();
//! let mut mem = VecMemory::new(1 << 30);
//! let mut init = InitBuffer::new_zeroed();
//! assert_eq!(fw.call(SevCommand::Init, &mut init, &mut mem), FirmwareStatus::SUCCESS);
//! let mut status = PlatformStatusBuffer::new_zeroed();
//! fw.call(SevCommand::PlatformStatus, &mut status, &mut mem);
//! assert_eq!(status.state, 1);
//! ```
//!
//! The model is about interfaces and behaviour: the host process could of
//! course read this process's memory; nothing the firmware *exposes* to the
//! host returns TEK, TIK, VEK or guest plaintext (except DBG_DECRYPT, as the
//! policy allows).

#![forbid(unsafe_code)]

pub mod client;
pub mod crypt;
pub mod error;
mod firmware;
pub mod guest;
mod host;
pub mod identity;
pub mod memory {
    //! The AMD-SP's view of system memory (defined by the seam, `sev_sp`).
    pub use sev_sp::{MemoryError, SystemMemory, VecMemory};
}
mod seam;
pub mod snp;
pub mod store;

pub use client::ClientId;
pub use error::{FirmwareError, IdentityError, StoreError};
pub use firmware::{
    Firmware, FirmwareConfig, PlatformState, CERT_CHAIN_LEN, DEFAULT_API_MAJOR, DEFAULT_API_MINOR,
    DEFAULT_BUILD, DEFAULT_MAX_ASID, DEFAULT_MAX_GUESTS, DEFAULT_MIN_SEV_ASID, GET_ID_LEN,
    LAUNCH_LOG_MAX_ENTRIES, MAX_SECRET_LEN, NV_LEN, TMR_ALIGN, TMR_MIN_LEN, VMSA_LEN,
};
pub use guest::GuestState;
pub use identity::{ChipIdentity, EMULATED_KEY_ID_PREFIX};
pub use memory::{MemoryError, SystemMemory, VecMemory};
pub use seam::{InProcess, SharedFirmware};
