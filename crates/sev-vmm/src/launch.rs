//! The launch sequence, in the order QEMU and KVM issue it
//! (`shared/spec/qemu-kvm-interfaces.md` §14), with typestate so the steps
//! cannot be reordered:
//!
//! ```text
//! SEV / SEV-ES:  SevLaunch::start ─ LAUNCH_START, ACTIVATE, LAUNCH_UPDATE_DATA
//!                   │                 (firmware; kernel hashes table)
//!                   ▼ .measure()      LAUNCH_UPDATE_VMSA (ES), LAUNCH_MEASURE
//!                SevLaunch<Measured>  ── .inject_secret() LAUNCH_SECRET (any number)
//!                   ▼ .finish()       LAUNCH_FINISH
//!                Launched
//! SEV-SNP:       SnpLaunch::start ─ GCTX_CREATE, SNP_LAUNCH_START, SNP_ACTIVATE
//!                   ▼ .finish()       SNP_LAUNCH_UPDATE: firmware pages, metadata
//!                Launched             pages, VMSAs; SNP_LAUNCH_FINISH
//! ```
//!
//! The VMM keeps its own launch log (what it asked the AMD-SP to measure,
//! computed with sev-measure's digest code over the plaintext it handed
//! over), so the firmware's log, the VMM's and `sevkit measure`'s prediction
//! can be compared entry by entry.

use sev_abi::commands::{
    ActivateBuffer, HandleBuffer, LaunchMeasureBuffer, LaunchStartBuffer, LaunchUpdateBuffer,
    SevCommand, SnpActivateBuffer, SnpCommand, SnpLaunchFinishBuffer, SnpLaunchStartBuffer,
    SnpLaunchUpdateBuffer, SnpPaddrBuffer, TransportBuffer, SNP_LAUNCH_FINISH_AUTH_KEY_EN,
    SNP_LAUNCH_FINISH_ID_BLOCK_EN, SNP_LAUNCH_FINISH_VCEK_DISABLED,
};
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_abi::product::Product;
use sev_abi::session::{LAUNCH_MEASUREMENT_LEN, PACKET_HEADER_LEN};
use sev_abi::snp_launch::{PageType, ID_AUTH_LEN, ID_BLOCK_LEN};
use sev_abi::status::FirmwareStatus;
use sev_measure::log::LogPageType;
use sev_measure::sev::SevLaunchDigest;
use sev_measure::snp::{SnpLaunchDigest, VMSA_GPA};
use sev_measure::vmsa::{reset_vmsa, BSP_RESET_EIP};
use sev_measure::{FpuState, KernelHashes, LaunchLog, OvmfImage, SectionKind, VmmType};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use crate::cpuid::{cpuid_page_for_signature, CpuidHost};
use crate::guest::FirmwareGuest;
use crate::guest_request::SimulatedGuest;
use crate::host::{Host, HostError, PlatformInfo};
use crate::memory::{host_area, PAGE_SIZE};

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

/// Stage marker: updates issued, not yet measured.
#[derive(Debug)]
pub struct Updating;

/// Stage marker: LAUNCH_MEASURE done (the launch-secret window).
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    measurement: [u8; 32],
    mnonce: [u8; 16],
}

/// An SEV / SEV-ES launch in stage `S`.
#[derive(Debug)]
pub struct SevLaunch<S> {
    host: Host,
    spec: LaunchSpec,
    sev: SevSpec,
    guest: FirmwareGuest,
    platform: PlatformInfo,
    digest: SevLaunchDigest,
    secret_area: Option<u64>,
    stage: S,
}

/// An SEV-SNP launch in stage `S`.
#[derive(Debug)]
pub struct SnpLaunch<S> {
    host: Host,
    spec: LaunchSpec,
    snp: SnpSpec,
    guest: FirmwareGuest,
    platform: PlatformInfo,
    _stage: S,
}

/// A launched guest: LAUNCH_FINISH done.
#[derive(Debug)]
pub struct Launched {
    /// The AMD-SP and guest memory.
    pub host: Host,
    /// The guest's firmware context.
    pub guest: FirmwareGuest,
    /// PLATFORM_STATUS at launch.
    pub platform: PlatformInfo,
    /// The VMM's launch log.
    pub log: LaunchLog,
    /// The launch digest the VMM expects the firmware computed.
    pub digest: Vec<u8>,
    /// SEV / SEV-ES: the LAUNCH_MEASURE blob (measurement ‖ mnonce).
    pub measure_blob: Option<[u8; LAUNCH_MEASUREMENT_LEN]>,
    /// The firmware image's SNP secrets page (SNP only).
    pub secrets_gpa: Option<u64>,
    /// The guest's own side: its principal, attached at LAUNCH_FINISH (the
    /// only holder of the guest's view of its memory).
    pub simulated_guest: SimulatedGuest,
}

/// Finds a free ASID: ES and SNP guests take the low range, SEV guests the
/// high one; the firmware decides which it accepts (INVALID_ASID /
/// ASID_OWNED: try the next; DF_FLUSH_REQUIRED: flush and retry).
fn activate_any(
    host: &mut Host,
    mut activate: impl FnMut(&mut Host, u32) -> Result<FirmwareStatus, HostError>,
    command: &'static str,
) -> Result<u32, LaunchError> {
    let mut last = FirmwareStatus::INVALID_ASID;
    for asid in 1..=1024u32 {
        let mut status = activate(host, asid)?;
        if status == FirmwareStatus::DF_FLUSH_REQUIRED {
            let mut none = [0u8; 0];
            let flush = host.status(SevCommand::DfFlush.id(), &mut none)?;
            if flush != FirmwareStatus::SUCCESS {
                let flush = host.status(SnpCommand::SnpDfFlush.id(), &mut none)?;
                let _ = flush;
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

impl SevLaunch<Updating> {
    /// LAUNCH_START, ACTIVATE, the firmware image encrypted in place
    /// (LAUNCH_UPDATE_DATA over all of it), and the kernel hashes table when
    /// asked.
    pub fn start(mut host: Host, spec: LaunchSpec, sev: SevSpec) -> Result<Self, LaunchError> {
        check_vcpus(&spec)?;
        let es = sev.policy.es();
        let platform = host.bring_up(false)?;
        if es && !platform.sev_es {
            return Err(LaunchError::Input(
                "guest policy requires SEV-ES, but host SEV-ES support unavailable".into(),
            ));
        }
        let image = OvmfImage::parse(&spec.image).map_err(image_err)?;
        let secret_area = image
            .secret_area()
            .map_err(image_err)?
            .map(|a| u64::from(a.base));
        let hash_area = image.hash_table().map_err(image_err)?;
        let firmware_gpa = image.gpa();
        if host.memory().layout().firmware_gpa != Some(firmware_gpa) {
            return Err(LaunchError::Input(
                "guest memory was laid out for another firmware size".into(),
            ));
        }

        // LAUNCH_START.
        let mut start = LaunchStartBuffer::new_zeroed();
        start.handle = U32::new(sev.handle);
        start.policy = U32::new(sev.policy.raw());
        if let Some(s) = &sev.session {
            if s.dh_cert.len() > 4096 || s.session.len() > 4096 {
                return Err(LaunchError::Input(
                    "dh-cert-file or session-file is larger than a page".into(),
                ));
            }
            start.dh_cert_paddr = U64::new(host.put(host_area::GODH, &s.dh_cert)?);
            start.dh_cert_len = U32::new(s.dh_cert.len() as u32);
            start.session_paddr = U64::new(host.put(host_area::SESSION, &s.session)?);
            start.session_len = U32::new(s.session.len() as u32);
        }
        host.run(SevCommand::LaunchStart.id(), &mut start)?;
        let handle = start.handle.get();
        // KVM binds the ASID right after LAUNCH_START.
        let asid = activate_any(
            &mut host,
            |h, asid| {
                let mut b = ActivateBuffer {
                    handle: U32::new(handle),
                    asid: U32::new(asid),
                };
                h.status(SevCommand::Activate.id(), &mut b)
            },
            "ACTIVATE",
        )?;
        let guest = FirmwareGuest::Legacy {
            handle,
            asid,
            policy: sev.policy,
        };
        let mut launch = Self {
            host,
            spec,
            sev,
            guest,
            platform,
            digest: SevLaunchDigest::new(),
            secret_area,
            stage: Updating,
        };

        // The firmware, encrypted in place (pc_sysfw: sev_encrypt_flash).
        let image = std::mem::take(&mut launch.spec.image);
        let updated = launch.update_data("ovmf", firmware_gpa, &image);
        launch.spec.image = image;
        updated?;
        // The kernel hashes table (x86_load_linux with kernel-hashes=on).
        if let Some(hashes) = launch.spec.kernel_hashes {
            let area = hash_area.ok_or_else(|| {
                LaunchError::Image(
                    "SEV: kernel specified but guest firmware has no hashes table GUID".into(),
                )
            })?;
            let table = hashes.table_bytes();
            if area.base == 0 || (area.size as usize) < table.len() {
                return Err(LaunchError::Image(format!(
                    "SEV: guest firmware hashes table area is invalid (base={:#x} size={:#x})",
                    area.base, area.size
                )));
            }
            launch.update_data("kernel_hashes", u64::from(area.base), &table)?;
        }
        Ok(launch)
    }

    fn update_data(&mut self, region: &str, gpa: u64, data: &[u8]) -> Result<(), LaunchError> {
        let len = u32::try_from(data.len())
            .map_err(|_| LaunchError::Input(format!("{region} is too large")))?;
        self.host
            .memory_mut()
            .host_write(gpa, data)
            .map_err(HostError::from)?;
        let FirmwareGuest::Legacy { handle, .. } = self.guest else {
            unreachable!()
        };
        let mut b = LaunchUpdateBuffer::new_zeroed();
        b.handle = U32::new(handle);
        b.paddr = U64::new(gpa);
        b.len = U32::new(len);
        self.host.run(SevCommand::LaunchUpdateData.id(), &mut b)?;
        self.host
            .memory_mut()
            .set_private(gpa, u64::from(len), true);
        self.digest
            .update(region, Some(gpa), LogPageType::SevData, data);
        Ok(())
    }

    /// SEV-ES: LAUNCH_UPDATE_VMSA for every vCPU (boot vCPU first); then
    /// LAUNCH_MEASURE. The guest enters the launch-secret state.
    pub fn measure(mut self) -> Result<SevLaunch<Measured>, LaunchError> {
        let FirmwareGuest::Legacy { handle, .. } = self.guest else {
            unreachable!()
        };
        if self.sev.policy.es() {
            let fpu = if self.sev.legacy_vm_type {
                FpuState::Legacy
            } else {
                FpuState::Init2
            };
            let pages = reset_vmsas(&self.spec, false, fpu)?;
            for (i, page) in pages.iter().enumerate() {
                let paddr = self
                    .host
                    .put(host_area::VMSAS + i as u64 * PAGE_SIZE, page)?;
                let mut b = LaunchUpdateBuffer::new_zeroed();
                b.handle = U32::new(handle);
                b.paddr = U64::new(paddr);
                b.len = U32::new(PAGE_SIZE as u32);
                self.host.run(SevCommand::LaunchUpdateVmsa.id(), &mut b)?;
                self.digest
                    .update(&format!("vmsa[{i}]"), None, LogPageType::Vmsa, page);
            }
        }
        // LAUNCH_MEASURE: the length query first, as QEMU does.
        let mut b = LaunchMeasureBuffer::new_zeroed();
        b.handle = U32::new(handle);
        match self.host.status(SevCommand::LaunchMeasure.id(), &mut b)? {
            FirmwareStatus::INVALID_LENGTH | FirmwareStatus::SUCCESS => {}
            status => {
                return Err(HostError::Firmware {
                    command: "LAUNCH_MEASURE",
                    status,
                }
                .into())
            }
        }
        let len = b.len.get() as usize;
        if len != LAUNCH_MEASUREMENT_LEN {
            return Err(LaunchError::Input(format!(
                "LAUNCH_MEASURE wants {len} bytes, expected {LAUNCH_MEASUREMENT_LEN}"
            )));
        }
        b.paddr = U64::new(self.host.memory().layout().host(host_area::MEASURE));
        self.host.run(SevCommand::LaunchMeasure.id(), &mut b)?;
        let blob = self.host.get(host_area::MEASURE, LAUNCH_MEASUREMENT_LEN)?;
        let mut measurement = [0u8; 32];
        let mut mnonce = [0u8; 16];
        measurement.copy_from_slice(&blob[..32]);
        mnonce.copy_from_slice(&blob[32..48]);
        Ok(SevLaunch {
            host: self.host,
            spec: self.spec,
            sev: self.sev,
            guest: self.guest,
            platform: self.platform,
            digest: self.digest,
            secret_area: self.secret_area,
            stage: Measured {
                measurement,
                mnonce,
            },
        })
    }
}

impl<S> SevLaunch<S> {
    /// The guest's firmware context.
    pub fn guest(&self) -> FirmwareGuest {
        self.guest
    }

    /// PLATFORM_STATUS at launch.
    pub fn platform(&self) -> PlatformInfo {
        self.platform
    }

    /// The VMM's launch log so far.
    pub fn log(&self) -> &LaunchLog {
        self.digest.log()
    }

    /// The AMD-SP and guest memory.
    pub fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    /// OVMF's secret area (`sev-inject-launch-secret`'s default GPA).
    pub fn secret_area(&self) -> Option<u64> {
        self.secret_area
    }
}

impl SevLaunch<Measured> {
    /// The LAUNCH_MEASURE blob: measurement ‖ mnonce (what
    /// `query-sev-launch-measure` returns, base64-encoded).
    pub fn measure_blob(&self) -> [u8; LAUNCH_MEASUREMENT_LEN] {
        let mut out = [0u8; LAUNCH_MEASUREMENT_LEN];
        out[..32].copy_from_slice(&self.stage.measurement);
        out[32..].copy_from_slice(&self.stage.mnonce);
        out
    }

    /// LAUNCH_SECRET: the owner's packet header and encrypted secret into the
    /// guest at `gpa` (default: OVMF's secret area).
    pub fn inject_secret(
        &mut self,
        header: &[u8],
        secret: &[u8],
        gpa: Option<u64>,
    ) -> Result<(), LaunchError> {
        let Some(gpa) = gpa.or(self.secret_area) else {
            return Err(LaunchError::Input(
                "SEV: no secret area found in OVMF, gpa must be specified.".into(),
            ));
        };
        if header.len() != PACKET_HEADER_LEN {
            return Err(LaunchError::Input(format!(
                "SEV: packet header is {} bytes, expected {PACKET_HEADER_LEN}",
                header.len()
            )));
        }
        if secret.is_empty() || secret.len() as u64 > host_area::SECRET_PAYLOAD_MAX {
            return Err(LaunchError::Input(format!(
                "SEV: secret of {} bytes: expected 1 to {}",
                secret.len(),
                host_area::SECRET_PAYLOAD_MAX
            )));
        }
        let len = secret.len() as u64;
        if !self.host.memory().layout().is_guest(gpa, len) {
            return Err(LaunchError::Input(format!(
                "SEV: secret destination {gpa:#x}+{len:#x} is not guest RAM"
            )));
        }
        let FirmwareGuest::Legacy { handle, .. } = self.guest else {
            unreachable!()
        };
        let mut t = TransportBuffer::new_zeroed();
        t.handle = U32::new(handle);
        t.hdr_paddr = U64::new(self.host.put(host_area::SECRET_HEADER, header)?);
        t.hdr_len = U32::new(header.len() as u32);
        t.guest_paddr = U64::new(gpa);
        t.guest_len = U32::new(secret.len() as u32);
        t.trans_paddr = U64::new(self.host.put(host_area::SECRET_PAYLOAD, secret)?);
        t.trans_len = U32::new(secret.len() as u32);
        self.host.run(SevCommand::LaunchSecret.id(), &mut t)?;
        self.host.memory_mut().set_private(gpa, len, true);
        Ok(())
    }

    /// LAUNCH_FINISH (at the first `cont`).
    pub fn finish(mut self) -> Result<Launched, LaunchError> {
        let FirmwareGuest::Legacy { handle, .. } = self.guest else {
            unreachable!()
        };
        let mut b = HandleBuffer {
            handle: U32::new(handle),
        };
        self.host.run(SevCommand::LaunchFinish.id(), &mut b)?;
        let measure_blob = Some(self.measure_blob());
        let (digest, log) = self.digest.finish();
        let simulated_guest = SimulatedGuest::attach(&mut self.host, self.guest, None)?;
        Ok(Launched {
            host: self.host,
            guest: self.guest,
            platform: self.platform,
            log,
            digest: digest.to_vec(),
            measure_blob,
            secrets_gpa: None,
            simulated_guest,
        })
    }
}

impl SnpLaunch<Updating> {
    /// The guest context (a firmware page), SNP_LAUNCH_START with the
    /// policy and GOSVW, SNP_ACTIVATE; the firmware image is loaded and
    /// queued for SNP_LAUNCH_UPDATE as QEMU queues it.
    pub fn start(mut host: Host, spec: LaunchSpec, snp: SnpSpec) -> Result<Self, LaunchError> {
        check_vcpus(&spec)?;
        let platform = host.bring_up(true)?;
        let image = OvmfImage::parse(&spec.image).map_err(image_err)?;
        if image.metadata().is_none() {
            return Err(LaunchError::Image(
                "Failed to locate SEV metadata header".into(),
            ));
        }
        let firmware_gpa = image.gpa();
        if host.memory().layout().firmware_gpa != Some(firmware_gpa) {
            return Err(LaunchError::Input(
                "guest memory was laid out for another firmware size".into(),
            ));
        }
        let gctx = host.memory().layout().host(host_area::GCTX);
        host.make_firmware(gctx)?;
        let mut b = SnpPaddrBuffer {
            paddr: U64::new(gctx),
        };
        host.run(SnpCommand::SnpGctxCreate.id(), &mut b)?;
        let mut start = SnpLaunchStartBuffer::new_zeroed();
        start.gctx_paddr = U64::new(gctx);
        start.policy = U64::new(snp.policy.raw());
        start.gosvw = snp.gosvw;
        host.run(SnpCommand::SnpLaunchStart.id(), &mut start)?;
        let asid = activate_any(
            &mut host,
            |h, asid| {
                let mut b = SnpActivateBuffer {
                    gctx_paddr: U64::new(gctx),
                    asid: U32::new(asid),
                };
                h.status(SnpCommand::SnpActivate.id(), &mut b)
            },
            "SNP_ACTIVATE",
        )?;
        let guest = FirmwareGuest::Snp {
            gctx_paddr: gctx,
            asid,
            policy: snp.policy,
        };
        // Loaded now (pc_sysfw), measured at the first `cont` (QEMU queues
        // the update until then).
        host.memory_mut()
            .host_write(firmware_gpa, &spec.image)
            .map_err(HostError::from)?;
        Ok(Self {
            host,
            spec,
            snp,
            guest,
            platform,
            _stage: Updating,
        })
    }

    /// The guest's firmware context.
    pub fn guest(&self) -> FirmwareGuest {
        self.guest
    }

    /// PLATFORM_STATUS at launch.
    pub fn platform(&self) -> PlatformInfo {
        self.platform
    }

    /// The AMD-SP and guest memory.
    pub fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    /// At the first `cont`: the queued pages, the SEV metadata pages (ZERO,
    /// SECRETS, CPUID, kernel hashes), one VMSA per vCPU (boot vCPU first,
    /// as KVM issues them inside SNP_LAUNCH_FINISH), then SNP_LAUNCH_FINISH
    /// with the ID block and host data.
    pub fn finish(mut self) -> Result<Launched, LaunchError> {
        let FirmwareGuest::Snp {
            gctx_paddr, asid, ..
        } = self.guest
        else {
            unreachable!()
        };
        let mut digest = SnpLaunchDigest::new();
        // The firmware pages loaded at start, then the metadata pages.
        let image_bytes = std::mem::take(&mut self.spec.image);
        let measured = OvmfImage::parse(&image_bytes)
            .map_err(image_err)
            .and_then(|image| {
                self.update_pages(
                    &mut digest,
                    "ovmf",
                    image.gpa(),
                    image.data(),
                    PageType::Normal,
                )?;
                self.metadata_pages(&mut digest, &image)
            });
        self.spec.image = image_bytes;
        let secrets_gpa = measured?;
        // VMSAs (KVM does these inside KVM_SEV_SNP_LAUNCH_FINISH).
        let pages = reset_vmsas(&self.spec, true, FpuState::Init2)?;
        for (i, page) in pages.iter().enumerate() {
            let spa = self
                .host
                .put(host_area::VMSAS + i as u64 * PAGE_SIZE, page)?;
            self.host.make_pre_guest(spa, VMSA_GPA, asid)?;
            self.launch_update(spa, PageType::Vmsa)?;
            digest.vmsa_page(&format!("vmsa[{i}]"), page);
        }
        // SNP_LAUNCH_FINISH.
        let mut fin = SnpLaunchFinishBuffer::new_zeroed();
        fin.gctx_paddr = U64::new(gctx_paddr);
        fin.host_data = self.snp.host_data;
        let mut flags = 0;
        if let Some(id) = &self.snp.id {
            fin.id_block_paddr = U64::new(self.host.put(host_area::ID_BLOCK, &id.block)?);
            fin.id_auth_paddr = U64::new(self.host.put(host_area::ID_AUTH, &id.auth[..])?);
            flags |= SNP_LAUNCH_FINISH_ID_BLOCK_EN;
            if id.author_key {
                flags |= SNP_LAUNCH_FINISH_AUTH_KEY_EN;
            }
        }
        if self.snp.vcek_disabled {
            flags |= SNP_LAUNCH_FINISH_VCEK_DISABLED;
        }
        fin.flags = U64::new(flags);
        self.host.run(SnpCommand::SnpLaunchFinish.id(), &mut fin)?;
        let (digest, log) = digest.finish();
        let simulated_guest = SimulatedGuest::attach(&mut self.host, self.guest, secrets_gpa)?;
        Ok(Launched {
            host: self.host,
            guest: self.guest,
            platform: self.platform,
            log,
            digest: digest.to_vec(),
            measure_blob: None,
            secrets_gpa,
            simulated_guest,
        })
    }

    /// The SEV metadata pages, in file order: SEC_MEM and SVSM_CAA as ZERO,
    /// SECRETS, CPUID (the page built for the vCPU model), and the kernel
    /// hashes page (NORMAL with the table, else ZERO). Returns the secrets
    /// page's GPA.
    fn metadata_pages(
        &mut self,
        digest: &mut SnpLaunchDigest,
        image: &OvmfImage<'_>,
    ) -> Result<Option<u64>, LaunchError> {
        let metadata = image
            .metadata()
            .ok_or_else(|| LaunchError::Image("Failed to locate SEV metadata header".into()))?;
        let mut secrets_gpa = None;
        for (index, section) in metadata.sections.iter().enumerate() {
            let kind = section.kind().ok_or_else(|| {
                LaunchError::Image(format!(
                    "SEV metadata section {index} has unknown type {:#x}",
                    section.section_type
                ))
            })?;
            // The checks `sevkit measure` makes too, with the same message.
            section
                .check(index, kind)
                .map_err(|e| LaunchError::Image(e.to_string()))?;
            let gpa = u64::from(section.gpa);
            let size = u64::from(section.size);
            let zero = vec![0u8; size as usize];
            match kind {
                SectionKind::SnpSecMem | SectionKind::SvsmCaa => {
                    self.update_pages(digest, kind.name(), gpa, &zero, PageType::Zero)?;
                }
                SectionKind::SnpSecrets => {
                    secrets_gpa = Some(gpa);
                    self.update_pages(digest, kind.name(), gpa, &zero, PageType::Secrets)?;
                }
                SectionKind::Cpuid => {
                    let page = cpuid_page_for_signature(self.spec.vcpu_sig, self.spec.host_cpuid)
                        .map_err(|e| LaunchError::Input(format!("CPUID page: {e}")))?;
                    self.load(kind.name(), gpa, &page)?;
                    self.update_pages(digest, kind.name(), gpa, &page, PageType::Cpuid)?;
                }
                SectionKind::SnpKernelHashes => match self.spec.kernel_hashes {
                    None => {
                        self.update_pages(digest, kind.name(), gpa, &zero, PageType::Zero)?;
                    }
                    Some(hashes) => {
                        let area = image.hash_table().map_err(image_err)?.ok_or_else(|| {
                            LaunchError::Image(
                                "SEV: kernel specified but guest firmware has no hashes table GUID"
                                    .into(),
                            )
                        })?;
                        let page = hashes
                            .page((area.base & 0xfff) as usize)
                            .filter(|_| size == PAGE_SIZE)
                            .ok_or_else(|| {
                                LaunchError::Image(format!(
                                    "SEV: guest firmware hashes table area is invalid (base={:#x} size={:#x})",
                                    area.base, area.size
                                ))
                            })?;
                        self.load(kind.name(), gpa, &page)?;
                        self.update_pages(digest, kind.name(), gpa, &page, PageType::Normal)?;
                    }
                },
            }
        }
        Ok(secrets_gpa)
    }

    fn launch_update(&mut self, spa: u64, page_type: PageType) -> Result<(), LaunchError> {
        let FirmwareGuest::Snp { gctx_paddr, .. } = self.guest else {
            unreachable!()
        };
        let mut b = SnpLaunchUpdateBuffer::new_zeroed();
        b.gctx_paddr = U64::new(gctx_paddr);
        b.page_paddr = U64::new(spa);
        b.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
            false,
            page_type.as_u8(),
            false,
        ));
        self.host.run(SnpCommand::SnpLaunchUpdate.id(), &mut b)?;
        Ok(())
    }

    /// Writes a page the VMM builds (CPUID, kernel hashes) into guest
    /// memory before it is launched.
    fn load(&mut self, region: &str, gpa: u64, data: &[u8]) -> Result<(), LaunchError> {
        self.check_guest_range(region, gpa, data.len())?;
        self.host
            .memory_mut()
            .host_write(gpa, data)
            .map_err(HostError::from)?;
        Ok(())
    }

    fn check_guest_range(&self, region: &str, gpa: u64, len: usize) -> Result<(), LaunchError> {
        if self.host.memory().layout().is_guest(gpa, len as u64) {
            Ok(())
        } else {
            Err(LaunchError::Image(format!(
                "{region} at {gpa:#x}+{len:#x} is outside guest memory"
            )))
        }
    }

    /// Assigns each page of `gpa..gpa + data.len()` to the guest
    /// (KVM_SET_MEMORY_ATTRIBUTES private + RMPUPDATE) and
    /// SNP_LAUNCH_UPDATEs it; `data` is what those pages hold (already in
    /// memory for NORMAL and CPUID pages), for the VMM's launch log.
    fn update_pages(
        &mut self,
        digest: &mut SnpLaunchDigest,
        region: &str,
        gpa: u64,
        data: &[u8],
        page_type: PageType,
    ) -> Result<(), LaunchError> {
        let FirmwareGuest::Snp { asid, .. } = self.guest else {
            unreachable!()
        };
        self.check_guest_range(region, gpa, data.len())?;
        self.host
            .memory_mut()
            .set_private(gpa, data.len() as u64, true);
        for offset in (0..data.len() as u64).step_by(PAGE_SIZE as usize) {
            let page_gpa = gpa + offset;
            self.host.make_pre_guest(page_gpa, page_gpa, asid)?;
            self.launch_update(page_gpa, page_type)?;
        }
        match page_type {
            PageType::Normal => digest.normal_pages(region, gpa, data),
            other => digest.empty_pages(region, other, gpa, data.len() as u64 / PAGE_SIZE),
        }
        Ok(())
    }
}
