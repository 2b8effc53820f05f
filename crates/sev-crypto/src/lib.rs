//! AMD SEV cryptographic constructions.
//!
//! * [`kdf`]: the SP800-108 counter-mode KDF (HMAC-SHA256) used by the
//!   firmware for every derived key.
//! * [`session`]: the legacy launch session (ECDH, KEK/KIK, key wrapping,
//!   policy MAC), both halves: the guest owner's
//!   [`session::build_launch_session`] and the firmware's
//!   [`session::open_launch_session`].
//! * [`packet`]: AES-128-CTR transport, LAUNCH_MEASURE and packet MACs,
//!   LAUNCH_SECRET sealing.
//! * [`ecdsa`]: ECDSA P-384 in AMD's little-endian signature encoding
//!   (aws-lc-rs for SHA-384, RustCrypto for the legacy SHA-256 variant).
//! * [`rsa_pss`]: RSASSA-PSS over AMD's little-endian integers (legacy
//!   ARK/ASK/CEK certificates).
//! * [`legacy_cert`]: signatures of legacy SEV certificates (AMD ARK/ASK,
//!   `sev_cert`).
//! * [`x509`]: X.509 certificates of the SNP chain (ARK, ASK, VCEK).
//! * [`report`]: signing and verifying SNP attestation reports.
//! * [`guest_msg`]: AES-256-GCM sealing and opening of SNP guest message
//!   pages (SNP_GUEST_REQUEST).
//!
//! Secrets live in types that zeroize on drop and whose `Debug` output is
//! `<redacted>`.

mod error;

pub mod ecdsa;
pub mod guest_msg;
pub mod kdf;
pub mod legacy_cert;
pub mod packet;
pub mod report;
pub mod rsa_pss;
pub mod session;
pub mod x509;

pub use error::CryptoError;

/// Result type of this crate.
pub type Result<T, E = CryptoError> = core::result::Result<T, E>;
