//! sevkit's host-instruction pseudo-commands.
//!
//! On hardware three things that are not AMD-SP commands decide what a
//! VMM and a guest can do with SNP memory: the host's RMPUPDATE and PSMASH
//! instructions, the guest's PVALIDATE, and the memory controller that
//! decrypts a guest's private pages for it (and only for it). The software
//! AMD-SP holds the RMP and the guests' keys, so it models them too, as
//! commands with ids in a range AMD does not use (`0x5E5E_0000..`). They
//! travel through the same seam as AMD's commands (in process, or over the
//! firmware socket), so a VMM driving a daemon can assign pages just as one
//! driving the in-process model.
//!
//! Each buffer has an `rc` output: the instruction's own result (0 or the
//! x86 return code, e.g. FAIL_PERMISSION = 2), while the command's status
//! is `SUCCESS` whenever the buffer was well formed and the instruction
//! ran. Real hardware has no such commands: [`crate::commands`] holds
//! AMD's.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::commands::buffer;

/// The first id of the pseudo-command range.
pub const HOST_OP_BASE: u32 = 0x5E5E_0000;

/// A host-instruction pseudo-command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HostOp {
    /// RMPUPDATE ([`RmpUpdateOp`]).
    RmpUpdate = HOST_OP_BASE + 1,
    /// PSMASH ([`PsmashOp`]).
    Psmash = HOST_OP_BASE + 2,
    /// PVALIDATE as the guest on an ASID executes it ([`PvalidateOp`]).
    Pvalidate = HOST_OP_BASE + 3,
    /// A guest's own memory access through the memory controller
    /// ([`GuestAccessOp`]).
    GuestAccess = HOST_OP_BASE + 4,
    /// Mints the capability of a guest's own principal ([`GuestAttachOp`]),
    /// which [`Self::GuestAccess`] and [`Self::Pvalidate`] require.
    GuestAttach = HOST_OP_BASE + 5,
}

impl HostOp {
    /// Every pseudo-command.
    pub const ALL: &'static [Self] = &[
        Self::RmpUpdate,
        Self::Psmash,
        Self::Pvalidate,
        Self::GuestAccess,
        Self::GuestAttach,
    ];

    /// The command id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The pseudo-command with id `id`.
    pub fn from_u32(id: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|op| op.id() == id)
    }

    /// Its name, in the style of AMD's command names.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RmpUpdate => "SEVKIT_RMPUPDATE",
            Self::Psmash => "SEVKIT_PSMASH",
            Self::Pvalidate => "SEVKIT_PVALIDATE",
            Self::GuestAccess => "SEVKIT_GUEST_ACCESS",
            Self::GuestAttach => "SEVKIT_GUEST_ATTACH",
        }
    }
}

/// [`RmpUpdateOp::flags`]: assign the page.
pub const RMP_ASSIGNED: u32 = 1 << 0;
/// [`RmpUpdateOp::flags`] / [`PvalidateOp::flags`]: a 2 MiB page.
pub const RMP_PAGE_2M: u32 = 1 << 1;
/// [`RmpUpdateOp::flags`]: make the entry immutable.
pub const RMP_IMMUTABLE: u32 = 1 << 2;
/// [`PvalidateOp::flags`]: validate (clear: rescind).
pub const PVALIDATE_VALIDATE: u32 = 1 << 0;
/// [`PvalidateOp::no_update`]: the validated bit already had that value.
pub const PVALIDATE_NO_UPDATE: u32 = 1;
/// [`GuestAccessOp::flags`]: write (clear: read).
pub const GUEST_ACCESS_WRITE: u32 = 1 << 0;
/// [`GuestAccessOp::flags`]: the guest's mapping has the C-bit set (a
/// private access, encrypted with the guest's key).
pub const GUEST_ACCESS_PRIVATE: u32 = 1 << 1;
/// [`GuestAccessOp::rc`]: the access faulted in the RMP check (#NPF with
/// the RMP bit: page not assigned to this guest at this GPA, or a shared
/// access to a guest-owned page).
pub const GUEST_ACCESS_RMP_FAULT: u32 = 1;
/// [`GuestAccessOp::rc`]: a private access to a page the guest has not
/// validated (#VC 0x404, "page not validated").
pub const GUEST_ACCESS_NOT_VALIDATED: u32 = 2;
/// [`GuestAccessOp::rc`] / [`PvalidateOp::rc`]: the guest holding the
/// token runs on no ASID (not activated, or deactivated).
pub const GUEST_ACCESS_NO_GUEST: u32 = 3;
/// [`GuestAttachOp::rc`]: the guest's principal was minted before; a guest
/// has one, and only the first attach gets it.
pub const GUEST_ATTACH_TAKEN: u32 = 1;
/// Length of a guest principal's token.
pub const GUEST_TOKEN_LEN: usize = 32;
/// Largest [`GuestAccessOp::len`].
pub const GUEST_ACCESS_MAX_LEN: u32 = 1 << 20;

buffer! {
    /// RMPUPDATE of the 4 KiB or 2 MiB page at `spa` (Linux `struct rmp_state`
    /// as fields).
    RmpUpdateOp = 0x20 {
        /// System physical address of the page.
        spa: U64,
        /// Guest physical address it is assigned at (when assigned).
        gpa: U64,
        /// Owning ASID (0 with assigned and immutable: a firmware page).
        asid: U32,
        /// [`RMP_ASSIGNED`], [`RMP_PAGE_2M`], [`RMP_IMMUTABLE`].
        flags: U32,
        /// Out: 0, or the x86 return code (FAIL_INPUT 1, FAIL_PERMISSION 2, ...).
        rc: U32,
        /// Zero.
        reserved: U32,
    }
}

buffer! {
    /// PSMASH of the 2 MiB page at `spa`.
    PsmashOp = 0x10 {
        /// System physical address of the 2 MiB page.
        spa: U64,
        /// Out: 0, or the x86 return code.
        rc: U32,
        /// Zero.
        reserved: U32,
    }
}

buffer! {
    /// PVALIDATE by the guest whose principal holds `token` (a guest
    /// instruction: the host cannot issue it, see [`GuestAttachOp`]).
    PvalidateOp = 0x38 {
        /// The guest principal's token ([`GuestAttachOp::token`]).
        token: [u8; GUEST_TOKEN_LEN],
        /// Guest physical address of the page.
        gpa: U64,
        /// [`PVALIDATE_VALIDATE`], [`RMP_PAGE_2M`].
        flags: U32,
        /// Out: 0, [`GUEST_ACCESS_NO_GUEST`], or the x86 return code.
        rc: U32,
        /// Out: [`PVALIDATE_NO_UPDATE`] when nothing changed (CF=1), else 0.
        no_update: U32,
        /// Zero.
        reserved: U32,
    }
}

buffer! {
    /// A guest's own access to `len` bytes at `spa` (its GPA `gpa` after
    /// nested translation), moving the plaintext to or from the host page at
    /// `host_paddr`. It hands out what the guest sees, so it takes the
    /// guest principal's token ([`GuestAttachOp`]); the host's own reads of
    /// guest memory go through DBG_DECRYPT / SNP_DBG_DECRYPT, which obey the
    /// guest policy.
    GuestAccessOp = 0x48 {
        /// The guest principal's token ([`GuestAttachOp::token`]).
        token: [u8; GUEST_TOKEN_LEN],
        /// System physical address accessed.
        spa: U64,
        /// The guest physical address of `spa` (SNP's RMP check compares it).
        gpa: U64,
        /// Where the plaintext is put (read) or taken from (write).
        host_paddr: U64,
        /// Bytes (at most [`GUEST_ACCESS_MAX_LEN`]; may cross pages).
        len: U32,
        /// [`GUEST_ACCESS_WRITE`], [`GUEST_ACCESS_PRIVATE`].
        flags: U32,
        /// Out: 0, or [`GUEST_ACCESS_RMP_FAULT`], [`GUEST_ACCESS_NOT_VALIDATED`],
        /// [`GUEST_ACCESS_NO_GUEST`].
        rc: U32,
        /// Zero.
        reserved: U32,
    }
}

buffer! {
    /// Mints the token of a guest's own principal: the capability to act as
    /// the guest ([`GuestAccessOp`], [`PvalidateOp`]), as on hardware only
    /// code running in the guest can. Each guest has one; the first attach
    /// gets it (the VMM's vCPU backend, at launch), a later one gets
    /// [`GUEST_ATTACH_TAKEN`]. The guest must belong to the caller (another
    /// client's guest: INVALID_GUEST).
    GuestAttachOp = 0x30 {
        /// SNP: the guest context page (0 for an SEV / SEV-ES guest).
        gctx_paddr: U64,
        /// SEV / SEV-ES: the guest handle (0 for an SNP guest).
        handle: U32,
        /// Out: 0, or [`GUEST_ATTACH_TAKEN`].
        rc: U32,
        /// Out: the token (zero unless `rc` is 0).
        token: [u8; GUEST_TOKEN_LEN],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn ids_are_outside_amds_ranges() {
        for op in HostOp::ALL {
            assert_eq!(HostOp::from_u32(op.id()), Some(*op));
            assert!(crate::commands::command_name(op.id()).is_none_or(|n| n == op.name()));
            assert!(crate::commands::SevCommand::from_u32(op.id()).is_none());
            assert!(crate::commands::SnpCommand::from_u32(op.id()).is_none());
        }
        assert_eq!(HostOp::from_u32(HOST_OP_BASE), None);
        assert_eq!(HostOp::GuestAccess.name(), "SEVKIT_GUEST_ACCESS");
        assert_eq!(HostOp::GuestAttach.id(), 0x5E5E_0005);
    }

    #[test]
    fn layouts() {
        assert_eq!(offset_of!(RmpUpdateOp, asid), 16);
        assert_eq!(offset_of!(RmpUpdateOp, rc), 24);
        assert_eq!(offset_of!(PvalidateOp, gpa), 32);
        assert_eq!(offset_of!(PvalidateOp, rc), 44);
        assert_eq!(offset_of!(GuestAccessOp, spa), 32);
        assert_eq!(offset_of!(GuestAccessOp, len), 56);
        assert_eq!(offset_of!(GuestAccessOp, rc), 64);
        assert_eq!(offset_of!(GuestAttachOp, rc), 12);
        assert_eq!(offset_of!(GuestAttachOp, token), 16);
    }
}
