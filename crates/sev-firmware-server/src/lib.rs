//! # sev-firmware-server
//!
//! The software AMD-SP as a daemon, and the client that reaches it through
//! the seam ([`sev_sp::AmdSp`]).
//!
//! * [`Client`] ([`client`]): the [`sev_sp::AmdSp`] implementation a VMM
//!   uses when the AMD-SP lives in `sevkit firmware serve`; guest memory
//!   travels as a memfd ([`sev_sp::FdMemory`]).
//! * [`protocol`]: the wire format (frames with magic, version, kind and
//!   bounded lengths; HELLO carries the guest-memory fd). Pure codec, no
//!   I/O, never panics.
//! * [`Server`] ([`server`]): `sevkit firmware serve`: one firmware shared by
//!   many clients over a Unix socket, one thread per client, graceful
//!   shutdown on SIGTERM.
//! * [`ExportedIdentity`] ([`export`]): the six certificates in AMD's
//!   formats, as `sevctl export` writes them.
//! * [`StateLock`] ([`lock`]): one process per state directory.
//!
//! A launch through the daemon is the VMM's (`sev_vmm::plan`) on a
//! [`Client`]; `docs/FIRMWARE.md` documents the protocol and the daemon.

#![forbid(unsafe_code)]

pub mod client;
pub mod export;
pub mod lock;
pub mod protocol;
pub mod server;
mod wire;

pub use client::Client;
pub use export::{ExportError, ExportedIdentity, EXPORT_FILES};
pub use lock::{LockError, StateLock};
pub use server::{ServeSummary, Server, ServerConfig, ServerError, ServerShutdownHandle};
