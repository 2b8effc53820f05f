//! The memory-encryption model (reference §3.2).
//!
//! AMD does not publish the tweak function of its memory encryption engine.
//! The model reproduces its architecturally visible properties with
//! AES-128-XTS (IEEE 1619), one data unit per 4 KiB physical page:
//!
//! ```text
//! for the 16-byte block at physical address a (a multiple of 16):
//!   i = a / 4096                 (the data unit: the page number)
//!   j = (a mod 4096) / 16        (the block within the page, 0..256)
//!   T = AES_K2(u128_le(i)) ⊗ α^j (GF(2^128), XTS's little-endian doubling)
//!   C = AES_K1(P xor T) xor T
//! (K1, K2) = KDF(VEK, "sevkit-memory-encryption", ∅, 32)
//! ```
//!
//! so the same plaintext at two addresses encrypts differently (another
//! page or another block of the page), ciphertext is deterministic for
//! (key, address, plaintext), ciphertext moved to another address decrypts
//! to garbage, and another guest's key decrypts to garbage. A whole page is
//! exactly `openssl enc -aes-128-xts` of it with the tweak IV
//! `u128_le(page number)`. Addresses and lengths are multiples of 16 (the
//! firmware checks alignment before calling in here); ranges may start and
//! end anywhere inside a page.
//!
//! XTS rather than a fresh AES tweak per block: one tweak encryption per
//! page instead of per block halves the AES work of every launch update.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Block};
use sev_crypto::kdf::kdf;
use zeroize::Zeroize;

/// Blocks per batch of [`MemoryKey`]'s XTS (a 1 KiB stack buffer).
const BATCH: usize = 64;

/// Bytes per XTS data unit: one 4 KiB page.
const DATA_UNIT: u64 = 4096;

/// KDF label deriving the two XTS keys from a guest's VEK.
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

/// Multiplies an XTS tweak by α in GF(2^128) (IEEE 1619's little-endian
/// convention: shift left by one, reduce by x^128 + x^7 + x^2 + x + 1).
fn times_alpha(t: u128) -> u128 {
    (t << 1) ^ if t >> 127 == 1 { 0x87 } else { 0 }
}

impl MemoryKey {
    /// Derives the memory key from a 16-byte VEK.
    pub fn from_vek(vek: &[u8; 16]) -> Self {
        let mut keys = [0u8; 32];
        kdf(vek, LABEL_MEMORY_ENCRYPTION, &[], &mut keys);
        let key = Self::from_xts_keys(&keys);
        keys.zeroize();
        key
    }

    /// The key from the two XTS keys `K1 || K2` (data key, tweak key).
    fn from_xts_keys(keys: &[u8; 32]) -> Self {
        Self {
            data: Aes128::new((&keys[..16]).into()),
            tweak: Aes128::new((&keys[16..]).into()),
        }
    }

    /// Encrypts `data` (a multiple of 16 bytes; a trailing partial block is
    /// left as is) as it would be stored at `paddr`.
    pub fn encrypt(&self, paddr: u64, data: &mut [u8]) {
        self.xts(paddr, data, true);
    }

    /// Decrypts `data` read from `paddr`.
    pub fn decrypt(&self, paddr: u64, data: &mut [u8]) {
        self.xts(paddr, data, false);
    }

    /// XTS over whole blocks, page by page, [`BATCH`] blocks at a time so
    /// that AES-NI pipelines them.
    fn xts(&self, paddr: u64, data: &mut [u8], encrypt: bool) {
        let whole = data.len() / 16 * 16;
        let mut addr = paddr;
        let mut rest = &mut data[..whole];
        while !rest.is_empty() {
            // The part of `rest` inside the page holding `addr`.
            let in_page = (DATA_UNIT - addr % DATA_UNIT).min(rest.len() as u64) as usize;
            let (chunk, tail) = rest.split_at_mut(in_page);
            self.xts_in_page(addr, chunk, encrypt);
            addr = addr.wrapping_add(in_page as u64);
            rest = tail;
        }
    }

    /// XTS of `chunk`, which starts at `addr` and stays inside its page.
    fn xts_in_page(&self, addr: u64, chunk: &mut [u8], encrypt: bool) {
        let mut t = Block::from(u128::from(addr / DATA_UNIT).to_le_bytes());
        self.tweak.encrypt_block(&mut t);
        let mut tweak = u128::from_le_bytes(t.into());
        for _ in 0..(addr % DATA_UNIT) / 16 {
            tweak = times_alpha(tweak);
        }
        let mut tweaks = [0u128; BATCH];
        let mut blocks = [Block::default(); BATCH];
        for batch in chunk.chunks_mut(16 * BATCH) {
            let n = batch.len() / 16;
            for ((t, b), src) in tweaks
                .iter_mut()
                .zip(&mut blocks)
                .zip(batch.chunks_exact(16))
            {
                *t = tweak;
                tweak = times_alpha(tweak);
                let mut p = [0u8; 16];
                p.copy_from_slice(src);
                *b = Block::from((u128::from_le_bytes(p) ^ *t).to_le_bytes());
            }
            if encrypt {
                self.data.encrypt_blocks(&mut blocks[..n]);
            } else {
                self.data.decrypt_blocks(&mut blocks[..n]);
            }
            for ((b, t), dst) in blocks.iter().zip(&tweaks).zip(batch.chunks_exact_mut(16)) {
                let mut c = [0u8; 16];
                c.copy_from_slice(b);
                dst.copy_from_slice(&(u128::from_le_bytes(c) ^ t).to_le_bytes());
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

    /// The construction block by block, as the module documentation states
    /// it (each block's tweak computed from scratch).
    fn reference(key: &MemoryKey, paddr: u64, data: &mut [u8], encrypt: bool) {
        for (i, block) in data.chunks_exact_mut(16).enumerate() {
            let a = paddr.wrapping_add(16 * i as u64);
            let mut t = u128::from(a / DATA_UNIT).to_le_bytes();
            key.tweak.encrypt_block((&mut t).into());
            let mut tweak = u128::from_le_bytes(t);
            for _ in 0..(a % DATA_UNIT) / 16 {
                tweak = times_alpha(tweak);
            }
            let t = tweak.to_le_bytes();
            block.iter_mut().zip(&t).for_each(|(b, k)| *b ^= k);
            if encrypt {
                key.data.encrypt_block(block.into());
            } else {
                key.data.decrypt_block(block.into());
            }
            block.iter_mut().zip(&t).for_each(|(b, k)| *b ^= k);
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// IEEE 1619-2007 XTS-AES-128 test vectors 1 and 2 (32-byte data units
    /// at block 0 of data unit `i`: here the page at `i * 4096`).
    #[test]
    fn ieee_1619_vectors() {
        for (keys, unit, plain, cipher) in [
            (
                [0u8; 32],
                0u64,
                [0u8; 32],
                "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e",
            ),
            (
                {
                    let mut k = [0x11u8; 32];
                    k[16..].fill(0x22);
                    k
                },
                0x33_3333_3333,
                [0x44u8; 32],
                "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0",
            ),
        ] {
            let key = MemoryKey::from_xts_keys(&keys);
            let mut data = plain;
            key.encrypt(unit * DATA_UNIT, &mut data);
            assert_eq!(data.to_vec(), unhex(cipher), "data unit {unit:#x}");
            key.decrypt(unit * DATA_UNIT, &mut data);
            assert_eq!(data, plain);
        }
    }

    /// A whole page, and ranges inside it, against pyca/cryptography's
    /// (OpenSSL's) AES-128-XTS with keys 00..1f and tweak u128_le(0x12A):
    /// the SHA-256 of the ciphertext page and three of its blocks.
    #[test]
    fn a_page_is_aes_xts_of_its_page_number() {
        let key = MemoryKey::from_xts_keys(&core::array::from_fn(|i| i as u8));
        let plain: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let paddr = 0x12A * DATA_UNIT;
        let mut page = plain.clone();
        key.encrypt(paddr, &mut page);
        assert_eq!(
            <sha2::Sha256 as sha2::Digest>::digest(&page).to_vec(),
            unhex("ab43c3427e8076699cb4069ef8643192a67558344e513d08b2992d842df6252d")
        );
        for (offset, block) in [
            (0usize, "1bbba4298a6c5add91adf66e6111c7d4"),
            (2048, "60db7c20bdbf53b730c5b8542bae4b65"),
            (4080, "0d74bb9396b1b6b1975c1e129be2c8d9"),
        ] {
            assert_eq!(page[offset..offset + 16].to_vec(), unhex(block));
            // The same block encrypted on its own at its address.
            let mut alone = plain[offset..offset + 16].to_vec();
            key.encrypt(paddr + offset as u64, &mut alone);
            assert_eq!(alone, page[offset..offset + 16], "block at +{offset:#x}");
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
            (0x20_0FF0, 48),
            (0x7_FE00, 4096 + 512),
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
