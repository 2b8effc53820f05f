//! The seam's trait and its errors.
//!
//! Requests and responses are AMD's: a command id, the command buffer bytes
//! (inputs in, outputs written back), and AMD's status code. Where the
//! `*_paddr` fields point is the implementation's system memory
//! ([`crate::SystemMemory`]).

use std::io;

use sev_abi::commands::SevCommand;
use sev_abi::status::FirmwareStatus;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Why a command could not be delivered or its answer not received. A
/// command the firmware ran and refused is not an error: it is the
/// [`FirmwareStatus`] in `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum SpError {
    /// Socket I/O failed (including a read timeout).
    #[error("firmware server connection: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection.
    #[error("the firmware server closed the connection")]
    Closed,
    /// The server refused the request (and closed the connection).
    #[error("the firmware server refused the request: {name}: {message}")]
    Server {
        /// The protocol's error code.
        code: u32,
        /// The code's name.
        name: &'static str,
        /// The server's explanation.
        message: String,
    },
    /// The server's answer does not decode, or is not the answer expected.
    #[error("bad answer from the firmware server: {0}")]
    Protocol(String),
    /// The command buffer exceeds the protocol's limit.
    #[error("command buffer of {len} bytes exceeds the limit of {max}")]
    BufferTooLong {
        /// The buffer's length.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// An in-process AMD-SP panicked earlier while holding its lock.
    #[error("the in-process firmware is unusable: a command panicked while holding it")]
    Poisoned,
}

/// An AMD Secure Processor as the VMM sees it.
pub trait AmdSp {
    /// Runs AMD command `command` on `buffer` (AMD's command buffer; the
    /// firmware's outputs are written back into it) and returns AMD's
    /// status code.
    fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError>;
}

impl<S: AmdSp + ?Sized> AmdSp for &mut S {
    fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError> {
        (**self).execute(command, buffer)
    }
}

impl<S: AmdSp + ?Sized> AmdSp for Box<S> {
    fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError> {
        (**self).execute(command, buffer)
    }
}

/// Typed convenience over [`AmdSp::execute`]: runs `command` on the bytes of
/// a `sev_abi::commands` buffer structure and leaves the firmware's outputs
/// in it.
pub fn call<S, T>(
    sp: &mut S,
    command: SevCommand,
    buffer: &mut T,
) -> Result<FirmwareStatus, SpError>
where
    S: AmdSp + ?Sized,
    T: FromBytes + IntoBytes + Immutable + KnownLayout,
{
    sp.execute(command.id(), buffer.as_mut_bytes())
}
