//! The firmware server: one software AMD-SP shared by many VMs over a Unix
//! socket, one thread per client.
//!
//! * Each client first sends HELLO with its guest memory fd; every command's
//!   `*_paddr` then addresses that memory (pread/pwrite, no mapping).
//! * Commands run one at a time under one lock, as on the real AMD-SP.
//! * Each connection is its own client of the firmware
//!   ([`sev_firmware::ClientId`], see `sev_firmware::client`): its guests
//!   (SEV handles, SNP guest contexts, their ASIDs) and the RMP of its memory
//!   are its own; a command naming another connection's guest gets
//!   `INVALID_GUEST`, as if it did not exist. A connection that closes has
//!   its guests deactivated and decommissioned (as KVM does when a VM's fd
//!   is closed).
//! * [`Server::run`] returns when the [`ServerShutdownHandle`] is triggered
//!   (e.g. by SIGTERM, [`ServerShutdownHandle::on_sigterm`]): it stops accepting,
//!   lets every command in flight finish and its answer go out, closes the
//!   connections, and removes the socket file. Identity changes are written
//!   to the state directory (atomically, synchronously) by the command that
//!   makes them, so there is nothing left to flush and a `kill -9` at any
//!   moment leaves the old or the new identity, never a torn one.
//!
//! Nothing is logged about command buffers or memory, only command names,
//! statuses and connection events.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
use sev_abi::status::FirmwareStatus;
use sev_firmware::{ClientId, Firmware, MemoryError, SystemMemory};
use sev_os::BoundSocket;

use crate::protocol::{
    decode_header, decode_payload, ErrorCode, ErrorFrame, Frame, Header, Hello, HelloOk, Kind,
    Response, HEADER_LEN, HELLO_LEN, MAX_BUFFER_LEN,
};
use crate::wire::{read_frame, write_frame, ReadError};
use sev_sp::FdMemory;

/// Most fds a HELLO may carry before it is refused (more are closed).
const MAX_HELLO_FDS: usize = 4;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most clients connected at once; one more gets ERROR `Busy`.
    pub max_clients: usize,
    /// Time a new client has to send HELLO.
    pub hello_timeout: Duration,
    /// Time a client has to take an answer off the socket.
    pub write_timeout: Duration,
    /// Time graceful shutdown waits for connections to end.
    pub shutdown_grace: Duration,
    /// Print connection events and refused frames to stderr.
    pub verbose: bool,
    /// Who may connect: the owner (0600, the default) or also the socket's
    /// group (0660; see docs/USAGE.md for several users).
    pub access: sev_os::SocketAccess,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_clients: 256,
            hello_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            verbose: false,
            access: sev_os::SocketAccess::Owner,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another server is listening on the socket path.
    #[error("{0}: another firmware server is listening on this socket")]
    InUse(PathBuf),
    /// The path exists and is not a socket.
    #[error("{0}: exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The socket could not be bound (the message names the path).
    #[error(transparent)]
    Bind(sev_os::OsError),
    /// I/O on the socket failed.
    #[error("{path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The SIGTERM handler could not be installed.
    #[error("installing the SIGTERM handler: {0}")]
    Signal(#[source] io::Error),
}

/// Triggers a graceful shutdown of a running [`Server`] (the AMD-SP
/// daemon): a flag its accept loop polls, which a signal handler may set
/// ([`ServerShutdownHandle::on_sigterm`]). The VMM's QMP server has its own
/// handle, which acts at once instead (it wakes the server and cuts its
/// client) and so is no signal handler's business.
#[derive(Debug, Clone)]
pub struct ServerShutdownHandle(Arc<AtomicBool>);

impl ServerShutdownHandle {
    /// Asks the server to stop.
    pub fn shutdown(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a shutdown was asked for.
    pub fn is_shutdown(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Triggers this handle on SIGTERM and SIGINT.
    pub fn on_sigterm(&self) -> Result<(), ServerError> {
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&self.0))
                .map_err(ServerError::Signal)?;
        }
        Ok(())
    }
}

/// What a server did, returned by [`Server::run`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Connections accepted.
    pub connections: u64,
    /// Commands run by the firmware.
    pub commands: u64,
    /// Connections refused or closed for a protocol error.
    pub protocol_errors: u64,
}

struct Shared {
    platform: Mutex<Firmware>,
    config: ServerConfig,
    shutdown: ServerShutdownHandle,
    commands: AtomicU64,
    protocol_errors: AtomicU64,
}

impl Shared {
    fn platform(&self) -> MutexGuard<'_, Firmware> {
        // A panic inside a command would be a firmware bug; the firmware
        // itself promises none. Keep serving the others either way.
        self.platform.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if self.config.verbose {
            eprintln!("sevkit firmware serve: {}", line());
        }
    }
}

struct Connection {
    stream: UnixStream,
    thread: JoinHandle<()>,
}

/// A bound firmware server; [`Server::run`] serves until shut down.
pub struct Server {
    /// The listening socket (its file is removed at exit only if it is
    /// still ours).
    socket: BoundSocket,
    shared: Arc<Shared>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("path", &self.socket.path())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `socket` for `firmware`, at mode 0600 (0660 with
    /// [`ServerConfig::access`] for a group) from the start (never
    /// reachable at a wider mode, whatever the umask:
    /// [`sev_os::bind_socket`]). A stale socket file (no one
    /// listening) is replaced; a live one is [`ServerError::InUse`]; any
    /// other file is [`ServerError::NotASocket`].
    pub fn bind(
        firmware: Firmware,
        socket: &Path,
        config: ServerConfig,
    ) -> Result<Self, ServerError> {
        let bound = sev_os::bind_socket(socket, config.access).map_err(|e| match e {
            sev_os::OsError::SocketInUse(path) => ServerError::InUse(path),
            sev_os::OsError::NotASocket(path) => ServerError::NotASocket(path),
            e => ServerError::Bind(e),
        })?;
        if let Err(source) = bound.listener.set_nonblocking(true) {
            bound.remove();
            return Err(ServerError::Io {
                path: socket.to_owned(),
                source,
            });
        }
        Ok(Self {
            socket: bound,
            shared: Arc::new(Shared {
                platform: Mutex::new(firmware),
                config,
                shutdown: ServerShutdownHandle(Arc::new(AtomicBool::new(false))),
                commands: AtomicU64::new(0),
                protocol_errors: AtomicU64::new(0),
            }),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        self.socket.path()
    }

    /// A handle that stops [`Self::run`].
    pub fn shutdown_handle(&self) -> ServerShutdownHandle {
        self.shared.shutdown.clone()
    }

    /// Serves until the shutdown handle is triggered, then shuts down
    /// gracefully (see the module documentation).
    pub fn run(self) -> Result<ServeSummary, ServerError> {
        let mut connections: Vec<Connection> = Vec::new();
        let mut accepted = 0u64;
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let result = loop {
            if self.shared.shutdown.is_shutdown() {
                break Ok(());
            }
            let mut fds = [PollFd::new(&self.socket.listener, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&tick)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => break Err(e.into()),
            }
            let stream = match self.socket.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                // The peer gave up before we accepted: not our problem.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => break Err(e),
            };
            connections.retain(|c| !c.thread.is_finished());
            accepted += 1;
            let id = accepted;
            if connections.len() >= self.shared.config.max_clients {
                self.shared.protocol_errors.fetch_add(1, Ordering::Relaxed);
                refuse(
                    &stream,
                    &ErrorFrame::new(ErrorCode::Busy, "too many clients"),
                );
                continue;
            }
            match self.spawn(stream, id) {
                Ok(c) => connections.push(c),
                Err(e) => self.shared.log(|| format!("client {id}: not served: {e}")),
            }
        };
        // Graceful shutdown: no new connections; readers see end of stream
        // after the command in flight (if any) has answered.
        for c in &connections {
            let _ = c.stream.shutdown(Shutdown::Read);
        }
        let deadline = Instant::now() + self.shared.config.shutdown_grace;
        while Instant::now() < deadline && connections.iter().any(|c| !c.thread.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (finished, stuck): (Vec<_>, Vec<_>) = connections
            .into_iter()
            .partition(|c| c.thread.is_finished());
        for c in finished {
            let _ = c.thread.join();
        }
        for c in &stuck {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        self.socket.remove();
        result.map_err(|source| ServerError::Io {
            path: self.socket.path().to_owned(),
            source,
        })?;
        let summary = ServeSummary {
            connections: accepted,
            commands: self.shared.commands.load(Ordering::Relaxed),
            protocol_errors: self.shared.protocol_errors.load(Ordering::Relaxed),
        };
        // Stuck connections (a client not reading its answer) are
        // detached: the process is about to exit.
        drop(stuck);
        Ok(summary)
    }

    fn spawn(&self, stream: UnixStream, id: u64) -> io::Result<Connection> {
        stream.set_nonblocking(false)?;
        let reader = stream.try_clone()?;
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::Builder::new()
            .name(format!("sevfw-client-{id}"))
            .spawn(move || serve_connection(&shared, &reader, id))?;
        Ok(Connection { stream, thread })
    }
}

/// Sends an ERROR frame (best effort) and closes.
fn refuse(stream: &UnixStream, error: &ErrorFrame) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = write_frame(&mut &*stream, &Frame::Error(error.clone()));
    let _ = stream.shutdown(Shutdown::Both);
}

/// Guest memory of a connection: its memfd, or none.
enum ClientMemory {
    None,
    Fd(FdMemory),
}

impl SystemMemory for ClientMemory {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        match self {
            Self::Fd(m) => m.read(paddr, buf),
            Self::None => Err(MemoryError {
                paddr,
                len: buf.len() as u64,
            }),
        }
    }

    fn write(&mut self, paddr: u64, data: &[u8]) -> Result<(), MemoryError> {
        match self {
            Self::Fd(m) => m.write(paddr, data),
            Self::None => Err(MemoryError {
                paddr,
                len: data.len() as u64,
            }),
        }
    }
}

fn serve_connection(shared: &Shared, stream: &UnixStream, id: u64) {
    let mut memory = match handshake(shared, stream) {
        Ok(m) => m,
        Err(e) => {
            shared.protocol_errors.fetch_add(1, Ordering::Relaxed);
            shared.log(|| format!("client {id}: refused: {}", e.message));
            refuse(stream, &e);
            return;
        }
    };
    shared.log(|| {
        format!(
            "client {id}: connected ({} bytes of guest memory)",
            match &memory {
                ClientMemory::Fd(m) => m.size(),
                ClientMemory::None => 0,
            }
        )
    });
    loop {
        let frame = match read_frame(&mut &*stream) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(ReadError::Decode(e)) => {
                shared.protocol_errors.fetch_add(1, Ordering::Relaxed);
                let error = e.to_error_frame();
                shared.log(|| format!("client {id}: closed: {}", error.message));
                refuse(stream, &error);
                break;
            }
            Err(ReadError::Io(e)) => {
                shared.log(|| format!("client {id}: closed: {e}"));
                break;
            }
        };
        let Frame::Command(mut command) = frame else {
            shared.protocol_errors.fetch_add(1, Ordering::Relaxed);
            refuse(
                stream,
                &ErrorFrame::new(
                    ErrorCode::Unexpected,
                    format!(
                        "a client sends COMMAND frames after HELLO, not {:?}",
                        frame.kind()
                    ),
                ),
            );
            break;
        };
        let status = run_command(
            shared,
            id,
            command.command,
            &mut command.buffer,
            &mut memory,
        );
        let response = Frame::Response(Response {
            status: status.code(),
            buffer: command.buffer,
        });
        if write_frame(&mut &*stream, &response).is_err() {
            break;
        }
    }
    shared.platform().release_client(ClientId(id));
    shared.log(|| format!("client {id}: disconnected"));
}

/// Receives HELLO (and its fd) and answers HELLO_OK.
fn handshake(shared: &Shared, stream: &UnixStream) -> Result<ClientMemory, ErrorFrame> {
    let io_error = |e: io::Error| {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            ErrorFrame::new(ErrorCode::Timeout, "no HELLO in time")
        } else {
            ErrorFrame::new(ErrorCode::Malformed, format!("reading HELLO: {e}"))
        }
    };
    stream
        .set_read_timeout(Some(shared.config.hello_timeout))
        .map_err(io_error)?;
    stream
        .set_write_timeout(Some(shared.config.write_timeout))
        .map_err(io_error)?;
    if shared.shutdown.is_shutdown() {
        return Err(ErrorFrame::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    let (hello, mut fds, truncated) = receive_hello(stream).map_err(|e| match e {
        HelloError::Io(e) => io_error(e),
        HelloError::Frame(f) => f,
    })?;
    if truncated || fds.len() > 1 {
        return Err(ErrorFrame::new(
            ErrorCode::MissingFd,
            "HELLO carries at most one fd (the guest memory)",
        ));
    }
    let memory = match (hello.memory_size, fds.pop()) {
        (0, None) => ClientMemory::None,
        (0, Some(_)) => {
            return Err(ErrorFrame::new(
                ErrorCode::MissingFd,
                "HELLO carries an fd but declares no memory",
            ))
        }
        (_, None) => {
            return Err(ErrorFrame::new(
                ErrorCode::MissingFd,
                "HELLO declares guest memory but carries no fd (send it with SCM_RIGHTS)",
            ))
        }
        (size, Some(fd)) => ClientMemory::Fd(
            FdMemory::from_fd(fd, size)
                .map_err(|e| ErrorFrame::new(ErrorCode::BadMemory, e.to_string()))?,
        ),
    };
    // Commands may come at any pace from now on.
    stream.set_read_timeout(None).map_err(io_error)?;
    write_frame(
        &mut &*stream,
        &Frame::HelloOk(HelloOk {
            max_buffer_len: MAX_BUFFER_LEN,
            memory_size: hello.memory_size,
        }),
    )
    .map_err(io_error)?;
    Ok(memory)
}

fn run_command(
    shared: &Shared,
    id: u64,
    command: u32,
    buffer: &mut [u8],
    memory: &mut ClientMemory,
) -> FirmwareStatus {
    let mut platform = shared.platform();
    let status = platform.execute_for(ClientId(id), command, buffer, memory);
    shared.commands.fetch_add(1, Ordering::Relaxed);
    if status == FirmwareStatus::HWERROR_PLATFORM {
        // A state-file write failed: the operator must know, verbose or not.
        let why = platform.last_error().unwrap_or("no detail");
        eprintln!("sevkit firmware serve: client {id}: HWERROR_PLATFORM: {why}");
    }
    drop(platform);
    if shared.config.verbose && status != FirmwareStatus::SUCCESS {
        let name = sev_abi::commands::command_name(command).unwrap_or("unknown command");
        shared.log(|| {
            format!(
                "client {id}: {name} ({command:#x}) -> {} ({:#x})",
                status.name().unwrap_or("?"),
                status.code()
            )
        });
    }
    status
}

/// Why HELLO could not be received.
enum HelloError {
    Io(io::Error),
    Frame(ErrorFrame),
}

/// Reads exactly one HELLO frame with `recvmsg`, collecting the fds that
/// came with it; returns the frame, the fds, and whether some were cut off.
fn receive_hello(stream: &UnixStream) -> Result<(Hello, Vec<OwnedFd>, bool), HelloError> {
    let mut bytes = [0u8; HEADER_LEN + HELLO_LEN as usize];
    let mut got = 0;
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut truncated = false;
    let mut header: Option<Header> = None;
    while got < bytes.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_HELLO_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = match rustix::net::recvmsg(
            stream,
            &mut [IoSliceMut::new(&mut bytes[got..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(HelloError::Io(e.into())),
        };
        truncated |= msg.flags.contains(ReturnFlags::CTRUNC);
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if msg.bytes == 0 {
            return Err(HelloError::Frame(ErrorFrame::new(
                ErrorCode::Malformed,
                "connection closed inside HELLO",
            )));
        }
        got += msg.bytes;
        if header.is_none() && got >= HEADER_LEN {
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(&bytes[..HEADER_LEN]);
            let h = decode_header(&head).map_err(|e| HelloError::Frame(e.to_error_frame()))?;
            if h.kind != Kind::Hello {
                return Err(HelloError::Frame(ErrorFrame::new(
                    ErrorCode::Unexpected,
                    format!("the first frame must be HELLO, not {:?}", h.kind),
                )));
            }
            header = Some(h);
        }
    }
    let Some(header) = header else {
        return Err(HelloError::Frame(ErrorFrame::new(
            ErrorCode::Malformed,
            "no HELLO header",
        )));
    };
    let Frame::Hello(hello) = decode_payload(&header, &bytes[HEADER_LEN..])
        .map_err(|e| HelloError::Frame(e.to_error_frame()))?
    else {
        return Err(HelloError::Frame(ErrorFrame::new(
            ErrorCode::Unexpected,
            "the first frame must be HELLO",
        )));
    };
    Ok((hello, fds, truncated))
}
