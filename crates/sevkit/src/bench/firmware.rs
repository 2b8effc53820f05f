//! `sevkit bench firmware`: LAUNCH_UPDATE_DATA throughput of the software
//! AMD-SP next to the limit OpenSSL sets on the same machine in the same run.
//!
//! LAUNCH_UPDATE_DATA hashes every byte into the launch digest (SHA-256)
//! and encrypts it in place (AES-128-XTS, one data unit per 4 KiB page).
//! Its limit is therefore one SHA-256 pass plus one AES-XTS pass:
//! `1 / (1/sha256 + 1/aes128xts)`, with both rates from `openssl speed` on
//! 16 KiB blocks (`-evp aes-128-xts`, and `-evp aes-128-ctr` for
//! reference). Goal: at least 60% of that limit.
//!
//! Measured: one LAUNCH_UPDATE_DATA over `--mib` MiB, best of `--runs`,
//! in-process and through a firmware server (the client in this process),
//! guest memory in the VMM's memfd either way, with the firmware's launch
//! log off (`FirmwareConfig::launch_log`, `serve --no-launch-log`: its
//! per-entry content hash is a second SHA-256 pass), and in-process with it
//! on for reference. The ratio is the first figure's. The launch is the
//! VMM's (`sev_vmm::plan`: the built-in demo image as an SEV guest, then
//! `SevLaunch::update_data` of the region); the time is what the
//! LAUNCH_UPDATE_DATA command took at the seam (`sev_sp::Metered`), not the
//! VMM's copy of the data into guest memory nor its launch log.

use std::time::Duration;

use clap::Args;
use serde_json::json;
use sev_abi::commands::SevCommand;
use sev_abi::policy::GuestPolicy;
use sev_abi::product::Product;
use sev_firmware::InProcess;
use sev_firmware::{Firmware, FirmwareConfig};
use sev_firmware_server::{Client, Server, ServerConfig};
use sev_sp::{AmdSp, CommandClock, Metered};
use sev_vmm::host::Host;
use sev_vmm::launch::SevSpec;
use sev_vmm::machine::demo_image::demo_image;
use sev_vmm::machine::memory::FOUR_GIB;
use sev_vmm::plan::{MachinePlan, PlannedGuest, StartedLaunch};
use sev_vmm::GuestMemory;

use crate::input::InputError;
use crate::number::number;

/// Arguments of `sevkit bench firmware`.
#[derive(Debug, Args)]
pub struct FirmwareBenchArgs {
    /// MiB measured by one LAUNCH_UPDATE_DATA.
    #[arg(long, default_value_t = 256, value_parser = number::<u32>())]
    pub mib: u32,
    /// Timed LAUNCH_UPDATE_DATA runs; the best is kept.
    #[arg(long, default_value_t = 3, value_parser = number::<u32>())]
    pub runs: u32,
    /// Seconds per `openssl speed` measurement.
    #[arg(long, default_value_t = 3, value_parser = number::<u64>())]
    pub seconds: u64,
    /// Skip the OpenSSL comparison.
    #[arg(long)]
    pub no_openssl: bool,
    /// Skip the measurement through the firmware server.
    #[arg(long)]
    pub no_daemon: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn invalid(e: impl std::fmt::Display) -> InputError {
    InputError::Invalid(e.to_string())
}

/// MB/s (10^6 bytes per second) of `bytes` in `elapsed`.
// Byte counts stay far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
}

/// The benchmark's machine: the demo image as an SEV guest (policy 0, no
/// owner session), with 2 GiB of RAM below 4 GiB and the measured region
/// (`len` bytes) in high RAM from 4 GiB.
fn plan(len: u64) -> Result<MachinePlan, InputError> {
    MachinePlan::for_image(
        demo_image(),
        (3 << 30) + len.next_multiple_of(1 << 20),
        1,
        "EPYC-v4",
        Product::Genoa,
        PlannedGuest::Sev(SevSpec {
            policy: GuestPolicy::from_raw(0),
            handle: 0,
            session: None,
            legacy_vm_type: true,
        }),
    )
    .map_err(invalid)
}

/// Starts the plan's guest on `sp` (which shares `memory`) and times
/// LAUNCH_UPDATE_DATA of `data` at 4 GiB at the seam, best of `runs`, in
/// MB/s. The guest stays in the update state: each run loads and measures
/// (and encrypts) the same range again.
fn time_updates(
    sp: impl AmdSp + Send + 'static,
    memory: GuestMemory,
    plan: MachinePlan,
    data: &[u8],
    runs: u32,
) -> Result<f64, InputError> {
    let clock = CommandClock::new();
    let host = Host::new(Box::new(Metered::new(sp, clock.clone())), memory);
    let StartedLaunch::Sev(mut launch) = plan.start(host).map_err(invalid)? else {
        return Err(invalid("the benchmark's SEV plan started another launch"));
    };
    let mut best = 0f64;
    for _ in 0..runs.max(1) {
        clock.reset();
        launch
            .update_data("benchmark", FOUR_GIB, data)
            .map_err(invalid)?;
        let update = clock.time(SevCommand::LaunchUpdateData.id());
        best = best.max(mb_per_s(data.len() as u64, update.total));
    }
    Ok(best)
}

/// `len` pseudo-random bytes.
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs the benchmark.
pub fn run(args: &FirmwareBenchArgs) -> Result<(), InputError> {
    let len = args
        .mib
        .checked_mul(1 << 20)
        .filter(|l| *l > 0)
        .ok_or_else(|| invalid("--mib must be 1..=4095"))?;
    let data = data(len as usize);
    // One chip for every run (minting it is two RSA-4096 key generations).
    let chip = Firmware::open(FirmwareConfig::default())
        .map_err(invalid)?
        .chip()
        .clone();
    let config = |launch_log: bool| FirmwareConfig {
        launch_log,
        ..FirmwareConfig::default()
    };

    // In-process, without and with the launch log (its per-entry content
    // hash is a second SHA-256 pass).
    let mut in_process = [0f64; 2];
    for (figure, launch_log) in in_process.iter_mut().zip([false, true]) {
        let fw = Firmware::open_with_chip(config(launch_log), chip.clone()).map_err(invalid)?;
        let plan = plan(u64::from(len))?;
        let memory = plan.memory().map_err(invalid)?;
        let sp = InProcess::new(fw, memory.system_handle().map_err(invalid)?);
        *figure = time_updates(sp, memory, plan, &data, args.runs)?;
    }
    let [in_process, with_log] = in_process;

    let daemon = if args.no_daemon {
        None
    } else {
        let dir = tempfile_dir()?;
        let socket = dir.join("bench.sock");
        let fw = Firmware::open_with_chip(config(false), chip).map_err(invalid)?;
        let server = Server::bind(fw, &socket, ServerConfig::default()).map_err(invalid)?;
        let stop = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        let figure = plan(u64::from(len)).and_then(|plan| {
            let memory = plan.memory().map_err(invalid)?;
            let client =
                Client::connect_with_memory(&socket, memory.system(), None).map_err(invalid)?;
            time_updates(client, memory, plan, &data, args.runs)
        });
        stop.shutdown();
        let _ = thread.join();
        let _ = std::fs::remove_dir_all(&dir);
        Some(figure?)
    };

    let (sha, xts, ctr) = if args.no_openssl {
        (None, None, None)
    } else {
        (
            super::openssl_speed_mb_s(args.seconds, 16384, &["sha256"]),
            super::openssl_speed_mb_s(args.seconds, 16384, &["-evp", "aes-128-xts"]),
            super::openssl_speed_mb_s(args.seconds, 16384, &["-evp", "aes-128-ctr"]),
        )
    };
    let limit = match (sha, xts.or(ctr)) {
        (Some(s), Some(a)) => Some(1.0 / (1.0 / s + 1.0 / a)),
        _ => None,
    };
    let ratio = limit.map(|l| in_process / l);
    if args.json {
        let v = json!({
            "mib": args.mib,
            "launch_update_data_mb_s": {
                "in_process": in_process,
                "in_process_with_launch_log": with_log,
                "daemon": daemon,
            },
            "openssl_mb_s": {"sha256": sha, "aes_128_xts": xts, "aes_128_ctr": ctr},
            "limit_mb_s": limit,
            "ratio": ratio,
            "goal": 0.6,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.0} MB/s"));
    outln!(
        "LAUNCH_UPDATE_DATA over {} MiB (best of {}):",
        args.mib,
        args.runs.max(1)
    );
    outln!("  in-process                {in_process:.0} MB/s");
    outln!("  in-process, launch log    {with_log:.0} MB/s (second SHA-256 pass)");
    outln!("  through the daemon        {} (memfd)", fmt(daemon));
    outln!("openssl speed, 16 KiB blocks:");
    outln!("  sha256                    {}", fmt(sha));
    outln!("  aes-128-xts               {}", fmt(xts));
    outln!("  aes-128-ctr               {}", fmt(ctr));
    outln!("  limit 1/(1/sha+1/aes)     {}", fmt(limit));
    match ratio {
        Some(r) => outln!(
            "in-process / limit         {:.0}% (goal: at least 60%) {}",
            r * 100.0,
            if r >= 0.6 { "MET" } else { "NOT MET" }
        ),
        None => outln!("in-process / limit         n/a (openssl not available)"),
    }
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf, InputError> {
    crate::output::scratch_dir("sevkit-bench")
}
