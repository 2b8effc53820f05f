//! Test scaffolding shared by sevkit's crates, written once: the cached test
//! chip, seeded firmwares on it, and the SNP launch steps as a VMM issues
//! them to the software AMD-SP.
//!
//! Only for tests: crates take it as a dev-dependency. Its functions panic
//! (with the step that failed) when a step a test relies on fails; that is
//! how a test reports it.
//!
//! * [`chip`]: one chip identity for every test of every crate, minted once
//!   from [`CHIP_SEED`] (two RSA-4096 key generations take seconds) and
//!   kept in a state directory under Cargo's target directory, so later
//!   test binaries and runs load it. [`cached_chip`] does the same for
//!   another seed.
//! * [`firmware`], [`firmware_with`]: an in-memory firmware on that chip
//!   whose randomness comes from a seed, so a test's output is the same
//!   every run.
//! * [`snp`]: SNP_INIT, RMPUPDATEs, SNP_GCTX_CREATE, SNP_LAUNCH_START,
//!   SNP_ACTIVATE, SNP_LAUNCH_UPDATE, one call each, and a guest started
//!   in one call (for tests of the firmware's commands themselves).
//! * [`files`]: the names in a directory, a file's mode, setting it.
//! * [`launch`]: whole launches through the VMM's one launch driver
//!   (`sev_vmm::plan`) over any AMD-SP, in process or a daemon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig};

pub mod files;
pub mod launch;
pub mod snp;

/// Seed of the shared test chip.
pub const CHIP_SEED: [u8; 32] = [0x5E; 32];

/// The state directory of [`chip`]'s cache, below [`target_tmpdir`].
pub const CHIP_CACHE: &str = "sev-firmware-test-chip";

/// Cargo's `tmp` directory in the target directory (what Cargo gives
/// integration tests as `CARGO_TARGET_TMPDIR`), found when this crate was
/// built.
pub fn target_tmpdir() -> &'static Path {
    Path::new(env!("SEVKIT_TESTKIT_TMPDIR"))
}

/// The chip shared by every test: minted once from [`CHIP_SEED`] and
/// cached in [`CHIP_CACHE`] under [`target_tmpdir`].
pub fn chip() -> ChipIdentity {
    cached_chip(CHIP_CACHE, CHIP_SEED)
}

/// The state directory [`chip`] keeps its chip in, holding the chip file
/// (`chip.sevfw`) once [`chip`] ran and could write it.
pub fn chip_dir() -> PathBuf {
    target_tmpdir().join(CHIP_CACHE)
}

/// A chip minted from `seed` and cached in the state directory `name`
/// under [`target_tmpdir`] (created when missing), loaded from there by
/// later calls, test binaries and runs. A cache that cannot be used (a
/// damaged file, a read-only target directory) is no reason to fail: the
/// chip is then minted in memory, the same from the same seed.
///
/// # Panics
/// When the chip cannot be minted at all.
pub fn cached_chip(name: &str, seed: [u8; 32]) -> ChipIdentity {
    static CHIPS: OnceLock<Mutex<HashMap<String, ChipIdentity>>> = OnceLock::new();
    let chips = CHIPS.get_or_init(Mutex::default);
    // Minting under the lock: a second caller waits for the first's chip.
    let mut chips = chips.lock().unwrap_or_else(PoisonError::into_inner);
    chips
        .entry(name.to_owned())
        .or_insert_with(|| {
            let config = |state_dir| FirmwareConfig {
                state_dir,
                seed: Some(seed),
                ..FirmwareConfig::default()
            };
            Firmware::open(config(Some(target_tmpdir().join(name))))
                .or_else(|_| Firmware::open(config(None)))
                .unwrap_or_else(|e| panic!("minting the test chip {name}: {e}"))
                .chip()
                .clone()
        })
        .clone()
}

/// A firmware on the shared [`chip`], in memory (no state directory), whose
/// randomness comes from `[seed; 32]`.
pub fn firmware(seed: u8) -> Firmware {
    firmware_with(seed, FirmwareConfig::default())
}

/// [`firmware`] with the rest of `config` (product, TCB, launch log, ...);
/// its seed is replaced by `[seed; 32]`.
///
/// # Panics
/// When the firmware refuses `config`.
pub fn firmware_with(seed: u8, config: FirmwareConfig) -> Firmware {
    Firmware::open_with_chip(
        FirmwareConfig {
            seed: Some([seed; 32]),
            ..config
        },
        chip(),
    )
    .unwrap_or_else(|e| panic!("a seeded test firmware: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_under_the_target_directory() {
        let tmp = target_tmpdir();
        assert!(tmp.ends_with("tmp"), "{}", tmp.display());
        assert!(
            tmp.parent().unwrap().join("CACHEDIR.TAG").is_file(),
            "{}",
            tmp.display()
        );
    }

    #[test]
    fn one_chip_per_cache_and_seed() {
        let a = chip();
        assert_eq!(chip().chip_id(), a.chip_id());
        assert!(chip_dir().join("chip.sevfw").is_file());
        assert_eq!(firmware(3).chip().chip_id(), a.chip_id());
        let other = cached_chip("sev-firmware-test-chip-2", [0x77; 32]);
        assert_ne!(other.chip_id(), a.chip_id());
    }
}
