//! SEV-SNP commands against (SNP platform state × guest state × RMP page
//! state), as a table (`expected`), every cell run through `execute()` on a
//! fresh firmware; and the SNP launch details: ID block / ID auth, debug
//! policy, CPUID page correction, secrets page, PVALIDATE after launch.

// The table reads best with one arm per cell group, even when two groups
// expect the same status.
#![allow(clippy::match_same_arms)]

mod common;

use sev_abi::commands::{
    SnpActivateBuffer, SnpCommand, SnpCommitBuffer, SnpConfigBuffer, SnpDbgBuffer,
    SnpGuestRequestBuffer, SnpGuestStatus, SnpGuestStatusBuffer, SnpLaunchFinishBuffer,
    SnpLaunchStartBuffer, SnpPaddrBuffer, SnpPageReclaimBuffer, SnpPlatformStatus,
    SnpPlatformStatusBuffer, SNP_LAUNCH_FINISH_AUTH_KEY_EN, SNP_LAUNCH_FINISH_ID_BLOCK_EN,
};
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::Product;
use sev_abi::secrets_page::SecretsPage;
use sev_abi::snp_launch::{IdAuth, IdBlock, PageType, ID_AUTH_ALGO_ECDSA_P384_SHA384};
use sev_abi::status::FirmwareStatus as S;
use sev_crypto::ecdsa::P384SigningKey;
use sev_firmware::snp::cpuid::{CpuidEntry, CpuidTable, CPUID_TABLE_LEN};
use sev_firmware::snp::platform::SnpPlatformState;
use sev_firmware::snp::rmp::{PageSize, PageState, PvalidateOutcome, RmpError, RmpUpdate};
use sev_firmware::snp::SnpGuestState;
use sev_firmware::{Firmware, FirmwareConfig, SystemMemory, VecMemory};
use sevkit_testkit::snp;
use sha2::{Digest, Sha384};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const GCTX: u64 = 0x10_0000;
const PAGE: u64 = 0x40_0000;
const OUT: u64 = 0x80_0000;
const REQ: u64 = 0x81_0000;
const ID_BLOCK: u64 = 0x82_0000;
const ID_AUTH: u64 = 0x83_0000;
const ASID: u32 = 1;
const POLICY: u64 = SnpPolicy::DEFAULT_RAW | SnpPolicy::DEBUG;

fn finish(fw: &mut Firmware, mem: &mut VecMemory, flags: u64) -> S {
    let mut b = SnpLaunchFinishBuffer::new_zeroed();
    b.gctx_paddr = U64::new(GCTX);
    b.id_block_paddr = U64::new(ID_BLOCK);
    b.id_auth_paddr = U64::new(ID_AUTH);
    b.flags = U64::new(flags);
    b.host_data = [7; 32];
    fw.call(SnpCommand::SnpLaunchFinish, &mut b, mem)
}

fn snp_platform(seed: u8) -> (Firmware, VecMemory) {
    let mut fw = common::firmware(seed);
    let mut mem = common::memory();
    snp::snp_init(&mut fw, &mut mem);
    (fw, mem)
}

/// A guest up to LAUNCH (activated) with `policy`.
fn launching(seed: u8, policy: u64) -> (Firmware, VecMemory) {
    let mut fw = common::firmware(seed);
    let mut mem = common::memory();
    snp::launching(&mut fw, &mut mem, GCTX, policy, ASID);
    (fw, mem)
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plat {
    Uninit,
    Init,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guest {
    /// GCTX is not a guest context page.
    None,
    Init,
    /// LAUNCH and activated.
    Launch,
    Running,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Hypervisor,
    Firmware,
    /// PRE_GUEST of this guest's ASID.
    PreGuest,
    /// PRE_GUEST of another ASID.
    PreGuestOther,
    /// GUEST_VALID of this guest's ASID.
    GuestValid,
    /// Another guest context.
    Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    GctxCreate,
    LaunchStart,
    Activate,
    LaunchUpdate,
    LaunchFinish,
    GuestStatus,
    DbgDecrypt,
    Decommission,
    PageReclaim,
    GuestRequest,
    Init,
    PlatformStatus,
    Config,
    Commit,
}

const CMDS: [Cmd; 14] = [
    Cmd::GctxCreate,
    Cmd::LaunchStart,
    Cmd::Activate,
    Cmd::LaunchUpdate,
    Cmd::LaunchFinish,
    Cmd::GuestStatus,
    Cmd::DbgDecrypt,
    Cmd::Decommission,
    Cmd::PageReclaim,
    Cmd::GuestRequest,
    Cmd::Init,
    Cmd::PlatformStatus,
    Cmd::Config,
    Cmd::Commit,
];
const GUESTS: [Guest; 4] = [Guest::None, Guest::Init, Guest::Launch, Guest::Running];
const PAGES: [Page; 6] = [
    Page::Hypervisor,
    Page::Firmware,
    Page::PreGuest,
    Page::PreGuestOther,
    Page::GuestValid,
    Page::Context,
];

/// The expected status of `cmd` (its page operand is PAGE, its guest GCTX).
fn expected(cmd: Cmd, p: Plat, g: Guest, page: Page) -> S {
    use Cmd as C;
    use Guest as G;
    use Page as P;
    if p == Plat::Uninit {
        return match cmd {
            C::Init | C::PlatformStatus => S::SUCCESS,
            _ => S::INVALID_PLATFORM_STATE,
        };
    }
    match (cmd, g, page) {
        (C::Init, _, _) => S::INVALID_PLATFORM_STATE,
        (C::PlatformStatus | C::Config | C::Commit, _, _) => S::SUCCESS,
        (C::GctxCreate, _, P::Firmware) => S::SUCCESS,
        (C::GctxCreate, _, _) => S::INVALID_PAGE_STATE,
        (C::PageReclaim, _, P::Context) => S::INVALID_PAGE_STATE,
        (C::PageReclaim, _, _) => S::SUCCESS,
        (_, G::None, _) => S::INVALID_GUEST,
        (C::LaunchStart, G::Init, _) => S::SUCCESS,
        (C::LaunchStart, _, _) => S::INVALID_GUEST_STATE,
        (C::Activate, G::Init, _) => S::INVALID_GUEST_STATE,
        (C::Activate, _, _) => S::ACTIVE,
        (C::LaunchUpdate, G::Launch, P::PreGuest) => S::SUCCESS,
        (C::LaunchUpdate, G::Launch, P::PreGuestOther) => S::INVALID_PAGE_OWNER,
        (C::LaunchUpdate, G::Launch, _) => S::INVALID_PAGE_STATE,
        (C::LaunchUpdate, _, _) => S::INVALID_GUEST_STATE,
        (C::LaunchFinish, G::Launch, _) => S::SUCCESS,
        (C::LaunchFinish, _, _) => S::INVALID_GUEST_STATE,
        (C::GuestStatus | C::Decommission, _, _) => S::SUCCESS,
        // The policy (without DEBUG) is set by LAUNCH_START.
        (C::DbgDecrypt, G::Init, _) => S::POLICY_FAILURE,
        (C::DbgDecrypt, _, P::PreGuest | P::GuestValid) => S::SUCCESS,
        (C::DbgDecrypt, _, P::PreGuestOther) => S::INVALID_PAGE_OWNER,
        (C::DbgDecrypt, _, _) => S::INVALID_PAGE_STATE,
        (C::GuestRequest, G::Running, P::Firmware) => S::INVALID_PARAM, // empty request page
        (C::GuestRequest, G::Running, _) => S::INVALID_PAGE_STATE,
        (C::GuestRequest, _, _) => S::INVALID_GUEST_STATE,
    }
}

fn setup(p: Plat, g: Guest, page: Page, seed: u8) -> (Firmware, VecMemory) {
    let mut fw = common::firmware(seed);
    let mut mem = common::memory();
    if p == Plat::Uninit {
        return (fw, mem);
    }
    assert_eq!(
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
        S::SUCCESS
    );
    if g != Guest::None {
        snp::firmware_page(&mut fw, GCTX);
        assert_eq!(snp::gctx_create(&mut fw, &mut mem, GCTX), S::SUCCESS);
    }
    if matches!(g, Guest::Launch | Guest::Running) {
        assert_eq!(
            snp::launch_start(&mut fw, &mut mem, GCTX, POLICY),
            S::SUCCESS
        );
        assert_eq!(snp::activate(&mut fw, &mut mem, GCTX, ASID), S::SUCCESS);
    }
    if g == Guest::Running {
        assert_eq!(finish(&mut fw, &mut mem, 0), S::SUCCESS);
    }
    match page {
        Page::Hypervisor => {}
        Page::Firmware => snp::firmware_page(&mut fw, PAGE),
        Page::PreGuest => snp::guest_page(&mut fw, PAGE, PAGE, ASID, true),
        Page::PreGuestOther => snp::guest_page(&mut fw, PAGE, PAGE, ASID + 1, true),
        Page::GuestValid => {
            snp::guest_page(&mut fw, PAGE, PAGE, ASID, false);
            assert_eq!(
                fw.pvalidate(ASID, PAGE, PageSize::Size4K, true),
                Ok(PvalidateOutcome::Changed)
            );
        }
        Page::Context => {
            snp::firmware_page(&mut fw, PAGE);
            assert_eq!(snp::gctx_create(&mut fw, &mut mem, PAGE), S::SUCCESS);
        }
    }
    (fw, mem)
}

fn run(cmd: Cmd, fw: &mut Firmware, mem: &mut VecMemory) -> S {
    match cmd {
        Cmd::GctxCreate => snp::gctx_create(fw, mem, PAGE),
        Cmd::LaunchStart => snp::launch_start(fw, mem, GCTX, POLICY),
        Cmd::Activate => snp::activate(fw, mem, GCTX, ASID),
        Cmd::LaunchUpdate => snp::launch_update(fw, mem, GCTX, PAGE, PageType::Normal),
        Cmd::LaunchFinish => finish(fw, mem, 0),
        Cmd::GuestStatus => {
            let mut b = SnpGuestStatusBuffer {
                gctx_paddr: U64::new(GCTX),
                status_paddr: U64::new(OUT),
            };
            fw.call(SnpCommand::SnpGuestStatus, &mut b, mem)
        }
        Cmd::DbgDecrypt => {
            let mut b = SnpDbgBuffer {
                gctx_paddr: U64::new(GCTX),
                src_paddr: U64::new(PAGE),
                dst_paddr: U64::new(OUT),
            };
            fw.call(SnpCommand::SnpDbgDecrypt, &mut b, mem)
        }
        Cmd::Decommission => {
            let mut b = SnpPaddrBuffer {
                paddr: U64::new(GCTX),
            };
            fw.call(SnpCommand::SnpDecommission, &mut b, mem)
        }
        Cmd::PageReclaim => {
            let mut b = SnpPageReclaimBuffer {
                paddr: U64::new(PAGE),
            };
            fw.call(SnpCommand::SnpPageReclaim, &mut b, mem)
        }
        Cmd::GuestRequest => {
            let mut b = SnpGuestRequestBuffer {
                gctx_paddr: U64::new(GCTX),
                req_paddr: U64::new(REQ),
                rsp_paddr: U64::new(PAGE),
            };
            fw.call(SnpCommand::SnpGuestRequest, &mut b, mem)
        }
        Cmd::Init => fw.execute(SnpCommand::SnpInit.id(), &mut [], mem),
        Cmd::PlatformStatus => {
            let mut b = SnpPlatformStatusBuffer {
                status_paddr: U64::new(OUT),
            };
            fw.call(SnpCommand::SnpPlatformStatus, &mut b, mem)
        }
        Cmd::Config => {
            let mut b = SnpConfigBuffer::new_zeroed();
            b.reported_tcb = U64::new(fw.snp_platform_view().current_tcb.raw());
            fw.call(SnpCommand::SnpConfig, &mut b, mem)
        }
        Cmd::Commit => {
            let mut b = SnpCommitBuffer {
                length: U32::new(4),
            };
            fw.call(SnpCommand::SnpCommit, &mut b, mem)
        }
    }
}

#[test]
fn snp_command_state_table() {
    let mut cells = 0;
    let mut failures = Vec::new();
    for cmd in CMDS {
        for (p, guests, pages) in [
            (Plat::Uninit, &[Guest::None][..], &[Page::Hypervisor][..]),
            (Plat::Init, &GUESTS[..], &PAGES[..]),
        ] {
            for &g in guests {
                for &page in pages {
                    let (mut fw, mut mem) = setup(p, g, page, 1);
                    let got = run(cmd, &mut fw, &mut mem);
                    let want = expected(cmd, p, g, page);
                    cells += 1;
                    if got != want {
                        failures.push(format!(
                            "{cmd:?} {p:?} {g:?} {page:?}: got {got}, want {want}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cells, CMDS.len() * (1 + GUESTS.len() * PAGES.len()));
}

// ---------------------------------------------------------------------------
// Platform
// ---------------------------------------------------------------------------

#[test]
fn snp_init_needs_legacy_uninit_and_shutdown_clears_everything() {
    let mut fw = common::firmware(2);
    let mut mem = common::memory();
    common::init(&mut fw, &mut mem, false);
    assert_eq!(
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
        S::INVALID_PLATFORM_STATE
    );
    assert_eq!(
        fw.rmp_update(PAGE, &RmpUpdate::default()),
        Err(RmpError::FailInput)
    );
    let (mut fw, mut mem) = launching(3, POLICY);
    assert_eq!(fw.snp_platform_state(), SnpPlatformState::Init);
    let mut st = SnpPlatformStatusBuffer {
        status_paddr: U64::new(OUT),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpPlatformStatus, &mut st, &mut mem),
        S::SUCCESS
    );
    let status = SnpPlatformStatus::read_from_bytes(&mem.read_vec(OUT, 0x20).unwrap()).unwrap();
    assert_eq!(
        (status.state, status.is_rmp_init, status.guest_count.get()),
        (1, 1, 1)
    );
    assert_eq!(status.current_tcb.get(), status.reported_tcb.get());
    // SNP_CONFIG: mask bits and a lower reported TCB; a higher one is refused.
    let current = fw.snp_platform_view().current_tcb;
    let mut cfg = SnpConfigBuffer::new_zeroed();
    cfg.reported_tcb = U64::new(current.raw() + 1);
    assert_eq!(
        fw.call(SnpCommand::SnpConfig, &mut cfg, &mut mem),
        S::INVALID_CONFIG
    );
    cfg.reported_tcb = U64::new(current.raw() - 1);
    cfg.flags = U32::new(3);
    assert_eq!(
        fw.call(SnpCommand::SnpConfig, &mut cfg, &mut mem),
        S::SUCCESS
    );
    assert_eq!(
        fw.call(SnpCommand::SnpPlatformStatus, &mut st, &mut mem),
        S::SUCCESS
    );
    let status = SnpPlatformStatus::read_from_bytes(&mem.read_vec(OUT, 0x20).unwrap()).unwrap();
    assert_eq!(status.flags.get() & 3, 3);
    assert_eq!(status.reported_tcb.get(), current.raw() - 1);
    cfg.flags = U32::new(4);
    assert_eq!(
        fw.call(SnpCommand::SnpConfig, &mut cfg, &mut mem),
        S::INVALID_PARAM
    );
    assert_eq!(
        fw.execute(SnpCommand::SnpShutdown.id(), &mut [], &mut mem),
        S::SUCCESS
    );
    assert_eq!(fw.snp_platform_state(), SnpPlatformState::Uninit);
    assert!(fw.snp_guest(GCTX).is_none());
    assert_eq!(fw.rmp_page_state(GCTX), PageState::Hypervisor);
}

// ---------------------------------------------------------------------------
// Launch details
// ---------------------------------------------------------------------------

#[test]
fn launch_start_policy_checks() {
    for (policy, want) in [
        (POLICY, S::SUCCESS),
        (POLICY & !SnpPolicy::RESERVED_MBO, S::POLICY_FAILURE),
        (POLICY & !SnpPolicy::SMT, S::POLICY_FAILURE),
        (POLICY | (1 << 40), S::POLICY_FAILURE),
        (POLICY | (2 << 8), S::POLICY_FAILURE), // ABI 2.0 > 1.55
        (POLICY | 0x137, S::SUCCESS),           // ABI 1.55
        (POLICY | 0x138, S::POLICY_FAILURE),    // ABI 1.56
        (POLICY | SnpPolicy::SINGLE_SOCKET, S::SUCCESS),
    ] {
        let (mut fw, mut mem) = snp_platform(4);
        snp::firmware_page(&mut fw, GCTX);
        assert_eq!(snp::gctx_create(&mut fw, &mut mem, GCTX), S::SUCCESS);
        assert_eq!(
            snp::launch_start(&mut fw, &mut mem, GCTX, policy),
            want,
            "{policy:#x}"
        );
        let mut b = SnpLaunchStartBuffer::new_zeroed();
        b.gctx_paddr = U64::new(GCTX);
        b.policy = SnpPolicy::from_raw(POLICY);
        b.flags = U32::new(1); // MA_EN without MIGRATE_MA
        if want != S::SUCCESS {
            assert_eq!(
                fw.call(SnpCommand::SnpLaunchStart, &mut b, &mut mem),
                S::POLICY_FAILURE
            );
        }
    }
}

#[test]
fn debug_needs_the_debug_policy_bit() {
    for (policy, want) in [
        (POLICY, S::SUCCESS),
        (SnpPolicy::DEFAULT_RAW, S::POLICY_FAILURE),
    ] {
        let (mut fw, mut mem) = launching(5, policy);
        let plain: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        mem.write(PAGE, &plain).unwrap();
        snp::guest_page(&mut fw, PAGE, 0x1000, ASID, true);
        assert_eq!(
            snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Normal),
            S::SUCCESS
        );
        assert_ne!(
            mem.read_vec(PAGE, 4096).unwrap(),
            plain,
            "encrypted in place"
        );
        let mut b = SnpDbgBuffer {
            gctx_paddr: U64::new(GCTX),
            src_paddr: U64::new(PAGE),
            dst_paddr: U64::new(OUT),
        };
        assert_eq!(fw.call(SnpCommand::SnpDbgDecrypt, &mut b, &mut mem), want);
        if want == S::SUCCESS {
            assert_eq!(mem.read_vec(OUT, 4096).unwrap(), plain);
            // And back: DBG_ENCRYPT into the guest page.
            let mut e = SnpDbgBuffer {
                gctx_paddr: U64::new(GCTX),
                src_paddr: U64::new(OUT),
                dst_paddr: U64::new(PAGE),
            };
            let before = mem.read_vec(PAGE, 4096).unwrap();
            assert_eq!(
                fw.call(SnpCommand::SnpDbgEncrypt, &mut e, &mut mem),
                S::SUCCESS
            );
            assert_eq!(mem.read_vec(PAGE, 4096).unwrap(), before);
        } else {
            assert_eq!(mem.read_vec(OUT, 4096).unwrap(), vec![0u8; 4096]);
            let mut e = SnpDbgBuffer {
                gctx_paddr: U64::new(GCTX),
                src_paddr: U64::new(OUT),
                dst_paddr: U64::new(PAGE),
            };
            assert_eq!(
                fw.call(SnpCommand::SnpDbgEncrypt, &mut e, &mut mem),
                S::POLICY_FAILURE
            );
        }
    }
}

#[test]
fn secrets_page_and_pvalidate_after_launch() {
    let (mut fw, mut mem) = launching(6, POLICY);
    snp::guest_page(&mut fw, PAGE, 0x5000, ASID, true);
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Secrets),
        S::SUCCESS
    );
    assert_eq!(fw.rmp_page_state(PAGE), PageState::GuestValid);
    // Host view is ciphertext; DBG_DECRYPT shows the page.
    let mut b = SnpDbgBuffer {
        gctx_paddr: U64::new(GCTX),
        src_paddr: U64::new(PAGE),
        dst_paddr: U64::new(OUT),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpDbgDecrypt, &mut b, &mut mem),
        S::SUCCESS
    );
    let page = SecretsPage::read_from_bytes(&mem.read_vec(OUT, 4096).unwrap()).unwrap();
    assert_eq!(page.version.get(), 3);
    assert_eq!(page.fms.get(), fw.snp_platform_view().fms);
    assert_eq!(page.tsc_factor.get(), 200);
    let guest = fw.snp_guest(GCTX).unwrap();
    assert_eq!(page.vmpck, guest.vmpck.0);
    assert_ne!(page.vmpck[0], [0; 32]);
    assert!(!format!("{guest:?}").contains("vmpck"));
    // The pages PVALIDATEd by the launch answer NOUPDATE; RMPUPDATE of a
    // launched page clears validated.
    assert_eq!(
        fw.pvalidate(ASID, 0x5000, PageSize::Size4K, true),
        Ok(PvalidateOutcome::NoUpdate)
    );
    snp::guest_page(&mut fw, PAGE, 0x5000, ASID, false);
    assert_eq!(fw.rmp_page_state(PAGE), PageState::GuestInvalid);
    // A launched page cannot be launched again.
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Normal),
        S::INVALID_PAGE_STATE
    );
    // GCTX pages are immutable to the host.
    assert_eq!(
        fw.rmp_update(GCTX, &RmpUpdate::default()),
        Err(RmpError::FailPermission)
    );
}

fn cpuid_table(entries: &[CpuidEntry]) -> Vec<u8> {
    let mut t = CpuidTable::new_zeroed();
    t.count = U32::new(entries.len() as u32);
    t.entries[..entries.len()].copy_from_slice(entries);
    let mut page = vec![0u8; 4096];
    page[..CPUID_TABLE_LEN].copy_from_slice(t.as_bytes());
    page
}

#[test]
fn cpuid_page_is_corrected_and_reported_back() {
    let (mut fw, mut mem) = launching(7, POLICY);
    let bad = CpuidEntry {
        eax_in: U32::new(0x8000_001F),
        ebx: U32::new(0x4000 | 0x2F),
        ..CpuidEntry::default()
    };
    mem.write(PAGE, &cpuid_table(&[bad])).unwrap();
    snp::guest_page(&mut fw, PAGE, 0x6000, ASID, true);
    let ld_before = fw.snp_guest(GCTX).unwrap().ld;
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Cpuid),
        S::INVALID_PARAM
    );
    let back = mem.read_vec(PAGE, 4096).unwrap();
    let t = CpuidTable::read_from_bytes(&back[..CPUID_TABLE_LEN]).unwrap();
    assert_eq!(
        t.entries[0].ebx.get(),
        0x4000 | 0x33,
        "corrected in plaintext"
    );
    assert_eq!(
        fw.snp_guest(GCTX).unwrap().ld,
        ld_before,
        "nothing measured"
    );
    assert_eq!(fw.rmp_page_state(PAGE), PageState::PreGuest);
    // The corrected table is accepted.
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Cpuid),
        S::SUCCESS
    );
}

/// [`launching`] on a firmware emulating `product`.
fn launching_on(product: Product, seed: u8, policy: u64) -> (Firmware, VecMemory) {
    let mut fw = sevkit_testkit::firmware_with(
        seed,
        FirmwareConfig {
            product,
            ..FirmwareConfig::default()
        },
    );
    let mut mem = common::memory();
    snp::launching(&mut fw, &mut mem, GCTX, policy, ASID);
    (fw, mem)
}

/// The CPUID entries of a Genoa-class guest (EPYC-Genoa's signature and
/// features: AVX-512, LA57, AVX512_BF16, the AVX-512 XSAVE components),
/// and what the Milan firmware corrects them to.
fn genoa_class_entries() -> (Vec<CpuidEntry>, Vec<CpuidEntry>) {
    const GENOA_FMS: u32 = 0x00A1_0F11;
    const MILAN_FMS: u32 = 0x00A0_0F11;
    const SMEP: u32 = 1 << 7;
    const AVX512: u32 = 0xD023_0000;
    const PKU: u32 = 1 << 3;
    const LA57: u32 = 1 << 16;
    const FSRM: u32 = 1 << 4;
    const HYPERVISOR: u32 = 1 << 31;
    const SSE3: u32 = 1;
    let e = CpuidEntry::new;
    let with_xcr0 = |mut entry: CpuidEntry| {
        entry.xcr0_in = U64::new(1);
        entry
    };
    let genoa = vec![
        e(0x0, 0, [0xD, 0x6874_7541, 0x444D_4163, 0x6974_6E65]),
        e(0x1, 0, [GENOA_FMS, 0x800, SSE3 | HYPERVISOR, 0x078B_FBFF]),
        e(0x7, 0, [1, SMEP | AVX512, PKU | LA57, FSRM]),
        e(0x7, 1, [1 << 5, 0, 0, 0]),
        with_xcr0(e(0xD, 0, [0x2E7, 0x240, 0x988, 0])),
        e(0xD, 5, [0x40, 0x340, 0, 0]),
        e(0xD, 6, [0x200, 0x380, 0, 0]),
        e(0xD, 7, [0x400, 0x580, 0, 0]),
        e(0xD, 9, [0x8, 0x980, 0, 0]),
        e(0x4000_0000, 0, [0x4000_0001, 1, 2, 3]),
        e(0x8000_0008, 0, [0x3928, 1 << 12, 0, 0]),
        e(0x8000_001F, 0, [0x1A, 0x40 | 0x33, 0, 0]),
    ];
    let mut milan = genoa.clone();
    milan[1].eax = U32::new(MILAN_FMS);
    milan[2] = e(0x7, 0, [0, SMEP, PKU, FSRM]);
    milan[3] = e(0x7, 1, [0; 4]);
    milan[4].eax = U32::new(0x207);
    for zeroed in &mut milan[5..8] {
        *zeroed = e(zeroed.eax_in.get(), zeroed.ecx_in.get(), [0; 4]);
    }
    milan[10].eax = U32::new(0x3028);
    (genoa, milan)
}

#[test]
fn a_genoa_class_cpuid_page_is_refused_on_milan_and_corrected() {
    let (genoa, milan) = genoa_class_entries();
    // Genoa accepts the page as it is.
    let (mut fw, mut mem) = launching_on(Product::Genoa, 9, POLICY);
    mem.write(PAGE, &cpuid_table(&genoa)).unwrap();
    snp::guest_page(&mut fw, PAGE, 0x6000, ASID, true);
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Cpuid),
        S::SUCCESS
    );

    // Milan refuses it and writes back the corrected table in plaintext.
    let (mut fw, mut mem) = launching_on(Product::Milan, 9, POLICY);
    mem.write(PAGE, &cpuid_table(&genoa)).unwrap();
    snp::guest_page(&mut fw, PAGE, 0x6000, ASID, true);
    let ld_before = fw.snp_guest(GCTX).unwrap().ld;
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Cpuid),
        S::INVALID_PARAM
    );
    let back = mem.read_vec(PAGE, 4096).unwrap();
    let t = CpuidTable::read_from_bytes(&back[..CPUID_TABLE_LEN]).unwrap();
    assert_eq!(t.count.get() as usize, milan.len());
    for (got, want) in t.entries.iter().zip(&milan) {
        assert_eq!(
            got,
            want,
            "leaf {:#x}.{}",
            want.eax_in.get(),
            want.ecx_in.get()
        );
    }
    assert_eq!(back, cpuid_table(&milan), "the whole page, in plaintext");
    assert_eq!(fw.snp_guest(GCTX).unwrap().ld, ld_before);
    assert_eq!(fw.rmp_page_state(PAGE), PageState::PreGuest);
    // The corrected table is accepted.
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Cpuid),
        S::SUCCESS
    );
    assert_ne!(fw.snp_guest(GCTX).unwrap().ld, ld_before);
}

type Tamper = fn(&mut IdBlock, &mut IdAuth);

struct IdKeys {
    id: P384SigningKey,
    author: P384SigningKey,
}

fn id_blobs(keys: &IdKeys, ld: SnpLaunchDigest, policy: u64, author: bool) -> (IdBlock, IdAuth) {
    let mut block = IdBlock::new_zeroed();
    block.ld = ld;
    block.family_id = [1; 16];
    block.image_id = [2; 16];
    block.version = U32::new(1);
    block.guest_svn = U32::new(9);
    block.policy = SnpPolicy::from_raw(policy);
    let mut auth = IdAuth::new_zeroed();
    auth.id_key_algo = U32::new(ID_AUTH_ALGO_ECDSA_P384_SHA384);
    auth.id_key = keys.id.public_key().to_amd();
    auth.id_block_sig = keys.id.sign_sha384(block.as_bytes()).unwrap();
    if author {
        auth.auth_key_algo = U32::new(ID_AUTH_ALGO_ECDSA_P384_SHA384);
        auth.author_key = keys.author.public_key().to_amd();
        auth.id_key_sig = keys.author.sign_sha384(auth.id_key.as_bytes()).unwrap();
    }
    (block, auth)
}

#[test]
fn launch_finish_checks_the_id_block_and_auth() {
    let keys = IdKeys {
        id: P384SigningKey::generate(),
        author: P384SigningKey::generate(),
    };
    let both = SNP_LAUNCH_FINISH_ID_BLOCK_EN | SNP_LAUNCH_FINISH_AUTH_KEY_EN;
    let cases: [(&str, Tamper, u64, S); 8] = [
        ("valid with author", |_, _| {}, both, S::SUCCESS),
        (
            "valid without author",
            |_, _| {},
            SNP_LAUNCH_FINISH_ID_BLOCK_EN,
            S::SUCCESS,
        ),
        ("wrong ld", |b, _| b.ld[0] ^= 1, both, S::BAD_MEASUREMENT),
        (
            "wrong policy",
            |b, _| b.policy = SnpPolicy::from_raw(POLICY | 1),
            both,
            S::POLICY_FAILURE,
        ),
        (
            "bad algo",
            |_, a| a.id_key_algo = U32::new(2),
            both,
            S::INVALID_PARAM,
        ),
        (
            "bad id sig",
            |_, a| a.id_block_sig.r[0] ^= 1,
            both,
            S::BAD_SIGNATURE,
        ),
        (
            "bad author sig",
            |_, a| a.id_key_sig.r[0] ^= 1,
            both,
            S::BAD_SIGNATURE,
        ),
        (
            "author without id block",
            |_, _| {},
            SNP_LAUNCH_FINISH_AUTH_KEY_EN,
            S::INVALID_PARAM,
        ),
    ];
    for (what, tamper, flags, want) in cases {
        let (mut fw, mut mem) = launching(8, POLICY);
        let ld = fw.snp_guest(GCTX).unwrap().ld;
        let (mut block, mut auth) = id_blobs(&keys, ld, POLICY, true);
        tamper(&mut block, &mut auth);
        mem.write(ID_BLOCK, block.as_bytes()).unwrap();
        mem.write(ID_AUTH, auth.as_bytes()).unwrap();
        assert_eq!(finish(&mut fw, &mut mem, flags), want, "{what}");
        let g = fw.snp_guest(GCTX).unwrap();
        if want == S::SUCCESS {
            assert_eq!(g.state, SnpGuestState::Running);
            assert_eq!((g.id_block.family_id, g.id_block.guest_svn), ([1; 16], 9));
            let id_digest: [u8; 48] = Sha384::digest(auth.id_key.as_bytes()).into();
            assert_eq!(g.id_key_digest, id_digest);
            let author_en = flags & SNP_LAUNCH_FINISH_AUTH_KEY_EN != 0;
            assert_eq!(g.author_key_en, author_en);
            assert_eq!(g.author_key_digest != [0; 48], author_en);
            assert_eq!(g.host_data, [7; 32]);
            let mut st = SnpGuestStatusBuffer {
                gctx_paddr: U64::new(GCTX),
                status_paddr: U64::new(OUT),
            };
            assert_eq!(
                fw.call(SnpCommand::SnpGuestStatus, &mut st, &mut mem),
                S::SUCCESS
            );
            let s = SnpGuestStatus::read_from_bytes(&mem.read_vec(OUT, 0x20).unwrap()).unwrap();
            assert_eq!((s.policy.raw(), s.asid.get(), s.state), (POLICY, ASID, 2));
        } else {
            assert_eq!(g.state, SnpGuestState::Launch, "{what}");
        }
    }
}

/// Every SNP command id on pseudo-random buffers (lengths 0..0x48, address
/// fields pointing at interesting pages or anywhere) never panics, on a
/// platform with a launching guest and pages in every RMP state.
#[test]
fn snp_commands_on_random_buffers_never_panic() {
    use sev_abi::commands::SnpCommand as C;
    let (mut fw, mut mem) = launching(9, POLICY);
    snp::guest_page(&mut fw, PAGE, PAGE, ASID, true);
    snp::firmware_page(&mut fw, PAGE + 0x1000);
    let interesting = [GCTX, PAGE, PAGE + 0x1000, OUT, 0, !0xFFF_u64, 0x1_0000_0000];
    let mut x: u64 = 0x1234_5678_9ABC_DEF0;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..4000 {
        let cmd = C::ALL[(next() % C::ALL.len() as u64) as usize];
        let len = (next() % 0x48) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        for off in (0..len.saturating_sub(7)).step_by(8) {
            if next() % 2 == 0 {
                let a = interesting[(next() % interesting.len() as u64) as usize];
                buf[off..off + 8].copy_from_slice(&a.to_le_bytes());
            }
        }
        let _ = fw.execute(cmd.id(), &mut buf, &mut mem);
        if round % 500 == 0 && fw.snp_platform_state() == SnpPlatformState::Uninit {
            assert_eq!(fw.execute(C::SnpInit.id(), &mut [], &mut mem), S::SUCCESS);
        }
    }
}

#[test]
fn snp_and_legacy_asids_do_not_collide() {
    // An SEV-ES guest on ASID 1 first: SNP_ACTIVATE of ASID 1 is refused.
    let mut fw = common::firmware(10);
    let mut mem = common::memory();
    assert_eq!(
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
        S::SUCCESS
    );
    common::init(&mut fw, &mut mem, true);
    let handle = common::launch_start_plain(&mut fw, &mut mem, 0x5); // NODBG | ES
    assert_eq!(
        common::activate(&mut fw, &mut mem, handle, ASID),
        S::SUCCESS
    );
    snp::firmware_page(&mut fw, GCTX);
    assert_eq!(snp::gctx_create(&mut fw, &mut mem, GCTX), S::SUCCESS);
    assert_eq!(
        snp::launch_start(&mut fw, &mut mem, GCTX, POLICY),
        S::SUCCESS
    );
    assert_eq!(snp::activate(&mut fw, &mut mem, GCTX, ASID), S::ASID_OWNED);
    // The other way round: an SNP guest on ASID 2, legacy ACTIVATE of 2.
    let mut b = SnpActivateBuffer {
        gctx_paddr: U64::new(GCTX),
        asid: U32::new(2),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpActivate, &mut b, &mut mem),
        S::SUCCESS
    );
    let other = common::launch_start_plain(&mut fw, &mut mem, 0x5);
    assert_eq!(common::activate(&mut fw, &mut mem, other, 2), S::ASID_OWNED);
}

/// SNP_GUEST_REQUEST end to end: the guest reads its VMPCK0 from the
/// secrets page, asks for a report through the firmware, and the report
/// carries the launch digest and host data.
#[test]
fn guest_request_round_trip() {
    use sev_abi::guest_msg::KeySelect;
    let (mut fw, mut mem) = launching(11, POLICY);
    snp::guest_page(&mut fw, PAGE, 0x5000, ASID, true);
    assert_eq!(
        snp::launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Secrets),
        S::SUCCESS
    );
    assert_eq!(finish(&mut fw, &mut mem, 0), S::SUCCESS);
    let mut b = SnpDbgBuffer {
        gctx_paddr: U64::new(GCTX),
        src_paddr: U64::new(PAGE),
        dst_paddr: U64::new(OUT),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpDbgDecrypt, &mut b, &mut mem),
        S::SUCCESS
    );
    let secrets = SecretsPage::read_from_bytes(&mem.read_vec(OUT, 4096).unwrap()).unwrap();
    let mut channel = sev_guest::GuestChannel::from_secrets_page(&secrets, 0).unwrap();
    let request = channel
        .request_report([0x42; 64], 0, KeySelect::Vcek)
        .unwrap();
    mem.write(REQ, &request).unwrap();
    let rsp = PAGE + 0x1000;
    snp::firmware_page(&mut fw, rsp);
    let mut g = SnpGuestRequestBuffer {
        gctx_paddr: U64::new(GCTX),
        req_paddr: U64::new(REQ),
        rsp_paddr: U64::new(rsp),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpGuestRequest, &mut g, &mut mem),
        S::SUCCESS
    );
    let report = channel
        .open_report_response(&mem.read_vec(rsp, 4096).unwrap())
        .unwrap();
    let guest = fw.snp_guest(GCTX).unwrap();
    assert_eq!(report.measurement, guest.ld);
    assert_eq!(report.host_data, [7; 32]);
    assert_eq!(report.report_data, [0x42; 64]);
    // The response page must be firmware-owned.
    let request = channel.request_report([0; 64], 0, KeySelect::Vcek).unwrap();
    mem.write(REQ, &request).unwrap();
    g.rsp_paddr = U64::new(OUT);
    assert_eq!(
        fw.call(SnpCommand::SnpGuestRequest, &mut g, &mut mem),
        S::INVALID_PAGE_STATE
    );
}
