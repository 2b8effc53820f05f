//! OVMF parser and every measurement mode on an arbitrary image: never
//! panics, and whenever a digest comes out, the launch log ends with it.
//!
//! The first bytes of the input choose the options (vCPU count, VMM type,
//! kernel or not, vars size); the rest is the firmware image (and, for
//! `snp:svsm`, also the SVSM binary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_measure::ovmf::OvmfImage;
use sev_measure::{measure, FpuState, KernelHashes, MeasureParams, Mode, SvsmInput, VmmType};

fuzz_target!(|data: &[u8]| {
    let Some((&[opts, vcpus, vars], image)) = data.split_first_chunk::<3>() else {
        return;
    };
    if let Ok(ovmf) = OvmfImage::parse(image) {
        let _ = ovmf.sev_es_reset_eip();
        let _ = ovmf.hash_table();
        let _ = ovmf.secret_area();
        let _ = ovmf.svsm_info_offset();
        let _ = ovmf.footer_entries().len();
        if let Some(meta) = ovmf.metadata() {
            for s in &meta.sections {
                let _ = s.kind();
            }
        }
    }
    let vmm = match opts & 3 {
        1 => VmmType::Ec2,
        2 => VmmType::Gce,
        _ => VmmType::Qemu,
    };
    let kernel = (opts & 4 != 0).then(|| KernelHashes::compute(b"kernel", Some(b"initrd"), None));
    let fpu = if opts & 8 != 0 {
        FpuState::Legacy
    } else {
        FpuState::Init2
    };
    for mode in [
        Mode::Sev,
        Mode::SevEs,
        Mode::Snp,
        Mode::SnpOvmfHash,
        Mode::SnpSvsm,
    ] {
        let mut p = MeasureParams::new(mode, image);
        p.vcpus = u32::from(vcpus % 8);
        p.vcpu_sig = 0x00A0_0F11;
        p.vmm = if mode == Mode::SnpSvsm {
            VmmType::Qemu
        } else {
            vmm
        };
        p.kernel = if mode == Mode::SnpSvsm { None } else { kernel };
        p.guest_features = u64::from(opts >> 4);
        p.fpu = fpu;
        if mode == Mode::SnpSvsm {
            p.svsm = Some(SvsmInput {
                image,
                vars_size: u64::from(vars) << 12,
            });
        }
        if let Ok(m) = measure(&p) {
            assert_eq!(m.log.final_digest(), Some(&m.digest[..]));
            for i in 0..m.vmsa_count() {
                assert_eq!(m.vmsa_page(i).map(<[u8]>::len), Some(4096));
            }
            let _ = m.log.to_string();
        }
    }
});
