//! Assembling and signing SNP attestation reports (reference §2.10).
//!
//! [`ReportInputs`] holds every field the firmware knows when a guest asks
//! for a report; [`build_report`] lays them out in the report's version and
//! signs bytes `[0, 0x2A0)` with the chosen key ([`ReportSigner`]), or
//! leaves the report unsigned with SIGNING_KEY = NONE.

use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::{Product, TcbVersion};
use sev_abi::report::{
    AttestationReport, KeyInfo, SigningKey, REPORT_LEN, SIG_ALGO_ECDSA_P384_SHA384,
};
use sev_abi::status::FirmwareStatus;
use sev_crypto::ecdsa::P384SigningKey;
use sev_crypto::report::sign_report;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use super::{GuestContext, SnpPlatformView};

/// The report version the model produces for a product: 5 (with the
/// mitigation vectors) on Turin, 3 (with the CPUID bytes) on Milan and Genoa.
pub const fn report_version(product: Product) -> u32 {
    match product {
        Product::Turin => 5,
        _ => 3,
    }
}

/// Splits CPUID Fn0000_0001_EAX into the report's `(family, model,
/// stepping)` bytes: family = extended family + base family, model =
/// extended model << 4 | base model.
pub const fn cpuid_fms_bytes(fms: u32) -> (u8, u8, u8) {
    let base_family = (fms >> 8) & 0xF;
    let ext_family = (fms >> 20) & 0xFF;
    let base_model = (fms >> 4) & 0xF;
    let ext_model = (fms >> 16) & 0xF;
    (
        (base_family + ext_family) as u8,
        ((ext_model << 4) | base_model) as u8,
        (fms & 0xF) as u8,
    )
}

/// Everything that goes into a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportInputs {
    /// The product (decides the chip-id length).
    pub product: Product,
    /// Report version (see [`report_version`]); 2 leaves the CPUID bytes
    /// out, below 4 the mitigation vectors.
    pub version: u32,
    /// GUEST_SVN (ID block).
    pub guest_svn: u32,
    /// The guest policy.
    pub policy: SnpPolicy,
    /// FAMILY_ID (ID block).
    pub family_id: [u8; 16],
    /// IMAGE_ID (ID block).
    pub image_id: [u8; 16],
    /// The VMPL the guest asked for.
    pub vmpl: u32,
    /// CURRENT_TCB.
    pub current_tcb: TcbVersion,
    /// REPORTED_TCB (the TCB of the signing VCEK).
    pub reported_tcb: TcbVersion,
    /// COMMITTED_TCB.
    pub committed_tcb: TcbVersion,
    /// LAUNCH_TCB.
    pub launch_tcb: TcbVersion,
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// AUTHOR_KEY_EN (KEY_INFO bit 0).
    pub author_key_en: bool,
    /// MASK_CHIP_KEY (KEY_INFO bit 1).
    pub mask_chip_key: bool,
    /// REPORT_DATA from the guest.
    pub report_data: [u8; 64],
    /// MEASUREMENT (the launch digest).
    pub measurement: SnpLaunchDigest,
    /// HOST_DATA.
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST.
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST.
    pub author_key_digest: [u8; 48],
    /// REPORT_ID.
    pub report_id: [u8; 32],
    /// REPORT_ID_MA (all 0xFF without a migration agent).
    pub report_id_ma: [u8; 32],
    /// CPUID Fn0000_0001_EAX of the platform.
    pub fms: u32,
    /// The chip id (only the product's [`Product::chip_id_len`] bytes are
    /// copied).
    pub chip_id: [u8; 64],
    /// MASK_CHIP_ID: the report carries a zero chip id.
    pub mask_chip_id: bool,
    /// Current firmware `(major, minor, build)`.
    pub current_version: (u8, u8, u8),
    /// Committed firmware `(major, minor, build)`.
    pub committed_version: (u8, u8, u8),
    /// LAUNCH_MIT_VECTOR (v4+).
    pub launch_mit_vector: u64,
    /// CURRENT_MIT_VECTOR (v4+).
    pub current_mit_vector: u64,
}

impl ReportInputs {
    /// Collects the inputs from a guest context and the platform, with the
    /// guest's `report_data` and `vmpl`. The committed version is taken to
    /// be the current one; mitigation vectors are zero.
    pub fn from_context(
        gctx: &GuestContext,
        platform: &SnpPlatformView,
        report_data: [u8; 64],
        vmpl: u32,
    ) -> Self {
        let version = (platform.api_major, platform.api_minor, platform.build);
        Self {
            product: platform.product,
            version: report_version(platform.product),
            guest_svn: gctx.id_block.guest_svn,
            policy: gctx.policy,
            family_id: gctx.id_block.family_id,
            image_id: gctx.id_block.image_id,
            vmpl,
            current_tcb: platform.current_tcb,
            reported_tcb: platform.reported_tcb,
            committed_tcb: platform.committed_tcb,
            launch_tcb: gctx.launch_tcb,
            platform_info: platform.platform_info,
            author_key_en: gctx.author_key_en,
            mask_chip_key: platform.mask_chip_key,
            report_data,
            measurement: gctx.ld,
            host_data: gctx.host_data,
            id_key_digest: gctx.id_key_digest,
            author_key_digest: gctx.author_key_digest,
            report_id: gctx.report_id,
            report_id_ma: gctx.report_id_ma,
            fms: platform.fms,
            chip_id: platform.chip_id,
            mask_chip_id: platform.mask_chip_id,
            current_version: version,
            committed_version: version,
            launch_mit_vector: 0,
            current_mit_vector: 0,
        }
    }
}

/// Which key signs a report.
#[derive(Clone, Copy)]
pub enum ReportSigner<'a> {
    /// The VCEK (SIGNING_KEY 0).
    Vcek(&'a P384SigningKey),
    /// The VLEK (SIGNING_KEY 1).
    Vlek(&'a P384SigningKey),
    /// No key (SIGNING_KEY 7): the report is unsigned.
    None,
}

impl core::fmt::Debug for ReportSigner<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Vcek(_) => "Vcek",
            Self::Vlek(_) => "Vlek",
            Self::None => "None",
        })
    }
}

/// Lays out the report (unsigned; signature slot zero, SIGNING_KEY from
/// `signing_key`).
pub fn assemble_report(inputs: &ReportInputs, signing_key: SigningKey) -> AttestationReport {
    let mut r = AttestationReport::new_zeroed();
    r.version = U32::new(inputs.version);
    r.guest_svn = U32::new(inputs.guest_svn);
    r.policy = inputs.policy;
    r.family_id = inputs.family_id;
    r.image_id = inputs.image_id;
    r.vmpl = U32::new(inputs.vmpl);
    r.signature_algo = U32::new(SIG_ALGO_ECDSA_P384_SHA384);
    r.current_tcb = U64::new(inputs.current_tcb.raw());
    r.platform_info = U64::new(inputs.platform_info);
    r.key_info = U32::new(
        KeyInfo {
            author_key_en: inputs.author_key_en,
            mask_chip_key: inputs.mask_chip_key,
            signing_key,
            reserved: 0,
        }
        .to_raw(),
    );
    r.report_data = inputs.report_data;
    r.measurement = inputs.measurement;
    r.host_data = inputs.host_data;
    r.id_key_digest = inputs.id_key_digest;
    r.author_key_digest = inputs.author_key_digest;
    r.report_id = inputs.report_id;
    r.report_id_ma = inputs.report_id_ma;
    r.reported_tcb = U64::new(inputs.reported_tcb.raw());
    if inputs.version >= 3 {
        let (family, model, stepping) = cpuid_fms_bytes(inputs.fms);
        r.cpuid_fam_id = family;
        r.cpuid_mod_id = model;
        r.cpuid_step = stepping;
    }
    if !inputs.mask_chip_id {
        let len = inputs.product.chip_id_len().min(64);
        r.chip_id[..len].copy_from_slice(&inputs.chip_id[..len]);
    }
    r.committed_tcb = U64::new(inputs.committed_tcb.raw());
    let (major, minor, build) = inputs.current_version;
    r.current_major = major;
    r.current_minor = minor;
    r.current_build = build;
    let (major, minor, build) = inputs.committed_version;
    r.committed_major = major;
    r.committed_minor = minor;
    r.committed_build = build;
    r.launch_tcb = U64::new(inputs.launch_tcb.raw());
    if inputs.version >= 4 {
        r.launch_mit_vector = U64::new(inputs.launch_mit_vector);
        r.current_mit_vector = U64::new(inputs.current_mit_vector);
    }
    r
}

/// Builds and signs a report. Signing failures (which the signing library
/// never reports for a valid key) answer `HWERROR_PLATFORM`.
pub fn build_report(
    inputs: &ReportInputs,
    signer: ReportSigner<'_>,
) -> Result<AttestationReport, FirmwareStatus> {
    let (signing_key, key) = match signer {
        ReportSigner::Vcek(key) => (SigningKey::Vcek, Some(key)),
        ReportSigner::Vlek(key) => (SigningKey::Vlek, Some(key)),
        ReportSigner::None => (SigningKey::None, None),
    };
    let report = assemble_report(inputs, signing_key);
    let Some(key) = key else {
        return Ok(report);
    };
    let mut bytes = [0u8; REPORT_LEN];
    bytes.copy_from_slice(report.as_bytes());
    sign_report(&mut bytes, key).map_err(|_| FirmwareStatus::HWERROR_PLATFORM)?;
    AttestationReport::read_from_bytes(&bytes).map_err(|_| FirmwareStatus::HWERROR_PLATFORM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev_abi::launch_digest::SnpLaunchDigest;

    pub(crate) fn inputs(product: Product) -> ReportInputs {
        ReportInputs {
            product,
            version: report_version(product),
            guest_svn: 3,
            policy: SnpPolicy::from_raw(0x3_0000),
            family_id: [1; 16],
            image_id: [2; 16],
            vmpl: 1,
            current_tcb: TcbVersion(0x7308_0000_0000_0004),
            reported_tcb: TcbVersion(0x7308_0000_0000_0003),
            committed_tcb: TcbVersion(0x7307_0000_0000_0003),
            launch_tcb: TcbVersion(0x7306_0000_0000_0003),
            platform_info: 0x25,
            author_key_en: true,
            mask_chip_key: false,
            report_data: [3; 64],
            measurement: SnpLaunchDigest::new([4; 48]),
            host_data: [5; 32],
            id_key_digest: [6; 48],
            author_key_digest: [7; 48],
            report_id: [8; 32],
            report_id_ma: [0xFF; 32],
            fms: 0x00A1_0F11,
            chip_id: [9; 64],
            mask_chip_id: false,
            current_version: (1, 55, 25),
            committed_version: (1, 55, 24),
            launch_mit_vector: 0x11,
            current_mit_vector: 0x22,
        }
    }

    #[test]
    fn fields_and_signature() {
        let key = P384SigningKey::generate();
        let i = inputs(Product::Genoa);
        let r = build_report(&i, ReportSigner::Vcek(&key)).unwrap();
        sev_crypto::report::verify_report_signature(r.as_bytes(), &key.public_key()).unwrap();
        assert_eq!(r.version(), 3);
        assert_eq!(r.cpuid(), Some((0x19, 0x11, 1)));
        assert_eq!(r.product_hint(), Some(Product::Genoa));
        assert_eq!(r.key_info().signing_key, SigningKey::Vcek);
        assert!(r.key_info().author_key_en);
        assert_eq!(r.chip_id, [9; 64]);
        assert_eq!(r.mitigation_vectors(), None);
        assert_eq!(r.launch_mit_vector.get(), 0);
        assert_eq!(r.current_version(), (1, 55, 25));
        assert_eq!(r.committed_version(), (1, 55, 24));
        assert!(r.reserved_nonzero().is_empty());
    }

    #[test]
    fn turin_v5_and_unsigned() {
        let mut i = inputs(Product::Turin);
        i.fms = 0x00B0_0F21;
        let key = P384SigningKey::generate();
        let r = build_report(&i, ReportSigner::Vlek(&key)).unwrap();
        assert_eq!(r.version(), 5);
        assert_eq!(r.mitigation_vectors(), Some((0x11, 0x22)));
        assert_eq!(&r.chip_id[..8], &[9; 8]);
        assert!(r.chip_id[8..].iter().all(|b| *b == 0));
        assert_eq!(r.key_info().signing_key, SigningKey::Vlek);
        assert_eq!(r.product_hint(), Some(Product::Turin));

        i.mask_chip_id = true;
        i.mask_chip_key = true;
        let r = build_report(&i, ReportSigner::None).unwrap();
        assert!(r.is_chip_id_masked());
        assert_eq!(r.key_info().signing_key, SigningKey::None);
        assert!(r.key_info().mask_chip_key);
        assert!(r.as_bytes()[0x2A0..].iter().all(|b| *b == 0));
        assert!(format!("{:?}", ReportSigner::None).contains("None"));
    }
}
