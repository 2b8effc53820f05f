//! `sevkit measure` against the peer tool sev-snp-measure (PyPI 0.0.13) over
//! a generated matrix of real firmware images, modes, vCPU counts, vCPU
//! types, VMM types, guest features and kernel/initrd/append variants.
//!
//! Both tools get the same arguments. A case agrees when both print the same
//! stdout, or when both refuse (the peer exits non-zero: 1, 2 or a Python
//! traceback; sevkit exits 2 with a message). Combinations where the peer
//! prints a digest for nonsense (`--vcpus 0`, guest features wider than 64
//! bits) are left out: sevkit refuses those on purpose.
//!
//! Images: Debian bookworm's `ovmf` package (OVMF.fd, OVMF_CODE.fd,
//! OVMF_CODE_4M.fd, the last without SEV metadata) and shared/vectors'
//! firmware (an AmdSevX64 build with a kernel hashes table, trixie's OVMF.fd
//! and OVMF_CODE_4M.fd with an SVSM_CAA section).
//!
//! Nothing here times anything; `sevkit bench measure` does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The peer's executable (on `PATH`).
const PEER: &str = "sev-snp-measure";

/// Debian bookworm's `ovmf` package.
const DEBIAN_IMAGES: [&str; 3] = [
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
];

/// Images in shared/vectors/firmware; the first has a kernel hashes table.
const VECTOR_IMAGES: [&str; 3] = ["OVMF.amdsev.fd", "trixie_OVMF.fd", "trixie_OVMF_CODE_4M.fd"];

/// vCPU counts, cycled through the matrix.
const VCPUS: [&str; 4] = ["1", "2", "4", "16"];

/// `--guest-features` values, cycled through the SNP rows (ignored by the
/// other modes, which the SEV-ES rows check).
const FEATURES: [&str; 4] = ["0x1", "0x21", "0x0", "0x41"];

/// Milan's model and stepping, after a `--vcpu-family`.
const FMS_1_1: &[&str] = &["--vcpu-model", "1", "--vcpu-stepping", "1"];

/// The VMM types.
const VMMS: [&str; 3] = ["QEMU", "ec2", "gce"];

/// Ways to name the vCPU. `None` gives no vCPU option at all (the peer
/// refuses that for QEMU, accepts it for ec2 and gce, whose VMSAs carry a
/// fixed RDX).
fn vcpu_specs() -> Vec<Vec<&'static str>> {
    let mut specs: Vec<Vec<&'static str>> = [
        "EPYC",
        "EPYC-v4",
        "EPYC-IBPB",
        "EPYC-Rome",
        "EPYC-Rome-v3",
        "EPYC-Milan",
        "EPYC-Milan-v2",
        "EPYC-Genoa",
        "EPYC-Turin",
    ]
    .iter()
    .map(|name| vec!["--vcpu-type", name])
    .collect();
    specs.extend([
        // Genoa's signature in hex, Naples' (EPYC) in decimal.
        vec!["--vcpu-sig", "0xA10F10"],
        vec!["--vcpu-sig", "8392466"],
        // Milan by family/model/stepping; Turin (family > 0xf, model 0).
        vec![
            "--vcpu-family",
            "25",
            "--vcpu-model",
            "1",
            "--vcpu-stepping",
            "1",
        ],
        vec![
            "--vcpu-family",
            "26",
            "--vcpu-model",
            "0",
            "--vcpu-stepping",
            "0",
        ],
        // An arbitrary family 0x19 part with a high model and stepping.
        vec![
            "--vcpu-family",
            "25",
            "--vcpu-model",
            "160",
            "--vcpu-stepping",
            "2",
        ],
        Vec::new(),
    ]);
    specs
}

/// A kernel/initrd/append variant for the images with a hashes table.
#[derive(Debug, Clone, Copy)]
enum Boot {
    /// No `--kernel`.
    Firmware,
    Kernel,
    KernelInitrd,
    KernelAppend,
    KernelInitrdAppend,
    /// `--append ""`: hashed like no append (a lone NUL).
    KernelEmptyAppend,
    /// A zero-length initrd file and a command line with quotes and commas.
    KernelEmptyInitrdOddAppend,
}

const BOOTS: [Boot; 7] = [
    Boot::Firmware,
    Boot::Kernel,
    Boot::KernelInitrd,
    Boot::KernelAppend,
    Boot::KernelInitrdAppend,
    Boot::KernelEmptyAppend,
    Boot::KernelEmptyInitrdOddAppend,
];

/// Small fake kernel and initrd files (contents only matter to SHA-256).
struct Fixtures {
    dir: PathBuf,
    kernel: String,
    initrd: String,
    empty_initrd: String,
    zeros: String,
    tiny: String,
}

/// Deterministic filler bytes.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

impl Fixtures {
    fn create(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sevkit-peer-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path.to_str().unwrap().to_owned()
        };
        // A bzImage-sized-ish kernel whose length is not a page multiple.
        let kernel = write("vmlinuz-fake", &pseudo_random(300_001, 0x5e5));
        let initrd = write("initrd-fake", &pseudo_random(1 << 20, 0x1417));
        let empty_initrd = write("initrd-empty", &[]);
        // 64 KiB of zeros: no footer table at all.
        let zeros = write("zeros.fd", &vec![0; 0x10000]);
        // Too short to hold even a footer entry.
        let tiny = write("tiny.fd", b"abc");
        Self {
            dir,
            kernel,
            initrd,
            empty_initrd,
            zeros,
            tiny,
        }
    }

    fn boot_args(&self, boot: Boot) -> Vec<String> {
        let kernel = || vec!["--kernel".to_owned(), self.kernel.clone()];
        let mut args = match boot {
            Boot::Firmware => return Vec::new(),
            _ => kernel(),
        };
        let initrd = |args: &mut Vec<String>, path: &str| {
            args.extend(["--initrd".to_owned(), path.to_owned()]);
        };
        let append = |args: &mut Vec<String>, line: &str| {
            args.extend(["--append".to_owned(), line.to_owned()]);
        };
        match boot {
            Boot::Firmware | Boot::Kernel => {}
            Boot::KernelInitrd => initrd(&mut args, &self.initrd),
            Boot::KernelAppend => append(&mut args, "console=ttyS0 root=/dev/vda1 ro quiet"),
            Boot::KernelInitrdAppend => {
                initrd(&mut args, &self.initrd);
                append(&mut args, "console=ttyS0,115200n8 earlyprintk=serial");
            }
            Boot::KernelEmptyAppend => append(&mut args, ""),
            Boot::KernelEmptyInitrdOddAppend => {
                initrd(&mut args, &self.empty_initrd);
                append(&mut args, "init=/bin/sh foo=\"bar baz\" a,b;c -- single");
            }
        }
        args
    }
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One comparison: the same arguments to both tools (unless `peer_args`
/// spells them the peer's way).
#[derive(Debug, Clone)]
struct Case {
    group: &'static str,
    args: Vec<String>,
    peer_args: Option<Vec<String>>,
}

impl Case {
    fn peer_args(&self) -> &[String] {
        self.peer_args.as_deref().unwrap_or(&self.args)
    }
}

/// Builds a case from string slices.
fn case(group: &'static str, parts: &[&[&str]]) -> Case {
    Case {
        group,
        args: parts
            .iter()
            .flat_map(|p| p.iter().map(|s| (*s).to_owned()))
            .collect(),
        peer_args: None,
    }
}

/// One image under test.
struct Image {
    path: String,
    /// Has a kernel hashes table (measured direct boot works).
    hashes: bool,
}

fn images() -> Vec<Image> {
    let vectors = env!("SEVKIT_VECTORS_DIR");
    assert!(
        !vectors.is_empty(),
        "shared/vectors not found at build time"
    );
    let mut images: Vec<Image> = VECTOR_IMAGES
        .iter()
        .map(|name| Image {
            path: format!("{vectors}/firmware/{name}"),
            hashes: *name == "OVMF.amdsev.fd",
        })
        .collect();
    images.extend(DEBIAN_IMAGES.iter().map(|path| Image {
        path: (*path).to_owned(),
        hashes: false,
    }));
    for image in &images {
        assert!(
            Path::new(&image.path).is_file(),
            "missing image {}",
            image.path
        );
    }
    images
}

/// Output options, cycled: every seventh case asks for base64, every fifth
/// for the peer's verbose sentence (`-v`).
fn format(n: &mut usize) -> &'static [&'static str] {
    *n += 1;
    match (n.is_multiple_of(7), n.is_multiple_of(5)) {
        (true, true) => &["--output-format", "base64", "-v"],
        (true, false) => &["--output-format", "base64"],
        (false, true) => &["-v"],
        (false, false) => &[],
    }
}

/// The whole matrix. `ovmf_hashes` maps each image to the peer's
/// `snp:ovmf-hash` output, used to seed `--snp-ovmf-hash`.
#[allow(clippy::too_many_lines)]
fn matrix(images: &[Image], fx: &Fixtures, ovmf_hashes: &BTreeMap<String, String>) -> Vec<Case> {
    let specs = vcpu_specs();
    let mut cases = Vec::new();
    let mut n = 0usize; // drives the cyclic choices and base64 output

    for (i, image) in images.iter().enumerate() {
        let ovmf: &[&str] = &["--ovmf", &image.path];

        // SEV-ES and SNP: every vCPU spec under QEMU; every other one (and
        // none) under ec2 and gce, where the VMSA ignores the signature.
        for mode in ["seves", "snp"] {
            for (v, vmm) in VMMS.iter().enumerate() {
                for (s, spec) in specs.iter().enumerate() {
                    if v > 0 && s % 2 == 1 && !spec.is_empty() {
                        continue;
                    }
                    let vcpus = VCPUS[(s + v + i) % VCPUS.len()];
                    let features = FEATURES[(s + 2 * v + i) % FEATURES.len()];
                    let mut c = case(
                        "vcpu-vmm",
                        &[
                            &["--mode", mode, "--vcpus", vcpus],
                            spec,
                            &["--vmm-type", vmm, "--guest-features", features],
                            ovmf,
                            format(&mut n),
                        ],
                    );
                    if image.hashes {
                        c.args.extend(fx.boot_args(BOOTS[(s + v) % BOOTS.len()]));
                    }
                    cases.push(c);
                }
            }
        }

        // SNP: every guest-features value with 1 and many vCPUs.
        for (f, features) in FEATURES.iter().enumerate() {
            for vcpus in ["1", "16"] {
                let vmm = VMMS[(f + i) % VMMS.len()];
                cases.push(case(
                    "features",
                    &[
                        &[
                            "--mode",
                            "snp",
                            "--vcpus",
                            vcpus,
                            "--vcpu-type",
                            "EPYC-Milan",
                        ],
                        &["--vmm-type", vmm, "--guest-features", features],
                        ovmf,
                    ],
                ));
            }
        }

        // Legacy SEV: the firmware (and hashes table) only; the vCPU and
        // VMM options are accepted and ignored.
        cases.push(case("sev", &[&["--mode", "sev"], ovmf]));
        cases.push(case(
            "sev",
            &[&["--mode", "sev", "--output-format", "base64"], ovmf],
        ));
        cases.push(case(
            "sev",
            &[
                &["--mode", "sev", "--vcpus", "4", "--vcpu-type", "EPYC-Milan"],
                &["--vmm-type", "gce", "--guest-features", "0x21"],
                ovmf,
            ],
        ));

        // The OVMF pages alone (always printed in plain hex by the peer).
        cases.push(case("ovmf-hash", &[&["--mode", "snp:ovmf-hash"], ovmf]));
        cases.push(case(
            "ovmf-hash",
            &[
                &["--mode", "snp:ovmf-hash", "--output-format", "base64"],
                ovmf,
            ],
        ));
        // The peer returns before looking at anything else, -v included.
        cases.push(case(
            "ovmf-hash",
            &[
                &["--mode", "snp:ovmf-hash", "--vcpus", "2"],
                &["--vcpu-type", "EPYC", "-v"],
                ovmf,
            ],
        ));

        // SNP seeded with --snp-ovmf-hash: its own hash (same digest as
        // unseeded), its hash in upper case, and another image's hash.
        let own = &ovmf_hashes[&image.path];
        let other = &ovmf_hashes[&images[(i + 1) % images.len()].path];
        let upper = own.to_uppercase();
        for (k, seed) in [own, &upper, other].into_iter().enumerate() {
            let vmm = VMMS[(k + i) % VMMS.len()];
            let mut c = case(
                "ovmf-seed",
                &[
                    &[
                        "--mode",
                        "snp",
                        "--vcpus",
                        VCPUS[k],
                        "--vcpu-type",
                        "EPYC-Genoa",
                    ],
                    &["--vmm-type", vmm, "--snp-ovmf-hash", seed],
                    ovmf,
                ],
            );
            if image.hashes {
                c.args.extend(fx.boot_args(Boot::KernelInitrdAppend));
            }
            cases.push(c);
        }

        if image.hashes {
            // Direct boot: every variant, every mode, every VMM.
            for (b, boot) in BOOTS.iter().enumerate() {
                let mut c = case("boot", &[&["--mode", "sev"], ovmf, format(&mut n)]);
                c.args.extend(fx.boot_args(*boot));
                cases.push(c);
                for mode in ["seves", "snp"] {
                    for (v, vmm) in VMMS.iter().enumerate() {
                        let spec = &specs[(b + v) % (specs.len() - 1)];
                        let mut c = case(
                            "boot",
                            &[
                                &["--mode", mode, "--vcpus", VCPUS[(b + v) % VCPUS.len()]],
                                spec,
                                &["--vmm-type", vmm],
                                ovmf,
                                format(&mut n),
                            ],
                        );
                        c.args.extend(fx.boot_args(*boot));
                        cases.push(c);
                    }
                }
            }
        } else {
            // No hashes table: the peer refuses --kernel in every mode.
            for (m, mode) in ["sev", "seves", "snp"].into_iter().enumerate() {
                let boot = if m == 1 {
                    Boot::Kernel
                } else {
                    Boot::KernelInitrdAppend
                };
                let mut c = case(
                    "boot-refused",
                    &[
                        &["--mode", mode, "--vcpus", "2", "--vcpu-type", "EPYC-v4"],
                        &["--vmm-type", VMMS[(m + i) % VMMS.len()]],
                        ovmf,
                    ],
                );
                c.args.extend(fx.boot_args(boot));
                cases.push(c);
            }
        }
    }

    // Edges: argument forms and refusals, on one image with hashes and one
    // without.
    let amdsev = &images[0].path;
    let debian = &images[3].path;
    let a: &[&str] = &["--ovmf", amdsev];
    let d: &[&str] = &["--ovmf", debian];
    let snp1: &[&str] = &["--mode", "snp", "--vcpus", "1"];
    let seves1: &[&str] = &["--mode", "seves", "--vcpus", "1", "--vcpu-type", "EPYC"];
    let mut edge = |parts: &[&[&str]]| cases.push(case("edge", parts));
    // Guest features in decimal (33 == 0x21).
    edge(&[
        snp1,
        &["--vcpu-type", "EPYC-v4", "--guest-features", "33"],
        d,
    ]);
    // Several vCPU options at once: family beats sig beats type.
    edge(&[snp1, &["--vcpu-type", "EPYC", "--vcpu-sig", "0xB00F00"], d]);
    edge(&[
        snp1,
        &["--vcpu-type", "EPYC-Rome", "--vcpu-family", "25"],
        FMS_1_1,
        d,
    ]);
    // Many vCPUs.
    edge(&[
        &["--mode", "snp", "--vcpus", "64"],
        &["--vcpu-type", "EPYC-Turin"],
        d,
    ]);
    edge(&[
        &["--mode", "seves", "--vcpus", "64"],
        &["--vcpu-type", "EPYC-Turin"],
        d,
    ]);
    // Refusals: no --vcpus; unknown vCPU type; unknown VMM; family
    // without model and stepping; bad or short --snp-ovmf-hash, or one
    // outside SNP; modes argparse does not know.
    edge(&[&["--mode", "snp", "--vcpu-type", "EPYC"], d]);
    edge(&[&["--mode", "seves", "--vcpu-type", "EPYC"], d]);
    edge(&[snp1, &["--vcpu-type", "EPYC-Zen9"], d]);
    edge(&[snp1, &["--vcpu-type", "EPYC", "--vmm-type", "kvm"], d]);
    edge(&[snp1, &["--vcpu-family", "25"], d]);
    edge(&[snp1, &["--vcpu-type", "EPYC", "--snp-ovmf-hash", "zz"], d]);
    edge(&[snp1, &["--vcpu-type", "EPYC", "--snp-ovmf-hash", "00"], d]);
    edge(&[
        &["--mode", "sev", "--snp-ovmf-hash", &ovmf_hashes[debian]],
        d,
    ]);
    edge(&[seves1, &["--snp-ovmf-hash", &ovmf_hashes[debian]], d]);
    // --initrd / --append without --kernel; missing files.
    edge(&[&["--mode", "sev", "--initrd", &fx.initrd], a]);
    edge(&[snp1, &["--vcpu-type", "EPYC", "--append", "quiet"], a]);
    edge(&[&["--mode", "sev", "--ovmf", "/nonexistent/OVMF.fd"]]);
    edge(&[
        snp1,
        &["--vcpu-type", "EPYC", "--kernel", "/nonexistent/vmlinuz"],
        a,
    ]);
    edge(&[snp1, &["--vcpu-type", "EPYC", "--ovmf", &fx.tiny]]);
    // No footer table: SEV hashes the file; SEV-ES and SNP need the
    // reset block.
    edge(&[&["--mode", "sev", "--ovmf", &fx.zeros]]);
    edge(&[seves1, &["--ovmf", &fx.zeros]]);
    edge(&[snp1, &["--vcpu-type", "EPYC", "--ovmf", &fx.zeros]]);
    // sevkit also takes the mode names SevMode.from_str knows (argparse
    // does not): they must mean what the peer's spelling means.
    for (ours, theirs) in [("sev-es", "seves"), ("sev-snp", "snp")] {
        let rest: &[&str] = &[
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC-Milan",
            "--ovmf",
            debian,
        ];
        let mut c = case("alias", &[&["--mode", ours], rest]);
        c.peer_args = Some(case("alias", &[&["--mode", theirs], rest]).args);
        cases.push(c);
    }
    cases
}

/// What a tool did with a case.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Exit 0 and this stdout.
    Printed(String),
    /// A refusal: the exit code (`None`: killed by a signal) and stderr.
    Refused(Option<i32>, String),
}

impl Outcome {
    fn from_output(out: &Output) -> Self {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Self::Printed(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The last lines say what went wrong (a traceback ends there).
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Self::Refused(out.status.code(), tail.join(" | "))
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Printed(s) => write!(f, "exit 0, stdout {s:?}"),
            Self::Refused(code, stderr) => write!(f, "exit {code:?}, stderr {stderr:?}"),
        }
    }
}

/// Agreement: identical stdout, or both refuse with sevkit exiting 2.
fn agree(peer: &Outcome, ours: &Outcome) -> bool {
    match (peer, ours) {
        (Outcome::Printed(a), Outcome::Printed(b)) => a == b && !a.trim().is_empty(),
        (Outcome::Refused(..), Outcome::Refused(code, message)) => {
            *code == Some(2) && !message.trim().is_empty()
        }
        _ => false,
    }
}

/// Quotes an argument for a POSIX shell when it needs it.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_owned())
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(program: &str, pre: &[&str], args: &[String], cwd: &Path) -> Outcome {
    let out = Command::new(program)
        .args(pre)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Outcome::from_output(&out)
}

fn run_peer(args: &[String], cwd: &Path) -> Outcome {
    static PROGRAM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let program = PROGRAM.get_or_init(|| sevkit_testenv::peer_program(PEER));
    run(program.to_str().expect("UTF-8 path"), &[], args, cwd)
}

fn run_sevkit(args: &[String], cwd: &Path) -> Outcome {
    run(env!("CARGO_BIN_EXE_sevkit"), &["measure"], args, cwd)
}

#[test]
#[cfg_attr(
    not(all(sevkit_sev_snp_measure, sevkit_debian_ovmf, sevkit_vectors)),
    ignore = "needs sev-snp-measure (pip), Debian's ovmf package and shared/vectors; .ci/run installs them"
)]
fn sevkit_measure_prints_what_sev_snp_measure_prints() {
    let fx = Fixtures::create("matrix");
    let images = images();

    // The peer's OVMF page digests, to seed --snp-ovmf-hash.
    let mut ovmf_hashes = BTreeMap::new();
    for image in &images {
        let args: Vec<String> = ["--mode", "snp:ovmf-hash", "--ovmf", &image.path]
            .map(str::to_owned)
            .to_vec();
        match run_peer(&args, &fx.dir) {
            Outcome::Printed(hash) => {
                ovmf_hashes.insert(image.path.clone(), hash.trim().to_owned())
            }
            other @ Outcome::Refused(..) => {
                panic!("{PEER} --mode snp:ovmf-hash on {}: {other}", image.path)
            }
        };
    }

    let cases = matrix(&images, &fx, &ovmf_hashes);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get() + 1)
        .clamp(2, 4);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(cases.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(index) else { break };
                let peer = run_peer(case.peer_args(), &fx.dir);
                let ours = run_sevkit(&case.args, &fx.dir);
                results.lock().unwrap().push((index, peer, ours));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);

    let mut groups: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let (mut printed, mut refused) = (0, 0);
    let mut report = String::new();
    for (index, peer, ours) in &results {
        let case = &cases[*index];
        let ok = agree(peer, ours);
        let group = groups.entry(case.group).or_default();
        group.0 += 1;
        if ok {
            group.1 += 1;
            if matches!(peer, Outcome::Printed(_)) {
                printed += 1;
            } else {
                refused += 1;
            }
        } else {
            let _ = writeln!(
                report,
                "\nMISMATCH #{index} [{}]\n  $ {}\n    {peer}\n  $ {}\n    {ours}",
                case.group,
                command_line(PEER, case.peer_args()),
                command_line("sevkit measure", &case.args),
            );
        }
    }
    let agreed = printed + refused;
    let mismatches = results.len() - agreed;
    let per_group: Vec<String> = groups
        .iter()
        .map(|(name, (all, ok))| format!("{name} {ok}/{all}"))
        .collect();
    println!(
        "sev-snp-measure comparison: {} cases compared on {} images with {workers} workers, \
         {agreed} agreed ({printed} same digest, {refused} both refused), {mismatches} mismatches \
         [{}]",
        results.len(),
        images.len(),
        per_group.join(", "),
    );
    assert_eq!(results.len(), cases.len());
    assert!(
        mismatches == 0,
        "{mismatches} of {} cases differ:{report}",
        results.len()
    );
    // The matrix must mostly measure, not mostly refuse.
    assert!(
        printed > 3 * refused,
        "{printed} printed, {refused} refused"
    );
}

/// Footer GUID table entries of an OVMF image (guid in bytes_le form → data),
/// parsed independently of sev-measure.
fn footer_table(image: &[u8]) -> Vec<([u8; 16], Vec<u8>)> {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([image[at], image[at + 1]]));
    let footer_at = image.len() - 32 - 18;
    let guid = |at: usize| -> [u8; 16] { image[at + 2..at + 18].try_into().unwrap() };
    let footer_guid = guid_le("96b582de-1fb2-45f7-baea-a366c55a082d");
    assert_eq!(guid(footer_at), footer_guid, "no footer table");
    let mut end = footer_at;
    let start = footer_at - (u16_at(footer_at) - 18);
    let mut entries = Vec::new();
    while end - start >= 18 {
        let header = end - 18;
        let size = u16_at(header);
        assert!(size >= 18);
        entries.push((guid(header), image[end - size..header].to_vec()));
        end -= size;
    }
    entries
}

/// A GUID's mixed-endian (EFI) byte form.
fn guid_le(text: &str) -> [u8; 16] {
    let b = hex::decode(text.replace('-', "")).unwrap();
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
    out[4..6].copy_from_slice(&[b[5], b[4]]);
    out[6..8].copy_from_slice(&[b[7], b[6]]);
    out[8..].copy_from_slice(&b[8..]);
    out
}

/// Pages the SNP launch measures from the SEV metadata (every section, one
/// update per 4 KiB).
fn metadata_pages(image: &[u8]) -> usize {
    let pointer = guid_le("dc886566-984a-4798-a75e-5585a7bf67cc");
    let (_, data) = footer_table(image)
        .into_iter()
        .find(|(g, _)| *g == pointer)
        .unwrap();
    let offset = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let start = image.len() - offset;
    let u32_at = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(&image[start..start + 4], b"ASEV");
    let items = u32_at(start + 12);
    (0..items)
        .map(|k| u32_at(start + 16 + 12 * k + 4).div_ceil(4096))
        .sum()
}

#[test]
#[cfg_attr(
    not(all(sevkit_sev_snp_measure, sevkit_debian_ovmf, sevkit_vectors)),
    ignore = "needs sev-snp-measure (pip), Debian's ovmf package and shared/vectors; .ci/run installs them"
)]
fn snp_log_json_ends_at_the_printed_digest() {
    let ovmf = DEBIAN_IMAGES[0];
    let vcpus = 4;
    let base = [
        "--mode",
        "snp",
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Milan",
        "--ovmf",
        ovmf,
    ];
    let plain = Command::new(env!("CARGO_BIN_EXE_sevkit"))
        .arg("measure")
        .args(base)
        .output()
        .unwrap();
    assert_eq!(
        plain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let digest = String::from_utf8(plain.stdout).unwrap().trim().to_owned();

    let peer = Command::new(PEER).args(base).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&peer.stdout).trim(), digest);

    let logged = Command::new(env!("CARGO_BIN_EXE_sevkit"))
        .arg("measure")
        .args(base)
        .args(["--log", "json"])
        .output()
        .unwrap();
    assert_eq!(
        logged.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&logged.stderr)
    );
    // stdout stays the digest alone; the log goes to standard error.
    assert_eq!(String::from_utf8(logged.stdout).unwrap().trim(), digest);
    let json: serde_json::Value =
        serde_json::from_slice(&logged.stderr).expect("a JSON launch log on standard error");
    let entries = json["entries"].as_array().expect("entries");

    let image = std::fs::read(ovmf).unwrap();
    let expected = image.len() / 4096 + metadata_pages(&image) + vcpus;
    assert_eq!(
        entries.len(),
        expected,
        "image pages + metadata pages + vCPUs"
    );
    let last = entries.last().unwrap();
    assert_eq!(last["digest_after"].as_str().unwrap(), digest);
    assert_eq!(last["page_type"], "vmsa");
    assert_eq!(
        entries[0]["gpa"],
        format!("{:#x}", (1u64 << 32) - image.len() as u64)
    );
}

/// The files in `dir`, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(all(sevkit_sev_snp_measure, sevkit_debian_ovmf, sevkit_vectors)),
    ignore = "needs sev-snp-measure (pip), Debian's ovmf package and shared/vectors; .ci/run installs them"
)]
fn dumped_vmsas_are_the_peers_byte_for_byte() {
    let fx = Fixtures::create("vmsa");
    let images = images();
    let mut compared = 0;
    for (k, (mode, vmm, vcpu_type, features)) in [
        ("seves", "QEMU", "EPYC-Milan", "0x1"),
        ("seves", "ec2", "EPYC-Rome", "0x1"),
        ("seves", "gce", "EPYC", "0x1"),
        ("snp", "QEMU", "EPYC-Genoa", "0x21"),
        ("snp", "ec2", "EPYC-Turin", "0x1"),
        ("snp", "gce", "EPYC-v4", "0x21"),
    ]
    .into_iter()
    .enumerate()
    {
        // OVMF.amdsev.fd and Debian's OVMF.fd.
        for image in [&images[0].path, &images[3].path] {
            let peer_dir = fx.dir.join(format!("peer-{k}-{compared}"));
            let ours_dir = fx.dir.join(format!("ours-{k}-{compared}"));
            std::fs::create_dir_all(&peer_dir).unwrap();
            std::fs::create_dir_all(&ours_dir).unwrap();
            let args: Vec<String> = [
                "--mode",
                mode,
                "--vcpus",
                "3",
                "--vcpu-type",
                vcpu_type,
                "--vmm-type",
                vmm,
                "--guest-features",
                features,
                "--ovmf",
                image,
            ]
            .map(str::to_owned)
            .to_vec();
            let mut peer_args = args.clone();
            peer_args.push("--dump-vmsa".into());
            let mut our_args = args.clone();
            our_args.extend([
                "--dump-vmsa".to_owned(),
                ours_dir.to_str().unwrap().to_owned(),
            ]);
            let peer = run_peer(&peer_args, &peer_dir);
            let ours = run_sevkit(&our_args, &fx.dir);
            let command = command_line("sevkit measure", &our_args);
            assert!(
                matches!(peer, Outcome::Printed(_)),
                "{command}: peer {peer}"
            );
            assert_eq!(peer, ours, "{command}");
            let (theirs, mine) = (files(&peer_dir), files(&ours_dir));
            assert_eq!(
                theirs.keys().collect::<Vec<_>>(),
                ["vmsa0.bin", "vmsa1.bin", "vmsa2.bin"],
                "{command}"
            );
            assert_eq!(
                theirs.keys().collect::<Vec<_>>(),
                mine.keys().collect::<Vec<_>>()
            );
            for (name, bytes) in &theirs {
                assert_eq!(bytes.len(), 4096, "{command}: {name}");
                if let Some(at) = bytes.iter().zip(&mine[name]).position(|(a, b)| a != b) {
                    panic!("{command}: {name} differs first at byte {at:#x}");
                }
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 12);
}
