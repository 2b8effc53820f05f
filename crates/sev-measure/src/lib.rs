//! # sev-measure
//!
//! Predicts, before launch, the digest the AMD Secure Processor will compute
//! for an SEV, SEV-ES or SEV-SNP guest, exactly as sev-snp-measure 0.0.13 does
//! (the reference users compare against), and records how it got there.
//!
//! * [`ovmf`]: the OVMF footer GUID table, SEV metadata sections, SEV-ES
//!   reset block and hashes-table location.
//! * [`hashes`]: QEMU's kernel hashes table for measured direct boot.
//! * [`vcpu`] and [`vmsa`]: vCPU signatures and reset-state VMSAs per VMM
//!   (the layout itself is [`sev_abi::vmsa::SaveArea`]).
//! * [`sev`] and [`snp`]: the two digest constructions, and the
//!   LAUNCH_MEASURE blob of legacy SEV.
//! * [`log`]: the [`LaunchLog`], the ordered record of every measured item
//!   that the software AMD-SP also emits.
//! * [`measure()`]: the whole prediction for one mode.
//!
//! No I/O: every function takes byte slices. Nothing panics on any input;
//! malformed images give a [`MeasureError`] that says what is wrong.
//!
//! ```
//! use sev_measure::{measure, Mode, MeasureParams};
//! # let ovmf = vec![0u8; 8192];
//! let m = measure(&MeasureParams::new(Mode::Sev, &ovmf)).unwrap();
//! assert_eq!(m.digest.len(), 32);
//! assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
//! ```

pub mod error;
pub mod hashes;
pub mod log;
pub mod measure;
pub mod ovmf;
pub mod sev;
pub mod snp;
pub mod vcpu;
pub mod vmsa;

pub use error::{MeasureError, Result};
pub use hashes::KernelHashes;
pub use log::{DigestAlgorithm, Divergence, LaunchLog, LaunchLogEntry, LogPageType};
pub use measure::{measure, snp_ovmf_digest, MeasureParams, Measurement, Mode, SvsmInput};
pub use ovmf::{OvmfImage, SectionKind};
pub use sev::{check_launch_measure_blob, launch_measure_blob, LaunchMeasureParams};
pub use vcpu::{cpu_signature, vcpu_type, VcpuType, VCPU_TYPES};
pub use vmsa::{FpuState, VmmType};
