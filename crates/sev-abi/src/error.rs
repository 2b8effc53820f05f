//! The one error type every `sev-abi` parser returns.

/// Why a byte buffer is not a valid AMD structure.
///
/// Every parser in this crate returns this type and never panics, whatever the
/// input. The messages name the structure (`what`) so a user can tell which
/// file or field is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// The buffer does not have the length the structure requires.
    #[error("{what}: expected {expected} bytes, got {actual}")]
    Length {
        /// Name of the structure being parsed.
        what: &'static str,
        /// The required length (or minimum length, see the structure's docs).
        expected: usize,
        /// The length that was supplied.
        actual: usize,
    },
    /// The structure's version field holds a version this crate does not know.
    #[error("{what}: unsupported version {version}")]
    UnsupportedVersion {
        /// Name of the structure being parsed.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A field holds a value the specification does not define.
    #[error("{what}: invalid value {value:#x} in field {field}")]
    InvalidField {
        /// Name of the structure being parsed.
        what: &'static str,
        /// Name of the offending field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// Reserved bits or bytes that must be zero are not.
    #[error("{what}: reserved bits set in {field} ({value:#x})")]
    Reserved {
        /// Name of the structure being checked.
        what: &'static str,
        /// Name of the field holding the reserved bits.
        field: &'static str,
        /// The offending bits (or the first non-zero byte offset for byte ranges).
        value: u64,
    },
    /// The structure is internally inconsistent (lengths or offsets that lie).
    #[error("{what}: {reason}")]
    Malformed {
        /// Name of the structure being parsed.
        what: &'static str,
        /// What is wrong, in words.
        reason: String,
    },
}

/// Convenience alias for results of this crate.
pub type Result<T> = core::result::Result<T, AbiError>;

/// Checks that `bytes` has exactly `expected` bytes.
pub(crate) fn expect_len(what: &'static str, bytes: &[u8], expected: usize) -> Result<()> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(AbiError::Length {
            what,
            expected,
            actual: bytes.len(),
        })
    }
}

/// Reads a fixed-size structure from exactly `size_of::<T>()` bytes.
pub(crate) fn read_exact<T: zerocopy::FromBytes>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let expected = core::mem::size_of::<T>();
    expect_len(what, bytes, expected)?;
    T::read_from_bytes(bytes).map_err(|_| AbiError::Length {
        what,
        expected,
        actual: bytes.len(),
    })
}
