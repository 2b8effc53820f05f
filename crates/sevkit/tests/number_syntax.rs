//! One number syntax for every sevkit flag (docs/USAGE.md, "Numbers"):
//! decimal, or hex after `0x`. Every command that takes a policy reads
//! `--policy 10`, `--policy 0xa` and `--policy 0x0a` as the same policy,
//! and a value that is not a number, or does not fit, is refused with exit
//! 2 naming the flag.

use std::path::Path;

use base64::Engine as _;
use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::legacy_cert::SevCert;
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_abi::report::AttestationReport;
use sev_abi::{Algorithm, KeyUsage};
use sev_crypto::session::{open_launch_session, EcdhP384Secret, Tik};
use sev_measure::sev::LaunchMeasureParams;
use sev_owner::session::{decode_godh, decode_session};
use zerocopy::IntoBytes;

mod common;

use common::{run, s, state_with_chip, stderr, stdout, succeeded, SEVKIT};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Ten, three ways.
const TEN: [&str; 3] = ["10", "0xa", "0x0a"];

#[test]
fn session_policy_spellings_mean_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pdh = EcdhP384Secret::generate(&mut rand_core::OsRng);
    let cert = SevCert::new_ecc(
        0,
        24,
        KeyUsage::Pdh,
        Algorithm::EcdhSha256,
        &pdh.public_amd(),
    );
    let cert_path = d.join("pdh.cert");
    std::fs::write(&cert_path, cert.as_bytes()).unwrap();
    // The session blob MACs the policy: it opens for the policy it was
    // built for and no other.
    let opens = |name: &str, policy: u32| {
        let godh = decode_godh(&std::fs::read(d.join(format!("{name}_godh.b64"))).unwrap());
        let session =
            decode_session(&std::fs::read(d.join(format!("{name}_session.b64"))).unwrap());
        open_launch_session(
            &pdh,
            &godh.unwrap(),
            &session.unwrap(),
            GuestPolicy::from_raw(policy),
        )
        .is_ok()
    };
    for (i, spelling) in TEN.iter().enumerate() {
        let name = format!("ten{i}");
        succeeded(&run(
            SEVKIT,
            &[
                "session",
                "--pdh",
                s(&cert_path),
                "--policy",
                spelling,
                "--name",
                &name,
            ],
            d,
        ));
        assert!(opens(&name, 10), "--policy {spelling}");
        assert!(!opens(&name, 0x10), "--policy {spelling}");
    }
    // Hex needs its 0x: `--policy 1` is one, `--policy 0x10` sixteen.
    succeeded(&run(
        SEVKIT,
        &[
            "session",
            "--pdh",
            s(&cert_path),
            "--policy",
            "0x10",
            "--name",
            "hex",
        ],
        d,
    ));
    assert!(opens("hex", 16) && !opens("hex", 10));
    // The default is policy 0.
    succeeded(&run(SEVKIT, &["session", "--pdh", s(&cert_path)], d));
    assert!(opens("vm", 0));
}

#[test]
fn measure_sev_launch_policy_spellings_mean_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tik = [0x11u8; 16];
    std::fs::write(d.join("tik.bin"), tik).unwrap();
    let nonce = [0x22u8; 16];
    let digest = [0x33u8; 32];
    let blob = |policy: &str| {
        let out = run(
            SEVKIT,
            &[
                "measure",
                "sev-launch",
                "--tik",
                "tik.bin",
                "--nonce",
                &B64.encode(nonce),
                "--api-major",
                "1",
                "--api-minor",
                "0x28",
                "--build",
                "40",
                "--policy",
                policy,
                "--launch-digest",
                &B64.encode(digest),
            ],
            d,
        );
        succeeded(&out);
        stdout(&out).trim().to_owned()
    };
    // What the owner computes for policy 10, API 1.40, build 40.
    let params = LaunchMeasureParams {
        api_major: 1,
        api_minor: 40,
        build: 40,
        policy: GuestPolicy::from_raw(10),
        nonce,
    };
    let expected =
        sev_measure::launch_measure_blob(&Tik::new(tik), &params, &SevLaunchDigest::new(digest));
    let expected = B64.encode(expected.as_bytes());
    for spelling in TEN {
        assert_eq!(blob(spelling), expected, "--policy {spelling}");
    }
    assert_ne!(blob("0x10"), expected);
}

#[test]
fn attest_policy_spellings_mean_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = d.join("demo.fd");
    std::fs::write(&image, sev_vmm::machine::demo_image::demo_image()).unwrap();
    let state = d.join("state");
    state_with_chip(&state);
    let attest = |policy: &str, out: &Path| {
        run(
            SEVKIT,
            &[
                "attest",
                "--firmware",
                s(&image),
                "--policy",
                policy,
                "--state",
                s(&state),
                "--out",
                s(out),
            ],
            d,
        )
    };
    // The SNP default (0x30000: SMT allowed, the must-be-one bit) three ways.
    for (i, spelling) in ["196608", "0x30000", "0x030000"].iter().enumerate() {
        let out_dir = d.join(format!("out{i}"));
        succeeded(&attest(spelling, &out_dir));
        let report = std::fs::read(out_dir.join("report.bin")).unwrap();
        let report = AttestationReport::from_bytes(&report).unwrap();
        assert_eq!(
            report.policy,
            SnpPolicy::from_raw(0x30000),
            "--policy {spelling}"
        );
    }
    // Ten lacks the must-be-one bit: the firmware refuses it, the same way
    // whichever way it is written.
    let refusals: Vec<(Option<i32>, String)> = TEN
        .iter()
        .enumerate()
        .map(|(i, spelling)| {
            let out = attest(spelling, &d.join(format!("ten{i}")));
            (out.status.code(), stderr(&out))
        })
        .collect();
    assert_ne!(refusals[0].0, Some(0), "{}", refusals[0].1);
    assert!(
        refusals[0].1.contains("POLICY_FAILURE"),
        "{}",
        refusals[0].1
    );
    assert!(refusals.iter().all(|r| *r == refusals[0]), "{refusals:?}");
}

#[test]
fn bad_numbers_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (arguments before the value, the flag's name); each is run with bad
    // values appended. Values are checked while the command line is read,
    // before missing options or files matter.
    let flags: &[(&[&str], &str)] = &[
        (&["session", "--policy"], "--policy"),
        (&["attest", "--policy"], "--policy"),
        (&["attest", "--vcpus"], "--vcpus"),
        (&["measure", "sev-launch", "--policy"], "--policy"),
        (&["measure", "sev-launch", "--api-major"], "--api-major"),
        (&["measure", "sev-launch", "--build"], "--build"),
        (&["measure", "--vcpus"], "--vcpus"),
        (&["measure", "--vcpu-sig"], "--vcpu-sig"),
        (&["measure", "--guest-features"], "--guest-features"),
        (&["measure", "--vars-size"], "--vars-size"),
        (&["debug", "read", "--gpa"], "--gpa"),
        (&["debug", "read", "--len"], "--len"),
        (&["debug", "read", "--timeout"], "--timeout"),
        (&["demo", "--vcpus"], "--vcpus"),
        (&["verify", "report", "r.bin", "--vmpl"], "--vmpl"),
        (&["firmware", "serve", "--max-clients"], "--max-clients"),
        (&["bench", "snp-launch", "--mib"], "--mib"),
    ];
    let huge = "1".repeat(40);
    let bad: [(&str, &str); 6] = [
        ("0xzz", "not a number"),
        ("", "empty"),
        ("0b101", "not a number"),
        ("1_000", "not a number"),
        ("ff", "not a number"),
        (&huge, "out of range"),
    ];
    for (args, flag) in flags {
        for (value, why) in bad {
            let mut all = args.to_vec();
            all.push(value);
            let out = run(SEVKIT, &all, d);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{all:?}: {err}");
            assert!(
                err.contains(&format!("for '{flag} ")) && err.contains(why),
                "{all:?}: {err}"
            );
        }
    }
    // Narrower types and ranges say what they take.
    for (args, range) in [
        (
            &["measure", "sev-launch", "--api-minor", "256"][..],
            "0 to 255",
        ),
        (&["session", "--policy", "0x100000000"], "0 to 4294967295"),
        (&["debug", "read", "--timeout", "0"], "1 to 86400"),
        (&["debug", "read", "--timeout", "86401"], "1 to 86400"),
    ] {
        let out = run(SEVKIT, args, d);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(range), "{args:?}: {err}");
    }
}
