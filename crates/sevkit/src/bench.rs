//! `sevkit bench`: measured throughput next to OpenSSL, in the same run.
//!
//! Figures are printed, never asserted: tests do not time anything. The
//! OpenSSL figures come from running `openssl speed` (when it is installed)
//! right after sevkit's own measurement, on the same machine and core count.

use std::process::Command;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::json;
use sev_abi::product::Product;
use sev_attest::snp::{check_report, Endorsement, ReportExpectations};
use sev_crypto::ecdsa::P384SigningKey;
use sev_crypto::x509::X509Cert;

use crate::input::{self, InputError};
use crate::number::number;

mod firmware;
mod launch;
mod measure;
mod report;
mod snp_launch;
pub use firmware::FirmwareBenchArgs;
pub use launch::LaunchBenchArgs;
pub use measure::MeasureBenchArgs;
pub use snp_launch::SnpLaunchBenchArgs;

/// `sevkit bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Reports verified per second (chain already checked) and P-384
    /// sign/verify per second, next to `openssl speed ecdsap384`.
    Verify(BenchArgs),
    /// Launch-digest prediction next to sev-snp-measure and the hashing
    /// floor: (a) `--mode snp` on an OVMF alone, (b) with a 64 MiB initrd
    /// and a 10 MiB kernel next to `sha256sum`, (c) SHA-384 page-hash
    /// throughput next to `openssl speed`.
    Measure(MeasureBenchArgs),
    /// LAUNCH_UPDATE_DATA throughput of the software AMD-SP (in-process and
    /// through the firmware server) next to `openssl speed` SHA-256 and
    /// AES-128 in the same run.
    Firmware(FirmwareBenchArgs),
    /// SNP attestation reports per second per core through the software
    /// AMD-SP's SNP_GUEST_REQUEST path (decrypt, build, sign, encrypt) next
    /// to `openssl speed ecdsap384` sign/s.
    Report(BenchArgs),
    /// SNP_LAUNCH_UPDATE throughput over 256 MiB of NORMAL pages
    /// (in-process) next to `openssl speed -bytes 4096 -evp sha384`.
    SnpLaunch(SnpLaunchBenchArgs),
    /// The host launch path: wall time from launch start to the measurement
    /// being available (4 MiB firmware; SEV-ES and SNP; 1 and 64 vCPUs)
    /// next to sev-measure's prediction of the same digest, and the cost
    /// per GiB of guest memory registered next to pinning it.
    Launch(LaunchBenchArgs),
}

/// Arguments shared by benchmarks.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds to run each measurement.
    #[arg(long, default_value_t = 3, value_parser = number::<u64>())]
    pub seconds: u64,
    /// Skip the OpenSSL comparison.
    #[arg(long)]
    pub no_openssl: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `openssl speed -seconds S -bytes B ARGS` on one core: MB/s for the
/// algorithm named last in `args` (`sha256`, or `-evp aes-128-xts`), or
/// `None` when openssl is missing or prints no such row.
fn openssl_speed_mb_s(seconds: u64, block_bytes: usize, args: &[&str]) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-seconds",
            &seconds.to_string(),
            "-bytes",
            &block_bytes.to_string(),
        ])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "type             16384 bytes" then "sha256          2123456.78k"
    // (thousands of bytes per second).
    let name = args.last()?.to_ascii_lowercase();
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&name))?;
    let value = line.split_whitespace().last()?.strip_suffix('k')?;
    value.parse::<f64>().ok().map(|k| k * 1e3 / 1e6)
}

/// Runs `f` repeatedly for `duration` on this thread; returns operations per second.
// Counts stay far below 2^52, where f64 would round.
#[allow(clippy::cast_precision_loss)]
fn rate(duration: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up caches and lazy initialisation.
    for _ in 0..16 {
        f();
    }
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        for _ in 0..16 {
            f();
        }
        count += 16;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// OpenSSL's ECDSA P-384 (sign/s, verify/s), measured now on one core.
fn openssl_ecdsap384(seconds: u64) -> Option<(f64, f64)> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "ecdsap384"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "384 bits ecdsa (nistp384)   0.0008s   0.0006s   1252.5   1602.0"
    let line = text.lines().find(|l| l.contains("ecdsa (nistp384)"))?;
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers.as_slice() {
        [.., sign, verify] => Some((*sign, *verify)),
        _ => None,
    }
}

/// Runs a benchmark.
pub fn run(cmd: &BenchCommand) -> Result<(), InputError> {
    match cmd {
        BenchCommand::Verify(args) => verify(args),
        BenchCommand::Measure(args) => measure::run(args),
        BenchCommand::Firmware(args) => firmware::run(args),
        BenchCommand::Report(args) => report::run(args),
        BenchCommand::SnpLaunch(args) => snp_launch::run(args),
        BenchCommand::Launch(args) => launch::run(args),
    }
}

fn verify(args: &BenchArgs) -> Result<(), InputError> {
    let duration = Duration::from_secs(args.seconds.max(1));
    let report = input::decode(crate::verify::EXAMPLE_REPORT.as_bytes())?
        .first()
        .to_vec();
    let vcek = X509Cert::from_der(crate::verify::EXAMPLE_VCEK)
        .map_err(|e| InputError::Invalid(format!("embedded VCEK: {e}")))?;
    let endorsement = Endorsement::new(vcek, Some(Product::Milan));
    let expect = ReportExpectations::default();
    let verdict = check_report(&report, &endorsement, &expect)
        .map_err(|e| InputError::Invalid(e.to_string()))?;
    if !verdict.passed() {
        return Err(InputError::Invalid(
            "embedded report does not verify".into(),
        ));
    }
    let reports = rate(duration, || {
        let verdict = check_report(&report, &endorsement, &expect).expect("report parses");
        assert!(verdict.passed());
    });

    let key = P384SigningKey::generate();
    let public = key.public_key();
    let message = &report[..sev_abi::report::SIGNED_LEN];
    let signature = key
        .sign_sha384(message)
        .map_err(|e| InputError::Invalid(e.to_string()))?;
    let sign = rate(duration, || {
        key.sign_sha384(message).expect("signing works");
    });
    let verify = rate(duration, || {
        public
            .verify_sha384(message, &signature)
            .expect("signature verifies");
    });
    let openssl = if args.no_openssl {
        None
    } else {
        openssl_ecdsap384(args.seconds.max(1))
    };

    if args.json {
        let value = json!({
            "reports_verified_per_s": reports,
            "p384_sign_per_s": sign,
            "p384_verify_per_s": verify,
            "openssl_p384_sign_per_s": openssl.map(|o| o.0),
            "openssl_p384_verify_per_s": openssl.map(|o| o.1),
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    outln!("one core, {} s per figure", args.seconds.max(1));
    outln!(
        "{:<44} {:>12} {:>12} {:>8}",
        "measurement",
        "sevkit/s",
        "openssl/s",
        "ratio"
    );
    let row = |name: &str, ours: f64, theirs: Option<f64>| match theirs {
        Some(t) => outln!("{name:<44} {ours:>12.0} {t:>12.0} {:>7.2}x", ours / t),
        None => outln!("{name:<44} {ours:>12.0} {:>12} {:>8}", "-", "-"),
    };
    row(
        "SNP reports verified (chain cached)",
        reports,
        openssl.map(|o| o.1),
    );
    row("ECDSA P-384 SHA-384 verify", verify, openssl.map(|o| o.1));
    row("ECDSA P-384 SHA-384 sign", sign, openssl.map(|o| o.0));
    if openssl.is_none() && !args.no_openssl {
        outln!("(openssl not found: no comparison)");
    }
    Ok(())
}
