//! AMD's 0x404-byte ECC public key structure, used in legacy `sev_cert`
//! certificates (ECDSA and ECDH keys) and in the SNP ID authentication block
//! (ID key and author key).

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::signature::{ECDSA_COMPONENT_LEN, P384_SCALAR_LEN};

/// Size of the public key structure.
pub const ECC_PUBKEY_LEN: usize = 0x404;

/// Curve identifiers used in AMD key structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EccCurve {
    /// NIST P-256 (named by sev-tool; not produced by firmware).
    P256 = 1,
    /// NIST P-384, the curve of every firmware-generated key.
    P384 = 2,
}

impl EccCurve {
    /// Maps the wire value to a curve.
    pub fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::P256),
            2 => Some(Self::P384),
            _ => None,
        }
    }
}

/// An ECC public key: curve id, then `x` and `y` as 72-byte little-endian
/// integers, zero-padded to the end of the 0x404-byte structure.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EccPublicKey {
    /// Curve id (see [`EccCurve`]).
    pub curve: U32,
    /// `x`, little-endian, zero-padded.
    pub qx: [u8; ECDSA_COMPONENT_LEN],
    /// `y`, little-endian, zero-padded.
    pub qy: [u8; ECDSA_COMPONENT_LEN],
    /// Must be zero.
    pub reserved: [u8; ECC_PUBKEY_LEN - 4 - 2 * ECDSA_COMPONENT_LEN],
}

impl EccPublicKey {
    /// Builds the structure for a P-384 point given as big-endian coordinates.
    pub fn from_p384_be(x_be: &[u8; P384_SCALAR_LEN], y_be: &[u8; P384_SCALAR_LEN]) -> Self {
        let mut key = Self::new_zeroed();
        key.curve = U32::new(EccCurve::P384 as u32);
        for (dst, src) in key.qx.iter_mut().zip(x_be.iter().rev()) {
            *dst = *src;
        }
        for (dst, src) in key.qy.iter_mut().zip(y_be.iter().rev()) {
            *dst = *src;
        }
        key
    }

    /// The curve, if the id is known.
    pub fn curve(&self) -> Option<EccCurve> {
        EccCurve::from_u32(self.curve.get())
    }

    /// Returns the uncompressed SEC1 encoding (`04 || x || y`, big-endian) of
    /// a P-384 key, or `None` if the curve is not P-384 or the padding is not
    /// zero.
    pub fn to_p384_sec1(&self) -> Option<[u8; 1 + 2 * P384_SCALAR_LEN]> {
        if self.curve() != Some(EccCurve::P384)
            || self.qx[P384_SCALAR_LEN..].iter().any(|b| *b != 0)
            || self.qy[P384_SCALAR_LEN..].iter().any(|b| *b != 0)
        {
            return None;
        }
        let mut out = [0u8; 1 + 2 * P384_SCALAR_LEN];
        out[0] = 0x04;
        for (dst, src) in out[1..=P384_SCALAR_LEN]
            .iter_mut()
            .zip(self.qx[..P384_SCALAR_LEN].iter().rev())
        {
            *dst = *src;
        }
        for (dst, src) in out[1 + P384_SCALAR_LEN..]
            .iter_mut()
            .zip(self.qy[..P384_SCALAR_LEN].iter().rev())
        {
            *dst = *src;
        }
        Some(out)
    }
}

impl core::fmt::Debug for EccPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EccPublicKey")
            .field("curve", &self.curve.get())
            .field(
                "qx",
                &crate::signature::HexBytes(&self.qx[..P384_SCALAR_LEN]),
            )
            .field(
                "qy",
                &crate::signature::HexBytes(&self.qy[..P384_SCALAR_LEN]),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layout() {
        assert_eq!(size_of::<EccPublicKey>(), 0x404);
        assert_eq!(offset_of!(EccPublicKey, qx), 4);
        assert_eq!(offset_of!(EccPublicKey, qy), 4 + 72);
        assert_eq!(offset_of!(EccPublicKey, reserved), 4 + 144);
    }

    #[test]
    fn sec1_round_trip() {
        let x: [u8; 48] = core::array::from_fn(|i| i as u8);
        let y: [u8; 48] = core::array::from_fn(|i| 0x80 | i as u8);
        let key = EccPublicKey::from_p384_be(&x, &y);
        let sec1 = key.to_p384_sec1().unwrap();
        assert_eq!(&sec1[1..49], &x);
        assert_eq!(&sec1[49..], &y);
        let mut other = key;
        other.curve = U32::new(1);
        assert!(other.to_p384_sec1().is_none());
    }
}
