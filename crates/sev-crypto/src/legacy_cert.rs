//! Signatures of legacy SEV certificates: AMD's binary ARK/ASK (RSA-PSS) and
//! the platform's `sev_cert` certificates (ECDSA P-384 or RSA-PSS).
//!
//! Rules (AMD SEV API §1.7-1.8, checked on real Naples and Rome chains):
//! - A `sev_cert` is signed over bytes `[0, 0x414)`. The verifier looks for the
//!   signature slot whose (usage, algorithm) equal the signer's, and hashes
//!   with the signer's algorithm (SHA-256 or SHA-384).
//! - AMD certificates are signed over the 0x40-byte header, the public
//!   exponent and the modulus, with RSASSA-PSS (MGF1 of the same hash, salt as
//!   long as the hash): SHA-256 for 2048-bit keys (Naples), SHA-384 for
//!   4096-bit keys. All integers are little-endian.
//! - A CEK carries the ASK's signature in a slot with usage ASK.

use sev_abi::amd_cert::AmdCert;
use sev_abi::legacy_cert::{Algorithm, HashAlgorithm, KeyUsage, SevCert};
use sev_abi::signature::EcdsaSignature;
use zerocopy::FromBytes;

use crate::ecdsa::P384PublicKey;
use crate::rsa_pss::{verify_rsa_pss_le, RsaHash};
use crate::CryptoError;

fn rsa_hash(hash: HashAlgorithm) -> RsaHash {
    match hash {
        HashAlgorithm::Sha256 => RsaHash::Sha256,
        HashAlgorithm::Sha384 => RsaHash::Sha384,
    }
}

fn amd_hash(cert: &AmdCert) -> RsaHash {
    if cert.modulus_bits <= 2048 {
        RsaHash::Sha256
    } else {
        RsaHash::Sha384
    }
}

/// Verifies that `subject` (an AMD ARK or ASK) is signed by `signer`
/// (the ARK; the ARK signs itself). Also checks that `subject` names the
/// signer as its certifying key.
pub fn verify_amd_by_amd(subject: &AmdCert, signer: &AmdCert) -> Result<(), CryptoError> {
    if subject.certifying_id != signer.key_id {
        return Err(CryptoError::ChainMismatch(
            "certificate's certifying id is not the signer's key id".into(),
        ));
    }
    verify_rsa_pss_le(
        &signer.modulus,
        &signer.pub_exp,
        amd_hash(signer),
        &subject.signed_bytes(),
        &subject.signature,
    )
}

/// Verifies that a CEK (`subject`) is signed by AMD's ASK (`ask`).
pub fn verify_sev_by_amd(subject: &SevCert, ask: &AmdCert) -> Result<(), CryptoError> {
    let slot = subject
        .signatures()
        .into_iter()
        .find(|s| s.usage == KeyUsage::Ask as u32)
        .ok_or_else(|| {
            CryptoError::ChainMismatch("certificate has no signature by an ASK".into())
        })?;
    let algo = Algorithm::from_u32(slot.algo)
        .filter(|a| a.is_rsa())
        .ok_or_else(|| {
            CryptoError::ChainMismatch(format!(
                "ASK signature slot has algorithm {:#x}, not RSA",
                slot.algo
            ))
        })?;
    let hash = algo.hash().map_or(amd_hash(ask), rsa_hash);
    let len = (ask.modulus_bits / 8) as usize;
    let signature = slot.bytes.get(..len).ok_or_else(|| {
        CryptoError::ChainMismatch("ASK modulus larger than a signature slot".into())
    })?;
    verify_rsa_pss_le(
        &ask.modulus,
        &ask.pub_exp,
        hash,
        subject.signed_bytes(),
        signature,
    )
}

/// Verifies that `subject` is signed by the `sev_cert` `signer` (OCA -> PEK,
/// CEK -> PEK, PEK -> PDH, OCA -> OCA).
pub fn verify_sev_by_sev(subject: &SevCert, signer: &SevCert) -> Result<(), CryptoError> {
    let usage = signer.usage() as u32;
    let algo = signer.algorithm();
    let slot = subject
        .signatures()
        .into_iter()
        .find(|s| s.usage == usage && s.algo == algo as u32)
        .ok_or_else(|| {
            CryptoError::ChainMismatch(format!(
                "no signature slot with the signer's usage {:?} and algorithm {algo:?}",
                signer.usage()
            ))
        })?;
    let hash = algo.hash().ok_or_else(|| {
        CryptoError::ChainMismatch(format!("signer algorithm {algo:?} has no hash"))
    })?;
    if algo.is_ecdsa() {
        let key = signer
            .ecc_key()
            .ok_or_else(|| CryptoError::ChainMismatch("signer has no ECC key".into()))?;
        let key = P384PublicKey::from_amd(key)?;
        let sig = EcdsaSignature::ref_from_bytes(slot.bytes.as_slice())
            .map_err(|_| CryptoError::ChainMismatch("signature slot size".into()))?;
        match hash {
            HashAlgorithm::Sha256 => key.verify_sha256(subject.signed_bytes(), sig),
            HashAlgorithm::Sha384 => key.verify_sha384(subject.signed_bytes(), sig),
        }
    } else if algo.is_rsa() {
        let key = signer
            .rsa_key()
            .ok_or_else(|| CryptoError::ChainMismatch("signer has no RSA key".into()))?;
        let signature = slot
            .bytes
            .get(..key.modulus.len())
            .unwrap_or(&slot.bytes[..]);
        verify_rsa_pss_le(
            key.modulus,
            key.pub_exp,
            rsa_hash(hash),
            subject.signed_bytes(),
            signature,
        )
    } else {
        Err(CryptoError::ChainMismatch(format!(
            "signer algorithm {algo:?} cannot sign"
        )))
    }
}
