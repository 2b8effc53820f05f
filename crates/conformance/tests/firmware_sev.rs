//! The software AMD-SP (sev-firmware) against the guest owner's side:
//!
//! * full SEV and SEV-ES launches over a real OVMF image
//!   (shared/vectors/firmware/OVMF.amdsev.fd): the owner builds a session
//!   against the exported PDH, the host runs LAUNCH_START .. LAUNCH_FINISH
//!   through `execute()`, and the measurement verifies both with
//!   `sev_crypto::packet::launch_measurement` over sev-measure's predicted
//!   digest and with sev-measure's blob check; the firmware's launch log
//!   equals the predictor's entry by entry;
//! * the owner's secret lands decrypted (DBG_DECRYPT), tampered sessions and
//!   secrets are refused with BAD_MEASUREMENT, NODBG refuses debugging with
//!   POLICY_FAILURE;
//! * the exported chain verifies with the emulated ARK/ASK (what
//!   `sevkit verify sev-chain` does given them) and is refused against AMD's
//!   real roots.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sev_abi::amd_cert::AmdCert;
use sev_abi::commands::{
    ActivateBuffer, AttestationBuffer, DbgBuffer, HandleBuffer, InitBuffer, LaunchMeasureBuffer,
    LaunchStartBuffer, LaunchUpdateBuffer, PdhCertExportBuffer, PlatformStatusBuffer, SevCommand,
    TransportBuffer,
};
use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::legacy_cert::SevCert;
use sev_abi::policy::GuestPolicy;
use sev_abi::session::LaunchMeasurement;
use sev_abi::session::{LegacyAttestationReport, PacketHeader};
use sev_abi::status::FirmwareStatus;
use sev_attest::legacy::{verify_platform_chain, LegacyAnchor, PlatformChain};
use sev_crypto::ecdsa::P384PublicKey;
use sev_crypto::packet::{launch_measurement, seal_secret};
use sev_crypto::session::{build_launch_session, LaunchSession};
use sev_firmware::{Firmware, SystemMemory, VecMemory};
use sev_measure::{check_launch_measure_blob, measure, MeasureParams, Mode};
use sevkit_conformance::read_vector;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

const OK: FirmwareStatus = FirmwareStatus::SUCCESS;
const OVMF: &str = "firmware/OVMF.amdsev.fd";

// The PSP's view of system memory: host blobs low, guest RAM at its GPA.
const TMR: u64 = 0x10_0000;
const GODH: u64 = 0x20_0000;
const SESSION: u64 = 0x20_1000;
const PDH_OUT: u64 = 0x20_2000;
const CHAIN_OUT: u64 = 0x20_4000;
const MEASURE_OUT: u64 = 0x20_8000;
const SECRET_HDR: u64 = 0x20_9000;
const SECRET_TRANS: u64 = 0x20_A000;
const REPORT_OUT: u64 = 0x20_B000;
const HOST_BUF: u64 = 0x30_0000;
const VMSA_BASE: u64 = 0x1000_0000;
const SECRET_GPA: u64 = 0x80_0000;

fn run<T>(fw: &mut Firmware, cmd: SevCommand, buf: &mut T, mem: &mut VecMemory) -> FirmwareStatus
where
    T: FromBytes + IntoBytes + Immutable + KnownLayout,
{
    fw.call(cmd, buf, mem)
}

/// A platform as the host brings it up: INIT (with SEV-ES when asked).
fn platform(seed: u8, es: bool) -> (Firmware, VecMemory) {
    let mut fw = sevkit_testkit::firmware(seed);
    let mut mem = VecMemory::new(1 << 32);
    let mut init = InitBuffer::new_zeroed();
    if es {
        init.flags = U32::new(1);
        init.tmr_paddr = U64::new(TMR);
        init.tmr_len = U32::new(1 << 20);
    }
    assert_eq!(run(&mut fw, SevCommand::Init, &mut init, &mut mem), OK);
    (fw, mem)
}

/// PDH_CERT_EXPORT: the PDH and the PEK ‖ OCA ‖ CEK chain.
fn export(fw: &mut Firmware, mem: &mut VecMemory) -> PlatformChain {
    let mut b = PdhCertExportBuffer::new_zeroed();
    b.pdh_paddr = U64::new(PDH_OUT);
    b.pdh_len = U32::new(0x824);
    b.chain_paddr = U64::new(CHAIN_OUT);
    b.chain_len = U32::new(3 * 0x824);
    assert_eq!(run(fw, SevCommand::PdhCertExport, &mut b, mem), OK);
    let cert = |at: u64| SevCert::from_bytes(&mem.read_vec(at, 0x824).unwrap()).unwrap();
    PlatformChain {
        pdh: cert(PDH_OUT),
        pek: cert(CHAIN_OUT),
        oca: cert(CHAIN_OUT + 0x824),
        cek: cert(CHAIN_OUT + 2 * 0x824),
    }
}

/// The guest owner's session for this platform's PDH.
fn owner_session(pdh: &SevCert, policy: u32, seed: u8) -> LaunchSession {
    build_launch_session(
        pdh.ecc_key().unwrap(),
        GuestPolicy::from_raw(policy),
        &mut ChaCha20Rng::from_seed([seed; 32]),
    )
    .unwrap()
}

/// LAUNCH_START with the owner's GODH certificate and session blob, then
/// ACTIVATE (as KVM does).
fn launch_start(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    session: &LaunchSession,
    policy: u32,
    asid: u32,
) -> Result<u32, FirmwareStatus> {
    mem.write(GODH, session.godh_cert.as_bytes()).unwrap();
    mem.write(SESSION, session.session.as_bytes()).unwrap();
    let mut b = LaunchStartBuffer::new_zeroed();
    b.policy = GuestPolicy::from_raw(policy);
    b.dh_cert_paddr = U64::new(GODH);
    b.dh_cert_len = U32::new(0x824);
    b.session_paddr = U64::new(SESSION);
    b.session_len = U32::new(0x80);
    let st = run(fw, SevCommand::LaunchStart, &mut b, mem);
    if st != OK {
        return Err(st);
    }
    let handle = b.handle.get();
    let mut a = ActivateBuffer {
        handle: U32::new(handle),
        asid: U32::new(asid),
    };
    assert_eq!(run(fw, SevCommand::Activate, &mut a, mem), OK);
    Ok(handle)
}

fn update(fw: &mut Firmware, mem: &mut VecMemory, handle: u32, paddr: u64, len: usize, vmsa: bool) {
    let mut b = LaunchUpdateBuffer::new_zeroed();
    b.handle = U32::new(handle);
    b.paddr = U64::new(paddr);
    b.len = U32::new(len as u32);
    let cmd = if vmsa {
        SevCommand::LaunchUpdateVmsa
    } else {
        SevCommand::LaunchUpdateData
    };
    assert_eq!(run(fw, cmd, &mut b, mem), OK, "{cmd}");
}

fn launch_measure(fw: &mut Firmware, mem: &mut VecMemory, handle: u32) -> LaunchMeasurement {
    let mut b = LaunchMeasureBuffer::new_zeroed();
    b.handle = U32::new(handle);
    b.paddr = U64::new(MEASURE_OUT);
    // Length query, as QEMU does.
    assert_eq!(
        run(fw, SevCommand::LaunchMeasure, &mut b, mem),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(b.len.get(), 48);
    assert_eq!(run(fw, SevCommand::LaunchMeasure, &mut b, mem), OK);
    LaunchMeasurement::from_bytes(&mem.read_vec(MEASURE_OUT, 48).unwrap()).unwrap()
}

fn launch_secret(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    handle: u32,
    header: &PacketHeader,
    ciphertext: &[u8],
) -> FirmwareStatus {
    mem.write(SECRET_HDR, header.as_bytes()).unwrap();
    mem.write(SECRET_TRANS, ciphertext).unwrap();
    let mut t = TransportBuffer::new_zeroed();
    t.handle = U32::new(handle);
    t.hdr_paddr = U64::new(SECRET_HDR);
    t.hdr_len = U32::new(0x34);
    t.guest_paddr = U64::new(SECRET_GPA);
    t.guest_len = U32::new(ciphertext.len() as u32);
    t.trans_paddr = U64::new(SECRET_TRANS);
    t.trans_len = U32::new(ciphertext.len() as u32);
    run(fw, SevCommand::LaunchSecret, &mut t, mem)
}

fn dbg_decrypt(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    handle: u32,
    src: u64,
    len: usize,
) -> Result<Vec<u8>, FirmwareStatus> {
    let mut b = DbgBuffer {
        handle: U32::new(handle),
        reserved: U32::new(0),
        src_paddr: U64::new(src),
        dst_paddr: U64::new(HOST_BUF),
        len: U32::new(len as u32),
    };
    match run(fw, SevCommand::DbgDecrypt, &mut b, mem) {
        OK => Ok(mem.read_vec(HOST_BUF, len).unwrap()),
        st => Err(st),
    }
}

/// A whole launch over the real OVMF, checked from the owner's side.
#[allow(clippy::too_many_lines)] // one launch, step by step
fn full_launch(mode: Mode, vcpus: u32) {
    let es = mode == Mode::SevEs;
    let ovmf = read_vector(OVMF);
    let mut params = MeasureParams::new(mode, &ovmf);
    params.vcpus = vcpus;
    let predicted = measure(&params).unwrap();

    let (mut fw, mut mem) = platform(30 + u8::from(es), es);
    let mut st = PlatformStatusBuffer::new_zeroed();
    assert_eq!(
        run(&mut fw, SevCommand::PlatformStatus, &mut st, &mut mem),
        OK
    );
    let chain = export(&mut fw, &mut mem);

    // The owner: policy (ES as required), session against the exported PDH.
    let policy = GuestPolicy::builder().es(es).build().raw();
    let session = owner_session(&chain.pdh, policy, 40);
    let handle = launch_start(&mut fw, &mut mem, &session, policy, if es { 1 } else { 5 }).unwrap();

    // The host: OVMF at its GPA (4 GiB - size), then one VMSA per vCPU.
    let gpa = (1u64 << 32) - ovmf.len() as u64;
    mem.write(gpa, &ovmf).unwrap();
    update(&mut fw, &mut mem, handle, gpa, ovmf.len(), false);
    assert_ne!(
        mem.read_vec(gpa, 4096).unwrap(),
        ovmf[..4096],
        "host reads of encrypted pages show ciphertext"
    );
    for i in 0..predicted.vmsa_count() {
        let page = predicted.vmsa_page(i).unwrap();
        let at = VMSA_BASE + u64::from(i) * 0x1000;
        mem.write(at, page).unwrap();
        update(&mut fw, &mut mem, handle, at, page.len(), true);
    }
    let blob = launch_measure(&mut fw, &mut mem, handle);

    // The owner recomputes the measurement from the predicted digest.
    let digest = *predicted.digest.sev().unwrap();
    let mnonce = blob.mnonce;
    let expected = launch_measurement(
        &session.tik,
        st.api_major,
        st.api_minor,
        st.build,
        GuestPolicy::from_raw(policy),
        &digest,
        &mnonce,
    );
    assert_eq!(blob.measurement, expected);
    assert!(check_launch_measure_blob(
        &session.tik,
        st.api_major,
        st.api_minor,
        st.build,
        GuestPolicy::from_raw(policy),
        &digest,
        &blob
    ));

    // The firmware's log says what the predictor's says, step by step.
    let log = fw.launch_log(handle).unwrap();
    assert_eq!(log.entries.len(), predicted.log.entries.len());
    for (fw_entry, predicted_entry) in log.entries.iter().zip(&predicted.log.entries) {
        assert_eq!(fw_entry.step, predicted_entry.step);
        assert_eq!(fw_entry.gpa, predicted_entry.gpa);
        assert_eq!(fw_entry.page_type, predicted_entry.page_type);
        assert_eq!(fw_entry.length, predicted_entry.length);
        assert_eq!(fw_entry.content_hash, predicted_entry.content_hash);
        assert_eq!(fw_entry.digest_after, predicted_entry.digest_after);
    }
    assert_eq!(log.final_digest(), Some(&digest[..]));

    // The owner's secret: a tampered MAC is refused, the real one lands.
    let measurement = blob.measurement;
    let mut secret = vec![0u8; 64];
    secret[..20].copy_from_slice(b"disk key: 0123456789");
    let iv = [0x24; 16];
    let (ct, mac) = seal_secret(&session.tek, &session.tik, &iv, &measurement, &secret);
    let mut bad = mac;
    bad[7] ^= 0x80;
    assert_eq!(
        launch_secret(
            &mut fw,
            &mut mem,
            handle,
            &PacketHeader::new(0, iv, bad),
            &ct
        ),
        FirmwareStatus::BAD_MEASUREMENT
    );
    assert_eq!(
        launch_secret(
            &mut fw,
            &mut mem,
            handle,
            &PacketHeader::new(0, iv, mac),
            &ct
        ),
        OK
    );
    assert_ne!(mem.read_vec(SECRET_GPA, 64).unwrap(), secret);
    assert_eq!(
        dbg_decrypt(&mut fw, &mut mem, handle, SECRET_GPA, 64).unwrap(),
        secret
    );
    assert_eq!(
        dbg_decrypt(&mut fw, &mut mem, handle, gpa, 4096).unwrap(),
        ovmf[..4096]
    );

    let mut fin = HandleBuffer {
        handle: U32::new(handle),
    };
    assert_eq!(
        run(&mut fw, SevCommand::LaunchFinish, &mut fin, &mut mem),
        OK
    );

    // The legacy attestation report carries the same digest, signed by the PEK.
    let mut att = AttestationBuffer::new_zeroed();
    att.handle = U32::new(handle);
    att.paddr = U64::new(REPORT_OUT);
    att.mnonce = [0x61; 16];
    att.len = U32::new(0xD0);
    assert_eq!(
        run(&mut fw, SevCommand::Attestation, &mut att, &mut mem),
        OK
    );
    let report =
        LegacyAttestationReport::from_bytes(&mem.read_vec(REPORT_OUT, 0xD0).unwrap()).unwrap();
    assert_eq!(report.launch_digest, digest);
    assert_eq!(report.policy.raw(), policy);
    P384PublicKey::from_amd(chain.pek.ecc_key().unwrap())
        .unwrap()
        .verify_sha256(report.signed_bytes(), &report.signature())
        .unwrap();
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn sev_launch_over_real_ovmf() {
    full_launch(Mode::Sev, 1);
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn sev_es_launch_over_real_ovmf() {
    full_launch(Mode::SevEs, 4);
}

#[test]
fn tampered_session_is_refused_with_bad_measurement() {
    let (mut fw, mut mem) = platform(50, false);
    let chain = export(&mut fw, &mut mem);
    let session = owner_session(&chain.pdh, 0, 51);
    for (what, tamper) in [
        ("nonce", 0x00usize),
        ("wrap_tk", 0x10),
        ("wrap_iv", 0x30),
        ("wrap_mac", 0x40),
        ("policy_mac", 0x60),
    ] {
        let mut bad = session.clone();
        bad.session.as_mut_bytes()[tamper + 3] ^= 1;
        assert_eq!(
            launch_start(&mut fw, &mut mem, &bad, 0, 5),
            Err(FirmwareStatus::BAD_MEASUREMENT),
            "{what}"
        );
    }
    // The host launching with another policy than the owner MACed.
    assert_eq!(
        launch_start(&mut fw, &mut mem, &session, GuestPolicy::NODBG, 5),
        Err(FirmwareStatus::BAD_MEASUREMENT)
    );
    // A session made for another platform's PDH.
    let (mut other, mut other_mem) = platform(52, false);
    let other_pdh = export(&mut other, &mut other_mem).pdh;
    assert_eq!(
        launch_start(&mut fw, &mut mem, &owner_session(&other_pdh, 0, 53), 0, 5),
        Err(FirmwareStatus::BAD_MEASUREMENT)
    );
    assert!(launch_start(&mut fw, &mut mem, &session, 0, 5).is_ok());
}

#[test]
fn tampered_measurement_or_secret_is_refused() {
    let (mut fw, mut mem) = platform(54, false);
    let chain = export(&mut fw, &mut mem);
    let session = owner_session(&chain.pdh, 0, 55);
    let handle = launch_start(&mut fw, &mut mem, &session, 0, 5).unwrap();
    mem.write(0x4000_0000, &[0x90; 4096]).unwrap();
    update(&mut fw, &mut mem, handle, 0x4000_0000, 4096, false);
    let blob = launch_measure(&mut fw, &mut mem, handle);
    let iv = [3; 16];
    let secret = [0x77u8; 32];
    // Sealed against a measurement other than the one the firmware returned.
    let mut wrong_measurement = blob.measurement;
    wrong_measurement[0] ^= 1;
    let (ct, mac) = seal_secret(&session.tek, &session.tik, &iv, &wrong_measurement, &secret);
    assert_eq!(
        launch_secret(
            &mut fw,
            &mut mem,
            handle,
            &PacketHeader::new(0, iv, mac),
            &ct
        ),
        FirmwareStatus::BAD_MEASUREMENT
    );
    // Sealed correctly, then the ciphertext altered in transit.
    let measurement = blob.measurement;
    let (mut ct, mac) = seal_secret(&session.tek, &session.tik, &iv, &measurement, &secret);
    ct[31] ^= 1;
    assert_eq!(
        launch_secret(
            &mut fw,
            &mut mem,
            handle,
            &PacketHeader::new(0, iv, mac),
            &ct
        ),
        FirmwareStatus::BAD_MEASUREMENT
    );
    assert_eq!(mem.read_vec(SECRET_GPA, 32).unwrap(), [0u8; 32]);
    // The owner's check of a tampered measurement fails.
    let digest = sha256(&[0x90; 4096]);
    let mut forged = blob;
    forged.measurement[0] ^= 1;
    assert!(!check_launch_measure_blob(
        &session.tik,
        1,
        55,
        21,
        GuestPolicy::from_raw(0),
        &digest,
        &forged
    ));
    assert!(check_launch_measure_blob(
        &session.tik,
        1,
        55,
        21,
        GuestPolicy::from_raw(0),
        &digest,
        &blob
    ));
}

fn sha256(data: &[u8]) -> SevLaunchDigest {
    // SHA-256 of one LAUNCH_UPDATE_DATA is the SEV launch digest.
    let mut ld = sev_measure::sev::SevDigestBuilder::new();
    ld.update("x", None, sev_measure::LogPageType::SevData, data);
    ld.digest()
}

#[test]
fn nodbg_refuses_debug_with_policy_failure() {
    let (mut fw, mut mem) = platform(56, false);
    let chain = export(&mut fw, &mut mem);
    let policy = GuestPolicy::NODBG;
    let session = owner_session(&chain.pdh, policy, 57);
    let handle = launch_start(&mut fw, &mut mem, &session, policy, 5).unwrap();
    mem.write(0x4000_0000, &[1; 64]).unwrap();
    update(&mut fw, &mut mem, handle, 0x4000_0000, 64, false);
    assert_eq!(
        dbg_decrypt(&mut fw, &mut mem, handle, 0x4000_0000, 64),
        Err(FirmwareStatus::POLICY_FAILURE)
    );
    let mut enc = DbgBuffer {
        handle: U32::new(handle),
        reserved: U32::new(0),
        src_paddr: U64::new(HOST_BUF),
        dst_paddr: U64::new(0x4000_0000),
        len: U32::new(64),
    };
    assert_eq!(
        run(&mut fw, SevCommand::DbgEncrypt, &mut enc, &mut mem),
        FirmwareStatus::POLICY_FAILURE
    );
}

#[test]
fn exported_chain_verifies_with_emulated_roots_and_not_amds() {
    let (mut fw, mut mem) = platform(58, false);
    let chain = export(&mut fw, &mut mem);
    // The ARK/ASK as files in AMD's binary format, read back as
    // `sevkit verify sev-chain --ark/--ask` would.
    let ark = AmdCert::from_bytes(&fw.chip().ark().to_bytes()).unwrap();
    let ask = AmdCert::from_bytes(&fw.chip().ask().to_bytes()).unwrap();
    assert_eq!(fw.chip().ark().to_bytes().len(), 0x640);
    let supplied = verify_platform_chain(&chain, &LegacyAnchor::Supplied { ask, ark });
    assert!(supplied.passed(), "{supplied:?}");
    let auto = verify_platform_chain(&chain, &LegacyAnchor::AutoDetect);
    assert!(!auto.passed(), "{auto:?}");
    for product in sev_abi::product::Product::ALL {
        let pinned = verify_platform_chain(&chain, &LegacyAnchor::Pinned(*product));
        assert!(!pinned.passed(), "{product:?}");
    }
}
