//! An AMD-SP that times its commands: [`Metered`] passes every command to
//! the AMD-SP it wraps and adds the time the command took (delivery, the
//! firmware's work and the answer) to a [`CommandClock`] the caller keeps.
//!
//! Benchmarks use it to time one firmware command inside a whole launch (a
//! LAUNCH_UPDATE_DATA, the SNP_LAUNCH_UPDATEs of a region) while the VMM
//! drives the launch: the VMM's own work between commands (copies, its
//! launch log) is not on the clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sev_abi::status::FirmwareStatus;

use crate::{AmdSp, SpError};

/// How often a command ran and how long it took in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandTime {
    /// Commands delivered (answered or not).
    pub count: u64,
    /// Their time, from the call to the answer.
    pub total: Duration,
}

/// The times a [`Metered`] AMD-SP recorded, by command id; cloned handles
/// share one record.
#[derive(Debug, Clone, Default)]
pub struct CommandClock {
    times: Arc<Mutex<BTreeMap<u32, CommandTime>>>,
}

impl CommandClock {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// What `command` took since the last [`Self::reset`].
    pub fn time(&self, command: u32) -> CommandTime {
        self.lock().get(&command).copied().unwrap_or_default()
    }

    /// Every command's time since the last [`Self::reset`].
    pub fn times(&self) -> BTreeMap<u32, CommandTime> {
        self.lock().clone()
    }

    /// Forgets what was recorded.
    pub fn reset(&self) {
        self.lock().clear();
    }

    fn add(&self, command: u32, elapsed: Duration) {
        let mut times = self.lock();
        let t = times.entry(command).or_default();
        t.count += 1;
        t.total += elapsed;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, CommandTime>> {
        // A panic elsewhere leaves the record as it was: still usable.
        self.times.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An AMD-SP whose commands are timed on a [`CommandClock`].
#[derive(Debug)]
pub struct Metered<S> {
    inner: S,
    clock: CommandClock,
}

impl<S: AmdSp> Metered<S> {
    /// Wraps `inner`; its commands are recorded on `clock`.
    pub fn new(inner: S, clock: CommandClock) -> Self {
        Self { inner, clock }
    }

    /// The wrapped AMD-SP.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AmdSp> AmdSp for Metered<S> {
    fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError> {
        let started = Instant::now();
        let result = self.inner.execute(command, buffer);
        self.clock.add(command, started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Answer(FirmwareStatus);

    impl AmdSp for Answer {
        fn execute(&mut self, _: u32, _: &mut [u8]) -> Result<FirmwareStatus, SpError> {
            Ok(self.0)
        }
    }

    #[test]
    fn commands_are_counted_per_id_and_passed_through() {
        let clock = CommandClock::new();
        let mut sp = Metered::new(Answer(FirmwareStatus::INVALID_GUEST), clock.clone());
        for command in [4, 4, 6] {
            assert_eq!(
                sp.execute(command, &mut []).unwrap(),
                FirmwareStatus::INVALID_GUEST
            );
        }
        assert_eq!(clock.time(4).count, 2);
        assert_eq!(clock.time(6).count, 1);
        assert_eq!(clock.time(7), CommandTime::default());
        assert_eq!(clock.times().len(), 2);
        clock.reset();
        assert!(clock.times().is_empty());
    }
}
