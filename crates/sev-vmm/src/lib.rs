//! # sev-vmm
//!
//! The host side of sevkit: what QEMU and KVM do for an SEV, SEV-ES or
//! SEV-SNP guest, over sevkit's firmware seam
//! ([`AmdSp`](sev_sp::AmdSp)).
//!
//! * [`config`]: the guest owner's launch parameters as QEMU's
//!   `-object sev-guest` / `sev-snp-guest` (and the machine options around
//!   them), or the same as TOML; every property type-checked with QEMU's
//!   rules and messages.
//! * [`memory`]: guest memory in one memfd shared with the AMD-SP, laid out
//!   as q35 lays it out, with the encryption view (host reads of private
//!   pages return ciphertext).
//! * [`launch`]: the launch sequence in QEMU's order (LAUNCH_START .. FINISH;
//!   SNP metadata pages, VMSAs, ID block), with its launch log.
//! * [`vm`]: a launched VM as management software sees it (state, launch
//!   secret window under `-S`, `cont`), which [`qmp`] serves.
//! * [`qmp`]: a QMP server with QEMU's schemas and error classes.
//! * [`certs`]: certificates to SNP guests (KVM's certificate exit, OFD
//!   locking of the certificate file).
//! * [`debug`]: encrypted-memory debug access through DBG_DECRYPT /
//!   DBG_ENCRYPT (and the SNP forms), guest page-table walks with the C-bit,
//!   and HMP's `xp`.
//! * [`cpuid`]: the SNP CPUID page built from the vCPU model.
//! * [`demo_image`]: a small built-in guest image with OVMF's footer table
//!   and SEV metadata, for `sevkit demo`.

#![forbid(unsafe_code)]

pub mod backend;
pub mod certs;
pub mod config;
pub mod cpuid;
pub mod debug;
pub mod demo_image;
pub mod guest;
pub mod guest_request;
pub mod host;
pub mod launch;
pub mod machine;
pub mod memory;
pub mod qmp;
pub mod vm;

pub use guest::FirmwareGuest;
pub use memory::{GuestMemory, MemoryLayout};
