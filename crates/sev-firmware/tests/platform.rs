//! Platform identity, persistence, certificate commands, and the launch
//! flow with an owner session, through `execute()`.

mod common;

use common::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sev_abi::amd_cert::KNOWN_ARK_KEY_IDS;
use sev_abi::commands::*;
use sev_abi::legacy_cert::{Algorithm, KeyUsage, SevCert};
use sev_abi::policy::GuestPolicy;
use sev_abi::session::{LegacyAttestationReport, PacketHeader};
use sev_abi::status::FirmwareStatus;
use sev_attest::legacy::{verify_platform_chain, LegacyAnchor, PlatformChain};
use sev_crypto::ecdsa::{P384PublicKey, P384SigningKey};
use sev_crypto::packet::{launch_measurement, seal_secret};
use sev_crypto::session::{build_launch_session, LaunchSession};
use sev_firmware::{
    Firmware, FirmwareConfig, FirmwareError, PlatformState, StoreError, SystemMemory, VecMemory,
    EMULATED_KEY_ID_PREFIX, LAUNCH_LOG_MAX_ENTRIES,
};
use sev_measure::log::LogPageType;
use sev_measure::sev::SevDigestBuilder;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const OK: FirmwareStatus = FirmwareStatus::SUCCESS;

fn export(fw: &mut Firmware, mem: &mut VecMemory) -> (SevCert, Vec<u8>) {
    let mut b = PdhCertExportBuffer::new_zeroed();
    b.pdh_paddr = U64::new(PDH_OUT);
    b.chain_paddr = U64::new(CHAIN_OUT);
    // Length query first, as sevctl does.
    assert_eq!(
        run(fw, SevCommand::PdhCertExport, &mut b, mem),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!((b.pdh_len.get(), b.chain_len.get()), (0x824, 3 * 0x824));
    assert_eq!(run(fw, SevCommand::PdhCertExport, &mut b, mem), OK);
    let pdh = SevCert::from_bytes(&mem.read_vec(PDH_OUT, 0x824).unwrap()).unwrap();
    (pdh, mem.read_vec(CHAIN_OUT, 3 * 0x824).unwrap())
}

fn chain_of(pdh: &SevCert, chain: &[u8]) -> PlatformChain {
    let cert = |i: usize| SevCert::from_bytes(&chain[i * 0x824..(i + 1) * 0x824]).unwrap();
    PlatformChain {
        pdh: *pdh,
        pek: cert(0),
        oca: cert(1),
        cek: cert(2),
    }
}

#[test]
fn exported_chain_verifies_only_with_the_emulated_root() {
    let mut fw = firmware(3);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let (pdh, chain) = export(&mut fw, &mut mem);
    assert_eq!(Some(&pdh), fw.pdh_cert());
    let chain = chain_of(&pdh, &chain);
    let chip = fw.chip();
    assert!(chip.ark().key_id.starts_with(&EMULATED_KEY_ID_PREFIX));
    assert!(KNOWN_ARK_KEY_IDS
        .iter()
        .all(|(_, id)| *id != chip.ark().key_id));
    assert_eq!(chip.ark().modulus_bits, 4096);

    let supplied = verify_platform_chain(
        &chain,
        &LegacyAnchor::Supplied {
            ask: chip.ask().clone(),
            ark: chip.ark().clone(),
        },
    );
    assert!(supplied.passed(), "{supplied:?}");
    let auto = verify_platform_chain(&chain, &LegacyAnchor::AutoDetect);
    assert!(
        !auto.passed(),
        "AMD's roots must not accept the emulated CEK"
    );
    for product in sev_abi::product::Product::ALL {
        let pinned = verify_platform_chain(&chain, &LegacyAnchor::Pinned(*product));
        assert!(!pinned.passed(), "{product:?}");
    }
}

#[test]
fn seeded_firmwares_are_byte_identical() {
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let mut fw = firmware(9);
        let mut mem = memory();
        init(&mut fw, &mut mem, false);
        let (pdh, chain) = export(&mut fw, &mut mem);
        let h = launch_start_plain(&mut fw, &mut mem, 0);
        activate(&mut fw, &mut mem, h, 5);
        mem.write(DATA, &[7; 4096]).unwrap();
        assert_eq!(update(&mut fw, &mut mem, h, DATA, 4096, false), OK);
        let m = measure(&mut fw, &mut mem, h);
        outputs.push((
            pdh.as_bytes().to_vec(),
            chain,
            m,
            mem.read_vec(DATA, 4096).unwrap(),
        ));
    }
    assert_eq!(outputs[0], outputs[1]);
    let mut other = firmware(10);
    let mut mem = memory();
    init(&mut other, &mut mem, false);
    assert_ne!(export(&mut other, &mut mem).0.as_bytes(), &outputs[0].0[..]);
}

#[test]
fn platform_status_get_id_and_length_queries() {
    let mut fw = firmware(4);
    let mut mem = memory();
    let mut st = PlatformStatusBuffer::new_zeroed();
    assert_eq!(
        run(&mut fw, SevCommand::PlatformStatus, &mut st, &mut mem),
        OK
    );
    assert_eq!(
        (st.api_major, st.api_minor, st.state, st.build),
        (1, 55, 0, 21)
    );
    init(&mut fw, &mut mem, true);
    launch_start_plain(&mut fw, &mut mem, 0);
    assert_eq!(
        run(&mut fw, SevCommand::PlatformStatus, &mut st, &mut mem),
        OK
    );
    assert_eq!(st.state, 2);
    assert_eq!(st.config.get(), 1, "SEV-ES configured");
    assert_eq!(st.owner, 0, "self-owned");
    assert_eq!(st.guest_count.get(), 1);

    let mut id = GetIdBuffer {
        paddr: U64::new(ID_OUT),
        len: U32::new(63),
    };
    assert_eq!(
        run(&mut fw, SevCommand::GetId, &mut id, &mut mem),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(id.len.get(), 64);
    assert_eq!(run(&mut fw, SevCommand::GetId, &mut id, &mut mem), OK);
    assert_eq!(mem.read_vec(ID_OUT, 64).unwrap(), fw.chip().chip_id());

    let mut csr = PekCsrBuffer::new_zeroed();
    assert_eq!(
        run(&mut fw, SevCommand::PekCsr, &mut csr, &mut mem),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(csr.len.get(), 0x824);

    let mut m = LaunchMeasureBuffer::new_zeroed();
    m.handle = U32::new(1);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchMeasure, &mut m, &mut mem),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(m.len.get(), 0x30);
    assert_eq!(fw.guest_state(1), Some(sev_firmware::GuestState::LUpdate));

    // A truncated command buffer and an address outside memory.
    assert_eq!(
        fw.execute(0x0C, &mut [0u8; 11], &mut mem),
        FirmwareStatus::INVALID_PARAM
    );
    id.paddr = U64::new(MEM_SIZE - 10);
    assert_eq!(
        run(&mut fw, SevCommand::GetId, &mut id, &mut mem),
        FirmwareStatus::INVALID_ADDRESS
    );
}

#[test]
fn init_checks_tmr_and_flags() {
    let mut fw = firmware(5);
    let mut mem = memory();
    let mut b = InitBuffer::new_zeroed();
    b.flags = U32::new(1);
    b.tmr_paddr = U64::new(TMR + 0x1000);
    b.tmr_len = U32::new(1 << 20);
    assert_eq!(
        run(&mut fw, SevCommand::Init, &mut b, &mut mem),
        FirmwareStatus::INVALID_ADDRESS
    );
    b.tmr_paddr = U64::new(TMR);
    b.tmr_len = U32::new(0x1000);
    assert_eq!(
        run(&mut fw, SevCommand::Init, &mut b, &mut mem),
        FirmwareStatus::INVALID_LENGTH
    );
    b.flags = U32::new(2);
    assert_eq!(
        run(&mut fw, SevCommand::Init, &mut b, &mut mem),
        FirmwareStatus::INVALID_PARAM
    );
    // No ES guests on a platform initialized without ES.
    init(&mut fw, &mut mem, false);
    let mut ls = LaunchStartBuffer::new_zeroed();
    ls.policy = GuestPolicy::from_raw(4);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut ls, &mut mem),
        FirmwareStatus::UNSUPPORTED
    );
    let mut ex = InitExBuffer::new_zeroed();
    assert_eq!(fw.execute(0x02, &mut [], &mut mem), OK);
    assert_eq!(
        run(&mut fw, SevCommand::InitEx, &mut ex, &mut mem),
        FirmwareStatus::INVALID_LENGTH
    );
    ex.length = U32::new(0x24);
    assert_eq!(run(&mut fw, SevCommand::InitEx, &mut ex, &mut mem), OK);
}

/// The owner's OCA signs the PEK CSR.
fn owner_certs(fw: &mut Firmware, mem: &mut VecMemory, oca: &P384SigningKey) -> (SevCert, SevCert) {
    let mut csr = PekCsrBuffer {
        paddr: U64::new(CSR_OUT),
        len: U32::new(0x824),
    };
    assert_eq!(run(fw, SevCommand::PekCsr, &mut csr, mem), OK);
    let mut pek = SevCert::from_bytes(&mem.read_vec(CSR_OUT, 0x824).unwrap()).unwrap();
    assert!(pek
        .signatures()
        .iter()
        .all(sev_abi::legacy_cert::SignatureSlot::is_empty));
    let mut oca_cert = SevCert::new_ecc(
        1,
        55,
        KeyUsage::Oca,
        Algorithm::EcdsaSha256,
        &oca.public_key_ref().to_amd(),
    );
    let s = oca.sign_sha256(oca_cert.signed_bytes()).unwrap();
    oca_cert
        .set_signature(
            0,
            KeyUsage::Oca,
            Algorithm::EcdsaSha256,
            &s.as_bytes().try_into().unwrap(),
        )
        .unwrap();
    let s = oca.sign_sha256(pek.signed_bytes()).unwrap();
    pek.set_signature(
        0,
        KeyUsage::Oca,
        Algorithm::EcdsaSha256,
        &s.as_bytes().try_into().unwrap(),
    )
    .unwrap();
    (oca_cert, pek)
}

fn import(fw: &mut Firmware, mem: &mut VecMemory, pek: &[u8], oca: &[u8]) -> FirmwareStatus {
    mem.write(BLOB_IN, pek).unwrap();
    mem.write(BLOB_IN2, oca).unwrap();
    let mut b = PekCertImportBuffer {
        pek_paddr: U64::new(BLOB_IN),
        pek_len: U32::new(pek.len() as u32),
        reserved: U32::new(0),
        oca_paddr: U64::new(BLOB_IN2),
        oca_len: U32::new(oca.len() as u32),
    };
    run(fw, SevCommand::PekCertImport, &mut b, mem)
}

#[test]
fn pek_cert_import_takes_ownership() {
    let mut fw = firmware(6);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let oca = P384SigningKey::from_be_scalar(&[0x21; 48]).unwrap();
    let (oca_cert, pek) = owner_certs(&mut fw, &mut mem, &oca);

    // Refusals first; each leaves the platform self-owned.
    assert_eq!(
        import(
            &mut fw,
            &mut mem,
            &pek.as_bytes()[..0x823],
            oca_cert.as_bytes()
        ),
        FirmwareStatus::INVALID_LENGTH
    );
    let mut bad_sig = pek;
    bad_sig.sig1[3] ^= 1;
    assert_eq!(
        import(&mut fw, &mut mem, bad_sig.as_bytes(), oca_cert.as_bytes()),
        FirmwareStatus::BAD_SIGNATURE
    );
    let mut bad_oca = oca_cert;
    bad_oca.sig1[0] ^= 1;
    assert_eq!(
        import(&mut fw, &mut mem, pek.as_bytes(), bad_oca.as_bytes()),
        FirmwareStatus::BAD_SIGNATURE
    );
    let other = P384SigningKey::from_be_scalar(&[0x22; 48]).unwrap();
    let ((), foreign_pek) = {
        // A PEK certificate for another key, signed by the OCA.
        let mut c = SevCert::new_ecc(
            1,
            55,
            KeyUsage::Pek,
            Algorithm::EcdsaSha256,
            &other.public_key_ref().to_amd(),
        );
        let s = oca.sign_sha256(c.signed_bytes()).unwrap();
        c.set_signature(
            0,
            KeyUsage::Oca,
            Algorithm::EcdsaSha256,
            &s.as_bytes().try_into().unwrap(),
        )
        .unwrap();
        ((), c)
    };
    assert_eq!(
        import(
            &mut fw,
            &mut mem,
            foreign_pek.as_bytes(),
            oca_cert.as_bytes()
        ),
        FirmwareStatus::INVALID_CERTIFICATE
    );
    assert_eq!(
        import(&mut fw, &mut mem, pek.as_bytes(), pek.as_bytes()),
        FirmwareStatus::INVALID_CERTIFICATE,
        "a PEK is no OCA"
    );
    assert_eq!(
        import(&mut fw, &mut mem, &[0xFF; 0x824], oca_cert.as_bytes()),
        FirmwareStatus::INVALID_CERTIFICATE
    );
    let mut st = PlatformStatusBuffer::new_zeroed();
    run(&mut fw, SevCommand::PlatformStatus, &mut st, &mut mem);
    assert_eq!(st.owner, 0);

    assert_eq!(
        import(&mut fw, &mut mem, pek.as_bytes(), oca_cert.as_bytes()),
        OK
    );
    run(&mut fw, SevCommand::PlatformStatus, &mut st, &mut mem);
    assert_eq!(st.owner, 1, "externally owned");
    let (pdh, chain) = export(&mut fw, &mut mem);
    let chain = chain_of(&pdh, &chain);
    assert_eq!(chain.oca, oca_cert);
    let v = verify_platform_chain(
        &chain,
        &LegacyAnchor::Supplied {
            ask: fw.chip().ask().clone(),
            ark: fw.chip().ark().clone(),
        },
    );
    assert!(v.passed(), "{v:?}");

    // PEK_GEN makes the platform self-owned again, with new keys.
    assert_eq!(fw.execute(0x05, &mut [], &mut mem), OK);
    run(&mut fw, SevCommand::PlatformStatus, &mut st, &mut mem);
    assert_eq!(st.owner, 0);
    let (pdh2, chain2) = export(&mut fw, &mut mem);
    assert_ne!(pdh2, chain.pdh);
    assert_ne!(chain_of(&pdh2, &chain2).pek.pubkey, chain.pek.pubkey);
}

#[test]
fn identity_persists_and_platform_reset_wipes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = FirmwareConfig {
        state_dir: Some(dir.path().to_owned()),
        ..FirmwareConfig::default()
    };
    let mut mem = memory();
    let first_pdh = {
        let mut fw = Firmware::open_with_chip(config.clone(), chip()).unwrap();
        init(&mut fw, &mut mem, false);
        export(&mut fw, &mut mem).0
    };
    let platform_file = dir.path().join("platform.sevfw");
    assert!(platform_file.exists());
    assert!(dir.path().join("chip.sevfw").exists());

    // Restart: the same chip and PDH, without minting anything.
    let mut fw = Firmware::open(config.clone()).unwrap();
    assert_eq!(fw.chip().ark(), chip().ark());
    assert_eq!(fw.pdh_cert(), Some(&first_pdh));
    init(&mut fw, &mut mem, false);
    assert_eq!(export(&mut fw, &mut mem).0, first_pdh);
    // PDH_GEN persists the new PDH.
    assert_eq!(fw.execute(0x09, &mut [], &mut mem), OK);
    let second_pdh = *fw.pdh_cert().unwrap();
    assert_ne!(second_pdh, first_pdh);
    drop(fw);
    let mut fw = Firmware::open(config.clone()).unwrap();
    assert_eq!(fw.pdh_cert(), Some(&second_pdh));

    // PLATFORM_RESET (UNINIT only) deletes the persistent store.
    assert_eq!(fw.execute(0x03, &mut [], &mut mem), OK);
    assert!(!platform_file.exists());
    assert!(dir.path().join("chip.sevfw").exists(), "the chip survives");
    init(&mut fw, &mut mem, false);
    assert_ne!(fw.pdh_cert(), Some(&second_pdh));
    drop(fw);

    // Another chip for this directory is refused.
    assert!(matches!(
        Firmware::open_with_chip(config.clone(), other_chip()),
        Err(FirmwareError::ChipMismatch { .. })
    ));

    // Corrupted and foreign files are refused and left untouched.
    let good = std::fs::read(&platform_file).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n / 2] ^= 0x40;
    std::fs::write(&platform_file, &bad).unwrap();
    let err = Firmware::open(config.clone()).unwrap_err();
    assert!(
        matches!(err, FirmwareError::Store(StoreError::Corrupted { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("corrupted"));
    assert_eq!(std::fs::read(&platform_file).unwrap(), bad);
    std::fs::write(&platform_file, b"not ours").unwrap();
    let err = Firmware::open(config.clone()).unwrap_err();
    assert!(
        matches!(err, FirmwareError::Store(StoreError::Foreign { .. })),
        "{err}"
    );
    assert_eq!(std::fs::read(&platform_file).unwrap(), b"not ours");

    // A crash mid-write leaves a temporary file beside the intact old one.
    std::fs::write(&platform_file, &good).unwrap();
    std::fs::write(dir.path().join(".platform.sevfw.tmp"), &good[..100]).unwrap();
    let fw = Firmware::open(config).unwrap();
    assert!(fw.pdh_cert().is_some());
    assert!(!dir.path().join(".platform.sevfw.tmp").exists());
    assert_eq!(fw.platform_state(), PlatformState::Uninit);
}

/// Firmware with an owner session: LAUNCH_START .. LAUNCH_FINISH.
struct Launched {
    fw: Firmware,
    mem: VecMemory,
    handle: u32,
    session: LaunchSession,
    policy: u32,
}

fn write_session(mem: &mut VecMemory, s: &LaunchSession) {
    mem.write(BLOB_IN, s.godh_cert.as_bytes()).unwrap();
    mem.write(BLOB_IN2, s.session.as_bytes()).unwrap();
}

fn launch_start_session(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    policy: u32,
    share: u32,
) -> (FirmwareStatus, u32) {
    let mut b = LaunchStartBuffer::new_zeroed();
    b.handle = U32::new(share);
    b.policy = GuestPolicy::from_raw(policy);
    b.dh_cert_paddr = U64::new(BLOB_IN);
    b.dh_cert_len = U32::new(0x824);
    b.session_paddr = U64::new(BLOB_IN2);
    b.session_len = U32::new(0x80);
    let st = run(fw, SevCommand::LaunchStart, &mut b, mem);
    (st, b.handle.get())
}

fn start_with_session(seed: u8, policy: u32) -> Launched {
    let mut fw = firmware(seed);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let (pdh, _) = export(&mut fw, &mut mem);
    let session = build_launch_session(
        pdh.ecc_key().unwrap(),
        GuestPolicy::from_raw(policy),
        &mut ChaCha20Rng::from_seed([seed; 32]),
    )
    .unwrap();
    write_session(&mut mem, &session);
    let (st, handle) = launch_start_session(&mut fw, &mut mem, policy, 0);
    assert_eq!(st, OK);
    assert_eq!(activate(&mut fw, &mut mem, handle, 5), OK);
    Launched {
        fw,
        mem,
        handle,
        session,
        policy,
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one launch, step by step
fn full_launch_with_owner_session() {
    let mut l = start_with_session(11, 0);
    let (fw, mem, h) = (&mut l.fw, &mut l.mem, l.handle);
    let page: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    mem.write(DATA, &page).unwrap();
    assert_eq!(update(fw, mem, h, DATA, 8192, false), OK);
    let extra = [0x33u8; 176];
    mem.write(DATA + 0x4000, &extra).unwrap();
    assert_eq!(update(fw, mem, h, DATA + 0x4000, 176, false), OK);

    // Host reads show ciphertext; identical plaintext blocks at two
    // addresses encrypt differently.
    let host_view = mem.read_vec(DATA, 8192).unwrap();
    assert_ne!(host_view, page);
    let ext = mem.read_vec(DATA + 0x4000, 32).unwrap();
    assert_ne!(ext[..16], ext[16..]);

    let out = measure(fw, mem, h);
    let mut expected = SevDigestBuilder::new();
    expected.update("ovmf", Some(DATA), LogPageType::SevData, &page);
    expected.update("hashes", Some(DATA + 0x4000), LogPageType::SevData, &extra);
    let digest = expected.digest();
    let mnonce: [u8; 16] = out[32..].try_into().unwrap();
    let owner_view = launch_measurement(
        &l.session.tik,
        1,
        55,
        21,
        GuestPolicy::from_raw(l.policy),
        &digest,
        &mnonce,
    );
    assert_eq!(out[..32], owner_view);

    // The firmware's log agrees with the predictor's, entry by entry.
    let log = fw.launch_log(h).unwrap();
    assert_eq!(log.entries.len(), 2);
    for (a, b) in log.entries.iter().zip(&expected.log().entries) {
        assert_eq!(
            (a.length, &a.content_hash, &a.digest_after),
            (b.length, &b.content_hash, &b.digest_after)
        );
        assert_eq!(a.gpa, b.gpa);
    }
    assert_eq!(log.final_digest(), Some(&digest[..]));
    assert!(log.to_string().contains("update_data"));

    // LAUNCH_SECRET: tampering is refused, the real packet lands decrypted.
    let mut secret = [0x2Eu8; 48];
    secret[..22].copy_from_slice(b"sevkit secret payload:");
    let iv = [0x42u8; 16];
    let measurement: [u8; 32] = out[..32].try_into().unwrap();
    let (ct, mac) = seal_secret(&l.session.tek, &l.session.tik, &iv, &measurement, &secret);
    let secret_cmd =
        |fw: &mut Firmware, mem: &mut VecMemory, hdr: PacketHeader, ct: &[u8], hdr_len: u32| {
            mem.write(SECRET_HDR, hdr.as_bytes()).unwrap();
            mem.write(SECRET_TRANS, ct).unwrap();
            let mut t = TransportBuffer::new_zeroed();
            t.handle = U32::new(h);
            t.hdr_paddr = U64::new(SECRET_HDR);
            t.hdr_len = U32::new(hdr_len);
            t.guest_paddr = U64::new(SECRET_DST);
            t.guest_len = U32::new(ct.len() as u32);
            t.trans_paddr = U64::new(SECRET_TRANS);
            t.trans_len = U32::new(ct.len() as u32);
            run(fw, SevCommand::LaunchSecret, &mut t, mem)
        };
    let mut bad_mac = mac;
    bad_mac[0] ^= 1;
    assert_eq!(
        secret_cmd(fw, mem, PacketHeader::new(0, iv, bad_mac), &ct, 0x34),
        FirmwareStatus::BAD_MEASUREMENT
    );
    let mut bad_ct = ct.clone();
    bad_ct[1] ^= 1;
    assert_eq!(
        secret_cmd(fw, mem, PacketHeader::new(0, iv, mac), &bad_ct, 0x34),
        FirmwareStatus::BAD_MEASUREMENT
    );
    assert_eq!(
        secret_cmd(fw, mem, PacketHeader::new(1, iv, mac), &ct, 0x34),
        FirmwareStatus::UNSUPPORTED
    );
    assert_eq!(
        secret_cmd(fw, mem, PacketHeader::new(0, iv, mac), &ct, 0x30),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(
        secret_cmd(fw, mem, PacketHeader::new(0, iv, mac), &ct[..40], 0x34),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(
        mem.read_vec(SECRET_DST, 48).unwrap(),
        [0u8; 48],
        "nothing written"
    );
    assert_eq!(
        secret_cmd(fw, mem, PacketHeader::new(0, iv, mac), &ct, 0x34),
        OK
    );
    let stored = mem.read_vec(SECRET_DST, 48).unwrap();
    assert_ne!(stored, secret, "stored encrypted");
    let mut dbg = DbgBuffer {
        handle: U32::new(h),
        reserved: U32::new(0),
        src_paddr: U64::new(SECRET_DST),
        dst_paddr: U64::new(HOST_BUF),
        len: U32::new(48),
    };
    assert_eq!(run(fw, SevCommand::DbgDecrypt, &mut dbg, mem), OK);
    assert_eq!(mem.read_vec(HOST_BUF, 48).unwrap(), secret);
    dbg.src_paddr = U64::new(DATA);
    dbg.len = U32::new(8192);
    assert_eq!(run(fw, SevCommand::DbgDecrypt, &mut dbg, mem), OK);
    assert_eq!(mem.read_vec(HOST_BUF, 8192).unwrap(), page);

    // DBG_ENCRYPT then DBG_DECRYPT round-trips.
    mem.write(HOST_BUF, &[0x99; 64]).unwrap();
    let mut enc = DbgBuffer {
        handle: U32::new(h),
        reserved: U32::new(0),
        src_paddr: U64::new(HOST_BUF),
        dst_paddr: U64::new(DBG_DST_GUEST),
        len: U32::new(64),
    };
    assert_eq!(run(fw, SevCommand::DbgEncrypt, &mut enc, mem), OK);
    assert_ne!(mem.read_vec(DBG_DST_GUEST, 64).unwrap(), [0x99; 64]);
    dbg.src_paddr = U64::new(DBG_DST_GUEST);
    dbg.len = U32::new(64);
    assert_eq!(run(fw, SevCommand::DbgDecrypt, &mut dbg, mem), OK);
    assert_eq!(mem.read_vec(HOST_BUF, 64).unwrap(), [0x99; 64]);
    dbg.len = U32::new(15);
    assert_eq!(
        run(fw, SevCommand::DbgDecrypt, &mut dbg, mem),
        FirmwareStatus::INVALID_LENGTH
    );
    dbg.len = U32::new(16);
    dbg.src_paddr = U64::new(DATA + 8);
    assert_eq!(
        run(fw, SevCommand::DbgDecrypt, &mut dbg, mem),
        FirmwareStatus::INVALID_ADDRESS
    );

    let mut fin = HandleBuffer {
        handle: U32::new(h),
    };
    assert_eq!(run(fw, SevCommand::LaunchFinish, &mut fin, mem), OK);
    assert_eq!(
        secret_cmd(fw, mem, PacketHeader::new(0, iv, mac), &ct, 0x34),
        FirmwareStatus::INVALID_GUEST_STATE
    );

    // ATTESTATION: length query, then a report signed by the PEK.
    let mut att = AttestationBuffer::new_zeroed();
    att.handle = U32::new(h);
    att.paddr = U64::new(REPORT_OUT);
    att.mnonce = [0xAA; 16];
    assert_eq!(
        run(fw, SevCommand::Attestation, &mut att, mem),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(att.len.get(), 0xD0);
    assert_eq!(run(fw, SevCommand::Attestation, &mut att, mem), OK);
    let report =
        LegacyAttestationReport::from_bytes(&mem.read_vec(REPORT_OUT, 0xD0).unwrap()).unwrap();
    assert_eq!(report.mnonce, [0xAA; 16]);
    assert_eq!(report.launch_digest, digest);
    assert_eq!(report.sig_usage.get(), 0x1002);
    assert_eq!(report.sig_algo.get(), 0x2);
    let (_, chain) = export(fw, mem);
    let pek = SevCert::from_bytes(&chain[..0x824]).unwrap();
    let pek_key = P384PublicKey::from_amd(pek.ecc_key().unwrap()).unwrap();
    pek_key
        .verify_sha256(report.signed_bytes(), &report.signature())
        .unwrap();
}

#[test]
fn session_tampering_and_policy_checks() {
    let mut fw = firmware(12);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let (pdh, _) = export(&mut fw, &mut mem);
    let key = *pdh.ecc_key().unwrap();
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let s = build_launch_session(&key, GuestPolicy::from_raw(0), &mut rng).unwrap();

    let try_start = |fw: &mut Firmware, mem: &mut VecMemory, s: &LaunchSession, policy: u32| {
        write_session(mem, s);
        launch_start_session(fw, mem, policy, 0).0
    };
    let mut t = s.clone();
    t.session.wrap_tk[0] ^= 1;
    assert_eq!(
        try_start(&mut fw, &mut mem, &t, 0),
        FirmwareStatus::BAD_MEASUREMENT
    );
    let mut t = s.clone();
    t.session.nonce[5] ^= 1;
    assert_eq!(
        try_start(&mut fw, &mut mem, &t, 0),
        FirmwareStatus::BAD_MEASUREMENT
    );
    let mut t = s.clone();
    t.session.policy_mac[31] ^= 1;
    assert_eq!(
        try_start(&mut fw, &mut mem, &t, 0),
        FirmwareStatus::BAD_MEASUREMENT
    );
    // The host launches with another policy than the owner MACed.
    assert_eq!(
        try_start(&mut fw, &mut mem, &s, 1),
        FirmwareStatus::BAD_MEASUREMENT
    );
    let mut t = s.clone();
    t.godh_cert.pubkey_usage = U32::new(0x1002);
    assert_eq!(
        try_start(&mut fw, &mut mem, &t, 0),
        FirmwareStatus::INVALID_CERTIFICATE
    );
    let mut t = s.clone();
    t.godh_cert.pubkey[8] ^= 1;
    assert_eq!(
        try_start(&mut fw, &mut mem, &t, 0),
        FirmwareStatus::INVALID_CERTIFICATE
    );
    // A session for another platform's PDH.
    let other_pdh = *firmware_pdh(13).ecc_key().unwrap();
    let foreign = build_launch_session(&other_pdh, GuestPolicy::from_raw(0), &mut rng).unwrap();
    assert_eq!(
        try_start(&mut fw, &mut mem, &foreign, 0),
        FirmwareStatus::BAD_MEASUREMENT
    );

    // Policy checks after the MACs: minimum API version and reserved bits.
    let newer = 1 << 16 | 56 << 24; // API 1.56 required, firmware is 1.55
    let s_newer = build_launch_session(&key, GuestPolicy::from_raw(newer), &mut rng).unwrap();
    assert_eq!(
        try_start(&mut fw, &mut mem, &s_newer, newer),
        FirmwareStatus::POLICY_FAILURE
    );
    let ok_api = 1 << 16 | 55 << 24;
    let s_ok = build_launch_session(&key, GuestPolicy::from_raw(ok_api), &mut rng).unwrap();
    assert_eq!(try_start(&mut fw, &mut mem, &s_ok, ok_api), OK);
    let reserved = 1 << 6;
    let s_res = build_launch_session(&key, GuestPolicy::from_raw(reserved), &mut rng).unwrap();
    assert_eq!(
        try_start(&mut fw, &mut mem, &s_res, reserved),
        FirmwareStatus::POLICY_FAILURE
    );
    // Lengths.
    let mut b = LaunchStartBuffer::new_zeroed();
    b.dh_cert_paddr = U64::new(BLOB_IN);
    b.dh_cert_len = U32::new(0x800);
    b.session_paddr = U64::new(BLOB_IN2);
    b.session_len = U32::new(0x80);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut b, &mut mem),
        FirmwareStatus::INVALID_LENGTH
    );
    b.dh_cert_len = U32::new(0x824);
    b.session_len = U32::new(0x90);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut b, &mut mem),
        FirmwareStatus::INVALID_LENGTH
    );
    b.session_len = U32::new(0x80);
    b.session_paddr = U64::new(MEM_SIZE);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut b, &mut mem),
        FirmwareStatus::INVALID_ADDRESS
    );
}

fn firmware_pdh(seed: u8) -> SevCert {
    let mut fw = firmware(seed);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    export(&mut fw, &mut mem).0
}

#[test]
#[allow(clippy::too_many_lines)]
fn nodbg_key_sharing_and_asids() {
    let mut fw = firmware(14);
    let mut mem = memory();
    init(&mut fw, &mut mem, true);
    // NODBG guest.
    let a = launch_start_plain(&mut fw, &mut mem, 1);
    assert_eq!(activate(&mut fw, &mut mem, a, 5), OK);
    mem.write(DATA, &[1; 64]).unwrap();
    assert_eq!(update(&mut fw, &mut mem, a, DATA, 64, false), OK);
    let mut dbg = DbgBuffer {
        handle: U32::new(a),
        reserved: U32::new(0),
        src_paddr: U64::new(DATA),
        dst_paddr: U64::new(HOST_BUF),
        len: U32::new(64),
    };
    assert_eq!(
        run(&mut fw, SevCommand::DbgDecrypt, &mut dbg, &mut mem),
        FirmwareStatus::POLICY_FAILURE
    );
    assert_eq!(
        run(&mut fw, SevCommand::DbgEncrypt, &mut dbg, &mut mem),
        FirmwareStatus::POLICY_FAILURE
    );

    // Key sharing: NOKS forbids it on either side.
    let mut ls = LaunchStartBuffer::new_zeroed();
    ls.handle = U32::new(a);
    ls.policy = GuestPolicy::from_raw(2);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut ls, &mut mem),
        FirmwareStatus::POLICY_FAILURE
    );
    let noks = launch_start_plain(&mut fw, &mut mem, 2);
    ls.handle = U32::new(noks);
    ls.policy = GuestPolicy::from_raw(0);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut ls, &mut mem),
        FirmwareStatus::POLICY_FAILURE
    );
    ls.handle = U32::new(99);
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut ls, &mut mem),
        FirmwareStatus::INVALID_GUEST
    );
    // A guest sharing A's key: same ASID allowed, same ciphertext.
    let src = launch_start_plain(&mut fw, &mut mem, 0);
    assert_eq!(activate(&mut fw, &mut mem, src, 6), OK);
    ls.handle = U32::new(src);
    assert_eq!(run(&mut fw, SevCommand::LaunchStart, &mut ls, &mut mem), OK);
    let shared = ls.handle.get();
    assert_eq!(
        activate(&mut fw, &mut mem, shared, 6),
        OK,
        "same key, same ASID"
    );
    assert_eq!(
        activate(&mut fw, &mut mem, noks, 6),
        FirmwareStatus::ASID_OWNED
    );
    mem.write(DATA + 0x1000, &[5; 32]).unwrap();
    assert_eq!(update(&mut fw, &mut mem, src, DATA + 0x1000, 32, false), OK);
    dbg.handle = U32::new(shared);
    dbg.src_paddr = U64::new(DATA + 0x1000);
    dbg.len = U32::new(32);
    assert_eq!(run(&mut fw, SevCommand::DbgDecrypt, &mut dbg, &mut mem), OK);
    assert_eq!(mem.read_vec(HOST_BUF, 32).unwrap(), [5; 32]);

    // ASID ranges: ES guests below MIN_SEV_ASID (5), SEV guests from it.
    let es = launch_start_plain(&mut fw, &mut mem, 4);
    assert_eq!(
        activate(&mut fw, &mut mem, es, 5),
        FirmwareStatus::INVALID_ASID
    );
    assert_eq!(
        activate(&mut fw, &mut mem, noks, 4),
        FirmwareStatus::INVALID_ASID
    );
    assert_eq!(
        activate(&mut fw, &mut mem, noks, 16),
        FirmwareStatus::INVALID_ASID
    );
    assert_eq!(
        activate(&mut fw, &mut mem, noks, 0),
        FirmwareStatus::INVALID_ASID
    );
    assert_eq!(activate(&mut fw, &mut mem, es, 4), OK);
    // VMSA: length and guest kind.
    assert_eq!(
        update(&mut fw, &mut mem, es, VMSA, 2048, true),
        FirmwareStatus::INVALID_LENGTH
    );
    assert_eq!(
        update(&mut fw, &mut mem, noks, VMSA, 4096, true),
        FirmwareStatus::UNSUPPORTED
    );
    assert_eq!(
        update(&mut fw, &mut mem, noks, DATA, 64, false),
        FirmwareStatus::INACTIVE
    );
    assert_eq!(update(&mut fw, &mut mem, es, VMSA, 4096, true), OK);
    assert_eq!(fw.launch_log(es).unwrap().entries[0].region, "vmsa[0]");
    // Deactivate: the ASID is dirty until DF_FLUSH.
    let mut d = HandleBuffer {
        handle: U32::new(es),
    };
    assert_eq!(run(&mut fw, SevCommand::Deactivate, &mut d, &mut mem), OK);
    let es2 = launch_start_plain(&mut fw, &mut mem, 4);
    assert_eq!(
        activate(&mut fw, &mut mem, es2, 4),
        FirmwareStatus::DF_FLUSH_REQUIRED
    );
    assert_eq!(fw.execute(0x0A, &mut [], &mut mem), OK);
    assert_eq!(activate(&mut fw, &mut mem, es2, 4), OK);
    let mut gs = GuestStatusBuffer::new_zeroed();
    gs.handle = U32::new(es2);
    assert_eq!(run(&mut fw, SevCommand::GuestStatus, &mut gs, &mut mem), OK);
    assert_eq!((gs.policy.raw(), gs.asid.get(), gs.state), (4, 4, 1));
}

#[test]
fn guest_table_is_bounded() {
    let mut fw = sevkit_testkit::firmware_with(
        15,
        FirmwareConfig {
            max_guests: 3,
            ..FirmwareConfig::default()
        },
    );
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    for h in 1..=3 {
        assert_eq!(launch_start_plain(&mut fw, &mut mem, 0), h);
    }
    let mut ls = LaunchStartBuffer::new_zeroed();
    assert_eq!(
        run(&mut fw, SevCommand::LaunchStart, &mut ls, &mut mem),
        FirmwareStatus::RESOURCE_LIMIT
    );
    let mut d = HandleBuffer {
        handle: U32::new(2),
    };
    assert_eq!(run(&mut fw, SevCommand::Decommission, &mut d, &mut mem), OK);
    assert_eq!(
        launch_start_plain(&mut fw, &mut mem, 0),
        2,
        "lowest free handle"
    );
    assert!(matches!(
        Firmware::open_with_chip(
            FirmwareConfig {
                min_sev_asid: 20,
                ..FirmwareConfig::default()
            },
            chip()
        ),
        Err(FirmwareError::Config(_))
    ));
}

/// Random command ids and buffers (biased towards real ids and in-range
/// addresses) never panic, and the firmware stays usable.
#[test]
fn random_commands_never_panic() {
    let mut rng = ChaCha20Rng::from_seed([16; 32]);
    let mut fw = firmware(16);
    let mut mem = VecMemory::new(0x20_0000);
    let ids: Vec<u32> = SevCommand::ALL.iter().map(|c| c.id()).collect();
    for i in 0..3000 {
        let id = if rng.next_u32() % 8 == 0 {
            rng.next_u32()
        } else {
            ids[rng.next_u32() as usize % ids.len()]
        };
        let mut buf = vec![0u8; (rng.next_u32() % 0x50) as usize];
        rng.fill_bytes(&mut buf);
        // Small handles, small lengths and in-range addresses now and then.
        for chunk in buf.chunks_mut(4) {
            match rng.next_u32() % 4 {
                0 => chunk.fill(0),
                1 => chunk[0] = (rng.next_u32() % 4) as u8,
                2 if chunk.len() == 4 => {
                    chunk.copy_from_slice(&((rng.next_u32() % 0x1F_0000) & !0xF).to_le_bytes());
                }
                _ => {}
            }
        }
        let _ = fw.execute(id, &mut buf, &mut mem);
        if i % 500 == 0 {
            let _ = fw.execute(0x01, &mut [0u8; 0x14], &mut mem);
        }
    }
    let mut st = PlatformStatusBuffer::new_zeroed();
    assert_eq!(run_any(&mut fw, &mut st, &mut mem), OK);
}

fn run_any(
    fw: &mut Firmware,
    st: &mut PlatformStatusBuffer,
    mem: &mut VecMemory,
) -> FirmwareStatus {
    fw.call(SevCommand::PlatformStatus, st, mem)
}

#[test]
fn debug_output_redacts_secrets() {
    let fw = firmware(17);
    let s = format!("{fw:?}");
    assert!(s.contains("<redacted>"), "{s}");
    let l = start_with_session(18, 0);
    let s = format!("{:?}", l.session);
    assert!(!s.contains(&format!("{:02x}", l.session.tek.as_bytes()[0]).repeat(4)));
    let _ = FromBytes::read_from_bytes(&[0u8; 4][..]).map(|h: HandleBuffer| h);
}

#[test]
fn firmware_is_send() {
    fn send<T: Send>() {}
    send::<Firmware>();
}

#[test]
fn platform_store_of_another_chip_or_without_chip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = FirmwareConfig {
        state_dir: Some(dir.path().to_owned()),
        seed: Some([19; 32]),
        ..FirmwareConfig::default()
    };
    let mut mem = memory();
    {
        let mut fw = Firmware::open_with_chip(config.clone(), chip()).unwrap();
        init(&mut fw, &mut mem, false);
    }
    let chip_file = dir.path().join("chip.sevfw");
    let saved_chip = std::fs::read(&chip_file).unwrap();
    std::fs::remove_file(&chip_file).unwrap();
    for err in [
        Firmware::open(config.clone()).unwrap_err(),
        Firmware::open_with_chip(config.clone(), chip()).unwrap_err(),
    ] {
        assert!(
            matches!(err, FirmwareError::Store(StoreError::Corrupted { .. })),
            "{err}"
        );
    }
    assert!(!chip_file.exists(), "nothing was minted over the orphan");

    // A platform file moved under another chip's state.
    let other = tempfile::tempdir().unwrap();
    let other_config = FirmwareConfig {
        state_dir: Some(other.path().to_owned()),
        ..config.clone()
    };
    drop(Firmware::open_with_chip(other_config.clone(), other_chip()).unwrap());
    std::fs::copy(
        dir.path().join("platform.sevfw"),
        other.path().join("platform.sevfw"),
    )
    .unwrap();
    let err = Firmware::open(other_config.clone()).unwrap_err();
    assert!(err.to_string().contains("another chip"), "{err}");
    // Back with its own chip, the platform file is fine.
    std::fs::write(&chip_file, &saved_chip).unwrap();
    assert!(Firmware::open(config).is_ok());
}

/// Child half of `kill_9_during_writes_leaves_a_valid_store`: rewrites the
/// persistent store as fast as it can until it is killed.
#[test]
#[ignore = "run by kill_9_during_writes_leaves_a_valid_store"]
fn store_writer_child() {
    let Some(dir) = std::env::var_os("SEV_FIRMWARE_WRITER_DIR") else {
        return;
    };
    let mut fw = Firmware::open_with_chip(
        FirmwareConfig {
            state_dir: Some(dir.into()),
            ..FirmwareConfig::default()
        },
        chip(),
    )
    .unwrap();
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    std::fs::write(std::env::var_os("SEV_FIRMWARE_WRITER_READY").unwrap(), b"").unwrap();
    loop {
        // PDH_GEN and PEK_GEN each rewrite platform.sevfw.
        assert_eq!(fw.execute(0x09, &mut [], &mut mem), OK);
        assert_eq!(fw.execute(0x05, &mut [], &mut mem), OK);
    }
}

#[cfg(unix)]
#[test]
fn kill_9_during_writes_leaves_a_valid_store() {
    use sev_crypto::legacy_cert::verify_sev_by_sev;
    let _ = chip(); // make sure the chip cache exists before timing anything
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4u64 {
        let ready = dir.path().join(format!("ready{round}"));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "store_writer_child",
                "--test-threads=1",
            ])
            .env("SEV_FIRMWARE_WRITER_DIR", dir.path())
            .env("SEV_FIRMWARE_WRITER_READY", &ready)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !ready.exists() && start.elapsed() < std::time::Duration::from_secs(60) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(ready.exists(), "writer did not start");
        std::thread::sleep(std::time::Duration::from_millis(20 + 37 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let fw = Firmware::open(FirmwareConfig {
            state_dir: Some(dir.path().to_owned()),
            ..FirmwareConfig::default()
        })
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let pdh = *fw.pdh_cert().expect("the store survived");
        let mut mem = memory();
        let mut fw = fw;
        init(&mut fw, &mut mem, false);
        let (exported, chain) = export(&mut fw, &mut mem);
        assert_eq!(exported, pdh);
        let chain = chain_of(&exported, &chain);
        verify_sev_by_sev(&chain.pdh, &chain.pek).unwrap();
        verify_sev_by_sev(&chain.pek, &chain.cek).unwrap();
        verify_sev_by_sev(&chain.pek, &chain.oca).unwrap();
    }
}

/// A host that issues many tiny LAUNCH_UPDATE_DATA commands cannot grow the
/// firmware's memory without bound: the launch log keeps
/// `LAUNCH_LOG_MAX_ENTRIES` entries, counts the rest, keeps the newest, and
/// still ends at the launch digest (what LAUNCH_MEASURE measured).
#[test]
fn the_launch_log_is_bounded_and_says_so() {
    let mut fw = firmware(46);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    let handle = launch_start_plain(&mut fw, &mut mem, 0x0);
    assert_eq!(
        activate(&mut fw, &mut mem, handle, 9),
        FirmwareStatus::SUCCESS
    );
    let steps = LAUNCH_LOG_MAX_ENTRIES + 1000;
    let mut digest = SevDigestBuilder::new();
    for i in 0..steps {
        let paddr = DATA + (i as u64 % 256) * 16;
        let block = [(i % 251) as u8; 16];
        mem.write(paddr, &block).unwrap();
        digest.update("update_data", Some(paddr), LogPageType::SevData, &block);
        assert_eq!(
            update(&mut fw, &mut mem, handle, paddr, 16, false),
            FirmwareStatus::SUCCESS
        );
    }
    let log = fw.launch_log(handle).unwrap();
    assert_eq!(log.entries.len(), LAUNCH_LOG_MAX_ENTRIES);
    assert_eq!(log.omitted, 1000);
    assert!(log.is_truncated());
    assert_eq!(log.last.as_ref().unwrap().step, steps - 1);
    let (expected, _) = digest.finish();
    assert_eq!(log.final_digest(), Some(&expected[..]));
    assert!(log
        .to_string()
        .contains("1000 more steps were measured and not recorded"));
}
