//! vCPU signatures: the CPUID Fn0000_0001_EAX value KVM puts in RDX of every
//! reset-state VMSA. It is the signature of the guest's QEMU `-cpu` model,
//! not of the host.
//!
//! ```text
//! sig = ext_family << 20 | ext_model << 16 | base_family << 8 | base_model << 4 | stepping
//! base_family = min(family, 0xf); ext_family = (family - 0xf) & 0xff when family > 0xf
//! ```

/// A named QEMU vCPU model and its family, model and stepping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuType {
    /// QEMU's model name.
    pub name: &'static str,
    /// CPU family (e.g. 25 for Zen 3/4).
    pub family: u32,
    /// Model.
    pub model: u32,
    /// Stepping.
    pub stepping: u32,
    /// Whether sev-snp-measure 0.0.13 knows the name (sevkit also accepts
    /// QEMU's later versions of the same models).
    pub in_sev_snp_measure: bool,
}

impl VcpuType {
    /// The model's CPUID signature.
    pub fn signature(&self) -> u32 {
        cpu_signature(self.family, self.model, self.stepping)
    }
}

const fn t(
    name: &'static str,
    family: u32,
    model: u32,
    stepping: u32,
    in_sev_snp_measure: bool,
) -> VcpuType {
    VcpuType {
        name,
        family,
        model,
        stepping,
        in_sev_snp_measure,
    }
}

/// The vCPU models sevkit knows, in sev-snp-measure's order, then QEMU's
/// later versions of the same models (same family, model and stepping).
pub const VCPU_TYPES: &[VcpuType] = &[
    t("EPYC", 23, 1, 2, true),
    t("EPYC-v1", 23, 1, 2, true),
    t("EPYC-v2", 23, 1, 2, true),
    t("EPYC-IBPB", 23, 1, 2, true),
    t("EPYC-v3", 23, 1, 2, true),
    t("EPYC-v4", 23, 1, 2, true),
    t("EPYC-Rome", 23, 49, 0, true),
    t("EPYC-Rome-v1", 23, 49, 0, true),
    t("EPYC-Rome-v2", 23, 49, 0, true),
    t("EPYC-Rome-v3", 23, 49, 0, true),
    t("EPYC-Milan", 25, 1, 1, true),
    t("EPYC-Milan-v1", 25, 1, 1, true),
    t("EPYC-Milan-v2", 25, 1, 1, true),
    t("EPYC-Genoa", 25, 17, 0, true),
    t("EPYC-Genoa-v1", 25, 17, 0, true),
    t("EPYC-Turin", 26, 0, 0, true),
    t("EPYC-v5", 23, 1, 2, false),
    t("EPYC-Rome-v4", 23, 49, 0, false),
    t("EPYC-Rome-v5", 23, 49, 0, false),
    t("EPYC-Milan-v3", 25, 1, 1, false),
    t("EPYC-Genoa-v2", 25, 17, 0, false),
    t("EPYC-Turin-v1", 26, 0, 0, false),
];

/// Looks a model up by name (ASCII case-insensitive).
pub fn vcpu_type(name: &str) -> Option<&'static VcpuType> {
    VCPU_TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

/// The CPUID signature of a family, model and stepping. Model and stepping
/// are truncated to their fields (8 and 4 bits), as sev-snp-measure does.
pub fn cpu_signature(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, (family - 0xf) & 0xff)
    } else {
        (family, 0)
    };
    let model_low = model & 0xf;
    let model_high = (model >> 4) & 0xf;
    (family_high << 20)
        | (model_high << 16)
        | (family_low << 8)
        | (model_low << 4)
        | (stepping & 0xf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_signatures() {
        assert_eq!(vcpu_type("EPYC-v4").unwrap().signature(), 0x0080_0F12);
        assert_eq!(vcpu_type("epyc-rome").unwrap().signature(), 0x0083_0F10);
        assert_eq!(vcpu_type("EPYC-Milan").unwrap().signature(), 0x00A0_0F11);
        assert_eq!(vcpu_type("EPYC-Genoa-v1").unwrap().signature(), 0x00A1_0F10);
        assert_eq!(vcpu_type("EPYC-Turin").unwrap().signature(), 0x00B0_0F00);
        assert!(vcpu_type("Skylake").is_none());
        assert_eq!(cpu_signature(6, 0x55, 7), 0x0005_0657);
        assert_eq!(cpu_signature(u32::MAX, u32::MAX, u32::MAX), 0x0F0F_0FFF);
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in VCPU_TYPES.iter().enumerate() {
            for b in &VCPU_TYPES[i + 1..] {
                assert!(!a.name.eq_ignore_ascii_case(b.name), "{}", a.name);
            }
        }
    }
}
