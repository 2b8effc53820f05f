//! The SNP platform (reference §2.2, §2.4): state, TCB versions, SNP_CONFIG
//! mask bits, the emulated product, and what of it persists (`snp.sevfw`).

use std::collections::BTreeMap;

use sev_abi::product::{Product, TcbVersion};

use super::rmp::Rmp;
use super::GuestContext;
use crate::client::ClientId;

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

/// The C-bit position of a product ([`Product::c_bit_position`]).
pub fn c_bit_position(product: Product) -> u8 {
    product.c_bit_position()
}

/// The family/model/stepping the model reports for a product
/// ([`Product::default_fms`]).
pub fn default_fms(product: Product) -> u32 {
    product.default_fms()
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

/// True when every byte (component) of `a` is at most the same byte of `b`:
/// the order of TCB versions (SNP_CONFIG's "reported ≤ current", the
/// anti-rollback "committed ≤ current").
pub(crate) fn tcb_le(a: TcbVersion, b: TcbVersion) -> bool {
    a.to_le_bytes()
        .iter()
        .zip(b.to_le_bytes())
        .all(|(x, y)| *x <= y)
}

/// What SNP_CONFIG sets: the TCB reports carry and VCEKs are derived for,
/// and the two mask bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnpConfig {
    /// REPORTED_TCB (never above the current TCB in any component).
    pub reported_tcb: TcbVersion,
    /// MASK_CHIP_ID: reports carry a zero chip id.
    pub mask_chip_id: bool,
    /// MASK_CHIP_KEY: the VCEK may not sign or derive keys.
    pub mask_chip_key: bool,
}

/// The SNP state that survives a restart of the firmware (the `snp.sevfw`
/// state file, [`crate::store::StateKind::Snp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SnpPersisted {
    /// The TCB SNP_COMMIT committed; `None` until an SNP_COMMIT ran (the
    /// committed TCB is then the current one, and binds nothing).
    pub(crate) committed_tcb: Option<TcbVersion>,
    /// The configuration SNP_CONFIG set; `None` when none is in force
    /// (never set, or reset by SNP_SHUTDOWN).
    pub(crate) config: Option<SnpConfig>,
}

/// Length of the `snp.sevfw` payload.
pub(crate) const SNP_STATE_LEN: usize = 0x58;
const FLAG_COMMITTED: u32 = 1 << 0;
const FLAG_CONFIG: u32 = 1 << 1;
const FLAG_MASK_CHIP_ID: u32 = 1 << 2;
const FLAG_MASK_CHIP_KEY: u32 = 1 << 3;

/// The product code of the `snp.sevfw` payload.
fn product_code(product: Product) -> u32 {
    match product {
        Product::Naples => 1,
        Product::Rome => 2,
        Product::Milan => 3,
        Product::Genoa => 4,
        Product::Turin => 5,
    }
}

fn product_of_code(code: u32) -> Option<Product> {
    Product::ALL
        .iter()
        .copied()
        .find(|p| product_code(*p) == code)
}

impl SnpPersisted {
    /// The `snp.sevfw` payload (0x58 bytes, little-endian):
    ///
    /// ```text
    /// 0x00 u8[64] chip_id        GET_ID of the chip the state belongs to
    /// 0x40 u32    product        3 Milan, 4 Genoa, 5 Turin
    /// 0x44 u32    flags          bit 0 COMMITTED, bit 1 CONFIG, bit 2 MASK_CHIP_ID,
    ///                            bit 3 MASK_CHIP_KEY (bits 2-3 only with CONFIG);
    ///                            other bits zero
    /// 0x48 u64    committed_tcb  0 without COMMITTED
    /// 0x50 u64    reported_tcb   0 without CONFIG
    /// ```
    pub(crate) fn to_payload(self, chip_id: &[u8; 64], product: Product) -> Vec<u8> {
        let mut flags = 0;
        if self.committed_tcb.is_some() {
            flags |= FLAG_COMMITTED;
        }
        if let Some(c) = self.config {
            flags |= FLAG_CONFIG;
            if c.mask_chip_id {
                flags |= FLAG_MASK_CHIP_ID;
            }
            if c.mask_chip_key {
                flags |= FLAG_MASK_CHIP_KEY;
            }
        }
        let mut out = Vec::with_capacity(SNP_STATE_LEN);
        out.extend_from_slice(chip_id);
        out.extend_from_slice(&product_code(product).to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&self.committed_tcb.map_or(0, TcbVersion::raw).to_le_bytes());
        let reported = self.config.map_or(0, |c| c.reported_tcb.raw());
        out.extend_from_slice(&reported.to_le_bytes());
        out
    }

    /// Decodes a `snp.sevfw` payload: the state, the chip id and the product
    /// it was written for. Every field is checked (length, product, flag
    /// bits, zero values where absent, reserved TCB bytes).
    pub(crate) fn from_payload(payload: &[u8]) -> Result<(Self, [u8; 64], Product), String> {
        if payload.len() != SNP_STATE_LEN {
            return Err(format!(
                "SNP state is {} bytes, expected {SNP_STATE_LEN}",
                payload.len()
            ));
        }
        let word = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&payload[at..at + 4]);
            u32::from_le_bytes(b)
        };
        let quad = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[at..at + 8]);
            TcbVersion::from_le_bytes(b)
        };
        let mut chip_id = [0u8; 64];
        chip_id.copy_from_slice(&payload[..0x40]);
        let code = word(0x40);
        let product = product_of_code(code)
            .filter(|p| p.is_snp_capable())
            .ok_or_else(|| format!("unknown SNP product code {code}"))?;
        let flags = word(0x44);
        let known = FLAG_COMMITTED | FLAG_CONFIG | FLAG_MASK_CHIP_ID | FLAG_MASK_CHIP_KEY;
        if flags & !known != 0 {
            return Err(format!("unknown SNP state flags {flags:#x}"));
        }
        if flags & FLAG_CONFIG == 0 && flags & (FLAG_MASK_CHIP_ID | FLAG_MASK_CHIP_KEY) != 0 {
            return Err("mask bits without an SNP_CONFIG".into());
        }
        let layout = product.tcb_layout();
        let (committed, reported) = (quad(0x48), quad(0x50));
        let committed_tcb = if flags & FLAG_COMMITTED != 0 {
            Some(committed)
        } else if committed.raw() != 0 {
            return Err("a committed TCB without the COMMITTED flag".into());
        } else {
            None
        };
        let config = if flags & FLAG_CONFIG != 0 {
            Some(SnpConfig {
                reported_tcb: reported,
                mask_chip_id: flags & FLAG_MASK_CHIP_ID != 0,
                mask_chip_key: flags & FLAG_MASK_CHIP_KEY != 0,
            })
        } else if reported.raw() != 0 {
            return Err("a reported TCB without the CONFIG flag".into());
        } else {
            None
        };
        for tcb in [committed, reported] {
            if !tcb.reserved_bytes_zero(layout) {
                return Err(format!("TCB {tcb} has reserved bytes set for {product}"));
            }
        }
        Ok((
            Self {
                committed_tcb,
                config,
            },
            chip_id,
            product,
        ))
    }
}

/// The SNP half of the firmware's state.
pub(crate) struct SnpPlatform {
    pub(crate) state: SnpPlatformState,
    pub(crate) product: Product,
    pub(crate) fms: u32,
    pub(crate) current_tcb: TcbVersion,
    /// The committed TCB: the one SNP_COMMIT recorded (now or, with a state
    /// directory, in an earlier run), else the current one.
    pub(crate) committed_tcb: TcbVersion,
    /// An SNP_COMMIT recorded `committed_tcb` (it persists, and binds the
    /// current TCB of later runs).
    pub(crate) commit_recorded: bool,
    /// SNP_CONFIG in force, if any.
    pub(crate) config: Option<SnpConfig>,
    pub(crate) rapl_dis: bool,
    /// Highest SNP ASID (SNP_INIT_EX `max_snp_asid`; 0: the SEV-ES range).
    pub(crate) max_snp_asid: u32,
    /// The RMP of the active client's memory.
    pub(crate) rmp: Rmp,
    /// The active client's guest contexts, by the system physical address
    /// of their page.
    pub(crate) guests: BTreeMap<u64, GuestContext>,
    /// The client whose RMP and guests are in `rmp` and `guests`.
    pub(crate) active: ClientId,
    /// Every other client's RMP and guests (see [`crate::client`]).
    pub(crate) parked: BTreeMap<ClientId, ClientSpace>,
    /// ASIDs bound to SNP guests (the owning client and the guest context),
    /// and ASIDs awaiting SNP_DF_FLUSH.
    pub(crate) bound_asids: BTreeMap<u32, (ClientId, u64)>,
    pub(crate) dirty_asids: std::collections::BTreeSet<u32>,
    /// The page buffer SNP_LAUNCH_UPDATE of NORMAL pages reuses (it holds
    /// host-supplied plaintext and ciphertext only; see `UpdateBuffer`).
    pub(crate) normal_pages: Vec<u8>,
}

impl SnpPlatform {
    /// A platform running `tcb` (the product's default when `None`), with
    /// the persistent state `saved` (checked by the caller against `tcb`).
    pub(crate) fn new(product: Product, tcb: Option<TcbVersion>, saved: SnpPersisted) -> Self {
        let tcb = tcb.unwrap_or_else(|| default_tcb(product));
        Self {
            state: SnpPlatformState::Uninit,
            product,
            fms: default_fms(product),
            current_tcb: tcb,
            committed_tcb: saved.committed_tcb.unwrap_or(tcb),
            commit_recorded: saved.committed_tcb.is_some(),
            config: saved.config,
            rapl_dis: false,
            max_snp_asid: 0,
            rmp: Rmp::new(),
            guests: BTreeMap::new(),
            active: ClientId::LOCAL,
            parked: BTreeMap::new(),
            bound_asids: BTreeMap::new(),
            dirty_asids: std::collections::BTreeSet::new(),
            normal_pages: Vec::new(),
        }
    }

    /// REPORTED_TCB: the SNP_CONFIG value if one is in force, else the
    /// committed TCB (reference §2.10).
    pub(crate) fn reported_tcb(&self) -> TcbVersion {
        self.config.map_or(self.committed_tcb, |c| c.reported_tcb)
    }

    /// SNP_CONFIG MASK_CHIP_ID.
    pub(crate) fn mask_chip_id(&self) -> bool {
        self.config.is_some_and(|c| c.mask_chip_id)
    }

    /// SNP_CONFIG MASK_CHIP_KEY.
    pub(crate) fn mask_chip_key(&self) -> bool {
        self.config.is_some_and(|c| c.mask_chip_key)
    }

    /// What of this platform persists.
    pub(crate) fn persisted(&self) -> SnpPersisted {
        SnpPersisted {
            committed_tcb: self.commit_recorded.then_some(self.committed_tcb),
            config: self.config,
        }
    }

    /// SNP_SHUTDOWN: every guest gone, the RMP no longer in force, the
    /// SNP_CONFIG reset (the caller has persisted the reset).
    pub(crate) fn shutdown(&mut self) {
        self.guests.clear();
        self.rmp.clear();
        self.parked.clear();
        self.bound_asids.clear();
        self.dirty_asids.clear();
        self.config = None;
        self.rapl_dis = false;
        self.max_snp_asid = 0;
        self.state = SnpPlatformState::Uninit;
    }
}

/// One client's share of the SNP platform while another client is active.
#[derive(Default)]
pub(crate) struct ClientSpace {
    pub(crate) rmp: Rmp,
    pub(crate) guests: BTreeMap<u64, GuestContext>,
}

impl SnpPlatform {
    /// Makes `client`'s RMP and guests the active ones, parking the
    /// current client's (moves, no copies).
    pub(crate) fn switch_to(&mut self, client: ClientId) {
        if client == self.active {
            return;
        }
        let current = ClientSpace {
            rmp: std::mem::take(&mut self.rmp),
            guests: std::mem::take(&mut self.guests),
        };
        if !current.rmp.is_empty() || !current.guests.is_empty() {
            self.parked.insert(self.active, current);
        }
        let next = self.parked.remove(&client).unwrap_or_default();
        self.rmp = next.rmp;
        self.guests = next.guests;
        self.active = client;
    }

    /// Every client's guests (for platform-wide counts).
    pub(crate) fn all_guests(&self) -> impl Iterator<Item = &GuestContext> {
        self.guests
            .values()
            .chain(self.parked.values().flat_map(|s| s.guests.values()))
    }

    /// Drops `client`'s RMP and guests (its memory is gone): their ASIDs
    /// need SNP_DF_FLUSH before reuse, as after SNP_DECOMMISSION.
    pub(crate) fn release(&mut self, client: ClientId) {
        let space = if client == self.active {
            ClientSpace {
                rmp: std::mem::take(&mut self.rmp),
                guests: std::mem::take(&mut self.guests),
            }
        } else {
            self.parked.remove(&client).unwrap_or_default()
        };
        for ctx in space.guests.values().filter(|g| g.activated) {
            self.bound_asids.remove(&ctx.asid);
            self.dirty_asids.insert(ctx.asid);
        }
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

    #[test]
    fn persisted_state_round_trips_and_refuses_nonsense() {
        let id = [9u8; 64];
        let tcb = default_tcb(Product::Genoa);
        for saved in [
            SnpPersisted::default(),
            SnpPersisted {
                committed_tcb: Some(tcb),
                config: None,
            },
            SnpPersisted {
                committed_tcb: None,
                config: Some(SnpConfig {
                    reported_tcb: tcb,
                    mask_chip_id: true,
                    mask_chip_key: false,
                }),
            },
            SnpPersisted {
                committed_tcb: Some(tcb),
                config: Some(SnpConfig {
                    reported_tcb: TcbVersion::new(0),
                    mask_chip_id: false,
                    mask_chip_key: true,
                }),
            },
        ] {
            let payload = saved.to_payload(&id, Product::Genoa);
            assert_eq!(payload.len(), SNP_STATE_LEN);
            assert_eq!(
                SnpPersisted::from_payload(&payload).unwrap(),
                (saved, id, Product::Genoa)
            );
        }
        let good = SnpPersisted {
            committed_tcb: Some(default_tcb(Product::Turin)),
            config: None,
        }
        .to_payload(&id, Product::Turin);
        assert_eq!(SnpPersisted::from_payload(&good).unwrap().2, Product::Turin);
        let bad = |at: usize, value: u8| {
            let mut b = good.clone();
            b[at] = value;
            SnpPersisted::from_payload(&b).unwrap_err()
        };
        assert!(bad(0x40, 2).contains("product")); // Rome: no SNP
        assert!(bad(0x40, 9).contains("product"));
        assert!(bad(0x44, 0x10).contains("flags"));
        assert!(bad(0x44, 0x05).contains("mask bits"));
        assert!(bad(0x44, 0x00).contains("COMMITTED"));
        assert!(bad(0x50, 1).contains("CONFIG"));
        assert!(bad(0x48 + 5, 1).contains("reserved")); // Turin byte 5
        assert!(SnpPersisted::from_payload(&good[..SNP_STATE_LEN - 1]).is_err());
        assert!(tcb_le(TcbVersion::new(0x0101), TcbVersion::new(0x0102)));
        assert!(!tcb_le(TcbVersion::new(0x0201), TcbVersion::new(0x0102)));
    }
}
