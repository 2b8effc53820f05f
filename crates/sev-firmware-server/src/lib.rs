//! # sev-firmware-server
//!
//! The firmware seam of sevkit and the daemon behind it.
//!
//! * [`AmdSp`] ([`seam`]): the one trait through which a VMM talks to an
//!   AMD Secure Processor: AMD command id and command buffer in, AMD status
//!   and the updated buffer out. [`InProcess`] runs the software firmware
//!   ([`sev_firmware::Firmware`]) in this process; [`Client`] talks to a
//!   [`Server`].
//! * [`protocol`]: the wire format (frames with magic, version, kind and
//!   bounded lengths; HELLO carries the guest-memory fd). Pure codec, no
//!   I/O, never panics.
//! * [`Server`] ([`server`]): `sevkit firmware serve`: one firmware shared by
//!   many clients over a Unix socket, one thread per client, graceful
//!   shutdown on SIGTERM.
//! * [`FdMemory`] ([`memory`]): guest memory as a sealed memfd shared with
//!   the server (pread/pwrite, no mapping, no `unsafe`).
//! * [`launch`]: the legacy launch sequence as a VMM issues it, over any
//!   [`AmdSp`].
//! * [`ExportedIdentity`] ([`export`]): the six certificates in AMD's
//!   formats, as `sevctl export` writes them.
//! * [`StateLock`] ([`lock`]): one process per state directory.
//!
//! `docs/FIRMWARE.md` documents the protocol and the daemon.

#![forbid(unsafe_code)]

pub mod client;
pub mod export;
pub mod launch;
pub mod lock;
pub mod memory;
pub mod protocol;
pub mod seam;
pub mod server;
mod wire;

pub use client::Client;
pub use export::{ExportError, ExportedIdentity, EXPORT_FILES};
pub use lock::{LockError, StateLock};
pub use memory::FdMemory;
pub use seam::{call, AmdSp, InProcess, SharedFirmware, SpError};
pub use server::{ServeSummary, Server, ServerConfig, ServerError, ShutdownHandle};
