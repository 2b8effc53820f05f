//! The crate's error type.

/// Everything that can fail in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The MAC over the wrapped keys or over a packet did not match. The
    /// firmware reports this as status `BAD_MEASUREMENT`.
    #[error("MAC mismatch (firmware status BAD_MEASUREMENT)")]
    BadMac,
    /// A public key could not be parsed or is not a valid point / integer.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
    /// A private key could not be parsed or is out of range.
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(&'static str),
    /// A signature is malformed (bad padding, bad length, bad encoding).
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// A well-formed signature did not verify.
    #[error("signature verification failed: {0}")]
    BadSignature(&'static str),
    /// Signing failed inside the cryptographic library.
    #[error("signing failed: {0}")]
    SigningFailed(&'static str),
    /// An input had the wrong length.
    #[error("wrong length for {what}: expected {expected}, got {actual}")]
    BadLength {
        /// What was measured.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length supplied.
        actual: usize,
    },
    /// A certificate could not be decoded.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// A certificate uses an algorithm or parameters this crate does not
    /// accept.
    #[error("unsupported certificate algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The certificate's issuer name does not equal the issuer's subject.
    #[error(
        "issuer name of the certificate does not match the subject of the issuing certificate"
    )]
    IssuerMismatch,
    /// A certificate chain link does not fit (wrong signer id, no signature
    /// slot for the signer, unusable algorithm).
    #[error("certificate chain mismatch: {0}")]
    ChainMismatch(String),
    /// The elliptic-curve Diffie-Hellman exchange failed.
    #[error("ECDH failed: {0}")]
    Ecdh(&'static str),
}
