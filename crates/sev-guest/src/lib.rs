//! # sev-guest
//!
//! The guest side of SEV-SNP guest messages (SNP_GUEST_REQUEST, reference
//! §2.11 and §2.14): builds encrypted request pages from the secrets page's
//! VMPCK and opens the firmware's response pages. No I/O: the caller moves
//! the pages (through the GHCB, a socket, or straight into the software
//! firmware in tests).
//!
//! Sequence numbers follow Linux (`coco/sev/core.c`): the secrets page keeps
//! the message count of each VMPCK; a request uses `count + 1`, the
//! firmware answers with `count + 2`, and the count advances by two after
//! each completed exchange. Sequence number 0 is never used.
//!
//! AES-GCM must never see the same key and IV twice. So after a request page
//! has been handed out ([`GuestChannel::request_report`] and friends), the
//! channel refuses to build another until the exchange completes
//! ([`GuestChannel::open_report_response`]...). If the exchange fails after
//! the page was exposed (the host reports an error, the firmware refuses),
//! the guest must either resend the **identical** ciphertext
//! ([`GuestChannel::pending_request`]) or give the key up
//! ([`GuestChannel::wipe`]). A response that does not verify (wrong tag,
//! sequence number, type or version) wipes the key, as Linux does, since
//! the firmware may have consumed the sequence number.
//!
//! ```
//! use sev_abi::guest_msg::KeySelect;
//! use sev_abi::secrets_page::SecretsPage;
//! use sev_guest::GuestChannel;
//! use zerocopy::FromZeros;
//!
//! let mut secrets = SecretsPage::new_zeroed();
//! secrets.vmpck[0] = [7; 32];
//! let mut channel = GuestChannel::from_secrets_page(&secrets, 0).unwrap();
//! let page = channel.request_report([1; 64], 0, KeySelect::Vcek).unwrap();
//! assert_eq!(u64::from_le_bytes(page[0x20..0x28].try_into().unwrap()), 1);
//! // ... hand `page` to the firmware, then channel.open_report_response(&response)
//! ```

use core::fmt;

use sev_abi::guest_msg::{
    GuestMessageHeader, KeyRequest, KeyRequestV2, KeyResponse, KeySelect, MessageType,
    ReportRequest, ReportResponseHeader, KEY_RESPONSE_LEN, MAX_VMPCK, REPORT_RESPONSE_HEADER_LEN,
};
use sev_abi::report::{AttestationReport, REPORT_LEN};
use sev_abi::secrets_page::SecretsPage;
use sev_crypto::guest_msg::{open_message, seal_message, GUEST_MSG_PAGE_LEN};
use sev_crypto::CryptoError;
use zerocopy::IntoBytes;
use zeroize::{Zeroize, Zeroizing};

/// Size of a message page.
pub const PAGE_LEN: usize = GUEST_MSG_PAGE_LEN;
/// Message version used for report requests.
pub const REPORT_MSG_VERSION: u8 = 1;
/// Message version of a version-1 key request.
pub const KEY_MSG_VERSION_V1: u8 = 1;
/// Message version of a version-2 key request (with the launch mitigation
/// vector).
pub const KEY_MSG_VERSION_V2: u8 = 2;

/// Why a request could not be built or a response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestError {
    /// The VMPCK index is above 3.
    #[error("VMPCK index {0} is out of range (0..=3)")]
    BadVmpckIndex(u8),
    /// The key was wiped (after a failed exchange); no more messages.
    #[error("the VMPCK has been wiped; no further messages can be sent with it")]
    KeyWiped,
    /// A request is outstanding: finish it, resend it, or wipe the key.
    #[error("a request is outstanding; resend it identically or wipe the key")]
    RequestOutstanding,
    /// No request is outstanding, so there is no response to open.
    #[error("no request is outstanding")]
    NoRequestOutstanding,
    /// The sequence numbers are exhausted.
    #[error("message sequence numbers exhausted")]
    SequenceExhausted,
    /// The payload does not fit in a message page.
    #[error("payload of {0} bytes does not fit in a message page")]
    PayloadTooLarge(usize),
    /// The response page failed authentication (the key is wiped).
    #[error("response failed authentication: {0}")]
    Crypto(CryptoError),
    /// The response header does not answer the request (the key is wiped).
    #[error("response {field} is {actual:#x}, expected {expected:#x}")]
    ResponseMismatch {
        /// The header field.
        field: &'static str,
        /// What the request implies.
        expected: u64,
        /// What the response holds.
        actual: u64,
    },
    /// The response payload is malformed.
    #[error("malformed response payload: {0}")]
    Malformed(String),
    /// The firmware answered with a non-zero status in the payload.
    #[error("firmware refused the request: status {0:#x}")]
    FirmwareStatus(u32),
}

/// Result type of this crate.
pub type Result<T, E = GuestError> = core::result::Result<T, E>;

struct Pending {
    page: [u8; PAGE_LEN],
    msg_type: MessageType,
    msg_version: u8,
    seqno: u64,
}

/// One VMPCK's message channel: the key, its index and the message count.
///
/// `Debug` never prints the key; the key is zeroized on drop and on
/// [`GuestChannel::wipe`].
pub struct GuestChannel {
    vmpck: Zeroizing<[u8; 32]>,
    index: u8,
    count: u64,
    wiped: bool,
    pending: Option<Pending>,
}

impl fmt::Debug for GuestChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestChannel")
            .field("vmpck", &"<redacted>")
            .field("index", &self.index)
            .field("count", &self.count)
            .field("wiped", &self.wiped)
            .field("pending", &self.pending.as_ref().map(|p| p.seqno))
            .finish()
    }
}

impl GuestChannel {
    /// A channel for VMPCK `vmpck_index` of the secrets page, starting from
    /// the message count kept in the page's guest OS area (64-bit, with
    /// edk2's high half).
    pub fn from_secrets_page(secrets: &SecretsPage, vmpck_index: u8) -> Result<Self> {
        let index = usize::from(vmpck_index);
        let (Some(key), Some(count)) = (secrets.vmpck(index), secrets.msg_seqno_u64(index)) else {
            return Err(GuestError::BadVmpckIndex(vmpck_index));
        };
        Self::new(key, vmpck_index, count)
    }

    /// A channel from a key, its index and the current message count (the
    /// sequence number of the last response, 0 before the first message).
    pub fn new(vmpck: &[u8; 32], vmpck_index: u8, count: u64) -> Result<Self> {
        if vmpck_index > MAX_VMPCK {
            return Err(GuestError::BadVmpckIndex(vmpck_index));
        }
        Ok(Self {
            vmpck: Zeroizing::new(*vmpck),
            index: vmpck_index,
            count,
            wiped: false,
            pending: None,
        })
    }

    /// The VMPCK index.
    pub fn vmpck_index(&self) -> u8 {
        self.index
    }

    /// The message count (what the secrets page should hold).
    pub fn message_count(&self) -> u64 {
        self.count
    }

    /// Writes the message count back into the secrets page's guest OS area.
    pub fn store_count(&self, secrets: &mut SecretsPage) {
        secrets.set_msg_seqno_u64(usize::from(self.index), self.count);
    }

    /// True once the key has been wiped.
    pub fn is_wiped(&self) -> bool {
        self.wiped
    }

    /// The outstanding request page, to resend **identically** after a
    /// failed exchange (host busy, firmware refusal).
    pub fn pending_request(&self) -> Option<&[u8; PAGE_LEN]> {
        self.pending.as_ref().map(|p| &p.page)
    }

    /// Gives the key up: zeroizes it and drops any outstanding request.
    /// Afterwards every request fails with [`GuestError::KeyWiped`]; this
    /// is the alternative to resending an exposed request.
    pub fn wipe(&mut self) {
        self.vmpck.zeroize();
        self.wiped = true;
        self.pending = None;
    }

    /// Also wipes the key in the secrets page (what Linux does).
    pub fn wipe_in(&mut self, secrets: &mut SecretsPage) {
        self.wipe();
        secrets.wipe_vmpck(usize::from(self.index));
    }

    /// Seals a request of any type with the next sequence number and
    /// remembers it as outstanding.
    pub fn request(
        &mut self,
        msg_type: MessageType,
        msg_version: u8,
        payload: &[u8],
    ) -> Result<[u8; PAGE_LEN]> {
        if self.wiped {
            return Err(GuestError::KeyWiped);
        }
        if self.pending.is_some() {
            return Err(GuestError::RequestOutstanding);
        }
        // Request count + 1, response count + 2: both must exist.
        let seqno = self
            .count
            .checked_add(1)
            .filter(|s| s.checked_add(1).is_some())
            .ok_or(GuestError::SequenceExhausted)?;
        let header = GuestMessageHeader::new(msg_type, msg_version, 0, self.index, seqno);
        let page = seal_message(&self.vmpck, &header, payload)
            .map_err(|_| GuestError::PayloadTooLarge(payload.len()))?;
        self.pending = Some(Pending {
            page,
            msg_type,
            msg_version,
            seqno,
        });
        Ok(page)
    }

    /// Builds an MSG_REPORT_REQ page.
    pub fn request_report(
        &mut self,
        report_data: [u8; 64],
        vmpl: u32,
        key_select: KeySelect,
    ) -> Result<[u8; PAGE_LEN]> {
        let req = ReportRequest::new(report_data, vmpl, key_select);
        self.request(MessageType::ReportReq, REPORT_MSG_VERSION, req.as_bytes())
    }

    /// Builds an MSG_KEY_REQ version-1 page.
    pub fn request_key(&mut self, req: &KeyRequest) -> Result<[u8; PAGE_LEN]> {
        self.request(MessageType::KeyReq, KEY_MSG_VERSION_V1, req.as_bytes())
    }

    /// Builds an MSG_KEY_REQ version-2 page (the 0x28-byte payload padded
    /// with zeros to 0x30, a multiple of the AES block).
    pub fn request_key_v2(&mut self, req: &KeyRequestV2) -> Result<[u8; PAGE_LEN]> {
        let mut payload = [0u8; 0x30];
        payload[..0x28].copy_from_slice(req.as_bytes());
        self.request(MessageType::KeyReq, KEY_MSG_VERSION_V2, &payload)
    }

    /// Opens the response to the outstanding request: checks the tag,
    /// `msg_seqno == request + 1`, `msg_type == request + 1`, the same
    /// message version and VMPCK index. On success the count advances by
    /// two; on failure the key is wiped. Returns the plaintext payload.
    pub fn open_response(&mut self, page: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.wiped {
            return Err(GuestError::KeyWiped);
        }
        let Some(pending) = self.pending.as_ref() else {
            return Err(GuestError::NoRequestOutstanding);
        };
        let expected_type = pending.msg_type.as_u8().wrapping_add(1);
        let expected_seqno = pending.seqno.wrapping_add(1);
        let expected_version = pending.msg_version;
        let checked = open_message(&self.vmpck, page)
            .map_err(GuestError::Crypto)
            .and_then(|(header, payload)| {
                let checks = [
                    ("msg_seqno", expected_seqno, header.msg_seqno.get()),
                    (
                        "msg_type",
                        u64::from(expected_type),
                        u64::from(header.msg_type),
                    ),
                    (
                        "msg_version",
                        u64::from(expected_version),
                        u64::from(header.msg_version),
                    ),
                    (
                        "msg_vmpck",
                        u64::from(self.index),
                        u64::from(header.msg_vmpck),
                    ),
                ];
                for (field, expected, actual) in checks {
                    if expected != actual {
                        return Err(GuestError::ResponseMismatch {
                            field,
                            expected,
                            actual,
                        });
                    }
                }
                Ok(payload)
            });
        match checked {
            Ok(payload) => {
                self.count = expected_seqno;
                self.pending = None;
                Ok(payload)
            }
            Err(e) => {
                self.wipe();
                Err(e)
            }
        }
    }

    /// Opens an MSG_REPORT_RSP page and returns the report. A non-zero
    /// payload status is [`GuestError::FirmwareStatus`] (the exchange
    /// itself completed, so the count still advances).
    pub fn open_report_response(&mut self, page: &[u8]) -> Result<AttestationReport> {
        let payload = self.open_response(page)?;
        parse_report_payload(&payload)
    }

    /// Opens an MSG_KEY_RSP page and returns the derived key.
    pub fn open_key_response(&mut self, page: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let payload = self.open_response(page)?;
        parse_key_payload(&payload)
    }
}

/// Parses a decrypted MSG_REPORT_RSP payload: status, report size and a
/// report of a supported version.
pub fn parse_report_payload(payload: &[u8]) -> Result<AttestationReport> {
    let header_bytes = payload
        .get(..REPORT_RESPONSE_HEADER_LEN)
        .ok_or_else(|| GuestError::Malformed("MSG_REPORT_RSP shorter than its header".into()))?;
    let header = ReportResponseHeader::from_bytes(header_bytes)
        .map_err(|e| GuestError::Malformed(e.to_string()))?;
    if header.status.get() != 0 {
        return Err(GuestError::FirmwareStatus(header.status.get()));
    }
    if header.report_size.get() as usize != REPORT_LEN {
        return Err(GuestError::Malformed(format!(
            "report_size {:#x}, expected {REPORT_LEN:#x}",
            header.report_size.get()
        )));
    }
    let (_, report) = ReportResponseHeader::split_response(payload)
        .map_err(|e| GuestError::Malformed(e.to_string()))?;
    AttestationReport::from_bytes(report).map_err(|e| GuestError::Malformed(e.to_string()))
}

/// Parses a decrypted MSG_KEY_RSP payload and returns the derived key.
pub fn parse_key_payload(payload: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let bytes = payload
        .get(..KEY_RESPONSE_LEN)
        .ok_or_else(|| GuestError::Malformed("MSG_KEY_RSP shorter than 0x40 bytes".into()))?;
    let mut rsp =
        KeyResponse::from_bytes(bytes).map_err(|e| GuestError::Malformed(e.to_string()))?;
    let status = rsp.status.get();
    let key = Zeroizing::new(rsp.derived_key);
    rsp.derived_key.zeroize();
    if status != 0 {
        return Err(GuestError::FirmwareStatus(status));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    fn channel() -> GuestChannel {
        let mut secrets = SecretsPage::new_zeroed();
        secrets.vmpck[1] = [9; 32];
        secrets.set_msg_seqno_u64(1, 4);
        GuestChannel::from_secrets_page(&secrets, 1).unwrap()
    }

    /// Plays the firmware: answers `req` with `msg_type + 1`, `seqno + 1`.
    fn answer(req: &[u8], payload: &[u8]) -> [u8; PAGE_LEN] {
        let (h, _) = open_message(&[9; 32], req).unwrap();
        let mut rh = h;
        rh.msg_type += 1;
        rh.msg_seqno = (h.msg_seqno.get() + 1).into();
        seal_message(&[9; 32], &rh, payload).unwrap()
    }

    #[test]
    fn sequence_numbers_and_outstanding_request() {
        let mut c = channel();
        assert_eq!(c.vmpck_index(), 1);
        let req = c.request_report([0; 64], 1, KeySelect::Vcek).unwrap();
        assert_eq!(&req[0x20..0x28], &5u64.to_le_bytes());
        assert_eq!(req[0x3C], 1);
        assert_eq!(
            c.request_report([0; 64], 1, KeySelect::Vcek),
            Err(GuestError::RequestOutstanding)
        );
        assert_eq!(c.pending_request(), Some(&req));
        let rsp = answer(&req, &[0; 0x40]);
        let key = c.open_key_response(&rsp);
        // A report request answered with a key-shaped payload: type is right
        // (6), so it opens, but the payload is the wrong shape.
        assert!(key.is_ok());
        assert_eq!(c.message_count(), 6);
        let mut secrets = SecretsPage::new_zeroed();
        c.store_count(&mut secrets);
        assert_eq!(secrets.msg_seqno_u64(1), Some(6));
        assert!(!format!("{c:?}").contains('9'));
    }

    #[test]
    fn bad_responses_wipe() {
        let mut c = channel();
        assert_eq!(
            c.open_response(&[0; 16]),
            Err(GuestError::NoRequestOutstanding)
        );
        let req = c
            .request_key(&KeyRequest::new(false, KeySelect::Vcek, 0, 1, 0, 0))
            .unwrap();
        // The request itself echoed back: seqno and type are wrong.
        let (h, pt) = open_message(&[9; 32], &req).unwrap();
        let echo = seal_message(&[9; 32], &h, &pt).unwrap();
        assert!(matches!(
            c.open_response(&echo),
            Err(GuestError::ResponseMismatch {
                field: "msg_seqno",
                ..
            })
        ));
        assert!(c.is_wiped());
        assert_eq!(
            c.request_key(&KeyRequest::new(false, KeySelect::Vcek, 0, 1, 0, 0)),
            Err(GuestError::KeyWiped)
        );

        let mut c = channel();
        let req = c.request_report([0; 64], 1, KeySelect::Vcek).unwrap();
        let mut rsp = answer(&req, &[0; 0x4C0]);
        rsp[0] ^= 1;
        assert!(matches!(c.open_response(&rsp), Err(GuestError::Crypto(_))));
        assert!(c.is_wiped());
    }

    #[test]
    fn payload_status_and_shapes() {
        let mut c = channel();
        let req = c.request_report([0; 64], 1, KeySelect::Vcek).unwrap();
        let mut payload = [0u8; 0x4C0];
        payload[0] = 0x16;
        let rsp = answer(&req, &payload);
        assert_eq!(
            c.open_report_response(&rsp),
            Err(GuestError::FirmwareStatus(0x16))
        );
        assert!(!c.is_wiped());
        assert_eq!(c.message_count(), 6);

        assert!(parse_report_payload(&[0; 8]).is_err());
        let mut p = [0u8; 0x4C0];
        p[4..8].copy_from_slice(&0x4A0u32.to_le_bytes());
        assert!(parse_report_payload(&p).is_err(), "version 0");
        p[0x20] = 3;
        assert_eq!(parse_report_payload(&p).unwrap().version(), 3);
        assert!(parse_key_payload(&[0; 0x3F]).is_err());
        let mut k = [0u8; 0x40];
        k[0x20..].fill(5);
        assert_eq!(*parse_key_payload(&k).unwrap(), [5; 32]);
        k[0] = 0x27;
        assert_eq!(parse_key_payload(&k), Err(GuestError::FirmwareStatus(0x27)));
    }

    #[test]
    fn construction_limits() {
        assert!(GuestChannel::new(&[0; 32], 4, 0).is_err());
        let secrets = SecretsPage::new_zeroed();
        assert!(GuestChannel::from_secrets_page(&secrets, 4).is_err());
        let mut c = GuestChannel::new(&[0; 32], 0, u64::MAX - 1).unwrap();
        assert_eq!(
            c.request(MessageType::TscInfoReq, 1, &[0; 0x80]),
            Err(GuestError::SequenceExhausted)
        );
        let mut c = GuestChannel::new(&[0; 32], 0, 0).unwrap();
        assert_eq!(
            c.request(MessageType::TscInfoReq, 1, &[0; 4096]),
            Err(GuestError::PayloadTooLarge(4096))
        );
        let page = c
            .request_key_v2(&KeyRequestV2::new(
                KeyRequest::new(true, KeySelect::PreferVlek, 0, 0, 0, 0),
                7,
            ))
            .unwrap();
        assert_eq!(&page[0x36..0x38], &0x30u16.to_le_bytes());
        let mut secrets = SecretsPage::new_zeroed();
        secrets.vmpck[0] = [1; 32];
        c.wipe_in(&mut secrets);
        assert!(c.is_wiped());
        assert_eq!(secrets.vmpck[0], [0; 32]);
        assert!(c.pending_request().is_none());
    }
}
