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
//! SNP_LAUNCH_UPDATEs, in-process (sparse in-memory system memory), on a
//! fresh guest per run, best of `--runs`. The RMPUPDATEs are outside the
//! timer. The figure is whatever the firmware does on this machine: it
//! hashes and encrypts the pages of one 2 MiB update on every available
//! core (printed), so the command also prints `openssl speed -multi N` over
//! all N cores, which shows how much the other cores give right now.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use sev_abi::commands::{
    SnpActivateBuffer, SnpCommand, SnpLaunchStartBuffer, SnpLaunchUpdateBuffer, SnpPaddrBuffer,
};
use sev_abi::policy::SnpPolicy;
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::rmp::{PageSize, RmpUpdate};
use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig, SystemMemory, VecMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use crate::input::InputError;

/// Arguments of `sevkit bench snp-launch`.
#[derive(Debug, Args)]
pub struct SnpLaunchBenchArgs {
    /// MiB of NORMAL pages measured per run (a multiple of 2).
    #[arg(long, default_value_t = 256)]
    pub mib: u32,
    /// Timed runs (a fresh guest each); the best is kept.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Seconds of the `openssl speed` measurement.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Skip the OpenSSL comparison.
    #[arg(long)]
    pub no_openssl: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

const GCTX: u64 = 0x1_0000_0000;
const BASE: u64 = 0x4000_0000;
const ASID: u32 = 1;
const PAGE_2M: u64 = 2 << 20;

fn invalid(e: impl std::fmt::Display) -> InputError {
    InputError::Invalid(e.to_string())
}

fn check(what: &str, status: FirmwareStatus) -> Result<(), InputError> {
    if status == FirmwareStatus::SUCCESS {
        Ok(())
    } else {
        Err(invalid(format!("{what}: {status:?}")))
    }
}

/// MB/s (10^6 bytes per second) of `bytes` in `elapsed`.
// Byte counts stay far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

/// One timed launch: a fresh firmware on `chip`, `len` bytes of NORMAL pages
/// at [`BASE`] measured in 2 MiB updates. MB/s.
fn one_run(chip: &ChipIdentity, mem: &mut VecMemory, len: u64) -> Result<f64, InputError> {
    let mut fw =
        Firmware::open_with_chip(FirmwareConfig::default(), chip.clone()).map_err(invalid)?;
    check(
        "SNP_INIT",
        fw.execute(SnpCommand::SnpInit.id(), &mut [], mem),
    )?;
    fw.rmp_update(
        GCTX,
        &RmpUpdate {
            assigned: true,
            immutable: true,
            ..RmpUpdate::default()
        },
    )
    .map_err(|e| invalid(format!("RMPUPDATE: {e:?}")))?;
    let mut gctx = SnpPaddrBuffer {
        paddr: U64::new(GCTX),
    };
    check(
        "SNP_GCTX_CREATE",
        fw.execute(SnpCommand::SnpGctxCreate.id(), gctx.as_mut_bytes(), mem),
    )?;
    let mut start = SnpLaunchStartBuffer::new_zeroed();
    start.gctx_paddr = U64::new(GCTX);
    start.policy = U64::new(SnpPolicy::DEFAULT_RAW);
    check(
        "SNP_LAUNCH_START",
        fw.execute(SnpCommand::SnpLaunchStart.id(), start.as_mut_bytes(), mem),
    )?;
    let mut act = SnpActivateBuffer {
        gctx_paddr: U64::new(GCTX),
        asid: U32::new(ASID),
    };
    check(
        "SNP_ACTIVATE",
        fw.execute(SnpCommand::SnpActivate.id(), act.as_mut_bytes(), mem),
    )?;
    for off in (0..len).step_by(2 << 20) {
        fw.rmp_update(
            BASE + off,
            &RmpUpdate {
                gpa: off,
                assigned: true,
                page_size: PageSize::Size2M,
                immutable: true,
                asid: ASID,
            },
        )
        .map_err(|e| invalid(format!("RMPUPDATE: {e:?}")))?;
    }
    let mut b = SnpLaunchUpdateBuffer::new_zeroed();
    b.gctx_paddr = U64::new(GCTX);
    b.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        true,
        PageType::Normal.as_u8(),
        false,
    ));
    let started = Instant::now();
    for off in (0..len).step_by(2 << 20) {
        b.page_paddr = U64::new(BASE + off);
        check(
            "SNP_LAUNCH_UPDATE",
            fw.execute(SnpCommand::SnpLaunchUpdate.id(), b.as_mut_bytes(), mem),
        )?;
    }
    Ok(mb_per_s(len, started.elapsed()))
}

/// Runs the benchmark.
///
/// # Errors
/// Bad arguments, or a firmware command failed.
pub fn run(args: &SnpLaunchBenchArgs) -> Result<(), InputError> {
    let len = u64::from(args.mib) << 20;
    if len == 0 || !len.is_multiple_of(PAGE_2M) || len > BASE {
        return Err(invalid("--mib must be an even number in 2..=1024"));
    }
    // One chip for every run (minting it is two RSA-4096 key generations).
    let chip = Firmware::open(FirmwareConfig::default())
        .map_err(invalid)?
        .chip()
        .clone();
    let mut mem = VecMemory::new(GCTX + PAGE_2M);
    // Pseudo-random contents (the hash does not care, the allocation does).
    let mut chunk = vec![0u8; 1 << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for off in (0..len).step_by(chunk.len()) {
        for w in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        mem.write(BASE + off, &chunk).map_err(invalid)?;
    }
    let mut best = 0f64;
    for _ in 0..args.runs.max(1) {
        best = best.max(one_run(&chip, &mut mem, len)?);
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
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "SNP_LAUNCH_UPDATE, {} MiB of NORMAL pages in 2 MiB updates, best of {} ({cores} cores \
         available; openssl on one core)",
        args.mib,
        args.runs.max(1)
    );
    println!("{:<44} {:>10}", "measurement", "MB/s");
    println!(
        "{:<44} {best:>10.0}",
        "sevkit SNP_LAUNCH_UPDATE (in-process)"
    );
    match (openssl, ratio) {
        (Some(o), Some(r)) => {
            println!("{:<44} {o:>10.0}", "openssl speed -bytes 4096 -evp sha384");
            println!("{:<44} {:>9.0}%  (goal 70%)", "ratio", r * 100.0);
            if let Some(all) = openssl_all_cores {
                println!(
                    "{:<44} {all:>10.0}  ({:.2}x one core: what the other cores add now)",
                    format!("openssl speed -multi {cores} (all cores)"),
                    all / o
                );
            }
        }
        _ if !args.no_openssl => println!("(openssl not found: no comparison)"),
        _ => {}
    }
    Ok(())
}
