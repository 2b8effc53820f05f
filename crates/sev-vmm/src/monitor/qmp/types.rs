//! The QAPI types the server returns, with QEMU's member names.
//!
//! Each type derives serde with QEMU's wire names (so `serde_json` output is
//! what QEMU returns, member order aside) and converts to the server's own
//! JSON representation in QAPI schema order, which fixes the member order on
//! the wire to QEMU's.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::qemu::json::{Dict, Json};

/// QAPI `RunState` (qapi/run-state.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// QEMU is running on a debugger.
    Debug,
    /// Paused waiting for an incoming migration.
    Inmigrate,
    /// An internal error prevents further guest execution.
    InternalError,
    /// The last I/O failed and the device pauses on I/O errors.
    IoError,
    /// Paused by `stop`.
    Paused,
    /// Paused after a successful migration.
    Postmigrate,
    /// Started with `-S`, never run.
    Prelaunch,
    /// Paused to finish a migration.
    FinishMigrate,
    /// Paused to restore the VM state.
    RestoreVm,
    /// Running.
    Running,
    /// Paused to save the VM state.
    SaveVm,
    /// Shut down (with `-no-shutdown`).
    Shutdown,
    /// Suspended (ACPI S3).
    Suspended,
    /// Paused by the watchdog.
    Watchdog,
    /// Paused after a guest panic.
    GuestPanicked,
    /// Paused under COLO.
    Colo,
}

impl RunState {
    /// QEMU's name (`prelaunch`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Inmigrate => "inmigrate",
            Self::InternalError => "internal-error",
            Self::IoError => "io-error",
            Self::Paused => "paused",
            Self::Postmigrate => "postmigrate",
            Self::Prelaunch => "prelaunch",
            Self::FinishMigrate => "finish-migrate",
            Self::RestoreVm => "restore-vm",
            Self::Running => "running",
            Self::SaveVm => "save-vm",
            Self::Shutdown => "shutdown",
            Self::Suspended => "suspended",
            Self::Watchdog => "watchdog",
            Self::GuestPanicked => "guest-panicked",
            Self::Colo => "colo",
        }
    }
}

/// QAPI `StatusInfo`, the answer to `query-status`.
///
/// Current QEMU sends only `running` and `status`: the `singlestep` member
/// (deprecated in 8.1) has been removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Whether all vCPUs are runnable (QEMU: the state is `running`).
    pub running: bool,
    /// The run state.
    pub status: RunState,
}

impl StatusInfo {
    /// The status QEMU reports in `status`: `running` is true exactly in the
    /// `running` state.
    pub fn new(status: RunState) -> Self {
        Self {
            running: status == RunState::Running,
            status,
        }
    }

    pub(crate) fn to_json(self) -> Json {
        Json::Dict(
            Dict::new()
                .with("running", Json::Bool(self.running))
                .with("status", Json::str(self.status.as_str())),
        )
    }
}

/// QAPI `SevState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SevState {
    /// No launch context yet.
    Uninit,
    /// LAUNCH_START done, updates being issued.
    LaunchUpdate,
    /// Measured, secrets may be injected.
    LaunchSecret,
    /// LAUNCH_FINISH done.
    Running,
    /// Outgoing migration.
    SendUpdate,
    /// Incoming migration.
    ReceiveUpdate,
}

impl SevState {
    /// QEMU's name (`launch-secret`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uninit => "uninit",
            Self::LaunchUpdate => "launch-update",
            Self::LaunchSecret => "launch-secret",
            Self::Running => "running",
            Self::SendUpdate => "send-update",
            Self::ReceiveUpdate => "receive-update",
        }
    }
}

/// QAPI `SevGuestType`, the discriminator of [`SevInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SevGuestType {
    /// An `sev-guest` object (SEV or SEV-ES).
    Sev,
    /// An `sev-snp-guest` object.
    SevSnp,
}

impl SevGuestType {
    /// QEMU's name (`sev`, `sev-snp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sev => "sev",
            Self::SevSnp => "sev-snp",
        }
    }
}

/// QAPI `SevGuestInfo`: the `sev` branch of [`SevInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevGuestInfo {
    /// The guest policy.
    pub policy: u32,
    /// The firmware's guest handle.
    pub handle: u32,
}

/// QAPI `SevSnpGuestInfo`: the `sev-snp` branch of [`SevInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevSnpGuestInfo {
    /// The SNP guest policy.
    #[serde(rename = "snp-policy")]
    pub snp_policy: u64,
}

/// The variant part of [`SevInfo`], tagged by `sev-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "sev-type")]
pub enum SevGuestDetails {
    /// `"sev-type": "sev"`: `policy` and `handle`.
    #[serde(rename = "sev")]
    Sev(SevGuestInfo),
    /// `"sev-type": "sev-snp"`: `snp-policy`.
    #[serde(rename = "sev-snp")]
    SevSnp(SevSnpGuestInfo),
}

/// QAPI `SevInfo`, the answer to `query-sev`: a flat union on `sev-type`.
///
/// ```text
/// {"enabled": true, "api-major": 1, "api-minor": 55, "build-id": 21,
///  "state": "launch-secret", "sev-type": "sev", "policy": 1, "handle": 1}
/// {"enabled": true, "api-major": 1, "api-minor": 55, "build-id": 21,
///  "state": "running", "sev-type": "sev-snp", "snp-policy": 196608}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SevInfo {
    /// Whether SEV is enabled (QEMU: always true when it answers).
    pub enabled: bool,
    /// The firmware's API major version.
    pub api_major: u8,
    /// The firmware's API minor version.
    pub api_minor: u8,
    /// The firmware's build.
    pub build_id: u8,
    /// The guest's SEV state.
    pub state: SevState,
    /// `sev-type` and its members.
    #[serde(flatten)]
    pub details: SevGuestDetails,
}

impl SevInfo {
    /// An `sev-guest` (SEV / SEV-ES) guest.
    pub fn sev(
        api_major: u8,
        api_minor: u8,
        build_id: u8,
        state: SevState,
        policy: u32,
        handle: u32,
    ) -> Self {
        Self {
            enabled: true,
            api_major,
            api_minor,
            build_id,
            state,
            details: SevGuestDetails::Sev(SevGuestInfo { policy, handle }),
        }
    }

    /// An `sev-snp-guest` guest.
    pub fn sev_snp(
        api_major: u8,
        api_minor: u8,
        build_id: u8,
        state: SevState,
        snp_policy: u64,
    ) -> Self {
        Self {
            enabled: true,
            api_major,
            api_minor,
            build_id,
            state,
            details: SevGuestDetails::SevSnp(SevSnpGuestInfo { snp_policy }),
        }
    }

    /// The discriminator.
    pub fn sev_type(&self) -> SevGuestType {
        match self.details {
            SevGuestDetails::Sev(_) => SevGuestType::Sev,
            SevGuestDetails::SevSnp(_) => SevGuestType::SevSnp,
        }
    }

    pub(crate) fn to_json(self) -> Json {
        let mut dict = Dict::new()
            .with("enabled", Json::Bool(self.enabled))
            .with("api-major", Json::Int(self.api_major.into()))
            .with("api-minor", Json::Int(self.api_minor.into()))
            .with("build-id", Json::Int(self.build_id.into()))
            .with("state", Json::str(self.state.as_str()))
            .with("sev-type", Json::str(self.sev_type().as_str()));
        match self.details {
            SevGuestDetails::Sev(info) => {
                dict.put("policy", Json::Int(info.policy.into()));
                dict.put("handle", Json::Int(info.handle.into()));
            }
            SevGuestDetails::SevSnp(info) => dict.put("snp-policy", uint(info.snp_policy)),
        }
        Json::Dict(dict)
    }
}

/// QAPI `SevLaunchMeasureInfo`, the answer to `query-sev-launch-measure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevLaunchMeasureInfo {
    /// The measurement (and the MNONCE after it), base64.
    pub data: String,
}

impl SevLaunchMeasureInfo {
    /// From the base64 text.
    pub fn new(data: impl Into<String>) -> Self {
        Self { data: data.into() }
    }

    /// From the raw LAUNCH_MEASURE buffer.
    pub fn from_bytes(measurement: &[u8]) -> Self {
        Self::new(B64.encode(measurement))
    }

    pub(crate) fn to_json(&self) -> Json {
        Json::Dict(Dict::new().with("data", Json::str(&self.data)))
    }
}

/// QAPI `SevCapability`, the answer to `query-sev-capabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SevCapability {
    /// The platform Diffie-Hellman key, base64.
    pub pdh: String,
    /// The PDH certificate chain (PEK, OCA, CEK), base64.
    pub cert_chain: String,
    /// The unique ID of CPU0 (GET_ID), base64.
    #[serde(rename = "cpu0-id")]
    pub cpu0_id: String,
    /// The C-bit location in a page table entry.
    pub cbitpos: i64,
    /// The physical address bit reduction (QEMU: always 1).
    pub reduced_phys_bits: i64,
}

impl SevCapability {
    /// From the base64 texts and the two numbers.
    pub fn new(
        pdh: impl Into<String>,
        cert_chain: impl Into<String>,
        cpu0_id: impl Into<String>,
        cbitpos: i64,
        reduced_phys_bits: i64,
    ) -> Self {
        Self {
            pdh: pdh.into(),
            cert_chain: cert_chain.into(),
            cpu0_id: cpu0_id.into(),
            cbitpos,
            reduced_phys_bits,
        }
    }

    pub(crate) fn to_json(&self) -> Json {
        Json::Dict(
            Dict::new()
                .with("pdh", Json::str(&self.pdh))
                .with("cert-chain", Json::str(&self.cert_chain))
                .with("cpu0-id", Json::str(&self.cpu0_id))
                .with("cbitpos", Json::Int(self.cbitpos))
                .with("reduced-phys-bits", Json::Int(self.reduced_phys_bits)),
        )
    }
}

/// QAPI `SevAttestationReport`, the answer to `query-sev-attestation-report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevAttestationReport {
    /// The report, base64.
    pub data: String,
}

impl SevAttestationReport {
    /// From the base64 text.
    pub fn new(data: impl Into<String>) -> Self {
        Self { data: data.into() }
    }

    /// From the raw report.
    pub fn from_bytes(report: &[u8]) -> Self {
        Self::new(B64.encode(report))
    }

    pub(crate) fn to_json(&self) -> Json {
        Json::Dict(Dict::new().with("data", Json::str(&self.data)))
    }
}

/// The answer to the sevkit extension `x-sevkit-guest-report`: an SNP
/// extended report as the guest receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReport {
    /// The signed attestation report, base64.
    pub report: String,
    /// The certificate table the host wrote to the guest's pages, base64
    /// (empty when there is none).
    pub certs: String,
}

impl GuestReport {
    /// From the base64 texts.
    pub fn new(report: impl Into<String>, certs: impl Into<String>) -> Self {
        Self {
            report: report.into(),
            certs: certs.into(),
        }
    }

    /// From the raw report and certificate table.
    pub fn from_bytes(report: &[u8], certs: &[u8]) -> Self {
        Self::new(B64.encode(report), B64.encode(certs))
    }

    pub(crate) fn to_json(&self) -> Json {
        Json::Dict(
            Dict::new()
                .with("report", Json::str(&self.report))
                .with("certs", Json::str(&self.certs)),
        )
    }
}

/// QAPI `VersionTriple`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionTriple {
    /// Major version.
    pub major: i64,
    /// Minor version.
    pub minor: i64,
    /// Micro version.
    pub micro: i64,
}

/// QAPI `VersionInfo`: the answer to `query-version` and the `version` of
/// the greeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The QEMU version this server's schema follows.
    pub qemu: VersionTriple,
    /// Free-form package text (QEMU's `--with-pkgversion`).
    pub package: String,
}

impl VersionInfo {
    /// A version triple and package text.
    pub fn new(major: i64, minor: i64, micro: i64, package: impl Into<String>) -> Self {
        Self {
            qemu: VersionTriple {
                major,
                minor,
                micro,
            },
            package: package.into(),
        }
    }

    pub(crate) fn to_json(&self) -> Json {
        // QAPI visits major, minor, micro: in QEMU's QDict "micro" and
        // "minor" share a bucket, so the wire shows micro, minor, major.
        let triple = Dict::new()
            .with("major", Json::Int(self.qemu.major))
            .with("minor", Json::Int(self.qemu.minor))
            .with("micro", Json::Int(self.qemu.micro));
        Json::Dict(
            Dict::new()
                .with("qemu", Json::Dict(triple))
                .with("package", Json::str(&self.package)),
        )
    }
}

impl Default for VersionInfo {
    /// QEMU 10.1.0 (the schemas served are 10.1's), package
    /// `sevkit <version>`.
    fn default() -> Self {
        Self::new(10, 1, 0, concat!("sevkit ", env!("CARGO_PKG_VERSION")))
    }
}

/// QAPI `ShutdownCause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownCause {
    /// No shutdown request pending.
    None,
    /// An error prevents further use of the guest.
    HostError,
    /// The QMP command `quit`.
    HostQmpQuit,
    /// The QMP command `system_reset`.
    HostQmpSystemReset,
    /// A signal such as SIGINT.
    HostSignal,
    /// A UI event.
    HostUi,
    /// A guest shutdown request.
    GuestShutdown,
    /// A guest reset turned into a shutdown.
    GuestReset,
    /// A guest panic turned into a shutdown.
    GuestPanic,
    /// A partial reset (s390).
    SubsystemReset,
    /// A snapshot load (internal to QEMU).
    SnapshotLoad,
}

impl ShutdownCause {
    /// QEMU's name (`host-qmp-quit`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::HostError => "host-error",
            Self::HostQmpQuit => "host-qmp-quit",
            Self::HostQmpSystemReset => "host-qmp-system-reset",
            Self::HostSignal => "host-signal",
            Self::HostUi => "host-ui",
            Self::GuestShutdown => "guest-shutdown",
            Self::GuestReset => "guest-reset",
            Self::GuestPanic => "guest-panic",
            Self::SubsystemReset => "subsystem-reset",
            Self::SnapshotLoad => "snapshot-load",
        }
    }

    /// QEMU's `shutdown_caused_by_guest`.
    pub fn by_guest(self) -> bool {
        matches!(
            self,
            Self::GuestShutdown | Self::GuestReset | Self::GuestPanic
        )
    }
}

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq)]
pub enum QmpEvent {
    /// `STOP`: the VM stopped (no data).
    Stop,
    /// `RESUME`: the VM resumed (no data).
    Resume,
    /// `SHUTDOWN`: the VM shut down; QEMU is about to exit.
    Shutdown {
        /// Whether the guest asked for it.
        guest: bool,
        /// Why.
        reason: ShutdownCause,
    },
    /// Any other event, e.g. `RESET` (`data` must be an object if present).
    Other {
        /// The event name.
        name: String,
        /// Its data.
        data: Option<serde_json::Value>,
    },
}

impl QmpEvent {
    /// The event name.
    pub fn name(&self) -> &str {
        match self {
            Self::Stop => "STOP",
            Self::Resume => "RESUME",
            Self::Shutdown { .. } => "SHUTDOWN",
            Self::Other { name, .. } => name,
        }
    }

    /// The event as QEMU sends it, stamped with `timestamp` (seconds and
    /// microseconds since the epoch).
    pub(crate) fn to_json(&self, timestamp: (i64, i64)) -> Json {
        let mut dict = Dict::new().with("event", Json::str(self.name())).with(
            "timestamp",
            Json::Dict(
                Dict::new()
                    .with("seconds", Json::Int(timestamp.0))
                    .with("microseconds", Json::Int(timestamp.1)),
            ),
        );
        match self {
            Self::Stop | Self::Resume => {}
            Self::Shutdown { guest, reason } => dict.put(
                "data",
                Json::Dict(
                    Dict::new()
                        .with("guest", Json::Bool(*guest))
                        .with("reason", Json::str(reason.as_str())),
                ),
            ),
            Self::Other { data, .. } => {
                if let Some(data) = data {
                    dict.put("data", Json::from_serde(data));
                }
            }
        }
        Json::Dict(dict)
    }
}

/// Seconds and microseconds since the epoch, or QEMU's (-1, -1) when the
/// clock is unusable.
pub(crate) fn timestamp_now() -> (i64, i64) {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(-1),
            i64::from(d.subsec_micros()),
        ),
        Err(_) => (-1, -1),
    }
}

fn uint(v: u64) -> Json {
    i64::try_from(v).map_or(Json::UInt(v), Json::Int)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::json::write;

    /// The wire form and serde's form agree, member order aside.
    fn same_as_serde<T: Serialize>(value: &T, wire: &Json) {
        let serde = serde_json::to_value(value).unwrap();
        let wire: serde_json::Value = serde_json::from_str(&write(wire)).unwrap();
        assert_eq!(serde, wire);
    }

    #[test]
    fn sev_info_is_a_flat_union() {
        let sev = SevInfo::sev(1, 55, 21, SevState::LaunchSecret, 1, 7);
        assert_eq!(
            write(&sev.to_json()),
            r#"{"enabled": true, "api-minor": 55, "handle": 7, "state": "launch-secret", "api-major": 1, "sev-type": "sev", "build-id": 21, "policy": 1}"#
        );
        same_as_serde(&sev, &sev.to_json());
        let back: SevInfo = serde_json::from_value(serde_json::to_value(sev).unwrap()).unwrap();
        assert_eq!(back, sev);

        let snp = SevInfo::sev_snp(1, 55, 21, SevState::Running, 0x3_0000);
        assert_eq!(
            write(&snp.to_json()),
            r#"{"enabled": true, "api-minor": 55, "state": "running", "api-major": 1, "snp-policy": 196608, "sev-type": "sev-snp", "build-id": 21}"#
        );
        same_as_serde(&snp, &snp.to_json());
        let back: SevInfo = serde_json::from_value(serde_json::to_value(snp).unwrap()).unwrap();
        assert_eq!(back, snp);
        assert_eq!(snp.sev_type(), SevGuestType::SevSnp);
    }

    #[test]
    fn wire_and_serde_agree() {
        let status = StatusInfo::new(RunState::Prelaunch);
        assert!(!status.running);
        same_as_serde(&status, &status.to_json());
        let caps = SevCapability::new("pdh", "chain", "id", 51, 1);
        same_as_serde(&caps, &caps.to_json());
        let m = SevLaunchMeasureInfo::from_bytes(&[1, 2, 3]);
        assert_eq!(m.data, "AQID");
        same_as_serde(&m, &m.to_json());
        let r = SevAttestationReport::from_bytes(&[0xff]);
        same_as_serde(&r, &r.to_json());
        let g = GuestReport::from_bytes(&[1], &[]);
        assert_eq!(g.certs, "");
        same_as_serde(&g, &g.to_json());
        let v = VersionInfo::new(10, 1, 0, "pkg");
        assert_eq!(
            write(&v.to_json()),
            r#"{"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": "pkg"}"#
        );
        same_as_serde(&v, &v.to_json());
    }

    #[test]
    fn events() {
        assert_eq!(
            write(&QmpEvent::Stop.to_json((5, 6))),
            r#"{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "STOP"}"#
        );
        assert_eq!(
            write(
                &QmpEvent::Shutdown {
                    guest: false,
                    reason: ShutdownCause::HostQmpQuit
                }
                .to_json((1, 2))
            ),
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#
        );
        let other = QmpEvent::Other {
            name: "RESET".into(),
            data: Some(serde_json::json!({"guest": true})),
        };
        assert_eq!(
            write(&other.to_json((1, 2))),
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET", "data": {"guest": true}}"#
        );
        assert!(ShutdownCause::GuestReset.by_guest());
        let (s, us) = timestamp_now();
        assert!(s > 0 && (0..1_000_000).contains(&us));
    }
}
