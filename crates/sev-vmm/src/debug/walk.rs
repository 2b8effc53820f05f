//! Guest page-table walks (x86-64 long mode) through [`MemoryDebugOps`].
//!
//! 4-level paging (48-bit virtual addresses) and, with CR4.LA57, 5-level
//! paging (57-bit); 4 KiB, 2 MiB and 1 GiB pages. Legacy 32-bit and PAE
//! paging are not walked: SEV guests run their kernels in long mode, and
//! in those modes every access is private anyway.
//!
//! **The C-bit.** Bit `c_bit` of CR3 and of every entry is the encryption
//! bit, not an address bit: it is stripped from the physical address. In the
//! leaf entry it says whether the final page is private (set: read through
//! the firmware) or shared (clear: plain host access).
//!
//! **Page-table pages.** The CPU always walks an SEV guest's page tables
//! with the guest's key, whatever the C-bits say (AMD APM vol. 2, 15.34.5:
//! "guest page table accesses are always treated as private"), and OVMF and
//! Linux keep their tables in encrypted memory. So by default
//! ([`TableAccess::Private`]) table pages are read as private. For
//! experiments the walk can instead follow the C-bit of CR3 and of each
//! non-leaf entry ([`TableAccess::CBit`]) or what the VMM records for the
//! page ([`TableAccess::ByPageState`]).
//!
//! Reads and writes that cross virtual pages walk again for each page.

use std::fmt;

use super::{pages, Access, DebugError, MemoryDebugOps, MAX_ACCESS_LEN, PAGE};

/// Physical-address bits 51:12 of CR3 and of a paging entry.
const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// Entry bit 0: present.
const PRESENT: u64 = 1 << 0;
/// Entry bit 7: page size (in PDPT and PD entries).
const PS: u64 = 1 << 7;

/// A level of the paging structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PagingLevel {
    /// The page-map level-5 table (5-level paging only).
    Pml5,
    /// The page-map level-4 table.
    Pml4,
    /// The page-directory-pointer table (1 GiB pages).
    Pdpt,
    /// The page directory (2 MiB pages).
    Pd,
    /// The page table (4 KiB pages).
    Pt,
}

impl PagingLevel {
    /// The lowest virtual-address bit this level's index selects.
    pub const fn shift(self) -> u32 {
        match self {
            Self::Pml5 => 48,
            Self::Pml4 => 39,
            Self::Pdpt => 30,
            Self::Pd => 21,
            Self::Pt => 12,
        }
    }

    /// The name Intel and AMD give the entries' table.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pml5 => "PML5",
            Self::Pml4 => "PML4",
            Self::Pdpt => "PDPT",
            Self::Pd => "PD",
            Self::Pt => "PT",
        }
    }
}

impl fmt::Display for PagingLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the walk reads page-table pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TableAccess {
    /// Always private, as the CPU walks an SEV guest's tables.
    #[default]
    Private,
    /// Private or shared by the C-bit of CR3 (for the top table) and of the
    /// entry pointing at each lower table.
    CBit,
    /// By the page state the VMM records ([`Access::ByPageState`]).
    ByPageState,
}

/// Where a guest virtual address leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The guest physical address (C-bit stripped).
    pub gpa: u64,
    /// Whether the leaf entry has the C-bit set (the page is private).
    pub private: bool,
    /// Size of the page mapped: 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
    /// The level of the leaf entry.
    pub level: PagingLevel,
    /// The leaf entry itself.
    pub entry: u64,
}

impl Translation {
    /// The [`Access`] for the data at [`Translation::gpa`].
    pub fn access(&self) -> Access {
        if self.private {
            Access::Private
        } else {
            Access::Shared
        }
    }
}

/// A guest's paging configuration: what a vCPU's CR3 and CR4.LA57 say,
/// with the platform's C-bit position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageWalk {
    /// CR3 (PCID bits and the C-bit are ignored for the address).
    pub cr3: u64,
    /// The C-bit position (CPUID 0x8000001F EBX bits 5:0).
    pub c_bit: u8,
    /// CR4.LA57: 5-level paging.
    pub la57: bool,
    /// How page-table pages are read.
    pub tables: TableAccess,
}

impl PageWalk {
    /// 4-level paging from `cr3`, page tables read as private.
    pub fn new(cr3: u64, c_bit: u8) -> Self {
        Self {
            cr3,
            c_bit,
            la57: false,
            tables: TableAccess::Private,
        }
    }

    /// With CR4.LA57 as given.
    #[must_use]
    pub fn la57(self, la57: bool) -> Self {
        Self { la57, ..self }
    }

    /// With page-table pages read as `tables` says.
    #[must_use]
    pub fn tables(self, tables: TableAccess) -> Self {
        Self { tables, ..self }
    }

    fn c_mask(&self) -> Result<u64, DebugError> {
        if (12..=51).contains(&self.c_bit) {
            Ok(1 << self.c_bit)
        } else {
            Err(DebugError::BadCBit(self.c_bit))
        }
    }

    fn table_access(&self, private: bool) -> Access {
        match self.tables {
            TableAccess::Private => Access::Private,
            TableAccess::ByPageState => Access::ByPageState,
            TableAccess::CBit if private => Access::Private,
            TableAccess::CBit => Access::Shared,
        }
    }

    /// Translates `gva`.
    ///
    /// # Errors
    /// A non-canonical address, an entry not present or with reserved bits
    /// set (naming the level and entry), a bad C-bit position, or a table
    /// that cannot be read (e.g. the firmware refuses).
    pub fn translate<O: MemoryDebugOps + ?Sized>(
        &self,
        ops: &mut O,
        gva: u64,
    ) -> Result<Translation, DebugError> {
        let c_mask = self.c_mask()?;
        let bits: u8 = if self.la57 { 57 } else { 48 };
        let top = gva >> (bits - 1);
        if top != 0 && top != u64::MAX >> (bits - 1) {
            return Err(DebugError::NonCanonical { gva, bits });
        }
        let levels: &[PagingLevel] = if self.la57 {
            &[
                PagingLevel::Pml5,
                PagingLevel::Pml4,
                PagingLevel::Pdpt,
                PagingLevel::Pd,
                PagingLevel::Pt,
            ]
        } else {
            &[
                PagingLevel::Pml4,
                PagingLevel::Pdpt,
                PagingLevel::Pd,
                PagingLevel::Pt,
            ]
        };
        let mut table = self.cr3 & ADDR_MASK & !c_mask;
        let mut table_private = self.cr3 & c_mask != 0;
        for &level in levels {
            let index = ((gva >> level.shift()) & 0x1FF) as u16;
            let entry_gpa = table + u64::from(index) * 8;
            let entry = ops
                .read_u64(entry_gpa, self.table_access(table_private))
                .map_err(|source| DebugError::TableRead {
                    gva,
                    level,
                    entry_gpa,
                    source: Box::new(source),
                })?;
            let reserved = |what| DebugError::ReservedBits {
                gva,
                level,
                index,
                entry_gpa,
                entry,
                what,
            };
            if entry & PRESENT == 0 {
                return Err(DebugError::NotPresent {
                    gva,
                    level,
                    index,
                    entry_gpa,
                    entry,
                });
            }
            let private = entry & c_mask != 0;
            let base = entry & ADDR_MASK & !c_mask;
            let leaf_size = match level {
                PagingLevel::Pml5 | PagingLevel::Pml4 => {
                    if entry & PS != 0 {
                        return Err(reserved("PS (bit 7) must be 0 in this table"));
                    }
                    None
                }
                PagingLevel::Pdpt | PagingLevel::Pd => {
                    (entry & PS != 0).then(|| 1u64 << level.shift())
                }
                PagingLevel::Pt => Some(PAGE),
            };
            if let Some(size) = leaf_size {
                // Large pages: bit 12 is PAT, bits 13 up to the page size
                // are reserved.
                if size > PAGE && base & (size - 1) & !0x1FFF != 0 {
                    return Err(reserved("large-page address bits below the page size"));
                }
                let frame = base & !(size - 1);
                return Ok(Translation {
                    gpa: frame | (gva & (size - 1)),
                    private,
                    page_size: size,
                    level,
                    entry,
                });
            }
            table = base;
            table_private = private;
        }
        unreachable!("the last level is always a leaf")
    }

    /// Reads `buf.len()` bytes at `gva`, walking again for each page; the
    /// data of each page is read as its leaf entry's C-bit says.
    ///
    /// # Errors
    /// As [`PageWalk::translate`], or the data cannot be read.
    pub fn read<O: MemoryDebugOps + ?Sized>(
        &self,
        ops: &mut O,
        gva: u64,
        buf: &mut [u8],
    ) -> Result<(), DebugError> {
        limit(buf.len())?;
        for (at, off, n) in pages(gva, buf.len()) {
            let t = self.translate(ops, at)?;
            ops.read(t.gpa, &mut buf[off..off + n], t.access())?;
        }
        Ok(())
    }

    /// Writes `data` at `gva`, walking again for each page.
    ///
    /// # Errors
    /// As [`PageWalk::read`].
    pub fn write<O: MemoryDebugOps + ?Sized>(
        &self,
        ops: &mut O,
        gva: u64,
        data: &[u8],
    ) -> Result<(), DebugError> {
        limit(data.len())?;
        for (at, off, n) in pages(gva, data.len()) {
            let t = self.translate(ops, at)?;
            ops.write(t.gpa, &data[off..off + n], t.access())?;
        }
        Ok(())
    }
}

fn limit(len: usize) -> Result<(), DebugError> {
    if len > MAX_ACCESS_LEN {
        Err(DebugError::TooLong {
            len,
            max: MAX_ACCESS_LEN,
        })
    } else {
        Ok(())
    }
}

/// Translates `gva` with 4-level paging from `cr3` (page tables read as
/// private).
///
/// # Errors
/// As [`PageWalk::translate`].
pub fn translate<O: MemoryDebugOps + ?Sized>(
    ops: &mut O,
    cr3: u64,
    gva: u64,
    c_bit: u8,
) -> Result<Translation, DebugError> {
    PageWalk::new(cr3, c_bit).translate(ops, gva)
}

/// Reads guest virtual memory with 4-level paging from `cr3`.
///
/// # Errors
/// As [`PageWalk::read`].
pub fn read_virtual<O: MemoryDebugOps + ?Sized>(
    ops: &mut O,
    cr3: u64,
    gva: u64,
    buf: &mut [u8],
    c_bit: u8,
) -> Result<(), DebugError> {
    PageWalk::new(cr3, c_bit).read(ops, gva, buf)
}

/// Writes guest virtual memory with 4-level paging from `cr3`.
///
/// # Errors
/// As [`PageWalk::write`].
pub fn write_virtual<O: MemoryDebugOps + ?Sized>(
    ops: &mut O,
    cr3: u64,
    gva: u64,
    data: &[u8],
    c_bit: u8,
) -> Result<(), DebugError> {
    PageWalk::new(cr3, c_bit).write(ops, gva, data)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Flat memory that logs the access kind of every read.
    pub(crate) struct Flat {
        pub mem: Vec<u8>,
        pub log: Vec<(u64, Access)>,
    }

    impl Flat {
        pub fn new(len: usize) -> Self {
            Self {
                mem: vec![0; len],
                log: Vec::new(),
            }
        }

        pub fn put(&mut self, gpa: u64, v: u64) {
            self.write(gpa, &v.to_le_bytes(), Access::Private).unwrap();
        }

        fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, DebugError> {
            let start = usize::try_from(gpa)
                .ok()
                .filter(|&s| s.checked_add(len).is_some_and(|e| e <= self.mem.len()));
            start.map(|s| s..s + len).ok_or(DebugError::NotGuestMemory {
                gpa,
                len: len as u64,
            })
        }
    }

    impl MemoryDebugOps for Flat {
        fn read(&mut self, gpa: u64, buf: &mut [u8], access: Access) -> Result<(), DebugError> {
            let r = self.range(gpa, buf.len())?;
            self.log.push((gpa, access));
            buf.copy_from_slice(&self.mem[r]);
            Ok(())
        }

        fn write(&mut self, gpa: u64, data: &[u8], _access: Access) -> Result<(), DebugError> {
            let r = self.range(gpa, data.len())?;
            self.mem[r].copy_from_slice(data);
            Ok(())
        }
    }

    const C: u8 = 51;
    const CB: u64 = 1 << 51;

    /// PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000.
    fn tables() -> Flat {
        let mut m = Flat::new(8 << 20);
        m.put(0x1000, 0x2000 | CB | 3); // PML4[0]
        m.put(0x2000, 0x3000 | CB | 3); // PDPT[0]
        m.put(0x2008, 3 | PS); // PDPT[1]: 1 GiB page at 0
        m.put(0x3000, 0x4000 | CB | 3); // PD[0]
        m.put(0x3008, 0x20_0000 | CB | 3 | PS); // PD[1]: 2 MiB page at 2 MiB
        m.put(0x4000 + 5 * 8, 0x9000 | CB | 3); // PT[5] -> 0x9000 private
        m.put(0x4000 + 6 * 8, 0x7000 | 3); // PT[6] -> 0x7000 shared
        m
    }

    #[test]
    fn four_kib_pages_strip_the_c_bit() {
        let mut m = tables();
        let t = translate(&mut m, 0x1000 | CB, 0x5123, C).unwrap();
        assert_eq!(
            (t.gpa, t.private, t.page_size, t.level),
            (0x9123, true, 0x1000, PagingLevel::Pt)
        );
        // Every table read was private (the default), even CR3's C-bit aside.
        assert_eq!(m.log.len(), 4);
        assert!(m.log.iter().all(|(_, a)| *a == Access::Private));
        assert_eq!(m.log[0].0, 0x1000);
        let t = translate(&mut m, 0x1000, 0x6FFF, C).unwrap();
        assert_eq!(
            (t.gpa, t.private, t.access()),
            (0x7FFF, false, Access::Shared)
        );
    }

    #[test]
    fn large_pages() {
        let mut m = tables();
        let t = translate(&mut m, 0x1000, 0x4000_1234, C).unwrap();
        assert_eq!(
            (t.gpa, t.private, t.page_size, t.level),
            (0x1234, false, 1 << 30, PagingLevel::Pdpt)
        );
        let t = translate(&mut m, 0x1000, 0x2F_FFFF, C).unwrap();
        assert_eq!(
            (t.gpa, t.private, t.page_size, t.level),
            (0x2F_FFFF, true, 2 << 20, PagingLevel::Pd)
        );
        // Reserved bits in a 2 MiB entry's address.
        m.put(0x3010, 0x20_2000 | 3 | PS);
        let e = translate(&mut m, 0x1000, 0x40_0000, C).unwrap_err();
        assert!(
            matches!(
                e,
                DebugError::ReservedBits {
                    level: PagingLevel::Pd,
                    index: 2,
                    ..
                }
            ),
            "{e}"
        );
        // PAT (bit 12) is not reserved.
        m.put(0x3010, 0x20_1000 | 3 | PS);
        assert_eq!(
            translate(&mut m, 0x1000, 0x40_0010, C).unwrap().gpa,
            0x20_0010
        );
    }

    #[test]
    fn not_present_names_level_and_entry() {
        let mut m = tables();
        let e = translate(&mut m, 0x1000, 0x8000_0000_0000 - 0x1000, C).unwrap_err();
        match e {
            DebugError::NotPresent {
                level,
                index,
                entry_gpa,
                ..
            } => assert_eq!(
                (level, index, entry_gpa),
                (PagingLevel::Pml4, 255, 0x1000 + 255 * 8)
            ),
            other => panic!("{other}"),
        }
        let e = translate(&mut m, 0x1000, 0x7000, C).unwrap_err();
        assert!(matches!(
            e,
            DebugError::NotPresent {
                level: PagingLevel::Pt,
                index: 7,
                ..
            }
        ));
        assert!(
            e.to_string()
                .contains("PT entry 7 at guest physical 0x4038"),
            "{e}"
        );
        assert!(e.is_inaccessible());
        m.put(0x1008, 0x2000 | 3 | PS);
        let e = translate(&mut m, 0x1000, 1 << 39, C).unwrap_err();
        assert!(matches!(
            e,
            DebugError::ReservedBits {
                level: PagingLevel::Pml4,
                ..
            }
        ));
    }

    #[test]
    fn canonical_addresses_and_c_bit_positions() {
        let mut m = tables();
        assert!(matches!(
            translate(&mut m, 0x1000, 0x0000_8000_0000_0000, C),
            Err(DebugError::NonCanonical { bits: 48, .. })
        ));
        // The upper half is canonical (and unmapped here).
        assert!(matches!(
            translate(&mut m, 0x1000, 0xFFFF_8000_0000_0000, C),
            Err(DebugError::NotPresent { index: 256, .. })
        ));
        assert!(matches!(
            translate(&mut m, 0x1000, u64::MAX, C),
            Err(DebugError::NotPresent { index: 511, .. })
        ));
        assert!(matches!(
            translate(&mut m, 0x1000, 0, 64),
            Err(DebugError::BadCBit(64))
        ));
        assert!(matches!(
            translate(&mut m, 0x1000, 0, 5),
            Err(DebugError::BadCBit(5))
        ));
        // A CR3 beyond memory: the table read fails with context.
        let e = translate(&mut m, 0x000F_FFFF_FFFF_F000, 0, C).unwrap_err();
        assert!(
            matches!(
                e,
                DebugError::TableRead {
                    level: PagingLevel::Pml4,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.is_inaccessible());
    }

    #[test]
    fn five_level_paging() {
        let mut m = tables();
        m.put(0x8000, 0x1000 | CB | 3); // PML5[0] -> the PML4
        let w = PageWalk::new(0x8000, C).la57(true);
        assert_eq!(w.translate(&mut m, 0x5010).unwrap().gpa, 0x9010);
        assert!(matches!(
            w.translate(&mut m, 1 << 48),
            Err(DebugError::NotPresent {
                level: PagingLevel::Pml5,
                index: 1,
                ..
            })
        ));
        // 0x0000_8000_0000_0000 is canonical with 57 bits, not beyond.
        assert!(w
            .translate(&mut m, 0x0100_0000_0000_0000)
            .is_err_and(|e| matches!(e, DebugError::NonCanonical { bits: 57, .. })));
    }

    #[test]
    fn table_access_by_c_bit() {
        let mut m = tables();
        m.put(0x2010, 0x5000 | 3); // PDPT[2] -> PD at 0x5000, C-bit clear
        m.put(0x5000, 0x6000 | CB | 3); // PD[0] -> PT at 0x6000
        m.put(0x6000, 0xA000 | 3); // PT[0]
        let w = PageWalk::new(0x1000 | CB, C).tables(TableAccess::CBit);
        assert_eq!(w.translate(&mut m, 0x8000_0000).unwrap().gpa, 0xA000);
        let kinds: Vec<_> = m.log.iter().map(|(_, a)| *a).collect();
        assert_eq!(
            kinds,
            vec![
                Access::Private,
                Access::Private,
                Access::Shared,
                Access::Private
            ]
        );
        m.log.clear();
        let w = PageWalk::new(0x1000, C).tables(TableAccess::ByPageState);
        w.translate(&mut m, 0x5000).unwrap();
        assert!(m.log.iter().all(|(_, a)| *a == Access::ByPageState));
    }

    #[test]
    fn reads_walk_again_for_each_page() {
        let mut m = tables();
        m.mem[0x9FFE..0xA000].copy_from_slice(b"ab");
        m.mem[0x7000..0x7002].copy_from_slice(b"cd");
        m.log.clear();
        let mut buf = [0u8; 4];
        read_virtual(&mut m, 0x1000, 0x5FFE, &mut buf, C).unwrap();
        assert_eq!(&buf, b"abcd");
        // Two walks of four entries, then the data read after each.
        let data: Vec<_> = m
            .log
            .iter()
            .filter(|(g, _)| *g >= 0x7000)
            .copied()
            .collect();
        assert_eq!(
            data,
            vec![(0x9FFE, Access::Private), (0x7000, Access::Shared)]
        );
        assert_eq!(m.log.len(), 10);
        write_virtual(&mut m, 0x1000, 0x5FFF, b"XY", C).unwrap();
        assert_eq!(&m.mem[0x9FFF..0xA000], b"X");
        assert_eq!(&m.mem[0x7000..0x7001], b"Y");
        // Empty accesses do nothing, even at odd addresses.
        read_virtual(&mut m, 0x1000, u64::MAX, &mut [], C).unwrap();
        // An access that runs off the mapping fails on the unmapped page.
        let mut big = [0u8; 0x2000];
        assert!(matches!(
            read_virtual(&mut m, 0x1000, 0x6800, &mut big, C),
            Err(DebugError::NotPresent { index: 7, .. })
        ));
    }
}
