//! Shared helpers of the integration tests: one chip per test binary (two
//! RSA-4096 key generations take seconds), a memory map, and the launch
//! steps as a VMM issues them.
#![allow(dead_code)]

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sev_abi::commands::{
    ActivateBuffer, InitBuffer, LaunchMeasureBuffer, LaunchStartBuffer, LaunchUpdateBuffer,
    SevCommand, SnpActivateBuffer, SnpCommand, SnpLaunchStartBuffer, SnpPaddrBuffer,
};
use sev_abi::status::FirmwareStatus;
use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig, SystemMemory, VecMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// The SEV-ES trusted memory region.
pub const TMR: u64 = 0x10_0000;
/// A guest data page (LAUNCH_UPDATE_DATA).
pub const DATA: u64 = 0x20_0000;
/// Where LAUNCH_SECRET puts the secret.
pub const SECRET_DST: u64 = 0x22_0000;
/// Where DBG_ENCRYPT writes.
pub const DBG_DST_GUEST: u64 = 0x22_1000;
/// A VMSA page.
pub const VMSA: u64 = 0x21_0000;
/// LAUNCH_MEASURE output.
pub const MEASURE_OUT: u64 = 0x30_0000;
/// ATTESTATION output.
pub const REPORT_OUT: u64 = 0x30_1000;
/// PDH certificate output.
pub const PDH_OUT: u64 = 0x30_2000;
/// Chain output.
pub const CHAIN_OUT: u64 = 0x30_4000;
/// PEK CSR output.
pub const CSR_OUT: u64 = 0x30_8000;
/// GET_ID output.
pub const ID_OUT: u64 = 0x30_9000;
/// Certificates and session blobs given to the firmware.
pub const BLOB_IN: u64 = 0x31_0000;
/// A second input blob.
pub const BLOB_IN2: u64 = 0x31_1000;
/// Secret packet header.
pub const SECRET_HDR: u64 = 0x40_0000;
/// Secret packet payload.
pub const SECRET_TRANS: u64 = 0x40_1000;
/// Host-side plaintext/ciphertext for DBG.
pub const HOST_BUF: u64 = 0x50_0000;
/// Size of the test memory.
pub const MEM_SIZE: u64 = 0x100_0000;

/// Seed of the shared test chip.
pub const CHIP_SEED: [u8; 32] = [0x5E; 32];

/// The chip shared by every test: minted once from [`CHIP_SEED`] (two
/// RSA-4096 key generations take seconds) and kept in a state directory
/// under Cargo's target directory, so later test binaries and runs load it.
pub fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sev-firmware-test-chip");
        match Firmware::open(FirmwareConfig {
            state_dir: Some(dir),
            seed: Some(CHIP_SEED),
            ..FirmwareConfig::default()
        }) {
            Ok(fw) => fw.chip().clone(),
            // A damaged cache is no reason to fail: mint in memory.
            Err(_) => {
                ChipIdentity::generate(&mut ChaCha20Rng::from_seed(CHIP_SEED), 1, 55).unwrap()
            }
        }
    })
    .clone()
}

/// A second chip (seed `0x77`), cached like [`chip`].
pub fn other_chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sev-firmware-test-chip-2");
        Firmware::open(FirmwareConfig {
            state_dir: Some(dir),
            seed: Some([0x77; 32]),
            ..FirmwareConfig::default()
        })
        .unwrap()
        .chip()
        .clone()
    })
    .clone()
}

/// A seeded, in-memory firmware on the shared chip.
pub fn firmware(seed: u8) -> Firmware {
    Firmware::open_with_chip(
        FirmwareConfig {
            seed: Some([seed; 32]),
            ..FirmwareConfig::default()
        },
        chip(),
    )
    .unwrap()
}

/// Test memory.
pub fn memory() -> VecMemory {
    VecMemory::new(MEM_SIZE)
}

/// Runs a typed command.
pub fn run<T>(
    fw: &mut Firmware,
    cmd: SevCommand,
    buf: &mut T,
    mem: &mut VecMemory,
) -> FirmwareStatus
where
    T: FromBytes + IntoBytes + Immutable + KnownLayout,
{
    fw.call(cmd, buf, mem)
}

/// INIT, with SEV-ES when `es`.
pub fn init(fw: &mut Firmware, mem: &mut VecMemory, es: bool) {
    let mut b = InitBuffer::new_zeroed();
    if es {
        b.flags = U32::new(1);
        b.tmr_paddr = U64::new(TMR);
        b.tmr_len = U32::new(1 << 20);
    }
    assert_eq!(
        run(fw, SevCommand::Init, &mut b, mem),
        FirmwareStatus::SUCCESS
    );
}

/// LAUNCH_START without a session; returns the handle.
pub fn launch_start_plain(fw: &mut Firmware, mem: &mut VecMemory, policy: u32) -> u32 {
    let mut b = LaunchStartBuffer::new_zeroed();
    b.policy = U32::new(policy);
    assert_eq!(
        run(fw, SevCommand::LaunchStart, &mut b, mem),
        FirmwareStatus::SUCCESS
    );
    b.handle.get()
}

/// ACTIVATE.
pub fn activate(fw: &mut Firmware, mem: &mut VecMemory, handle: u32, asid: u32) -> FirmwareStatus {
    let mut b = ActivateBuffer {
        handle: U32::new(handle),
        asid: U32::new(asid),
    };
    run(fw, SevCommand::Activate, &mut b, mem)
}

/// LAUNCH_UPDATE_DATA (or VMSA) over `[paddr, paddr + len)`.
pub fn update(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    handle: u32,
    paddr: u64,
    len: u32,
    vmsa: bool,
) -> FirmwareStatus {
    let mut b = LaunchUpdateBuffer::new_zeroed();
    b.handle = U32::new(handle);
    b.paddr = U64::new(paddr);
    b.len = U32::new(len);
    let cmd = if vmsa {
        SevCommand::LaunchUpdateVmsa
    } else {
        SevCommand::LaunchUpdateData
    };
    run(fw, cmd, &mut b, mem)
}

/// LAUNCH_MEASURE; returns `measurement ‖ mnonce`.
pub fn measure(fw: &mut Firmware, mem: &mut VecMemory, handle: u32) -> [u8; 48] {
    let mut b = LaunchMeasureBuffer::new_zeroed();
    b.handle = U32::new(handle);
    b.paddr = U64::new(MEASURE_OUT);
    b.len = U32::new(48);
    assert_eq!(
        run(fw, SevCommand::LaunchMeasure, &mut b, mem),
        FirmwareStatus::SUCCESS
    );
    let mut out = [0u8; 48];
    mem.read(MEASURE_OUT, &mut out).unwrap();
    out
}

/// Starts an SNP guest whose context page `gctx` is already a FIRMWARE
/// page: SNP_GCTX_CREATE, SNP_LAUNCH_START with `policy`, SNP_ACTIVATE on
/// `asid`. Each step must succeed.
pub fn start_snp_guest(fw: &mut Firmware, mem: &mut VecMemory, gctx: u64, policy: u64, asid: u32) {
    let mut create = SnpPaddrBuffer {
        paddr: U64::new(gctx),
    };
    let mut start = SnpLaunchStartBuffer::new_zeroed();
    start.gctx_paddr = U64::new(gctx);
    start.policy = U64::new(policy);
    let mut act = SnpActivateBuffer {
        gctx_paddr: U64::new(gctx),
        asid: U32::new(asid),
    };
    for (cmd, buf) in [
        (SnpCommand::SnpGctxCreate, create.as_mut_bytes()),
        (SnpCommand::SnpLaunchStart, start.as_mut_bytes()),
        (SnpCommand::SnpActivate, act.as_mut_bytes()),
    ] {
        assert_eq!(
            fw.execute(cmd.id(), buf, mem),
            FirmwareStatus::SUCCESS,
            "{cmd:?}"
        );
    }
}
