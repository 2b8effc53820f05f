//! PEK_CERT_IMPORT on arbitrary or mutated certificates: never panics,
//! answers only SUCCESS, INVALID_CERTIFICATE or BAD_SIGNATURE, and whenever
//! it accepts, the exported PEK verifies with the imported OCA and with the
//! CEK, and the platform reports itself externally owned.
//!
//! Input: byte 0 bit 0 set: the bytes after it are the PEK certificate then
//! the OCA certificate (zero padded). Clear: bytes 1..3 are an offset (LE)
//! and the rest overwrite a valid PEK ‖ OCA pair from there on.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sev_abi::legacy_cert::{Algorithm, KeyUsage, SevCert};
use sev_abi::status::FirmwareStatus;
use sev_crypto::ecdsa::P384SigningKey;
use sev_crypto::legacy_cert::verify_sev_by_sev;
use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig, SystemMemory, VecMemory};
use zerocopy::IntoBytes;

const CERT: usize = 0x824;
const PEK_AT: u64 = 0x1000;
const OCA_AT: u64 = 0x2000;
const CSR_AT: u64 = 0x3000;
const PDH_AT: u64 = 0x4000;
const CHAIN_AT: u64 = 0x6000;

/// A Naples-style chip (RSA-2048 roots): minted once, quickly.
fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        ChipIdentity::generate_with_bits(&mut ChaCha20Rng::from_seed([0x5E; 32]), 1, 55, 2048)
            .unwrap()
    })
    .clone()
}

fn platform() -> (Firmware, VecMemory) {
    let mut fw = Firmware::open_with_chip(
        FirmwareConfig {
            seed: Some([2; 32]),
            ..FirmwareConfig::default()
        },
        chip(),
    )
    .unwrap();
    let mut mem = VecMemory::new(0x10_0000);
    assert_eq!(
        fw.execute(0x01, &mut [0u8; 0x14], &mut mem),
        FirmwareStatus::SUCCESS
    );
    (fw, mem)
}

fn sign(cert: &mut SevCert, key: &P384SigningKey) {
    let sig = key.sign_sha256(cert.signed_bytes()).unwrap();
    let mut slot = [0u8; 512];
    slot.copy_from_slice(sig.as_bytes());
    cert.set_signature(0, KeyUsage::Oca, Algorithm::EcdsaSha256, &slot)
        .unwrap();
}

/// A valid PEK ‖ OCA pair for the seeded platform (its CSR signed by an
/// owner OCA).
fn valid_pair() -> &'static [u8] {
    static PAIR: OnceLock<Vec<u8>> = OnceLock::new();
    PAIR.get_or_init(|| {
        let (mut fw, mut mem) = platform();
        let mut csr = [0u8; 12];
        csr[..8].copy_from_slice(&CSR_AT.to_le_bytes());
        csr[8..].copy_from_slice(&(CERT as u32).to_le_bytes());
        assert_eq!(
            fw.execute(0x06, &mut csr, &mut mem),
            FirmwareStatus::SUCCESS
        );
        let oca = P384SigningKey::from_be_scalar(&[0x0C; 48]).unwrap();
        let mut oca_cert = SevCert::new_ecc(
            1,
            55,
            KeyUsage::Oca,
            Algorithm::EcdsaSha256,
            &oca.public_key_ref().to_amd(),
        );
        sign(&mut oca_cert, &oca);
        let mut pek = SevCert::from_bytes(&mem.read_vec(CSR_AT, CERT).unwrap()).unwrap();
        sign(&mut pek, &oca);
        let mut pair = pek.as_bytes().to_vec();
        pair.extend_from_slice(oca_cert.as_bytes());
        pair
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut pair = valid_pair().to_vec();
    if mode & 1 != 0 {
        pair.fill(0);
        let n = rest.len().min(pair.len());
        pair[..n].copy_from_slice(&rest[..n]);
    } else if let Some((offset, bytes)) = rest.split_first_chunk::<2>() {
        let offset = usize::from(u16::from_le_bytes(*offset)) % pair.len();
        let n = bytes.len().min(pair.len() - offset);
        pair[offset..offset + n].copy_from_slice(&bytes[..n]);
    }
    let (mut fw, mut mem) = platform();
    mem.write(PEK_AT, &pair[..CERT]).unwrap();
    mem.write(OCA_AT, &pair[CERT..]).unwrap();
    let mut buf = [0u8; 0x1C];
    buf[..8].copy_from_slice(&PEK_AT.to_le_bytes());
    buf[8..12].copy_from_slice(&(CERT as u32).to_le_bytes());
    buf[16..24].copy_from_slice(&OCA_AT.to_le_bytes());
    buf[24..28].copy_from_slice(&(CERT as u32).to_le_bytes());
    let status = fw.execute(0x07, &mut buf, &mut mem);
    assert!(
        [
            FirmwareStatus::SUCCESS,
            FirmwareStatus::INVALID_CERTIFICATE,
            FirmwareStatus::BAD_SIGNATURE
        ]
        .contains(&status),
        "{status:?}"
    );
    if status != FirmwareStatus::SUCCESS {
        return;
    }
    let mut st = [0u8; 12];
    assert_eq!(fw.execute(0x04, &mut st, &mut mem), FirmwareStatus::SUCCESS);
    assert_eq!(st[3] & 1, 1, "externally owned after an import");
    let mut export = [0u8; 0x1C];
    export[..8].copy_from_slice(&PDH_AT.to_le_bytes());
    export[8..12].copy_from_slice(&(CERT as u32).to_le_bytes());
    export[16..24].copy_from_slice(&CHAIN_AT.to_le_bytes());
    export[24..28].copy_from_slice(&(3 * CERT as u32).to_le_bytes());
    assert_eq!(
        fw.execute(0x08, &mut export, &mut mem),
        FirmwareStatus::SUCCESS
    );
    let chain = mem.read_vec(CHAIN_AT, 3 * CERT).unwrap();
    let pek = SevCert::from_bytes(&chain[..CERT]).unwrap();
    let oca = SevCert::from_bytes(&chain[CERT..2 * CERT]).unwrap();
    let cek = SevCert::from_bytes(&chain[2 * CERT..]).unwrap();
    verify_sev_by_sev(&pek, &oca).unwrap();
    verify_sev_by_sev(&pek, &cek).unwrap();
    verify_sev_by_sev(&oca, &oca).unwrap();
});
