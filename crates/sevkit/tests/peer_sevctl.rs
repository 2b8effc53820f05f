//! `sevkit session` and `sevkit secret build` against the peer tool sevctl
//! (crates.io 0.6.2, the version `.ci/run` installs).
//!
//! * Sessions: both tools get the same PDH certificate (a P-384 key made
//!   here, so the test holds the PDH private key the firmware would) and
//!   policy. Both must write the same four files with the same sizes and
//!   encodings, GODH certificates identical except the key, and the
//!   firmware's side ([`open_launch_session`]) must recover exactly the TEK
//!   and TIK each tool wrote. Tampered sessions are refused with the
//!   firmware's status codes.
//! * Secrets: both tools get the same TEK, TIK, launch measurement and
//!   secrets (sevctl's own test data). With the same IV (both have a hidden
//!   `--iv`) the outputs must be byte-identical; with random IVs both must
//!   open ([`open_secret_packet`]) to the same secret table. Tampered
//!   headers, payloads and measurements are refused.
//!
//! Policies with the API-version bits (16-31) set are left out of the
//! comparisons: sevctl MACs them mangled (shared/spec/errata.md, section B),
//! which `sevctl_mangles_api_version_policy_bits` pins down.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use sev_abi::legacy_cert::SevCert;
use sev_abi::policy::GuestPolicy;
use sev_abi::session::{LaunchMeasurement, PacketHeader, SessionBlob};
use sev_abi::{Algorithm, FirmwareStatus, KeyUsage};
use sev_crypto::session::{open_launch_session, EcdhP384Secret, SessionError, Tek, Tik};
use sev_owner::secret::{open_secret_packet, SecretTable};
use sev_owner::session::{decode_godh, decode_session};
use sev_owner::OwnerError;
use zerocopy::IntoBytes;

mod common;
use common::ok;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// sevctl's own test blob (tests/secretbuild.rs) and IV.
const SEVCTL_TEST_BLOB: &str = "TLeA7607lZQntLjRY1/i+sbtdSZ+75zxpz4Px9hzpBLwItF5Q2o4prA++3ZZv9ZS";
const SEVCTL_TEST_IV: &str = "rFR07U3TLH2YnsUj2SVZ7A==";
/// A known answer of `sevctl measurement build` (shared/vectors/README.md).
const MEASUREMENT_BLOB: &str = "lswbxWxI9gckya16JQvdFtpYmNO4b+3inAPpqsgoBI7DE/q1EcIWsVBbGy6pkDxA";

/// GUIDs of sevctl's secret tests.
const GUID1: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
const GUID2: &str = "736869e5-aaaa-4973-92ec-06879ce3da0b";
const GUID3: &str = "23058844-597b-42fb-8259-a0f5d9d495af";

/// Policies without API-version bits: none, NODBG, NODBG|NOKS, NODBG|ES,
/// and all six flags.
const POLICIES: [u32; 5] = [0x0, 0x1, 0x3, 0x5, 0x3f];

fn sevkit(args: &[&str], dir: &Path) -> Output {
    ok(env!("CARGO_BIN_EXE_sevkit"), args, dir)
}

fn sevctl(args: &[&str], dir: &Path) -> Output {
    ok("sevctl", args, dir)
}

/// A fresh empty directory under the system temp directory.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sevkit-peer-sevctl-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn secret_vector(name: &str) -> String {
    let dir = env!("SEVKIT_VECTORS_DIR");
    assert!(!dir.is_empty(), "shared/vectors not found at build time");
    format!("{dir}/sevctl/secret/{name}")
}

/// A platform PDH: the private key (the firmware's) and its certificate
/// file (unsigned; sevctl verifies nothing about it).
fn make_pdh(dir: &Path) -> (EcdhP384Secret, PathBuf) {
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

/// The four files of one tool's session.
struct SessionOut {
    godh_text: Vec<u8>,
    session_text: Vec<u8>,
    godh: SevCert,
    session: SessionBlob,
    tek: Tek,
    tik: Tik,
}

fn read_session(dir: &Path, prefix: &str) -> SessionOut {
    let read = |suffix: &str| {
        let path = dir.join(format!("{prefix}_{suffix}"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["godh.b64", "session.b64", "tek.bin", "tik.bin"].map(|s| format!("{prefix}_{s}")),
        "files in {}",
        dir.display()
    );
    let godh_text = read("godh.b64");
    let session_text = read("session.b64");
    let tek: [u8; 16] = read("tek.bin").try_into().expect("TEK file is 16 bytes");
    let tik: [u8; 16] = read("tik.bin").try_into().expect("TIK file is 16 bytes");
    SessionOut {
        godh: decode_godh(&godh_text).unwrap(),
        session: decode_session(&session_text).unwrap(),
        godh_text,
        session_text,
        tek: Tek::new(tek),
        tik: Tik::new(tik),
    }
}

/// Both tools' sessions for one PDH and policy.
fn both_sessions(policy: u32) -> (EcdhP384Secret, SessionOut, SessionOut) {
    let dir = temp_dir("session");
    let (pdh, pdh_path) = make_pdh(&dir);
    let pdh_arg = pdh_path.to_str().unwrap();
    let theirs = dir.join("sevctl");
    let ours = dir.join("sevkit");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::create_dir_all(&ours).unwrap();
    sevctl(
        &["session", "--name", "X", pdh_arg, &policy.to_string()],
        &theirs,
    );
    sevkit(
        &[
            "session",
            "--pdh",
            pdh_arg,
            "--policy",
            &format!("{policy:#x}"),
            "--name",
            "X",
            "--out",
            ours.to_str().unwrap(),
        ],
        &dir,
    );
    let a = read_session(&theirs, "X");
    let b = read_session(&ours, "X");
    let _ = std::fs::remove_dir_all(&dir);
    (pdh, a, b)
}

/// The GODH certificate with its key coordinates blanked.
fn without_key(cert: &SevCert) -> Vec<u8> {
    let mut c = *cert;
    c.pubkey[4..4 + 2 * 72].fill(0);
    c.as_bytes().to_vec()
}

#[test]
#[cfg_attr(
    not(sevkit_sevctl),
    ignore = "needs sevctl (cargo install sevctl); .ci/run installs it"
)]
fn session_files_match_sevctl_and_open_on_the_firmware_side() {
    for policy in POLICIES {
        let (pdh, theirs, ours) = both_sessions(policy);
        for (tool, s) in [("sevctl", &theirs), ("sevkit", &ours)] {
            // Encodings: standard base64 with padding, no newline.
            assert_eq!(s.godh_text.len(), 2780, "{tool} godh.b64 length");
            assert_eq!(s.session_text.len(), 172, "{tool} session.b64 length");
            for text in [&s.godh_text, &s.session_text] {
                assert!(
                    text.iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(c)),
                    "{tool}: not plain standard base64"
                );
                assert_eq!(B64.encode(B64.decode(text).unwrap()).as_bytes(), &text[..]);
            }
            // The firmware side recovers exactly the keys the tool wrote.
            let (tek, tik) =
                open_launch_session(&pdh, &s.godh, &s.session, GuestPolicy::from_raw(policy))
                    .unwrap_or_else(|e| panic!("{tool} session, policy {policy:#x}: {e}"));
            assert!(
                tek == s.tek,
                "{tool}: TEK file differs from the wrapped TEK"
            );
            assert!(
                tik == s.tik,
                "{tool}: TIK file differs from the wrapped TIK"
            );
            assert_eq!(
                open_launch_session(
                    &pdh,
                    &s.godh,
                    &s.session,
                    GuestPolicy::from_raw(policy ^ 0x2)
                )
                .unwrap_err(),
                SessionError::BadPolicyMac
            );
        }
        // Same certificate header and empty signature slots; only the key
        // (a fresh GODH per session) differs. Fresh randomness in each.
        assert_eq!(without_key(&theirs.godh), without_key(&ours.godh));
        assert_eq!(theirs.godh.as_bytes().len(), 0x824);
        assert_ne!(theirs.godh.pubkey, ours.godh.pubkey);
        assert_ne!(theirs.session.nonce, ours.session.nonce);
        assert!(theirs.tek != ours.tek);
    }
}

#[test]
#[cfg_attr(
    not(sevkit_sevctl),
    ignore = "needs sevctl (cargo install sevctl); .ci/run installs it"
)]
fn tampered_sevctl_sessions_are_refused_with_the_firmware_code() {
    let policy = 0x3;
    let (pdh, s, _) = both_sessions(policy);
    let open = |cert: &SevCert, blob: &SessionBlob| {
        open_launch_session(&pdh, cert, blob, GuestPolicy::from_raw(policy)).map(|_| ())
    };
    assert_eq!(open(&s.godh, &s.session), Ok(()));

    let bad_measurement = |r: Result<(), SessionError>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.status(), FirmwareStatus::BAD_MEASUREMENT, "{what}: {e}");
    };
    let blob_bytes = s.session.as_bytes().to_vec();
    for i in 0..blob_bytes.len() {
        let mut b = blob_bytes.clone();
        b[i] ^= 0x01;
        let blob = SessionBlob::from_bytes(&b).unwrap();
        let r = open(&s.godh, &blob);
        bad_measurement(r.clone(), &format!("session byte {i:#x}"));
        // Which MAC fails, in the firmware's order: the IV is not under the
        // wrap MAC (only its effect on the unwrapped TIK is).
        let expected = if (0x30..0x40).contains(&i) || i >= 0x60 {
            SessionError::BadPolicyMac
        } else {
            SessionError::BadWrapMac
        };
        assert_eq!(r.unwrap_err(), expected, "session byte {i:#x}");
    }

    let invalid_cert = |cert: &SevCert, what: &str| {
        let e = open(cert, &s.session).expect_err(what);
        assert!(
            matches!(e, SessionError::InvalidCertificate(_)),
            "{what}: {e}"
        );
        assert_eq!(e.status(), FirmwareStatus::INVALID_CERTIFICATE);
    };
    let mut cert = s.godh;
    cert.pubkey_usage = zerocopy::little_endian::U32::new(KeyUsage::Pek.as_u32());
    invalid_cert(&cert, "usage PEK");
    let mut cert = s.godh;
    cert.pubkey_algo = zerocopy::little_endian::U32::new(Algorithm::EcdsaSha256.as_u32());
    invalid_cert(&cert, "algo ECDSA");
    let mut cert = s.godh;
    cert.version = zerocopy::little_endian::U32::new(2);
    invalid_cert(&cert, "version 2");
    let mut cert = s.godh;
    cert.pubkey[4] ^= 1;
    invalid_cert(&cert, "key off the curve");
    // Another valid key: the ECDH secret changes, the wrap MAC fails.
    let mut cert = s.godh;
    let other = EcdhP384Secret::generate(&mut rand_core::OsRng).public_amd();
    cert.pubkey.copy_from_slice(other.as_bytes());
    assert_eq!(open(&cert, &s.session), Err(SessionError::BadWrapMac));
    // The session of another platform's PDH.
    let other_pdh = EcdhP384Secret::generate(&mut rand_core::OsRng);
    assert_eq!(
        open_launch_session(
            &other_pdh,
            &s.godh,
            &s.session,
            GuestPolicy::from_raw(policy)
        )
        .map(|_| ()),
        Err(SessionError::BadWrapMac)
    );
}

#[test]
#[cfg_attr(
    not(sevkit_sevctl),
    ignore = "needs sevctl (cargo install sevctl); .ci/run installs it"
)]
fn sevctl_mangles_api_version_policy_bits() {
    // errata.md B: sevctl 0.6.2 turns policy 0x00010000 (API major 1) into
    // 0x01000000 before MACing it. sevkit MACs the policy as given.
    let policy = 0x0001_0000;
    let (pdh, theirs, ours) = both_sessions(policy);
    assert_eq!(
        open_launch_session(
            &pdh,
            &ours.godh,
            &ours.session,
            GuestPolicy::from_raw(policy)
        )
        .map(|_| ()),
        Ok(())
    );
    assert_eq!(
        open_launch_session(
            &pdh,
            &theirs.godh,
            &theirs.session,
            GuestPolicy::from_raw(policy)
        )
        .unwrap_err(),
        SessionError::BadPolicyMac
    );
    assert!(open_launch_session(
        &pdh,
        &theirs.godh,
        &theirs.session,
        GuestPolicy::from_raw(0x0100_0000)
    )
    .is_ok());
}

#[test]
#[cfg_attr(
    not(all(sevkit_sevctl, sevkit_vectors)),
    ignore = "needs sevctl (cargo install sevctl) and shared/vectors; .ci/run has both"
)]
fn session_for_a_real_naples_pdh_has_sevctl_shape() {
    // No private key here, so only the shape: same files, same GODH
    // header, both session blobs 0x80 bytes.
    let pdh = format!("{}/real/sev/naples/pdh.cert", env!("SEVKIT_VECTORS_DIR"));
    let dir = temp_dir("naples");
    sevctl(&["session", &pdh, "1"], &dir);
    let theirs = read_session(&dir, "vm");
    let ours_dir = dir.join("ours");
    std::fs::create_dir_all(&ours_dir).unwrap();
    sevkit(
        &["session", "--pdh", &pdh, "--policy", "1", "--out", "ours"],
        &dir,
    );
    let ours = read_session(&ours_dir, "vm");
    assert_eq!(without_key(&theirs.godh), without_key(&ours.godh));
    assert_eq!(theirs.session_text.len(), ours.session_text.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `secret build` with one tool; returns (header, payload).
fn secret_build(
    tool: &str,
    blob: &str,
    secrets: &[(&str, &str)],
    iv: Option<&str>,
) -> (Vec<u8>, Vec<u8>) {
    let dir = temp_dir(tool);
    let header = dir.join("header.bin");
    let payload = dir.join("payload.bin");
    let tek = secret_vector("tek1.bin");
    let tik = secret_vector("tik1.bin");
    let specs: Vec<String> = secrets
        .iter()
        .map(|(guid, file)| format!("{guid}:{}", secret_vector(file)))
        .collect();
    let mut args: Vec<&str> = vec![
        "secret",
        "build",
        "--tik",
        &tik,
        "--tek",
        &tek,
        "--launch-measure-blob",
        blob,
    ];
    for spec in &specs {
        args.extend(["--secret", spec]);
    }
    if let Some(iv) = iv {
        args.extend(["--iv", iv]);
    }
    let (header_s, payload_s) = (header.to_str().unwrap(), payload.to_str().unwrap());
    if tool == "sevctl" {
        args.extend([header_s, payload_s]);
        sevctl(&args, &dir);
    } else {
        args.extend(["--header", header_s, "--payload", payload_s]);
        sevkit(&args, &dir);
    }
    let out = (
        std::fs::read(&header).unwrap(),
        std::fs::read(&payload).unwrap(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn vector_keys() -> (Tek, Tik) {
    let read =
        |n: &str| -> [u8; 16] { std::fs::read(secret_vector(n)).unwrap().try_into().unwrap() };
    (Tek::new(read("tek1.bin")), Tik::new(read("tik1.bin")))
}

fn blob48(b64: &str) -> LaunchMeasurement {
    LaunchMeasurement::from_bytes(&B64.decode(b64).unwrap()).unwrap()
}

/// The secret sets: sevctl's test cases plus none at all, a repeated GUID
/// and every file.
fn secret_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![(GUID1, "secret1.txt")],
        vec![(GUID1, "secret1.txt"), (GUID2, "secret2.txt")],
        vec![(GUID3, "secret3.txt")],
        vec![(GUID3, "secret4.txt")],
        vec![],
        vec![(GUID1, "secret1.txt"), (GUID1, "secret2.txt")],
        vec![
            (GUID2, "secret2.txt"),
            (GUID1, "secret1.txt"),
            (GUID3, "secret3.txt"),
            (GUID3, "secret4.txt"),
        ],
    ]
}

#[test]
#[cfg_attr(
    not(all(sevkit_sevctl, sevkit_vectors)),
    ignore = "needs sevctl (cargo install sevctl) and shared/vectors; .ci/run has both"
)]
fn secret_build_is_byte_identical_to_sevctl_with_a_fixed_iv() {
    let (tek, tik) = vector_keys();
    for blob in [SEVCTL_TEST_BLOB, MEASUREMENT_BLOB] {
        for set in secret_sets() {
            let theirs = secret_build("sevctl", blob, &set, Some(SEVCTL_TEST_IV));
            let ours = secret_build("sevkit", blob, &set, Some(SEVCTL_TEST_IV));
            assert_eq!(theirs.0.len(), 0x34);
            assert_eq!(theirs, ours, "secrets {set:?}, blob {blob}");
            // sevctl's packet opens on the firmware side.
            let header = PacketHeader::from_bytes(&theirs.0).unwrap();
            let plain = open_secret_packet(&tek, &tik, &blob48(blob), &header, &theirs.1).unwrap();
            let table = SecretTable::parse(&plain).unwrap();
            assert_eq!(table.entries().len(), set.len());
            for (entry, (guid, file)) in table.entries().iter().zip(&set) {
                assert_eq!(entry.guid.to_string(), *guid);
                assert_eq!(*entry.data, std::fs::read(secret_vector(file)).unwrap());
            }
        }
    }
}

#[test]
#[cfg_attr(
    not(all(sevkit_sevctl, sevkit_vectors)),
    ignore = "needs sevctl (cargo install sevctl) and shared/vectors; .ci/run has both"
)]
fn secret_build_with_random_ivs_opens_to_the_same_table() {
    let (tek, tik) = vector_keys();
    let blob = blob48(MEASUREMENT_BLOB);
    for set in secret_sets() {
        let theirs = secret_build("sevctl", MEASUREMENT_BLOB, &set, None);
        let ours = secret_build("sevkit", MEASUREMENT_BLOB, &set, None);
        let h_theirs = PacketHeader::from_bytes(&theirs.0).unwrap();
        let h_ours = PacketHeader::from_bytes(&ours.0).unwrap();
        assert_eq!(h_theirs.flags.get(), 0);
        assert_eq!(h_ours.flags, h_theirs.flags);
        assert_ne!(h_ours.iv, h_theirs.iv, "IVs are random");
        assert_eq!(ours.1.len(), theirs.1.len());
        assert_eq!(ours.1.len() % 16, 0);
        let p_theirs = open_secret_packet(&tek, &tik, &blob, &h_theirs, &theirs.1).unwrap();
        let p_ours = open_secret_packet(&tek, &tik, &blob, &h_ours, &ours.1).unwrap();
        assert_eq!(p_theirs, p_ours, "secrets {set:?}");
    }
}

#[test]
#[cfg_attr(
    not(all(sevkit_sevctl, sevkit_vectors)),
    ignore = "needs sevctl (cargo install sevctl) and shared/vectors; .ci/run has both"
)]
fn tampered_sevctl_secret_packets_are_refused() {
    let (tek, tik) = vector_keys();
    let blob = blob48(MEASUREMENT_BLOB);
    let set = [(GUID1, "secret1.txt"), (GUID2, "secret2.txt")];
    let (header, payload) = secret_build("sevctl", MEASUREMENT_BLOB, &set, None);
    let header = PacketHeader::from_bytes(&header).unwrap();
    assert!(open_secret_packet(&tek, &tik, &blob, &header, &payload).is_ok());

    let refused = |r: Result<_, OwnerError>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e, OwnerError::BadMac, "{what}");
        assert_eq!(e.status(), Some(FirmwareStatus::BAD_MEASUREMENT));
    };
    for i in 0..32 {
        let mut h = header;
        h.mac[i] ^= 0x04;
        refused(
            open_secret_packet(&tek, &tik, &blob, &h, &payload),
            "header MAC",
        );
    }
    for i in 0..16 {
        let mut h = header;
        h.iv[i] ^= 0x04;
        refused(
            open_secret_packet(&tek, &tik, &blob, &h, &payload),
            "header IV",
        );
    }
    for i in 0..payload.len() {
        let mut p = payload.clone();
        p[i] ^= 0x80;
        refused(
            open_secret_packet(&tek, &tik, &blob, &header, &p),
            "payload",
        );
    }
    for i in 0..32 {
        let mut m = blob;
        m.measurement[i] ^= 0x01;
        refused(
            open_secret_packet(&tek, &tik, &m, &header, &payload),
            "measurement",
        );
    }
    refused(
        open_secret_packet(&tek, &tik, &blob48(SEVCTL_TEST_BLOB), &header, &payload),
        "another launch's measurement",
    );
    let mut h = header;
    h.flags = zerocopy::little_endian::U32::new(1);
    assert_eq!(
        open_secret_packet(&tek, &tik, &blob, &h, &payload)
            .unwrap_err()
            .status(),
        Some(FirmwareStatus::UNSUPPORTED)
    );
}
