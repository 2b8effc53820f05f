//! SEV-SNP in the software AMD-SP (reference PART 2, §3.4).
//!
//! * [`platform`]: SNP platform state (SNP_INIT(_EX), SNP_SHUTDOWN(_EX),
//!   SNP_PLATFORM_STATUS, SNP_CONFIG, SNP_COMMIT, SNP_FEATURE_INFO), the
//!   chosen [`Product`] with its TCB layout, chip id length and C-bit.
//! * [`rmp`]: the reverse map table: per 4 KiB system page, assignment,
//!   ASID, GPA, page size, immutable, validated, VMSA, VMPL permissions;
//!   the host's RMPUPDATE / PSMASH and the guest's PVALIDATE as methods on
//!   [`crate::Firmware`].
//! * [`launch`]: guest contexts (SNP_GCTX_CREATE, SNP_LAUNCH_START,
//!   SNP_LAUNCH_UPDATE, SNP_LAUNCH_FINISH with ID block / ID auth,
//!   SNP_ACTIVATE, SNP_DECOMMISSION, SNP_GUEST_STATUS, SNP_DBG_*).
//! * [`cpuid`]: the CPUID page validator (§2.9).
//! * [`keys`], [`kds`]: VCEK/VLEK and the emulated KDS certificates.
//! * [`guest_request`], [`report`]: SNP_GUEST_REQUEST messages and reports.
//!
//! The types in this module are the interface between the launch path and
//! the guest-request path: [`GuestContext`] (what the firmware keeps in a
//! guest-context page), [`SnpPlatformView`] (what a report needs of the
//! platform) and [`GuestRequestEnv`].

pub mod cpuid;
pub mod guest_request;
pub mod kds;
pub mod keys;
pub mod launch;
pub mod platform;
pub mod report;
pub mod rmp;

use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::{Product, TcbVersion};
use sev_measure::log::LaunchLog;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypt::MemoryKey;

/// SNP guest states (reference §2.2), with AMD's encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SnpGuestState {
    /// Created by SNP_GCTX_CREATE (or after SNP_DECOMMISSION).
    Init = 0,
    /// Between SNP_LAUNCH_START and SNP_LAUNCH_FINISH.
    Launch = 1,
    /// Launched.
    Running = 2,
}

impl SnpGuestState {
    /// AMD's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Launch => "LAUNCH",
            Self::Running => "RUNNING",
        }
    }
}

/// The ID block fields a guest context keeps after SNP_LAUNCH_FINISH (all
/// zero without an ID block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdBlockFields {
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// GUEST_SVN.
    pub guest_svn: u32,
}

/// The guest's four VM platform communication keys (VMPCK0..3). Zeroized on
/// drop; `Debug` prints `<redacted>`.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Vmpcks(pub [[u8; 32]; 4]);

impl core::fmt::Debug for Vmpcks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Vmpcks(<redacted>)")
    }
}

/// A 32-byte secret (VMRK, OEK seed). Zeroized on drop, never printed.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret32(pub [u8; 32]);

impl core::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An SNP guest context: what the firmware keeps in the guest-context page
/// (GCTX) of one guest. Secrets zeroize on drop; `Debug` omits them.
#[allow(clippy::struct_excessive_bools)] // the architectural flag bits
pub struct GuestContext {
    /// System physical address of the guest-context page (the guest's
    /// handle in every SNP command).
    pub gctx_paddr: u64,
    /// Guest state.
    pub state: SnpGuestState,
    /// Guest policy (from SNP_LAUNCH_START).
    pub policy: SnpPolicy,
    /// The ASID bound by SNP_ACTIVATE (0: none).
    pub asid: u32,
    /// The launch digest (LD; 48 zero bytes at SNP_LAUNCH_START).
    pub ld: SnpLaunchDigest,
    /// The incoming migration digest (IMD; the same SHA-384 chain over the
    /// IMI pages only).
    pub imd: SnpLaunchDigest,
    /// IMI_EN from SNP_LAUNCH_START.
    pub imi_en: bool,
    /// VMPCK0..3 (random at SNP_LAUNCH_START).
    pub vmpck: Vmpcks,
    /// Per-VMPCK message sequence counters (the last one accepted).
    pub msg_count: [u64; 4],
    /// VM root key (random at SNP_LAUNCH_START).
    pub vmrk: Secret32,
    /// REPORT_ID (random at SNP_LAUNCH_START).
    pub report_id: [u8; 32],
    /// REPORT_ID of the migration agent; all 0xFF without one.
    pub report_id_ma: [u8; 32],
    /// HOST_DATA from SNP_LAUNCH_FINISH.
    pub host_data: [u8; 32],
    /// ID block fields (zero without an ID block).
    pub id_block: IdBlockFields,
    /// SHA-384 of the ID key (zero without an ID block).
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author key (zero without one).
    pub author_key_digest: [u8; 48],
    /// AUTHOR_KEY_EN from SNP_LAUNCH_FINISH.
    pub author_key_en: bool,
    /// ID_BLOCK_EN from SNP_LAUNCH_FINISH.
    pub id_block_en: bool,
    /// VCEK_DISABLED from SNP_LAUNCH_FINISH.
    pub vcek_disabled: bool,
    /// The committed TCB when the context was created.
    pub launch_tcb: TcbVersion,
    /// Guest OS SVN words (GOSVW) from SNP_LAUNCH_START.
    pub gosvw: [u8; 16],
    /// DESIRED_TSC_FREQ (kHz) from SNP_LAUNCH_START.
    pub desired_tsc_khz: u32,
    /// What the launch measured, in sev-measure's log format.
    pub log: LaunchLog,
    /// The guest's memory-encryption key.
    pub(crate) key: MemoryKey,
    /// SNP_ACTIVATE ran (`asid` is bound).
    pub(crate) activated: bool,
    /// Number of VMSA pages measured (names `vmsa[N]` in the log).
    pub(crate) vmsa_count: usize,
    /// The guest principal's token, once attached
    /// ([`sev_abi::host_ops::GuestAttachOp`]).
    pub(crate) principal: Option<Secret32>,
}

impl core::fmt::Debug for GuestContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GuestContext")
            .field("gctx_paddr", &format_args!("{:#x}", self.gctx_paddr))
            .field("state", &self.state)
            .field("policy", &self.policy)
            .field("asid", &self.asid)
            .finish_non_exhaustive()
    }
}

/// What the guest-request path needs to know about the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpPlatformView {
    /// The product the firmware emulates.
    pub product: Product,
    /// Current TCB (of the running firmware).
    pub current_tcb: TcbVersion,
    /// Reported TCB (SNP_CONFIG; the committed one by default).
    pub reported_tcb: TcbVersion,
    /// Committed TCB (SNP_COMMIT).
    pub committed_tcb: TcbVersion,
    /// CHIP_ID (64 bytes; on Turin only the first 8 are meaningful, the rest
    /// zero).
    pub chip_id: [u8; 64],
    /// SNP_CONFIG MASK_CHIP_ID: reports carry a zero chip id.
    pub mask_chip_id: bool,
    /// SNP_CONFIG MASK_CHIP_KEY: the VCEK may not sign (KEY/REPORT with
    /// VCEK → the spec's refusal).
    pub mask_chip_key: bool,
    /// API major version.
    pub api_major: u8,
    /// API minor version.
    pub api_minor: u8,
    /// Firmware build.
    pub build: u8,
    /// CPUID Fn0000_0001_EAX of the platform (family/model/stepping).
    pub fms: u32,
    /// PLATFORM_INFO of reports (bit 0 SMT enabled, bit 1 TSME enabled, ...).
    pub platform_info: u64,
}

/// Everything [`guest_request::handle`] works with.
pub struct GuestRequestEnv<'a> {
    /// The guest's context (message counters are updated in it).
    pub gctx: &'a mut GuestContext,
    /// The platform.
    pub platform: &'a SnpPlatformView,
    /// The chip's endorsement keys.
    pub keys: &'a dyn keys::EndorsementKeys,
}
