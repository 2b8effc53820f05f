//! AES-256-GCM sealing and opening of SNP guest message pages
//! (SNP_GUEST_REQUEST, reference §2.11).
//!
//! A message page is the 0x60-byte [`GuestMessageHeader`] followed by
//! `msg_sz` bytes of ciphertext. The key is VMPCK\[`msg_vmpck`\] (32 bytes),
//! the 12-byte IV is `msg_seqno` little-endian followed by four zero bytes,
//! the AAD is header bytes `0x30..0x60`, and the 16-byte tag is stored in
//! `auth_tag[0..16]` (the rest of `auth_tag` is zero).
//!
//! This is the one implementation shared by the firmware model (which opens
//! requests and seals responses) and the guest library (which seals requests
//! and opens responses). Neither function checks header fields other than
//! the lengths: the firmware and the guest apply their own rules (and status
//! codes) to the header.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use sev_abi::guest_msg::{GuestMessageHeader, GUEST_MSG_HEADER_LEN, GUEST_MSG_TAG_LEN};
use zerocopy::little_endian::U16;
use zerocopy::IntoBytes;
use zeroize::Zeroizing;

use crate::{CryptoError, Result};

/// Size of a guest message page.
pub const GUEST_MSG_PAGE_LEN: usize = 4096;
/// Largest payload that fits in a page after the header.
pub const MAX_PAYLOAD_LEN: usize = GUEST_MSG_PAGE_LEN - GUEST_MSG_HEADER_LEN;
/// Length of a VMPCK.
pub const VMPCK_LEN: usize = 32;

fn cipher(vmpck: &[u8; VMPCK_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(vmpck.into())
}

/// Encrypts `payload` under `vmpck` and returns the message page: `header`
/// with `msg_sz` set to the payload length and the tag filled in, then the
/// ciphertext, then zeros to the end of the page.
///
/// The IV is taken from `header.msg_seqno`; the caller is responsible for
/// never sealing two different payloads with the same key and sequence
/// number. Fails with [`CryptoError::BadLength`] when the payload does not
/// fit in a page.
pub fn seal_message(
    vmpck: &[u8; VMPCK_LEN],
    header: &GuestMessageHeader,
    payload: &[u8],
) -> Result<[u8; GUEST_MSG_PAGE_LEN]> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(CryptoError::BadLength {
            what: "guest message payload",
            expected: MAX_PAYLOAD_LEN,
            actual: payload.len(),
        });
    }
    let mut header = *header;
    // MAX_PAYLOAD_LEN < u16::MAX, so the length fits.
    header.msg_sz = U16::new(payload.len() as u16);
    header.auth_tag = [0; 32];

    let mut page = [0u8; GUEST_MSG_PAGE_LEN];
    let (head, body) = page.split_at_mut(GUEST_MSG_HEADER_LEN);
    let body = &mut body[..payload.len()];
    body.copy_from_slice(payload);
    let iv = header.iv();
    let tag = cipher(vmpck)
        .encrypt_in_place_detached(Nonce::from_slice(&iv), header.aad(), body)
        .map_err(|_| CryptoError::BadLength {
            what: "guest message payload",
            expected: MAX_PAYLOAD_LEN,
            actual: payload.len(),
        })?;
    let mut tag_bytes = [0u8; GUEST_MSG_TAG_LEN];
    tag_bytes.copy_from_slice(&tag);
    header.set_tag(&tag_bytes);
    head.copy_from_slice(header.as_bytes());
    Ok(page)
}

/// Opens a message page: parses the header, takes `msg_sz` bytes of
/// ciphertext after it, checks the tag over those bytes and the AAD, and
/// returns the header and the plaintext (zeroized on drop).
///
/// `page` may be shorter than 4096 bytes (it must hold the header and the
/// payload) but not longer. Errors: [`CryptoError::BadLength`] when the page
/// is too long or too short for the header or for `msg_sz`, and
/// [`CryptoError::BadMac`] when the tag does not verify (wrong key, wrong
/// sequence number, tampered header, ciphertext or tag). Bytes 16..32 of
/// `auth_tag` are not authenticated by AES-GCM and are ignored.
pub fn open_message(
    vmpck: &[u8; VMPCK_LEN],
    page: &[u8],
) -> Result<(GuestMessageHeader, Zeroizing<Vec<u8>>)> {
    if page.len() > GUEST_MSG_PAGE_LEN {
        return Err(CryptoError::BadLength {
            what: "guest message page",
            expected: GUEST_MSG_PAGE_LEN,
            actual: page.len(),
        });
    }
    let (header, rest) =
        GuestMessageHeader::from_prefix(page).map_err(|_| CryptoError::BadLength {
            what: "guest message header",
            expected: GUEST_MSG_HEADER_LEN,
            actual: page.len(),
        })?;
    let size = usize::from(header.msg_sz.get());
    let ciphertext = rest.get(..size).ok_or(CryptoError::BadLength {
        what: "guest message payload",
        expected: size,
        actual: rest.len(),
    })?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    let iv = header.iv();
    let tag = header.tag();
    cipher(vmpck)
        .decrypt_in_place_detached(
            Nonce::from_slice(&iv),
            header.aad(),
            plaintext.as_mut_slice(),
            Tag::from_slice(&tag),
        )
        .map_err(|_| CryptoError::BadMac)?;
    Ok((header, plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev_abi::guest_msg::MessageType;

    const KEY: [u8; 32] = [0x42; 32];

    fn header(seqno: u64) -> GuestMessageHeader {
        GuestMessageHeader::new(MessageType::ReportReq, 1, 0, 0, seqno)
    }

    #[test]
    fn seal_open_round_trip() {
        let payload: Vec<u8> = (0..0x60u8).collect();
        let page = seal_message(&KEY, &header(1), &payload).unwrap();
        assert_eq!(&page[0x36..0x38], &[0x60, 0]);
        assert_ne!(&page[0x60..0xC0], &payload[..]);
        assert!(page[0x10..0x20].iter().all(|b| *b == 0));
        assert!(page[0xC0..].iter().all(|b| *b == 0));
        let (h, pt) = open_message(&KEY, &page).unwrap();
        assert_eq!(h.msg_seqno.get(), 1);
        assert_eq!(h.msg_sz.get(), 0x60);
        assert_eq!(&pt[..], &payload[..]);
        // A page trimmed to header + payload opens too.
        let (_, pt) = open_message(&KEY, &page[..0xC0]).unwrap();
        assert_eq!(&pt[..], &payload[..]);
    }

    #[test]
    fn known_answer_iv_and_aad() {
        // Independent AES-256-GCM with the documented IV and AAD.
        let payload = [7u8; 32];
        let page = seal_message(&KEY, &header(0x0102_0304), &payload).unwrap();
        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&0x0102_0304u64.to_le_bytes());
        let mut buf = payload;
        let tag = Aes256Gcm::new((&KEY).into())
            .encrypt_in_place_detached(Nonce::from_slice(&iv), &page[0x30..0x60], &mut buf)
            .unwrap();
        assert_eq!(&page[0x60..0x80], &buf);
        assert_eq!(&page[..16], tag.as_slice());
    }

    #[test]
    fn tamper_is_refused() {
        let page = seal_message(&KEY, &header(3), &[1; 48]).unwrap();
        assert!(matches!(
            open_message(&[0x43; 32], &page),
            Err(CryptoError::BadMac)
        ));
        for offset in [0, 15, 0x20, 0x30, 0x34, 0x3C, 0x5F, 0x60, 0x8F] {
            let mut bad = page;
            bad[offset] ^= 1;
            assert!(open_message(&KEY, &bad).is_err(), "offset {offset:#x}");
        }
        // Unauthenticated: reserved tag bytes, reserved0, bytes after msg_sz.
        for offset in [16, 31, 0x28, 0x90, 4095] {
            let mut ok = page;
            ok[offset] ^= 1;
            assert!(open_message(&KEY, &ok).is_ok(), "offset {offset:#x}");
        }
    }

    #[test]
    fn lengths() {
        assert!(seal_message(&KEY, &header(1), &[0; MAX_PAYLOAD_LEN]).is_ok());
        assert!(matches!(
            seal_message(&KEY, &header(1), &[0; MAX_PAYLOAD_LEN + 1]),
            Err(CryptoError::BadLength { .. })
        ));
        let page = seal_message(&KEY, &header(1), &[0; 64]).unwrap();
        assert!(open_message(&KEY, &page[..0x5F]).is_err());
        assert!(open_message(&KEY, &page[..0x9F]).is_err());
        assert!(open_message(&KEY, &[]).is_err());
        let mut long = page.to_vec();
        long.push(0);
        assert!(open_message(&KEY, &long).is_err());
        let mut huge = page;
        huge[0x36..0x38].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert!(open_message(&KEY, &huge).is_err());
        // Empty payload: still authenticated.
        let empty = seal_message(&KEY, &header(9), &[]).unwrap();
        assert!(open_message(&KEY, &empty).unwrap().1.is_empty());
    }
}
