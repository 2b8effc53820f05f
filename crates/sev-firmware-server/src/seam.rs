//! The firmware seam: the one trait through which a VMM talks to an AMD-SP.
//!
//! Requests and responses are AMD's: a command id, the command buffer bytes
//! (inputs in, outputs written back), and AMD's status code. Where the
//! `*_paddr` fields point is the implementation's system memory: the memory
//! an [`InProcess`] firmware was given, or the memfd a
//! [`Client`](crate::Client) passed to the server.

use std::io;
use std::sync::{Arc, Mutex};

use sev_abi::commands::SevCommand;
use sev_abi::status::FirmwareStatus;
use sev_firmware::{Firmware, SystemMemory};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::protocol::{DecodeError, ErrorCode};

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
    /// The server sent an ERROR frame (and closed the connection).
    #[error("the firmware server refused the request: {}: {message}",
        ErrorCode::from_u32(*code).map_or("unknown error", ErrorCode::name))]
    Server {
        /// The protocol error code.
        code: u32,
        /// The server's explanation.
        message: String,
    },
    /// The server's answer does not decode, or is not the answer expected.
    #[error("bad answer from the firmware server: {0}")]
    Protocol(String),
    /// A frame did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The command buffer exceeds the protocol's limit.
    #[error("command buffer of {len} bytes exceeds the limit of {max}")]
    BufferTooLong {
        /// The buffer's length.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// An in-process firmware panicked earlier while holding its lock.
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

/// A firmware shared by several in-process VMs, as the server shares one.
pub type SharedFirmware = Arc<Mutex<Firmware>>;

/// The in-process seam: the software firmware in this process, acting on
/// `memory`. Several `InProcess` values may share one firmware
/// ([`InProcess::shared`]), each with its own memory, as the VMs of one host
/// share one AMD-SP.
#[derive(Debug)]
pub struct InProcess<M> {
    firmware: SharedFirmware,
    memory: M,
}

impl<M: SystemMemory> InProcess<M> {
    /// Wraps a firmware of its own.
    pub fn new(firmware: Firmware, memory: M) -> Self {
        Self::shared(Arc::new(Mutex::new(firmware)), memory)
    }

    /// Uses a shared firmware.
    pub fn shared(firmware: SharedFirmware, memory: M) -> Self {
        Self { firmware, memory }
    }

    /// The firmware.
    pub fn firmware(&self) -> &SharedFirmware {
        &self.firmware
    }

    /// The memory.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The memory, for writing.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.memory
    }

    /// Gives the memory back.
    pub fn into_memory(self) -> M {
        self.memory
    }
}

impl<M: SystemMemory> AmdSp for InProcess<M> {
    fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError> {
        let mut fw = self.firmware.lock().map_err(|_| SpError::Poisoned)?;
        Ok(fw.execute(command, buffer, &mut self.memory))
    }
}
