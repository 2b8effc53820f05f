//! The reverse map table (reference §3.4): one entry per 4 KiB system page.
//!
//! The model keeps the RMP inside the firmware, as a map from system page
//! frame number to [`RmpEntry`]; pages without an entry are hypervisor
//! pages. The host changes entries only with RMPUPDATE and PSMASH
//! ([`crate::Firmware::rmp_update`], [`crate::Firmware::psmash`]), the guest
//! with PVALIDATE ([`crate::Firmware::pvalidate`]); the firmware's commands
//! move pages between the states of [`PageState`].

use std::collections::BTreeMap;

use sev_abi::status::FirmwareStatus;

/// Size of a 4 KiB page.
pub const PAGE_4K: u64 = 0x1000;
/// Size of a 2 MiB page.
pub const PAGE_2M: u64 = 0x20_0000;
/// 4 KiB pages in a 2 MiB page.
const SUBPAGES: u64 = PAGE_2M / PAGE_4K;

/// RMP page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PageSize {
    /// 4 KiB.
    #[default]
    Size4K,
    /// 2 MiB.
    Size2M,
}

impl PageSize {
    /// Bytes in a page of this size.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Size4K => PAGE_4K,
            Self::Size2M => PAGE_2M,
        }
    }

    /// The size encoded as in command buffers (0 = 4K, 1 = 2M).
    pub fn from_bit(bit: bool) -> Self {
        if bit {
            Self::Size2M
        } else {
            Self::Size4K
        }
    }
}

/// One RMP entry (architectural fields; the HW-only lock and subpage count
/// are not modelled).
#[allow(clippy::struct_excessive_bools)] // the architectural flag bits
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RmpEntry {
    /// Assigned to a guest or the AMD-SP.
    pub assigned: bool,
    /// Page size of the mapping this entry belongs to.
    pub page_size: PageSize,
    /// Immutable: only the AMD-SP may change it.
    pub immutable: bool,
    /// Owning ASID (0: hypervisor or AMD-SP).
    pub asid: u32,
    /// Guest physical address the page is mapped at (4 KiB aligned).
    pub gpa: u64,
    /// The page is a VMSA (or, for the AMD-SP, a guest context).
    pub vmsa: bool,
    /// Validated by the guest (PVALIDATE) or by SNP_LAUNCH_UPDATE.
    pub validated: bool,
    /// VMPL0..3 permission bytes.
    pub perms: [u8; 4],
    /// A metadata page (SNP_PAGE_MD_INIT; not produced by the model yet).
    pub metadata: bool,
}

/// The firmware's classification of an RMP entry (reference §3.4, in
/// priority order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageState {
    /// Hypervisor-owned (no entry, or assigned = 0).
    Hypervisor,
    /// Hypervisor-owned and fixed (SNP_INIT_EX range list): never assignable.
    HvFixed,
    /// Owned by the AMD-SP.
    Firmware,
    /// Assigned, mutable, ASID 0: waiting for the hypervisor to take it back.
    Reclaim,
    /// A guest-context page.
    Context,
    /// A metadata page.
    Metadata,
    /// Assigned to a guest, immutable, not validated: ready for
    /// SNP_LAUNCH_UPDATE.
    PreGuest,
    /// Assigned to a guest, immutable, validated (swap).
    PreSwap,
    /// Guest page not (or no longer) validated.
    GuestInvalid,
    /// Guest page validated.
    GuestValid,
}

impl PageState {
    /// The state of `entry`.
    pub fn of(entry: &RmpEntry) -> Self {
        match (entry.assigned, entry.asid, entry.immutable, entry.validated) {
            (false, _, true, _) => Self::HvFixed,
            (false, _, false, _) => Self::Hypervisor,
            (true, 0, true, _) if entry.metadata => Self::Metadata,
            (true, 0, true, _) if entry.vmsa => Self::Context,
            (true, 0, true, _) => Self::Firmware,
            (true, 0, false, _) => Self::Reclaim,
            (true, _, true, false) => Self::PreGuest,
            (true, _, true, true) => Self::PreSwap,
            (true, _, false, false) => Self::GuestInvalid,
            (true, _, false, true) => Self::GuestValid,
        }
    }

    /// The firmware's name (`PRE_GUEST`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hypervisor => "HYPERVISOR",
            Self::HvFixed => "HV_FIXED",
            Self::Firmware => "FIRMWARE",
            Self::Reclaim => "RECLAIM",
            Self::Context => "CONTEXT",
            Self::Metadata => "METADATA",
            Self::PreGuest => "PRE_GUEST",
            Self::PreSwap => "PRE_SWAP",
            Self::GuestInvalid => "GUEST_INVALID",
            Self::GuestValid => "GUEST_VALID",
        }
    }
}

/// RMPUPDATE's input (Linux `struct rmp_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RmpUpdate {
    /// Guest physical address (ignored unless assigned).
    pub gpa: u64,
    /// Assign the page.
    pub assigned: bool,
    /// Page size.
    pub page_size: PageSize,
    /// Make the page immutable (only meaningful when assigned).
    pub immutable: bool,
    /// Owning ASID (0 with `assigned` and `immutable`: a firmware page).
    pub asid: u32,
}

impl RmpUpdate {
    /// A firmware page (assigned, immutable, ASID 0): what a guest context
    /// page must be before SNP_GCTX_CREATE.
    pub fn firmware_page() -> Self {
        Self {
            assigned: true,
            immutable: true,
            ..Self::default()
        }
    }

    /// A 4 KiB PRE_GUEST page of the guest on `asid` at `gpa` (assigned,
    /// immutable): what SNP_LAUNCH_UPDATE takes.
    pub fn pre_guest(gpa: u64, asid: u32) -> Self {
        Self {
            gpa,
            assigned: true,
            page_size: PageSize::Size4K,
            immutable: true,
            asid,
        }
    }
}

/// A failed RMP instruction (x86 return codes in RAX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RmpError {
    /// FAIL_INPUT (1): misaligned or uncovered address, bad operands, or SNP
    /// not initialized.
    #[error("FAIL_INPUT")]
    FailInput,
    /// FAIL_PERMISSION (2): the entry is immutable, or the page belongs to
    /// another owner.
    #[error("FAIL_PERMISSION")]
    FailPermission,
    /// FAIL_INUSE (3).
    #[error("FAIL_INUSE")]
    FailInUse,
    /// FAIL_OVERLAP (4): a 2 MiB update over inconsistent 4 KiB entries.
    #[error("FAIL_OVERLAP")]
    FailOverlap,
    /// FAIL_SIZEMISMATCH (6): PVALIDATE size differs from the RMP's.
    #[error("FAIL_SIZEMISMATCH")]
    FailSizeMismatch,
}

impl RmpError {
    /// The x86 return code.
    pub fn code(self) -> u32 {
        match self {
            Self::FailInput => 1,
            Self::FailPermission => 2,
            Self::FailInUse => 3,
            Self::FailOverlap => 4,
            Self::FailSizeMismatch => 6,
        }
    }
}

/// PVALIDATE's outcome when it does not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvalidateOutcome {
    /// The validated bit changed.
    Changed,
    /// It already had the requested value (CF=1, Linux's
    /// `PVALIDATE_FAIL_NOUPDATE`).
    NoUpdate,
}

/// The RMP: entries of system pages that are not plain hypervisor pages.
#[derive(Debug, Clone, Default)]
pub struct Rmp {
    entries: BTreeMap<u64, RmpEntry>,
}

impl Rmp {
    /// An RMP with every page hypervisor-owned.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of the 4 KiB page holding `spa`.
    pub fn entry(&self, spa: u64) -> RmpEntry {
        self.entries
            .get(&(spa / PAGE_4K))
            .copied()
            .unwrap_or_default()
    }

    /// The state of the 4 KiB page holding `spa`.
    pub fn state(&self, spa: u64) -> PageState {
        PageState::of(&self.entry(spa))
    }

    /// The entries of the `size` page at `spa` for SNP_LAUNCH_UPDATE: every
    /// 4 KiB page PRE_GUEST (else INVALID_PAGE_STATE), owned by `asid`
    /// (INVALID_PAGE_OWNER) and mapped with `size` (INVALID_PAGE_SIZE).
    pub(crate) fn pre_guest_entries(
        &self,
        spa: u64,
        size: PageSize,
        asid: u32,
    ) -> Result<Vec<RmpEntry>, FirmwareStatus> {
        (0..size.bytes() / PAGE_4K)
            .map(|i| {
                let e = self.entry(spa + i * PAGE_4K);
                if PageState::of(&e) != PageState::PreGuest {
                    Err(FirmwareStatus::INVALID_PAGE_STATE)
                } else if e.asid != asid {
                    Err(FirmwareStatus::INVALID_PAGE_OWNER)
                } else if e.page_size != size {
                    Err(FirmwareStatus::INVALID_PAGE_SIZE)
                } else {
                    Ok(e)
                }
            })
            .collect()
    }

    /// Sets the entry of the page holding `spa` (hypervisor entries are
    /// dropped).
    pub(crate) fn set(&mut self, spa: u64, entry: RmpEntry) {
        if entry == RmpEntry::default() {
            self.entries.remove(&(spa / PAGE_4K));
        } else {
            self.entries.insert(spa / PAGE_4K, entry);
        }
    }

    /// Whether every page is a plain hypervisor page.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every page back to the hypervisor (SNP_SHUTDOWN).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// RMPUPDATE (APM 15.36.7).
    pub fn update(&mut self, spa: u64, new: &RmpUpdate) -> Result<(), RmpError> {
        let size = new.page_size.bytes();
        if !spa.is_multiple_of(size) || spa.checked_add(size).is_none() {
            return Err(RmpError::FailInput);
        }
        if new.assigned && !new.gpa.is_multiple_of(size) {
            return Err(RmpError::FailInput);
        }
        if new.asid > 0x3FF {
            return Err(RmpError::FailInput);
        }
        let count = size / PAGE_4K;
        let first = self.entry(spa);
        for i in 0..count {
            let cur = self.entry(spa + i * PAGE_4K);
            if cur.immutable {
                return Err(RmpError::FailPermission);
            }
            if new.page_size == PageSize::Size2M
                && (cur.assigned != first.assigned || cur.asid != first.asid)
            {
                return Err(RmpError::FailOverlap);
            }
        }
        // A 4K update inside a 2M mapping needs PSMASH first.
        if new.page_size == PageSize::Size4K && first.page_size == PageSize::Size2M {
            return Err(RmpError::FailOverlap);
        }
        for i in 0..count {
            let entry = if new.assigned {
                RmpEntry {
                    assigned: true,
                    page_size: new.page_size,
                    immutable: new.immutable,
                    asid: new.asid,
                    gpa: new.gpa + i * PAGE_4K,
                    vmsa: false,
                    validated: false,
                    perms: [0xFF, 0, 0, 0],
                    metadata: false,
                }
            } else {
                RmpEntry::default()
            };
            self.set(spa + i * PAGE_4K, entry);
        }
        Ok(())
    }

    /// PSMASH: splits the 2 MiB entry at `spa` into 512 4 KiB entries.
    pub fn psmash(&mut self, spa: u64) -> Result<(), RmpError> {
        if !spa.is_multiple_of(PAGE_2M) || spa.checked_add(PAGE_2M).is_none() {
            return Err(RmpError::FailInput);
        }
        if self.entry(spa).page_size != PageSize::Size2M {
            return Err(RmpError::FailInput);
        }
        for i in 0..SUBPAGES {
            let mut e = self.entry(spa + i * PAGE_4K);
            e.page_size = PageSize::Size4K;
            self.set(spa + i * PAGE_4K, e);
        }
        Ok(())
    }

    /// Finds the system page a guest of `asid` has mapped at `gpa`.
    pub fn find_gpa(&self, asid: u32, gpa: u64) -> Option<u64> {
        let gpa = gpa & !(PAGE_4K - 1);
        self.entries
            .iter()
            .find(|(_, e)| e.assigned && e.asid == asid && asid != 0 && e.gpa == gpa)
            .map(|(pfn, _)| pfn * PAGE_4K)
    }

    /// PVALIDATE by the guest of `asid` for the page at `gpa`.
    pub fn pvalidate(
        &mut self,
        asid: u32,
        gpa: u64,
        page_size: PageSize,
        validate: bool,
    ) -> Result<PvalidateOutcome, RmpError> {
        if asid == 0 || !gpa.is_multiple_of(page_size.bytes()) {
            return Err(RmpError::FailInput);
        }
        let spa = self.find_gpa(asid, gpa).ok_or(RmpError::FailInput)?;
        let entry = self.entry(spa);
        if entry.immutable {
            return Err(RmpError::FailPermission);
        }
        if entry.page_size != page_size {
            return Err(RmpError::FailSizeMismatch);
        }
        let count = page_size.bytes() / PAGE_4K;
        let mut changed = false;
        for i in 0..count {
            let mut e = self.entry(spa + i * PAGE_4K);
            if !e.assigned || e.asid != asid || e.gpa != gpa + i * PAGE_4K {
                return Err(RmpError::FailInput);
            }
            if e.validated != validate {
                changed = true;
                e.validated = validate;
                self.set(spa + i * PAGE_4K, e);
            }
        }
        Ok(if changed {
            PvalidateOutcome::Changed
        } else {
            PvalidateOutcome::NoUpdate
        })
    }

    /// System addresses of the 4 KiB pages assigned to `asid`.
    pub fn pages_of(&self, asid: u32) -> Vec<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| e.assigned && e.asid == asid)
            .map(|(pfn, _)| pfn * PAGE_4K)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_transitions() {
        let mut rmp = Rmp::new();
        assert_eq!(rmp.state(0x1000), PageState::Hypervisor);
        let fw = RmpUpdate {
            assigned: true,
            immutable: true,
            ..RmpUpdate::default()
        };
        rmp.update(0x1000, &fw).unwrap();
        assert_eq!(rmp.state(0x1000), PageState::Firmware);
        assert_eq!(
            rmp.update(0x1000, &RmpUpdate::default()),
            Err(RmpError::FailPermission)
        );
        let pre = RmpUpdate {
            assigned: true,
            immutable: true,
            asid: 3,
            gpa: 0x5000,
            ..RmpUpdate::default()
        };
        rmp.update(0x2000, &pre).unwrap();
        assert_eq!(rmp.state(0x2000), PageState::PreGuest);
        assert_eq!(
            rmp.pvalidate(3, 0x5000, PageSize::Size4K, true),
            Err(RmpError::FailPermission)
        );
        let guest = RmpUpdate {
            immutable: false,
            ..pre
        };
        rmp.update(
            0x3000,
            &RmpUpdate {
                gpa: 0x6000,
                ..guest
            },
        )
        .unwrap();
        assert_eq!(rmp.state(0x3000), PageState::GuestInvalid);
        assert_eq!(
            rmp.pvalidate(3, 0x6000, PageSize::Size4K, true),
            Ok(PvalidateOutcome::Changed)
        );
        assert_eq!(rmp.state(0x3000), PageState::GuestValid);
        assert_eq!(
            rmp.pvalidate(3, 0x6000, PageSize::Size4K, true),
            Ok(PvalidateOutcome::NoUpdate)
        );
        assert_eq!(
            rmp.pvalidate(4, 0x6000, PageSize::Size4K, true),
            Err(RmpError::FailInput)
        );
        assert_eq!(
            rmp.pvalidate(3, 0x6000, PageSize::Size2M, true),
            Err(RmpError::FailInput)
        );
        // RMPUPDATE always clears validated.
        rmp.update(
            0x3000,
            &RmpUpdate {
                gpa: 0x6000,
                ..guest
            },
        )
        .unwrap();
        assert_eq!(rmp.state(0x3000), PageState::GuestInvalid);
        assert_eq!(rmp.update(0x3001, &guest), Err(RmpError::FailInput));
    }

    #[test]
    fn two_mib_and_psmash() {
        let mut rmp = Rmp::new();
        let big = RmpUpdate {
            assigned: true,
            asid: 1,
            gpa: PAGE_2M,
            page_size: PageSize::Size2M,
            ..RmpUpdate::default()
        };
        assert_eq!(rmp.update(0x1000, &big), Err(RmpError::FailInput));
        rmp.update(PAGE_2M * 4, &big).unwrap();
        assert_eq!(rmp.entry(PAGE_2M * 4 + 0x5000).gpa, PAGE_2M + 0x5000);
        assert_eq!(
            rmp.pvalidate(1, PAGE_2M + 0x1000, PageSize::Size4K, true),
            Err(RmpError::FailSizeMismatch)
        );
        assert_eq!(
            rmp.update(PAGE_2M * 4 + 0x1000, &RmpUpdate::default()),
            Err(RmpError::FailOverlap)
        );
        rmp.psmash(PAGE_2M * 4).unwrap();
        assert_eq!(
            rmp.pvalidate(1, PAGE_2M + 0x1000, PageSize::Size4K, true),
            Ok(PvalidateOutcome::Changed)
        );
        assert_eq!(rmp.pages_of(1).len(), 512);
        assert_eq!(rmp.psmash(PAGE_2M * 4), Err(RmpError::FailInput));
        assert_eq!(RmpError::FailSizeMismatch.code(), 6);
    }
}
