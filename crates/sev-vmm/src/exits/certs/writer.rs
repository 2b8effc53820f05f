//! The operator's side: an exclusive lock on the certificate file
//! ([`CertsWriter`]) held across the firmware change and the file's update,
//! in place ([`write_certs_file`]) or by rename ([`replace_certs_file`]).

use std::fmt;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::lock::{lock_path, LockMode, LockedFile};
#[cfg(doc)]
use super::MAX_CERT_TABLE_LEN;
use super::{validate, CertsError};

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
