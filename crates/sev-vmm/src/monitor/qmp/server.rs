//! The Unix socket, one client at a time, a writer thread per client,
//! shutdown and events from outside.

use std::collections::VecDeque;
use std::io::{self, Read as _};

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use rustix::net::{SendFlags, Shutdown};
use sev_os::BoundSocket;

use super::dispatch::Session;
use super::types::{timestamp_now, QmpEvent, VersionInfo};
use super::QmpBackend;
use crate::qemu::json::{self, Json, JsonStreamer};

/// How much unsent output a client may leave queued before the server stops
/// reading its requests (events are queued regardless).
const OUTPUT_LIMIT: usize = 16 << 20;
/// How long the server waits for a departing client to take its last
/// replies (after `quit`, or after it closed its sending side).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 << 10;

/// Errors of the server itself (never of a client's input).
#[derive(Debug, thiserror::Error)]
pub enum QmpServerError {
    /// The socket path is taken by something that is not a stale socket.
    #[error("{}: already in use", path.display())]
    AddressInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket could not be bound (the message names the path).
    #[error("cannot listen: {0}")]
    Socket(sev_os::OsError),
    /// Creating the socket failed.
    #[error("cannot listen on {}: {source}", path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Accepting a client failed.
    #[error("accepting a QMP client failed: {0}")]
    Accept(io::Error),
    /// A thread could not be started.
    #[error("cannot start a QMP thread: {0}")]
    Thread(io::Error),
    /// [`QmpServer::serve`] is already running on another thread.
    #[error("the QMP server is already serving")]
    AlreadyServing,
}

/// Why [`QmpServer::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeOutcome {
    /// A client ran `quit` (the reply and `SHUTDOWN` were sent).
    Quit,
    /// [`QmpShutdownHandle::shutdown`] was called.
    Shutdown,
}

/// A QMP server on a Unix socket.
///
/// ```no_run
/// # use std::sync::{Arc, Mutex};
/// # use sev_vmm::monitor::qmp::{QmpBackend, QmpServer};
/// # fn run(vm: Arc<Mutex<dyn QmpBackend>>) -> Result<(), Box<dyn std::error::Error>> {
/// let server = QmpServer::bind("/run/vm/qmp.sock")?;
/// let stop = server.shutdown_handle(); // e.g. for a signal handler thread
/// let events = server.event_sender(); // for the VM's own events
/// server.serve(vm)?;
/// # drop((stop, events)); Ok(()) }
/// ```
#[derive(Debug)]
pub struct QmpServer {
    /// The listening socket (its file is removed on drop only if it is
    /// still ours).
    socket: BoundSocket,
    version: VersionInfo,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    serving: AtomicBool,
    /// A second handle on the listening socket, to wake `accept`.
    listener: UnixListener,
    path: PathBuf,
    /// The connected client, if any.
    current: Mutex<Option<Arc<Connection>>>,
}

impl Shared {
    fn current(&self) -> MutexGuard<'_, Option<Arc<Connection>>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl QmpServer {
    /// Listens on a Unix socket at `path`, mode 0600 from the start (only
    /// its owner can connect, whatever the umask:
    /// [`sev_os::bind_private_socket`]). A stale socket there (nobody
    /// accepting) is replaced; anything else is
    /// [`QmpServerError::AddressInUse`]. The socket file is removed when
    /// the server is dropped.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self, QmpServerError> {
        let path = path.as_ref().to_path_buf();
        let socket = sev_os::bind_private_socket(&path).map_err(|e| match e {
            sev_os::OsError::SocketInUse(path) | sev_os::OsError::NotASocket(path) => {
                QmpServerError::AddressInUse { path }
            }
            e => QmpServerError::Socket(e),
        })?;
        let listener = &socket.listener;
        let wake = match listener.try_clone() {
            Ok(wake) => wake,
            Err(source) => {
                socket.remove();
                return Err(QmpServerError::Bind { path, source });
            }
        };
        Ok(Self {
            socket,
            version: VersionInfo::default(),
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                serving: AtomicBool::new(false),
                listener: wake,
                path,
                current: Mutex::new(None),
            }),
        })
    }

    /// Sets the version the greeting and `query-version` report (default:
    /// [`VersionInfo::default`]).
    #[must_use]
    pub fn with_version(mut self, version: VersionInfo) -> Self {
        self.version = version;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        self.socket.path()
    }

    /// A handle that stops [`QmpServer::serve`] from another thread.
    pub fn shutdown_handle(&self) -> QmpShutdownHandle {
        QmpShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A handle that sends events to the connected client.
    pub fn event_sender(&self) -> EventSender {
        EventSender {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves clients, one at a time, until one of them runs `quit` or the
    /// [`QmpShutdownHandle`] is triggered. A client's input never makes this
    /// fail or panic; a disconnect just lets the next client in.
    #[allow(clippy::needless_pass_by_value)] // taking the Arc is the natural API
    pub fn serve(
        &self,
        backend: Arc<Mutex<dyn QmpBackend>>,
    ) -> Result<ServeOutcome, QmpServerError> {
        if self.shared.serving.swap(true, Ordering::SeqCst) {
            return Err(QmpServerError::AlreadyServing);
        }
        let result = self.serve_loop(&backend);
        self.shared.serving.store(false, Ordering::SeqCst);
        result
    }

    fn serve_loop(
        &self,
        backend: &Arc<Mutex<dyn QmpBackend>>,
    ) -> Result<ServeOutcome, QmpServerError> {
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Ok(ServeOutcome::Shutdown);
            }
            let stream = match self.socket.listener.accept() {
                Ok((stream, _)) => stream,
                Err(_) if self.shared.stop.load(Ordering::SeqCst) => {
                    return Ok(ServeOutcome::Shutdown)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(QmpServerError::Accept(e)),
            };
            match self.serve_client(stream, backend)? {
                ClientEnd::Disconnected => {}
                ClientEnd::Quit => return Ok(ServeOutcome::Quit),
                ClientEnd::Shutdown => return Ok(ServeOutcome::Shutdown),
            }
        }
    }

    fn serve_client(
        &self,
        mut stream: UnixStream,
        backend: &Arc<Mutex<dyn QmpBackend>>,
    ) -> Result<ClientEnd, QmpServerError> {
        let (Ok(control), Ok(out_stream)) = (stream.try_clone(), stream.try_clone()) else {
            // Out of descriptors: drop this client, keep serving.
            return Ok(ClientEnd::Disconnected);
        };
        let conn = Arc::new(Connection {
            out: OutQueue::default(),
            negotiated: AtomicBool::new(false),
            stream: control,
        });
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let writer = {
            let conn = Arc::clone(&conn);
            thread::Builder::new()
                .name("qmp-writer".into())
                .spawn(move || {
                    conn.write_all(&out_stream);
                    drop(done_tx);
                })
                .map_err(QmpServerError::Thread)?
        };
        *self.shared.current() = Some(Arc::clone(&conn));
        // Registered before checking the flag: a concurrent shutdown either
        // sees this connection (and shuts it down) or is seen here.
        let end = if self.shared.stop.load(Ordering::SeqCst) {
            ClientEnd::Shutdown
        } else {
            self.converse(&conn, &mut stream, backend)
        };
        *self.shared.current() = None;
        conn.out.close();
        if end != ClientEnd::Shutdown {
            // Let the client take its last replies (quit's SHUTDOWN event,
            // answers to requests sent before it half-closed the socket).
            let _ = done_rx.recv_timeout(FLUSH_TIMEOUT);
        }
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        Ok(end)
    }

    /// Greets the client and answers it until it leaves or quits.
    fn converse(
        &self,
        conn: &Connection,
        stream: &mut UnixStream,
        backend: &Arc<Mutex<dyn QmpBackend>>,
    ) -> ClientEnd {
        let mut session = Session::new(self.version.clone());
        let Ok(greeting) = session.greeting() else {
            // Unreachable (a version always serializes); without a greeting
            // there is no session.
            return ClientEnd::Disconnected;
        };
        conn.out.push(line(&greeting), true);
        let mut streamer = JsonStreamer::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut messages = Vec::new();
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            streamer.feed(&buf[..n], &mut messages);
            for message in messages.drain(..) {
                if self.shared.stop.load(Ordering::SeqCst) {
                    return ClientEnd::Shutdown;
                }
                let handled = session.handle(message, backend);
                conn.negotiated
                    .store(session.negotiated(), Ordering::SeqCst);
                for json in &handled.out {
                    conn.out.push(line(json), true);
                }
                if handled.quit {
                    return ClientEnd::Quit;
                }
            }
        }
        if self.shared.stop.load(Ordering::SeqCst) {
            ClientEnd::Shutdown
        } else {
            ClientEnd::Disconnected
        }
    }
}

impl Drop for QmpServer {
    fn drop(&mut self) {
        // Remove the socket file if it is still ours.
        self.socket.remove();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientEnd {
    Disconnected,
    Quit,
    Shutdown,
}

/// One message on the wire: QEMU ends each with CRLF.
fn line(json: &Json) -> Vec<u8> {
    let mut text = json::write(json).into_bytes();
    text.extend_from_slice(b"\r\n");
    text
}

/// The connected client as other threads see it.
#[derive(Debug)]
struct Connection {
    out: OutQueue,
    /// In command mode: events are delivered.
    negotiated: AtomicBool,
    /// For shutting the socket down.
    stream: UnixStream,
}

impl Connection {
    /// The writer thread: sends queued messages until the queue is closed
    /// and empty, or the client is gone.
    fn write_all(&self, stream: &UnixStream) {
        while let Some(message) = self.out.pop() {
            let mut rest = &message[..];
            while !rest.is_empty() {
                // MSG_NOSIGNAL: a vanished client must not raise SIGPIPE in
                // a host program that did not ignore it.
                match rustix::net::send(stream, rest, SendFlags::NOSIGNAL) {
                    Ok(0) => {
                        self.out.fail();
                        return;
                    }
                    Ok(n) => rest = &rest[n..],
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => {
                        self.out.fail();
                        return;
                    }
                }
            }
        }
    }
}

/// The output queue of one client (QEMU's monitor output buffer).
#[derive(Debug, Default)]
struct OutQueue {
    state: Mutex<OutState>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct OutState {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    /// No more pushes will come.
    closed: bool,
    /// The client is gone: drop everything.
    failed: bool,
}

impl OutQueue {
    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a message; with `wait`, first waits while too much output is
    /// pending (the reader's back-pressure).
    fn push(&self, message: Vec<u8>, wait: bool) {
        let mut state = self.lock();
        while wait && state.bytes > OUTPUT_LIMIT && !state.failed && !state.closed {
            state = self
                .cond
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.failed || state.closed {
            return;
        }
        state.bytes += message.len();
        state.queue.push_back(message);
        self.cond.notify_all();
    }

    /// The next message, waiting for one; `None` once closed and drained or
    /// failed.
    fn pop(&self) -> Option<Vec<u8>> {
        let mut state = self.lock();
        loop {
            if state.failed {
                return None;
            }
            if let Some(message) = state.queue.pop_front() {
                state.bytes -= message.len();
                self.cond.notify_all();
                return Some(message);
            }
            if state.closed {
                return None;
            }
            state = self
                .cond
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.cond.notify_all();
    }

    fn fail(&self) {
        let mut state = self.lock();
        state.failed = true;
        state.queue.clear();
        state.bytes = 0;
        self.cond.notify_all();
    }
}

/// Stops a running [`QmpServer::serve`] (from any thread, any number of
/// times). The connected client is disconnected without further replies;
/// the server stays stopped.
///
/// It acts at once (wakes a blocked accept, shuts the client's socket,
/// takes a lock): call it from a thread, not from a signal handler. (The
/// firmware daemon's `ServerShutdownHandle` is a flag a signal handler
/// sets and its loop polls: a different mechanism, hence a different type.)
#[derive(Debug, Clone)]
pub struct QmpShutdownHandle {
    shared: Arc<Shared>,
}

impl QmpShutdownHandle {
    /// Makes `serve` return [`ServeOutcome::Shutdown`].
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(conn) = self.shared.current().as_ref() {
            conn.out.fail();
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        }
        // Wake a blocked accept(): on Linux shutting down a listening socket
        // makes accept fail; elsewhere, connect to it.
        if rustix::net::shutdown(&self.shared.listener, Shutdown::Read).is_err() {
            let _ = UnixStream::connect(&self.shared.path);
        }
    }

    /// Whether shutdown was requested.
    pub fn is_shutdown(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }
}

/// Sends asynchronous events to the connected client, if it is in command
/// mode (QEMU delivers none during capabilities negotiation, and keeps none
/// for later clients).
#[derive(Debug, Clone)]
pub struct EventSender {
    shared: Arc<Shared>,
}

impl EventSender {
    /// Queues `event`, stamped now; returns whether a client will get it.
    /// Never blocks on the client.
    pub fn emit(&self, event: &QmpEvent) -> bool {
        let conn = self.shared.current().clone();
        match conn {
            Some(conn) if conn.negotiated.load(Ordering::SeqCst) => {
                match Json::from_serialize(&event.message(timestamp_now())) {
                    Ok(json) => {
                        conn.out.push(line(&json), false);
                        true
                    }
                    // Event data that is not JSON (a map with non-string keys).
                    Err(_) => false,
                }
            }
            _ => false,
        }
    }
}
