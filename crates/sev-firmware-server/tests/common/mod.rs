//! Shared helpers: the shared cached test chip and seeded firmwares on it
//! (`sevkit-testkit`). Launches go through the VMM's driver
//! (`sevkit_testkit::launch`).
#![allow(dead_code)]

/// A seeded in-memory firmware on the shared chip.
pub use sevkit_testkit::firmware_with as firmware;
/// The shared test chip and its seed.
#[allow(unused_imports)]
pub use sevkit_testkit::{chip, CHIP_SEED};
