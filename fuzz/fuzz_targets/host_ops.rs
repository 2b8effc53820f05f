//! The sevkit host-instruction pseudo-commands (RMPUPDATE, PSMASH,
//! PVALIDATE, a guest's own memory access, attaching a guest's principal)
//! through `Firmware::execute` on arbitrary buffers: never panics, the
//! buffer keeps its length, and the status is SUCCESS, INVALID_PARAM,
//! INVALID_ADDRESS or INVALID_GUEST (an unknown guest or token; the
//! instruction's own result travels in the buffer's `rc`, never in the
//! status).
//!
//! Input: byte 0 picks the command (`HostOp::ALL[b % 5]`) and the state
//! the firmware is in before it, beyond SNP_INIT: bit 2 launches an SNP
//! guest on ASID 1 (one page at 0x20_0000 launched and validated, its
//! context page at 0x30_0000), bit 3 a plain SEV guest on ASID 5 after
//! INIT; the rest of the input is the command buffer. Memory is 4 MiB.
//!
//! The chip (two RSA-4096 keys) is minted once and cached on disk; every
//! input gets a fresh firmware on it, so a finding reproduces from its
//! input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sev_abi::commands::{
    ActivateBuffer, InitBuffer, LaunchStartBuffer, SevCommand, SnpActivateBuffer, SnpCommand,
    SnpLaunchStartBuffer, SnpLaunchUpdateBuffer, SnpPaddrBuffer,
};
use sev_abi::host_ops::{
    GuestAccessOp, HostOp, RmpUpdateOp, GUEST_ACCESS_NO_GUEST, RMP_ASSIGNED, RMP_IMMUTABLE,
};
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus;
use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig, SystemMemory, VecMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

const MEM_SIZE: u64 = 4 << 20;
const GUEST_PAGE: u64 = 0x20_0000;
const GCTX: u64 = 0x30_0000;
const SNP_ASID: u32 = 1;
const SEV_ASID: u32 = 5;

fn config() -> FirmwareConfig {
    FirmwareConfig {
        seed: Some([1; 32]),
        ..FirmwareConfig::default()
    }
}

/// The chip of `Firmware::open` with seed `[1; 32]`, minted once per
/// process. Two seeded RSA-4096 key generations take minutes in an
/// instrumented build, so the chip is kept in a state directory under the
/// (ignored) `fuzz/target`, and later processes load it.
fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/host_ops-chip");
        let cached = std::fs::create_dir_all(&dir).ok().and_then(|()| {
            Firmware::open(FirmwareConfig {
                state_dir: Some(dir),
                ..config()
            })
            .ok()
        });
        match cached {
            Some(fw) => fw.chip().clone(),
            // A damaged cache is no reason to stop: mint in memory.
            None => Firmware::open(config()).unwrap().chip().clone(),
        }
    })
    .clone()
}

fn run(fw: &mut Firmware, id: u32, buf: &mut [u8], mem: &mut VecMemory) {
    assert_eq!(
        fw.execute(id, buf, mem),
        FirmwareStatus::SUCCESS,
        "setup command {id:#x}"
    );
}

fn launch_snp_guest(fw: &mut Firmware, mem: &mut VecMemory) {
    let mut rmp = RmpUpdateOp {
        spa: U64::new(GCTX),
        flags: U32::new(RMP_ASSIGNED | RMP_IMMUTABLE),
        ..RmpUpdateOp::default()
    };
    run(fw, HostOp::RmpUpdate.id(), rmp.as_mut_bytes(), mem);
    assert_eq!(rmp.rc.get(), 0);
    let mut gctx = SnpPaddrBuffer {
        paddr: U64::new(GCTX),
    };
    run(fw, SnpCommand::SnpGctxCreate.id(), gctx.as_mut_bytes(), mem);
    let mut start = SnpLaunchStartBuffer::new_zeroed();
    start.gctx_paddr = U64::new(GCTX);
    start.policy = U64::new(0x30000);
    run(
        fw,
        SnpCommand::SnpLaunchStart.id(),
        start.as_mut_bytes(),
        mem,
    );
    let mut act = SnpActivateBuffer {
        gctx_paddr: U64::new(GCTX),
        asid: U32::new(SNP_ASID),
    };
    run(fw, SnpCommand::SnpActivate.id(), act.as_mut_bytes(), mem);
    mem.write(GUEST_PAGE, &[0xA5; 4096]).unwrap();
    let mut rmp = RmpUpdateOp {
        spa: U64::new(GUEST_PAGE),
        gpa: U64::new(GUEST_PAGE),
        asid: U32::new(SNP_ASID),
        flags: U32::new(RMP_ASSIGNED | RMP_IMMUTABLE),
        ..RmpUpdateOp::default()
    };
    run(fw, HostOp::RmpUpdate.id(), rmp.as_mut_bytes(), mem);
    assert_eq!(rmp.rc.get(), 0);
    let mut up = SnpLaunchUpdateBuffer::new_zeroed();
    up.gctx_paddr = U64::new(GCTX);
    up.page_paddr = U64::new(GUEST_PAGE);
    up.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        false,
        PageType::Normal.as_u8(),
        false,
    ));
    run(fw, SnpCommand::SnpLaunchUpdate.id(), up.as_mut_bytes(), mem);
}

fn launch_sev_guest(fw: &mut Firmware, mem: &mut VecMemory) {
    let mut init = InitBuffer::new_zeroed();
    run(fw, SevCommand::Init.id(), init.as_mut_bytes(), mem);
    let mut start = LaunchStartBuffer::new_zeroed();
    run(fw, SevCommand::LaunchStart.id(), start.as_mut_bytes(), mem);
    let mut act = ActivateBuffer {
        handle: start.handle,
        asid: U32::new(SEV_ASID),
    };
    run(fw, SevCommand::Activate.id(), act.as_mut_bytes(), mem);
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, buf)) = data.split_first() else {
        return;
    };
    let op = HostOp::ALL[usize::from(opts) % HostOp::ALL.len()];
    let mut fw = Firmware::open_with_chip(config(), chip()).unwrap();
    let mut mem = VecMemory::new(MEM_SIZE);
    run(&mut fw, SnpCommand::SnpInit.id(), &mut [], &mut mem);
    if opts & 4 != 0 {
        launch_snp_guest(&mut fw, &mut mem);
    }
    if opts & 8 != 0 {
        launch_sev_guest(&mut fw, &mut mem);
    }

    let mut buf = buf.to_vec();
    let status = fw.execute(op.id(), &mut buf, &mut mem);
    assert_eq!(
        buf.len(),
        data.len() - 1,
        "{} changed its buffer's length",
        op.name()
    );
    assert!(
        [
            FirmwareStatus::SUCCESS,
            FirmwareStatus::INVALID_PARAM,
            FirmwareStatus::INVALID_ADDRESS,
            FirmwareStatus::INVALID_GUEST
        ]
        .contains(&status),
        "{}: status {status}",
        op.name()
    );
    if op == HostOp::GuestAccess && status == FirmwareStatus::SUCCESS {
        let (b, _) = zerocopy::FromBytes::read_from_prefix(&buf[..]).unwrap();
        let b: GuestAccessOp = b;
        assert!(b.rc.get() <= GUEST_ACCESS_NO_GUEST, "rc {}", b.rc.get());
    }
    // Still answering.
    let mut status = [0u8; 12];
    assert_eq!(
        fw.execute(SevCommand::PlatformStatus.id(), &mut status, &mut mem),
        FirmwareStatus::SUCCESS
    );
});
