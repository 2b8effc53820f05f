//! A launched VM as management software sees it: QEMU's SEV state
//! (`launch-update`, `launch-secret`, `running`), the run state
//! (`prelaunch` under `-S`, `running`, `paused`), and the operations QMP
//! exposes, each with QEMU's error text.
//!
//! SEV / SEV-ES guests are measured at creation (QEMU does it when machine
//! init is done) and wait in `launch-secret` for secrets until the first
//! `cont`, which runs LAUNCH_FINISH. SNP guests stay in `launch-update`
//! until the first `cont`, which issues every queued SNP_LAUNCH_UPDATE and
//! SNP_LAUNCH_FINISH. Without `-S` the first `cont` happens at creation.
//!
//! The VMM does not run vCPUs (the model has no guest code to execute);
//! where a guest would act (asking for an SNP report, reading an injected
//! secret) [`Vm::guest_report`] and [`Vm::guest_read`] play its part.

use sev_abi::commands::{AttestationBuffer, SevCommand};
use sev_abi::session::LaunchMeasurement;
use sev_abi::session::LEGACY_ATTESTATION_REPORT_LEN;
use sev_measure::LaunchLog;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use crate::exits::certs::provider::CertsProvider;
use crate::guest::FirmwareGuest;
use crate::guest::GuestReport;
use crate::host::{Host, HostError, PlatformCertificates, PlatformStatus};
use crate::launch::{LaunchError, Launched, Measured, SevLaunch, SnpLaunch, Updating};
use crate::machine::memory::host_area;
use crate::qemu::b64;
use crate::qemu::qapi::qapi_enum;

qapi_enum! {
    /// QEMU's SEV state of the guest (QAPI `SevState`, as `query-sev`
    /// reports it). This VMM launches but does not migrate: the migration
    /// states are never reached.
    pub enum SevState {
        /// No launch context yet.
        Uninit = "uninit",
        /// LAUNCH_START done, updates issued (SNP: queued), not measured.
        LaunchUpdate = "launch-update",
        /// Measured; secrets may be injected.
        LaunchSecret = "launch-secret",
        /// LAUNCH_FINISH done.
        Running = "running",
        /// Outgoing migration.
        SendUpdate = "send-update",
        /// Incoming migration.
        ReceiveUpdate = "receive-update",
    }
}

impl SevState {
    /// QEMU's numeric value (`SEV_STATE_*`), which some messages print.
    pub fn number(self) -> u32 {
        match self {
            Self::Uninit => 0,
            Self::LaunchUpdate => 1,
            Self::LaunchSecret => 2,
            Self::Running => 3,
            Self::SendUpdate => 4,
            Self::ReceiveUpdate => 5,
        }
    }
}

qapi_enum! {
    /// QEMU's run state (QAPI `RunState`, as `query-status` reports it).
    /// This VMM's VMs are `prelaunch` (created with `-S`), `running`,
    /// `paused` (by `stop`) or `shutdown` (after `quit`); the other states
    /// belong to features it does not have.
    pub enum RunState {
        /// QEMU is running on a debugger.
        Debug = "debug",
        /// Paused waiting for an incoming migration.
        Inmigrate = "inmigrate",
        /// An internal error prevents further guest execution.
        InternalError = "internal-error",
        /// The last I/O failed and the device pauses on I/O errors.
        IoError = "io-error",
        /// Paused by `stop`.
        Paused = "paused",
        /// Paused after a successful migration.
        Postmigrate = "postmigrate",
        /// Started with `-S`, never run.
        Prelaunch = "prelaunch",
        /// Paused to finish a migration.
        FinishMigrate = "finish-migrate",
        /// Paused to restore the VM state.
        RestoreVm = "restore-vm",
        /// Running.
        Running = "running",
        /// Paused to save the VM state.
        SaveVm = "save-vm",
        /// Shut down (`quit` was requested; QEMU: with `-no-shutdown`).
        Shutdown = "shutdown",
        /// Suspended (ACPI S3).
        Suspended = "suspended",
        /// Paused by the watchdog.
        Watchdog = "watchdog",
        /// Paused after a guest panic.
        GuestPanicked = "guest-panicked",
        /// Paused under COLO.
        Colo = "colo",
    }
}

/// An operation refused; `desc` is QEMU's text where QEMU has one (QMP
/// reports it as a GenericError).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{desc}")]
pub struct VmError {
    /// The message.
    pub desc: String,
}

impl VmError {
    fn new(desc: impl Into<String>) -> Self {
        Self { desc: desc.into() }
    }
}

impl From<HostError> for VmError {
    fn from(e: HostError) -> Self {
        Self::new(e.to_string())
    }
}

impl From<LaunchError> for VmError {
    fn from(e: LaunchError) -> Self {
        Self::new(e.to_string())
    }
}

/// What `query-sev` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevStatus {
    /// PLATFORM_STATUS at launch.
    pub platform: PlatformStatus,
    /// The SEV state.
    pub state: SevState,
    /// The guest.
    pub guest: FirmwareGuest,
}

/// What `query-sev-capabilities` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// PDH, PEK ‖ OCA ‖ CEK and the chip id.
    pub certificates: PlatformCertificates,
    /// C-bit position.
    pub cbitpos: u32,
    /// Reduced physical address bits.
    pub reduced_phys_bits: u32,
}

enum Stage {
    SevSecret(Box<SevLaunch<Measured>>),
    SnpUpdate(Box<SnpLaunch<Updating>>),
    Running(Box<Launched>),
    /// A launch step failed; the VM is dead (QEMU exits here).
    Failed(String),
    /// Between two stages (only seen if a step panicked).
    Moving,
}

/// A VM after its launch started.
pub struct Vm {
    stage: Stage,
    run_state: RunState,
    guest: FirmwareGuest,
    platform: PlatformStatus,
    cbitpos: u32,
    reduced_phys_bits: u32,
    measure_blob: Option<LaunchMeasurement>,
    certs: CertsProvider,
}

impl core::fmt::Debug for Vm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vm")
            .field("state", &self.sev_state())
            .field("run_state", &self.run_state)
            .field("guest", &self.guest)
            .finish_non_exhaustive()
    }
}

impl Vm {
    /// A VM whose SEV / SEV-ES launch was started: measures it (QEMU's
    /// machine-init-done step), then waits in `launch-secret`.
    pub fn from_sev(
        launch: SevLaunch<Updating>,
        cbitpos: u32,
        reduced_phys_bits: u32,
    ) -> Result<Self, LaunchError> {
        let guest = launch.guest();
        let platform = launch.platform();
        let measured = launch.measure()?;
        let measure_blob = Some(measured.measure_blob());
        Ok(Self {
            stage: Stage::SevSecret(Box::new(measured)),
            run_state: RunState::Prelaunch,
            guest,
            platform,
            cbitpos,
            reduced_phys_bits,
            measure_blob,
            certs: CertsProvider::new(None),
        })
    }

    /// A VM whose SNP launch was started (updates queued).
    pub fn from_snp(launch: SnpLaunch<Updating>, cbitpos: u32, reduced_phys_bits: u32) -> Self {
        Self {
            guest: launch.guest(),
            platform: launch.platform(),
            stage: Stage::SnpUpdate(Box::new(launch)),
            run_state: RunState::Prelaunch,
            cbitpos,
            reduced_phys_bits,
            measure_blob: None,
            certs: CertsProvider::new(None),
        }
    }

    /// Supplies SNP guests' certificates from `certs` (the object's
    /// `certs-path`).
    #[must_use]
    pub fn with_certs(mut self, certs: CertsProvider) -> Self {
        self.certs = certs;
        self
    }

    /// The SEV state.
    pub fn sev_state(&self) -> SevState {
        match &self.stage {
            Stage::SevSecret(_) => SevState::LaunchSecret,
            Stage::SnpUpdate(_) => SevState::LaunchUpdate,
            Stage::Running(_) => SevState::Running,
            Stage::Failed(_) | Stage::Moving => SevState::Uninit,
        }
    }

    /// The run state.
    pub fn run_state(&self) -> RunState {
        self.run_state
    }

    /// The guest's firmware context.
    pub fn guest(&self) -> FirmwareGuest {
        self.guest
    }

    /// `query-sev`.
    pub fn status(&self) -> SevStatus {
        SevStatus {
            platform: self.platform,
            state: self.sev_state(),
            guest: self.guest,
        }
    }

    /// `query-sev-launch-measure`: the LAUNCH_MEASURE blob, base64.
    pub fn launch_measure(&self) -> Result<String, VmError> {
        self.measure_blob
            .map(|b| b64::encode(b.as_bytes()))
            .ok_or_else(|| VmError::new("SEV launch measurement is not available"))
    }

    /// The launched guest, or QEMU-like refusal.
    fn launched(&mut self) -> Option<&mut Launched> {
        match &mut self.stage {
            Stage::Running(l) => Some(l),
            _ => None,
        }
    }

    /// The host, in whatever stage.
    pub fn host(&mut self) -> Result<&mut Host, VmError> {
        match &mut self.stage {
            Stage::SevSecret(l) => Ok(l.host()),
            Stage::SnpUpdate(l) => Ok(l.host()),
            Stage::Running(l) => Ok(&mut l.host),
            Stage::Failed(why) => Err(VmError::new(format!("the launch failed: {why}"))),
            Stage::Moving => Err(VmError::new("the VM is unusable")),
        }
    }

    /// `sev-inject-launch-secret`: base64 header and secret, optional GPA.
    pub fn inject_launch_secret(
        &mut self,
        header: &str,
        secret: &str,
        gpa: Option<u64>,
    ) -> Result<(), VmError> {
        let state = self.sev_state();
        let Stage::SevSecret(launch) = &mut self.stage else {
            return Err(VmError::new(format!(
                "SEV: Not in correct state. (LSECRET) {:x}",
                state.number()
            )));
        };
        // QEMU: g_base64_decode, refusing only what decodes to nothing.
        let header = b64::glib_decode(header.as_bytes());
        if header.is_empty() {
            return Err(VmError::new("SEV: Failed to decode sequence header"));
        }
        let secret = b64::glib_decode(secret.as_bytes());
        if secret.is_empty() {
            return Err(VmError::new("SEV: Failed to decode data"));
        }
        launch.inject_secret(&header, &secret, gpa)?;
        Ok(())
    }

    /// `query-sev-attestation-report` (legacy ATTESTATION): base64 report.
    pub fn attestation_report(&mut self, mnonce: &str) -> Result<String, VmError> {
        // QEMU: g_base64_decode, then the length check.
        let mnonce = b64::glib_decode(mnonce.as_bytes());
        if mnonce.len() != 16 {
            return Err(VmError::new(format!(
                "SEV: mnonce must be 16 bytes (got {})",
                mnonce.len()
            )));
        }
        let FirmwareGuest::Legacy { handle, .. } = self.guest else {
            return Err(VmError::new(
                "SEV-SNP guests do not support query-sev-attestation-report: the guest requests \
                 its own report (see x-sevkit-guest-report)",
            ));
        };
        let host = self.host()?;
        let mut b = AttestationBuffer::new_zeroed();
        b.handle = U32::new(handle);
        b.mnonce.copy_from_slice(&mnonce);
        b.paddr = U64::new(host.memory().layout().host(host_area::ATTESTATION));
        b.len = U32::new(LEGACY_ATTESTATION_REPORT_LEN as u32);
        host.run(SevCommand::Attestation.id(), &mut b)?;
        let report = host.get(host_area::ATTESTATION, b.len.get() as usize)?;
        Ok(b64::encode(&report))
    }

    /// `query-sev-capabilities`: PDH_CERT_EXPORT and GET_ID (with QEMU's
    /// length queries), the C-bit and reduced physical bits.
    pub fn capabilities(&mut self) -> Result<Capabilities, VmError> {
        let (cbitpos, reduced_phys_bits) = (self.cbitpos, self.reduced_phys_bits);
        let host = self.host()?;
        Ok(Capabilities {
            certificates: host.platform_certificates()?,
            cbitpos,
            reduced_phys_bits,
        })
    }

    /// `cont`: the first one finishes the launch.
    pub fn cont(&mut self) -> Result<(), VmError> {
        match std::mem::replace(&mut self.stage, Stage::Moving) {
            Stage::SevSecret(l) => self.after_finish(l.finish()),
            Stage::SnpUpdate(l) => self.after_finish(l.finish()),
            other @ Stage::Running(_) => {
                self.stage = other;
                self.run_state = RunState::Running;
                Ok(())
            }
            other => {
                let why = match &other {
                    Stage::Failed(why) => why.clone(),
                    _ => "unusable".into(),
                };
                self.stage = other;
                Err(VmError::new(format!("the launch failed: {why}")))
            }
        }
    }

    fn after_finish(&mut self, result: Result<Launched, LaunchError>) -> Result<(), VmError> {
        match result {
            Ok(launched) => {
                self.stage = Stage::Running(Box::new(launched));
                self.run_state = RunState::Running;
                Ok(())
            }
            Err(e) => {
                self.stage = Stage::Failed(e.to_string());
                Err(e.into())
            }
        }
    }

    /// `stop`.
    pub fn stop(&mut self) {
        if self.run_state == RunState::Running {
            self.run_state = RunState::Paused;
        }
    }

    /// `quit`.
    pub fn quit(&mut self) {
        self.run_state = RunState::Shutdown;
    }

    /// The VMM's launch log (complete once running; SEV: up to the measure).
    pub fn launch_log(&mut self) -> Result<LaunchLog, VmError> {
        match &self.stage {
            Stage::SevSecret(l) => Ok(l.log().clone()),
            Stage::Running(l) => Ok(l.log.clone()),
            Stage::SnpUpdate(_) => Err(VmError::new(
                "SEV-SNP launch log is not available before the launch finishes (cont)",
            )),
            Stage::Failed(why) => Err(VmError::new(format!("the launch failed: {why}"))),
            Stage::Moving => Err(VmError::new("the VM is unusable")),
        }
    }

    /// The launched guest's details (after `cont`).
    pub fn launched_guest(&mut self) -> Result<&mut Launched, VmError> {
        let state = self.sev_state();
        self.launched().ok_or_else(|| {
            VmError::new(format!(
                "the guest is not running (SEV state {})",
                state.as_str()
            ))
        })
    }

    /// The guest asks for an extended SNP report (see
    /// [`GuestActions::extended_report`](crate::guest::GuestActions::extended_report)):
    /// only once it runs.
    pub fn guest_report(
        &mut self,
        report_data: [u8; 64],
        certs_pages: Option<u64>,
    ) -> Result<GuestReport, VmError> {
        if !self.guest.is_snp() {
            return Err(VmError::new("guest requests need an SEV-SNP guest"));
        }
        let certs = self.certs.clone();
        let launched = self.launched_guest()?;
        launched
            .guest_actions
            .extended_report(&mut launched.host, &certs, report_data, certs_pages)
            .map_err(|e| VmError::new(e.to_string()))
    }

    /// What the guest reads at `gpa` (a private access: it sees its own
    /// plaintext), once it runs. The demo's guest uses it to read its
    /// injected secret.
    pub fn guest_read(&mut self, gpa: u64, len: usize) -> Result<Vec<u8>, VmError> {
        let launched = self.launched_guest()?;
        Ok(launched.guest_actions.read(&mut launched.host, gpa, len)?)
    }
}
