//! AMD's legacy binary certificate format for the ARK and ASK (legacy SEV
//! chains: ARK → ASK → CEK). Variable length:
//!
//! ```text
//! 0x00 u32 version = 1
//! 0x04 u8  key_id[16]
//! 0x14 u8  certifying_id[16]     (== key_id for the self-signed ARK)
//! 0x24 u32 key_usage             (0x00 ARK, 0x13 ASK)
//! 0x28 u8  reserved[16]          (zero)
//! 0x38 u32 pub_exp_size          bits, 2048 or 4096
//! 0x3C u32 modulus_size          bits, 2048 or 4096
//! 0x40 pub_exp[pub_exp_size/8] || modulus[modulus_size/8] || signature[modulus_size/8]
//! ```
//! All three integers are little-endian. The signature is RSASSA-PSS over
//! `bytes[0, 0x40) || pub_exp || modulus` (SHA-256 for Naples' 2048-bit keys,
//! SHA-384 for the 4096-bit keys of later products); reverse it to big-endian
//! before handing it to an RSA library.

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{AbiError, Result};
use crate::legacy_cert::KeyUsage;

/// Size of the fixed header.
pub const AMD_CERT_HEADER_LEN: usize = 0x40;
/// The only version of the format.
pub const AMD_CERT_VERSION: u32 = 1;

/// Key id of the Naples ARK.
pub const ARK_KEY_ID_NAPLES: [u8; 16] =
    0x1bb9_87c3_5949_4606_b174_9456_01c9_ea5b_u128.to_be_bytes();
/// Key id of the Rome ARK.
pub const ARK_KEY_ID_ROME: [u8; 16] = 0xe600_2122_fb58_4193_99d1_5fee_7b13_1351_u128.to_be_bytes();
/// Key id of the Milan ARK.
pub const ARK_KEY_ID_MILAN: [u8; 16] = 0x94c3_8e41_77d0_4792_92a7_ae67_1d08_3fb6_u128.to_be_bytes();
/// Key id of the Genoa ARK.
pub const ARK_KEY_ID_GENOA: [u8; 16] = 0x9f9d_4a8f_e761_4565_99f6_946c_4c01_0f3a_u128.to_be_bytes();
/// Key id of the Turin ARK.
pub const ARK_KEY_ID_TURIN: [u8; 16] = 0xd05c_3a8b_de48_4904_b495_5242_2ceb_3942_u128.to_be_bytes();

/// Every known ARK key id with its product name.
pub const KNOWN_ARK_KEY_IDS: [(&str, [u8; 16]); 5] = [
    ("Naples", ARK_KEY_ID_NAPLES),
    ("Rome", ARK_KEY_ID_ROME),
    ("Milan", ARK_KEY_ID_MILAN),
    ("Genoa", ARK_KEY_ID_GENOA),
    ("Turin", ARK_KEY_ID_TURIN),
];

/// The product whose ARK has this key id, if known.
pub fn ark_product(key_id: &[u8; 16]) -> Option<&'static str> {
    KNOWN_ARK_KEY_IDS
        .iter()
        .find(|(_, id)| id == key_id)
        .map(|(name, _)| *name)
}

const WHAT: &str = "AMD ARK/ASK certificate";

/// The fixed 0x40-byte header, as laid out on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct AmdCertHeader {
    /// Format version, 1.
    pub version: U32,
    /// Id of the certified key.
    pub key_id: [u8; 16],
    /// Id of the signing key.
    pub certifying_id: [u8; 16],
    /// 0x00 ARK, 0x13 ASK.
    pub key_usage: U32,
    /// Zero.
    pub reserved: [u8; 16],
    /// Public exponent size in bits.
    pub pub_exp_size: U32,
    /// Modulus size in bits.
    pub modulus_size: U32,
}

impl AmdCertHeader {
    /// Parses and checks the header (version, usage, reserved bytes, sizes)
    /// from the first 0x40 bytes of `bytes`; returns it with the sizes in
    /// bytes of the exponent and the modulus.
    fn parse(bytes: &[u8]) -> Result<(Self, usize, usize)> {
        let (header, _) = Self::read_from_prefix(bytes).map_err(|_| AbiError::Length {
            what: WHAT,
            expected: AMD_CERT_HEADER_LEN,
            actual: bytes.len(),
        })?;
        let version = header.version.get();
        if version != AMD_CERT_VERSION {
            return Err(AbiError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let usage = header.key_usage.get();
        if usage != KeyUsage::Ark.as_u32() && usage != KeyUsage::Ask.as_u32() {
            return Err(AbiError::InvalidField {
                what: WHAT,
                field: "key_usage",
                value: u64::from(usage),
            });
        }
        if let Some(pos) = header.reserved.iter().position(|b| *b != 0) {
            return Err(AbiError::Reserved {
                what: WHAT,
                field: "reserved",
                value: 0x28 + pos as u64,
            });
        }
        let exp = key_size(header.pub_exp_size.get(), "pub_exp_size")?;
        let modulus = key_size(header.modulus_size.get(), "modulus_size")?;
        Ok((header, exp, modulus))
    }
}

/// Checks a size in bits (2048 or 4096) and returns it in bytes.
fn key_size(bits: u32, field: &'static str) -> Result<usize> {
    match bits {
        2048 => Ok(256),
        4096 => Ok(512),
        _ => Err(AbiError::InvalidField {
            what: WHAT,
            field,
            value: u64::from(bits),
        }),
    }
}

/// An AMD ARK or ASK certificate in the legacy binary format (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdCert {
    /// Format version (always 1 once parsed).
    pub version: u32,
    /// Id of the certified key.
    pub key_id: [u8; 16],
    /// Id of the signing key (the ARK's key id for an ASK).
    pub certifying_id: [u8; 16],
    /// 0x00 ARK, 0x13 ASK.
    pub key_usage: u32,
    /// Reserved bytes (zero once parsed).
    pub reserved: [u8; 16],
    /// Public exponent size in bits.
    pub pub_exp_bits: u32,
    /// Modulus size in bits.
    pub modulus_bits: u32,
    /// Public exponent, little-endian, `pub_exp_bits / 8` bytes.
    pub pub_exp: Vec<u8>,
    /// Modulus, little-endian, `modulus_bits / 8` bytes.
    pub modulus: Vec<u8>,
    /// RSA-PSS signature, little-endian, `modulus_bits / 8` bytes.
    pub signature: Vec<u8>,
}

impl AmdCert {
    /// Parses a certificate: version 1, usage ARK or ASK, reserved bytes
    /// zero, sizes 2048 or 4096 bits, and a total length of exactly
    /// `0x40 + (pub_exp_size + 2 * modulus_size) / 8`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (header, exp_len, mod_len) = AmdCertHeader::parse(bytes)?;
        let expected = AMD_CERT_HEADER_LEN + exp_len + 2 * mod_len;
        if bytes.len() != expected {
            return Err(AbiError::Length {
                what: WHAT,
                expected,
                actual: bytes.len(),
            });
        }
        let body = &bytes[AMD_CERT_HEADER_LEN..];
        let (pub_exp, rest) = body.split_at(exp_len);
        let (modulus, signature) = rest.split_at(mod_len);
        Ok(Self::assemble(&header, pub_exp, modulus, signature))
    }

    /// Completes a certificate published without its signature (AMD's Naples
    /// ARK): `unsigned` is the header, exponent and modulus
    /// (`0x40 + (pub_exp_size + modulus_size) / 8` bytes) and `signature` the
    /// separately published signature, `modulus_size / 8` bytes, in the
    /// certificate's own **little-endian** order (it is appended as is).
    ///
    /// For AMD's Naples ARK (`ark.cert.bad`, 576 bytes, and `ark.cert.sig`,
    /// 256 bytes) the result is byte-identical to the complete Naples ARK,
    /// and only the little-endian reading of the signature yields a
    /// PSS-shaped message (trailer byte 0xBC) under the ARK's public key.
    pub fn complete_unsigned(unsigned: &[u8], signature: &[u8]) -> Result<Self> {
        let (header, exp_len, mod_len) = AmdCertHeader::parse(unsigned)?;
        let expected = AMD_CERT_HEADER_LEN + exp_len + mod_len;
        if unsigned.len() != expected {
            return Err(AbiError::Length {
                what: "unsigned AMD ARK/ASK certificate",
                expected,
                actual: unsigned.len(),
            });
        }
        if signature.len() != mod_len {
            return Err(AbiError::Length {
                what: "AMD ARK/ASK certificate signature",
                expected: mod_len,
                actual: signature.len(),
            });
        }
        let body = &unsigned[AMD_CERT_HEADER_LEN..];
        let (pub_exp, modulus) = body.split_at(exp_len);
        Ok(Self::assemble(&header, pub_exp, modulus, signature))
    }

    fn assemble(header: &AmdCertHeader, pub_exp: &[u8], modulus: &[u8], signature: &[u8]) -> Self {
        Self {
            version: header.version.get(),
            key_id: header.key_id,
            certifying_id: header.certifying_id,
            key_usage: header.key_usage.get(),
            reserved: header.reserved,
            pub_exp_bits: header.pub_exp_size.get(),
            modulus_bits: header.modulus_size.get(),
            pub_exp: pub_exp.to_vec(),
            modulus: modulus.to_vec(),
            signature: signature.to_vec(),
        }
    }

    /// The fixed header as it is serialized.
    pub fn header(&self) -> AmdCertHeader {
        AmdCertHeader {
            version: U32::new(self.version),
            key_id: self.key_id,
            certifying_id: self.certifying_id,
            key_usage: U32::new(self.key_usage),
            reserved: self.reserved,
            pub_exp_size: U32::new(self.pub_exp_bits),
            modulus_size: U32::new(self.modulus_bits),
        }
    }

    /// The wire form: header, exponent, modulus, signature (byte-exact for
    /// parsed certificates).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// The signed data: `bytes[0, 0x40) || pub_exp || modulus`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(AMD_CERT_HEADER_LEN + self.pub_exp.len() + self.modulus.len() * 2);
        out.extend_from_slice(self.header().as_bytes());
        out.extend_from_slice(&self.pub_exp);
        out.extend_from_slice(&self.modulus);
        out
    }

    /// True when `key_id == certifying_id` (the ARK).
    pub fn is_self_signed(&self) -> bool {
        self.key_id == self.certifying_id
    }

    /// The key usage as a [`KeyUsage`] (`Ark` or `Ask` once parsed).
    pub fn usage(&self) -> Option<KeyUsage> {
        KeyUsage::from_u32(self.key_usage)
    }

    /// The product whose ARK has this certificate's key id (ARKs) or
    /// certifying id (ASKs), if known.
    pub fn product(&self) -> Option<&'static str> {
        ark_product(&self.certifying_id)
    }

    /// Public exponent, big-endian.
    pub fn pub_exp_be(&self) -> Vec<u8> {
        self.pub_exp.iter().rev().copied().collect()
    }

    /// Modulus, big-endian.
    pub fn modulus_be(&self) -> Vec<u8> {
        self.modulus.iter().rev().copied().collect()
    }

    /// Signature, big-endian (the form RSA libraries take).
    pub fn signature_be(&self) -> Vec<u8> {
        self.signature.iter().rev().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    fn sample(bits: u32, usage: u32) -> Vec<u8> {
        let n = bits as usize / 8;
        let mut v = Vec::new();
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&[0x11; 16]);
        v.extend_from_slice(&[if usage == 0 { 0x11 } else { 0x22 }; 16]);
        v.extend_from_slice(&usage.to_le_bytes());
        v.extend_from_slice(&[0; 16]);
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend((0..n).map(|i| u8::from(i == 0 || i == 2)));
        v.extend((0..n).map(|i| i as u8));
        v.extend((0..n).map(|i| !(i as u8)));
        v
    }

    #[test]
    fn layout() {
        assert_eq!(size_of::<AmdCertHeader>(), 0x40);
        assert_eq!(offset_of!(AmdCertHeader, version), 0x00);
        assert_eq!(offset_of!(AmdCertHeader, key_id), 0x04);
        assert_eq!(offset_of!(AmdCertHeader, certifying_id), 0x14);
        assert_eq!(offset_of!(AmdCertHeader, key_usage), 0x24);
        assert_eq!(offset_of!(AmdCertHeader, reserved), 0x28);
        assert_eq!(offset_of!(AmdCertHeader, pub_exp_size), 0x38);
        assert_eq!(offset_of!(AmdCertHeader, modulus_size), 0x3C);
    }

    #[test]
    fn round_trip() {
        for (bits, usage, len) in [(2048, 0, 832), (4096, 0x13, 1600)] {
            let bytes = sample(bits, usage);
            assert_eq!(bytes.len(), len);
            let cert = AmdCert::from_bytes(&bytes).unwrap();
            assert_eq!(cert.to_bytes(), bytes);
            assert_eq!(cert.signed_bytes(), bytes[..len - bits as usize / 8]);
            assert_eq!(cert.is_self_signed(), usage == 0);
            assert_eq!(cert.pub_exp_be()[bits as usize / 8 - 1], 1);
            assert_eq!(cert.modulus_be()[0], (bits / 8 - 1) as u8);
            assert_eq!(cert.signature_be().len(), bits as usize / 8);
        }
    }

    #[test]
    fn wrong_length() {
        let bytes = sample(2048, 0);
        for len in [0, 0x3F, 0x40, 831, 833] {
            let mut b = bytes.clone();
            b.resize(len, 0);
            assert!(
                matches!(AmdCert::from_bytes(&b), Err(AbiError::Length { .. })),
                "len {len}"
            );
        }
    }

    #[test]
    fn bad_fields() {
        let base = sample(2048, 0);
        let mut b = base.clone();
        b[0] = 2;
        assert!(matches!(
            AmdCert::from_bytes(&b),
            Err(AbiError::UnsupportedVersion { .. })
        ));
        let mut b = base.clone();
        b[0x24] = 0x14;
        assert!(matches!(
            AmdCert::from_bytes(&b),
            Err(AbiError::InvalidField {
                field: "key_usage",
                ..
            })
        ));
        let mut b = base.clone();
        b[0x30] = 1;
        assert!(matches!(
            AmdCert::from_bytes(&b),
            Err(AbiError::Reserved { value: 0x30, .. })
        ));
        let mut b = base.clone();
        b[0x3C..0x40].copy_from_slice(&3072u32.to_le_bytes());
        assert!(matches!(
            AmdCert::from_bytes(&b),
            Err(AbiError::InvalidField {
                field: "modulus_size",
                ..
            })
        ));
        let mut b = base;
        b[0x38..0x3C].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            AmdCert::from_bytes(&b),
            Err(AbiError::InvalidField {
                field: "pub_exp_size",
                ..
            })
        ));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = sample(4096, 0x13);
        for len in 0..bytes.len() {
            assert!(AmdCert::from_bytes(&bytes[..len]).is_err());
            let _ = AmdCert::complete_unsigned(&bytes[..len], &bytes[len..]);
        }
    }

    #[test]
    fn completion() {
        let full = sample(2048, 0);
        let (unsigned, sig) = full.split_at(576);
        let cert = AmdCert::complete_unsigned(unsigned, sig).unwrap();
        assert_eq!(cert.to_bytes(), full);
        assert!(AmdCert::complete_unsigned(unsigned, &sig[1..]).is_err());
        assert!(AmdCert::complete_unsigned(&unsigned[1..], sig).is_err());
        assert!(AmdCert::complete_unsigned(&full, sig).is_err());
        assert!(AmdCert::complete_unsigned(&[], &[]).is_err());
    }

    #[test]
    fn known_ids() {
        assert_eq!(ARK_KEY_ID_NAPLES[0], 0x1b);
        assert_eq!(ARK_KEY_ID_TURIN[15], 0x42);
        assert_eq!(ark_product(&ARK_KEY_ID_MILAN), Some("Milan"));
        assert_eq!(ark_product(&[0; 16]), None);
    }
}
