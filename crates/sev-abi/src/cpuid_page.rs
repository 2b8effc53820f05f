//! The SNP CPUID page (reference §2.9): the table a VMM hands to
//! SNP_LAUNCH_UPDATE with page type CPUID (and that MSG_CPUID_REQ carries).
//!
//! ```text
//! 0x000 u32 count (≤ 64)   0x004 u32 reserved   0x008 u64 reserved
//! 0x010 entry[64], 0x30 bytes each:
//!       +0x00 u32 eax_in  +0x04 u32 ecx_in  +0x08 u64 xcr0_in  +0x10 u64 xss_in
//!       +0x18 u32 eax     +0x1C u32 ebx     +0x20 u32 ecx      +0x24 u32 edx
//!       +0x28 u64 reserved
//! 0xC10 .. 0x1000 unused
//! ```
//!
//! The firmware's validation of the table is `sev_firmware::snp::cpuid`.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::commands::buffer;

/// Most entries in a CPUID table.
pub const CPUID_MAX_ENTRIES: usize = 64;

buffer! {
    /// One CPUID table entry.
    CpuidEntry = 0x30 {
        /// Leaf.
        eax_in: U32,
        /// Sub-leaf.
        ecx_in: U32,
        /// XCR0 the values apply to.
        xcr0_in: U64,
        /// XSS the values apply to.
        xss_in: U64,
        /// EAX.
        eax: U32,
        /// EBX.
        ebx: U32,
        /// ECX.
        ecx: U32,
        /// EDX.
        edx: U32,
        /// Reserved, zero.
        reserved: U64,
    }
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

/// The CPUID table at the start of a CPUID page. (Not a `buffer!`: arrays
/// of 64 have no `Default`.)
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
pub const CPUID_TABLE_LEN: usize = 0x10 + CPUID_MAX_ENTRIES * CpuidEntry::SIZE;

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layouts() {
        assert_eq!(offset_of!(CpuidEntry, xcr0_in), 0x08);
        assert_eq!(offset_of!(CpuidEntry, xss_in), 0x10);
        assert_eq!(offset_of!(CpuidEntry, eax), 0x18);
        assert_eq!(offset_of!(CpuidEntry, edx), 0x24);
        assert_eq!(offset_of!(CpuidEntry, reserved), 0x28);
        assert_eq!(size_of::<CpuidTable>(), 0xC10);
        assert_eq!(CPUID_TABLE_LEN, 0xC10);
        assert_eq!(offset_of!(CpuidTable, entries), 0x10);
        let e = CpuidEntry::new(0x8000_001F, 1, [1, 2, 3, 4]);
        assert_eq!(
            e.as_bytes()[..0x28],
            [
                &0x8000_001Fu32.to_le_bytes()[..],
                &1u32.to_le_bytes(),
                &[0; 16],
                &1u32.to_le_bytes(),
                &2u32.to_le_bytes(),
                &3u32.to_le_bytes(),
                &4u32.to_le_bytes(),
            ]
            .concat()[..]
        );
    }
}
