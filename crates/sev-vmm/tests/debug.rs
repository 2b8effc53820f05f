//! Encrypted-memory debug access against real guests launched on the
//! in-process software AMD-SP: legacy SEV (DBG_DECRYPT / DBG_ENCRYPT) and
//! SEV-SNP (SNP_DBG_DECRYPT / SNP_DBG_ENCRYPT), guest page-table walks with
//! the C-bit, and HMP's `xp` / `x` over encrypted memory.

use sev_abi::host_ops::RMP_ASSIGNED;
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_abi::status::FirmwareStatus;
use sev_firmware::SystemMemory;
use sev_sp::{AmdSp, SpError};
use sev_vmm::debug::{
    read_virtual, translate, Access, DebugError, EncryptedDebug, MemoryDebugOps, PageWalk,
    PagingLevel, PolicyBit,
};
use sev_vmm::host::Host;
use sev_vmm::launch::UpdatePageSize;
use sev_vmm::machine::demo_image::demo_image;
use sev_vmm::machine::memory::host_area;
use sev_vmm::monitor::hmp::{hmp_x, hmp_xp};
use sev_vmm::plan::{MachinePlan, StartedLaunch};
use sev_vmm::FirmwareGuest;
use sevkit_testkit::{firmware, launch};

/// The two launched pages (same plaintext at both).
const P1: u64 = 0x10000;
const P2: u64 = 0x11000;
/// A page the guest shares with the host.
const SHARED: u64 = 0x30000;
/// Legacy SEV guests run on ASIDs from the firmware's minimum SEV ASID (5).
const SEV_ASID: u32 = 5;
const SNP_ASID: u32 = 1;
/// The SNP policy the firmware accepts (SMT allowed, bit 17 set) without
/// and with DEBUG.
const SNP_NODEBUG: u64 = 0x30000;
const SNP_DEBUG: u64 = SNP_NODEBUG | SnpPolicy::DEBUG;
/// C-bit position of the emulated Genoa.
const C_BIT: u8 = 51;
const C: u64 = 1 << C_BIT;

/// The launched page contents: bytes 0, 1, 2, ... 255, 0, 1, ...
fn pattern() -> Vec<u8> {
    (0..4096u32).map(|i| i as u8).collect()
}

/// A launched guest: its host (the AMD-SP and guest memory) and the
/// firmware's view of it.
struct Vm {
    host: Host,
    guest: FirmwareGuest,
}

impl Vm {
    /// The machine: the built-in demo image, 64 MiB of RAM.
    fn plan(guest: sev_vmm::plan::PlannedGuest) -> MachinePlan {
        MachinePlan::for_image(
            demo_image(),
            64 << 20,
            1,
            launch::CPU_MODEL,
            sev_abi::product::Product::Genoa,
            guest,
        )
        .unwrap()
    }

    /// The VMM's launch (LAUNCH_START of `policy`, ACTIVATE, the image's
    /// LAUNCH_UPDATE_DATA), P1 and P2 LAUNCH_UPDATE_DATA'd with [`pattern`],
    /// LAUNCH_MEASURE and LAUNCH_FINISH; a plain page at SHARED.
    fn legacy(policy: u32) -> Self {
        let plan = Self::plan(launch::sev_guest(policy));
        let host = launch::in_process_owned(firmware(0x11), launch::memory(&plan));
        let StartedLaunch::Sev(mut started) = plan.start(host).unwrap() else {
            panic!("an SEV plan started an SNP launch")
        };
        let pages = [pattern(), pattern()].concat();
        started.update_data("pattern", P1, &pages).unwrap();
        let mut launched = started.measure().unwrap().finish().unwrap();
        assert_eq!(launched.guest.asid(), SEV_ASID);
        launched
            .host
            .memory_mut()
            .host_write(SHARED, b"shared with the host")
            .unwrap();
        Self {
            host: launched.host,
            guest: launched.guest,
        }
    }

    /// The VMM's SNP launch of `policy`: P1 and P2 queued as NORMAL pages
    /// with [`pattern`] and launched (SNP_LAUNCH_UPDATE, after the image,
    /// before the metadata pages; SNP_LAUNCH_FINISH), a plain page at
    /// SHARED.
    fn snp(policy: u64) -> Self {
        let plan = Self::plan(launch::snp_guest(policy));
        let host = launch::in_process_owned(firmware(0x22), launch::memory(&plan));
        let StartedLaunch::Snp(mut started, _) = plan.start(host).unwrap() else {
            panic!("an SNP plan started an SEV launch")
        };
        let pages = [pattern(), pattern()].concat();
        started
            .queue_region("pattern", P1, &pages, UpdatePageSize::Small)
            .unwrap();
        let mut launched = started.finish().unwrap();
        assert_eq!(launched.guest.asid(), SNP_ASID);
        launched
            .host
            .memory_mut()
            .host_write(SHARED, b"shared with the host")
            .unwrap();
        Self {
            host: launched.host,
            guest: launched.guest,
        }
    }

    /// Gives the guest more private pages after the launch (RMP-assigned to
    /// its ASID for SNP), as page-state changes would.
    fn add_private(&mut self, gpa: u64, len: u64) {
        if self.guest.is_snp() {
            for page in (gpa..gpa + len).step_by(0x1000) {
                self.host
                    .rmp_update(page, page, SNP_ASID, RMP_ASSIGNED)
                    .unwrap();
            }
        }
        self.host.memory_mut().set_private(gpa, len, true);
    }

    fn dbg(&mut self) -> EncryptedDebug<'_> {
        let (sp, mem) = self.host.parts();
        EncryptedDebug::new(sp, mem, self.guest)
    }

    fn host(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.host.memory().host_read(gpa, &mut v).unwrap();
        v
    }

    fn bounce_pages_are_clear(&self) -> bool {
        let mut v = vec![0u8; 0x2000];
        let mem = self.host.memory();
        let at = mem.layout().host(host_area::DEBUG_BOUNCE);
        mem.system().read(at, &mut v).unwrap();
        v.iter().all(|&b| b == 0)
    }
}

/// An AMD-SP that records every command id and the firmware's answer.
struct Spy<'a> {
    inner: &'a mut dyn AmdSp,
    log: Vec<(u32, FirmwareStatus)>,
}

impl AmdSp for Spy<'_> {
    fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError> {
        let status = self.inner.execute(command, buffer)?;
        self.log.push((command, status));
        Ok(status)
    }
}

// ------------------------------------------------------------------ legacy

#[test]
fn legacy_debug_read_decrypts_what_the_host_sees_as_ciphertext() {
    let mut vm = Vm::legacy(0);
    let plain = pattern();
    let (c1, c2) = (vm.host(P1, 4096), vm.host(P2, 4096));
    assert_ne!(c1, plain, "LAUNCH_UPDATE_DATA left ciphertext");
    assert_ne!(
        c1, c2,
        "the tweak is the address: same plaintext, other ciphertext"
    );
    let mut both = vec![0u8; 0x2000];
    vm.dbg().read(P1, &mut both, Access::ByPageState).unwrap();
    assert_eq!(&both[..4096], &plain[..]);
    assert_eq!(&both[4096..], &plain[..]);
    // Private regardless of the recorded state gives the same.
    let mut one = vec![0u8; 64];
    vm.dbg().read(P2 + 64, &mut one, Access::Private).unwrap();
    assert_eq!(one, plain[64..128]);
    assert!(
        vm.bounce_pages_are_clear(),
        "no plaintext left in the host area"
    );
    assert_eq!(vm.host(P1, 4096), c1, "reads change nothing");
}

#[test]
fn legacy_nodbg_is_refused_by_the_firmware() {
    let mut vm = Vm::legacy(GuestPolicy::NODBG);
    // Tell the debug API the policy allows debugging: the refusal must come
    // from the AMD-SP, not from a check of the remembered policy.
    let lying = FirmwareGuest::Legacy {
        handle: match vm.guest {
            FirmwareGuest::Legacy { handle, .. } => handle,
            FirmwareGuest::Snp { .. } => unreachable!(),
        },
        asid: SEV_ASID,
        policy: GuestPolicy::from_raw(0),
    };
    let before = vm.host(P1, 4096);
    let (sp, mem) = vm.host.parts();
    let mut spy = Spy {
        inner: sp,
        log: Vec::new(),
    };
    let mut dbg = EncryptedDebug::new(&mut spy, mem, lying);
    let e = dbg
        .read(P1, &mut [0u8; 16], Access::ByPageState)
        .unwrap_err();
    match &e {
        DebugError::PolicyForbids {
            command,
            status,
            policy,
        } => {
            assert_eq!(*command, "DBG_DECRYPT");
            assert_eq!(*status, FirmwareStatus::POLICY_FAILURE);
            assert_eq!(*policy, PolicyBit::Nodbg);
        }
        other => panic!("{other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("NODBG (policy bit 0) is set"), "{msg}");
    assert!(msg.contains("POLICY_FAILURE (0x07)"), "{msg}");
    assert!(
        msg.contains("relaunch with policy bit 0 (NODBG) clear"),
        "{msg}"
    );
    // An aligned write goes straight to DBG_ENCRYPT: refused too.
    let e = dbg.write(P1, &[0xAA; 32], Access::Private).unwrap_err();
    assert_eq!(e.firmware_status(), Some(FirmwareStatus::POLICY_FAILURE));
    assert_eq!(
        spy.log,
        vec![
            (0x60, FirmwareStatus::POLICY_FAILURE),
            (0x61, FirmwareStatus::POLICY_FAILURE)
        ]
    );
    assert_eq!(vm.host(P1, 4096), before, "nothing was written");
    assert!(vm.bounce_pages_are_clear());
    // The HMP dump reports the refusal rather than printing ciphertext.
    let e = hmp_xp(&mut vm.dbg(), "/4x 0x10000").unwrap_err();
    assert!(matches!(e, DebugError::PolicyForbids { .. }), "{e}");
}

#[test]
fn legacy_write_round_trips_and_changes_the_ciphertext() {
    let mut vm = Vm::legacy(0);
    let before = vm.host(P1, 4096);
    let new: Vec<u8> = (0..=255u8).rev().collect();
    vm.dbg()
        .write(P1 + 0x100, &new, Access::ByPageState)
        .unwrap();
    let mut back = vec![0u8; 256];
    vm.dbg()
        .read(P1 + 0x100, &mut back, Access::ByPageState)
        .unwrap();
    assert_eq!(back, new);
    let after = vm.host(P1, 4096);
    assert_ne!(after[0x100..0x200], before[0x100..0x200], "new ciphertext");
    assert_ne!(after[0x100..0x200], new[..], "not plaintext");
    assert_eq!(
        after[..0x100],
        before[..0x100],
        "neighbouring blocks untouched"
    );
    assert_eq!(after[0x200..], before[0x200..]);
    assert!(vm.bounce_pages_are_clear());
}

#[test]
fn legacy_unaligned_access_across_a_page_boundary() {
    let mut vm = Vm::legacy(0);
    let plain = pattern();
    // Read 37 bytes starting 9 bytes before the end of P1.
    let mut buf = [0u8; 37];
    vm.dbg()
        .read(P2 - 9, &mut buf, Access::ByPageState)
        .unwrap();
    let mut want = plain[4096 - 9..].to_vec();
    want.extend_from_slice(&plain[..28]);
    assert_eq!(buf[..], want[..]);
    // Write 37 bytes there: read-modify-write of the covering blocks.
    let data: Vec<u8> = (0..37u8).map(|i| 0xC0 | i).collect();
    vm.dbg().write(P2 - 9, &data, Access::ByPageState).unwrap();
    let mut around = vec![0u8; 96];
    vm.dbg()
        .read(P2 - 48, &mut around, Access::ByPageState)
        .unwrap();
    let mut expect = plain[4096 - 48..].to_vec();
    expect.extend_from_slice(&plain[..48]);
    expect[48 - 9..48 + 28].copy_from_slice(&data);
    assert_eq!(around, expect);
    // Single bytes and odd offsets.
    vm.dbg().write(P1 + 3, &[0x5A], Access::Private).unwrap();
    let mut b = [0u8; 3];
    vm.dbg().read(P1 + 2, &mut b, Access::Private).unwrap();
    assert_eq!(b, [2, 0x5A, 4]);
}

#[test]
fn shared_pages_read_and_write_plain() {
    let mut vm = Vm::legacy(0);
    let guest = vm.guest;
    let (sp, mem) = vm.host.parts();
    let mut spy = Spy {
        inner: sp,
        log: Vec::new(),
    };
    let mut dbg = EncryptedDebug::new(&mut spy, mem, guest);
    let mut buf = [0u8; 20];
    dbg.read(SHARED, &mut buf, Access::ByPageState).unwrap();
    assert_eq!(&buf, b"shared with the host");
    dbg.write(SHARED + 7, b"WITH", Access::Shared).unwrap();
    assert!(spy.log.is_empty(), "shared pages never reach the AMD-SP");
    assert_eq!(&vm.host(SHARED, 20), b"shared WITH the host");
    // A range over a private and a shared page takes each by its state.
    vm.host
        .memory_mut()
        .host_write(P2 + 0x1000, b"plain!")
        .unwrap();
    let mut mixed = [0u8; 10];
    vm.dbg()
        .read(P2 + 0xFFC, &mut mixed, Access::ByPageState)
        .unwrap();
    assert_eq!(&mixed[..4], &pattern()[0xFFC..]);
    assert_eq!(&mixed[4..], b"plain!");
    // Forcing Private on a page that was never encrypted decrypts plaintext
    // into garbage: the access kind matters.
    let mut forced = [0u8; 20];
    vm.dbg().read(SHARED, &mut forced, Access::Private).unwrap();
    assert_ne!(&forced, b"shared WITH the host");
}

#[test]
fn legacy_errors_name_the_problem() {
    let mut vm = Vm::legacy(0);
    let mut buf = [0u8; 16];
    let e = vm
        .dbg()
        .read(64 << 20, &mut buf, Access::Private)
        .unwrap_err();
    assert!(matches!(e, DebugError::NotGuestMemory { .. }), "{e}");
    let e = vm
        .dbg()
        .read(u64::MAX - 7, &mut buf, Access::Private)
        .unwrap_err();
    assert!(matches!(e, DebugError::NotGuestMemory { .. }), "{e}");
    let ghost = FirmwareGuest::Legacy {
        handle: 999,
        asid: SEV_ASID,
        policy: GuestPolicy::from_raw(0),
    };
    let (sp, mem) = vm.host.parts();
    let e = EncryptedDebug::new(sp, mem, ghost)
        .read(P1, &mut buf, Access::Private)
        .unwrap_err();
    assert_eq!(
        e.firmware_status(),
        Some(FirmwareStatus::INVALID_GUEST),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("DBG_DECRYPT of guest address 0x10000"),
        "{e}"
    );
}

// --------------------------------------------------------------------- SNP

#[test]
fn snp_debug_read_decrypts_what_the_host_sees_as_ciphertext() {
    let mut vm = Vm::snp(SNP_DEBUG);
    let plain = pattern();
    let (c1, c2) = (vm.host(P1, 4096), vm.host(P2, 4096));
    assert_ne!(c1, plain);
    assert_ne!(c1, c2, "same plaintext at two addresses: two ciphertexts");
    let guest = vm.guest;
    let (sp, mem) = vm.host.parts();
    let mut spy = Spy {
        inner: sp,
        log: Vec::new(),
    };
    let mut dbg = EncryptedDebug::new(&mut spy, mem, guest);
    let mut both = vec![0u8; 0x2000];
    dbg.read(P1, &mut both, Access::ByPageState).unwrap();
    assert_eq!(&both[..4096], &plain[..]);
    assert_eq!(&both[4096..], &plain[..]);
    let mut few = [0u8; 5];
    dbg.read(P2 + 0x7FF, &mut few, Access::ByPageState).unwrap();
    assert_eq!(few[..], plain[0x7FF..0x804]);
    // Page-granular: one SNP_DBG_DECRYPT per page touched.
    assert_eq!(spy.log, vec![(0xB0, FirmwareStatus::SUCCESS); 3]);
    assert!(vm.bounce_pages_are_clear());
}

#[test]
fn snp_debug_clear_is_refused_by_the_firmware() {
    let mut vm = Vm::snp(SNP_NODEBUG);
    let FirmwareGuest::Snp { gctx_paddr, .. } = vm.guest else {
        unreachable!()
    };
    // Claim DEBUG is set: only the firmware can refuse.
    let lying = FirmwareGuest::Snp {
        gctx_paddr,
        asid: SNP_ASID,
        policy: SnpPolicy::from_raw(SNP_DEBUG),
    };
    assert!(lying.debug_allowed() && !vm.guest.debug_allowed());
    let before = vm.host(P1, 4096);
    let (sp, mem) = vm.host.parts();
    let mut spy = Spy {
        inner: sp,
        log: Vec::new(),
    };
    let mut dbg = EncryptedDebug::new(&mut spy, mem, lying);
    let e = dbg
        .read(P1, &mut [0u8; 8], Access::ByPageState)
        .unwrap_err();
    assert!(
        matches!(
            e,
            DebugError::PolicyForbids {
                command: "SNP_DBG_DECRYPT",
                status: FirmwareStatus::POLICY_FAILURE,
                policy: PolicyBit::Debug,
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("DEBUG (policy bit 19) is clear"), "{msg}");
    assert!(msg.contains("policy=0xb0000"), "{msg}");
    // A whole-page write goes straight to SNP_DBG_ENCRYPT: refused too.
    let e = dbg.write(P1, &[0u8; 4096], Access::Private).unwrap_err();
    assert_eq!(e.firmware_status(), Some(FirmwareStatus::POLICY_FAILURE));
    assert_eq!(
        spy.log,
        vec![
            (0xB0, FirmwareStatus::POLICY_FAILURE),
            (0xB1, FirmwareStatus::POLICY_FAILURE)
        ]
    );
    assert_eq!(vm.host(P1, 4096), before);
    assert!(vm.bounce_pages_are_clear());
}

#[test]
fn snp_writes_round_trip_partial_and_across_pages() {
    let mut vm = Vm::snp(SNP_DEBUG);
    let plain = pattern();
    let before = vm.host(P1, 0x2000);
    let data: Vec<u8> = (0..100u8).map(|i| 0x80 ^ i).collect();
    vm.dbg().write(P2 - 50, &data, Access::ByPageState).unwrap();
    let mut back = vec![0u8; 0x2000];
    vm.dbg().read(P1, &mut back, Access::ByPageState).unwrap();
    let mut want = [plain.clone(), plain.clone()].concat();
    want[0x1000 - 50..0x1000 + 50].copy_from_slice(&data);
    assert_eq!(back, want);
    let after = vm.host(P1, 0x2000);
    assert_ne!(
        after[0x1000 - 50..0x1000 + 50],
        before[0x1000 - 50..0x1000 + 50]
    );
    assert_ne!(after[0x1000 - 50..0x1000 + 50], data[..]);
    // The rest of both pages re-encrypts to the same ciphertext (same key,
    // address and plaintext).
    assert_eq!(after[..0x1000 - 64], before[..0x1000 - 64]);
    assert_eq!(after[0x1000 + 64..], before[0x1000 + 64..]);
    // A whole page.
    vm.dbg().write(P1, &[0x33; 4096], Access::Private).unwrap();
    let mut page = vec![0u8; 4096];
    vm.dbg().read(P1, &mut page, Access::Private).unwrap();
    assert!(page.iter().all(|&b| b == 0x33));
    assert!(vm.bounce_pages_are_clear());
}

#[test]
fn snp_shared_pages_are_plain_and_not_the_firmwares() {
    let mut vm = Vm::snp(SNP_DEBUG);
    let mut buf = [0u8; 20];
    vm.dbg()
        .read(SHARED, &mut buf, Access::ByPageState)
        .unwrap();
    assert_eq!(&buf, b"shared with the host");
    // The page is not assigned to the guest in the RMP: SNP_DBG_DECRYPT
    // refuses it.
    let e = vm
        .dbg()
        .read(SHARED, &mut buf, Access::Private)
        .unwrap_err();
    assert_eq!(
        e.firmware_status(),
        Some(FirmwareStatus::INVALID_PAGE_STATE),
        "{e}"
    );
    assert!(e.to_string().contains("Access::Shared"), "{e}");
    assert!(vm.bounce_pages_are_clear());
}

// -------------------------------------------------------------- page walks

/// Page tables written through the debug API, encrypted as the guest keeps
/// them:
///
/// * PML4 0x20000, PDPT 0x21000, PD 0x22000, PT 0x23000 (all private);
/// * gva 0x40_0000 -> P1 (C set), 0x40_1000 -> SHARED (C clear),
///   0x40_2000 not present (PT[2]);
/// * gva 0x60_0000: a 2 MiB page at gpa 0x20_0000 (C set);
/// * gva 0x4000_0000: a 1 GiB page at gpa 0 (C set);
/// * PML4[1] and PD[5] not present.
fn build_tables(vm: &mut Vm) -> u64 {
    vm.add_private(0x20000, 0x4000);
    vm.add_private(0x20_0000, 0x2000);
    let mut dbg = vm.dbg();
    // Empty tables first: an entry never written through the guest's key
    // decrypts to garbage, not to "not present".
    dbg.write(0x20000, &[0u8; 0x4000], Access::Private).unwrap();
    let mut put = |gpa: u64, v: u64| dbg.write(gpa, &v.to_le_bytes(), Access::Private).unwrap();
    put(0x20000, 0x21000 | C | 0x3);
    put(0x21000, 0x22000 | C | 0x3);
    put(0x21008, C | 0x83); // PDPT[1]: 1 GiB at 0
    put(0x22000 + 2 * 8, 0x23000 | C | 0x3); // PD[2]: gva 0x40_0000
    put(0x22000 + 3 * 8, 0x20_0000 | C | 0x83); // PD[3]: gva 0x60_0000, 2 MiB
    put(0x23000, P1 | C | 0x3);
    put(0x23008, SHARED | 0x3);
    dbg.write(0x20_1234, b"in a 2 MiB page", Access::Private)
        .unwrap();
    0x20000 | C // CR3, with the C-bit as SEV guests set it
}

fn walk_guest(mut vm: Vm) {
    let plain = pattern();
    let cr3 = build_tables(&mut vm);
    // The tables are ciphertext to the host.
    let pml4 = vm.host(0x20000, 8);
    assert_ne!(
        u64::from_le_bytes(pml4.try_into().unwrap()),
        0x21000 | C | 0x3
    );
    let mut dbg = vm.dbg();

    let t = translate(&mut dbg, cr3, 0x40_0010, C_BIT).unwrap();
    assert_eq!(
        (t.gpa, t.private, t.page_size, t.level),
        (P1 + 0x10, true, 0x1000, PagingLevel::Pt)
    );
    let t = translate(&mut dbg, cr3, 0x40_1FFF, C_BIT).unwrap();
    assert_eq!((t.gpa, t.private), (SHARED + 0xFFF, false));
    let t = translate(&mut dbg, cr3, 0x60_1234, C_BIT).unwrap();
    assert_eq!(
        (t.gpa, t.private, t.page_size, t.level),
        (0x20_1234, true, 2 << 20, PagingLevel::Pd)
    );
    let t = translate(&mut dbg, cr3, 0x4001_1000, C_BIT).unwrap();
    assert_eq!(
        (t.gpa, t.private, t.page_size, t.level),
        (P2, true, 1 << 30, PagingLevel::Pdpt)
    );

    // Data: private through the firmware, shared plain, and a read across
    // the boundary re-walks for the second page.
    let mut buf = [0u8; 28];
    read_virtual(&mut dbg, cr3, 0x40_0FF8, &mut buf, C_BIT).unwrap();
    assert_eq!(buf[..8], plain[0xFF8..]);
    assert_eq!(&buf[8..], b"shared with the host");
    let mut big = [0u8; 15];
    read_virtual(&mut dbg, cr3, 0x60_1234, &mut big, C_BIT).unwrap();
    assert_eq!(&big, b"in a 2 MiB page");
    let mut via_1g = [0u8; 4];
    read_virtual(&mut dbg, cr3, 0x4001_0100, &mut via_1g, C_BIT).unwrap();
    assert_eq!(via_1g, [0, 1, 2, 3]);
    // The same bytes through a walk that ignores the C-bit's meaning for
    // tables (CBit mode: CR3 and every entry have it set here).
    let w = PageWalk::new(cr3, C_BIT).tables(sev_vmm::debug::TableAccess::CBit);
    assert_eq!(w.translate(&mut dbg, 0x40_0010).unwrap().gpa, P1 + 0x10);

    // Non-present entries name their level and entry.
    let e = translate(&mut dbg, cr3, 0x40_2000, C_BIT).unwrap_err();
    assert!(
        matches!(
            e,
            DebugError::NotPresent {
                level: PagingLevel::Pt,
                index: 2,
                entry_gpa: 0x23010,
                ..
            }
        ),
        "{e}"
    );
    let e = translate(&mut dbg, cr3, 0xA0_0000, C_BIT).unwrap_err();
    assert!(
        matches!(
            e,
            DebugError::NotPresent {
                level: PagingLevel::Pd,
                index: 5,
                ..
            }
        ),
        "{e}"
    );
    let e = translate(&mut dbg, cr3, 1 << 39, C_BIT).unwrap_err();
    assert!(
        matches!(
            e,
            DebugError::NotPresent {
                level: PagingLevel::Pml4,
                index: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("PML4 entry 1"), "{e}");

    // HMP x over the same mappings.
    assert_eq!(
        hmp_x(&mut dbg, cr3, C_BIT, "/2xg 0x400ff8").unwrap(),
        // The second unit is "shared w" from the shared page.
        "0000000000400ff8: 0xfffefdfcfbfaf9f8 0x7720646572616873\n"
    );
    assert_eq!(
        hmp_x(&mut dbg, cr3, C_BIT, "/4xb 0x401ffe").unwrap(),
        "0000000000401ffe: Cannot access memory\n"
    );
}

#[test]
fn legacy_page_walks_through_encrypted_tables() {
    walk_guest(Vm::legacy(0));
}

#[test]
fn snp_page_walks_through_encrypted_tables() {
    walk_guest(Vm::snp(SNP_DEBUG));
}

#[test]
fn walks_are_refused_with_the_policy_when_debugging_is_forbidden() {
    let mut vm = Vm::snp(SNP_NODEBUG);
    let e = translate(&mut vm.dbg(), 0x20000, 0x1000, C_BIT).unwrap_err();
    assert!(
        matches!(
            e,
            DebugError::TableRead {
                level: PagingLevel::Pml4,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.firmware_status(), Some(FirmwareStatus::POLICY_FAILURE));
    assert!(!e.is_inaccessible());
}

// ---------------------------------------------------------------------- xp

/// Expected strings follow QEMU's memory_dump (monitor/hmp-cmds-target.c,
/// QEMU 2.x through 10.2): `HWADDR_FMT_plx` ("%016" PRIx64) then ':', one
/// line per 16 bytes (8 for /b), " 0x%0*x" with 2 × size digits for x,
/// "%*u" / "%*d" in 3/5/10/20 columns, "%#*o" in 3/6/11/22 columns, and
/// monitor_printc's quoted characters for c; defaults /1xw.
#[test]
fn xp_dumps_decrypted_memory_in_qemus_layout() {
    for mut vm in [Vm::legacy(0), Vm::snp(SNP_DEBUG)] {
        let mut dbg = vm.dbg();
        assert_eq!(
            hmp_xp(&mut dbg, "0x10000").unwrap(),
            "0000000000010000: 0x03020100\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/5x 0x10000").unwrap(),
            "0000000000010000: 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c\n\
             0000000000010010: 0x13121110\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/12xb 0x10ffc").unwrap(),
            "0000000000010ffc: 0xfc 0xfd 0xfe 0xff 0x00 0x01 0x02 0x03\n\
             0000000000011004: 0x04 0x05 0x06 0x07\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/2gx 0x10000+8").unwrap(),
            "0000000000010008: 0x0f0e0d0c0b0a0908 0x1716151413121110\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/3hd 0x100fe").unwrap(),
            "00000000000100fe: 65534   256   770\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/4ub 0x100fe").unwrap(),
            "00000000000100fe: 254 255   0   1\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/2ow 0x10008").unwrap(),
            "0000000000010008: 01302404410 01703406414\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/6cb 0x1005e").unwrap(),
            "000000000001005e: '^' '_' '`' 'a' 'b' 'c'\n"
        );
        // Shared memory dumps plain; holes cannot be accessed.
        assert_eq!(
            hmp_xp(&mut dbg, "/6cb 0x30000").unwrap(),
            "0000000000030000: 's' 'h' 'a' 'r' 'e' 'd'\n"
        );
        assert_eq!(
            hmp_xp(&mut dbg, "/2x 0x4000000").unwrap(),
            "0000000004000000: Cannot access memory\n"
        );
    }
}
