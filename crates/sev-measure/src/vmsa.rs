//! Reset-state VMSAs as the hypervisor builds them, per VMM type.
//!
//! The boot processor (BSP) starts at the x86 reset vector `0xFFFFFFF0`;
//! the application processors (APs) start at OVMF's SEV-ES reset address
//! (`CS.base = eip & 0xffff0000`, `RIP = eip & 0xffff`). Values follow
//! sev-snp-measure 0.0.13 (see `shared/spec/measurement.md` §5):
//!
//! | field | QEMU | EC2 | GCE |
//! |---|---|---|---|
//! | CS attrib | 0x9b | 0x9a BSP, 0x9b APs | 0x9b |
//! | SS / TR attrib | 0x93 / 0x8b | 0x92 / 0x83 | 0x93 / 0x8b |
//! | G_PAT | 0x0007040600070406 | same | 0x00070106 |
//! | RDX | vCPU signature | 0x600 | 0x600 |
//! | MXCSR / FCW | 0x1f80 / 0x37f (KVM_SEV_INIT2), or 0 / 0 on older hosts | 0 / 0 | 0 / 0 |

use sev_abi::vmsa::{SaveArea, VmcbSegment};
use zerocopy::little_endian::{U16, U32, U64};

/// The BSP's reset EIP.
pub const BSP_RESET_EIP: u32 = 0xFFFF_FFF0;

/// Default guest PAT (AMD APM vol. 2 §A.3).
pub const DEFAULT_G_PAT: u64 = 0x0007_0406_0007_0406;

/// Which hypervisor builds the VMSAs: the reset state differs slightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VmmType {
    /// QEMU/KVM.
    #[default]
    Qemu,
    /// Amazon EC2.
    Ec2,
    /// Google Compute Engine.
    Gce,
}

impl VmmType {
    /// Parses `QEMU`, `ec2`, `gce` (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "qemu" => Some(Self::Qemu),
            "ec2" => Some(Self::Ec2),
            "gce" => Some(Self::Gce),
            _ => None,
        }
    }

    /// sev-snp-measure's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Qemu => "QEMU",
            Self::Ec2 => "ec2",
            Self::Gce => "gce",
        }
    }
}

/// The x87/SSE reset state KVM writes into QEMU guests' VMSAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FpuState {
    /// Hosts with KVM_SEV_INIT2 (Linux 6.10+, QEMU 9.1+): MXCSR 0x1f80,
    /// FCW 0x37f. sev-snp-measure's default since 0.0.10.
    #[default]
    Init2,
    /// Older hosts (KVM_SEV_INIT / KVM_SEV_ES_INIT): MXCSR and FCW zero.
    Legacy,
}

/// Builds the reset-state VMSA of a vCPU starting at `eip`.
///
/// `sev_features` is 0 for SEV-ES and the guest features for SNP;
/// `vcpu_sig` is used by QEMU only (EC2 and GCE put 0x600 in RDX); `fpu`
/// applies to QEMU only (EC2 and GCE leave MXCSR and FCW zero).
pub fn reset_vmsa(
    eip: u32,
    sev_features: u64,
    vcpu_sig: u32,
    vmm: VmmType,
    fpu: FpuState,
) -> SaveArea {
    let (cs_attrib, ss_attrib, tr_attrib) = match vmm {
        VmmType::Ec2 if eip == BSP_RESET_EIP => (0x9a, 0x92, 0x83),
        VmmType::Ec2 => (0x9b, 0x92, 0x83),
        VmmType::Qemu | VmmType::Gce => (0x9b, 0x93, 0x8b),
    };
    let g_pat = if vmm == VmmType::Gce {
        0x0007_0106
    } else {
        DEFAULT_G_PAT
    };
    let rdx = if vmm == VmmType::Qemu {
        u64::from(vcpu_sig)
    } else {
        0x600
    };
    let (mxcsr, fcw) = match (vmm, fpu) {
        (VmmType::Qemu, FpuState::Init2) => (0x1f80, 0x37f),
        _ => (0, 0),
    };
    let data = VmcbSegment::new(0, 0x93, 0xffff, 0);
    let mut v = SaveArea::zeroed();
    v.es = data;
    v.cs = VmcbSegment::new(0xf000, cs_attrib, 0xffff, u64::from(eip & 0xffff_0000));
    v.ss = VmcbSegment::new(0, ss_attrib, 0xffff, 0);
    v.ds = data;
    v.fs = data;
    v.gs = data;
    v.gdtr = VmcbSegment::new(0, 0, 0xffff, 0);
    v.idtr = VmcbSegment::new(0, 0, 0xffff, 0);
    v.ldtr = VmcbSegment::new(0, 0x82, 0xffff, 0);
    v.tr = VmcbSegment::new(0, tr_attrib, 0xffff, 0);
    set_common(&mut v, 0x10, g_pat, rdx, sev_features, mxcsr, fcw);
    v.rip = U64::new(u64::from(eip & 0xffff));
    v
}

/// Builds the VMSA every vCPU of a pre-IGVM Coconut-SVSM guest starts
/// with (sev-snp-measure `snp:svsm`): flat 32-bit protected mode at `rip`
/// (the SVSM entry point), SEV_FEATURES 0x1.
///
/// sev-snp-measure 0.0.13 leaves FCW at 0 in this mode even on
/// KVM_SEV_INIT2 hosts (its `fcw=` keyword is not a field name); sevkit
/// reproduces that so digests agree: MXCSR 0x1f80 and FCW 0 for
/// [`FpuState::Init2`], both 0 for [`FpuState::Legacy`].
pub fn svsm_vmsa(rip: u64, vcpu_sig: u32, fpu: FpuState) -> SaveArea {
    let mxcsr = match fpu {
        FpuState::Init2 => 0x1f80,
        FpuState::Legacy => 0,
    };
    let flat_data = VmcbSegment::new(16, 0xc93, 0xffff_ffff, 0);
    let mut v = SaveArea::zeroed();
    v.es = flat_data;
    v.cs = VmcbSegment::new(8, 0xc9b, 0xffff_ffff, 0);
    v.ss = flat_data;
    v.ds = flat_data;
    v.fs = flat_data;
    v.gs = VmcbSegment::new(0, 0x93, 0xffff, 0);
    v.gdtr = VmcbSegment::new(0, 0, 0xffff, 0);
    v.idtr = VmcbSegment::new(0, 0, 0xffff, 0);
    v.ldtr = VmcbSegment::new(0, 0x82, 0xffff, 0);
    v.tr = VmcbSegment::new(0, 0x8b, 0xffff, 0);
    set_common(
        &mut v,
        0x11,
        DEFAULT_G_PAT,
        u64::from(vcpu_sig),
        sev_abi::vmsa::SEV_FEATURE_SNP_ACTIVE,
        mxcsr,
        0,
    );
    v.rip = U64::new(rip);
    v
}

fn set_common(
    v: &mut SaveArea,
    cr0: u64,
    g_pat: u64,
    rdx: u64,
    sev_features: u64,
    mxcsr: u32,
    fcw: u16,
) {
    v.efer = U64::new(0x1000); // EFER.SVME, set by KVM
    v.cr4 = U64::new(0x40); // CR4.MCE, set by KVM
    v.cr0 = U64::new(cr0);
    v.dr7 = U64::new(0x400);
    v.dr6 = U64::new(0xffff_0ff0);
    v.rflags = U64::new(0x2);
    v.g_pat = U64::new(g_pat);
    v.rdx = U64::new(rdx);
    v.sev_features = U64::new(sev_features);
    v.xcr0 = U64::new(0x1);
    v.mxcsr = U32::new(mxcsr);
    v.x87_fcw = U16::new(fcw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    fn nonzero(v: &SaveArea) -> Vec<(usize, u8)> {
        v.as_bytes()
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .map(|(i, &b)| (i, b))
            .collect()
    }

    #[test]
    fn qemu_bsp_and_ap() {
        let bsp = reset_vmsa(
            BSP_RESET_EIP,
            0,
            0x00A0_0F11,
            VmmType::Qemu,
            FpuState::Init2,
        );
        assert_eq!(bsp.cs.base.get(), 0xffff_0000);
        assert_eq!(bsp.rip.get(), 0xfff0);
        assert_eq!(bsp.rdx.get(), 0x00A0_0F11);
        assert_eq!(bsp.mxcsr.get(), 0x1f80);
        assert_eq!(bsp.x87_fcw.get(), 0x37f);
        let ap = reset_vmsa(0x0080_B004, 0, 0x00A0_0F11, VmmType::Qemu, FpuState::Init2);
        assert_eq!(ap.cs.base.get(), 0x80_0000);
        assert_eq!(ap.rip.get(), 0xB004);
        let legacy = reset_vmsa(
            BSP_RESET_EIP,
            0,
            0x00A0_0F11,
            VmmType::Qemu,
            FpuState::Legacy,
        );
        assert_eq!((legacy.mxcsr.get(), legacy.x87_fcw.get()), (0, 0));
        // Nothing outside the documented fields is set.
        for (off, _) in nonzero(&bsp) {
            assert!(
                off < 0xA0
                    || matches!(off, 0xD0..=0xD7 | 0x148..=0x17F | 0x268..=0x26F | 0x310..=0x317
                        | 0x3B0..=0x3B7 | 0x3E8..=0x3EF | 0x408..=0x40B | 0x410..=0x411),
                "unexpected byte at {off:#x}"
            );
        }
    }

    #[test]
    fn cloud_vmms() {
        let ec2_bsp = reset_vmsa(BSP_RESET_EIP, 1, 0x00A0_0F11, VmmType::Ec2, FpuState::Init2);
        assert_eq!(ec2_bsp.cs.attrib.get(), 0x9a);
        assert_eq!(ec2_bsp.ss.attrib.get(), 0x92);
        assert_eq!(ec2_bsp.tr.attrib.get(), 0x83);
        assert_eq!(ec2_bsp.rdx.get(), 0x600);
        assert_eq!(ec2_bsp.mxcsr.get(), 0);
        let ec2_ap = reset_vmsa(0x80_B004, 1, 0, VmmType::Ec2, FpuState::Init2);
        assert_eq!(ec2_ap.cs.attrib.get(), 0x9b);
        let gce = reset_vmsa(BSP_RESET_EIP, 1, 0x00A0_0F11, VmmType::Gce, FpuState::Init2);
        assert_eq!(gce.g_pat.get(), 0x70106);
        assert_eq!(gce.rdx.get(), 0x600);
        assert_eq!(gce.x87_fcw.get(), 0);
        assert_eq!(gce.sev_features.get(), 1);
    }

    #[test]
    fn svsm() {
        let v = svsm_vmsa(0xFF00_1234_5678, 0x0080_0F12, FpuState::Init2);
        assert_eq!(v.rip.get(), 0xFF00_1234_5678);
        assert_eq!(v.cs.selector.get(), 8);
        assert_eq!(v.cr0.get(), 0x11);
        assert_eq!(v.sev_features.get(), 1);
        assert_eq!((v.mxcsr.get(), v.x87_fcw.get()), (0x1f80, 0));
    }

    #[test]
    fn vmm_names() {
        for vmm in [VmmType::Qemu, VmmType::Ec2, VmmType::Gce] {
            assert_eq!(VmmType::from_name(vmm.name()), Some(vmm));
        }
        assert_eq!(VmmType::from_name("Qemu"), Some(VmmType::Qemu));
        assert_eq!(VmmType::from_name("xen"), None);
    }
}
