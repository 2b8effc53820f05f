//! Helpers shared by the sevkit integration tests that run the software
//! AMD-SP: one cached chip identity, and `sevkit firmware serve` as a child.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sev_firmware_server::Client;
use sev_sp::FdMemory;

/// The sevkit binary under test.
pub const SEVKIT: &str = env!("CARGO_BIN_EXE_sevkit");
/// Socket timeout for clients.
pub const TIMEOUT: Option<Duration> = Some(Duration::from_secs(60));
/// The chip identity file in a state directory.
pub const CHIP_FILE: &str = "chip.sevfw";

/// The shared test chip's file (`sevkit-testkit`: minted once per target
/// directory, two RSA-4096 key generations), copied into every test's state
/// directory.
pub fn chip_file() -> &'static Path {
    static CHIP: OnceLock<PathBuf> = OnceLock::new();
    CHIP.get_or_init(|| {
        sevkit_testkit::chip();
        let chip = sevkit_testkit::chip_dir().join(CHIP_FILE);
        assert!(chip.is_file(), "the test chip's cache {}", chip.display());
        chip
    })
}

/// Makes `dir` (and its parents) a state directory holding the shared chip,
/// as `sevkit firmware init` leaves one (the platform keys come from the
/// first INIT).
pub fn state_with_chip(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(chip_file(), dir.join(CHIP_FILE)).unwrap();
}

pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
}

impl Daemon {
    pub fn start(state: &Path, extra: &[&str]) -> Self {
        let socket = state.join("fw.sock");
        let child = Command::new(SEVKIT)
            .args(["firmware", "serve", "--state"])
            .arg(state)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, socket }
    }

    /// Connects (retrying while the daemon starts).
    pub fn connect(&mut self, memory: &FdMemory) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.socket.exists() {
                if let Ok(c) = Client::connect_with_memory(&self.socket, memory, TIMEOUT) {
                    return c;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("daemon exited early: {status}");
            }
            assert!(Instant::now() < deadline, "daemon did not come up");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `path` as the `&str` a command line takes (temporary paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Runs `program` with `args` in `dir`; panics only if it cannot start.
pub fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

/// [`run`], asserting that the program succeeded (the failure message
/// carries its status, stdout and stderr).
pub fn ok(program: &str, args: &[&str], dir: &Path) -> Output {
    let out = run(program, args, dir);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`ok`]'s standard output, as it is.
pub fn ok_stdout(program: &str, args: &[&str], dir: &Path) -> String {
    String::from_utf8_lossy(&ok(program, args, dir).stdout).into_owned()
}

/// A command's standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A command's standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that a command exited 0 (the failure message carries its
/// stdout and stderr).
pub fn succeeded(out: &Output) {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
}

/// Asserts exit 2 and a message containing every one of `needles`.
pub fn refused(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}
