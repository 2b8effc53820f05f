//! A minimal QMP client for `sevkit debug read`: connect, read the
//! greeting, negotiate, run a command, with every wait bounded in time and
//! every reply bounded in length.
//!
//! A QMP server (QEMU's, and sevkit's) serves one client at a time: a
//! second client connects, but gets no greeting until the first leaves.
//! Without a timeout such a client hangs; here each step (connect,
//! greeting, each reply) waits at most the timeout and then says so.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::net::sockopt::Timeout;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
use serde_json::Value;
use sev_vmm::monitor::hmp::MAX_DUMP_BYTES;

/// The longest reply line accepted: room for an `xp /1048576xb` dump (the
/// largest dump), about 7.4 bytes of text per byte of memory (`0x..` per
/// byte, an address per 8 bytes, JSON escapes), so 8 per byte, and 64 KiB
/// for the JSON around it. `debug read`'s `x-sevkit-read-memory` of 1 MiB
/// is about 1.4 MiB of base64, well within it.
pub const MAX_REPLY_LINE: usize = 8 * MAX_DUMP_BYTES as usize + (64 << 10);

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpClientError {
    /// A step took longer than the timeout.
    #[error(
        "{}: the QMP monitor did not answer within {} s ({step}). A QMP server serves one \
         client at a time (sevkit's as QEMU's): another client may be connected to it; close \
         that client, or give more time with --timeout SECONDS",
        path.display(),
        timeout.as_secs_f64()
    )]
    Timeout {
        /// The socket.
        path: PathBuf,
        /// What was waited for ("the greeting", ...).
        step: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// A reply line is longer than [`MAX_REPLY_LINE`].
    #[error(
        "{}: a QMP reply ({step}) is longer than {max} bytes without a newline; is this a \
         QMP socket?",
        path.display()
    )]
    TooLong {
        /// The socket.
        path: PathBuf,
        /// The reply being read.
        step: &'static str,
        /// The limit.
        max: usize,
    },
    /// The server closed the connection.
    #[error("{}: the VM closed the QMP connection ({step})", path.display())]
    Closed {
        /// The socket.
        path: PathBuf,
        /// The reply being read.
        step: &'static str,
    },
    /// The greeting is not QMP's.
    #[error("{}: not a QMP socket (no QMP greeting)", path.display())]
    NotQmp {
        /// The socket.
        path: PathBuf,
    },
    /// A reply is not JSON.
    #[error("{}: a QMP reply ({step}) is not JSON: {source}", path.display())]
    Json {
        /// The socket.
        path: PathBuf,
        /// The reply being read.
        step: &'static str,
        /// The parse error (line and column; it quotes nothing).
        source: serde_json::Error,
    },
    /// The command failed.
    #[error("QMP {class}: {desc}")]
    Command {
        /// QMP's error class.
        class: String,
        /// QMP's description.
        desc: String,
    },
    /// The socket could not be used.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// What was done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// A connected QMP client past capability negotiation.
pub struct QmpClient {
    reader: BufReader<UnixStream>,
    path: PathBuf,
    timeout: Duration,
}

impl QmpClient {
    /// Connects to the QMP socket at `path`, reads the greeting and
    /// negotiates capabilities, each step within `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpClientError> {
        let stream = connect(path, timeout)?;
        let mut client = Self {
            reader: BufReader::new(stream),
            path: path.to_owned(),
            timeout,
        };
        let greeting = client.read_value("the greeting")?;
        if greeting.get("QMP").is_none() {
            return Err(QmpClientError::NotQmp {
                path: client.path.clone(),
            });
        }
        client.execute(
            &serde_json::json!({"execute": "qmp_capabilities"}),
            "qmp_capabilities",
        )?;
        Ok(client)
    }

    /// Runs `command` (`step` names it in errors) and returns its `return`
    /// value; events before the answer are skipped, within the timeout.
    pub fn execute(
        &mut self,
        command: &Value,
        step: &'static str,
    ) -> Result<Value, QmpClientError> {
        let mut line = command.to_string();
        line.push('\n');
        self.reader
            .get_mut()
            .write_all(line.as_bytes())
            .map_err(|e| self.io_or_timeout(step, "send", e))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let mut v = self.read_value_until(step, deadline)?;
            if let Some(r) = v.get_mut("return") {
                return Ok(r.take());
            }
            if let Some(e) = v.get("error") {
                return Err(QmpClientError::Command {
                    class: e["class"].as_str().unwrap_or("?").to_owned(),
                    desc: e["desc"].as_str().unwrap_or("?").to_owned(),
                });
            }
        }
    }

    fn read_value(&mut self, step: &'static str) -> Result<Value, QmpClientError> {
        let deadline = Instant::now() + self.timeout;
        self.read_value_until(step, deadline)
    }

    /// Reads one line (at most [`MAX_REPLY_LINE`] bytes) by `deadline` and
    /// parses it.
    fn read_value_until(
        &mut self,
        step: &'static str,
        deadline: Instant,
    ) -> Result<Value, QmpClientError> {
        let mut line = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout_error(step));
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| self.io_error("set a timeout", e))?;
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_or_timeout(step, "receive", e)),
            };
            if buf.is_empty() {
                return Err(QmpClientError::Closed {
                    path: self.path.clone(),
                    step,
                });
            }
            let (chunk, end) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            if line.len() + chunk.len() > MAX_REPLY_LINE {
                return Err(QmpClientError::TooLong {
                    path: self.path.clone(),
                    step,
                    max: MAX_REPLY_LINE,
                });
            }
            line.extend_from_slice(chunk);
            let n = chunk.len();
            self.reader.consume(n);
            if end {
                return serde_json::from_slice(&line).map_err(|source| QmpClientError::Json {
                    path: self.path.clone(),
                    step,
                    source,
                });
            }
        }
    }

    fn timeout_error(&self, step: &'static str) -> QmpClientError {
        QmpClientError::Timeout {
            path: self.path.clone(),
            step,
            timeout: self.timeout,
        }
    }

    fn io_error(&self, op: &'static str, source: io::Error) -> QmpClientError {
        QmpClientError::Io {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn io_or_timeout(&self, step: &'static str, op: &'static str, e: io::Error) -> QmpClientError {
        if is_timeout(&e) {
            self.timeout_error(step)
        } else {
            self.io_error(op, e)
        }
    }
}

/// A socket timeout surfaces as `EAGAIN` (or `ETIMEDOUT`).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects within `timeout`: a Unix socket's `connect` waits while the
/// server's backlog is full, up to the socket's send timeout.
fn connect(path: &Path, timeout: Duration) -> Result<UnixStream, QmpClientError> {
    let io = |op, source| QmpClientError::Io {
        path: path.to_owned(),
        op,
        source,
    };
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| io("create a socket", e.into()))?;
    rustix::net::sockopt::set_socket_timeout(&fd, Timeout::Send, Some(timeout))
        .map_err(|e| io("set a timeout", e.into()))?;
    let addr = SocketAddrUnix::new(path).map_err(|e| io("connect", e.into()))?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Ok(UnixStream::from(fd)),
        Err(e) if is_timeout(&e.into()) => Err(QmpClientError::Timeout {
            path: path.to_owned(),
            step: "connecting",
            timeout,
        }),
        Err(e) => Err(io("connect", e.into())),
    }
}
