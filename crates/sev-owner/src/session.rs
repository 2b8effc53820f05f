//! The launch session in the files `sevctl session` writes.
//!
//! | file | content |
//! |---|---|
//! | `PREFIX_godh.b64` | GODH `sev_cert` (0x824 bytes), standard base64 with padding, no newline |
//! | `PREFIX_session.b64` | session blob (0x80 bytes), same encoding |
//! | `PREFIX_tek.bin` | TEK, 16 raw bytes |
//! | `PREFIX_tik.bin` | TIK, 16 raw bytes |
//!
//! The default prefix is `vm`. The two `.b64` files are what QEMU's
//! `sev-guest` object takes as `dh-cert-file` and `session-file`; the TEK and
//! TIK stay with the guest owner (the TIK checks the launch measurement, both
//! seal the secret packet).
//!
//! The PDH given to [`SessionFiles::build`] is used as is: like `sevctl
//! session`, nothing here verifies the platform's certificate chain (do that
//! first, with `sevkit verify`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand_core::CryptoRngCore;
use sev_abi::legacy_cert::{SevCert, SEV_CERT_LEN};
use sev_abi::policy::GuestPolicy;
use sev_abi::pubkey::EccPublicKey;
use sev_abi::session::{SessionBlob, SESSION_BLOB_LEN};
use sev_crypto::session::{build_launch_session, LaunchSession, Tek, Tik};
use zerocopy::{FromBytes, IntoBytes};

use crate::OwnerError;

/// The file-name prefix `sevctl session` uses when `--name` is not given.
pub const DEFAULT_NAME: &str = "vm";

/// The four file names for a prefix (no directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFileNames {
    /// `PREFIX_godh.b64`.
    pub godh: String,
    /// `PREFIX_session.b64`.
    pub session: String,
    /// `PREFIX_tek.bin`.
    pub tek: String,
    /// `PREFIX_tik.bin`.
    pub tik: String,
}

impl SessionFileNames {
    /// The names `sevctl session --name PREFIX` writes.
    pub fn new(prefix: &str) -> Self {
        Self {
            godh: format!("{prefix}_godh.b64"),
            session: format!("{prefix}_session.b64"),
            tek: format!("{prefix}_tek.bin"),
            tik: format!("{prefix}_tik.bin"),
        }
    }
}

impl Default for SessionFileNames {
    fn default() -> Self {
        Self::new(DEFAULT_NAME)
    }
}

/// The contents of the four files. `Debug` redacts the TEK and TIK.
#[derive(Debug, Clone)]
pub struct SessionFiles {
    /// Content of `PREFIX_godh.b64`.
    pub godh_b64: String,
    /// Content of `PREFIX_session.b64`.
    pub session_b64: String,
    /// Content of `PREFIX_tek.bin` (its 16 bytes: [`Tek::as_bytes`]).
    pub tek: Tek,
    /// Content of `PREFIX_tik.bin` (its 16 bytes: [`Tik::as_bytes`]).
    pub tik: Tik,
}

impl SessionFiles {
    /// Encodes a launch session.
    pub fn from_session(session: &LaunchSession) -> Self {
        Self {
            godh_b64: encode_godh(&session.godh_cert),
            session_b64: encode_session(&session.session),
            tek: session.tek.clone(),
            tik: session.tik.clone(),
        }
    }

    /// Builds a fresh launch session for `pdh` and `policy` and encodes it.
    pub fn build(
        pdh: &EccPublicKey,
        policy: GuestPolicy,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, OwnerError> {
        let session = build_launch_session(pdh, policy, rng).map_err(|e| {
            OwnerError::InvalidPdh(format!("the PDH key cannot be used for ECDH: {e}"))
        })?;
        Ok(Self::from_session(&session))
    }
}

/// The P-384 key of a platform's PDH certificate. Only the key usage (PDH,
/// 0x1003), the algorithm (ECDH) and the point are checked; signatures are
/// not (verify the chain separately).
pub fn pdh_public_key(cert: &SevCert) -> Result<EccPublicKey, OwnerError> {
    let usage = cert.pubkey_usage.get();
    if usage != sev_abi::KeyUsage::Pdh.as_u32() {
        return Err(OwnerError::InvalidPdh(format!(
            "certificate key usage is {usage:#x} ({}), expected PDH (0x1003)",
            sev_abi::KeyUsage::from_u32(usage).map_or("unknown", sev_abi::KeyUsage::name)
        )));
    }
    let key = cert
        .ecc_key()
        .filter(|_| cert.algorithm().is_ecdh())
        .ok_or_else(|| {
            OwnerError::InvalidPdh(format!(
                "certificate key algorithm is {:#x}, expected ECDH",
                cert.pubkey_algo.get()
            ))
        })?;
    if key.to_p384_sec1().is_none() {
        return Err(OwnerError::InvalidPdh(
            "the PDH key is not a P-384 key (curve id 2, zero padding)".into(),
        ));
    }
    Ok(*key)
}

/// Standard base64 (with padding, no newline) of the GODH certificate.
pub fn encode_godh(cert: &SevCert) -> String {
    STANDARD.encode(cert.as_bytes())
}

/// Standard base64 (with padding, no newline) of the session blob.
pub fn encode_session(session: &SessionBlob) -> String {
    STANDARD.encode(session.as_bytes())
}

/// Decodes base64 text, ignoring surrounding whitespace.
pub fn decode_b64(what: &'static str, text: &[u8]) -> Result<Vec<u8>, OwnerError> {
    STANDARD
        .decode(text.trim_ascii())
        .map_err(|e| OwnerError::Base64 {
            what,
            reason: e.to_string(),
        })
}

/// Reads a `*_godh.b64` file's content back. Only the length is checked, so
/// that a damaged certificate reaches the firmware's checks
/// ([`sev_crypto::session::open_launch_session`]) and gets its status code.
pub fn decode_godh(text: &[u8]) -> Result<SevCert, OwnerError> {
    let bytes = decode_b64("GODH certificate", text)?;
    SevCert::read_from_bytes(&bytes).map_err(|_| OwnerError::Length {
        what: "GODH certificate",
        expected: SEV_CERT_LEN,
        actual: bytes.len(),
    })
}

/// Reads a `*_session.b64` file's content back.
pub fn decode_session(text: &[u8]) -> Result<SessionBlob, OwnerError> {
    let bytes = decode_b64("session blob", text)?;
    SessionBlob::read_from_bytes(&bytes).map_err(|_| OwnerError::Length {
        what: "session blob",
        expected: SESSION_BLOB_LEN,
        actual: bytes.len(),
    })
}

/// A 16-byte transport key from its file content: 16 raw bytes (as `sevctl
/// session` writes them) or their base64 (as `sevctl secret build` also
/// accepts on the command line).
pub fn decode_key(what: &'static str, content: &[u8]) -> Result<[u8; 16], OwnerError> {
    if let Ok(raw) = <[u8; 16]>::try_from(content) {
        return Ok(raw);
    }
    let decoded = decode_b64(what, content).map_err(|_| OwnerError::Length {
        what,
        expected: 16,
        actual: content.len(),
    })?;
    <[u8; 16]>::try_from(decoded.as_slice()).map_err(|_| OwnerError::Length {
        what,
        expected: 16,
        actual: decoded.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev_crypto::session::{open_launch_session, EcdhP384Secret, SessionError};

    #[test]
    fn names_match_sevctl() {
        let n = SessionFileNames::default();
        assert_eq!(n.godh, "vm_godh.b64");
        assert_eq!(n.session, "vm_session.b64");
        assert_eq!(n.tek, "vm_tek.bin");
        assert_eq!(n.tik, "vm_tik.bin");
        assert_eq!(SessionFileNames::new("x").tik, "x_tik.bin");
    }

    #[test]
    fn files_round_trip_through_the_firmware_side() {
        let mut rng = rand_core::OsRng;
        let pdh = EcdhP384Secret::generate(&mut rng);
        let cert = SevCert::new_ecc(
            0,
            24,
            sev_abi::KeyUsage::Pdh,
            sev_abi::Algorithm::EcdhSha256,
            &pdh.public_amd(),
        );
        let key = pdh_public_key(&cert).unwrap();
        let files = SessionFiles::build(&key, GuestPolicy::from_raw(5), &mut rng).unwrap();
        assert_eq!(files.godh_b64.len(), SEV_CERT_LEN.div_ceil(3) * 4);
        assert_eq!(files.session_b64.len(), SESSION_BLOB_LEN.div_ceil(3) * 4);
        assert!(!files.godh_b64.contains('\n'));

        let godh = decode_godh(files.godh_b64.as_bytes()).unwrap();
        let mut with_newline = files.session_b64.clone().into_bytes();
        with_newline.push(b'\n');
        let session = decode_session(&with_newline).unwrap();
        let (tek, tik) =
            open_launch_session(&pdh, &godh, &session, GuestPolicy::from_raw(5)).unwrap();
        assert_eq!(tek, files.tek);
        assert_eq!(tik, files.tik);
        assert_eq!(
            open_launch_session(&pdh, &godh, &session, GuestPolicy::from_raw(4)).unwrap_err(),
            SessionError::BadPolicyMac
        );
        let text = format!("{files:?}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn pdh_checks() {
        let mut rng = rand_core::OsRng;
        let k = EcdhP384Secret::generate(&mut rng).public_amd();
        let pek = SevCert::new_ecc(
            0,
            0,
            sev_abi::KeyUsage::Pek,
            sev_abi::Algorithm::EcdsaSha256,
            &k,
        );
        assert!(
            matches!(pdh_public_key(&pek), Err(OwnerError::InvalidPdh(m)) if m.contains("PEK"))
        );
        let mut c = SevCert::new_ecc(
            0,
            0,
            sev_abi::KeyUsage::Pdh,
            sev_abi::Algorithm::EcdsaSha256,
            &k,
        );
        assert!(pdh_public_key(&c).is_err());
        c.pubkey_algo = zerocopy::little_endian::U32::new(0x3);
        assert!(pdh_public_key(&c).is_ok());
        c.pubkey[0] = 1;
        assert!(pdh_public_key(&c).is_err());
        // A point off the curve passes here and fails at ECDH.
        let mut c2 = SevCert::new_ecc(
            0,
            0,
            sev_abi::KeyUsage::Pdh,
            sev_abi::Algorithm::EcdhSha256,
            &k,
        );
        c2.pubkey[4] ^= 1;
        let key = pdh_public_key(&c2).unwrap();
        assert!(matches!(
            SessionFiles::build(&key, GuestPolicy::from_raw(0), &mut rng),
            Err(OwnerError::InvalidPdh(_))
        ));
    }

    #[test]
    fn decoders_report_lengths() {
        assert!(matches!(
            decode_session(b"AAAA"),
            Err(OwnerError::Length { actual: 3, .. })
        ));
        assert!(matches!(
            decode_godh(b"not base64!"),
            Err(OwnerError::Base64 { .. })
        ));
        assert_eq!(decode_key("TEK", &[7; 16]).unwrap(), [7; 16]);
        assert_eq!(
            decode_key("TEK", b"BwcHBwcHBwcHBwcHBwcHBw==\n").unwrap(),
            [7; 16]
        );
        assert!(matches!(
            decode_key("TEK", &[7; 15]),
            Err(OwnerError::Length { expected: 16, .. })
        ));
        assert!(matches!(
            decode_key("TEK", b"BwcH"),
            Err(OwnerError::Length { actual: 3, .. })
        ));
    }
}
