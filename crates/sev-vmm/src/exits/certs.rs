//! Certificates to SNP guests: the host side of the extended guest request.
//!
//! An SNP guest asks for an attestation report with an *extended* guest
//! request (`SNP_GET_EXT_REPORT` in the guest kernel), handing the host a
//! buffer of `npages` shared pages at `gpa`. With certificate fetching
//! enabled (`KVM_SEV_SNP_ENABLE_REQ_CERTS`), KVM stops the vCPU with
//! `KVM_EXIT_SNP_REQ_CERTS` ([`SnpReqCerts`](kvm::SnpReqCerts)) before it
//! asks the firmware for the report; the VMM writes the GHCB certificate
//! table at `gpa` and sets `ret` ([`ReqCertsRet`]), and on
//! the next `KVM_RUN` KVM either issues the request to the firmware (`ret`
//! 0) or completes the `#VMGEXIT` with an error in `SW_EXITINFO2`.
//!
//! By role:
//!
//! * [`kvm`]: KVM's exit ABI: the exit, the `ret` values KVM accepts, and
//!   what the guest learns from them.
//! * [`lock`]: the OFD-lock protocol that keeps the certificates a guest
//!   receives and the report the firmware signs from one TCB.
//! * [`provider`]: the VMM's side. [`CertsProvider`](provider::CertsProvider)
//!   is built from the `sev-snp-guest` object's optional `certs-path` and
//!   answers the exit
//!   ([`CertsProvider::handle_exit`](provider::CertsProvider::handle_exit)).
//! * [`writer`]: the operator's side. [`CertsWriter`](writer::CertsWriter),
//!   [`write_certs_file`](writer::write_certs_file) and
//!   [`replace_certs_file`](writer::replace_certs_file) are for tools that
//!   change the TCB or the endorsement key (`SNP_COMMIT`, `SNP_SET_CONFIG`,
//!   `SNP_VLEK_LOAD`) and then install the matching VCEK or VLEK.
//!
//! Here: what they share, the table's limits and the errors.
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

use std::io;
use std::path::{Path, PathBuf};

use sev_abi::cert_table::{CertTable, CERT_TABLE_ENTRY_LEN};
use sev_abi::AbiError;
use sev_sp::MemoryError;

use crate::machine::memory::PAGE_SIZE;

pub mod kvm;
pub mod lock;
pub mod provider;
pub mod writer;

use kvm::ReqCertsRet;

/// The empty certificate table: one all-zero terminating entry. What KVM
/// writes without certificate fetching, and what a [`CertsProvider`](provider::CertsProvider)
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

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checks `table` is a GHCB certificate table within the size limit.
pub(crate) fn validate(path: &Path, table: &[u8]) -> Result<CertTable, CertsError> {
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
pub(crate) fn pages_for(table: &[u8]) -> u64 {
    (table.len() as u64).div_ceil(PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev_abi::cert_table::CertKind;

    /// A certificate table with entries of `lens` bytes.
    pub(super) fn table(lens: &[usize]) -> Vec<u8> {
        let kinds = [CertKind::Vcek, CertKind::Ask, CertKind::Ark, CertKind::Crl];
        let mut t = CertTable::default();
        for (i, len) in lens.iter().enumerate() {
            t.push(kinds[i % kinds.len()].guid(), vec![i as u8 + 1; *len]);
        }
        t.to_bytes().unwrap()
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
}
