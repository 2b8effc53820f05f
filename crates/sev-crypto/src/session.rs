//! The legacy SEV launch session (LAUNCH_START / RECEIVE_START).
//!
//! ```text
//! Z      = ECDH-P384(GODH_priv, PDH_pub).x          (48 bytes, big-endian)
//! master = KDF(Z, "sev-master-secret", nonce, 16)
//! KEK    = KDF(master, "sev-kek", ∅, 16)
//! KIK    = KDF(master, "sev-kik", ∅, 16)
//! wrap_tk    = AES-128-CTR(KEK, wrap_iv, TEK || TIK)
//! wrap_mac   = HMAC-SHA256(KIK, wrap_tk)
//! policy_mac = HMAC-SHA256(TIK, u32_le(policy))
//! ```

use core::fmt;

use p384::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use sev_abi::pubkey::EccPublicKey;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::kdf::{kdf, LABEL_KEK, LABEL_KIK, LABEL_MASTER_SECRET};
use crate::packet::{aes128_ctr, ct_eq, hmac_sha256};
use crate::{CryptoError, Result};

macro_rules! secret_key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Zeroized on drop; `Debug` prints `<redacted>`.
        #[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// Wraps raw key bytes.
            pub fn new(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// A fresh random key.
            pub fn random(rng: &mut impl CryptoRngCore) -> Self {
                let mut key = Self([0u8; 16]);
                rng.fill_bytes(&mut key.0);
                key
            }

            /// The raw key bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(<redacted>)", stringify!($name))
            }
        }
    };
}

secret_key_type!(
    /// Transport encryption key (AES-128-CTR key of the launch channel).
    Tek
);
secret_key_type!(
    /// Transport integrity key (HMAC-SHA256 key of the launch channel).
    Tik
);
secret_key_type!(
    /// Key-encryption key: encrypts TEK || TIK in the session buffer.
    Kek
);
secret_key_type!(
    /// Key-integrity key: MACs the wrapped keys in the session buffer.
    Kik
);

/// Derives KEK and KIK from the ECDH shared secret `Z` (the big-endian x
/// coordinate) and the session nonce.
pub fn derive_transport_keys(shared_x_be: &[u8], nonce: &[u8; 16]) -> (Kek, Kik) {
    let mut master = [0u8; 16];
    kdf(shared_x_be, LABEL_MASTER_SECRET, nonce, &mut master);
    let mut kek = Kek([0u8; 16]);
    let mut kik = Kik([0u8; 16]);
    kdf(&master, LABEL_KEK, &[], &mut kek.0);
    kdf(&master, LABEL_KIK, &[], &mut kik.0);
    master.zeroize();
    (kek, kik)
}

/// Wraps TEK and TIK for the session buffer: returns `(wrap_tk, wrap_mac)`.
pub fn wrap_keys(
    kek: &Kek,
    kik: &Kik,
    iv: &[u8; 16],
    tek: &Tek,
    tik: &Tik,
) -> ([u8; 32], [u8; 32]) {
    let mut wrap_tk = [0u8; 32];
    wrap_tk[..16].copy_from_slice(&tek.0);
    wrap_tk[16..].copy_from_slice(&tik.0);
    aes128_ctr(&kek.0, iv, &mut wrap_tk);
    let wrap_mac = hmac_sha256(&kik.0, &[&wrap_tk]);
    (wrap_tk, wrap_mac)
}

/// Checks `wrap_mac` (in constant time, before decrypting) and unwraps TEK
/// and TIK.
///
/// Fails with [`CryptoError::BadMac`], which the firmware reports as
/// `BAD_MEASUREMENT`, when the MAC does not match.
pub fn unwrap_keys(
    kek: &Kek,
    kik: &Kik,
    iv: &[u8; 16],
    wrap_tk: &[u8; 32],
    wrap_mac: &[u8; 32],
) -> Result<(Tek, Tik)> {
    let expected = hmac_sha256(&kik.0, &[wrap_tk]);
    if !ct_eq(&expected, wrap_mac) {
        return Err(CryptoError::BadMac);
    }
    let mut plain = *wrap_tk;
    aes128_ctr(&kek.0, iv, &mut plain);
    let mut tek = Tek([0u8; 16]);
    let mut tik = Tik([0u8; 16]);
    tek.0.copy_from_slice(&plain[..16]);
    tik.0.copy_from_slice(&plain[16..]);
    plain.zeroize();
    Ok((tek, tik))
}

/// `HMAC-SHA256(TIK, u32_le(policy))`, the session buffer's policy MAC.
pub fn policy_mac(tik: &Tik, policy: u32) -> [u8; 32] {
    hmac_sha256(&tik.0, &[&policy.to_le_bytes()])
}

/// An ECDH P-384 private key (the guest owner's GODH key, or a PDH key in a
/// software firmware model).
///
/// Zeroized on drop; `Debug` prints `<redacted>`.
#[derive(Clone, ZeroizeOnDrop)]
pub struct EcdhP384Secret {
    secret: p384::SecretKey,
}

impl fmt::Debug for EcdhP384Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcdhP384Secret(<redacted>)")
    }
}

impl EcdhP384Secret {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            secret: p384::SecretKey::random(rng),
        }
    }

    /// Imports a private scalar given as 48 big-endian bytes (must be in
    /// `[1, n)`).
    pub fn from_be_bytes(scalar: &[u8]) -> Result<Self> {
        if scalar.len() != 48 {
            return Err(CryptoError::BadLength {
                what: "P-384 private scalar",
                expected: 48,
                actual: scalar.len(),
            });
        }
        let secret = p384::SecretKey::from_slice(scalar)
            .map_err(|_| CryptoError::InvalidPrivateKey("P-384 scalar is zero or not below n"))?;
        Ok(Self { secret })
    }

    /// The public key, uncompressed SEC1 (`04 || x || y`, big-endian).
    pub fn public_sec1(&self) -> [u8; 97] {
        let point = self.secret.public_key().to_encoded_point(false);
        let mut out = [0u8; 97];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The public key in AMD's 0x404-byte little-endian structure.
    pub fn public_amd(&self) -> EccPublicKey {
        let sec1 = self.public_sec1();
        let mut x = [0u8; 48];
        let mut y = [0u8; 48];
        x.copy_from_slice(&sec1[1..49]);
        y.copy_from_slice(&sec1[49..]);
        EccPublicKey::from_p384_be(&x, &y)
    }

    /// The ECDH shared secret with the peer's public key (SEC1 encoded): the
    /// x coordinate of the shared point, 48 bytes big-endian. The caller
    /// should zeroize it after use.
    pub fn shared_x_be(&self, peer_sec1: &[u8]) -> Result<[u8; 48]> {
        let peer = p384::PublicKey::from_sec1_bytes(peer_sec1)
            .map_err(|_| CryptoError::InvalidPublicKey("peer key is not a valid P-384 point"))?;
        let shared = p384::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        let mut out = [0u8; 48];
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }

    /// Same as [`Self::shared_x_be`] for a peer key in AMD's structure.
    pub fn shared_x_be_amd(&self, peer: &EccPublicKey) -> Result<[u8; 48]> {
        let sec1 = peer.to_p384_sec1().ok_or(CryptoError::InvalidPublicKey(
            "peer key is not a P-384 key with zero padding",
        ))?;
        self.shared_x_be(&sec1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    // amd-sp-reference.md §1.10 (Z fed to the KDF is 16 zero bytes).
    const WRAP_TK: &str = "2137bc7f9bb8bd7c3e55a576a15d3454b3856b8ba27afadf46dcfee9f02c02c4";
    const WRAP_MAC: &str = "3176c0752738bd9d5e86689534020f528c088f16238826b000b327dee6aeed7d";
    const POLICY_MAC: &str = "aa7855e13839dd767cd5da7c1ff5036540c9264b7a803029315e55375287b4af";

    #[test]
    fn session_vectors() {
        let (kek, kik) = derive_transport_keys(&[0u8; 16], &[0u8; 16]);
        let (wrap_tk, wrap_mac) = wrap_keys(&kek, &kik, &[0u8; 16], &Tek([0; 16]), &Tik([0; 16]));
        assert_eq!(hex::encode(wrap_tk), WRAP_TK);
        assert_eq!(hex::encode(wrap_mac), WRAP_MAC);
        assert_eq!(hex::encode(policy_mac(&Tik([0; 16]), 0)), POLICY_MAC);
    }

    #[test]
    fn unwrap_vector_and_round_trip() {
        let (kek, kik) = derive_transport_keys(&[0u8; 16], &[0u8; 16]);
        let (tek, tik) =
            unwrap_keys(&kek, &kik, &[0u8; 16], &hex32(WRAP_TK), &hex32(WRAP_MAC)).unwrap();
        assert_eq!(tek.0, [0u8; 16]);
        assert_eq!(tik.0, [0u8; 16]);

        let tek = Tek(core::array::from_fn(|i| i as u8));
        let tik = Tik(core::array::from_fn(|i| 0xA0 ^ i as u8));
        let iv = [7u8; 16];
        let (kek, kik) = derive_transport_keys(&[0x55; 48], &[9; 16]);
        let (wt, wm) = wrap_keys(&kek, &kik, &iv, &tek, &tik);
        let (t2, i2) = unwrap_keys(&kek, &kik, &iv, &wt, &wm).unwrap();
        assert_eq!(t2, tek);
        assert_eq!(i2, tik);
    }

    #[test]
    fn unwrap_rejects_bad_mac() {
        let (kek, kik) = derive_transport_keys(&[0u8; 16], &[0u8; 16]);
        let mut mac = hex32(WRAP_MAC);
        mac[31] ^= 1;
        assert_eq!(
            unwrap_keys(&kek, &kik, &[0u8; 16], &hex32(WRAP_TK), &mac),
            Err(CryptoError::BadMac)
        );
        let mut tk = hex32(WRAP_TK);
        tk[0] ^= 0x80;
        assert_eq!(
            unwrap_keys(&kek, &kik, &[0u8; 16], &tk, &hex32(WRAP_MAC)),
            Err(CryptoError::BadMac)
        );
        // A different nonce gives different keys, so the MAC fails too.
        let (kek, kik) = derive_transport_keys(&[0u8; 16], &[1u8; 16]);
        assert_eq!(
            unwrap_keys(&kek, &kik, &[0u8; 16], &hex32(WRAP_TK), &hex32(WRAP_MAC)),
            Err(CryptoError::BadMac)
        );
    }

    #[test]
    fn policy_mac_depends_on_policy_le() {
        let tik = Tik([3; 16]);
        assert_eq!(
            policy_mac(&tik, 0x0102_0304),
            hmac_sha256(&tik.0, &[&[4, 3, 2, 1]])
        );
        assert_ne!(policy_mac(&tik, 1), policy_mac(&tik, 0));
    }

    #[test]
    fn ecdh_agrees_and_checks_peer() {
        let mut rng = rand_core::OsRng;
        let a = EcdhP384Secret::generate(&mut rng);
        let b = EcdhP384Secret::generate(&mut rng);
        let ab = a.shared_x_be(&b.public_sec1()).unwrap();
        let ba = b.shared_x_be(&a.public_sec1()).unwrap();
        assert_eq!(ab, ba);
        assert_eq!(a.shared_x_be_amd(&b.public_amd()).unwrap(), ab);

        let mut bad = b.public_sec1();
        bad[50] ^= 1;
        assert!(matches!(
            a.shared_x_be(&bad),
            Err(CryptoError::InvalidPublicKey(_))
        ));
        assert!(a.shared_x_be(&[0u8; 3]).is_err());
    }

    #[test]
    fn ecdh_known_scalar() {
        // d = 1: the public key is the generator; Z with d = 2 and peer G is
        // the x coordinate of 2G.
        let mut one = [0u8; 48];
        one[47] = 1;
        let mut two = [0u8; 48];
        two[47] = 2;
        let g = EcdhP384Secret::from_be_bytes(&one).unwrap().public_sec1();
        assert_eq!(
            hex::encode(&g[1..49]),
            "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"
        );
        let two_g = EcdhP384Secret::from_be_bytes(&two).unwrap().public_sec1();
        let z = EcdhP384Secret::from_be_bytes(&two)
            .unwrap()
            .shared_x_be(&g)
            .unwrap();
        assert_eq!(&z[..], &two_g[1..49]);
        assert!(EcdhP384Secret::from_be_bytes(&[0u8; 48]).is_err());
        assert!(EcdhP384Secret::from_be_bytes(&[1u8; 47]).is_err());
        assert!(EcdhP384Secret::from_be_bytes(&[0xFFu8; 48]).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let tek = Tek([0xAB; 16]);
        let s = format!("{tek:?}");
        assert!(s.contains("<redacted>") && !s.contains("ab"), "{s}");
        let e = EcdhP384Secret::generate(&mut rand_core::OsRng);
        assert_eq!(format!("{e:?}"), "EcdhP384Secret(<redacted>)");
    }
}
