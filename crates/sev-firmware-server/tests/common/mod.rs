//! Shared helpers: one cached chip and seeded firmwares on it. Launches go
//! through the VMM's driver (`sevkit_testkit::launch`).
#![allow(dead_code)]

use std::sync::OnceLock;

use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig};

/// Seed of the chip shared with sev-firmware's tests (same cache).
pub const CHIP_SEED: [u8; 32] = [0x5E; 32];

/// The shared test chip, minted once (two RSA-4096 key generations) and
/// cached under Cargo's target directory.
pub fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sev-firmware-test-chip");
        Firmware::open(FirmwareConfig {
            state_dir: Some(dir),
            seed: Some(CHIP_SEED),
            ..FirmwareConfig::default()
        })
        .expect("test chip")
        .chip()
        .clone()
    })
    .clone()
}

/// A seeded in-memory firmware on the shared chip.
pub fn firmware(seed: u8, config: FirmwareConfig) -> Firmware {
    Firmware::open_with_chip(
        FirmwareConfig {
            seed: Some([seed; 32]),
            ..config
        },
        chip(),
    )
    .unwrap()
}
