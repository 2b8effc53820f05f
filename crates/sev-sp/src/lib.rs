//! The AMD-SP seam: the one interface through which a host (a VMM, a CLI,
//! a device backend) talks to an AMD Secure Processor, and the system
//! memory its commands address.
//!
//! * [`AmdSp`]: AMD's command id and command buffer in, AMD's status and the
//!   updated buffer out ([`call`] for typed buffers). Implementations: the
//!   software AMD-SP in this process (`sev_firmware::InProcess`), a client
//!   of the firmware daemon (`sev_firmware_server::Client`), and room for
//!   the kernel's `/dev/sev`.
//! * [`SystemMemory`]: where every `*_paddr` of a command points: an
//!   in-memory address space ([`VecMemory`]) or a memfd shared between the
//!   VMM and the firmware daemon ([`FdMemory`]).
//! * [`Metered`]: any AMD-SP with its commands timed on a [`CommandClock`]
//!   (benchmarks time one command inside a whole launch with it).
//!
//! This crate holds no implementation of the AMD-SP, so a host depends on
//! the seam and not on any backend.

#![forbid(unsafe_code)]

mod fd_memory;
mod memory;
mod metered;
mod seam;

pub use fd_memory::FdMemory;
pub use memory::{MemoryError, SystemMemory, VecMemory};
pub use metered::{CommandClock, CommandTime, Metered};
pub use seam::{call, AmdSp, SpError};
