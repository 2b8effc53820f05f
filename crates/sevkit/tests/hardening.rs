//! Process hardening of the commands that hold private keys: the firmware
//! daemon runs without core dumps (`RLIMIT_CORE` 0) and not dumpable
//! (`PR_SET_DUMPABLE` 0), so neither a crash nor a same-user debugger
//! reaches the CUK, the PDH private key or a guest's TEK. And who may
//! connect to its socket: its user, or with `--group-access` its group.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{chip_file, CHIP_FILE, SEVKIT};

/// An unprivileged uid for the part that needs one (the kernel shows a
/// non-dumpable process's /proc files as root's, which is only visible
/// when the process is not root itself).
const NOBODY: u32 = 65534;

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sevkit firmware serve` on a copy of the shared chip, as `uid` (when
/// given), once its socket exists.
fn serve(state: &Path, uid: Option<u32>) -> Serving {
    serve_on(state, &state.join("fw.sock"), uid, &[])
}

fn serve_on(state: &Path, socket: &Path, uid: Option<u32>, extra: &[&str]) -> Serving {
    std::fs::copy(chip_file(), state.join(CHIP_FILE)).unwrap();
    if let Some(uid) = uid {
        for path in [state, &state.join(CHIP_FILE)] {
            std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
        }
    }
    let mut command = Command::new(SEVKIT);
    command
        .args(["firmware", "serve", "--state"])
        .arg(state)
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut child = Serving(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !socket.exists() {
        if let Some(status) = child.0.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err);
            panic!("the daemon exited: {status}: {err}");
        }
        assert!(Instant::now() < deadline, "the daemon did not come up");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn core_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .split_whitespace()
        .skip(4)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_daemon_leaves_no_core_dump() {
    let state = tempfile::tempdir().unwrap();
    let daemon = serve(state.path(), None);
    assert_eq!(
        core_limit(daemon.0.id()),
        "0 0",
        "soft and hard RLIMIT_CORE"
    );
}

#[test]
fn the_daemon_is_not_dumpable_by_its_own_user() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run the daemon as another user (CI runs as root)");
        return;
    }
    let base = tempfile::tempdir().unwrap();
    // The state directory of the unprivileged user (its parent must be
    // reachable for it).
    std::fs::set_permissions(
        base.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let state = base.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let daemon = serve(&state, Some(NOBODY));
    let pid = daemon.0.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&NOBODY.to_string())),
        "{status}"
    );
    // A dumpable process's /proc files belong to its user; a non-dumpable
    // one's to root, so its user cannot read /proc/PID/mem or attach.
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid();
    assert_eq!(owner, 0, "PR_SET_DUMPABLE 0");
    assert_eq!(core_limit(pid), "0 0");
}

/// `serve --group-access`: the socket is 0660, and a process of another
/// user in the daemon's group is served; without it (0600), refused.
#[test]
fn group_access_lets_the_group_connect_and_only_then() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to connect as another user (CI runs as root)");
        return;
    }
    for shared in [false, true] {
        let state = tempfile::tempdir().unwrap();
        let sockets = tempfile::tempdir().unwrap();
        // The socket directory: traversable by the daemon's group (root's).
        std::fs::set_permissions(
            sockets.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o750),
        )
        .unwrap();
        let socket = sockets.path().join("fw.sock");
        let extra: &[&str] = if shared { &["--group-access"] } else { &[] };
        let _daemon = serve_on(state.path(), &socket, None, extra);
        let mode = std::fs::metadata(&socket).unwrap().mode() & 0o777;
        assert_eq!(mode, if shared { 0o660 } else { 0o600 });
        // Another user in the daemon's group (gid 0).
        let out = Command::new(SEVKIT)
            .args(["firmware", "status", "--socket"])
            .arg(&socket)
            .uid(NOBODY)
            .gid(0)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if shared {
            assert!(out.status.success(), "{err}");
            assert!(String::from_utf8_lossy(&out.stdout).contains("chip id:"));
        } else {
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(err.contains("ermission denied"), "{err}");
        }
    }
}
