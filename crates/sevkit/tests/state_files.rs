//! What sevkit does to the file system, judged from outside: state
//! directories are refused unless private and created 0700 whatever the
//! umask, only `firmware init` / `serve --init` create one, every command
//! that opens one takes its lock, symbolic links are never followed, secret
//! outputs are 0600, a failed command leaves no file behind, and both Unix
//! sockets are 0600. Tests that need root (another user, a full file system)
//! say so and return early without it.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    chip_file, refused, s, state_with_chip, stderr, succeeded, Daemon, CHIP_FILE, SEVKIT,
};
use sevkit_testkit::files::{mode, names, set_mode};

/// Runs sevkit with `args` in `dir`.
fn sevkit(args: &[&str], dir: &Path) -> Output {
    Command::new(SEVKIT)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs sevkit with `args` in `dir` under `umask 000`.
fn sevkit_umask_000(args: &[&str], dir: &Path) -> Output {
    Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" \"$@\"", SEVKIT])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn is_root(why: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root ({why})");
    }
    root
}

/// The built-in demo image as an OVMF file in `dir`.
fn image(dir: &Path) -> PathBuf {
    let path = dir.join("fw.bin");
    std::fs::write(&path, sev_vmm::machine::demo_image::demo_image()).unwrap();
    path
}

/// `sevkit launch` of a plain SEV guest of the demo image, with extra
/// arguments before the QEMU options.
fn launch_args<'a>(image: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["launch"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-machine",
        "q35,confidential-guest-support=sev0",
        "-object",
        "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
        "-bios",
        s(image),
        "-m",
        "512M",
    ]);
    args
}

/// `sevkit attest` of the demo image.
fn attest_args<'a>(image: &'a Path, state: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "attest",
        "--firmware",
        s(image),
        "--state",
        s(state),
        "--out",
        s(out),
    ]
}

/// Waits until `path` exists (or `child` exits, which fails the test).
fn wait_for(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("exited early ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A state directory others may write (made under `umask 000`, or a
/// shared one such as /tmp) is refused by every command, with the fix,
/// and nothing is written into it.
#[test]
fn a_state_directory_others_may_write_is_refused_with_the_fix() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let state = b.join("state");
    state_with_chip(&state);
    let st = s(&state);
    let certs = b.join("certs");
    let socket = b.join("fw.sock");
    for m in [0o777, 0o1777, 0o770] {
        set_mode(&state, m);
        for args in [
            vec!["firmware", "init", "--state", st],
            vec!["firmware", "status", "--state", st],
            vec!["firmware", "export", "--state", st, "--out", s(&certs)],
            vec!["firmware", "serve", "--state", st, "--socket", s(&socket)],
            vec![
                "firmware",
                "serve",
                "--init",
                "--state",
                st,
                "--socket",
                s(&socket),
            ],
        ] {
            refused(&sevkit(&args, b), &["chmod go-w", st]);
        }
        assert_eq!(names(&state), [CHIP_FILE], "{m:o}");
        assert!(!certs.exists() && !socket.exists());
    }
}

/// The directory another user made first (under /tmp, say) is refused,
/// with the fix; nothing is written into it.
#[test]
fn a_state_directory_another_user_created_is_refused() {
    if !is_root("to act as uid 65534") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    // Like /tmp: everyone may create entries.
    set_mode(b, 0o1777);
    let state = b.join("state");
    let made = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["sh", "-c", "umask 000; mkdir \"$0\""])
        .arg(&state)
        .status()
        .unwrap();
    assert!(made.success());
    assert_eq!(std::fs::metadata(&state).unwrap().uid(), 65534);
    let st = s(&state);
    for args in [
        vec!["firmware", "init", "--state", st],
        vec!["firmware", "status", "--state", st],
    ] {
        refused(&sevkit(&args, b), &["owned by uid 65534", "chown", st]);
    }
    assert!(names(&state).is_empty());
}

/// `init` under `umask 000` still makes a 0700 directory of 0600 files;
/// the exported certificates are public (0644).
#[test]
fn init_under_umask_000_makes_a_private_directory() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let fresh = b.join("parent/state");
    succeeded(&sevkit_umask_000(
        &[
            "firmware",
            "init",
            "--seed",
            &"11".repeat(32),
            "--state",
            s(&fresh),
        ],
        b,
    ));
    assert_eq!(mode(&fresh), 0o700);
    // The parent it made is not writable by others either.
    assert_eq!(mode(&b.join("parent")), 0o755);
    assert_eq!(names(&fresh), [".lock", CHIP_FILE, "platform.sevfw"]);
    for name in names(&fresh) {
        assert_eq!(mode(&fresh.join(&name)), 0o600, "{name}");
    }
    let certs = b.join("certs");
    succeeded(&sevkit_umask_000(
        &[
            "firmware",
            "export",
            "--state",
            s(&fresh),
            "--out",
            s(&certs),
        ],
        b,
    ));
    for name in names(&certs) {
        assert_eq!(mode(&certs.join(&name)), 0o644, "{name}");
    }
}

/// A symbolic link where a state file should be is refused, not followed.
#[test]
fn a_symbolic_link_at_a_state_file_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let state = b.join("state");
    state_with_chip(&state);
    succeeded(&sevkit(&["firmware", "init", "--state", s(&state)], b));
    let platform = state.join("platform.sevfw");
    let elsewhere = b.join("platform.copy");
    std::fs::rename(&platform, &elsewhere).unwrap();
    let before = std::fs::read(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &platform).unwrap();
    for args in [
        vec!["firmware", "status", "--state", s(&state)],
        vec!["firmware", "init", "--state", s(&state)],
    ] {
        refused(&sevkit(&args, b), &["symbolic link", "platform.sevfw"]);
    }
    assert!(std::fs::symlink_metadata(&platform)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&elsewhere).unwrap(), before);
}

/// Commands that use a platform do not create a state directory or mint an
/// identity: exit 2 naming the path. `init` and `serve --init` create one.
#[test]
fn only_init_creates_a_state_directory() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let img = image(b);
    let missing = b.join("missing");
    let ms = s(&missing);
    let out = b.join("out");
    let socket = b.join("fw.sock");
    let mut launch = launch_args(&img, &["--state", ms]);
    launch.push("-S");
    for args in [
        vec!["firmware", "status", "--state", ms],
        vec!["firmware", "export", "--state", ms, "--out", s(&out)],
        vec!["firmware", "serve", "--state", ms, "--socket", s(&socket)],
        launch,
        attest_args(&img, &missing, &out),
    ] {
        refused(&sevkit(&args, b), &[ms, "sevkit firmware init --state"]);
        assert!(!missing.exists(), "{args:?} created the directory");
        assert!(!out.exists() && !socket.exists());
    }
    // An existing directory without an identity: no chip is minted.
    let empty = b.join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(
        &sevkit(&["firmware", "status", "--state", s(&empty)], b),
        &["no chip.sevfw", "sevkit firmware init --state"],
    );
    assert_eq!(names(&empty), [".lock"]);

    // serve --init creates what serve alone refuses.
    let created = b.join("created");
    let mut daemon = Command::new(SEVKIT)
        .args(["firmware", "serve", "--init", "--seed", &"22".repeat(32)])
        .args(["--state", s(&created), "--socket", s(&socket)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&socket, &mut daemon);
    let status = sevkit(&["firmware", "status", "--socket", s(&socket)], b);
    let _ = daemon.kill();
    let _ = daemon.wait();
    succeeded(&status);
    assert_eq!(mode(&created), 0o700);
    assert_eq!(names(&created), [".lock", CHIP_FILE, "platform.sevfw"]);
}

/// `launch --state` and `attest --state` lock the directory as `serve`
/// does: neither runs while the daemon serves it, and the daemon does not
/// start while a launch holds it.
#[test]
fn launch_and_attest_take_the_state_lock() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let img = image(b);
    let state = b.join("state");
    state_with_chip(&state);
    succeeded(&sevkit(&["firmware", "init", "--state", s(&state)], b));
    let out = b.join("out");
    let mut daemon = Daemon::start(&state, &[]);
    let mem = sev_sp::FdMemory::memfd("probe", 0x1000).unwrap();
    drop(daemon.connect(&mem));
    let platform = std::fs::read(state.join("platform.sevfw")).unwrap();
    let mut launch = launch_args(&img, &["--state", s(&state)]);
    launch.push("-S");
    for args in [launch, attest_args(&img, &state, &out)] {
        refused(&sevkit(&args, b), &["in use", s(&state)]);
    }
    assert!(!out.exists());
    drop(daemon);
    assert_eq!(
        std::fs::read(state.join("platform.sevfw")).unwrap(),
        platform
    );

    // A launch serving QMP holds the directory for the VM's life.
    let qmp = b.join("qmp.sock");
    let qmp_arg = format!("unix:{},server=on,wait=off", s(&qmp));
    let mut vm_args = launch_args(&img, &["--state", s(&state)]);
    vm_args.extend_from_slice(&["-S", "-qmp", &qmp_arg]);
    let mut vm = Command::new(SEVKIT)
        .args(&vm_args)
        .current_dir(b)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&qmp, &mut vm);
    // The socket is bound before the launch: wait until the launch holds
    // the lock (its greeting comes after the launch).
    let mut greeting = String::new();
    let stream = std::os::unix::net::UnixStream::connect(&qmp).unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut greeting).unwrap();
    assert!(greeting.contains("QMP"), "{greeting}");
    let fw_socket = b.join("fw2.sock");
    for args in [
        vec![
            "firmware",
            "serve",
            "--state",
            s(&state),
            "--socket",
            s(&fw_socket),
        ],
        vec!["firmware", "status", "--state", s(&state)],
        attest_args(&img, &state, &out),
    ] {
        refused(&sevkit(&args, b), &["in use"]);
    }
    drop(stream);
    let _ = vm.kill();
    let _ = vm.wait();
}

/// Both sockets are 0600 whatever the umask (the QMP socket followed it).
#[test]
fn sockets_are_0600_under_umask_000() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let img = image(b);
    let state = b.join("state");
    state_with_chip(&state);
    let qmp = b.join("qmp.sock");
    let qmp_arg = format!("unix:{},server=on,wait=off", s(&qmp));
    let mut args = launch_args(&img, &["--state", s(&state)]);
    args.extend_from_slice(&["-S", "-qmp", &qmp_arg]);
    let mut vm = Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" \"$@\"", SEVKIT])
        .args(&args)
        .current_dir(b)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&qmp, &mut vm);
    let qmp_mode = mode(&qmp);
    let _ = vm.kill();
    let _ = vm.wait();
    assert_eq!(qmp_mode, 0o600, "QMP socket {qmp_mode:o}");

    let socket = b.join("fw.sock");
    let mut daemon = Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" \"$@\"", SEVKIT])
        .args([
            "firmware",
            "serve",
            "--state",
            s(&state),
            "--socket",
            s(&socket),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&socket, &mut daemon);
    let fw_mode = mode(&socket);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(fw_mode, 0o600, "firmware socket {fw_mode:o}");
}

/// A PDH certificate file for `session` (exported from a platform).
fn pdh(dir: &Path) -> PathBuf {
    let secret = sev_crypto::session::EcdhP384Secret::generate(&mut rand_core::OsRng);
    let cert = sev_abi::legacy_cert::SevCert::new_ecc(
        0,
        24,
        sev_abi::KeyUsage::Pdh,
        sev_abi::Algorithm::EcdhSha256,
        &secret.public_amd(),
    );
    let path = dir.join("pdh.cert");
    std::fs::write(&path, zerocopy::IntoBytes::as_bytes(&cert)).unwrap();
    path
}

/// `session --force` writes the TEK and TIK at 0600 even over existing
/// wider files, and replaces a symbolic link instead of writing through it.
#[test]
fn session_keys_are_0600_and_symlinks_are_not_followed() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let pdh = pdh(b);
    let out = b.join("out");
    std::fs::create_dir(&out).unwrap();
    let tek = out.join("vm_tek.bin");
    std::fs::write(&tek, b"old key").unwrap();
    set_mode(&tek, 0o644);
    let victim = b.join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    set_mode(&victim, 0o644);
    let tik = out.join("vm_tik.bin");
    std::os::unix::fs::symlink(&victim, &tik).unwrap();
    succeeded(&sevkit(
        &["session", "--pdh", s(&pdh), "--out", s(&out), "--force"],
        b,
    ));
    assert_eq!(mode(&tek), 0o600);
    assert_eq!(std::fs::read(&tek).unwrap().len(), 16);
    assert!(std::fs::symlink_metadata(&tik).unwrap().is_file());
    assert_eq!(mode(&tik), 0o600);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert_eq!(mode(&victim), 0o644);
}

/// Runs `args` (sevkit's) with `dir` a fresh tmpfs of `size` bytes in a
/// private mount namespace, after `setup` (shell commands, `$d` the
/// directory); returns sevkit's exit code and the files left in `dir`.
fn on_a_small_file_system(dir: &Path, size: &str, setup: &str, args: &[&str]) -> (i32, String) {
    let script = format!(
        "d=\"$0\"\nmount -t tmpfs -o size={size},mode=0755 tmpfs \"$d\" || exit 99\n{setup}\n\
         \"$@\" >/dev/null 2>\"$d.stderr\"\necho \"exit=$?\"\ncd \"$d\" && find . -mindepth 1 | sort"
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(dir)
        .arg(SEVKIT)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let (code, files) = text
        .split_once('\n')
        .unwrap_or_else(|| panic!("no result: {text}"));
    let code = code.strip_prefix("exit=").unwrap().parse().unwrap();
    let err = std::fs::read_to_string(dir.with_extension("stderr")).unwrap_or_default();
    eprintln!("sevkit said: {err}");
    (code, files.trim().to_owned())
}

/// A full file system: `init`, `session` and `secret build` fail and leave
/// no file behind (no temporary file with the CUK, no 0-byte outputs).
#[test]
fn a_full_disk_leaves_no_file_behind() {
    if !is_root("to mount a small tmpfs in a private mount namespace") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let fs = b.join("fs");
    std::fs::create_dir(&fs).unwrap();

    // The chip (10 KiB) does not fit in 8 KiB.
    let (code, files) = on_a_small_file_system(
        &fs,
        "8k",
        "",
        &[
            "firmware",
            "init",
            "--seed",
            &"33".repeat(32),
            "--state",
            &format!("{}/state", s(&fs)),
        ],
    );
    assert_eq!(code, 2);
    assert_eq!(files, "", "init left files behind");

    // The chip fits; the platform keys do not.
    let (code, files) = on_a_small_file_system(
        &fs,
        "12k",
        &format!(
            "mkdir -m 700 \"$d/state\" && cp {} \"$d/state/\"",
            s(chip_file())
        ),
        &["firmware", "init", "--state", &format!("{}/state", s(&fs))],
    );
    assert_eq!(code, 2);
    assert_eq!(files, "./state\n./state/.lock\n./state/chip.sevfw");

    // Four session files do not fit in one page.
    let pdh = pdh(b);
    let (code, files) = on_a_small_file_system(
        &fs,
        "4k",
        "",
        &["session", "--pdh", s(&pdh), "--out", s(&fs)],
    );
    assert_eq!(code, 2);
    assert_eq!(files, "", "session left files behind");

    // Nor do a secret packet's header and a 5 KiB payload.
    let key = b.join("key.bin");
    std::fs::write(&key, [7u8; 16]).unwrap();
    let secret = b.join("secret.bin");
    std::fs::write(&secret, vec![0x5a; 5000]).unwrap();
    let spec = format!("736869e5-84f0-4973-92ec-06879ce3da0b:{}", s(&secret));
    let blob = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 48]);
    let (code, files) = on_a_small_file_system(
        &fs,
        "4k",
        "",
        &[
            "secret",
            "build",
            "--tek",
            s(&key),
            "--tik",
            s(&key),
            "--launch-measure-blob",
            &blob,
            "--secret",
            &spec,
            "--header",
            &format!("{}/h.bin", s(&fs)),
            "--payload",
            &format!("{}/p.bin", s(&fs)),
        ],
    );
    assert_eq!(code, 2);
    assert_eq!(files, "", "secret build left files behind");
}

/// A corrupted `snp.sevfw` is refused with advice that does not simply say
/// to delete it: that would drop the committed TCB.
#[test]
fn a_corrupted_snp_state_is_not_advised_away() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let state = b.join("state");
    state_with_chip(&state);
    std::fs::write(state.join("snp.sevfw"), b"SEVKITFW\x01\0\0\0\x03").unwrap();
    set_mode(&state.join("snp.sevfw"), 0o600);
    let out = sevkit(&["firmware", "status", "--state", s(&state)], b);
    refused(
        &out,
        &["snp.sevfw", "corrupted", "committed", "anti-rollback"],
    );
    assert!(
        !stderr(&out).contains("remove it to give the platform a new identity"),
        "{}",
        stderr(&out)
    );
}

/// The demo from a fresh HOME (its chip cache created 0700), and with a
/// cache an older version made (0755): both run, the second loads it.
#[test]
fn the_demo_runs_from_a_fresh_home_and_an_old_cache() {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let demo = |home: &Path| {
        let out = Command::new(SEVKIT)
            .args(["demo", "--vcpus", "1"])
            .env("HOME", home)
            .env_remove("XDG_CACHE_HOME")
            .current_dir(b)
            .output()
            .unwrap();
        succeeded(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fresh = b.join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let text = demo(&fresh);
    assert!(text.contains("minted, cached in"), "{text}");
    let cache = fresh.join(".cache/sevkit/demo-chip");
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&cache.join(CHIP_FILE)), 0o600);

    // What older versions left: a 0755 directory (with a temporary file
    // of theirs).
    let old = b.join("old");
    let old_cache = old.join(".cache/sevkit/demo-chip");
    std::fs::create_dir_all(&old_cache).unwrap();
    set_mode(&old_cache, 0o755);
    std::fs::copy(chip_file(), old_cache.join(CHIP_FILE)).unwrap();
    std::fs::write(old_cache.join(".chip.sevfw.tmp"), b"half").unwrap();
    let text = demo(&old);
    assert!(text.contains("loaded from"), "{text}");
    assert!(!old_cache.join(".chip.sevfw.tmp").exists());
}
