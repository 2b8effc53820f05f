//! The software AMD-SP's SEV-SNP launch against sev-measure's prediction:
//! a real OVMF image launched the way QEMU lays it out (OVMF NORMAL pages
//! ending at 4 GiB, then the SEV metadata sections in file order: SEC_MEM
//! ZERO, SECRETS, CPUID, KERNEL_HASHES ZERO; then one VMSA per vCPU at GPA
//! 0xFFFFFFFFF000), with every page RMPUPDATEd to PRE_GUEST first. The
//! firmware's launch digest equals `sev_measure::measure(Mode::Snp)` and its
//! launch log equals the predictor's entry by entry (page type, GPA,
//! contents, digest after).

use sev_abi::commands::{
    SnpActivateBuffer, SnpCommand, SnpDbgBuffer, SnpLaunchFinishBuffer, SnpLaunchStartBuffer,
    SnpLaunchUpdateBuffer, SnpPaddrBuffer,
};
use sev_abi::policy::SnpPolicy;
use sev_abi::snp_launch::{IdAuth, IdBlock, PageType};
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::cpuid::{CpuidEntry, CpuidTable, CPUID_TABLE_LEN};
use sev_firmware::snp::rmp::{PageSize, RmpUpdate};
use sev_firmware::snp::SnpGuestState;
use sev_firmware::{Firmware, FirmwareConfig, SystemMemory, VecMemory};
use sev_measure::snp::VMSA_GPA;
use sev_measure::{measure, MeasureParams, Mode, OvmfImage, SectionKind};
use sevkit_conformance::read_vector;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

const OK: FirmwareStatus = FirmwareStatus::SUCCESS;
const GCTX: u64 = 0x10_0000;
const VMSA_SPA: u64 = 0x2000_0000;
const ASID: u32 = 1;

fn snp<T>(fw: &mut Firmware, cmd: SnpCommand, buf: &mut T, mem: &mut VecMemory) -> FirmwareStatus
where
    T: FromBytes + IntoBytes + Immutable + KnownLayout,
{
    fw.execute(cmd.id(), buf.as_mut_bytes(), mem)
}

fn pre_guest(fw: &mut Firmware, spa: u64, gpa: u64) {
    fw.rmp_update(
        spa,
        &RmpUpdate {
            gpa,
            assigned: true,
            page_size: PageSize::Size4K,
            immutable: true,
            asid: ASID,
        },
    )
    .unwrap();
}

fn update(fw: &mut Firmware, mem: &mut VecMemory, spa: u64, page_type: PageType) -> FirmwareStatus {
    let mut b = SnpLaunchUpdateBuffer::new_zeroed();
    b.gctx_paddr = U64::new(GCTX);
    b.page_paddr = U64::new(spa);
    b.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        false,
        page_type.as_u8(),
        false,
    ));
    snp(fw, SnpCommand::SnpLaunchUpdate, &mut b, mem)
}

/// A valid CPUID table: the SEV leaf with this platform's C-bit.
fn cpuid_page() -> Vec<u8> {
    let mut t = CpuidTable::new_zeroed();
    t.count = U32::new(1);
    t.entries[0] = CpuidEntry {
        eax_in: U32::new(0x8000_001F),
        eax: U32::new(0x1_FFFF),
        ebx: U32::new(0x4000 | 0x33),
        ..CpuidEntry::default()
    };
    let mut page = vec![0u8; 4096];
    page[..CPUID_TABLE_LEN].copy_from_slice(t.as_bytes());
    page
}

/// SNP_INIT, a guest context at GCTX, SNP_LAUNCH_START (DEBUG allowed),
/// SNP_ACTIVATE.
fn started_guest() -> (Firmware, VecMemory) {
    let mut fw = Firmware::open(FirmwareConfig {
        seed: Some([0x51; 32]),
        ..FirmwareConfig::default()
    })
    .unwrap();
    let mut mem = VecMemory::new(1 << 32);
    assert_eq!(fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem), OK);
    fw.rmp_update(
        GCTX,
        &RmpUpdate {
            assigned: true,
            immutable: true,
            ..RmpUpdate::default()
        },
    )
    .unwrap();
    let mut gctx = SnpPaddrBuffer {
        paddr: U64::new(GCTX),
    };
    assert_eq!(
        snp(&mut fw, SnpCommand::SnpGctxCreate, &mut gctx, &mut mem),
        OK
    );
    let mut start = SnpLaunchStartBuffer::new_zeroed();
    start.gctx_paddr = U64::new(GCTX);
    start.policy = U64::new(SnpPolicy::DEFAULT_RAW | SnpPolicy::DEBUG);
    assert_eq!(
        snp(&mut fw, SnpCommand::SnpLaunchStart, &mut start, &mut mem),
        OK
    );
    let mut act = SnpActivateBuffer {
        gctx_paddr: U64::new(GCTX),
        asid: U32::new(ASID),
    };
    assert_eq!(
        snp(&mut fw, SnpCommand::SnpActivate, &mut act, &mut mem),
        OK
    );
    (fw, mem)
}

fn snp_launch(vectors_path: &str, vcpus: u32) {
    let image = read_vector(vectors_path);
    let mut params = MeasureParams::new(Mode::Snp, &image);
    params.vcpus = vcpus;
    let predicted = measure(&params).unwrap();

    let (mut fw, mut mem) = started_guest();

    // OVMF, identity-mapped below 4 GiB.
    let ovmf = OvmfImage::parse(&image).unwrap();
    let base = ovmf.gpa();
    mem.write(base, ovmf.data()).unwrap();
    for off in (0..ovmf.data().len() as u64).step_by(4096) {
        pre_guest(&mut fw, base + off, base + off);
        assert_eq!(update(&mut fw, &mut mem, base + off, PageType::Normal), OK);
    }
    // Metadata sections in file order.
    for s in &ovmf.metadata().unwrap().sections {
        let page_type = match s.kind().unwrap() {
            SectionKind::SnpSecrets => PageType::Secrets,
            SectionKind::Cpuid => PageType::Cpuid,
            _ => PageType::Zero,
        };
        for off in (0..u64::from(s.size)).step_by(4096) {
            let gpa = u64::from(s.gpa) + off;
            if page_type == PageType::Cpuid {
                mem.write(gpa, &cpuid_page()).unwrap();
            }
            pre_guest(&mut fw, gpa, gpa);
            assert_eq!(update(&mut fw, &mut mem, gpa, page_type), OK, "{s:?}");
        }
    }
    // VMSAs: at their own system pages, all mapped at VMSA_GPA.
    for i in 0..vcpus {
        let spa = VMSA_SPA + u64::from(i) * 4096;
        mem.write(spa, predicted.vmsa_page(i).unwrap()).unwrap();
        pre_guest(&mut fw, spa, VMSA_GPA);
        assert_eq!(update(&mut fw, &mut mem, spa, PageType::Vmsa), OK);
        assert!(fw.rmp_entry(spa).vmsa);
    }
    let mut finish = SnpLaunchFinishBuffer::new_zeroed();
    finish.gctx_paddr = U64::new(GCTX);
    finish.host_data = [0xAB; 32];
    assert_eq!(
        snp(&mut fw, SnpCommand::SnpLaunchFinish, &mut finish, &mut mem),
        OK
    );

    let guest = fw.snp_guest(GCTX).unwrap();
    assert_eq!(guest.state, SnpGuestState::Running);
    assert_eq!(guest.ld.to_vec(), predicted.digest, "launch digest");
    let log = fw.snp_launch_log(GCTX).unwrap();
    assert_eq!(log.entries.len(), predicted.log.entries.len());
    assert_eq!(log.initial_digest, predicted.log.initial_digest);
    for (a, b) in log.entries.iter().zip(&predicted.log.entries) {
        assert_eq!(
            (
                a.step,
                a.gpa,
                a.page_type,
                a.length,
                &a.content_hash,
                &a.digest_after
            ),
            (
                b.step,
                b.gpa,
                b.page_type,
                b.length,
                &b.content_hash,
                &b.digest_after
            ),
            "step {} ({} / {})",
            a.step,
            a.region,
            b.region
        );
    }

    // The pages are encrypted: the host sees ciphertext, DBG_DECRYPT (the
    // policy has DEBUG) the plaintext.
    let first = mem.read_vec(base, 4096).unwrap();
    assert_ne!(first, ovmf.data()[..4096]);
    let mut dbg = SnpDbgBuffer {
        gctx_paddr: U64::new(GCTX),
        src_paddr: U64::new(base),
        dst_paddr: U64::new(0x30_0000),
    };
    assert_eq!(
        snp(&mut fw, SnpCommand::SnpDbgDecrypt, &mut dbg, &mut mem),
        OK
    );
    assert_eq!(mem.read_vec(0x30_0000, 4096).unwrap(), ovmf.data()[..4096]);
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn snp_launch_digest_and_log_match_sev_measure_trixie() {
    snp_launch("firmware/trixie_OVMF.fd", 4);
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn snp_launch_digest_and_log_match_sev_measure_amdsev() {
    snp_launch("firmware/OVMF.amdsev.fd", 1);
}

/// The synthetic ID auth vector: its author key's signature over its ID key
/// verifies with the firmware's check (the ID block it signs is not part of
/// the vector, so the ID block signature must fail with BAD_SIGNATURE, and
/// only after the LD and policy checks).
#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn synthetic_id_auth_vector() {
    let auth = read_vector("synthetic/test_auth_block.bin");
    let parsed = IdAuth::from_bytes(&auth).unwrap();
    let author = sev_crypto::ecdsa::P384PublicKey::from_amd(&parsed.author_key).unwrap();
    author
        .verify_sha384(parsed.id_key.as_bytes(), &parsed.id_key_sig)
        .unwrap();
    let mut block = IdBlock::new_zeroed();
    block.policy = U64::new(SnpPolicy::DEFAULT_RAW);
    let check = sev_firmware::snp::launch::check_id_block(
        &[0; 48],
        SnpPolicy::DEFAULT_RAW,
        block.as_bytes(),
        &auth,
        true,
    );
    assert_eq!(check, Err(FirmwareStatus::BAD_SIGNATURE));
}
