//! The CPUID feature sets of AMD's Zen generations: the one place sevkit
//! defines them.
//!
//! Each generation's set is what QEMU's EPYC vCPU model of that generation
//! (`EPYC`, `EPYC-Rome`, `EPYC-Milan`, `EPYC-Genoa`, `EPYC-Turin`) exposes
//! under KVM, bit names as in Linux's `cpufeatures.h` and AMD's APM vol. 3
//! appendix E. Two users:
//!
//! * the VMM's CPUID page builder (`sev_vmm::machine::cpuid`) reports the set of the
//!   vCPU model's generation to the guest;
//! * the firmware's platform profile (`sev_firmware::snp::cpuid::profile`)
//!   takes the set of the product's generation as the bits a guest may see
//!   (its MASK registers), adding what the processor has beyond the QEMU
//!   model.
//!
//! Every generation's set contains the previous one's, so a page built for
//! an older model passes a newer platform's masks. sevkit's Zen 5 set is
//! Zen 4's: the model transcribes no Zen 5 additions for guests (the Turin
//! platform profile allows a few).
//!
//! Also here: the XSAVE area sizes of CPUID leaf 0xD ([`xsave_size`],
//! [`xsaves_size`]), which both need.

use crate::product::Product;

/// An AMD Zen generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zen {
    /// Zen 1: family 17h models below 30h (Naples; QEMU `EPYC`).
    Zen1,
    /// Zen 2: family 17h from model 30h (Rome; `EPYC-Rome`).
    Zen2,
    /// Zen 3: family 19h models below 10h (Milan; `EPYC-Milan`).
    Zen3,
    /// Zen 4: the other family 19h models (Genoa; `EPYC-Genoa`).
    Zen4,
    /// Zen 5: family 1Ah (Turin; `EPYC-Turin`).
    Zen5,
}

/// Bit `n`.
const fn bit(n: u32) -> u32 {
    1 << n
}

/// 0x1 ECX bit 17, PCID (Zen 3 and later models in QEMU).
pub const PCID: u32 = bit(17);
/// 0x1 ECX bit 27, OSXSAVE: reflects CR4.OSXSAVE (0 at reset), so the
/// firmware does not check it.
pub const OSXSAVE: u32 = bit(27);
/// 0x1 ECX bit 31: running under a hypervisor. Every VMM sets it; the
/// firmware accepts it.
pub const HYPERVISOR: u32 = bit(31);
/// 0x1 EDX bit 28, HTT: the logical processor count in EBX is valid
/// (multi-threaded packages and multi-vCPU guests).
pub const HTT: u32 = bit(28);
/// 0x7.0 ECX bit 4, OSPKE: reflects CR4.PKE, not checked.
pub const OSPKE: u32 = bit(4);
/// 0x7.0 ECX bit 16, LA57: 5-level paging (57 linear address bits).
pub const LA57: u32 = bit(16);
/// 0x8000_0001 ECX bit 1, CmpLegacy: multi-core package.
pub const CMP_LEGACY: u32 = bit(1);

/// 0x1 ECX: SSE3, PCLMULQDQ, SSSE3, FMA, CX16, SSE4.1, SSE4.2, x2APIC,
/// MOVBE, POPCNT, AES, XSAVE, AVX, F16C, RDRAND (without PCID, OSXSAVE and
/// the hypervisor bit).
const LEAF1_ECX: u32 = bit(0)
    | bit(1)
    | bit(9)
    | bit(12)
    | bit(13)
    | bit(19)
    | bit(20)
    | bit(21)
    | bit(22)
    | bit(23)
    | bit(25)
    | bit(26)
    | bit(28)
    | bit(29)
    | bit(30);

/// 0x1 EDX: FPU, VME, DE, PSE, TSC, MSR, PAE, MCE, CX8, APIC, SEP, MTRR,
/// PGE, MCA, CMOV, PAT, PSE36, CLFSH, MMX, FXSR, SSE, SSE2 (0x078B_FBFF).
const LEAF1_EDX: u32 = 0x3FF // FPU .. APIC (bits 0-9)
    | bit(11)
    | bit(12)
    | bit(13)
    | bit(14)
    | bit(15)
    | bit(16)
    | bit(17)
    | bit(19)
    | bit(23)
    | bit(24)
    | bit(25)
    | bit(26);

/// 0x1 EDX bits AMD repeats in 0x8000_0001 EDX (all but SEP, CLFSH, SSE,
/// SSE2; 0x0183_F3FF).
pub const AMD_EDX_ALIASES: u32 = LEAF1_EDX & !(bit(11) | bit(19) | bit(25) | bit(26));

/// 0x7.0 EBX: FSGSBASE, BMI1, AVX2, SMEP, BMI2, RDSEED, ADX, SMAP,
/// CLFLUSHOPT, SHA.
const LEAF7_EBX_ZEN1: u32 =
    bit(0) | bit(3) | bit(5) | bit(7) | bit(8) | bit(18) | bit(19) | bit(20) | bit(23) | bit(29);
/// Zen 2 adds CLWB.
const LEAF7_EBX_ZEN2: u32 = LEAF7_EBX_ZEN1 | bit(24);
/// Zen 3 adds ERMS, INVPCID.
const LEAF7_EBX_ZEN3: u32 = LEAF7_EBX_ZEN2 | bit(9) | bit(10);
/// Zen 4 adds AVX512F, DQ, IFMA, CD, BW, VL.
const LEAF7_EBX_ZEN4: u32 =
    LEAF7_EBX_ZEN3 | bit(16) | bit(17) | bit(21) | bit(28) | bit(30) | bit(31);

/// The AVX-512 bits of 0x7.0 EBX (F, DQ, IFMA, CD, BW, VL).
pub const AVX512_EBX: u32 = LEAF7_EBX_ZEN4 & !LEAF7_EBX_ZEN3;

/// 0x7.0 ECX, Zen 2: UMIP, RDPID.
const LEAF7_ECX_ZEN2: u32 = bit(2) | bit(22);
/// Zen 3 adds PKU, VAES, VPCLMULQDQ (OSPKE reflects CR4 and is 0).
const LEAF7_ECX_ZEN3: u32 = LEAF7_ECX_ZEN2 | bit(3) | bit(9) | bit(10);
/// Zen 4 adds AVX512_VBMI, VBMI2, GFNI, VNNI, BITALG, VPOPCNTDQ, LA57.
const LEAF7_ECX_ZEN4: u32 =
    LEAF7_ECX_ZEN3 | bit(1) | bit(6) | bit(8) | bit(11) | bit(12) | bit(14) | LA57;

/// 0x7.0 EDX, Zen 3 and later: FSRM.
const LEAF7_EDX_ZEN3: u32 = bit(4);

/// 0x7.1 EAX, Zen 4 and later: AVX512_BF16.
pub const AVX512_BF16: u32 = bit(5);

/// XCR0 bit of the x87 state.
pub const XCR0_X87: u64 = 1 << 0;
/// XCR0 bit of the SSE state.
pub const XCR0_SSE: u64 = 1 << 1;
/// XCR0 bits x87, SSE, AVX.
pub const XCR0_AVX: u64 = 0x7;
/// XCR0 bits of the AVX-512 state: opmask, ZMM_Hi256, Hi16_ZMM.
pub const XCR0_AVX512: u64 = (1 << 5) | (1 << 6) | (1 << 7);
/// XCR0 bit of the protection-key state (PKRU).
pub const XCR0_PKRU: u64 = 1 << 9;
/// XSS bit of the user CET state (CET_U).
pub const XSS_CET_U: u64 = 1 << 11;
/// XSS bit of the supervisor CET state (CET_S).
pub const XSS_CET_S: u64 = 1 << 12;

/// 0xD.1 EAX: XSAVEOPT, XSAVEC, XGETBV with ECX 1, XSAVES.
const LEAF_D1_EAX: u32 = 0xF;

/// 0x8000_0001 ECX: LAHF/SAHF, CR8 legacy, ABM (LZCNT), SSE4A,
/// misaligned SSE, PREFETCHW, OSVW, TOPOEXT.
const EXT1_ECX: u32 = bit(0) | bit(4) | bit(5) | bit(6) | bit(7) | bit(8) | bit(9) | bit(22);

/// 0x8000_0001 EDX: SYSCALL, NX, MMXEXT, FFXSR, 1 GiB pages, RDTSCP, LM,
/// plus the 0x1 EDX aliases (0x2FD3_FBFF).
const EXT1_EDX: u32 =
    bit(11) | bit(20) | bit(22) | bit(25) | bit(26) | bit(27) | bit(29) | AMD_EDX_ALIASES;

/// 0x8000_0008 EBX, Zen 1: IBPB.
const EXT8_EBX_ZEN1: u32 = bit(12);
/// Zen 2: CLZERO, XSAVEERPTR, WBNOINVD, IBPB, STIBP, AMD_SSBD.
const EXT8_EBX_ZEN2: u32 = bit(0) | bit(2) | bit(9) | bit(12) | bit(15) | bit(24);
/// Zen 3 and later add IBRS and PSFD.
const EXT8_EBX_ZEN3: u32 = EXT8_EBX_ZEN2 | bit(14) | bit(28);

/// One XSAVE state component as CPUID 0xD.n describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsaveComponent {
    /// The component (XCR0 / XSS bit, 0xD sub-leaf).
    pub index: u32,
    /// Its size in bytes (0xD.n EAX).
    pub size: u32,
    /// Its offset in the standard (non-compacted) format (0xD.n EBX); 0 for
    /// supervisor components, which only the compacted format holds.
    pub offset: u32,
    /// A supervisor (XSS) component: 0xD.n ECX bit 0.
    pub supervisor: bool,
}

impl XsaveComponent {
    /// The component's 0xD.n registers `[eax, ebx, ecx, edx]`.
    pub const fn regs(self) -> [u32; 4] {
        [self.size, self.offset, self.supervisor as u32, 0]
    }

    /// The component's bit in XCR0 (user) or XSS (supervisor).
    pub const fn mask(self) -> u64 {
        1 << self.index
    }
}

/// The XSAVE components beyond x87 and SSE that Zen processors have, with
/// their architectural sizes and offsets (APM vol. 1 §11.5, as AMD lays the
/// standard format out, without MPX): AVX, opmask, ZMM_Hi256, Hi16_ZMM,
/// PKRU, CET_U, CET_S.
pub const XSAVE_COMPONENTS: [XsaveComponent; 7] = [
    user(2, 0x100, 0x240),
    user(5, 0x40, 0x340),
    user(6, 0x200, 0x380),
    user(7, 0x400, 0x580),
    user(9, 0x8, 0x980),
    supervisor(11, 0x10),
    supervisor(12, 0x18),
];

const fn user(index: u32, size: u32, offset: u32) -> XsaveComponent {
    XsaveComponent {
        index,
        size,
        offset,
        supervisor: false,
    }
}

const fn supervisor(index: u32, size: u32) -> XsaveComponent {
    XsaveComponent {
        index,
        size,
        offset: 0,
        supervisor: true,
    }
}

/// The XSAVE component `index` (0xD sub-leaf), if Zen processors have it.
pub fn xsave_component(index: u32) -> Option<XsaveComponent> {
    XSAVE_COMPONENTS.iter().copied().find(|c| c.index == index)
}

/// A generation's CPUID feature registers, as QEMU's EPYC model of that
/// generation exposes them to a KVM guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZenFeatures {
    /// 0x1 ECX, without OSXSAVE and the hypervisor bit.
    pub leaf1_ecx: u32,
    /// 0x1 EDX.
    pub leaf1_edx: u32,
    /// 0x7.0 EAX: the highest 0x7 sub-leaf.
    pub leaf7_max_sub: u32,
    /// 0x7.0 EBX.
    pub leaf7_ebx: u32,
    /// 0x7.0 ECX (OSPKE 0).
    pub leaf7_ecx: u32,
    /// 0x7.0 EDX.
    pub leaf7_edx: u32,
    /// 0x7.1 EAX.
    pub leaf7_1_eax: u32,
    /// The user XSAVE components (0xD.0 EDX:EAX).
    pub xcr0: u64,
    /// The supervisor XSAVE components (0xD.1 EDX:ECX).
    pub xss: u64,
    /// 0xD.1 EAX.
    pub leaf_d1_eax: u32,
    /// 0x8000_0001 ECX.
    pub ext1_ecx: u32,
    /// 0x8000_0001 EDX.
    pub ext1_edx: u32,
    /// 0x8000_0008 EBX.
    pub ext8_ebx: u32,
}

impl ZenFeatures {
    /// Linear address bits (0x8000_0008 EAX 15:8): 57 with LA57, else 48.
    pub const fn linear_address_bits(&self) -> u32 {
        if self.leaf7_ecx & LA57 != 0 {
            57
        } else {
            48
        }
    }

    /// The XSAVE components of `xcr0 | xss` beyond x87 and SSE.
    pub fn xsave_components(&self) -> impl Iterator<Item = XsaveComponent> + '_ {
        XSAVE_COMPONENTS
            .iter()
            .copied()
            .filter(|c| (self.xcr0 | self.xss) & c.mask() != 0)
    }
}

impl Zen {
    /// Every generation, oldest first.
    pub const ALL: [Zen; 5] = [Zen::Zen1, Zen::Zen2, Zen::Zen3, Zen::Zen4, Zen::Zen5];

    /// The generation of a product.
    pub const fn of_product(product: Product) -> Self {
        match product {
            Product::Naples => Self::Zen1,
            Product::Rome => Self::Zen2,
            Product::Milan => Self::Zen3,
            Product::Genoa => Self::Zen4,
            Product::Turin => Self::Zen5,
        }
    }

    /// The generation of a family and model: 17h models below 30h Zen 1,
    /// other 17h Zen 2, 19h below 10h Zen 3, other 19h Zen 4, 1Ah Zen 5;
    /// `None` for any other family.
    pub const fn of_family_model(family: u32, model: u32) -> Option<Self> {
        Some(match (family, model) {
            (0x17, m) if m < 0x30 => Self::Zen1,
            (0x17, _) => Self::Zen2,
            (0x19, m) if m < 0x10 => Self::Zen3,
            (0x19, _) => Self::Zen4,
            (0x1A, _) => Self::Zen5,
            _ => return None,
        })
    }

    /// Whether the generation has AVX-512 (Zen 4 and later).
    pub const fn avx512(self) -> bool {
        matches!(self, Self::Zen4 | Self::Zen5)
    }

    /// The features QEMU's EPYC model of this generation exposes.
    pub const fn features(self) -> ZenFeatures {
        let zen3 = matches!(self, Self::Zen3 | Self::Zen4 | Self::Zen5);
        let avx512 = self.avx512();
        let (leaf7_ebx, leaf7_ecx, leaf7_edx) = match self {
            Self::Zen1 => (LEAF7_EBX_ZEN1, 0, 0),
            Self::Zen2 => (LEAF7_EBX_ZEN2, LEAF7_ECX_ZEN2, 0),
            Self::Zen3 => (LEAF7_EBX_ZEN3, LEAF7_ECX_ZEN3, LEAF7_EDX_ZEN3),
            Self::Zen4 | Self::Zen5 => (LEAF7_EBX_ZEN4, LEAF7_ECX_ZEN4, LEAF7_EDX_ZEN3),
        };
        let mut xcr0 = XCR0_AVX;
        if zen3 {
            xcr0 |= XCR0_PKRU;
        }
        if avx512 {
            xcr0 |= XCR0_AVX512;
        }
        ZenFeatures {
            leaf1_ecx: if zen3 { LEAF1_ECX | PCID } else { LEAF1_ECX },
            leaf1_edx: LEAF1_EDX,
            leaf7_max_sub: avx512 as u32,
            leaf7_ebx,
            leaf7_ecx,
            leaf7_edx,
            leaf7_1_eax: if avx512 { AVX512_BF16 } else { 0 },
            xcr0,
            xss: 0,
            leaf_d1_eax: LEAF_D1_EAX,
            ext1_ecx: EXT1_ECX,
            ext1_edx: EXT1_EDX,
            ext8_ebx: match self {
                Self::Zen1 => EXT8_EBX_ZEN1,
                Self::Zen2 => EXT8_EBX_ZEN2,
                Self::Zen3 | Self::Zen4 | Self::Zen5 => EXT8_EBX_ZEN3,
            },
        }
    }
}

/// XSAVE area size for the features enabled in `xcr0` (0xD.0 EBX).
pub fn xsave_size(xcr0: u64) -> u32 {
    let mut size = 0x240;
    if xcr0 & (1 << 2) != 0 {
        size = 0x340;
    }
    if xcr0 & (1 << 5) != 0 {
        size = 0x380;
    }
    if xcr0 & (1 << 6) != 0 {
        size = 0x580;
    }
    if xcr0 & (1 << 7) != 0 {
        size = 0x980;
    }
    if xcr0 & (1 << 9) != 0 {
        size = 0x988;
    }
    size
}

/// Compacted XSAVE size for `xcr0 | xss` (0xD.1 EBX).
pub fn xsaves_size(xcr0: u64, xss: u64) -> u32 {
    let mut size = 0x240;
    if xcr0 & (1 << 2) != 0 {
        size += 0x100;
    }
    if xcr0 & (1 << 9) != 0 {
        size += 0x20;
    }
    if xss & (1 << 11) != 0 {
        size += 0x20;
    }
    if xss & (1 << 12) != 0 {
        size += 0x20;
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of `a` within `b`'s.
    fn subset(a: &ZenFeatures, b: &ZenFeatures) -> bool {
        let pairs = [
            (a.leaf1_ecx, b.leaf1_ecx),
            (a.leaf1_edx, b.leaf1_edx),
            (a.leaf7_ebx, b.leaf7_ebx),
            (a.leaf7_ecx, b.leaf7_ecx),
            (a.leaf7_edx, b.leaf7_edx),
            (a.leaf7_1_eax, b.leaf7_1_eax),
            (a.leaf_d1_eax, b.leaf_d1_eax),
            (a.ext1_ecx, b.ext1_ecx),
            (a.ext1_edx, b.ext1_edx),
            (a.ext8_ebx, b.ext8_ebx),
        ];
        pairs.iter().all(|(x, y)| x & !y == 0)
            && a.xcr0 & !b.xcr0 == 0
            && a.xss & !b.xss == 0
            && a.leaf7_max_sub <= b.leaf7_max_sub
    }

    #[test]
    fn known_values() {
        let zen1 = Zen::Zen1.features();
        assert_eq!(zen1.leaf1_edx, 0x078B_FBFF);
        assert_eq!(zen1.ext1_edx, 0x2FD3_FBFF);
        assert_eq!(AMD_EDX_ALIASES, 0x0183_F3FF);
        assert_eq!(AVX512_EBX, 0xD023_0000);
        assert_eq!(zen1.leaf1_ecx & (OSXSAVE | HYPERVISOR | PCID), 0);
        assert_eq!(Zen::Zen3.features().leaf1_ecx & PCID, PCID);
        assert_eq!(Zen::Zen3.features().xcr0, 0x207);
        assert_eq!(Zen::Zen4.features().xcr0, 0x2E7);
        assert_eq!(Zen::Zen4.features().linear_address_bits(), 57);
        assert_eq!(Zen::Zen3.features().linear_address_bits(), 48);
        assert_eq!(Zen::Zen5.features(), Zen::Zen4.features());
    }

    #[test]
    fn generations_only_add_features() {
        for w in Zen::ALL.windows(2) {
            assert!(w[0] < w[1]);
            assert!(
                subset(&w[0].features(), &w[1].features()),
                "{:?} has a bit {:?} lacks",
                w[0],
                w[1]
            );
        }
        assert!(!subset(&Zen::Zen4.features(), &Zen::Zen3.features()));
    }

    #[test]
    fn generations_of_products_and_models() {
        assert_eq!(Zen::of_product(Product::Milan), Zen::Zen3);
        assert_eq!(Zen::of_product(Product::Genoa), Zen::Zen4);
        assert_eq!(Zen::of_product(Product::Turin), Zen::Zen5);
        assert_eq!(Zen::of_family_model(0x17, 0x01), Some(Zen::Zen1));
        assert_eq!(Zen::of_family_model(0x17, 0x31), Some(Zen::Zen2));
        assert_eq!(Zen::of_family_model(0x19, 0x01), Some(Zen::Zen3));
        assert_eq!(Zen::of_family_model(0x19, 0x11), Some(Zen::Zen4));
        assert_eq!(Zen::of_family_model(0x1A, 0x02), Some(Zen::Zen5));
        assert_eq!(Zen::of_family_model(6, 0x55), None);
        for p in Product::ALL {
            let zen = Zen::of_product(*p);
            assert_eq!(zen.avx512(), *p >= Product::Genoa, "{p:?}");
        }
    }

    #[test]
    fn xsave_components_are_contiguous_and_architectural() {
        // The standard format: AVX right after the 0x240-byte legacy area
        // and header, then opmask, ZMM_Hi256, Hi16_ZMM and PKRU back to back.
        let user: Vec<_> = XSAVE_COMPONENTS.iter().filter(|c| !c.supervisor).collect();
        assert_eq!(user[0].offset, 0x240);
        for w in user.windows(2) {
            assert_eq!(w[0].offset + w[0].size, w[1].offset, "{:?}", w[1]);
        }
        assert_eq!(xsave_component(9).unwrap().regs(), [8, 0x980, 0, 0]);
        assert_eq!(xsave_component(11).unwrap().regs(), [0x10, 0, 1, 0]);
        assert_eq!(xsave_component(12).unwrap().regs(), [0x18, 0, 1, 0]);
        assert_eq!(xsave_component(3), None);
        let zen4 = Zen::Zen4.features();
        let present: Vec<u32> = zen4.xsave_components().map(|c| c.index).collect();
        assert_eq!(present, [2, 5, 6, 7, 9]);
    }
}
