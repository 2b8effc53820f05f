//! Errors of opening a firmware (the commands themselves answer with
//! AMD status codes, never with these).

use std::path::PathBuf;

use sev_abi::product::{Product, TcbVersion};

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
    /// A command that uses an existing platform
    /// ([`crate::Firmware::open_existing`]) was given a state directory that
    /// does not exist or holds no chip.
    #[error(
        "{path}: no software AMD-SP identity here (the directory does not exist or has no \
         chip.sevfw); create one with `sevkit firmware init --state {path}`"
    )]
    NoIdentity {
        /// The state directory.
        path: PathBuf,
    },
    /// The configuration is inconsistent.
    #[error("invalid firmware configuration: {0}")]
    Config(String),
    /// The current SNP TCB (`FirmwareConfig::snp_tcb`) is below the TCB an
    /// SNP_COMMIT committed, in at least one component: the anti-rollback
    /// refuses to run firmware older than the committed version.
    #[error(
        "{path}: SNP_COMMIT committed TCB {committed} ({}), and the configured current SNP TCB \
         {current} ({}) is below it in at least one component; refusing to start (anti-rollback: \
         firmware older than the committed version does not run): configure an SNP TCB of at \
         least the committed one",
        .committed.decode(.product.tcb_layout()),
        .current.decode(.product.tcb_layout())
    )]
    TcbRollback {
        /// The SNP state file.
        path: PathBuf,
        /// The committed TCB it holds.
        committed: TcbVersion,
        /// The configured current TCB.
        current: TcbVersion,
        /// The emulated product (the TCB layout).
        product: Product,
    },
    /// The SNP state file does not fit this firmware (written for another
    /// product, or an SNP_CONFIG reported TCB above the current TCB).
    #[error("{path}: {reason}; refusing to start with it (the file is left untouched)")]
    SnpStateMismatch {
        /// The SNP state file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
}
