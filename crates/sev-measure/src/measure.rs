//! Predicting a launch digest: the sequence of measurements QEMU (or a cloud
//! VMM) makes the AMD-SP perform, per mode, as sev-snp-measure 0.0.13 computes
//! it (`shared/spec/measurement.md`).
//!
//! | mode | digest |
//! |---|---|
//! | `sev` | SHA-256(OVMF ‖ [hashes table]) |
//! | `seves` | SHA-256(OVMF ‖ [hashes table] ‖ VMSA_0 ‖ … ‖ VMSA_{n-1}) |
//! | `snp` | SHA-384 PAGE_INFO chain: OVMF pages, metadata sections in file order, VMSAs |
//! | `snp:ovmf-hash` | the SNP chain over the OVMF pages only (a seed for `snp`) |
//! | `snp:svsm` | OVMF pages, SVSM pages, the SVSM's metadata sections, SVSM VMSAs |

use sev_abi::launch_digest::{LaunchDigest, SnpLaunchDigest};
use sev_abi::snp_launch::PageType;
use sev_abi::vmsa::SaveArea;
use zerocopy::IntoBytes;

use crate::error::{MeasureError, Result};
use crate::hashes::{KernelHashes, PADDED_TABLE_LEN};
use crate::log::{LaunchLog, LogPageType};
use crate::ovmf::{OvmfImage, SectionKind, SevMetadata, TableArea};
use crate::sev::SevDigestBuilder;
use crate::snp::{SnpDigestBuilder, PAGE_LEN};
use crate::vmsa::{reset_vmsa, svsm_vmsa, FpuState, VmmType, BSP_RESET_EIP};

/// The most vCPUs sevkit measures (KVM's `KVM_MAX_VCPUS` on x86).
pub const MAX_VCPUS: u32 = 4096;

/// The most memory the SEV metadata sections may describe (256 MiB; real
/// OVMF builds describe well under 1 MiB).
pub const MAX_METADATA_BYTES: u64 = 256 << 20;

/// The guest mode to predict the digest of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Legacy SEV.
    Sev,
    /// SEV-ES.
    SevEs,
    /// SEV-SNP.
    Snp,
    /// The SNP digest of the OVMF pages alone.
    SnpOvmfHash,
    /// SEV-SNP with a pre-IGVM Coconut-SVSM.
    SnpSvsm,
}

impl Mode {
    /// Parses a mode name: `sev`, `seves` / `sev-es`, `snp` / `sev-snp`,
    /// `snp:ovmf-hash`, `snp:svsm` / `sev-snp:svsm` (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sev" => Self::Sev,
            "seves" | "sev-es" => Self::SevEs,
            "snp" | "sev-snp" => Self::Snp,
            "snp:ovmf-hash" | "sev-snp:ovmf-hash" => Self::SnpOvmfHash,
            "snp:svsm" | "sev-snp:svsm" => Self::SnpSvsm,
            _ => return None,
        })
    }

    /// The canonical (sev-snp-measure) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sev => "sev",
            Self::SevEs => "seves",
            Self::Snp => "snp",
            Self::SnpOvmfHash => "snp:ovmf-hash",
            Self::SnpSvsm => "snp:svsm",
        }
    }

    /// The name sev-snp-measure's `--verbose` output uses (`SEV`, `SEV_ES`,
    /// `SEV_SNP`, `SEV_SNP_SVSM`).
    pub fn verbose_name(self) -> &'static str {
        match self {
            Self::Sev => "SEV",
            Self::SevEs => "SEV_ES",
            Self::Snp | Self::SnpOvmfHash => "SEV_SNP",
            Self::SnpSvsm => "SEV_SNP_SVSM",
        }
    }

    /// True for the modes that build VMSAs.
    pub fn has_vmsas(self) -> bool {
        matches!(self, Self::SevEs | Self::Snp | Self::SnpSvsm)
    }
}

/// The SVSM inputs of `snp:svsm`.
#[derive(Debug, Clone, Copy)]
pub struct SvsmInput<'a> {
    /// The SVSM binary.
    pub image: &'a [u8],
    /// Size of the OVMF variable store mapped between SVSM and OVMF.
    pub vars_size: u64,
}

/// Everything a prediction depends on. Start from [`MeasureParams::new`].
#[derive(Debug, Clone)]
pub struct MeasureParams<'a> {
    /// The mode.
    pub mode: Mode,
    /// The OVMF image.
    pub ovmf: &'a [u8],
    /// Number of vCPUs (SEV-ES, SNP, SVSM).
    pub vcpus: u32,
    /// The vCPU signature QEMU puts in RDX (see [`crate::vcpu`]).
    pub vcpu_sig: u32,
    /// The hypervisor.
    pub vmm: VmmType,
    /// SNP guest features (VMSA SEV_FEATURES), 0x1 by default.
    pub guest_features: u64,
    /// Kernel, initrd and command line hashes of measured direct boot.
    pub kernel: Option<KernelHashes>,
    /// A precomputed SNP digest of the OVMF pages (`snp` only).
    pub snp_ovmf_hash: Option<&'a [u8]>,
    /// The SVSM (`snp:svsm` only).
    pub svsm: Option<SvsmInput<'a>>,
    /// The host's x87/SSE reset state (QEMU only).
    pub fpu: FpuState,
    /// Refuse an SNP image without SEV metadata (QEMU cannot launch it)
    /// instead of measuring it the way sev-snp-measure does.
    pub strict: bool,
}

impl<'a> MeasureParams<'a> {
    /// Defaults as sev-snp-measure's: 1 vCPU, signature 0, QEMU, guest
    /// features 0x1, no kernel, KVM_SEV_INIT2 reset state.
    pub fn new(mode: Mode, ovmf: &'a [u8]) -> Self {
        Self {
            mode,
            ovmf,
            vcpus: 1,
            vcpu_sig: 0,
            vmm: VmmType::Qemu,
            guest_features: 0x1,
            kernel: None,
            snp_ovmf_hash: None,
            svsm: None,
            fpu: FpuState::Init2,
            strict: false,
        }
    }
}

/// A predicted launch digest, the log of how it was reached, and the VMSAs
/// that went into it.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The mode measured.
    pub mode: Mode,
    /// The digest: [`LaunchDigest::Sev`] (SEV, SEV-ES) or
    /// [`LaunchDigest::Snp`].
    pub digest: LaunchDigest,
    /// Every measured item, in order; its final digest is [`Self::digest`].
    pub log: LaunchLog,
    /// Things the owner should know about this digest (e.g. that no real
    /// launch can produce it).
    pub warnings: Vec<String>,
    vcpus: u32,
    bsp_vmsa: Option<SaveArea>,
    ap_vmsa: Option<SaveArea>,
}

impl Measurement {
    /// Number of VMSAs measured.
    pub fn vmsa_count(&self) -> u32 {
        if self.bsp_vmsa.is_some() {
            self.vcpus
        } else {
            0
        }
    }

    /// The VMSA of vCPU `index`, as measured.
    pub fn vmsa(&self, index: u32) -> Option<&SaveArea> {
        if index >= self.vmsa_count() {
            None
        } else if index == 0 {
            self.bsp_vmsa.as_ref()
        } else {
            self.ap_vmsa.as_ref()
        }
    }

    /// The VMSA page of vCPU `index` as bytes (what `--dump-vmsa` writes).
    pub fn vmsa_page(&self, index: u32) -> Option<&[u8]> {
        self.vmsa(index).map(IntoBytes::as_bytes)
    }
}

/// Predicts the launch digest.
pub fn measure(p: &MeasureParams<'_>) -> Result<Measurement> {
    if p.snp_ovmf_hash.is_some() && p.mode != Mode::Snp {
        return Err(not_in_mode(
            "--snp-ovmf-hash",
            p.mode,
            "a precomputed OVMF digest only seeds the SNP chain",
        ));
    }
    if p.svsm.is_some() && p.mode != Mode::SnpSvsm {
        return Err(not_in_mode(
            "--svsm",
            p.mode,
            "an SVSM is measured in mode snp:svsm only",
        ));
    }
    if p.mode.has_vmsas() && p.vcpus > MAX_VCPUS {
        return Err(MeasureError::TooManyVcpus {
            vcpus: p.vcpus,
            max: MAX_VCPUS,
        });
    }
    match p.mode {
        Mode::Sev | Mode::SevEs => measure_sev(p),
        Mode::Snp => measure_snp(p),
        Mode::SnpOvmfHash => {
            let ovmf = OvmfImage::parse(p.ovmf)?;
            let (digest, log) = snp_ovmf_digest(&ovmf)?;
            Ok(Measurement {
                mode: p.mode,
                warnings: Vec::new(),
                digest: digest.into(),
                log,
                vcpus: 0,
                bsp_vmsa: None,
                ap_vmsa: None,
            })
        }
        Mode::SnpSvsm => measure_svsm(p),
    }
}

/// The SNP chain over the OVMF pages alone (`snp:ovmf-hash`).
pub fn snp_ovmf_digest(ovmf: &OvmfImage<'_>) -> Result<(SnpLaunchDigest, LaunchLog)> {
    check_page_multiple("firmware", ovmf.data())?;
    let mut ld = SnpDigestBuilder::new();
    ld.normal_pages("ovmf", ovmf.gpa(), ovmf.data());
    Ok(ld.finish())
}

fn not_in_mode(option: &'static str, mode: Mode, why: &'static str) -> MeasureError {
    MeasureError::NotInMode {
        option,
        mode: mode.name(),
        why,
    }
}

fn check_page_multiple(what: &'static str, data: &[u8]) -> Result<()> {
    if data.len().is_multiple_of(PAGE_LEN) {
        Ok(())
    } else {
        Err(MeasureError::ImageNotPageAligned {
            what,
            len: data.len(),
        })
    }
}

/// The AP reset EIP, required for SEV-ES and SNP.
fn ap_reset_eip(ovmf: &OvmfImage<'_>, mode: Mode, vcpus: u32) -> Result<u32> {
    let eip = ovmf
        .sev_es_reset_eip()?
        .ok_or(MeasureError::MissingResetBlock {
            mode: match mode {
                Mode::SevEs => "SEV-ES",
                _ => "SEV-SNP",
            },
        })?;
    if eip == 0 && vcpus > 1 {
        return Err(MeasureError::ResetVectorZero { vcpus });
    }
    Ok(eip)
}

/// The hashes table area SEV and SEV-ES write the table to.
fn sev_hash_table(ovmf: &OvmfImage<'_>) -> Result<TableArea> {
    let area = ovmf.hash_table()?.ok_or(MeasureError::NoHashTable {
        reason: "no SEV hash table entry 7255371f-3a3b-4b04-927b-1da6efa8d454 in its footer table",
    })?;
    if area.base == 0 {
        return Err(MeasureError::NoHashTable {
            reason: "its SEV hash table entry has base 0",
        });
    }
    if (area.size as usize) < PADDED_TABLE_LEN {
        return Err(MeasureError::NoHashTable {
            reason: "its SEV hash table area is smaller than the 176-byte table",
        });
    }
    Ok(area)
}

fn measure_sev(p: &MeasureParams<'_>) -> Result<Measurement> {
    let ovmf = OvmfImage::parse(p.ovmf)?;
    let eip = if p.mode == Mode::SevEs {
        Some(ap_reset_eip(&ovmf, p.mode, p.vcpus)?)
    } else {
        None
    };
    let table = p
        .kernel
        .map(|k| sev_hash_table(&ovmf).map(|area| (k, area)));
    let table = table.transpose()?;

    let mut ld = SevDigestBuilder::new();
    ld.update("ovmf", Some(ovmf.gpa()), LogPageType::SevData, ovmf.data());
    if let Some((hashes, area)) = table {
        ld.update(
            "KERNEL_HASHES",
            Some(u64::from(area.base)),
            LogPageType::SevData,
            &hashes.table_bytes(),
        );
    }
    let (mut bsp_vmsa, mut ap_vmsa) = (None, None);
    if let Some(ap_eip) = eip {
        let bsp = reset_vmsa(BSP_RESET_EIP, 0, p.vcpu_sig, p.vmm, p.fpu);
        let ap = reset_vmsa(ap_eip, 0, p.vcpu_sig, p.vmm, p.fpu);
        for i in 0..p.vcpus {
            let page = if i == 0 { &bsp } else { &ap };
            ld.update(
                &format!("vmsa[{i}]"),
                None,
                LogPageType::Vmsa,
                page.as_bytes(),
            );
        }
        bsp_vmsa = Some(bsp);
        ap_vmsa = Some(ap);
    }
    let (digest, log) = ld.finish();
    Ok(Measurement {
        mode: p.mode,
        warnings: Vec::new(),
        digest: digest.into(),
        log,
        vcpus: p.vcpus,
        bsp_vmsa,
        ap_vmsa,
    })
}

/// What a metadata section turns into, checked before anything is measured.
enum Step {
    Pages(PageType, u64),
    Single(PageType),
    KernelPage(Vec<u8>),
    Skip,
}

fn plan_sections(
    image: &OvmfImage<'_>,
    meta: &SevMetadata,
    kernel: Option<&KernelHashes>,
    vmm: VmmType,
) -> Result<Vec<(SectionKind, u32, Step)>> {
    let mut plan = Vec::with_capacity(meta.sections.len());
    let mut total: u64 = 0;
    for (index, s) in meta.sections.iter().enumerate() {
        let kind = s.kind().ok_or(MeasureError::UnknownSectionType {
            index,
            value: s.section_type,
        })?;
        // What the launch refuses is not measured.
        s.check(index, kind)?;
        let pages =
            |page_type: PageType| Step::Pages(page_type, u64::from(s.size) / PAGE_LEN as u64);
        let step = match kind {
            SectionKind::SnpSecMem if vmm == VmmType::Gce => pages(PageType::Unmeasured),
            SectionKind::SnpSecMem | SectionKind::SvsmCaa => pages(PageType::Zero),
            SectionKind::SnpSecrets => Step::Single(PageType::Secrets),
            SectionKind::Cpuid if vmm == VmmType::Ec2 => Step::Skip,
            SectionKind::Cpuid => Step::Single(PageType::Cpuid),
            SectionKind::SnpKernelHashes => match kernel {
                None => pages(PageType::Zero),
                Some(hashes) => {
                    let area = image.hash_table()?.ok_or(MeasureError::NoHashTable {
                        reason: "it lists an SNP_KERNEL_HASHES section but has no SEV hash \
                                 table entry 7255371f-3a3b-4b04-927b-1da6efa8d454",
                    })?;
                    let offset = area.base & 0xfff;
                    let page = hashes
                        .page(offset as usize)
                        .filter(|_| s.size as usize == PAGE_LEN)
                        .ok_or(MeasureError::KernelHashesLayout {
                            size: s.size,
                            offset,
                        })?;
                    Step::KernelPage(page)
                }
            },
        };
        if let Step::Pages(_, n) = step {
            total = total.saturating_add(n.saturating_mul(PAGE_LEN as u64));
            if total > MAX_METADATA_BYTES {
                return Err(MeasureError::MetadataTooLarge {
                    bytes: total,
                    limit: MAX_METADATA_BYTES,
                });
            }
        }
        plan.push((kind, s.gpa, step));
    }
    if kernel.is_some() && !meta.has(SectionKind::SnpKernelHashes) {
        return Err(MeasureError::NoHashTable {
            reason: "its SEV metadata has no SNP_KERNEL_HASHES section",
        });
    }
    Ok(plan)
}

fn measure_sections(ld: &mut SnpDigestBuilder, plan: Vec<(SectionKind, u32, Step)>, vmm: VmmType) {
    let mut cpuid_late = Vec::new();
    for (kind, gpa, step) in plan {
        let gpa64 = u64::from(gpa);
        match step {
            Step::Pages(page_type, n) => ld.empty_pages(kind.name(), page_type, gpa64, n),
            Step::Single(page_type) => ld.empty_pages(kind.name(), page_type, gpa64, 1),
            Step::KernelPage(page) => ld.normal_pages(kind.name(), gpa64, &page),
            Step::Skip => cpuid_late.push(gpa64),
        }
    }
    // EC2 measures the CPUID pages after all other sections.
    if vmm == VmmType::Ec2 {
        for gpa in cpuid_late {
            ld.empty_pages(SectionKind::Cpuid.name(), PageType::Cpuid, gpa, 1);
        }
    }
}

fn measure_snp(p: &MeasureParams<'_>) -> Result<Measurement> {
    let ovmf = OvmfImage::parse(p.ovmf)?;
    let mut warnings = Vec::new();
    let plan = match ovmf.metadata() {
        Some(meta) => plan_sections(&ovmf, meta, p.kernel.as_ref(), p.vmm)?,
        // sev-snp-measure measures such an image as firmware pages and VMSAs
        // only; print the same digest, but say that no launch produces it.
        None if !p.strict && p.kernel.is_none() => {
            warnings.push(format!(
                "no real launch can produce this digest: {}",
                MeasureError::MissingMetadata
            ));
            Vec::new()
        }
        None if p.kernel.is_some() => {
            return Err(MeasureError::NoHashTable {
                reason: "it has no SEV metadata, so no SNP_KERNEL_HASHES section",
            })
        }
        None => return Err(MeasureError::MissingMetadata),
    };
    let ap_eip = ap_reset_eip(&ovmf, p.mode, p.vcpus)?;
    let mut ld = if let Some(seed) = p.snp_ovmf_hash {
        let seed = SnpLaunchDigest::from_slice(seed)
            .map_err(|_| MeasureError::OvmfHashLength { len: seed.len() })?;
        SnpDigestBuilder::with_seed(seed)
    } else {
        check_page_multiple("firmware", ovmf.data())?;
        let mut ld = SnpDigestBuilder::new();
        ld.normal_pages("ovmf", ovmf.gpa(), ovmf.data());
        ld
    };
    measure_sections(&mut ld, plan, p.vmm);
    let bsp = reset_vmsa(BSP_RESET_EIP, p.guest_features, p.vcpu_sig, p.vmm, p.fpu);
    let ap = reset_vmsa(ap_eip, p.guest_features, p.vcpu_sig, p.vmm, p.fpu);
    for i in 0..p.vcpus {
        let page = if i == 0 { &bsp } else { &ap };
        ld.vmsa_page(&format!("vmsa[{i}]"), page.as_bytes());
    }
    let (digest, log) = ld.finish();
    Ok(Measurement {
        mode: p.mode,
        warnings,
        digest: digest.into(),
        log,
        vcpus: p.vcpus,
        bsp_vmsa: Some(bsp),
        ap_vmsa: Some(ap),
    })
}

fn measure_svsm(p: &MeasureParams<'_>) -> Result<Measurement> {
    let svsm_in = p.svsm.ok_or(MeasureError::Missing {
        mode: "snp:svsm",
        what: "an SVSM binary (--svsm) and the OVMF_VARS size (--vars-size or --vars-file)",
    })?;
    if p.vmm != VmmType::Qemu {
        return Err(not_in_mode(
            "--vmm-type other than QEMU",
            p.mode,
            "the SVSM layout is QEMU's (Coconut's pre-IGVM QEMU)",
        ));
    }
    if p.kernel.is_some() {
        return Err(not_in_mode(
            "--kernel",
            p.mode,
            "sev-snp-measure's SVSM layout measures no kernel hashes",
        ));
    }
    let ovmf = OvmfImage::parse(p.ovmf)?;
    let end = ovmf
        .gpa()
        .checked_sub(svsm_in.vars_size)
        .ok_or(MeasureError::SvsmLayout {
            svsm_len: svsm_in.image.len() as u64,
            vars_size: svsm_in.vars_size,
            ovmf_gpa: ovmf.gpa(),
        })?;
    let svsm = OvmfImage::parse_ending_at(svsm_in.image, end, "SVSM").map_err(|e| match e {
        MeasureError::ImageTooLarge { .. } => MeasureError::SvsmLayout {
            svsm_len: svsm_in.image.len() as u64,
            vars_size: svsm_in.vars_size,
            ovmf_gpa: ovmf.gpa(),
        },
        other => other,
    })?;
    let entry = svsm
        .svsm_info_offset()?
        .ok_or(MeasureError::MissingSvsmInfo)?;
    let rip = svsm.gpa().saturating_add(u64::from(entry));
    let plan = match svsm.metadata() {
        Some(meta) => plan_sections(&svsm, meta, None, VmmType::Qemu)?,
        None => Vec::new(),
    };
    check_page_multiple("firmware", ovmf.data())?;
    check_page_multiple("SVSM", svsm.data())?;
    let mut ld = SnpDigestBuilder::new();
    ld.normal_pages("ovmf", ovmf.gpa(), ovmf.data());
    ld.normal_pages("svsm", svsm.gpa(), svsm.data());
    measure_sections(&mut ld, plan, VmmType::Qemu);
    let vmsa = svsm_vmsa(rip, p.vcpu_sig, p.fpu);
    for i in 0..p.vcpus {
        ld.vmsa_page(&format!("vmsa[{i}]"), vmsa.as_bytes());
    }
    let (digest, log) = ld.finish();
    Ok(Measurement {
        mode: p.mode,
        warnings: Vec::new(),
        digest: digest.into(),
        log,
        vcpus: p.vcpus,
        bsp_vmsa: Some(vmsa.clone()),
        ap_vmsa: Some(vmsa),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogPageType;
    use crate::ovmf::tests::{amdsev_like, synthetic_image};
    use sev_abi::guid::{OVMF_SEV_ES_RESET_BLOCK, OVMF_SEV_HASH_TABLE_RV, OVMF_SVSM_INFO};
    use sha2::{Digest, Sha256};

    fn params(mode: Mode, image: &[u8]) -> MeasureParams<'_> {
        let mut p = MeasureParams::new(mode, image);
        p.vcpus = 2;
        p.vcpu_sig = 0x00A0_0F11;
        p
    }

    #[test]
    fn snp_log_lists_every_page_in_order() {
        let image = amdsev_like();
        let m = measure(&params(Mode::Snp, &image)).unwrap();
        assert_eq!(m.digest.len(), 48);
        assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
        let regions: Vec<&str> = m.log.entries.iter().map(|e| e.region.as_str()).collect();
        // 4 OVMF pages, SEC_MEM 9 + 3, SECRETS, CPUID, KERNEL_HASHES (zero), SEC_MEM 2, 2 VMSAs.
        assert_eq!(m.log.entries.len(), 4 + 12 + 1 + 1 + 1 + 2 + 2);
        assert_eq!(regions[0], "ovmf");
        assert_eq!(regions[4], "SNP_SEC_MEM");
        assert_eq!(regions[16], "SECRETS");
        assert_eq!(regions[17], "CPUID");
        assert_eq!(regions[18], "KERNEL_HASHES");
        assert_eq!(m.log.entries[18].page_type, LogPageType::Zero);
        assert_eq!(regions[21], "vmsa[0]");
        assert_eq!(m.log.entries[21].gpa, Some(crate::snp::VMSA_GPA));
        for (i, e) in m.log.entries.iter().enumerate() {
            assert_eq!(e.step, i);
        }
        assert_eq!(m.vmsa_count(), 2);
        assert_eq!(m.vmsa(1).unwrap().rip.get(), 0xB004);
        assert!(m.vmsa(2).is_none());
    }

    #[test]
    fn ovmf_hash_seed_gives_the_same_digest() {
        let image = amdsev_like();
        let full = measure(&params(Mode::Snp, &image)).unwrap();
        let ovmf = measure(&params(Mode::SnpOvmfHash, &image)).unwrap();
        let mut p = params(Mode::Snp, &image);
        p.snp_ovmf_hash = Some(&ovmf.digest);
        let seeded = measure(&p).unwrap();
        assert_eq!(seeded.digest, full.digest);
        assert_eq!(
            seeded.log.initial_digest.as_ref().unwrap().as_slice(),
            &ovmf.digest[..]
        );
        // The seeded log is the full log without the OVMF pages.
        assert_eq!(seeded.log.entries[0], {
            let mut e = full.log.entries[4].clone();
            e.step = 0;
            e
        });
        p.snp_ovmf_hash = Some(&ovmf.digest[..47]);
        assert!(matches!(
            measure(&p),
            Err(MeasureError::OvmfHashLength { len: 47 })
        ));
    }

    #[test]
    fn kernel_hashes_page_is_measured_normal() {
        let image = amdsev_like();
        let mut p = params(Mode::Snp, &image);
        let hashes = KernelHashes::compute(b"kernel", Some(b"initrd"), Some(b"console=ttyS0"));
        p.kernel = Some(hashes);
        let m = measure(&p).unwrap();
        let e = &m.log.entries[18];
        assert_eq!(e.region, "KERNEL_HASHES");
        assert_eq!(e.page_type, LogPageType::Normal);
        let page = hashes.page(0xC00).unwrap();
        assert_eq!(e.content_hash.as_slice(), &crate::snp::page_hash(&page)[..]);
    }

    #[test]
    fn cloud_vmm_orders() {
        let image = amdsev_like();
        let mut p = params(Mode::Snp, &image);
        p.vmm = VmmType::Ec2;
        let m = measure(&p).unwrap();
        let n = m.log.entries.len();
        assert_eq!(m.log.entries[n - 3].region, "CPUID");
        assert_eq!(m.log.entries[n - 3].page_type, LogPageType::Cpuid);
        p.vmm = VmmType::Gce;
        let m = measure(&p).unwrap();
        assert_eq!(m.log.entries[4].page_type, LogPageType::Unmeasured);
    }

    #[test]
    fn sev_and_seves_digests() {
        let image = amdsev_like();
        let m = measure(&params(Mode::Sev, &image)).unwrap();
        assert_eq!(m.digest, Sha256::digest(&image).to_vec());
        assert_eq!(m.vmsa_count(), 0);

        let hashes = KernelHashes::compute(b"k", None, None);
        let mut p = params(Mode::SevEs, &image);
        p.kernel = Some(hashes);
        let m = measure(&p).unwrap();
        let mut h = Sha256::new();
        h.update(&image);
        h.update(hashes.table_bytes());
        h.update(m.vmsa_page(0).unwrap());
        h.update(m.vmsa_page(1).unwrap());
        assert_eq!(m.digest, h.finalize().to_vec());
        assert_eq!(m.log.entries.len(), 4);
        assert_eq!(m.log.entries[1].gpa, Some(0x81_0C00));
        assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
        assert_eq!(m.vmsa(0).unwrap().sev_features.get(), 0);
    }

    #[test]
    fn missing_pieces_are_clear_errors() {
        let bare = synthetic_image(0x2000, &[], None);
        assert!(matches!(
            measure(&params(Mode::SevEs, &bare)),
            Err(MeasureError::MissingResetBlock { mode: "SEV-ES" })
        ));
        let mut p = params(Mode::Sev, &bare);
        p.kernel = Some(KernelHashes::compute(b"k", None, None));
        assert!(matches!(measure(&p), Err(MeasureError::NoHashTable { .. })));

        let es_only = synthetic_image(
            0x2000,
            &[(OVMF_SEV_ES_RESET_BLOCK, 0x80_B004u32.to_le_bytes().to_vec())],
            None,
        );
        assert!(measure(&params(Mode::SevEs, &es_only)).is_ok());
        // Like sev-snp-measure, a digest with a warning; refused when strict.
        let lenient = measure(&params(Mode::Snp, &es_only)).unwrap();
        assert_eq!(lenient.warnings.len(), 1);
        assert!(
            lenient.warnings[0].contains("no SEV metadata"),
            "{:?}",
            lenient.warnings
        );
        let mut strict = params(Mode::Snp, &es_only);
        strict.strict = true;
        assert!(matches!(
            measure(&strict),
            Err(MeasureError::MissingMetadata)
        ));

        let zero_eip = synthetic_image(0x2000, &[(OVMF_SEV_ES_RESET_BLOCK, vec![0; 4])], None);
        assert!(matches!(
            measure(&params(Mode::SevEs, &zero_eip)),
            Err(MeasureError::ResetVectorZero { vcpus: 2 })
        ));
        let mut one = params(Mode::SevEs, &zero_eip);
        one.vcpus = 1;
        assert!(measure(&one).is_ok());

        // --kernel in SNP with metadata but no KERNEL_HASHES section.
        let no_kh = synthetic_image(
            0x2000,
            &[(OVMF_SEV_ES_RESET_BLOCK, 0x80_B004u32.to_le_bytes().to_vec())],
            Some(&[(0x80_0000, 0x1000, 1), (0x80_1000, 0x1000, 2)]),
        );
        let mut p = params(Mode::Snp, &no_kh);
        assert!(measure(&p).is_ok());
        p.kernel = Some(KernelHashes::compute(b"k", None, None));
        let err = measure(&p).unwrap_err();
        assert!(err.to_string().contains("SNP_KERNEL_HASHES"), "{err}");
    }

    #[test]
    fn bad_sections_are_errors() {
        let eip = (OVMF_SEV_ES_RESET_BLOCK, 0x80_B004u32.to_le_bytes().to_vec());
        let unknown = synthetic_image(
            0x2000,
            std::slice::from_ref(&eip),
            Some(&[(0x80_0000, 0x1000, 7)]),
        );
        assert!(matches!(
            measure(&params(Mode::Snp, &unknown)),
            Err(MeasureError::UnknownSectionType { index: 0, value: 7 })
        ));
        // Unknown types do not matter to SEV-ES (as in sev-snp-measure).
        assert!(measure(&params(Mode::SevEs, &unknown)).is_ok());
        let ragged = synthetic_image(
            0x2000,
            std::slice::from_ref(&eip),
            Some(&[(0x80_0000, 0x1800, 1)]),
        );
        assert!(matches!(
            measure(&params(Mode::Snp, &ragged)),
            Err(MeasureError::SectionNotPageAligned { .. })
        ));
        // What the launch refuses: a GPA off a page boundary (for single
        // pages too), a section ending past 4 GiB; the last page below
        // 4 GiB is fine.
        for (section, refusal) in [
            ((0x80_0800, 0x1000, 1), Some("not page aligned")),
            ((0x80_0010, 0x1000, 2), Some("not page aligned")),
            ((0x80_0FFF, 0x1000, 3), Some("not page aligned")),
            ((0xFFFF_F000, 0x2000, 1), Some("ends past 4 GiB")),
            ((0xFFFF_E000, 0x3000, 4), Some("ends past 4 GiB")),
            ((0xFFFF_F000, 0x1000, 2), None),
        ] {
            let image = synthetic_image(0x2000, std::slice::from_ref(&eip), Some(&[section]));
            match (measure(&params(Mode::Snp, &image)), refusal) {
                (Ok(_), None) => {}
                (Err(e), Some(text)) => {
                    let shown = e.to_string();
                    assert!(
                        shown.starts_with("OVMF SEV metadata section 0 (") && shown.contains(text),
                        "{section:x?}: {shown}"
                    );
                }
                (got, _) => panic!("{section:x?}: {got:?}"),
            }
        }
        let huge = synthetic_image(
            0x2000,
            std::slice::from_ref(&eip),
            Some(&[(0, 0xFFFF_F000, 1), (0, 0xFFFF_F000, 1)]),
        );
        assert!(matches!(
            measure(&params(Mode::Snp, &huge)),
            Err(MeasureError::MetadataTooLarge { .. })
        ));
        // Kernel hashes table too close to the end of its page.
        let late = synthetic_image(
            0x2000,
            &[
                eip,
                (
                    OVMF_SEV_HASH_TABLE_RV,
                    [0x81_0FA0u32.to_le_bytes(), 0x60u32.to_le_bytes()].concat(),
                ),
            ],
            Some(&[(0x81_0000, 0x1000, 0x10)]),
        );
        let mut p = params(Mode::Snp, &late);
        p.kernel = Some(KernelHashes::compute(b"k", None, None));
        assert!(matches!(
            measure(&p),
            Err(MeasureError::KernelHashesLayout { .. })
        ));
        let mut ragged_image = amdsev_like();
        ragged_image.insert(0, 0);
        assert!(matches!(
            measure(&params(Mode::Snp, &ragged_image)),
            Err(MeasureError::ImageNotPageAligned { .. })
        ));
    }

    #[test]
    fn option_and_mode_mismatches() {
        let image = amdsev_like();
        let mut p = params(Mode::Sev, &image);
        p.snp_ovmf_hash = Some(&[0; 48]);
        assert!(matches!(measure(&p), Err(MeasureError::NotInMode { .. })));
        let mut p = params(Mode::SnpSvsm, &image);
        assert!(matches!(measure(&p), Err(MeasureError::Missing { .. })));
        p.vcpus = MAX_VCPUS + 1;
        assert!(matches!(
            measure(&p),
            Err(MeasureError::TooManyVcpus { .. })
        ));
    }

    #[test]
    fn svsm_mode() {
        let ovmf = amdsev_like();
        let svsm = synthetic_image(
            0x3000,
            &[(OVMF_SVSM_INFO, 0x1234u32.to_le_bytes().to_vec())],
            Some(&[(0x10_0000, 0x1000, 2), (0x10_1000, 0x1000, 4)]),
        );
        let mut p = params(Mode::SnpSvsm, &ovmf);
        p.svsm = Some(SvsmInput {
            image: &svsm,
            vars_size: 0x2000,
        });
        let m = measure(&p).unwrap();
        let svsm_gpa = crate::ovmf::FOUR_GIB - (0x4000 + 0x2000 + 0x3000);
        assert_eq!(m.vmsa(0).unwrap().rip.get(), svsm_gpa + 0x1234);
        assert_eq!(m.vmsa(1).unwrap(), m.vmsa(0).unwrap());
        assert_eq!(m.log.entries[4].region, "svsm");
        assert_eq!(m.log.entries[4].gpa, Some(svsm_gpa));
        assert_eq!(m.log.entries[7].region, "SECRETS");
        assert_eq!(m.log.entries[8].region, "SVSM_CAA");
        assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
        p.vmm = VmmType::Gce;
        assert!(measure(&p).is_err());
        p.vmm = VmmType::Qemu;
        p.svsm = Some(SvsmInput {
            image: &svsm,
            vars_size: u64::MAX,
        });
        assert!(matches!(measure(&p), Err(MeasureError::SvsmLayout { .. })));
        p.svsm = Some(SvsmInput {
            image: &ovmf,
            vars_size: 0,
        });
        assert!(matches!(measure(&p), Err(MeasureError::MissingSvsmInfo)));
    }

    #[test]
    fn every_mode_survives_mangled_images() {
        let good = amdsev_like();
        let modes = [
            Mode::Sev,
            Mode::SevEs,
            Mode::Snp,
            Mode::SnpOvmfHash,
            Mode::SnpSvsm,
        ];
        let mut seed = 0x1234_5678u32;
        for _ in 0..300 {
            let mut img = good.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (seed as usize >> 4) % img.len();
                img[at] = (seed >> 24) as u8;
            }
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let cut = (seed as usize >> 8) % 64;
            let img = &img[..img.len() - cut];
            for mode in modes {
                let mut p = params(mode, img);
                if mode == Mode::SnpSvsm {
                    p.svsm = Some(SvsmInput {
                        image: img,
                        vars_size: 0,
                    });
                }
                if let Ok(m) = measure(&p) {
                    assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
                }
            }
        }
    }
}
