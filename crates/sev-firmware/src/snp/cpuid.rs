//! The CPUID page validator of SNP_LAUNCH_UPDATE (reference §2.9,
//! `snp-cpuid-rules.txt`).
//!
//! The table's layout is [`sev_abi::cpuid_page`] (re-exported here). The
//! firmware checks the architectural leaves
//! (0x0000_0000..=0x0000_FFFF and 0x8000_0000..=0x8000_FFFF) and passes
//! hypervisor ranges unchecked; it corrects every violation in place and
//! the call fails with INVALID_PARAM, the corrected table written back in
//! plaintext.
//!
//! # The checks
//!
//! * The header: count ≤ 64 (else 64), reserved fields zero.
//! * Each architectural entry: its reserved field zero; a (leaf, sub-leaf)
//!   absent from the firmware's policy table ([`profile::POLICY_TABLE`])
//!   has all four outputs zero; a policy leaf applies one rule per register
//!   against the platform's value ([`CpuidPlatform::profile`], a
//!   [`CpuidProfile`]): EXACT equal (else set to it), MASK within (extra
//!   bits cleared), LESSTHAN at most (else lowered to it), UNCHECKED, or
//!   the leaf's custom check. A register the profile has no value for is
//!   not checked.
//! * The custom leaves:
//!
//! | leaf | EAX | EBX | ECX | EDX |
//! |---|---|---|---|---|
//! | 0x1 | ≤ platform FMS | CLFLUSH size (15:8) exact, rest unchecked | mask; OSXSAVE (CR4) unchecked, hypervisor bit allowed | mask |
//! | 0x7.0 | max sub-leaf ≤ platform's | mask | mask; OSPKE (CR4) unchecked | mask |
//! | 0xD.0 | mask, x87 and SSE set | [`xsave_size`]`(xcr0_in)` | ≤ the size of every platform component | exact (XCR0 63:32) |
//! | 0xD.1 | mask | [`xsaves_size`]`(xcr0_in, xss_in)` | mask (XSS 31:0) | mask (XSS 63:32) |
//! | 0x8000_0001 | ≤ platform FMS | unchecked | mask | mask |
//! | 0x8000_0008 | physical bits (7:0) ≤ 52, linear bits (15:8) ≤ 48 or 57 (LA57), guest physical bits (23:16) unchecked, 31:24 zero | mask | unchecked | unchecked |
//! | 0x8000_001F | mask of the SEV features §3.1 defines | C-bit (5:0) exact, 11:6 unchecked, VMPLs (15:12) ≤ 4, 31:16 exact (0) | unchecked | unchecked |
//! | 0x8000_0022 | unchecked | unchecked | unchecked | unchecked |
//!
//! Every correction is a fixed point: a corrected table validates
//! unchanged. The values, and which registers sevkit leaves unchecked, are
//! in [`profile`]'s documentation; the feature sets in [`features`].

/// The Zen generations' CPUID feature sets (defined in `sev-abi`, shared with
/// the VMM's CPUID page builder).
pub use sev_abi::cpuid_features as features;
pub use sev_abi::cpuid_features::{xsave_size, xsaves_size};
pub mod profile;

pub use sev_abi::cpuid_page::{CpuidEntry, CpuidTable, CPUID_MAX_ENTRIES, CPUID_TABLE_LEN};
use sev_abi::product::Product;
use zerocopy::little_endian::{U32, U64};
use zerocopy::FromBytes;

use self::features::{HYPERVISOR, OSPKE, OSXSAVE, XCR0_SSE, XCR0_X87};
pub use self::profile::CpuidProfile;
use self::profile::{policy_leaf, RegRule, CLFLUSH_FIELD, SEV_EBX_PHYS_REDUCTION, SEV_EBX_VMPLS};
use super::platform::{c_bit_position, default_fms};

/// Highest standard leaf the model's platforms report (Genoa's, used for
/// every product).
pub const MAX_STD_LEAF: u32 = 0x10;
/// Highest extended leaf the model's platforms report (Genoa's, used for
/// every product).
pub const MAX_EXT_LEAF: u32 = 0x8000_0028;

/// What the validator compares against: the platform's product (its
/// CPUID profile), family/model/stepping and C-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidPlatform {
    /// The processor generation, whose [`CpuidProfile`] the page is checked
    /// against.
    pub product: Product,
    /// CPUID Fn0000_0001_EAX of the platform.
    pub fms: u32,
    /// C-bit position.
    pub c_bit: u8,
}

impl CpuidPlatform {
    /// The platform sevkit emulates for `product`: its default FMS and
    /// C-bit ([`default_fms`], [`c_bit_position`]).
    pub fn for_product(product: Product) -> Self {
        Self {
            product,
            fms: default_fms(product),
            c_bit: c_bit_position(product),
        }
    }

    /// The platform's CPUID profile.
    pub fn profile(&self) -> CpuidProfile {
        CpuidProfile::new(self.product, self.fms, self.c_bit)
    }
}

fn architectural(leaf: u32) -> bool {
    leaf <= 0xFFFF || (0x8000_0000..=0x8000_FFFF).contains(&leaf)
}

/// Validates the CPUID table at the start of `page` (which must hold at
/// least [`CPUID_TABLE_LEN`] bytes) against `platform`, correcting it in
/// place (the module documentation lists the checks). Returns whether it
/// was valid: `false` means the firmware answers INVALID_PARAM and writes
/// the corrected `page` back in plaintext. Never panics.
pub fn validate(page: &mut [u8], platform: CpuidPlatform) -> bool {
    let Some(bytes) = page.get_mut(..CPUID_TABLE_LEN) else {
        return false;
    };
    let Ok(table) = CpuidTable::mut_from_bytes(bytes) else {
        return false;
    };
    let profile = platform.profile();
    let mut ok = true;
    if table.reserved0.get() != 0 || table.reserved1.get() != 0 {
        table.reserved0 = U32::new(0);
        table.reserved1 = U64::new(0);
        ok = false;
    }
    let count = table.count.get() as usize;
    if count > CPUID_MAX_ENTRIES {
        table.count = U32::new(CPUID_MAX_ENTRIES as u32);
        ok = false;
    }
    for e in table.entries.iter_mut().take(count.min(CPUID_MAX_ENTRIES)) {
        ok &= check_entry(e, &profile);
    }
    ok
}

fn check_entry(e: &mut CpuidEntry, profile: &CpuidProfile) -> bool {
    let leaf = e.eax_in.get();
    if !architectural(leaf) {
        return true;
    }
    let mut ok = true;
    if e.reserved.get() != 0 {
        e.reserved = U64::new(0);
        ok = false;
    }
    let regs = [e.eax.get(), e.ebx.get(), e.ecx.get(), e.edx.get()];
    let want = corrected(
        leaf,
        e.ecx_in.get(),
        e.xcr0_in.get(),
        e.xss_in.get(),
        regs,
        profile,
    );
    if want != regs {
        e.eax = U32::new(want[0]);
        e.ebx = U32::new(want[1]);
        e.ecx = U32::new(want[2]);
        e.edx = U32::new(want[3]);
        ok = false;
    }
    ok
}

/// `reg` with the bits of `field` taken from `value`.
const fn with_field(reg: u32, field: u32, value: u32) -> u32 {
    (reg & !field) | (value & field)
}

/// The field `field` (a contiguous mask) of `reg`, shifted down.
const fn get_field(reg: u32, field: u32) -> u32 {
    (reg & field) >> field.trailing_zeros()
}

/// `reg` with field `field` lowered to at most `max` (shifted down).
fn field_at_most(reg: u32, field: u32, max: u32) -> u32 {
    let value = get_field(reg, field).min(max);
    with_field(reg, field, value << field.trailing_zeros())
}

/// One register under a generic rule against the platform's value.
fn apply(rule: RegRule, platform: Option<u32>, reg: u32) -> u32 {
    match (rule, platform) {
        (RegRule::Exact, Some(v)) => v,
        (RegRule::Mask, Some(v)) => reg & v,
        (RegRule::LessThan, Some(v)) => reg.min(v),
        _ => reg,
    }
}

/// The registers of architectural entry `(leaf, sub)` after the firmware's
/// corrections: equal to `regs` when they pass.
fn corrected(
    leaf: u32,
    sub: u32,
    xcr0_in: u64,
    xss_in: u64,
    regs: [u32; 4],
    profile: &CpuidProfile,
) -> [u32; 4] {
    let (Some(policy), Some(platform)) = (policy_leaf(leaf, sub), profile.regs(leaf, sub)) else {
        return [0; 4];
    };
    let [eax, ebx, ecx, edx] = regs;
    // Each register is checked only where the platform has a value: the
    // profile has none for 0x8000_0001 EBX, 0x8000_0008 ECX/EDX and
    // 0x8000_001F ECX/EDX, which stay unchecked.
    let check = |i: usize, f: &dyn Fn(u32) -> u32| platform[i].map_or(regs[i], f);
    match (leaf, sub) {
        (0x1, _) => [
            check(0, &|fms| eax.min(fms)),
            check(1, &|p| with_field(ebx, CLFLUSH_FIELD, p)),
            check(2, &|p| ecx & (p | OSXSAVE | HYPERVISOR)),
            check(3, &|p| edx & p),
        ],
        (0x7, 0) => [
            check(0, &|max| eax.min(max)),
            check(1, &|p| ebx & p),
            check(2, &|p| ecx & (p | OSPKE)),
            check(3, &|p| edx & p),
        ],
        (0xD, 0) => [
            check(0, &|p| (eax & p) | (XCR0_X87 | XCR0_SSE) as u32),
            check(1, &|_| xsave_size(xcr0_in)),
            check(2, &|max| ecx.min(max)),
            check(3, &|p| p),
        ],
        (0xD, 1) => [
            check(0, &|p| eax & p),
            check(1, &|_| xsaves_size(xcr0_in, xss_in)),
            check(2, &|p| ecx & p),
            check(3, &|p| edx & p),
        ],
        (0x8000_0001, _) => [
            check(0, &|fms| eax.min(fms)),
            check(1, &|p| ebx & p),
            check(2, &|p| ecx & p),
            check(3, &|p| edx & p),
        ],
        (0x8000_0008, _) => [
            check(0, &|p| {
                let phys = field_at_most(eax, 0xFF, get_field(p, 0xFF));
                // Bits 31:24 are reserved.
                field_at_most(phys, 0xFF00, get_field(p, 0xFF00)) & 0x00FF_FFFF
            }),
            check(1, &|p| ebx & p),
            check(2, &|p| ecx & p),
            check(3, &|p| edx & p),
        ],
        (0x8000_001F, _) => [
            check(0, &|p| eax & p),
            check(1, &|p| {
                // Exact but the physical-address reduction (11:6) and the
                // VMPL count (15:12, at most the platform's).
                let exact = with_field(p, SEV_EBX_PHYS_REDUCTION, ebx);
                let vmpls = get_field(ebx, SEV_EBX_VMPLS).min(get_field(p, SEV_EBX_VMPLS));
                with_field(
                    exact,
                    SEV_EBX_VMPLS,
                    vmpls << SEV_EBX_VMPLS.trailing_zeros(),
                )
            }),
            check(2, &|p| ecx & p),
            check(3, &|p| edx & p),
        ],
        _ => {
            let mut out = regs;
            for ((reg, rule), value) in out.iter_mut().zip(policy.rules).zip(platform) {
                *reg = apply(rule, value, *reg);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::features::{AVX512_BF16, CMP_LEGACY, HTT, LA57, PCID};
    use super::profile::{CET_SS, MOVDIRI, POLICY_TABLE};
    use super::*;
    use zerocopy::{FromZeros, IntoBytes};

    const P: CpuidPlatform = CpuidPlatform {
        product: Product::Genoa,
        fms: 0x00A1_0F11,
        c_bit: 51,
    };

    const MILAN_FMS: u32 = 0x00A0_0F11;
    const GENOA_FMS: u32 = 0x00A1_0F11;
    const TURIN_FMS: u32 = 0x00B0_0F21;

    fn page_with(entries: &[CpuidEntry]) -> Vec<u8> {
        let mut t = CpuidTable::new_zeroed();
        t.count = U32::new(entries.len() as u32);
        t.entries[..entries.len()].copy_from_slice(entries);
        let mut page = vec![0u8; 4096];
        page[..CPUID_TABLE_LEN].copy_from_slice(t.as_bytes());
        page
    }

    fn entry(leaf: u32, sub: u32, regs: [u32; 4]) -> CpuidEntry {
        CpuidEntry::new(leaf, sub, regs)
    }

    fn table(page: &[u8]) -> CpuidTable {
        CpuidTable::read_from_bytes(&page[..CPUID_TABLE_LEN]).unwrap()
    }

    fn regs(e: &CpuidEntry) -> [u32; 4] {
        [e.eax.get(), e.ebx.get(), e.ecx.get(), e.edx.get()]
    }

    #[test]
    fn valid_tables_pass_unchanged() {
        assert_eq!(size_of::<CpuidTable>(), CPUID_TABLE_LEN);
        let mut empty = vec![0u8; 4096];
        assert!(validate(&mut empty, P));
        let mut page = page_with(&[
            entry(0x0, 0, [0x10, 0x6874_7541, 0x444D_4163, 0x6974_6E65]),
            entry(0x1, 0, [0x00A1_0F11, 0x800, 0, 0]),
            entry(0x8000_001F, 0, [0x1, 0x0000_4173, 0, 0]),
            entry(0x4000_0000, 0, [1, 2, 3, 4]),
        ]);
        let before = page.clone();
        assert!(validate(&mut page, P));
        assert_eq!(page, before);
    }

    #[test]
    fn violations_are_corrected() {
        let mut xsave = entry(0xD, 0, [3, 0x1234, 0, 0]);
        xsave.xcr0_in = U64::new(0x7);
        let mut page = page_with(&[
            entry(0x1, 0, [0x00A1_0F12, 0x800, 0, 0]),
            entry(0x3, 0, [1, 1, 1, 1]),
            entry(0x8000_001F, 0, [1, 0x4170, 0, 0]),
            xsave,
        ]);
        assert!(!validate(&mut page, P));
        let t = table(&page);
        assert_eq!(t.entries[0].eax.get(), 0x00A1_0F11);
        assert_eq!(t.entries[1].eax.get(), 0);
        assert_eq!(t.entries[1].edx.get(), 0);
        assert_eq!(t.entries[2].ebx.get(), 0x4173);
        assert_eq!(t.entries[3].ebx.get(), 0x340);
        // Corrected tables validate.
        assert!(validate(&mut page, P));
        let mut big = page_with(&[]);
        big[0] = 65;
        assert!(!validate(&mut big, P));
        assert_eq!(table(&big).count.get(), 64);
        assert!(!validate(&mut [0u8; 16], P));
        // Header and entry reserved fields.
        let mut reserved = page_with(&[entry(0x8000_0002, 0, [1, 2, 3, 4])]);
        reserved[4] = 1;
        reserved[16 + 0x28] = 1;
        assert!(!validate(&mut reserved, P));
        let t = table(&reserved);
        assert_eq!((t.reserved0.get(), t.reserved1.get()), (0, 0));
        assert_eq!(t.entries[0].reserved.get(), 0);
        assert_eq!(regs(&t.entries[0]), [1, 2, 3, 4]);
        assert!(validate(&mut reserved, P));
    }

    /// One row of the rule table: an entry checked on a product, and its
    /// registers afterwards (equal to the input: accepted).
    struct Row {
        what: &'static str,
        product: Product,
        leaf: u32,
        sub: u32,
        xcr0_in: u64,
        xss_in: u64,
        regs: [u32; 4],
        want: [u32; 4],
    }

    const fn row(
        what: &'static str,
        product: Product,
        (leaf, sub): (u32, u32),
        regs: [u32; 4],
        want: [u32; 4],
    ) -> Row {
        xrow(what, product, (leaf, sub), (0, 0), regs, want)
    }

    const fn xrow(
        what: &'static str,
        product: Product,
        (leaf, sub): (u32, u32),
        (xcr0_in, xss_in): (u64, u64),
        regs: [u32; 4],
        want: [u32; 4],
    ) -> Row {
        Row {
            what,
            product,
            leaf,
            sub,
            xcr0_in,
            xss_in,
            regs,
            want,
        }
    }

    const AMD: [u32; 3] = [0x6874_7541, 0x444D_4163, 0x6974_6E65];
    const SSE3: u32 = 1;
    const FPU: u32 = 1;
    const AVX512F: u32 = 1 << 16;
    const SMEP: u32 = 1 << 7;
    const PKU: u32 = 1 << 3;
    const IBPB: u32 = 1 << 12;
    const SEV_SNP: u32 = (1 << 1) | (1 << 3) | (1 << 4);

    #[rustfmt::skip]
    fn rows() -> Vec<Row> {
        use Product::{Genoa, Milan, Turin};
        let osxsave = features::OSXSAVE;
        let hv = features::HYPERVISOR;
        let ext1_edx = features::Zen::Zen3.features().ext1_edx;
        vec![
            // Generic rules.
            row("EXACT: 0x6 EBX/EDX reserved, MASK: EAX/ECX extra bits", Genoa, (0x6, 0), [0xF, 5, 3, 7], [4, 0, 1, 0]),
            row("0x6 ARAT and EffFreq accepted", Milan, (0x6, 0), [4, 0, 1, 0], [4, 0, 1, 0]),
            row("EXACT: nonzero 0x7.1 EBX", Genoa, (0x7, 1), [AVX512_BF16, 1, 0, 0], [AVX512_BF16, 0, 0, 0]),
            row("MASK: 0x7.1 AVX512_BF16 on Milan", Milan, (0x7, 1), [AVX512_BF16, 0, 0, 0], [0; 4]),
            row("MASK: 0x7.1 AVX-VNNI on Genoa", Genoa, (0x7, 1), [1 << 4, 0, 0, 0], [0; 4]),
            row("MASK: 0x7.1 AVX-VNNI on Turin", Turin, (0x7, 1), [1 << 4, 0, 0, 0], [1 << 4, 0, 0, 0]),
            row("LESSTHAN: 0x0 EAX above the maximum", Genoa, (0x0, 0), [0x11, AMD[0], AMD[1], AMD[2]], [0x10, AMD[0], AMD[1], AMD[2]]),
            row("LESSTHAN: 0x0 EAX at the maximum", Milan, (0x0, 0), [0x10, 1, 2, 3], [0x10, 1, 2, 3]),
            row("LESSTHAN: 0x8000_0000 EAX above the maximum", Genoa, (0x8000_0000, 0), [0x8000_0029, AMD[0], AMD[1], AMD[2]], [0x8000_0028, AMD[0], AMD[1], AMD[2]]),
            row("UNCHECKED: 0x2", Milan, (0x2, 0), [u32::MAX, 1, 2, 3], [u32::MAX, 1, 2, 3]),
            row("UNCHECKED and EXACT 0: 0xF.0", Genoa, (0xF, 0), [1, 0xFF, 2, 3], [0, 0xFF, 0, 3]),
            row("EXACT: 0x8000_001D.4 EBX/EDX", Genoa, (0x8000_001D, 4), [1, 2, 3, 4], [1, 0, 3, 0]),
            row("EXACT: 0x8000_0007 EAX, unchecked EBX/EDX", Turin, (0x8000_0007, 0), [1, 0xF, 2, 0x100], [0, 0xF, 2, 0x100]),
            row("EXACT: 0x8000_001A", Genoa, (0x8000_001A, 0), [7, 1, 1, 1], [7, 0, 0, 0]),
            // XSAVE components.
            row("0xD.2 AVX: wrong offset", Milan, (0xD, 2), [0x100, 0x200, 0, 0], [0x100, 0x240, 0, 0]),
            row("0xD.5 opmask on Milan zeroed", Milan, (0xD, 5), [0x40, 0x340, 0, 0], [0; 4]),
            row("0xD.5 opmask on Genoa", Genoa, (0xD, 5), [0x40, 0x340, 0, 0], [0x40, 0x340, 0, 0]),
            row("0xD.6 ZMM_Hi256 on Genoa, aligned", Genoa, (0xD, 6), [0x200, 0x380, 2, 0], [0x200, 0x380, 2, 0]),
            row("0xD.7 Hi16_ZMM on Turin: supervisor bit, size", Turin, (0xD, 7), [0x40, 0x580, 1, 0], [0x400, 0x580, 0, 0]),
            row("0xD.7 Hi16_ZMM on Milan zeroed", Milan, (0xD, 7), [0x400, 0x580, 0, 0], [0; 4]),
            row("0xD.9 PKRU on Milan", Milan, (0xD, 9), [8, 0x980, 0, 0], [8, 0x980, 0, 0]),
            row("0xD.B CET_U is a supervisor component", Milan, (0xD, 0xB), [0x10, 0, 0, 0], [0x10, 0, 1, 0]),
            row("0xD.C CET_S on Genoa", Genoa, (0xD, 0xC), [0x18, 0, 1, 0], [0x18, 0, 1, 0]),
            // 0x1.
            row("0x1 FMS above the platform's", Milan, (0x1, 0), [GENOA_FMS, 0x800, 0, 0], [MILAN_FMS, 0x800, 0, 0]),
            row("0x1 older FMS", Turin, (0x1, 0), [MILAN_FMS, 0x800, 0, 0], [MILAN_FMS, 0x800, 0, 0]),
            row("0x1 CLFLUSH size exact, APIC ID / count / brand unchecked", Genoa, (0x1, 0), [GENOA_FMS, 0x0304_0405, 0, 0], [GENOA_FMS, 0x0304_0805, 0, 0]),
            row("0x1 OSXSAVE and hypervisor accepted", Milan, (0x1, 0), [MILAN_FMS, 0x800, SSE3 | PCID | osxsave | hv, FPU | HTT], [MILAN_FMS, 0x800, SSE3 | PCID | osxsave | hv, FPU | HTT]),
            row("0x1 VMX (ECX 5) and reserved EDX 10 cleared", Genoa, (0x1, 0), [GENOA_FMS, 0x800, SSE3 | (1 << 5), FPU | (1 << 10)], [GENOA_FMS, 0x800, SSE3, FPU]),
            // 0x7.0.
            row("0x7.0 AVX512F on Milan cleared, max sub-leaf 0", Milan, (0x7, 0), [1, SMEP | AVX512F, PKU, 0], [0, SMEP, PKU, 0]),
            row("0x7.0 AVX512F on Genoa accepted", Genoa, (0x7, 0), [1, SMEP | AVX512F, PKU | LA57, 0], [1, SMEP | AVX512F, PKU | LA57, 0]),
            row("0x7.0 OSPKE and CET_SS accepted", Milan, (0x7, 0), [0, 0, PKU | features::OSPKE | CET_SS, 0], [0, 0, PKU | features::OSPKE | CET_SS, 0]),
            row("0x7.0 LA57 and MOVDIRI on Milan", Milan, (0x7, 0), [0, 0, LA57 | MOVDIRI, 0], [0; 4]),
            row("0x7.0 MOVDIRI on Turin", Turin, (0x7, 0), [1, 0, MOVDIRI, 0], [1, 0, MOVDIRI, 0]),
            // 0xD.0 / 0xD.1.
            xrow("0xD.0 EAX without SSE", Genoa, (0xD, 0), (1, 0), [0x5, 0x240, 0x340, 0], [0x7, 0x240, 0x340, 0]),
            xrow("0xD.0 AVX-512 on Milan, EBX for xcr0_in, ECX above the maximum, EDX", Milan, (0xD, 0), (0x7, 0), [0x2E7, 0x240, 0x2000, 1], [0x207, 0x340, 0x988, 0]),
            xrow("0xD.0 of a Genoa guest", Genoa, (0xD, 0), (0x2E7, 0), [0x2E7, 0x988, 0x988, 0], [0x2E7, 0x988, 0x988, 0]),
            xrow("0xD.1 EBX compacted size, unknown EAX/ECX bits", Milan, (0xD, 1), (0x207, 0x1800), [0x1F, 0, 0x1900, 0], [0xF, 0x3A0, 0x1800, 0]),
            // 0x8000_0001 / 0x8000_0008.
            row("0x8000_0001 FMS, SVM cleared, CmpLegacy kept, EBX unchecked", Milan, (0x8000_0001, 0), [GENOA_FMS, 0x2000_0000, 1 | CMP_LEGACY | (1 << 2), ext1_edx | (1 << 30)], [MILAN_FMS, 0x2000_0000, 1 | CMP_LEGACY, ext1_edx]),
            row("0x8000_0008 address sizes and reserved bits, unknown EBX bit", Milan, (0x8000_0008, 0), [0x0128_393C, IBPB | (1 << 3), 0xFF, 0x1234], [0x0028_3034, IBPB, 0xFF, 0x1234]),
            row("0x8000_0008 57 linear bits on Genoa", Genoa, (0x8000_0008, 0), [0x0028_3934, IBPB, 0, 0], [0x0028_3934, IBPB, 0, 0]),
            // 0x8000_001F.
            row("0x8000_001F VMPL count above the maximum", Genoa, (0x8000_001F, 0), [SEV_SNP, 0x8000 | (5 << 6) | 0x33, 0x1234, 5], [SEV_SNP, 0x4000 | (5 << 6) | 0x33, 0x1234, 5]),
            row("0x8000_001F C-bit, reserved EBX/EAX bits", Milan, (0x8000_001F, 0), [SEV_SNP | (1 << 20), 0x1_1000 | 0x2F, 0, 0], [SEV_SNP, 0x1000 | 0x33, 0, 0]),
            row("0x8000_0022 unchecked", Genoa, (0x8000_0022, 0), [7, 0x1234, 3, 9], [7, 0x1234, 3, 9]),
            // Outside the policy table.
            row("an unknown architectural leaf", Genoa, (0x3, 0), [1, 2, 3, 4], [0; 4]),
            row("an unknown sub-leaf", Turin, (0x7, 2), [1, 2, 3, 4], [0; 4]),
            row("an unknown extended leaf", Genoa, (0x8000_0025, 0), [1, 2, 3, 4], [0; 4]),
            row("the last standard leaf", Milan, (0xFFFF, 0), [1, 2, 3, 4], [0; 4]),
            row("a hypervisor-range leaf", Milan, (0x4000_0000, 0), [1, 2, 3, 4], [1, 2, 3, 4]),
            row("above the standard range", Milan, (0x1_0000, 0), [1, 2, 3, 4], [1, 2, 3, 4]),
            row("above the extended range", Genoa, (0x8001_0000, 0), [1, 2, 3, 4], [1, 2, 3, 4]),
            row("0xC000_0000", Turin, (0xC000_0000, 0), [1, 2, 3, 4], [1, 2, 3, 4]),
        ]
    }

    #[test]
    fn every_rule_kind_and_custom_leaf() {
        let rows = rows();
        for r in &rows {
            let platform = CpuidPlatform::for_product(r.product);
            let mut e = entry(r.leaf, r.sub, r.regs);
            e.xcr0_in = U64::new(r.xcr0_in);
            e.xss_in = U64::new(r.xss_in);
            let mut page = page_with(&[e]);
            let accepted = validate(&mut page, platform);
            let got = table(&page).entries[0];
            assert_eq!(regs(&got), r.want, "{} ({:?})", r.what, r.product);
            assert_eq!(accepted, r.regs == r.want, "{}", r.what);
            // Inputs are never changed, and the correction is a fixed point.
            assert_eq!((got.eax_in.get(), got.ecx_in.get()), (r.leaf, r.sub));
            assert_eq!((got.xcr0_in.get(), got.xss_in.get()), (r.xcr0_in, r.xss_in));
            let corrected = page.clone();
            assert!(validate(&mut page, platform), "{}", r.what);
            assert_eq!(page, corrected);
        }
        // Both outcomes and every custom leaf are covered.
        assert!(rows.iter().any(|r| r.regs == r.want));
        assert!(rows.iter().any(|r| r.regs != r.want));
        for pl in &POLICY_TABLE {
            if pl.rules[0] == RegRule::Custom {
                assert!(
                    rows.iter().any(|r| (r.leaf, r.sub) == (pl.leaf, pl.sub)),
                    "no row for {:#x}.{}",
                    pl.leaf,
                    pl.sub
                );
            }
        }
        for rule in [
            RegRule::Exact,
            RegRule::Mask,
            RegRule::LessThan,
            RegRule::Unchecked,
        ] {
            assert!(rows
                .iter()
                .any(|r| policy_leaf(r.leaf, r.sub).is_some_and(|p| p.rules.contains(&rule))));
        }
        // TURIN_FMS is the Turin platform's.
        assert_eq!(CpuidPlatform::for_product(Product::Turin).fms, TURIN_FMS);
    }

    /// A deterministic stream of test values (xorshift).
    fn values(mut x: u64) -> impl Iterator<Item = u64> {
        std::iter::from_fn(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Some(x)
        })
    }

    #[test]
    fn corrections_are_fixed_points() {
        let mut rng = values(0x5EC_C0DE);
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let profile = CpuidPlatform::for_product(product).profile();
            for pl in &POLICY_TABLE {
                for _ in 0..64 {
                    let a = rng.next().unwrap();
                    let b = rng.next().unwrap();
                    let regs = [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
                    let (xcr0, xss) = (rng.next().unwrap(), rng.next().unwrap());
                    let once = corrected(pl.leaf, pl.sub, xcr0, xss, regs, &profile);
                    let twice = corrected(pl.leaf, pl.sub, xcr0, xss, once, &profile);
                    assert_eq!(once, twice, "{product:?} {pl:?} {regs:x?}");
                    // Unchecked registers are left alone.
                    for (i, rule) in pl.rules.iter().enumerate() {
                        if *rule == RegRule::Unchecked {
                            assert_eq!(once[i], regs[i]);
                        }
                    }
                }
            }
        }
    }
}
