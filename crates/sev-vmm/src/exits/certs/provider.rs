//! The VMM's side: [`CertsProvider`] answers KVM's certificate exit from
//! the `sev-snp-guest` object's `certs-path` and hands out the table under
//! a shared lock ([`CertsLease`]) that lasts until the firmware has signed
//! the report.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use sev_abi::cert_table::CertTable;
use sev_abi::AbiError;
use sev_sp::MemoryError;

use super::kvm::{ReqCertsRet, SnpReqCerts};
use super::lock::{lock_path, LockMode, LockRetry, LockedFile};
use super::{pages_for, validate, CertsError, EMPTY_CERT_TABLE, MAX_CERT_TABLE_LEN};
use crate::machine::memory::{GuestMemory, PAGE_SIZE};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exits::certs::kvm::EIO;
    use crate::exits::certs::tests::table;
    use crate::exits::certs::writer::{write_certs_file, CertsWriter};

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
