//! The AMD-SP's view of system memory.
//!
//! Every `*_paddr` in a command buffer is an address in one flat physical
//! address space that holds both host-side blobs (certificates, session
//! blobs, packet headers, output buffers) and guest pages. The firmware
//! reaches it only through [`SystemMemory`]; an address the implementation
//! cannot serve makes the command fail with `INVALID_ADDRESS`.
//!
//! [`VecMemory`] is the in-process implementation: a sparse, bounded address
//! space whose untouched pages read as zeros. The firmware server maps a
//! memfd shared with the VMM instead.

use std::collections::BTreeMap;

/// Page granularity of [`VecMemory`]'s sparse storage.
const PAGE: u64 = 4096;

/// A physical address range the memory cannot serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("physical address range {paddr:#x}+{len:#x} is outside system memory")]
pub struct MemoryError {
    /// Start of the access.
    pub paddr: u64,
    /// Its length.
    pub len: u64,
}

/// System physical memory as the AMD-SP sees it.
pub trait SystemMemory {
    /// Reads `buf.len()` bytes at `paddr`. Either the whole range is read or
    /// an error is returned.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Writes `data` at `paddr`. Either the whole range is written or an
    /// error is returned and nothing changed.
    fn write(&mut self, paddr: u64, data: &[u8]) -> Result<(), MemoryError>;
}

/// A sparse in-memory address space `[0, size)`: pages are allocated on first
/// write, unwritten bytes read as zero.
#[derive(Clone, Default)]
pub struct VecMemory {
    size: u64,
    pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
}

impl core::fmt::Debug for VecMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VecMemory")
            .field("size", &format_args!("{:#x}", self.size))
            .field("resident_pages", &self.pages.len())
            .finish()
    }
}

impl VecMemory {
    /// An address space of `size` bytes (addresses `0..size`), all zero.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            pages: BTreeMap::new(),
        }
    }

    /// Size of the address space.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of pages that have been written to.
    pub fn resident_pages(&self) -> usize {
        self.pages.len()
    }

    fn check(&self, paddr: u64, len: usize) -> Result<(), MemoryError> {
        let len64 = len as u64;
        match paddr.checked_add(len64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(MemoryError { paddr, len: len64 }),
        }
    }

    /// Reads `len` bytes at `paddr` into a new vector.
    pub fn read_vec(&self, paddr: u64, len: usize) -> Result<Vec<u8>, MemoryError> {
        self.check(paddr, len)?;
        let mut out = vec![0u8; len];
        self.read(paddr, &mut out)?;
        Ok(out)
    }
}

impl SystemMemory for VecMemory {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check(paddr, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let addr = paddr + done as u64;
            let offset = (addr % PAGE) as usize;
            let n = (PAGE as usize - offset).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match self.pages.get(&(addr / PAGE)) {
                Some(page) => dst.copy_from_slice(&page[offset..offset + n]),
                None => dst.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn write(&mut self, paddr: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.check(paddr, data.len())?;
        let mut done = 0usize;
        while done < data.len() {
            let addr = paddr + done as u64;
            let offset = (addr % PAGE) as usize;
            let n = (PAGE as usize - offset).min(data.len() - done);
            let page = self
                .pages
                .entry(addr / PAGE)
                .or_insert_with(|| Box::new([0u8; PAGE as usize]));
            page[offset..offset + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_read_write_across_pages() {
        let mut m = VecMemory::new(1 << 32);
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        m.write(0xFFFF_0000 - 5000, &data).unwrap();
        assert_eq!(m.read_vec(0xFFFF_0000 - 5000, 10_000).unwrap(), data);
        assert_eq!(m.read_vec(0x1000, 16).unwrap(), [0u8; 16]);
        assert_eq!(m.resident_pages(), 4);
    }

    #[test]
    fn out_of_range_is_an_error_and_writes_nothing() {
        let mut m = VecMemory::new(0x2000);
        assert!(m.write(0x1FF0, &[1u8; 32]).is_err());
        assert_eq!(m.resident_pages(), 0);
        assert!(m.read(u64::MAX, &mut [0u8; 2]).is_err());
        assert!(m.read_vec(0x2000, 1).is_err());
        m.read(0x2000, &mut []).unwrap();
        assert_eq!(
            m.write(u64::MAX - 1, &[0; 4]),
            Err(MemoryError {
                paddr: u64::MAX - 1,
                len: 4
            })
        );
    }
}
