//! The client side of the firmware server: the seam implementation a VMM
//! uses when the AMD-SP lives in `sevkit firmware serve`.

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use sev_abi::status::FirmwareStatus;

use crate::protocol::{self, Command, ErrorCode, Frame, Hello, MAX_BUFFER_LEN};
use crate::wire::{read_frame, write_frame, ReadError};
use sev_sp::{AmdSp, FdMemory, SpError};

/// A connection to the firmware server, bound to one guest memory.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    memory_size: u64,
    max_buffer_len: u32,
}

impl From<ReadError> for SpError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => Self::Closed,
            ReadError::Io(e) => Self::Io(e),
            ReadError::Decode(e) => Self::Protocol(e.to_string()),
        }
    }
}

impl Client {
    /// Connects to the server at `socket` and hands it `memory` (an fd of at
    /// least `memory_size` bytes, normally a memfd from
    /// [`FdMemory::memfd`](sev_sp::FdMemory::memfd)); `None` connects without
    /// guest memory (every `*_paddr` then fails with `INVALID_ADDRESS`).
    ///
    /// `timeout` bounds every later read and write (a server that does not
    /// answer gives [`SpError::Io`] with `WouldBlock`/`TimedOut`, never a
    /// hang); `None` waits forever.
    pub fn connect(
        socket: &Path,
        memory: Option<(BorrowedFd<'_>, u64)>,
        timeout: Option<Duration>,
    ) -> Result<Self, SpError> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        let memory_size = memory.map_or(0, |(_, size)| size);
        let hello = protocol::encode(&Frame::Hello(Hello { memory_size }));
        match memory {
            Some((fd, _)) => send_with_fd(&stream, &hello, fd)?,
            None => (&stream).write_all(&hello)?,
        }
        let answer = read_frame(&mut &stream)?;
        match answer {
            Some(Frame::HelloOk(ok)) if ok.memory_size == memory_size => Ok(Self {
                stream,
                memory_size,
                max_buffer_len: ok.max_buffer_len.min(MAX_BUFFER_LEN),
            }),
            Some(Frame::Error(e)) => Err(SpError::Server {
                code: e.code,
                name: ErrorCode::from_u32(e.code).map_or("unknown error", ErrorCode::name),
                message: e.message,
            }),
            None => Err(SpError::Closed),
            Some(other) => Err(SpError::Protocol(format!(
                "expected HELLO_OK, got {:?}",
                other.kind()
            ))),
        }
    }

    /// Connects with the guest memory `memory`.
    pub fn connect_with_memory(
        socket: &Path,
        memory: &FdMemory,
        timeout: Option<Duration>,
    ) -> Result<Self, SpError> {
        Self::connect(socket, Some((memory.as_fd(), memory.size())), timeout)
    }

    /// The guest memory size the server accepted.
    pub fn memory_size(&self) -> u64 {
        self.memory_size
    }

    /// The underlying socket (e.g. to change its timeouts).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

/// Sends `bytes` with `fd` attached (SCM_RIGHTS) to the first byte.
fn send_with_fd(stream: &UnixStream, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small for one fd"));
    }
    let sent = loop {
        match rustix::net::sendmsg(
            stream,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    // The fd went with the first byte; the rest (if any) follows plainly.
    let mut rest = stream;
    rest.write_all(&bytes[sent..])
}

impl AmdSp for Client {
    fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError> {
        if buffer.len() > self.max_buffer_len as usize {
            return Err(SpError::BufferTooLong {
                len: buffer.len(),
                max: self.max_buffer_len,
            });
        }
        write_frame(
            &mut &self.stream,
            &Frame::Command(Command {
                command,
                buffer: buffer.to_vec(),
            }),
        )?;
        match read_frame(&mut &self.stream)? {
            Some(Frame::Response(r)) if r.buffer.len() == buffer.len() => {
                buffer.copy_from_slice(&r.buffer);
                Ok(FirmwareStatus::new(r.status))
            }
            Some(Frame::Response(r)) => Err(SpError::Protocol(format!(
                "response buffer of {} bytes to a request of {}",
                r.buffer.len(),
                buffer.len()
            ))),
            Some(Frame::Error(e)) => Err(SpError::Server {
                code: e.code,
                name: ErrorCode::from_u32(e.code).map_or("unknown error", ErrorCode::name),
                message: e.message,
            }),
            Some(other) => Err(SpError::Protocol(format!(
                "expected RESPONSE, got {:?}",
                other.kind()
            ))),
            None => Err(SpError::Closed),
        }
    }
}
