//! The software AMD-SP's SEV-SNP launch against sev-measure's prediction:
//! a real OVMF image launched the way QEMU lays it out (OVMF NORMAL pages
//! ending at 4 GiB, then the SEV metadata sections in file order: SEC_MEM
//! ZERO, SECRETS, CPUID, KERNEL_HASHES ZERO; then one VMSA per vCPU at GPA
//! 0xFFFFFFFFF000), with every page RMPUPDATEd to PRE_GUEST first. The
//! firmware's launch digest equals `sev_measure::measure(Mode::Snp)` and its
//! launch log equals the predictor's entry by entry (page type, GPA,
//! contents, digest after).

use sev_abi::commands::{SnpCommand, SnpDbgBuffer, SnpLaunchFinishBuffer};
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::policy::SnpPolicy;
use sev_abi::snp_launch::{IdAuth, IdBlock, PageType};
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::SnpGuestState;
use sev_firmware::{Firmware, SystemMemory, VecMemory};
use sev_measure::snp::VMSA_GPA;
use sev_measure::{measure, MeasureParams, Mode, OvmfImage, SectionKind};
use sevkit_conformance::read_vector;
use sevkit_testkit::snp;
use zerocopy::little_endian::U64;
use zerocopy::{FromZeros, IntoBytes};

const OK: FirmwareStatus = FirmwareStatus::SUCCESS;
const GCTX: u64 = 0x10_0000;
const VMSA_SPA: u64 = 0x2000_0000;
const ASID: u32 = 1;

/// SNP_INIT, a guest context at GCTX, SNP_LAUNCH_START (DEBUG allowed),
/// SNP_ACTIVATE, on the shared test chip.
fn started_guest() -> (Firmware, VecMemory) {
    let mut fw = sevkit_testkit::firmware(0x51);
    let mut mem = VecMemory::new(1 << 32);
    let policy = SnpPolicy::DEFAULT_RAW | SnpPolicy::DEBUG;
    snp::launching(&mut fw, &mut mem, GCTX, policy, ASID);
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
        snp::pre_guest(&mut fw, base + off, base + off, ASID);
        assert_eq!(
            snp::launch_update(&mut fw, &mut mem, GCTX, base + off, PageType::Normal),
            OK
        );
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
                mem.write(gpa, &snp::cpuid_page(51)).unwrap();
            }
            snp::pre_guest(&mut fw, gpa, gpa, ASID);
            assert_eq!(
                snp::launch_update(&mut fw, &mut mem, GCTX, gpa, page_type),
                OK,
                "{s:?}"
            );
        }
    }
    // VMSAs: at their own system pages, all mapped at VMSA_GPA.
    for i in 0..vcpus {
        let spa = VMSA_SPA + u64::from(i) * 4096;
        mem.write(spa, predicted.vmsa_page(i).unwrap()).unwrap();
        snp::pre_guest(&mut fw, spa, VMSA_GPA, ASID);
        assert_eq!(
            snp::launch_update(&mut fw, &mut mem, GCTX, spa, PageType::Vmsa),
            OK
        );
        assert!(fw.rmp_entry(spa).vmsa);
    }
    let mut finish = SnpLaunchFinishBuffer::new_zeroed();
    finish.gctx_paddr = U64::new(GCTX);
    finish.host_data = [0xAB; 32];
    assert_eq!(
        fw.call(SnpCommand::SnpLaunchFinish, &mut finish, &mut mem),
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
    assert_eq!(fw.call(SnpCommand::SnpDbgDecrypt, &mut dbg, &mut mem), OK);
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
    block.policy = SnpPolicy::default();
    let check = sev_firmware::snp::launch::check_id_block(
        &SnpLaunchDigest::default(),
        SnpPolicy::default(),
        block.as_bytes(),
        &auth,
        true,
    );
    assert_eq!(check, Err(FirmwareStatus::BAD_SIGNATURE));
}
