//! SEV-SNP endorsement keys: the VCEK, derived per chip and per reported TCB,
//! and the VLEK, loaded wrapped (reference §2.12).
//!
//! # VCEK derivation (the real one, §2.12)
//!
//! A *hash stick* runs over the eight bytes of the TCB_VERSION, byte 0
//! first (whatever the product's layout calls them). Component `i` with
//! patch level `v` turns its 48-byte seed `s_i` into
//! `h_i = SHA-384^(255−v)(s_i)`; the next seed is
//! `s_{i+1} = SHA-384(0x00×8 ‖ h_i)`, and after the last byte (microcode)
//! the VCEK hash is `SHA-384(h_7)` (`SHA-384^(256−v)`). A higher patch level
//! hashes less, so a newer TCB can derive an older one's hash but never the
//! reverse. The VCEK is then
//! `ecc_keypair_from_extra_bits(P-384, KDF(vcek_hash, "sev-versioned-chip-endorsement-key", ∅, 56))`:
//! the 56 bytes read as a little-endian integer `c`, `d = (c mod (n−1)) + 1`.
//!
//! The first seed `s_0` is AMD's fused secret on real parts; here (model
//! specific) it is `KDF(CUK, "sevkit-tcb-hash-stick", ∅, 48)` with the
//! KDF of reference §1.9 (SP 800-108, HMAC-SHA-256).
//!
//! # VLEK loading (model specific)
//!
//! SNP_VLEK_LOAD takes a 0x1B0-byte wrapped VLEK hashstick that AMD's key
//! server wraps under a per-chip key nobody outside AMD has. The model uses
//! its own wrapping so tests can produce blobs ([`wrap_vlek`]):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0x000 | 12 | IV (AES-GCM nonce) |
//! | 0x00C | 4 | reserved, zero |
//! | 0x010 | 0x180 | AES-256-GCM ciphertext of the plaintext below |
//! | 0x190 | 8 | TCB_VERSION the hashstick is for (little-endian) |
//! | 0x198 | 8 | reserved, zero |
//! | 0x1A0 | 16 | GCM tag |
//!
//! The wrapping key is `KDF(CUK, "sevkit-vlek-wrapping-key", ∅, 32)`
//! (one chip's blob does not load on another), the AAD is bytes
//! 0x000..0x010 and 0x190..0x1A0, and the plaintext is the 48-byte VLEK
//! seed (hashstick) followed by 0x150 zero bytes (must be zero). The VLEK is
//! `ecc_keypair_from_extra_bits(P-384, KDF(seed, "sev-versioned-loaded-attestation-key", ∅, 56))`.

use core::fmt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use rsa::BigUint;
use sev_abi::product::{Product, TcbVersion};
use sev_crypto::ecdsa::P384SigningKey;
use sev_crypto::kdf::{kdf, LABEL_VCEK, LABEL_VLEK};
use sha2::{Digest, Sha384};
use zeroize::{Zeroize, Zeroizing};

use crate::error::IdentityError;
use crate::identity::ChipIdentity;

/// Length of a VCEK hash, a VLEK seed, a hash-stick seed.
pub const SEED_LEN: usize = 48;

/// Size of the wrapped VLEK hashstick SNP_VLEK_LOAD reads (reference §2.5).
pub const WRAPPED_VLEK_LEN: usize = 0x1B0;

/// The only `vlek_wrapped_version` SNP_VLEK_LOAD accepts.
pub const WRAPPED_VLEK_VERSION: u8 = 0;

/// KDF label of the model's first hash-stick seed (model specific).
const LABEL_HASH_STICK: &[u8] = b"sevkit-tcb-hash-stick";
/// KDF label of the model's VLEK wrapping key (model specific).
const LABEL_VLEK_WRAP: &[u8] = b"sevkit-vlek-wrapping-key";

const WRAP_IV: core::ops::Range<usize> = 0x000..0x00C;
const WRAP_RSVD0: core::ops::Range<usize> = 0x00C..0x010;
const WRAP_CT: core::ops::Range<usize> = 0x010..0x190;
const WRAP_TCB: core::ops::Range<usize> = 0x190..0x198;
const WRAP_RSVD1: core::ops::Range<usize> = 0x198..0x1A0;
const WRAP_TAG: core::ops::Range<usize> = 0x1A0..0x1B0;

/// The P-384 group order `n`, big-endian.
const P384_ORDER_BE: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// What the SNP firmware signs reports and derives guest keys with.
///
/// S1 (platform) and S3 (guest requests) code against this trait; the
/// implementation is [`ChipEndorsementKeys`].
pub trait EndorsementKeys {
    /// The VCEK for `reported_tcb` (derived on first use, then cached).
    ///
    /// # Errors
    /// Only if the derived scalar is refused by the signing library, which
    /// cannot happen for a scalar in `[1, n−1]`.
    fn vcek(&self, reported_tcb: TcbVersion) -> Result<Arc<P384SigningKey>, IdentityError>;

    /// The VCEK hash for `tcb`: the 48-byte root MSG_KEY_REQ derives guest
    /// keys from when `root_key_select` is 0 and no VLEK is chosen.
    fn vcek_hash(&self, tcb: TcbVersion) -> Zeroizing<[u8; SEED_LEN]>;

    /// The loaded VLEK, if SNP_VLEK_LOAD installed one.
    fn vlek(&self) -> Option<&P384SigningKey>;

    /// The loaded VLEK's seed (its hashstick), the MSG_KEY_REQ root when
    /// the VLEK is chosen.
    fn vlek_seed(&self) -> Option<Zeroizing<[u8; SEED_LEN]>>;
}

/// A loaded VLEK: its seed, the TCB it was issued for, and the key.
struct Vlek {
    seed: Zeroizing<[u8; SEED_LEN]>,
    tcb: TcbVersion,
    key: P384SigningKey,
}

/// The endorsement keys of one chip: VCEKs from the CUK (cached per TCB)
/// and the VLEK once loaded.
///
/// Secrets zeroize on drop; `Debug` shows only public values.
pub struct ChipEndorsementKeys {
    chip_id: [u8; 64],
    stick_seed: Zeroizing<[u8; SEED_LEN]>,
    wrap_key: Zeroizing<[u8; 32]>,
    vceks: Mutex<HashMap<u64, Arc<P384SigningKey>>>,
    vlek: Option<Vlek>,
}

impl fmt::Debug for ChipEndorsementKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self
            .vceks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("ChipEndorsementKeys")
            .field("chip_id", &HexBytes(&self.chip_id))
            .field("cached_vceks", &cached)
            .field("vlek_tcb", &self.vlek.as_ref().map(|v| v.tcb))
            .field("secrets", &"<redacted>")
            .finish_non_exhaustive()
    }
}

struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a wrapped VLEK was refused by [`ChipEndorsementKeys::load_vlek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VlekLoadError {
    /// The blob is not [`WRAPPED_VLEK_LEN`] bytes (SNP_VLEK_LOAD: INVALID_LENGTH).
    #[error("a wrapped VLEK is {WRAPPED_VLEK_LEN} bytes, this is {0}")]
    Length(usize),
    /// `vlek_wrapped_version` is not 0 (INVALID_PARAM).
    #[error("unsupported wrapped VLEK version {0}")]
    Version(u8),
    /// Reserved bytes are not zero (INVALID_PARAM).
    #[error("reserved bytes of the wrapped VLEK are not zero")]
    Reserved,
    /// The tag does not verify: wrapped for another chip or altered
    /// (BAD_MEASUREMENT).
    #[error("wrapped VLEK does not authenticate (another chip's, or altered)")]
    Authentication,
}

impl ChipEndorsementKeys {
    /// The endorsement keys of `chip` (no VLEK loaded).
    pub fn new(chip: &ChipIdentity) -> Self {
        let cuk = chip.cuk();
        let mut stick_seed = Zeroizing::new([0u8; SEED_LEN]);
        kdf(&cuk[..], LABEL_HASH_STICK, &[], &mut stick_seed[..]);
        let mut wrap_key = Zeroizing::new([0u8; 32]);
        kdf(&cuk[..], LABEL_VLEK_WRAP, &[], &mut wrap_key[..]);
        Self {
            chip_id: *chip.chip_id(),
            stick_seed,
            wrap_key,
            vceks: Mutex::new(HashMap::new()),
            vlek: None,
        }
    }

    /// The chip's 64-byte CHIP_ID (GET_ID).
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.chip_id
    }

    /// The CHIP_ID as `product`'s reports and VCEK hwID carry it: all 64
    /// bytes, except on Turin where only the first 8 are kept (the rest
    /// zero).
    pub fn report_chip_id(&self, product: Product) -> [u8; 64] {
        let mut id = [0u8; 64];
        let n = product.chip_id_len().min(64);
        id[..n].copy_from_slice(&self.chip_id[..n]);
        id
    }

    /// The TCB the loaded VLEK was issued for.
    pub fn vlek_tcb(&self) -> Option<TcbVersion> {
        self.vlek.as_ref().map(|v| v.tcb)
    }

    /// SNP_VLEK_LOAD: unwraps `wrapped` (see the module documentation),
    /// version `version`, and installs the VLEK, replacing any loaded one.
    /// Nothing changes on error.
    ///
    /// # Errors
    /// See [`VlekLoadError`].
    pub fn load_vlek(&mut self, version: u8, wrapped: &[u8]) -> Result<TcbVersion, VlekLoadError> {
        if version != WRAPPED_VLEK_VERSION {
            return Err(VlekLoadError::Version(version));
        }
        let blob: &[u8; WRAPPED_VLEK_LEN] = wrapped
            .try_into()
            .map_err(|_| VlekLoadError::Length(wrapped.len()))?;
        if blob[WRAP_RSVD0]
            .iter()
            .chain(&blob[WRAP_RSVD1])
            .any(|b| *b != 0)
        {
            return Err(VlekLoadError::Reserved);
        }
        let cipher = Aes256Gcm::new_from_slice(&self.wrap_key[..])
            .map_err(|_| VlekLoadError::Authentication)?;
        let aad = wrap_aad(blob);
        let mut plain = Zeroizing::new([0u8; 0x180]);
        plain.copy_from_slice(&blob[WRAP_CT]);
        cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(&blob[WRAP_IV]),
                &aad,
                &mut plain[..],
                GenericArray::from_slice(&blob[WRAP_TAG]),
            )
            .map_err(|_| VlekLoadError::Authentication)?;
        if plain[SEED_LEN..].iter().any(|b| *b != 0) {
            return Err(VlekLoadError::Reserved);
        }
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        seed.copy_from_slice(&plain[..SEED_LEN]);
        let key =
            key_from_root(&seed[..], LABEL_VLEK).map_err(|_| VlekLoadError::Authentication)?;
        let mut tcb = [0u8; 8];
        tcb.copy_from_slice(&blob[WRAP_TCB]);
        let tcb = TcbVersion::from_le_bytes(tcb);
        self.vlek = Some(Vlek { seed, tcb, key });
        Ok(tcb)
    }

    /// Removes the loaded VLEK (as SNP_SHUTDOWN/SNP_INIT do).
    pub fn unload_vlek(&mut self) {
        self.vlek = None;
    }
}

/// AAD of the model's VLEK wrapping: bytes 0x000..0x010 and 0x190..0x1A0.
fn wrap_aad(blob: &[u8; WRAPPED_VLEK_LEN]) -> [u8; 32] {
    let mut aad = [0u8; 32];
    aad[..16].copy_from_slice(&blob[0x000..0x010]);
    aad[16..].copy_from_slice(&blob[0x190..0x1A0]);
    aad
}

/// Wraps a VLEK seed (hashstick) for `chip` and `tcb` in the model's
/// SNP_VLEK_LOAD format (the module documentation): what AMD's key server
/// does for a real chip. `iv` must be fresh per wrapping under one chip.
///
/// # Errors
/// Only if the AEAD refuses the buffer, which it does not for these sizes.
pub fn wrap_vlek(
    chip: &ChipIdentity,
    seed: &[u8; SEED_LEN],
    tcb: TcbVersion,
    iv: [u8; 12],
) -> Result<[u8; WRAPPED_VLEK_LEN], IdentityError> {
    let mut wrap_key = Zeroizing::new([0u8; 32]);
    kdf(&chip.cuk()[..], LABEL_VLEK_WRAP, &[], &mut wrap_key[..]);
    let cipher = Aes256Gcm::new_from_slice(&wrap_key[..])
        .map_err(|e| IdentityError::Encoding(format!("VLEK wrapping key: {e}")))?;
    let mut blob = [0u8; WRAPPED_VLEK_LEN];
    blob[WRAP_IV].copy_from_slice(&iv);
    blob[WRAP_TCB].copy_from_slice(&tcb.to_le_bytes());
    let aad = wrap_aad(&blob);
    let mut plain = Zeroizing::new([0u8; 0x180]);
    plain[..SEED_LEN].copy_from_slice(seed);
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(&iv), &aad, &mut plain[..])
        .map_err(|e| IdentityError::Encoding(format!("VLEK wrapping: {e}")))?;
    blob[WRAP_CT].copy_from_slice(&plain[..]);
    blob[WRAP_TAG].copy_from_slice(&tag);
    Ok(blob)
}

impl EndorsementKeys for ChipEndorsementKeys {
    fn vcek(&self, reported_tcb: TcbVersion) -> Result<Arc<P384SigningKey>, IdentityError> {
        if let Some(key) = self
            .vceks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&reported_tcb.raw())
        {
            return Ok(Arc::clone(key));
        }
        // Derive outside the lock; a racing thread derives the same key.
        let hash = self.vcek_hash(reported_tcb);
        let key = Arc::new(key_from_root(&hash[..], LABEL_VCEK)?);
        let mut cache = self.vceks.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(cache.entry(reported_tcb.raw()).or_insert(key)))
    }

    fn vcek_hash(&self, tcb: TcbVersion) -> Zeroizing<[u8; SEED_LEN]> {
        hash_stick(&self.stick_seed, tcb)
    }

    fn vlek(&self) -> Option<&P384SigningKey> {
        self.vlek.as_ref().map(|v| &v.key)
    }

    fn vlek_seed(&self) -> Option<Zeroizing<[u8; SEED_LEN]>> {
        self.vlek.as_ref().map(|v| Zeroizing::new(*v.seed))
    }
}

/// The hash stick of the module documentation: the VCEK hash of `tcb`.
fn hash_stick(seed0: &[u8; SEED_LEN], tcb: TcbVersion) -> Zeroizing<[u8; SEED_LEN]> {
    let mut seed = Zeroizing::new(*seed0);
    let mut h = Zeroizing::new([0u8; SEED_LEN]);
    let levels = tcb.to_le_bytes();
    for (i, level) in levels.iter().enumerate() {
        h.copy_from_slice(&seed[..]);
        for _ in 0..(255 - u32::from(*level)) {
            let mut next = Sha384::digest(&h[..]);
            h.copy_from_slice(&next);
            next.zeroize();
        }
        let mut next = if i + 1 < levels.len() {
            let mut hasher = Sha384::new();
            hasher.update([0u8; 8]);
            hasher.update(&h[..]);
            hasher.finalize()
        } else {
            Sha384::digest(&h[..])
        };
        seed.copy_from_slice(&next);
        next.zeroize();
    }
    seed
}

/// `ecc_keypair_from_extra_bits(P-384, KDF(root, label, ∅, 56))`: the 56
/// bytes as a little-endian integer `c`, `d = (c mod (n−1)) + 1`.
fn key_from_root(root: &[u8], label: &[u8]) -> Result<P384SigningKey, IdentityError> {
    let mut rdata = Zeroizing::new([0u8; 56]);
    kdf(root, label, &[], &mut rdata[..]);
    let c = BigUint::from_bytes_le(&rdata[..]);
    let n_minus_1 = BigUint::from_bytes_be(&P384_ORDER_BE) - 1u32;
    let d = (c % n_minus_1) + 1u32;
    let d_be = Zeroizing::new(d.to_bytes_be());
    let mut scalar = Zeroizing::new([0u8; 48]);
    let len = d_be.len().min(48);
    scalar[48 - len..].copy_from_slice(&d_be[d_be.len() - len..]);
    P384SigningKey::from_be_scalar(&scalar)
        .map_err(|e| IdentityError::KeyGeneration(format!("endorsement key: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use sev_crypto::report::{sign_report, verify_report_signature, REPORT_LEN};
    use std::sync::OnceLock;

    /// A small (RSA-2048 roots) chip shared by this crate's SNP unit tests.
    pub(crate) fn test_chip() -> &'static ChipIdentity {
        static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
        CHIP.get_or_init(|| {
            ChipIdentity::generate_with_bits(&mut ChaCha20Rng::from_seed([0x51; 32]), 1, 55, 2048)
                .expect("test chip")
        })
    }

    #[test]
    fn tcb_change_gives_new_vcek_and_cache_is_stable() {
        let keys = ChipEndorsementKeys::new(test_chip());
        let a = TcbVersion::new(0x7308_0000_0000_0003);
        let b = TcbVersion::new(0x7309_0000_0000_0003);
        let ka = keys.vcek(a).unwrap();
        let kb = keys.vcek(b).unwrap();
        assert_ne!(ka.public_key(), kb.public_key());
        assert!(Arc::ptr_eq(&ka, &keys.vcek(a).unwrap()));
        assert_ne!(*keys.vcek_hash(a), *keys.vcek_hash(b));
        // Deterministic: a fresh instance derives the same key.
        let again = ChipEndorsementKeys::new(test_chip());
        assert_eq!(again.vcek(a).unwrap().public_key(), ka.public_key());
        // Every component matters.
        for byte in 0..8 {
            let mut raw = a.to_le_bytes();
            raw[byte] = raw[byte].wrapping_add(1);
            assert_ne!(
                *keys.vcek_hash(TcbVersion::from_le_bytes(raw)),
                *keys.vcek_hash(a)
            );
        }
    }

    #[test]
    fn vcek_signs_reports() {
        let keys = ChipEndorsementKeys::new(test_chip());
        let key = keys.vcek(TcbVersion::default()).unwrap();
        let mut report = vec![0u8; REPORT_LEN];
        report[0] = 3;
        sign_report(&mut report, &key).unwrap();
        verify_report_signature(&report, key.public_key_ref()).unwrap();
    }

    #[test]
    fn vlek_wrap_and_load() {
        let chip = test_chip();
        let mut keys = ChipEndorsementKeys::new(chip);
        assert!(keys.vlek().is_none() && keys.vlek_seed().is_none());
        let seed = [0xA5; SEED_LEN];
        let tcb = TcbVersion::new(0x7308_0000_0000_0003);
        let blob = wrap_vlek(chip, &seed, tcb, [7; 12]).unwrap();
        assert_eq!(keys.load_vlek(1, &blob), Err(VlekLoadError::Version(1)));
        assert_eq!(
            keys.load_vlek(0, &blob[..100]),
            Err(VlekLoadError::Length(100))
        );
        for pos in [0usize, 0x20, 0x190, 0x1AF] {
            let mut bad = blob;
            bad[pos] ^= 1;
            assert_eq!(keys.load_vlek(0, &bad), Err(VlekLoadError::Authentication));
        }
        let mut bad = blob;
        bad[0x19A] = 1;
        assert_eq!(keys.load_vlek(0, &bad), Err(VlekLoadError::Reserved));
        assert!(keys.vlek().is_none());
        assert_eq!(keys.load_vlek(0, &blob), Ok(tcb));
        assert_eq!(keys.vlek_tcb(), Some(tcb));
        assert_eq!(*keys.vlek_seed().unwrap(), seed);
        let vlek = keys.vlek().unwrap().public_key();
        assert_ne!(vlek, keys.vcek(tcb).unwrap().public_key());
        let dbg = format!("{keys:?}");
        assert!(dbg.contains("redacted") && !dbg.contains("a5a5a5"));
        keys.unload_vlek();
        assert!(keys.vlek().is_none());
    }

    #[test]
    fn report_chip_id_per_product() {
        let keys = ChipEndorsementKeys::new(test_chip());
        assert_eq!(&keys.report_chip_id(Product::Milan), keys.chip_id());
        let turin = keys.report_chip_id(Product::Turin);
        assert_eq!(turin[..8], keys.chip_id()[..8]);
        assert!(turin[8..].iter().all(|b| *b == 0));
    }
}
