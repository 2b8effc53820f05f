//! # sev-vmm
//!
//! The host side of sevkit: what QEMU and KVM do for an SEV, SEV-ES or
//! SEV-SNP guest, over sevkit's firmware seam
//! ([`AmdSp`](sev_sp::AmdSp)).
//!
//! Modules by role:
//!
//! * [`config`]: the guest owner's launch parameters as QEMU's
//!   `-object sev-guest` / `sev-snp-guest` (and the machine options around
//!   them), or the same as TOML; every property type-checked with QEMU's
//!   rules and messages. QEMU's own dialects (JSON, option lexer, numbers,
//!   GLib base64) are in a crate-internal `qemu` module.
//! * [`plan`]: a checked configuration made into a machine plan (files
//!   read, memory sized, the launch specification), and its launch.
//! * [`machine`]: guest memory in one memfd shared with the AMD-SP, laid out
//!   as q35 lays it out, with the encryption view; the SNP CPUID page from
//!   the vCPU model; a small built-in guest image.
//! * [`host`]: the host's typed calls through the AMD-SP seam
//!   ([`sev_sp::AmdSp`]): commands, RMP instructions, the guest principal.
//! * [`launch`]: the launch sequence in QEMU's order (LAUNCH_START .. FINISH;
//!   SNP metadata pages, VMSAs, ID block), with its launch log: `sev`, `snp`.
//! * [`guest`]: which firmware guest a VM is, and the guest's own actions
//!   behind [`guest::GuestActions`] (today a simulated guest: no vCPUs run).
//! * [`exits`]: what the host does when the guest exits to it: SNP guest
//!   requests as KVM forwards them, certificates for extended requests.
//! * [`vm`]: a launched VM as management software sees it (state, launch
//!   secret window under `-S`, `cont`).
//! * [`monitor`]: the QMP server with QEMU's schemas and error classes, the
//!   VM as its backend, HMP's `xp` / `x`.
//! * [`debug`]: encrypted-memory debug access through DBG_DECRYPT /
//!   DBG_ENCRYPT (and the SNP forms) and guest page-table walks with the
//!   C-bit: the one API every debugging feature (monitor, later a gdbstub)
//!   goes through.
//!
//! Where the next pieces go: a vCPU backend implements
//! [`guest::GuestActions`] beside [`guest::SimulatedGuest`]; a
//! gdbstub is a second front end of [`debug`] next to [`monitor`]; migration
//! (SEND/RECEIVE) is a sibling of [`launch`].

#![forbid(unsafe_code)]

pub mod config;
pub mod debug;
pub mod exits;
pub mod guest;
pub mod host;
pub mod launch;
pub mod machine;
pub mod monitor;
pub mod plan;
pub(crate) mod qemu;
pub mod vm;

pub use guest::FirmwareGuest;
pub use machine::memory::{GuestMemory, MemoryLayout};
