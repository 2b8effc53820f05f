//! Standard output for every command, through `outln!` and `out!`
//! instead of `println!` / `print!`: when the reader goes away (`sevkit
//! launch --log | head`), the write fails with EPIPE (Rust ignores
//! SIGPIPE) and `println!` would panic with exit 101. Here the command ends
//! quietly with exit 0 instead, as ripgrep does: the reader has what it
//! wanted. Any other write error ends the command with exit 2 and says so.
//!
//! The process exits where the write failed, so no destructor runs after
//! it: files are written atomically and locks are the kernel's, so nothing
//! is left half-done (a QMP socket file is stale, and the next bind
//! replaces it).

use std::fmt;
use std::io::{self, Write};

/// `println!` for sevkit's output (see the module documentation).
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `print!` for sevkit's output (see the module documentation).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::text(format_args!($($arg)*))
    };
}

/// Writes `args` and a newline to standard output.
pub fn line(args: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"));
    if let Err(e) = written {
        failed(&e);
    }
}

/// Writes `args` to standard output.
pub fn text(args: fmt::Arguments<'_>) {
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        failed(&e);
    }
}

/// Writes raw bytes to standard output (and flushes them).
pub fn bytes(data: &[u8]) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_all(data).and_then(|()| stdout.flush()) {
        failed(&e);
    }
}

/// Flushes what [`text`] wrote without a newline.
pub fn flush() {
    if let Err(e) = io::stdout().lock().flush() {
        failed(&e);
    }
}

/// Ends the process: quietly for a reader that went away, with exit 2
/// otherwise.
fn failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("sevkit: error: cannot write to standard output: {e}");
    std::process::exit(2);
}
