//! The built-in demo image: it parses with sevkit's OVMF parser with every
//! entry and section as intended, sevkit measures it in every mode (SNP
//! strictly), and sev-snp-measure, the reference, prints the same digests.

use std::path::PathBuf;
use std::process::Command;

use sev_abi::guid::{
    OVMF_SEV_ES_RESET_BLOCK, OVMF_SEV_HASH_TABLE_RV, OVMF_SEV_METADATA, OVMF_SEV_SECRET_BLOCK,
};
use sev_measure::ovmf::{TableArea, FOUR_GIB};
use sev_measure::{
    measure, vcpu_type, KernelHashes, LogPageType, MeasureParams, Measurement, Mode, OvmfImage,
    SectionKind,
};
use sev_vmm::machine::demo_image::{
    demo_image, AP_RESET_ADDRESS, DEMO_IMAGE_GPA, DEMO_IMAGE_SIZE, HALT_STUB, HASH_TABLE_GPA,
    HASH_TABLE_SIZE, METADATA_END_GPA, METADATA_OFFSET, METADATA_OFFSET_FROM_END,
    RESET_VECTOR_OFFSET, SECRET_AREA_GPA, SECRET_AREA_SIZE, SECTIONS,
};

#[test]
fn size_and_determinism() {
    let image = demo_image();
    assert_eq!(image.len(), DEMO_IMAGE_SIZE);
    assert_eq!(image.len() % 4096, 0);
    assert_eq!(
        image.len() % 0x1_0000,
        0,
        "QEMU -bios wants 64 KiB multiples"
    );
    assert!(image.len() <= 1 << 20, "small, so the demo is fast");
    assert_eq!(image, demo_image());
    assert_eq!(DEMO_IMAGE_GPA, FOUR_GIB - DEMO_IMAGE_SIZE as u64);
}

#[test]
fn footer_table_entries() {
    let image = demo_image();
    let ovmf = OvmfImage::parse(&image).unwrap();
    assert!(ovmf.has_footer_table());
    assert_eq!(ovmf.gpa(), DEMO_IMAGE_GPA);
    // Exactly the four entries, nearest the footer first.
    let guids: Vec<_> = ovmf.footer_entries().iter().map(|e| e.guid).collect();
    assert_eq!(
        guids,
        [
            OVMF_SEV_ES_RESET_BLOCK,
            OVMF_SEV_SECRET_BLOCK,
            OVMF_SEV_HASH_TABLE_RV,
            OVMF_SEV_METADATA
        ]
    );
    assert_eq!(ovmf.sev_es_reset_eip().unwrap(), Some(AP_RESET_ADDRESS));
    assert_eq!(
        ovmf.secret_area().unwrap(),
        Some(TableArea {
            base: SECRET_AREA_GPA,
            size: SECRET_AREA_SIZE
        })
    );
    assert_eq!(
        ovmf.hash_table().unwrap(),
        Some(TableArea {
            base: HASH_TABLE_GPA,
            size: HASH_TABLE_SIZE
        })
    );
    assert_eq!(
        ovmf.entry(OVMF_SEV_METADATA),
        Some(&METADATA_OFFSET_FROM_END.to_le_bytes()[..])
    );
    assert_eq!(ovmf.svsm_info_offset().unwrap(), None);
}

#[test]
fn metadata_sections() {
    let image = demo_image();
    let ovmf = OvmfImage::parse(&image).unwrap();
    let meta = ovmf.metadata().expect("ASEV metadata");
    assert_eq!(meta.offset, METADATA_OFFSET);
    assert_eq!(meta.version, 1);
    assert_eq!(meta.size as usize, 16 + 12 * SECTIONS.len());
    let got: Vec<_> = meta
        .sections
        .iter()
        .map(|s| (s.gpa, s.size, s.kind()))
        .collect();
    let want: Vec<_> = SECTIONS
        .iter()
        .map(|s| (s.gpa, s.size, Some(s.kind)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        got.iter().map(|s| s.2.unwrap()).collect::<Vec<_>>(),
        [
            SectionKind::SnpSecMem,
            SectionKind::SnpSecMem,
            SectionKind::SnpSecrets,
            SectionKind::Cpuid,
            SectionKind::SnpKernelHashes,
            SectionKind::SnpSecMem,
        ]
    );
    assert!(!meta.has(SectionKind::SvsmCaa));
    // Page-aligned, non-overlapping, below METADATA_END_GPA, and far below
    // the image.
    let mut ranges: Vec<_> = meta
        .sections
        .iter()
        .map(|s| (s.gpa, s.gpa + s.size))
        .collect();
    ranges.sort_unstable();
    for s in &meta.sections {
        assert_eq!(s.gpa % 4096, 0);
        assert_eq!(s.size % 4096, 0);
        assert!(s.size > 0);
        assert!(s.gpa + s.size <= METADATA_END_GPA);
    }
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlap {w:x?}");
    }
    // The secret area lies in an SNP_SEC_MEM section; the hash table in the
    // SNP_KERNEL_HASHES page, as in OVMF.
    let within = |gpa: u32, size: u32, kind: SectionKind| {
        meta.sections
            .iter()
            .any(|s| s.kind() == Some(kind) && s.gpa <= gpa && gpa + size <= s.gpa + s.size)
    };
    assert!(within(
        SECRET_AREA_GPA,
        SECRET_AREA_SIZE,
        SectionKind::SnpSecMem
    ));
    assert!(within(
        HASH_TABLE_GPA,
        HASH_TABLE_SIZE,
        SectionKind::SnpKernelHashes
    ));
}

#[test]
fn reset_vector_and_ap_stub() {
    let image = demo_image();
    assert_eq!(
        &image[RESET_VECTOR_OFFSET..RESET_VECTOR_OFFSET + HALT_STUB.len()],
        &HALT_STUB
    );
    let ap = (u64::from(AP_RESET_ADDRESS) - DEMO_IMAGE_GPA) as usize;
    assert_eq!(&image[ap..ap + HALT_STUB.len()], &HALT_STUB);
    // Real mode at reset: CS base 0xFFFF0000, so both stubs are in the top
    // 64 KiB.
    assert_eq!(AP_RESET_ADDRESS & 0xFFFF_0000, 0xFFFF_0000);
}

fn params<'a>(mode: Mode, image: &'a [u8], vcpus: u32, vcpu: &str) -> MeasureParams<'a> {
    let mut p = MeasureParams::new(mode, image);
    p.vcpus = vcpus;
    p.vcpu_sig = vcpu_type(vcpu).unwrap().signature();
    p.strict = true;
    p
}

fn measured(p: &MeasureParams<'_>) -> Measurement {
    let m = measure(p).unwrap_or_else(|e| panic!("{} refused: {e}", p.mode.name()));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    m
}

#[test]
fn sevkit_measures_every_mode() {
    let image = demo_image();
    let sev = measured(&params(Mode::Sev, &image, 1, "EPYC"));
    assert_eq!(sev.digest.len(), 32);
    let seves = measured(&params(Mode::SevEs, &image, 4, "EPYC-Milan"));
    assert_eq!(seves.digest.len(), 32);
    assert_eq!(
        seves.vmsa(1).unwrap().rip.get(),
        u64::from(AP_RESET_ADDRESS & 0xFFFF)
    );
    let snp = measured(&params(Mode::Snp, &image, 4, "EPYC-Genoa"));
    assert_eq!(snp.digest.len(), 48);
    let ovmf_hash = measured(&params(Mode::SnpOvmfHash, &image, 1, "EPYC"));
    assert_eq!(ovmf_hash.digest.len(), 48);

    // SNP: 64 image pages, then the sections' pages in order, then 4 VMSAs.
    let types: Vec<_> = snp.log.entries.iter().map(|e| e.page_type).collect();
    let image_pages = DEMO_IMAGE_SIZE / 4096;
    let section_pages: usize = SECTIONS.iter().map(|s| s.size as usize / 4096).sum();
    assert_eq!(types.len(), image_pages + section_pages + 4);
    assert!(types[..image_pages]
        .iter()
        .all(|t| *t == LogPageType::Normal));
    assert_eq!(
        types.iter().filter(|t| **t == LogPageType::Secrets).count(),
        1
    );
    assert_eq!(
        types.iter().filter(|t| **t == LogPageType::Cpuid).count(),
        1
    );
    assert!(types[types.len() - 4..]
        .iter()
        .all(|t| *t == LogPageType::Vmsa));

    // Measured direct boot works in every mode (the hashes table exists).
    let kernel = KernelHashes::compute(b"kernel", Some(b"initrd"), Some(b"console=ttyS0"));
    for mode in [Mode::Sev, Mode::SevEs, Mode::Snp] {
        let mut p = params(mode, &image, 2, "EPYC-v4");
        p.kernel = Some(kernel);
        let with = measured(&p);
        let without = measured(&params(mode, &image, 2, "EPYC-v4"));
        assert_ne!(with.digest, without.digest, "{}", mode.name());
    }
}

/// The peer's executable (on `PATH`).
const PEER: &str = "sev-snp-measure";

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("sevkit-demo-image-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn peer(args: &[String]) -> String {
    let out = Command::new(PEER)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PEER}: {e}"));
    assert!(
        out.status.success(),
        "{PEER} {} refused the demo image: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
#[cfg_attr(
    not(sevkit_sev_snp_measure),
    ignore = "needs sev-snp-measure (installed by .ci/run)"
)]
fn sev_snp_measure_agrees() {
    let image = demo_image();
    let dir = TempDir::new();
    let path = dir.0.join("demo.fd");
    std::fs::write(&path, &image).unwrap();
    let kernel_path = dir.0.join("vmlinuz");
    let kernel_bytes = b"not a kernel, only hashed".repeat(100);
    std::fs::write(&kernel_path, &kernel_bytes).unwrap();
    let ovmf = path.to_str().unwrap().to_owned();
    let kernel_arg = kernel_path.to_str().unwrap().to_owned();

    let mut checked = 0;
    let cases: &[(Mode, u32, &str)] = &[
        (Mode::Sev, 1, "EPYC"),
        (Mode::SevEs, 1, "EPYC-v4"),
        (Mode::SevEs, 2, "EPYC-Rome"),
        (Mode::SevEs, 4, "EPYC-Milan"),
        (Mode::SevEs, 16, "EPYC-Genoa"),
        (Mode::Snp, 1, "EPYC-v4"),
        (Mode::Snp, 2, "EPYC-Milan"),
        (Mode::Snp, 4, "EPYC-Genoa"),
        (Mode::Snp, 8, "EPYC-Turin"),
        (Mode::Snp, 3, "EPYC-Rome"),
    ];
    for &(mode, vcpus, vcpu) in cases {
        for with_kernel in [false, true] {
            let mut args: Vec<String> = ["--mode", mode.name(), "--ovmf", &ovmf]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let mut p = params(mode, &image, vcpus, vcpu);
            if mode == Mode::Sev {
                // Legacy SEV measures no VMSA; RDX (and the count) do not
                // matter.
                p.vcpu_sig = 0;
            } else {
                args.extend([
                    "--vcpus".to_owned(),
                    vcpus.to_string(),
                    "--vcpu-type".to_owned(),
                    vcpu.to_owned(),
                ]);
            }
            if with_kernel {
                args.extend(["--kernel".to_owned(), kernel_arg.clone()]);
                p.kernel = Some(KernelHashes::compute(&kernel_bytes, None, None));
            }
            let want = hex::encode(measured(&p).digest);
            let got = peer(&args);
            assert_eq!(got, want, "{PEER} {} disagrees with sevkit", args.join(" "));
            checked += 1;
        }
    }
    // The OVMF pages alone.
    let got = peer(&[
        "--mode".to_owned(),
        "snp:ovmf-hash".to_owned(),
        "--ovmf".to_owned(),
        ovmf.clone(),
    ]);
    let want = hex::encode(measured(&params(Mode::SnpOvmfHash, &image, 1, "EPYC")).digest);
    assert_eq!(got, want);
    checked += 1;
    assert_eq!(checked, 21);
}
