//! NIST SP800-108 key derivation in counter mode with HMAC-SHA256, as the
//! AMD secure processor uses it for every derived key.
//!
//! ```text
//! KDF(K_in, label, context, L_bytes):
//!   L = 8 * L_bytes (bits)
//!   out_i = HMAC-SHA256(K_in, u32_le(i) || label || 0x00 || context || u32_le(L)),  i = 1, 2, ...
//!   output = first L_bytes of out_1 || out_2 || ...
//! ```
//! The label excludes any NUL terminator; the 0x00 separator is always
//! present, and an empty context contributes no bytes.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

/// Label of the launch-session master secret.
pub const LABEL_MASTER_SECRET: &[u8] = b"sev-master-secret";
/// Label of the key-encryption key derived from the master secret.
pub const LABEL_KEK: &[u8] = b"sev-kek";
/// Label of the key-integrity key derived from the master secret.
pub const LABEL_KIK: &[u8] = b"sev-kik";
/// Label of the chip endorsement key (CEK) derivation.
pub const LABEL_CEK: &[u8] = b"sev-chip-endorsement-key";
/// Label of the versioned chip endorsement key (VCEK) derivation.
pub const LABEL_VCEK: &[u8] = b"sev-versioned-chip-endorsement-key";
/// Label of the versioned loaded endorsement key (VLEK) derivation.
pub const LABEL_VLEK: &[u8] = b"sev-versioned-loaded-attestation-key";
/// Label of the guest-message derived-key (MSG_KEY_REQ) derivation.
pub const LABEL_GMSG_KEYREQ: &[u8] = b"gmsg-keyreq";
/// Label defined by the firmware for the measurement nonce (unused).
pub const LABEL_MNONCE: &[u8] = b"sev-mnonce";

/// HMAC-SHA256 output size.
const PRF_LEN: usize = 32;

/// Fills `out` with `KDF(key, label, context, out.len())`.
///
/// # Panics
/// If `out` is longer than 2^29 - 1 bytes (the bit length must fit in a
/// `u32`); the output length is always chosen by the caller, never by
/// untrusted input.
pub fn kdf(key: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let bits = out
        .len()
        .checked_mul(8)
        .and_then(|b| u32::try_from(b).ok())
        .expect("KDF output length must fit in a 32-bit bit count");
    let prf = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for (index, chunk) in out.chunks_mut(PRF_LEN).enumerate() {
        // index < 2^29 / 32, so the counter fits.
        let counter = u32::try_from(index + 1).expect("counter fits in u32");
        let mut mac = prf.clone();
        mac.update(&counter.to_le_bytes());
        mac.update(label);
        mac.update(&[0u8]);
        mac.update(context);
        mac.update(&bits.to_le_bytes());
        let mut block: [u8; PRF_LEN] = mac.finalize().into_bytes().into();
        chunk.copy_from_slice(&block[..chunk.len()]);
        block.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_secret_vector() {
        // amd-sp-reference.md §1.9.
        let mut out = [0u8; 16];
        kdf(&[0u8; 16], LABEL_MASTER_SECRET, &[0u8; 16], &mut out);
        assert_eq!(hex::encode(out), "ab4d269fcc62bedb4511d56c386ce706");
    }

    #[test]
    fn longer_output_is_counter_blocks() {
        // Block i is HMAC(K, u32_le(i) || label || 0 || ctx || u32_le(L)),
        // so the first 32 bytes of a 56-byte output differ from a 32-byte
        // output (L is part of the input) and the second block uses i = 2.
        let mut long = [0u8; 56];
        kdf(b"key", LABEL_VCEK, &[], &mut long);
        let mut expected = Vec::new();
        for i in 1u32..=2 {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").unwrap();
            mac.update(&i.to_le_bytes());
            mac.update(LABEL_VCEK);
            mac.update(&[0]);
            mac.update(&(56u32 * 8).to_le_bytes());
            expected.extend_from_slice(&mac.finalize().into_bytes());
        }
        assert_eq!(&long[..], &expected[..56]);
        let mut short = [0u8; 32];
        kdf(b"key", LABEL_VCEK, &[], &mut short);
        assert_ne!(&short[..], &long[..32]);
    }

    #[test]
    fn empty_output_is_fine() {
        kdf(b"k", LABEL_KEK, b"", &mut []);
    }
}
