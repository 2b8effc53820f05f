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
//!
//! Both halves of the exchange are here: [`build_launch_session`] is the
//! guest owner's side (what `sevctl session` does), [`open_launch_session`]
//! the firmware's side of LAUNCH_START / RECEIVE_START, with the firmware's
//! checks in the firmware's order and its status codes ([`SessionError`]).

use core::fmt;

use p384::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use sev_abi::legacy_cert::{Algorithm, KeyUsage, SevCert, SEV_CERT_VERSION};
use sev_abi::policy::GuestPolicy;
use sev_abi::pubkey::EccPublicKey;
use sev_abi::session::SessionBlob;
use sev_abi::status::FirmwareStatus;
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
pub fn policy_mac(tik: &Tik, policy: GuestPolicy) -> [u8; 32] {
    hmac_sha256(&tik.0, &[&policy.raw().to_le_bytes()])
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

/// API version written into the GODH certificate. `sevctl session` leaves
/// it at 0.0 (the firmware fills its own version only into certificates it
/// makes itself, and never checks a GODH's).
pub const GODH_API_MAJOR: u8 = 0;
/// See [`GODH_API_MAJOR`].
pub const GODH_API_MINOR: u8 = 0;

/// Everything the guest owner produces for LAUNCH_START: the GODH
/// certificate and session blob handed to the host, and the transport keys
/// the owner keeps to verify the launch measurement and seal secrets.
///
/// The GODH private key is used once and dropped (zeroized) inside
/// [`build_launch_session`]. `Debug` redacts the TEK and TIK.
#[derive(Debug, Clone)]
pub struct LaunchSession {
    /// The guest owner's Diffie-Hellman certificate: version 1, API 0.0,
    /// usage PDH (0x1003), algorithm ECDH_SHA256 (0x3), unsigned (both
    /// slots usage 0x1000, algorithm 0), as `sevctl session` writes it.
    pub godh_cert: SevCert,
    /// The 0x80-byte session blob.
    pub session: SessionBlob,
    /// Transport encryption key (secret: keep it with the guest owner).
    pub tek: Tek,
    /// Transport integrity key (secret: keep it with the guest owner).
    pub tik: Tik,
}

/// Builds a launch session for a platform's PDH key (the guest owner's side
/// of LAUNCH_START): a fresh GODH key pair, nonce, wrap IV, TEK and TIK, the
/// keys wrapped under KEK/KIK derived from `ECDH(GODH, PDH)`, and the policy
/// MACed with the TIK.
///
/// `policy` is MACed exactly as given (little-endian u32); the firmware
/// recomputes the MAC over the policy in the LAUNCH_START command buffer, so
/// the host must launch with the same value.
///
/// Fails with [`CryptoError::InvalidPublicKey`] when `pdh` is not a P-384
/// point (wrong curve id, non-zero padding, not on the curve).
pub fn build_launch_session(
    pdh: &EccPublicKey,
    policy: GuestPolicy,
    rng: &mut impl CryptoRngCore,
) -> Result<LaunchSession> {
    let godh = EcdhP384Secret::generate(rng);
    let mut z = godh.shared_x_be_amd(pdh)?;
    let mut nonce = [0u8; 16];
    let mut wrap_iv = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    rng.fill_bytes(&mut wrap_iv);
    let tek = Tek::random(rng);
    let tik = Tik::random(rng);

    let (kek, kik) = derive_transport_keys(&z, &nonce);
    z.zeroize();
    let (wrap_tk, wrap_mac) = wrap_keys(&kek, &kik, &wrap_iv, &tek, &tik);
    let session = SessionBlob {
        nonce,
        wrap_tk,
        wrap_iv,
        wrap_mac,
        policy_mac: policy_mac(&tik, policy),
    };
    let godh_cert = SevCert::new_ecc(
        GODH_API_MAJOR,
        GODH_API_MINOR,
        KeyUsage::Pdh,
        Algorithm::EcdhSha256,
        &godh.public_amd(),
    );
    Ok(LaunchSession {
        godh_cert,
        session,
        tek,
        tik,
    })
}

/// Why the firmware refuses a launch session, each with the status code
/// LAUNCH_START / RECEIVE_START returns for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Status `INVALID_CERTIFICATE` (0x06): the GODH certificate is not
    /// version 1, its usage is not PDH (0x1003), its algorithm is not
    /// ECDH_SHA256 (0x3), or its key is not a P-384 point. The guest owner
    /// must regenerate the session (`sevkit session`) from an intact GODH
    /// certificate.
    #[error(
        "GODH certificate rejected (firmware status INVALID_CERTIFICATE, 0x06): {0}; \
         regenerate the session with `sevkit session` and pass its *_godh.b64 unchanged"
    )]
    InvalidCertificate(String),
    /// Status `BAD_MEASUREMENT` (0x0b): `wrap_mac` does not match the
    /// wrapped keys under the KIK derived from this platform's PDH and the
    /// GODH key and nonce. The session was made for another PDH, or the
    /// nonce, wrapped keys, IV, MAC or GODH key were altered.
    #[error(
        "wrapped-key MAC mismatch (firmware status BAD_MEASUREMENT, 0x0b): the session was \
         built for another platform's PDH or was altered; rebuild it from this platform's PDH"
    )]
    BadWrapMac,
    /// Status `BAD_MEASUREMENT` (0x0b): `policy_mac` does not match the
    /// launch policy under the unwrapped TIK. The host launches with a
    /// different policy than the guest owner MACed, or the MAC was altered.
    #[error(
        "policy MAC mismatch (firmware status BAD_MEASUREMENT, 0x0b): the launch policy differs \
         from the one the session was built for; launch with the guest owner's policy"
    )]
    BadPolicyMac,
}

impl SessionError {
    /// The firmware status code LAUNCH_START / RECEIVE_START returns.
    pub fn status(&self) -> FirmwareStatus {
        match self {
            Self::InvalidCertificate(_) => FirmwareStatus::INVALID_CERTIFICATE,
            Self::BadWrapMac | Self::BadPolicyMac => FirmwareStatus::BAD_MEASUREMENT,
        }
    }
}

/// Opens a launch session with the platform's PDH private key (the
/// firmware's side of LAUNCH_START / RECEIVE_START), in the firmware's
/// order: sanity-check the GODH certificate (version, usage PDH, algorithm
/// ECDH_SHA256, P-384 point; signatures are not checked), derive the master
/// secret and KEK/KIK, verify `wrap_mac`, unwrap TEK and TIK, verify
/// `policy_mac` over `policy`.
///
/// The policy's own rules (reserved bits, minimum API version, which yield
/// `POLICY_FAILURE`) are the caller's to check afterwards.
pub fn open_launch_session(
    pdh_secret: &EcdhP384Secret,
    godh_cert: &SevCert,
    session: &SessionBlob,
    policy: GuestPolicy,
) -> Result<(Tek, Tik), SessionError> {
    let version = godh_cert.version.get();
    if version != SEV_CERT_VERSION {
        return Err(SessionError::InvalidCertificate(format!(
            "version {version}, expected {SEV_CERT_VERSION}"
        )));
    }
    let usage = godh_cert.pubkey_usage.get();
    if usage != KeyUsage::Pdh.as_u32() {
        return Err(SessionError::InvalidCertificate(format!(
            "key usage {usage:#x}, expected PDH (0x1003)"
        )));
    }
    let algo = godh_cert.pubkey_algo.get();
    if algo != Algorithm::EcdhSha256.as_u32() {
        return Err(SessionError::InvalidCertificate(format!(
            "key algorithm {algo:#x}, expected ECDH_SHA256 (0x3)"
        )));
    }
    let key = godh_cert.ecc_key().ok_or_else(|| {
        SessionError::InvalidCertificate("no ECC public key in the certificate".into())
    })?;
    let mut z = pdh_secret
        .shared_x_be_amd(key)
        .map_err(|e| SessionError::InvalidCertificate(format!("GODH key: {e}")))?;
    let (kek, kik) = derive_transport_keys(&z, &session.nonce);
    z.zeroize();
    let (tek, tik) = unwrap_keys(
        &kek,
        &kik,
        &session.wrap_iv,
        &session.wrap_tk,
        &session.wrap_mac,
    )
    .map_err(|_| SessionError::BadWrapMac)?;
    if !ct_eq(&policy_mac(&tik, policy), &session.policy_mac) {
        return Err(SessionError::BadPolicyMac);
    }
    Ok((tek, tik))
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
        assert_eq!(
            hex::encode(policy_mac(&Tik([0; 16]), GuestPolicy::from_raw(0))),
            POLICY_MAC
        );
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
            policy_mac(&tik, GuestPolicy::from_raw(0x0102_0304)),
            hmac_sha256(&tik.0, &[&[4, 3, 2, 1]])
        );
        assert_ne!(
            policy_mac(&tik, GuestPolicy::from_raw(1)),
            policy_mac(&tik, GuestPolicy::from_raw(0))
        );
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

    /// A deterministic RNG for tests (SplitMix64; not for real keys).
    struct TestRng(u64);

    impl rand_core::RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(8) {
                let v = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
        }
        fn try_fill_bytes(
            &mut self,
            dest: &mut [u8],
        ) -> core::result::Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for TestRng {}

    fn pdh_and_session(policy: u32) -> (EcdhP384Secret, LaunchSession) {
        let mut rng = TestRng(42);
        let pdh = EcdhP384Secret::generate(&mut rng);
        let session =
            build_launch_session(&pdh.public_amd(), GuestPolicy::from_raw(policy), &mut rng)
                .unwrap();
        (pdh, session)
    }

    #[test]
    fn launch_session_round_trip() {
        for policy in [0, 1, 3, 5, 0x0001_0000, 0xFFFF_FFFF] {
            let (pdh, s) = pdh_and_session(policy);
            let (tek, tik) = open_launch_session(
                &pdh,
                &s.godh_cert,
                &s.session,
                GuestPolicy::from_raw(policy),
            )
            .unwrap();
            assert_eq!(tek, s.tek);
            assert_eq!(tik, s.tik);
            assert_eq!(
                s.session.policy_mac,
                policy_mac(&s.tik, GuestPolicy::from_raw(policy))
            );
        }
    }

    #[test]
    fn godh_cert_is_what_sevctl_writes() {
        use zerocopy::IntoBytes;
        let (_, s) = pdh_and_session(0);
        let c = &s.godh_cert;
        assert_eq!(c.version.get(), 1);
        assert_eq!((c.api_major, c.api_minor), (0, 0));
        assert_eq!(c.reserved, [0, 0]);
        assert_eq!(c.pubkey_usage.get(), 0x1003);
        assert_eq!(c.pubkey_algo.get(), 0x3);
        for slot in c.signatures() {
            assert_eq!((slot.usage, slot.algo), (0x1000, 0));
            assert!(slot.bytes.iter().all(|b| *b == 0));
        }
        let key = c.ecc_key().unwrap();
        assert_eq!(key.curve.get(), 2);
        assert!(key.to_p384_sec1().is_some());
        assert_eq!(c.as_bytes().len(), 0x824);
        // Parses back with the strict parser.
        assert_eq!(SevCert::from_bytes(c.as_bytes()).unwrap(), *c);
    }

    #[test]
    fn launch_sessions_are_fresh() {
        let mut rng = rand_core::OsRng;
        let pdh = EcdhP384Secret::generate(&mut rng);
        let a =
            build_launch_session(&pdh.public_amd(), GuestPolicy::from_raw(0), &mut rng).unwrap();
        let b =
            build_launch_session(&pdh.public_amd(), GuestPolicy::from_raw(0), &mut rng).unwrap();
        assert_ne!(a.session.nonce, b.session.nonce);
        assert_ne!(a.session.wrap_iv, b.session.wrap_iv);
        assert_ne!(a.tek, b.tek);
        assert_ne!(a.tik, b.tik);
        assert_ne!(a.godh_cert.pubkey, b.godh_cert.pubkey);
    }

    #[test]
    fn build_rejects_bad_pdh() {
        let mut rng = TestRng(1);
        let mut key = EcdhP384Secret::generate(&mut rng).public_amd();
        key.qy[0] ^= 1;
        assert!(matches!(
            build_launch_session(&key, GuestPolicy::from_raw(0), &mut rng),
            Err(CryptoError::InvalidPublicKey(_))
        ));
        let mut key = EcdhP384Secret::generate(&mut rng).public_amd();
        key.curve = zerocopy::little_endian::U32::new(1);
        assert!(build_launch_session(&key, GuestPolicy::from_raw(0), &mut rng).is_err());
    }

    #[test]
    fn every_session_tamper_is_refused_with_the_firmware_code() {
        let policy = 0x3;
        let (pdh, s) = pdh_and_session(policy);
        let open = |cert: &SevCert, blob: &SessionBlob, policy: u32| {
            open_launch_session(&pdh, cert, blob, GuestPolicy::from_raw(policy)).map(|_| ())
        };
        let bad_wrap = Err(SessionError::BadWrapMac);

        // Every bit of nonce, wrap_tk, wrap_iv and wrap_mac is covered by
        // the wrap MAC (the nonce and IV through the keys).
        for (field, len) in [
            ("nonce", 16),
            ("wrap_tk", 32),
            ("wrap_iv", 16),
            ("wrap_mac", 32),
        ] {
            for i in 0..len {
                for bit in [0x01u8, 0x80] {
                    let mut b = s.session;
                    let f: &mut [u8] = match field {
                        "nonce" => &mut b.nonce,
                        "wrap_tk" => &mut b.wrap_tk,
                        "wrap_iv" => &mut b.wrap_iv,
                        _ => &mut b.wrap_mac,
                    };
                    f[i] ^= bit;
                    let r = open(&s.godh_cert, &b, policy);
                    // A flipped IV still passes the MAC (the MAC covers the
                    // ciphertext only) but unwraps a different TIK.
                    if field == "wrap_iv" {
                        assert_eq!(r, Err(SessionError::BadPolicyMac), "{field}[{i}]");
                    } else {
                        assert_eq!(r, bad_wrap, "{field}[{i}] ^= {bit:#x}");
                    }
                }
            }
        }
        for i in 0..32 {
            let mut b = s.session;
            b.policy_mac[i] ^= 0x10;
            assert_eq!(
                open(&s.godh_cert, &b, policy),
                Err(SessionError::BadPolicyMac)
            );
        }
        for other in [0, 1, 2, 7, 0x0001_0003, 0x8000_0003] {
            let e = open(&s.godh_cert, &s.session, other).unwrap_err();
            assert_eq!(e, SessionError::BadPolicyMac);
            assert_eq!(e.status(), FirmwareStatus::BAD_MEASUREMENT);
        }

        // GODH key replaced by another valid point: the shared secret
        // changes, so the wrap MAC fails.
        let mut rng = TestRng(7);
        let other = EcdhP384Secret::generate(&mut rng).public_amd();
        let mut cert = s.godh_cert;
        cert.pubkey
            .copy_from_slice(zerocopy::IntoBytes::as_bytes(&other));
        assert_eq!(open(&cert, &s.session, policy), bad_wrap);
        assert_eq!(
            SessionError::BadWrapMac.status(),
            FirmwareStatus::BAD_MEASUREMENT
        );

        // GODH key no longer on the curve, wrong curve, dirty padding.
        let invalid_cert = |cert: &SevCert| {
            let e = open(cert, &s.session, policy).unwrap_err();
            assert!(matches!(e, SessionError::InvalidCertificate(_)), "{e:?}");
            assert_eq!(e.status(), FirmwareStatus::INVALID_CERTIFICATE);
        };
        let mut cert = s.godh_cert;
        cert.pubkey[4] ^= 1; // qx[0]
        invalid_cert(&cert);
        let mut cert = s.godh_cert;
        cert.pubkey[0] = 1; // curve P-256
        invalid_cert(&cert);
        let mut cert = s.godh_cert;
        cert.pubkey[4 + 60] = 1; // qx padding
        invalid_cert(&cert);

        // Usage, algorithm, version.
        for usage in [0x1000u32, 0x1001, 0x1002, 0x1004, 0x13, 0] {
            let mut cert = s.godh_cert;
            cert.pubkey_usage = zerocopy::little_endian::U32::new(usage);
            invalid_cert(&cert);
        }
        for algo in [0u32, 1, 2, 0x101, 0x102, 0x103] {
            let mut cert = s.godh_cert;
            cert.pubkey_algo = zerocopy::little_endian::U32::new(algo);
            invalid_cert(&cert);
        }
        for version in [0u32, 2, 0x0100_0000] {
            let mut cert = s.godh_cert;
            cert.version = zerocopy::little_endian::U32::new(version);
            invalid_cert(&cert);
        }

        // Not checked by the firmware: API version and signature slots.
        let mut cert = s.godh_cert;
        cert.api_major = 1;
        cert.api_minor = 55;
        cert.sig1_usage = zerocopy::little_endian::U32::new(0x1002);
        cert.sig1[0] = 0xAA;
        assert_eq!(open(&cert, &s.session, policy), Ok(()));

        // Another platform's PDH.
        let other_pdh = EcdhP384Secret::generate(&mut rng);
        assert_eq!(
            open_launch_session(
                &other_pdh,
                &s.godh_cert,
                &s.session,
                GuestPolicy::from_raw(policy)
            )
            .map(|_| ()),
            bad_wrap
        );
    }

    #[test]
    fn session_errors_name_the_status() {
        let e = SessionError::InvalidCertificate("x".into());
        assert!(e.to_string().contains("INVALID_CERTIFICATE"));
        assert!(SessionError::BadWrapMac
            .to_string()
            .contains("BAD_MEASUREMENT"));
        assert!(SessionError::BadPolicyMac
            .to_string()
            .contains("BAD_MEASUREMENT"));
        assert_eq!(e.status().code(), 0x06);
        assert_eq!(SessionError::BadPolicyMac.status().code(), 0x0b);
    }

    #[test]
    fn launch_session_debug_is_redacted() {
        let (_, s) = pdh_and_session(0);
        let text = format!("{s:?}");
        assert!(text.contains("Tek(<redacted>)") && text.contains("Tik(<redacted>)"));
        assert!(!text.contains(&hex::encode(s.tek.as_bytes())));
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
