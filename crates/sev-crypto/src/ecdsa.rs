//! ECDSA on P-384 in AMD's encoding.
//!
//! AMD stores a signature as `r` and `s`, each a 72-byte little-endian
//! integer (48 significant bytes, zero padded), followed by 368 zero bytes
//! ([`EcdsaSignature`]), and public keys as little-endian coordinates
//! ([`EccPublicKey`]).
//!
//! ECDSA P-384 with SHA-384 (attestation reports, VCEK-signed data, the SNP
//! ID block) runs on aws-lc-rs. ECDSA P-384 with SHA-256 (legacy `sev_cert`
//! certificates and the legacy attestation report) runs on RustCrypto's
//! `p384`, because aws-lc-rs has no fixed-size P-384/SHA-256 algorithm; the
//! 32-byte SHA-256 digest is used directly as the integer `e` (FIPS 186
//! truncation keeps all 256 bits of a digest shorter than `n`).

use core::fmt;

use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, ParsedPublicKey, ECDSA_P384_SHA384_FIXED,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use p384::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use sev_abi::pubkey::EccPublicKey;
use sev_abi::signature::{EcdsaSignature, P384_SCALAR_LEN};
use sha2::{Digest, Sha256};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::{CryptoError, Result};

/// Length of an uncompressed SEC1 P-384 point (`04 || x || y`).
pub const P384_SEC1_LEN: usize = 1 + 2 * P384_SCALAR_LEN;
/// Length of a fixed-size big-endian `r || s` signature.
pub const P384_FIXED_SIG_LEN: usize = 2 * P384_SCALAR_LEN;

/// Converts AMD's slot to big-endian `r || s`, rejecting non-zero padding in
/// the components or in the 368 trailing bytes.
fn amd_to_fixed(sig: &EcdsaSignature) -> Result<[u8; P384_FIXED_SIG_LEN]> {
    let (r, s) = sig.to_be_scalars().ok_or(CryptoError::MalformedSignature(
        "r or s has non-zero bytes above the 48-byte P-384 scalar",
    ))?;
    if sig.reserved.iter().any(|b| *b != 0) {
        return Err(CryptoError::MalformedSignature(
            "reserved bytes after r and s are not zero",
        ));
    }
    let mut fixed = [0u8; P384_FIXED_SIG_LEN];
    fixed[..P384_SCALAR_LEN].copy_from_slice(&r);
    fixed[P384_SCALAR_LEN..].copy_from_slice(&s);
    Ok(fixed)
}

/// Builds AMD's slot from big-endian `r || s`.
fn fixed_to_amd(fixed: &[u8]) -> Result<EcdsaSignature> {
    if fixed.len() != P384_FIXED_SIG_LEN {
        return Err(CryptoError::SigningFailed(
            "signer returned a signature of the wrong size",
        ));
    }
    let mut r = [0u8; P384_SCALAR_LEN];
    let mut s = [0u8; P384_SCALAR_LEN];
    r.copy_from_slice(&fixed[..P384_SCALAR_LEN]);
    s.copy_from_slice(&fixed[P384_SCALAR_LEN..]);
    Ok(EcdsaSignature::from_be_scalars(&r, &s))
}

/// A validated P-384 public key, parsed once for fast repeated
/// verification.
#[derive(Clone)]
pub struct P384PublicKey {
    sec1: [u8; P384_SEC1_LEN],
    /// aws-lc-rs key for ECDSA P-384 / SHA-384 (fixed `r || s`).
    fast: ParsedPublicKey,
    /// RustCrypto key for the legacy SHA-256 path.
    legacy: p384::ecdsa::VerifyingKey,
}

impl fmt::Debug for P384PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P384PublicKey({})", hex::encode(self.sec1))
    }
}

impl PartialEq for P384PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.sec1 == other.sec1
    }
}

impl Eq for P384PublicKey {}

impl P384PublicKey {
    /// Parses a SEC1-encoded point (uncompressed or compressed). Rejects
    /// points not on the curve and the identity.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self> {
        let legacy = p384::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .map_err(|_| CryptoError::InvalidPublicKey("not a valid SEC1 P-384 point"))?;
        let mut sec1 = [0u8; P384_SEC1_LEN];
        sec1.copy_from_slice(legacy.to_encoded_point(false).as_bytes());
        let fast = ParsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, sec1)
            .map_err(|_| CryptoError::InvalidPublicKey("aws-lc-rs rejected the P-384 point"))?;
        Ok(Self { sec1, fast, legacy })
    }

    /// Converts AMD's 0x404-byte key structure (curve must be P-384, padding
    /// zero).
    pub fn from_amd(key: &EccPublicKey) -> Result<Self> {
        let sec1 = key.to_p384_sec1().ok_or(CryptoError::InvalidPublicKey(
            "AMD key is not P-384 or its coordinate padding is not zero",
        ))?;
        Self::from_sec1(&sec1)
    }

    /// The uncompressed SEC1 encoding (`04 || x || y`, big-endian).
    pub fn to_sec1(&self) -> [u8; P384_SEC1_LEN] {
        self.sec1
    }

    /// AMD's 0x404-byte little-endian structure for this key.
    pub fn to_amd(&self) -> EccPublicKey {
        let mut x = [0u8; P384_SCALAR_LEN];
        let mut y = [0u8; P384_SCALAR_LEN];
        x.copy_from_slice(&self.sec1[1..=P384_SCALAR_LEN]);
        y.copy_from_slice(&self.sec1[1 + P384_SCALAR_LEN..]);
        EccPublicKey::from_p384_be(&x, &y)
    }

    /// Verifies ECDSA P-384 / SHA-384 over `msg` with a signature in AMD's
    /// layout (non-zero padding is rejected).
    pub fn verify_sha384(&self, msg: &[u8], sig: &EcdsaSignature) -> Result<()> {
        let fixed = amd_to_fixed(sig)?;
        self.verify_sha384_fixed(msg, &fixed)
    }

    /// Verifies ECDSA P-384 / SHA-384 over `msg` with a big-endian
    /// `r || s` signature (48 bytes each).
    pub fn verify_sha384_fixed(&self, msg: &[u8], rs_be: &[u8; P384_FIXED_SIG_LEN]) -> Result<()> {
        self.fast
            .verify_sig(msg, rs_be)
            .map_err(|_| CryptoError::BadSignature("ECDSA P-384 SHA-384"))
    }

    /// Verifies ECDSA P-384 / SHA-384 over `msg` with a DER
    /// `ECDSA-Sig-Value` (as in X.509 certificates).
    pub fn verify_sha384_der(&self, msg: &[u8], der_sig: &[u8]) -> Result<()> {
        let sig = p384::ecdsa::Signature::from_der(der_sig)
            .map_err(|_| CryptoError::MalformedSignature("not a DER ECDSA P-384 signature"))?;
        let mut fixed = [0u8; P384_FIXED_SIG_LEN];
        fixed.copy_from_slice(&sig.to_bytes());
        self.verify_sha384_fixed(msg, &fixed)
    }

    /// Verifies ECDSA P-384 / SHA-256 (legacy `sev_cert` signatures and the
    /// legacy attestation report) with a signature in AMD's layout.
    pub fn verify_sha256(&self, msg: &[u8], sig: &EcdsaSignature) -> Result<()> {
        let fixed = amd_to_fixed(sig)?;
        let sig = p384::ecdsa::Signature::from_slice(&fixed)
            .map_err(|_| CryptoError::BadSignature("ECDSA P-384 SHA-256: r or s out of range"))?;
        let digest = Sha256::digest(msg);
        self.legacy
            .verify_prehash(&digest, &sig)
            .map_err(|_| CryptoError::BadSignature("ECDSA P-384 SHA-256"))
    }
}

/// A P-384 signing key.
///
/// Holds the key twice: as an aws-lc-rs key pair (fast SHA-384 signing) and
/// as a RustCrypto key (legacy SHA-256 signing, scalar export). The
/// RustCrypto key zeroizes on drop; AWS-LC cleanses the memory of its keys
/// when they are freed. `Debug` prints `<redacted>`.
pub struct P384SigningKey {
    fast: EcdsaKeyPair,
    legacy: p384::ecdsa::SigningKey,
    public: P384PublicKey,
}

impl ZeroizeOnDrop for P384SigningKey {}

impl fmt::Debug for P384SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P384SigningKey")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl P384SigningKey {
    /// A fresh random key from the operating system's RNG.
    ///
    /// # Panics
    /// If aws-lc-rs refuses a freshly generated valid key, which would be a
    /// library bug.
    pub fn generate() -> Self {
        let secret = p384::SecretKey::random(&mut rand_core::OsRng);
        let scalar = Zeroizing::new(<[u8; P384_SCALAR_LEN]>::from(secret.to_bytes()));
        Self::from_be_scalar(&scalar).expect("a freshly generated P-384 key is valid")
    }

    /// Imports a private scalar (48 bytes, big-endian, in `[1, n)`).
    pub fn from_be_scalar(scalar: &[u8; P384_SCALAR_LEN]) -> Result<Self> {
        let legacy = p384::ecdsa::SigningKey::from_slice(scalar)
            .map_err(|_| CryptoError::InvalidPrivateKey("P-384 scalar is zero or not below n"))?;
        let point = legacy.verifying_key().to_encoded_point(false);
        let fast = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            scalar,
            point.as_bytes(),
        )
        .map_err(|_| CryptoError::InvalidPrivateKey("aws-lc-rs rejected the P-384 key"))?;
        if fast.public_key().as_ref() != point.as_bytes() {
            return Err(CryptoError::InvalidPrivateKey(
                "aws-lc-rs and p384 disagree on the public key",
            ));
        }
        let public = P384PublicKey::from_sec1(point.as_bytes())?;
        Ok(Self {
            fast,
            legacy,
            public,
        })
    }

    /// The private scalar, 48 bytes big-endian (zeroized when dropped).
    pub fn to_be_scalar(&self) -> Zeroizing<[u8; P384_SCALAR_LEN]> {
        Zeroizing::new(self.legacy.to_bytes().into())
    }

    /// The public key.
    pub fn public_key(&self) -> P384PublicKey {
        self.public.clone()
    }

    /// Borrows the public key.
    pub fn public_key_ref(&self) -> &P384PublicKey {
        &self.public
    }

    /// Signs `msg` with ECDSA P-384 / SHA-384 (randomized nonce), in AMD's
    /// layout.
    pub fn sign_sha384(&self, msg: &[u8]) -> Result<EcdsaSignature> {
        let sig = self
            .fast
            .sign(&aws_lc_rs::rand::SystemRandom::new(), msg)
            .map_err(|_| CryptoError::SigningFailed("aws-lc-rs ECDSA P-384 SHA-384"))?;
        fixed_to_amd(sig.as_ref())
    }

    /// Signs `msg` with ECDSA P-384 / SHA-256 (deterministic RFC 6979
    /// nonce), in AMD's layout, for legacy certificates.
    pub fn sign_sha256(&self, msg: &[u8]) -> Result<EcdsaSignature> {
        let digest = Sha256::digest(msg);
        let sig: p384::ecdsa::Signature = self
            .legacy
            .sign_prehash(&digest)
            .map_err(|_| CryptoError::SigningFailed("p384 ECDSA P-384 SHA-256"))?;
        fixed_to_amd(&sig.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};

    /// Flips the low bit of byte `index` of the 512-byte slot.
    fn flip(sig: &EcdsaSignature, index: usize) -> EcdsaSignature {
        let mut out = *sig;
        let byte = if index < 72 {
            &mut out.r[index]
        } else if index < 144 {
            &mut out.s[index - 72]
        } else {
            &mut out.reserved[index - 144]
        };
        *byte ^= 0x01;
        out
    }

    #[test]
    fn sign_verify_sha384_and_tamper() {
        let key = P384SigningKey::generate();
        let public = key.public_key();
        let msg = b"attestation report bytes".repeat(20);
        let sig = key.sign_sha384(&msg).unwrap();
        public.verify_sha384(&msg, &sig).unwrap();
        assert!(sig.r[48..].iter().all(|b| *b == 0));
        assert!(sig.reserved.iter().all(|b| *b == 0));

        for i in [0, 100, msg.len() - 1] {
            let mut m = msg.clone();
            m[i] ^= 0x20;
            assert!(matches!(
                public.verify_sha384(&m, &sig),
                Err(CryptoError::BadSignature(_))
            ));
        }
        // In r, in s: bad signature. In padding or reserved: malformed.
        for i in [0, 47, 72, 72 + 47] {
            assert!(
                matches!(
                    public.verify_sha384(&msg, &flip(&sig, i)),
                    Err(CryptoError::BadSignature(_))
                ),
                "byte {i}"
            );
        }
        for i in [48, 71, 72 + 48, 143, 144, 511] {
            assert!(
                matches!(
                    public.verify_sha384(&msg, &flip(&sig, i)),
                    Err(CryptoError::MalformedSignature(_))
                ),
                "byte {i}"
            );
        }
        // Another key does not verify.
        let other = P384SigningKey::generate().public_key();
        assert!(other.verify_sha384(&msg, &sig).is_err());
        // A SHA-384 signature is not a SHA-256 signature.
        assert!(public.verify_sha256(&msg, &sig).is_err());
    }

    #[test]
    fn amd_encoding_is_little_endian() {
        let key = P384SigningKey::generate();
        let msg = b"encoding";
        let sig = key.sign_sha384(msg).unwrap();
        let (r, s) = sig.to_be_scalars().unwrap();
        // r's least significant byte (last big-endian byte) is slot[0].
        assert_eq!(sig.r[0], r[47]);
        assert_eq!(sig.r[47], r[0]);
        assert_eq!(sig.s[0], s[47]);
        // The big-endian r || s verifies with aws-lc-rs directly, and its DER
        // form verifies through the ASN.1 algorithm and our DER entry point.
        let mut fixed = [0u8; 96];
        fixed[..48].copy_from_slice(&r);
        fixed[48..].copy_from_slice(&s);
        key.public_key().verify_sha384_fixed(msg, &fixed).unwrap();
        let der = p384::ecdsa::Signature::from_slice(&fixed).unwrap().to_der();
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, key.public_key().to_sec1())
            .verify(msg, der.as_bytes())
            .unwrap();
        key.public_key()
            .verify_sha384_der(msg, der.as_bytes())
            .unwrap();
        assert!(key
            .public_key()
            .verify_sha384_der(msg, &der.as_bytes()[1..])
            .is_err());
        // Reversed (big-endian) placement in the slot must fail.
        let mut wrong = sig;
        wrong.r[..48].copy_from_slice(&r);
        wrong.s[..48].copy_from_slice(&s);
        assert!(key.public_key().verify_sha384(msg, &wrong).is_err());
    }

    #[test]
    fn rustcrypto_sha384_signature_verifies_with_aws_lc() {
        let key = P384SigningKey::generate();
        let sk = p384::ecdsa::SigningKey::from_slice(&*key.to_be_scalar()).unwrap();
        let msg = b"cross check";
        let sig: p384::ecdsa::Signature = signature::Signer::sign(&sk, msg);
        let amd = fixed_to_amd(&sig.to_bytes()).unwrap();
        key.public_key().verify_sha384(msg, &amd).unwrap();
    }

    #[test]
    fn legacy_sha256_cross_checked_with_aws_lc() {
        let key = P384SigningKey::generate();
        let public = key.public_key();
        let msg = b"sev_cert bytes [0, 0x414)";
        let sig = key.sign_sha256(msg).unwrap();
        public.verify_sha256(msg, &sig).unwrap();
        // Deterministic nonce.
        assert_eq!(key.sign_sha256(msg).unwrap(), sig);

        // aws-lc-rs (an independent implementation) accepts it as
        // ECDSA P-384 with SHA-256.
        let (r, s) = sig.to_be_scalars().unwrap();
        let der = p384::ecdsa::Signature::from_scalars(r, s).unwrap().to_der();
        UnparsedPublicKey::new(&ECDSA_P384_SHA256_ASN1, public.to_sec1())
            .verify(msg, der.as_bytes())
            .unwrap();
        assert!(
            UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, public.to_sec1())
                .verify(msg, der.as_bytes())
                .is_err()
        );

        let mut m = msg.to_vec();
        m[3] ^= 1;
        assert!(public.verify_sha256(&m, &sig).is_err());
        assert!(public.verify_sha256(msg, &flip(&sig, 5)).is_err());
        assert!(public.verify_sha256(msg, &flip(&sig, 80)).is_err());
        assert!(matches!(
            public.verify_sha256(msg, &flip(&sig, 200)),
            Err(CryptoError::MalformedSignature(_))
        ));
        // A legacy signature is not a SHA-384 signature.
        assert!(public.verify_sha384(msg, &sig).is_err());
    }

    #[test]
    fn key_import_and_conversions() {
        let key = P384SigningKey::generate();
        let scalar = key.to_be_scalar();
        let again = P384SigningKey::from_be_scalar(&scalar).unwrap();
        assert_eq!(again.public_key(), key.public_key());

        let amd = key.public_key().to_amd();
        assert_eq!(P384PublicKey::from_amd(&amd).unwrap(), key.public_key());
        assert_eq!(amd.qx[0], key.public_key().to_sec1()[48], "x little-endian");

        assert!(P384SigningKey::from_be_scalar(&[0u8; 48]).is_err());
        assert!(P384SigningKey::from_be_scalar(&[0xFFu8; 48]).is_err());

        let mut bad = key.public_key().to_sec1();
        bad[96] ^= 1;
        assert!(P384PublicKey::from_sec1(&bad).is_err());
        assert!(P384PublicKey::from_sec1(&[0u8]).is_err());
        assert!(P384PublicKey::from_sec1(&[]).is_err());

        let mut amd_bad = amd;
        amd_bad.qy[60] = 1;
        assert!(P384PublicKey::from_amd(&amd_bad).is_err());

        let dbg = format!("{key:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&hex::encode(*scalar)));
    }

    #[test]
    fn zero_signature_is_rejected() {
        let key = P384SigningKey::generate();
        let zero = fixed_to_amd(&[0u8; 96]).unwrap();
        assert!(key.public_key().verify_sha384(b"x", &zero).is_err());
        assert!(key.public_key().verify_sha256(b"x", &zero).is_err());
    }
}
