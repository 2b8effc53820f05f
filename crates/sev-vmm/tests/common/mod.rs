//! Shared helpers of sev-vmm's integration tests: firmwares on the shared
//! cached test chip (`sevkit-testkit`), and a host on one.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use sev_firmware::{InProcess, SharedFirmware};
use sev_vmm::host::Host;
use sev_vmm::{GuestMemory, MemoryLayout};

/// The shared test chip.
#[allow(unused_imports)]
pub use sevkit_testkit::chip;

/// A seeded in-process firmware on the test chip.
pub fn firmware(seed: u8) -> SharedFirmware {
    Arc::new(Mutex::new(sevkit_testkit::firmware(seed)))
}

/// A host (guest memory for `ram` bytes and a firmware image of
/// `image_len` bytes) on `fw`.
pub fn host(fw: &SharedFirmware, ram: u64, image_len: usize) -> Host {
    let layout = MemoryLayout::q35(ram, image_len as u64).expect("layout");
    let memory = GuestMemory::new(layout).expect("memfd");
    let sp = InProcess::shared(fw.clone(), memory.system_handle().expect("dup"));
    Host::new(Box::new(sp), memory)
}
