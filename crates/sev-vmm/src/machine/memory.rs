//! Guest memory: one memfd holding the guest's physical address space and,
//! above it, the host's own pages that firmware commands point at.
//!
//! ```text
//! system address 0 ............................................. size
//!  | low RAM | (hole) | firmware (ends at 4 GiB) | high RAM | host area |
//! ```
//!
//! Guest physical address `g` is system address `g` (the model identity-maps
//! guest pages, so the memory-encryption tweak is the GPA, as it is the SPA
//! on hardware). The host area starts at the next 1 GiB boundary above the
//! guest's highest address; [`host_area`] lists what lives where.
//!
//! The memfd is sparse: registering memory costs no RAM until pages are
//! written. The same file is shared with the AMD-SP (in process, a second
//! handle; over the firmware socket, the fd in HELLO), so the firmware and
//! the VMM see the same bytes.
//!
//! **The encryption view.** After LAUNCH_UPDATE the firmware leaves
//! ciphertext in memory: a host read of a private page ([`GuestMemory::
//! host_read`]) returns ciphertext, a shared page reads as it is. Only the
//! debug API ([`crate::debug`]) or the guest itself sees the plaintext of a
//! private page. [`GuestMemory`] records which pages are private (set by
//! the launch as it encrypts them, and by the guest's page-state changes).

use std::io;
use std::ops::Range;

use rangemap::RangeSet;
use sev_measure::ovmf::MAX_FIRMWARE_LEN;
use sev_sp::FdMemory;
use sev_sp::{MemoryError, SystemMemory};

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// 4 GiB: the firmware image ends here and high RAM starts here.
pub const FOUR_GIB: u64 = 1 << 32;
/// On QEMU's q35, guest RAM below 4 GiB ends here when the guest has 2.75
/// GiB or more (the rest goes above 4 GiB); smaller guests keep all RAM low.
pub const Q35_LOWMEM_SPLIT: u64 = 0x8000_0000;
/// q35 keeps everything low below this RAM size.
const Q35_LOWMEM_LIMIT: u64 = 0xB000_0000;

/// The host's pages above guest memory, as offsets from
/// [`MemoryLayout::host_base`]. Command buffers point here for everything
/// the host hands to or gets from the AMD-SP.
pub mod host_area {
    /// PDH_CERT_EXPORT: the PDH (one page).
    pub const PDH: u64 = 0x0000;
    /// PDH_CERT_EXPORT: the chain PEK ‖ OCA ‖ CEK (two pages).
    pub const CERT_CHAIN: u64 = 0x1000;
    /// GET_ID output (one page).
    pub const GET_ID: u64 = 0x3000;
    /// LAUNCH_START: the guest owner's DH certificate (one page).
    pub const GODH: u64 = 0x4000;
    /// LAUNCH_START: the session blob (one page).
    pub const SESSION: u64 = 0x5000;
    /// LAUNCH_MEASURE output (one page).
    pub const MEASURE: u64 = 0x6000;
    /// LAUNCH_SECRET: the packet header (one page).
    pub const SECRET_HEADER: u64 = 0x7000;
    /// LAUNCH_SECRET: the encrypted payload (up to 16 KiB).
    pub const SECRET_PAYLOAD: u64 = 0x8000;
    /// Largest launch secret payload.
    pub const SECRET_PAYLOAD_MAX: u64 = 0x4000;
    /// ATTESTATION output (one page).
    pub const ATTESTATION: u64 = 0xC000;
    /// SNP_LAUNCH_FINISH: the ID block (one page).
    pub const ID_BLOCK: u64 = 0xD000;
    /// SNP_LAUNCH_FINISH: the ID authentication structure (one page).
    pub const ID_AUTH: u64 = 0xE000;
    /// The SNP guest context page.
    pub const GCTX: u64 = 0xF000;
    /// Debug access bounce pages (two pages: source and destination).
    pub const DEBUG_BOUNCE: u64 = 0x1_0000;
    /// SNP guest request: the request message page (shared with the guest).
    pub const GUEST_REQUEST: u64 = 0x1_2000;
    /// SNP guest request: the firmware-owned response page.
    pub const GUEST_RESPONSE: u64 = 0x1_3000;
    /// Scratch for the sevkit host-instruction pseudo-commands.
    pub const SCRATCH: u64 = 0x1_4000;
    /// The SEV-ES trusted memory region (1 MiB, 1 MiB aligned).
    pub const TMR: u64 = 0x10_0000;
    /// Its length.
    pub const TMR_LEN: u64 = 0x10_0000;
    /// VMSA pages, one per vCPU.
    pub const VMSAS: u64 = 0x20_0000;
    /// Most vCPUs the host area has VMSA pages for.
    pub const MAX_VCPUS: u64 = 1024;
    /// Size of the host area.
    pub const LEN: u64 = VMSAS + MAX_VCPUS * 0x1000;
}

/// Where guest RAM and firmware sit in the guest physical address space,
/// as QEMU's q35 machine lays them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    /// Total guest RAM (`-m`).
    pub ram_size: u64,
    /// RAM at `0..below_4g`.
    pub below_4g: u64,
    /// RAM at `4 GiB..4 GiB + above_4g`.
    pub above_4g: u64,
    /// The firmware image's first GPA (it ends at 4 GiB); `None` without
    /// firmware.
    pub firmware_gpa: Option<u64>,
    /// First system address of the host area.
    pub host_base: u64,
}

impl MemoryLayout {
    /// The q35 layout for `ram_size` bytes of RAM and a firmware image of
    /// `firmware_len` bytes (0 for none) mapped to end at 4 GiB.
    ///
    /// # Errors
    /// RAM that is not a whole number of pages, or firmware that is empty of
    /// pages, larger than 16 MiB, or overlapping low RAM.
    pub fn q35(ram_size: u64, firmware_len: u64) -> Result<Self, LayoutError> {
        if ram_size == 0 || !ram_size.is_multiple_of(PAGE_SIZE) {
            return Err(LayoutError::RamSize(ram_size));
        }
        let lowmem = if ram_size >= Q35_LOWMEM_LIMIT {
            Q35_LOWMEM_SPLIT
        } else {
            Q35_LOWMEM_LIMIT
        };
        let below_4g = ram_size.min(lowmem);
        let above_4g = ram_size - below_4g;
        let firmware_gpa = if firmware_len == 0 {
            None
        } else {
            if !firmware_len.is_multiple_of(PAGE_SIZE) || firmware_len > MAX_FIRMWARE_LEN {
                return Err(LayoutError::FirmwareSize(firmware_len));
            }
            Some(FOUR_GIB - firmware_len)
        };
        let top = FOUR_GIB + above_4g;
        let host_base = top.next_multiple_of(1 << 30);
        Ok(Self {
            ram_size,
            below_4g,
            above_4g,
            firmware_gpa,
            host_base,
        })
    }

    /// Size of the whole system address space (guest and host area).
    pub fn system_size(&self) -> u64 {
        self.host_base + host_area::LEN
    }

    /// The system address of host-area offset `offset`.
    pub fn host(&self, offset: u64) -> u64 {
        self.host_base + offset
    }

    /// Whether `gpa..gpa + len` is guest RAM or firmware (not a hole, not
    /// the host area).
    pub fn is_guest(&self, gpa: u64, len: u64) -> bool {
        let Some(end) = gpa.checked_add(len) else {
            return false;
        };
        let within = |r: Range<u64>| gpa >= r.start && end <= r.end;
        within(0..self.below_4g)
            || self.firmware_gpa.is_some_and(|base| within(base..FOUR_GIB))
            || (self.above_4g > 0 && within(FOUR_GIB..FOUR_GIB + self.above_4g))
    }
}

/// A memory layout that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// `-m` is zero or not page-aligned.
    #[error("guest RAM size {0:#x} must be a non-zero multiple of 4 KiB")]
    RamSize(u64),
    /// The firmware image is not page-aligned or too large to map below 4 GiB.
    #[error(
        "firmware image of {0:#x} bytes must be a multiple of 4 KiB and at most {mib} MiB",
        mib = MAX_FIRMWARE_LEN >> 20
    )]
    FirmwareSize(u64),
}

/// Guest memory with the encryption view.
#[derive(Debug)]
pub struct GuestMemory {
    system: FdMemory,
    layout: MemoryLayout,
    private: RangeSet<u64>,
}

impl GuestMemory {
    /// Creates the memfd for `layout` (sparse: no page is allocated yet).
    pub fn new(layout: MemoryLayout) -> io::Result<Self> {
        Ok(Self {
            system: FdMemory::memfd("sevkit-guest", layout.system_size())?,
            layout,
            private: RangeSet::new(),
        })
    }

    /// The layout.
    pub fn layout(&self) -> &MemoryLayout {
        &self.layout
    }

    /// A second handle on the same memfd, for the AMD-SP.
    pub fn system_handle(&self) -> io::Result<FdMemory> {
        self.system.try_clone()
    }

    /// The system memory (raw bytes: ciphertext where pages are private).
    pub fn system(&self) -> &FdMemory {
        &self.system
    }

    /// The system memory, for writing host-area pages and loading guest
    /// images before they are encrypted.
    pub fn system_mut(&mut self) -> &mut FdMemory {
        &mut self.system
    }

    /// The host's read of guest memory: ciphertext where pages are private,
    /// the bytes as they are where shared.
    ///
    /// # Errors
    /// The range is not guest memory.
    pub fn host_read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check_guest(gpa, buf.len() as u64)?;
        self.system.read(gpa, buf)
    }

    /// The host's write of guest memory (e.g. loading firmware before
    /// LAUNCH_UPDATE encrypts it in place).
    ///
    /// # Errors
    /// The range is not guest memory.
    pub fn host_write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.check_guest(gpa, data.len() as u64)?;
        self.system.write(gpa, data)
    }

    /// Whether the page holding `gpa` is private (encrypted).
    pub fn is_private(&self, gpa: u64) -> bool {
        self.private.contains(&(gpa - gpa % PAGE_SIZE))
    }

    /// Marks the pages covering `gpa..gpa + len` private or shared.
    pub fn set_private(&mut self, gpa: u64, len: u64, private: bool) {
        let start = gpa - gpa % PAGE_SIZE;
        let end = gpa.saturating_add(len).next_multiple_of(PAGE_SIZE);
        if start >= end {
            return;
        }
        if private {
            self.private.insert(start..end);
        } else {
            self.private.remove(start..end);
        }
    }

    /// The private ranges, in order.
    pub fn private_ranges(&self) -> impl Iterator<Item = &Range<u64>> {
        self.private.iter()
    }

    fn check_guest(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        if self.layout.is_guest(gpa, len) {
            Ok(())
        } else {
            Err(MemoryError { paddr: gpa, len })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q35_layout_matches_qemu() {
        let small = MemoryLayout::q35(2 << 30, 4 << 20).unwrap();
        assert_eq!(small.below_4g, 2 << 30);
        assert_eq!(small.above_4g, 0);
        assert_eq!(small.firmware_gpa, Some(FOUR_GIB - (4 << 20)));
        assert_eq!(small.host_base, FOUR_GIB);
        // 2.75 GiB stays low; 3 GiB splits at 2 GiB.
        assert_eq!(
            MemoryLayout::q35(0xB000_0000 - 0x1000, 0).unwrap().above_4g,
            0
        );
        let big = MemoryLayout::q35(3 << 30, 0).unwrap();
        assert_eq!((big.below_4g, big.above_4g), (2 << 30, 1 << 30));
        assert_eq!(big.host_base, 5 << 30);
        assert!(big.is_guest(FOUR_GIB, 1 << 30));
        assert!(!big.is_guest(FOUR_GIB, (1 << 30) + 1));
        assert!(!big.is_guest(2 << 30, 1), "the PCI hole is not RAM");
        assert!(!big.is_guest(u64::MAX, 2));
        assert_eq!(MemoryLayout::q35(4095, 0), Err(LayoutError::RamSize(4095)));
        assert!(MemoryLayout::q35(1 << 30, 100).is_err());
    }

    #[test]
    fn private_pages_and_host_view() {
        let layout = MemoryLayout::q35(64 << 20, 0x1000).unwrap();
        let mut m = GuestMemory::new(layout).unwrap();
        m.host_write(0x2000, b"hello").unwrap();
        let mut buf = [0u8; 5];
        m.host_read(0x2000, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(m.host_read(64 << 20, &mut buf).is_err(), "beyond RAM");
        assert!(
            m.host_read(layout.host_base, &mut buf).is_err(),
            "host area"
        );
        m.set_private(0x1800, 0x1000, true);
        assert!(m.is_private(0x1000) && m.is_private(0x2FFF) && !m.is_private(0x3000));
        m.set_private(0x1000, 0x1000, false);
        assert!(!m.is_private(0x1000) && m.is_private(0x2000));
        assert_eq!(m.private_ranges().count(), 1);
        let other = m.system_handle().unwrap();
        assert_eq!(other.read_vec(0x2000, 5).unwrap(), b"hello");
    }
}
