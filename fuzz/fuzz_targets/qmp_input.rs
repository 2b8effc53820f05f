//! The QMP server's input path (JSON streamer, request checks, argument
//! checks, dispatch to the backend, reply and event writing) on arbitrary
//! client bytes: the server never dies, and everything it writes is
//! CRLF-terminated lines of ASCII, each a JSON object, the first the
//! greeting.
//!
//! The server has no public entry without a socket, so a real `QmpServer`
//! runs on a Unix socket in a temporary directory, with a mock backend,
//! once per process. For each input the harness connects, sends the bytes
//! (after a valid `{"execute": "qmp_capabilities"}` when bit 0 of the first
//! byte is set; the first byte is not sent), half-closes, and reads until
//! EOF. The backend is reset before each input, so a finding reproduces
//! from its input; it echoes client strings into results, errors and an
//! event, to put arbitrary text through the writer.
#![no_main]

use std::io::{ErrorKind, Read as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize as _;
use sev_vmm::monitor::qmp::{
    EventSender, GuestReport, QmpBackend, QmpError, QmpEvent, QmpServer, RunState,
    SevAttestationReport, SevCapability, SevInfo, SevLaunchMeasureInfo, SevState, StatusInfo,
};

const NEGOTIATE: &[u8] = br#"{"execute": "qmp_capabilities"}"#;
/// Far above what one small input needs; reaching it with the server alive
/// is not treated as a finding (libFuzzer's own -timeout catches hangs).
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A VM that answers every command with fixed values or errors, echoing
/// the client's strings.
struct Mock {
    state: RunState,
    events: Option<EventSender>,
}

impl Mock {
    fn reset(&mut self) {
        self.state = RunState::Prelaunch;
    }
}

impl QmpBackend for Mock {
    fn query_status(&mut self) -> StatusInfo {
        StatusInfo::new(self.state)
    }

    fn query_sev(&mut self) -> Result<SevInfo, QmpError> {
        Ok(match self.state {
            RunState::Prelaunch => SevInfo::sev(1, 55, 21, SevState::LaunchSecret, 1, 1),
            _ => SevInfo::sev_snp(1, 55, 21, SevState::Running, 0x30000),
        })
    }

    fn query_sev_launch_measure(&mut self) -> Result<SevLaunchMeasureInfo, QmpError> {
        match self.state {
            RunState::Prelaunch => Ok(SevLaunchMeasureInfo::from_bytes(&[0xAB; 48])),
            _ => Err(QmpError::generic("SEV launch measurement is not available")),
        }
    }

    fn query_sev_capabilities(&mut self) -> Result<SevCapability, QmpError> {
        Ok(SevCapability::new("cGRo", "Y2hhaW4=", "aWQ=", 51, 1))
    }

    fn sev_inject_launch_secret(
        &mut self,
        packet_header: &str,
        secret: &str,
        gpa: Option<u64>,
    ) -> Result<(), QmpError> {
        match gpa {
            Some(gpa) if gpa % 2 == 1 => Err(QmpError::generic(format!(
                "cannot inject {packet_header:?} / {secret} at {gpa:#x}"
            ))),
            _ => Ok(()),
        }
    }

    fn query_sev_attestation_report(
        &mut self,
        mnonce: &str,
    ) -> Result<SevAttestationReport, QmpError> {
        if mnonce.len() % 2 == 0 {
            Ok(SevAttestationReport::new(mnonce))
        } else {
            Err(QmpError::generic(format!(
                "SEV: mnonce must be 16 bytes (got {mnonce})"
            )))
        }
    }

    fn cont(&mut self) -> Result<(), QmpError> {
        self.state = RunState::Running;
        Ok(())
    }

    fn stop(&mut self) -> Result<(), QmpError> {
        if self.state == RunState::Prelaunch {
            return Err(QmpError::generic("cannot stop in prelaunch"));
        }
        self.state = RunState::Paused;
        Ok(())
    }

    fn quit(&mut self) {
        self.state = RunState::Shutdown;
    }

    fn human_monitor_command(
        &mut self,
        command_line: &str,
        cpu_index: Option<i64>,
    ) -> Result<String, QmpError> {
        if cpu_index.is_some_and(|i| i < 0) {
            return Err(QmpError::generic(
                "Parameter 'cpu-index' expects a CPU number",
            ));
        }
        if let Some(events) = &self.events {
            events.emit(&QmpEvent::Other {
                name: format!("HMP_{}", command_line.len()),
                data: Some(serde_json::json!({ "command-line": command_line })),
            });
        }
        Ok(format!("{command_line} {cpu_index:?}\r\n"))
    }

    fn query_sev_launch_log(&mut self) -> Result<serde_json::Value, QmpError> {
        Ok(serde_json::json!({
            "entries": [
                {"kind": "LAUNCH_UPDATE_DATA", "gpa": u64::MAX, "len": 4096},
                {"kind": "note", "text": "\u{e9}\u{1}\"\\\u{7f}\u{10ffff}", "f": 1.5e300,
                 "neg": i64::MIN, "tiny": 5e-324},
            ],
            "nested": [null, true, false, {"a": [], "b": {}}],
            "digest": "00ff",
        }))
    }

    fn guest_report(
        &mut self,
        report_data: Option<&str>,
        certs_pages: Option<u64>,
    ) -> Result<GuestReport, QmpError> {
        match certs_pages {
            Some(0) => Err(QmpError::generic(format!(
                "no room for certificates for {report_data:?}"
            ))),
            _ => Ok(GuestReport::new(
                report_data.unwrap_or_default(),
                format!("{certs_pages:?}"),
            )),
        }
    }

    fn read_memory(&mut self, gpa: u64, size: u64) -> Result<Vec<u8>, QmpError> {
        // The server bounds `size`; the bytes are the address's low byte.
        match gpa.checked_add(size) {
            Some(end) => Ok((gpa..end).map(|a| a as u8).collect()),
            None => Err(QmpError::generic("the range wraps past the top")),
        }
    }
}

struct Harness {
    path: PathBuf,
    backend: Arc<Mutex<Mock>>,
    server: JoinHandle<()>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmp.sock");
        let server = QmpServer::bind(&path).unwrap();
        let backend = Arc::new(Mutex::new(Mock {
            state: RunState::Prelaunch,
            events: Some(server.event_sender()),
        }));
        let shared: Arc<Mutex<dyn QmpBackend>> = backend.clone();
        let server = std::thread::Builder::new()
            .name("qmp-server".into())
            .spawn(move || loop {
                // `quit` ends one `serve`; serve the next input again.
                server.serve(Arc::clone(&shared)).unwrap();
            })
            .unwrap();
        Harness {
            path,
            backend,
            server,
        }
    })
}

const DIR_PREFIX: &str = "sevkit-fuzz-qmp-";

/// libFuzzer ends the process with `exit`, so the socket directory outlives
/// it: remove those of processes that are gone.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn server_alive(h: &Harness) {
    assert!(!h.server.is_finished(), "the QMP server thread died");
}

/// Writes everything (MSG_NOSIGNAL: no SIGPIPE if the server already
/// closed, e.g. after `quit`).
fn send_all(stream: &UnixStream, mut data: &[u8]) {
    while !data.is_empty() {
        match rustix::net::send(stream, data, rustix::net::SendFlags::NOSIGNAL) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            // The server closed (quit) or we timed out: read what came.
            Err(_) => return,
        }
    }
}

fn check_json_line(line: &[u8], input: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(line);
    assert!(
        line.is_ascii(),
        "non-ASCII output line {text:?} for {input:?}"
    );
    let mut de = serde_json::Deserializer::from_slice(line);
    de.disable_recursion_limit();
    let value = serde_json::Value::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .unwrap_or_else(|e| panic!("output line {text:?} is not JSON ({e}) for {input:?}"));
    assert!(
        value.is_object(),
        "output line {text:?} is not an object for {input:?}"
    );
    value
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, body)) = data.split_first() else {
        return;
    };
    let h = harness();
    server_alive(h);
    h.backend
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .reset();

    let mut input = Vec::with_capacity(NEGOTIATE.len() + body.len());
    if opts & 1 != 0 {
        input.extend_from_slice(NEGOTIATE);
    }
    input.extend_from_slice(body);

    let Ok(mut stream) = UnixStream::connect(&h.path) else {
        server_alive(h);
        panic!("cannot connect to the QMP server");
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    send_all(&stream, &input);
    let _ = stream.shutdown(std::net::Shutdown::Write);

    let mut out = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Slow, not dead: give up on this input.
                server_alive(h);
                return;
            }
            // Reset by the server (it stopped reading): check what came.
            Err(_) => break,
        }
    }
    server_alive(h);

    assert!(!out.is_empty(), "no greeting for {input:?}");
    assert!(
        out.ends_with(b"\r\n"),
        "output does not end in CRLF: {:?}",
        String::from_utf8_lossy(&out)
    );
    let mut lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
    lines.pop(); // after the final CRLF
    for line in &mut lines {
        *line = line
            .strip_suffix(b"\r")
            .unwrap_or_else(|| panic!("bare LF in output {:?}", String::from_utf8_lossy(&out)));
    }
    for (i, line) in lines.iter().enumerate() {
        let value = check_json_line(line, &input);
        if i == 0 {
            assert!(value.get("QMP").is_some(), "first line is not the greeting");
        }
    }
});
