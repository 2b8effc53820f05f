//! The host-instruction pseudo-commands (`sev_abi::host_ops`) through
//! `Firmware::execute`: RMPUPDATE / PVALIDATE with the x86 return codes,
//! and a guest's own access to its memory (plaintext for the guest's
//! principal, ciphertext for everyone else, RMP checks for SNP); who owns
//! what when several clients share the firmware.

mod common;

use common::{
    activate, firmware, init, launch_start_plain, memory, start_snp_guest, update, DATA, HOST_BUF,
};
use sev_abi::commands::{
    ActivateBuffer, DbgBuffer, LaunchMeasureBuffer, LaunchStartBuffer, LaunchUpdateBuffer,
    SevCommand, SnpCommand, SnpDbgBuffer, SnpGuestStatusBuffer, SnpLaunchUpdateBuffer,
    SnpPaddrBuffer,
};
use sev_abi::host_ops::{
    GuestAccessOp, GuestAttachOp, HostOp, PvalidateOp, RmpUpdateOp, GUEST_ACCESS_NOT_VALIDATED,
    GUEST_ACCESS_NO_GUEST, GUEST_ACCESS_PRIVATE, GUEST_ACCESS_RMP_FAULT, GUEST_ACCESS_WRITE,
    GUEST_ATTACH_TAKEN, GUEST_TOKEN_LEN, PVALIDATE_NO_UPDATE, PVALIDATE_VALIDATE, RMP_ASSIGNED,
    RMP_IMMUTABLE,
};
use sev_abi::policy::GuestPolicy;
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::rmp::PageState;
use sev_firmware::{ClientId, Firmware, SystemMemory, VecMemory};
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

type Token = [u8; GUEST_TOKEN_LEN];

/// SEVKIT_GUEST_ATTACH of an SEV guest (`handle`) or an SNP guest
/// (`gctx`): the status and the token.
fn attach(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    handle: u32,
    gctx: u64,
) -> (FirmwareStatus, u32, Token) {
    let mut b = GuestAttachOp {
        handle: U32::new(handle),
        gctx_paddr: U64::new(gctx),
        ..GuestAttachOp::default()
    };
    let status = op(fw, HostOp::GuestAttach, &mut b, mem);
    (status, b.rc.get(), b.token)
}

fn principal(fw: &mut Firmware, mem: &mut VecMemory, handle: u32, gctx: u64) -> Token {
    let (status, rc, token) = attach(fw, mem, handle, gctx);
    assert_eq!((status, rc), (FirmwareStatus::SUCCESS, 0));
    assert_ne!(token, [0; GUEST_TOKEN_LEN]);
    token
}

fn access_op(token: Token, spa: u64, len: u32, flags: u32) -> GuestAccessOp {
    GuestAccessOp {
        token,
        spa: U64::new(spa),
        gpa: U64::new(spa),
        host_paddr: U64::new(HOST_BUF),
        len: U32::new(len),
        flags: U32::new(flags),
        ..GuestAccessOp::default()
    }
}

fn access(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    token: Token,
    spa: u64,
    len: u32,
    flags: u32,
) -> u32 {
    let mut b = access_op(token, spa, len, flags);
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
#[allow(clippy::too_many_lines)] // one guest, many checks on it
fn legacy_guest_sees_plaintext_host_sees_ciphertext() {
    let mut fw = firmware(41);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let handle = launch_start_plain(&mut fw, &mut mem, 0x1);
    assert_eq!(
        activate(&mut fw, &mut mem, handle, 9),
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
    // The guest's principal, minted once.
    let asid = principal(&mut fw, &mut mem, handle, 0);
    assert_eq!(
        attach(&mut fw, &mut mem, handle, 0),
        (
            FirmwareStatus::SUCCESS,
            GUEST_ATTACH_TAKEN,
            [0; GUEST_TOKEN_LEN]
        ),
        "a second attach gets no token"
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

    // Another token names no guest (nor does the zero token); bad flags
    // and lengths are refused.
    let mut other = asid;
    other[0] ^= 1;
    for token in [other, [0; GUEST_TOKEN_LEN]] {
        let mut b = access_op(token, DATA, 16, GUEST_ACCESS_PRIVATE);
        assert_eq!(
            op(&mut fw, HostOp::GuestAccess, &mut b, &mut mem),
            FirmwareStatus::INVALID_GUEST
        );
    }
    let mut bad = GuestAccessOp {
        flags: U32::new(0x80),
        token: asid,
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
    let guest = principal(&mut fw, &mut mem, 0, GCTX);

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
            guest,
            PAGE + 100,
            200,
            GUEST_ACCESS_PRIVATE
        ),
        0
    );
    assert_eq!(mem.read_vec(HOST_BUF, 200).unwrap(), plain[100..300]);
    assert_eq!(
        access(&mut fw, &mut mem, guest, PAGE, 16, 0),
        GUEST_ACCESS_RMP_FAULT
    );
    // A private access to a page it does not own faults; a shared one works.
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            guest,
            PAGE + 4096,
            16,
            GUEST_ACCESS_PRIVATE
        ),
        GUEST_ACCESS_RMP_FAULT
    );
    assert_eq!(access(&mut fw, &mut mem, guest, PAGE + 4096, 16, 0), 0);
    // Across into the unowned page: faults as a whole.
    assert_eq!(
        access(
            &mut fw,
            &mut mem,
            guest,
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
        access(&mut fw, &mut mem, guest, page2, 16, GUEST_ACCESS_PRIVATE),
        GUEST_ACCESS_NOT_VALIDATED
    );
    let mut pv = PvalidateOp {
        gpa: U64::new(page2),
        token: guest,
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
            guest,
            page2,
            16,
            GUEST_ACCESS_PRIVATE | GUEST_ACCESS_WRITE
        ),
        0
    );
    assert_ne!(mem.read_vec(page2, 16).unwrap(), b"0123456789abcdef");
    assert_eq!(
        access(&mut fw, &mut mem, guest, page2, 16, GUEST_ACCESS_PRIVATE),
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
    let guest = principal(&mut fw, &mut mem, 0, GCTX);
    for (spa, len) in [
        (0xFFFF_FFFF_FFFF_F000u64, 16u32),
        (0xFFFF_FFFF_FFFF_FFF1, 4),
    ] {
        let mut b = GuestAccessOp {
            token: guest,
            spa: U64::new(spa),
            len: U32::new(len),
            ..GuestAccessOp::default()
        };
        let status = op(&mut fw, HostOp::GuestAccess, &mut b, &mut mem);
        assert_eq!(status, FirmwareStatus::INVALID_ADDRESS, "{spa:#x}+{len}");
    }
}

/// Runs `cmd` with `buf` for `client` (a connection of the firmware daemon).
fn run_for<T: FromBytes + IntoBytes + Immutable + KnownLayout>(
    fw: &mut Firmware,
    client: ClientId,
    cmd: u32,
    buf: &mut T,
    mem: &mut VecMemory,
) -> FirmwareStatus {
    fw.execute_for(client, cmd, buf.as_mut_bytes(), mem)
}

/// Two clients share one firmware, as the daemon's connections do. The
/// first launches an SEV guest with NODBG and an SNP guest without DEBUG.
/// The second cannot name either (every command: INVALID_GUEST), cannot
/// use the first's guest principal, and its RMP is its own. The first (the
/// guests' host) cannot read its own NODBG guest's plaintext either: only
/// the guest principal can. Releasing the first client frees everything.
#[test]
#[allow(clippy::too_many_lines)] // one scenario, every command of it
fn clients_own_their_guests_and_only_the_guest_principal_sees_plaintext() {
    let mut fw = firmware(44);
    let mut mem = memory();
    let mut other_mem = memory();
    let other = ClientId(7);
    init(&mut fw, &mut mem, false);

    // The owner (LOCAL): an SEV guest with NODBG, one page of "secret".
    let handle = launch_start_plain(&mut fw, &mut mem, 0x1);
    assert_eq!(
        activate(&mut fw, &mut mem, handle, 9),
        FirmwareStatus::SUCCESS
    );
    let plain = pattern(5, 0x1000);
    mem.write(DATA, &plain).unwrap();
    assert_eq!(
        update(&mut fw, &mut mem, handle, DATA, 0x1000, false),
        FirmwareStatus::SUCCESS
    );

    // The other client: every command naming the guest is INVALID_GUEST.
    let mut measure = LaunchMeasureBuffer {
        handle: U32::new(handle),
        paddr: U64::new(HOST_BUF),
        len: U32::new(48),
        ..LaunchMeasureBuffer::new_zeroed()
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            SevCommand::LaunchMeasure.id(),
            &mut measure,
            &mut other_mem
        ),
        FirmwareStatus::INVALID_GUEST
    );
    for cmd in [
        SevCommand::GuestStatus,
        SevCommand::LaunchFinish,
        SevCommand::Deactivate,
        SevCommand::Decommission,
    ] {
        let mut buf = [0u8; 0x40];
        buf[..4].copy_from_slice(&handle.to_le_bytes());
        assert_eq!(
            fw.execute_for(other, cmd.id(), &mut buf, &mut other_mem),
            FirmwareStatus::INVALID_GUEST,
            "{cmd:?}"
        );
    }
    let mut up = LaunchUpdateBuffer {
        handle: U32::new(handle),
        paddr: U64::new(DATA),
        len: U32::new(16),
        ..LaunchUpdateBuffer::new_zeroed()
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            SevCommand::LaunchUpdateData.id(),
            &mut up,
            &mut other_mem
        ),
        FirmwareStatus::INVALID_GUEST
    );
    let mut act = ActivateBuffer {
        handle: U32::new(handle),
        asid: U32::new(10),
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            SevCommand::Activate.id(),
            &mut act,
            &mut other_mem
        ),
        FirmwareStatus::INVALID_GUEST
    );
    let mut dbg = DbgBuffer {
        handle: U32::new(handle),
        src_paddr: U64::new(DATA),
        dst_paddr: U64::new(HOST_BUF),
        len: U32::new(16),
        ..DbgBuffer::new_zeroed()
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            SevCommand::DbgDecrypt.id(),
            &mut dbg,
            &mut other_mem
        ),
        FirmwareStatus::INVALID_GUEST
    );
    // Key sharing with another client's guest: that guest does not exist.
    let mut start = LaunchStartBuffer {
        handle: U32::new(handle),
        policy: GuestPolicy::from_raw(0),
        ..LaunchStartBuffer::new_zeroed()
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            SevCommand::LaunchStart.id(),
            &mut start,
            &mut other_mem
        ),
        FirmwareStatus::INVALID_GUEST
    );
    let mut att = GuestAttachOp {
        handle: U32::new(handle),
        ..GuestAttachOp::default()
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            HostOp::GuestAttach.id(),
            &mut att,
            &mut other_mem
        ),
        FirmwareStatus::INVALID_GUEST
    );
    assert_eq!(att.token, [0; GUEST_TOKEN_LEN]);

    // The owner's host: DBG_DECRYPT obeys NODBG, and without the guest's
    // principal there is no other way to the plaintext.
    assert_eq!(
        fw.execute(SevCommand::DbgDecrypt.id(), dbg.as_mut_bytes(), &mut mem),
        FirmwareStatus::POLICY_FAILURE
    );
    let mut b = access_op([0; GUEST_TOKEN_LEN], DATA, 16, GUEST_ACCESS_PRIVATE);
    assert_eq!(
        op(&mut fw, HostOp::GuestAccess, &mut b, &mut mem),
        FirmwareStatus::INVALID_GUEST
    );
    // The guest principal sees its plaintext; in the other client's hands
    // the same token names nothing.
    let token = principal(&mut fw, &mut mem, handle, 0);
    assert_eq!(
        access(&mut fw, &mut mem, token, DATA, 16, GUEST_ACCESS_PRIVATE),
        0
    );
    assert_eq!(mem.read_vec(HOST_BUF, 16).unwrap(), plain[..16]);
    let mut b = access_op(token, DATA, 16, GUEST_ACCESS_PRIVATE);
    assert_eq!(
        run_for(
            &mut fw,
            other,
            HostOp::GuestAccess.id(),
            &mut b,
            &mut other_mem
        ),
        FirmwareStatus::INVALID_GUEST
    );
    assert_eq!(other_mem.read_vec(HOST_BUF, 16).unwrap(), [0; 16]);

    // SNP: the owner's guest context at GCTX; the other client's RMP and
    // guest contexts are its own, at the same system addresses.
    assert_eq!(
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
        FirmwareStatus::INVALID_PLATFORM_STATE,
        "SNP_INIT needs the legacy platform shut down"
    );
    let mut none = [0u8; 0];
    assert_eq!(
        fw.execute(SevCommand::Shutdown.id(), &mut none, &mut mem),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(
        rmp(&mut fw, &mut mem, GCTX, 0, 0, RMP_ASSIGNED | RMP_IMMUTABLE),
        0
    );
    start_snp_guest(&mut fw, &mut mem, GCTX, 0x30000, ASID);
    let mut status = SnpGuestStatusBuffer {
        gctx_paddr: U64::new(GCTX),
        status_paddr: U64::new(HOST_BUF),
    };
    let mut snp_dbg = SnpDbgBuffer {
        gctx_paddr: U64::new(GCTX),
        src_paddr: U64::new(PAGE),
        dst_paddr: U64::new(HOST_BUF),
    };
    let mut decommission = SnpPaddrBuffer {
        paddr: U64::new(GCTX),
    };
    let mut snp_att = GuestAttachOp {
        gctx_paddr: U64::new(GCTX),
        ..GuestAttachOp::default()
    };
    for (cmd, buf) in [
        (SnpCommand::SnpGuestStatus.id(), status.as_mut_bytes()),
        (SnpCommand::SnpDbgDecrypt.id(), snp_dbg.as_mut_bytes()),
        (
            SnpCommand::SnpDecommission.id(),
            decommission.as_mut_bytes(),
        ),
        (HostOp::GuestAttach.id(), snp_att.as_mut_bytes()),
    ] {
        assert_eq!(
            fw.execute_for(other, cmd, buf, &mut other_mem),
            FirmwareStatus::INVALID_GUEST,
            "{cmd:#x}"
        );
    }
    // The other client's RMP does not hold the owner's context page, and
    // what it assigns stays in its own.
    let mut r = RmpUpdateOp {
        spa: U64::new(GCTX),
        flags: U32::new(0),
        ..RmpUpdateOp::default()
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            HostOp::RmpUpdate.id(),
            &mut r,
            &mut other_mem
        ),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(r.rc.get(), 0, "a plain hypervisor page in its memory");
    assert_eq!(fw.rmp_page_state(GCTX), PageState::Context);
    let mut r = RmpUpdateOp {
        spa: U64::new(PAGE),
        gpa: U64::new(PAGE),
        asid: U32::new(ASID),
        flags: U32::new(RMP_ASSIGNED),
        ..RmpUpdateOp::default()
    };
    assert_eq!(
        run_for(
            &mut fw,
            other,
            HostOp::RmpUpdate.id(),
            &mut r,
            &mut other_mem
        ),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(fw.rmp_page_state(PAGE), PageState::Hypervisor);
    // The guest count is the platform's: both clients' guests.
    let snp_token = principal(&mut fw, &mut mem, 0, GCTX);

    // Releasing the owner (its connection closed) frees its guests: the
    // token and the context are gone, for everyone.
    fw.release_client(ClientId::LOCAL);
    assert!(fw.snp_guest(GCTX).is_none());
    assert_eq!(fw.rmp_page_state(GCTX), PageState::Hypervisor);
    let mut b = access_op(snp_token, PAGE, 16, GUEST_ACCESS_PRIVATE);
    assert_eq!(
        op(&mut fw, HostOp::GuestAccess, &mut b, &mut mem),
        FirmwareStatus::INVALID_GUEST
    );
}

/// A guest's principal acts only while the guest runs on an ASID: after
/// DEACTIVATE its accesses fault with GUEST_ACCESS_NO_GUEST.
#[test]
fn principal_without_an_asid_reaches_nothing() {
    let mut fw = firmware(45);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let handle = launch_start_plain(&mut fw, &mut mem, 0x0);
    let token = principal(&mut fw, &mut mem, handle, 0);
    assert_eq!(
        access(&mut fw, &mut mem, token, DATA, 16, GUEST_ACCESS_PRIVATE),
        GUEST_ACCESS_NO_GUEST
    );
    assert_eq!(
        activate(&mut fw, &mut mem, handle, 9),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(
        access(&mut fw, &mut mem, token, DATA, 16, GUEST_ACCESS_PRIVATE),
        0
    );
    // PVALIDATE is an SNP instruction: FAIL_INPUT for an SEV guest.
    let mut pv = PvalidateOp {
        token,
        gpa: U64::new(DATA),
        flags: U32::new(PVALIDATE_VALIDATE),
        ..PvalidateOp::default()
    };
    assert_eq!(
        op(&mut fw, HostOp::Pvalidate, &mut pv, &mut mem),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(pv.rc.get(), 1);
}
