//! The firmware's CPUID policy table and sevkit's per-product platform
//! CPUID profiles (reference §2.9, `snp-cpuid-rules.txt`).
//!
//! [`POLICY_TABLE`] lists every architectural (leaf, sub-leaf) the firmware
//! knows with one rule per output register, as the Genoa firmware has them;
//! sevkit applies the same rules on Milan and Turin. A [`CpuidProfile`] is
//! the platform side of each rule: for every policy leaf the four register
//! values the platform itself reports (EXACT: the value a guest register
//! must equal; MASK: the bits it may set; LESSTHAN: its maximum). A register
//! whose value sevkit cannot derive is `None`, and left unchecked whatever
//! its rule.
//!
//! # Where the values come from (sevkit's model)
//!
//! * Feature registers (MASK, and the custom leaves' masks): the feature set
//!   of the product's Zen generation ([`super::features`], QEMU's EPYC
//!   models) plus what the processor has beyond the QEMU model: HTT (0x1
//!   EDX 28) and CmpLegacy (0x8000_0001 ECX 1) of a multi-core package, the
//!   CET shadow stack (0x7.0 ECX 7) and its XSAVE components CET_U and CET_S
//!   from Zen 3, and on Zen 5 MOVDIRI, MOVDIR64B (0x7.0 ECX 27, 28),
//!   AVX512_VP2INTERSECT (0x7.0 EDX 8) and AVX-VNNI (0x7.1 EAX 4). So a
//!   page the VMM builds for a model not newer than the product passes.
//! * XSAVE components (0xD.2 .. 0xD.C): their architectural size, offset and
//!   ECX where the product has the component
//!   ([`XSAVE_COMPONENTS`](super::features::XSAVE_COMPONENTS)), all zero
//!   where it has not (no AVX-512 before Zen 4, no PKRU or CET before Zen
//!   3). User components' ECX (MASK) may set bit 1 (64-byte alignment in
//!   the compacted format) but not bit 0 (supervisor).
//! * Architecturally reserved registers are EXACT 0: 0x6 EBX and EDX,
//!   0x7.1 EBX and ECX (and EDX before Zen 5), 0xF.0 EAX and ECX, 0x10.0 EAX,
//!   ECX and EDX, 0x8000_0007 EAX, 0x8000_000A ECX, 0x8000_0019 ECX and EDX,
//!   0x8000_001A EBX..EDX, 0x8000_001B EBX..EDX, 0x8000_001D.4 EBX and EDX
//!   (no fifth cache), the reserved registers of 0x8000_0020.0-3, 0x8000_0021
//!   ECX and EDX, 0x8000_0023 ECX and EDX.
//! * 0x6: EAX may set ARAT (bit 2), ECX EffFreq (bit 0), on every Zen.
//! * Maximum leaves: 0x10 standard, 0x8000_0028 extended, on every product
//!   (the Genoa values sevkit has always used).
//! * 0x8000_001F: EAX may set every SEV feature bit the reference defines
//!   (§3.1), on every product; EBX is the C-bit, one bit of physical-address
//!   reduction (not checked) and 4 VMPLs.
//! * 0x8000_0008 EAX: at most 52 physical address bits (the architectural
//!   maximum) and 48 linear ones, 57 with LA57.
//! * Not derivable, so unchecked: 0x8000_0001 EBX (package type), 0x8000_0007
//!   EBX and EDX (RAS and power management bits), 0x8000_0008 ECX and EDX
//!   (core count, INVLPGB and RDPRU limits), 0x8000_000A EDX (SVM features),
//!   0x8000_001B EAX (IBS features), 0x8000_001F ECX and EDX (ASID counts),
//!   0x8000_0020.3 ECX, 0x8000_0021 EAX, 0x8000_0023 EAX, both 0x8000_0024
//!   sub-leaves, 0x8000_0022 (custom, its rule is not in the reference), and
//!   on Turin 0x7.1 EDX.
//!
//! The custom leaves' checks are in the [`super`] module documentation.

use sev_abi::product::Product;

use super::features::{
    xsave_component, XsaveComponent, Zen, ZenFeatures, CMP_LEGACY, HTT, XSS_CET_S, XSS_CET_U,
};
use super::{xsave_size, xsaves_size, MAX_EXT_LEAF, MAX_STD_LEAF};
use RegRule::{Custom as C, Exact as E, LessThan as L, Mask as M, Unchecked as U};

/// How the firmware checks one output register of a policy leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegRule {
    /// The register must equal the platform's value.
    Exact,
    /// The register may set only the platform's bits.
    Mask,
    /// The register must be at most the platform's value (the table's
    /// LESSTHAN, which allows equality).
    LessThan,
    /// Anything goes.
    Unchecked,
    /// A leaf-specific check (the [`super`] module documentation).
    Custom,
}

/// One leaf of the firmware's policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyLeaf {
    /// Leaf (`eax_in`).
    pub leaf: u32,
    /// Sub-leaf (`ecx_in`).
    pub sub: u32,
    /// The rules of EAX, EBX, ECX, EDX.
    pub rules: [RegRule; 4],
}

const fn p(leaf: u32, sub: u32, rules: [RegRule; 4]) -> PolicyLeaf {
    PolicyLeaf { leaf, sub, rules }
}

/// The firmware's policy table (Genoa, `snp-cpuid-rules.txt`), sorted by
/// (leaf, sub-leaf). An architectural leaf missing here must be all zero.
pub const POLICY_TABLE: [PolicyLeaf; 57] = [
    p(0x0, 0x0, [L, U, U, U]),
    p(0x1, 0x0, [C, C, C, C]),
    p(0x2, 0x0, [U, U, U, U]),
    p(0x4, 0x0, [U, U, U, U]),
    p(0x5, 0x0, [U, U, U, U]),
    p(0x6, 0x0, [M, E, M, E]),
    p(0x7, 0x0, [C, C, C, C]),
    p(0x7, 0x1, [M, E, E, E]),
    p(0xB, 0x0, [U, U, U, U]),
    p(0xB, 0x1, [U, U, U, U]),
    p(0xB, 0x2, [U, U, U, U]),
    p(0xD, 0x0, [C, C, C, C]),
    p(0xD, 0x1, [C, C, C, C]),
    p(0xD, 0x2, [E, E, E, E]),
    p(0xD, 0x5, [E, E, M, E]),
    p(0xD, 0x6, [E, E, M, E]),
    p(0xD, 0x7, [E, E, M, E]),
    p(0xD, 0x9, [E, E, E, E]),
    p(0xD, 0xB, [E, E, E, E]),
    p(0xD, 0xC, [E, E, E, E]),
    p(0xF, 0x0, [E, U, E, U]),
    p(0xF, 0x1, [U, U, U, U]),
    p(0x10, 0x0, [E, U, E, E]),
    p(0x10, 0x1, [U, U, U, U]),
    p(0x8000_0000, 0x0, [L, U, U, U]),
    p(0x8000_0001, 0x0, [C, C, C, C]),
    p(0x8000_0002, 0x0, [U, U, U, U]),
    p(0x8000_0003, 0x0, [U, U, U, U]),
    p(0x8000_0004, 0x0, [U, U, U, U]),
    p(0x8000_0005, 0x0, [U, U, U, U]),
    p(0x8000_0006, 0x0, [U, U, U, U]),
    p(0x8000_0007, 0x0, [E, M, U, M]),
    p(0x8000_0008, 0x0, [C, C, C, C]),
    p(0x8000_000A, 0x0, [U, U, E, M]),
    p(0x8000_0019, 0x0, [U, U, E, E]),
    p(0x8000_001A, 0x0, [U, E, E, E]),
    p(0x8000_001B, 0x0, [M, E, E, E]),
    p(0x8000_001D, 0x0, [U, U, U, U]),
    p(0x8000_001D, 0x1, [U, U, U, U]),
    p(0x8000_001D, 0x2, [U, U, U, U]),
    p(0x8000_001D, 0x3, [U, U, U, U]),
    p(0x8000_001D, 0x4, [U, E, U, E]),
    p(0x8000_001E, 0x0, [U, U, U, U]),
    p(0x8000_001F, 0x0, [C, C, C, C]),
    p(0x8000_0020, 0x0, [E, U, E, E]),
    p(0x8000_0020, 0x1, [U, E, E, U]),
    p(0x8000_0020, 0x2, [U, E, E, U]),
    p(0x8000_0020, 0x3, [E, U, M, E]),
    p(0x8000_0021, 0x0, [M, U, E, E]),
    p(0x8000_0022, 0x0, [C, C, C, C]),
    p(0x8000_0023, 0x0, [M, U, E, E]),
    p(0x8000_0024, 0x0, [L, M, M, E]),
    p(0x8000_0024, 0x1, [M, E, E, E]),
    p(0x8000_0026, 0x0, [U, U, U, U]),
    p(0x8000_0026, 0x1, [U, U, U, U]),
    p(0x8000_0026, 0x2, [U, U, U, U]),
    p(0x8000_0026, 0x3, [U, U, U, U]),
];

/// The policy table's entry for `(leaf, sub)`, if it has one.
pub fn policy_leaf(leaf: u32, sub: u32) -> Option<&'static PolicyLeaf> {
    POLICY_TABLE
        .binary_search_by_key(&(leaf, sub), |p| (p.leaf, p.sub))
        .ok()
        .and_then(|i| POLICY_TABLE.get(i))
}

/// A platform's values for one policy leaf's EAX, EBX, ECX, EDX; `None`
/// where sevkit has no value (the register is not checked).
pub type PlatformRegs = [Option<u32>; 4];

/// 0x1 EBX bits 15:8: the CLFLUSH line size in 8-byte units.
pub const CLFLUSH_FIELD: u32 = 0xFF00;
/// 0x1 EBX on every Zen: CLFLUSH 8 × 8 = 64 bytes (the other fields,
/// brand index, logical count and APIC ID, are not checked).
pub const CLFLUSH_64: u32 = 8 << 8;

/// 0x6 EAX bit 2: ARAT (the APIC timer runs in every C-state).
pub const ARAT: u32 = 1 << 2;
/// 0x6 ECX bit 0: EffFreq (MPERF / APERF).
pub const EFF_FREQ: u32 = 1 << 0;

/// 0x7.0 ECX bit 7: CET shadow stacks (Zen 3 and later).
pub const CET_SS: u32 = 1 << 7;
/// 0x7.0 ECX bit 27: MOVDIRI (Zen 5).
pub const MOVDIRI: u32 = 1 << 27;
/// 0x7.0 ECX bit 28: MOVDIR64B (Zen 5).
pub const MOVDIR64B: u32 = 1 << 28;
/// 0x7.0 EDX bit 8: AVX512_VP2INTERSECT (Zen 5).
pub const AVX512_VP2INTERSECT: u32 = 1 << 8;
/// 0x7.1 EAX bit 4: AVX-VNNI (Zen 5).
pub const AVX_VNNI: u32 = 1 << 4;

/// 0xD.n ECX bit 1 (64-byte alignment in the compacted format): a user
/// component may set it.
pub const XSAVE_ALIGNED: u32 = 1 << 1;

/// The largest physical address width (0x8000_0008 EAX 7:0) a guest may
/// claim: 52, the architectural maximum.
pub const MAX_PHYS_ADDR_BITS: u32 = 52;

/// 0x8000_001F EAX: every SEV feature bit the reference defines (§3.1: bits
/// 0-19, 23-27, 29-31). sevkit does not model which product has which, so
/// only the undefined bits (20-22, 28) are refused.
pub const SEV_FEATURES: u32 = 0xEF8F_FFFF;

/// The number of VMPLs (0x8000_001F EBX 15:12) of every SNP product.
pub const MAX_VMPLS: u32 = 4;

/// 0x8000_001F EBX fields: C-bit position (5:0), physical-address bit
/// reduction (11:6, not checked), number of VMPLs (15:12).
pub const SEV_EBX_C_BIT: u32 = 0x3F;
/// See [`SEV_EBX_C_BIT`].
pub const SEV_EBX_PHYS_REDUCTION: u32 = 0xFC0;
/// See [`SEV_EBX_C_BIT`].
pub const SEV_EBX_VMPLS: u32 = 0xF000;

/// One platform's CPUID as the firmware checks guest CPUID pages against
/// it: the product's feature set, its family/model/stepping and C-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidProfile {
    product: Product,
    fms: u32,
    c_bit: u8,
    features: ZenFeatures,
}

impl CpuidProfile {
    /// The profile of `product` whose Fn0000_0001_EAX is `fms` and whose
    /// C-bit position is `c_bit`.
    pub fn new(product: Product, fms: u32, c_bit: u8) -> Self {
        let zen = Zen::of_product(product);
        let mut features = zen.features();
        features.leaf1_edx |= HTT;
        features.ext1_ecx |= CMP_LEGACY;
        if zen >= Zen::Zen3 {
            features.leaf7_ecx |= CET_SS;
            features.xss |= XSS_CET_U | XSS_CET_S;
        }
        if zen >= Zen::Zen5 {
            features.leaf7_ecx |= MOVDIRI | MOVDIR64B;
            features.leaf7_edx |= AVX512_VP2INTERSECT;
            features.leaf7_1_eax |= AVX_VNNI;
        }
        Self {
            product,
            fms,
            c_bit,
            features,
        }
    }

    /// The product.
    pub fn product(&self) -> Product {
        self.product
    }

    /// The platform's Fn0000_0001_EAX (family/model/stepping).
    pub fn fms(&self) -> u32 {
        self.fms
    }

    /// The C-bit position.
    pub fn c_bit(&self) -> u8 {
        self.c_bit
    }

    /// The platform's features: the Zen generation's (what the VMM may
    /// expose) plus the platform-only bits of the module documentation.
    pub fn features(&self) -> &ZenFeatures {
        &self.features
    }

    /// The highest standard leaf (0x0 EAX).
    pub fn max_std_leaf(&self) -> u32 {
        MAX_STD_LEAF
    }

    /// The highest extended leaf (0x8000_0000 EAX).
    pub fn max_ext_leaf(&self) -> u32 {
        MAX_EXT_LEAF
    }

    /// The platform's values for policy leaf `(leaf, sub)`; `None` when the
    /// policy table has no such leaf.
    pub fn regs(&self, leaf: u32, sub: u32) -> Option<PlatformRegs> {
        policy_leaf(leaf, sub)?;
        let f = &self.features;
        let s = Some;
        let any = None;
        Some(match (leaf, sub) {
            (0x0, _) => [s(self.max_std_leaf()), any, any, any],
            (0x1, _) => [s(self.fms), s(CLFLUSH_64), s(f.leaf1_ecx), s(f.leaf1_edx)],
            (0x6, _) => [s(ARAT), s(0), s(EFF_FREQ), s(0)],
            (0x7, 0) => [
                s(f.leaf7_max_sub),
                s(f.leaf7_ebx),
                s(f.leaf7_ecx),
                s(f.leaf7_edx),
            ],
            (0x7, _) => {
                let edx = if self.product == Product::Turin {
                    any
                } else {
                    s(0)
                };
                [s(f.leaf7_1_eax), s(0), s(0), edx]
            }
            (0xD, 0) => [
                s(f.xcr0 as u32),
                s(xsave_size(f.xcr0)),
                s(xsave_size(f.xcr0)),
                s((f.xcr0 >> 32) as u32),
            ],
            (0xD, 1) => [
                s(f.leaf_d1_eax),
                s(xsaves_size(f.xcr0, f.xss)),
                s(f.xss as u32),
                s((f.xss >> 32) as u32),
            ],
            (0xD, n) => {
                let regs = xsave_component(n)
                    .filter(|c| (f.xcr0 | f.xss) & c.mask() != 0)
                    .map_or([0; 4], XsaveComponent::regs);
                let [eax, ebx, ecx, edx] = regs;
                // User components may report 64-byte alignment (ECX bit 1,
                // the MASK rule of 0xD.5-7).
                let ecx = if matches!(n, 5..=7) && eax != 0 {
                    ecx | XSAVE_ALIGNED
                } else {
                    ecx
                };
                [s(eax), s(ebx), s(ecx), s(edx)]
            }
            (0xF, 0) => [s(0), any, s(0), any],
            (0x10 | 0x8000_0020, 0) => [s(0), any, s(0), s(0)],
            (0x8000_0000, _) => [s(self.max_ext_leaf()), any, any, any],
            (0x8000_0001, _) => [s(self.fms), any, s(f.ext1_ecx), s(f.ext1_edx)],
            (0x8000_0007, _) => [s(0), any, any, any],
            (0x8000_0008, _) => [
                s(MAX_PHYS_ADDR_BITS | (f.linear_address_bits() << 8)),
                s(f.ext8_ebx),
                any,
                any,
            ],
            (0x8000_000A, _) => [any, any, s(0), any],
            (0x8000_0019 | 0x8000_0021 | 0x8000_0023, _) => [any, any, s(0), s(0)],
            (0x8000_001A | 0x8000_001B, _) => [any, s(0), s(0), s(0)],
            (0x8000_001D, 4) => [any, s(0), any, s(0)],
            (0x8000_001F, _) => [
                s(SEV_FEATURES),
                s((u32::from(self.c_bit) & SEV_EBX_C_BIT) | (1 << 6) | (MAX_VMPLS << 12)),
                any,
                any,
            ],
            (0x8000_0020, 1 | 2) => [any, s(0), s(0), any],
            (0x8000_0020, _) => [s(0), any, any, s(0)],
            _ => [any; 4],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::platform::{c_bit_position, default_fms};

    fn profile(product: Product) -> CpuidProfile {
        CpuidProfile::new(product, default_fms(product), c_bit_position(product))
    }

    #[test]
    fn the_table_is_sorted_and_complete() {
        for w in POLICY_TABLE.windows(2) {
            assert!((w[0].leaf, w[0].sub) < (w[1].leaf, w[1].sub), "{w:?}");
        }
        for pl in &POLICY_TABLE {
            assert_eq!(policy_leaf(pl.leaf, pl.sub), Some(pl));
            // The custom leaves are custom in all four registers.
            let custom = pl.rules.iter().filter(|r| **r == RegRule::Custom).count();
            assert!(custom == 0 || custom == 4, "{pl:?}");
        }
        assert_eq!(policy_leaf(0x3, 0), None);
        assert_eq!(policy_leaf(0x7, 2), None);
        assert_eq!(policy_leaf(0x8000_0025, 0), None);
        let custom: Vec<(u32, u32)> = POLICY_TABLE
            .iter()
            .filter(|p| p.rules[0] == RegRule::Custom)
            .map(|p| (p.leaf, p.sub))
            .collect();
        assert_eq!(
            custom,
            [
                (0x1, 0),
                (0x7, 0),
                (0xD, 0),
                (0xD, 1),
                (0x8000_0001, 0),
                (0x8000_0008, 0),
                (0x8000_001F, 0),
                (0x8000_0022, 0)
            ]
        );
    }

    #[test]
    fn every_policy_leaf_has_values_and_rules_agree() {
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let prof = profile(product);
            for pl in &POLICY_TABLE {
                let regs = prof.regs(pl.leaf, pl.sub).unwrap();
                for (rule, value) in pl.rules.iter().zip(regs) {
                    // An unchecked register has no value to compare with.
                    if *rule == RegRule::Unchecked {
                        assert_eq!(value, None, "{product:?} {pl:?}");
                    }
                }
            }
            assert_eq!(prof.regs(0x3, 0), None);
        }
        // The checked registers sevkit has no value for (module docs).
        let unmodelled = |product| {
            let prof = profile(product);
            let mut out = Vec::new();
            for pl in &POLICY_TABLE {
                let regs = prof.regs(pl.leaf, pl.sub).unwrap();
                for (i, (rule, value)) in pl.rules.iter().zip(regs).enumerate() {
                    if *rule != RegRule::Unchecked && value.is_none() {
                        out.push((pl.leaf, pl.sub, i));
                    }
                }
            }
            out
        };
        let genoa = [
            (0x8000_0001, 0, 1),
            (0x8000_0007, 0, 1),
            (0x8000_0007, 0, 3),
            (0x8000_0008, 0, 2),
            (0x8000_0008, 0, 3),
            (0x8000_000A, 0, 3),
            (0x8000_001B, 0, 0),
            (0x8000_001F, 0, 2),
            (0x8000_001F, 0, 3),
            (0x8000_0020, 3, 2),
            (0x8000_0021, 0, 0),
            (0x8000_0022, 0, 0),
            (0x8000_0022, 0, 1),
            (0x8000_0022, 0, 2),
            (0x8000_0022, 0, 3),
            (0x8000_0023, 0, 0),
            (0x8000_0024, 0, 0),
            (0x8000_0024, 0, 1),
            (0x8000_0024, 0, 2),
            (0x8000_0024, 0, 3),
            (0x8000_0024, 1, 0),
            (0x8000_0024, 1, 1),
            (0x8000_0024, 1, 2),
            (0x8000_0024, 1, 3),
        ];
        assert_eq!(unmodelled(Product::Genoa), genoa);
        assert_eq!(unmodelled(Product::Milan), genoa);
        let mut turin = vec![(0x7, 1, 3)];
        turin.extend(genoa);
        assert_eq!(unmodelled(Product::Turin), turin);
    }

    #[test]
    fn the_platform_has_at_least_the_generation_s_features() {
        for product in Product::ALL {
            let prof = profile(*product);
            let zen = Zen::of_product(*product).features();
            let f = prof.features();
            for (guest, platform) in [
                (zen.leaf1_ecx, f.leaf1_ecx),
                (zen.leaf1_edx, f.leaf1_edx),
                (zen.leaf7_ebx, f.leaf7_ebx),
                (zen.leaf7_ecx, f.leaf7_ecx),
                (zen.leaf7_edx, f.leaf7_edx),
                (zen.leaf7_1_eax, f.leaf7_1_eax),
                (zen.ext1_ecx, f.ext1_ecx),
                (zen.ext1_edx, f.ext1_edx),
                (zen.ext8_ebx, f.ext8_ebx),
            ] {
                assert_eq!(guest & !platform, 0, "{product:?}");
            }
            assert_eq!(zen.xcr0, f.xcr0);
        }
    }

    #[test]
    fn xsave_components_per_product() {
        let milan = profile(Product::Milan);
        let genoa = profile(Product::Genoa);
        for n in [5, 6, 7] {
            assert_eq!(
                milan.regs(0xD, n),
                Some([Some(0); 4]),
                "no AVX-512 on Milan"
            );
        }
        assert_eq!(
            genoa.regs(0xD, 5),
            Some([Some(0x40), Some(0x340), Some(XSAVE_ALIGNED), Some(0)])
        );
        assert_eq!(
            genoa.regs(0xD, 6),
            Some([Some(0x200), Some(0x380), Some(XSAVE_ALIGNED), Some(0)])
        );
        assert_eq!(
            genoa.regs(0xD, 7),
            Some([Some(0x400), Some(0x580), Some(XSAVE_ALIGNED), Some(0)])
        );
        for prof in [milan, genoa] {
            assert_eq!(
                prof.regs(0xD, 2),
                Some([Some(0x100), Some(0x240), Some(0), Some(0)])
            );
            assert_eq!(
                prof.regs(0xD, 9),
                Some([Some(8), Some(0x980), Some(0), Some(0)])
            );
            assert_eq!(
                prof.regs(0xD, 0xB),
                Some([Some(0x10), Some(0), Some(1), Some(0)])
            );
            assert_eq!(
                prof.regs(0xD, 0xC),
                Some([Some(0x18), Some(0), Some(1), Some(0)])
            );
        }
        assert_eq!(milan.regs(0xD, 0).unwrap()[2], Some(0x988));
        assert_eq!(genoa.regs(0xD, 0).unwrap()[0], Some(0x2E7));
        assert_eq!(genoa.regs(0xD, 1).unwrap()[1], Some(0x240 + 0x100 + 0x60));
    }
}
