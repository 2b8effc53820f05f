//! The guest: which firmware guest a VM is ([`FirmwareGuest`], as every
//! host-side feature that talks to the AMD-SP about it needs to know), and
//! the guest's own actions behind one trait, [`GuestActions`]: today
//! [`SimulatedGuest`], a model of the guest (no vCPUs run); a vCPU backend
//! running real guest code implements the same trait, and the guest-side
//! interfaces (`/dev/sev-guest`, configfs-tsm) call it.

use sev_abi::policy::{GuestPolicy, SnpPolicy};

use crate::exits::certs::provider::CertsProvider;
use crate::exits::guest_request::GuestRequestError;
use crate::host::{Host, HostError};

pub mod simulated;

pub use simulated::{GuestReport, SimulatedGuest};

/// What a running guest does for itself, as its kernel's drivers would:
/// the calls that need the guest principal (its view of its own memory, its
/// VMPCK channel to the AMD-SP) and so are not host operations.
///
/// The host passes itself in: the guest reaches memory and the AMD-SP
/// through the VMM's exits, as a real guest does.
pub trait GuestActions: Send + core::fmt::Debug {
    /// What the guest reads at `gpa`: a private access, so its own
    /// plaintext (or its shared pages as they are).
    ///
    /// # Errors
    /// The range is not guest memory, or the firmware refuses the access.
    fn read(&mut self, host: &mut Host, gpa: u64, len: usize) -> Result<Vec<u8>, HostError>;

    /// SNP_GET_EXT_REPORT: the guest asks the AMD-SP for a report carrying
    /// `report_data`, and the host for its certificates through the
    /// certificate exit (`certs`), offering `certs_pages` pages first
    /// (default 1) and retrying with what the host says it needs.
    ///
    /// # Errors
    /// Not an SNP guest, the host cannot supply certificates, the firmware
    /// refuses the request, or the guest refuses the response.
    fn extended_report(
        &mut self,
        host: &mut Host,
        certs: &CertsProvider,
        report_data: [u8; 64],
        certs_pages: Option<u64>,
    ) -> Result<GuestReport, GuestRequestError>;
}

/// A guest's firmware context: the legacy handle or the SNP guest-context
/// page, with the ASID it runs on and the owner's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirmwareGuest {
    /// An SEV or SEV-ES guest.
    Legacy {
        /// The firmware's guest handle.
        handle: u32,
        /// The ASID the guest is activated on.
        asid: u32,
        /// The guest policy given at LAUNCH_START.
        policy: GuestPolicy,
    },
    /// An SEV-SNP guest.
    Snp {
        /// System address of the guest-context page.
        gctx_paddr: u64,
        /// The ASID the guest is activated on.
        asid: u32,
        /// The guest policy given at SNP_LAUNCH_START.
        policy: SnpPolicy,
    },
}

impl FirmwareGuest {
    /// Whether the owner's policy lets the host use the debug commands
    /// (legacy: NODBG clear; SNP: DEBUG set).
    pub fn debug_allowed(&self) -> bool {
        match self {
            Self::Legacy { policy, .. } => !policy.nodbg(),
            Self::Snp { policy, .. } => policy.debug(),
        }
    }

    /// The guest's ASID.
    pub fn asid(&self) -> u32 {
        match self {
            Self::Legacy { asid, .. } | Self::Snp { asid, .. } => *asid,
        }
    }

    /// Whether this is an SNP guest.
    pub fn is_snp(&self) -> bool {
        matches!(self, Self::Snp { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_follows_each_policy_kind() {
        let legacy = |raw| FirmwareGuest::Legacy {
            handle: 1,
            asid: 1,
            policy: GuestPolicy::from_raw(raw),
        };
        assert!(legacy(0).debug_allowed());
        assert!(!legacy(GuestPolicy::NODBG).debug_allowed());
        let snp = |raw| FirmwareGuest::Snp {
            gctx_paddr: 0x1000,
            asid: 2,
            policy: SnpPolicy::from_raw(raw),
        };
        assert!(!snp(0x30000).debug_allowed());
        assert!(snp(0x30000 | SnpPolicy::DEBUG).debug_allowed());
        assert!(snp(0).is_snp() && !legacy(0).is_snp());
        assert_eq!(snp(0).asid(), 2);
    }
}
