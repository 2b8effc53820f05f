//! Shared helpers of the integration tests: a memory map and the legacy
//! launch steps as a VMM issues them; the cached chip, seeded firmwares and
//! the SNP steps come from `sevkit-testkit`.
#![allow(dead_code)]

use sev_abi::commands::{
    ActivateBuffer, InitBuffer, LaunchMeasureBuffer, LaunchStartBuffer, LaunchUpdateBuffer,
    SevCommand,
};
use sev_abi::policy::GuestPolicy;
use sev_abi::status::FirmwareStatus;
use sev_firmware::{ChipIdentity, Firmware, SystemMemory, VecMemory};
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

#[allow(unused_imports)]
pub use sevkit_testkit::snp::start_snp_guest;
/// The shared test chip, a seeded firmware on it, and its seed.
#[allow(unused_imports)]
pub use sevkit_testkit::{chip, firmware, CHIP_SEED};

/// A second chip (seed `0x77`), cached like [`chip`].
pub fn other_chip() -> ChipIdentity {
    sevkit_testkit::cached_chip("sev-firmware-test-chip-2", [0x77; 32])
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
    b.policy = GuestPolicy::from_raw(policy);
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
