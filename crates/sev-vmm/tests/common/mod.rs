//! Shared helpers of sev-vmm's integration tests: one software AMD-SP chip
//! per test run (RSA-4096 key generation takes seconds, so the chip is
//! minted once and cached under Cargo's target directory).
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig};
use sev_firmware::{InProcess, SharedFirmware};
use sev_vmm::host::Host;
use sev_vmm::{GuestMemory, MemoryLayout};

/// The cached test chip.
pub fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sev-vmm-test-chip");
        Firmware::open(FirmwareConfig {
            state_dir: Some(dir),
            seed: Some([0x6D; 32]),
            ..FirmwareConfig::default()
        })
        .expect("test chip")
        .chip()
        .clone()
    })
    .clone()
}

/// A seeded in-process firmware on the test chip.
pub fn firmware(seed: u8) -> SharedFirmware {
    Arc::new(Mutex::new(
        Firmware::open_with_chip(
            FirmwareConfig {
                seed: Some([seed; 32]),
                ..FirmwareConfig::default()
            },
            chip(),
        )
        .expect("firmware"),
    ))
}

/// A host (guest memory for `ram` bytes and a firmware image of
/// `image_len` bytes) on `fw`.
pub fn host(fw: &SharedFirmware, ram: u64, image_len: usize) -> Host {
    let layout = MemoryLayout::q35(ram, image_len as u64).expect("layout");
    let memory = GuestMemory::new(layout).expect("memfd");
    let sp = InProcess::shared(fw.clone(), memory.system_handle().expect("dup"));
    Host::new(Box::new(sp), memory)
}
