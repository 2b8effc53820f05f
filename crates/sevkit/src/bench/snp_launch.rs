//! `sevkit bench snp-launch`: SNP_LAUNCH_UPDATE throughput of the software
//! AMD-SP over NORMAL pages, next to `openssl speed -bytes 4096 -evp sha384`
//! in the same run.
//!
//! SNP_LAUNCH_UPDATE of a NORMAL page hashes its 4 KiB (SHA-384), extends
//! the launch digest with the 112-byte PAGE_INFO (SHA-384 again, two
//! blocks) and encrypts the page in place. Its floor is one SHA-384 pass
//! over the data, which is what `openssl speed` measures on 4 KiB blocks.
//! Goal: at least 70% of it.
//!
//! Measured: `--mib` MiB (256 by default) of NORMAL pages in 2 MiB
//! SNP_LAUNCH_UPDATEs, in-process (guest memory in the VMM's memfd), on a
//! fresh guest per run, best of `--runs`. The launch is the VMM's
//! (`sev_vmm::plan`): the built-in demo image launched as an SNP guest, the
//! region queued in 2 MiB pages (`SnpLaunch::queue_region`), and the time
//! is what the SNP_LAUNCH_UPDATE commands took at the seam
//! (`sev_sp::Metered`): the RMPUPDATEs and the VMM's own work (its launch
//! log) are outside it; the image's and the metadata's few 4 KiB updates
//! (about a hundred, well under 1% of the time) are inside. The figure is
//! whatever the firmware does on this machine: it
//! hashes and encrypts the pages of one 2 MiB update on every available
//! core (printed), so the command also prints `openssl speed -multi N` over
//! all N cores, which shows how much the other cores give right now.

use std::time::Duration;

use clap::Args;
use serde_json::json;
use sev_abi::commands::SnpCommand;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::Product;
use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig, InProcess};
use sev_sp::{CommandClock, Metered};
use sev_vmm::exits::certs::provider::CertsProvider;
use sev_vmm::host::Host;
use sev_vmm::launch::{SnpSpec, UpdatePageSize, LARGE_PAGE_SIZE};
use sev_vmm::machine::demo_image::demo_image;
use sev_vmm::plan::{MachinePlan, PlannedGuest, StartedLaunch};

use crate::input::InputError;
use crate::number::number;

/// Arguments of `sevkit bench snp-launch`.
#[derive(Debug, Args)]
pub struct SnpLaunchBenchArgs {
    /// MiB of NORMAL pages measured per run (a multiple of 2).
    #[arg(long, default_value_t = 256, value_parser = number::<u32>())]
    pub mib: u32,
    /// Timed runs (a fresh guest each); the best is kept.
    #[arg(long, default_value_t = 3, value_parser = number::<u32>())]
    pub runs: u32,
    /// Seconds of the `openssl speed` measurement.
    #[arg(long, default_value_t = 3, value_parser = number::<u64>())]
    pub seconds: u64,
    /// Skip the OpenSSL comparison.
    #[arg(long)]
    pub no_openssl: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the measured region starts in guest memory (1 GiB).
const BASE: u64 = 1 << 30;
/// Guest RAM: the region fits below 2 GiB.
const RAM: u64 = 2 << 30;

fn invalid(e: impl std::fmt::Display) -> InputError {
    InputError::Invalid(e.to_string())
}

/// MB/s (10^6 bytes per second) of `bytes` in `elapsed`.
// Byte counts stay far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
}

/// One timed launch: a fresh firmware on `chip`, the demo image launched as
/// an SNP guest with `data` queued at [`BASE`] in 2 MiB pages; the
/// SNP_LAUNCH_UPDATEs are timed at the seam. MB/s of `data`.
fn one_run(chip: &ChipIdentity, data: &[u8]) -> Result<f64, InputError> {
    let fw = Firmware::open_with_chip(FirmwareConfig::default(), chip.clone()).map_err(invalid)?;
    let plan = MachinePlan::for_image(
        demo_image(),
        RAM,
        1,
        "EPYC-v4",
        Product::Genoa,
        PlannedGuest::Snp(
            SnpSpec {
                policy: SnpPolicy::from_raw(SnpPolicy::DEFAULT_RAW),
                gosvw: [0; 16],
                id: None,
                vcek_disabled: false,
                host_data: [0; 32],
            },
            CertsProvider::new(None),
        ),
    )
    .map_err(invalid)?;
    let memory = plan.memory().map_err(invalid)?;
    let clock = CommandClock::new();
    let sp = Metered::new(
        InProcess::new(fw, memory.system_handle().map_err(invalid)?),
        clock.clone(),
    );
    let StartedLaunch::Snp(mut launch, _) = plan
        .start(Host::new(Box::new(sp), memory))
        .map_err(invalid)?
    else {
        return Err(invalid("the benchmark's SNP plan started another launch"));
    };
    launch
        .queue_region("benchmark", BASE, data, UpdatePageSize::Large)
        .map_err(invalid)?;
    clock.reset();
    launch.finish().map_err(invalid)?;
    let updates = clock.time(SnpCommand::SnpLaunchUpdate.id());
    Ok(mb_per_s(data.len() as u64, updates.total))
}

/// Runs the benchmark.
///
/// # Errors
/// Bad arguments, or a firmware command failed.
pub fn run(args: &SnpLaunchBenchArgs) -> Result<(), InputError> {
    let len = u64::from(args.mib) << 20;
    if len == 0 || !len.is_multiple_of(LARGE_PAGE_SIZE) || len > RAM - BASE {
        return Err(invalid("--mib must be an even number in 2..=1024"));
    }
    // One chip for every run (minting it is two RSA-4096 key generations).
    let chip = Firmware::open(FirmwareConfig::default())
        .map_err(invalid)?
        .chip()
        .clone();
    // Pseudo-random contents (the hash does not care, the allocation does).
    let mut data = vec![0u8; len as usize];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for w in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
    let mut best = 0f64;
    for _ in 0..args.runs.max(1) {
        best = best.max(one_run(&chip, &data)?);
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let openssl = if args.no_openssl {
        None
    } else {
        super::openssl_speed_mb_s(args.seconds.max(1), 4096, &["-evp", "sha384"])
    };
    let ratio = openssl.map(|o| best / o);
    // What all cores give OpenSSL right now: on a shared host the second
    // vCPU may be an SMT sibling or busy, and the firmware's parallel
    // hashing can only use what is there.
    let cores_arg = cores.to_string();
    let openssl_all_cores = if args.no_openssl || cores < 2 {
        None
    } else {
        super::openssl_speed_mb_s(
            args.seconds.max(1),
            4096,
            &["-multi", &cores_arg, "-evp", "sha384"],
        )
    };
    if args.json {
        let value = json!({
            "mib": args.mib,
            "cores": cores,
            "snp_launch_update_mb_s": best,
            "openssl_sha384_4k_mb_s": openssl,
            "openssl_sha384_4k_all_cores_mb_s": openssl_all_cores,
            "ratio": ratio,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    outln!(
        "SNP_LAUNCH_UPDATE, {} MiB of NORMAL pages in 2 MiB updates, best of {} ({cores} cores \
         available; openssl on one core)",
        args.mib,
        args.runs.max(1)
    );
    outln!("{:<44} {:>10}", "measurement", "MB/s");
    outln!(
        "{:<44} {best:>10.0}",
        "sevkit SNP_LAUNCH_UPDATE (in-process)"
    );
    match (openssl, ratio) {
        (Some(o), Some(r)) => {
            outln!("{:<44} {o:>10.0}", "openssl speed -bytes 4096 -evp sha384");
            outln!("{:<44} {:>9.0}%  (goal 70%)", "ratio", r * 100.0);
            if let Some(all) = openssl_all_cores {
                outln!(
                    "{:<44} {all:>10.0}  ({:.2}x one core: what the other cores add now)",
                    format!("openssl speed -multi {cores} (all cores)"),
                    all / o
                );
            }
        }
        _ if !args.no_openssl => outln!("(openssl not found: no comparison)"),
        _ => {}
    }
    Ok(())
}
