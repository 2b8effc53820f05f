//! The software AMD-SP behind the seam ([`sev_sp::AmdSp`]): the firmware in
//! this process, acting on a [`SystemMemory`] of the caller's.

use std::sync::{Arc, Mutex};

use sev_abi::status::FirmwareStatus;
use sev_sp::{AmdSp, SpError, SystemMemory};

use crate::Firmware;

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
