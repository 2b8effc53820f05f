//! The SEV-SNP launch: SNP_GCTX_CREATE .. SNP_LAUNCH_FINISH.

use sev_abi::commands::{
    SnpActivateBuffer, SnpCommand, SnpLaunchFinishBuffer, SnpLaunchStartBuffer,
    SnpLaunchUpdateBuffer, SnpPaddrBuffer, SNP_LAUNCH_FINISH_AUTH_KEY_EN,
    SNP_LAUNCH_FINISH_ID_BLOCK_EN, SNP_LAUNCH_FINISH_VCEK_DISABLED,
};
use sev_abi::host_ops::{RMP_ASSIGNED, RMP_IMMUTABLE, RMP_PAGE_2M};
use sev_abi::snp_launch::PageType;
use sev_measure::snp::{SnpDigestBuilder, VMSA_GPA};
use sev_measure::{FpuState, OvmfImage, SectionKind};
use zerocopy::little_endian::{U32, U64};
use zerocopy::FromZeros;

use super::{
    activate_any, check_vcpus, image_err, reset_vmsas, LaunchError, LaunchSpec, Launched,
    SnpGuestContext, SnpSpec, UpdatePageSize, Updating,
};
use crate::guest::{FirmwareGuest, SimulatedGuest};
use crate::host::{Host, HostError, PlatformStatus};
use crate::machine::cpuid::cpuid_page_for_signature;
use crate::machine::memory::{host_area, PAGE_SIZE};

/// An SEV-SNP launch in stage `S`.
#[derive(Debug)]
pub struct SnpLaunch<S> {
    host: Host,
    spec: LaunchSpec,
    snp: SnpSpec,
    guest: SnpGuestContext,
    platform: PlatformStatus,
    /// Regions loaded since the start, measured at the finish in order.
    queued: Vec<QueuedRegion>,
    _stage: S,
}

/// A region [`SnpLaunch::queue_region`] loaded: measured at the finish from
/// what guest memory holds then.
#[derive(Debug, Clone)]
struct QueuedRegion {
    region: String,
    gpa: u64,
    len: u64,
    page_size: UpdatePageSize,
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
        start.policy = snp.policy;
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
            true,
        )?;
        let guest = SnpGuestContext {
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
            queued: Vec::new(),
            _stage: Updating,
        })
    }

    /// The guest's firmware context.
    pub fn guest(&self) -> FirmwareGuest {
        self.guest.into()
    }

    /// The guest's context page, ASID and policy.
    pub fn context(&self) -> SnpGuestContext {
        self.guest
    }

    /// Loads `data` at `gpa` and queues it for SNP_LAUNCH_UPDATE as NORMAL
    /// pages, as QEMU queues every region it loads before the first `cont`:
    /// at [`Self::finish`] the firmware image goes first, then these
    /// regions in the order they were queued (each measured from what guest
    /// memory holds then), then the SEV metadata pages and the VMSAs. A VMM
    /// that loads more than the firmware (a second image, test data) queues
    /// it here; `page_size` says in which pages it is assigned and measured.
    ///
    /// # Errors
    /// `gpa` or the length is not a multiple of the page size, the region is
    /// empty, or it is not guest memory.
    pub fn queue_region(
        &mut self,
        region: &str,
        gpa: u64,
        data: &[u8],
        page_size: UpdatePageSize,
    ) -> Result<(), LaunchError> {
        let len = data.len() as u64;
        let size = page_size.bytes();
        if len == 0 || !len.is_multiple_of(size) || !gpa.is_multiple_of(size) {
            return Err(LaunchError::Input(format!(
                "{region} at {gpa:#x}+{len:#x}: SNP measures whole pages; address and length \
                 must be non-zero multiples of {size:#x}"
            )));
        }
        self.load(region, gpa, data)?;
        self.queued.push(QueuedRegion {
            region: region.to_owned(),
            gpa,
            len,
            page_size,
        });
        Ok(())
    }

    /// PLATFORM_STATUS at launch.
    pub fn platform(&self) -> PlatformStatus {
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
        let SnpGuestContext {
            gctx_paddr, asid, ..
        } = self.guest;
        let mut digest = SnpDigestBuilder::new();
        // The firmware pages loaded at start, the queued regions, then the
        // metadata pages.
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
                for queued in std::mem::take(&mut self.queued) {
                    self.update_queued(&mut digest, &queued)?;
                }
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
            self.launch_update(spa, PageType::Vmsa, UpdatePageSize::Small)?;
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
        let guest = FirmwareGuest::from(self.guest);
        let simulated_guest = SimulatedGuest::attach(&mut self.host, guest, secrets_gpa)?;
        Ok(Launched {
            host: self.host,
            guest,
            platform: self.platform,
            log,
            digest: digest.into(),
            measure_blob: None,
            secrets_gpa,
            guest_actions: Box::new(simulated_guest),
        })
    }

    /// The SEV metadata pages, in file order: SEC_MEM and SVSM_CAA as ZERO,
    /// SECRETS, CPUID (the page built for the vCPU model), and the kernel
    /// hashes page (NORMAL with the table, else ZERO). Returns the secrets
    /// page's GPA.
    fn metadata_pages(
        &mut self,
        digest: &mut SnpDigestBuilder,
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

    fn launch_update(
        &mut self,
        spa: u64,
        page_type: PageType,
        page_size: UpdatePageSize,
    ) -> Result<(), LaunchError> {
        let mut b = SnpLaunchUpdateBuffer::new_zeroed();
        b.gctx_paddr = U64::new(self.guest.gctx_paddr);
        b.page_paddr = U64::new(spa);
        b.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
            page_size == UpdatePageSize::Large,
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
        digest: &mut SnpDigestBuilder,
        region: &str,
        gpa: u64,
        data: &[u8],
        page_type: PageType,
    ) -> Result<(), LaunchError> {
        let asid = self.guest.asid;
        self.check_guest_range(region, gpa, data.len())?;
        self.host
            .memory_mut()
            .set_private(gpa, data.len() as u64, true);
        for offset in (0..data.len() as u64).step_by(PAGE_SIZE as usize) {
            let page_gpa = gpa + offset;
            self.host.make_pre_guest(page_gpa, page_gpa, asid)?;
            self.launch_update(page_gpa, page_type, UpdatePageSize::Small)?;
        }
        match page_type {
            PageType::Normal => digest.normal_pages(region, gpa, data),
            other => digest.empty_pages(region, other, gpa, data.len() as u64 / PAGE_SIZE),
        }
        Ok(())
    }

    /// Measures a queued region page by page in its page size: what guest
    /// memory holds is read (plaintext until the update encrypts it in
    /// place) for the VMM's launch log, then the page is assigned to the
    /// guest and SNP_LAUNCH_UPDATEd as NORMAL.
    fn update_queued(
        &mut self,
        digest: &mut SnpDigestBuilder,
        queued: &QueuedRegion,
    ) -> Result<(), LaunchError> {
        let QueuedRegion {
            region,
            gpa,
            len,
            page_size,
        } = queued;
        let size = page_size.bytes();
        let mut page = vec![0u8; size as usize];
        for offset in (0..*len).step_by(size as usize) {
            let page_gpa = gpa + offset;
            self.host
                .memory()
                .host_read(page_gpa, &mut page)
                .map_err(HostError::from)?;
            match page_size {
                UpdatePageSize::Small => {
                    self.update_pages(digest, region, page_gpa, &page, PageType::Normal)?;
                }
                UpdatePageSize::Large => {
                    self.host.memory_mut().set_private(page_gpa, size, true);
                    self.host.rmp_update(
                        page_gpa,
                        page_gpa,
                        self.guest.asid,
                        RMP_ASSIGNED | RMP_IMMUTABLE | RMP_PAGE_2M,
                    )?;
                    self.launch_update(page_gpa, PageType::Normal, UpdatePageSize::Large)?;
                    digest.normal_pages(region, page_gpa, &page);
                }
            }
        }
        Ok(())
    }
}
