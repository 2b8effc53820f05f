//! The host-instruction pseudo-commands (`sev_abi::host_ops`) through
//! `Firmware::execute`: RMPUPDATE / PVALIDATE with the x86 return codes,
//! and a guest's own access to its memory (plaintext for the guest,
//! ciphertext for everyone else, RMP checks for SNP).

mod common;

use common::{
    activate, firmware, init, launch_start_plain, memory, start_snp_guest, update, DATA, HOST_BUF,
};
use sev_abi::commands::{DbgBuffer, SevCommand, SnpCommand, SnpLaunchUpdateBuffer};
use sev_abi::host_ops::{
    GuestAccessOp, HostOp, PvalidateOp, RmpUpdateOp, GUEST_ACCESS_NOT_VALIDATED,
    GUEST_ACCESS_NO_GUEST, GUEST_ACCESS_PRIVATE, GUEST_ACCESS_RMP_FAULT, GUEST_ACCESS_WRITE,
    PVALIDATE_NO_UPDATE, PVALIDATE_VALIDATE, RMP_ASSIGNED, RMP_IMMUTABLE,
};
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::rmp::PageState;
use sev_firmware::{Firmware, SystemMemory, VecMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

fn op<T: FromBytes + IntoBytes + Immutable + KnownLayout>(
    fw: &mut Firmware,
    op: HostOp,
    buf: &mut T,
    mem: &mut VecMemory,
) -> FirmwareStatus {
    fw.execute(op.id(), buf.as_mut_bytes(), mem)
}

fn access(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    asid: u32,
    spa: u64,
    len: u32,
    flags: u32,
) -> u32 {
    let mut b = GuestAccessOp {
        spa: U64::new(spa),
        gpa: U64::new(spa),
        host_paddr: U64::new(HOST_BUF),
        asid: U32::new(asid),
        len: U32::new(len),
        flags: U32::new(flags),
        ..GuestAccessOp::default()
    };
    assert_eq!(
        op(fw, HostOp::GuestAccess, &mut b, mem),
        FirmwareStatus::SUCCESS
    );
    b.rc.get()
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed ^ (i as u8).wrapping_mul(7)).collect()
}

#[test]
fn legacy_guest_sees_plaintext_host_sees_ciphertext() {
    let mut fw = firmware(41);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let handle = launch_start_plain(&mut fw, &mut mem, 0x1);
    let asid = 9;
    assert_eq!(
        activate(&mut fw, &mut mem, handle, asid),
        FirmwareStatus::SUCCESS
    );
    let plain = pattern(3, 0x2000);
    mem.write(DATA, &plain).unwrap();
    assert_eq!(
        update(&mut fw, &mut mem, handle, DATA, 0x2000, false),
        FirmwareStatus::SUCCESS
    );
    let raw = mem.read_vec(DATA, 0x2000).unwrap();
    assert_ne!(
        raw, plain,
        "memory holds ciphertext after LAUNCH_UPDATE_DATA"
    );

    // A private read, unaligned and across the page boundary.
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            asid,
            DATA + 0xFF3,
            0x31,
            GUEST_ACCESS_PRIVATE
        ),
        0
    );
    assert_eq!(mem.read_vec(HOST_BUF, 0x31).unwrap(), plain[0xFF3..0x1024]);
    // A shared (C-bit clear) read sees the ciphertext.
    assert_eq!(access(&mut fw, &mut mem, asid, DATA, 32, 0), 0);
    assert_eq!(mem.read_vec(HOST_BUF, 32).unwrap(), raw[..32]);

    // A private write lands encrypted; DBG_DECRYPT (policy 0x1 forbids it)
    // is refused, and the guest's own read returns what it wrote.
    mem.write(HOST_BUF, b"written by the guest").unwrap();
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            asid,
            DATA + 5,
            20,
            GUEST_ACCESS_PRIVATE | GUEST_ACCESS_WRITE
        ),
        0
    );
    assert_ne!(mem.read_vec(DATA + 5, 20).unwrap(), b"written by the guest");
    mem.write(HOST_BUF, &[0u8; 32]).unwrap();
    assert_eq!(
        access(&mut fw, &mut mem, asid, DATA, 32, GUEST_ACCESS_PRIVATE),
        0
    );
    let back = mem.read_vec(HOST_BUF, 32).unwrap();
    assert_eq!(&back[5..25], b"written by the guest");
    assert_eq!(back[..5], plain[..5], "the rest of the block is intact");
    assert_eq!(back[25..], plain[25..32]);
    let mut dbg = DbgBuffer {
        handle: U32::new(handle),
        src_paddr: U64::new(DATA),
        dst_paddr: U64::new(HOST_BUF),
        len: U32::new(16),
        ..DbgBuffer::new_zeroed()
    };
    assert_eq!(
        fw.execute(SevCommand::DbgDecrypt.id(), dbg.as_mut_bytes(), &mut mem),
        FirmwareStatus::POLICY_FAILURE
    );

    // Another ASID has no guest; bad flags and lengths are refused.
    assert_eq!(
        access(&mut fw, &mut mem, asid + 1, DATA, 16, GUEST_ACCESS_PRIVATE),
        GUEST_ACCESS_NO_GUEST
    );
    let mut bad = GuestAccessOp {
        flags: U32::new(0x80),
        asid: U32::new(asid),
        ..GuestAccessOp::default()
    };
    assert_eq!(
        op(&mut fw, HostOp::GuestAccess, &mut bad, &mut mem),
        FirmwareStatus::INVALID_PARAM
    );
    bad.flags = U32::new(0);
    bad.len = U32::new(u32::MAX);
    assert_eq!(
        op(&mut fw, HostOp::GuestAccess, &mut bad, &mut mem),
        FirmwareStatus::INVALID_PARAM
    );
    bad.len = U32::new(16);
    bad.spa = U64::new(u64::MAX - 4);
    assert_eq!(
        op(&mut fw, HostOp::GuestAccess, &mut bad, &mut mem),
        FirmwareStatus::INVALID_ADDRESS
    );
    assert_eq!(
        fw.execute(HostOp::GuestAccess.id(), &mut [0u8; 8], &mut mem),
        FirmwareStatus::INVALID_PARAM,
        "short buffer"
    );
}

const GCTX: u64 = 0x80_0000;
const PAGE: u64 = 0x60_0000;
const ASID: u32 = 1;

fn rmp(fw: &mut Firmware, mem: &mut VecMemory, spa: u64, gpa: u64, asid: u32, flags: u32) -> u32 {
    let mut b = RmpUpdateOp {
        spa: U64::new(spa),
        gpa: U64::new(gpa),
        asid: U32::new(asid),
        flags: U32::new(flags),
        ..RmpUpdateOp::default()
    };
    assert_eq!(
        op(fw, HostOp::RmpUpdate, &mut b, mem),
        FirmwareStatus::SUCCESS
    );
    b.rc.get()
}

#[test]
#[allow(clippy::too_many_lines)] // one launch, many checks on it
fn snp_rmp_instructions_and_guest_access() {
    let mut fw = firmware(42);
    let mut mem = memory();
    // Before SNP_INIT the instruction faults: FAIL_INPUT.
    assert_eq!(
        rmp(&mut fw, &mut mem, GCTX, 0, 0, RMP_ASSIGNED | RMP_IMMUTABLE),
        1
    );
    assert_eq!(
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(
        rmp(&mut fw, &mut mem, GCTX, 0, 0, RMP_ASSIGNED | RMP_IMMUTABLE),
        0
    );
    assert_eq!(fw.rmp_page_state(GCTX), PageState::Firmware);
    // Firmware pages are immutable to the host: FAIL_PERMISSION.
    assert_eq!(rmp(&mut fw, &mut mem, GCTX, 0, 0, 0), 2);
    start_snp_guest(&mut fw, &mut mem, GCTX, 0x30000, ASID);

    // Launch one page (PRE_GUEST, then NORMAL).
    let plain = pattern(9, 4096);
    mem.write(PAGE, &plain).unwrap();
    assert_eq!(
        rmp(
            &mut fw,
            &mut mem,
            PAGE,
            PAGE,
            ASID,
            RMP_ASSIGNED | RMP_IMMUTABLE
        ),
        0
    );
    let mut up = SnpLaunchUpdateBuffer::new_zeroed();
    up.gctx_paddr = U64::new(GCTX);
    up.page_paddr = U64::new(PAGE);
    up.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        false,
        PageType::Normal.as_u8(),
        false,
    ));
    assert_eq!(
        fw.execute(
            SnpCommand::SnpLaunchUpdate.id(),
            up.as_mut_bytes(),
            &mut mem
        ),
        FirmwareStatus::SUCCESS
    );
    assert_ne!(mem.read_vec(PAGE, 4096).unwrap(), plain);

    // The guest reads its page; a shared access to it faults.
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            ASID,
            PAGE + 100,
            200,
            GUEST_ACCESS_PRIVATE
        ),
        0
    );
    assert_eq!(mem.read_vec(HOST_BUF, 200).unwrap(), plain[100..300]);
    assert_eq!(
        access(&mut fw, &mut mem, ASID, PAGE, 16, 0),
        GUEST_ACCESS_RMP_FAULT
    );
    // A private access to a page it does not own faults; a shared one works.
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            ASID,
            PAGE + 4096,
            16,
            GUEST_ACCESS_PRIVATE
        ),
        GUEST_ACCESS_RMP_FAULT
    );
    assert_eq!(access(&mut fw, &mut mem, ASID, PAGE + 4096, 16, 0), 0);
    // Across into the unowned page: faults as a whole.
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            ASID,
            PAGE + 4090,
            16,
            GUEST_ACCESS_PRIVATE
        ),
        GUEST_ACCESS_RMP_FAULT
    );

    // A page assigned at runtime is not validated until PVALIDATE.
    let page2 = PAGE + 0x1000;
    assert_eq!(rmp(&mut fw, &mut mem, page2, page2, ASID, RMP_ASSIGNED), 0);
    assert_eq!(
        access(&mut fw, &mut mem, ASID, page2, 16, GUEST_ACCESS_PRIVATE),
        GUEST_ACCESS_NOT_VALIDATED
    );
    let mut pv = PvalidateOp {
        gpa: U64::new(page2),
        asid: U32::new(ASID),
        flags: U32::new(PVALIDATE_VALIDATE),
        ..PvalidateOp::default()
    };
    assert_eq!(
        op(&mut fw, HostOp::Pvalidate, &mut pv, &mut mem),
        FirmwareStatus::SUCCESS
    );
    assert_eq!((pv.rc.get(), pv.no_update.get()), (0, 0));
    assert_eq!(
        op(&mut fw, HostOp::Pvalidate, &mut pv, &mut mem),
        FirmwareStatus::SUCCESS
    );
    assert_eq!((pv.rc.get(), pv.no_update.get()), (0, PVALIDATE_NO_UPDATE));
    mem.write(HOST_BUF, b"0123456789abcdef").unwrap();
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            ASID,
            page2,
            16,
            GUEST_ACCESS_PRIVATE | GUEST_ACCESS_WRITE
        ),
        0
    );
    assert_ne!(mem.read_vec(page2, 16).unwrap(), b"0123456789abcdef");
    assert_eq!(
        access(&mut fw, &mut mem, ASID, page2, 16, GUEST_ACCESS_PRIVATE),
        0
    );
    assert_eq!(mem.read_vec(HOST_BUF, 16).unwrap(), b"0123456789abcdef");
    // Reserved bits are refused.
    let mut bad = RmpUpdateOp {
        reserved: U32::new(1),
        ..RmpUpdateOp::default()
    };
    assert_eq!(
        op(&mut fw, HostOp::RmpUpdate, &mut bad, &mut mem),
        FirmwareStatus::INVALID_PARAM
    );
}

/// Found by the `host_ops` fuzz target: accesses in the last page and the
/// last block of the address space answered without overflowing.
#[test]
fn accesses_at_the_top_of_the_address_space_do_not_overflow() {
    let mut fw = firmware(43);
    let mut mem = memory();
    assert_eq!(
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(
        rmp(&mut fw, &mut mem, GCTX, 0, 0, RMP_ASSIGNED | RMP_IMMUTABLE),
        0
    );
    start_snp_guest(&mut fw, &mut mem, GCTX, 0x30000, ASID);
    for (spa, len) in [
        (0xFFFF_FFFF_FFFF_F000u64, 16u32),
        (0xFFFF_FFFF_FFFF_FFF1, 4),
    ] {
        let mut b = GuestAccessOp {
            spa: U64::new(spa),
            asid: U32::new(ASID),
            len: U32::new(len),
            ..GuestAccessOp::default()
        };
        let status = op(&mut fw, HostOp::GuestAccess, &mut b, &mut mem);
        assert_eq!(status, FirmwareStatus::INVALID_ADDRESS, "{spa:#x}+{len}");
    }
}
