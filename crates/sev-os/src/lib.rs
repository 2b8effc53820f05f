//! What sevkit needs from the operating system, with the project's
//! security rules written once:
//!
//! * [`PrivateDir`]: a directory that holds secrets (the software AMD-SP's
//!   state directory). It is refused unless it belongs to the user sevkit
//!   runs as and neither group nor others may write it; it is created with
//!   mode 0700 whatever the umask; its files are opened without following
//!   symbolic links and checked the same way; everything happens relative
//!   to the directory's descriptor, so the directory cannot be swapped
//!   between the check and the use.
//! * [`write_atomic`] / [`PrivateDir::write_atomic`]: the one way sevkit
//!   writes a file: a new temporary file created in the target's own
//!   directory with `O_CREAT | O_EXCL | O_NOFOLLOW` at its final mode
//!   ([`FileMode`]: 0600 for anything secret), written, `fsync`ed, renamed
//!   over the target (which replaces a symbolic link rather than following
//!   it) and the directory `fsync`ed. A reader sees the old file or the new
//!   one, never half of one; a failure leaves no file behind.
//!   [`write_atomic_all`] does the same for several files at once: all
//!   written first, then all renamed, so a failure leaves none of them.
//! * [`read_bounded`]: reads a file whole only after checking it against the
//!   largest size the caller accepts, and stops at that size for files that
//!   do not know theirs (`/dev/zero`, pipes).
//! * [`bind_socket`] / [`bind_private_socket`]: a Unix socket that is never
//!   reachable at a wider mode than asked for (0600, or 0660 to let a group
//!   connect; bound inside a fresh 0700 directory, then renamed into place),
//!   with one rule for stale sockets.
//! * [`disable_core_dumps`]: for processes that hold private keys.
//! * [`excerpt`] / [`excerpt_at`]: the one way a message quotes untrusted
//!   input: at most [`EXCERPT_CHARS`] characters, a cut marked with `…`.
//!
//! Everything here is Linux (and Unix) only, as sevkit is.

#![forbid(unsafe_code)]

mod dir;
mod error;
mod file;
mod process;
mod socket;
mod text;

pub use dir::PrivateDir;
pub use error::OsError;
pub use file::{read_bounded, write_atomic, write_atomic_all, FileMode, NewFile};
pub use process::disable_core_dumps;
pub use socket::{bind_private_socket, bind_socket, BoundSocket, SocketAccess};
pub use text::{excerpt, excerpt_at, EXCERPT_CHARS};
