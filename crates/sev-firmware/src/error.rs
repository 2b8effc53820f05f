//! Errors of opening a firmware (the commands themselves answer with
//! AMD status codes, never with these).

use std::path::PathBuf;

pub use crate::store::StoreError;

/// Minting or encoding identity keys failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A key could not be generated or derived.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// A signature could not be made.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A key or certificate could not be encoded.
    #[error("encoding failed: {0}")]
    Encoding(String),
}

/// Why a firmware could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// A state file could not be read or written, or was refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The identity could not be minted.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The state directory already holds another chip than the one supplied.
    #[error(
        "{path}: the state directory belongs to another chip than the one supplied; refusing to \
         use or overwrite it"
    )]
    ChipMismatch {
        /// The chip state file.
        path: PathBuf,
    },
    /// The configuration is inconsistent.
    #[error("invalid firmware configuration: {0}")]
    Config(String),
}
