//! The SEV guest owner's side of a legacy SEV / SEV-ES launch, without I/O.
//!
//! * [`session`]: the launch session (GODH certificate, session blob, TEK,
//!   TIK) in the files and encodings `sevctl session` writes.
//! * [`secret`]: the OVMF secret table in the format `sevctl secret build`
//!   writes, and the LAUNCH_SECRET packet (header and encrypted payload)
//!   that carries it, with the inverse for tests and firmware models.
//!
//! The cryptography is `sev-crypto`'s ([`sev_crypto::session`],
//! [`sev_crypto::packet`]); this crate adds the formats. Secrets (TEK, TIK,
//! secret table plaintext) zeroize on drop and never appear in `Debug`.

#![forbid(unsafe_code)]

mod error;
pub mod secret;
pub mod session;

pub use error::OwnerError;
pub use secret::{build_secret_packet, open_secret_packet, SecretEntry, SecretTable};
pub use session::{SessionFileNames, SessionFiles};
