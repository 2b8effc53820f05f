//! The legacy SEV platform certificate, `sev_cert` (0x824 bytes): PDH, PEK,
//! OCA and CEK certificates, and the guest owner's GODH certificate.
//!
//! ```text
//! 0x000 u32 version = 1
//! 0x004 u8  api_major, 0x005 u8 api_minor, 0x006 u8 reserved[2]
//! 0x008 u32 pubkey_usage, 0x00C u32 pubkey_algo
//! 0x010 u8  pubkey[0x404]       RSA {u32 modulus_bits; pub_exp[512]; modulus[512]} or ECC (see EccPublicKey)
//! 0x414 u32 sig1_usage, 0x418 u32 sig1_algo, 0x41C u8 sig1[512]
//! 0x61C u32 sig2_usage, 0x620 u32 sig2_algo, 0x624 u8 sig2[512]
//! ```
//! Both signatures cover bytes `[0, 0x414)`, hashed with the *signer's*
//! algorithm. An empty signature slot has usage 0x1000 and algorithm 0.

use core::fmt;

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{read_exact, AbiError, Result};
use crate::pubkey::{EccPublicKey, ECC_PUBKEY_LEN};
use crate::signature::{HexBytes, SIGNATURE_LEN};

/// Size of a `sev_cert`.
pub const SEV_CERT_LEN: usize = 0x824;
/// End of the signed region (offset of `sig1_usage`).
pub const SEV_CERT_SIGNED_LEN: usize = 0x414;
/// The only `sev_cert` version.
pub const SEV_CERT_VERSION: u32 = 1;
/// Size of the RSA exponent and modulus fields inside the public key union.
pub const RSA_FIELD_LEN: usize = 512;

const WHAT: &str = "sev_cert";

/// Key usage codes of legacy SEV (shared by `sev_cert` and the AMD ARK/ASK format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum KeyUsage {
    /// AMD Root Key.
    Ark = 0x00,
    /// AMD SEV Signing Key.
    Ask = 0x13,
    /// No key (marks an empty signature slot).
    Invalid = 0x1000,
    /// Owner Certificate Authority.
    Oca = 0x1001,
    /// Platform Endorsement Key.
    Pek = 0x1002,
    /// Platform Diffie-Hellman key (also the guest owner's GODH).
    Pdh = 0x1003,
    /// Chip Endorsement Key.
    Cek = 0x1004,
}

impl KeyUsage {
    /// Maps a wire value to a usage.
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0x00 => Self::Ark,
            0x13 => Self::Ask,
            0x1000 => Self::Invalid,
            0x1001 => Self::Oca,
            0x1002 => Self::Pek,
            0x1003 => Self::Pdh,
            0x1004 => Self::Cek,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// Short upper-case name (`"PDH"`, `"ARK"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ark => "ARK",
            Self::Ask => "ASK",
            Self::Invalid => "INVALID",
            Self::Oca => "OCA",
            Self::Pek => "PEK",
            Self::Pdh => "PDH",
            Self::Cek => "CEK",
        }
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Hash function named by an [`Algorithm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

/// Key/signature algorithm codes of legacy SEV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Algorithm {
    /// No algorithm (empty signature slot).
    Invalid = 0,
    /// RSA (PSS) with SHA-256.
    RsaSha256 = 0x1,
    /// ECDSA with SHA-256.
    EcdsaSha256 = 0x2,
    /// ECDH, hash SHA-256.
    EcdhSha256 = 0x3,
    /// RSA (PSS) with SHA-384.
    RsaSha384 = 0x101,
    /// ECDSA with SHA-384.
    EcdsaSha384 = 0x102,
    /// ECDH, hash SHA-384.
    EcdhSha384 = 0x103,
}

impl Algorithm {
    /// Maps a wire value to an algorithm.
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::Invalid,
            0x1 => Self::RsaSha256,
            0x2 => Self::EcdsaSha256,
            0x3 => Self::EcdhSha256,
            0x101 => Self::RsaSha384,
            0x102 => Self::EcdsaSha384,
            0x103 => Self::EcdhSha384,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The hash this algorithm uses (`None` for [`Algorithm::Invalid`]).
    pub fn hash(self) -> Option<HashAlgorithm> {
        match self {
            Self::Invalid => None,
            Self::RsaSha256 | Self::EcdsaSha256 | Self::EcdhSha256 => Some(HashAlgorithm::Sha256),
            Self::RsaSha384 | Self::EcdsaSha384 | Self::EcdhSha384 => Some(HashAlgorithm::Sha384),
        }
    }

    /// RSA key or signature.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::RsaSha256 | Self::RsaSha384)
    }

    /// ECDSA key or signature.
    pub fn is_ecdsa(self) -> bool {
        matches!(self, Self::EcdsaSha256 | Self::EcdsaSha384)
    }

    /// ECDH key.
    pub fn is_ecdh(self) -> bool {
        matches!(self, Self::EcdhSha256 | Self::EcdhSha384)
    }

    /// Name in the style of sev-tool (`"ECDSA_SHA256"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Invalid => "INVALID",
            Self::RsaSha256 => "RSA_SHA256",
            Self::EcdsaSha256 => "ECDSA_SHA256",
            Self::EcdhSha256 => "ECDH_SHA256",
            Self::RsaSha384 => "RSA_SHA384",
            Self::EcdsaSha384 => "ECDSA_SHA384",
            Self::EcdhSha384 => "ECDH_SHA384",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An RSA public key inside a `sev_cert`, borrowed from the certificate.
///
/// `pub_exp` and `modulus` are little-endian and trimmed to
/// `ceil(modulus_bits / 8)` bytes (at most 512).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsaKey<'a> {
    /// Modulus size in bits, as stored.
    pub modulus_bits: u32,
    /// Public exponent, little-endian.
    pub pub_exp: &'a [u8],
    /// Modulus, little-endian.
    pub modulus: &'a [u8],
}

/// One of the two signature slots of a `sev_cert`, borrowed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureSlot<'a> {
    /// Usage of the signing key (raw wire value).
    pub usage: u32,
    /// Algorithm of the signing key (raw wire value).
    pub algo: u32,
    /// The signature: ECDSA `r[72] || s[72] || zeros` or an RSA integer, little-endian.
    pub bytes: &'a [u8; SIGNATURE_LEN],
}

impl SignatureSlot<'_> {
    /// True for the empty marker: usage 0x1000 (INVALID) and algorithm 0.
    pub fn is_empty(&self) -> bool {
        self.usage == KeyUsage::Invalid.as_u32() && self.algo == Algorithm::Invalid.as_u32()
    }

    /// The signer's usage, if known.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        KeyUsage::from_u32(self.usage)
    }

    /// The signer's algorithm, if known.
    pub fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_u32(self.algo)
    }
}

impl fmt::Debug for SignatureSlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("SignatureSlot(<empty>)");
        }
        f.debug_struct("SignatureSlot")
            .field("usage", &format_args!("{:#x}", self.usage))
            .field("algo", &format_args!("{:#x}", self.algo))
            .finish_non_exhaustive()
    }
}

/// A legacy SEV certificate (`sev_cert`, 0x824 bytes). Its bytes are its wire form.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SevCert {
    /// Format version, 1.
    pub version: U32,
    /// API major version of the firmware that made the certificate.
    pub api_major: u8,
    /// API minor version of the firmware that made the certificate.
    pub api_minor: u8,
    /// Reserved.
    pub reserved: [u8; 2],
    /// Usage of the certified key (see [`KeyUsage`]).
    pub pubkey_usage: U32,
    /// Algorithm of the certified key (see [`Algorithm`]).
    pub pubkey_algo: U32,
    /// The public key: RSA or ECC layout, chosen by `pubkey_algo`.
    pub pubkey: [u8; ECC_PUBKEY_LEN],
    /// Usage of the first signer.
    pub sig1_usage: U32,
    /// Algorithm of the first signer.
    pub sig1_algo: U32,
    /// First signature.
    pub sig1: [u8; SIGNATURE_LEN],
    /// Usage of the second signer.
    pub sig2_usage: U32,
    /// Algorithm of the second signer.
    pub sig2_algo: U32,
    /// Second signature.
    pub sig2: [u8; SIGNATURE_LEN],
}

impl SevCert {
    /// Parses a certificate: exactly 0x824 bytes, version 1, known key usage
    /// and algorithm. Signature slots are not interpreted here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let cert = read_exact::<Self>(WHAT, bytes)?;
        let version = cert.version.get();
        if version != SEV_CERT_VERSION {
            return Err(AbiError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let usage = cert.pubkey_usage.get();
        if KeyUsage::from_u32(usage).is_none() {
            return Err(AbiError::InvalidField {
                what: WHAT,
                field: "pubkey_usage",
                value: u64::from(usage),
            });
        }
        let algo = cert.pubkey_algo.get();
        if Algorithm::from_u32(algo).is_none() {
            return Err(AbiError::InvalidField {
                what: WHAT,
                field: "pubkey_algo",
                value: u64::from(algo),
            });
        }
        Ok(cert)
    }

    /// Builds an unsigned certificate (both signature slots empty) for an
    /// ECC key, e.g. a guest owner's GODH (`usage` PDH, `algo` ECDH_SHA256).
    pub fn new_ecc(
        api_major: u8,
        api_minor: u8,
        usage: KeyUsage,
        algo: Algorithm,
        key: &EccPublicKey,
    ) -> Self {
        let mut cert = Self::new_zeroed();
        cert.version = U32::new(SEV_CERT_VERSION);
        cert.api_major = api_major;
        cert.api_minor = api_minor;
        cert.pubkey_usage = U32::new(usage.as_u32());
        cert.pubkey_algo = U32::new(algo.as_u32());
        cert.pubkey.copy_from_slice(key.as_bytes());
        cert.sig1_usage = U32::new(KeyUsage::Invalid.as_u32());
        cert.sig2_usage = U32::new(KeyUsage::Invalid.as_u32());
        cert
    }

    /// The bytes both signatures cover: `[0, 0x414)`.
    pub fn signed_bytes(&self) -> &[u8] {
        let all = self.as_bytes();
        all.get(..SEV_CERT_SIGNED_LEN).unwrap_or(all)
    }

    /// Usage of the certified key. A certificate built by hand with an
    /// unknown value reports [`KeyUsage::Invalid`]; parsed ones never do.
    pub fn usage(&self) -> KeyUsage {
        KeyUsage::from_u32(self.pubkey_usage.get()).unwrap_or(KeyUsage::Invalid)
    }

    /// Algorithm of the certified key. A certificate built by hand with an
    /// unknown value reports [`Algorithm::Invalid`]; parsed ones never do.
    pub fn algorithm(&self) -> Algorithm {
        Algorithm::from_u32(self.pubkey_algo.get()).unwrap_or(Algorithm::Invalid)
    }

    /// The ECC public key, when the key algorithm is ECDSA or ECDH.
    pub fn ecc_key(&self) -> Option<&EccPublicKey> {
        let algo = self.algorithm();
        if !(algo.is_ecdsa() || algo.is_ecdh()) {
            return None;
        }
        EccPublicKey::ref_from_bytes(&self.pubkey[..]).ok()
    }

    /// The RSA public key, when the key algorithm is RSA.
    pub fn rsa_key(&self) -> Option<RsaKey<'_>> {
        if !self.algorithm().is_rsa() {
            return None;
        }
        let (bits_bytes, rest) = self.pubkey.split_first_chunk::<4>()?;
        let modulus_bits = u32::from_le_bytes(*bits_bytes);
        let len = usize::try_from(modulus_bits.div_ceil(8))
            .map_or(RSA_FIELD_LEN, |n| n.min(RSA_FIELD_LEN));
        let (exp_field, rest) = rest.split_at_checked(RSA_FIELD_LEN)?;
        let modulus_field = rest.get(..RSA_FIELD_LEN)?;
        Some(RsaKey {
            modulus_bits,
            pub_exp: exp_field.get(..len)?,
            modulus: modulus_field.get(..len)?,
        })
    }

    /// Both signature slots, in order.
    pub fn signatures(&self) -> [SignatureSlot<'_>; 2] {
        [
            SignatureSlot {
                usage: self.sig1_usage.get(),
                algo: self.sig1_algo.get(),
                bytes: &self.sig1,
            },
            SignatureSlot {
                usage: self.sig2_usage.get(),
                algo: self.sig2_algo.get(),
                bytes: &self.sig2,
            },
        ]
    }

    /// Writes signature slot `index` (0 or 1).
    pub fn set_signature(
        &mut self,
        index: usize,
        usage: KeyUsage,
        algo: Algorithm,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<()> {
        let (u, a, s) = match index {
            0 => (&mut self.sig1_usage, &mut self.sig1_algo, &mut self.sig1),
            1 => (&mut self.sig2_usage, &mut self.sig2_algo, &mut self.sig2),
            _ => {
                return Err(AbiError::InvalidField {
                    what: WHAT,
                    field: "signature index",
                    value: index as u64,
                })
            }
        };
        *u = U32::new(usage.as_u32());
        *a = U32::new(algo.as_u32());
        *s = *signature;
        Ok(())
    }

    /// Empties signature slot `index` (usage 0x1000, algorithm 0, zero bytes).
    pub fn clear_signature(&mut self, index: usize) -> Result<()> {
        self.set_signature(
            index,
            KeyUsage::Invalid,
            Algorithm::Invalid,
            &[0; SIGNATURE_LEN],
        )
    }
}

impl fmt::Debug for SevCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SevCert");
        d.field("version", &self.version.get())
            .field(
                "api",
                &format_args!("{}.{}", self.api_major, self.api_minor),
            )
            .field(
                "pubkey_usage",
                &format_args!("{:#x}", self.pubkey_usage.get()),
            )
            .field(
                "pubkey_algo",
                &format_args!("{:#x}", self.pubkey_algo.get()),
            );
        if let Some(key) = self.ecc_key() {
            d.field("pubkey", key);
        } else if let Some(key) = self.rsa_key() {
            d.field("modulus_bits", &key.modulus_bits)
                .field("modulus", &HexBytes(key.modulus));
        }
        let [s1, s2] = self.signatures();
        d.field("sig1", &s1)
            .field("sig2", &s2)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    fn sample() -> SevCert {
        let key = EccPublicKey::from_p384_be(&[7; 48], &[9; 48]);
        SevCert::new_ecc(0, 17, KeyUsage::Pdh, Algorithm::EcdhSha256, &key)
    }

    #[test]
    fn layout() {
        assert_eq!(size_of::<SevCert>(), 0x824);
        assert_eq!(offset_of!(SevCert, version), 0x000);
        assert_eq!(offset_of!(SevCert, api_major), 0x004);
        assert_eq!(offset_of!(SevCert, api_minor), 0x005);
        assert_eq!(offset_of!(SevCert, reserved), 0x006);
        assert_eq!(offset_of!(SevCert, pubkey_usage), 0x008);
        assert_eq!(offset_of!(SevCert, pubkey_algo), 0x00C);
        assert_eq!(offset_of!(SevCert, pubkey), 0x010);
        assert_eq!(offset_of!(SevCert, sig1_usage), 0x414);
        assert_eq!(offset_of!(SevCert, sig1_algo), 0x418);
        assert_eq!(offset_of!(SevCert, sig1), 0x41C);
        assert_eq!(offset_of!(SevCert, sig2_usage), 0x61C);
        assert_eq!(offset_of!(SevCert, sig2_algo), 0x620);
        assert_eq!(offset_of!(SevCert, sig2), 0x624);
    }

    #[test]
    fn codes() {
        for (v, u) in [
            (0x00, KeyUsage::Ark),
            (0x13, KeyUsage::Ask),
            (0x1000, KeyUsage::Invalid),
            (0x1001, KeyUsage::Oca),
            (0x1002, KeyUsage::Pek),
            (0x1003, KeyUsage::Pdh),
            (0x1004, KeyUsage::Cek),
        ] {
            assert_eq!(KeyUsage::from_u32(v), Some(u));
            assert_eq!(u.as_u32(), v);
        }
        assert_eq!(KeyUsage::from_u32(0x1005), None);
        assert_eq!(KeyUsage::Pdh.to_string(), "PDH");
        for (v, a, h) in [
            (0, Algorithm::Invalid, None),
            (1, Algorithm::RsaSha256, Some(HashAlgorithm::Sha256)),
            (2, Algorithm::EcdsaSha256, Some(HashAlgorithm::Sha256)),
            (3, Algorithm::EcdhSha256, Some(HashAlgorithm::Sha256)),
            (0x101, Algorithm::RsaSha384, Some(HashAlgorithm::Sha384)),
            (0x102, Algorithm::EcdsaSha384, Some(HashAlgorithm::Sha384)),
            (0x103, Algorithm::EcdhSha384, Some(HashAlgorithm::Sha384)),
        ] {
            assert_eq!(Algorithm::from_u32(v), Some(a));
            assert_eq!(a.as_u32(), v);
            assert_eq!(a.hash(), h);
        }
        assert_eq!(Algorithm::from_u32(4), None);
        assert!(Algorithm::RsaSha384.is_rsa() && !Algorithm::RsaSha384.is_ecdsa());
        assert!(Algorithm::EcdsaSha256.is_ecdsa() && !Algorithm::EcdsaSha256.is_ecdh());
        assert!(Algorithm::EcdhSha384.is_ecdh() && !Algorithm::EcdhSha384.is_rsa());
    }

    #[test]
    fn round_trip() {
        let cert = sample();
        let bytes = cert.as_bytes().to_vec();
        let parsed = SevCert::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, cert);
        assert_eq!(parsed.as_bytes(), &bytes[..]);
        assert_eq!(parsed.usage(), KeyUsage::Pdh);
        assert_eq!(parsed.algorithm(), Algorithm::EcdhSha256);
        assert_eq!(parsed.signed_bytes(), &bytes[..0x414]);
        assert!(parsed.ecc_key().unwrap().to_p384_sec1().is_some());
        assert!(parsed.rsa_key().is_none());
        assert!(parsed.signatures().iter().all(SignatureSlot::is_empty));
    }

    #[test]
    fn wrong_length() {
        let bytes = sample().as_bytes().to_vec();
        for len in [0, 1, 0x823, 0x825] {
            let mut b = bytes.clone();
            b.resize(len, 0);
            assert!(matches!(
                SevCert::from_bytes(&b),
                Err(AbiError::Length { .. })
            ));
        }
    }

    #[test]
    fn bad_fields() {
        let mut c = sample();
        c.version = U32::new(2);
        assert_eq!(
            SevCert::from_bytes(c.as_bytes()),
            Err(AbiError::UnsupportedVersion {
                what: WHAT,
                version: 2
            })
        );
        let mut c = sample();
        c.pubkey_usage = U32::new(0x1005);
        assert!(matches!(
            SevCert::from_bytes(c.as_bytes()),
            Err(AbiError::InvalidField {
                field: "pubkey_usage",
                ..
            })
        ));
        let mut c = sample();
        c.pubkey_algo = U32::new(0x104);
        assert!(matches!(
            SevCert::from_bytes(c.as_bytes()),
            Err(AbiError::InvalidField {
                field: "pubkey_algo",
                ..
            })
        ));
    }

    #[test]
    fn signatures_set_and_clear() {
        let mut c = sample();
        let sig = [0x5a; SIGNATURE_LEN];
        c.set_signature(1, KeyUsage::Pek, Algorithm::EcdsaSha256, &sig)
            .unwrap();
        let [s1, s2] = c.signatures();
        assert!(s1.is_empty());
        assert!(!s2.is_empty());
        assert_eq!(s2.key_usage(), Some(KeyUsage::Pek));
        assert_eq!(s2.algorithm(), Some(Algorithm::EcdsaSha256));
        assert_eq!(s2.bytes, &sig);
        assert_eq!(c.as_bytes()[0x61C..0x620], 0x1002u32.to_le_bytes());
        assert!(c
            .set_signature(2, KeyUsage::Pek, Algorithm::EcdsaSha256, &sig)
            .is_err());
        c.clear_signature(1).unwrap();
        assert_eq!(c, sample());
        assert!(format!("{c:?}").contains("<empty>"));
    }

    #[test]
    fn rsa_key_is_trimmed_and_bounded() {
        let mut c = sample();
        c.pubkey_algo = U32::new(Algorithm::RsaSha256.as_u32());
        c.pubkey = [0; ECC_PUBKEY_LEN];
        c.pubkey[..4].copy_from_slice(&2048u32.to_le_bytes());
        c.pubkey[4] = 1;
        c.pubkey[6] = 1;
        c.pubkey[4 + 512] = 0xAB;
        let key = c.rsa_key().unwrap();
        assert_eq!(key.modulus_bits, 2048);
        assert_eq!(key.pub_exp.len(), 256);
        assert_eq!(key.modulus.len(), 256);
        assert_eq!(key.modulus[0], 0xAB);
        assert!(c.ecc_key().is_none());
        c.pubkey[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(c.rsa_key().unwrap().modulus.len(), 512);
        assert!(format!("{c:?}").contains("modulus_bits"));
    }
}
