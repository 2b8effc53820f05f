//! `sevkit attest`: a real OVMF launched as an SNP guest on the software
//! AMD-SP, in process and through `sevkit firmware serve`
//! (`--firmware-socket`); the report's MEASUREMENT equals
//! `sev-snp-measure`'s prediction, the report verifies with `sevkit verify
//! report` against the emulated chain (and fails against AMD's pinned
//! roots), host data round-trips, and `snpguest` accepts the certificates
//! and the report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{state_with_chip, Daemon, SEVKIT};

const REPORT_DATA: &str = "0123456789abcdef";
const HOST_DATA: &str = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn peer_measurement(image: &str, vcpus: u32, vcpu_type: &str) -> String {
    let out = run(
        "sev-snp-measure",
        &[
            "--mode",
            "snp",
            "--vcpus",
            &vcpus.to_string(),
            "--vcpu-type",
            vcpu_type,
            "--ovmf",
            image,
        ],
    );
    assert!(out.status.success(), "sev-snp-measure: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_lowercase()
}

/// Where `sevkit attest` runs its AMD-SP.
#[derive(Clone, Copy)]
enum Sp<'a> {
    /// In process, on the chip of this state directory.
    State(&'a Path),
    /// The daemon at this socket, with the host's certificate table.
    Socket(&'a Path, &'a Path),
}

/// Runs `sevkit attest` into `dir/out-N-T`, returning the output directory.
fn attest(image: &str, sp: Sp<'_>, dir: &Path, vcpus: u32, vcpu_type: &str) -> PathBuf {
    let out_dir = dir.join(format!("out-{vcpus}-{vcpu_type}"));
    let mut args = vec![
        "attest",
        "--firmware",
        image,
        "--vcpus",
        &vcpus.to_string(),
        "--vcpu-type",
        vcpu_type,
        "--report-data",
        REPORT_DATA,
        "--host-data",
        HOST_DATA,
        "--out",
        out_dir.to_str().unwrap(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    match sp {
        Sp::State(state) => args.extend(["--state".into(), state.to_str().unwrap().into()]),
        Sp::Socket(socket, certs) => args.extend([
            "--firmware-socket".into(),
            socket.to_str().unwrap().into(),
            "--certs-path".into(),
            certs.to_str().unwrap().into(),
        ]),
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(SEVKIT, &args);
    assert!(out.status.success(), "sevkit attest: {}", text(&out));
    out_dir
}

fn check_image(image: &str) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    state_with_chip(&state);
    check_attestations(image, Sp::State(&state), dir.path());
}

/// `sevkit attest` on `sp` for 1 and 4 vCPUs of EPYC-v4 and EPYC-Milan: the
/// report's MEASUREMENT is sev-snp-measure's, its host data the one given,
/// every file is there, and `sevkit verify report` accepts it with the
/// emulated chain (not with AMD's roots, nor for other host data).
fn check_attestations(image: &str, sp: Sp<'_>, dir: &Path) {
    for vcpus in [1, 4] {
        for vcpu_type in ["EPYC-v4", "EPYC-Milan"] {
            let expected = peer_measurement(image, vcpus, vcpu_type);
            let out = attest(image, sp, dir, vcpus, vcpu_type);
            let case = format!("{image} --vcpus {vcpus} --vcpu-type {vcpu_type}");
            let report = std::fs::read(out.join("report.bin")).unwrap();
            assert_eq!(report.len(), 1184, "{case}");
            assert_eq!(
                hex::encode(&report[0x90..0xC0]),
                expected,
                "{case}: MEASUREMENT vs sev-snp-measure"
            );
            assert_eq!(hex::encode(&report[0xC0..0xE0]), HOST_DATA, "{case}");
            for name in ["ark.pem", "ask.pem", "vcek.pem", "certs.bin"] {
                assert!(
                    !std::fs::read(out.join(name)).unwrap().is_empty(),
                    "{case}: {name}"
                );
            }
            let log: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("launch-log.json")).unwrap())
                    .unwrap();
            assert!(log["entries"].as_array().is_some_and(|e| !e.is_empty()));

            let mut chain = std::fs::read(out.join("ask.pem")).unwrap();
            chain.extend(std::fs::read(out.join("ark.pem")).unwrap());
            let chain_path = out.join("chain.pem");
            std::fs::write(&chain_path, chain).unwrap();
            let report_path = out.join("report.bin");
            let vcek = out.join("vcek.pem");
            let base = [
                "verify",
                "report",
                report_path.to_str().unwrap(),
                "--vcek",
                vcek.to_str().unwrap(),
                "--measurement",
                &expected,
                "--report-data",
                REPORT_DATA,
                "--host-data",
                HOST_DATA,
            ];
            let mut args = base.to_vec();
            args.extend(["--chain", chain_path.to_str().unwrap()]);
            let v = run(SEVKIT, &args);
            assert_eq!(v.status.code(), Some(0), "{case}: {}", text(&v));
            // AMD's pinned roots do not endorse the emulated chip.
            let v = run(SEVKIT, &base);
            assert_eq!(v.status.code(), Some(1), "{case}: {}", text(&v));
            let t = text(&v);
            for line in t.lines().filter(|l| l.starts_with("FAIL")) {
                assert!(line.contains(" chain."), "{case}: {line}");
            }
            // Another host data fails the comparison.
            let zeros = "00".repeat(32);
            let mut other = base.to_vec();
            other[10] = &zeros;
            other.extend(["--chain", chain_path.to_str().unwrap()]);
            let v = run(SEVKIT, &other);
            assert_eq!(v.status.code(), Some(1), "{case}: {}", text(&v));
            assert!(text(&v).contains("FAIL  report.host_data"), "{case}");
        }
    }
}

#[test]
#[cfg_attr(
    not(all(sevkit_debian_ovmf, sevkit_sev_snp_measure)),
    ignore = "needs Debian's ovmf and sev-snp-measure; .ci/run installs them"
)]
fn attest_debian_ovmf_matches_sev_snp_measure() {
    check_image("/usr/share/ovmf/OVMF.fd");
}

#[test]
#[cfg_attr(
    not(all(sevkit_vectors, sevkit_sev_snp_measure)),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS) and sev-snp-measure"
)]
fn attest_trixie_ovmf_matches_sev_snp_measure() {
    let image = format!("{}/firmware/trixie_OVMF.fd", env!("SEVKIT_VECTORS_DIR"));
    check_image(&image);
}

#[test]
#[cfg_attr(
    not(all(sevkit_debian_ovmf, sevkit_snpguest)),
    ignore = "needs Debian's ovmf and snpguest (cargo install snpguest); .ci/run installs them"
)]
fn snpguest_verifies_attest_output() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    state_with_chip(&state);
    for product in ["milan", "genoa", "turin"] {
        let out_dir = dir.path().join(product);
        let out = run(
            SEVKIT,
            &[
                "attest",
                "--firmware",
                "/usr/share/ovmf/OVMF.fd",
                "--product",
                product,
                "--state",
                state.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{product}: {}", text(&out));
        let certs = out_dir.to_str().unwrap();
        let report = out_dir.join("report.bin");
        let v = run("snpguest", &["verify", "certs", certs]);
        assert!(v.status.success(), "{product}: {}", text(&v));
        let v = run(
            "snpguest",
            &["verify", "attestation", certs, report.to_str().unwrap()],
        );
        assert!(v.status.success(), "{product}: {}", text(&v));
    }
}

/// `snpguest verify certs` and `verify attestation` accept `out`.
fn snpguest_verifies(out_dir: &Path, case: &str) {
    let certs = out_dir.to_str().unwrap();
    let report = out_dir.join("report.bin");
    let v = run("snpguest", &["verify", "certs", certs]);
    assert!(v.status.success(), "{case}: {}", text(&v));
    let v = run(
        "snpguest",
        &["verify", "attestation", certs, report.to_str().unwrap()],
    );
    assert!(v.status.success(), "{case}: {}", text(&v));
}

/// `sevkit attest --firmware-socket` against `sevkit firmware serve`: the
/// launch runs through the daemon, the certificates are the ones `sevkit
/// firmware export --snp` wrote before it started (the host's certificate
/// table); the same checks as in process, and snpguest verifies. Stale
/// certificates (another product's VCEK) are refused, and so is the socket
/// without certificates.
#[test]
#[cfg_attr(
    not(all(sevkit_debian_ovmf, sevkit_sev_snp_measure, sevkit_snpguest)),
    ignore = "needs Debian's ovmf, sev-snp-measure and snpguest; .ci/run installs them"
)]
fn attest_through_the_daemon_matches_sev_snp_measure_and_snpguest_verifies() {
    const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    state_with_chip(&state);
    let st = state.to_str().unwrap();
    let certs = dir.path().join("certs");
    for args in [
        &["firmware", "init", "--state", st][..],
        &[
            "firmware",
            "export",
            "--snp",
            "--state",
            st,
            "--out",
            certs.to_str().unwrap(),
        ],
    ] {
        let out = run(SEVKIT, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    // Certificates for another product of the same chip (made in process
    // before the daemon locks the state directory).
    let milan = dir.path().join("milan");
    let out = run(
        SEVKIT,
        &[
            "attest",
            "--firmware",
            OVMF,
            "--product",
            "milan",
            "--state",
            st,
            "--out",
            milan.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    let mut daemon = Daemon::start(&state, &[]);
    drop(daemon.connect(&sev_sp::FdMemory::memfd("probe", 4096).unwrap()));
    let table = certs.join("certs.bin");
    let through = dir.path().join("daemon");
    std::fs::create_dir(&through).unwrap();
    check_attestations(OVMF, Sp::Socket(&daemon.socket, &table), &through);
    for entry in std::fs::read_dir(&through).unwrap() {
        let out_dir = entry.unwrap().path();
        snpguest_verifies(&out_dir, &out_dir.display().to_string());
        // The certificates are the exported ones.
        assert_eq!(
            std::fs::read(out_dir.join("certs.bin")).unwrap(),
            std::fs::read(&table).unwrap()
        );
        assert_eq!(
            std::fs::read(out_dir.join("vcek.pem")).unwrap(),
            std::fs::read(certs.join("vcek.pem")).unwrap()
        );
    }

    let socket = daemon.socket.to_str().unwrap();
    let refused_out = dir.path().join("refused");
    let stale = milan.join("certs.bin");
    for (extra, why) in [
        (
            vec!["--certs-path", stale.to_str().unwrap()],
            "do not endorse the report",
        ),
        (vec![], "--certs-path"),
        (
            vec!["--certs-path", table.to_str().unwrap(), "--state", st],
            "--state",
        ),
    ] {
        let mut args = vec!["attest", "--firmware", OVMF, "--firmware-socket", socket];
        args.extend(extra);
        args.extend(["--out", refused_out.to_str().unwrap()]);
        let out = run(SEVKIT, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(why), "{args:?}: {}", text(&out));
    }
    assert!(!refused_out.exists());
}

#[test]
fn attest_refuses_unusable_images() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    // No such file.
    let missing = dir.path().join("missing.fd");
    // An image without SEV metadata (nor footer table).
    let plain = dir.path().join("plain.fd");
    std::fs::write(&plain, vec![0x90u8; 64 * 1024]).unwrap();
    for image in [&missing, &plain] {
        let out = run(
            SEVKIT,
            &[
                "attest",
                "--firmware",
                image.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("sevkit: error:"), "{}", text(&out));
    }
    assert!(!out_dir.exists());
    // Bad arguments are refused before any launch.
    for bad in [
        &["--vcpus", "0"][..],
        &["--vcpu-type", "nope"],
        &["--policy", "zz"],
        &["--host-data", "00".repeat(33).leak()],
    ] {
        let mut args = vec!["attest", "--firmware", plain.to_str().unwrap()];
        args.extend_from_slice(bad);
        args.extend(["--out", out_dir.to_str().unwrap()]);
        let out = run(SEVKIT, &args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out));
    }
}
