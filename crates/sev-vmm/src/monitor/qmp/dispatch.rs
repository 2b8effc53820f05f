//! One QMP session: capabilities negotiation, request checking
//! (`qmp_dispatch`), the commands with QAPI's argument checking, and the
//! replies and events each request produces, in the order QEMU sends them.

use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sev_os::excerpt;

use super::types::{timestamp_now, QmpEvent, ShutdownCause, VersionInfo};
use super::{ErrorClass, QmpBackend, QmpError, MAX_READ_MEMORY};
use crate::qemu::json::{Dict, Json, Message};
use crate::qemu::qapi::{Dialect, VisitError, Visitor};

/// The capabilities offered in the greeting (QEMU offers `oob` on monitors
/// that run in the I/O thread, which socket monitors do).
const CAPABILITIES: &[&str] = &["oob"];

/// Locks the backend, recovering from a poisoned lock (a panic elsewhere
/// must not take the monitor down).
pub(crate) fn lock<'a>(
    backend: &'a Mutex<dyn QmpBackend + 'static>,
) -> MutexGuard<'a, dyn QmpBackend + 'static> {
    backend.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one request produced.
#[derive(Debug, Default)]
pub(crate) struct Handled {
    /// Replies and events, in the order they go out.
    pub(crate) out: Vec<Json>,
    /// `quit` succeeded: stop serving after sending `out`.
    pub(crate) quit: bool,
}

/// The state of one connection.
#[derive(Debug)]
pub(crate) struct Session {
    negotiated: bool,
    oob: bool,
    version: VersionInfo,
}

impl Session {
    /// A session in capabilities negotiation mode.
    pub(crate) fn new(version: VersionInfo) -> Self {
        Self {
            negotiated: false,
            oob: false,
            version,
        }
    }

    /// Whether the session is in command mode (events are delivered).
    pub(crate) fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// The greeting.
    ///
    /// # Errors
    ///
    /// Serializing the version failed (it cannot: it is two numbers and a
    /// string).
    pub(crate) fn greeting(&self) -> Result<Json, String> {
        #[derive(serde::Serialize)]
        struct Greeting<'a> {
            #[serde(rename = "QMP")]
            qmp: Body<'a>,
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            version: &'a VersionInfo,
            capabilities: &'a [&'a str],
        }
        Json::from_serialize(&Greeting {
            qmp: Body {
                version: &self.version,
                capabilities: CAPABILITIES,
            },
        })
    }

    /// Handles one message from the client.
    pub(crate) fn handle(&mut self, message: Message, backend: &Mutex<dyn QmpBackend>) -> Handled {
        let mut handled = Handled::default();
        let (id, result) = match message {
            Err(desc) => (None, Err(QmpError::generic(desc))),
            Ok(Json::Dict(request)) => {
                let id = request.get("id").cloned();
                let result = self.dispatch(&request, backend, &mut handled);
                (id, result)
            }
            Ok(_) => (
                None,
                Err(QmpError::generic("QMP input must be a JSON object")),
            ),
        };
        let mut reply = match result {
            Ok(value) => Dict::new().with("return", value),
            Err(mut err) => {
                // monitor_qmp_dispatch: in negotiation mode every
                // CommandNotFound gets a more useful text.
                if !self.negotiated && err.class == ErrorClass::CommandNotFound {
                    err.desc = "Expecting capabilities negotiation with 'qmp_capabilities'".into();
                }
                // A failed command emits nothing.
                handled.out.clear();
                handled.quit = false;
                Dict::new().with(
                    "error",
                    Json::Dict(
                        Dict::new()
                            .with("class", Json::str(err.class.as_str()))
                            .with("desc", Json::Str(err.desc)),
                    ),
                )
            }
        };
        if let Some(id) = id {
            reply.put("id", id);
        }
        // Events emitted while the command ran come first; SHUTDOWN after
        // `quit`'s reply.
        let after_quit = if handled.quit {
            handled.out.split_off(0)
        } else {
            Vec::new()
        };
        handled.out.push(Json::Dict(reply));
        handled.out.extend(after_quit);
        handled
    }

    /// `qmp_dispatch`: checks the request, finds the command, runs it.
    fn dispatch(
        &mut self,
        request: &Dict,
        backend: &Mutex<dyn QmpBackend>,
        handled: &mut Handled,
    ) -> Result<Json, QmpError> {
        let mut exec_key: Option<&str> = None;
        for (key, value) in request.iter() {
            match key {
                "execute" | "exec-oob" if key == "execute" || self.oob => {
                    if !matches!(value, Json::Str(_)) {
                        return Err(QmpError::generic(format!(
                            "QMP input member '{key}' must be a string"
                        )));
                    }
                    if let Some(first) = exec_key {
                        return Err(QmpError::generic(format!(
                            "QMP input member '{key}' clashes with '{first}'"
                        )));
                    }
                    exec_key = Some(key);
                }
                "arguments" => {
                    if !matches!(value, Json::Dict(_)) {
                        return Err(QmpError::generic(
                            "QMP input member 'arguments' must be an object",
                        ));
                    }
                }
                "id" => {}
                _ => {
                    return Err(QmpError::generic(format!(
                        "QMP input member '{}' is unexpected",
                        excerpt(key)
                    )))
                }
            }
        }
        let Some(exec_key) = exec_key else {
            return Err(QmpError::generic("QMP input lacks member 'execute'"));
        };
        let oob = exec_key == "exec-oob";
        let Some(Json::Str(name)) = request.get(exec_key) else {
            return Err(QmpError::generic("QMP input lacks member 'execute'"));
        };
        let command = COMMANDS
            .iter()
            .find(|c| c.name == name.as_str() && (self.negotiated || c.name == "qmp_capabilities"))
            .ok_or_else(|| {
                QmpError::new(
                    ErrorClass::CommandNotFound,
                    format!("The command {} has not been found", excerpt(name)),
                )
            })?;
        if oob {
            // No command here is marked allow-oob.
            return Err(QmpError::generic(format!(
                "The command {name} does not support OOB"
            )));
        }
        let empty = Dict::new();
        let arguments = match request.get("arguments") {
            Some(Json::Dict(arguments)) => arguments,
            _ => &empty,
        };
        let mut args = Args::new(arguments);
        let mut exec = Exec {
            session: self,
            backend,
            handled,
        };
        (command.run)(&mut exec, &mut args)
    }
}

/// A command's context.
struct Exec<'a> {
    session: &'a mut Session,
    backend: &'a Mutex<dyn QmpBackend>,
    handled: &'a mut Handled,
}

impl Exec<'_> {
    fn event(&mut self, event: &QmpEvent) -> Result<(), QmpError> {
        self.handled
            .out
            .push(wire(&event.message(timestamp_now()))?);
        Ok(())
    }

    /// Runs `cont` / `stop`, emitting `event` when `running` changes from
    /// `!to` to `to`.
    fn run_state_change(
        &mut self,
        to: bool,
        event: &QmpEvent,
        op: impl FnOnce(&mut dyn QmpBackend) -> Result<(), QmpError>,
    ) -> Result<Json, QmpError> {
        let changed = {
            let mut backend = lock(self.backend);
            let before = backend.query_status().running;
            op(&mut *backend)?;
            let after = backend.query_status().running;
            before != to && after == to
        };
        if changed {
            self.event(event)?;
        }
        Ok(empty())
    }
}

fn empty() -> Json {
    Json::Dict(Dict::new())
}

/// A reply's value: serde's form of `value` (the one serialization of
/// every QAPI type).
fn wire<T: serde::Serialize>(value: &T) -> Result<Json, QmpError> {
    Json::from_serialize(value).map_err(QmpError::generic)
}

/// A command: its name and its marshaller (argument checks, then the call).
struct Command {
    name: &'static str,
    run: fn(&mut Exec<'_>, &mut Args<'_>) -> Result<Json, QmpError>,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "qmp_capabilities",
        run: cmd_qmp_capabilities,
    },
    Command {
        name: "query-version",
        run: cmd_query_version,
    },
    Command {
        name: "query-commands",
        run: cmd_query_commands,
    },
    Command {
        name: "query-status",
        run: cmd_query_status,
    },
    Command {
        name: "cont",
        run: cmd_cont,
    },
    Command {
        name: "stop",
        run: cmd_stop,
    },
    Command {
        name: "quit",
        run: cmd_quit,
    },
    Command {
        name: "human-monitor-command",
        run: cmd_human_monitor_command,
    },
    Command {
        name: "query-sev",
        run: cmd_query_sev,
    },
    Command {
        name: "query-sev-launch-measure",
        run: cmd_query_sev_launch_measure,
    },
    Command {
        name: "query-sev-capabilities",
        run: cmd_query_sev_capabilities,
    },
    Command {
        name: "sev-inject-launch-secret",
        run: cmd_sev_inject_launch_secret,
    },
    Command {
        name: "query-sev-attestation-report",
        run: cmd_query_sev_attestation_report,
    },
    Command {
        name: "query-sev-launch-log",
        run: cmd_query_sev_launch_log,
    },
    Command {
        name: "x-sevkit-guest-report",
        run: cmd_guest_report,
    },
    Command {
        name: "x-sevkit-read-memory",
        run: cmd_read_memory,
    },
];

/// The names of the commands the server knows.
pub(crate) fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.name)
}

fn cmd_qmp_capabilities(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    let mut oob = false;
    if let Some(enable) = args.member("enable") {
        let Json::List(items) = enable else {
            return Err(visit_error(VisitError::invalid_type("enable", "array")));
        };
        for (i, item) in items.iter().enumerate() {
            let Json::Str(cap) = item else {
                let name = format!("enable[{i}]");
                return Err(visit_error(VisitError::invalid_type(&name, "string")));
            };
            if cap != "oob" {
                // input_type_enum names list elements 'null'.
                return Err(visit_error(VisitError::bad_enum("null", cap)));
            }
            oob = true;
        }
    }
    args.finish()?;
    if exec.session.negotiated {
        return Err(QmpError::new(
            ErrorClass::CommandNotFound,
            "Capabilities negotiation is already complete, command ignored",
        ));
    }
    // Every capability asked for is offered ("oob"), so none is refused
    // with "Capability %s not available".
    exec.session.oob = oob;
    exec.session.negotiated = true;
    Ok(empty())
}

fn cmd_query_version(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    wire(&exec.session.version)
}

fn cmd_query_commands(_: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    Ok(Json::List(
        command_names()
            .map(|name| Json::Dict(Dict::new().with("name", Json::str(name))))
            .collect(),
    ))
}

fn cmd_query_status(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    wire(&lock(exec.backend).query_status())
}

fn cmd_cont(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    exec.run_state_change(true, &QmpEvent::Resume, |b| b.cont())
}

fn cmd_stop(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    exec.run_state_change(false, &QmpEvent::Stop, |b| b.stop())
}

fn cmd_quit(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    lock(exec.backend).quit();
    exec.event(&QmpEvent::Shutdown {
        guest: false,
        reason: ShutdownCause::HostQmpQuit,
    })?;
    exec.handled.quit = true;
    Ok(empty())
}

fn cmd_human_monitor_command(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    let command_line = args.required("command-line", Visitor::string)?;
    let cpu_index = args.optional("cpu-index", Visitor::int)?;
    args.finish()?;
    let output = lock(exec.backend).human_monitor_command(&command_line, cpu_index)?;
    Ok(Json::Str(output))
}

fn cmd_query_sev(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    wire(&lock(exec.backend).query_sev()?)
}

fn cmd_query_sev_launch_measure(
    exec: &mut Exec<'_>,
    args: &mut Args<'_>,
) -> Result<Json, QmpError> {
    args.finish()?;
    wire(&lock(exec.backend).query_sev_launch_measure()?)
}

fn cmd_query_sev_capabilities(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    wire(&lock(exec.backend).query_sev_capabilities()?)
}

fn cmd_sev_inject_launch_secret(
    exec: &mut Exec<'_>,
    args: &mut Args<'_>,
) -> Result<Json, QmpError> {
    let packet_header = args.required("packet-header", Visitor::string)?;
    let secret = args.required("secret", Visitor::string)?;
    let gpa = args.optional("gpa", Visitor::uint64)?;
    args.finish()?;
    lock(exec.backend).sev_inject_launch_secret(&packet_header, &secret, gpa)?;
    Ok(empty())
}

fn cmd_query_sev_attestation_report(
    exec: &mut Exec<'_>,
    args: &mut Args<'_>,
) -> Result<Json, QmpError> {
    let mnonce = args.required("mnonce", Visitor::string)?;
    args.finish()?;
    wire(&lock(exec.backend).query_sev_attestation_report(&mnonce)?)
}

fn cmd_query_sev_launch_log(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    args.finish()?;
    wire(&lock(exec.backend).query_sev_launch_log()?)
}

/// The most report data an SNP report carries.
const REPORT_DATA_LEN: usize = 64;

fn cmd_guest_report(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    let report_data = args.optional("report-data", Visitor::string)?;
    let certs_pages = args.optional("certs-pages", Visitor::uint32)?;
    args.finish()?;
    if let Some(data) = &report_data {
        if B64.decode(data).map_or(true, |d| d.len() > REPORT_DATA_LEN) {
            return Err(QmpError::generic(format!(
                "Parameter 'report-data' expects base64 data of at most {REPORT_DATA_LEN} bytes"
            )));
        }
    }
    let report =
        lock(exec.backend).guest_report(report_data.as_deref(), certs_pages.map(u64::from))?;
    wire(&report)
}

fn cmd_read_memory(exec: &mut Exec<'_>, args: &mut Args<'_>) -> Result<Json, QmpError> {
    let gpa = args.required("gpa", Visitor::uint64)?;
    let size = args.required("size", Visitor::uint64)?;
    args.finish()?;
    if size > MAX_READ_MEMORY {
        return Err(QmpError::generic(format!(
            "Parameter 'size' expects at most {MAX_READ_MEMORY} bytes: read larger ranges in parts"
        )));
    }
    let data = lock(exec.backend).read_memory(gpa, size)?;
    Ok(Json::Dict(
        Dict::new().with("data", Json::Str(B64.encode(&data))),
    ))
}

// ---------------------------------------------------------------------------
// Arguments, read by QAPI's visitor in QMP's dialect.

/// A visit error as QMP reports it (every one is a `GenericError`).
fn visit_error(e: VisitError) -> QmpError {
    QmpError::generic(e.message)
}

/// How a member is read: one of the visitor's typed reads.
type Read<'a, T> = fn(&Visitor<'a, Json>, &str, &Json) -> Result<T, VisitError>;

/// The `arguments` of a command, visited member by member in schema order.
struct Args<'a> {
    visitor: Visitor<'a, Json>,
}

impl<'a> Args<'a> {
    fn new(dict: &'a Dict) -> Self {
        Self {
            visitor: Visitor::new(Dialect::Qmp, dict.iter()),
        }
    }

    /// An optional member as it is (present even if `null`).
    fn member(&mut self, name: &str) -> Option<&'a Json> {
        self.visitor.optional(name)
    }

    /// A mandatory member, read by `read`.
    fn required<T>(&mut self, name: &str, read: Read<'a, T>) -> Result<T, QmpError> {
        let value = self.visitor.required(name).map_err(visit_error)?;
        read(&self.visitor, name, value).map_err(visit_error)
    }

    /// An optional member, read by `read`.
    fn optional<T>(&mut self, name: &str, read: Read<'a, T>) -> Result<Option<T>, QmpError> {
        self.visitor
            .optional(name)
            .map(|value| read(&self.visitor, name, value).map_err(visit_error))
            .transpose()
    }

    /// `visit_check_struct`: no member may be left unvisited.
    fn finish(&self) -> Result<(), QmpError> {
        self.visitor.finish().map_err(visit_error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::types::{
        GuestReport, RunState, SevAttestationReport, SevCapability, SevInfo, SevLaunchMeasureInfo,
        SevState, StatusInfo,
    };
    use super::*;
    use crate::qemu::json::{write, JsonStreamer};

    /// A small VM: runs, stops, remembers the last call.
    #[derive(Default)]
    struct Mock {
        state: Option<RunState>,
        last: String,
        quit: bool,
    }

    impl QmpBackend for Mock {
        fn query_status(&mut self) -> StatusInfo {
            StatusInfo::new(self.state.unwrap_or(RunState::Prelaunch))
        }
        fn query_sev(&mut self) -> Result<SevInfo, QmpError> {
            Ok(SevInfo::sev(1, 55, 21, SevState::LaunchSecret, 1, 1))
        }
        fn query_sev_launch_measure(&mut self) -> Result<SevLaunchMeasureInfo, QmpError> {
            Err(QmpError::generic("SEV launch measurement is not available"))
        }
        fn query_sev_capabilities(&mut self) -> Result<SevCapability, QmpError> {
            Ok(SevCapability::new("p", "c", "i", 51, 1))
        }
        fn sev_inject_launch_secret(
            &mut self,
            packet_header: &str,
            secret: &str,
            gpa: Option<u64>,
        ) -> Result<(), QmpError> {
            self.last = format!("inject {packet_header} {secret} {gpa:?}");
            Ok(())
        }
        fn query_sev_attestation_report(
            &mut self,
            mnonce: &str,
        ) -> Result<SevAttestationReport, QmpError> {
            Ok(SevAttestationReport::new(mnonce))
        }
        fn cont(&mut self) -> Result<(), QmpError> {
            self.state = Some(RunState::Running);
            Ok(())
        }
        fn stop(&mut self) -> Result<(), QmpError> {
            self.state = Some(RunState::Paused);
            Ok(())
        }
        fn quit(&mut self) {
            self.quit = true;
        }
        fn human_monitor_command(
            &mut self,
            command_line: &str,
            cpu_index: Option<i64>,
        ) -> Result<String, QmpError> {
            Ok(format!("{command_line} {cpu_index:?}\r\n"))
        }
        fn query_sev_launch_log(&mut self) -> Result<serde_json::Value, QmpError> {
            Ok(serde_json::json!({"steps": [1, 2]}))
        }
        fn guest_report(
            &mut self,
            report_data: Option<&str>,
            certs_pages: Option<u64>,
        ) -> Result<GuestReport, QmpError> {
            self.last = format!("report {report_data:?} {certs_pages:?}");
            Ok(GuestReport::from_bytes(b"report", b""))
        }
        fn read_memory(&mut self, gpa: u64, size: u64) -> Result<Vec<u8>, QmpError> {
            self.last = format!("read {gpa:#x} {size}");
            if gpa >= 1 << 32 {
                return Err(QmpError::generic("not guest memory"));
            }
            Ok((0..size).map(|i| (gpa + i) as u8).collect())
        }
    }

    struct Harness {
        session: Session,
        mock: Arc<Mutex<Mock>>,
        backend: Arc<Mutex<dyn QmpBackend>>,
        streamer: JsonStreamer,
    }

    impl Harness {
        fn new() -> Self {
            let mock = Arc::new(Mutex::new(Mock::default()));
            let backend: Arc<Mutex<dyn QmpBackend>> = mock.clone();
            Self {
                session: Session::new(VersionInfo::new(10, 1, 0, "test")),
                mock,
                backend,
                streamer: JsonStreamer::new(),
            }
        }

        /// Feeds `input`, returns every line sent, events' timestamps
        /// zeroed.
        fn send(&mut self, input: &str) -> Vec<String> {
            let mut messages = Vec::new();
            self.streamer.feed(input.as_bytes(), &mut messages);
            let mut lines = Vec::new();
            for m in messages {
                let handled = self.session.handle(m, &self.backend);
                for mut json in handled.out {
                    if let Json::Dict(d) = &mut json {
                        if d.contains_key("timestamp") {
                            d.put("timestamp", Json::Null);
                        }
                    }
                    lines.push(write(&json));
                }
            }
            lines
        }

        fn negotiated() -> Self {
            let mut h = Self::new();
            assert_eq!(
                h.send(r#"{"execute": "qmp_capabilities"}"#),
                [r#"{"return": {}}"#]
            );
            h
        }
    }

    fn err(class: &str, desc: &str) -> String {
        format!(r#"{{"error": {{"class": "{class}", "desc": "{desc}"}}}}"#)
    }

    #[test]
    fn greeting_is_qemus() {
        let h = Harness::new();
        assert_eq!(
            write(&h.session.greeting().unwrap()),
            r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": "test"}, "capabilities": ["oob"]}}"#
        );
    }

    #[test]
    fn negotiation() {
        let mut h = Harness::new();
        let expecting = "Expecting capabilities negotiation with 'qmp_capabilities'";
        assert_eq!(
            h.send(r#"{"execute": "query-status"}"#),
            [err("CommandNotFound", expecting)]
        );
        assert_eq!(
            h.send(r#"{"execute": "nonexistent"}"#),
            [err("CommandNotFound", expecting)]
        );
        // Argument errors of qmp_capabilities keep their class.
        assert_eq!(
            h.send(r#"{"execute": "qmp_capabilities", "arguments": {"enable": "oob"}}"#),
            [err(
                "GenericError",
                "Invalid parameter type for 'enable', expected: array"
            )]
        );
        assert_eq!(
            h.send(r#"{"execute": "qmp_capabilities", "arguments": {"enable": [1]}}"#),
            [err(
                "GenericError",
                "Invalid parameter type for 'enable[0]', expected: string"
            )]
        );
        assert_eq!(
            h.send(r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}"#),
            [err(
                "GenericError",
                "Parameter 'null' does not accept value 'foo'"
            )]
        );
        assert_eq!(
            h.send(r#"{"execute": "qmp_capabilities", "arguments": {"x": 1}}"#),
            [err("GenericError", "Parameter 'x' is unexpected")]
        );
        // exec-oob is not a member before OOB is enabled.
        assert_eq!(
            h.send(r#"{"exec-oob": "qmp_capabilities"}"#),
            [err(
                "GenericError",
                "QMP input member 'exec-oob' is unexpected"
            )]
        );
        assert_eq!(
            h.send(
                r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": "n"}"#
            ),
            [r#"{"return": {}, "id": "n"}"#]
        );
        assert!(h.session.negotiated());
        assert_eq!(
            h.send(r#"{"execute": "qmp_capabilities"}"#),
            [err(
                "CommandNotFound",
                "Capabilities negotiation is already complete, command ignored"
            )]
        );
        assert_eq!(
            h.send(r#"{"exec-oob": "query-status", "id": 1}"#),
            [
                r#"{"id": 1, "error": {"class": "GenericError", "desc": "The command query-status does not support OOB"}}"#
            ]
        );
        assert_eq!(
            h.send(r#"{"exec-oob": "query-status", "execute": "query-status"}"#),
            // QDict order puts "execute" first.
            [err(
                "GenericError",
                "QMP input member 'execute' clashes with 'exec-oob'"
            )]
        );
    }

    #[test]
    fn request_checks() {
        let mut h = Harness::negotiated();
        for (input, desc) in [
            ("[]", "QMP input must be a JSON object"),
            ("\"x\"", "QMP input must be a JSON object"),
            ("{}", "QMP input lacks member 'execute'"),
            (r#"{"id": 1}"#, "QMP input lacks member 'execute'"),
            (
                r#"{"execute": 1}"#,
                "QMP input member 'execute' must be a string",
            ),
            (
                r#"{"execute": "cont", "arguments": []}"#,
                "QMP input member 'arguments' must be an object",
            ),
            (
                r#"{"execute": "cont", "foo": 1}"#,
                "QMP input member 'foo' is unexpected",
            ),
            (
                r#"{"exec-oob": "cont"}"#,
                "QMP input member 'exec-oob' is unexpected",
            ),
        ] {
            let out = h.send(input);
            assert_eq!(out.len(), 1, "{input}");
            assert!(
                out[0].contains(&format!(r#""desc": "{desc}""#)),
                "{input}: {out:?}"
            );
            assert!(out[0].contains("GenericError"));
        }
        // The id is echoed once the request is an object.
        assert_eq!(
            h.send(r#"{"execute": "cont", "foo": 1, "id": {"a": [1, 'x']}}"#),
            [
                r#"{"id": {"a": [1, "x"]}, "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}"#
            ]
        );
        assert_eq!(
            h.send(r#"{"execute": "nonexistent", "id": null}"#),
            [
                r#"{"id": null, "error": {"class": "CommandNotFound", "desc": "The command nonexistent has not been found"}}"#
            ]
        );
        // Parse errors carry no id.
        assert_eq!(
            h.send(r#"{"execute": "cont", "id": 1,}"#),
            [err("GenericError", "JSON parse error, expecting value")]
        );
    }

    #[test]
    fn argument_checks() {
        let mut h = Harness::negotiated();
        for (args, desc) in [
            (r"{}", "Parameter 'packet-header' is missing"),
            (r#"{"secret": "s"}"#, "Parameter 'packet-header' is missing"),
            (
                r#"{"packet-header": 1, "secret": "s"}"#,
                "Invalid parameter type for 'packet-header', expected: string",
            ),
            (r#"{"packet-header": "h"}"#, "Parameter 'secret' is missing"),
            (
                r#"{"packet-header": "h", "secret": null}"#,
                "Invalid parameter type for 'secret', expected: string",
            ),
            (
                r#"{"packet-header": "h", "secret": "s", "gpa": "1"}"#,
                "Parameter 'gpa' expects uint64",
            ),
            (
                r#"{"packet-header": "h", "secret": "s", "gpa": 1.0}"#,
                "Parameter 'gpa' expects uint64",
            ),
            (
                r#"{"packet-header": "h", "secret": "s", "gpa": 18446744073709551616}"#,
                "Parameter 'gpa' expects uint64",
            ),
            (
                r#"{"packet-header": "h", "secret": "s", "x": 1}"#,
                "Parameter 'x' is unexpected",
            ),
        ] {
            let out = h.send(&format!(
                r#"{{"execute": "sev-inject-launch-secret", "arguments": {args}}}"#
            ));
            assert_eq!(out, [err("GenericError", desc)], "{args}");
        }
        // uint64 takes negative int64 modulo 2^64, like QEMU.
        assert_eq!(
            h.send(r#"{"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "h", "secret": "s", "gpa": -1}}"#),
            [r#"{"return": {}}"#]
        );
        assert_eq!(
            h.mock.lock().unwrap().last,
            "inject h s Some(18446744073709551615)"
        );
        assert_eq!(
            h.send(r#"{"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "h", "secret": "s", "gpa": 18446744073709551615}}"#),
            [r#"{"return": {}}"#]
        );
        assert_eq!(
            h.send(r#"{"execute": "query-status", "arguments": {"verbose": true}}"#),
            [err("GenericError", "Parameter 'verbose' is unexpected")]
        );
        assert_eq!(
            h.send(r#"{"execute": "human-monitor-command", "arguments": {"command-line": "info sev", "cpu-index": 9223372036854775808}}"#),
            [err("GenericError", "Invalid parameter type for 'cpu-index', expected: integer")]
        );
        assert_eq!(
            h.send(r#"{"execute": "human-monitor-command", "arguments": {"command-line": "info sev", "cpu-index": -3}}"#),
            [r#"{"return": "info sev Some(-3)\r\n"}"#]
        );
        assert_eq!(
            h.send(
                r#"{"execute": "x-sevkit-guest-report", "arguments": {"certs-pages": 4294967296}}"#
            ),
            [err(
                "GenericError",
                "Parameter 'certs-pages' expects uint32_t"
            )]
        );
        assert_eq!(
            h.send(r#"{"execute": "x-sevkit-guest-report", "arguments": {"certs-pages": -1}}"#),
            [err(
                "GenericError",
                "Parameter 'certs-pages' expects uint32_t"
            )]
        );
        let too_long = B64.encode([0u8; 65]);
        assert_eq!(
            h.send(&format!(r#"{{"execute": "x-sevkit-guest-report", "arguments": {{"report-data": "{too_long}"}}}}"#)),
            [err("GenericError", "Parameter 'report-data' expects base64 data of at most 64 bytes")]
        );
        assert_eq!(
            h.send(r#"{"execute": "x-sevkit-guest-report", "arguments": {"report-data": "not base64!"}}"#),
            [err("GenericError", "Parameter 'report-data' expects base64 data of at most 64 bytes")]
        );
        let ok = B64.encode([7u8; 64]);
        assert_eq!(
            h.send(&format!(r#"{{"execute": "x-sevkit-guest-report", "arguments": {{"report-data": "{ok}", "certs-pages": 4}}}}"#)),
            [r#"{"return": {"report": "cmVwb3J0", "certs": ""}}"#]
        );
        assert_eq!(
            h.mock.lock().unwrap().last,
            format!("report Some({ok:?}) Some(4)")
        );
    }

    #[test]
    fn read_memory_arguments_limit_and_reply() {
        let mut h = Harness::negotiated();
        let read = |h: &mut Harness, args: &str| {
            h.send(&format!(
                r#"{{"execute": "x-sevkit-read-memory", "arguments": {args}}}"#
            ))
        };
        for (args, desc) in [
            (r#"{"size": 1}"#.to_owned(), "Parameter 'gpa' is missing".to_owned()),
            (r#"{"gpa": 1}"#.to_owned(), "Parameter 'size' is missing".to_owned()),
            (
                r#"{"gpa": "0x1000", "size": 1}"#.to_owned(),
                "Parameter 'gpa' expects uint64".to_owned(),
            ),
            (
                r#"{"gpa": 1, "size": 1.5}"#.to_owned(),
                "Parameter 'size' expects uint64".to_owned(),
            ),
            (
                r#"{"gpa": 1, "size": 1, "len": 1}"#.to_owned(),
                "Parameter 'len' is unexpected".to_owned(),
            ),
            (
                format!(r#"{{"gpa": 1, "size": {}}}"#, MAX_READ_MEMORY + 1),
                format!(
                    "Parameter 'size' expects at most {MAX_READ_MEMORY} bytes: read larger ranges in parts"
                ),
            ),
            // uint64 takes -1 as 2^64 - 1: far over the limit.
            (
                r#"{"gpa": 1, "size": -1}"#.to_owned(),
                format!(
                    "Parameter 'size' expects at most {MAX_READ_MEMORY} bytes: read larger ranges in parts"
                ),
            ),
        ] {
            assert_eq!(read(&mut h, &args), [err("GenericError", &desc)], "{args}");
        }
        // Nothing reached the backend.
        assert_eq!(h.mock.lock().unwrap().last, "");
        assert_eq!(
            read(&mut h, r#"{"gpa": 4096, "size": 4}"#),
            [format!(
                r#"{{"return": {{"data": "{}"}}}}"#,
                B64.encode([0, 1, 2, 3])
            )]
        );
        assert_eq!(h.mock.lock().unwrap().last, "read 0x1000 4");
        assert_eq!(
            read(&mut h, r#"{"gpa": 0, "size": 0}"#),
            [r#"{"return": {"data": ""}}"#]
        );
        // The limit itself is allowed.
        let out = read(
            &mut h,
            &format!(r#"{{"gpa": 0, "size": {MAX_READ_MEMORY}}}"#),
        );
        let reply: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        let data = B64
            .decode(reply["return"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data.len() as u64, MAX_READ_MEMORY);
        assert_eq!(data[0x1234], 0x34);
        // The backend's refusal is the reply.
        assert_eq!(
            read(&mut h, r#"{"gpa": 4294967296, "size": 1}"#),
            [err("GenericError", "not guest memory")]
        );
    }

    #[test]
    fn commands_and_events() {
        let mut h = Harness::negotiated();
        assert_eq!(
            h.send(r#"{"execute": "query-status"}"#),
            [r#"{"return": {"status": "prelaunch", "running": false}}"#]
        );
        assert_eq!(
            h.send(r#"{"execute": "cont", "id": 1}"#),
            [
                r#"{"timestamp": null, "event": "RESUME"}"#,
                r#"{"return": {}, "id": 1}"#
            ]
        );
        // No event when nothing changes.
        assert_eq!(h.send(r#"{"execute": "cont"}"#), [r#"{"return": {}}"#]);
        assert_eq!(
            h.send(r#"{"execute": "stop"}"#),
            [
                r#"{"timestamp": null, "event": "STOP"}"#,
                r#"{"return": {}}"#
            ]
        );
        assert_eq!(h.send(r#"{"execute": "stop"}"#), [r#"{"return": {}}"#]);
        assert_eq!(
            h.send(r#"{"execute": "query-sev-launch-measure"}"#),
            [err(
                "GenericError",
                "SEV launch measurement is not available"
            )]
        );
        assert_eq!(
            h.send(r#"{"execute": "query-sev-launch-log"}"#),
            [r#"{"return": {"steps": [1, 2]}}"#]
        );
        let out = h.send(r#"{"execute": "query-commands"}"#);
        for name in command_names() {
            assert!(
                out[0].contains(&format!(r#"{{"name": "{name}"}}"#)),
                "{name}"
            );
        }
        assert_eq!(
            h.send(r#"{"execute": "query-version"}"#),
            [r#"{"return": {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": "test"}}"#]
        );
        let handled = h.session.handle(
            Ok(Json::Dict(Dict::new().with("execute", Json::str("quit")))),
            &h.backend,
        );
        assert!(handled.quit);
        assert_eq!(handled.out.len(), 2);
        assert_eq!(write(&handled.out[0]), r#"{"return": {}}"#);
        assert!(write(&handled.out[1]).contains(
            r#""event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}"#
        ));
        assert!(h.mock.lock().unwrap().quit);
    }

    #[test]
    fn ids_are_echoed_verbatim() {
        let mut h = Harness::negotiated();
        for (id, echoed) in [
            ("1", "1"),
            ("-1", "-1"),
            ("18446744073709551615", "18446744073709551615"),
            ("0.1", "0.10000000000000001"),
            ("1e999", "null"),
            ("'q'", r#""q""#),
            (r#""\u00e9""#, r#""\u00E9""#),
            ("[true, {}]", "[true, {}]"),
        ] {
            assert_eq!(
                h.send(&format!(r#"{{"execute": "query-status", "id": {id}}}"#)),
                [format!(
                    r#"{{"return": {{"status": "prelaunch", "running": false}}, "id": {echoed}}}"#
                )]
            );
        }
    }

    #[test]
    fn errors_quote_an_excerpt_of_huge_names() {
        let mut h = Harness::negotiated();
        let huge = "n".repeat(1 << 20);
        // QMP output is ASCII: the cut mark is escaped.
        let cut = format!("{}\\u2026", "n".repeat(sev_os::EXCERPT_CHARS - 1));
        for (input, desc) in [
            (
                format!(r#"{{"execute": "{huge}"}}"#),
                format!("The command {cut} has not been found"),
            ),
            (
                format!(r#"{{"execute": "cont", "{huge}": 1}}"#),
                format!("QMP input member '{cut}' is unexpected"),
            ),
            (
                format!(r#"{{"execute": "cont", "arguments": {{"{huge}": 1}}}}"#),
                format!("Parameter '{cut}' is unexpected"),
            ),
            (
                format!(
                    r#"{{"execute": "qmp_capabilities", "arguments": {{"enable": ["{huge}"]}}}}"#
                ),
                format!("Parameter 'null' does not accept value '{cut}'"),
            ),
            (
                format!(r#"{{"execute": "cont", "id": {huge}}}"#),
                format!("JSON parse error, invalid keyword '{cut}'"),
            ),
        ] {
            let out = h.send(&input);
            assert_eq!(out.len(), 1);
            assert!(
                out[0].contains(&format!(r#""desc": "{desc}""#)),
                "{}",
                &out[0][..out[0].len().min(300)]
            );
            assert!(out[0].len() < 1024);
        }
    }

    #[test]
    fn poisoned_backend_still_answers() {
        let h = Harness::negotiated();
        let mock = h.mock.clone();
        let _ = std::thread::spawn(move || {
            let _guard = mock.lock().unwrap();
            panic!("poison");
        })
        .join();
        let mut h = h;
        assert_eq!(h.send(r#"{"execute": "query-status"}"#).len(), 1);
    }
}
