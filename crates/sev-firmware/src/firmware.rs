//! The AMD-SP itself: platform state, persistent identity, guests, and the
//! one entry point [`Firmware::execute`].

use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, OsRng, SeedableRng};
use sev_abi::commands::{
    ActivateBuffer, ActivateExBuffer, AttestationBuffer, DbgBuffer, GetIdBuffer, GuestStatusBuffer,
    HandleBuffer, InitBuffer, InitExBuffer, LaunchMeasureBuffer, LaunchStartBuffer,
    LaunchUpdateBuffer, PdhCertExportBuffer, PekCertImportBuffer, PekCsrBuffer,
    PlatformStatusBuffer, SevCommand, SnpCommand, TransportBuffer, ACTIVATE_EX_LENGTH,
    INIT_EX_LENGTH, INIT_FLAG_SEV_ES, PLATFORM_CONFIG_ES, PLATFORM_OWNER_EXTERNAL,
};
use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::legacy_cert::{Algorithm, KeyUsage, SevCert, SEV_CERT_LEN};
use sev_abi::product::{Product, TcbVersion};
use sev_abi::session::LaunchMeasurement;
use sev_abi::session::{
    LegacyAttestationReport, PacketHeader, SessionBlob, LAUNCH_MEASUREMENT_LEN,
    LEGACY_ATTESTATION_REPORT_LEN, PACKET_HEADER_LEN, SESSION_BLOB_LEN,
};
use sev_abi::status::FirmwareStatus;
use sev_crypto::legacy_cert::verify_sev_by_sev;
use sev_crypto::packet::{aes128_ctr, ct_eq, launch_measurement, packet_mac, CONTEXT_SECRET};
use sev_crypto::session::{open_launch_session, Tek, Tik};
use sev_crypto::CryptoError;
use sev_measure::log::{LaunchLog, LogPageType};
use sha2::{Digest, Sha256};
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};
use zeroize::Zeroizing;

use crate::client::ClientId;
use crate::error::FirmwareError;
use crate::guest::{Activation, AsidPool, Guest, GuestState, Guests};
use crate::identity::{sign, ChipIdentity, PlatformKeys};
use crate::memory::SystemMemory;
use crate::snp::keys::ChipEndorsementKeys;
use crate::snp::platform::{default_tcb, tcb_le, SnpPersisted, SnpPlatform};
use crate::store::{self, StateKind, StoreError};
use sev_os::PrivateDir;

/// API major version the model reports by default.
pub const DEFAULT_API_MAJOR: u8 = 1;
/// API minor version the model reports by default.
pub const DEFAULT_API_MINOR: u8 = 55;
/// Firmware build the model reports by default.
pub const DEFAULT_BUILD: u8 = 21;
/// Highest ASID by default (CPUID 0x8000_001F ECX).
pub const DEFAULT_MAX_ASID: u32 = 15;
/// Lowest plain-SEV ASID by default (CPUID 0x8000_001F EDX): ASIDs 1..=4 are
/// for SEV-ES guests, 5..=15 for SEV guests.
pub const DEFAULT_MIN_SEV_ASID: u32 = 5;
/// Most guest contexts at once by default (handles 1..=32).
pub const DEFAULT_MAX_GUESTS: u32 = 32;
/// Required alignment of the SEV-ES TMR.
pub const TMR_ALIGN: u64 = 1 << 20;
/// Smallest SEV-ES TMR accepted.
pub const TMR_MIN_LEN: u32 = 1 << 20;
/// INIT_EX non-volatile store length.
pub const NV_LEN: u32 = 32 << 10;
/// Largest LAUNCH_SECRET payload (the firmware's scratch buffer).
pub const MAX_SECRET_LEN: u32 = 16 << 10;
/// Most entries a guest's launch log keeps (about 4 MiB of log; an SNP
/// launch of 64 MiB of measured pages). Further steps are counted and the
/// newest kept ([`sev_measure::LaunchLog::with_limit`]), so a host cannot
/// grow the firmware's memory with a million tiny updates.
pub const LAUNCH_LOG_MAX_ENTRIES: usize = 16_384;
/// GET_ID output per socket (the model has one socket).
pub const GET_ID_LEN: u32 = 64;
/// VMSA length for LAUNCH_UPDATE_VMSA.
pub const VMSA_LEN: u32 = 0x1000;
/// PDH_CERT_EXPORT chain length: PEK ‖ OCA ‖ CEK.
pub const CERT_CHAIN_LEN: u32 = 3 * SEV_CERT_LEN as u32;

/// Memory is processed in chunks of this size (no command allocates more).
/// How much guest memory one step of a memory command reads at a time.
const CHUNK: usize = 1 << 20;

/// Chunks at least this large hash the launch log's content hash on a
/// second thread (below it, handing work to another thread costs more than
/// it saves).
const PARALLEL_LOG_HASH_MIN: usize = 256 << 10;

/// Legacy platform states (reference §1.4), with AMD's encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PlatformState {
    /// Not initialized.
    Uninit = 0,
    /// Initialized, no guests.
    Init = 1,
    /// At least one guest.
    Working = 2,
}

impl PlatformState {
    /// AMD's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uninit => "UNINIT",
            Self::Init => "INIT",
            Self::Working => "WORKING",
        }
    }
}

/// How to build a [`Firmware`].
#[derive(Debug, Clone)]
pub struct FirmwareConfig {
    /// API major version (PLATFORM_STATUS, certificates, LAUNCH_MEASURE).
    pub api_major: u8,
    /// API minor version.
    pub api_minor: u8,
    /// Firmware build.
    pub build: u8,
    /// Highest ASID.
    pub max_asid: u32,
    /// Lowest ASID of plain SEV guests; `1..min_sev_asid` are SEV-ES ASIDs.
    pub min_sev_asid: u32,
    /// Most guests at once.
    pub max_guests: u32,
    /// Where the identity and the SNP platform's persistent state persist
    /// (`chip.sevfw`, `platform.sevfw`, `snp.sevfw`); `None` keeps them in
    /// memory only. The directory must belong to the user the firmware runs
    /// as and must not be writable by group or others (see [`crate::store`]).
    pub state_dir: Option<PathBuf>,
    /// Seed of the deterministic mode: every key, nonce and VEK comes from
    /// ChaCha20 seeded with it, so runs are byte-identical. `None` uses the
    /// operating system's RNG. For tests only.
    pub seed: Option<[u8; 32]>,
    /// Record each guest's launch log ([`Firmware::launch_log`]). Every
    /// LAUNCH_UPDATE entry carries the SHA-256 of its content: a second hash
    /// pass over the data besides the launch digest. Off, the log stays
    /// empty and LAUNCH_UPDATE_DATA hashes each byte once (about 1.6x the
    /// throughput). On by default.
    pub launch_log: bool,
    /// The processor generation emulated for SEV-SNP (TCB layout, chip id
    /// length, C-bit position, FMS). Genoa by default.
    pub product: Product,
    /// The SNP current TCB (also the committed one, and so the reported one,
    /// until an SNP_COMMIT or SNP_CONFIG says otherwise); `None` takes the
    /// product's default ([`crate::snp::platform::default_tcb`]). With a
    /// state directory holding a committed TCB (SNP_COMMIT of an earlier
    /// run), it must not be below that one in any component
    /// ([`FirmwareError::TcbRollback`]).
    pub snp_tcb: Option<TcbVersion>,
}

impl Default for FirmwareConfig {
    fn default() -> Self {
        Self {
            api_major: DEFAULT_API_MAJOR,
            api_minor: DEFAULT_API_MINOR,
            build: DEFAULT_BUILD,
            max_asid: DEFAULT_MAX_ASID,
            min_sev_asid: DEFAULT_MIN_SEV_ASID,
            max_guests: DEFAULT_MAX_GUESTS,
            state_dir: None,
            seed: None,
            launch_log: true,
            product: Product::Genoa,
            snp_tcb: None,
        }
    }
}

impl FirmwareConfig {
    fn validate(&self) -> Result<(), FirmwareError> {
        if self.max_asid == 0 || self.max_asid > 0xFFFF {
            return Err(FirmwareError::Config(format!(
                "max_asid {} is not in 1..=65535",
                self.max_asid
            )));
        }
        if self.min_sev_asid == 0 || self.min_sev_asid > self.max_asid + 1 {
            return Err(FirmwareError::Config(format!(
                "min_sev_asid {} is not in 1..={}",
                self.min_sev_asid,
                self.max_asid + 1
            )));
        }
        if self.max_guests == 0 || self.max_guests > 0xFFFF {
            return Err(FirmwareError::Config(format!(
                "max_guests {} is not in 1..=65535",
                self.max_guests
            )));
        }
        if !self.product.is_snp_capable() {
            return Err(FirmwareError::Config(format!(
                "{} does not support SEV-SNP",
                self.product
            )));
        }
        Ok(())
    }
}

pub(crate) type Status<T = ()> = Result<T, FirmwareStatus>;

/// The software AMD Secure Processor (legacy SEV, SEV-ES and SEV-SNP).
pub struct Firmware {
    pub(crate) config: FirmwareConfig,
    pub(crate) rng: Box<dyn CryptoRngCore + Send>,
    chip: ChipIdentity,
    keys: Option<PlatformKeys>,
    pub(crate) state: PlatformState,
    pub(crate) snp: SnpPlatform,
    pub(crate) snp_keys: ChipEndorsementKeys,
    es_enabled: bool,
    pub(crate) guests: Guests,
    pub(crate) asids: AsidPool,
    next_key_group: u64,
    last_error: Option<String>,
    /// The client of the command running ([`Firmware::execute_for`]).
    pub(crate) client: ClientId,
    /// The state directory, opened and checked once (`None` without one).
    store: Option<PrivateDir>,
}

impl core::fmt::Debug for Firmware {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Firmware")
            .field("state", &self.state)
            .field("es_enabled", &self.es_enabled)
            .field("guests", &self.guests.len())
            .field("chip", &self.chip)
            .finish_non_exhaustive()
    }
}

impl Firmware {
    /// Opens a firmware: loads the chip and platform identity from
    /// `config.state_dir` (creating the directory, mode 0700, when it does
    /// not exist, and minting and saving a new chip, with its RSA-4096 ARK
    /// and ASK, when it has none), or mints an in-memory chip when there is
    /// no state directory. [`Firmware::open_existing`] creates nothing.
    ///
    /// A state directory that is not the running user's or that group or
    /// others may write is refused ([`StoreError::Dir`]), as is a state file
    /// that is a symbolic link, foreign, of another version, or corrupted
    /// ([`FirmwareError::Store`]; the file is left untouched), an SNP state
    /// file of another product ([`FirmwareError::SnpStateMismatch`]) or one
    /// whose committed TCB is above the configured current TCB
    /// ([`FirmwareError::TcbRollback`]).
    pub fn open(config: FirmwareConfig) -> Result<Self, FirmwareError> {
        config.validate()?;
        let mut rng = make_rng(&config);
        let dir = open_store(&config, true)?;
        let chip = match &dir {
            Some(dir) => {
                if let Some(chip) = load_chip(dir)? {
                    chip
                } else {
                    refuse_orphan_platform(dir)?;
                    let chip =
                        ChipIdentity::generate(rng.as_mut(), config.api_major, config.api_minor)?;
                    store::save(dir, StateKind::Chip, &chip.to_payload()?)?;
                    chip
                }
            }
            None => ChipIdentity::generate(rng.as_mut(), config.api_major, config.api_minor)?,
        };
        Self::finish_open(config, rng, chip, dir)
    }

    /// As [`Firmware::open`], for a platform that already exists: the state
    /// directory must exist and hold a chip ([`FirmwareError::NoIdentity`]
    /// otherwise). Nothing is created and no chip is minted (a platform
    /// without OCA/PEK/PDH still gets them from its first INIT, as a real
    /// one does). Without a state directory, an in-memory chip is minted.
    pub fn open_existing(config: FirmwareConfig) -> Result<Self, FirmwareError> {
        config.validate()?;
        let Some(dir) = open_store(&config, false)? else {
            return Self::open(config);
        };
        let chip = load_chip(&dir)?.ok_or_else(|| FirmwareError::NoIdentity {
            path: dir.path().to_owned(),
        })?;
        let rng = make_rng(&config);
        Self::finish_open(config, rng, chip, Some(dir))
    }

    /// Opens a firmware on a given chip (e.g. one minted once and shared by
    /// many tests). With a state directory (created as by [`Firmware::open`]
    /// when missing), the directory's chip must be this one
    /// ([`FirmwareError::ChipMismatch`] otherwise); a directory without a
    /// chip file gets this chip saved.
    pub fn open_with_chip(
        config: FirmwareConfig,
        chip: ChipIdentity,
    ) -> Result<Self, FirmwareError> {
        config.validate()?;
        let rng = make_rng(&config);
        let dir = open_store(&config, true)?;
        if let Some(dir) = &dir {
            match load_chip(dir)? {
                Some(existing) if !existing.same_chip(&chip) => {
                    return Err(FirmwareError::ChipMismatch {
                        path: dir.join(StateKind::Chip.file_name()),
                    })
                }
                Some(_) => {}
                None => {
                    refuse_orphan_platform(dir)?;
                    store::save(dir, StateKind::Chip, &chip.to_payload()?)?;
                }
            }
        }
        Self::finish_open(config, rng, chip, dir)
    }

    fn finish_open(
        config: FirmwareConfig,
        rng: Box<dyn CryptoRngCore + Send>,
        chip: ChipIdentity,
        dir: Option<PrivateDir>,
    ) -> Result<Self, FirmwareError> {
        let keys = match &dir {
            Some(dir) => {
                store::remove_stale_temp(dir, StateKind::Platform)?;
                match store::load(dir, StateKind::Platform)? {
                    Some(payload) => {
                        let corrupted = |reason: String| StoreError::Corrupted {
                            path: dir.join(StateKind::Platform.file_name()),
                            kind: StateKind::Platform,
                            reason,
                        };
                        let keys = PlatformKeys::from_payload(&payload).map_err(corrupted)?;
                        if verify_sev_by_sev(&keys.pek_cert, chip.cek_cert()).is_err() {
                            return Err(corrupted(
                                "its PEK is not endorsed by this chip's CEK (a platform file \
                                 from another chip?)"
                                    .into(),
                            )
                            .into());
                        }
                        Some(keys)
                    }
                    None => None,
                }
            }
            None => None,
        };
        let saved = match &dir {
            Some(dir) => load_snp(dir, &chip, &config)?,
            None => SnpPersisted::default(),
        };
        let asids = AsidPool::new(config.max_asid, config.min_sev_asid);
        let snp = SnpPlatform::new(config.product, config.snp_tcb, saved);
        let snp_keys = ChipEndorsementKeys::new(&chip);
        Ok(Self {
            snp,
            snp_keys,
            config,
            rng,
            chip,
            keys,
            state: PlatformState::Uninit,
            es_enabled: false,
            guests: Guests::default(),
            asids,
            next_key_group: 1,
            last_error: None,
            client: ClientId::LOCAL,
            store: dir,
        })
    }

    /// The chip identity (emulated ARK/ASK, CEK, chip id).
    pub fn chip(&self) -> &ChipIdentity {
        &self.chip
    }

    /// The configuration.
    pub fn config(&self) -> &FirmwareConfig {
        &self.config
    }

    /// The platform state.
    pub fn platform_state(&self) -> PlatformState {
        self.state
    }

    /// The state of guest `handle`, if it exists.
    pub fn guest_state(&self, handle: u32) -> Option<GuestState> {
        self.guests.get(ClientId::LOCAL, handle).map(|g| g.state)
    }

    /// What guest `handle`'s launch measured, in order (the same log type
    /// and format `sevkit measure --log` prints).
    pub fn launch_log(&self, handle: u32) -> Option<&LaunchLog> {
        self.guests.get(ClientId::LOCAL, handle).map(|g| &g.log)
    }

    /// The current PDH certificate, if the platform has one.
    pub fn pdh_cert(&self) -> Option<&SevCert> {
        self.keys.as_ref().map(|k| &k.pdh_cert)
    }

    /// Why the last command that failed with `HWERROR_PLATFORM` failed (a
    /// state-file write), for the operator's log.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Typed convenience over [`Self::execute`]: runs `command` (a
    /// [`SevCommand`] or an [`SnpCommand`]) with the bytes of `buffer` and
    /// copies the (possibly updated) bytes back.
    pub fn call<T>(
        &mut self,
        command: impl Into<u32>,
        buffer: &mut T,
        memory: &mut dyn SystemMemory,
    ) -> FirmwareStatus
    where
        T: FromBytes + IntoBytes + Immutable + KnownLayout,
    {
        self.execute(command.into(), buffer.as_mut_bytes(), memory)
    }

    /// Runs one command: `buffer` is AMD's command buffer (inputs in,
    /// outputs written back), every `*_paddr` in it an address in `memory`.
    /// Returns AMD's status code; never panics on any input.
    ///
    /// Unknown command ids give `INVALID_COMMAND`; the commands this model
    /// does not implement (DOWNLOAD_FIRMWARE, RING_BUFFER, COPY, SEND_*,
    /// RECEIVE_*, SWAP_*, SNP page swap/move/metadata/set-state/unsmash,
    /// SNP_DOWNLOAD_FIRMWARE_EX) give `UNSUPPORTED`. SNP commands are
    /// described in [`crate::snp`]. A buffer shorter than the command's
    /// structure gives `INVALID_PARAM`. The sevkit host-instruction
    /// pseudo-commands ([`sev_abi::host_ops`]: RMPUPDATE, PSMASH,
    /// PVALIDATE, a guest's own memory access) run here too.
    ///
    /// The command runs for [`ClientId::LOCAL`]; see [`Self::execute_for`].
    pub fn execute(
        &mut self,
        command: u32,
        buffer: &mut [u8],
        memory: &mut dyn SystemMemory,
    ) -> FirmwareStatus {
        self.execute_for(ClientId::LOCAL, command, buffer, memory)
    }

    /// [`Self::execute`] for `client`, whose system memory `memory` is: the
    /// command sees only that client's guests and RMP ([`crate::client`]).
    /// The inspection methods of this type (`guest_state`, `snp_guest`,
    /// `rmp_entry`, ...) show [`ClientId::LOCAL`]'s view.
    pub fn execute_for(
        &mut self,
        client: ClientId,
        command: u32,
        buffer: &mut [u8],
        memory: &mut dyn SystemMemory,
    ) -> FirmwareStatus {
        self.client = client;
        self.snp.switch_to(client);
        let status = self.run(command, buffer, memory);
        self.client = ClientId::LOCAL;
        self.snp.switch_to(ClientId::LOCAL);
        status
    }

    /// Forgets everything `client` owns, as the kernel does when a VM's
    /// file descriptor closes: its SEV guests are deactivated and
    /// decommissioned, its SNP guests and the RMP of its memory dropped;
    /// their ASIDs need a DF_FLUSH / SNP_DF_FLUSH before reuse.
    pub fn release_client(&mut self, client: ClientId) {
        let handles: Vec<u32> = self.guests.of(client).map(|(h, _)| h).collect();
        for handle in handles {
            if let Some(guest) = self.guests.remove(client, handle) {
                if let Some(asid) = guest.activation.asid() {
                    self.asids.unbind(asid);
                }
            }
        }
        self.snp.release(client);
        if self.guests.is_empty() && self.state == PlatformState::Working {
            self.state = PlatformState::Init;
        }
    }

    fn run(
        &mut self,
        command: u32,
        buffer: &mut [u8],
        memory: &mut dyn SystemMemory,
    ) -> FirmwareStatus {
        if let Some(op) = sev_abi::host_ops::HostOp::from_u32(command) {
            return match self.host_dispatch(op, buffer, memory) {
                Ok(()) => FirmwareStatus::SUCCESS,
                Err(status) => status,
            };
        }
        let Some(cmd) = SevCommand::from_u32(command) else {
            return match SnpCommand::from_u32(command) {
                Some(snp) => match self.snp_dispatch(snp, buffer, memory) {
                    Ok(()) => FirmwareStatus::SUCCESS,
                    Err(status) => status,
                },
                None => FirmwareStatus::INVALID_COMMAND,
            };
        };
        match self.dispatch(cmd, buffer, memory) {
            Ok(()) => FirmwareStatus::SUCCESS,
            Err(status) => status,
        }
    }

    fn dispatch(&mut self, cmd: SevCommand, buf: &mut [u8], mem: &mut dyn SystemMemory) -> Status {
        use PlatformState::{Init, Uninit, Working};
        use SevCommand as C;
        let allowed: &[PlatformState] = match cmd {
            C::Init | C::InitEx | C::PlatformReset => &[Uninit],
            C::Shutdown | C::PlatformStatus | C::GetId | C::Nop => &[Uninit, Init, Working],
            C::PekGen | C::PekCertImport => &[Init],
            C::PekCsr | C::PdhCertExport | C::PdhGen | C::DfFlush | C::LaunchStart => {
                &[Init, Working]
            }
            C::Decommission
            | C::Activate
            | C::ActivateEx
            | C::Deactivate
            | C::GuestStatus
            | C::LaunchUpdateData
            | C::LaunchUpdateVmsa
            | C::LaunchMeasure
            | C::LaunchSecret
            | C::LaunchFinish
            | C::Attestation
            | C::DbgDecrypt
            | C::DbgEncrypt => &[Working],
            C::DownloadFirmware
            | C::RingBuffer
            | C::Copy
            | C::SendStart
            | C::SendUpdateData
            | C::SendUpdateVmsa
            | C::SendFinish
            | C::SendCancel
            | C::ReceiveStart
            | C::ReceiveUpdateData
            | C::ReceiveUpdateVmsa
            | C::ReceiveFinish
            | C::SwapOut
            | C::SwapIn => return Err(FirmwareStatus::UNSUPPORTED),
        };
        if !allowed.contains(&self.state) {
            return Err(FirmwareStatus::INVALID_PLATFORM_STATE);
        }
        match cmd {
            C::Init => self.init(buf),
            C::InitEx => self.init_ex(buf),
            C::Shutdown => {
                self.shutdown();
                Ok(())
            }
            C::PlatformReset => self.platform_reset(),
            C::PlatformStatus => self.platform_status(buf),
            C::PekGen => self.pek_gen(),
            C::PekCsr => self.pek_csr(buf, mem),
            C::PekCertImport => self.pek_cert_import(buf, mem),
            C::PdhCertExport => self.pdh_cert_export(buf, mem),
            C::PdhGen => self.pdh_gen(),
            C::DfFlush => {
                // The model has no caches: the WBINVD precondition always holds.
                self.asids.flush();
                Ok(())
            }
            C::GetId => self.get_id(buf, mem),
            C::Nop => Ok(()),
            C::Decommission => self.decommission(buf),
            C::Activate => {
                let b: ActivateBuffer = parse(buf)?;
                self.activate(b.handle.get(), b.asid.get())
            }
            C::ActivateEx => self.activate_ex(buf, mem),
            C::Deactivate => self.deactivate(buf),
            C::GuestStatus => self.guest_status(buf),
            C::LaunchStart => self.launch_start(buf, mem),
            C::LaunchUpdateData => self.launch_update(buf, mem, false),
            C::LaunchUpdateVmsa => self.launch_update(buf, mem, true),
            C::LaunchMeasure => self.launch_measure(buf, mem),
            C::LaunchSecret => self.launch_secret(buf, mem),
            C::LaunchFinish => self.launch_finish(buf),
            C::Attestation => self.attestation(buf, mem),
            C::DbgDecrypt => self.dbg(buf, mem, false),
            C::DbgEncrypt => self.dbg(buf, mem, true),
            _ => Err(FirmwareStatus::UNSUPPORTED),
        }
    }

    // ----------------------------------------------------------------------
    // Platform commands
    // ----------------------------------------------------------------------

    fn api(&self) -> (u8, u8) {
        (self.config.api_major, self.config.api_minor)
    }

    fn keys(&self) -> Status<&PlatformKeys> {
        // INIT creates the keys, so every state that reaches here has them.
        self.keys.as_ref().ok_or(FirmwareStatus::HWERROR_PLATFORM)
    }

    /// Persists and installs new platform keys; nothing changes when the
    /// write fails.
    fn commit_keys(&mut self, keys: PlatformKeys) -> Status {
        if let Some(dir) = &self.store {
            if let Err(e) = store::save(dir, StateKind::Platform, &keys.to_payload()) {
                self.last_error = Some(e.to_string());
                return Err(FirmwareStatus::HWERROR_PLATFORM);
            }
        }
        self.keys = Some(keys);
        Ok(())
    }

    /// Persists the SNP platform's persistent state `saved` (the caller
    /// installs it when this succeeds). Nothing is written when `saved` is
    /// what is already persisted, or without a state directory; a failed
    /// write answers HWERROR_PLATFORM (the caller then changes nothing).
    pub(crate) fn persist_snp(&mut self, saved: SnpPersisted) -> Status {
        if saved == self.snp.persisted() {
            return Ok(());
        }
        if let Some(dir) = &self.store {
            let payload = saved.to_payload(self.chip.chip_id(), self.snp.product);
            if let Err(e) = store::save(dir, StateKind::Snp, &payload) {
                self.last_error = Some(e.to_string());
                return Err(FirmwareStatus::HWERROR_PLATFORM);
            }
        }
        Ok(())
    }

    fn generate_keys(&mut self) -> Status<PlatformKeys> {
        let api = self.api();
        PlatformKeys::generate(self.rng.as_mut(), api, self.chip.cek()).map_err(|e| {
            self.last_error = Some(e.to_string());
            FirmwareStatus::HWERROR_PLATFORM
        })
    }

    fn do_init(&mut self, flags: u32, tmr_paddr: u64, tmr_len: u32) -> Status {
        if flags & !INIT_FLAG_SEV_ES != 0 {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let es = flags & INIT_FLAG_SEV_ES != 0;
        if es {
            if tmr_paddr == 0 || !tmr_paddr.is_multiple_of(TMR_ALIGN) {
                return Err(FirmwareStatus::INVALID_ADDRESS);
            }
            if tmr_len < TMR_MIN_LEN {
                return Err(FirmwareStatus::INVALID_LENGTH);
            }
        }
        if self.keys.is_none() {
            let keys = self.generate_keys()?;
            self.commit_keys(keys)?;
        }
        self.es_enabled = es;
        self.state = PlatformState::Init;
        Ok(())
    }

    fn init(&mut self, buf: &[u8]) -> Status {
        let b: InitBuffer = parse(buf)?;
        self.do_init(b.flags.get(), b.tmr_paddr.get(), b.tmr_len.get())
    }

    fn init_ex(&mut self, buf: &[u8]) -> Status {
        let b: InitExBuffer = parse(buf)?;
        if b.length.get() != INIT_EX_LENGTH {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        // The model keeps its persistent store in the state directory; a
        // host-memory store is checked for shape only.
        if b.nv_paddr.get() != 0 && b.nv_len.get() != NV_LEN {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        self.do_init(b.flags.get(), b.tmr_paddr.get(), b.tmr_len.get())
    }

    fn shutdown(&mut self) {
        self.guests.clear();
        self.asids.reset();
        self.es_enabled = false;
        self.state = PlatformState::Uninit;
    }

    fn platform_reset(&mut self) -> Status {
        if let Some(dir) = &self.store {
            if let Err(e) = store::remove(dir, StateKind::Platform) {
                self.last_error = Some(e.to_string());
                return Err(FirmwareStatus::HWERROR_PLATFORM);
            }
        }
        self.keys = None;
        Ok(())
    }

    fn platform_status(&mut self, buf: &mut [u8]) -> Status {
        let _: PlatformStatusBuffer = parse(buf)?;
        let mut out = PlatformStatusBuffer::new_zeroed();
        out.api_major = self.config.api_major;
        out.api_minor = self.config.api_minor;
        out.state = self.state as u8;
        out.owner = if self
            .keys
            .as_ref()
            .is_some_and(PlatformKeys::externally_owned)
        {
            PLATFORM_OWNER_EXTERNAL
        } else {
            0
        };
        out.config = U16::new(if self.es_enabled {
            PLATFORM_CONFIG_ES
        } else {
            0
        });
        out.build = self.config.build;
        out.guest_count = U32::new(self.guests.len() as u32);
        put(buf, &out);
        Ok(())
    }

    fn pek_gen(&mut self) -> Status {
        let keys = self.generate_keys()?;
        self.commit_keys(keys)
    }

    fn pdh_gen(&mut self) -> Status {
        let api = self.api();
        let keys = self
            .keys
            .as_ref()
            .ok_or(FirmwareStatus::HWERROR_PLATFORM)?
            .with_new_pdh(self.rng.as_mut(), api)
            .map_err(|_| FirmwareStatus::HWERROR_PLATFORM)?;
        self.commit_keys(keys)
    }

    fn pek_csr(&mut self, buf: &mut [u8], mem: &mut dyn SystemMemory) -> Status {
        let mut b: PekCsrBuffer = parse(buf)?;
        let need = SEV_CERT_LEN as u32;
        if b.len.get() < need {
            b.len = U32::new(need);
            put(buf, &b);
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let csr = self.keys()?.pek_csr();
        write_mem(mem, b.paddr.get(), csr.as_bytes())?;
        b.len = U32::new(need);
        put(buf, &b);
        Ok(())
    }

    fn pek_cert_import(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: PekCertImportBuffer = parse(buf)?;
        if b.pek_len.get() as usize != SEV_CERT_LEN || b.oca_len.get() as usize != SEV_CERT_LEN {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let pek_bytes = read_mem(mem, b.pek_paddr.get(), SEV_CERT_LEN)?;
        let oca_bytes = read_mem(mem, b.oca_paddr.get(), SEV_CERT_LEN)?;
        let (oca, pek) = self.check_import(&pek_bytes, &oca_bytes)?;
        let keys = self
            .keys()?
            .with_imported_oca(&oca, &pek)
            .map_err(|_| FirmwareStatus::HWERROR_PLATFORM)?;
        self.commit_keys(keys)
    }

    /// PEK_CERT_IMPORT's checks: a well-formed, self-signed OCA; a PEK
    /// certificate for this platform's PEK, signed by that OCA. Returns the
    /// OCA and the PEK certificate completed with the CEK's signature.
    fn check_import(&self, pek_bytes: &[u8], oca_bytes: &[u8]) -> Status<(SevCert, SevCert)> {
        let invalid = FirmwareStatus::INVALID_CERTIFICATE;
        let sig_status = |e: CryptoError| match e {
            CryptoError::BadSignature(_) => FirmwareStatus::BAD_SIGNATURE,
            _ => FirmwareStatus::INVALID_CERTIFICATE,
        };
        let oca = SevCert::from_bytes(oca_bytes).map_err(|_| invalid)?;
        let pek = SevCert::from_bytes(pek_bytes).map_err(|_| invalid)?;
        if oca.usage() != KeyUsage::Oca || !(oca.algorithm().is_ecdsa() || oca.algorithm().is_rsa())
        {
            return Err(invalid);
        }
        let keys = self.keys()?;
        if pek.usage() != KeyUsage::Pek
            || pek.algorithm() != Algorithm::EcdsaSha256
            || pek.ecc_key() != Some(&keys.pek.public_key_ref().to_amd())
        {
            return Err(invalid);
        }
        verify_sev_by_sev(&oca, &oca).map_err(sig_status)?;
        verify_sev_by_sev(&pek, &oca).map_err(sig_status)?;
        // Keep the OCA's signature in slot 1, the CEK's in slot 2.
        let oca_slot = pek
            .signatures()
            .iter()
            .position(|s| s.usage == KeyUsage::Oca.as_u32() && s.algo == oca.algorithm().as_u32())
            .ok_or(invalid)?;
        let mut out = pek;
        if oca_slot == 1 {
            out.sig1_usage = pek.sig2_usage;
            out.sig1_algo = pek.sig2_algo;
            out.sig1 = pek.sig2;
        }
        sign(&mut out, 1, KeyUsage::Cek, self.chip.cek())
            .map_err(|_| FirmwareStatus::HWERROR_PLATFORM)?;
        Ok((oca, out))
    }

    fn pdh_cert_export(&mut self, buf: &mut [u8], mem: &mut dyn SystemMemory) -> Status {
        let mut b: PdhCertExportBuffer = parse(buf)?;
        let pdh_need = SEV_CERT_LEN as u32;
        if b.pdh_len.get() < pdh_need || b.chain_len.get() < CERT_CHAIN_LEN {
            b.pdh_len = U32::new(pdh_need);
            b.chain_len = U32::new(CERT_CHAIN_LEN);
            put(buf, &b);
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let keys = self.keys()?;
        let mut chain = Vec::with_capacity(CERT_CHAIN_LEN as usize);
        chain.extend_from_slice(keys.pek_cert.as_bytes());
        chain.extend_from_slice(keys.oca_cert.as_bytes());
        chain.extend_from_slice(self.chip.cek_cert().as_bytes());
        let pdh = keys.pdh_cert;
        write_mem(mem, b.pdh_paddr.get(), pdh.as_bytes())?;
        write_mem(mem, b.chain_paddr.get(), &chain)?;
        b.pdh_len = U32::new(pdh_need);
        b.chain_len = U32::new(CERT_CHAIN_LEN);
        put(buf, &b);
        Ok(())
    }

    fn get_id(&mut self, buf: &mut [u8], mem: &mut dyn SystemMemory) -> Status {
        let mut b: GetIdBuffer = parse(buf)?;
        if b.len.get() < GET_ID_LEN {
            b.len = U32::new(GET_ID_LEN);
            put(buf, &b);
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        write_mem(mem, b.paddr.get(), self.chip.chip_id())?;
        b.len = U32::new(GET_ID_LEN);
        put(buf, &b);
        Ok(())
    }

    // ----------------------------------------------------------------------
    // Guest management
    // ----------------------------------------------------------------------

    /// Guest `handle` of the running command's client (another client's
    /// guest does not exist for it).
    pub(crate) fn guest(&self, handle: u32) -> Status<&Guest> {
        self.guests
            .get(self.client, handle)
            .ok_or(FirmwareStatus::INVALID_GUEST)
    }

    pub(crate) fn guest_mut(&mut self, handle: u32) -> Status<&mut Guest> {
        self.guests
            .get_mut(self.client, handle)
            .ok_or(FirmwareStatus::INVALID_GUEST)
    }

    fn decommission(&mut self, buf: &[u8]) -> Status {
        let b: HandleBuffer = parse(buf)?;
        let handle = b.handle.get();
        if self.guest(handle)?.activation != Activation::Inactive {
            return Err(FirmwareStatus::ACTIVE);
        }
        self.guests.remove(self.client, handle);
        if self.guests.is_empty() {
            self.state = PlatformState::Init;
        }
        Ok(())
    }

    fn activate(&mut self, handle: u32, asid: u32) -> Status {
        let guest = self.guest(handle)?;
        if guest.activation != Activation::Inactive {
            return Err(FirmwareStatus::ACTIVE);
        }
        let (es, group, running) = (
            guest.policy.es(),
            guest.key_group,
            guest.state == GuestState::Running,
        );
        if self.snp.bound_asids.contains_key(&asid) {
            return Err(FirmwareStatus::ASID_OWNED);
        }
        self.asids.bind(asid, es, group)?;
        let guest = self.guest_mut(handle)?;
        guest.activation = if running {
            Activation::Active(asid)
        } else {
            Activation::Pending(asid)
        };
        Ok(())
    }

    fn activate_ex(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: ActivateExBuffer = parse(buf)?;
        if b.ex_len.get() != ACTIVATE_EX_LENGTH {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        // The CCX list must be readable; the model has one key domain, so
        // the ids do not restrict anything.
        let ids_len = u64::from(b.numids.get()) * 4;
        check_range(mem, b.ids_paddr.get(), ids_len)?;
        self.activate(b.handle.get(), b.asid.get())
    }

    fn deactivate(&mut self, buf: &[u8]) -> Status {
        let b: HandleBuffer = parse(buf)?;
        let guest = self.guest_mut(b.handle.get())?;
        let Some(asid) = guest.activation.asid() else {
            return Err(FirmwareStatus::INACTIVE);
        };
        guest.activation = Activation::Inactive;
        self.asids.unbind(asid);
        Ok(())
    }

    fn guest_status(&mut self, buf: &mut [u8]) -> Status {
        let mut b: GuestStatusBuffer = parse(buf)?;
        let guest = self.guest(b.handle.get())?;
        b.policy = guest.policy;
        b.asid = U32::new(guest.activation.asid().unwrap_or(0));
        b.state = guest.state as u8;
        put(buf, &b);
        Ok(())
    }

    // ----------------------------------------------------------------------
    // Launch
    // ----------------------------------------------------------------------

    fn launch_start(&mut self, buf: &mut [u8], mem: &mut dyn SystemMemory) -> Status {
        let mut b: LaunchStartBuffer = parse(buf)?;
        let policy = b.policy;
        if policy.es() && !self.es_enabled {
            return Err(FirmwareStatus::UNSUPPORTED);
        }
        let share = b.handle.get();
        let shared = if share == 0 {
            None
        } else {
            if policy.noks() {
                return Err(FirmwareStatus::POLICY_FAILURE);
            }
            let other = self.guest(share)?;
            if other.policy.noks() {
                return Err(FirmwareStatus::POLICY_FAILURE);
            }
            Some((other.vek.clone(), other.key_group))
        };
        let channel = if b.dh_cert_paddr.get() == 0 {
            // No owner session: no channel or policy checks, TEK/TIK zero.
            (Tek::new([0; 16]), Tik::new([0; 16]))
        } else {
            if b.dh_cert_len.get() as usize != SEV_CERT_LEN
                || b.session_len.get() as usize != SESSION_BLOB_LEN
            {
                return Err(FirmwareStatus::INVALID_LENGTH);
            }
            let cert_bytes = read_mem(mem, b.dh_cert_paddr.get(), SEV_CERT_LEN)?;
            let session_bytes = read_mem(mem, b.session_paddr.get(), SESSION_BLOB_LEN)?;
            let godh = SevCert::read_from_bytes(&cert_bytes)
                .map_err(|_| FirmwareStatus::INVALID_CERTIFICATE)?;
            let session = SessionBlob::read_from_bytes(&session_bytes)
                .map_err(|_| FirmwareStatus::INVALID_LENGTH)?;
            let keys = open_launch_session(&self.keys()?.pdh, &godh, &session, policy)
                .map_err(|e| e.status())?;
            if !policy.allows_api(self.config.api_major, self.config.api_minor)
                || policy.reserved_bits() != 0
            {
                return Err(FirmwareStatus::POLICY_FAILURE);
            }
            keys
        };
        let handle = self
            .guests
            .free_handle(self.config.max_guests)
            .ok_or(FirmwareStatus::RESOURCE_LIMIT)?;
        let (vek, key_group) = if let Some(s) = shared {
            s
        } else {
            let mut vek = Zeroizing::new([0u8; 16]);
            self.rng.fill_bytes(&mut vek[..]);
            let group = self.next_key_group;
            self.next_key_group += 1;
            (vek, group)
        };
        self.guests.insert(
            handle,
            Guest::new(self.client, policy, vek, key_group, channel),
        );
        self.state = PlatformState::Working;
        b.handle = U32::new(handle);
        put(buf, &b);
        Ok(())
    }

    fn launch_update(&mut self, buf: &[u8], mem: &mut dyn SystemMemory, vmsa: bool) -> Status {
        let b: LaunchUpdateBuffer = parse(buf)?;
        let (paddr, len) = (b.paddr.get(), b.len.get());
        let guest = self
            .guests
            .get(self.client, b.handle.get())
            .ok_or(FirmwareStatus::INVALID_GUEST)?;
        if guest.state != GuestState::LUpdate {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        if vmsa && !guest.policy.es() {
            return Err(FirmwareStatus::UNSUPPORTED);
        }
        if guest.activation == Activation::Inactive {
            return Err(FirmwareStatus::INACTIVE);
        }
        if !paddr.is_multiple_of(16) || paddr.checked_add(u64::from(len)).is_none() {
            return Err(FirmwareStatus::INVALID_ADDRESS);
        }
        if len == 0 || !len.is_multiple_of(16) || (vmsa && len != VMSA_LEN) {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        // Pass 1: read and measure, changing nothing (an unreadable range
        // fails here).
        let Some(mut ld) = guest.ld.clone() else {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        };
        let log = self.config.launch_log;
        let mut content = Sha256::new();
        let mut chunk = Zeroizing::new(vec![0u8; CHUNK.min(len as usize)]);
        for (off, n) in chunks(len) {
            let part = &mut chunk[..n];
            read_into(mem, paddr + off, part)?;
            let part = &*part;
            if log && n >= PARALLEL_LOG_HASH_MIN {
                // The log's content hash is a second pass over the same bytes;
                // run it on another core so the log costs no throughput.
                rayon::join(|| content.update(part), || ld.update(part));
            } else {
                ld.update(part);
                if log {
                    content.update(part);
                }
            }
        }
        // Pass 2: encrypt in place.
        for (off, n) in chunks(len) {
            let part = &mut chunk[..n];
            read_into(mem, paddr + off, part)?;
            guest.key.encrypt(paddr + off, part);
            write_mem(mem, paddr + off, part)?;
        }
        let guest = self.guest_mut(b.handle.get())?;
        if !log {
            guest.ld = Some(ld);
            return Ok(());
        }
        let digest_after: [u8; 32] = ld.clone().finalize().into();
        let content: [u8; 32] = content.finalize().into();
        let (region, gpa, page_type) = if vmsa {
            let n = guest
                .log
                .entries
                .iter()
                .filter(|e| e.page_type == LogPageType::Vmsa)
                .count();
            (format!("vmsa[{n}]"), None, LogPageType::Vmsa)
        } else {
            ("update_data".to_owned(), Some(paddr), LogPageType::SevData)
        };
        guest.log.push(
            region,
            gpa,
            page_type,
            u64::from(len),
            &content,
            &digest_after,
        );
        guest.ld = Some(ld);
        Ok(())
    }

    fn launch_measure(&mut self, buf: &mut [u8], mem: &mut dyn SystemMemory) -> Status {
        let mut b: LaunchMeasureBuffer = parse(buf)?;
        let guest = self
            .guests
            .get(self.client, b.handle.get())
            .ok_or(FirmwareStatus::INVALID_GUEST)?;
        if guest.state != GuestState::LUpdate {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        let need = LAUNCH_MEASUREMENT_LEN as u32;
        if b.len.get() < need {
            b.len = U32::new(need);
            put(buf, &b);
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let Some(ld) = guest.ld.clone() else {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        };
        let Some((_, tik)) = guest.channel.as_ref() else {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        };
        let digest = SevLaunchDigest::new(ld.finalize().into());
        let mut mnonce = [0u8; 16];
        self.rng.fill_bytes(&mut mnonce);
        let measurement = launch_measurement(
            tik,
            self.config.api_major,
            self.config.api_minor,
            self.config.build,
            guest.policy,
            &digest,
            &mnonce,
        );
        let out = LaunchMeasurement::new(measurement, mnonce);
        write_mem(mem, b.paddr.get(), out.as_bytes())?;
        let guest = self.guest_mut(b.handle.get())?;
        guest.launch_digest = digest;
        guest.measurement = measurement;
        guest.ld = None;
        guest.state = GuestState::LSecret;
        b.len = U32::new(need);
        put(buf, &b);
        Ok(())
    }

    fn launch_secret(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let t: TransportBuffer = parse(buf)?;
        let guest = self.guest(t.handle.get())?;
        if guest.state != GuestState::LSecret {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        if guest.activation == Activation::Inactive {
            return Err(FirmwareStatus::INACTIVE);
        }
        let (guest_len, trans_len) = (t.guest_len.get(), t.trans_len.get());
        if t.hdr_len.get() as usize != PACKET_HEADER_LEN
            || guest_len != trans_len
            || guest_len == 0
            || !guest_len.is_multiple_of(16)
            || guest_len > MAX_SECRET_LEN
        {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let guest_paddr = t.guest_paddr.get();
        if !guest_paddr.is_multiple_of(16) {
            return Err(FirmwareStatus::INVALID_ADDRESS);
        }
        let hdr = read_mem(mem, t.hdr_paddr.get(), PACKET_HEADER_LEN)?;
        let hdr =
            PacketHeader::read_from_bytes(&hdr).map_err(|_| FirmwareStatus::INVALID_LENGTH)?;
        if hdr.is_compressed() {
            return Err(FirmwareStatus::UNSUPPORTED);
        }
        let mut data = Zeroizing::new(read_mem(mem, t.trans_paddr.get(), trans_len as usize)?);
        let Some((tek, tik)) = guest.channel.as_ref() else {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        };
        let mac = packet_mac(
            tik,
            CONTEXT_SECRET,
            hdr.flags.get(),
            &hdr.iv,
            guest_len,
            trans_len,
            &data,
            Some(&guest.measurement),
        );
        if !ct_eq(&mac, &hdr.mac) {
            return Err(FirmwareStatus::BAD_MEASUREMENT);
        }
        aes128_ctr(tek.as_bytes(), &hdr.iv, &mut data);
        guest.key.encrypt(guest_paddr, &mut data);
        write_mem(mem, guest_paddr, &data)
    }

    fn launch_finish(&mut self, buf: &[u8]) -> Status {
        let b: HandleBuffer = parse(buf)?;
        let guest = self.guest_mut(b.handle.get())?;
        if guest.state != GuestState::LSecret {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        if let Activation::Pending(asid) = guest.activation {
            guest.activation = Activation::Active(asid);
        }
        guest.channel = None; // TEK and TIK zeroize on drop
        guest.ld = None;
        guest.state = GuestState::Running;
        Ok(())
    }

    fn attestation(&mut self, buf: &mut [u8], mem: &mut dyn SystemMemory) -> Status {
        let mut b: AttestationBuffer = parse(buf)?;
        let guest = self.guest(b.handle.get())?;
        if !matches!(
            guest.state,
            GuestState::LSecret | GuestState::Running | GuestState::SUpdate | GuestState::Sent
        ) {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        let need = LEGACY_ATTESTATION_REPORT_LEN as u32;
        if b.len.get() < need {
            b.len = U32::new(need);
            put(buf, &b);
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let mut report = LegacyAttestationReport::new_zeroed();
        report.mnonce = b.mnonce;
        report.launch_digest = guest.launch_digest;
        report.policy = guest.policy;
        report.sig_usage = U32::new(KeyUsage::Pek.as_u32());
        report.sig_algo = U32::new(Algorithm::EcdsaSha256.as_u32());
        let sig = self
            .keys()?
            .pek
            .sign_sha256(report.signed_bytes())
            .map_err(|_| FirmwareStatus::HWERROR_PLATFORM)?;
        report.set_signature(&sig);
        write_mem(mem, b.paddr.get(), report.as_bytes())?;
        b.len = U32::new(need);
        put(buf, &b);
        Ok(())
    }

    fn dbg(&mut self, buf: &[u8], mem: &mut dyn SystemMemory, encrypt: bool) -> Status {
        let b: DbgBuffer = parse(buf)?;
        let guest = self.guest(b.handle.get())?;
        if guest.policy.nodbg() {
            return Err(FirmwareStatus::POLICY_FAILURE);
        }
        if guest.activation == Activation::Inactive {
            return Err(FirmwareStatus::INACTIVE);
        }
        let (src, dst, len) = (b.src_paddr.get(), b.dst_paddr.get(), b.len.get());
        if !src.is_multiple_of(16) || !dst.is_multiple_of(16) {
            return Err(FirmwareStatus::INVALID_ADDRESS);
        }
        if len == 0 || !len.is_multiple_of(16) {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        check_range(mem, src, u64::from(len))?;
        check_range(mem, dst, u64::from(len))?;
        let mut chunk = Zeroizing::new(vec![0u8; CHUNK.min(len as usize)]);
        for (off, n) in chunks(len) {
            let part = &mut chunk[..n];
            read_into(mem, src + off, part)?;
            if encrypt {
                guest.key.encrypt(dst + off, part);
            } else {
                guest.key.decrypt(src + off, part);
            }
            write_mem(mem, dst + off, part)?;
        }
        Ok(())
    }
}

fn make_rng(config: &FirmwareConfig) -> Box<dyn CryptoRngCore + Send> {
    match config.seed {
        Some(seed) => Box::new(ChaCha20Rng::from_seed(seed)),
        None => Box::new(OsRng),
    }
}

/// Opens the configured state directory: created (mode 0700) when missing
/// if `create`, else [`FirmwareError::NoIdentity`]; refused unless private.
fn open_store(config: &FirmwareConfig, create: bool) -> Result<Option<PrivateDir>, FirmwareError> {
    let Some(path) = &config.state_dir else {
        return Ok(None);
    };
    let dir = if create {
        PrivateDir::create(path)
    } else {
        PrivateDir::open(path)
    };
    match dir {
        Ok(dir) => Ok(Some(dir)),
        Err(e) if e.is_missing() && !create => {
            Err(FirmwareError::NoIdentity { path: path.clone() })
        }
        Err(e) => Err(StoreError::from(e).into()),
    }
}

fn load_chip(dir: &PrivateDir) -> Result<Option<ChipIdentity>, FirmwareError> {
    store::remove_stale_temp(dir, StateKind::Chip)?;
    match store::load(dir, StateKind::Chip)? {
        Some(payload) => Ok(Some(ChipIdentity::from_payload(&payload).map_err(
            |reason| StoreError::Corrupted {
                path: dir.join(StateKind::Chip.file_name()),
                kind: StateKind::Chip,
                reason,
            },
        )?)),
        None => Ok(None),
    }
}

/// A platform store without its chip cannot be used (its PEK is endorsed
/// by a CEK that no longer exists), and must not be silently replaced; nor
/// can an SNP state file (its committed TCB binds that chip).
fn refuse_orphan_platform(dir: &PrivateDir) -> Result<(), FirmwareError> {
    for (kind, why) in [
        (StateKind::Platform, "its PEK is endorsed by that chip"),
        (
            StateKind::Snp,
            "its committed TCB and SNP configuration belong to that chip",
        ),
    ] {
        let file = dir.join(kind.file_name());
        if std::fs::symlink_metadata(&file).is_ok() {
            return Err(StoreError::Corrupted {
                path: dir.join(StateKind::Chip.file_name()),
                kind: StateKind::Chip,
                reason: format!("missing, while {} exists ({why})", file.display()),
            }
            .into());
        }
    }
    Ok(())
}

/// Loads `snp.sevfw` (nothing persisted when there is none) and checks it
/// against the chip and the configuration: the chip id and product it was
/// written for, the anti-rollback (the current TCB not below the committed
/// one in any component), and an SNP_CONFIG reported TCB not above the
/// current TCB (what SNP_CONFIG itself enforces).
fn load_snp(
    dir: &PrivateDir,
    chip: &ChipIdentity,
    config: &FirmwareConfig,
) -> Result<SnpPersisted, FirmwareError> {
    store::remove_stale_temp(dir, StateKind::Snp)?;
    let Some(payload) = store::load(dir, StateKind::Snp)? else {
        return Ok(SnpPersisted::default());
    };
    let path = dir.join(StateKind::Snp.file_name());
    let corrupted = |reason: String| StoreError::Corrupted {
        path: path.clone(),
        kind: StateKind::Snp,
        reason,
    };
    let (saved, chip_id, product) = SnpPersisted::from_payload(&payload).map_err(corrupted)?;
    if &chip_id != chip.chip_id() {
        return Err(corrupted(
            "its chip id is not this chip's (an SNP state file from another chip?)".into(),
        )
        .into());
    }
    if product != config.product {
        return Err(FirmwareError::SnpStateMismatch {
            path,
            reason: format!(
                "written by a firmware emulating {product}, this one emulates {} (TCB versions \
                 of one product mean nothing to another)",
                config.product
            ),
        });
    }
    let current = config
        .snp_tcb
        .unwrap_or_else(|| default_tcb(config.product));
    if let Some(committed) = saved.committed_tcb {
        if !tcb_le(committed, current) {
            return Err(FirmwareError::TcbRollback {
                path,
                committed,
                current,
                product,
            });
        }
    }
    if let Some(c) = saved.config {
        if !tcb_le(c.reported_tcb, current) {
            return Err(FirmwareError::SnpStateMismatch {
                path,
                reason: format!(
                    "its SNP_CONFIG reported TCB {} is above the configured current SNP TCB {} \
                     in at least one component (SNP_CONFIG never allows that): configure an SNP \
                     TCB of at least the reported one",
                    c.reported_tcb, current
                ),
            });
        }
    }
    Ok(saved)
}

/// Reads a command buffer's structure from the front of `buf`.
pub(crate) fn parse<T: FromBytes + KnownLayout + Immutable>(buf: &[u8]) -> Status<T> {
    T::read_from_prefix(buf)
        .map(|(v, _)| v)
        .map_err(|_| FirmwareStatus::INVALID_PARAM)
}

/// Writes a structure back over the front of the command buffer (which
/// [`parse`] has shown to be long enough).
pub(crate) fn put<T: IntoBytes + Immutable>(buf: &mut [u8], value: &T) {
    let bytes = value.as_bytes();
    if let Some(dst) = buf.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

pub(crate) fn read_mem(mem: &dyn SystemMemory, paddr: u64, len: usize) -> Status<Vec<u8>> {
    let mut out = vec![0u8; len];
    read_into(mem, paddr, &mut out)?;
    Ok(out)
}

pub(crate) fn read_into(mem: &dyn SystemMemory, paddr: u64, buf: &mut [u8]) -> Status {
    mem.read(paddr, buf)
        .map_err(|_| FirmwareStatus::INVALID_ADDRESS)
}

pub(crate) fn write_mem(mem: &mut dyn SystemMemory, paddr: u64, data: &[u8]) -> Status {
    mem.write(paddr, data)
        .map_err(|_| FirmwareStatus::INVALID_ADDRESS)
}

/// Checks that `[paddr, paddr + len)` is readable, chunk by chunk.
fn check_range(mem: &dyn SystemMemory, paddr: u64, len: u64) -> Status {
    if paddr.checked_add(len).is_none() {
        return Err(FirmwareStatus::INVALID_ADDRESS);
    }
    let mut scratch = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut off = 0u64;
    while off < len {
        let n = (len - off).min(CHUNK as u64) as usize;
        read_into(mem, paddr + off, &mut scratch[..n])?;
        off += n as u64;
    }
    Ok(())
}

/// `(offset, length)` of each chunk of a `len`-byte range.
fn chunks(len: u32) -> impl Iterator<Item = (u64, usize)> {
    let len = u64::from(len);
    (0..len)
        .step_by(CHUNK)
        .map(move |off| (off, (len - off).min(CHUNK as u64) as usize))
}
