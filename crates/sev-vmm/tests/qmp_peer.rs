//! The QMP server against clients: QEMU's own client library (PyPI
//! `qemu.qmp`, driven by `tests/qmp/drive.py`) and raw Unix sockets for the
//! protocol's edge cases.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use sev_vmm::monitor::qmp::{
    ErrorClass, GuestReport, QmpBackend, QmpError, QmpEvent, QmpServer, QmpServerError, RunState,
    ServeOutcome, SevAttestationReport, SevCapability, SevInfo, SevLaunchMeasureInfo, SevState,
    StatusInfo, VersionInfo,
};

// ---------------------------------------------------------------------------
// A mock VM with QEMU's behaviour and texts.

/// OVMF's secret area in the mock's firmware.
const SECRET_AREA_GPA: u64 = 0x80_0000;

#[derive(Debug)]
struct MockVm {
    snp: bool,
    run: RunState,
    sev: SevState,
    secrets: Vec<(u64, Vec<u8>)>,
    quit: bool,
}

impl MockVm {
    /// A guest started with `-S`, launch updates issued, not measured yet.
    fn new(snp: bool) -> Self {
        Self {
            snp,
            run: RunState::Prelaunch,
            sev: SevState::LaunchUpdate,
            secrets: Vec::new(),
            quit: false,
        }
    }

    /// What QEMU does when machine init is done: LAUNCH_MEASURE (SEV only).
    fn measure(&mut self) {
        if !self.snp && self.sev == SevState::LaunchUpdate {
            self.sev = SevState::LaunchSecret;
        }
    }

    fn sev_state_number(&self) -> u32 {
        match self.sev {
            SevState::Uninit => 0,
            SevState::LaunchUpdate => 1,
            SevState::LaunchSecret => 2,
            SevState::Running => 3,
            SevState::SendUpdate => 4,
            SevState::ReceiveUpdate => 5,
        }
    }
}

fn measurement() -> Vec<u8> {
    (0..48u8).collect()
}

impl QmpBackend for MockVm {
    fn query_status(&mut self) -> StatusInfo {
        StatusInfo::new(self.run)
    }

    fn query_sev(&mut self) -> Result<SevInfo, QmpError> {
        Ok(if self.snp {
            SevInfo::sev_snp(1, 55, 21, self.sev, 0x3_0000)
        } else {
            SevInfo::sev(1, 55, 21, self.sev, 0x1, 1)
        })
    }

    fn query_sev_launch_measure(&mut self) -> Result<SevLaunchMeasureInfo, QmpError> {
        if self.snp || !matches!(self.sev, SevState::LaunchSecret | SevState::Running) {
            return Err(QmpError::generic("SEV launch measurement is not available"));
        }
        Ok(SevLaunchMeasureInfo::from_bytes(&measurement()))
    }

    fn query_sev_capabilities(&mut self) -> Result<SevCapability, QmpError> {
        Ok(SevCapability::new(
            B64.encode([0xAA; 2084]),
            B64.encode([0xBB; 4 * 2084]),
            B64.encode([0xCC; 64]),
            51,
            1,
        ))
    }

    fn sev_inject_launch_secret(
        &mut self,
        packet_header: &str,
        secret: &str,
        gpa: Option<u64>,
    ) -> Result<(), QmpError> {
        if self.snp || self.sev != SevState::LaunchSecret {
            return Err(QmpError::generic(format!(
                "SEV: Not in correct state. (LSECRET) {:x}",
                self.sev_state_number()
            )));
        }
        B64.decode(packet_header)
            .map_err(|_| QmpError::generic("SEV: Failed to decode sequence header"))?;
        let data = B64
            .decode(secret)
            .map_err(|_| QmpError::generic("SEV: Failed to decode data"))?;
        self.secrets.push((gpa.unwrap_or(SECRET_AREA_GPA), data));
        Ok(())
    }

    fn query_sev_attestation_report(
        &mut self,
        mnonce: &str,
    ) -> Result<SevAttestationReport, QmpError> {
        let nonce = B64.decode(mnonce).unwrap_or_default();
        if nonce.len() != 16 {
            return Err(QmpError::generic(format!(
                "SEV: mnonce must be 16 bytes (got {})",
                nonce.len()
            )));
        }
        let mut report = nonce;
        report.resize(0xA0, 0x5A);
        Ok(SevAttestationReport::from_bytes(&report))
    }

    fn cont(&mut self) -> Result<(), QmpError> {
        if self.run == RunState::Shutdown {
            return Err(QmpError::generic(
                "Resetting the Virtual Machine is required",
            ));
        }
        if self.sev != SevState::Running {
            self.sev = SevState::Running; // LAUNCH_FINISH at the first start
        }
        self.run = RunState::Running;
        Ok(())
    }

    fn stop(&mut self) -> Result<(), QmpError> {
        if self.run == RunState::Running {
            self.run = RunState::Paused;
        }
        Ok(())
    }

    fn quit(&mut self) {
        self.quit = true;
        self.run = RunState::Shutdown;
    }

    fn human_monitor_command(
        &mut self,
        command_line: &str,
        cpu_index: Option<i64>,
    ) -> Result<String, QmpError> {
        if cpu_index.is_some_and(|i| i != 0) {
            return Err(QmpError::generic(
                "Parameter 'cpu-index' expects a CPU number",
            ));
        }
        match command_line.trim() {
            "info status" => Ok(format!("VM status: {}\r\n", self.run.as_str())),
            "" => Ok(String::new()),
            other => {
                let name = other.split_whitespace().next().unwrap_or_default();
                Ok(format!("unknown command: '{name}'\r\n"))
            }
        }
    }

    fn query_sev_launch_log(&mut self) -> Result<serde_json::Value, QmpError> {
        Ok(json!({
            "sev-type": if self.snp { "sev-snp" } else { "sev" },
            "steps": [{"command": "LAUNCH_START", "policy": 1}, {"command": "LAUNCH_UPDATE_DATA", "len": 4096}],
        }))
    }

    fn guest_report(
        &mut self,
        report_data: Option<&str>,
        certs_pages: Option<u64>,
    ) -> Result<GuestReport, QmpError> {
        if !self.snp {
            return Err(QmpError::generic(
                "x-sevkit-guest-report: not an SEV-SNP guest",
            ));
        }
        if self.run != RunState::Running {
            return Err(QmpError::new(
                ErrorClass::DeviceNotActive,
                "The guest is not running",
            ));
        }
        let data = report_data
            .map(|d| B64.decode(d).unwrap_or_default())
            .unwrap_or_default();
        let mut report = vec![0u8; 1184];
        report[0x50..0x50 + data.len()].copy_from_slice(&data);
        let certs = vec![0x11; 4096 * certs_pages.unwrap_or(1).min(4) as usize];
        Ok(GuestReport::from_bytes(&report, &certs))
    }

    fn read_memory(&mut self, gpa: u64, size: u64) -> Result<Vec<u8>, QmpError> {
        let end = gpa.checked_add(size).filter(|&end| end <= MOCK_RAM);
        if end.is_none() {
            return Err(QmpError::generic(format!(
                "guest physical range {gpa:#x}+{size:#x} is not guest memory (RAM or firmware); \
                 nothing was accessed"
            )));
        }
        Ok((gpa..gpa + size).map(mock_byte).collect())
    }
}

/// The mock's guest RAM: `[0, MOCK_RAM)`, byte `a` is [`mock_byte`]`(a)`.
const MOCK_RAM: u64 = 4 << 20;

fn mock_byte(gpa: u64) -> u8 {
    (gpa.wrapping_mul(7) ^ (gpa >> 8)) as u8
}

// ---------------------------------------------------------------------------
// Harness

struct Running {
    path: PathBuf,
    thread: JoinHandle<Result<ServeOutcome, QmpServerError>>,
    stop: sev_vmm::monitor::qmp::QmpShutdownHandle,
    events: sev_vmm::monitor::qmp::EventSender,
    _dir: tempfile::TempDir,
}

fn start(vm: Arc<Mutex<MockVm>>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let server = QmpServer::bind(&path)
        .unwrap()
        .with_version(VersionInfo::new(10, 1, 0, "sevkit-test"));
    let stop = server.shutdown_handle();
    let events = server.event_sender();
    let backend: Arc<Mutex<dyn QmpBackend>> = vm;
    let thread = thread::spawn(move || server.serve(backend));
    Running {
        path,
        thread,
        stop,
        events,
        _dir: dir,
    }
}

/// A raw client: reads CRLF-terminated lines.
struct Raw {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Raw {
    fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).unwrap();
        // A guard against a hung test only.
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        Self {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).unwrap();
        assert!(
            buf.ends_with(b"\r\n"),
            "not a CRLF line: {:?}",
            String::from_utf8_lossy(&buf)
        );
        assert!(buf.is_ascii(), "QMP output must be ASCII");
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).unwrap()
    }

    fn json(&mut self) -> Value {
        serde_json::from_str(&self.line()).unwrap()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends and reads one reply.
    fn ask(&mut self, request: &str) -> Value {
        self.send(request.as_bytes());
        self.json()
    }

    fn greeted_and_negotiated(path: &Path) -> Self {
        let mut raw = Self::connect(path);
        raw.line();
        assert_eq!(
            raw.ask(r#"{"execute": "qmp_capabilities"}"#),
            json!({"return": {}})
        );
        raw
    }

    fn at_eof(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

fn error(class: &str, desc: &str) -> Value {
    json!({"error": {"class": class, "desc": desc}})
}

// ---------------------------------------------------------------------------
// The real client

fn drive(path: &Path, script: &Value) -> Vec<Value> {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qmp/drive.py");
    let mut child = Command::new("python3")
        .arg(&driver)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "drive.py failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The result line of step `i`.
fn step(lines: &[Value], i: usize) -> &Value {
    lines
        .iter()
        .find(|l| l.get("step") == Some(&json!(i)))
        .unwrap_or_else(|| panic!("no step {i} in {lines:#?}"))
}

fn ret(lines: &[Value], i: usize) -> &Value {
    step(lines, i)
        .get("return")
        .unwrap_or_else(|| panic!("step {i} failed: {}", step(lines, i)))
}

fn err(lines: &[Value], i: usize) -> (&str, &str) {
    let e = step(lines, i)
        .get("error")
        .unwrap_or_else(|| panic!("step {i} succeeded: {}", step(lines, i)));
    (e["class"].as_str().unwrap(), e["desc"].as_str().unwrap())
}

/// Every event line, in order, with the index of the line.
fn events(lines: &[Value]) -> Vec<(usize, &Value)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.get("event").filter(|e| e.is_object()).map(|e| (i, e)))
        .collect()
}

fn position_of_step(lines: &[Value], i: usize) -> usize {
    lines
        .iter()
        .position(|l| l.get("step") == Some(&json!(i)))
        .unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn assert_timestamp(event: &Value) {
    let ts = &event["timestamp"];
    assert_eq!(keys(ts), ["microseconds", "seconds"]);
    assert!(ts["seconds"].as_i64().is_some_and(|s| s > 0));
    assert!(ts["microseconds"]
        .as_i64()
        .is_some_and(|us| (0..1_000_000).contains(&us)));
}

#[test]
#[cfg_attr(
    not(sevkit_qemu_qmp),
    ignore = "needs PyPI qemu.qmp (installed by .ci/run)"
)]
fn qemu_qmp_client_sev_guest() {
    let vm = Arc::new(Mutex::new(MockVm::new(false)));
    let server = start(vm.clone());
    sev_before_measurement(&server.path);
    // Machine init done: the guest is measured. A second client.
    vm.lock().unwrap().measure();
    sev_after_measurement(&server.path, &vm);
    // quit ended the server.
    assert_eq!(server.thread.join().unwrap().unwrap(), ServeOutcome::Quit);
    assert!(vm.lock().unwrap().quit);
}

/// The first client: before the measurement; argument errors.
fn sev_before_measurement(path: &Path) {
    let script = json!([
        {"execute": "query-status"},
        {"execute": "query-sev"},
        {"execute": "query-sev-launch-measure"},
        {"execute": "query-version"},
        {"execute": "query-commands"},
        {"execute": "qmp_capabilities"},
        {"execute": "no-such-command"},
        {"execute": "sev-inject-launch-secret", "arguments": {"secret": "AA=="}},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": 1, "secret": "AA=="}},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "AA==", "secret": "AA==", "gpa": "0x1000"}},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "AA==", "secret": "AA==", "gpa": -1.5}},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "AA==", "secret": "AA==", "bogus": true}},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "AA==", "secret": "AA=="}},
        {"execute": "query-sev-attestation-report", "arguments": {}},
        {"execute": "query-sev-attestation-report", "arguments": {"mnonce": "AAAA"}},
        {"execute": "human-monitor-command", "arguments": {"command-line": "info status"}},
        {"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": 3}},
        {"execute": "human-monitor-command", "arguments": {"command-line": "frobnicate"}},
        {"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": "0"}},
        {"execute": "query-status", "arguments": {"extra": 1}},
    ]);
    let lines = drive(path, &script);
    let greeting = &lines[0]["greeting"];
    assert_eq!(
        greeting,
        &json!({"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": "sevkit-test"}, "capabilities": ["oob"]}})
    );
    assert_eq!(
        ret(&lines, 0),
        &json!({"running": false, "status": "prelaunch"})
    );
    // Exactly these members.
    assert_eq!(
        ret(&lines, 1),
        &json!({"enabled": true, "api-major": 1, "api-minor": 55, "build-id": 21, "state": "launch-update", "sev-type": "sev", "policy": 1, "handle": 1})
    );
    assert_eq!(
        ret(&lines, 3),
        &json!({"qemu": {"major": 10, "minor": 1, "micro": 0}, "package": "sevkit-test"})
    );
    let names: Vec<&str> = ret(&lines, 4)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(keys(c), ["name"]);
            c["name"].as_str().unwrap()
        })
        .collect();
    let expected = "qmp_capabilities query-status query-sev query-sev-launch-measure \
        query-sev-capabilities sev-inject-launch-secret query-sev-attestation-report cont stop \
        quit human-monitor-command query-commands query-version query-sev-launch-log \
        x-sevkit-guest-report";
    for name in expected.split_whitespace() {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(ret(&lines, 15), &json!("VM status: prelaunch\r\n"));
    assert_eq!(ret(&lines, 17), &json!("unknown command: 'frobnicate'\r\n"));
    for (i, class, desc) in [
        (2, "GenericError", "SEV launch measurement is not available"),
        (
            5,
            "CommandNotFound",
            "Capabilities negotiation is already complete, command ignored",
        ),
        (
            6,
            "CommandNotFound",
            "The command no-such-command has not been found",
        ),
        (7, "GenericError", "Parameter 'packet-header' is missing"),
        (
            8,
            "GenericError",
            "Invalid parameter type for 'packet-header', expected: string",
        ),
        (9, "GenericError", "Parameter 'gpa' expects uint64"),
        (10, "GenericError", "Parameter 'gpa' expects uint64"),
        (11, "GenericError", "Parameter 'bogus' is unexpected"),
        (12, "GenericError", "SEV: Not in correct state. (LSECRET) 1"),
        (13, "GenericError", "Parameter 'mnonce' is missing"),
        (14, "GenericError", "SEV: mnonce must be 16 bytes (got 3)"),
        (
            16,
            "GenericError",
            "Parameter 'cpu-index' expects a CPU number",
        ),
        (
            18,
            "GenericError",
            "Invalid parameter type for 'cpu-index', expected: integer",
        ),
        (19, "GenericError", "Parameter 'extra' is unexpected"),
    ] {
        assert_eq!(err(&lines, i), (class, desc), "step {i}");
    }
    assert!(events(&lines).is_empty());
    assert_eq!(lines.last(), Some(&json!({"done": true})));
}

/// The second client: the launch secret, the run state and its events,
/// quit.
fn sev_after_measurement(path: &Path, vm: &Mutex<MockVm>) {
    let mnonce = B64.encode([7u8; 16]);
    let script = json!([
        {"execute": "query-sev"},
        {"execute": "query-sev-launch-measure"},
        {"execute": "query-sev-capabilities"},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "AAAA", "secret": "c2VjcmV0", "gpa": u64::MAX}},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "AAAA", "secret": "c2VjcmV0"}},
        {"execute": "query-sev-attestation-report", "arguments": {"mnonce": mnonce}},
        {"execute": "query-sev-launch-log"},
        {"execute": "x-sevkit-guest-report"},
        {"execute": "cont"},
        {"execute": "query-status"},
        {"execute": "cont"},
        {"execute": "stop"},
        {"execute": "query-status"},
        {"execute": "stop"},
        {"execute": "cont"},
        {"execute": "quit"},
        {"wait_event": "SHUTDOWN"},
        {"disconnect": true},
    ]);
    let lines = drive(path, &script);
    assert_eq!(ret(&lines, 0)["state"], "launch-secret");
    assert_eq!(ret(&lines, 1), &json!({"data": B64.encode(measurement())}));
    let caps = ret(&lines, 2);
    assert_eq!(
        keys(caps),
        [
            "cbitpos",
            "cert-chain",
            "cpu0-id",
            "pdh",
            "reduced-phys-bits"
        ]
    );
    assert_eq!(caps["cbitpos"], 51);
    assert_eq!(caps["reduced-phys-bits"], 1);
    assert!(
        caps["pdh"].is_string() && caps["cert-chain"].is_string() && caps["cpu0-id"].is_string()
    );
    assert_eq!(ret(&lines, 3), &json!({}));
    assert_eq!(ret(&lines, 4), &json!({}));
    assert_eq!(
        vm.lock().unwrap().secrets,
        [
            (u64::MAX, b"secret".to_vec()),
            (SECRET_AREA_GPA, b"secret".to_vec())
        ]
    );
    let report = ret(&lines, 5);
    assert_eq!(keys(report), ["data"]);
    assert_eq!(
        B64.decode(report["data"].as_str().unwrap()).unwrap()[..16],
        [7u8; 16]
    );
    assert_eq!(ret(&lines, 6)["steps"][0]["command"], "LAUNCH_START");
    assert_eq!(
        err(&lines, 7),
        (
            "GenericError",
            "x-sevkit-guest-report: not an SEV-SNP guest"
        )
    );
    assert_eq!(ret(&lines, 8), &json!({}));
    assert_eq!(
        ret(&lines, 9),
        &json!({"running": true, "status": "running"})
    );
    assert_eq!(ret(&lines, 10), &json!({}));
    assert_eq!(
        ret(&lines, 12),
        &json!({"running": false, "status": "paused"})
    );
    // RESUME before cont's reply, STOP before stop's (qemu.qmp hands an
    // event to listeners before it routes the reply that follows it), none
    // for the no-ops; SHUTDOWN (which follows quit's reply on the wire:
    // see raw_quit_sends_reply_then_shutdown_then_hangs_up).
    let evs = events(&lines);
    let names: Vec<&str> = evs
        .iter()
        .map(|(_, e)| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["RESUME", "STOP", "RESUME", "SHUTDOWN"]);
    assert!(evs[0].0 < position_of_step(&lines, 8));
    assert!(evs[1].0 > position_of_step(&lines, 10) && evs[1].0 < position_of_step(&lines, 11));
    assert!(evs[2].0 > position_of_step(&lines, 13) && evs[2].0 < position_of_step(&lines, 14));
    for (_, e) in &evs {
        assert_timestamp(e);
        if e["event"] == "SHUTDOWN" {
            assert_eq!(keys(e), ["data", "event", "timestamp"]);
            assert_eq!(
                e["data"],
                json!({"guest": false, "reason": "host-qmp-quit"})
            );
        } else {
            assert_eq!(keys(e), ["event", "timestamp"]);
        }
    }
    assert_eq!(ret(&lines, 15), &json!({}));
    assert_eq!(step(&lines, 17)["disconnected"], true);
}

#[test]
#[cfg_attr(
    not(sevkit_qemu_qmp),
    ignore = "needs PyPI qemu.qmp (installed by .ci/run)"
)]
fn qemu_qmp_client_snp_guest() {
    let vm = Arc::new(Mutex::new(MockVm::new(true)));
    let server = start(vm.clone());
    let data = B64.encode([0x42u8; 64]);
    let script = json!([
        {"execute": "query-sev"},
        {"execute": "query-sev-launch-measure"},
        {"execute": "x-sevkit-guest-report"},
        {"execute": "cont"},
        {"execute": "query-sev"},
        {"execute": "x-sevkit-guest-report", "arguments": {"report-data": data, "certs-pages": 2}},
        {"execute": "x-sevkit-guest-report", "arguments": {"report-data": B64.encode([0u8; 65])}},
        {"execute": "x-sevkit-guest-report", "arguments": {"certs-pages": -1}},
        {"execute": "x-sevkit-guest-report", "arguments": {"report-data": 5}},
        {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": "AAAA", "secret": "AAAA"}},
    ]);
    let lines = drive(&server.path, &script);
    let sev = ret(&lines, 0);
    assert_eq!(
        keys(sev),
        [
            "api-major",
            "api-minor",
            "build-id",
            "enabled",
            "sev-type",
            "snp-policy",
            "state"
        ]
    );
    assert_eq!(sev["sev-type"], "sev-snp");
    assert_eq!(sev["snp-policy"], 0x3_0000);
    assert_eq!(sev["state"], "launch-update");
    assert_eq!(
        err(&lines, 1),
        ("GenericError", "SEV launch measurement is not available")
    );
    assert_eq!(
        err(&lines, 2),
        ("DeviceNotActive", "The guest is not running")
    );
    assert_eq!(ret(&lines, 4)["state"], "running");
    let report = ret(&lines, 5);
    assert_eq!(keys(report), ["certs", "report"]);
    let bytes = B64.decode(report["report"].as_str().unwrap()).unwrap();
    assert_eq!(bytes.len(), 1184);
    assert_eq!(bytes[0x50..0x90], [0x42u8; 64]);
    assert_eq!(
        B64.decode(report["certs"].as_str().unwrap()).unwrap().len(),
        2 * 4096
    );
    assert_eq!(
        err(&lines, 6),
        (
            "GenericError",
            "Parameter 'report-data' expects base64 data of at most 64 bytes"
        )
    );
    assert_eq!(
        err(&lines, 7),
        ("GenericError", "Parameter 'certs-pages' expects uint32_t")
    );
    assert_eq!(
        err(&lines, 8),
        (
            "GenericError",
            "Invalid parameter type for 'report-data', expected: string"
        )
    );
    assert_eq!(
        err(&lines, 9),
        ("GenericError", "SEV: Not in correct state. (LSECRET) 3")
    );
    server.stop.shutdown();
    assert_eq!(
        server.thread.join().unwrap().unwrap(),
        ServeOutcome::Shutdown
    );
}

#[test]
#[cfg_attr(
    not(sevkit_qemu_qmp),
    ignore = "needs PyPI qemu.qmp (installed by .ci/run)"
)]
fn qemu_qmp_client_reads_memory() {
    let vm = Arc::new(Mutex::new(MockVm::new(false)));
    let server = start(vm);
    let max = sev_vmm::monitor::qmp::MAX_READ_MEMORY;
    let script = json!([
        {"execute": "x-sevkit-read-memory", "arguments": {"gpa": 0x1234, "size": 16}},
        {"execute": "x-sevkit-read-memory", "arguments": {"gpa": 0, "size": max}},
        {"execute": "x-sevkit-read-memory", "arguments": {"gpa": 0, "size": max + 1}},
        {"execute": "x-sevkit-read-memory", "arguments": {"gpa": MOCK_RAM - 1, "size": 2}},
        {"execute": "x-sevkit-read-memory", "arguments": {"size": 1}},
        {"execute": "x-sevkit-read-memory", "arguments": {"gpa": 0}},
        {"execute": "x-sevkit-read-memory", "arguments": {"gpa": "0", "size": 1}},
        {"execute": "x-sevkit-read-memory", "arguments": {"gpa": 0, "size": 1, "raw": true}},
        {"execute": "query-commands"},
    ]);
    let lines = drive(&server.path, &script);
    let bytes = |i| {
        B64.decode(ret(&lines, i)["data"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(keys(ret(&lines, 0)), ["data"]);
    assert_eq!(
        bytes(0),
        (0x1234..0x1244).map(mock_byte).collect::<Vec<_>>()
    );
    let all = bytes(1);
    assert_eq!(all.len() as u64, max);
    assert!(all
        .iter()
        .enumerate()
        .all(|(a, &b)| b == mock_byte(a as u64)));
    for (i, desc) in [
        (
            2,
            format!("Parameter 'size' expects at most {max} bytes: read larger ranges in parts"),
        ),
        (
            3,
            format!(
                "guest physical range {:#x}+0x2 is not guest memory (RAM or firmware); \
                 nothing was accessed",
                MOCK_RAM - 1
            ),
        ),
        (4, "Parameter 'gpa' is missing".to_owned()),
        (5, "Parameter 'size' is missing".to_owned()),
        (6, "Parameter 'gpa' expects uint64".to_owned()),
        (7, "Parameter 'raw' is unexpected".to_owned()),
    ] {
        assert_eq!(err(&lines, i), ("GenericError", desc.as_str()), "step {i}");
    }
    assert!(ret(&lines, 8)
        .as_array()
        .unwrap()
        .contains(&json!({"name": "x-sevkit-read-memory"})));
    server.stop.shutdown();
    assert_eq!(
        server.thread.join().unwrap().unwrap(),
        ServeOutcome::Shutdown
    );
}

// ---------------------------------------------------------------------------
// Raw sockets: the protocol's edge cases.

#[test]
fn raw_greeting_negotiation_and_replies() {
    let vm = Arc::new(Mutex::new(MockVm::new(false)));
    let server = start(vm);
    let mut raw = Raw::connect(&server.path);
    assert_eq!(
        raw.line(),
        r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 10}, "package": "sevkit-test"}, "capabilities": ["oob"]}}"#
    );
    let expecting = "Expecting capabilities negotiation with 'qmp_capabilities'";
    assert_eq!(raw.ask(r#"{"execute": "query-status", "id": 7}"#), {
        let mut e = error("CommandNotFound", expecting);
        e["id"] = json!(7);
        e
    });
    // Several requests in one write, one request split over writes, single
    // quotes, no newlines.
    raw.send(br#"{"execute": 'qmp_capabilities', "id": "a"}{"execute": "query-sta"#);
    assert_eq!(raw.line(), r#"{"return": {}, "id": "a"}"#);
    raw.send(br#"tus", "id": ["b", 1.5]}"#);
    assert_eq!(
        raw.line(),
        r#"{"return": {"status": "prelaunch", "running": false}, "id": ["b", 1.5]}"#
    );
    // Malformed input.
    assert_eq!(
        raw.ask("[1, 2]\n"),
        error("GenericError", "QMP input must be a JSON object")
    );
    assert_eq!(
        raw.ask("{\"execute\": }\n"),
        error("GenericError", "JSON parse error, expecting value")
    );
    assert_eq!(
        raw.ask("{\"id\": 3}"),
        json!({"id": 3, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}})
    );
    assert_eq!(
        raw.ask("{\"execute\": \"stop\", \"x\": 1}"),
        error("GenericError", "QMP input member 'x' is unexpected")
    );
    assert_eq!(
        raw.ask("{\"execute\": 3}"),
        error(
            "GenericError",
            "QMP input member 'execute' must be a string"
        )
    );
    assert_eq!(
        raw.ask("{\"execute\": \"stop\", \"arguments\": 3}"),
        error(
            "GenericError",
            "QMP input member 'arguments' must be an object"
        )
    );
    // A stray byte, then a control character to resynchronise.
    raw.send(b"{\"execute\": \xff}\n");
    assert_eq!(
        raw.json(),
        error("GenericError", "JSON parse error, stray '\u{fffd}'")
    );
    assert_eq!(
        raw.json(),
        error("GenericError", "JSON parse error, expecting value")
    );
    raw.send(b"{\"execute\": \"stop\"\x01");
    assert_eq!(
        raw.json(),
        error("GenericError", "JSON parse error, stray '\u{1}'")
    );
    assert_eq!(
        raw.ask(r#"{"execute": "query-status"}"#)["return"]["status"],
        "prelaunch"
    );
    // Non-ASCII is escaped on output.
    assert_eq!(
        raw.line_after(r#"{"execute": "no-such-\u00e9\ud83d\ude00", "id": "\u00e9"}"#),
        r#"{"id": "\u00E9", "error": {"class": "CommandNotFound", "desc": "The command no-such-\u00E9\uD83D\uDE00 has not been found"}}"#
    );
    drop(raw);
    server.stop.shutdown();
    assert_eq!(
        server.thread.join().unwrap().unwrap(),
        ServeOutcome::Shutdown
    );
}

impl Raw {
    fn line_after(&mut self, request: &str) -> String {
        self.send(request.as_bytes());
        self.line()
    }
}

#[test]
fn raw_garbage_huge_and_deep_input() {
    let vm = Arc::new(Mutex::new(MockVm::new(false)));
    let server = start(vm);
    let mut raw = Raw::greeted_and_negotiated(&server.path);

    // Garbage: every reply is an error object without id, and the session
    // survives.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"{}[]:,\"'\\ \t0123456789-.eEtrufalsn\x02\x7f\x80\xc3\xfe";
    let mut garbage = Vec::new();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        garbage.push(alphabet[(x % alphabet.len() as u64) as usize]);
    }
    // Close whatever is open, then resynchronise with a control character.
    garbage.extend_from_slice(b"\"]]]]]]]]]]}}}}}}}}}}\n\x01\n");
    raw.send(&garbage);
    raw.send(br#"{"execute": "query-status", "id": "sync"}"#);
    loop {
        let reply = raw.json();
        if reply.get("id") == Some(&json!("sync")) {
            assert_eq!(reply["return"]["status"], "prelaunch");
            break;
        }
        assert!(
            reply.get("error").is_some() || reply.get("return").is_some(),
            "{reply}"
        );
    }

    // Nesting beyond 1024.
    let deep = format!("{}{}", "[".repeat(1025), "]".repeat(1025));
    raw.send(deep.as_bytes());
    assert_eq!(
        raw.json(),
        error("GenericError", "JSON nesting depth limit exceeded")
    );
    for _ in 0..1025 {
        assert_eq!(
            raw.json(),
            error("GenericError", "JSON parse error, expecting value")
        );
    }
    // Nesting of 1024 in an id is fine and echoed.
    let id = format!("{}{}", "[".repeat(1023), "]".repeat(1023));
    let reply = raw.line_after(&format!(r#"{{"execute": "query-status", "id": {id}}}"#));
    assert!(reply.ends_with(&format!(r#""id": {id}}}"#)));

    // A string longer than 64 MiB.
    let writer = {
        let mut w = raw.writer.try_clone().unwrap();
        thread::spawn(move || {
            w.write_all(b"{\"execute\": \"").unwrap();
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..65 {
                w.write_all(&chunk).unwrap();
            }
            w.write_all(b"\"}\n").unwrap();
        })
    };
    assert_eq!(
        raw.json(),
        error("GenericError", "JSON token size limit exceeded")
    );
    // The rest of the string lexes as a keyword, the quote opens a string
    // that the newline ends. QEMU quotes the whole 1 MiB keyword; sevkit
    // quotes an excerpt.
    assert_eq!(
        raw.json(),
        error(
            "GenericError",
            &format!(
                "JSON parse error, invalid keyword '{}…'",
                "a".repeat(sev_os::EXCERPT_CHARS - 1)
            )
        )
    );
    assert_eq!(
        raw.json(),
        error("GenericError", "JSON parse error, stray '\"}\n'")
    );
    writer.join().unwrap();
    assert_eq!(
        raw.ask(r#"{"execute": "query-status"}"#)["return"]["running"],
        false
    );

    server.stop.shutdown();
    assert_eq!(
        server.thread.join().unwrap().unwrap(),
        ServeOutcome::Shutdown
    );
}

#[test]
fn raw_quit_sends_reply_then_shutdown_then_hangs_up() {
    let vm = Arc::new(Mutex::new(MockVm::new(false)));
    let server = start(vm.clone());
    let mut raw = Raw::greeted_and_negotiated(&server.path);
    raw.send(br#"{"execute": "cont"}{"execute": "stop", "id": 2}{"execute": "quit", "id": 3}{"execute": "query-status"}"#);
    assert_eq!(raw.json()["event"], "RESUME");
    assert_eq!(raw.json(), json!({"return": {}}));
    assert_eq!(raw.json()["event"], "STOP");
    assert_eq!(raw.json(), json!({"return": {}, "id": 2}));
    assert_eq!(raw.json(), json!({"return": {}, "id": 3}));
    let line = raw.line();
    assert!(line.starts_with(r#"{"timestamp": {"seconds": "#), "{line}");
    assert!(
        line.ends_with(
            r#"}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#
        ),
        "{line}"
    );
    // The request after quit is not answered.
    assert!(raw.at_eof());
    assert_eq!(server.thread.join().unwrap().unwrap(), ServeOutcome::Quit);
    assert!(vm.lock().unwrap().quit);
}

#[test]
fn raw_clients_one_after_another() {
    let vm = Arc::new(Mutex::new(MockVm::new(false)));
    let server = start(vm);
    let mut first = Raw::greeted_and_negotiated(&server.path);
    // The second client connects while the first is served: it waits in the
    // backlog and is greeted once the first leaves.
    let mut second = Raw::connect(&server.path);
    assert_eq!(
        first.ask(r#"{"execute": "query-status"}"#)["return"]["status"],
        "prelaunch"
    );
    drop(first);
    assert!(second.line().starts_with(r#"{"QMP": "#));
    // A fresh session: negotiation again.
    assert_eq!(
        second.ask(r#"{"execute": "query-status"}"#),
        error(
            "CommandNotFound",
            "Expecting capabilities negotiation with 'qmp_capabilities'"
        )
    );
    assert_eq!(
        second.ask(r#"{"execute": "qmp_capabilities"}"#),
        json!({"return": {}})
    );
    // A client that half-closes still gets its replies.
    second.send(br#"{"execute": "query-status", "id": "last"}"#);
    second.writer.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(second.json()["id"], "last");
    assert!(second.at_eof());
    let mut third = Raw::greeted_and_negotiated(&server.path);
    assert_eq!(third.ask(r#"{"execute": "quit"}"#), json!({"return": {}}));
    assert_eq!(server.thread.join().unwrap().unwrap(), ServeOutcome::Quit);
}

#[test]
fn raw_events_from_elsewhere() {
    let vm = Arc::new(Mutex::new(MockVm::new(false)));
    let server = start(vm);
    let mut raw = Raw::connect(&server.path);
    raw.line();
    // Not delivered during negotiation.
    assert!(!server.events.emit(&QmpEvent::Stop));
    assert_eq!(
        raw.ask(r#"{"execute": "qmp_capabilities"}"#),
        json!({"return": {}})
    );
    let reset = QmpEvent::Other {
        name: "RESET".into(),
        data: Some(json!({"guest": true, "reason": "guest-reset"})),
    };
    assert!(server.events.emit(&reset));
    let event = raw.json();
    assert_eq!(event["event"], "RESET");
    assert_eq!(
        event["data"],
        json!({"guest": true, "reason": "guest-reset"})
    );
    assert_timestamp(&event);
    drop(raw);
    server.stop.shutdown();
    assert_eq!(
        server.thread.join().unwrap().unwrap(),
        ServeOutcome::Shutdown
    );
    assert!(!server.events.emit(&QmpEvent::Resume));
}

#[test]
fn shutdown_while_idle_and_while_connected() {
    // Idle: blocked in accept.
    let server = start(Arc::new(Mutex::new(MockVm::new(false))));
    server.stop.shutdown();
    assert!(server.stop.is_shutdown());
    assert_eq!(
        server.thread.join().unwrap().unwrap(),
        ServeOutcome::Shutdown
    );

    // Connected: blocked reading the client.
    let server = start(Arc::new(Mutex::new(MockVm::new(false))));
    let mut raw = Raw::greeted_and_negotiated(&server.path);
    server.stop.shutdown();
    assert_eq!(
        server.thread.join().unwrap().unwrap(),
        ServeOutcome::Shutdown
    );
    assert!(raw.at_eof());
}

#[test]
fn bind_rules() {
    let dir = tempfile::tempdir().unwrap();
    // Not a socket: refused, left alone.
    let file = dir.path().join("file");
    std::fs::write(&file, b"keep").unwrap();
    assert!(matches!(
        QmpServer::bind(&file),
        Err(QmpServerError::AddressInUse { .. })
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    // A live socket: refused.
    let path = dir.path().join("qmp.sock");
    let live = QmpServer::bind(&path).unwrap();
    // Only its owner can connect (QEMU's monitor socket is no wider).
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::symlink_metadata(&path).unwrap());
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert!(matches!(
        QmpServer::bind(&path),
        Err(QmpServerError::AddressInUse { .. })
    ));
    assert_eq!(live.path(), path);
    // Removed on drop.
    drop(live);
    assert!(!path.exists());
    // A stale socket: replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = QmpServer::bind(&path).unwrap();
    drop(server);
    assert!(!path.exists());
    // serve twice at once.
    let server = Arc::new(QmpServer::bind(&path).unwrap());
    let stop = server.shutdown_handle();
    let backend: Arc<Mutex<dyn QmpBackend>> = Arc::new(Mutex::new(MockVm::new(false)));
    let serving = {
        let (server, backend) = (server.clone(), backend.clone());
        thread::spawn(move || server.serve(backend))
    };
    // Wait until the first serve runs: its greeting proves it.
    let mut raw = Raw::connect(&path);
    raw.line();
    assert!(matches!(
        server.serve(backend),
        Err(QmpServerError::AlreadyServing)
    ));
    stop.shutdown();
    assert_eq!(serving.join().unwrap().unwrap(), ServeOutcome::Shutdown);
}
