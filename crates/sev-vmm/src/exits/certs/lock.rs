//! The locking protocol of the certificate file.
//!
//! The certificates a guest receives must match the report the firmware
//! signs in the same request (same reported TCB, same key). So the VMM takes
//! a **shared** lock on the certificate file before reading it and keeps it
//! ([`CertsLease`]) until the firmware has returned the report (KVM: set
//! `kvm_run.immediate_exit` after answering the exit; the next `KVM_RUN`
//! completes the request and returns `-EINTR`; then drop the lease). Tools
//! that change the TCB or keys take an **exclusive** lock on the file
//! ([`CertsWriter::lock`]) across the firmware change *and* the file update.
//!
//! The lock is an *open file description* (OFD) record lock over the whole
//! file, as the kernel documentation of `KVM_EXIT_SNP_REQ_CERTS` asks:
//! `fcntl(2)` with `F_OFD_SETLK` / `F_OFD_SETLKW` and a `struct flock` of
//! `l_type` `F_RDLCK` (shared, readers) or `F_WRLCK` (exclusive, writers),
//! `l_whence` `SEEK_SET`, `l_start` 0, `l_len` 0 (to the end of the file,
//! however it grows) and `l_pid` 0. It is issued through [`nix::fcntl`]
//! (rustix 1.x has no OFD lock: its `fcntl_lock` is plain `F_SETLK`). The
//! VMM's shared lock never waits (`F_OFD_SETLK`, `EAGAIN` / `EACCES` mean
//! busy, retried per [`LockRetry`]); [`CertsWriter::lock`] waits
//! (`F_OFD_SETLKW`), [`CertsWriter::try_lock`] does not (`F_OFD_SETLK`).
//! Releasing is `F_OFD_SETLK` with `F_UNLCK` (closing the file does it too).
//!
//! Why OFD: the lock belongs to the open file description, not to the
//! process. Every lease and every writer opens the file anew, so two leases'
//! holders, or a lease and a writer, conflict correctly even when they are
//! two threads of one process; and closing an unrelated descriptor of the
//! same file does not drop the lock. Classic POSIX locks (`F_SETLK`) belong
//! to the process: two threads of the VMM would never exclude each other,
//! and any `close` of the file in the process would silently release them.
//! OFD locks and classic POSIX locks on the same file do conflict with each
//! other, so a tool following the kernel documentation (an `F_OFD_SETLK`
//! write lock on the certificate blob) and sevkit exclude each other. A
//! `flock(2)` lock (`flock(1)`) is a separate namespace on Linux and does
//! **not** exclude sevkit: tools that update the file should use
//! [`CertsWriter`] or take the OFD write lock themselves.
//!
//! A lock is taken on whatever inode the path names when the file is
//! opened; if the file was replaced by `rename` while the lock was being
//! acquired, the lock holder notices (the path now names another inode),
//! drops it and opens the path again. So both in-place rewrites
//! ([`write_certs_file`]: truncate, write, fsync under the exclusive lock)
//! and replacement by rename ([`replace_certs_file`]) are safe for readers:
//! a reader holding a lease keeps the inode it read (a rename cannot touch
//! its bytes), and a new reader sees the new file.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;
use rustix::fs::{Mode, OFlags};

#[cfg(doc)]
use super::provider::CertsLease;
#[cfg(doc)]
use super::writer::{replace_certs_file, write_certs_file, CertsWriter};
use super::CertsError;

/// Most times a reader (or a non-blocking writer) reopens the path because
/// the file was replaced while the lock was being acquired, before giving up
/// as busy. A blocking writer reopens as often as it takes: each reopen means
/// another writer completed a replacement.
const MAX_REOPENS: u32 = 8;

/// How a reader retries the non-blocking shared lock before answering
/// `EAGAIN`.
///
/// The VMM answers the exit on the vCPU thread, so it never blocks on a
/// writer (an `fsync` can take long); but a writer's critical section is
/// short, so a few quick retries spare the guest a round trip through
/// `BUSY` (whose retry the guest paces itself, Linux for up to a minute).
/// The default makes 4 attempts with 250 µs, 500 µs and 1 ms pauses
/// (at most 1.75 ms of sleeping per exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRetry {
    /// Attempts in all (0 counts as 1).
    pub attempts: u32,
    /// Pause after the first failed attempt; doubled after each further
    /// one.
    pub backoff: Duration,
}

impl Default for LockRetry {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: Duration::from_micros(250),
        }
    }
}

/// A file with an OFD lock, released (`F_UNLCK`) on drop and on close.
pub(super) struct LockedFile {
    pub(super) file: File,
}

impl Drop for LockedFile {
    fn drop(&mut self) {
        // Closing the last descriptor of the open file description releases
        // the lock too; unlocking explicitly also covers a descriptor that
        // shares the description (one inherited across fork, say). Nothing
        // useful can be done on failure.
        let _ = ofd_lock(&self.file, libc::F_UNLCK, false);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LockMode {
    /// Non-blocking `F_RDLCK` (`F_OFD_SETLK`), retried per the policy.
    Shared(LockRetry),
    /// Blocking `F_WRLCK` (`F_OFD_SETLKW`).
    Exclusive,
    /// One non-blocking `F_WRLCK` (`F_OFD_SETLK`).
    TryExclusive,
}

/// The `struct flock` of a whole-file lock of type `l_type` (`F_RDLCK`,
/// `F_WRLCK` or `F_UNLCK`): from offset 0 (`SEEK_SET`) to the end of the
/// file however it grows (`l_len` 0); `l_pid` must be 0 for OFD locks.
fn whole_file(l_type: libc::c_int) -> libc::flock {
    // A struct literal, not `mem::zeroed`: the crate forbids unsafe code, and
    // on x86_64 Linux these are all of `struct flock`'s fields.
    libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Sets (`F_RDLCK`, `F_WRLCK`) or clears (`F_UNLCK`) the OFD lock of `file`
/// over the whole file: `F_OFD_SETLKW` when `wait`, else `F_OFD_SETLK`
/// (which fails with `EAGAIN` or `EACCES` on a conflicting lock).
fn ofd_lock(file: &File, l_type: libc::c_int, wait: bool) -> nix::Result<()> {
    let lock = whole_file(l_type);
    let arg = if wait {
        FcntlArg::F_OFD_SETLKW(&lock)
    } else {
        FcntlArg::F_OFD_SETLK(&lock)
    };
    fcntl(file, arg).map(drop)
}

/// Opens `path`, locks it and checks the lock covers the file the path
/// still names (a rename may have replaced it while the lock was awaited);
/// reopens when it does not.
pub(super) fn lock_path(
    path: &Path,
    mode: LockMode,
    writable: bool,
) -> Result<LockedFile, CertsError> {
    let mut attempts = 0u32;
    let mut reopens = 0u32;
    loop {
        // Non-blocking open, so that a FIFO put at the path by mistake
        // cannot hang the vCPU thread; anything but a regular file is
        // refused below.
        let access = if writable {
            OFlags::RDWR | OFlags::CREATE
        } else {
            OFlags::RDONLY
        };
        let fd = rustix::fs::open(
            path,
            access | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| CertsError::io(path, e.into()))?;
        let file = File::from(fd);
        let held = file.metadata().map_err(|e| CertsError::io(path, e))?;
        if !held.is_file() {
            return Err(CertsError::io(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        lock_fd(path, &file, mode, &mut attempts)?;
        let locked = LockedFile { file };
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(locked),
            // Replaced (or, for a writer, removed and to be created anew).
            Ok(_) => {}
            Err(e) if writable && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CertsError::io(path, e)),
        }
        reopens = reopens.saturating_add(1);
        if mode != LockMode::Exclusive && reopens > MAX_REOPENS {
            return Err(CertsError::Busy {
                path: path.to_path_buf(),
                attempts,
            });
        }
    }
}

fn lock_fd(path: &Path, file: &File, mode: LockMode, attempts: &mut u32) -> Result<(), CertsError> {
    let busy = |attempts: u32| CertsError::Busy {
        path: path.to_path_buf(),
        attempts,
    };
    // `F_OFD_SETLK` reports a conflicting lock as `EAGAIN` or `EACCES`
    // (POSIX allows either; Linux uses `EAGAIN`).
    match mode {
        LockMode::Exclusive => loop {
            *attempts = attempts.saturating_add(1);
            match ofd_lock(file, libc::F_WRLCK, true) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(CertsError::io(path, e.into())),
            }
        },
        LockMode::TryExclusive => {
            *attempts = attempts.saturating_add(1);
            match ofd_lock(file, libc::F_WRLCK, false) {
                Ok(()) => Ok(()),
                Err(Errno::EAGAIN | Errno::EACCES | Errno::EINTR) => Err(busy(*attempts)),
                Err(e) => Err(CertsError::io(path, e.into())),
            }
        }
        LockMode::Shared(retry) => {
            let total = retry.attempts.max(1);
            let mut pause = retry.backoff;
            for attempt in 1..=total {
                *attempts = attempts.saturating_add(1);
                match ofd_lock(file, libc::F_RDLCK, false) {
                    Ok(()) => return Ok(()),
                    Err(Errno::EAGAIN | Errno::EACCES | Errno::EINTR) => {
                        if attempt < total {
                            thread::sleep(pause);
                            pause = pause.saturating_mul(2);
                        }
                    }
                    Err(e) => return Err(CertsError::io(path, e.into())),
                }
            }
            Err(busy(*attempts))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;
    use crate::exits::certs::EMPTY_CERT_TABLE;

    #[test]
    fn ofd_locks_cover_the_whole_file_per_open_file_description() {
        let lock = whole_file(libc::F_WRLCK);
        assert_eq!(i32::from(lock.l_type), libc::F_WRLCK);
        assert_eq!(i32::from(lock.l_whence), libc::SEEK_SET);
        assert_eq!((lock.l_start, lock.l_len, lock.l_pid), (0, 0, 0));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certs.bin");
        std::fs::write(&path, EMPTY_CERT_TABLE).unwrap();
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        // Two opens in one thread: two open file descriptions, whose locks
        // conflict (classic POSIX locks of one process would not).
        let (a, b) = (open(), open());
        ofd_lock(&a, libc::F_WRLCK, false).unwrap();
        assert_eq!(ofd_lock(&b, libc::F_RDLCK, false), Err(Errno::EAGAIN));
        assert_eq!(ofd_lock(&b, libc::F_WRLCK, false), Err(Errno::EAGAIN));
        // Re-locking through the same description converts, never conflicts.
        ofd_lock(&a, libc::F_RDLCK, false).unwrap();
        ofd_lock(&b, libc::F_RDLCK, false).unwrap();
        assert_eq!(ofd_lock(&a, libc::F_WRLCK, false), Err(Errno::EAGAIN));
        ofd_lock(&b, libc::F_UNLCK, false).unwrap();
        ofd_lock(&a, libc::F_WRLCK, true).unwrap();
        // Closing a descriptor of another description leaves the lock.
        drop(b);
        assert_eq!(ofd_lock(&open(), libc::F_RDLCK, false), Err(Errno::EAGAIN));
        drop(a);
        ofd_lock(&open(), libc::F_WRLCK, false).unwrap();
    }
}
