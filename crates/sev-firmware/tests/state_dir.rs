//! The state directory holds the CUK and every private key: it is refused
//! unless it is the running user's and closed to group and others, and no
//! file in it is written or read through a name another user could have
//! planted (a pre-created temporary file, a symbolic link).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sev_firmware::{Firmware, FirmwareConfig, FirmwareError, StoreError};

mod common;

use sevkit_testkit::files::{names, set_mode};

fn config(dir: &Path) -> FirmwareConfig {
    FirmwareConfig {
        state_dir: Some(dir.to_owned()),
        seed: Some([0x42; 32]),
        ..FirmwareConfig::default()
    }
}

/// One way of opening a firmware on a directory.
type Open = fn(&Path) -> Result<Firmware, FirmwareError>;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn a_directory_group_or_others_may_write_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o777, 0o1777, 0o770, 0o722] {
        set_mode(dir.path(), mode);
        let opens: [Open; 3] = [
            |d| Firmware::open_with_chip(config(d), common::chip()),
            |d| Firmware::open(config(d)),
            |d| Firmware::open_existing(config(d)),
        ];
        for open in opens {
            let err = open(dir.path()).unwrap_err();
            assert!(
                matches!(err, FirmwareError::Store(StoreError::Dir(_))),
                "{mode:o}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains("chmod go-w"), "{text}");
            assert!(text.contains(&dir.path().display().to_string()), "{text}");
        }
        // Nothing was written into it.
        assert!(names(dir.path()).is_empty(), "{mode:o}");
    }
    // 0755 (what older versions created under umask 022) is fine.
    set_mode(dir.path(), 0o755);
    Firmware::open_with_chip(config(dir.path()), common::chip()).unwrap();
}

#[test]
fn a_directory_of_another_user_is_refused_with_the_fix() {
    if !is_root() {
        eprintln!("skipped: needs root (to chown a directory to another user)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let err = Firmware::open_with_chip(config(dir.path()), common::chip()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("owned by uid 65534"), "{text}");
    assert!(text.contains("chown"), "{text}");
    assert!(names(dir.path()).is_empty());
}

/// The attack of a user who can write the state directory: once the
/// firmware runs, pre-create the temporary file the next save will use,
/// keep it open, and read the platform's private keys through it after the
/// firmware has written them.
#[test]
fn another_user_cannot_read_the_keys_through_a_planted_temporary_file() {
    if !is_root() {
        eprintln!("skipped: needs root (to run the attacker as uid 65534)");
        return;
    }
    let base = tempfile::tempdir().unwrap();
    set_mode(base.path(), 0o755);
    let dir = base.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    // What `mkdir` under `umask 000` gives.
    set_mode(&dir, 0o777);
    let script = r#"umask 000
while [ ! -e "$1/opened" ]; do sleep 0.01; done
exec 3<>"$1/.platform.sevfw.tmp" || exit 1
: > "$1/ready"
while [ ! -e "$1/go" ]; do sleep 0.01; done
cat <&3 > "$1/stolen""#;
    let mut attacker = Command::new("sh");
    attacker
        .args(["-c", script, "sh"])
        .arg(&dir)
        .stdin(Stdio::null());
    {
        use std::os::unix::process::CommandExt;
        attacker.uid(65534).gid(65534);
    }
    let mut attacker = attacker.spawn().unwrap();
    let opened = Firmware::open_with_chip(config(&dir), common::chip());
    let refused = opened.as_ref().err().map(ToString::to_string);
    std::fs::write(dir.join("opened"), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("ready").exists() {
        assert!(
            attacker.try_wait().unwrap().is_none(),
            "the attacker failed"
        );
        assert!(Instant::now() < deadline, "the attacker did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Ok(mut fw) = opened {
        // INIT mints and saves OCA, PEK and PDH.
        let mut mem = common::memory();
        common::init(&mut fw, &mut mem, false);
    }
    std::fs::write(dir.join("go"), b"").unwrap();
    assert!(attacker.wait().unwrap().success());
    let stolen = std::fs::read(dir.join("stolen")).unwrap();
    assert!(
        stolen.is_empty(),
        "another user read {} bytes of platform.sevfw",
        stolen.len()
    );
    let refused = refused.expect("a directory others may write is refused");
    assert!(refused.contains("chmod go-w"), "{refused}");
}

#[test]
fn symbolic_links_in_the_state_directory_are_never_followed() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("state");
    let victim = base.path().join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let mut fw = Firmware::open_with_chip(config(&dir), common::chip()).unwrap();
    // Planted after the open, at the name earlier versions wrote through
    // and at the file itself: INIT's save writes neither.
    std::os::unix::fs::symlink(&victim, dir.join(".platform.sevfw.tmp")).unwrap();
    let mut mem = common::memory();
    common::init(&mut fw, &mut mem, false);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    let platform = dir.join("platform.sevfw");
    assert!(std::fs::symlink_metadata(&platform).unwrap().is_file());
    assert_eq!(std::fs::metadata(&platform).unwrap().mode() & 0o777, 0o600);
    drop(fw);

    // A symbolic link where a state file should be is refused on open and
    // left alone.
    std::fs::remove_file(&platform).unwrap();
    std::os::unix::fs::symlink(&victim, &platform).unwrap();
    let err = Firmware::open(config(&dir)).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(std::fs::symlink_metadata(&platform)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");

    // The directory itself as a symbolic link: refused too.
    std::fs::remove_file(&platform).unwrap();
    let link = base.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let err = Firmware::open(config(&link)).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn open_existing_creates_nothing() {
    let base = tempfile::tempdir().unwrap();
    let missing = base.path().join("missing");
    let err = Firmware::open_existing(config(&missing)).unwrap_err();
    assert!(matches!(err, FirmwareError::NoIdentity { .. }), "{err}");
    assert!(
        err.to_string().contains("sevkit firmware init --state"),
        "{err}"
    );
    assert!(!missing.exists());
    // An empty directory: no chip is minted.
    let empty = base.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        Firmware::open_existing(config(&empty)),
        Err(FirmwareError::NoIdentity { .. })
    ));
    assert!(names(&empty).is_empty());
    // A directory with a chip opens.
    drop(Firmware::open_with_chip(config(&empty), common::chip()).unwrap());
    let fw = Firmware::open_existing(config(&empty)).unwrap();
    assert_eq!(fw.chip().ark(), common::chip().ark());
}
