//! The launch sequence against the in-process software AMD-SP: the VMM's
//! launch log, the firmware's, and sev-measure's prediction agree.

mod common;

use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_measure::{measure, FpuState, MeasureParams, Mode};
use sev_vmm::launch::{LaunchSpec, SevLaunch, SevSpec, SnpLaunch, SnpSpec};

fn debian_ovmf() -> Option<Vec<u8>> {
    std::fs::read("/usr/share/ovmf/OVMF.fd").ok()
}

fn spec(image: Vec<u8>, vcpus: u32) -> LaunchSpec {
    LaunchSpec::new(image, vcpus, "EPYC-v4", sev_abi::product::Product::Genoa).unwrap()
}

#[test]
#[cfg_attr(
    not(sevkit_debian_ovmf),
    ignore = "needs Debian's ovmf package (installed by .ci/run)"
)]
fn sev_es_launch_matches_prediction_and_firmware_log() {
    let image = debian_ovmf().unwrap();
    let fw = common::firmware(1);
    let host = common::host(&fw, 512 << 20, image.len());
    let sev = SevSpec {
        policy: GuestPolicy::from_raw(0x5),
        handle: 0,
        session: None,
        legacy_vm_type: true,
    };
    let launch = SevLaunch::start(host, spec(image.clone(), 4), sev).unwrap();
    let measured = launch.measure().unwrap();
    let launched = measured.finish().unwrap();
    let mut p = MeasureParams::new(Mode::SevEs, &image);
    p.vcpus = 4;
    p.vcpu_sig = sev_measure::vcpu_type("EPYC-v4").unwrap().signature();
    p.fpu = FpuState::Legacy;
    let predicted = measure(&p).unwrap();
    assert_eq!(launched.digest, predicted.digest);
    let sev_vmm::FirmwareGuest::Legacy { handle, .. } = launched.guest else {
        panic!()
    };
    let fw_log = fw.lock().unwrap().launch_log(handle).unwrap().clone();
    assert_eq!(fw_log.final_digest(), Some(&predicted.digest[..]));
    assert_eq!(launched.log.final_digest(), Some(&predicted.digest[..]));
}

#[test]
#[cfg_attr(
    not(sevkit_debian_ovmf),
    ignore = "needs Debian's ovmf package (installed by .ci/run)"
)]
fn snp_launch_matches_prediction() {
    let image = debian_ovmf().unwrap();
    let fw = common::firmware(2);
    let host = common::host(&fw, 512 << 20, image.len());
    let snp = SnpSpec {
        policy: SnpPolicy::from_raw(0x30000),
        gosvw: [0; 16],
        id: None,
        vcek_disabled: false,
        host_data: [7; 32],
    };
    let launch = SnpLaunch::start(host, spec(image.clone(), 2), snp).unwrap();
    let launched = launch.finish().unwrap();
    let mut p = MeasureParams::new(Mode::Snp, &image);
    p.vcpus = 2;
    p.vcpu_sig = sev_measure::vcpu_type("EPYC-v4").unwrap().signature();
    let predicted = measure(&p).unwrap();
    assert_eq!(launched.digest, predicted.digest);
    let sev_vmm::FirmwareGuest::Snp { gctx_paddr, .. } = launched.guest else {
        panic!()
    };
    let fw = fw.lock().unwrap();
    assert_eq!(
        fw.snp_guest(gctx_paddr).unwrap().ld.to_vec(),
        predicted.digest
    );
}
