//! The CPUID page validator of SNP_LAUNCH_UPDATE (reference §2.9,
//! `snp-cpuid-rules.txt`).
//!
//! Table: `u32 count; u32 rsvd; u64 rsvd; entry[64]`, entry (0x30) =
//! `u32 eax_in; u32 ecx_in; u64 xcr0_in; u64 xss_in; u32 eax, ebx, ecx,
//! edx; u64 reserved`. The firmware checks the architectural leaves
//! (0x0000_0000..=0x0000_FFFF and 0x8000_0000..=0x8000_FFFF) and passes
//! hypervisor ranges unchecked; it corrects every violation in place and
//! the call fails with INVALID_PARAM, the corrected table written back in
//! plaintext.
//!
//! Modelled rules (a subset of the per-register policy table, whose
//! product-specific values are not public): count ≤ 64 and header reserved
//! fields zero; an entry's reserved field zero; a leaf absent from the
//! policy table has all four outputs zero; leaf 0x0 / 0x8000_0000 EAX
//! (maximum leaf) at most the platform's; leaf 0x1 EAX (FMS) at most the
//! platform's; 0xD.0 and 0xD.1 EBX equal the XSAVE size implied by
//! `xcr0_in` / `xss_in`; 0x8000_001F EBX bits 5:0 equals the C-bit position.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Most entries in a CPUID table.
pub const CPUID_MAX_ENTRIES: usize = 64;

/// Highest standard leaf the model's platform reports (Genoa).
pub const MAX_STD_LEAF: u32 = 0x10;
/// Highest extended leaf the model's platform reports (Genoa).
pub const MAX_EXT_LEAF: u32 = 0x8000_0028;

/// One CPUID table entry (0x30 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct CpuidEntry {
    /// Leaf.
    pub eax_in: U32,
    /// Sub-leaf.
    pub ecx_in: U32,
    /// XCR0 the values apply to.
    pub xcr0_in: U64,
    /// XSS the values apply to.
    pub xss_in: U64,
    /// EAX.
    pub eax: U32,
    /// EBX.
    pub ebx: U32,
    /// ECX.
    pub ecx: U32,
    /// EDX.
    pub edx: U32,
    /// Reserved, zero.
    pub reserved: U64,
}

impl CpuidEntry {
    /// The entry for leaf `leaf`, sub-leaf `sub` with `[eax, ebx, ecx, edx]`
    /// (XCR0/XSS inputs zero).
    pub fn new(leaf: u32, sub: u32, regs: [u32; 4]) -> Self {
        Self {
            eax_in: U32::new(leaf),
            ecx_in: U32::new(sub),
            eax: U32::new(regs[0]),
            ebx: U32::new(regs[1]),
            ecx: U32::new(regs[2]),
            edx: U32::new(regs[3]),
            ..Self::default()
        }
    }
}

/// The CPUID table at the start of a CPUID page.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct CpuidTable {
    /// Number of valid entries.
    pub count: U32,
    /// Reserved, zero.
    pub reserved0: U32,
    /// Reserved, zero.
    pub reserved1: U64,
    /// Entries.
    pub entries: [CpuidEntry; CPUID_MAX_ENTRIES],
}

/// Bytes of a [`CpuidTable`].
pub const CPUID_TABLE_LEN: usize = 16 + CPUID_MAX_ENTRIES * 0x30;

/// What the validator compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidPlatform {
    /// CPUID Fn0000_0001_EAX of the platform.
    pub fms: u32,
    /// C-bit position.
    pub c_bit: u8,
}

/// Leaves (eax_in, ecx_in) in the firmware's policy table (Genoa).
const POLICY_LEAVES: &[(u32, u32)] = &[
    (0x0, 0),
    (0x1, 0),
    (0x2, 0),
    (0x4, 0),
    (0x5, 0),
    (0x6, 0),
    (0x7, 0),
    (0x7, 1),
    (0xB, 0),
    (0xB, 1),
    (0xB, 2),
    (0xD, 0),
    (0xD, 1),
    (0xD, 2),
    (0xD, 5),
    (0xD, 6),
    (0xD, 7),
    (0xD, 9),
    (0xD, 0xB),
    (0xD, 0xC),
    (0xF, 0),
    (0xF, 1),
    (0x10, 0),
    (0x10, 1),
    (0x8000_0000, 0),
    (0x8000_0001, 0),
    (0x8000_0002, 0),
    (0x8000_0003, 0),
    (0x8000_0004, 0),
    (0x8000_0005, 0),
    (0x8000_0006, 0),
    (0x8000_0007, 0),
    (0x8000_0008, 0),
    (0x8000_000A, 0),
    (0x8000_0019, 0),
    (0x8000_001A, 0),
    (0x8000_001B, 0),
    (0x8000_001D, 0),
    (0x8000_001D, 1),
    (0x8000_001D, 2),
    (0x8000_001D, 3),
    (0x8000_001D, 4),
    (0x8000_001E, 0),
    (0x8000_001F, 0),
    (0x8000_0020, 0),
    (0x8000_0020, 1),
    (0x8000_0020, 2),
    (0x8000_0020, 3),
    (0x8000_0021, 0),
    (0x8000_0022, 0),
    (0x8000_0023, 0),
    (0x8000_0024, 0),
    (0x8000_0024, 1),
    (0x8000_0026, 0),
    (0x8000_0026, 1),
    (0x8000_0026, 2),
    (0x8000_0026, 3),
];

fn architectural(leaf: u32) -> bool {
    leaf <= 0xFFFF || (0x8000_0000..=0x8000_FFFF).contains(&leaf)
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

/// Validates the CPUID table at the start of `page` (which must hold at
/// least [`CPUID_TABLE_LEN`] bytes), correcting it in place. Returns whether
/// it was valid: `false` means the firmware answers INVALID_PARAM and
/// writes the corrected `page` back in plaintext. Never panics.
pub fn validate(page: &mut [u8], platform: CpuidPlatform) -> bool {
    let Some(bytes) = page.get_mut(..CPUID_TABLE_LEN) else {
        return false;
    };
    let Ok(table) = CpuidTable::mut_from_bytes(bytes) else {
        return false;
    };
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
        ok &= check_entry(e, platform);
    }
    ok
}

fn fix(reg: &mut U32, want: u32) -> bool {
    if reg.get() == want {
        true
    } else {
        *reg = U32::new(want);
        false
    }
}

fn check_entry(e: &mut CpuidEntry, p: CpuidPlatform) -> bool {
    let leaf = e.eax_in.get();
    if !architectural(leaf) {
        return true;
    }
    let mut ok = true;
    if e.reserved.get() != 0 {
        e.reserved = U64::new(0);
        ok = false;
    }
    let sub = e.ecx_in.get();
    if !POLICY_LEAVES.contains(&(leaf, sub)) {
        for r in [&mut e.eax, &mut e.ebx, &mut e.ecx, &mut e.edx] {
            ok &= fix(r, 0);
        }
        return ok;
    }
    match (leaf, sub) {
        (0x0, _) if e.eax.get() > MAX_STD_LEAF => ok &= fix(&mut e.eax, MAX_STD_LEAF),
        (0x8000_0000, _) if e.eax.get() > MAX_EXT_LEAF => ok &= fix(&mut e.eax, MAX_EXT_LEAF),
        (0x1, _) if e.eax.get() > p.fms => ok &= fix(&mut e.eax, p.fms),
        (0xD, 0) => ok &= fix(&mut e.ebx, xsave_size(e.xcr0_in.get())),
        (0xD, 1) => ok &= fix(&mut e.ebx, xsaves_size(e.xcr0_in.get(), e.xss_in.get())),
        (0x8000_001F, _) => {
            let ebx = e.ebx.get();
            let want = (ebx & !0x3F) | u32::from(p.c_bit & 0x3F);
            ok &= fix(&mut e.ebx, want);
        }
        _ => {}
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    const P: CpuidPlatform = CpuidPlatform {
        fms: 0x00A1_0F11,
        c_bit: 51,
    };

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

    #[test]
    fn valid_tables_pass_unchanged() {
        assert_eq!(size_of::<CpuidTable>(), CPUID_TABLE_LEN);
        let mut empty = vec![0u8; 4096];
        assert!(validate(&mut empty, P));
        let mut page = page_with(&[
            entry(0x0, 0, [0x10, 0x6874_7541, 0x444D_4163, 0x6974_6E65]),
            entry(0x1, 0, [0x00A1_0F11, 0, 0, 0]),
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
            entry(0x1, 0, [0x00A1_0F12, 0, 0, 0]),
            entry(0x3, 0, [1, 1, 1, 1]),
            entry(0x8000_001F, 0, [1, 0x4170, 0, 0]),
            xsave,
        ]);
        assert!(!validate(&mut page, P));
        let t = CpuidTable::read_from_bytes(&page[..CPUID_TABLE_LEN]).unwrap();
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
        assert!(!validate(&mut [0u8; 16], P));
    }
}
