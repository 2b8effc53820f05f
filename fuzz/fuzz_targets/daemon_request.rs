//! The firmware server's frame decoder on arbitrary bytes: never panics,
//! never reads past the declared (bounded) length, and whatever decodes
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_firmware_server::protocol::{
    decode, decode_header, decode_payload, encode, DecodeError, HEADER_LEN, MAX_PAYLOAD_LEN,
};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok((frame, used)) => {
            assert!(used <= data.len());
            assert!(used <= HEADER_LEN + MAX_PAYLOAD_LEN as usize);
            // Canonical encoding: the ERROR message is the only field that
            // may be re-encoded differently (lossy UTF-8).
            let again = encode(&frame);
            if !matches!(frame, sev_firmware_server::protocol::Frame::Error(_)) {
                assert_eq!(&again[..], &data[..used]);
            }
            assert_eq!(decode(&again).map(|(f, _)| f), Ok(frame));
        }
        Err(DecodeError::Incomplete { needed }) => {
            assert!(needed > data.len());
            assert!(needed <= HEADER_LEN + MAX_PAYLOAD_LEN as usize);
        }
        Err(DecodeError::Invalid { .. }) => {}
    }
    // The server's path: header first, then exactly the payload it declares.
    if let Some(head) = data.first_chunk::<HEADER_LEN>() {
        if let Ok(header) = decode_header(head) {
            let rest = &data[HEADER_LEN..];
            let n = rest.len().min(header.payload_len as usize);
            let _ = decode_payload(&header, &rest[..n]);
        }
    }
});
