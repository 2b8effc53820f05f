//! The SEV / SEV-ES launch: LAUNCH_START .. LAUNCH_MEASURE, the launch-secret
//! window, LAUNCH_FINISH.

use sev_abi::commands::{
    ActivateBuffer, HandleBuffer, LaunchMeasureBuffer, LaunchStartBuffer, LaunchUpdateBuffer,
    SevCommand, TransportBuffer,
};
use sev_abi::session::{LaunchMeasurement, LAUNCH_MEASUREMENT_LEN, PACKET_HEADER_LEN};
use sev_abi::status::FirmwareStatus;
use sev_measure::log::LogPageType;
use sev_measure::sev::SevDigestBuilder;
use sev_measure::{FpuState, LaunchLog, OvmfImage};
use zerocopy::little_endian::{U32, U64};
use zerocopy::FromZeros;

use super::{
    activate_any, check_vcpus, image_err, reset_vmsas, LaunchError, LaunchSpec, Launched, Measured,
    SevGuestHandle, SevSpec, Updating,
};
use crate::guest::{FirmwareGuest, SimulatedGuest};
use crate::host::{Host, HostError, PlatformStatus};
use crate::machine::memory::{host_area, PAGE_SIZE};

/// An SEV / SEV-ES launch in stage `S`.
#[derive(Debug)]
pub struct SevLaunch<S> {
    host: Host,
    spec: LaunchSpec,
    sev: SevSpec,
    guest: SevGuestHandle,
    platform: PlatformStatus,
    digest: SevDigestBuilder,
    secret_area: Option<u64>,
    stage: S,
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
        start.policy = sev.policy;
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
            false,
        )?;
        let guest = SevGuestHandle {
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
            digest: SevDigestBuilder::new(),
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

    /// LAUNCH_UPDATE_DATA of a region: `data` is loaded at `gpa`, encrypted
    /// in place and measured, and the VMM's launch log records it under
    /// `region`. The launch does this for the firmware image and the kernel
    /// hashes table; a VMM that loads more guest memory before the
    /// measurement (a second image, test data) does it here, in the order
    /// the owner's prediction expects.
    ///
    /// # Errors
    /// The range is not guest memory, longer than 4 GiB, or the AMD-SP
    /// refused the update (its status names why).
    pub fn update_data(&mut self, region: &str, gpa: u64, data: &[u8]) -> Result<(), LaunchError> {
        let len = u32::try_from(data.len()).map_err(|_| {
            LaunchError::Input(format!(
                "{region} is {} bytes: LAUNCH_UPDATE_DATA takes less than 4 GiB at a time",
                data.len()
            ))
        })?;
        self.host
            .memory_mut()
            .host_write(gpa, data)
            .map_err(HostError::from)?;
        let mut b = LaunchUpdateBuffer::new_zeroed();
        b.handle = U32::new(self.guest.handle);
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
        let handle = self.guest.handle;
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
        let blob = LaunchMeasurement::from_bytes(&blob)
            .map_err(|e| LaunchError::Input(format!("LAUNCH_MEASURE output: {e}")))?;
        Ok(SevLaunch {
            host: self.host,
            spec: self.spec,
            sev: self.sev,
            guest: self.guest,
            platform: self.platform,
            digest: self.digest,
            secret_area: self.secret_area,
            stage: Measured { blob },
        })
    }
}

impl<S> SevLaunch<S> {
    /// The guest's firmware context.
    pub fn guest(&self) -> FirmwareGuest {
        self.guest.into()
    }

    /// The guest's handle, ASID and policy.
    pub fn handle(&self) -> SevGuestHandle {
        self.guest
    }

    /// PLATFORM_STATUS at launch.
    pub fn platform(&self) -> PlatformStatus {
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
    pub fn measure_blob(&self) -> LaunchMeasurement {
        self.stage.blob
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
        let mut t = TransportBuffer::new_zeroed();
        t.handle = U32::new(self.guest.handle);
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
        let mut b = HandleBuffer {
            handle: U32::new(self.guest.handle),
        };
        self.host.run(SevCommand::LaunchFinish.id(), &mut b)?;
        let measure_blob = Some(self.measure_blob());
        let (digest, log) = self.digest.finish();
        let guest = FirmwareGuest::from(self.guest);
        let simulated_guest = SimulatedGuest::attach(&mut self.host, guest, None)?;
        Ok(Launched {
            host: self.host,
            guest,
            platform: self.platform,
            log,
            digest: digest.into(),
            measure_blob,
            secrets_gpa: None,
            guest_actions: Box::new(simulated_guest),
        })
    }
}
