//! The one error type of this crate: every variant names the path and says
//! what to do about it.

use std::io;
use std::path::PathBuf;

/// Why a file, directory or socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    /// An operating-system call failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("open", "rename", ...).
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The path does not exist.
    #[error("{path}: does not exist")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// A directory or file that must be private belongs to another user.
    #[error(
        "{path}: owned by uid {owner}, but sevkit runs as uid {uid}; refusing to keep secrets \
         there (another user could read or replace them): use a directory of your own (one \
         sevkit creates, or `mkdir -m 0700 DIR`), or `chown {uid} {path}` if it is yours"
    )]
    NotOwned {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid sevkit runs as.
        uid: u32,
    },
    /// A directory or file that must be private may be written by group or
    /// others.
    #[error(
        "{path}: mode {mode:04o} lets group or others write it; refusing to keep secrets there \
         (another user could plant or swap files): `chmod go-w {path}`"
    )]
    Writable {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A symbolic link where a real file or directory must be.
    #[error("{path}: is a symbolic link; refusing to follow it (name the real path)")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Not a directory where one must be.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Not a regular file where one must be.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file is larger than the caller accepts.
    #[error("{path}: {what} is at most {max} bytes; this file is {}", size_text(*.size, *.max))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What the file should hold ("an attestation report", ...).
        what: &'static str,
        /// The largest size accepted.
        max: u64,
        /// The file's size, when it has one (`None`: a stream that went on
        /// past `max`).
        size: Option<u64>,
    },
    /// A live process listens on the socket path.
    #[error("{0}: another process is listening on this socket; stop it or choose another path")]
    SocketInUse(PathBuf),
    /// The socket path exists and is not a socket.
    #[error("{0}: exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
}

fn size_text(size: Option<u64>, max: u64) -> String {
    match size {
        Some(size) => format!("{size} bytes"),
        None => format!("longer than {max} bytes"),
    }
}

impl OsError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(code) if code == rustix::io::Errno::NOENT.raw_os_error() => Self::Missing { path },
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => Self::Symlink { path },
            Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => {
                Self::NotADirectory { path }
            }
            _ => Self::Io { path, op, source },
        }
    }

    pub(crate) fn errno(path: impl Into<PathBuf>, op: &'static str, e: rustix::io::Errno) -> Self {
        Self::io(path, op, e.into())
    }

    /// Whether the error says the path does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing { .. })
    }
}
