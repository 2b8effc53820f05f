//! `sevkit session` and `sevkit secret build` end to end without peers:
//! the files they write open on the firmware's side, the secret packet
//! reproduces sevctl's published known answer, and unusable input exits 2
//! with a message that says what is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use sev_abi::legacy_cert::SevCert;
use sev_abi::policy::GuestPolicy;
use sev_abi::session::LaunchMeasurement;
use sev_abi::session::PacketHeader;
use sev_abi::{Algorithm, KeyUsage};
use sev_crypto::session::{open_launch_session, EcdhP384Secret};
use sev_crypto::session::{Tek, Tik};
use sev_owner::secret::{open_secret_packet, SecretTable};
use sev_owner::session::{decode_godh, decode_session};
use zerocopy::IntoBytes;

mod common;

use common::{refused, stderr, succeeded};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

// sevctl 0.6.2's secret_build known answer (tests/secretbuild.rs).
const TEK1: &str = "52a869b79ab9c13bb6a92b0561619cb3";
const TIK1: &str = "c6d5a9956133050912b24bbe5c372686";
const BLOB: &str = "TLeA7607lZQntLjRY1/i+sbtdSZ+75zxpz4Px9hzpBLwItF5Q2o4prA++3ZZv9ZS";
const IV: &str = "rFR07U3TLH2YnsUj2SVZ7A==";
const GUID1: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
const HEADER: &str = "AAAAAKxUdO1N0yx9mJ7FI9klWey8FSzeYQ4X8K71VzNKLU/KQsIsQxLjtbhaPUewqshX5Q==";
const PAYLOAD: &str =
    "0U3e5PcXv0UW+H4tSBFKOdCYfKE1+j38Bc2fuO16mYiyI+sWx7INfn+lgYj56GL12yyinDa+lVfCCwD/2w5cPA==";

fn sevkit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sevkit"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sevkit runs")
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sevkit-owner-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pdh_file(dir: &Path) -> (EcdhP384Secret, PathBuf) {
    let secret = EcdhP384Secret::generate(&mut rand_core::OsRng);
    let cert = SevCert::new_ecc(
        0,
        24,
        KeyUsage::Pdh,
        Algorithm::EcdhSha256,
        &secret.public_amd(),
    );
    let path = dir.join("pdh.cert");
    std::fs::write(&path, cert.as_bytes()).unwrap();
    (secret, path)
}

/// Writes the sevctl test inputs; returns (tek, tik, secret1) paths.
fn key_files(dir: &Path) -> (String, String, String) {
    let tek = dir.join("tek1.bin");
    let tik = dir.join("tik1.bin");
    let secret = dir.join("secret1.txt");
    std::fs::write(&tek, hex::decode(TEK1).unwrap()).unwrap();
    std::fs::write(&tik, hex::decode(TIK1).unwrap()).unwrap();
    std::fs::write(&secret, b"MY-LUKS-PASSPHRASE").unwrap();
    let s = |p: PathBuf| p.to_str().unwrap().to_owned();
    (s(tek), s(tik), s(secret))
}

#[test]
fn session_writes_four_files_that_open_on_the_firmware_side() {
    let dir = temp_dir();
    let (pdh, path) = pdh_file(&dir);
    // Defaults: prefix vm, policy 0, current directory.
    succeeded(&sevkit(&["session", "--pdh", path.to_str().unwrap()], &dir));
    let godh = decode_godh(&std::fs::read(dir.join("vm_godh.b64")).unwrap()).unwrap();
    let session = decode_session(&std::fs::read(dir.join("vm_session.b64")).unwrap()).unwrap();
    let tek = std::fs::read(dir.join("vm_tek.bin")).unwrap();
    let tik = std::fs::read(dir.join("vm_tik.bin")).unwrap();
    let (t, i) = open_launch_session(&pdh, &godh, &session, GuestPolicy::from_raw(0)).unwrap();
    assert_eq!(t.as_bytes()[..], tek[..]);
    assert_eq!(i.as_bytes()[..], tik[..]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("vm_tik.bin"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "TIK file readable by others: {mode:o}");
    }

    // --policy in hex, --name, --out; the PDH given as base64 text.
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let b64_pdh = dir.join("pdh.b64");
    std::fs::write(&b64_pdh, B64.encode(std::fs::read(&path).unwrap()) + "\n").unwrap();
    succeeded(&sevkit(
        &[
            "session",
            "--pdh",
            b64_pdh.to_str().unwrap(),
            "--policy",
            "0x5",
            "--name",
            "guest1",
            "--out",
            out.to_str().unwrap(),
        ],
        &dir,
    ));
    let godh = decode_godh(&std::fs::read(out.join("guest1_godh.b64")).unwrap()).unwrap();
    let session = decode_session(&std::fs::read(out.join("guest1_session.b64")).unwrap()).unwrap();
    assert!(open_launch_session(&pdh, &godh, &session, GuestPolicy::from_raw(5)).is_ok());
    assert!(open_launch_session(&pdh, &godh, &session, GuestPolicy::from_raw(0)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn session_refuses_unusable_input() {
    let dir = temp_dir();
    let (_, pdh) = pdh_file(&dir);
    let pdh = pdh.to_str().unwrap();
    refused(
        &sevkit(&["session", "--pdh", "missing.cert"], &dir),
        &["cannot read missing.cert"],
    );
    std::fs::write(dir.join("short.cert"), [1, 0, 0, 0, 9, 9]).unwrap();
    refused(
        &sevkit(&["session", "--pdh", "short.cert"], &dir),
        &["2084 bytes", "this is 6 bytes"],
    );
    // A PEK certificate is not a PDH.
    let mut cert = SevCert::from_bytes(&std::fs::read(pdh).unwrap()).unwrap();
    cert.pubkey_usage = zerocopy::little_endian::U32::new(KeyUsage::Pek.as_u32());
    cert.pubkey_algo = zerocopy::little_endian::U32::new(Algorithm::EcdsaSha256.as_u32());
    std::fs::write(dir.join("pek.cert"), cert.as_bytes()).unwrap();
    refused(
        &sevkit(&["session", "--pdh", "pek.cert"], &dir),
        &["PEK", "expected PDH"],
    );
    // A key off the curve.
    let mut cert = SevCert::from_bytes(&std::fs::read(pdh).unwrap()).unwrap();
    cert.pubkey[4] ^= 1;
    std::fs::write(dir.join("bad.cert"), cert.as_bytes()).unwrap();
    refused(
        &sevkit(&["session", "--pdh", "bad.cert"], &dir),
        &["PDH", "P-384"],
    );
    let out = sevkit(&["session", "--pdh", pdh, "--policy", "xyz"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("hex"), "{}", stderr(&out));
    refused(
        &sevkit(&["session", "--pdh", pdh, "--name", "a/b"], &dir),
        &["--name"],
    );
    // Reserved policy bits: a warning, not a refusal.
    let out = sevkit(&["session", "--pdh", pdh, "--policy", "0x40"], &dir);
    succeeded(&out);
    assert!(stderr(&out).contains("POLICY_FAILURE"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secret_build_reproduces_sevctl_known_answer() {
    let dir = temp_dir();
    let (tek, tik, secret) = key_files(&dir);
    let spec = format!("{GUID1}:{secret}");
    succeeded(&sevkit(
        &[
            "secret",
            "build",
            "--tik",
            &tik,
            "--tek",
            &tek,
            "--launch-measure-blob",
            BLOB,
            "--secret",
            &spec,
            "--iv",
            IV,
            "--header",
            "h.bin",
            "--payload",
            "p.bin",
        ],
        &dir,
    ));
    assert_eq!(
        B64.encode(std::fs::read(dir.join("h.bin")).unwrap()),
        HEADER
    );
    assert_eq!(
        B64.encode(std::fs::read(dir.join("p.bin")).unwrap()),
        PAYLOAD
    );

    // Random IV; keys and blob given as base64 and as a file of base64
    // text; the packet opens to the table.
    std::fs::write(dir.join("blob.txt"), format!("{BLOB}\n")).unwrap();
    let tek_b64 = B64.encode(hex::decode(TEK1).unwrap());
    succeeded(&sevkit(
        &[
            "secret",
            "build",
            "--tik",
            &tik,
            "--tek",
            &tek_b64,
            "--launch-measure-blob",
            "blob.txt",
            "--secret",
            &spec,
            "--header",
            "h2.bin",
            "--payload",
            "p2.bin",
        ],
        &dir,
    ));
    let header = PacketHeader::from_bytes(&std::fs::read(dir.join("h2.bin")).unwrap()).unwrap();
    let payload = std::fs::read(dir.join("p2.bin")).unwrap();
    assert_ne!(B64.encode(header.iv), IV);
    let tek = Tek::new(hex::decode(TEK1).unwrap().try_into().unwrap());
    let tik = Tik::new(hex::decode(TIK1).unwrap().try_into().unwrap());
    let blob = LaunchMeasurement::from_bytes(&B64.decode(BLOB).unwrap()).unwrap();
    let plain = open_secret_packet(&tek, &tik, &blob, &header, &payload).unwrap();
    let table = SecretTable::parse(&plain).unwrap();
    assert_eq!(
        table.get(&GUID1.parse().unwrap()),
        Some(&b"MY-LUKS-PASSPHRASE"[..])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secret_build_refuses_unusable_input() {
    let dir = temp_dir();
    let (tek, tik, secret) = key_files(&dir);
    let good = format!("{GUID1}:{secret}");
    let build = |tek: &str, tik: &str, blob: &str, secret: &str| {
        sevkit(
            &[
                "secret",
                "build",
                "--tik",
                tik,
                "--tek",
                tek,
                "--launch-measure-blob",
                blob,
                "--secret",
                secret,
                "--header",
                "h.bin",
                "--payload",
                "p.bin",
            ],
            &dir,
        )
    };
    refused(
        &build(&tek, &tik, BLOB, &format!("{GUID1}:missing.txt")),
        &["cannot read missing.txt"],
    );
    refused(
        &build(&tek, &tik, BLOB, &format!("not-a-guid:{secret}")),
        &["--secret", "GUID"],
    );
    refused(
        &build(&tek, &tik, BLOB, "736869e5-84f0-4973-92ec-06879ce3da0b"),
        &["--secret", "GUID:FILE"],
    );
    refused(
        &build(&tek, &tik, "AAAA", &good),
        &["--launch-measure-blob", "48 bytes", "got 3"],
    );
    refused(
        &build(&tek, &tik, &B64.encode([0u8; 32]), &good),
        &["--launch-measure-blob", "48 bytes", "got 32"],
    );
    refused(
        &build(&tek, &tik, "!!not base64!!", &good),
        &[
            "--launch-measure-blob",
            "not an existing file and not base64",
        ],
    );
    refused(
        &build("missing-tek.bin", &tik, BLOB, &good),
        &["--tek", "not an existing file and not base64"],
    );
    std::fs::write(dir.join("short.bin"), [0u8; 15]).unwrap();
    refused(
        &build(&tek, "short.bin", BLOB, &good),
        &["--tik", "16 bytes", "got 15"],
    );
    std::fs::write(dir.join("tk.bin"), [0u8; 32]).unwrap();
    refused(
        &build("tk.bin", &tik, BLOB, &good),
        &["--tek", "got 32", "TEK || TIK"],
    );
    let out = sevkit(
        &[
            "secret",
            "build",
            "--tik",
            &tik,
            "--tek",
            &tek,
            "--launch-measure-blob",
            BLOB,
            "--secret",
            &good,
            "--header",
            "no/such/dir/h.bin",
            "--payload",
            "p.bin",
        ],
        &dir,
    );
    refused(&out, &["cannot write no/such/dir/h.bin"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secret_values_never_appear_in_errors() {
    let dir = temp_dir();
    let (tek, tik, secret) = key_files(&dir);
    let good = format!("{GUID1}:{secret}");
    // Values that are not base64 (nor existing files), as a mistyped key
    // or a secret pasted into the wrong argument would be.
    let leaked = "S3cretKeyMaterial-!";
    let with_colon = format!("{leaked}:x");
    let build = |tik: &str, tek: &str, blob: &str, secret: &str| {
        vec![
            "secret".to_owned(),
            "build".into(),
            "--tik".into(),
            tik.into(),
            "--tek".into(),
            tek.into(),
            "--launch-measure-blob".into(),
            blob.into(),
            "--secret".into(),
            secret.into(),
            "--header".into(),
            "h.bin".into(),
            "--payload".into(),
            "p.bin".into(),
        ]
    };
    let seed = format!("{}g", "5e".repeat(31) + "5");
    let state = dir.join("state");
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (build(leaked, &tek, BLOB, &good), "--tik", leaked),
        (build(&tik, leaked, BLOB, &good), "--tek", leaked),
        (
            build(&tik, &tek, leaked, &good),
            "--launch-measure-blob",
            leaked,
        ),
        (build(&tik, &tek, BLOB, leaked), "--secret", leaked),
        (build(&tik, &tek, BLOB, &with_colon), "--secret", leaked),
        (
            [
                "measure",
                "sev-launch",
                "--tik",
                leaked,
                "--api-major",
                "1",
                "--api-minor",
                "0",
                "--build",
                "0",
                "--policy",
                "0",
                "--launch-digest",
                &B64.encode([0u8; 32]),
            ]
            .map(str::to_owned)
            .to_vec(),
            "--tik",
            leaked,
        ),
        (
            [
                "firmware",
                "init",
                "--state",
                state.to_str().unwrap(),
                "--seed",
                &seed,
            ]
            .map(str::to_owned)
            .to_vec(),
            "--seed",
            &seed[..62],
        ),
    ];
    for (args, name, value) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sevkit(&args, &dir);
        refused(&out, &[name, "not shown"]);
        let err = stderr(&out);
        // Not the value, nor any 8 characters of it.
        for start in 0..value.len().saturating_sub(8) {
            let part = &value[start..start + 8];
            assert!(!err.contains(part), "{args:?}: {part:?} in: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `session --out` creates a missing directory (as `attest --out` does),
/// and files of the same name are never replaced without `--force`: the
/// keys of a running launch would be lost.
#[test]
fn session_creates_its_directory_and_keeps_existing_keys_without_force() {
    let dir = temp_dir();
    let (_, pdh) = pdh_file(&dir);
    let pdh = pdh.to_str().unwrap();
    succeeded(&sevkit(
        &["session", "--pdh", pdh, "--out", "new/keys"],
        &dir,
    ));
    let keys = dir.join("new/keys");
    let tek = std::fs::read(keys.join("vm_tek.bin")).unwrap();
    let tik = std::fs::read(keys.join("vm_tik.bin")).unwrap();
    assert_eq!((tek.len(), tik.len()), (16, 16));

    // Again with the same name: refused, the keys stay.
    let out = sevkit(&["session", "--pdh", pdh, "--out", "new/keys"], &dir);
    refused(&out, &["vm_tik.bin", "exists", "--force", "--name"]);
    assert_eq!(std::fs::read(keys.join("vm_tek.bin")).unwrap(), tek);
    assert_eq!(std::fs::read(keys.join("vm_tik.bin")).unwrap(), tik);
    // Any one of the four files is enough to refuse.
    std::fs::write(dir.join("guest2_session.b64"), b"keep").unwrap();
    refused(
        &sevkit(&["session", "--pdh", pdh, "--name", "guest2"], &dir),
        &["guest2_session.b64", "exists"],
    );
    assert_eq!(
        std::fs::read(dir.join("guest2_session.b64")).unwrap(),
        b"keep"
    );
    assert!(!dir.join("guest2_tek.bin").exists());

    // Another name beside them is fine; --force replaces.
    succeeded(&sevkit(
        &[
            "session", "--pdh", pdh, "--out", "new/keys", "--name", "other",
        ],
        &dir,
    ));
    succeeded(&sevkit(
        &["session", "--pdh", pdh, "--out", "new/keys", "--force"],
        &dir,
    ));
    assert_ne!(std::fs::read(keys.join("vm_tek.bin")).unwrap(), tek);
    assert_eq!(std::fs::read(keys.join("vm_tik.bin")).unwrap().len(), 16);
    let _ = std::fs::remove_dir_all(&dir);
}
