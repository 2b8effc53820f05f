//! # sev-attest
//!
//! Verification policy for AMD SEV and SEV-SNP, for the guest owner who trusts
//! only AMD:
//!
//! - [`roots`]: AMD's root keys (SNP X.509 ARK/ASK for Milan, Genoa, Turin and
//!   the legacy binary ARK/ASK for Naples through Turin), embedded and pinned.
//! - [`vcek`]: the TCB, product and hardware id that AMD's key server writes
//!   into VCEK and VLEK certificates.
//! - [`snp`]: the SNP chain ARK -> ASK -> VCEK (or ASVK -> VLEK) and every
//!   check of an attestation report against it and against the owner's
//!   expectations.
//! - [`legacy`]: the legacy SEV platform chain ARK -> ASK -> CEK -> PEK -> PDH
//!   and OCA -> PEK.
//!
//! Verification never stops at the first failure: every check is evaluated
//! and reported by name in a [`Verdict`], so an owner sees everything that is
//! wrong at once. The clock is an input (`now`), never read here.

pub mod legacy;
pub mod roots;
pub mod snp;
mod time;
pub mod vcek;
mod verdict;

pub use time::format_time;
pub use verdict::{Check, Outcome, Verdict};
