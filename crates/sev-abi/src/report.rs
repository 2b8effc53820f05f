//! The SEV-SNP attestation report (`MSG_REPORT_RSP` payload), 0x4A0 bytes,
//! versions 2 to 5 (reference §2.10 with errata A.2).
//!
//! Version differences:
//! - v2: bytes 0x188..0x1A0 and 0x1F8..0x2A0 are reserved.
//! - v3: adds CPUID family / model / stepping at 0x188..0x18B.
//! - v4 and v5: add LAUNCH_MIT_VECTOR (0x1F8) and CURRENT_MIT_VECTOR (0x200).
//!   Real v4 reports carry them, so they are read for every version >= 4.
//!
//! Parsing checks only the length and the version. Reserved bytes are **not**
//! rejected: newer firmware gives reserved bytes meaning, and the signature
//! must still verify. [`AttestationReport::reserved_nonzero`] lists reserved
//! ranges holding non-zero bytes so a verifier can warn.
//!
//! The signature covers the raw bytes `[0, 0x2A0)`; verify it over
//! [`AttestationReport::signed_bytes`], never over a re-encoding.

use core::fmt;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{read_exact, AbiError, Result};
use crate::launch_digest::SnpLaunchDigest;
use crate::policy::SnpPolicy;
use crate::product::{Product, TcbVersion};
use crate::signature::{EcdsaSignature, HexBytes, ECDSA_COMPONENT_LEN};

/// Size of an attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// Number of leading bytes covered by the signature.
pub const SIGNED_LEN: usize = 0x2A0;
/// Report versions this crate parses.
pub const SUPPORTED_VERSIONS: [u32; 4] = [2, 3, 4, 5];
/// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

const WHAT: &str = "SNP attestation report";

/// The SEV-SNP attestation report. Its bytes are the wire form.
///
/// Fields are public (with the specification's names) so reports can be
/// built field by field; start from [`AttestationReport::default`] (all
/// zero). Integers are little-endian wrappers; the typed accessors
/// ([`AttestationReport::policy`], [`AttestationReport::reported_tcb`], ...)
/// return friendlier types.
#[derive(Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AttestationReport {
    /// 0x000: report format version (2, 3, 4 or 5).
    pub version: U32,
    /// 0x004: guest SVN from the ID block (0 without one).
    pub guest_svn: U32,
    /// 0x008: the guest policy (see [`SnpPolicy`]).
    pub policy: SnpPolicy,
    /// 0x010: family id from the ID block.
    pub family_id: [u8; 16],
    /// 0x020: image id from the ID block.
    pub image_id: [u8; 16],
    /// 0x030: the VMPL requested for the report.
    pub vmpl: U32,
    /// 0x034: signature algorithm (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: U32,
    /// 0x038: the TCB currently running.
    pub current_tcb: U64,
    /// 0x040: platform information bits (see [`PlatformInfo`]).
    pub platform_info: U64,
    /// 0x048: key information bits (see [`KeyInfo`]).
    pub key_info: U32,
    /// 0x04C: reserved.
    pub reserved_04c: [u8; 4],
    /// 0x050: data supplied by the guest.
    pub report_data: [u8; 64],
    /// 0x090: the launch measurement (the launch digest).
    pub measurement: SnpLaunchDigest,
    /// 0x0C0: data supplied by the host at launch.
    pub host_data: [u8; 32],
    /// 0x0E0: SHA-384 of the ID key (zero without an ID block).
    pub id_key_digest: [u8; 48],
    /// 0x110: SHA-384 of the author key (zero unless AUTHOR_KEY_EN).
    pub author_key_digest: [u8; 48],
    /// 0x140: the guest's report id.
    pub report_id: [u8; 32],
    /// 0x160: the migration agent's report id (all 0xFF without one).
    pub report_id_ma: [u8; 32],
    /// 0x180: the TCB used to derive the signing VCEK.
    pub reported_tcb: U64,
    /// 0x188 (v3+): CPUID family (extended + base).
    pub cpuid_fam_id: u8,
    /// 0x189 (v3+): CPUID model (extended << 4 | base).
    pub cpuid_mod_id: u8,
    /// 0x18A (v3+): CPUID stepping.
    pub cpuid_step: u8,
    /// 0x18B: reserved.
    pub reserved_18b: [u8; 0x15],
    /// 0x1A0: the chip id (zero when masked; Turin uses only 8 bytes).
    pub chip_id: [u8; 64],
    /// 0x1E0: the committed TCB.
    pub committed_tcb: U64,
    /// 0x1E8: current firmware build.
    pub current_build: u8,
    /// 0x1E9: current firmware minor version.
    pub current_minor: u8,
    /// 0x1EA: current firmware major version.
    pub current_major: u8,
    /// 0x1EB: reserved.
    pub reserved_1eb: u8,
    /// 0x1EC: committed firmware build.
    pub committed_build: u8,
    /// 0x1ED: committed firmware minor version.
    pub committed_minor: u8,
    /// 0x1EE: committed firmware major version.
    pub committed_major: u8,
    /// 0x1EF: reserved.
    pub reserved_1ef: u8,
    /// 0x1F0: the committed TCB when the guest was launched.
    pub launch_tcb: U64,
    /// 0x1F8 (v4+): mitigation vector at launch; reserved before v4.
    pub launch_mit_vector: U64,
    /// 0x200 (v4+): current mitigation vector; reserved before v4.
    pub current_mit_vector: U64,
    /// 0x208: reserved.
    pub reserved_208: [u8; 0x98],
    /// 0x2A0: the signature over bytes `[0, 0x2A0)` (all zero when unsigned).
    pub signature: EcdsaSignature,
}

const _: () = assert!(core::mem::size_of::<AttestationReport>() == REPORT_LEN);

impl Default for AttestationReport {
    /// The all-zero report (version 0, which does not parse until a version
    /// is set).
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl AttestationReport {
    /// Parses a report: `bytes` must be exactly [`REPORT_LEN`] bytes
    /// ([`AbiError::Length`]) and the version must be 2, 3, 4 or 5
    /// ([`AbiError::UnsupportedVersion`]).
    ///
    /// Reserved fields are not checked (see the module docs and
    /// [`AttestationReport::reserved_nonzero`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let report = read_exact::<Self>(WHAT, bytes)?;
        let version = report.version.get();
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(AbiError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        Ok(report)
    }

    /// The wire bytes (the same as `IntoBytes::as_bytes`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// The bytes covered by the signature: the first [`SIGNED_LEN`] raw bytes.
    pub fn signed_bytes(&self) -> &[u8] {
        let (signed, _) = self.as_bytes().split_at(SIGNED_LEN);
        signed
    }

    /// The report version.
    pub fn version(&self) -> u32 {
        self.version.get()
    }

    /// The guest SVN.
    pub fn guest_svn(&self) -> u32 {
        self.guest_svn.get()
    }

    /// The VMPL the report was requested for.
    pub fn vmpl(&self) -> u32 {
        self.vmpl.get()
    }

    /// The SIGNATURE_ALGO field.
    pub fn signature_algo(&self) -> u32 {
        self.signature_algo.get()
    }

    /// The guest policy.
    pub fn policy(&self) -> SnpPolicy {
        self.policy
    }

    /// CURRENT_TCB.
    pub fn current_tcb(&self) -> TcbVersion {
        TcbVersion(self.current_tcb.get())
    }

    /// REPORTED_TCB (the TCB of the signing VCEK).
    pub fn reported_tcb(&self) -> TcbVersion {
        TcbVersion(self.reported_tcb.get())
    }

    /// COMMITTED_TCB.
    pub fn committed_tcb(&self) -> TcbVersion {
        TcbVersion(self.committed_tcb.get())
    }

    /// LAUNCH_TCB.
    pub fn launch_tcb(&self) -> TcbVersion {
        TcbVersion(self.launch_tcb.get())
    }

    /// PLATFORM_INFO.
    pub fn platform_info(&self) -> PlatformInfo {
        PlatformInfo(self.platform_info.get())
    }

    /// KEY_INFO.
    pub fn key_info(&self) -> KeyInfo {
        KeyInfo::from_raw(self.key_info.get())
    }

    /// CPUID `(family, model, stepping)` for version 3 and later.
    pub fn cpuid(&self) -> Option<(u8, u8, u8)> {
        (self.version() >= 3).then_some((self.cpuid_fam_id, self.cpuid_mod_id, self.cpuid_step))
    }

    /// `(LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR)` for version 4 and later.
    pub fn mitigation_vectors(&self) -> Option<(u64, u64)> {
        (self.version() >= 4)
            .then_some((self.launch_mit_vector.get(), self.current_mit_vector.get()))
    }

    /// True when CHIP_ID is all zero (MASK_CHIP_ID was set at launch).
    pub fn is_chip_id_masked(&self) -> bool {
        self.chip_id.iter().all(|b| *b == 0)
    }

    /// Best guess at the product generation that produced the report.
    ///
    /// Version 3+: from the CPUID bytes ([`Product::from_cpuid`]). Version 2:
    /// `Some(Turin)` when only the first 8 CHIP_ID bytes are non-zero,
    /// otherwise `None`, because Milan and Genoa reports cannot be told apart.
    pub fn product_hint(&self) -> Option<Product> {
        if let Some((family, model, _)) = self.cpuid() {
            return Product::from_cpuid(family, model);
        }
        let (head, tail) = self.chip_id.split_at(8);
        let turin = tail.iter().all(|b| *b == 0) && head.iter().any(|b| *b != 0);
        turin.then_some(Product::Turin)
    }

    /// Current firmware version as `(major, minor, build)`.
    pub fn current_version(&self) -> (u8, u8, u8) {
        (self.current_major, self.current_minor, self.current_build)
    }

    /// Committed firmware version as `(major, minor, build)`.
    pub fn committed_version(&self) -> (u8, u8, u8) {
        (
            self.committed_major,
            self.committed_minor,
            self.committed_build,
        )
    }

    /// Names of the reserved ranges that hold non-zero bits, for this
    /// report's version. Parsing accepts such reports; verifiers may warn.
    ///
    /// Checked: `0x04C..0x050`, `0x18B..0x1A0` (`0x188..0x1A0` for v2),
    /// `0x1EB`, `0x1EF`, `0x1F8..0x208` (v2/v3 only), `0x208..0x2A0`, the
    /// signature's reserved tail `0x330..0x4A0`, and KEY_INFO bits 31:5.
    pub fn reserved_nonzero(&self) -> Vec<&'static str> {
        fn nonzero(bytes: &[u8]) -> bool {
            bytes.iter().any(|b| *b != 0)
        }
        let version = self.version();
        let mut found = Vec::new();
        if self.key_info().reserved != 0 {
            found.push("KEY_INFO[31:5]");
        }
        if nonzero(&self.reserved_04c) {
            found.push("0x04C..0x050");
        }
        if version < 3 {
            let cpuid = [self.cpuid_fam_id, self.cpuid_mod_id, self.cpuid_step];
            if nonzero(&cpuid) || nonzero(&self.reserved_18b) {
                found.push("0x188..0x1A0");
            }
        } else if nonzero(&self.reserved_18b) {
            found.push("0x18B..0x1A0");
        }
        if self.reserved_1eb != 0 {
            found.push("0x1EB");
        }
        if self.reserved_1ef != 0 {
            found.push("0x1EF");
        }
        if version < 4 && (self.launch_mit_vector.get() != 0 || self.current_mit_vector.get() != 0)
        {
            found.push("0x1F8..0x208");
        }
        if nonzero(&self.reserved_208) {
            found.push("0x208..0x2A0");
        }
        if nonzero(&self.signature.reserved) {
            found.push("0x330..0x4A0 (signature reserved)");
        }
        found
    }
}

// Reserved fields are summarised through `reserved_nonzero` rather than
// dumped byte by byte.
#[allow(clippy::missing_fields_in_debug)]
impl fmt::Debug for AttestationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AttestationReport");
        d.field("version", &self.version())
            .field("guest_svn", &self.guest_svn())
            .field("policy", &self.policy())
            .field("family_id", &HexBytes(&self.family_id))
            .field("image_id", &HexBytes(&self.image_id))
            .field("vmpl", &self.vmpl())
            .field("signature_algo", &self.signature_algo())
            .field("current_tcb", &self.current_tcb())
            .field("platform_info", &self.platform_info())
            .field("key_info", &self.key_info())
            .field("report_data", &HexBytes(&self.report_data))
            .field("measurement", &HexBytes(&self.measurement[..]))
            .field("host_data", &HexBytes(&self.host_data))
            .field("id_key_digest", &HexBytes(&self.id_key_digest))
            .field("author_key_digest", &HexBytes(&self.author_key_digest))
            .field("report_id", &HexBytes(&self.report_id))
            .field("report_id_ma", &HexBytes(&self.report_id_ma))
            .field("reported_tcb", &self.reported_tcb());
        if let Some(cpuid) = self.cpuid() {
            d.field("cpuid", &cpuid);
        }
        d.field("chip_id", &HexBytes(&self.chip_id))
            .field("committed_tcb", &self.committed_tcb())
            .field("current_version", &self.current_version())
            .field("committed_version", &self.committed_version())
            .field("launch_tcb", &self.launch_tcb());
        if let Some(vectors) = self.mitigation_vectors() {
            d.field("mitigation_vectors", &vectors);
        }
        let reserved = self.reserved_nonzero();
        if !reserved.is_empty() {
            d.field("reserved_nonzero", &reserved);
        }
        d.field("signature", &self.signature).finish()
    }
}

/// PLATFORM_INFO (report offset 0x040): the platform's security state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    /// Bit 0: SMT is enabled.
    pub const SMT_EN: u64 = 1 << 0;
    /// Bit 1: transparent SME is enabled.
    pub const TSME_EN: u64 = 1 << 1;
    /// Bit 2: ECC memory is in use.
    pub const ECC_EN: u64 = 1 << 2;
    /// Bit 3: RAPL is disabled.
    pub const RAPL_DIS: u64 = 1 << 3;
    /// Bit 4: ciphertext hiding is enabled.
    pub const CIPHERTEXT_HIDING_EN: u64 = 1 << 4;
    /// Bit 5: the memory alias check has completed.
    pub const ALIAS_CHECK_COMPLETE: u64 = 1 << 5;
    /// Bit 7: SEV-TIO is enabled.
    pub const TIO_EN: u64 = 1 << 7;

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// SMT_EN (bit 0).
    pub const fn smt_en(self) -> bool {
        self.0 & Self::SMT_EN != 0
    }

    /// TSME_EN (bit 1).
    pub const fn tsme_en(self) -> bool {
        self.0 & Self::TSME_EN != 0
    }

    /// ECC_EN (bit 2).
    pub const fn ecc_en(self) -> bool {
        self.0 & Self::ECC_EN != 0
    }

    /// RAPL_DIS (bit 3).
    pub const fn rapl_dis(self) -> bool {
        self.0 & Self::RAPL_DIS != 0
    }

    /// CIPHERTEXT_HIDING_EN (bit 4).
    pub const fn ciphertext_hiding_en(self) -> bool {
        self.0 & Self::CIPHERTEXT_HIDING_EN != 0
    }

    /// ALIAS_CHECK_COMPLETE (bit 5).
    pub const fn alias_check_complete(self) -> bool {
        self.0 & Self::ALIAS_CHECK_COMPLETE != 0
    }

    /// TIO_EN (bit 7).
    pub const fn tio_en(self) -> bool {
        self.0 & Self::TIO_EN != 0
    }
}

impl fmt::Debug for PlatformInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlatformInfo({:#x}", self.0)?;
        let flags = [
            (self.smt_en(), "SMT_EN"),
            (self.tsme_en(), "TSME_EN"),
            (self.ecc_en(), "ECC_EN"),
            (self.rapl_dis(), "RAPL_DIS"),
            (self.ciphertext_hiding_en(), "CIPHERTEXT_HIDING_EN"),
            (self.alias_check_complete(), "ALIAS_CHECK_COMPLETE"),
            (self.tio_en(), "TIO_EN"),
        ];
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            write!(f, " {name}")?;
        }
        f.write_str(")")
    }
}

/// Which key signed the report (KEY_INFO bits 4:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningKey {
    /// 0: the chip's VCEK.
    Vcek,
    /// 1: the cloud provider's VLEK.
    Vlek,
    /// 7: no key; the report is unsigned.
    None,
    /// 2–6: reserved values (the contained value is the raw 3-bit field).
    Reserved(u8),
}

impl SigningKey {
    /// Maps the 3-bit field (higher bits are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0x7 {
            0 => Self::Vcek,
            1 => Self::Vlek,
            7 => Self::None,
            other => Self::Reserved(other),
        }
    }

    /// The 3-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Vcek => 0,
            Self::Vlek => 1,
            Self::None => 7,
            Self::Reserved(bits) => bits & 0x7,
        }
    }
}

/// KEY_INFO (report offset 0x048), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyInfo {
    /// Bit 0: AUTHOR_KEY_EN, the author key digest is present.
    pub author_key_en: bool,
    /// Bit 1: MASK_CHIP_KEY, the chip key was masked (report unsigned).
    pub mask_chip_key: bool,
    /// Bits 4:2: the signing key.
    pub signing_key: SigningKey,
    /// Bits 31:5, in place; must be zero.
    pub reserved: u32,
}

impl KeyInfo {
    /// Decodes the raw 32-bit field.
    pub const fn from_raw(raw: u32) -> Self {
        Self {
            author_key_en: raw & 1 != 0,
            mask_chip_key: raw & 2 != 0,
            signing_key: SigningKey::from_bits((raw >> 2) as u8),
            reserved: raw & !0x1F,
        }
    }

    /// Encodes back to the raw 32-bit field.
    pub const fn to_raw(self) -> u32 {
        (self.author_key_en as u32)
            | ((self.mask_chip_key as u32) << 1)
            | ((self.signing_key.bits() as u32) << 2)
            | (self.reserved & !0x1F)
    }
}

/// Where the ECDSA `s` component ends inside the signature slot.
const _: () = assert!(SIGNED_LEN + 2 * ECDSA_COMPONENT_LEN == 0x330);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layout() {
        assert_eq!(size_of::<AttestationReport>(), 0x4A0);
        let offsets = [
            (offset_of!(AttestationReport, version), 0x000),
            (offset_of!(AttestationReport, guest_svn), 0x004),
            (offset_of!(AttestationReport, policy), 0x008),
            (offset_of!(AttestationReport, family_id), 0x010),
            (offset_of!(AttestationReport, image_id), 0x020),
            (offset_of!(AttestationReport, vmpl), 0x030),
            (offset_of!(AttestationReport, signature_algo), 0x034),
            (offset_of!(AttestationReport, current_tcb), 0x038),
            (offset_of!(AttestationReport, platform_info), 0x040),
            (offset_of!(AttestationReport, key_info), 0x048),
            (offset_of!(AttestationReport, reserved_04c), 0x04C),
            (offset_of!(AttestationReport, report_data), 0x050),
            (offset_of!(AttestationReport, measurement), 0x090),
            (offset_of!(AttestationReport, host_data), 0x0C0),
            (offset_of!(AttestationReport, id_key_digest), 0x0E0),
            (offset_of!(AttestationReport, author_key_digest), 0x110),
            (offset_of!(AttestationReport, report_id), 0x140),
            (offset_of!(AttestationReport, report_id_ma), 0x160),
            (offset_of!(AttestationReport, reported_tcb), 0x180),
            (offset_of!(AttestationReport, cpuid_fam_id), 0x188),
            (offset_of!(AttestationReport, cpuid_mod_id), 0x189),
            (offset_of!(AttestationReport, cpuid_step), 0x18A),
            (offset_of!(AttestationReport, reserved_18b), 0x18B),
            (offset_of!(AttestationReport, chip_id), 0x1A0),
            (offset_of!(AttestationReport, committed_tcb), 0x1E0),
            (offset_of!(AttestationReport, current_build), 0x1E8),
            (offset_of!(AttestationReport, current_minor), 0x1E9),
            (offset_of!(AttestationReport, current_major), 0x1EA),
            (offset_of!(AttestationReport, reserved_1eb), 0x1EB),
            (offset_of!(AttestationReport, committed_build), 0x1EC),
            (offset_of!(AttestationReport, committed_minor), 0x1ED),
            (offset_of!(AttestationReport, committed_major), 0x1EE),
            (offset_of!(AttestationReport, reserved_1ef), 0x1EF),
            (offset_of!(AttestationReport, launch_tcb), 0x1F0),
            (offset_of!(AttestationReport, launch_mit_vector), 0x1F8),
            (offset_of!(AttestationReport, current_mit_vector), 0x200),
            (offset_of!(AttestationReport, reserved_208), 0x208),
            (offset_of!(AttestationReport, signature), 0x2A0),
        ];
        for (i, (actual, expected)) in offsets.iter().enumerate() {
            assert_eq!(actual, expected, "field #{i}");
        }
        assert_eq!(
            offset_of!(AttestationReport, signature) + offset_of!(EcdsaSignature, reserved),
            0x330
        );
    }

    /// A report with every field set to a distinct value.
    fn sample(version: u32) -> AttestationReport {
        let mut r = AttestationReport::new_zeroed();
        r.version = U32::new(version);
        r.guest_svn = U32::new(7);
        r.policy = SnpPolicy::from_raw(0x3_0133);
        r.family_id = [0x11; 16];
        r.image_id = [0x22; 16];
        r.vmpl = U32::new(1);
        r.signature_algo = U32::new(SIG_ALGO_ECDSA_P384_SHA384);
        r.current_tcb = U64::new(0x7308_0000_0000_0003);
        r.platform_info = U64::new(0b1010_0101);
        r.key_info = U32::new(
            KeyInfo {
                author_key_en: true,
                mask_chip_key: false,
                signing_key: SigningKey::Vlek,
                reserved: 0,
            }
            .to_raw(),
        );
        r.report_data = [0x33; 64];
        r.measurement = SnpLaunchDigest::new([0x44; 48]);
        r.host_data = [0x55; 32];
        r.id_key_digest = [0x66; 48];
        r.author_key_digest = [0x77; 48];
        r.report_id = [0x88; 32];
        r.report_id_ma = [0xFF; 32];
        r.reported_tcb = U64::new(0x7308_0000_0000_0002);
        if version >= 3 {
            r.cpuid_fam_id = 0x19;
            r.cpuid_mod_id = 0x11;
            r.cpuid_step = 0x01;
        }
        r.chip_id = [0x99; 64];
        r.committed_tcb = U64::new(0x7308_0000_0000_0001);
        r.current_build = 21;
        r.current_minor = 55;
        r.current_major = 1;
        r.committed_build = 20;
        r.committed_minor = 54;
        r.committed_major = 1;
        r.launch_tcb = U64::new(0x7308_0000_0000_0000);
        if version >= 4 {
            r.launch_mit_vector = U64::new(0x1234);
            r.current_mit_vector = U64::new(0x5678);
        }
        r.signature = EcdsaSignature::from_be_scalars(&[0xAB; 48], &[0xCD; 48]);
        r
    }

    #[test]
    fn v2_round_trip_and_accessors() {
        let r = sample(2);
        let bytes = r.to_bytes();
        assert_eq!(bytes.len(), REPORT_LEN);
        let p = AttestationReport::from_bytes(&bytes).unwrap();
        assert_eq!(p, r);
        assert_eq!(p.as_bytes(), &bytes[..]);
        assert_eq!(p.signed_bytes(), &bytes[..SIGNED_LEN]);
        assert_eq!(p.version(), 2);
        assert_eq!(p.guest_svn(), 7);
        assert_eq!(p.vmpl(), 1);
        assert_eq!(p.signature_algo(), 1);
        assert_eq!(p.policy().raw(), 0x3_0133);
        assert_eq!(p.current_tcb().raw(), 0x7308_0000_0000_0003);
        assert_eq!(p.reported_tcb().raw(), 0x7308_0000_0000_0002);
        assert_eq!(p.committed_tcb().raw(), 0x7308_0000_0000_0001);
        assert_eq!(p.launch_tcb().raw(), 0x7308_0000_0000_0000);
        assert_eq!(p.cpuid(), None);
        assert_eq!(p.mitigation_vectors(), None);
        assert_eq!(p.current_version(), (1, 55, 21));
        assert_eq!(p.committed_version(), (1, 54, 20));
        assert!(!p.is_chip_id_masked());
        assert_eq!(
            p.product_hint(),
            None,
            "Milan/Genoa v2 reports are ambiguous"
        );
        assert!(p.reserved_nonzero().is_empty());
        let ki = p.key_info();
        assert!(ki.author_key_en && !ki.mask_chip_key);
        assert_eq!(ki.signing_key, SigningKey::Vlek);
        let pi = p.platform_info();
        assert!(pi.smt_en() && !pi.tsme_en() && pi.ecc_en() && !pi.rapl_dis());
        assert!(!pi.ciphertext_hiding_en() && pi.alias_check_complete() && pi.tio_en());
        let dbg = format!("{p:?}");
        assert!(dbg.contains("measurement: 4444"), "{dbg}");
        assert!(!dbg.contains("cpuid"));
    }

    #[test]
    fn v3_cpuid_and_product() {
        let r = sample(3);
        let p = AttestationReport::from_bytes(r.as_bytes()).unwrap();
        assert_eq!(p.cpuid(), Some((0x19, 0x11, 0x01)));
        assert_eq!(p.product_hint(), Some(Product::Genoa));
        assert_eq!(p.mitigation_vectors(), None);
        assert!(p.reserved_nonzero().is_empty());
        assert!(format!("{p:?}").contains("cpuid: (25, 17, 1)"));
    }

    #[test]
    fn v4_and_v5_mitigation_vectors() {
        for version in [4, 5] {
            let r = sample(version);
            let p = AttestationReport::from_bytes(r.as_bytes()).unwrap();
            assert_eq!(p.mitigation_vectors(), Some((0x1234, 0x5678)));
            assert!(p.reserved_nonzero().is_empty());
            assert_eq!(p.as_bytes(), r.as_bytes());
            assert_eq!(&p.signed_bytes()[0x1F8..0x200], &0x1234u64.to_le_bytes());
        }
        // The same bytes in a v3 report are reserved: accepted, but flagged.
        let mut r = sample(5);
        r.version = U32::new(3);
        let p = AttestationReport::from_bytes(r.as_bytes()).unwrap();
        assert_eq!(p.mitigation_vectors(), None);
        assert_eq!(p.reserved_nonzero(), ["0x1F8..0x208"]);
    }

    #[test]
    fn product_hint_v2_turin() {
        let mut r = sample(2);
        r.chip_id = [0; 64];
        assert!(r.is_chip_id_masked());
        assert_eq!(r.product_hint(), None);
        r.chip_id[3] = 0x42;
        assert!(!r.is_chip_id_masked());
        assert_eq!(r.product_hint(), Some(Product::Turin));
        r.chip_id[8] = 1;
        assert_eq!(r.product_hint(), None);
        let mut r = sample(3);
        r.cpuid_fam_id = 0x1A;
        r.cpuid_mod_id = 0x02;
        assert_eq!(r.product_hint(), Some(Product::Turin));
        r.cpuid_fam_id = 0x42;
        assert_eq!(r.product_hint(), None);
    }

    #[test]
    fn reserved_ranges_are_reported_not_rejected() {
        let mut r = sample(2);
        r.key_info = U32::new(r.key_info.get() | 0x20);
        r.reserved_04c[0] = 1;
        r.cpuid_step = 1;
        r.reserved_1eb = 1;
        r.reserved_1ef = 1;
        r.current_mit_vector = U64::new(1);
        r.reserved_208[0x97] = 1;
        r.signature.reserved[0] = 1;
        let p = AttestationReport::from_bytes(r.as_bytes()).unwrap();
        assert_eq!(
            p.reserved_nonzero(),
            [
                "KEY_INFO[31:5]",
                "0x04C..0x050",
                "0x188..0x1A0",
                "0x1EB",
                "0x1EF",
                "0x1F8..0x208",
                "0x208..0x2A0",
                "0x330..0x4A0 (signature reserved)"
            ]
        );
        assert_eq!(p.as_bytes(), r.as_bytes());
        let mut r = sample(3);
        r.reserved_18b[0x14] = 1;
        assert_eq!(r.reserved_nonzero(), ["0x18B..0x1A0"]);
        assert!(format!("{r:?}").contains("reserved_nonzero"));
    }

    #[test]
    fn wrong_length() {
        let bytes = sample(2).to_bytes();
        for len in [0, 0x49F] {
            assert_eq!(
                AttestationReport::from_bytes(&bytes[..len]),
                Err(AbiError::Length {
                    what: WHAT,
                    expected: REPORT_LEN,
                    actual: len
                })
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            AttestationReport::from_bytes(&long),
            Err(AbiError::Length {
                what: WHAT,
                expected: REPORT_LEN,
                actual: 0x4A1
            })
        );
    }

    #[test]
    fn wrong_version() {
        for version in [0, 1, 6, 0xFFFF_FFFF] {
            let mut r = sample(2);
            r.version = U32::new(version);
            assert_eq!(
                AttestationReport::from_bytes(r.as_bytes()),
                Err(AbiError::UnsupportedVersion {
                    what: WHAT,
                    version
                })
            );
        }
    }

    #[test]
    fn byte_exact_round_trip_of_arbitrary_bytes() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..64u32 {
            let mut bytes = [0u8; REPORT_LEN];
            for b in &mut bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = (state >> 24) as u8;
            }
            let version = 2 + round % 4;
            bytes[..4].copy_from_slice(&version.to_le_bytes());
            let p = AttestationReport::from_bytes(&bytes).unwrap();
            assert_eq!(p.as_bytes(), &bytes[..]);
            assert_eq!(p.to_bytes(), bytes.to_vec());
            assert_eq!(p.signed_bytes(), &bytes[..SIGNED_LEN]);
            assert_eq!(p.version(), version);
            // Debug and the accessors never panic on arbitrary data.
            let _ = format!("{p:?}");
            let _ = (p.product_hint(), p.key_info(), p.reserved_nonzero());
        }
    }

    #[test]
    fn key_info_bits() {
        for raw in [0u32, 1, 2, 3, 0x1C, 0x1F, 0x20, 0xFFFF_FFFF, 0x8] {
            assert_eq!(KeyInfo::from_raw(raw).to_raw(), raw);
        }
        assert_eq!(KeyInfo::from_raw(0).signing_key, SigningKey::Vcek);
        assert_eq!(KeyInfo::from_raw(1 << 2).signing_key, SigningKey::Vlek);
        assert_eq!(KeyInfo::from_raw(7 << 2).signing_key, SigningKey::None);
        assert_eq!(
            KeyInfo::from_raw(3 << 2).signing_key,
            SigningKey::Reserved(3)
        );
        assert_eq!(KeyInfo::from_raw(0x20).reserved, 0x20);
        for bits in 0..8 {
            assert_eq!(SigningKey::from_bits(bits).bits(), bits);
        }
    }
}
