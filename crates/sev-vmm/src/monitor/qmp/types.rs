//! The QAPI types the server returns, with QEMU's member names.
//!
//! Each type is serialized once, by serde: members in QAPI schema order
//! (the declaration order), enumeration values by their QEMU names
//! (written once, in `qapi_enum!`). The server turns serde's output into
//! its own JSON value ([`Json::from_serialize`]), whose writer puts the
//! members in QEMU's `QDict` order, so a reply is byte for byte QEMU's.
//!
//! The run state and the SEV state are the VM's own ([`RunState`],
//! [`SevState`]); an extended report is the simulated guest's
//! ([`GuestReport`]).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use crate::guest::GuestReport;
#[cfg(doc)]
use crate::qemu::json::Json;
use crate::qemu::qapi::qapi_enum;
pub use crate::vm::{RunState, SevState};

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
}

qapi_enum! {
    /// QAPI `SevGuestType`, the discriminator of [`SevInfo`].
    pub enum SevGuestType {
        /// An `sev-guest` object (SEV or SEV-ES).
        Sev = "sev",
        /// An `sev-snp-guest` object.
        SevSnp = "sev-snp",
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
///
/// QAPI visits `major`, `minor`, `micro`: in QEMU's `QDict` "micro" and
/// "minor" share a bucket, so the wire shows micro, minor, major.
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
}

impl Default for VersionInfo {
    /// QEMU 10.1.0 (the schemas served are 10.1's), package
    /// `sevkit <version>`.
    fn default() -> Self {
        Self::new(10, 1, 0, concat!("sevkit ", env!("CARGO_PKG_VERSION")))
    }
}

qapi_enum! {
    /// QAPI `ShutdownCause`.
    pub enum ShutdownCause {
        /// No shutdown request pending.
        None = "none",
        /// An error prevents further use of the guest.
        HostError = "host-error",
        /// The QMP command `quit`.
        HostQmpQuit = "host-qmp-quit",
        /// The QMP command `system_reset`.
        HostQmpSystemReset = "host-qmp-system-reset",
        /// A signal such as SIGINT.
        HostSignal = "host-signal",
        /// A UI event.
        HostUi = "host-ui",
        /// A guest shutdown request.
        GuestShutdown = "guest-shutdown",
        /// A guest reset turned into a shutdown.
        GuestReset = "guest-reset",
        /// A guest panic turned into a shutdown.
        GuestPanic = "guest-panic",
        /// A partial reset (s390).
        SubsystemReset = "subsystem-reset",
        /// A snapshot load (internal to QEMU).
        SnapshotLoad = "snapshot-load",
    }
}

impl ShutdownCause {
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
    pub(crate) fn message(&self, timestamp: (i64, i64)) -> EventMessage<'_> {
        let data = match self {
            Self::Stop | Self::Resume => None,
            Self::Shutdown { guest, reason } => Some(EventData::Shutdown {
                guest: *guest,
                reason: *reason,
            }),
            Self::Other { data, .. } => data.as_ref().map(EventData::Other),
        };
        EventMessage {
            event: self.name(),
            timestamp: Timestamp {
                seconds: timestamp.0,
                microseconds: timestamp.1,
            },
            data,
        }
    }
}

/// An event on the wire (QMP's event message).
#[derive(Debug, Serialize)]
pub(crate) struct EventMessage<'a> {
    event: &'a str,
    timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<EventData<'a>>,
}

/// When an event happened.
#[derive(Debug, Clone, Copy, Serialize)]
struct Timestamp {
    seconds: i64,
    microseconds: i64,
}

/// An event's `data`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum EventData<'a> {
    /// `SHUTDOWN`'s.
    Shutdown { guest: bool, reason: ShutdownCause },
    /// Any other event's.
    Other(&'a serde_json::Value),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::json::{write, Json};

    /// What the server sends for `value`.
    fn wire<T: Serialize>(value: &T) -> Json {
        Json::from_serialize(value).unwrap()
    }

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
            write(&wire(&sev)),
            r#"{"enabled": true, "api-minor": 55, "handle": 7, "state": "launch-secret", "api-major": 1, "sev-type": "sev", "build-id": 21, "policy": 1}"#
        );
        same_as_serde(&sev, &wire(&sev));
        let back: SevInfo = serde_json::from_value(serde_json::to_value(sev).unwrap()).unwrap();
        assert_eq!(back, sev);

        let snp = SevInfo::sev_snp(1, 55, 21, SevState::Running, 0x3_0000);
        assert_eq!(
            write(&wire(&snp)),
            r#"{"enabled": true, "api-minor": 55, "state": "running", "api-major": 1, "snp-policy": 196608, "sev-type": "sev-snp", "build-id": 21}"#
        );
        same_as_serde(&snp, &wire(&snp));
        let back: SevInfo = serde_json::from_value(serde_json::to_value(snp).unwrap()).unwrap();
        assert_eq!(back, snp);
        assert_eq!(snp.sev_type(), SevGuestType::SevSnp);
    }

    #[test]
    fn wire_and_serde_agree() {
        let status = StatusInfo::new(RunState::Prelaunch);
        assert!(!status.running);
        same_as_serde(&status, &wire(&status));
        let caps = SevCapability::new("pdh", "chain", "id", 51, 1);
        same_as_serde(&caps, &wire(&caps));
        let m = SevLaunchMeasureInfo::from_bytes(&[1, 2, 3]);
        assert_eq!(m.data, "AQID");
        same_as_serde(&m, &wire(&m));
        let r = SevAttestationReport::from_bytes(&[0xff]);
        same_as_serde(&r, &wire(&r));
        let g = GuestReport::from_bytes(&[1], &[]);
        assert!(g.certs.is_empty());
        assert_eq!(write(&wire(&g)), r#"{"report": "AQ==", "certs": ""}"#);
        same_as_serde(&g, &wire(&g));
        let v = VersionInfo::new(10, 1, 0, "pkg");
        assert_eq!(
            write(&wire(&v)),
            r#"{"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": "pkg"}"#
        );
        same_as_serde(&v, &wire(&v));
    }

    #[test]
    fn events() {
        assert_eq!(
            write(&wire(&QmpEvent::Stop.message((5, 6)))),
            r#"{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "STOP"}"#
        );
        assert_eq!(
            write(&wire(
                &QmpEvent::Shutdown {
                    guest: false,
                    reason: ShutdownCause::HostQmpQuit
                }
                .message((1, 2))
            )),
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#
        );
        let other = QmpEvent::Other {
            name: "RESET".into(),
            data: Some(serde_json::json!({"guest": true})),
        };
        assert_eq!(
            write(&wire(&other.message((1, 2)))),
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET", "data": {"guest": true}}"#
        );
        assert!(ShutdownCause::GuestReset.by_guest());
        let (s, us) = timestamp_now();
        assert!(s > 0 && (0..1_000_000).contains(&us));
    }
}
