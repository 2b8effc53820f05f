//! A QMP server that speaks QEMU's protocol: the greeting, capabilities
//! negotiation, `execute` / `exec-oob` with any JSON `id`, `return` /
//! `error` replies, asynchronous events, QEMU's JSON dialect and limits, and
//! QEMU's schemas and error texts for the SEV commands.
//!
//! [`QmpServer::bind`] creates a Unix socket; [`QmpServer::serve`] answers
//! one client at a time (like a QEMU `-qmp unix:PATH,server=on` monitor:
//! further clients wait in the listen backlog and are greeted when the
//! current one disconnects) until `quit` or a [`QmpShutdownHandle`]. The VM is
//! reached through [`QmpBackend`], shared as `Arc<Mutex<dyn QmpBackend>>` so
//! the VM can be driven from elsewhere too; [`EventSender`] lets that
//! elsewhere emit events to the connected client.
//!
//! # Protocol
//!
//! ```text
//! <- {"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": "sevkit 0.1.0"}, "capabilities": ["oob"]}}
//! -> {"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}
//! <- {"return": {}}
//! -> {"execute": "query-status", "id": 1}
//! <- {"return": {"status": "prelaunch", "running": false}, "id": 1}
//! -> {"execute": "cont"}
//! <- {"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "RESUME"}
//! <- {"return": {}}
//! ```
//!
//! Output is what QEMU writes byte for byte: ASCII, `": "` and `", "`
//! separators, CRLF after each message, object members in the iteration
//! order of QEMU's `QDict` (hence `micro, minor, major`). A reply is the
//! serde form of its QAPI type (each type is serialized that one way), and
//! arguments are checked by the same QAPI visitor as `-object`'s
//! properties, in QMP's dialect. Input is a JSON
//! stream (not line-based) in QEMU's dialect: see the `json` submodule for
//! the lexer, the limits (64 MiB of token text per message, 2 Mi tokens,
//! nesting 1024: a longer message is answered with `JSON token size limit
//! exceeded` and so on), and error recovery (after a lexical error, input is
//! skipped to the next structural or control character).
//!
//! # Commands
//!
//! | command | arguments | returns |
//! |---|---|---|
//! | `qmp_capabilities` | `*enable: [QMPCapability]` (`"oob"`) | `{}` |
//! | `query-version` | | `VersionInfo` |
//! | `query-commands` | | `[{"name": str}]` |
//! | `query-status` | | [`StatusInfo`] |
//! | `cont`, `stop` | | `{}` (events `RESUME`, `STOP` when the run state changes) |
//! | `quit` | | `{}`, then event `SHUTDOWN` `{"guest": false, "reason": "host-qmp-quit"}`, then the server stops |
//! | `human-monitor-command` | `command-line: str`, `*cpu-index: int` | `str` |
//! | `query-sev` | | [`SevInfo`] |
//! | `query-sev-launch-measure` | | [`SevLaunchMeasureInfo`] |
//! | `query-sev-capabilities` | | [`SevCapability`] |
//! | `sev-inject-launch-secret` | `packet-header: str`, `secret: str`, `*gpa: uint64` | `{}` |
//! | `query-sev-attestation-report` | `mnonce: str` | [`SevAttestationReport`] |
//! | `query-sev-launch-log` | | the launch log (sevkit) |
//! | `x-sevkit-guest-report` | `*report-data: str` (base64, at most 64 bytes), `*certs-pages: uint32` | [`GuestReport`] (sevkit) |
//! | `x-sevkit-read-memory` | `gpa: uint64`, `size: uint64` (at most [`MAX_READ_MEMORY`]) | `{"data": str}`: the bytes, base64 (sevkit) |
//!
//! The sevkit commands are extensions. QMP reserves names beginning
//! with `__` for downstream extensions and `x-` marks experimental ones;
//! `x-sevkit-guest-report` follows the latter (the VMM playing the guest is
//! a test device, not an interface to keep), and so does
//! `x-sevkit-read-memory`, the binary form of HMP `xp` (the same debug API:
//! private pages through DBG_DECRYPT / SNP_DBG_DECRYPT where the policy
//! allows, shared pages as they are, refusals as errors). `query-sev-launch-log` keeps
//! the plain name the sevkit issue asks for: it reads like its
//! `query-sev-launch-measure` sibling and returns the same launch log
//! `sevkit` prints; should QEMU ever define a command of that name, this
//! one must be renamed.
//!
//! # Errors
//!
//! Errors carry QEMU's class and text ([`QmpError`]). The server itself
//! produces these, with the texts of current QEMU (`qapi/qmp-dispatch.c`,
//! `monitor/qmp.c`, `monitor/qmp-cmds-control.c`,
//! `qapi/qobject-input-visitor.c`, `qapi/qapi-visit-core.c`,
//! `qobject/json-*.c`):
//!
//! | situation | class | desc |
//! |---|---|---|
//! | not JSON | GenericError | `JSON parse error, <detail>` (no `id`) |
//! | not an object | GenericError | `QMP input must be a JSON object` |
//! | no `execute` | GenericError | `QMP input lacks member 'execute'` |
//! | `execute` not a string | GenericError | `QMP input member 'execute' must be a string` |
//! | `arguments` not an object | GenericError | `QMP input member 'arguments' must be an object` |
//! | other member | GenericError | `QMP input member 'x' is unexpected` |
//! | before negotiation | CommandNotFound | `Expecting capabilities negotiation with 'qmp_capabilities'` |
//! | negotiating twice | CommandNotFound | `Capabilities negotiation is already complete, command ignored` |
//! | unknown command | CommandNotFound | `The command x has not been found` |
//! | `exec-oob` | GenericError | `The command x does not support OOB` |
//! | missing argument | GenericError | `Parameter 'x' is missing` |
//! | extra argument | GenericError | `Parameter 'x' is unexpected` |
//! | wrong type | GenericError | `Invalid parameter type for 'x', expected: string` (`integer`, `array`, ...) |
//! | not a uint64 | GenericError | `Parameter 'gpa' expects uint64` |
//!
//! Everything else comes from the backend, which should use QEMU's texts
//! (`SEV launch measurement is not available`, ...).
//!
//! Where QEMU's behaviour is unspecified or broken, the server picks: with
//! several unexpected arguments the first in `QDict` order is named (QEMU:
//! `GHashTable` order); a non-finite number echoed in an `id` is written as
//! `null` (QEMU writes `inf`, which is not JSON).

mod dispatch;
mod server;
mod types;

use crate::qemu::qapi::qapi_enum;

pub use server::{EventSender, QmpServer, QmpServerError, QmpShutdownHandle, ServeOutcome};
pub use types::{
    GuestReport, QmpEvent, RunState, SevAttestationReport, SevCapability, SevGuestDetails,
    SevGuestInfo, SevGuestType, SevInfo, SevLaunchMeasureInfo, SevSnpGuestInfo, SevState,
    ShutdownCause, StatusInfo, VersionInfo, VersionTriple,
};

/// The most bytes one `x-sevkit-read-memory` returns (1 MiB, as much as one
/// HMP `xp` dump shows; base64 makes the reply about 1.4 MiB).
pub const MAX_READ_MEMORY: u64 = crate::monitor::hmp::MAX_DUMP_BYTES;

qapi_enum! {
    /// QAPI's `QapiErrorClass`: the `class` of an error reply.
    pub enum ErrorClass {
        /// Almost every error.
        GenericError = "GenericError",
        /// The command does not exist (or cannot run in negotiation mode).
        CommandNotFound = "CommandNotFound",
        /// A device exists but is not active.
        DeviceNotActive = "DeviceNotActive",
        /// A device does not exist.
        DeviceNotFound = "DeviceNotFound",
        /// KVM lacks a capability.
        KvmMissingCap = "KVMMissingCap",
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A QMP error reply: `{"error": {"class": class, "desc": desc}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{desc}")]
pub struct QmpError {
    /// The error class.
    pub class: ErrorClass,
    /// The human-readable text.
    pub desc: String,
}

impl QmpError {
    /// An error of `class`.
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> Self {
        Self {
            class,
            desc: desc.into(),
        }
    }

    /// A `GenericError`, QEMU's `error_setg`.
    pub fn generic(desc: impl Into<String>) -> Self {
        Self::new(ErrorClass::GenericError, desc)
    }
}

/// The VM behind the QMP server.
///
/// Every method answers one command; argument types have been checked
/// against the schema before the call. Errors should carry QEMU's class and
/// text for the same situation.
///
/// The server emits the events of QMP's own commands (`STOP`, `RESUME`,
/// `SHUTDOWN`): a backend must not send those itself through an
/// [`EventSender`] for `stop`, `cont` or `quit`, only for changes it makes
/// on its own (a guest shutdown, a reset).
pub trait QmpBackend: Send {
    /// `query-status`.
    fn query_status(&mut self) -> StatusInfo;

    /// `query-sev` (QEMU without SEV: `SEV feature is not available`).
    fn query_sev(&mut self) -> Result<SevInfo, QmpError>;

    /// `query-sev-launch-measure` (before the measurement, or for SNP:
    /// `SEV launch measurement is not available`).
    fn query_sev_launch_measure(&mut self) -> Result<SevLaunchMeasureInfo, QmpError>;

    /// `query-sev-capabilities`.
    fn query_sev_capabilities(&mut self) -> Result<SevCapability, QmpError>;

    /// `sev-inject-launch-secret`: base64 `packet_header` and `secret`, the
    /// guest physical address (`None`: OVMF's secret area).
    fn sev_inject_launch_secret(
        &mut self,
        packet_header: &str,
        secret: &str,
        gpa: Option<u64>,
    ) -> Result<(), QmpError>;

    /// `query-sev-attestation-report` with the base64 `mnonce` (QEMU:
    /// `SEV: mnonce must be 16 bytes (got N)`).
    fn query_sev_attestation_report(
        &mut self,
        mnonce: &str,
    ) -> Result<SevAttestationReport, QmpError>;

    /// `cont`. The server emits `RESUME` when [`StatusInfo::running`] went
    /// from false to true across the call (QEMU sends no event for `cont`
    /// on a running VM).
    fn cont(&mut self) -> Result<(), QmpError>;

    /// `stop`. The server emits `STOP` when [`StatusInfo::running`] went
    /// from true to false across the call.
    fn stop(&mut self) -> Result<(), QmpError>;

    /// `quit`: the server then answers `{}`, emits `SHUTDOWN`
    /// (`host-qmp-quit`) and stops serving.
    fn quit(&mut self);

    /// `human-monitor-command`: the HMP output (QEMU ends its lines with
    /// `"\r\n"`; an unknown command gives `unknown command: 'x'\r\n`). A
    /// bad `cpu_index` is QEMU's `Parameter 'cpu-index' expects a CPU
    /// number`.
    fn human_monitor_command(
        &mut self,
        command_line: &str,
        cpu_index: Option<i64>,
    ) -> Result<String, QmpError>;

    /// `query-sev-launch-log` (sevkit): the launch log as JSON.
    fn query_sev_launch_log(&mut self) -> Result<serde_json::Value, QmpError>;

    /// `x-sevkit-guest-report` (sevkit): play the guest and ask for an SNP
    /// extended report with `report_data` (base64, checked by the server to
    /// decode to at most 64 bytes; `None`: zeros) and a certificate buffer
    /// of `certs_pages` pages (`None`: the backend's default).
    fn guest_report(
        &mut self,
        report_data: Option<&str>,
        certs_pages: Option<u64>,
    ) -> Result<GuestReport, QmpError>;

    /// `x-sevkit-read-memory` (sevkit): `size` bytes of guest physical
    /// memory at `gpa` through the VM's debug API, as HMP `xp` reads them
    /// (the server has checked that `size` is at most [`MAX_READ_MEMORY`]).
    /// A refusal (the policy forbids debugging, the range is not guest
    /// memory) is an error naming why; nothing is returned in part.
    fn read_memory(&mut self, gpa: u64, size: u64) -> Result<Vec<u8>, QmpError>;
}
