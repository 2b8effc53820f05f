//! One firmware per state directory: an exclusive `flock` on
//! `DIR/.lock`, held by the daemon for its life and by the offline
//! commands (`init`, `status`, `export`) while they run, so two processes
//! never hold two in-memory copies of one identity.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

/// Name of the lock file inside the state directory.
pub const LOCK_FILE: &str = ".lock";

/// Why the state directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "{0}: the state directory is in use by another sevkit firmware process (a running \
         `sevkit firmware serve`?); stop it or talk to it through its socket"
    )]
    Busy(PathBuf),
    /// The lock file could not be created or locked.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// An exclusive lock on a state directory, released on drop (and by the
/// kernel when the process dies, even by SIGKILL).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Creates `dir` if needed and locks it without waiting.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Self { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(LockError::Busy(dir.to_owned())),
            Err(e) => Err(io_err(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            StateLock::acquire(dir.path()),
            Err(LockError::Busy(_))
        ));
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }
}
