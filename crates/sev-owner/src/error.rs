//! The crate's error type.

use sev_abi::status::FirmwareStatus;
use sev_crypto::session::SessionError;

/// Everything that can fail in the guest owner's tools.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerError {
    /// An input has the wrong length.
    #[error("{what}: expected {expected} bytes, got {actual}")]
    Length {
        /// What was read.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length supplied.
        actual: usize,
    },
    /// Text that should be base64 is not.
    #[error("{what}: not valid base64 ({reason})")]
    Base64 {
        /// What was decoded.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The platform certificate given as PDH cannot be used: wrong key
    /// usage or algorithm, or not a P-384 point.
    #[error("unusable PDH certificate: {0}")]
    InvalidPdh(String),
    /// An AMD structure did not parse.
    #[error("{0}")]
    Abi(#[from] sev_abi::AbiError),
    /// A secret table is larger than its u32 length fields can describe.
    #[error("secret table too large: {0} bytes do not fit a u32 length field")]
    TableTooLarge(usize),
    /// A byte string is not a well-formed secret table.
    #[error("malformed secret table: {0}")]
    MalformedTable(String),
    /// A LAUNCH_SECRET payload whose length is not a non-zero multiple of
    /// 16: the firmware refuses it (the reference names no status code
    /// for this check, so [`OwnerError::status`] gives none).
    #[error(
        "LAUNCH_SECRET payload of {0} bytes: the firmware needs a non-zero multiple of 16; \
         pad the secret table to 16 bytes"
    )]
    PayloadLength(usize),
    /// The packet header sets the COMPRESSED flag, which the firmware does
    /// not support (`UNSUPPORTED`).
    #[error("packet header flags {0:#x} set COMPRESSED (firmware status UNSUPPORTED, 0x15)")]
    Compressed(u32),
    /// The packet MAC does not match (firmware status `BAD_MEASUREMENT`):
    /// the header, payload or launch measurement was altered, or the packet
    /// was sealed with another TIK.
    #[error(
        "LAUNCH_SECRET packet MAC mismatch (firmware status BAD_MEASUREMENT, 0x0b): the header, \
         payload or launch measurement differs from what was sealed, or another TIK was used"
    )]
    BadMac,
    /// The launch session was refused.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl OwnerError {
    /// The firmware status code the AMD-SP returns for the same fault, for
    /// the errors that correspond to a firmware check.
    pub fn status(&self) -> Option<FirmwareStatus> {
        match self {
            Self::Compressed(_) => Some(FirmwareStatus::UNSUPPORTED),
            Self::BadMac => Some(FirmwareStatus::BAD_MEASUREMENT),
            Self::Session(e) => Some(e.status()),
            _ => None,
        }
    }
}
