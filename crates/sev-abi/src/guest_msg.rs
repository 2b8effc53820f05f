//! SNP guest messages (SNP_GUEST_REQUEST): the 0x60-byte message header and
//! the payloads of the report and key requests and responses.
//!
//! A message is the header followed by `msg_sz` bytes of AES-256-GCM
//! ciphertext. The key is VMPCK\[`msg_vmpck`\], the 12-byte IV is `msg_seqno`
//! little-endian followed by four zero bytes, the AAD is header bytes
//! 0x30..0x60, and the 16-byte tag sits in `auth_tag[0..16]`.

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{read_exact, AbiError, Result};
use crate::signature::HexBytes;

/// Size of the message header.
pub const GUEST_MSG_HEADER_LEN: usize = 0x60;
/// Header version (`hdr_version`).
pub const HEADER_VERSION: u8 = 1;
/// `algo`: AES-256-GCM.
pub const AEAD_ALGO_AES_256_GCM: u8 = 1;
/// Offset of the authenticated header bytes.
pub const AAD_OFFSET: usize = 0x30;
/// Length of the authenticated header bytes.
pub const AAD_LEN: usize = 0x30;
/// Length of the AES-GCM IV.
pub const GUEST_MSG_IV_LEN: usize = 12;
/// Length of the AES-GCM tag (stored in the first bytes of `auth_tag`).
pub const GUEST_MSG_TAG_LEN: usize = 16;
/// Highest VMPCK index.
pub const MAX_VMPCK: u8 = 3;

/// Size of MSG_REPORT_REQ.
pub const REPORT_REQUEST_LEN: usize = 0x60;
/// Size of the MSG_REPORT_RSP header.
pub const REPORT_RESPONSE_HEADER_LEN: usize = 0x20;
/// Size of MSG_REPORT_RSP (header plus a 0x4A0-byte report).
pub const REPORT_RESPONSE_LEN: usize = 0x4C0;
/// Size of MSG_KEY_REQ version 1.
pub const KEY_REQUEST_V1_LEN: usize = 0x20;
/// Size of MSG_KEY_REQ version 2.
pub const KEY_REQUEST_V2_LEN: usize = 0x28;
/// Size of MSG_KEY_RSP.
pub const KEY_RESPONSE_LEN: usize = 0x40;

/// Guest field select bit: guest policy.
pub const GFS_GUEST_POLICY: u64 = 1 << 0;
/// Guest field select bit: image id.
pub const GFS_IMAGE_ID: u64 = 1 << 1;
/// Guest field select bit: family id.
pub const GFS_FAMILY_ID: u64 = 1 << 2;
/// Guest field select bit: measurement.
pub const GFS_MEASUREMENT: u64 = 1 << 3;
/// Guest field select bit: guest SVN.
pub const GFS_GUEST_SVN: u64 = 1 << 4;
/// Guest field select bit: TCB version.
pub const GFS_TCB_VERSION: u64 = 1 << 5;
/// Guest field select bit: launch mitigation vector (KEY_REQ v2, newer firmware).
pub const GFS_LAUNCH_MIT_VECTOR: u64 = 1 << 6;

/// Guest message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// CPUID validation request.
    CpuidReq = 1,
    /// CPUID validation response.
    CpuidRsp = 2,
    /// Key derivation request.
    KeyReq = 3,
    /// Key derivation response.
    KeyRsp = 4,
    /// Attestation report request.
    ReportReq = 5,
    /// Attestation report response.
    ReportRsp = 6,
    /// Guest context export request (migration agent).
    ExportReq = 7,
    /// Guest context export response.
    ExportRsp = 8,
    /// Guest context import request.
    ImportReq = 9,
    /// Guest context import response.
    ImportRsp = 10,
    /// Guest context absorb request.
    AbsorbReq = 11,
    /// Guest context absorb response.
    AbsorbRsp = 12,
    /// VM root key request.
    VmrkReq = 13,
    /// VM root key response.
    VmrkRsp = 14,
    /// Absorb without migration agent request.
    AbsorbNomaReq = 15,
    /// Absorb without migration agent response.
    AbsorbNomaRsp = 16,
    /// TSC information request.
    TscInfoReq = 17,
    /// TSC information response.
    TscInfoRsp = 18,
}

impl MessageType {
    /// Maps a wire value (1–18) to a message type.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::CpuidReq,
            2 => Self::CpuidRsp,
            3 => Self::KeyReq,
            4 => Self::KeyRsp,
            5 => Self::ReportReq,
            6 => Self::ReportRsp,
            7 => Self::ExportReq,
            8 => Self::ExportRsp,
            9 => Self::ImportReq,
            10 => Self::ImportRsp,
            11 => Self::AbsorbReq,
            12 => Self::AbsorbRsp,
            13 => Self::VmrkReq,
            14 => Self::VmrkRsp,
            15 => Self::AbsorbNomaReq,
            16 => Self::AbsorbNomaRsp,
            17 => Self::TscInfoReq,
            18 => Self::TscInfoRsp,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for request types (odd values).
    pub fn is_request(self) -> bool {
        self.as_u8() % 2 == 1
    }

    /// The response type of a request (`type + 1`); `None` for responses.
    pub fn response(self) -> Option<Self> {
        if self.is_request() {
            Self::from_u8(self.as_u8() + 1)
        } else {
            None
        }
    }
}

/// Guest message header (0x60 bytes).
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GuestMessageHeader {
    /// AES-GCM tag in bytes 0..16, rest zero.
    pub auth_tag: [u8; 32],
    /// Message sequence number (also the IV).
    pub msg_seqno: U64,
    /// Reserved.
    pub reserved0: [u8; 8],
    /// AEAD algorithm, 1 = AES-256-GCM.
    pub algo: u8,
    /// Header version, 1.
    pub hdr_version: u8,
    /// Header size, 0x60.
    pub hdr_sz: U16,
    /// Message type (see [`MessageType`]).
    pub msg_type: u8,
    /// Message (payload) version.
    pub msg_version: u8,
    /// Payload size in bytes.
    pub msg_sz: U16,
    /// Reserved.
    pub reserved1: U32,
    /// Index of the VMPCK that protects the message (0–3).
    pub msg_vmpck: u8,
    /// Reserved.
    pub reserved2: [u8; 35],
}

impl GuestMessageHeader {
    /// A header for an unencrypted message (tag zero), with algorithm,
    /// header version and header size set.
    pub fn new(
        msg_type: MessageType,
        msg_version: u8,
        msg_sz: u16,
        msg_vmpck: u8,
        msg_seqno: u64,
    ) -> Self {
        let mut h = Self::new_zeroed();
        h.msg_seqno = U64::new(msg_seqno);
        h.algo = AEAD_ALGO_AES_256_GCM;
        h.hdr_version = HEADER_VERSION;
        h.hdr_sz = U16::new(GUEST_MSG_HEADER_LEN as u16);
        h.msg_type = msg_type.as_u8();
        h.msg_version = msg_version;
        h.msg_sz = U16::new(msg_sz);
        h.msg_vmpck = msg_vmpck;
        h
    }

    /// Parses exactly 0x60 bytes. Only the length is checked; see
    /// [`GuestMessageHeader::validate`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("guest message header", bytes)
    }

    /// Parses the header at the start of a message page and returns it with
    /// the bytes that follow it (not trimmed to `msg_sz`).
    pub fn from_prefix(bytes: &[u8]) -> Result<(Self, &[u8])> {
        Self::read_from_prefix(bytes).map_err(|_| AbiError::Length {
            what: "guest message header",
            expected: GUEST_MSG_HEADER_LEN,
            actual: bytes.len(),
        })
    }

    /// The additional authenticated data: header bytes 0x30..0x60.
    pub fn aad(&self) -> &[u8] {
        let all = self.as_bytes();
        all.get(AAD_OFFSET..AAD_OFFSET + AAD_LEN).unwrap_or(all)
    }

    /// The AES-GCM IV: `msg_seqno` little-endian, then four zero bytes.
    pub fn iv(&self) -> [u8; GUEST_MSG_IV_LEN] {
        let mut iv = [0u8; GUEST_MSG_IV_LEN];
        iv[..8].copy_from_slice(&self.msg_seqno.get().to_le_bytes());
        iv
    }

    /// The AES-GCM tag (first 16 bytes of `auth_tag`).
    pub fn tag(&self) -> [u8; GUEST_MSG_TAG_LEN] {
        let mut tag = [0u8; GUEST_MSG_TAG_LEN];
        tag.copy_from_slice(&self.auth_tag[..GUEST_MSG_TAG_LEN]);
        tag
    }

    /// Stores the AES-GCM tag (and zeroes the rest of `auth_tag`).
    pub fn set_tag(&mut self, tag: &[u8; GUEST_MSG_TAG_LEN]) {
        self.auth_tag = [0; 32];
        self.auth_tag[..GUEST_MSG_TAG_LEN].copy_from_slice(tag);
    }

    /// The message type, if known.
    pub fn message_type(&self) -> Option<MessageType> {
        MessageType::from_u8(self.msg_type)
    }

    /// Checks what firmware checks in the header itself: header version 1,
    /// algorithm 1, header size 0x60, a known message type and
    /// `msg_vmpck <= 3`. (Payload-size and sequence-number rules depend on
    /// the page and the guest context and are left to the caller.)
    pub fn validate(&self) -> Result<()> {
        const WHAT: &str = "guest message header";
        if self.hdr_version != HEADER_VERSION {
            return Err(AbiError::UnsupportedVersion {
                what: WHAT,
                version: u32::from(self.hdr_version),
            });
        }
        let field = |field: &'static str, value: u64| AbiError::InvalidField {
            what: WHAT,
            field,
            value,
        };
        if self.algo != AEAD_ALGO_AES_256_GCM {
            return Err(field("algo", u64::from(self.algo)));
        }
        if usize::from(self.hdr_sz.get()) != GUEST_MSG_HEADER_LEN {
            return Err(field("hdr_sz", u64::from(self.hdr_sz.get())));
        }
        if self.message_type().is_none() {
            return Err(field("msg_type", u64::from(self.msg_type)));
        }
        if self.msg_vmpck > MAX_VMPCK {
            return Err(field("msg_vmpck", u64::from(self.msg_vmpck)));
        }
        Ok(())
    }
}

impl fmt::Debug for GuestMessageHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestMessageHeader")
            .field("auth_tag", &HexBytes(&self.auth_tag[..GUEST_MSG_TAG_LEN]))
            .field("msg_seqno", &self.msg_seqno.get())
            .field("algo", &self.algo)
            .field("hdr_version", &self.hdr_version)
            .field("hdr_sz", &self.hdr_sz.get())
            .field("msg_type", &self.msg_type)
            .field("msg_version", &self.msg_version)
            .field("msg_sz", &self.msg_sz.get())
            .field("msg_vmpck", &self.msg_vmpck)
            .finish_non_exhaustive()
    }
}

/// Which key signs a report or roots a derived key (`key_sel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum KeySelect {
    /// VLEK if installed, else VCEK.
    PreferVlek = 0,
    /// VCEK.
    Vcek = 1,
    /// VLEK.
    Vlek = 2,
}

impl KeySelect {
    /// Maps the two-bit field value (3 is reserved → `None`).
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::PreferVlek,
            1 => Self::Vcek,
            2 => Self::Vlek,
            _ => return None,
        })
    }

    /// The field value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// MSG_REPORT_REQ payload (0x60 bytes).
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ReportRequest {
    /// Guest data placed in the report.
    pub report_data: [u8; 64],
    /// VMPL to report (at least the VMPCK index of the message).
    pub vmpl: U32,
    /// Bits 1:0 key_sel (see [`KeySelect`]); bits 31:2 reserved.
    pub flags: U32,
    /// Reserved.
    pub reserved: [u8; 24],
}

impl ReportRequest {
    /// Builds a request.
    pub fn new(report_data: [u8; 64], vmpl: u32, key_sel: KeySelect) -> Self {
        Self {
            report_data,
            vmpl: U32::new(vmpl),
            flags: U32::new(key_sel.as_u32()),
            reserved: [0; 24],
        }
    }

    /// Parses exactly 0x60 bytes. Reserved bits are not checked here:
    /// firmware answers them with an INVALID_PARAM status in the response.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("MSG_REPORT_REQ", bytes)
    }

    /// The key selection (`None` for the reserved value 3).
    pub fn key_select(&self) -> Option<KeySelect> {
        KeySelect::from_u32(self.flags.get() & 0b11)
    }

    /// True when reserved bits of `flags` or reserved bytes are set.
    pub fn has_reserved_bits(&self) -> bool {
        self.flags.get() & !0b11 != 0 || self.reserved.iter().any(|b| *b != 0)
    }
}

impl fmt::Debug for ReportRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportRequest")
            .field("report_data", &HexBytes(&self.report_data))
            .field("vmpl", &self.vmpl.get())
            .field("flags", &self.flags.get())
            .finish_non_exhaustive()
    }
}

/// Header of the MSG_REPORT_RSP payload (0x20 bytes); the report follows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ReportResponseHeader {
    /// Firmware status of the request (0 = success).
    pub status: U32,
    /// Size of the report that follows (0x4A0).
    pub report_size: U32,
    /// Reserved.
    pub reserved: [u8; 24],
}

impl ReportResponseHeader {
    /// Parses exactly 0x20 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("MSG_REPORT_RSP header", bytes)
    }

    /// Splits a whole MSG_REPORT_RSP payload into its header and the
    /// `report_size` bytes of report (bytes beyond it are ignored).
    pub fn split_response(bytes: &[u8]) -> Result<(Self, &[u8])> {
        const WHAT: &str = "MSG_REPORT_RSP";
        let (header, rest) = Self::read_from_prefix(bytes).map_err(|_| AbiError::Length {
            what: WHAT,
            expected: REPORT_RESPONSE_HEADER_LEN,
            actual: bytes.len(),
        })?;
        let size = header.report_size.get() as usize;
        let report = rest.get(..size).ok_or_else(|| AbiError::Malformed {
            what: WHAT,
            reason: format!(
                "report_size {size:#x} exceeds the {:#x} bytes after the header",
                rest.len()
            ),
        })?;
        Ok((header, report))
    }
}

/// MSG_KEY_REQ payload, version 1 (0x20 bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct KeyRequest {
    /// Bit 0 root_key_select (0 = VCEK/VLEK, 1 = VMRK); bits 2:1 key_sel; rest reserved.
    pub flags: U32,
    /// Reserved.
    pub reserved: U32,
    /// Which guest fields to mix into the key (`GFS_*` bits).
    pub guest_field_select: U64,
    /// VMPL to mix in.
    pub vmpl: U32,
    /// Guest SVN to mix in.
    pub guest_svn: U32,
    /// TCB version to mix in.
    pub tcb_version: U64,
}

impl KeyRequest {
    /// Builds a version-1 request.
    pub fn new(
        root_key_vmrk: bool,
        key_sel: KeySelect,
        guest_field_select: u64,
        vmpl: u32,
        guest_svn: u32,
        tcb_version: u64,
    ) -> Self {
        Self {
            flags: U32::new(u32::from(root_key_vmrk) | key_sel.as_u32() << 1),
            reserved: U32::new(0),
            guest_field_select: U64::new(guest_field_select),
            vmpl: U32::new(vmpl),
            guest_svn: U32::new(guest_svn),
            tcb_version: U64::new(tcb_version),
        }
    }

    /// Parses exactly 0x20 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("MSG_KEY_REQ", bytes)
    }

    /// True when the VM root key is selected as root.
    pub fn root_key_vmrk(&self) -> bool {
        self.flags.get() & 1 != 0
    }

    /// The key selection (`None` for the reserved value 3).
    pub fn key_select(&self) -> Option<KeySelect> {
        KeySelect::from_u32((self.flags.get() >> 1) & 0b11)
    }

    /// True when reserved bits of `flags` or the reserved word are set.
    pub fn has_reserved_bits(&self) -> bool {
        self.flags.get() & !0b111 != 0 || self.reserved.get() != 0
    }
}

/// MSG_KEY_REQ payload, version 2 (0x28 bytes): version 1 plus the launch
/// mitigation vector (used with [`GFS_LAUNCH_MIT_VECTOR`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct KeyRequestV2 {
    /// The version-1 fields.
    pub v1: KeyRequest,
    /// Launch mitigation vector to mix in.
    pub launch_mit_vector: U64,
}

impl KeyRequestV2 {
    /// Extends a version-1 request.
    pub fn new(v1: KeyRequest, launch_mit_vector: u64) -> Self {
        Self {
            v1,
            launch_mit_vector: U64::new(launch_mit_vector),
        }
    }

    /// Parses exactly 0x28 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("MSG_KEY_REQ v2", bytes)
    }

    /// Parses a request of either version by its length (0x20 → v1 with a
    /// zero mitigation vector, 0x28 → v2).
    pub fn from_bytes_any(bytes: &[u8]) -> Result<Self> {
        if bytes.len() == KEY_REQUEST_V1_LEN {
            Ok(Self::new(KeyRequest::from_bytes(bytes)?, 0))
        } else {
            Self::from_bytes(bytes)
        }
    }
}

/// MSG_KEY_RSP payload (0x40 bytes). `Debug` never prints the key.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct KeyResponse {
    /// Firmware status of the request (0 = success).
    pub status: U32,
    /// Reserved.
    pub reserved: [u8; 28],
    /// The derived key (secret).
    pub derived_key: [u8; 32],
}

impl KeyResponse {
    /// Parses exactly 0x40 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("MSG_KEY_RSP", bytes)
    }
}

impl fmt::Debug for KeyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyResponse")
            .field("status", &self.status.get())
            .field("derived_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn header_layout() {
        assert_eq!(size_of::<GuestMessageHeader>(), 0x60);
        assert_eq!(offset_of!(GuestMessageHeader, auth_tag), 0x00);
        assert_eq!(offset_of!(GuestMessageHeader, msg_seqno), 0x20);
        assert_eq!(offset_of!(GuestMessageHeader, reserved0), 0x28);
        assert_eq!(offset_of!(GuestMessageHeader, algo), 0x30);
        assert_eq!(offset_of!(GuestMessageHeader, hdr_version), 0x31);
        assert_eq!(offset_of!(GuestMessageHeader, hdr_sz), 0x32);
        assert_eq!(offset_of!(GuestMessageHeader, msg_type), 0x34);
        assert_eq!(offset_of!(GuestMessageHeader, msg_version), 0x35);
        assert_eq!(offset_of!(GuestMessageHeader, msg_sz), 0x36);
        assert_eq!(offset_of!(GuestMessageHeader, reserved1), 0x38);
        assert_eq!(offset_of!(GuestMessageHeader, msg_vmpck), 0x3C);
        assert_eq!(offset_of!(GuestMessageHeader, reserved2), 0x3D);
    }

    #[test]
    fn header_round_trip_aad_iv() {
        let mut h =
            GuestMessageHeader::new(MessageType::ReportReq, 1, 0x60, 0, 0x0102_0304_0506_0708);
        h.set_tag(&[0xEE; 16]);
        let bytes = h.as_bytes().to_vec();
        assert_eq!(&bytes[0x30..0x38], &[1, 1, 0x60, 0, 5, 1, 0x60, 0]);
        let parsed = GuestMessageHeader::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.as_bytes(), &bytes[..]);
        assert_eq!(parsed.aad(), &bytes[0x30..0x60]);
        assert_eq!(parsed.iv(), [8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0]);
        assert_eq!(parsed.tag(), [0xEE; 16]);
        assert_eq!(&bytes[16..32], &[0; 16]);
        parsed.validate().unwrap();
        let mut page = bytes.clone();
        page.extend_from_slice(&[9; 0x60]);
        let (p, rest) = GuestMessageHeader::from_prefix(&page).unwrap();
        assert_eq!(p, h);
        assert_eq!(rest.len(), 0x60);
        assert!(format!("{p:?}").contains("msg_seqno"));
    }

    #[test]
    fn header_wrong_length_and_validation() {
        assert!(GuestMessageHeader::from_bytes(&[0; 0x5F]).is_err());
        assert!(GuestMessageHeader::from_bytes(&[0; 0x61]).is_err());
        assert!(GuestMessageHeader::from_prefix(&[0; 0x5F]).is_err());
        let good = GuestMessageHeader::new(MessageType::KeyReq, 1, 0x20, 3, 1);
        good.validate().unwrap();
        let mut h = good;
        h.hdr_version = 2;
        assert!(matches!(
            h.validate(),
            Err(AbiError::UnsupportedVersion { .. })
        ));
        let mut h = good;
        h.algo = 0;
        assert!(h.validate().is_err());
        let mut h = good;
        h.hdr_sz = U16::new(0x50);
        assert!(h.validate().is_err());
        let mut h = good;
        h.msg_type = 19;
        assert!(h.validate().is_err());
        let mut h = good;
        h.msg_vmpck = 4;
        assert!(h.validate().is_err());
    }

    #[test]
    fn message_types() {
        for v in 1..=18u8 {
            let t = MessageType::from_u8(v).unwrap();
            assert_eq!(t.as_u8(), v);
            assert_eq!(t.is_request(), v % 2 == 1);
            assert_eq!(
                t.response().map(MessageType::as_u8),
                (v % 2 == 1).then_some(v + 1)
            );
        }
        assert_eq!(MessageType::from_u8(0), None);
        assert_eq!(MessageType::from_u8(19), None);
        assert_eq!(
            MessageType::TscInfoReq.response(),
            Some(MessageType::TscInfoRsp)
        );
    }

    #[test]
    fn report_request() {
        assert_eq!(size_of::<ReportRequest>(), 0x60);
        assert_eq!(offset_of!(ReportRequest, report_data), 0x00);
        assert_eq!(offset_of!(ReportRequest, vmpl), 0x40);
        assert_eq!(offset_of!(ReportRequest, flags), 0x44);
        assert_eq!(offset_of!(ReportRequest, reserved), 0x48);
        let r = ReportRequest::new([3; 64], 1, KeySelect::Vlek);
        let parsed = ReportRequest::from_bytes(r.as_bytes()).unwrap();
        assert_eq!(parsed, r);
        assert_eq!(parsed.key_select(), Some(KeySelect::Vlek));
        assert!(!parsed.has_reserved_bits());
        let mut bad = r;
        bad.flags = U32::new(3 | 4);
        assert_eq!(bad.key_select(), None);
        assert!(bad.has_reserved_bits());
        assert!(ReportRequest::from_bytes(&[0; 0x5F]).is_err());
        assert!(ReportRequest::from_bytes(&[0; 0x61]).is_err());
        for v in 0..3 {
            assert_eq!(KeySelect::from_u32(v).unwrap().as_u32(), v);
        }
        assert!(format!("{r:?}").contains("vmpl"));
    }

    #[test]
    fn report_response() {
        assert_eq!(size_of::<ReportResponseHeader>(), 0x20);
        assert_eq!(offset_of!(ReportResponseHeader, status), 0x00);
        assert_eq!(offset_of!(ReportResponseHeader, report_size), 0x04);
        assert_eq!(offset_of!(ReportResponseHeader, reserved), 0x08);
        let mut buf = vec![0u8; REPORT_RESPONSE_LEN];
        buf[4..8].copy_from_slice(&0x4A0u32.to_le_bytes());
        buf[0x20] = 2;
        let (h, report) = ReportResponseHeader::split_response(&buf).unwrap();
        assert_eq!(h.report_size.get(), 0x4A0);
        assert_eq!(report.len(), 0x4A0);
        assert_eq!(report[0], 2);
        assert_eq!(ReportResponseHeader::from_bytes(h.as_bytes()).unwrap(), h);
        assert!(ReportResponseHeader::split_response(&buf[..0x4BF]).is_err());
        assert!(ReportResponseHeader::split_response(&buf[..0x1F]).is_err());
        buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ReportResponseHeader::split_response(&buf).is_err());
        assert!(ReportResponseHeader::from_bytes(&buf).is_err());
    }

    #[test]
    fn key_request() {
        assert_eq!(size_of::<KeyRequest>(), 0x20);
        assert_eq!(offset_of!(KeyRequest, flags), 0x00);
        assert_eq!(offset_of!(KeyRequest, reserved), 0x04);
        assert_eq!(offset_of!(KeyRequest, guest_field_select), 0x08);
        assert_eq!(offset_of!(KeyRequest, vmpl), 0x10);
        assert_eq!(offset_of!(KeyRequest, guest_svn), 0x14);
        assert_eq!(offset_of!(KeyRequest, tcb_version), 0x18);
        assert_eq!(size_of::<KeyRequestV2>(), 0x28);
        assert_eq!(offset_of!(KeyRequestV2, v1), 0x00);
        assert_eq!(offset_of!(KeyRequestV2, launch_mit_vector), 0x20);
        let k = KeyRequest::new(
            true,
            KeySelect::Vcek,
            GFS_MEASUREMENT | GFS_TCB_VERSION,
            2,
            7,
            0x1234,
        );
        assert_eq!(k.flags.get(), 0b011);
        assert!(k.root_key_vmrk());
        assert_eq!(k.key_select(), Some(KeySelect::Vcek));
        assert!(!k.has_reserved_bits());
        assert_eq!(KeyRequest::from_bytes(k.as_bytes()).unwrap(), k);
        let v2 = KeyRequestV2::new(k, 0xAA);
        assert_eq!(KeyRequestV2::from_bytes(v2.as_bytes()).unwrap(), v2);
        assert_eq!(KeyRequestV2::from_bytes_any(v2.as_bytes()).unwrap(), v2);
        assert_eq!(
            KeyRequestV2::from_bytes_any(k.as_bytes()).unwrap(),
            KeyRequestV2::new(k, 0)
        );
        assert!(KeyRequest::from_bytes(&[0; 0x1F]).is_err());
        assert!(KeyRequest::from_bytes(&[0; 0x28]).is_err());
        assert!(KeyRequestV2::from_bytes(&[0; 0x20]).is_err());
        assert!(KeyRequestV2::from_bytes_any(&[0; 0x21]).is_err());
        assert!(KeyRequestV2::from_bytes_any(&[]).is_err());
    }

    #[test]
    fn key_response() {
        assert_eq!(size_of::<KeyResponse>(), 0x40);
        assert_eq!(offset_of!(KeyResponse, status), 0x00);
        assert_eq!(offset_of!(KeyResponse, reserved), 0x04);
        assert_eq!(offset_of!(KeyResponse, derived_key), 0x20);
        let mut bytes = [0u8; 0x40];
        bytes[0x20..].copy_from_slice(&[0xCD; 32]);
        let r = KeyResponse::from_bytes(&bytes).unwrap();
        assert_eq!(r.as_bytes(), &bytes[..]);
        let text = format!("{r:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.to_lowercase().contains("cd"), "{text}");
        assert!(!text.contains("205"), "{text}");
        assert!(KeyResponse::from_bytes(&bytes[1..]).is_err());
        assert!(KeyResponse::from_bytes(&[0; 0x41]).is_err());
    }
}
