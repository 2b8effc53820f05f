//! The kernel hashes table of measured direct boot (QEMU `-kernel` with
//! `kernel-hashes=on`): SHA-256 of the command line, initrd and kernel in
//! QEMU's `SevHashTable`, padded to 176 bytes.
//!
//! ```text
//! SevHashTableEntry = GUID || u16 len (50) || sha256[32]                      50 bytes
//! SevHashTable      = 9438d606-… || u16 len (168) || cmdline || initrd || kernel   168 bytes
//! PaddedSevHashTable = SevHashTable || 8 zero bytes                          176 bytes
//! ```
//!
//! GUIDs are stored in EFI mixed-endian form. The kernel is hashed as the
//! file is (QEMU does not patch the setup header under SEV); the initrd hash
//! is over the empty string when there is none; the command line is hashed
//! with its terminating NUL (`"\0"` alone when there is none or it is empty).
//! SEV and SEV-ES measure the 176 bytes; SNP measures a 4 KiB page holding
//! the table at `hashes_table_base & 0xfff`.

use sev_abi::guid::{
    KERNEL_HASHES_CMDLINE, KERNEL_HASHES_INITRD, KERNEL_HASHES_KERNEL, KERNEL_HASHES_TABLE,
};
use sha2::{Digest, Sha256};
use zerocopy::little_endian::U16;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The largest `-kernel` or `-initrd` file sevkit reads to hash: 1 GiB.
/// Kernels are tens of MiB and initrds up to a few hundred; QEMU loads both
/// into guest memory below 4 GiB.
pub const MAX_KERNEL_FILE_LEN: u64 = 1 << 30;

/// Size of an SHA-256 hash.
pub const HASH_LEN: usize = 32;
/// Size of `SevHashTableEntry`.
pub const ENTRY_LEN: usize = 50;
/// Size of `SevHashTable`.
pub const TABLE_LEN: usize = 168;
/// Size of `PaddedSevHashTable` (the table rounded up to 16 bytes).
pub const PADDED_TABLE_LEN: usize = 176;
/// Size of a page.
pub const PAGE_LEN: usize = 4096;

/// `SevHashTableEntry`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SevHashTableEntry {
    /// Entry GUID (mixed-endian).
    pub guid: [u8; 16],
    /// Entry length (50).
    pub length: U16,
    /// SHA-256.
    pub hash: [u8; HASH_LEN],
}

/// `SevHashTable`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SevHashTable {
    /// Table GUID (mixed-endian).
    pub guid: [u8; 16],
    /// Table length (168).
    pub length: U16,
    /// Command line entry.
    pub cmdline: SevHashTableEntry,
    /// Initrd entry.
    pub initrd: SevHashTableEntry,
    /// Kernel entry.
    pub kernel: SevHashTableEntry,
}

/// `PaddedSevHashTable`: what SEV and SEV-ES measure.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PaddedSevHashTable {
    /// The table.
    pub table: SevHashTable,
    /// Zero padding to a multiple of 16 bytes.
    pub padding: [u8; PADDED_TABLE_LEN - TABLE_LEN],
}

/// The three hashes of measured direct boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHashes {
    /// SHA-256 of the command line with its NUL.
    pub cmdline: [u8; HASH_LEN],
    /// SHA-256 of the initrd (of nothing when there is none).
    pub initrd: [u8; HASH_LEN],
    /// SHA-256 of the kernel file.
    pub kernel: [u8; HASH_LEN],
}

impl KernelHashes {
    /// Hashes the inputs exactly as QEMU does. `append` is the command line
    /// without its NUL; `None` and empty both mean "no command line".
    pub fn compute(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&[u8]>) -> Self {
        Self {
            cmdline: cmdline_hash(append),
            initrd: Sha256::digest(initrd.unwrap_or_default()).into(),
            kernel: Sha256::digest(kernel).into(),
        }
    }

    /// The `PaddedSevHashTable` QEMU builds (176 bytes).
    pub fn padded_table(&self) -> PaddedSevHashTable {
        let entry = |guid: sev_abi::Guid, hash: [u8; HASH_LEN]| SevHashTableEntry {
            guid: guid.to_le_bytes(),
            length: U16::new(ENTRY_LEN as u16),
            hash,
        };
        PaddedSevHashTable {
            table: SevHashTable {
                guid: KERNEL_HASHES_TABLE.to_le_bytes(),
                length: U16::new(TABLE_LEN as u16),
                cmdline: entry(KERNEL_HASHES_CMDLINE, self.cmdline),
                initrd: entry(KERNEL_HASHES_INITRD, self.initrd),
                kernel: entry(KERNEL_HASHES_KERNEL, self.kernel),
            },
            padding: [0; PADDED_TABLE_LEN - TABLE_LEN],
        }
    }

    /// The padded table as bytes.
    pub fn table_bytes(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut out = [0u8; PADDED_TABLE_LEN];
        out.copy_from_slice(self.padded_table().as_bytes());
        out
    }

    /// The SNP page: zeros with the padded table at `offset`. `None` when
    /// the table does not fit in the page at that offset.
    pub fn page(&self, offset: usize) -> Option<Vec<u8>> {
        let end = offset.checked_add(PADDED_TABLE_LEN)?;
        if end > PAGE_LEN {
            return None;
        }
        let mut page = vec![0u8; PAGE_LEN];
        page.get_mut(offset..end)?
            .copy_from_slice(&self.table_bytes());
        Some(page)
    }

    /// Reads the hashes back from a padded (or unpadded) table, checking its
    /// GUIDs and lengths. `None` when it is not a QEMU kernel hashes table.
    pub fn from_table(bytes: &[u8]) -> Option<Self> {
        let (table, _) = SevHashTable::read_from_prefix(bytes).ok()?;
        let ok_entry = |e: &SevHashTableEntry, guid: sev_abi::Guid| {
            e.guid == guid.to_le_bytes() && usize::from(e.length.get()) == ENTRY_LEN
        };
        (table.guid == KERNEL_HASHES_TABLE.to_le_bytes()
            && usize::from(table.length.get()) == TABLE_LEN
            && ok_entry(&table.cmdline, KERNEL_HASHES_CMDLINE)
            && ok_entry(&table.initrd, KERNEL_HASHES_INITRD)
            && ok_entry(&table.kernel, KERNEL_HASHES_KERNEL))
        .then_some(Self {
            cmdline: table.cmdline.hash,
            initrd: table.initrd.hash,
            kernel: table.kernel.hash,
        })
    }
}

impl PaddedSevHashTable {
    /// An all-zero table.
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }
}

/// SHA-256 of the command line as QEMU hashes it: the bytes followed by a
/// NUL, or a lone NUL when there is no (or an empty) command line.
pub fn cmdline_hash(append: Option<&[u8]>) -> [u8; HASH_LEN] {
    let mut h = Sha256::new();
    if let Some(text) = append {
        h.update(text);
    }
    h.update([0u8]);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn sizes() {
        assert_eq!(size_of::<SevHashTableEntry>(), ENTRY_LEN);
        assert_eq!(size_of::<SevHashTable>(), TABLE_LEN);
        assert_eq!(size_of::<PaddedSevHashTable>(), PADDED_TABLE_LEN);
    }

    #[test]
    fn layout_of_the_table() {
        let h = KernelHashes::compute(b"kernel", Some(b"initrd"), Some(b"ro quiet"));
        let t = h.table_bytes();
        // Header GUID 9438d606-4f22-… stored mixed-endian.
        assert_eq!(t[..4], [0x06, 0xd6, 0x38, 0x94]);
        assert_eq!(t[16..18], [168, 0]);
        // cmdline entry first: 97d02dd8-…
        assert_eq!(t[18..22], [0xd8, 0x2d, 0xd0, 0x97]);
        assert_eq!(t[34..36], [50, 0]);
        assert_eq!(t[36..68], cmdline_hash(Some(b"ro quiet")));
        // initrd second, kernel third.
        assert_eq!(t[68..72], [0x31, 0xf7, 0xba, 0x44]);
        assert_eq!(t[118..122], [0x37, 0x94, 0xe7, 0x4d]);
        assert_eq!(t[136..168], <[u8; 32]>::from(Sha256::digest(b"kernel")));
        assert_eq!(t[168..], [0; 8]);
        assert_eq!(KernelHashes::from_table(&t), Some(h));
        assert_eq!(KernelHashes::from_table(&t[..100]), None);
        let mut broken = t;
        broken[0] ^= 1;
        assert_eq!(KernelHashes::from_table(&broken), None);
    }

    #[test]
    fn empty_append_is_no_append() {
        assert_eq!(cmdline_hash(None), cmdline_hash(Some(b"")));
        assert_eq!(cmdline_hash(None), <[u8; 32]>::from(Sha256::digest([0u8])));
        let a = KernelHashes::compute(b"k", None, None);
        let b = KernelHashes::compute(b"k", Some(b""), Some(b""));
        assert_eq!(a, b);
    }

    #[test]
    fn page_placement() {
        let h = KernelHashes::compute(b"k", None, None);
        let page = h.page(0xC00).unwrap();
        assert_eq!(page.len(), PAGE_LEN);
        assert!(page[..0xC00].iter().all(|&b| b == 0));
        assert_eq!(page[0xC00..0xC00 + PADDED_TABLE_LEN], h.table_bytes());
        assert!(page[0xC00 + PADDED_TABLE_LEN..].iter().all(|&b| b == 0));
        assert!(h.page(PAGE_LEN - PADDED_TABLE_LEN).is_some());
        assert!(h.page(PAGE_LEN - PADDED_TABLE_LEN + 1).is_none());
        assert!(h.page(usize::MAX).is_none());
    }
}
