//! RSASSA-PSS over AMD's little-endian integers (legacy ARK/ASK
//! certificates and the ASK's signature on the CEK).
//!
//! AMD stores the modulus, the public exponent and the signature as
//! little-endian integers; they are reversed before use. The padding is PSS
//! with MGF1 over the same hash and a salt as long as the hash (32 bytes for
//! SHA-256, 48 for SHA-384).

use rsa::pss::Pss;
use rsa::traits::PublicKeyParts;
use rsa::BigUint;
use sha2::{Digest, Sha256, Sha384};

pub use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::{CryptoError, Result};

/// Smallest modulus accepted, in bits. AMD uses 2048 (Naples) and 4096
/// (Rome and later).
pub const MIN_MODULUS_BITS: usize = 1024;
/// Largest modulus accepted, in bits.
pub const MAX_MODULUS_BITS: usize = 4096;

/// Hash of an RSA-PSS signature (and of its MGF1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsaHash {
    /// SHA-256, salt 32 bytes (Naples).
    Sha256,
    /// SHA-384, salt 48 bytes (Rome and later, and the SNP X.509 chain).
    Sha384,
}

impl RsaHash {
    /// Digest (and default salt) length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }

    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(msg).to_vec(),
            Self::Sha384 => Sha384::digest(msg).to_vec(),
        }
    }

    fn pss(self, salt_len: usize) -> Pss {
        match self {
            Self::Sha256 => Pss::new_with_salt::<Sha256>(salt_len),
            Self::Sha384 => Pss::new_with_salt::<Sha384>(salt_len),
        }
    }
}

fn reversed(le: &[u8]) -> Vec<u8> {
    le.iter().rev().copied().collect()
}

/// Builds an RSA public key from little-endian modulus and exponent (zero
/// padding allowed). Rejects moduli outside
/// [`MIN_MODULUS_BITS`]..=[`MAX_MODULUS_BITS`], even moduli and bad
/// exponents.
pub fn rsa_public_key_from_le(modulus_le: &[u8], exponent_le: &[u8]) -> Result<RsaPublicKey> {
    let n = BigUint::from_bytes_le(modulus_le);
    let e = BigUint::from_bytes_le(exponent_le);
    checked_public_key(n, e)
}

pub(crate) fn checked_public_key(n: BigUint, e: BigUint) -> Result<RsaPublicKey> {
    let bits = n.bits();
    if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
        return Err(CryptoError::InvalidPublicKey(
            "RSA modulus size out of range",
        ));
    }
    if n.to_bytes_le().first().is_none_or(|low| low & 1 == 0) {
        return Err(CryptoError::InvalidPublicKey("RSA modulus is even"));
    }
    RsaPublicKey::new(n, e)
        .map_err(|_| CryptoError::InvalidPublicKey("RSA public exponent is not acceptable"))
}

/// Serializes a public key's modulus and exponent as little-endian integers
/// zero-padded to `width` bytes each (AMD's fields: 256 or 512 bytes).
pub fn rsa_public_key_to_le(key: &RsaPublicKey, width: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    Ok((to_le_padded(key.n(), width)?, to_le_padded(key.e(), width)?))
}

fn to_le_padded(value: &BigUint, width: usize) -> Result<Vec<u8>> {
    let mut le = value.to_bytes_le();
    if le.len() > width {
        return Err(CryptoError::BadLength {
            what: "RSA integer field",
            expected: width,
            actual: le.len(),
        });
    }
    le.resize(width, 0);
    Ok(le)
}

/// Verifies an RSASSA-PSS signature given as big-endian bytes, with MGF1 of
/// `hash` and salt length `salt_len`. The signature may carry leading zero
/// bytes beyond the modulus size.
pub fn verify_rsa_pss(
    key: &RsaPublicKey,
    hash: RsaHash,
    salt_len: usize,
    msg: &[u8],
    signature_be: &[u8],
) -> Result<()> {
    let k = key.size();
    let first = signature_be
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(signature_be.len());
    let significant = &signature_be[first..];
    if significant.len() > k {
        return Err(CryptoError::MalformedSignature(
            "RSA signature longer than the modulus",
        ));
    }
    if BigUint::from_bytes_be(significant) >= *key.n() {
        return Err(CryptoError::MalformedSignature(
            "RSA signature not below the modulus",
        ));
    }
    let mut sig = vec![0u8; k];
    sig[k - significant.len()..].copy_from_slice(significant);
    let hashed = hash.digest(msg);
    key.verify(hash.pss(salt_len), &hashed, &sig)
        .map_err(|_| CryptoError::BadSignature("RSASSA-PSS"))
}

/// Verifies an RSASSA-PSS signature where modulus, exponent and signature
/// are little-endian (AMD's legacy certificate encoding); MGF1 uses `hash`
/// and the salt is as long as the hash.
pub fn verify_rsa_pss_le(
    modulus_le: &[u8],
    exponent_le: &[u8],
    hash: RsaHash,
    msg: &[u8],
    signature_le: &[u8],
) -> Result<()> {
    let key = rsa_public_key_from_le(modulus_le, exponent_le)?;
    verify_rsa_pss(&key, hash, hash.digest_len(), msg, &reversed(signature_le))
}

/// Signs `msg` with RSASSA-PSS (MGF1 of `hash`, salt as long as the hash,
/// random salt) and returns the signature as a little-endian integer of the
/// modulus size.
pub fn sign_rsa_pss_le(key: &RsaPrivateKey, hash: RsaHash, msg: &[u8]) -> Result<Vec<u8>> {
    let hashed = hash.digest(msg);
    let sig = key
        .sign_with_rng(&mut rand_core::OsRng, hash.pss(hash.digest_len()), &hashed)
        .map_err(|_| CryptoError::SigningFailed("RSASSA-PSS"))?;
    Ok(reversed(&sig))
}

/// Generates an RSA key of `bits` bits with exponent 65537 (slow in debug
/// builds for 4096 bits).
pub fn generate_rsa_key(bits: usize) -> Result<RsaPrivateKey> {
    RsaPrivateKey::new(&mut rand_core::OsRng, bits)
        .map_err(|_| CryptoError::InvalidPrivateKey("RSA key generation failed"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// A 1024-bit key shared by the crate's tests (fast to generate).
    pub(crate) fn test_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| generate_rsa_key(1024).unwrap())
    }

    #[test]
    fn le_round_trip_both_hashes() {
        let key = test_key();
        let (n_le, e_le) = rsa_public_key_to_le(&key.to_public_key(), 512).unwrap();
        assert_eq!(n_le.len(), 512);
        assert_eq!(e_le[..3], [0x01, 0x00, 0x01], "65537 little-endian");
        let msg = b"version || key_id || ... || modulus";
        for hash in [RsaHash::Sha256, RsaHash::Sha384] {
            let sig = sign_rsa_pss_le(key, hash, msg).unwrap();
            assert_eq!(sig.len(), 128);
            verify_rsa_pss_le(&n_le, &e_le, hash, msg, &sig).unwrap();
            // Zero padding of the signature slot (high bytes) is accepted.
            let mut padded = sig.clone();
            padded.resize(512, 0);
            verify_rsa_pss_le(&n_le, &e_le, hash, msg, &padded).unwrap();
            // Big-endian use of the same bytes fails.
            let be = reversed(&sig);
            assert!(verify_rsa_pss_le(&n_le, &e_le, hash, msg, &be).is_err());
            // Tampering.
            let mut bad = sig.clone();
            bad[0] ^= 1;
            assert!(verify_rsa_pss_le(&n_le, &e_le, hash, msg, &bad).is_err());
            let mut m = msg.to_vec();
            m[0] ^= 1;
            assert!(verify_rsa_pss_le(&n_le, &e_le, hash, &m, &sig).is_err());
        }
        // The hash must match.
        let sig = sign_rsa_pss_le(key, RsaHash::Sha384, msg).unwrap();
        assert!(verify_rsa_pss_le(&n_le, &e_le, RsaHash::Sha256, msg, &sig).is_err());
    }

    #[test]
    fn salt_length_is_checked() {
        let key = test_key();
        let msg = b"salt";
        let hashed = Sha384::digest(msg);
        let sig = key
            .sign_with_rng(
                &mut rand_core::OsRng,
                Pss::new_with_salt::<Sha384>(20),
                &hashed,
            )
            .unwrap();
        let public = key.to_public_key();
        verify_rsa_pss(&public, RsaHash::Sha384, 20, msg, &sig).unwrap();
        assert!(verify_rsa_pss(&public, RsaHash::Sha384, 48, msg, &sig).is_err());
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let key = test_key();
        let (n_le, e_le) = rsa_public_key_to_le(&key.to_public_key(), 128).unwrap();
        // Signature >= n.
        let mut big = n_le.clone();
        big[0] = big[0].wrapping_add(1);
        assert!(matches!(
            verify_rsa_pss_le(&n_le, &e_le, RsaHash::Sha384, b"m", &n_le),
            Err(CryptoError::MalformedSignature(_))
        ));
        assert!(verify_rsa_pss_le(&n_le, &e_le, RsaHash::Sha384, b"m", &big).is_err());
        // Longer than the modulus with non-zero high bytes.
        let mut long = vec![1u8; 129];
        long[128] = 1;
        assert!(verify_rsa_pss_le(&n_le, &e_le, RsaHash::Sha384, b"m", &long).is_err());
        // Empty, zero, tiny and even moduli.
        assert!(verify_rsa_pss_le(&[], &e_le, RsaHash::Sha384, b"m", &[1]).is_err());
        assert!(verify_rsa_pss_le(&[0; 512], &e_le, RsaHash::Sha384, b"m", &[1]).is_err());
        assert!(verify_rsa_pss_le(&[0xFF; 16], &e_le, RsaHash::Sha384, b"m", &[1]).is_err());
        let mut even = n_le.clone();
        even[0] &= 0xFE;
        assert!(rsa_public_key_from_le(&even, &e_le).is_err());
        assert!(rsa_public_key_from_le(&n_le, &[]).is_err());
        assert!(rsa_public_key_from_le(&[0xFF; 513], &e_le).is_err());
        assert!(verify_rsa_pss_le(&n_le, &e_le, RsaHash::Sha384, b"m", &[]).is_err());
    }
}
