//! Frame I/O over a byte stream: the only place frames meet sockets.

use std::io::{self, Read, Write};

use crate::protocol::{decode_header, decode_payload, encode, DecodeError, Frame, HEADER_LEN};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The stream failed or timed out (or ended inside a frame).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Reads one frame; `Ok(None)` at a clean end of stream (between frames).
pub(crate) fn read_frame(reader: &mut impl Read) -> Result<Option<Frame>, ReadError> {
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match reader.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let header = decode_header(&head)?;
    // Bounded by MAX_PAYLOAD_LEN in decode_header.
    let mut payload = vec![0u8; header.payload_len as usize];
    reader.read_exact(&mut payload)?;
    Ok(Some(decode_payload(&header, &payload)?))
}

/// Writes one frame.
pub(crate) fn write_frame(writer: &mut impl Write, frame: &Frame) -> io::Result<()> {
    writer.write_all(&encode(frame))?;
    writer.flush()
}
