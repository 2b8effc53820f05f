//! `sevkit bench launch`: wall time of the host launch path, from launch
//! start to the measurement being available, next to the floor of the same
//! work in the same run.
//!
//! Measured (in-process software AMD-SP, a 4 MiB firmware image: the
//! built-in demo image padded at the front to 4 MiB, which keeps its
//! footer table and SEV metadata):
//! * SEV-ES: guest memory + LAUNCH_START .. LAUNCH_MEASURE (the point
//!   where `query-sev-launch-measure` answers);
//! * SNP: guest memory + GCTX .. SNP_LAUNCH_FINISH (the point where the
//!   guest can ask for a report carrying the measurement);
//!
//! each for 1 and 64 vCPUs, best of `--runs`, a fresh firmware per run
//! (opened outside the timer). The floor is `sev_measure::measure` for the
//! same inputs: the hashing the launch cannot avoid, without encryption,
//! RMP or command traffic.
//!
//! Registration: the cost per GiB of guest memory (creating the sparse
//! memfd of the q35 layout for 1 and 65 GiB of RAM, difference / 64), next
//! to what pinning would cost (fallocate of 1 GiB of the memfd: committing
//! the pages, which KVM_MEMORY_ENCRYPT_REG_REGION's pinning does).

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_abi::product::Product;
use sev_firmware::InProcess;
use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig};
use sev_measure::{measure, FpuState, MeasureParams, Mode};
use sev_vmm::exits::certs::provider::CertsProvider;
use sev_vmm::host::Host;
use sev_vmm::launch::{SevSpec, SnpSpec};
use sev_vmm::plan::{MachinePlan, PlannedGuest, StartedLaunch};
use sev_vmm::{GuestMemory, MemoryLayout};

use crate::input::InputError;
use crate::number::number;

/// Arguments of `sevkit bench launch`.
#[derive(Debug, Args)]
pub struct LaunchBenchArgs {
    /// Timed runs per case; the best is kept.
    #[arg(long, default_value_t = 5, value_parser = number::<u32>())]
    pub runs: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

const IMAGE_LEN: usize = 4 << 20;
const RAM: u64 = 1 << 30;

fn invalid(e: impl std::fmt::Display) -> InputError {
    InputError::Invalid(e.to_string())
}

/// The demo image, padded at the front to `len` bytes.
fn padded_image(len: usize) -> Vec<u8> {
    let demo = sev_vmm::machine::demo_image::demo_image();
    let mut image = vec![0x90u8; len - demo.len()];
    image.extend_from_slice(&demo);
    image
}

fn best(
    runs: u32,
    mut f: impl FnMut() -> Result<Duration, InputError>,
) -> Result<Duration, InputError> {
    let mut best = Duration::MAX;
    for _ in 0..runs.max(1) {
        best = best.min(f()?);
    }
    Ok(best)
}

/// The machine of one case: the image, [`RAM`], `vcpus` EPYC-v4 vCPUs on a
/// Genoa, an SEV-ES guest (policy 0x5, legacy VM type) or an SNP guest
/// (policy 0x30000).
fn plan(image: &[u8], vcpus: u32, snp: bool) -> Result<MachinePlan, InputError> {
    let guest = if snp {
        PlannedGuest::Snp(
            SnpSpec {
                policy: SnpPolicy::from_raw(0x30000),
                gosvw: [0; 16],
                id: None,
                vcek_disabled: false,
                host_data: [0; 32],
            },
            CertsProvider::new(None),
        )
    } else {
        PlannedGuest::Sev(SevSpec {
            policy: GuestPolicy::from_raw(0x5),
            handle: 0,
            session: None,
            legacy_vm_type: true,
        })
    };
    MachinePlan::for_image(image.to_vec(), RAM, vcpus, "EPYC-v4", Product::Genoa, guest)
        .map_err(invalid)
}

fn one_launch(
    chip: &ChipIdentity,
    image: &[u8],
    vcpus: u32,
    snp: bool,
) -> Result<Duration, InputError> {
    let fw = Firmware::open_with_chip(
        FirmwareConfig {
            seed: Some([3; 32]),
            ..FirmwareConfig::default()
        },
        chip.clone(),
    )
    .map_err(invalid)?;
    let plan = plan(image, vcpus, snp)?;
    let t = Instant::now();
    let memory = plan.memory().map_err(invalid)?;
    let sp = InProcess::new(fw, memory.system_handle().map_err(invalid)?);
    // Up to the measurement: LAUNCH_MEASURE (SEV-ES), SNP_LAUNCH_FINISH.
    match plan
        .start(Host::new(Box::new(sp), memory))
        .map_err(invalid)?
    {
        StartedLaunch::Sev(launch) => drop(launch.measure().map_err(invalid)?),
        StartedLaunch::Snp(launch, _) => drop(launch.finish().map_err(invalid)?),
    }
    Ok(t.elapsed())
}

fn floor(image: &[u8], vcpus: u32, snp: bool) -> Result<Duration, InputError> {
    let mut p = MeasureParams::new(if snp { Mode::Snp } else { Mode::SevEs }, image);
    p.vcpus = vcpus;
    p.vcpu_sig = plan(image, vcpus, snp)?.spec.vcpu_sig;
    p.fpu = if snp {
        FpuState::Init2
    } else {
        FpuState::Legacy
    };
    let t = Instant::now();
    measure(&p).map_err(invalid)?;
    Ok(t.elapsed())
}

fn registration(ram: u64) -> Result<Duration, InputError> {
    let t = Instant::now();
    let layout = MemoryLayout::q35(ram, 0).map_err(invalid)?;
    let memory = GuestMemory::new(layout).map_err(invalid)?;
    let elapsed = t.elapsed();
    drop(memory);
    Ok(elapsed)
}

fn pin_gib() -> Result<Duration, InputError> {
    let layout = MemoryLayout::q35(RAM, 0).map_err(invalid)?;
    let memory = GuestMemory::new(layout).map_err(invalid)?;
    let t = Instant::now();
    rustix::fs::fallocate(memory.system(), rustix::fs::FallocateFlags::empty(), 0, RAM)
        .map_err(invalid)?;
    Ok(t.elapsed())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the benchmark.
pub fn run(args: &LaunchBenchArgs) -> Result<(), InputError> {
    let image = padded_image(IMAGE_LEN);
    // The chip (two RSA-4096 keys) is minted once, outside every timer.
    let chip = Firmware::open(FirmwareConfig {
        seed: Some([0xBE; 32]),
        ..FirmwareConfig::default()
    })
    .map_err(invalid)?
    .chip()
    .clone();
    let mut rows = Vec::new();
    for snp in [false, true] {
        for vcpus in [1u32, 64] {
            let launch = best(args.runs, || one_launch(&chip, &image, vcpus, snp))?;
            let predict = best(args.runs, || floor(&image, vcpus, snp))?;
            rows.push((if snp { "SNP" } else { "SEV-ES" }, vcpus, launch, predict));
        }
    }
    let small = best(args.runs, || registration(1 << 30))?;
    let large = best(args.runs, || registration(65 << 30))?;
    let per_gib = large.saturating_sub(small) / 64;
    let pin = best(args.runs.min(3), pin_gib)?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if args.json {
        let cases: Vec<_> = rows
            .iter()
            .map(|(mode, vcpus, l, p)| {
                json!({"mode": mode, "vcpus": vcpus, "launch_ms": ms(*l), "measure_floor_ms": ms(*p)})
            })
            .collect();
        outln!(
            "{}",
            json!({
                "image_bytes": IMAGE_LEN, "cores": cores, "cases": cases,
                "register_us_per_gib": per_gib.as_secs_f64() * 1e6,
                "register_1gib_us": small.as_secs_f64() * 1e6,
                "pin_ms_per_gib": ms(pin),
            })
        );
        return Ok(());
    }
    outln!(
        "sevkit bench launch: 4 MiB firmware, in-process AMD-SP, {cores} cores, best of {}",
        args.runs
    );
    outln!(
        "{:<8} {:>6} {:>14} {:>18} {:>8}",
        "mode",
        "vCPUs",
        "launch ms",
        "measure floor ms",
        "ratio"
    );
    for (mode, vcpus, l, p) in &rows {
        outln!(
            "{mode:<8} {vcpus:>6} {:>14.2} {:>18.2} {:>7.1}x",
            ms(*l),
            ms(*p),
            l.as_secs_f64() / p.as_secs_f64().max(1e-9)
        );
    }
    outln!(
        "guest memory registration: {:.1} us per extra GiB (1 GiB guest: {:.1} us); pinning (fallocate) 1 GiB: {:.1} ms",
        per_gib.as_secs_f64() * 1e6,
        small.as_secs_f64() * 1e6,
        ms(pin)
    );
    Ok(())
}
