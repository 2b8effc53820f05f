//! sev-measure against external known answers:
//!
//! * sevctl's `measurement build` known answers (shared/vectors/README.md):
//!   the legacy LAUNCH_MEASURE blob from a launch digest, from the trimmed
//!   OVMF, and from the trimmed OVMF with kernel, initrd and command line;
//! * the real SEV-ES VMSA pages QEMU/KVM built (shared/vectors/sevctl/vmsa*.bin);
//! * the edk2-stable202405 OVMF suffixes (footer table, metadata, reset block);
//! * digests printed by sev-snp-measure 0.0.13 (`pip install
//!   sev-snp-measure==0.0.13`) for the firmware images in shared/vectors and
//!   for synthetic images built here byte-for-byte as the commands' inputs
//!   were. Each value says which command printed it: they are the peer's
//!   output, not sevkit's.

use base64::Engine;
use sev_abi::guid::{
    Guid, OVMF_SEV_ES_RESET_BLOCK, OVMF_SEV_HASH_TABLE_RV, OVMF_SEV_METADATA, OVMF_SVSM_INFO,
    OVMF_TABLE_FOOTER,
};
use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::policy::GuestPolicy;
use sev_abi::session::LaunchMeasurement;
use sev_crypto::session::Tik;
use sev_measure::ovmf::{MetadataSection, TableArea};
use sev_measure::sev::LaunchMeasureParams;
use sev_measure::{
    check_launch_measure_blob, launch_measure_blob, measure, vcpu_type, FpuState, KernelHashes,
    LogPageType, MeasureError, MeasureParams, Mode, OvmfImage, SvsmInput, VmmType,
};
use sevkit_conformance::read_vector;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

const TRIMMED_OVMF: &str = "sevctl/OVMF.amdsev.fd_trimmed_edk2-ovmf-20220126gitbb1bba3d77-4.el9";

fn b64(s: &str) -> Vec<u8> {
    B64.decode(s).expect("base64")
}

// --- sevctl -------------------------------------------------------------

/// The inputs of sevctl's `measurement build` tests: api 1.40, build 40,
/// policy 0x03, nonce wxP6tRHCFrFQWxsuqZA8QA==, TIK tik1.bin.
fn sevctl_params() -> (Tik, LaunchMeasureParams) {
    let tik: [u8; 16] = read_vector("sevctl/measurement/tik1.bin")
        .try_into()
        .expect("tik1.bin is 16 bytes");
    let nonce: [u8; 16] = b64("wxP6tRHCFrFQWxsuqZA8QA==").try_into().unwrap();
    (
        Tik::new(tik),
        LaunchMeasureParams {
            api_major: 1,
            api_minor: 40,
            build: 40,
            policy: GuestPolicy::from_raw(0x03),
            nonce,
        },
    )
}

fn blob_for_digest(digest: &[u8]) -> String {
    let (tik, params) = sevctl_params();
    let digest: [u8; 32] = digest.try_into().expect("32-byte digest");
    B64.encode(launch_measure_blob(
        &tik,
        &params,
        &SevLaunchDigest::new(digest),
    ))
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn sevctl_blob_from_launch_digest() {
    let digest = b64("xkvRAfyaSizgonxAjZIAkR8TmolUabBKQKb6KJCDDSM=");
    let expected = "lswbxWxI9gckya16JQvdFtpYmNO4b+3inAPpqsgoBI7DE/q1EcIWsVBbGy6pkDxA";
    assert_eq!(blob_for_digest(&digest), expected);
    let (tik, p) = sevctl_params();
    let blob = LaunchMeasurement::from_bytes(&b64(expected)).unwrap();
    let digest = SevLaunchDigest::from_slice(&digest).unwrap();
    assert!(check_launch_measure_blob(
        &tik,
        p.api_major,
        p.api_minor,
        p.build,
        p.policy,
        &digest,
        &blob
    ));
    assert!(!check_launch_measure_blob(
        &tik,
        p.api_major,
        p.api_minor,
        p.build,
        GuestPolicy::from_raw(0x07),
        &digest,
        &blob
    ));
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn sevctl_blob_from_firmware() {
    let ovmf = read_vector(TRIMMED_OVMF);
    let m = measure(&MeasureParams::new(Mode::Sev, &ovmf)).unwrap();
    assert_eq!(
        blob_for_digest(&m.digest),
        "oMDewIouJSpbpNRHj7Mk3p08H2dPZQdsZMU14qIymBnDE/q1EcIWsVBbGy6pkDxA"
    );
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn sevctl_blob_from_firmware_kernel_initrd_cmdline() {
    let ovmf = read_vector(TRIMMED_OVMF);
    let kernel = read_vector("sevctl/measurement/vmlinuz-fake");
    let initrd = read_vector("sevctl/measurement/initrd-fake");
    let mut p = MeasureParams::new(Mode::Sev, &ovmf);
    p.kernel = Some(KernelHashes::compute(
        &kernel,
        Some(&initrd),
        Some(b"foo bar baz fake kernel=cmdline"),
    ));
    let m = measure(&p).unwrap();
    assert_eq!(
        blob_for_digest(&m.digest),
        "h3auYbWQnVW7EGLWN4Hf9SN0oEYMPU2sK4bLnefWPwvDE/q1EcIWsVBbGy6pkDxA"
    );
    // The log: firmware, then the 176-byte table at the table's GPA.
    assert_eq!(m.log.entries.len(), 2);
    assert_eq!(m.log.entries[1].region, "KERNEL_HASHES");
    assert_eq!(m.log.entries[1].gpa, Some(0x80_CC00));
    assert_eq!(m.log.entries[1].length, 176);
    assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
}

/// The real VMSA pages in shared/vectors/sevctl came from an SEV-ES guest
/// on an older KVM: their dumps (vmsa*-show.txt) show RDX 0xA00F11
/// (EPYC-Milan: family 25, model 1, stepping 1), the BSP at 0xFFFFFFF0 and
/// the APs at CS.base 0x800000 / RIP 0xB004, the reset address of the
/// trimmed AmdSev OVMF that comes with them. They predate KVM_SEV_INIT2, so
/// MXCSR and FCW are 0: sevkit builds them byte-exact with
/// `FpuState::Legacy` (`--legacy-fpu`); with the default (KVM_SEV_INIT2,
/// sev-snp-measure >= 0.0.10) the only difference is MXCSR 0x1f80 at 0x408
/// and FCW 0x37f at 0x410.
#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn sevctl_vmsa_pages_are_what_sevkit_builds() {
    let ovmf = read_vector(TRIMMED_OVMF);
    let mut p = MeasureParams::new(Mode::SevEs, &ovmf);
    p.vcpus = 2;
    p.vcpu_sig = vcpu_type("EPYC-Milan").unwrap().signature();
    p.fpu = FpuState::Legacy;
    let m = measure(&p).unwrap();
    assert_eq!(m.vmsa_page(0).unwrap(), read_vector("sevctl/vmsa0.bin"));
    assert_eq!(m.vmsa_page(1).unwrap(), read_vector("sevctl/vmsa1.bin"));

    p.fpu = FpuState::Init2;
    let m = measure(&p).unwrap();
    for i in 0..2 {
        let real = read_vector(&format!("sevctl/vmsa{i}.bin"));
        let ours = m.vmsa_page(i).unwrap();
        let diff: Vec<usize> = (0..4096).filter(|&j| real[j] != ours[j]).collect();
        assert_eq!(diff, vec![0x408, 0x409, 0x410, 0x411], "vCPU {i}");
    }
}

// --- OVMF suffixes ------------------------------------------------------

fn sections(list: &[(u32, u32, u32)]) -> Vec<MetadataSection> {
    list.iter()
        .map(|&(gpa, size, section_type)| MetadataSection {
            gpa,
            size,
            section_type,
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn edk2_amdsev_suffix_parses() {
    let data = read_vector("synthetic/ovmf_AmdSev_suffix.bin");
    let ovmf = OvmfImage::parse(&data).unwrap();
    assert!(ovmf.has_footer_table());
    assert_eq!(ovmf.sev_es_reset_eip().unwrap(), Some(0x0080_B004));
    assert_eq!(
        ovmf.hash_table().unwrap(),
        Some(TableArea {
            base: 0x81_0C00,
            size: 0x400
        })
    );
    assert_eq!(
        ovmf.secret_area().unwrap(),
        Some(TableArea {
            base: 0x81_0000,
            size: 0xC00
        })
    );
    let meta = ovmf.metadata().unwrap();
    assert_eq!(meta.version, 1);
    assert_eq!(meta.offset, data.len() - 0x554);
    // edk2-stable202405 lists KERNEL_HASHES before the last SEC_MEM.
    assert_eq!(
        meta.sections,
        sections(&[
            (0x80_0000, 0x9000, 1),
            (0x80_A000, 0x3000, 1),
            (0x80_D000, 0x1000, 2),
            (0x80_E000, 0x1000, 3),
            (0x80_F000, 0x1000, 4),
            (0x81_0000, 0x1000, 0x10),
            (0x81_1000, 0xF000, 1),
        ])
    );
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn edk2_ovmfx64_suffix_parses() {
    let data = read_vector("synthetic/ovmf_OvmfX64_suffix.bin");
    let ovmf = OvmfImage::parse(&data).unwrap();
    assert_eq!(ovmf.sev_es_reset_eip().unwrap(), Some(0x0080_B004));
    // The entry is there, with base 0: no measured direct boot.
    assert_eq!(
        ovmf.hash_table().unwrap(),
        Some(TableArea { base: 0, size: 0 })
    );
    let meta = ovmf.metadata().unwrap();
    assert_eq!(
        meta.sections,
        sections(&[
            (0x80_0000, 0x9000, 1),
            (0x80_A000, 0x3000, 1),
            (0x80_D000, 0x1000, 2),
            (0x80_E000, 0x1000, 3),
            (0x80_F000, 0x1000, 4),
            (0x81_0000, 0x10000, 1),
        ])
    );
    let mut p = MeasureParams::new(Mode::Sev, &data);
    p.kernel = Some(KernelHashes::compute(b"k", None, None));
    assert!(matches!(measure(&p), Err(MeasureError::NoHashTable { .. })));
}

// --- sev-snp-measure 0.0.13 ---------------------------------------------

/// One sev-snp-measure run and what it printed.
struct Peer {
    params: fn(&Inputs) -> MeasureParams<'_>,
    /// The peer's standard output (hex, or base64 when `base64`).
    printed: &'static str,
    base64: bool,
}

/// Files the peer runs read.
struct Inputs {
    trixie: Vec<u8>,
    trixie_4m: Vec<u8>,
    amdsev: Vec<u8>,
    kernel: Vec<u8>,
    initrd: Vec<u8>,
    synthetic_ovmf: Vec<u8>,
    synthetic_svsm: Vec<u8>,
}

impl Inputs {
    fn load() -> Self {
        Self {
            trixie: read_vector("firmware/trixie_OVMF.fd"),
            trixie_4m: read_vector("firmware/trixie_OVMF_CODE_4M.fd"),
            amdsev: read_vector("firmware/OVMF.amdsev.fd"),
            kernel: read_vector("sevctl/measurement/vmlinuz-fake"),
            initrd: read_vector("sevctl/measurement/initrd-fake"),
            synthetic_ovmf: synthetic_ovmf(),
            synthetic_svsm: synthetic_svsm(),
        }
    }

    fn hashes(&self, initrd: bool, append: Option<&str>) -> KernelHashes {
        KernelHashes::compute(
            &self.kernel,
            initrd.then_some(&self.initrd[..]),
            append.map(str::as_bytes),
        )
    }
}

fn snp<'a>(ovmf: &'a [u8], vcpus: u32, cpu: &str) -> MeasureParams<'a> {
    let mut p = MeasureParams::new(Mode::Snp, ovmf);
    p.vcpus = vcpus;
    p.vcpu_sig = vcpu_type(cpu).unwrap().signature();
    p
}

/// A synthetic image as the Python generator used for the peer runs wrote
/// it: `len` bytes of 0x5a, the `ASEV` block at `len / 2`, the footer table
/// ending 32 bytes before the end with `entries` nearest the footer and the
/// metadata entry before them.
fn synthetic(len: usize, entries: &[(Guid, Vec<u8>)], meta: &[(u32, u32, u32)]) -> Vec<u8> {
    let mut img = vec![0x5au8; len];
    let at = len / 2;
    let mut block = b"ASEV".to_vec();
    block.extend_from_slice(&((16 + 12 * meta.len()) as u32).to_le_bytes());
    block.extend_from_slice(&1u32.to_le_bytes());
    block.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    for (gpa, size, kind) in meta {
        for v in [gpa, size, kind] {
            block.extend_from_slice(&v.to_le_bytes());
        }
    }
    img[at..at + block.len()].copy_from_slice(&block);
    let mut all = entries.to_vec();
    all.push((
        OVMF_SEV_METADATA,
        ((len - at) as u32).to_le_bytes().to_vec(),
    ));
    let mut table = Vec::new();
    for (guid, data) in all.iter().rev() {
        table.extend_from_slice(data);
        table.extend_from_slice(&((data.len() + 18) as u16).to_le_bytes());
        table.extend_from_slice(&guid.to_le_bytes());
    }
    table.extend_from_slice(&((table.len() + 18) as u16).to_le_bytes());
    table.extend_from_slice(&OVMF_TABLE_FOOTER.to_le_bytes());
    let end = len - 32;
    img[end - table.len()..end].copy_from_slice(&table);
    img
}

/// 64 KiB OVMF-like image: reset block 0x80B004, hashes table at 0x810F00
/// (offset 0xF00 in its page), sections SEC_MEM, KERNEL_HASHES, SECRETS,
/// CPUID, SVSM_CAA (3 pages).
fn synthetic_ovmf() -> Vec<u8> {
    synthetic(
        0x10000,
        &[
            (
                OVMF_SEV_ES_RESET_BLOCK,
                0x0080_B004u32.to_le_bytes().to_vec(),
            ),
            (
                OVMF_SEV_HASH_TABLE_RV,
                [0x0081_0F00u32.to_le_bytes(), 0x100u32.to_le_bytes()].concat(),
            ),
        ],
        &[
            (0x80_0000, 0x2000, 1),
            (0x80_2000, 0x1000, 0x10),
            (0x80_3000, 0x1000, 2),
            (0x80_4000, 0x1000, 3),
            (0x80_5000, 0x3000, 4),
        ],
    )
}

/// 32 KiB SVSM-like binary: SVSM_INFO entry offset 0x1234, sections
/// SEC_MEM (2 pages), SECRETS, CPUID, SVSM_CAA.
fn synthetic_svsm() -> Vec<u8> {
    synthetic(
        0x8000,
        &[(OVMF_SVSM_INFO, 0x1234u32.to_le_bytes().to_vec())],
        &[
            (0x10_0000, 0x2000, 1),
            (0x10_2000, 0x1000, 2),
            (0x10_3000, 0x1000, 3),
            (0x10_4000, 0x1000, 4),
        ],
    )
}

const PEER_RUNS: &[Peer] = &[
    // sev-snp-measure --mode snp --vcpus 2 --vcpu-type EPYC-v4 --ovmf firmware/trixie_OVMF.fd
    Peer {
        params: |i| snp(&i.trixie, 2, "EPYC-v4"),
        printed: "dde22ec32131c388cdd74935c4fe73726cdbf327422c9fcdb96c2984283fb826993ec008addab81fd33109bad66d9fd9",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 4 --vcpu-type EPYC-Milan --ovmf firmware/OVMF.amdsev.fd
    //   --kernel sevctl/measurement/vmlinuz-fake --initrd sevctl/measurement/initrd-fake
    //   --append "console=ttyS0 root=/dev/vda"
    Peer {
        params: |i| {
            let mut p = snp(&i.amdsev, 4, "EPYC-Milan");
            p.kernel = Some(i.hashes(true, Some("console=ttyS0 root=/dev/vda")));
            p
        },
        printed: "aef7f2480e48b458c989573a06f4b103eedd339cd8d43ae7c9a1e6391a6d1ac00fcf739d3997d22e20e06ec9d8d07d90",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 1 --vcpu-type EPYC-Genoa --ovmf firmware/OVMF.amdsev.fd
    Peer {
        params: |i| snp(&i.amdsev, 1, "EPYC-Genoa"),
        printed: "d5277f6bbc35d78e5f355b042555d00451f8f705cd3ea8d685f72277f1c5852404adf21dea3f9784851a8596f540f6c1",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 2 --vmm-type ec2 --ovmf firmware/trixie_OVMF.fd
    Peer {
        params: |i| {
            let mut p = MeasureParams::new(Mode::Snp, &i.trixie);
            p.vcpus = 2;
            p.vmm = VmmType::Ec2;
            p
        },
        printed: "11df58a5a00d583deb1f9413eeda6550e5ead36be42e655070d4f74fc96b505f9b4afc02753c281c5b00b8f715b9e950",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 2 --vmm-type gce --ovmf firmware/trixie_OVMF.fd
    //   --guest-features 0x21 --output-format base64
    Peer {
        params: |i| {
            let mut p = MeasureParams::new(Mode::Snp, &i.trixie);
            p.vcpus = 2;
            p.vmm = VmmType::Gce;
            p.guest_features = 0x21;
            p
        },
        printed: "HnfM8e0Ygacy+qBTP9FGeHpEr0xsf8Wb1NLCi/NE5Ey+teAdznxqUSr8SRMLf1+x",
        base64: true,
    },
    // sev-snp-measure --mode snp:ovmf-hash --ovmf firmware/trixie_OVMF.fd
    Peer {
        params: |i| MeasureParams::new(Mode::SnpOvmfHash, &i.trixie),
        printed: "52de7f3ba560307ec6c22a5cb001524d5e560467b5d618c715cfe3c6f1addcadb91563693fbfa433ae18c2412d739a95",
        base64: false,
    },
    // sev-snp-measure --mode seves --vcpus 2 --vcpu-type EPYC-Rome --ovmf firmware/trixie_OVMF.fd
    Peer {
        params: |i| {
            let mut p = snp(&i.trixie, 2, "EPYC-Rome");
            p.mode = Mode::SevEs;
            p
        },
        printed: "4f924a5fcabd1dc8413d6fe071ce1fae88e0f4bd87b4bc18761c6c088f3d86c4",
        base64: false,
    },
    // sev-snp-measure --mode seves --vcpus 3 --vcpu-type EPYC-Milan --ovmf firmware/OVMF.amdsev.fd
    //   --kernel sevctl/measurement/vmlinuz-fake --initrd sevctl/measurement/initrd-fake
    //   --append "foo bar baz fake kernel=cmdline"
    Peer {
        params: |i| {
            let mut p = snp(&i.amdsev, 3, "EPYC-Milan");
            p.mode = Mode::SevEs;
            p.kernel = Some(i.hashes(true, Some("foo bar baz fake kernel=cmdline")));
            p
        },
        printed: "76ce62760f6465c169424f3d1a708eda9d30b4cadd3cabb5d2ec7982950d0b33",
        base64: false,
    },
    // sev-snp-measure --mode sev --ovmf firmware/OVMF.amdsev.fd --kernel sevctl/measurement/vmlinuz-fake
    Peer {
        params: |i| {
            let mut p = MeasureParams::new(Mode::Sev, &i.amdsev);
            p.kernel = Some(i.hashes(false, None));
            p
        },
        printed: "da587841b54016c35dd6a34b7ae10ad0837af16dc4a6d6ea36b8ee7e6ac63de2",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 2 --vcpu-type EPYC-Turin --ovmf firmware/trixie_OVMF_CODE_4M.fd
    Peer {
        params: |i| snp(&i.trixie_4m, 2, "EPYC-Turin"),
        printed: "cf1d1bddef1a40b50e5f841ea6fa47f7ff7677a9c1a98796189e36af5d936d0c9b5d15080d8a472f05e85c2f332355db",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 2 --vcpu-type EPYC-Milan --ovmf synthetic_ovmf
    Peer {
        params: |i| snp(&i.synthetic_ovmf, 2, "EPYC-Milan"),
        printed: "2dbba636ce5cb5d81d8a5ee24277fb3e730908e46b6baf89ae85e307ccce0dabf8c89e43c3379b387c6845f973a15614",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 2 --vcpu-type EPYC-Milan --ovmf synthetic_ovmf
    //   --kernel sevctl/measurement/vmlinuz-fake
    Peer {
        params: |i| {
            let mut p = snp(&i.synthetic_ovmf, 2, "EPYC-Milan");
            p.kernel = Some(i.hashes(false, None));
            p
        },
        printed: "07ef36ea7259ff8e642c62699939c9bb33b14f2c409490b26d2ecda5a3d0f0295f1c8fa42093abc2f5f3829336d93721",
        base64: false,
    },
    // sev-snp-measure --mode snp --vcpus 2 --vcpu-type EPYC-Milan --ovmf synthetic_ovmf
    //   --kernel sevctl/measurement/vmlinuz-fake --vmm-type ec2
    Peer {
        params: |i| {
            let mut p = snp(&i.synthetic_ovmf, 2, "EPYC-Milan");
            p.kernel = Some(i.hashes(false, None));
            p.vmm = VmmType::Ec2;
            p
        },
        printed: "b702c0cbd2b7204b8f1bbb4474b5f8c14c787c03277aaca84c765f86359a26c7ccadb3deb3d88df4402e4e949b49ebb3",
        base64: false,
    },
    // sev-snp-measure --mode seves --vcpus 2 --vcpu-type EPYC-Milan --ovmf synthetic_ovmf
    //   --kernel sevctl/measurement/vmlinuz-fake
    Peer {
        params: |i| {
            let mut p = snp(&i.synthetic_ovmf, 2, "EPYC-Milan");
            p.mode = Mode::SevEs;
            p.kernel = Some(i.hashes(false, None));
            p
        },
        printed: "3167b92ff8899c0b6329c617741e6cf51b3be00b4f10488dde09a0fa6375011d",
        base64: false,
    },
    // sev-snp-measure --mode snp:svsm --vcpus 2 --vcpu-type EPYC-v4 --ovmf firmware/trixie_OVMF.fd
    //   --svsm synthetic_svsm --vars-file <a 0x3000-byte file>
    Peer {
        params: |i| {
            let mut p = snp(&i.trixie, 2, "EPYC-v4");
            p.mode = Mode::SnpSvsm;
            p.svsm = Some(SvsmInput {
                image: &i.synthetic_svsm,
                vars_size: 0x3000,
            });
            p
        },
        printed: "21e46164976b92a6e11bf56acde7738ef1c94b7f692ace16ff3331f693614d7df4185195df415088b6a2884bfa1c05f1",
        base64: false,
    },
    // sev-snp-measure --mode snp:svsm --vcpus 1 --vcpu-type EPYC-Milan --ovmf synthetic_ovmf
    //   --svsm synthetic_svsm --vars-size 8192
    Peer {
        params: |i| {
            let mut p = snp(&i.synthetic_ovmf, 1, "EPYC-Milan");
            p.mode = Mode::SnpSvsm;
            p.svsm = Some(SvsmInput {
                image: &i.synthetic_svsm,
                vars_size: 8192,
            });
            p
        },
        printed: "1f21d8a4f5a925a0832d414a1f14ae928e56bcab575df0896ffcb503f7d84211e77a732177117a8906c466e18502287a",
        base64: false,
    },
];

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn digests_match_sev_snp_measure() {
    let inputs = Inputs::load();
    for (i, run) in PEER_RUNS.iter().enumerate() {
        let m = measure(&(run.params)(&inputs)).unwrap_or_else(|e| panic!("run {i}: {e}"));
        let printed = if run.base64 {
            B64.encode(m.digest)
        } else {
            hex::encode(m.digest)
        };
        assert_eq!(printed, run.printed, "run {i}");
        assert_eq!(m.log.final_digest(), Some(&m.digest[..]), "run {i}");
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn snp_log_lists_every_measured_page() {
    let inputs = Inputs::load();
    let p = snp(&inputs.amdsev, 4, "EPYC-Milan");
    let m = measure(&p).unwrap();
    let ovmf_pages = inputs.amdsev.len() / 4096;
    // OVMF.amdsev.fd (edk2 2025.02): SEC_MEM 9+3 pages, SECRETS, CPUID,
    // SVSM_CAA, SEC_MEM 15 pages, KERNEL_HASHES (ZERO without --kernel),
    // then 4 VMSAs.
    let expected = ovmf_pages + 12 + 1 + 1 + 1 + 15 + 1 + 4;
    assert_eq!(m.log.entries.len(), expected);
    for (i, e) in m.log.entries.iter().take(ovmf_pages).enumerate() {
        assert_eq!(e.region, "ovmf");
        assert_eq!(e.page_type, LogPageType::Normal);
        assert_eq!(e.gpa, Some(0xFFC0_0000 + 4096 * i as u64));
    }
    let kinds: Vec<(&str, LogPageType)> = m.log.entries[ovmf_pages..]
        .iter()
        .map(|e| (e.region.as_str(), e.page_type))
        .collect();
    assert_eq!(kinds[12], ("SECRETS", LogPageType::Secrets));
    assert_eq!(kinds[13], ("CPUID", LogPageType::Cpuid));
    assert_eq!(kinds[14], ("SVSM_CAA", LogPageType::Zero));
    assert_eq!(kinds[30], ("KERNEL_HASHES", LogPageType::Zero));
    assert_eq!(kinds[31], ("vmsa[0]", LogPageType::Vmsa));
    assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
    let json = serde_json::to_value(&m.log).unwrap();
    let last = &json["entries"][expected - 1];
    assert_eq!(last["digest_after"], hex::encode(m.digest));
    assert_eq!(last["gpa"], "0xfffffffff000");
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn malformed_real_images_give_errors_not_panics() {
    let good = read_vector("firmware/OVMF.amdsev.fd");
    let len = good.len();
    // The footer entry's size field: claim more table than there is.
    let mut img = good.clone();
    let footer = len - 32 - 18;
    img[footer..footer + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
    // 0xFFFF bytes do precede the footer, so the walk itself must catch the lie.
    let err = OvmfImage::parse(&img).unwrap_err();
    assert!(matches!(err, MeasureError::FooterTable(_)), "{err}");
    // Corrupt the footer GUID: no table, so SNP has no metadata: refused
    // when strict; otherwise sev-snp-measure's digest with a warning.
    let mut img = good.clone();
    img[footer + 2] ^= 0xFF;
    let mut strict = snp(&img, 1, "EPYC");
    strict.strict = true;
    let err = measure(&strict).unwrap_err();
    assert!(matches!(err, MeasureError::MissingMetadata), "{err}");
    // Without the table there is no SEV-ES reset block either.
    let err = measure(&snp(&img, 1, "EPYC")).unwrap_err();
    assert!(err.to_string().contains("reset block"), "{err}");
    assert!(measure(&MeasureParams::new(Mode::Sev, &img)).is_ok());
    // Truncations of every size near the end, and byte flips across the
    // table and metadata, on the last 64 KiB (the table and the metadata are
    // found from the end, so the suffix parses like the whole image).
    let suffix = &good[len - 0x10000..];
    assert!(measure(&snp(suffix, 2, "EPYC")).is_ok());
    for cut in 1..200 {
        let _ = measure(&snp(&suffix[..suffix.len() - cut], 2, "EPYC"));
    }
    for at in suffix.len() - 0x600..suffix.len() {
        let mut img = suffix.to_vec();
        img[at] ^= 0xA5;
        for mode in [Mode::Sev, Mode::SevEs, Mode::Snp, Mode::SnpOvmfHash] {
            let mut p = snp(&img, 2, "EPYC-v4");
            p.mode = mode;
            if let Ok(m) = measure(&p) {
                assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
            }
        }
    }
}
