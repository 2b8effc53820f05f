//! Encrypted-memory debug access: one read/write API under every debugging
//! feature (the `MemoryDebugOps` idea proposed for QEMU, which upstream never
//! merged), guest page-table walks that honour the C-bit, and HMP's `xp` /
//! `x` memory dumps.
//!
//! * [`MemoryDebugOps`]: read or write guest physical memory as
//!   [`Access::Private`] (through the AMD-SP's debug commands),
//!   [`Access::Shared`] (plain host access) or [`Access::ByPageState`] (what
//!   [`GuestMemory`](crate::GuestMemory) records for each page). Ranges that
//!   span pages are split, each page taken by its own state.
//! * [`EncryptedDebug`]: the implementation over the firmware seam. Legacy
//!   SEV / SEV-ES guests go through DBG_DECRYPT / DBG_ENCRYPT (16-byte
//!   blocks: unaligned ranges are widened to the covering blocks, writes
//!   read-modify-write them); SNP guests through SNP_DBG_DECRYPT /
//!   SNP_DBG_ENCRYPT (whole pages, bounced through the host area's
//!   [`DEBUG_BOUNCE`](crate::machine::memory::host_area::DEBUG_BOUNCE) pages).
//! * [`walk`]: x86-64 4- and 5-level page walks ([`translate`],
//!   [`read_virtual`], [`write_virtual`]).
//!
//! Its front ends: the monitor's HMP `xp` / `x`
//! ([`crate::monitor::hmp`]) and, later, a gdbstub.
//!
//! The firmware decides: nothing here refuses a debug access because of the
//! policy the VMM remembers. When the owner's policy forbids debugging the
//! AMD-SP answers POLICY_FAILURE and the error
//! ([`DebugError::PolicyForbids`]) names the policy bit, what to change, and
//! carries AMD's status. [`FirmwareGuest::debug_allowed`] is the cheap
//! pre-check for UIs that want to grey out a debug button.
//!
//! [`FirmwareGuest::debug_allowed`]: crate::FirmwareGuest::debug_allowed

use std::fmt;

use sev_abi::policy::{field, PolicyField};
use sev_abi::status::FirmwareStatus;
use sev_sp::MemoryError;
use sev_sp::SpError;

mod firmware;
pub mod walk;

pub use firmware::EncryptedDebug;
pub use walk::{
    read_virtual, translate, write_virtual, PageWalk, PagingLevel, TableAccess, Translation,
};

/// Largest single debug access (bytes). Larger ranges are refused with
/// [`DebugError::TooLong`]: split them (each page costs a firmware command).
pub const MAX_ACCESS_LEN: usize = 16 << 20;

/// How a debug access treats the guest pages it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// The page is encrypted with the guest's key: decrypt (read) or encrypt
    /// (write) through the AMD-SP's debug commands.
    Private,
    /// The page is shared with the host: plain host access.
    Shared,
    /// Whichever [`GuestMemory::is_private`](crate::GuestMemory::is_private)
    /// records for each page.
    #[default]
    ByPageState,
}

/// Debug reads and writes of guest physical memory.
///
/// Implementations split ranges that span pages and treat each page by its
/// own [`Access`]. A zero-length access succeeds without touching anything.
pub trait MemoryDebugOps {
    /// Reads `buf.len()` bytes of guest memory at `gpa`.
    ///
    /// # Errors
    /// The range is not guest memory, is longer than [`MAX_ACCESS_LEN`], or
    /// the firmware refused (e.g. [`DebugError::PolicyForbids`]).
    fn read(&mut self, gpa: u64, buf: &mut [u8], access: Access) -> Result<(), DebugError>;

    /// Writes `data` into guest memory at `gpa`.
    ///
    /// # Errors
    /// As [`MemoryDebugOps::read`].
    fn write(&mut self, gpa: u64, data: &[u8], access: Access) -> Result<(), DebugError>;

    /// Reads a little-endian `u64` at `gpa`.
    ///
    /// # Errors
    /// As [`MemoryDebugOps::read`].
    fn read_u64(&mut self, gpa: u64, access: Access) -> Result<u64, DebugError> {
        let mut b = [0u8; 8];
        self.read(gpa, &mut b, access)?;
        Ok(u64::from_le_bytes(b))
    }
}

impl<T: MemoryDebugOps + ?Sized> MemoryDebugOps for &mut T {
    fn read(&mut self, gpa: u64, buf: &mut [u8], access: Access) -> Result<(), DebugError> {
        (**self).read(gpa, buf, access)
    }

    fn write(&mut self, gpa: u64, data: &[u8], access: Access) -> Result<(), DebugError> {
        (**self).write(gpa, data, access)
    }
}

/// The policy bit that keeps the host from debugging a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyBit {
    /// The legacy SEV / SEV-ES policy's [`field::NODBG`] (set: debugging
    /// forbidden).
    Nodbg,
    /// The SNP policy's [`field::DEBUG`] (clear: debugging forbidden).
    Debug,
}

impl PolicyBit {
    /// The policy field.
    pub const fn field(self) -> &'static PolicyField {
        match self {
            Self::Nodbg => &field::NODBG,
            Self::Debug => &field::DEBUG,
        }
    }

    /// The field's value that forbids debugging.
    const fn forbidding(self) -> &'static str {
        match self {
            Self::Nodbg => "set",
            Self::Debug => "clear",
        }
    }

    /// What the owner's policy says, e.g. "NODBG (policy bit 0) is set".
    pub fn state(self) -> String {
        format!(
            "{self} (policy bit {}) is {}",
            self.field().shift,
            self.forbidding()
        )
    }

    /// What to do about it.
    pub fn remedy(self) -> String {
        let example = match self {
            Self::Nodbg => "-object sev-guest,policy=0x0 (QEMU's default policy 0x1 sets it)",
            Self::Debug => "-object sev-snp-guest,policy=0xb0000",
        };
        let allowing = match self {
            Self::Nodbg => "clear",
            Self::Debug => "set",
        };
        format!(
            "relaunch with policy bit {} ({self}) {allowing}, e.g. {example}",
            self.field().shift
        )
    }
}

impl fmt::Display for PolicyBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.field().spec_name())
    }
}

/// Why a debug access failed.
#[derive(Debug, thiserror::Error)]
pub enum DebugError {
    /// The AMD-SP refused because the owner's policy forbids debugging.
    #[error(
        "{command} refused by the AMD-SP with {status}: the guest policy forbids debugging \
         ({}): {} to allow {command}",
        policy.state(),
        policy.remedy()
    )]
    PolicyForbids {
        /// The command refused (e.g. `"DBG_DECRYPT"`).
        command: &'static str,
        /// AMD's status (POLICY_FAILURE).
        status: FirmwareStatus,
        /// The bit responsible.
        policy: PolicyBit,
    },
    /// The AMD-SP refused for another reason.
    #[error("{command} of guest address {gpa:#x} refused by the AMD-SP with {status}: {hint}")]
    Firmware {
        /// The command refused.
        command: &'static str,
        /// The guest address the command was about.
        gpa: u64,
        /// AMD's status.
        status: FirmwareStatus,
        /// What the status means here and what to do.
        hint: &'static str,
    },
    /// The command could not be delivered to the AMD-SP.
    #[error("debug access: {0}")]
    Seam(#[from] SpError),
    /// The range is not guest RAM or firmware (a hole, the host area, beyond
    /// the end, or wrapping past `u64::MAX`).
    #[error(
        "guest physical range {gpa:#x}+{len:#x} is not guest memory (RAM or firmware); \
         nothing was accessed"
    )]
    NotGuestMemory {
        /// Start of the access.
        gpa: u64,
        /// Its length.
        len: u64,
    },
    /// The host area (bounce pages) could not be read or written.
    #[error("debug bounce page: {0}")]
    HostMemory(#[from] MemoryError),
    /// The access is longer than [`MAX_ACCESS_LEN`].
    #[error("a debug access of {len} bytes exceeds the limit of {max} bytes: split it")]
    TooLong {
        /// Requested length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A page-table entry on the walk is not present.
    #[error(
        "guest virtual address {gva:#x} is not mapped: {level} entry {index} at guest physical \
         {entry_gpa:#x} is not present (entry {entry:#018x})"
    )]
    NotPresent {
        /// The virtual address translated.
        gva: u64,
        /// The table level of the entry.
        level: PagingLevel,
        /// Index of the entry in its table.
        index: u16,
        /// Where the entry is.
        entry_gpa: u64,
        /// Its value.
        entry: u64,
    },
    /// A page-table entry has reserved bits set (the CPU would raise #PF with
    /// RSVD).
    #[error(
        "guest virtual address {gva:#x}: {level} entry {index} at guest physical {entry_gpa:#x} \
         has reserved bits set (entry {entry:#018x}): {what}"
    )]
    ReservedBits {
        /// The virtual address translated.
        gva: u64,
        /// The table level of the entry.
        level: PagingLevel,
        /// Index of the entry in its table.
        index: u16,
        /// Where the entry is.
        entry_gpa: u64,
        /// Its value.
        entry: u64,
        /// Which bits.
        what: &'static str,
    },
    /// The virtual address is not canonical for the paging mode.
    #[error(
        "guest virtual address {gva:#x} is not canonical for {bits}-bit virtual addresses \
         (bits 63..{} must all equal bit {})",
        bits - 1,
        bits - 1
    )]
    NonCanonical {
        /// The virtual address.
        gva: u64,
        /// Virtual address width: 48 (4-level) or 57 (5-level).
        bits: u8,
    },
    /// The C-bit position is not a physical address bit.
    #[error(
        "C-bit position {0} is not a physical-address bit (12..=51); take it from CPUID \
         0x8000001F EBX[5:0] (47 on Milan, 51 on Genoa)"
    )]
    BadCBit(u8),
    /// Reading a page-table entry failed.
    #[error("reading the {level} entry at guest physical {entry_gpa:#x} for {gva:#x}: {source}")]
    TableRead {
        /// The virtual address translated.
        gva: u64,
        /// The table level of the entry.
        level: PagingLevel,
        /// Where the entry is.
        entry_gpa: u64,
        /// Why it could not be read.
        source: Box<DebugError>,
    },
    /// An HMP command line that QEMU's monitor refuses, with QEMU's message.
    #[error("{0}")]
    Hmp(String),
    /// Something this implementation does not do.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl DebugError {
    /// AMD's status, when the AMD-SP refused (looking through page-walk
    /// context).
    pub fn firmware_status(&self) -> Option<FirmwareStatus> {
        match self {
            Self::PolicyForbids { status, .. } | Self::Firmware { status, .. } => Some(*status),
            Self::TableRead { source, .. } => source.firmware_status(),
            _ => None,
        }
    }

    /// Whether the address simply has no memory behind it (unmapped,
    /// outside guest memory): what QEMU's monitor prints as "Cannot access
    /// memory", as opposed to a refusal or a broken seam.
    pub fn is_inaccessible(&self) -> bool {
        match self {
            Self::NotGuestMemory { .. }
            | Self::NotPresent { .. }
            | Self::ReservedBits { .. }
            | Self::NonCanonical { .. } => true,
            Self::TableRead { source, .. } => source.is_inaccessible(),
            _ => false,
        }
    }
}

/// Checks the common preconditions of an access: the length limit and that
/// `gpa..gpa + len` does not wrap. Returns the exclusive end.
pub(crate) fn check_len(gpa: u64, len: usize) -> Result<u64, DebugError> {
    if len > MAX_ACCESS_LEN {
        return Err(DebugError::TooLong {
            len,
            max: MAX_ACCESS_LEN,
        });
    }
    gpa.checked_add(len as u64)
        .ok_or(DebugError::NotGuestMemory {
            gpa,
            len: len as u64,
        })
}

/// Splits `gpa..gpa + len` at 4 KiB boundaries: `(gpa, offset, len)` of each
/// piece, where `offset` is the piece's position in the access.
pub(crate) fn pages(gpa: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off >= len {
            return None;
        }
        let at = gpa.wrapping_add(off as u64);
        let room = (PAGE - at % PAGE) as usize;
        let n = room.min(len - off);
        let piece = (at, off, n);
        off += n;
        Some(piece)
    })
}

const PAGE: u64 = crate::machine::memory::PAGE_SIZE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_at_boundaries() {
        let v: Vec<_> = pages(0xFF0, 0x1020).collect();
        assert_eq!(
            v,
            vec![
                (0xFF0, 0, 0x10),
                (0x1000, 0x10, 0x1000),
                (0x2000, 0x1010, 0x10)
            ]
        );
        assert_eq!(pages(0x1000, 0).count(), 0);
        assert_eq!(
            pages(0x1000, 0x1000).collect::<Vec<_>>(),
            vec![(0x1000, 0, 0x1000)]
        );
        // Near the top of the address space nothing overflows.
        assert_eq!(
            pages(u64::MAX - 3, 4).collect::<Vec<_>>(),
            vec![(u64::MAX - 3, 0, 4)]
        );
    }

    #[test]
    fn length_checks() {
        assert!(check_len(0, MAX_ACCESS_LEN).is_ok());
        assert!(matches!(
            check_len(0, MAX_ACCESS_LEN + 1),
            Err(DebugError::TooLong { .. })
        ));
        assert!(matches!(
            check_len(u64::MAX, 2),
            Err(DebugError::NotGuestMemory { .. })
        ));
        assert_eq!(check_len(u64::MAX, 0).unwrap(), u64::MAX);
    }

    #[test]
    fn policy_messages_name_the_bit_and_the_fix() {
        let e = DebugError::PolicyForbids {
            command: "DBG_DECRYPT",
            status: FirmwareStatus::POLICY_FAILURE,
            policy: PolicyBit::Nodbg,
        };
        let s = e.to_string();
        assert!(s.contains("POLICY_FAILURE (0x07)"), "{s}");
        assert!(s.contains("NODBG (policy bit 0) is set"), "{s}");
        assert!(s.contains("to allow DBG_DECRYPT"), "{s}");
        assert_eq!(e.firmware_status(), Some(FirmwareStatus::POLICY_FAILURE));
        let wrapped = DebugError::TableRead {
            gva: 0,
            level: PagingLevel::Pml4,
            entry_gpa: 0,
            source: Box::new(e),
        };
        assert_eq!(
            wrapped.firmware_status(),
            Some(FirmwareStatus::POLICY_FAILURE)
        );
        assert!(!wrapped.is_inaccessible());
        let s = DebugError::PolicyForbids {
            command: "SNP_DBG_DECRYPT",
            status: FirmwareStatus::POLICY_FAILURE,
            policy: PolicyBit::Debug,
        }
        .to_string();
        assert!(
            s.contains("DEBUG (policy bit 19) is clear") && s.contains("0xb0000"),
            "{s}"
        );
    }
}
