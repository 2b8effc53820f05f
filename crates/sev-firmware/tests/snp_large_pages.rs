//! SNP_LAUNCH_UPDATE of 2 MiB pages: the firmware measures a 2 MiB update
//! as 512 consecutive 4 KiB PAGE_INFOs (reference §2.6), hashes and
//! encrypts the pages of a large update on several threads and reuses its
//! page buffer from one NORMAL update to the next. The launch digest and
//! log must equal `sev_measure`'s independent prediction entry by entry,
//! and every page must decrypt (SNP_DBG_DECRYPT) to what the host loaded,
//! including the pages on either side of a thread split.

mod common;

use common::firmware;
use sev_abi::commands::{SnpCommand, SnpDbgBuffer, SnpLaunchUpdateBuffer};
use sev_abi::policy::SnpPolicy;
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::rmp::{PageSize, PageState, RmpUpdate};
use sev_firmware::{Firmware, SystemMemory, VecMemory};
use sev_measure::snp::SnpDigestBuilder;
use sevkit_testkit::snp::launching;
use zerocopy::little_endian::{U32, U64};
use zerocopy::FromZeros;

const OK: FirmwareStatus = FirmwareStatus::SUCCESS;
const GCTX: u64 = 0x1_0000_0000;
const ASID: u32 = 1;
const PAGE_2M: u64 = 2 << 20;
const PAGE_4K: u64 = 4096;
/// System physical base of the guest's pages (2 MiB aligned); GPA = SPA -
/// BASE.
const BASE: u64 = 0x4000_0000;
/// A hypervisor page SNP_DBG_DECRYPT writes plaintext to.
const HOST_PAGE: u64 = 0x2000_0000;

/// A launched (not finished) guest whose policy allows debugging.
fn started_guest() -> (Firmware, VecMemory) {
    let mut fw = firmware(0x2A);
    let mut mem = VecMemory::new(GCTX + PAGE_4K);
    let policy = SnpPolicy::DEFAULT_RAW | SnpPolicy::DEBUG;
    launching(&mut fw, &mut mem, GCTX, policy, ASID);
    (fw, mem)
}

/// RMPUPDATEs `[gpa, gpa + size)` to PRE_GUEST and runs SNP_LAUNCH_UPDATE
/// on it as one command.
fn update(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    gpa: u64,
    size: PageSize,
    page_type: PageType,
) -> FirmwareStatus {
    let pages = RmpUpdate {
        page_size: size,
        ..RmpUpdate::pre_guest(gpa, ASID)
    };
    fw.rmp_update(BASE + gpa, &pages).unwrap();
    let mut b = SnpLaunchUpdateBuffer::new_zeroed();
    b.gctx_paddr = U64::new(GCTX);
    b.page_paddr = U64::new(BASE + gpa);
    b.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        size == PageSize::Size2M,
        page_type.as_u8(),
        false,
    ));
    fw.call(SnpCommand::SnpLaunchUpdate, &mut b, mem)
}

/// Distinct, non-repeating contents (every page differs).
fn pattern(seed: u64, len: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// The plaintext of the guest page at `gpa`, through SNP_DBG_DECRYPT.
fn decrypt(fw: &mut Firmware, mem: &mut VecMemory, gpa: u64) -> Vec<u8> {
    let mut b = SnpDbgBuffer {
        gctx_paddr: U64::new(GCTX),
        src_paddr: U64::new(BASE + gpa),
        dst_paddr: U64::new(HOST_PAGE),
    };
    assert_eq!(fw.call(SnpCommand::SnpDbgDecrypt, &mut b, mem), OK);
    let mut page = vec![0u8; PAGE_4K as usize];
    mem.read(HOST_PAGE, &mut page).unwrap();
    page
}

#[test]
fn two_mib_updates_measure_like_4k_pages_and_encrypt_every_page() {
    let (mut fw, mut mem) = started_guest();
    // NORMAL 2M, NORMAL 4K, ZERO 2M (over host garbage), NORMAL 2M again:
    // the reused NORMAL buffer must never carry one update's pages into
    // another.
    let first = pattern(1, PAGE_2M);
    let single = pattern(2, PAGE_4K);
    let garbage = pattern(3, PAGE_2M);
    let second = pattern(4, PAGE_2M);
    let (first_gpa, single_gpa, zero_gpa, second_gpa) = (0, PAGE_2M, 2 * PAGE_2M, 3 * PAGE_2M);
    mem.write(BASE + first_gpa, &first).unwrap();
    mem.write(BASE + single_gpa, &single).unwrap();
    mem.write(BASE + zero_gpa, &garbage).unwrap();
    mem.write(BASE + second_gpa, &second).unwrap();

    let n = PageType::Normal;
    assert_eq!(
        update(&mut fw, &mut mem, first_gpa, PageSize::Size2M, n),
        OK
    );
    assert_eq!(
        update(&mut fw, &mut mem, single_gpa, PageSize::Size4K, n),
        OK
    );
    assert_eq!(
        update(
            &mut fw,
            &mut mem,
            zero_gpa,
            PageSize::Size2M,
            PageType::Zero
        ),
        OK
    );
    assert_eq!(
        update(&mut fw, &mut mem, second_gpa, PageSize::Size2M, n),
        OK
    );

    let mut expected = SnpDigestBuilder::new();
    expected.normal_pages("normal", first_gpa, &first);
    expected.normal_pages("normal", single_gpa, &single);
    expected.empty_pages("zero", PageType::Zero, zero_gpa, PAGE_2M / PAGE_4K);
    expected.normal_pages("normal", second_gpa, &second);
    let log = fw.snp_launch_log(GCTX).unwrap();
    assert_eq!(log.entries.len(), 3 * 512 + 1);
    assert_eq!(log.first_divergence(expected.log()), None);
    assert_eq!(log.final_digest(), Some(&expected.digest()[..]));

    // Every page is now guest-valid and holds ciphertext; it decrypts to
    // what was loaded (zeros for ZERO). Checked: both ends of each 2 MiB
    // page and the middle, where the firmware splits the work between
    // threads.
    let zeros = vec![0u8; PAGE_2M as usize];
    let regions: [(u64, &[u8]); 4] = [
        (first_gpa, &first),
        (single_gpa, &single),
        (zero_gpa, &zeros),
        (second_gpa, &second),
    ];
    for (gpa, plain) in regions {
        let pages = plain.len() as u64 / PAGE_4K;
        for i in [0, (pages / 2).saturating_sub(1), pages / 2, pages - 1] {
            let page_gpa = gpa + i * PAGE_4K;
            let off = (i * PAGE_4K) as usize;
            let want = &plain[off..off + PAGE_4K as usize];
            let mut stored = vec![0u8; PAGE_4K as usize];
            mem.read(BASE + page_gpa, &mut stored).unwrap();
            // (`assert!`, not `assert_eq!`: a failure should not print 8 KiB.)
            assert!(stored != want, "page at GPA {page_gpa:#x} is not encrypted");
            assert_eq!(
                fw.rmp_page_state(BASE + page_gpa),
                PageState::GuestValid,
                "page at GPA {page_gpa:#x}"
            );
            assert!(
                decrypt(&mut fw, &mut mem, page_gpa) == want,
                "page at GPA {page_gpa:#x} does not decrypt to what was loaded"
            );
        }
    }
}
