//! Certificates to SNP guests: the host side of the extended guest request.
//!
//! An SNP guest asks for an attestation report with an *extended* guest
//! request (`SNP_GET_EXT_REPORT` in the guest kernel), handing the host a
//! buffer of `npages` shared pages at `gpa`. With certificate fetching
//! enabled (`KVM_SEV_SNP_ENABLE_REQ_CERTS`), KVM stops the vCPU with
//! `KVM_EXIT_SNP_REQ_CERTS` ([`SnpReqCerts`]) before it asks the firmware for
//! the report; the VMM writes the GHCB certificate table at `gpa` and sets
//! `ret` ([`ReqCertsRet`]), and on the next `KVM_RUN` KVM either issues the
//! request to the firmware (`ret` 0) or completes the `#VMGEXIT` with an
//! error in `SW_EXITINFO2`.
//!
//! [`CertsProvider`] is built from the `sev-snp-guest` object's optional
//! `certs-path` and answers that exit ([`CertsProvider::handle_exit`]).
//! [`CertsWriter`], [`write_certs_file`] and [`replace_certs_file`] are the
//! operator's side, for tools that change the TCB or the endorsement key
//! (`SNP_COMMIT`, `SNP_SET_CONFIG`, `SNP_VLEK_LOAD`) and then install the
//! matching VCEK or VLEK.
//!
//! # Locking protocol
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
//!
//! # Errors to the guest
//!
//! | outcome                                     | `ret`    | `SW_EXITINFO2`          | guest's `vmm_error` |
//! |---------------------------------------------|----------|-------------------------|---------------------|
//! | table written                               | 0        | firmware's status       | 0                   |
//! | buffer too small (`npages` := pages needed) | `ENOSPC` | `0x0000_0001_0000_0000` | 1 (`INVALID_LEN`)   |
//! | a writer holds the exclusive lock           | `EAGAIN` | `0x0000_0002_0000_0000` | 2 (`BUSY`)          |
//! | anything else (I/O, malformed file, ...)    | `EIO`    | `0xffff_ffff_0000_0000` | `0xffff_ffff`       |
//!
//! A configured `certs-path` that is missing, unreadable, larger than
//! [`MAX_CERT_TABLE_LEN`] or not a GHCB certificate table is the host
//! operator's error: the guest gets `EIO` (never garbage, never a silently
//! empty table) and the [`CertsError`] says what is wrong.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;
use rustix::fs::{Mode, OFlags};
use sev_abi::cert_table::{CertTable, CERT_TABLE_ENTRY_LEN};
use sev_abi::AbiError;
use sev_sp::MemoryError;

use crate::machine::memory::{GuestMemory, PAGE_SIZE};

/// `KVM_EXIT_SNP_REQ_CERTS`: the `kvm_run.exit_reason` of the certificate
/// exit.
pub const KVM_EXIT_SNP_REQ_CERTS: u32 = 42;

/// The empty certificate table: one all-zero terminating entry. What KVM
/// writes without certificate fetching, and what a [`CertsProvider`]
/// without a `certs-path` hands out.
pub const EMPTY_CERT_TABLE: [u8; CERT_TABLE_ENTRY_LEN] = [0; CERT_TABLE_ENTRY_LEN];

/// Largest certificate file accepted (1 MiB, 256 pages), by readers and
/// writers alike.
///
/// A real table (VCEK or VLEK, ASK, ARK, perhaps a CRL) is 5 to 10 KiB, so
/// this leaves two orders of magnitude of room while bounding what one
/// guest request makes the vCPU thread read under the lock. It also keeps
/// the guest's `certs_len` (`npages * 4096`, a `u32`) representable. A
/// guest takes no more than the buffer it offers anyway.
pub const MAX_CERT_TABLE_LEN: u64 = 1 << 20;

/// `ENOSPC`: `ret` for a buffer that is too small.
pub const ENOSPC: u64 = 28;
/// `EAGAIN`: `ret` for a busy certificate file.
pub const EAGAIN: u64 = 11;
/// `EIO`: `ret` for every other failure.
pub const EIO: u64 = 5;

/// Most times a reader (or a non-blocking writer) reopens the path because
/// the file was replaced while the lock was being acquired, before giving up
/// as busy. A blocking writer reopens as often as it takes: each reopen means
/// another writer completed a replacement.
const MAX_REOPENS: u32 = 8;

/// `struct kvm_exit_snp_req_certs`: `kvm_run.snp_req_certs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnpReqCerts {
    /// GPA of the guest's certificate buffer (the GHCB's RAX), 4 KiB
    /// aligned (KVM checks).
    pub gpa: u64,
    /// Its size in pages (the GHCB's RBX). For a `ret` of `ENOSPC`, KVM
    /// hands this back to the guest as the number of pages needed.
    pub npages: u64,
    /// 0 on exit; set by the VMM to 0, `ENOSPC`, `EAGAIN` or `EIO`.
    pub ret: u64,
}

/// The `ret` values KVM accepts for `KVM_EXIT_SNP_REQ_CERTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReqCertsRet {
    /// 0: the certificates are in the guest's buffer; KVM issues the guest
    /// request to the firmware.
    Success,
    /// `ENOSPC`: the buffer is too small; `npages` holds the pages needed.
    NoSpace,
    /// `EAGAIN`: the certificates are being updated; the guest retries.
    Busy,
    /// `EIO`: any other failure.
    Generic,
}

/// A `ret` value KVM refuses (`KVM_RUN` fails with `EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a valid KVM_EXIT_SNP_REQ_CERTS ret (0, ENOSPC, EAGAIN or EIO)")]
pub struct UnsupportedRet(pub u64);

impl ReqCertsRet {
    /// The value for `kvm_run.snp_req_certs.ret`.
    pub const fn errno(self) -> u64 {
        match self {
            Self::Success => 0,
            Self::NoSpace => ENOSPC,
            Self::Busy => EAGAIN,
            Self::Generic => EIO,
        }
    }

    /// Decodes `ret` as KVM does.
    pub const fn from_errno(ret: u64) -> Result<Self, UnsupportedRet> {
        match ret {
            0 => Ok(Self::Success),
            ENOSPC => Ok(Self::NoSpace),
            EAGAIN => Ok(Self::Busy),
            EIO => Ok(Self::Generic),
            other => Err(UnsupportedRet(other)),
        }
    }

    /// The VMM error KVM puts in bits 63:32 of `SW_EXITINFO2`; `None` for
    /// [`ReqCertsRet::Success`] (the firmware is called and its status is
    /// reported instead).
    pub const fn vmm_error(self) -> Option<VmmError> {
        match self {
            Self::Success => None,
            Self::NoSpace => Some(VmmError::InvalidLen),
            Self::Busy => Some(VmmError::Busy),
            Self::Generic => Some(VmmError::Generic),
        }
    }

    /// `SW_EXITINFO2` as KVM completes the `#VMGEXIT` without calling the
    /// firmware; 0 for [`ReqCertsRet::Success`] (before the firmware's
    /// status is known).
    pub const fn sw_exitinfo2(self) -> u64 {
        match self.vmm_error() {
            Some(e) => e.sw_exitinfo2(),
            None => 0,
        }
    }
}

/// The VMM error of an SNP guest request (bits 63:32 of `SW_EXITINFO2`;
/// `vmm_error` in the guest's `snp_guest_request_ioctl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmmError {
    /// `SNP_GUEST_VMM_ERR_INVALID_LEN` (1): the certificate buffer is too
    /// small; RBX holds the pages needed.
    InvalidLen,
    /// `SNP_GUEST_VMM_ERR_BUSY` (2): try again.
    Busy,
    /// KVM's `SNP_GUEST_VMM_ERR_GENERIC` (`0xffff_ffff`).
    Generic,
}

impl VmmError {
    /// The 32-bit code.
    pub const fn code(self) -> u32 {
        match self {
            Self::InvalidLen => 1,
            Self::Busy => 2,
            Self::Generic => u32::MAX,
        }
    }

    /// The code in place in `SW_EXITINFO2` (firmware status 0).
    pub const fn sw_exitinfo2(self) -> u64 {
        (self.code() as u64) << 32
    }

    /// Decodes a code; unknown non-zero codes are [`VmmError::Generic`]
    /// (the Linux guest treats them all as `EIO`), 0 is `None`.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => None,
            1 => Some(Self::InvalidLen),
            2 => Some(Self::Busy),
            _ => Some(Self::Generic),
        }
    }
}

/// What the guest's extended report request learns from the host's answer
/// to the certificate exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestCertsOutcome {
    /// The firmware was asked for the report; the certificate table is in
    /// the guest's buffer (`vmm_error` 0).
    Completed,
    /// `vmm_error` `INVALID_LEN`: the guest's `certs_len` becomes
    /// `npages * 4096` and it retries with that many pages.
    InvalidLen {
        /// Pages needed (RBX).
        npages: u64,
    },
    /// `vmm_error` `BUSY`: the guest retries later.
    Busy,
    /// The generic VMM error: the request fails.
    Generic,
}

impl GuestCertsOutcome {
    /// What KVM makes of the exit as the VMM left it (`ret` and, for
    /// `ENOSPC`, `npages`).
    pub const fn from_exit(exit: &SnpReqCerts) -> Result<Self, UnsupportedRet> {
        match ReqCertsRet::from_errno(exit.ret) {
            Ok(ret) => Ok(Self::from_ret(ret, exit.npages)),
            Err(e) => Err(e),
        }
    }

    /// The outcome of `ret`, with the pages needed for
    /// [`ReqCertsRet::NoSpace`].
    pub const fn from_ret(ret: ReqCertsRet, npages: u64) -> Self {
        match ret {
            ReqCertsRet::Success => Self::Completed,
            ReqCertsRet::NoSpace => Self::InvalidLen { npages },
            ReqCertsRet::Busy => Self::Busy,
            ReqCertsRet::Generic => Self::Generic,
        }
    }

    /// What a guest decodes from `SW_EXITINFO2` and RBX after the
    /// `#VMGEXIT`. Only the VMM error (bits 63:32) is looked at: with a
    /// VMM error of 0 the firmware was called, whatever its status.
    pub const fn from_sw_exitinfo2(exitinfo2: u64, rbx: u64) -> Self {
        match VmmError::from_code((exitinfo2 >> 32) as u32) {
            None => Self::Completed,
            Some(VmmError::InvalidLen) => Self::InvalidLen { npages: rbx },
            Some(VmmError::Busy) => Self::Busy,
            Some(VmmError::Generic) => Self::Generic,
        }
    }

    /// The guest ioctl's `vmm_error` (0 when the firmware was called).
    pub const fn vmm_error(self) -> u32 {
        match self.as_vmm_error() {
            Some(e) => e.code(),
            None => 0,
        }
    }

    /// The VMM error, if any.
    pub const fn as_vmm_error(self) -> Option<VmmError> {
        match self {
            Self::Completed => None,
            Self::InvalidLen { .. } => Some(VmmError::InvalidLen),
            Self::Busy => Some(VmmError::Busy),
            Self::Generic => Some(VmmError::Generic),
        }
    }

    /// The guest's updated `certs_len` (`npages * 4096`) for
    /// [`GuestCertsOutcome::InvalidLen`]; `None` otherwise or when it does
    /// not fit the field's 32 bits.
    pub const fn certs_len(self) -> Option<u32> {
        let Self::InvalidLen { npages } = self else {
            return None;
        };
        match npages.checked_mul(PAGE_SIZE) {
            Some(len) if len <= u32::MAX as u64 => Some(len as u32),
            _ => None,
        }
    }
}

/// Why certificates could not be handed out or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// Opening, locking, reading or writing the file failed (a missing
    /// file included).
    #[error("certificate file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A replacement could not be written (the message names the file; the
    /// old file is untouched).
    #[error("{0}")]
    Write(sev_os::OsError),
    /// A writer holds the exclusive lock (or the file kept being replaced).
    #[error("certificate file {} is busy (locked by a writer after {attempts} attempts)", path.display())]
    Busy {
        /// The file.
        path: PathBuf,
        /// Lock attempts made.
        attempts: u32,
    },
    /// The file is larger than [`MAX_CERT_TABLE_LEN`].
    #[error("certificate file {} has {len} bytes, more than the {MAX_CERT_TABLE_LEN}-byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The contents are not a GHCB certificate table.
    #[error("certificate file {} is not a GHCB certificate table: {source}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: AbiError,
    },
    /// The guest's buffer is not 4 KiB aligned.
    #[error("certificate buffer GPA {0:#x} is not 4 KiB aligned")]
    UnalignedGpa(u64),
    /// `gpa + npages * 4096` does not fit 64 bits.
    #[error("certificate buffer {gpa:#x} + {npages:#x} pages overflows the address space")]
    BufferOverflow {
        /// The GPA.
        gpa: u64,
        /// The page count.
        npages: u64,
    },
    /// The buffer includes a private (encrypted) page: certificate pages
    /// must be shared.
    #[error("certificate buffer page {0:#x} is private, not shared")]
    PrivatePage(u64),
    /// Writing the table to guest memory failed.
    #[error("writing the certificate table to guest memory: {0}")]
    GuestMemory(#[from] MemoryError),
}

impl CertsError {
    /// The `ret` the guest gets for this error: `EAGAIN` when busy, `EIO`
    /// for everything else.
    pub const fn ret(&self) -> ReqCertsRet {
        match self {
            Self::Busy { .. } => ReqCertsRet::Busy,
            _ => ReqCertsRet::Generic,
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

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
struct LockedFile {
    file: File,
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
enum LockMode {
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
fn lock_path(path: &Path, mode: LockMode, writable: bool) -> Result<LockedFile, CertsError> {
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

/// Checks `table` is a GHCB certificate table within the size limit.
fn validate(path: &Path, table: &[u8]) -> Result<CertTable, CertsError> {
    let len = table.len() as u64;
    if len > MAX_CERT_TABLE_LEN {
        return Err(CertsError::TooLarge {
            path: path.to_path_buf(),
            len,
        });
    }
    CertTable::from_bytes(table).map_err(|source| CertsError::Malformed {
        path: path.to_path_buf(),
        source,
    })
}

/// Whole pages holding `table`.
fn pages_for(table: &[u8]) -> u64 {
    (table.len() as u64).div_ceil(PAGE_SIZE)
}

/// The certificates handed to one guest request, with the shared lock that
/// keeps them current until the firmware has produced the report.
///
/// Drop it after the firmware returned the report (not before: a writer
/// could change the TCB in between, and the certificates would not match
/// the report).
pub struct CertsLease {
    table: Vec<u8>,
    pages: u64,
    path: Option<PathBuf>,
    lock: Option<LockedFile>,
}

impl fmt::Debug for CertsLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertsLease")
            .field("path", &self.path)
            .field("len", &self.table.len())
            .field("pages", &self.pages)
            .field("locked", &self.lock.is_some())
            .finish()
    }
}

impl CertsLease {
    fn empty() -> Self {
        Self {
            table: EMPTY_CERT_TABLE.to_vec(),
            pages: 0,
            path: None,
            lock: None,
        }
    }

    /// The certificate table as the guest receives it (the file's bytes
    /// verbatim; [`EMPTY_CERT_TABLE`] without a `certs-path` or for a file
    /// whose table has no entries).
    pub fn table_bytes(&self) -> &[u8] {
        &self.table
    }

    /// The table, parsed.
    pub fn table(&self) -> Result<CertTable, AbiError> {
        CertTable::from_bytes(&self.table)
    }

    /// Pages the guest's buffer needs: 0 when the table has no entries,
    /// else `ceil(len / 4096)`.
    pub fn pages_needed(&self) -> u64 {
        self.pages
    }

    /// The file the certificates came from (`None` without `certs-path`).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether a shared lock is held (false without `certs-path`).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// Releases the lock (the same as dropping the lease).
    pub fn release(self) {}
}

/// The VMM's answer to a certificate exit. [`CertsProvider::handle_exit`]
/// has already set `ret` (and `npages` for `ENOSPC`) in the exit.
#[derive(Debug)]
pub enum ReqCertsOutcome {
    /// `ret` 0: the table is at `gpa`. Keep the lease until the firmware
    /// returned the report, then drop it.
    Supplied(CertsLease),
    /// `ret` `ENOSPC`: `npages` was set to the pages needed.
    TooSmall {
        /// Pages needed.
        needed: u64,
    },
    /// `ret` `EAGAIN` or `EIO`: the reason, for the operator's log.
    Failed(CertsError),
}

impl ReqCertsOutcome {
    /// The `ret` this outcome sets.
    pub fn ret(&self) -> ReqCertsRet {
        match self {
            Self::Supplied(_) => ReqCertsRet::Success,
            Self::TooSmall { .. } => ReqCertsRet::NoSpace,
            Self::Failed(e) => e.ret(),
        }
    }

    /// The lease, for [`ReqCertsOutcome::Supplied`].
    pub fn lease(self) -> Option<CertsLease> {
        match self {
            Self::Supplied(lease) => Some(lease),
            _ => None,
        }
    }
}

/// Certificates for the guests of one `sev-snp-guest` object: its optional
/// `certs-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsProvider {
    path: Option<PathBuf>,
    retry: LockRetry,
}

impl CertsProvider {
    /// A provider for `certs_path` (`None`: every request gets
    /// [`EMPTY_CERT_TABLE`], as KVM without certificate fetching). The file
    /// is not touched until a request (see [`CertsProvider::lease`] to check
    /// it at start-up).
    pub fn new(certs_path: Option<PathBuf>) -> Self {
        Self {
            path: certs_path,
            retry: LockRetry::default(),
        }
    }

    /// The same with another lock retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: LockRetry) -> Self {
        self.retry = retry;
        self
    }

    /// The `certs-path`.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The lock retry policy.
    pub fn retry(&self) -> LockRetry {
        self.retry
    }

    /// Takes a shared lock on the file (non-blocking, retried per
    /// [`LockRetry`]), reads it and checks it is a GHCB certificate table
    /// of at most [`MAX_CERT_TABLE_LEN`] bytes. Without a `certs-path`, the
    /// empty table and no lock.
    pub fn lease(&self) -> Result<CertsLease, CertsError> {
        let Some(path) = &self.path else {
            return Ok(CertsLease::empty());
        };
        let lock = lock_path(path, LockMode::Shared(self.retry), false)?;
        let len = lock
            .file
            .metadata()
            .map_err(|e| CertsError::io(path, e))?
            .len();
        if len > MAX_CERT_TABLE_LEN {
            return Err(CertsError::TooLarge {
                path: path.clone(),
                len,
            });
        }
        let mut table = Vec::with_capacity(len as usize);
        (&lock.file)
            .take(MAX_CERT_TABLE_LEN + 1)
            .read_to_end(&mut table)
            .map_err(|e| CertsError::io(path, e))?;
        let parsed = validate(path, &table)?;
        // A table without entries needs no pages, as with KVM's built-in
        // empty table: a guest without a buffer misses nothing.
        let (table, pages) = if parsed.is_empty() {
            (EMPTY_CERT_TABLE.to_vec(), 0)
        } else {
            let pages = pages_for(&table);
            (table, pages)
        };
        Ok(CertsLease {
            table,
            pages,
            path: Some(path.clone()),
            lock: Some(lock),
        })
    }

    /// Answers `KVM_EXIT_SNP_REQ_CERTS`, writing through `write(gpa, bytes)`
    /// (the certificate pages are shared: write them in plain), and sets
    /// `exit.ret` (and `exit.npages` for `ENOSPC`).
    ///
    /// In order: a `gpa` that is not 4 KiB aligned, or a buffer whose end
    /// overflows 64 bits, is `EIO`; then the lease ([`CertsProvider::lease`]:
    /// busy is `EAGAIN`, any other failure `EIO`); a buffer of fewer pages
    /// than the table needs is `ENOSPC` with `npages` set to the pages
    /// needed (`npages` 0 included; the lock is released, the firmware is
    /// not called); otherwise the table is written at `gpa` followed by
    /// zeros to the end of its last page, and `ret` is 0. A table without
    /// entries needs no pages: with `npages` 0 nothing is written, else the
    /// 24-byte terminator and zeros to the end of the first page. A failed
    /// write is `EIO`. Pages past the table's last page are not touched.
    pub fn handle_exit_with<F>(&self, exit: &mut SnpReqCerts, write: F) -> ReqCertsOutcome
    where
        F: FnOnce(u64, &[u8]) -> Result<(), MemoryError>,
    {
        let outcome = self.answer(exit, |gpa, bytes| write(gpa, bytes).map_err(Into::into));
        exit.ret = outcome.ret().errno();
        if let ReqCertsOutcome::TooSmall { needed } = outcome {
            exit.npages = needed;
        }
        outcome
    }

    /// [`CertsProvider::handle_exit_with`] writing into `memory` with
    /// [`GuestMemory::host_write`]; a buffer page the guest has private
    /// is refused (`EIO`).
    pub fn handle_exit(&self, exit: &mut SnpReqCerts, memory: &mut GuestMemory) -> ReqCertsOutcome {
        let outcome = self.answer(exit, |gpa, bytes| {
            let mut page = gpa;
            while page < gpa.saturating_add(bytes.len() as u64) {
                if memory.is_private(page) {
                    return Err(CertsError::PrivatePage(page));
                }
                page = page.saturating_add(PAGE_SIZE);
            }
            memory.host_write(gpa, bytes).map_err(Into::into)
        });
        exit.ret = outcome.ret().errno();
        if let ReqCertsOutcome::TooSmall { needed } = outcome {
            exit.npages = needed;
        }
        outcome
    }

    fn answer<F>(&self, exit: &SnpReqCerts, write: F) -> ReqCertsOutcome
    where
        F: FnOnce(u64, &[u8]) -> Result<(), CertsError>,
    {
        let SnpReqCerts { gpa, npages, .. } = *exit;
        if !gpa.is_multiple_of(PAGE_SIZE) {
            return ReqCertsOutcome::Failed(CertsError::UnalignedGpa(gpa));
        }
        if npages
            .checked_mul(PAGE_SIZE)
            .and_then(|len| gpa.checked_add(len))
            .is_none()
        {
            return ReqCertsOutcome::Failed(CertsError::BufferOverflow { gpa, npages });
        }
        let lease = match self.lease() {
            Ok(lease) => lease,
            Err(e) => return ReqCertsOutcome::Failed(e),
        };
        let needed = lease.pages;
        if npages < needed {
            return ReqCertsOutcome::TooSmall { needed };
        }
        if npages > 0 {
            // The table, then zeros to the end of its last page.
            let len = lease.table.len().next_multiple_of(PAGE_SIZE as usize);
            let mut bytes = Vec::with_capacity(len);
            bytes.extend_from_slice(&lease.table);
            bytes.resize(len, 0);
            if let Err(e) = write(gpa, &bytes) {
                return ReqCertsOutcome::Failed(e);
            }
        }
        ReqCertsOutcome::Supplied(lease)
    }
}

/// The operator's exclusive lock on a certificate file: hold it across the
/// firmware change (`SNP_COMMIT`, `SNP_SET_CONFIG`, `SNP_VLEK_LOAD`) and the
/// update of the file, so no guest gets a report and certificates from
/// different TCBs.
pub struct CertsWriter {
    path: PathBuf,
    lock: LockedFile,
}

impl fmt::Debug for CertsWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertsWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl CertsWriter {
    /// Opens (creating an empty file if there is none) and locks `path`
    /// exclusively, waiting for readers' leases and other writers.
    ///
    /// A file created here is empty until written: a guest request in
    /// between gets `EIO`. Install the first table with
    /// [`replace_certs_file`] to avoid that.
    ///
    /// Linux does not queue OFD locks fairly: shared locks are still
    /// granted while a writer waits in `F_OFD_SETLKW`. Leases last one
    /// firmware call each, so the writer gets in between them.
    ///
    /// If the file is replaced by rename while this waits, the lock is
    /// retaken on the new file (however often that happens).
    pub fn lock(path: impl AsRef<Path>) -> Result<Self, CertsError> {
        let path = path.as_ref();
        Ok(Self {
            path: path.to_path_buf(),
            lock: lock_path(path, LockMode::Exclusive, true)?,
        })
    }

    /// As [`CertsWriter::lock`], without waiting: [`CertsError::Busy`]
    /// while a lease or another writer holds the file.
    pub fn try_lock(path: impl AsRef<Path>) -> Result<Self, CertsError> {
        let path = path.as_ref();
        Ok(Self {
            path: path.to_path_buf(),
            lock: lock_path(path, LockMode::TryExclusive, true)?,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the file in place: checks `table` is a GHCB certificate
    /// table of at most [`MAX_CERT_TABLE_LEN`] bytes, truncates, writes,
    /// and `fsync`s. Readers wait for the lock, so none sees a partial file.
    pub fn write(&mut self, table: &[u8]) -> Result<(), CertsError> {
        validate(&self.path, table)?;
        let file = &self.lock.file;
        let io = |e| CertsError::io(&self.path, e);
        file.set_len(0).map_err(io)?;
        file.write_all_at(table, 0).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Replaces the file by rename: writes `table` (checked as by
    /// [`CertsWriter::write`]) to a new file in the same directory,
    /// `fsync`s it, renames it over the path and `fsync`s the directory,
    /// then releases the lock on the old file. Leases taken before keep
    /// reading the old inode, which no writer touches; leases waiting for
    /// the lock notice the replacement and open the new file.
    pub fn replace(self, table: &[u8]) -> Result<(), CertsError> {
        validate(&self.path, table)?;
        install_by_rename(&self.path, table)?;
        drop(self.lock);
        Ok(())
    }
}

/// Writes `table` to a new file next to `path` (created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0644 less the umask), `fsync`s it,
/// renames it over `path` and `fsync`s the directory
/// ([`sev_os::write_atomic`]); a failure leaves `path` as it was and no
/// temporary file.
fn install_by_rename(path: &Path, table: &[u8]) -> Result<(), CertsError> {
    sev_os::write_atomic(path, table, sev_os::FileMode::Public).map_err(CertsError::Write)
}

/// Rewrites the certificate file at `path` in place under the exclusive
/// lock ([`CertsWriter::lock`] then [`CertsWriter::write`]); waits for
/// outstanding leases.
pub fn write_certs_file(path: impl AsRef<Path>, table: &[u8]) -> Result<(), CertsError> {
    CertsWriter::lock(path)?.write(table)
}

/// Replaces the certificate file at `path` by rename under the exclusive
/// lock on the current file ([`CertsWriter::lock`] then
/// [`CertsWriter::replace`]). Without a current file, it is installed by
/// rename with no lock (there is nothing a reader could hold).
pub fn replace_certs_file(path: impl AsRef<Path>, table: &[u8]) -> Result<(), CertsError> {
    let path = path.as_ref();
    match std::fs::metadata(path) {
        Ok(_) => CertsWriter::lock(path)?.replace(table),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            validate(path, table)?;
            install_by_rename(path, table)
        }
        Err(e) => Err(CertsError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;
    use sev_abi::cert_table::CertKind;

    fn table(lens: &[usize]) -> Vec<u8> {
        let kinds = [CertKind::Vcek, CertKind::Ask, CertKind::Ark, CertKind::Crl];
        let mut t = CertTable::default();
        for (i, len) in lens.iter().enumerate() {
            t.push(kinds[i % kinds.len()].guid(), vec![i as u8 + 1; *len]);
        }
        t.to_bytes().unwrap()
    }

    #[test]
    fn errno_values_match_the_kernel() {
        use rustix::io::Errno as E;
        assert_eq!(ENOSPC, u64::try_from(E::NOSPC.raw_os_error()).unwrap());
        assert_eq!(EAGAIN, u64::try_from(E::AGAIN.raw_os_error()).unwrap());
        assert_eq!(EIO, u64::try_from(E::IO.raw_os_error()).unwrap());
    }

    #[test]
    fn ret_mapping() {
        let all = [
            (ReqCertsRet::Success, 0, 0, None),
            (ReqCertsRet::NoSpace, 28, 0x1_0000_0000, Some(1)),
            (ReqCertsRet::Busy, 11, 0x2_0000_0000, Some(2)),
            (
                ReqCertsRet::Generic,
                5,
                0xffff_ffff_0000_0000,
                Some(u32::MAX),
            ),
        ];
        for (ret, errno, exitinfo2, vmm) in all {
            assert_eq!(ret.errno(), errno);
            assert_eq!(ReqCertsRet::from_errno(errno), Ok(ret));
            assert_eq!(ret.sw_exitinfo2(), exitinfo2);
            assert_eq!(ret.vmm_error().map(VmmError::code), vmm);
            let guest = GuestCertsOutcome::from_ret(ret, 3);
            assert_eq!(guest.vmm_error(), vmm.unwrap_or(0));
            assert_eq!(GuestCertsOutcome::from_sw_exitinfo2(exitinfo2, 3), guest);
            let exit = SnpReqCerts {
                gpa: 0,
                npages: 3,
                ret: errno,
            };
            assert_eq!(GuestCertsOutcome::from_exit(&exit), Ok(guest));
        }
        for bad in [1, 22, EIO + 1, u64::MAX, 1 << 32] {
            assert_eq!(ReqCertsRet::from_errno(bad), Err(UnsupportedRet(bad)));
            let exit = SnpReqCerts {
                gpa: 0,
                npages: 0,
                ret: bad,
            };
            assert_eq!(
                GuestCertsOutcome::from_exit(&exit),
                Err(UnsupportedRet(bad))
            );
        }
        // Firmware status bits do not make a VMM error; unknown VMM codes are
        // generic.
        assert_eq!(
            GuestCertsOutcome::from_sw_exitinfo2(0x16, 0),
            GuestCertsOutcome::Completed
        );
        assert_eq!(
            GuestCertsOutcome::from_sw_exitinfo2(7 << 32, 0),
            GuestCertsOutcome::Generic
        );
        assert_eq!(VmmError::from_code(0), None);
    }

    #[test]
    fn guest_certs_len() {
        let len = |npages| GuestCertsOutcome::InvalidLen { npages }.certs_len();
        assert_eq!(len(2), Some(8192));
        assert_eq!(len(0), Some(0));
        assert_eq!(len(MAX_CERT_TABLE_LEN / PAGE_SIZE), Some(1 << 20));
        assert_eq!(len(1 << 20), None, "4 GiB does not fit certs_len");
        assert_eq!(len(u64::MAX), None);
        assert_eq!(GuestCertsOutcome::Busy.certs_len(), None);
        assert_eq!(GuestCertsOutcome::Completed.as_vmm_error(), None);
    }

    #[test]
    fn pages_and_validation() {
        let p = Path::new("x");
        assert_eq!(pages_for(&EMPTY_CERT_TABLE), 1);
        assert_eq!(pages_for(&table(&[10])), 1);
        let exact = table(&[4096 - 2 * 24]);
        assert_eq!(exact.len(), 4096);
        assert_eq!(pages_for(&exact), 1);
        assert_eq!(pages_for(&table(&[4096 - 2 * 24 + 1])), 2);
        assert!(validate(p, &table(&[1, 2, 3])).is_ok());
        assert!(validate(p, &EMPTY_CERT_TABLE).unwrap().is_empty());
        assert!(matches!(
            validate(p, &[0; 23]),
            Err(CertsError::Malformed { .. })
        ));
        assert!(matches!(
            validate(p, &[]),
            Err(CertsError::Malformed { .. })
        ));
        let big = table(&[MAX_CERT_TABLE_LEN as usize]);
        assert!(matches!(
            validate(p, &big),
            Err(CertsError::TooLarge { len, .. }) if len == big.len() as u64
        ));
        let fits = table(&[MAX_CERT_TABLE_LEN as usize - 2 * 24]);
        assert!(validate(p, &fits).is_ok());
    }

    #[test]
    fn error_rets() {
        let busy = CertsError::Busy {
            path: "p".into(),
            attempts: 4,
        };
        assert_eq!(busy.ret(), ReqCertsRet::Busy);
        assert!(busy.to_string().contains("4 attempts"));
        for e in [
            CertsError::UnalignedGpa(1),
            CertsError::PrivatePage(0x1000),
            CertsError::BufferOverflow {
                gpa: 0,
                npages: u64::MAX,
            },
            CertsError::GuestMemory(MemoryError { paddr: 0, len: 1 }),
            CertsError::io(Path::new("p"), io::ErrorKind::NotFound.into()),
        ] {
            assert_eq!(e.ret(), ReqCertsRet::Generic, "{e}");
        }
    }

    #[test]
    fn no_path_answers_like_kvm_without_certificates() {
        let provider = CertsProvider::new(None);
        let mut written = Vec::new();
        for npages in [0, 1, 5] {
            let mut exit = SnpReqCerts {
                gpa: 0x3000,
                npages,
                ret: 0,
            };
            written.clear();
            let outcome = provider.handle_exit_with(&mut exit, |gpa, bytes| {
                written.push((gpa, bytes.to_vec()));
                Ok(())
            });
            assert_eq!(exit.ret, 0);
            assert_eq!(exit.npages, npages);
            let lease = outcome.lease().unwrap();
            assert!(!lease.is_locked());
            assert_eq!(lease.table_bytes(), EMPTY_CERT_TABLE);
            assert_eq!(lease.pages_needed(), 0);
            if npages == 0 {
                assert!(written.is_empty());
            } else {
                assert_eq!(written.len(), 1);
                assert_eq!(written[0].0, 0x3000);
                assert_eq!(written[0].1, vec![0; 4096]);
            }
        }
    }

    #[test]
    fn exit_checks_come_first() {
        let provider = CertsProvider::new(Some("/nonexistent/sevkit/certs".into()));
        let cases = [
            (0x1001, 1, "aligned"),
            (0xFFFF_FFFF_FFFF_F000, 2, "overflows"),
            (0, u64::MAX, "overflows"),
            (0, 1, "No such file"),
        ];
        for (gpa, npages, msg) in cases {
            let mut exit = SnpReqCerts {
                gpa,
                npages,
                ret: 0,
            };
            let outcome = provider.handle_exit_with(&mut exit, |_, _| panic!("no write"));
            assert_eq!(exit.ret, EIO);
            assert_eq!(exit.npages, npages);
            let ReqCertsOutcome::Failed(e) = outcome else {
                panic!("{outcome:?}")
            };
            assert!(e.to_string().contains(msg), "{e}");
        }
    }

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

    #[test]
    fn write_failure_is_eio() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certs.bin");
        write_certs_file(&path, &table(&[100])).unwrap();
        let provider = CertsProvider::new(Some(path.clone()));
        let mut exit = SnpReqCerts {
            gpa: 0x1000,
            npages: 1,
            ret: 0,
        };
        let outcome = provider.handle_exit_with(&mut exit, |paddr, bytes| {
            Err(MemoryError {
                paddr,
                len: bytes.len() as u64,
            })
        });
        assert_eq!(exit.ret, EIO);
        assert!(matches!(
            outcome,
            ReqCertsOutcome::Failed(CertsError::GuestMemory(MemoryError {
                paddr: 0x1000,
                len: 4096
            }))
        ));
        // The lock went with the failure.
        drop(CertsWriter::try_lock(&path).unwrap());
    }
}
