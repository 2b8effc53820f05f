//! The launch sequence, in the order QEMU and KVM issue it
//! (`shared/spec/qemu-kvm-interfaces.md` §14), with typestate so the steps
//! cannot be reordered:
//!
//! ```text
//! SEV / SEV-ES:  SevLaunch::start ─ LAUNCH_START, ACTIVATE, LAUNCH_UPDATE_DATA
//!                   │                 (firmware; kernel hashes table)
//!                   │  .update_data() LAUNCH_UPDATE_DATA (more regions)
//!                   ▼ .measure()      LAUNCH_UPDATE_VMSA (ES), LAUNCH_MEASURE
//!                SevLaunch<Measured>  ── .inject_secret() LAUNCH_SECRET (any number)
//!                   ▼ .finish()       LAUNCH_FINISH
//!                Launched
//! SEV-SNP:       SnpLaunch::start ─ GCTX_CREATE, SNP_LAUNCH_START, SNP_ACTIVATE
//!                   │  .queue_region() (more regions, measured at the finish)
//!                   ▼ .finish()       SNP_LAUNCH_UPDATE: firmware pages, queued
//!                Launched             regions, metadata pages, VMSAs;
//!                                     SNP_LAUNCH_FINISH
//! ```
//!
//! Each stage holds the handle of its own kind of guest
//! ([`SevGuestHandle`], [`SnpGuestContext`]); [`Launched`] and the VM expose
//! it as a [`FirmwareGuest`]. [`crate::plan::MachinePlan`] builds the inputs
//! and starts these launches: every launch sevkit makes (`sevkit launch`,
//! `attest`, `demo`, the benchmarks, the tests) runs through them.
//!
//! The VMM keeps its own launch log (what it asked the AMD-SP to measure,
//! computed with sev-measure's digest code over the plaintext it handed
//! over), so the firmware's log, the VMM's and `sevkit measure`'s prediction
//! can be compared entry by entry.

use sev_abi::commands::{SevCommand, SnpCommand};
use sev_abi::launch_digest::LaunchDigest;
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_abi::product::Product;
use sev_abi::session::LaunchMeasurement;
use sev_abi::snp_launch::{ID_AUTH_LEN, ID_BLOCK_LEN};
use sev_abi::status::FirmwareStatus;
use sev_measure::vmsa::{reset_vmsa, BSP_RESET_EIP};
use sev_measure::{FpuState, KernelHashes, LaunchLog, OvmfImage, VmmType};
use zerocopy::IntoBytes;

use crate::guest::FirmwareGuest;
use crate::guest::GuestActions;
use crate::host::{Host, HostError, PlatformStatus};
use crate::machine::cpuid::CpuidHost;
use crate::machine::memory::{host_area, PAGE_SIZE};

/// Why a launch failed. Messages follow QEMU's where QEMU has one.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A firmware command or host instruction failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The firmware image cannot be used.
    #[error("{0}")]
    Image(String),
    /// A launch input is unusable.
    #[error("{0}")]
    Input(String),
}

fn image_err(e: impl std::fmt::Display) -> LaunchError {
    LaunchError::Image(format!("firmware image: {e}"))
}

/// The guest owner's session for an SEV / SEV-ES launch: the decoded
/// contents of `dh-cert-file` and `session-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSession {
    /// The owner's Diffie-Hellman certificate (GODH).
    pub dh_cert: Vec<u8>,
    /// The session blob.
    pub session: Vec<u8>,
}

/// The ID block, its authentication, and whether the author key is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdBlockInput {
    /// The ID block (96 bytes).
    pub block: [u8; ID_BLOCK_LEN],
    /// The ID authentication information (4096 bytes).
    pub auth: Box<[u8; ID_AUTH_LEN]>,
    /// `author-key-enabled`.
    pub author_key: bool,
}

/// What an SEV / SEV-ES launch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevSpec {
    /// The guest policy.
    pub policy: GuestPolicy,
    /// A guest handle to share keys with (0: none).
    pub handle: u32,
    /// The owner's session, if given.
    pub session: Option<OwnerSession>,
    /// Use the legacy KVM VM type (KVM_SEV_INIT / KVM_SEV_ES_INIT), whose
    /// vCPU reset state has MXCSR and FCW zero (QEMU's `legacy-vm-type`,
    /// `auto` behaves like `on`).
    pub legacy_vm_type: bool,
}

/// What an SEV-SNP launch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpSpec {
    /// The guest policy.
    pub policy: SnpPolicy,
    /// Guest-visible workarounds (GOSVW).
    pub gosvw: [u8; 16],
    /// ID block and authentication, if given.
    pub id: Option<IdBlockInput>,
    /// `vcek-disabled`.
    pub vcek_disabled: bool,
    /// HOST_DATA.
    pub host_data: [u8; 32],
}

/// Everything a launch measures, resolved from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The firmware image (`-bios`).
    pub image: Vec<u8>,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The vCPU model's CPUID signature (QEMU puts it in RDX at reset).
    pub vcpu_sig: u32,
    /// The kernel hashes table, when `kernel-hashes=on` and `-kernel` given.
    pub kernel_hashes: Option<KernelHashes>,
    /// The host's CPUID facts (family/model/stepping, C-bit position,
    /// reduced physical bits) the SNP CPUID page is built for; the firmware
    /// checks the page against the platform.
    pub host_cpuid: CpuidHost,
}

impl LaunchSpec {
    /// A launch of `image` on `vcpus` vCPUs of QEMU's model `cpu_model`
    /// (`-cpu`) on a host of `product`, without kernel hashes.
    pub fn new(
        image: Vec<u8>,
        vcpus: u32,
        cpu_model: &str,
        product: Product,
    ) -> Result<Self, LaunchError> {
        let vcpu = sev_measure::vcpu_type(cpu_model)
            .ok_or_else(|| LaunchError::Input(format!("unable to find CPU model '{cpu_model}'")))?;
        Ok(Self {
            image,
            vcpus,
            vcpu_sig: vcpu.signature(),
            kernel_hashes: None,
            host_cpuid: CpuidHost::for_product(product),
        })
    }
}

/// The guest an SEV / SEV-ES launch created: what every later command of
/// the launch names. Only [`SevLaunch`] holds one, so no step of it has to
/// ask which kind of guest it launches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevGuestHandle {
    /// The firmware's guest handle (from LAUNCH_START).
    pub handle: u32,
    /// The ASID the guest was activated on (ACTIVATE).
    pub asid: u32,
    /// The guest policy given at LAUNCH_START.
    pub policy: GuestPolicy,
}

impl From<SevGuestHandle> for FirmwareGuest {
    fn from(g: SevGuestHandle) -> Self {
        Self::Legacy {
            handle: g.handle,
            asid: g.asid,
            policy: g.policy,
        }
    }
}

/// The guest an SEV-SNP launch created: its guest-context page, ASID and
/// policy. Only [`SnpLaunch`] holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnpGuestContext {
    /// System address of the guest-context page (SNP_GCTX_CREATE).
    pub gctx_paddr: u64,
    /// The ASID the guest was activated on (SNP_ACTIVATE).
    pub asid: u32,
    /// The guest policy given at SNP_LAUNCH_START.
    pub policy: SnpPolicy,
}

impl From<SnpGuestContext> for FirmwareGuest {
    fn from(g: SnpGuestContext) -> Self {
        Self::Snp {
            gctx_paddr: g.gctx_paddr,
            asid: g.asid,
            policy: g.policy,
        }
    }
}

/// The page size in which an SNP region is assigned to the guest and
/// measured (see [`SnpLaunch::queue_region`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdatePageSize {
    /// 4 KiB pages: one RMPUPDATE and one SNP_LAUNCH_UPDATE per page, as KVM
    /// issues them (and as the VMM launches the firmware image and the SEV
    /// metadata pages).
    #[default]
    Small,
    /// 2 MiB pages, for a region backed by huge pages: one RMPUPDATE and
    /// one SNP_LAUNCH_UPDATE per 2 MiB. The region's address and length
    /// must be 2 MiB multiples. The launch digest is the same as with 4 KiB
    /// pages (the AMD-SP measures each 4 KiB page of a 2 MiB one).
    Large,
}

impl UpdatePageSize {
    /// The page size in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Small => PAGE_SIZE,
            Self::Large => LARGE_PAGE_SIZE,
        }
    }
}

/// Size of a large (2 MiB) page.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;

/// Stage marker: updates issued, not yet measured.
#[derive(Debug)]
pub struct Updating;

/// Stage marker: LAUNCH_MEASURE done (the launch-secret window).
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    blob: LaunchMeasurement,
}

/// A launched guest: LAUNCH_FINISH done.
#[derive(Debug)]
pub struct Launched {
    /// The AMD-SP and guest memory.
    pub host: Host,
    /// The guest's firmware context.
    pub guest: FirmwareGuest,
    /// PLATFORM_STATUS at launch.
    pub platform: PlatformStatus,
    /// The VMM's launch log.
    pub log: LaunchLog,
    /// The launch digest the VMM expects the firmware computed.
    pub digest: LaunchDigest,
    /// SEV / SEV-ES: the LAUNCH_MEASURE blob (measurement ‖ mnonce).
    pub measure_blob: Option<LaunchMeasurement>,
    /// The firmware image's SNP secrets page (SNP only).
    pub secrets_gpa: Option<u64>,
    /// The guest's own side, attached at LAUNCH_FINISH as the guest
    /// principal (the only holder of the guest's view of its memory): today
    /// a [`SimulatedGuest`](crate::guest::SimulatedGuest).
    pub guest_actions: Box<dyn GuestActions>,
}

/// Finds a free ASID: ES and SNP guests take the low range, SEV guests the
/// high one; the firmware decides which it accepts (INVALID_ASID /
/// ASID_OWNED: try the next; DF_FLUSH_REQUIRED: flush and retry). The
/// flush is the guest kind's: SNP_DF_FLUSH frees the ASIDs of decommissioned
/// SNP guests, DF_FLUSH those of legacy guests (KVM issues SNP_DF_FLUSH once
/// SNP is enabled); the other is tried when the first is refused.
fn activate_any(
    host: &mut Host,
    mut activate: impl FnMut(&mut Host, u32) -> Result<FirmwareStatus, HostError>,
    command: &'static str,
    snp: bool,
) -> Result<u32, LaunchError> {
    let (flush, fallback) = if snp {
        (SnpCommand::SnpDfFlush.id(), SevCommand::DfFlush.id())
    } else {
        (SevCommand::DfFlush.id(), SnpCommand::SnpDfFlush.id())
    };
    let mut last = FirmwareStatus::INVALID_ASID;
    for asid in 1..=1024u32 {
        let mut status = activate(host, asid)?;
        if status == FirmwareStatus::DF_FLUSH_REQUIRED {
            let mut none = [0u8; 0];
            if host.status(flush, &mut none)? != FirmwareStatus::SUCCESS {
                // Whatever it answers, the retry below says whether it helped.
                let _ = host.status(fallback, &mut none)?;
            }
            status = activate(host, asid)?;
        }
        match status {
            FirmwareStatus::SUCCESS => return Ok(asid),
            FirmwareStatus::INVALID_ASID
            | FirmwareStatus::ASID_OWNED
            | FirmwareStatus::DF_FLUSH_REQUIRED => last = status,
            status => return Err(HostError::Firmware { command, status }.into()),
        }
    }
    Err(HostError::Firmware {
        command,
        status: last,
    }
    .into())
}

/// SEV_FEATURES of SNP guests' VMSAs (SNP active), QEMU's and
/// sev-snp-measure's default.
const SNP_GUEST_FEATURES: u64 = 0x1;

/// One reset-state VMSA page per vCPU, as KVM syncs them from QEMU's vCPU
/// state: the boot vCPU at the reset vector, the others at OVMF's SEV-ES AP
/// reset address (QEMU's errors when the image has none, or it is zero).
fn reset_vmsas(spec: &LaunchSpec, snp: bool, fpu: FpuState) -> Result<Vec<Vec<u8>>, LaunchError> {
    let image = OvmfImage::parse(&spec.image).map_err(image_err)?;
    let ap_eip = image
        .sev_es_reset_eip()
        .map_err(image_err)?
        .ok_or_else(|| {
            LaunchError::Image(
                "SEV information block/Firmware GUID Table block not found in pflash rom".into(),
            )
        })?;
    if ap_eip == 0 && spec.vcpus > 1 {
        return Err(LaunchError::Image("SEV-ES reset address is zero".into()));
    }
    let features = if snp { SNP_GUEST_FEATURES } else { 0 };
    let bsp = reset_vmsa(BSP_RESET_EIP, features, spec.vcpu_sig, VmmType::Qemu, fpu);
    let ap = reset_vmsa(ap_eip, features, spec.vcpu_sig, VmmType::Qemu, fpu);
    Ok((0..spec.vcpus)
        .map(|i| {
            let mut page = vec![0u8; PAGE_SIZE as usize];
            let vmsa = if i == 0 { &bsp } else { &ap };
            let bytes = vmsa.as_bytes();
            page[..bytes.len()].copy_from_slice(bytes);
            page
        })
        .collect())
}

fn check_vcpus(spec: &LaunchSpec) -> Result<(), LaunchError> {
    if spec.vcpus == 0 || u64::from(spec.vcpus) > host_area::MAX_VCPUS {
        return Err(LaunchError::Input(format!(
            "{} vCPUs: expected 1 to {}",
            spec.vcpus,
            host_area::MAX_VCPUS
        )));
    }
    Ok(())
}

mod sev;
mod snp;

pub use sev::SevLaunch;
pub use snp::SnpLaunch;
