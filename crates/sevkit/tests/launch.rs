//! `sevkit launch` end to end, judged by the peers: for each of Debian's
//! OVMF builds, SEV and SEV-ES launches whose LAUNCH_MEASURE blob
//! `sevctl measurement build` and `sevkit measure sev-launch` accept (with
//! the owner's session from `sevctl session`), SNP launches whose report
//! measurement equals `sev-snp-measure`'s, QEMU's QMP client driving a
//! launch (measure, inject a secret, cont, xp), property errors caught
//! before any firmware command, and the certificates an SNP guest gets.

#![allow(clippy::too_many_lines)] // each scenario reads as one sequence of steps

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{chip_file, ok_stdout, run, s, CHIP_FILE, SEVKIT};
use serde_json::{json, Value};

const VCPU_TYPE: &str = "EPYC-Milan";
const DEBIAN_OVMF: [&str; 3] = [
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
];

/// A state directory with the cached chip, initialized, its PDH exported.
fn platform() -> (tempfile::TempDir, PathBuf) {
    let state = tempfile::tempdir().unwrap();
    std::fs::copy(chip_file(), state.path().join(CHIP_FILE)).unwrap();
    ok_stdout(
        SEVKIT,
        &["firmware", "init", "--state", s(state.path())],
        state.path(),
    );
    let certs = state.path().join("certs");
    ok_stdout(
        SEVKIT,
        &[
            "firmware",
            "export",
            "--state",
            s(state.path()),
            "--out",
            s(&certs),
        ],
        state.path(),
    );
    (state, certs.join("pdh.cert"))
}

/// `(api_major, api_minor, build, LAUNCH_MEASURE blob base64)` from
/// `sevkit launch`'s report.
fn launch_report(out: &str) -> (String, String, String, String) {
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"))
            .trim()
            .to_owned()
    };
    let api = line("AMD-SP: API ");
    let (version, build) = api.split_once(" build ").unwrap();
    let (major, minor) = version.split_once('.').unwrap();
    (
        major.into(),
        minor.into(),
        build.into(),
        line("query-sev-launch-measure: "),
    )
}

/// `sev-snp-measure --mode snp` of `image` for `vcpus` vCPUs of
/// [`VCPU_TYPE`]: the digest in `format` (`hex` or `base64`).
fn snp_measure(image: &str, vcpus: u32, format: &str, dir: &Path) -> String {
    let vcpus = vcpus.to_string();
    let args = [
        "--mode",
        "snp",
        "--vcpus",
        &vcpus,
        "--vcpu-type",
        VCPU_TYPE,
        "--ovmf",
        image,
        "--output-format",
        format,
    ];
    ok_stdout("sev-snp-measure", &args, dir).trim().to_owned()
}

/// `sevkit launch` of an SNP guest `object` from `image` on `vcpus` vCPUs
/// with the chip in `state`; the simulated guest's report and certificates
/// go to `out_dir`.
fn launch_snp_guest(
    state: &Path,
    out_dir: &Path,
    object: &str,
    image: &str,
    vcpus: u32,
    dir: &Path,
) -> Output {
    let vcpus = vcpus.to_string();
    let args = [
        "launch",
        "--state",
        s(state),
        "--guest-report",
        s(out_dir),
        "-machine",
        "q35,confidential-guest-support=sev0",
        "-object",
        object,
        "-bios",
        image,
        "-smp",
        &vcpus,
        "-m",
        "1G",
        "-cpu",
        VCPU_TYPE,
    ];
    run(SEVKIT, &args, dir)
}

fn sev_object(policy: u32, dir: &Path) -> String {
    format!(
        "sev-guest,id=sev0,policy={policy:#x},cbitpos=51,reduced-phys-bits=1,dh-cert-file={},\
         session-file={}",
        s(&dir.join("X_godh.b64")),
        s(&dir.join("X_session.b64"))
    )
}

#[test]
#[cfg_attr(
    not(all(sevkit_sevctl, sevkit_debian_ovmf)),
    ignore = "needs sevctl and Debian's ovmf (installed by .ci/run)"
)]
fn sev_and_sev_es_launches_of_debian_ovmf_verify_with_sevctl_and_sevkit() {
    let (state, pdh) = platform();
    for image in DEBIAN_OVMF {
        for (policy, vcpus) in [(0x1u32, 1u32), (0x5, 1), (0x5, 4)] {
            let what = format!("{image} policy {policy:#x} {vcpus} vCPUs");
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            // The owner: a session for this platform's PDH (sevctl).
            ok_stdout(
                "sevctl",
                &["session", "--name", "X", s(&pdh), &policy.to_string()],
                d,
            );
            let out = ok_stdout(
                SEVKIT,
                &[
                    "launch",
                    "--state",
                    s(state.path()),
                    "-machine",
                    "q35,confidential-guest-support=sev0",
                    "-object",
                    &sev_object(policy, d),
                    "-bios",
                    image,
                    "-smp",
                    &vcpus.to_string(),
                    "-m",
                    "512M",
                    "-cpu",
                    VCPU_TYPE,
                ],
                d,
            );
            let (major, minor, build, blob) = launch_report(&out);
            assert_eq!(B64.decode(&blob).unwrap().len(), 48, "{what}");
            let tik = d.join("X_tik.bin");
            let policy_hex = format!("{policy:#x}");
            // sevkit's owner tool accepts the blob ...
            let mut ours = vec![
                "measure",
                "sev-launch",
                "--tik",
                s(&tik),
                "--api-major",
                &major,
                "--api-minor",
                &minor,
                "--build",
                &build,
                "--policy",
                &policy_hex,
                "--ovmf",
                image,
                "--launch-measure-blob",
                &blob,
            ];
            let n = vcpus.to_string();
            if policy & 0x4 != 0 {
                ours.extend(["--vcpus", &n, "--vcpu-type", VCPU_TYPE, "--legacy-fpu"]);
            }
            let verdict = ok_stdout(SEVKIT, &ours, d);
            assert!(verdict.starts_with("OK"), "{what}: {verdict}");
            // ... and sevctl recomputes exactly the firmware's blob, with its
            // own VMSAs for SEV-ES (`sevctl vmsa build`: Milan is 25/1/1).
            let mut theirs = vec![
                "measurement",
                "build",
                "--api-major",
                &major,
                "--api-minor",
                &minor,
                "--build-id",
                &build,
                "--policy",
                &policy_hex,
                "--tik",
                s(&tik),
                "--launch-measure-blob",
                &blob,
                "--firmware",
                image,
            ];
            let vmsa0 = d.join("vmsa0.bin");
            let vmsa1 = d.join("vmsa1.bin");
            if policy & 0x4 != 0 {
                for (cpu, file) in [("0", &vmsa0), ("1", &vmsa1)] {
                    ok_stdout(
                        "sevctl",
                        &[
                            "vmsa",
                            "build",
                            s(file),
                            "--cpu",
                            cpu,
                            "--userspace",
                            "qemu",
                            "--family",
                            "25",
                            "--model",
                            "1",
                            "--stepping",
                            "1",
                            "--firmware",
                            image,
                        ],
                        d,
                    );
                }
                theirs.extend([
                    "--num-cpus",
                    &n,
                    "--vmsa-cpu0",
                    s(&vmsa0),
                    "--vmsa-cpu1",
                    s(&vmsa1),
                ]);
            }
            let sevctl = ok_stdout("sevctl", &theirs, d);
            assert_eq!(sevctl.trim(), blob, "{what}: sevctl measurement build");
        }
    }
}

#[test]
#[cfg_attr(
    not(all(sevkit_sev_snp_measure, sevkit_debian_ovmf)),
    ignore = "needs sev-snp-measure and Debian's ovmf (installed by .ci/run)"
)]
fn snp_launches_of_debian_ovmf_report_sev_snp_measures_measurement() {
    let (state, _) = platform();
    for image in DEBIAN_OVMF {
        let has_metadata = sev_measure::OvmfImage::parse(&std::fs::read(image).unwrap())
            .unwrap()
            .metadata()
            .is_some();
        for vcpus in [1u32, 4] {
            let what = format!("{image} {vcpus} vCPUs");
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let host_data = B64.encode([0xA5u8; 32]);
            let object = format!(
                "sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,host-data={host_data}"
            );
            let out_dir = d.join("guest");
            let out = launch_snp_guest(state.path(), &out_dir, &object, image, vcpus, d);
            if !has_metadata {
                // QEMU refuses it the same way: SNP needs OVMF's SEV metadata.
                assert_eq!(out.status.code(), Some(2), "{what}");
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.contains("Failed to locate SEV metadata header"),
                    "{what}: {err}"
                );
                continue;
            }
            assert!(
                out.status.success(),
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report = std::fs::read(out_dir.join("report.bin")).unwrap();
            assert_eq!(report.len(), 1184, "{what}");
            let peer = snp_measure(image, vcpus, "hex", d);
            assert_eq!(hex::encode(&report[0x90..0xC0]), peer, "{what}");
            assert_eq!(report[0xC0..0xE0], [0xA5u8; 32], "{what}: HOST_DATA");
        }
    }
}

#[test]
fn invalid_properties_are_refused_before_any_firmware_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = d.join("fw.bin");
    std::fs::write(&image, sev_vmm::machine::demo_image::demo_image()).unwrap();
    // The firmware socket does not exist: reaching the AMD-SP would fail
    // with a connection error, so a property error proves it came first.
    let socket = d.join("no-such-firmware.sock");
    let cases: [(&str, &str, &str); 6] = [
        (
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,host-data=AAAA",
            "host-data",
            "",
        ),
        (
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,id-block=AAAA",
            "id-block",
            "",
        ),
        (
            "sev-guest,id=sev0,cbitpos=47,reduced-phys-bits=1",
            "cbitpos",
            "cbitpos check failed",
        ),
        (
            "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=64",
            "reduced-phys-bits",
            "reduced_phys_bits",
        ),
        (
            "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,colour=blue",
            "colour",
            "",
        ),
        (
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,handle=3",
            "handle",
            "",
        ),
    ];
    for (object, property, text) in cases {
        let out = run(
            SEVKIT,
            &[
                "launch",
                "--firmware-socket",
                s(&socket),
                "-machine",
                "q35,confidential-guest-support=sev0",
                "-object",
                object,
                "-bios",
                s(&image),
            ],
            d,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{object}: {err}");
        assert!(
            err.contains(property),
            "{object}: the message names {property}: {err}"
        );
        assert!(err.contains(text), "{object}: {err}");
        assert!(
            !err.contains("no-such-firmware"),
            "{object}: reached the AMD-SP: {err}"
        );
    }
    // SNP with SMM on.
    let out = run(
        SEVKIT,
        &[
            "launch",
            "--firmware-socket",
            s(&socket),
            "-machine",
            "q35,confidential-guest-support=sev0,smm=on",
            "-object",
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
            "-bios",
            s(&image),
        ],
        d,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SEV-SNP does not support SMM."), "{err}");
    // A valid line does reach the (missing) AMD-SP.
    let out = run(
        SEVKIT,
        &[
            "launch",
            "--firmware-socket",
            s(&socket),
            "-machine",
            "q35,confidential-guest-support=sev0",
            "-object",
            "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
            "-bios",
            s(&image),
        ],
        d,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-firmware"));
}

/// `sevkit launch ... -S -qmp unix:SOCK` as a child.
struct Vmm {
    child: Child,
    socket: PathBuf,
}

impl Vmm {
    fn start(dir: &Path, state: &Path, object: &str, image: &str) -> Self {
        let socket = dir.join("qmp.sock");
        let child = Command::new(SEVKIT)
            .args([
                "launch",
                "--state",
                s(state),
                "-machine",
                "q35,confidential-guest-support=sev0",
            ])
            .args([
                "-object", object, "-bios", image, "-smp", "2", "-m", "512M", "-S",
            ])
            .args(["-cpu", VCPU_TYPE, "-qmp"])
            .arg(format!("unix:{},server=on,wait=off", s(&socket)))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The socket is bound before the launch; wait for it to appear.
        for _ in 0..600 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, socket }
    }

    /// Runs `steps` with QEMU's client (`drive.py`); one JSON value per
    /// output line.
    fn drive(&self, steps: &Value) -> Vec<Value> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sev-vmm/tests/qmp/drive.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(steps.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "drive.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn step(out: &[Value], i: usize) -> &Value {
    out.iter()
        .find(|v| v["step"] == json!(i) && (v.get("return").is_some() || v.get("error").is_some()))
        .unwrap_or_else(|| panic!("no answer to step {i}: {out:?}"))
}

#[test]
#[cfg_attr(
    not(all(sevkit_qemu_qmp, sevkit_debian_ovmf)),
    ignore = "needs PyPI qemu.qmp and Debian's ovmf (installed by .ci/run)"
)]
fn qemu_qmp_drives_an_sev_launch_with_secret_and_debug() {
    let (state, pdh) = platform();
    let image = DEBIAN_OVMF[0];
    let ovmf = std::fs::read(image).unwrap();
    let base = 0x1_0000_0000u64 - ovmf.len() as u64;
    for nodbg in [false, true] {
        let policy = if nodbg { 0x5 } else { 0x4 };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ok_stdout(
            SEVKIT,
            &[
                "session",
                "--pdh",
                s(&pdh),
                "--policy",
                &format!("{policy:#x}"),
                "--name",
                "X",
                "--out",
                s(d),
            ],
            d,
        );
        let vmm = Vmm::start(d, state.path(), &sev_object(policy, d), image);
        let out = vmm.drive(&json!([
            {"execute": "query-status"},
            {"execute": "query-sev"},
            {"execute": "query-sev-launch-measure"},
            {"execute": "query-sev-capabilities"},
            {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": 5, "secret": "AA=="}},
            {"execute": "query-sev-attestation-report", "arguments": {"mnonce": "AAAA"}},
        ]));
        assert_eq!(
            step(&out, 0)["return"],
            json!({"status": "prelaunch", "running": false})
        );
        let sev = &step(&out, 1)["return"];
        assert_eq!(sev["sev-type"], "sev");
        assert_eq!(sev["state"], "launch-secret");
        assert_eq!(sev["policy"], json!(policy));
        assert!(sev["handle"].as_u64().unwrap() > 0);
        let blob = step(&out, 2)["return"]["data"].as_str().unwrap().to_owned();
        let caps = &step(&out, 3)["return"];
        assert_eq!(
            B64.decode(caps["pdh"].as_str().unwrap()).unwrap(),
            std::fs::read(&pdh).unwrap()
        );
        assert_eq!(caps["cbitpos"], 51);
        assert_eq!(step(&out, 4)["error"]["class"], "GenericError");
        assert_eq!(
            step(&out, 5)["error"]["desc"],
            "SEV: mnonce must be 16 bytes (got 3)"
        );

        // The owner builds a secret for this measurement; QMP injects it.
        std::fs::write(d.join("owner-secret"), b"a secret from the owner").unwrap();
        ok_stdout(
            SEVKIT,
            &[
                "secret",
                "build",
                "--tek",
                s(&d.join("X_tek.bin")),
                "--tik",
                s(&d.join("X_tik.bin")),
                "--launch-measure-blob",
                &blob,
                "--secret",
                &format!(
                    "736b6576-6465-6d6f-2d73-656372657421:{}",
                    s(&d.join("owner-secret"))
                ),
                "--header",
                s(&d.join("hdr.bin")),
                "--payload",
                s(&d.join("sec.bin")),
            ],
            d,
        );
        let hdr = B64.encode(std::fs::read(d.join("hdr.bin")).unwrap());
        let sec = B64.encode(std::fs::read(d.join("sec.bin")).unwrap());
        let out = vmm.drive(&json!([
            {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": hdr.trim(), "secret": sec.trim()}},
            {"execute": "cont"},
            {"wait_event": "RESUME"},
            {"execute": "query-sev"},
            {"execute": "human-monitor-command", "arguments": {"command-line": format!("xp /16xb {:#x}", base + 0x28)}},
            {"execute": "sev-inject-launch-secret", "arguments": {"packet-header": hdr.trim(), "secret": sec.trim()}},
            {"execute": "query-sev-launch-log"},
        ]));
        assert_eq!(step(&out, 0)["return"], json!({}), "{out:?}");
        assert_eq!(step(&out, 3)["return"]["state"], "running");
        let xp = step(&out, 4)["return"].as_str().unwrap().to_owned();
        assert_eq!(
            step(&out, 5)["error"]["desc"],
            "SEV: Not in correct state. (LSECRET) 3"
        );
        let log = &step(&out, 6)["return"];
        assert_eq!(log["entries"][0]["region"], "ovmf");
        // `sevkit debug read` goes through the same debug API.
        let read = run(
            SEVKIT,
            &[
                "debug",
                "read",
                "--qmp",
                s(&vmm.socket),
                "--gpa",
                &format!("{:#x}", base + 0x28),
                "--len",
                "16",
            ],
            d,
        );
        if nodbg {
            assert!(
                xp.contains("POLICY_FAILURE") && xp.contains("NODBG"),
                "{xp}"
            );
            assert_eq!(read.status.code(), Some(2));
            assert!(String::from_utf8_lossy(&read.stderr).contains("NODBG"));
        } else {
            // OVMF's first firmware volume header: "_FVH" at offset 0x28.
            let plain = &ovmf[0x28..0x38];
            // QEMU prints 8 bytes per line in the `b` size.
            let shown: Vec<u8> = xp
                .lines()
                .filter_map(|l| l.split_once(": ").map(|(_, v)| v.to_owned()))
                .flat_map(|v| {
                    v.split_whitespace()
                        .map(|b| u8::from_str_radix(b.trim_start_matches("0x"), 16).unwrap())
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(shown, plain, "{xp}");
            assert!(xp.ends_with("\r\n"), "HMP lines end in CRLF: {xp:?}");
            assert!(read.status.success());
            assert!(String::from_utf8_lossy(&read.stdout).contains(&hex::encode(plain)));
        }
        let out = vmm.drive(&json!([{"execute": "quit"}, {"disconnect": true}]));
        assert_eq!(step(&out, 0)["return"], json!({}));
    }
}

#[test]
#[cfg_attr(
    not(all(
        sevkit_qemu_qmp,
        sevkit_debian_ovmf,
        sevkit_sev_snp_measure,
        sevkit_snpguest
    )),
    ignore = "needs PyPI qemu.qmp, Debian's ovmf, sev-snp-measure and snpguest (installed by .ci/run)"
)]
fn qemu_qmp_drives_an_snp_launch_and_the_guest_gets_certificates_from_certs_path() {
    let (state, _) = platform();
    let image = DEBIAN_OVMF[0];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The host's certificate file for this chip (the emulated KDS's chain).
    let kds = d.join("kds");
    ok_stdout(
        SEVKIT,
        &[
            "attest",
            "--firmware",
            image,
            "--state",
            s(state.path()),
            "--out",
            s(&kds),
        ],
        d,
    );
    let certs_file = std::fs::read(kds.join("certs.bin")).unwrap();
    assert!(
        certs_file.len() > 4096,
        "the table spans two pages, so the guest must retry"
    );
    let object = format!(
        "sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,certs-path={}",
        s(&kds.join("certs.bin"))
    );
    let vmm = Vmm::start(d, state.path(), &object, image);
    let nonce = [0x5Au8; 64];
    let out = vmm.drive(&json!([
        {"execute": "query-sev"},
        {"execute": "query-sev-launch-measure"},
        {"execute": "x-sevkit-guest-report"},
        {"execute": "cont"},
        {"wait_event": "RESUME"},
        {"execute": "query-sev"},
        {"execute": "x-sevkit-guest-report", "arguments": {"report-data": B64.encode(nonce), "certs-pages": 1}},
        {"execute": "query-sev-launch-log"},
        {"execute": "human-monitor-command", "arguments": {"command-line": "xp /4xw 0x80d000"}},
    ]));
    let sev = &step(&out, 0)["return"];
    assert_eq!(sev["sev-type"], "sev-snp");
    assert_eq!(sev["state"], "launch-update");
    assert_eq!(sev["snp-policy"], json!(0x30000));
    assert_eq!(
        step(&out, 1)["error"]["desc"],
        "SEV launch measurement is not available"
    );
    assert_eq!(step(&out, 2)["error"]["class"], "GenericError");
    assert_eq!(step(&out, 5)["return"]["state"], "running");
    let got = &step(&out, 6)["return"];
    let report = B64.decode(got["report"].as_str().unwrap()).unwrap();
    let certs = B64.decode(got["certs"].as_str().unwrap()).unwrap();
    assert_eq!(
        certs, certs_file,
        "the guest got the certs-path table, whole"
    );
    assert_eq!(report[0x50..0x90], nonce);
    let peer = snp_measure(image, 2, "hex", d);
    assert_eq!(hex::encode(&report[0x90..0xC0]), peer);
    let log = &step(&out, 7)["return"];
    assert_eq!(
        log["entries"].as_array().unwrap().last().unwrap()["digest_after"],
        peer
    );
    // The secrets page is private and the policy forbids debugging.
    let xp = step(&out, 8)["return"].as_str().unwrap();
    assert!(xp.contains("POLICY_FAILURE"), "{xp}");
    // snpguest checks the report against the chain the guest received.
    let report_path = d.join("report.bin");
    std::fs::write(&report_path, &report).unwrap();
    let verified = run(
        "snpguest",
        &["verify", "attestation", s(&kds), s(&report_path)],
        d,
    );
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    vmm.drive(&json!([{"execute": "quit"}, {"disconnect": true}]));
}

#[test]
#[cfg_attr(
    not(all(sevkit_sev_snp_measure, sevkit_debian_ovmf)),
    ignore = "needs sev-snp-measure and Debian's ovmf (installed by .ci/run)"
)]
fn launches_through_the_firmware_daemon() {
    // One daemon per kind of guest; the SNP one serves two VMs at once
    // (each connection has its own memory, RMP and guests).
    let image = DEBIAN_OVMF[0];
    for snp in [false, true] {
        let state = tempfile::tempdir().unwrap();
        std::fs::copy(chip_file(), state.path().join(CHIP_FILE)).unwrap();
        let daemon = common::Daemon::start(state.path(), &[]);
        for _ in 0..600 {
            if daemon.socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let object = if snp {
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1"
        } else {
            "sev-guest,id=sev0,policy=0x5,cbitpos=51,reduced-phys-bits=1"
        };
        let launch = |out_dir: &Path| {
            let mut args = vec!["launch", "--firmware-socket", s(&daemon.socket)];
            if snp {
                args.extend(["--guest-report", s(out_dir)]);
            }
            args.extend([
                "-machine",
                "q35,confidential-guest-support=sev0",
                "-object",
                object,
                "-bios",
                image,
                "-smp",
                "2",
                "-cpu",
                VCPU_TYPE,
            ]);
            ok_stdout(SEVKIT, &args, d)
        };
        let out_dirs = [d.join("guest"), d.join("guest2")];
        let out = if snp {
            std::thread::scope(|scope| {
                let second = scope.spawn(|| launch(&out_dirs[1]));
                let first = launch(&out_dirs[0]);
                second.join().unwrap();
                first
            })
        } else {
            launch(&out_dirs[0])
        };
        if snp {
            // The RMP updates and the guest's own accesses crossed the
            // socket, for both VMs at the same system addresses.
            let peer = snp_measure(image, 2, "hex", d);
            let reports: Vec<Vec<u8>> = out_dirs
                .iter()
                .map(|dir| std::fs::read(dir.join("report.bin")).unwrap())
                .collect();
            for report in &reports {
                assert_eq!(hex::encode(&report[0x90..0xC0]), peer);
            }
            assert_ne!(
                reports[0][0x140..0x160],
                reports[1][0x140..0x160],
                "two guests, two REPORT_IDs"
            );
        } else {
            let (_, _, _, blob) = launch_report(&out);
            assert_eq!(B64.decode(blob).unwrap().len(), 48);
            // The digest the VMM had measured is `sevkit measure`'s (with
            // QEMU's default legacy VM type's VMSAs).
            let expected = out
                .lines()
                .find_map(|l| l.strip_prefix("launch digest (expected): "))
                .unwrap()
                .trim()
                .to_owned();
            let predicted = ok_stdout(
                SEVKIT,
                &[
                    "measure",
                    "--mode",
                    "seves",
                    "--vcpus",
                    "2",
                    "--vcpu-type",
                    VCPU_TYPE,
                    "--legacy-fpu",
                    "--ovmf",
                    image,
                ],
                d,
            );
            assert_eq!(expected, predicted.trim());
        }
    }
}

#[test]
fn the_demo_runs_and_every_check_passes() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sevkit-demo-cache");
    let out = Command::new(SEVKIT)
        .args(["demo", "--vcpus", "2"])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("MNONCE; TIK): OK"), "{text}");
    assert!(
        text.contains("reads its secret area: \"disk passphrase"),
        "{text}"
    );
    assert!(text.contains("host data: OK"), "{text}");
    assert!(text.contains("the host answers it needs 2"), "{text}");
    assert!(
        !text.contains("MISMATCH") && !text.contains("FAILED"),
        "{text}"
    );
    // The owner's prediction and the report agree, printed side by side.
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.split_once(prefix).map(|(_, v)| v.trim().to_owned()))
            .unwrap()
    };
    assert_eq!(value("predicted measurement"), value("report measurement"));
}

#[test]
#[cfg_attr(
    not(all(sevkit_sev_snp_measure, sevkit_debian_ovmf)),
    ignore = "needs sev-snp-measure (with snp-create-id-block) and Debian's ovmf (installed by .ci/run)"
)]
fn snp_launch_with_an_id_block_signed_by_snp_create_id_block() {
    let (state, _) = platform();
    let image = DEBIAN_OVMF[0];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The owner's ID and author keys (P-384, PKCS#8 PEM), made with the
    // `cryptography` package sev-snp-measure itself depends on.
    let keygen = "from cryptography.hazmat.primitives.asymmetric import ec\n\
                  from cryptography.hazmat.primitives import serialization as s\n\
                  for n in ('id', 'author'):\n\
                  \x20   k = ec.generate_private_key(ec.SECP384R1())\n\
                  \x20   open(n + '.pem', 'wb').write(k.private_bytes(s.Encoding.PEM, \
                  s.PrivateFormat.PKCS8, s.NoEncryption()))\n";
    ok_stdout("python3", &["-c", keygen], d);
    let measurement = snp_measure(image, 2, "base64", d);
    let measurement = measurement.as_str();
    let launch = |id_args: &str| {
        let object = format!(
            "sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,{id_args}"
        );
        let out_dir = d.join("guest");
        let out = launch_snp_guest(state.path(), &out_dir, &object, image, 2, d);
        (out, out_dir.join("report.bin"))
    };
    // snp-create-id-block signs with both keys; the author key counts only
    // with author-key-enabled=on.
    let args = [
        "--measurement",
        measurement,
        "--idkey",
        "id.pem",
        "--authorkey",
        "author.pem",
    ];
    let created = ok_stdout("snp-create-id-block", &args, d);
    let digest = |name: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| B64.decode(v.trim()).unwrap())
            .unwrap()
    };
    let id_args = created.lines().next().unwrap().trim();
    for author in [false, true] {
        let id_args = if author {
            format!("{id_args},author-key-enabled=on")
        } else {
            id_args.to_owned()
        };
        let (out, report) = launch(&id_args);
        assert!(
            out.status.success(),
            "{id_args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = std::fs::read(report).unwrap();
        assert_eq!(
            report[0xE0..0x110],
            digest("id_key_hash: ")[..],
            "ID_KEY_DIGEST"
        );
        let expected_author = if author {
            digest("author_key: ")
        } else {
            vec![0u8; 48]
        };
        assert_eq!(
            report[0x110..0x140],
            expected_author[..],
            "AUTHOR_KEY_DIGEST"
        );
    }
    // An ID block signed for another measurement: SNP_LAUNCH_FINISH refuses it.
    let other = snp_measure(image, 3, "base64", d);
    let wrong = ok_stdout(
        "snp-create-id-block",
        &[
            "--measurement",
            &other,
            "--idkey",
            "id.pem",
            "--authorkey",
            "author.pem",
        ],
        d,
    );
    let (out, _) = launch(wrong.lines().next().unwrap().trim());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SNP_LAUNCH_FINISH") && err.contains("BAD_MEASUREMENT"),
        "{err}"
    );
}

/// The demo image with its SEV metadata section `index` moved to `gpa`
/// and resized to `size`.
fn demo_image_with_section(index: usize, gpa: u32, size: u32) -> Vec<u8> {
    let mut image = sev_vmm::machine::demo_image::demo_image();
    let offset = sev_measure::OvmfImage::parse(&image)
        .unwrap()
        .metadata()
        .unwrap()
        .offset;
    let at = offset
        + sev_measure::ovmf::METADATA_HEADER_LEN
        + index * sev_measure::ovmf::METADATA_SECTION_LEN;
    image[at..at + 4].copy_from_slice(&gpa.to_le_bytes());
    image[at + 4..at + 8].copy_from_slice(&size.to_le_bytes());
    image
}

#[test]
fn measure_refuses_the_metadata_the_launch_refuses_with_its_message() {
    let (state, _) = platform();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Section 0 is SNP_SEC_MEM at 0x80_0000 + 0x9000; section 2 the
    // SECRETS page.
    let cases = [
        (
            0,
            0x80_0800,
            0x9000,
            "(SNP_SEC_MEM) at 0x800800+0x9000 is not page aligned",
        ),
        (
            2,
            0x80_D010,
            0x1000,
            "(SECRETS) at 0x80d010+0x1000 is not page aligned",
        ),
        (
            0,
            0xFFFF_0000,
            0x2_0000,
            "(SNP_SEC_MEM) at 0xffff0000+0x20000 ends past 4 GiB",
        ),
    ];
    for (index, gpa, size, text) in cases {
        let image = d.join(format!("fw-{index}-{gpa:x}.bin"));
        std::fs::write(&image, demo_image_with_section(index, gpa, size)).unwrap();
        let measured = run(
            SEVKIT,
            &[
                "measure",
                "--mode",
                "snp",
                "--vcpus",
                "1",
                "--vcpu-type",
                VCPU_TYPE,
                "--ovmf",
                s(&image),
            ],
            d,
        );
        let launched = run(
            SEVKIT,
            &[
                "launch",
                "--state",
                s(state.path()),
                "-machine",
                "q35,confidential-guest-support=sev0",
                "-object",
                "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
                "-bios",
                s(&image),
                "-cpu",
                VCPU_TYPE,
            ],
            d,
        );
        let expected = format!("OVMF SEV metadata section {index} {text}");
        for (what, out) in [("measure", &measured), ("launch", &launched)] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what} {gpa:#x}: {err}");
            assert!(
                err.contains(&expected),
                "{what}: expected {expected:?}: {err}"
            );
        }
    }
}

#[test]
fn debug_read_times_out_while_another_client_holds_the_monitor() {
    let (state, _) = platform();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = d.join("fw.bin");
    let demo = sev_vmm::machine::demo_image::demo_image();
    std::fs::write(&image, &demo).unwrap();
    let vmm = Vmm::start(
        d,
        state.path(),
        "sev-guest,id=sev0,policy=0x0,cbitpos=51,reduced-phys-bits=1",
        s(&image),
    );
    // Hold the monitor: a client that got its greeting (sent once the
    // launch is done) and stays.
    let holder = UnixStream::connect(&vmm.socket).unwrap();
    holder
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut greeting = String::new();
    BufReader::new(&holder).read_line(&mut greeting).unwrap();
    assert!(greeting.contains("QMP"), "{greeting}");
    let gpa = format!("{:#x}", (1u64 << 32) - demo.len() as u64);
    let read = |timeout: &str| {
        let started = Instant::now();
        let out = run(
            SEVKIT,
            &[
                "debug",
                "read",
                "--qmp",
                s(&vmm.socket),
                "--gpa",
                &gpa,
                "--len",
                "16",
                "--timeout",
                timeout,
            ],
            d,
        );
        (out, started.elapsed())
    };
    let (out, took) = read("1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("did not answer within 1 s (the greeting)")
            && err.contains("another client may be connected"),
        "{err}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Once the other client leaves, the monitor answers.
    drop(holder);
    let (out, _) = read("60");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("did not answer"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn debug_read_refuses_a_reply_line_past_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("fake-qmp.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // A server that greets, accepts the negotiation, then answers the
    // command with a line that never ends.
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(&stream);
        let mut writer = &stream;
        writer
            .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        writer.write_all(b"{\"return\": {}}\n").unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let mut sent = 0usize;
        // Until the client gives up (or far past any limit).
        while sent < 256 << 20 && writer.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    let out = run(
        SEVKIT,
        &[
            "debug",
            "read",
            "--qmp",
            s(&socket),
            "--gpa",
            "0",
            "--len",
            "16",
            "--timeout",
            "60",
        ],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a QMP reply (xp) is longer than") && err.contains("without a newline"),
        "{err}"
    );
    let sent = server.join().unwrap();
    assert!(sent < 64 << 20, "the client read {sent} bytes");
}

/// `debug read` asks for `x-sevkit-read-memory` with the address and
/// length, and says what it needs when the monitor lacks the command (as
/// QEMU's does) or answers with something that is not the bytes.
#[test]
fn debug_read_needs_sevkits_binary_read() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("fake-qmp.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let answers = [
        r#"{"error": {"class": "CommandNotFound", "desc": "The command x-sevkit-read-memory has not been found"}}"#,
        r#"{"return": {"data": "AAAA"}}"#,
        r#"{"error": {"class": "GenericError", "desc": "DBG_DECRYPT refused: NODBG"}}"#,
    ];
    let server = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for answer in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&stream);
            let mut writer = &stream;
            writer
                .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
                .unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            writer.write_all(b"{\"return\": {}}\n").unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            requests.push(line);
            writer.write_all(format!("{answer}\n").as_bytes()).unwrap();
        }
        requests
    });
    let read = || {
        let out = run(
            SEVKIT,
            &[
                "debug",
                "read",
                "--qmp",
                s(&socket),
                "--gpa",
                "0x1000",
                "--len",
                "16",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = read();
    assert!(
        err.contains("has no x-sevkit-read-memory") && err.contains("sevkit launch -qmp"),
        "{err}"
    );
    // Three bytes where sixteen were asked for.
    let err = read();
    assert!(err.contains("xp: not 16 bytes of base64 data"), "{err}");
    let err = read();
    assert!(err.contains("xp: DBG_DECRYPT refused: NODBG"), "{err}");
    let requests = server.join().unwrap();
    let request: serde_json::Value = serde_json::from_str(&requests[0]).unwrap();
    assert_eq!(
        request,
        json!({"execute": "x-sevkit-read-memory", "arguments": {"gpa": 4096, "size": 16}})
    );
}

#[test]
fn malformed_debug_and_demo_arguments_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("no.sock");
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "debug",
                "read",
                "--qmp",
                s(&missing),
                "--gpa",
                "zz",
                "--len",
                "1",
            ],
            "--gpa",
        ),
        (
            &[
                "debug",
                "read",
                "--qmp",
                s(&missing),
                "--gpa",
                "0x1000",
                "--len",
                "0",
            ],
            "--len 0",
        ),
        (
            &[
                "debug",
                "read",
                "--qmp",
                s(&missing),
                "--gpa",
                "0x1000",
                "--len",
                "16",
            ],
            "no.sock",
        ),
        (&["demo", "--vcpus", "0"], "--vcpus 0"),
        (&["launch", "-bios"], "-bios"),
    ];
    for (args, expected) in cases {
        let out = run(SEVKIT, args, d);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// A reader that goes away before sevkit is done writing (`sevkit launch
/// --log | head`, `sevkit measure --log table 2>&1 | head`) ends sevkit
/// quietly with exit 0; it used to panic ("failed printing to stdout:
/// Broken pipe") with exit 101.
#[test]
#[cfg_attr(
    not(sevkit_debian_ovmf),
    ignore = "needs Debian's ovmf (/usr/share/ovmf/OVMF.fd); .ci/run installs it"
)]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    common::state_with_chip(&state);
    let launch: &[&str] = &[
        "launch",
        "--state",
        s(&state),
        "--log",
        "-machine",
        "q35,confidential-guest-support=sev0",
        "-object",
        "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
        "-bios",
        OVMF,
    ];
    let measure: &[&str] = &[
        "measure",
        "--mode",
        "snp",
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--ovmf",
        OVMF,
        "--log",
        "table",
    ];
    // measure writes its log to standard error, so that goes to the dead
    // pipe too in the last case (`2>&1 | head`).
    for (args, stderr_too) in [(launch, false), (measure, false), (measure, true)] {
        // A pipe whose reader is gone before sevkit starts: every write
        // fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = Command::new(SEVKIT);
        command
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null());
        let stderr_file = dir.path().join("stderr");
        if stderr_too {
            command.stderr(writer.try_clone().unwrap());
        } else {
            command.stderr(std::fs::File::create(&stderr_file).unwrap());
        }
        let status = command.stdout(writer).status().unwrap();
        let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
        let tail = &stderr[stderr.len().saturating_sub(400)..];
        assert_eq!(
            status.code(),
            Some(0),
            "{} (stderr too: {stderr_too}): {tail}",
            args[0]
        );
        assert!(!stderr.contains("panicked"), "{}: {tail}", args[0]);
        if args[0] == "launch" {
            assert_eq!(stderr, "", "launch");
        }
        let _ = std::fs::remove_file(&stderr_file);
    }
}
