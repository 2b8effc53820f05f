//! The memory-encryption model (reference §3.2).
//!
//! AMD does not publish the tweak function of its memory encryption engine.
//! The model reproduces its architecturally visible properties with AES-128
//! in an XEX construction per 16-byte block, tweaked by the physical
//! address:
//!
//! ```text
//! T = AES_K2(u128_le(paddr / 16))
//! C = AES_K1(P xor T) xor T
//! (K1, K2) = KDF(VEK, "sevkit-memory-encryption", ∅, 32)
//! ```
//!
//! so the same plaintext at two addresses encrypts differently, ciphertext
//! is deterministic for (key, address, plaintext), ciphertext moved to
//! another address decrypts to garbage, and another guest's key decrypts to
//! garbage. Addresses and lengths are multiples of 16 (the firmware checks
//! alignment before calling in here).

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Block};
use sev_crypto::kdf::kdf;
use zeroize::Zeroize;

/// Blocks per batch of [`MemoryKey`]'s XEX (a 1 KiB stack buffer).
const BATCH: usize = 64;

/// KDF label deriving the two XEX keys from a guest's VEK.
pub const LABEL_MEMORY_ENCRYPTION: &[u8] = b"sevkit-memory-encryption";

/// A guest's memory-encryption key (the key the memory controller would
/// hold for its ASID). `Debug` prints `<redacted>`; the AES key schedules
/// are dropped with it (the `aes` crate zeroizes them on drop).
#[derive(Clone)]
pub struct MemoryKey {
    data: Aes128,
    tweak: Aes128,
}

impl core::fmt::Debug for MemoryKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MemoryKey(<redacted>)")
    }
}

impl MemoryKey {
    /// Derives the memory key from a 16-byte VEK.
    pub fn from_vek(vek: &[u8; 16]) -> Self {
        let mut keys = [0u8; 32];
        kdf(vek, LABEL_MEMORY_ENCRYPTION, &[], &mut keys);
        let data = Aes128::new((&keys[..16]).into());
        let tweak = Aes128::new((&keys[16..]).into());
        keys.zeroize();
        Self { data, tweak }
    }

    /// Encrypts `data` (a multiple of 16 bytes; a trailing partial block is
    /// left as is) as it would be stored at `paddr`.
    pub fn encrypt(&self, paddr: u64, data: &mut [u8]) {
        self.xex(paddr, data, true);
    }

    /// Decrypts `data` read from `paddr`.
    pub fn decrypt(&self, paddr: u64, data: &mut [u8]) {
        self.xex(paddr, data, false);
    }

    /// XEX over whole blocks, [`BATCH`] blocks at a time so that AES-NI
    /// pipelines the tweak and data encryptions (the result is the same as
    /// block by block: `T_i = AES_K2(u128_le((paddr + 16 i) / 16))`).
    fn xex(&self, paddr: u64, data: &mut [u8], encrypt: bool) {
        let mut tweaks = [Block::default(); BATCH];
        let mut blocks = [Block::default(); BATCH];
        let whole = data.len() / 16 * 16;
        for (c, chunk) in data[..whole].chunks_mut(16 * BATCH).enumerate() {
            let n = chunk.len() / 16;
            for (i, t) in tweaks[..n].iter_mut().enumerate() {
                let addr = paddr.wrapping_add(16 * (c * BATCH + i) as u64);
                t.copy_from_slice(&u128::from(addr / 16).to_le_bytes());
            }
            self.tweak.encrypt_blocks(&mut tweaks[..n]);
            for ((b, t), src) in blocks.iter_mut().zip(&tweaks).zip(chunk.chunks_exact(16)) {
                for ((o, x), k) in b.iter_mut().zip(src).zip(t.iter()) {
                    *o = x ^ k;
                }
            }
            if encrypt {
                self.data.encrypt_blocks(&mut blocks[..n]);
            } else {
                self.data.decrypt_blocks(&mut blocks[..n]);
            }
            for ((b, t), dst) in blocks.iter().zip(&tweaks).zip(chunk.chunks_exact_mut(16)) {
                for ((o, x), k) in dst.iter_mut().zip(b.iter()).zip(t.iter()) {
                    *o = x ^ k;
                }
            }
        }
        for b in &mut blocks {
            b.as_mut_slice().zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The construction block by block, as the module documentation states it.
    fn reference(key: &MemoryKey, paddr: u64, data: &mut [u8], encrypt: bool) {
        for (i, block) in data.chunks_exact_mut(16).enumerate() {
            let mut t = u128::from(paddr.wrapping_add(16 * i as u64) / 16).to_le_bytes();
            key.tweak.encrypt_block((&mut t).into());
            block.iter_mut().zip(&t).for_each(|(b, k)| *b ^= k);
            if encrypt {
                key.data.encrypt_block(block.into());
            } else {
                key.data.decrypt_block(block.into());
            }
            block.iter_mut().zip(&t).for_each(|(b, k)| *b ^= k);
        }
    }

    #[test]
    fn batches_equal_the_block_by_block_construction() {
        let key = MemoryKey::from_vek(&[7; 16]);
        let plain: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        for (paddr, len) in [
            (0u64, 16usize),
            (0x1000, 4096),
            (0x20_0010, 1040),
            (0x30, 4999),
            (u64::MAX - 0x3F, 80),
        ] {
            let mut fast = plain[..len].to_vec();
            let mut slow = fast.clone();
            key.encrypt(paddr, &mut fast);
            reference(&key, paddr, &mut slow, true);
            assert_eq!(fast, slow, "encrypt at {paddr:#x}+{len}");
            key.decrypt(paddr, &mut fast);
            reference(&key, paddr, &mut slow, false);
            assert_eq!(fast, slow, "decrypt at {paddr:#x}+{len}");
            assert_eq!(fast, plain[..len]);
        }
    }

    #[test]
    fn address_tweak_and_key_separation() {
        let key = MemoryKey::from_vek(&[1; 16]);
        let plain = [0x42u8; 32];
        let mut a = plain;
        key.encrypt(0x1000, &mut a);
        let mut b = plain;
        key.encrypt(0x2000, &mut b);
        assert_ne!(a, b, "same plaintext at two addresses");
        assert_ne!(a[..16], a[16..], "two blocks of one page differ too");
        let mut again = plain;
        key.encrypt(0x1000, &mut again);
        assert_eq!(a, again, "deterministic");

        let mut d = a;
        key.decrypt(0x1000, &mut d);
        assert_eq!(d, plain);
        let mut moved = a;
        key.decrypt(0x2000, &mut moved);
        assert_ne!(moved, plain, "moved ciphertext decrypts to garbage");
        let mut other = a;
        MemoryKey::from_vek(&[2; 16]).decrypt(0x1000, &mut other);
        assert_ne!(other, plain, "another key decrypts to garbage");
        assert_eq!(format!("{key:?}"), "MemoryKey(<redacted>)");
    }
}
