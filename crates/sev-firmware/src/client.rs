//! Clients of the AMD-SP, and what each one owns.
//!
//! On a real machine one AMD-SP serves one host, and the kernel ties every
//! guest to the VM file descriptor that created it. The software AMD-SP
//! may serve several hosts at once (the firmware daemon's connections),
//! each with its own system memory, so the firmware keeps the kernel's
//! rule itself: every command runs for a [`ClientId`]
//! ([`crate::Firmware::execute_for`]), and
//!
//! * a guest (SEV handle, SNP guest context) belongs to the client that
//!   created it: any other client naming it gets `INVALID_GUEST`, as if it
//!   did not exist;
//! * the RMP entries and SNP guest contexts of a client's memory are that
//!   client's: two clients' system addresses never meet (each has its own
//!   address space, as each brings its own memory);
//! * ASIDs are the platform's (one pool, as on hardware), but a guest's
//!   ASID is reachable only through the guest, so only its owner uses it;
//! * acting *as the guest* (its own memory view, PVALIDATE) takes the
//!   guest principal's token ([`sev_abi::host_ops::GuestAttachOp`]), not
//!   ownership: the host that owns a guest cannot read its private memory
//!   except through DBG_DECRYPT, which obeys the guest policy.
//!
//! In-process users that never name a client act as [`ClientId::LOCAL`].

/// Who issues a command to the AMD-SP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl ClientId {
    /// The client of [`crate::Firmware::execute`]: the in-process host.
    pub const LOCAL: Self = Self(0);
}

impl core::fmt::Display for ClientId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "client {}", self.0)
    }
}
