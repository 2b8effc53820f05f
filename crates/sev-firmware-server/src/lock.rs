//! One firmware per state directory: an exclusive `flock` on
//! `DIR/.lock`, held by the daemon for its life and by every other command
//! that opens the directory (`init`, `status`, `export`, `launch --state`,
//! `attest --state`) while it runs, so two processes never hold two
//! in-memory copies of one identity.
//!
//! The directory is checked as the firmware checks it (a
//! [`sev_os::PrivateDir`]: the running user's, not writable by group or
//! others) and the lock file is opened without following symbolic links.
//! Only [`StateLock::create`] creates the directory; [`StateLock::acquire`]
//! refuses a missing one.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use sev_os::{OsError, PrivateDir};

/// Name of the lock file inside the state directory.
pub const LOCK_FILE: &str = ".lock";

/// Why the state directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "{0}: the state directory is in use by another sevkit firmware process (a running \
         `sevkit firmware serve`, or a `launch --state` / `attest --state` on it?); stop it or \
         talk to the daemon through its socket (`--firmware-socket`)"
    )]
    Busy(PathBuf),
    /// The state directory does not exist (and the command does not create
    /// one).
    #[error(
        "{0}: no such state directory; create it and its identity with \
         `sevkit firmware init --state {0}`"
    )]
    Missing(PathBuf),
    /// The directory or the lock file cannot be used (not the user's,
    /// writable by group or others, a symbolic link, ...).
    #[error(transparent)]
    Dir(OsError),
    /// The lock could not be taken.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl From<OsError> for LockError {
    fn from(e: OsError) -> Self {
        match e {
            OsError::Missing { path } => Self::Missing(path),
            e => Self::Dir(e),
        }
    }
}

/// An exclusive lock on a state directory, released on drop (and by the
/// kernel when the process dies, even by SIGKILL).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    dir: PrivateDir,
}

impl StateLock {
    /// Locks the existing state directory `dir` without waiting
    /// ([`LockError::Missing`] when there is none: nothing is created).
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        Self::lock(PrivateDir::open(dir)?)
    }

    /// As [`StateLock::acquire`], creating `dir` (mode 0700) first when it
    /// does not exist.
    pub fn create(dir: &Path) -> Result<Self, LockError> {
        Self::lock(PrivateDir::create(dir)?)
    }

    fn lock(dir: PrivateDir) -> Result<Self, LockError> {
        let file = dir.lock_file(LOCK_FILE)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Self { _file: file, dir }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(LockError::Busy(dir.path().to_owned())),
            Err(e) => Err(LockError::Io {
                path: dir.join(LOCK_FILE),
                source: e.into(),
            }),
        }
    }

    /// The locked directory.
    pub fn dir(&self) -> &PrivateDir {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

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

    #[test]
    fn acquire_creates_nothing_and_create_makes_a_private_directory() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/state");
        let err = StateLock::acquire(&dir).unwrap_err();
        assert!(matches!(err, LockError::Missing(_)), "{err}");
        assert!(err.to_string().contains("sevkit firmware init --state"));
        assert!(!base.path().join("a").exists());
        drop(StateLock::create(&dir).unwrap());
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let lock = std::fs::symlink_metadata(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(lock.permissions().mode() & 0o777, 0o600);
        // Group/other-writable: refused with the fix.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = StateLock::acquire(&dir).unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{err}");
    }
}
