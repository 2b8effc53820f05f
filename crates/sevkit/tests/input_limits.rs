//! Every file sevkit reads whole is checked against the most it may hold
//! before it is read: a regular file larger than that is refused from its
//! size (a sparse file here: nothing is read), and a stream that does not
//! know its size (`/dev/zero`) is cut one byte past the limit. Both end
//! with exit 2 and a message naming the file, what it should hold and the
//! limit, quickly and in bounded memory.
//!
//! The child runs under `ulimit -v` (1 GiB of address space): a reader
//! without a bound would run out of memory and abort instead of exiting 2.
//!
//! And what is read is quoted in errors only as a short excerpt: a config
//! of one 1 MiB line, or a 100 KB argument, gives a message of a few
//! hundred bytes.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{s, SEVKIT};

/// The address space the child gets, in KiB (`ulimit -v`).
const ADDRESS_SPACE_KIB: u64 = 1 << 20;
/// How long one refusal may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// A placeholder for the file under test in an argument list.
const FILE: &str = "{FILE}";

/// Runs sevkit with `args` in `dir`, `FILE` replaced by `file`, under the
/// address-space limit; kills it at the deadline.
fn bounded(dir: &Path, args: &[String], file: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.replace(FILE, file)).collect();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(SEVKIT)
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("sevkit {args:?} still runs after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A sparse file of `len` bytes (no disk space, nothing to read).
fn sparse(dir: &Path, name: &str, len: u64) -> String {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    s(&path).to_owned()
}

/// One file input: the command line with `FILE` where the file goes, the
/// limit, and whether `/dev/zero` can stand for the file (a value that is
/// a path or base64 takes only regular files as paths).
struct Case {
    args: Vec<String>,
    max: u64,
    stream: bool,
}

fn case(args: &[&str], max: u64, stream: bool) -> Case {
    Case {
        args: args.iter().map(|&a| a.to_owned()).collect(),
        max,
        stream,
    }
}

fn check(dir: &Path, case: &Case, file: &str, size: &str) {
    let out = bounded(dir, &case.args, file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?} with {file}: {err}",
        case.args
    );
    let limit = format!("is at most {} bytes; this file is {size}", case.max);
    assert!(
        err.contains(file) && err.contains(&limit),
        "{:?} with {file}: expected the path and {limit:?}: {err}",
        case.args
    );
    assert!(err.len() < 1024, "{:?}: a long message: {err}", case.args);
}

#[test]
#[allow(clippy::too_many_lines)] // one table row per file input
fn every_file_input_is_refused_past_its_limit_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, bytes: &[u8]| {
        let path = d.join(name);
        std::fs::write(&path, bytes).unwrap();
        s(&path).to_owned()
    };
    let image = &write("fw.bin", &sev_vmm::machine::demo_image::demo_image());
    let report = &write("report.bin", &[0u8; 1184]);
    let key = &write("key.bin", &[7u8; 16]);
    let blob = &write("blob.bin", &[9u8; 48]);
    let small = &write("small.bin", b"kernel");

    let report_max = 64 << 10;
    let cert_max = 1 << 20;
    let firmware_max = 16 << 20;
    let kernel_max = 1 << 30;
    let key_max = 4 << 10;
    let secret_max = 64 << 10;
    let toml_max = 1 << 20;
    let owner_file_max = 64 << 10;
    let snp_measure = [
        "measure",
        "--mode",
        "snp",
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
    ];
    let launch_sev = [
        "launch",
        "--firmware-socket",
        "/nonexistent/fw.sock",
        "-machine",
        "q35,confidential-guest-support=sev0",
    ];
    let cases = [
        case(&["show", "report", FILE], report_max, true),
        case(&["show", "cert", FILE], cert_max, true),
        case(
            &["verify", "report", FILE, "--vcek", small],
            report_max,
            true,
        ),
        case(
            &["verify", "report", report, "--vcek", FILE],
            cert_max,
            true,
        ),
        case(
            &[
                "verify",
                "sev-chain",
                "--pdh",
                FILE,
                "--pek",
                small,
                "--oca",
                small,
                "--cek",
                small,
            ],
            cert_max,
            true,
        ),
        case(
            &[&snp_measure[..], &["--ovmf", FILE]].concat(),
            firmware_max,
            true,
        ),
        case(
            &["measure", "--mode", "snp:ovmf-hash", "--ovmf", FILE],
            firmware_max,
            true,
        ),
        case(
            &[&snp_measure[..], &["--ovmf", image, "--kernel", FILE]].concat(),
            kernel_max,
            false,
        ),
        case(
            &[
                &snp_measure[..],
                &["--ovmf", image, "--kernel", small, "--initrd", FILE],
            ]
            .concat(),
            kernel_max,
            false,
        ),
        case(
            &[
                "measure",
                "--mode",
                "snp:svsm",
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--vars-size",
                "131072",
                "--ovmf",
                image,
                "--svsm",
                FILE,
            ],
            firmware_max,
            true,
        ),
        case(
            &[
                "measure",
                "sev-launch",
                "--tik",
                FILE,
                "--api-major",
                "1",
                "--api-minor",
                "0",
                "--build",
                "0",
                "--policy",
                "0",
                "--launch-measure-blob",
                blob,
            ],
            key_max,
            false,
        ),
        case(&["session", "--pdh", FILE], cert_max, true),
        case(
            &[
                "secret",
                "build",
                "--tik",
                FILE,
                "--tek",
                key,
                "--launch-measure-blob",
                blob,
                "--header",
                "h.bin",
                "--payload",
                "p.bin",
            ],
            key_max,
            false,
        ),
        case(
            &[
                "secret",
                "build",
                "--tik",
                key,
                "--tek",
                key,
                "--launch-measure-blob",
                blob,
                "--secret",
                "736869e5-84f0-4973-92ec-06879ce3da0b:{FILE}",
                "--header",
                "h.bin",
                "--payload",
                "p.bin",
            ],
            secret_max,
            true,
        ),
        case(
            &["attest", "--firmware", FILE, "--out", "out"],
            firmware_max,
            true,
        ),
        case(
            &[
                "attest",
                "--firmware",
                image,
                "--out",
                "out",
                "--id-block",
                FILE,
                "--id-auth",
                small,
            ],
            report_max,
            true,
        ),
        case(&["launch", "--config", FILE], toml_max, true),
        case(
            &[
                &launch_sev[..],
                &[
                    "-object",
                    "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
                    "-bios",
                    FILE,
                ],
            ]
            .concat(),
            firmware_max,
            true,
        ),
        case(
            &[
                &launch_sev[..],
                &[
                    "-object",
                    "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on",
                    "-bios",
                    image,
                    "-kernel",
                    FILE,
                ],
            ]
            .concat(),
            kernel_max,
            false,
        ),
        case(
            &[
                &launch_sev[..],
                &[
                    "-object",
                    "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,dh-cert-file={FILE}",
                    "-bios",
                    image,
                ],
            ]
            .concat(),
            owner_file_max,
            true,
        ),
    ];
    for (i, case) in cases.iter().enumerate() {
        let big = sparse(d, &format!("big{i}"), case.max + 1);
        check(d, case, &big, &format!("{} bytes", case.max + 1));
        if case.stream {
            check(
                d,
                case,
                "/dev/zero",
                &format!("longer than {} bytes", case.max),
            );
        }
    }
}

/// The most an error about a huge input may write to stderr.
const SHORT_STDERR: usize = 2048;

#[test]
fn errors_about_huge_input_quote_an_excerpt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One line just under the TOML limit, with a syntax error near its end.
    let long = "x".repeat((1 << 20) - 100);
    let config = d.join("vm.toml");
    std::fs::write(&config, format!("bios = \"{long}\" ?")).unwrap();
    let column = "bios = \"".len() + long.len() + "\" ".len() + 1;
    let out = bounded(
        d,
        &["launch".into(), "--config".into(), FILE.into()],
        s(&config),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", &err[..err.len().min(500)]);
    assert!(err.len() < SHORT_STDERR, "{} bytes of stderr", err.len());
    assert!(
        err.contains(s(&config)) && err.contains(&format!("line 1, column {column}")),
        "{err}"
    );

    // Arguments (at most 128 KiB each on Linux).
    let arg = "y".repeat(100_000);
    let cases: [&[&str]; 5] = [
        &["measure", "--mode", &arg, "--ovmf", "x"],
        &[
            "measure",
            "--mode",
            "snp",
            "--vcpus",
            "1",
            "--vcpu-type",
            &arg,
            "--ovmf",
            "x",
        ],
        &[
            "measure",
            "--mode",
            "snp",
            "--vcpus",
            "1",
            "--vmm-type",
            &arg,
            "--ovmf",
            "x",
        ],
        &[
            "measure",
            "--mode",
            "snp",
            "--vcpus",
            "1",
            "--guest-features",
            &arg,
            "--ovmf",
            "x",
        ],
        &[
            "launch",
            "--firmware-socket",
            "/nonexistent",
            "-machine",
            &format!("q35,{arg}=1"),
        ],
    ];
    for args in cases {
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        let out = bounded(d, &args, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", &err[..err.len().min(500)]);
        assert!(
            err.len() < SHORT_STDERR,
            "{:?}: {} bytes of stderr",
            &args[..2],
            err.len()
        );
    }
}
