//! The firmware server's wire format: pure encoding and decoding, no I/O.
//!
//! Every frame is a 16-byte header followed by a payload; all integers are
//! little-endian (as AMD's command buffers are).
//!
//! ```text
//! header   0x00 magic[4]   "SVFW"
//!          0x04 u16        version (1)
//!          0x06 u16        kind
//!          0x08 u32        payload length (at most MAX_PAYLOAD_LEN)
//!          0x0C u32        reserved, zero
//!
//! HELLO     0x0001  client -> server, first frame, may carry one fd (SCM_RIGHTS)
//!          0x00 u64        guest memory size in bytes (0 = no memory, no fd)
//!          0x08 u32        flags, zero
//!          0x0C u32        reserved, zero
//! COMMAND   0x0002  client -> server
//!          0x00 u32        AMD command id
//!          0x04 u32        command buffer length n (at most MAX_BUFFER_LEN)
//!          0x08 u8[n]      AMD command buffer
//! HELLO_OK  0x8001  server -> client, answer to HELLO
//!          0x00 u32        MAX_BUFFER_LEN of this server
//!          0x04 u32        reserved, zero
//!          0x08 u64        guest memory size accepted
//! RESPONSE  0x8002  server -> client, answer to COMMAND
//!          0x00 u32        AMD status code
//!          0x04 u32        command buffer length n (the request's)
//!          0x08 u8[n]      the command buffer after the command
//! ERROR     0x80FF  server -> client; the server then closes the connection
//!          0x00 u32        error code (ErrorCode)
//!          0x04 u32        message length m (at most MAX_MESSAGE_LEN)
//!          0x08 u8[m]      UTF-8 message
//! ```
//!
//! Decoding never panics and never allocates more than the declared payload
//! length, which is bounded by [`MAX_PAYLOAD_LEN`] before anything is read.
//! `docs/FIRMWARE.md` has the same layouts as tables, with the exchange.

use core::fmt;

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"SVFW";
/// The protocol version this build speaks.
pub const VERSION: u16 = 1;
/// Length of the frame header.
pub const HEADER_LEN: usize = 16;
/// Largest AMD command buffer accepted (one page, the size of the command
/// buffer page the AMD-SP reads).
pub const MAX_BUFFER_LEN: u32 = 4096;
/// Largest ERROR message.
pub const MAX_MESSAGE_LEN: u32 = 1024;
/// Largest payload of any frame.
pub const MAX_PAYLOAD_LEN: u32 = 8 + MAX_BUFFER_LEN;
/// Length of the HELLO and HELLO_OK payloads.
pub const HELLO_LEN: u32 = 16;

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Kind {
    /// Client greeting, with the guest-memory fd.
    Hello = 0x0001,
    /// An AMD command.
    Command = 0x0002,
    /// Server accepts the greeting.
    HelloOk = 0x8001,
    /// Status and command buffer after a command.
    Response = 0x8002,
    /// Protocol error; the connection is then closed.
    Error = 0x80FF,
}

impl Kind {
    /// The kind with wire value `value`.
    pub fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            0x0001 => Self::Hello,
            0x0002 => Self::Command,
            0x8001 => Self::HelloOk,
            0x8002 => Self::Response,
            0x80FF => Self::Error,
            _ => return None,
        })
    }
}

/// Protocol error codes carried by ERROR frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// The frame does not start with [`MAGIC`].
    BadMagic = 1,
    /// The frame's version is not [`VERSION`].
    UnsupportedVersion = 2,
    /// A length exceeds its limit.
    TooLong = 3,
    /// Unknown frame kind.
    UnknownKind = 4,
    /// A payload does not match its kind's layout.
    Malformed = 5,
    /// A frame of a kind not valid at this point (e.g. COMMAND before HELLO).
    Unexpected = 6,
    /// HELLO declared guest memory but carried no fd, or carried more than one.
    MissingFd = 7,
    /// The guest-memory fd is unusable (too small, not readable and writable).
    BadMemory = 8,
    /// The server has too many clients.
    Busy = 9,
    /// The server is shutting down.
    ShuttingDown = 10,
    /// The client sent nothing in time.
    Timeout = 11,
}

impl ErrorCode {
    /// The code with wire value `value`.
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::BadMagic,
            2 => Self::UnsupportedVersion,
            3 => Self::TooLong,
            4 => Self::UnknownKind,
            5 => Self::Malformed,
            6 => Self::Unexpected,
            7 => Self::MissingFd,
            8 => Self::BadMemory,
            9 => Self::Busy,
            10 => Self::ShuttingDown,
            11 => Self::Timeout,
            _ => return None,
        })
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadMagic => "bad magic",
            Self::UnsupportedVersion => "unsupported version",
            Self::TooLong => "too long",
            Self::UnknownKind => "unknown frame kind",
            Self::Malformed => "malformed frame",
            Self::Unexpected => "unexpected frame",
            Self::MissingFd => "missing or extra fd",
            Self::BadMemory => "unusable guest memory",
            Self::Busy => "server busy",
            Self::ShuttingDown => "server shutting down",
            Self::Timeout => "timeout",
        }
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The frame kind.
    pub kind: Kind,
    /// Payload length (already checked against [`MAX_PAYLOAD_LEN`]).
    pub payload_len: u32,
}

/// HELLO: the client's guest memory (the fd travels beside the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Guest memory size in bytes; 0 for a client without memory.
    pub memory_size: u64,
}

/// HELLO_OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloOk {
    /// The server's largest command buffer.
    pub max_buffer_len: u32,
    /// Guest memory size accepted.
    pub memory_size: u64,
}

/// COMMAND: an AMD command id and command buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// AMD command id.
    pub command: u32,
    /// AMD command buffer.
    pub buffer: Vec<u8>,
}

/// RESPONSE: AMD status and the command buffer after the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// AMD status code.
    pub status: u32,
    /// The command buffer as the firmware left it.
    pub buffer: Vec<u8>,
}

/// ERROR: a protocol error; the server closes the connection after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// Raw error code ([`ErrorCode::from_u32`] names the known ones).
    pub code: u32,
    /// Explanation for the operator.
    pub message: String,
}

impl ErrorFrame {
    /// An error frame with a known code; the message is cut to
    /// [`MAX_MESSAGE_LEN`] bytes on a character boundary.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_LEN as usize {
            let mut end = MAX_MESSAGE_LEN as usize;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Self {
            code: code as u32,
            message,
        }
    }
}

/// Any frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// HELLO.
    Hello(Hello),
    /// COMMAND.
    Command(Command),
    /// HELLO_OK.
    HelloOk(HelloOk),
    /// RESPONSE.
    Response(Response),
    /// ERROR.
    Error(ErrorFrame),
}

impl Frame {
    /// The frame's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Hello(_) => Kind::Hello,
            Self::Command(_) => Kind::Command,
            Self::HelloOk(_) => Kind::HelloOk,
            Self::Response(_) => Kind::Response,
            Self::Error(_) => Kind::Error,
        }
    }
}

/// Why bytes do not decode to a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More bytes are needed: at least `needed` in total.
    #[error("incomplete frame: {needed} bytes needed")]
    Incomplete {
        /// Total bytes needed to go on.
        needed: usize,
    },
    /// The bytes are not a valid frame.
    #[error("{}: {detail}", code.name())]
    Invalid {
        /// The protocol error code an ERROR frame would carry.
        code: ErrorCode,
        /// What is wrong.
        detail: String,
    },
}

impl DecodeError {
    fn invalid(code: ErrorCode, detail: impl fmt::Display) -> Self {
        Self::Invalid {
            code,
            detail: detail.to_string(),
        }
    }

    /// The ERROR frame answering this error (`Incomplete` maps to
    /// `Malformed`: a frame cut short by the end of the stream).
    pub fn to_error_frame(&self) -> ErrorFrame {
        match self {
            Self::Incomplete { needed } => ErrorFrame::new(
                ErrorCode::Malformed,
                format!("frame cut short ({needed} bytes needed)"),
            ),
            Self::Invalid { code, detail } => ErrorFrame::new(*code, detail.clone()),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Decodes and checks a frame header: magic, version, kind, reserved word,
/// and the payload length against [`MAX_PAYLOAD_LEN`].
pub fn decode_header(bytes: &[u8; HEADER_LEN]) -> Result<Header, DecodeError> {
    if bytes[..4] != MAGIC {
        return Err(DecodeError::invalid(
            ErrorCode::BadMagic,
            "frame does not start with \"SVFW\"",
        ));
    }
    let version = u16_at(bytes, 4);
    if version != VERSION {
        return Err(DecodeError::invalid(
            ErrorCode::UnsupportedVersion,
            format!("protocol version {version}, this server speaks {VERSION}"),
        ));
    }
    let raw_kind = u16_at(bytes, 6);
    let kind = Kind::from_u16(raw_kind).ok_or_else(|| {
        DecodeError::invalid(
            ErrorCode::UnknownKind,
            format!("frame kind {raw_kind:#06x}"),
        )
    })?;
    let payload_len = u32_at(bytes, 8);
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(DecodeError::invalid(
            ErrorCode::TooLong,
            format!("payload of {payload_len} bytes, at most {MAX_PAYLOAD_LEN}"),
        ));
    }
    if u32_at(bytes, 12) != 0 {
        return Err(DecodeError::invalid(
            ErrorCode::Malformed,
            "reserved header word is not zero",
        ));
    }
    Ok(Header { kind, payload_len })
}

/// Decodes a payload of `header.payload_len` bytes.
pub fn decode_payload(header: &Header, payload: &[u8]) -> Result<Frame, DecodeError> {
    if payload.len() != header.payload_len as usize {
        return Err(DecodeError::invalid(
            ErrorCode::Malformed,
            format!(
                "payload is {} bytes, header says {}",
                payload.len(),
                header.payload_len
            ),
        ));
    }
    let fixed = |len: u32| {
        if payload.len() == len as usize {
            Ok(())
        } else {
            Err(DecodeError::invalid(
                ErrorCode::Malformed,
                format!(
                    "{:?} payload is {} bytes, expected {len}",
                    header.kind,
                    payload.len()
                ),
            ))
        }
    };
    // Variable frames: u32, u32 length, bytes[length].
    let variable = |limit: u32| -> Result<(u32, &[u8]), DecodeError> {
        if payload.len() < 8 {
            return Err(DecodeError::invalid(
                ErrorCode::Malformed,
                format!("{:?} payload shorter than 8 bytes", header.kind),
            ));
        }
        let len = u32_at(payload, 4);
        if len > limit {
            return Err(DecodeError::invalid(
                ErrorCode::TooLong,
                format!("{:?} body of {len} bytes, at most {limit}", header.kind),
            ));
        }
        if payload.len() - 8 != len as usize {
            return Err(DecodeError::invalid(
                ErrorCode::Malformed,
                format!(
                    "{:?} body length {len} does not match the payload ({} bytes)",
                    header.kind,
                    payload.len() - 8
                ),
            ));
        }
        Ok((u32_at(payload, 0), &payload[8..]))
    };
    match header.kind {
        Kind::Hello => {
            fixed(HELLO_LEN)?;
            if u32_at(payload, 8) != 0 || u32_at(payload, 12) != 0 {
                return Err(DecodeError::invalid(
                    ErrorCode::Malformed,
                    "HELLO flags and reserved must be zero",
                ));
            }
            Ok(Frame::Hello(Hello {
                memory_size: u64_at(payload, 0),
            }))
        }
        Kind::HelloOk => {
            fixed(HELLO_LEN)?;
            if u32_at(payload, 4) != 0 {
                return Err(DecodeError::invalid(
                    ErrorCode::Malformed,
                    "HELLO_OK reserved must be zero",
                ));
            }
            Ok(Frame::HelloOk(HelloOk {
                max_buffer_len: u32_at(payload, 0),
                memory_size: u64_at(payload, 8),
            }))
        }
        Kind::Command => {
            let (command, buffer) = variable(MAX_BUFFER_LEN)?;
            Ok(Frame::Command(Command {
                command,
                buffer: buffer.to_vec(),
            }))
        }
        Kind::Response => {
            let (status, buffer) = variable(MAX_BUFFER_LEN)?;
            Ok(Frame::Response(Response {
                status,
                buffer: buffer.to_vec(),
            }))
        }
        Kind::Error => {
            let (code, message) = variable(MAX_MESSAGE_LEN)?;
            Ok(Frame::Error(ErrorFrame {
                code,
                message: String::from_utf8_lossy(message).into_owned(),
            }))
        }
    }
}

/// Decodes one frame from the front of `bytes`; returns it and the number
/// of bytes it took. [`DecodeError::Incomplete`] says how many bytes are
/// needed when `bytes` holds a valid prefix.
pub fn decode(bytes: &[u8]) -> Result<(Frame, usize), DecodeError> {
    let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
        // Reject a wrong magic as early as it shows.
        let n = bytes.len().min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(DecodeError::invalid(
                ErrorCode::BadMagic,
                "frame does not start with \"SVFW\"",
            ));
        }
        return Err(DecodeError::Incomplete { needed: HEADER_LEN });
    };
    let header = decode_header(head)?;
    let total = HEADER_LEN + header.payload_len as usize;
    let Some(payload) = bytes.get(HEADER_LEN..total) else {
        return Err(DecodeError::Incomplete { needed: total });
    };
    Ok((decode_payload(&header, payload)?, total))
}

/// Encodes a frame.
///
/// Lengths beyond the limits are the caller's bug; they are encoded
/// faithfully (and the peer refuses them), never truncated silently, except
/// ERROR messages, which [`ErrorFrame::new`] already bounds.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut variable = |word: u32, body: &[u8]| {
        payload.extend_from_slice(&word.to_le_bytes());
        payload.extend_from_slice(&(body.len() as u32).to_le_bytes());
        payload.extend_from_slice(body);
    };
    match frame {
        Frame::Hello(h) => {
            payload.extend_from_slice(&h.memory_size.to_le_bytes());
            payload.extend_from_slice(&[0u8; 8]);
        }
        Frame::HelloOk(h) => {
            payload.extend_from_slice(&h.max_buffer_len.to_le_bytes());
            payload.extend_from_slice(&[0u8; 4]);
            payload.extend_from_slice(&h.memory_size.to_le_bytes());
        }
        Frame::Command(c) => variable(c.command, &c.buffer),
        Frame::Response(r) => variable(r.status, &r.buffer),
        Frame::Error(e) => variable(e.code, e.message.as_bytes()),
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(frame.kind() as u16).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello {
                memory_size: 0x1234_5678_9000,
            }),
            Frame::Hello(Hello { memory_size: 0 }),
            Frame::HelloOk(HelloOk {
                max_buffer_len: MAX_BUFFER_LEN,
                memory_size: 1 << 30,
            }),
            Frame::Command(Command {
                command: 0x31,
                buffer: vec![7; 0x14],
            }),
            Frame::Command(Command {
                command: 0x0E,
                buffer: vec![],
            }),
            Frame::Command(Command {
                command: 1,
                buffer: vec![0xAB; MAX_BUFFER_LEN as usize],
            }),
            Frame::Response(Response {
                status: 0x17,
                buffer: vec![1, 2, 3],
            }),
            Frame::Error(ErrorFrame::new(ErrorCode::Busy, "too many clients")),
        ]
    }

    #[test]
    fn round_trip() {
        for frame in samples() {
            let bytes = encode(&frame);
            let (back, used) = decode(&bytes).unwrap();
            assert_eq!(back, frame);
            assert_eq!(used, bytes.len());
            // Every strict prefix is incomplete, never an error or a panic.
            for cut in 0..bytes.len() {
                match decode(&bytes[..cut]) {
                    Err(DecodeError::Incomplete { needed }) => assert!(needed > cut),
                    other => panic!("prefix {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn header_layout() {
        let bytes = encode(&Frame::Command(Command {
            command: 0x30,
            buffer: vec![0; 0x24],
        }));
        assert_eq!(&bytes[..4], b"SVFW");
        assert_eq!(&bytes[4..6], &[1, 0]);
        assert_eq!(&bytes[6..8], &[2, 0]);
        assert_eq!(u32_at(&bytes, 8), 8 + 0x24);
        assert_eq!(u32_at(&bytes, 12), 0);
        assert_eq!(u32_at(&bytes, 16), 0x30);
        assert_eq!(u32_at(&bytes, 20), 0x24);
        assert_eq!(bytes.len(), 16 + 8 + 0x24);
    }

    fn code_of(bytes: &[u8]) -> ErrorCode {
        match decode(bytes) {
            Err(DecodeError::Invalid { code, .. }) => code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn refusals() {
        let good = encode(&Frame::Command(Command {
            command: 4,
            buffer: vec![0; 12],
        }));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(code_of(&bad), ErrorCode::BadMagic);
        assert_eq!(code_of(b"GET / HTTP/1.1\r\n"), ErrorCode::BadMagic);
        assert_eq!(code_of(b"GE"), ErrorCode::BadMagic);
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(code_of(&bad), ErrorCode::UnsupportedVersion);
        let mut bad = good.clone();
        bad[6] = 9;
        assert_eq!(code_of(&bad), ErrorCode::UnknownKind);
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(code_of(&bad), ErrorCode::TooLong);
        let mut bad = good.clone();
        bad[12] = 1;
        assert_eq!(code_of(&bad), ErrorCode::Malformed);
        // Inner length disagrees with the payload length.
        let mut bad = good.clone();
        bad[20] = 13;
        assert_eq!(code_of(&bad), ErrorCode::Malformed);
        // Inner length over the buffer limit.
        let mut bad = good.clone();
        bad[20..24].copy_from_slice(&(MAX_BUFFER_LEN + 1).to_le_bytes());
        assert_eq!(code_of(&bad), ErrorCode::TooLong);
        // A HELLO with flags.
        let mut hello = encode(&Frame::Hello(Hello { memory_size: 4096 }));
        hello[24] = 1;
        assert_eq!(code_of(&hello), ErrorCode::Malformed);
        // A HELLO_OK with a reserved word.
        let mut ok = encode(&Frame::HelloOk(HelloOk {
            max_buffer_len: 4096,
            memory_size: 0,
        }));
        ok[23] = 42;
        assert_eq!(code_of(&ok), ErrorCode::Malformed);
        // A HELLO of the wrong size.
        let mut hello = encode(&Frame::Hello(Hello { memory_size: 4096 }));
        hello[8] = 8;
        assert_eq!(code_of(&hello[..24]), ErrorCode::Malformed);
    }

    #[test]
    fn error_messages_are_bounded() {
        let long = "é".repeat(2000);
        let e = ErrorFrame::new(ErrorCode::Malformed, long);
        assert!(e.message.len() <= MAX_MESSAGE_LEN as usize);
        let (back, _) = decode(&encode(&Frame::Error(e.clone()))).unwrap();
        assert_eq!(back, Frame::Error(e));
    }
}
