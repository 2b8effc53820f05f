//! The SNP platform (reference §2.2, §2.4): state, TCB versions, SNP_CONFIG
//! mask bits, the emulated product.

use std::collections::BTreeMap;

use sev_abi::product::{Product, TcbVersion};

use super::rmp::Rmp;
use super::GuestContext;

/// SNP platform states (reference §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SnpPlatformState {
    /// SNP not initialized (the RMP is not in force).
    Uninit = 0,
    /// SNP_INIT done.
    Init = 1,
}

impl SnpPlatformState {
    /// AMD's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uninit => "UNINIT",
            Self::Init => "INIT",
        }
    }
}

/// The C-bit position (CPUID 0x8000_001F EBX bits 5:0) of a product: 51 on the
/// SNP generations (Milan, Genoa, Turin), 47 on Naples and Rome.
pub fn c_bit_position(product: Product) -> u8 {
    match product {
        Product::Naples | Product::Rome => 47,
        Product::Milan | Product::Genoa | Product::Turin => 51,
    }
}

/// CPUID Fn0000_0001_EAX (family/model/stepping) the model reports for a
/// product: Milan B1 (19h/01h), Genoa B1 (19h/11h), Turin C1 (1Ah/02h).
pub fn default_fms(product: Product) -> u32 {
    match product {
        Product::Naples => 0x0080_0F12,
        Product::Rome => 0x0083_0F10,
        Product::Milan => 0x00A0_0F11,
        Product::Genoa => 0x00A1_0F11,
        Product::Turin => 0x00B0_0F21,
    }
}

/// A plausible current TCB of a product, in its layout: Milan/Genoa
/// `bl 7, tee 0, snp 14/22, ucode 0xD1/0x54`, Turin `fmc 1, bl 1, tee 1,
/// snp 1, ucode 0x44`.
pub fn default_tcb(product: Product) -> TcbVersion {
    match product {
        Product::Turin => TcbVersion::from_le_bytes([1, 1, 1, 1, 0, 0, 0, 0x44]),
        Product::Milan => TcbVersion::from_le_bytes([3, 0, 0, 0, 0, 0, 0x14, 0xD1]),
        _ => TcbVersion::from_le_bytes([7, 0, 0, 0, 0, 0, 0x16, 0x54]),
    }
}

/// The secrets page's TSC_FACTOR (§2.8): Genoa `(100000 - 99600) / 2 = 200`;
/// the model uses it for every product.
pub const TSC_FACTOR: u32 = 200;

/// Secure TSC reference clock in kHz (Genoa `REF_CLK_GENOA`).
pub const TSC_REF_KHZ: u64 = 99_800;

/// The firmware constant selecting which VMSA quadwords VMSA register
/// protection tweaks (§3.3); copied into every secrets page.
pub const VMSA_TWEAK_BITMAP: [u8; 64] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x88, 0x00, 0x00, 0x00, 0x00, 0xEE, 0xFF, 0x00, 0x00,
    0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00,
];

/// The SNP half of the firmware's state.
pub(crate) struct SnpPlatform {
    pub(crate) state: SnpPlatformState,
    pub(crate) product: Product,
    pub(crate) fms: u32,
    pub(crate) current_tcb: TcbVersion,
    pub(crate) reported_tcb: TcbVersion,
    pub(crate) committed_tcb: TcbVersion,
    pub(crate) mask_chip_id: bool,
    pub(crate) mask_chip_key: bool,
    pub(crate) rapl_dis: bool,
    /// Highest SNP ASID (SNP_INIT_EX `max_snp_asid`; 0: the SEV-ES range).
    pub(crate) max_snp_asid: u32,
    pub(crate) rmp: Rmp,
    /// Guest contexts by the system physical address of their page.
    pub(crate) guests: BTreeMap<u64, GuestContext>,
    /// ASIDs bound to SNP guests, and ASIDs awaiting SNP_DF_FLUSH.
    pub(crate) bound_asids: BTreeMap<u32, u64>,
    pub(crate) dirty_asids: std::collections::BTreeSet<u32>,
}

impl SnpPlatform {
    pub(crate) fn new(product: Product, tcb: Option<TcbVersion>) -> Self {
        let tcb = tcb.unwrap_or_else(|| default_tcb(product));
        Self {
            state: SnpPlatformState::Uninit,
            product,
            fms: default_fms(product),
            current_tcb: tcb,
            reported_tcb: tcb,
            committed_tcb: tcb,
            mask_chip_id: false,
            mask_chip_key: false,
            rapl_dis: false,
            max_snp_asid: 0,
            rmp: Rmp::new(),
            guests: BTreeMap::new(),
            bound_asids: BTreeMap::new(),
            dirty_asids: std::collections::BTreeSet::new(),
        }
    }

    /// SNP_SHUTDOWN: every guest gone, the RMP no longer in force.
    pub(crate) fn shutdown(&mut self) {
        self.guests.clear();
        self.rmp.clear();
        self.bound_asids.clear();
        self.dirty_asids.clear();
        self.mask_chip_id = false;
        self.mask_chip_key = false;
        self.rapl_dis = false;
        self.max_snp_asid = 0;
        self.reported_tcb = self.current_tcb;
        self.state = SnpPlatformState::Uninit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_constants() {
        assert_eq!(c_bit_position(Product::Genoa), 51);
        assert_eq!(c_bit_position(Product::Rome), 47);
        for p in [Product::Milan, Product::Genoa, Product::Turin] {
            let fms = default_fms(p);
            let family = ((fms >> 8) & 0xF) + ((fms >> 20) & 0xFF);
            let model = ((fms >> 4) & 0xF) | ((fms >> 12) & 0xF0);
            assert_eq!(
                Product::from_cpuid(family as u8, model as u8),
                Some(p),
                "{p}"
            );
            assert!(default_tcb(p).reserved_bytes_zero(p.tcb_layout()));
        }
    }
}
