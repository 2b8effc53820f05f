//! The `sevkit` binary end to end: exit codes (0 pass, 1 a check failed,
//! 2 unusable input), text and JSON output, on real AMD material.

use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

use common::{stderr, stdout};

fn sevkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sevkit"))
        .args(args)
        .output()
        .expect("sevkit runs")
}

fn vector(relative: &str) -> String {
    let dir = env!("SEVKIT_VECTORS_DIR");
    assert!(!dir.is_empty(), "shared/vectors not found at build time");
    format!("{dir}/{relative}")
}

/// Writes `bytes` to a fresh file in the temp directory.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sevkit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn builtin_example_passes() {
    let out = sevkit(&["verify", "example"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("PASS  report.signature"));
    assert!(stdout(&out).contains("verdict: PASS"));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["verify", "--help"],
        &["verify", "report", "--help"],
        &["verify", "sev-chain", "--help"],
        &["verify", "example", "--help"],
        &["show", "report", "--help"],
        &["show", "cert", "--help"],
        &["bench", "verify", "--help"],
    ] {
        let out = sevkit(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn verify_report_exit_codes() {
    let report = vector("real/snp/milan/report.hex");
    let vcek = vector("real/snp/milan/vcek.der");
    let chain = vector("real/snp/milan/cert_chain.pem");

    let out = sevkit(&["verify", "report", &report, "--vcek", &vcek]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = sevkit(&[
        "verify", "report", &report, "--vcek", &vcek, "--chain", &chain, "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
    assert_eq!(json["verdict"], "pass");
    assert!(json["checks"].as_array().unwrap().len() > 15);

    // A binary copy with one signed byte flipped: exit 1, naming the check.
    let mut bytes = hex::decode(
        std::fs::read_to_string(&report)
            .unwrap()
            .split_whitespace()
            .collect::<String>(),
    )
    .unwrap();
    bytes[0x90] ^= 1; // measurement
    let tampered = temp_file("tampered.bin", &bytes);
    let out = sevkit(&[
        "verify",
        "report",
        tampered.to_str().unwrap(),
        "--vcek",
        &vcek,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  report.signature"),
        "{}",
        stdout(&out)
    );

    // A wrong expectation: exit 1.
    let out = sevkit(&[
        "verify",
        "report",
        &report,
        "--vcek",
        &vcek,
        "--min-tcb",
        "bl=9,tee=0,snp=8,ucode=115",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL  report.min_tcb"));

    // Unusable input: exit 2 with a message saying what is wrong.
    let short = temp_file("short.bin", &bytes[..1000]);
    let out = sevkit(&["verify", "report", short.to_str().unwrap(), "--vcek", &vcek]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("1184 bytes"), "{}", stderr(&out));

    let out = sevkit(&[
        "verify",
        "report",
        &report,
        "--vcek",
        &vcek,
        "--measurement",
        "xyz",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--measurement"));

    let out = sevkit(&[
        "verify",
        "report",
        "/nonexistent/report.bin",
        "--vcek",
        &vcek,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"));

    let out = sevkit(&["verify", "report", &report, "--vcek", &report]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not an X.509 certificate"));

    // A huge --min-tcb item is quoted as an excerpt.
    let huge = "z".repeat(100_000);
    for tcb in [huge.clone(), format!("bl={huge}"), format!("{huge}=1")] {
        let out = sevkit(&[
            "verify",
            "report",
            &report,
            "--vcek",
            &vcek,
            "--min-tcb",
            &tcb,
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("--min-tcb"));
        assert!(stderr(&out).len() < 1024, "{} bytes", stderr(&out).len());
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn verify_sev_chain_exit_codes() {
    let certs = |product: &str| {
        ["pdh", "pek", "oca", "cek"].map(|name| vector(&format!("real/sev/{product}/{name}.cert")))
    };
    for product in ["naples", "rome"] {
        let [pdh, pek, oca, cek] = certs(product);
        let out = sevkit(&[
            "verify",
            "sev-chain",
            "--pdh",
            &pdh,
            "--pek",
            &pek,
            "--oca",
            &oca,
            "--cek",
            &cek,
        ]);
        assert_eq!(out.status.code(), Some(0), "{product}: {}", stdout(&out));
        let out = sevkit(&[
            "verify",
            "sev-chain",
            "--pdh",
            &pdh,
            "--pek",
            &pek,
            "--oca",
            &oca,
            "--cek",
            &cek,
            "--product",
            product,
        ]);
        assert_eq!(out.status.code(), Some(0), "{product}");
    }
    let [pdh, pek, oca, cek] = certs("rome");
    let mut bytes = std::fs::read(&pdh).unwrap();
    bytes[0x30] ^= 0x40;
    let bad_pdh = temp_file("pdh.cert", &bytes);
    let out = sevkit(&[
        "verify",
        "sev-chain",
        "--pdh",
        bad_pdh.to_str().unwrap(),
        "--pek",
        &pek,
        "--oca",
        &oca,
        "--cek",
        &cek,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  chain.pdh_signed_by_pek"),
        "{}",
        stdout(&out)
    );

    let out = sevkit(&[
        "verify",
        "sev-chain",
        "--pdh",
        &pdh,
        "--pek",
        &pek,
        "--oca",
        &oca,
        "--cek",
        &cek,
        "--product",
        "naples",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL  chain.cek_signed_by_ask"));

    let out = sevkit(&[
        "verify",
        "sev-chain",
        "--pdh",
        &cek[..cek.len() - 1],
        "--pek",
        &pek,
        "--oca",
        &oca,
        "--cek",
        &cek,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn show_report_and_certs() {
    let out = sevkit(&["show", "report", &vector("real/snp/milan/report.hex")]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for field in [
        "version",
        "policy",
        "measurement",
        "reported_tcb",
        "chip_id",
        "signature",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(field)),
            "{field} missing:\n{text}"
        );
    }
    assert!(text.contains("bootloader=3"), "{text}");

    let out = sevkit(&[
        "show",
        "report",
        &vector("real/snp/milan/report.hex"),
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["reported_tcb"]["microcode"], 0x73);
    assert_eq!(json["policy"]["raw"], "0x30000");

    let out = sevkit(&["show", "cert", &vector("real/snp/turin/vcek.der"), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["amd_extensions"]["product_name"], "Turin");
    assert!(json["amd_extensions"]["tcb"]["fmc"].is_number(), "{json}");
    assert_eq!(json["amd_extensions"]["hw_id"].as_str().unwrap().len(), 16);

    let out = sevkit(&[
        "show",
        "cert",
        &vector("real/snp/milan/cert_chain.pem"),
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2), "ASK and ARK");

    let out = sevkit(&["show", "cert", &vector("real/sev/rome/pdh.cert")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("Pdh"));
    let out = sevkit(&["show", "cert", &vector("amd-roots/sev/milan/ark.cert")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("AMD legacy ARK/ASK"));

    let junk = temp_file("junk.bin", b"\x01\x02\x03 not a certificate");
    let out = sevkit(&["show", "cert", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a recognised certificate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bench_snp_launch_refuses_sizes_it_cannot_measure() {
    // Checked before anything is minted or measured: exit 2, naming the
    // option and what it takes.
    for mib in ["0", "3", "2048"] {
        let out = sevkit(&["bench", "snp-launch", "--mib", mib, "--no-openssl"]);
        assert_eq!(out.status.code(), Some(2), "--mib {mib}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--mib must be an even number in 2..=1024"),
            "--mib {mib}: {}",
            stderr(&out)
        );
    }
    let out = sevkit(&["bench", "snp-launch", "--mib", "two"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--mib"), "{}", stderr(&out));
}
