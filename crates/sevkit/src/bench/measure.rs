//! `sevkit bench measure`: launch-digest prediction next to the peer tool
//! (sev-snp-measure) and next to the hashing floor, in one run.
//!
//! * (a) `--mode snp --vcpus 1 --vcpu-type EPYC-v4` on an OVMF alone:
//!   sevkit as a library call and as a process, sev-snp-measure as a
//!   process; wall time, best of N. Goal: at least 10x faster.
//! * (b) the same with a 10 MiB kernel and a 64 MiB initrd on a firmware
//!   with a kernel hashes table, where SHA-256 of the files is the floor:
//!   next to `sha256sum` on the same files. Goal: within 1.2x.
//! * (c) the SNP page-hash path, SHA-384 of 4 KiB pages with the code the
//!   predictor uses, next to `openssl speed -evp sha384` on 4096-byte
//!   blocks. Goal: at least 80%.
//!
//! Figures are printed, never asserted. Peers that are not installed are
//! reported as such and their rows left out.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_measure::hashes::MAX_KERNEL_FILE_LEN;
use sev_measure::{measure, vcpu_type, KernelHashes, MeasureParams, Mode};

use crate::input::InputError;
use crate::number::number;

/// The peer tool (PyPI), looked up on `PATH`.
const PEER: &str = "sev-snp-measure";

/// The vCPU type of (a) and (b).
const VCPU_TYPE: &str = "EPYC-v4";

/// Debian's OVMF without SEV metadata: the image for (a).
const DEFAULT_OVMF: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

/// The firmware with a kernel hashes table in shared/vectors.
const AMDSEV_IN_VECTORS: &str = "firmware/OVMF.amdsev.fd";

/// Sizes of the generated kernel and initrd of (b).
const KERNEL_LEN: usize = 10 << 20;
const INITRD_LEN: usize = 64 << 20;

/// Page size of the SNP page-hash path.
const PAGE: usize = 4096;

/// Arguments of `sevkit bench measure`.
#[derive(Debug, Args)]
pub struct MeasureBenchArgs {
    /// Firmware for (a) [default: Debian's /usr/share/OVMF/OVMF_CODE_4M.fd].
    #[arg(long, value_name = "PATH")]
    pub ovmf: Option<PathBuf>,
    /// Firmware with a kernel hashes table for (b) [default:
    /// $SEVKIT_VECTORS/firmware/OVMF.amdsev.fd, else
    /// ../shared/vectors/firmware/OVMF.amdsev.fd].
    #[arg(long, value_name = "PATH")]
    pub amdsev: Option<PathBuf>,
    /// Timed runs per figure in (a) and (b); the best is kept.
    #[arg(long, default_value_t = 5, value_parser = number::<u32>())]
    pub runs: u32,
    /// Seconds per throughput figure in (c).
    #[arg(long, default_value_t = 3, value_parser = number::<u64>())]
    pub seconds: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Why an external program gave no figure.
enum ToolError {
    /// Not on `PATH`.
    Missing,
    /// Ran but failed; the message says how.
    Failed(String),
}

impl ToolError {
    fn describe(&self) -> String {
        match self {
            Self::Missing => "not installed".to_owned(),
            Self::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// A timed figure, or why there is none.
type Timed = Result<(Duration, String), ToolError>;

/// Runs `program args` `runs` times; the best wall time and the last stdout.
fn time_process(runs: u32, program: &Path, args: &[&str]) -> Timed {
    let mut best = Duration::MAX;
    let mut stdout = String::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let out = Command::new(program).args(args).output();
        let elapsed = start.elapsed();
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(ToolError::Missing),
            Err(e) => return Err(ToolError::Failed(e.to_string())),
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("").trim().to_owned();
            return Err(ToolError::Failed(format!("{}: {last}", out.status)));
        }
        best = best.min(elapsed);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .clone_into(&mut stdout);
    }
    Ok((best, stdout))
}

/// Runs `f` `runs` times; the best wall time and the last result.
fn time_call(runs: u32, mut f: impl FnMut() -> Result<String, String>) -> Timed {
    let mut best = Duration::MAX;
    let mut result = String::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        result = f().map_err(ToolError::Failed)?;
        best = best.min(start.elapsed());
    }
    Ok((best, result))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One timing row: name, figure or why not.
fn row(name: &str, timed: &Timed) {
    match timed {
        Ok((d, _)) => outln!("    {name:<46} {:>10.1} ms", millis(*d)),
        Err(e) => outln!("    {name:<46} {:>13}", e.describe()),
    }
}

fn timed_json(timed: &Timed) -> Value {
    match timed {
        Ok((d, digest)) => json!({ "ms": millis(*d), "digest": digest }),
        Err(e) => json!({ "error": e.describe() }),
    }
}

/// `a / b` when both ran.
fn ratio(a: &Timed, b: &Timed) -> Option<f64> {
    match (a, b) {
        (Ok((a, _)), Ok((b, _))) => Some(a.as_secs_f64() / b.as_secs_f64()),
        _ => None,
    }
}

/// Whether the digests printed by two tools agree, as a sentence.
fn agreement(ours: &Timed, theirs: &Timed) -> Option<bool> {
    match (ours, theirs) {
        (Ok((_, a)), Ok((_, b))) => Some(a == b),
        _ => None,
    }
}

fn goal(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// The firmware for (b): the argument, or shared/vectors' AmdSevX64 build.
fn amdsev_path(given: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(path) = given {
        return Some(path.clone());
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("SEVKIT_VECTORS") {
        candidates.push(PathBuf::from(dir).join(AMDSEV_IN_VECTORS));
    }
    candidates.push(Path::new("../shared/vectors").join(AMDSEV_IN_VECTORS));
    candidates.into_iter().find(|p| p.is_file())
}

/// Deterministic incompressible filler (xorshift64).
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Removes the scratch directory of (b) however the run ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CLI arguments shared by sevkit and the peer for (a) and (b).
fn measure_args<'a>(ovmf: &'a str, kernel: Option<(&'a str, &'a str)>) -> Vec<&'a str> {
    let mut args = vec!["--mode", "snp", "--vcpus", "1", "--vcpu-type", VCPU_TYPE];
    args.extend(["--ovmf", ovmf]);
    if let Some((kernel, initrd)) = kernel {
        args.extend(["--kernel", kernel, "--initrd", initrd]);
    }
    args
}

/// The library call of (a) and (b): read the files, predict, hex.
fn library_call(ovmf: &Path, kernel: Option<(&Path, &Path)>) -> Result<String, String> {
    let image = crate::measure::read_firmware(ovmf).map_err(|e| e.to_string())?;
    let mut params = MeasureParams::new(Mode::Snp, &image);
    params.vcpus = 1;
    params.vcpu_sig = vcpu_type(VCPU_TYPE)
        .map(sev_measure::VcpuType::signature)
        .ok_or("no vCPU type")?;
    if let Some((kernel, initrd)) = kernel {
        let read = |p: &Path, what| {
            crate::input::read(p, MAX_KERNEL_FILE_LEN, what).map_err(|e| e.to_string())
        };
        let (kernel, initrd) = (read(kernel, "a kernel")?, read(initrd, "an initrd")?);
        params.kernel = Some(KernelHashes::compute(&kernel, Some(&initrd), None));
    }
    let m = measure(&params).map_err(|e| e.to_string())?;
    Ok(hex::encode(m.digest))
}

/// Results of (a) or (b).
struct Launch {
    library: Timed,
    process: Timed,
    peer: Timed,
    floor: Option<Timed>,
}

fn bench_launch(
    runs: u32,
    exe: &Path,
    peer: &Path,
    ovmf: &Path,
    kernel: Option<(&Path, &Path)>,
) -> Result<Launch, InputError> {
    let text = |p: &Path| {
        p.to_str()
            .map(str::to_owned)
            .ok_or_else(|| InputError::Invalid(format!("not UTF-8: {}", p.display())))
    };
    let ovmf_text = text(ovmf)?;
    let kernel_text = match kernel {
        Some((k, i)) => Some((text(k)?, text(i)?)),
        None => None,
    };
    let kernel_ref = kernel_text.as_ref().map(|(k, i)| (k.as_str(), i.as_str()));
    let args = measure_args(&ovmf_text, kernel_ref);
    let mut sevkit_args = vec!["measure"];
    sevkit_args.extend(&args);

    let library = time_call(runs, || library_call(ovmf, kernel));
    let process = time_process(runs, exe, &sevkit_args);
    let peer = time_process(runs, peer, &args);
    let floor = kernel_ref.map(|(k, i)| time_process(runs, Path::new("sha256sum"), &[k, i]));
    Ok(Launch {
        library,
        process,
        peer,
        floor,
    })
}

/// SHA-384 throughput of `openssl speed -evp sha384` on 4096-byte blocks
/// (or the nearest size this OpenSSL reports), in MB/s, with the block size.
fn openssl_sha384(seconds: u64) -> Result<(f64, usize), ToolError> {
    let seconds = seconds.to_string();
    let attempts: [&[&str]; 2] = [
        &[
            "speed", "-seconds", &seconds, "-bytes", "4096", "-evp", "sha384",
        ],
        &["speed", "-seconds", &seconds, "-evp", "sha384"],
    ];
    for args in attempts {
        let out = match Command::new("openssl").args(args).output() {
            Ok(out) => out,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(ToolError::Missing),
            Err(e) => return Err(ToolError::Failed(e.to_string())),
        };
        if let Some(figure) = parse_openssl_speed(&String::from_utf8_lossy(&out.stdout)) {
            return Ok(figure);
        }
    }
    Err(ToolError::Failed(
        "no sha384 figure in `openssl speed` output".into(),
    ))
}

/// Parses `openssl speed` output: the `type  16 bytes  64 bytes ...` header
/// and the `sha384  123.45k ...` row (thousands of bytes per second). Picks
/// the 4096-byte column, else 8192, else the largest.
fn parse_openssl_speed(text: &str) -> Option<(f64, usize)> {
    let header = text.lines().rev().find(|l| l.starts_with("type"))?;
    let sizes: Vec<usize> = header
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let values: Vec<f64> = text
        .lines()
        .rev()
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("sha384"))
        })?
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.strip_suffix('k').and_then(|v| v.parse().ok()))
        .collect();
    if sizes.is_empty() || sizes.len() != values.len() {
        return None;
    }
    let column = sizes
        .iter()
        .position(|&s| s == PAGE)
        .or_else(|| sizes.iter().position(|&s| s == 2 * PAGE))
        .unwrap_or(sizes.len() - 1);
    Some((values[column] / 1e3, sizes[column]))
}

/// Results of (c), in MB/s.
struct PageHashing {
    sevkit: f64,
    with_extend: f64,
    openssl: Result<(f64, usize), ToolError>,
}

// Sizes stay far below 2^52, where f64 would round.
#[allow(clippy::cast_precision_loss)]
fn bench_page_hash(seconds: u64) -> PageHashing {
    let duration = Duration::from_secs(seconds.max(1));
    // 1 MiB of pages: fits in L2, like the pages of one OVMF region.
    let pages = filler(256 * PAGE, 0x384);
    let mb_per_s = |calls_per_s: f64| calls_per_s * pages.len() as f64 / 1e6;
    let sevkit = mb_per_s(super::rate(duration, || {
        for page in pages.chunks_exact(PAGE) {
            std::hint::black_box(sev_measure::snp::page_hash(std::hint::black_box(page)));
        }
    }));
    // The whole per-page step of a NORMAL page: CONTENTS, then PAGE_INFO.
    let mut digest = SnpLaunchDigest::default();
    let with_extend = mb_per_s(super::rate(duration, || {
        for (i, page) in pages.chunks_exact(PAGE).enumerate() {
            let contents = sev_measure::snp::page_hash(std::hint::black_box(page));
            digest = sev_measure::snp::extend(
                &digest,
                &contents,
                sev_abi::snp_launch::PageType::Normal,
                0xffc0_0000 + (i * PAGE) as u64,
            );
        }
    }));
    std::hint::black_box(digest);
    PageHashing {
        sevkit,
        with_extend,
        openssl: openssl_sha384(seconds.max(1)),
    }
}

/// Runs `sevkit bench measure`.
// Counts and sizes stay far below 2^52, where f64 would round.
#[allow(clippy::cast_precision_loss, clippy::too_many_lines)]
pub fn run(args: &MeasureBenchArgs) -> Result<(), InputError> {
    let runs = args.runs.max(1);
    let exe = std::env::current_exe()
        .map_err(|e| InputError::Invalid(format!("cannot locate the sevkit executable: {e}")))?;
    let ovmf = args
        .ovmf
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OVMF));
    if !ovmf.is_file() {
        return Err(InputError::Invalid(format!(
            "{} not found (Debian: apt-get install ovmf; or give --ovmf PATH)",
            ovmf.display()
        )));
    }
    let ovmf_len = std::fs::metadata(&ovmf).map_or(0, |m| m.len());

    let peer = sevkit_testenv::peer_program(PEER);

    // (a)
    let a = bench_launch(runs, &exe, &peer, &ovmf, None)?;

    // (b)
    let amdsev = amdsev_path(args.amdsev.as_ref());
    let b = match &amdsev {
        None => None,
        Some(firmware) => {
            let dir = Scratch(crate::output::scratch_dir("sevkit-bench-measure")?);
            let write = |name: &str, len: usize, seed: u64| -> Result<PathBuf, InputError> {
                let path = dir.0.join(name);
                crate::output::write(&path, &filler(len, seed), crate::output::FileMode::Public)?;
                Ok(path)
            };
            let kernel = write("vmlinuz", KERNEL_LEN, 0x6b)?;
            let initrd = write("initrd.img", INITRD_LEN, 0x69)?;
            Some(bench_launch(
                runs,
                &exe,
                &peer,
                firmware,
                Some((&kernel, &initrd)),
            )?)
        }
    };

    // (c)
    let c = bench_page_hash(args.seconds);

    let a_speedup = ratio(&a.peer, &a.process);
    let a_speedup_library = ratio(&a.peer, &a.library);
    let b_vs_floor = b
        .as_ref()
        .and_then(|b| ratio(&b.process, b.floor.as_ref()?));
    let b_library_vs_floor = b
        .as_ref()
        .and_then(|b| ratio(&b.library, b.floor.as_ref()?));
    let c_ratio = c.openssl.as_ref().ok().map(|(o, _)| c.sevkit / o);

    if args.json {
        let launch_json = |l: &Launch| {
            json!({
                "sevkit_library": timed_json(&l.library),
                "sevkit_process": timed_json(&l.process),
                "sev_snp_measure": timed_json(&l.peer),
                "sha256sum": l.floor.as_ref().map(timed_json),
                "digests_agree": agreement(&l.process, &l.peer),
            })
        };
        let value = json!({
            "runs": runs,
            "sev_snp_measure": peer.display().to_string(),
            "a_snp_ovmf_alone": {
                "ovmf": ovmf.display().to_string(),
                "ovmf_bytes": ovmf_len,
                "timings": launch_json(&a),
                "speedup_process": a_speedup,
                "speedup_library": a_speedup_library,
            },
            "b_snp_kernel_initrd": b.as_ref().map(|b| json!({
                "ovmf": amdsev.as_ref().map(|p| p.display().to_string()),
                "kernel_bytes": KERNEL_LEN,
                "initrd_bytes": INITRD_LEN,
                "timings": launch_json(b),
                "process_vs_sha256sum": b_vs_floor,
                "library_vs_sha256sum": b_library_vs_floor,
            })),
            "c_sha384_pages": {
                "page_hash_mb_per_s": c.sevkit,
                "page_step_mb_per_s": c.with_extend,
                "openssl_mb_per_s": c.openssl.as_ref().ok().map(|o| o.0),
                "openssl_block_bytes": c.openssl.as_ref().ok().map(|o| o.1),
                "ratio": c_ratio,
            },
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }

    let name = |p: &Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    outln!(
        "(a) --mode snp --vcpus 1 --vcpu-type {VCPU_TYPE} on {} ({:.1} MiB); wall time, best of {runs}",
        name(&ovmf),
        ovmf_len as f64 / f64::from(1u32 << 20)
    );
    outln!("    ({PEER}: {})", peer.display());
    row("sevkit, library call (read + predict)", &a.library);
    row("sevkit measure, process", &a.process);
    row(&format!("{PEER}, process"), &a.peer);
    if let Some(x) = a_speedup {
        outln!(
            "    speed-up, process vs process: {x:.1}x (goal >= 10x: {})",
            goal(x >= 10.0)
        );
    }
    if let Some(x) = a_speedup_library {
        outln!("    speed-up, library call vs {PEER}: {x:.1}x");
    }
    print_agreement(&a);

    outln!();
    match (&b, &amdsev) {
        (Some(b), Some(firmware)) => {
            outln!(
                "(b) the same on {} with a {} MiB kernel and a {} MiB initrd; best of {runs}",
                name(firmware),
                KERNEL_LEN >> 20,
                INITRD_LEN >> 20
            );
            row("sevkit, library call (read + hash + predict)", &b.library);
            row("sevkit measure, process", &b.process);
            if let Some(floor) = &b.floor {
                row("sha256sum kernel initrd", floor);
            }
            row(&format!("{PEER}, process"), &b.peer);
            if let Some(x) = b_vs_floor {
                outln!(
                    "    sevkit measure / sha256sum: {x:.2}x (goal <= 1.2x: {})",
                    goal(x <= 1.2)
                );
            }
            if let Some(x) = b_library_vs_floor {
                outln!("    library call / sha256sum: {x:.2}x");
            }
            if let Some(x) = ratio(&b.peer, &b.process) {
                outln!("    speed-up vs {PEER}: {x:.1}x");
            }
            print_agreement(b);
        }
        _ => outln!(
            "(b) skipped: no firmware with a kernel hashes table (give --amdsev PATH or set \
             SEVKIT_VECTORS)"
        ),
    }

    outln!();
    outln!(
        "(c) SHA-384 of 4 KiB pages (sev_measure::snp::page_hash), one core, {} s per figure",
        args.seconds.max(1)
    );
    outln!("    {:<46} {:>10.0} MB/s", "sevkit page hash", c.sevkit);
    outln!(
        "    {:<46} {:>10.0} MB/s",
        "sevkit page hash + PAGE_INFO extend",
        c.with_extend
    );
    match &c.openssl {
        Ok((mbps, block)) => {
            outln!(
                "    {:<46} {:>10.0} MB/s",
                format!("openssl speed -evp sha384 ({block}-byte blocks)"),
                mbps
            );
            if let Some(x) = c_ratio {
                outln!(
                    "    sevkit / openssl: {:.0}% (goal >= 80%: {})",
                    x * 100.0,
                    goal(x >= 0.8)
                );
            }
        }
        Err(e) => outln!(
            "    {:<46} {:>13}",
            "openssl speed -evp sha384",
            e.describe()
        ),
    }
    Ok(())
}

fn print_agreement(l: &Launch) {
    match agreement(&l.process, &l.peer) {
        Some(true) => outln!("    digests agree"),
        Some(false) => outln!(
            "    DIGESTS DIFFER: sevkit {} vs {PEER} {}",
            l.process.as_ref().map(|t| t.1.as_str()).unwrap_or_default(),
            l.peer.as_ref().map(|t| t.1.as_str()).unwrap_or_default()
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_speed_tables() {
        let one = "Doing sha384 ops for 1s on 4096 size blocks: 167947 sha384 ops in 1.00s\n\
                   version: 3.0.19\n\
                   The 'numbers' are in 1000s of bytes per second processed.\n\
                   type           4096 bytes\n\
                   sha384          687910.40k\n";
        assert_eq!(parse_openssl_speed(one), Some((687_910.40 / 1e3, 4096)));
        let table = "type             16 bytes     64 bytes    256 bytes   1024 bytes   8192 bytes  16384 bytes\n\
                     sha384           44008.07k   204798.29k   427206.98k   722623.04k   857336.91k   862294.88k\n";
        assert_eq!(parse_openssl_speed(table), Some((857_336.91 / 1e3, 8192)));
        assert_eq!(
            parse_openssl_speed("speed: Unknown algorithm sha384\n"),
            None
        );
    }

    #[test]
    fn filler_is_deterministic_and_sized() {
        assert_eq!(filler(13, 7).len(), 13);
        assert_eq!(filler(4096, 7), filler(4096, 7));
        assert_ne!(filler(64, 7), filler(64, 8));
    }
}
