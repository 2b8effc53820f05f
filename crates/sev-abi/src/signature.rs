//! AMD's 512-byte signature slot, as used by the attestation report, the ID
//! authentication block and legacy `sev_cert` certificates.
//!
//! For ECDSA P-384 the slot holds `r` then `s`, each as a 72-byte
//! **little-endian** integer zero-padded from 48 bytes, followed by 368 zero
//! bytes. For RSA (legacy certificates only) the slot holds one little-endian
//! integer of the modulus size.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of one component (`r` or `s`) in AMD's ECDSA signature encoding.
pub const ECDSA_COMPONENT_LEN: usize = 72;
/// Size of a P-384 scalar.
pub const P384_SCALAR_LEN: usize = 48;
/// Size of the whole signature slot.
pub const SIGNATURE_LEN: usize = 512;

/// An ECDSA P-384 signature in AMD's layout (512 bytes).
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EcdsaSignature {
    /// `r`, little-endian, zero-padded to 72 bytes.
    pub r: [u8; ECDSA_COMPONENT_LEN],
    /// `s`, little-endian, zero-padded to 72 bytes.
    pub s: [u8; ECDSA_COMPONENT_LEN],
    /// Must be zero.
    pub reserved: [u8; SIGNATURE_LEN - 2 * ECDSA_COMPONENT_LEN],
}

impl EcdsaSignature {
    /// Builds the AMD encoding from big-endian `r` and `s` (48 bytes each, as
    /// produced by standard ECDSA libraries).
    pub fn from_be_scalars(r_be: &[u8; P384_SCALAR_LEN], s_be: &[u8; P384_SCALAR_LEN]) -> Self {
        let mut sig = Self::new_zeroed();
        for (dst, src) in sig.r.iter_mut().zip(r_be.iter().rev()) {
            *dst = *src;
        }
        for (dst, src) in sig.s.iter_mut().zip(s_be.iter().rev()) {
            *dst = *src;
        }
        sig
    }

    /// Returns `(r, s)` as big-endian 48-byte scalars, or `None` when the
    /// padding bytes (48..72 of each component) are not zero, which no valid
    /// P-384 signature has.
    pub fn to_be_scalars(&self) -> Option<([u8; P384_SCALAR_LEN], [u8; P384_SCALAR_LEN])> {
        fn component(le: &[u8; ECDSA_COMPONENT_LEN]) -> Option<[u8; P384_SCALAR_LEN]> {
            if le[P384_SCALAR_LEN..].iter().any(|b| *b != 0) {
                return None;
            }
            let mut be = [0u8; P384_SCALAR_LEN];
            for (dst, src) in be.iter_mut().zip(le[..P384_SCALAR_LEN].iter().rev()) {
                *dst = *src;
            }
            Some(be)
        }
        Some((component(&self.r)?, component(&self.s)?))
    }

    /// True when every byte of the slot is zero (an unsigned report).
    pub fn is_zero(&self) -> bool {
        self.as_bytes().iter().all(|b| *b == 0)
    }
}

impl core::fmt::Debug for EcdsaSignature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.to_be_scalars() {
            Some((r, s)) => f
                .debug_struct("EcdsaSignature")
                .field("r", &HexBytes(&r))
                .field("s", &HexBytes(&s))
                .finish(),
            None => f.write_str("EcdsaSignature(<non-canonical padding>)"),
        }
    }
}

/// Formats a byte slice as lowercase hex in `Debug` output.
pub(crate) struct HexBytes<'a>(pub &'a [u8]);

impl core::fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layout() {
        assert_eq!(size_of::<EcdsaSignature>(), 0x200);
        assert_eq!(offset_of!(EcdsaSignature, r), 0);
        assert_eq!(offset_of!(EcdsaSignature, s), 0x48);
        assert_eq!(offset_of!(EcdsaSignature, reserved), 0x90);
    }

    #[test]
    fn scalar_round_trip_reverses_bytes() {
        let mut r = [0u8; 48];
        let mut s = [0u8; 48];
        for i in 0..48 {
            r[i] = i as u8 + 1;
            s[i] = 0xF0 ^ i as u8;
        }
        let sig = EcdsaSignature::from_be_scalars(&r, &s);
        assert_eq!(sig.r[0], 48, "least significant byte first");
        assert_eq!(sig.r[47], 1);
        assert_eq!(sig.to_be_scalars(), Some((r, s)));
    }

    #[test]
    fn nonzero_padding_is_rejected() {
        let mut sig = EcdsaSignature::new_zeroed();
        sig.s[60] = 1;
        assert_eq!(sig.to_be_scalars(), None);
    }
}
