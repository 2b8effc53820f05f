//! The guest: which firmware guest a VM is ([`FirmwareGuest`], as every
//! host-side feature that talks to the AMD-SP about it needs to know), and
//! the guest's own actions ([`simulated`]: today a model of the guest, since
//! no vCPUs run; a vCPU backend would act for itself).

use sev_abi::policy::{GuestPolicy, SnpPolicy};

pub mod simulated;

pub use simulated::{GuestReport, SimulatedGuest};

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
