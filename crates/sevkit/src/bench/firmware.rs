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
//! in-process (sparse in-memory system memory) and through a firmware
//! server (guest memory in a memfd, the client in this process), with the
//! firmware's launch log off (`FirmwareConfig::launch_log`, `serve
//! --no-launch-log`: its per-entry content hash is a second SHA-256 pass),
//! and in-process with it on for reference. The ratio is the first figure's.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use sev_firmware::InProcess;
use sev_firmware::{Firmware, FirmwareConfig, SystemMemory, VecMemory};
use sev_firmware_server::launch::{self, layout};
use sev_firmware_server::{Client, Server, ServerConfig};
use sev_sp::{AmdSp, FdMemory};

use crate::input::InputError;

/// Arguments of `sevkit bench firmware`.
#[derive(Debug, Args)]
pub struct FirmwareBenchArgs {
    /// MiB measured by one LAUNCH_UPDATE_DATA.
    #[arg(long, default_value_t = 256)]
    pub mib: u32,
    /// Timed LAUNCH_UPDATE_DATA runs; the best is kept.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Seconds per `openssl speed` measurement.
    #[arg(long, default_value_t = 3)]
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
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

/// Starts a guest on `sp` and times LAUNCH_UPDATE_DATA over `len` bytes
/// at [`layout::IMAGE`] (already filled), best of `runs`, in MB/s.
fn time_updates(
    sp: &mut dyn AmdSp,
    mem: &mut dyn SystemMemory,
    len: u32,
    runs: u32,
) -> Result<f64, InputError> {
    launch::ensure_init(sp, false).map_err(invalid)?;
    let handle = launch::launch_start(sp, mem, 0, None).map_err(invalid)?;
    launch::activate(sp, handle, 5).map_err(invalid)?;
    let mut best = 0f64;
    // The guest stays in LUPDATE: each run measures (and re-encrypts) the
    // same range again.
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        launch::update_data(sp, handle, layout::IMAGE, len).map_err(invalid)?;
        best = best.max(mb_per_s(u64::from(len), start.elapsed()));
    }
    launch::release(sp, handle).map_err(invalid)?;
    Ok(best)
}

fn fill(mem: &mut dyn SystemMemory, len: usize) -> Result<(), InputError> {
    let mut chunk = vec![0u8; 1 << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut off = 0usize;
    while off < len {
        for b in &mut chunk {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let n = chunk.len().min(len - off);
        mem.write(layout::IMAGE + off as u64, &chunk[..n])
            .map_err(invalid)?;
        off += n;
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: &FirmwareBenchArgs) -> Result<(), InputError> {
    let len = args
        .mib
        .checked_mul(1 << 20)
        .filter(|l| *l > 0)
        .ok_or_else(|| invalid("--mib must be 1..=4095"))?;
    let size = layout::memory_size(u64::from(len));
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
        let mut local = InProcess::new(fw, VecMemory::new(size));
        fill(local.memory_mut(), len as usize)?;
        // The launch helpers write only control blocks to `host` here; the
        // data to measure is already in the firmware's memory.
        let mut host = VecMemory::new(0x10_0000);
        *figure = time_updates(&mut local, &mut host, len, args.runs)?;
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
        let mem = FdMemory::memfd("bench-guest", size).map_err(invalid)?;
        let mut host = mem.try_clone().map_err(invalid)?;
        fill(&mut host, len as usize)?;
        let mut client = Client::connect_with_memory(&socket, &mem, None).map_err(invalid)?;
        let figure = time_updates(&mut client, &mut host, len, args.runs);
        drop(client);
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
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.0} MB/s"));
    println!(
        "LAUNCH_UPDATE_DATA over {} MiB (best of {}):",
        args.mib,
        args.runs.max(1)
    );
    println!("  in-process                {in_process:.0} MB/s");
    println!("  in-process, launch log    {with_log:.0} MB/s (second SHA-256 pass)");
    println!("  through the daemon        {} (memfd)", fmt(daemon));
    println!("openssl speed, 16 KiB blocks:");
    println!("  sha256                    {}", fmt(sha));
    println!("  aes-128-xts               {}", fmt(xts));
    println!("  aes-128-ctr               {}", fmt(ctr));
    println!("  limit 1/(1/sha+1/aes)     {}", fmt(limit));
    match ratio {
        Some(r) => println!(
            "in-process / limit         {:.0}% (goal: at least 60%) {}",
            r * 100.0,
            if r >= 0.6 { "MET" } else { "NOT MET" }
        ),
        None => println!("in-process / limit         n/a (openssl not available)"),
    }
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf, InputError> {
    crate::output::scratch_dir("sevkit-bench")
}
