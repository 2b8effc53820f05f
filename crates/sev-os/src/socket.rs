//! Unix sockets that only their owner can reach.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, RenameFlags, CWD};

use crate::file::split;
use crate::OsError;

/// A listening socket bound by [`bind_private_socket`]. Dropping it does not
/// remove the socket file; [`BoundSocket::remove`] does, if the file is
/// still the one bound.
#[derive(Debug)]
pub struct BoundSocket {
    /// The listener.
    pub listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file bound.
    id: (u64, u64),
}

impl BoundSocket {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file if it is still the one this bound (another
    /// process may have replaced a stale-looking one since).
    pub fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Who may connect to a socket [`bind_socket`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SocketAccess {
    /// Its owner only (mode 0600).
    #[default]
    Owner,
    /// Its owner and its group (mode 0660): the process's group, or the
    /// directory's group when the directory is set-group-ID.
    OwnerAndGroup,
}

impl SocketAccess {
    fn mode(self) -> Mode {
        match self {
            Self::Owner => Mode::from_raw_mode(0o600),
            Self::OwnerAndGroup => Mode::from_raw_mode(0o660),
        }
    }
}

/// [`bind_socket`] for its owner only (mode 0600).
pub fn bind_private_socket(path: &Path) -> Result<BoundSocket, OsError> {
    bind_socket(path, SocketAccess::Owner)
}

/// Binds a Unix socket at `path` that is never reachable at a wider mode
/// than `access` gives (0600 or 0660): it is bound inside a fresh 0700
/// directory next to `path`, set to its mode there, and renamed into place
/// (the umask is not touched, so other threads are unaffected).
///
/// A stale socket at `path` (nothing listens) is replaced; a live one is
/// [`OsError::SocketInUse`]; any other file is [`OsError::NotASocket`].
pub fn bind_socket(path: &Path, access: SocketAccess) -> Result<BoundSocket, OsError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(OsError::SocketInUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(|e| OsError::io(path, "remove stale socket", e))?;
        }
        Ok(_) => return Err(OsError::NotASocket(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(OsError::io(path, "stat", e)),
    }
    let (parent, name) = split(path)?;
    let mut staging_name = std::ffi::OsString::from(".");
    staging_name.push(name);
    staging_name.push(format!(".{}.bind", std::process::id()));
    let staging = parent.join(&staging_name);
    rustix::fs::mkdir(&staging, Mode::from_raw_mode(0o700))
        .map_err(|e| OsError::errno(&staging, "create", e))?;
    let inner = staging.join("socket");
    let result = (|| {
        let listener = UnixListener::bind(&inner).map_err(|e| OsError::io(&inner, "bind", e))?;
        rustix::fs::chmod(&inner, access.mode()).map_err(|e| OsError::errno(&inner, "chmod", e))?;
        match rustix::fs::renameat_with(CWD, &inner, CWD, path, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            // File systems without RENAME_NOREPLACE: a plain rename (the
            // stale-socket check above just ran).
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                rustix::fs::rename(&inner, path).map_err(|e| OsError::errno(path, "rename", e))?;
            }
            Err(rustix::io::Errno::EXIST) => {
                return Err(if UnixStream::connect(path).is_ok() {
                    OsError::SocketInUse(path.to_owned())
                } else {
                    OsError::NotASocket(path.to_owned())
                })
            }
            Err(e) => return Err(OsError::errno(path, "rename", e)),
        }
        let meta = std::fs::symlink_metadata(path).map_err(|e| OsError::io(path, "stat", e))?;
        Ok(BoundSocket {
            listener,
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
        })
    })();
    let _ = rustix::fs::unlinkat(CWD, &inner, AtFlags::empty());
    let _ = rustix::fs::unlinkat(CWD, &staging, AtFlags::REMOVEDIR);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_access_is_0660_and_only_that() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.sock");
        let old = rustix::process::umask(Mode::empty());
        let bound = bind_socket(&path, SocketAccess::OwnerAndGroup);
        rustix::process::umask(old);
        let bound = bound.unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660);
        bound.remove();
    }

    #[test]
    fn bound_at_0600_under_any_umask_and_stale_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.sock");
        let old = rustix::process::umask(Mode::empty());
        let bound = bind_private_socket(&path);
        rustix::process::umask(old);
        let bound = bound.unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o600);
        // Reachable, and nothing but the socket is left in the directory.
        UnixStream::connect(&path).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Live: refused.
        assert!(matches!(
            bind_private_socket(&path),
            Err(OsError::SocketInUse(_))
        ));
        // Stale: replaced.
        drop(bound);
        let again = bind_private_socket(&path).unwrap();
        again.remove();
        assert!(!path.exists());
        // Not a socket: refused and kept.
        std::fs::write(&path, b"data").unwrap();
        assert!(matches!(
            bind_private_socket(&path),
            Err(OsError::NotASocket(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}
