//! Legacy SEV / SEV-ES launch structures: the session blob given to
//! LAUNCH_START, the packet header of LAUNCH_SECRET (and migration), the
//! LAUNCH_MEASURE output, and the legacy ATTESTATION report.

use core::fmt;

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{read_exact, Result};
use crate::launch_digest::SevLaunchDigest;
use crate::policy::GuestPolicy;
use crate::signature::{EcdsaSignature, HexBytes, ECDSA_COMPONENT_LEN};

/// Size of the session blob.
pub const SESSION_BLOB_LEN: usize = 0x80;
/// Size of the packet header.
pub const PACKET_HEADER_LEN: usize = 0x34;
/// Size of the LAUNCH_MEASURE output.
pub const LAUNCH_MEASUREMENT_LEN: usize = 0x30;
/// Size of an SEV / SEV-ES launch digest (SHA-256).
pub const SEV_LD_LEN: usize = 32;
/// Size of the legacy attestation report.
pub const LEGACY_ATTESTATION_REPORT_LEN: usize = 0xD0;
/// End of the signed part of the legacy attestation report.
pub const LEGACY_ATTESTATION_SIGNED_LEN: usize = 0x34;
/// Packet header flag: payload compressed (firmware rejects it as unsupported).
pub const PACKET_FLAG_COMPRESSED: u32 = 1;

/// Session blob (0x80 bytes) for LAUNCH_START / RECEIVE_START.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SessionBlob {
    /// Nonce, the KDF context of the master secret.
    pub nonce: [u8; 16],
    /// `AES-128-CTR(KEK, wrap_iv)(TEK || TIK)`: wrapped keys (ciphertext).
    pub wrap_tk: [u8; 32],
    /// Counter block of the key wrapping.
    pub wrap_iv: [u8; 16],
    /// `HMAC-SHA256(KIK, wrap_tk)`.
    pub wrap_mac: [u8; 32],
    /// `HMAC-SHA256(TIK, u32_le(policy))`.
    pub policy_mac: [u8; 32],
}

impl SessionBlob {
    /// Parses exactly 0x80 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("session blob", bytes)
    }
}

impl fmt::Debug for SessionBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBlob")
            .field("nonce", &HexBytes(&self.nonce))
            .field("wrap_tk", &HexBytes(&self.wrap_tk))
            .field("wrap_iv", &HexBytes(&self.wrap_iv))
            .field("wrap_mac", &HexBytes(&self.wrap_mac))
            .field("policy_mac", &HexBytes(&self.policy_mac))
            .finish()
    }
}

/// Packet header (0x34 bytes) of LAUNCH_SECRET and the SEND/RECEIVE commands.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PacketHeader {
    /// Bit 0: COMPRESSED.
    pub flags: U32,
    /// AES-128-CTR counter block.
    pub iv: [u8; 16],
    /// HMAC-SHA256 with the TIK.
    pub mac: [u8; 32],
}

impl PacketHeader {
    /// Builds a header.
    pub fn new(flags: u32, iv: [u8; 16], mac: [u8; 32]) -> Self {
        Self {
            flags: U32::new(flags),
            iv,
            mac,
        }
    }

    /// Parses exactly 0x34 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("packet header", bytes)
    }

    /// True when the COMPRESSED flag is set.
    pub fn is_compressed(&self) -> bool {
        self.flags.get() & PACKET_FLAG_COMPRESSED != 0
    }
}

impl fmt::Debug for PacketHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketHeader")
            .field("flags", &self.flags.get())
            .field("iv", &HexBytes(&self.iv))
            .field("mac", &HexBytes(&self.mac))
            .finish()
    }
}

/// LAUNCH_MEASURE output (0x30 bytes): the measurement, then the
/// firmware's nonce. This is the 48-byte blob QEMU's
/// `query-sev-launch-measure` returns (base64) and the guest owner checks
/// and seals secrets against.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LaunchMeasurement {
    /// `HMAC-SHA256(TIK, 0x04 || api_major || api_minor || build || policy || LD || mnonce)`.
    pub measurement: [u8; 32],
    /// Firmware nonce.
    pub mnonce: [u8; 16],
}

// The layout is AMD's, byte for byte.
const _: () = assert!(core::mem::size_of::<LaunchMeasurement>() == LAUNCH_MEASUREMENT_LEN);

impl LaunchMeasurement {
    /// The blob for `measurement` and the nonce it was computed with.
    pub const fn new(measurement: [u8; 32], mnonce: [u8; 16]) -> Self {
        Self {
            measurement,
            mnonce,
        }
    }

    /// Parses exactly 0x30 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("launch measurement", bytes)
    }

    /// The 0x30 bytes, `measurement || mnonce`.
    pub fn to_bytes(&self) -> [u8; LAUNCH_MEASUREMENT_LEN] {
        let mut out = [0u8; LAUNCH_MEASUREMENT_LEN];
        out.copy_from_slice(self.as_bytes());
        out
    }
}

impl AsRef<[u8]> for LaunchMeasurement {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for LaunchMeasurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchMeasurement")
            .field("measurement", &HexBytes(&self.measurement))
            .field("mnonce", &HexBytes(&self.mnonce))
            .finish()
    }
}

/// Channel context byte that starts a packet MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelContext(pub u8);

impl ChannelContext {
    /// LAUNCH_SECRET (the MAC also covers the launch measurement).
    pub const SECRET: Self = Self(0x01);
    /// Guest memory (SEND/RECEIVE_UPDATE_DATA).
    pub const DATA: Self = Self(0x02);
    /// VMSA (SEND/RECEIVE_UPDATE_VMSA).
    pub const VMSA: Self = Self(0x03);
    /// Launch measurement.
    pub const MEASURE: Self = Self(0x04);
}

/// Legacy ATTESTATION report (0xD0 bytes), signed by the PEK.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LegacyAttestationReport {
    /// Caller-supplied nonce.
    pub mnonce: [u8; 16],
    /// Launch digest (SHA-256).
    pub launch_digest: SevLaunchDigest,
    /// Guest policy.
    pub policy: GuestPolicy,
    /// Signer usage (PEK, 0x1002).
    pub sig_usage: U32,
    /// Signer algorithm (ECDSA_SHA256, 0x2).
    pub sig_algo: U32,
    /// Reserved.
    pub reserved: U32,
    /// ECDSA P-384 signature over bytes `[0, 0x34)`: `r[72] || s[72]`, little-endian.
    pub sig: [u8; 2 * ECDSA_COMPONENT_LEN],
}

impl LegacyAttestationReport {
    /// Parses exactly 0xD0 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("legacy attestation report", bytes)
    }

    /// The signed bytes `[0, 0x34)` (mnonce, launch digest, policy).
    pub fn signed_bytes(&self) -> &[u8] {
        let all = self.as_bytes();
        all.get(..LEGACY_ATTESTATION_SIGNED_LEN).unwrap_or(all)
    }

    /// The signature in the 512-byte [`EcdsaSignature`] form.
    pub fn signature(&self) -> EcdsaSignature {
        let mut sig = EcdsaSignature::new_zeroed();
        sig.r.copy_from_slice(&self.sig[..ECDSA_COMPONENT_LEN]);
        sig.s.copy_from_slice(&self.sig[ECDSA_COMPONENT_LEN..]);
        sig
    }

    /// Stores a signature (its `r` and `s`; the rest of the slot is dropped).
    pub fn set_signature(&mut self, sig: &EcdsaSignature) {
        self.sig[..ECDSA_COMPONENT_LEN].copy_from_slice(&sig.r);
        self.sig[ECDSA_COMPONENT_LEN..].copy_from_slice(&sig.s);
    }
}

impl fmt::Debug for LegacyAttestationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyAttestationReport")
            .field("mnonce", &HexBytes(&self.mnonce))
            .field("launch_digest", &self.launch_digest)
            .field("policy", &self.policy)
            .field("sig_usage", &format_args!("{:#x}", self.sig_usage.get()))
            .field("sig_algo", &format_args!("{:#x}", self.sig_algo.get()))
            .field("sig", &self.signature())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 + 1) as u8).collect()
    }

    #[test]
    fn session_blob() {
        assert_eq!(size_of::<SessionBlob>(), 0x80);
        assert_eq!(offset_of!(SessionBlob, nonce), 0x00);
        assert_eq!(offset_of!(SessionBlob, wrap_tk), 0x10);
        assert_eq!(offset_of!(SessionBlob, wrap_iv), 0x30);
        assert_eq!(offset_of!(SessionBlob, wrap_mac), 0x40);
        assert_eq!(offset_of!(SessionBlob, policy_mac), 0x60);
        let b = pattern(0x80);
        let s = SessionBlob::from_bytes(&b).unwrap();
        assert_eq!(s.as_bytes(), &b[..]);
        assert!(SessionBlob::from_bytes(&b[1..]).is_err());
        assert!(SessionBlob::from_bytes(&[0; 0x90]).is_err());
        assert!(format!("{s:?}").contains("wrap_tk"));
    }

    #[test]
    fn packet_header() {
        assert_eq!(size_of::<PacketHeader>(), 0x34);
        assert_eq!(offset_of!(PacketHeader, flags), 0x00);
        assert_eq!(offset_of!(PacketHeader, iv), 0x04);
        assert_eq!(offset_of!(PacketHeader, mac), 0x14);
        let h = PacketHeader::new(PACKET_FLAG_COMPRESSED, [1; 16], [2; 32]);
        assert!(h.is_compressed());
        let parsed = PacketHeader::from_bytes(h.as_bytes()).unwrap();
        assert_eq!(parsed, h);
        assert!(!PacketHeader::new(0, [0; 16], [0; 32]).is_compressed());
        assert!(PacketHeader::from_bytes(&[0; 0x33]).is_err());
        assert!(PacketHeader::from_bytes(&[0; 0x35]).is_err());
        assert!(format!("{h:?}").contains("flags"));
    }

    #[test]
    fn launch_measurement() {
        assert_eq!(size_of::<LaunchMeasurement>(), 0x30);
        assert_eq!(offset_of!(LaunchMeasurement, measurement), 0x00);
        assert_eq!(offset_of!(LaunchMeasurement, mnonce), 0x20);
        let b = pattern(0x30);
        let m = LaunchMeasurement::from_bytes(&b).unwrap();
        assert_eq!(m.as_bytes(), &b[..]);
        assert_eq!(m.mnonce[0], b[0x20]);
        assert!(LaunchMeasurement::from_bytes(&b[..0x2F]).is_err());
        assert!(LaunchMeasurement::from_bytes(&[0; 0x31]).is_err());
        assert!(format!("{m:?}").contains("mnonce"));
    }

    #[test]
    fn channel_contexts() {
        assert_eq!(ChannelContext::SECRET.0, 1);
        assert_eq!(ChannelContext::DATA.0, 2);
        assert_eq!(ChannelContext::VMSA.0, 3);
        assert_eq!(ChannelContext::MEASURE.0, 4);
    }

    #[test]
    fn legacy_attestation_report() {
        assert_eq!(size_of::<LegacyAttestationReport>(), 0xD0);
        assert_eq!(offset_of!(LegacyAttestationReport, mnonce), 0x00);
        assert_eq!(offset_of!(LegacyAttestationReport, launch_digest), 0x10);
        assert_eq!(offset_of!(LegacyAttestationReport, policy), 0x30);
        assert_eq!(offset_of!(LegacyAttestationReport, sig_usage), 0x34);
        assert_eq!(offset_of!(LegacyAttestationReport, sig_algo), 0x38);
        assert_eq!(offset_of!(LegacyAttestationReport, reserved), 0x3C);
        assert_eq!(offset_of!(LegacyAttestationReport, sig), 0x40);
        let b = pattern(0xD0);
        let mut r = LegacyAttestationReport::from_bytes(&b).unwrap();
        assert_eq!(r.as_bytes(), &b[..]);
        assert_eq!(r.signed_bytes(), &b[..0x34]);
        let sig = r.signature();
        assert_eq!(&sig.r[..], &b[0x40..0x88]);
        assert_eq!(&sig.s[..], &b[0x88..0xD0]);
        r.sig = [0; 144];
        r.set_signature(&sig);
        assert_eq!(r.as_bytes(), &b[..]);
        assert!(LegacyAttestationReport::from_bytes(&b[..0xCF]).is_err());
        assert!(LegacyAttestationReport::from_bytes(&[0; 0xD1]).is_err());
        assert!(format!("{r:?}").contains("policy"));
    }
}
