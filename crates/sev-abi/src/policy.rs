//! Guest policies: the 32-bit legacy SEV / SEV-ES policy (reference §1.3) and
//! the 64-bit SEV-SNP policy (reference §2.3).
//!
//! Both are thin newtypes over the raw integer: any value can be held and
//! round-trips unchanged; [`GuestPolicy::validate`] and
//! [`SnpPolicy::validate`] apply the firmware's reserved-bit rules.

use core::fmt;

use crate::error::{AbiError, Result};

/// Sets or clears `mask` in `raw`.
const fn with_bit32(raw: u32, mask: u32, on: bool) -> u32 {
    if on {
        raw | mask
    } else {
        raw & !mask
    }
}

/// Sets or clears `mask` in `raw`.
const fn with_bit64(raw: u64, mask: u64, on: bool) -> u64 {
    if on {
        raw | mask
    } else {
        raw & !mask
    }
}

// ---------------------------------------------------------------------------
// Legacy SEV policy
// ---------------------------------------------------------------------------

/// The legacy SEV / SEV-ES guest policy (32 bits, reference §1.3).
///
/// | Bits  | Field     |
/// |-------|-----------|
/// | 0     | NODBG     |
/// | 1     | NOKS      |
/// | 2     | ES        |
/// | 3     | NOSEND    |
/// | 4     | DOMAIN    |
/// | 5     | SEV       |
/// | 15:6  | reserved, must be 0 |
/// | 23:16 | API_MAJOR (minimum firmware API major) |
/// | 31:24 | API_MINOR (minimum firmware API minor) |
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GuestPolicy(u32);

impl GuestPolicy {
    /// Bit 0: debugging (DBG_DECRYPT / DBG_ENCRYPT) is forbidden.
    pub const NODBG: u32 = 1 << 0;
    /// Bit 1: key sharing with other guests is forbidden.
    pub const NOKS: u32 = 1 << 1;
    /// Bit 2: the guest is an SEV-ES guest.
    pub const ES: u32 = 1 << 2;
    /// Bit 3: sending the guest to another platform is forbidden.
    pub const NOSEND: u32 = 1 << 3;
    /// Bit 4: the guest may only be sent to a platform in the same domain (same OCA).
    pub const DOMAIN: u32 = 1 << 4;
    /// Bit 5: the guest may only be sent to a platform with a valid AMD chain.
    pub const SEV: u32 = 1 << 5;
    /// Bits 15:6, reserved; the firmware rejects a policy with any of them set.
    pub const RESERVED_MASK: u32 = 0x0000_FFC0;

    /// Wraps a raw policy value (no checks; see [`GuestPolicy::validate`]).
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw 32-bit policy.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Starts a builder from the all-zero policy.
    pub const fn builder() -> GuestPolicyBuilder {
        GuestPolicyBuilder(0)
    }

    /// NODBG (bit 0): debug commands are forbidden.
    pub const fn nodbg(self) -> bool {
        self.0 & Self::NODBG != 0
    }

    /// NOKS (bit 1): key sharing is forbidden.
    pub const fn noks(self) -> bool {
        self.0 & Self::NOKS != 0
    }

    /// ES (bit 2): SEV-ES guest.
    pub const fn es(self) -> bool {
        self.0 & Self::ES != 0
    }

    /// NOSEND (bit 3): migration out is forbidden.
    pub const fn nosend(self) -> bool {
        self.0 & Self::NOSEND != 0
    }

    /// DOMAIN (bit 4): may only be sent within the same OCA domain.
    pub const fn domain(self) -> bool {
        self.0 & Self::DOMAIN != 0
    }

    /// SEV (bit 5): may only be sent to a platform with a valid AMD chain.
    pub const fn sev(self) -> bool {
        self.0 & Self::SEV != 0
    }

    /// API_MAJOR (bits 23:16): minimum firmware API major version.
    pub const fn api_major(self) -> u8 {
        (self.0 >> 16) as u8
    }

    /// API_MINOR (bits 31:24): minimum firmware API minor version.
    pub const fn api_minor(self) -> u8 {
        (self.0 >> 24) as u8
    }

    /// The reserved bits 15:6, in place.
    pub const fn reserved_bits(self) -> u32 {
        self.0 & Self::RESERVED_MASK
    }

    /// True when firmware with API version `major.minor` satisfies the
    /// policy's minimum API version.
    pub const fn allows_api(self, major: u8, minor: u8) -> bool {
        major > self.api_major() || (major == self.api_major() && minor >= self.api_minor())
    }

    /// Checks the firmware's rule that bits 15:6 are zero
    /// ([`AbiError::Reserved`] otherwise).
    pub fn validate(&self) -> Result<()> {
        let reserved = self.reserved_bits();
        if reserved == 0 {
            Ok(())
        } else {
            Err(AbiError::Reserved {
                what: "SEV guest policy",
                field: "policy[15:6]",
                value: u64::from(reserved),
            })
        }
    }
}

impl From<u32> for GuestPolicy {
    fn from(raw: u32) -> Self {
        Self(raw)
    }
}

impl From<GuestPolicy> for u32 {
    fn from(policy: GuestPolicy) -> Self {
        policy.0
    }
}

impl fmt::Display for GuestPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} (", self.0)?;
        let flags = [
            (self.nodbg(), "NODBG"),
            (self.noks(), "NOKS"),
            (self.es(), "ES"),
            (self.nosend(), "NOSEND"),
            (self.domain(), "DOMAIN"),
            (self.sev(), "SEV"),
        ];
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            write!(f, "{name}, ")?;
        }
        if self.reserved_bits() != 0 {
            write!(f, "RESERVED={:#x}, ", self.reserved_bits())?;
        }
        write!(f, "API>={}.{})", self.api_major(), self.api_minor())
    }
}

impl fmt::Debug for GuestPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GuestPolicy({self})")
    }
}

/// Builder for [`GuestPolicy`]; every setter sets or clears one field.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct GuestPolicyBuilder(u32);

impl GuestPolicyBuilder {
    /// Sets NODBG (bit 0).
    #[must_use]
    pub const fn nodbg(self, on: bool) -> Self {
        Self(with_bit32(self.0, GuestPolicy::NODBG, on))
    }

    /// Sets NOKS (bit 1).
    #[must_use]
    pub const fn noks(self, on: bool) -> Self {
        Self(with_bit32(self.0, GuestPolicy::NOKS, on))
    }

    /// Sets ES (bit 2).
    #[must_use]
    pub const fn es(self, on: bool) -> Self {
        Self(with_bit32(self.0, GuestPolicy::ES, on))
    }

    /// Sets NOSEND (bit 3).
    #[must_use]
    pub const fn nosend(self, on: bool) -> Self {
        Self(with_bit32(self.0, GuestPolicy::NOSEND, on))
    }

    /// Sets DOMAIN (bit 4).
    #[must_use]
    pub const fn domain(self, on: bool) -> Self {
        Self(with_bit32(self.0, GuestPolicy::DOMAIN, on))
    }

    /// Sets SEV (bit 5).
    #[must_use]
    pub const fn sev(self, on: bool) -> Self {
        Self(with_bit32(self.0, GuestPolicy::SEV, on))
    }

    /// Sets API_MAJOR (bits 23:16).
    #[must_use]
    pub const fn api_major(self, major: u8) -> Self {
        Self((self.0 & !0x00FF_0000) | ((major as u32) << 16))
    }

    /// Sets API_MINOR (bits 31:24).
    #[must_use]
    pub const fn api_minor(self, minor: u8) -> Self {
        Self((self.0 & !0xFF00_0000) | ((minor as u32) << 24))
    }

    /// Sets the minimum firmware API version `major.minor`.
    #[must_use]
    pub const fn api(self, major: u8, minor: u8) -> Self {
        self.api_major(major).api_minor(minor)
    }

    /// Finishes the policy.
    pub const fn build(self) -> GuestPolicy {
        GuestPolicy(self.0)
    }
}

// ---------------------------------------------------------------------------
// SNP policy
// ---------------------------------------------------------------------------

/// The SEV-SNP guest policy (64 bits, reference §2.3).
///
/// | Bits  | Field             |
/// |-------|-------------------|
/// | 7:0   | ABI_MINOR         |
/// | 15:8  | ABI_MAJOR         |
/// | 16    | SMT               |
/// | 17    | RSVD_MBO (must be 1) |
/// | 18    | MIGRATE_MA        |
/// | 19    | DEBUG             |
/// | 20    | SINGLE_SOCKET     |
/// | 21    | CXL_ALLOW         |
/// | 22    | MEM_AES_256_XTS   |
/// | 23    | RAPL_DIS          |
/// | 24    | CIPHERTEXT_HIDING |
/// | 25    | PAGE_SWAP_DISABLE |
/// | 63:26 | reserved, must be 0 |
///
/// `Default` is `0x30000` (SMT allowed, RSVD_MBO set, ABI 0.0), QEMU's default.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SnpPolicy(u64);

impl SnpPolicy {
    /// Bit 16: SMT allowed.
    pub const SMT: u64 = 1 << 16;
    /// Bit 17: reserved, must be one.
    pub const RESERVED_MBO: u64 = 1 << 17;
    /// Bit 18: association with a migration agent allowed.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Bit 19: SNP debug commands allowed.
    pub const DEBUG: u64 = 1 << 19;
    /// Bit 20: the guest may run on one socket only.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    /// Bit 21: CXL may be populated.
    pub const CXL_ALLOW: u64 = 1 << 21;
    /// Bit 22: AES-256-XTS memory encryption required.
    pub const MEM_AES_256_XTS: u64 = 1 << 22;
    /// Bit 23: RAPL must be disabled.
    pub const RAPL_DIS: u64 = 1 << 23;
    /// Bit 24: ciphertext hiding must be enabled.
    pub const CIPHERTEXT_HIDING: u64 = 1 << 24;
    /// Bit 25: page swap / move commands are forbidden.
    pub const PAGE_SWAP_DISABLE: u64 = 1 << 25;
    /// Bits 63:26, reserved; must be zero.
    pub const RESERVED_MASK: u64 = !((1 << 26) - 1);
    /// QEMU's default policy: SMT allowed, RSVD_MBO set, ABI 0.0.
    pub const DEFAULT_RAW: u64 = 0x30000;

    /// Wraps a raw policy value (no checks; see [`SnpPolicy::validate`]).
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw 64-bit policy.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Starts a builder from `0x20000` (only RSVD_MBO set, ABI 0.0).
    pub const fn builder() -> SnpPolicyBuilder {
        SnpPolicyBuilder(Self::RESERVED_MBO)
    }

    /// ABI_MINOR (bits 7:0): minimum firmware ABI minor version.
    pub const fn abi_minor(self) -> u8 {
        self.0 as u8
    }

    /// ABI_MAJOR (bits 15:8): minimum firmware ABI major version.
    pub const fn abi_major(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SMT (bit 16): SMT allowed on the host.
    pub const fn smt(self) -> bool {
        self.0 & Self::SMT != 0
    }

    /// RSVD_MBO (bit 17): must be one.
    pub const fn reserved_mbo(self) -> bool {
        self.0 & Self::RESERVED_MBO != 0
    }

    /// MIGRATE_MA (bit 18): migration agent allowed.
    pub const fn migrate_ma(self) -> bool {
        self.0 & Self::MIGRATE_MA != 0
    }

    /// DEBUG (bit 19): debug commands allowed.
    pub const fn debug(self) -> bool {
        self.0 & Self::DEBUG != 0
    }

    /// SINGLE_SOCKET (bit 20).
    pub const fn single_socket(self) -> bool {
        self.0 & Self::SINGLE_SOCKET != 0
    }

    /// CXL_ALLOW (bit 21).
    pub const fn cxl_allow(self) -> bool {
        self.0 & Self::CXL_ALLOW != 0
    }

    /// MEM_AES_256_XTS (bit 22).
    pub const fn mem_aes_256_xts(self) -> bool {
        self.0 & Self::MEM_AES_256_XTS != 0
    }

    /// RAPL_DIS (bit 23).
    pub const fn rapl_dis(self) -> bool {
        self.0 & Self::RAPL_DIS != 0
    }

    /// CIPHERTEXT_HIDING (bit 24).
    pub const fn ciphertext_hiding(self) -> bool {
        self.0 & Self::CIPHERTEXT_HIDING != 0
    }

    /// PAGE_SWAP_DISABLE (bit 25).
    pub const fn page_swap_disable(self) -> bool {
        self.0 & Self::PAGE_SWAP_DISABLE != 0
    }

    /// The reserved bits 63:26, in place.
    pub const fn reserved_bits(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }

    /// True when firmware with ABI version `major.minor` satisfies the
    /// policy's minimum ABI version.
    pub const fn allows_abi(self, major: u8, minor: u8) -> bool {
        major > self.abi_major() || (major == self.abi_major() && minor >= self.abi_minor())
    }

    /// Checks the firmware's reserved-bit rules: bit 17 must be one
    /// ([`AbiError::InvalidField`] otherwise) and bits 63:26 must be zero
    /// ([`AbiError::Reserved`] otherwise).
    ///
    /// Older firmware (Genoa 1.55.25) also rejects bits 21–25; that is a
    /// firmware-version question and is not checked here.
    pub fn validate(&self) -> Result<()> {
        if !self.reserved_mbo() {
            return Err(AbiError::InvalidField {
                what: "SNP guest policy",
                field: "RSVD_MBO (bit 17)",
                value: self.0,
            });
        }
        let reserved = self.reserved_bits();
        if reserved != 0 {
            return Err(AbiError::Reserved {
                what: "SNP guest policy",
                field: "policy[63:26]",
                value: reserved,
            });
        }
        Ok(())
    }
}

impl Default for SnpPolicy {
    fn default() -> Self {
        Self(Self::DEFAULT_RAW)
    }
}

impl From<u64> for SnpPolicy {
    fn from(raw: u64) -> Self {
        Self(raw)
    }
}

impl From<SnpPolicy> for u64 {
    fn from(policy: SnpPolicy) -> Self {
        policy.0
    }
}

impl fmt::Display for SnpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} (", self.0)?;
        let flags = [
            (self.smt(), "SMT"),
            (self.reserved_mbo(), "RSVD_MBO"),
            (self.migrate_ma(), "MIGRATE_MA"),
            (self.debug(), "DEBUG"),
            (self.single_socket(), "SINGLE_SOCKET"),
            (self.cxl_allow(), "CXL_ALLOW"),
            (self.mem_aes_256_xts(), "MEM_AES_256_XTS"),
            (self.rapl_dis(), "RAPL_DIS"),
            (self.ciphertext_hiding(), "CIPHERTEXT_HIDING"),
            (self.page_swap_disable(), "PAGE_SWAP_DISABLE"),
        ];
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            write!(f, "{name}, ")?;
        }
        if self.reserved_bits() != 0 {
            write!(f, "RESERVED={:#x}, ", self.reserved_bits())?;
        }
        write!(f, "ABI>={}.{})", self.abi_major(), self.abi_minor())
    }
}

impl fmt::Debug for SnpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnpPolicy({self})")
    }
}

/// Builder for [`SnpPolicy`]; starts with RSVD_MBO (bit 17) set and every
/// other bit clear.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SnpPolicyBuilder(u64);

impl Default for SnpPolicyBuilder {
    fn default() -> Self {
        SnpPolicy::builder()
    }
}

impl SnpPolicyBuilder {
    /// Sets ABI_MINOR (bits 7:0).
    #[must_use]
    pub const fn abi_minor(self, minor: u8) -> Self {
        Self((self.0 & !0xFF) | minor as u64)
    }

    /// Sets ABI_MAJOR (bits 15:8).
    #[must_use]
    pub const fn abi_major(self, major: u8) -> Self {
        Self((self.0 & !0xFF00) | ((major as u64) << 8))
    }

    /// Sets the minimum firmware ABI version `major.minor`.
    #[must_use]
    pub const fn abi(self, major: u8, minor: u8) -> Self {
        self.abi_major(major).abi_minor(minor)
    }

    /// Sets SMT (bit 16).
    #[must_use]
    pub const fn smt(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::SMT, on))
    }

    /// Sets RSVD_MBO (bit 17). Clearing it makes an invalid policy; this is
    /// only useful for negative tests.
    #[must_use]
    pub const fn reserved_mbo(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::RESERVED_MBO, on))
    }

    /// Sets MIGRATE_MA (bit 18).
    #[must_use]
    pub const fn migrate_ma(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::MIGRATE_MA, on))
    }

    /// Sets DEBUG (bit 19).
    #[must_use]
    pub const fn debug(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::DEBUG, on))
    }

    /// Sets SINGLE_SOCKET (bit 20).
    #[must_use]
    pub const fn single_socket(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::SINGLE_SOCKET, on))
    }

    /// Sets CXL_ALLOW (bit 21).
    #[must_use]
    pub const fn cxl_allow(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::CXL_ALLOW, on))
    }

    /// Sets MEM_AES_256_XTS (bit 22).
    #[must_use]
    pub const fn mem_aes_256_xts(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::MEM_AES_256_XTS, on))
    }

    /// Sets RAPL_DIS (bit 23).
    #[must_use]
    pub const fn rapl_dis(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::RAPL_DIS, on))
    }

    /// Sets CIPHERTEXT_HIDING (bit 24).
    #[must_use]
    pub const fn ciphertext_hiding(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::CIPHERTEXT_HIDING, on))
    }

    /// Sets PAGE_SWAP_DISABLE (bit 25).
    #[must_use]
    pub const fn page_swap_disable(self, on: bool) -> Self {
        Self(with_bit64(self.0, SnpPolicy::PAGE_SWAP_DISABLE, on))
    }

    /// Finishes the policy.
    pub const fn build(self) -> SnpPolicy {
        SnpPolicy(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Setter = fn(SnpPolicyBuilder, bool) -> SnpPolicyBuilder;
    type Getter = fn(SnpPolicy) -> bool;

    #[test]
    fn snp_default_is_qemu() {
        let p = SnpPolicy::from_raw(0x30000);
        assert!(p.smt() && p.reserved_mbo());
        assert!(!p.debug() && !p.migrate_ma() && !p.single_socket());
        assert_eq!((p.abi_major(), p.abi_minor()), (0, 0));
        assert_eq!(SnpPolicy::default(), p);
        assert_eq!(SnpPolicy::builder().smt(true).build(), p);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.to_string(), "0x30000 (SMT, RSVD_MBO, ABI>=0.0)");
    }

    #[test]
    fn snp_builder_sets_each_field() {
        let p = SnpPolicy::builder()
            .smt(true)
            .debug(false)
            .abi(1, 51)
            .build();
        assert_eq!(p.raw(), 0x3_0133);
        assert_eq!((p.abi_major(), p.abi_minor()), (1, 51));
        assert!(
            p.allows_abi(1, 51)
                && p.allows_abi(2, 0)
                && !p.allows_abi(1, 50)
                && !p.allows_abi(0, 99)
        );

        let cases: [(Setter, Getter, u64); 10] = [
            (SnpPolicyBuilder::smt, SnpPolicy::smt, 1 << 16),
            (
                SnpPolicyBuilder::reserved_mbo,
                SnpPolicy::reserved_mbo,
                1 << 17,
            ),
            (SnpPolicyBuilder::migrate_ma, SnpPolicy::migrate_ma, 1 << 18),
            (SnpPolicyBuilder::debug, SnpPolicy::debug, 1 << 19),
            (
                SnpPolicyBuilder::single_socket,
                SnpPolicy::single_socket,
                1 << 20,
            ),
            (SnpPolicyBuilder::cxl_allow, SnpPolicy::cxl_allow, 1 << 21),
            (
                SnpPolicyBuilder::mem_aes_256_xts,
                SnpPolicy::mem_aes_256_xts,
                1 << 22,
            ),
            (SnpPolicyBuilder::rapl_dis, SnpPolicy::rapl_dis, 1 << 23),
            (
                SnpPolicyBuilder::ciphertext_hiding,
                SnpPolicy::ciphertext_hiding,
                1 << 24,
            ),
            (
                SnpPolicyBuilder::page_swap_disable,
                SnpPolicy::page_swap_disable,
                1 << 25,
            ),
        ];
        for (set, get, bit) in cases {
            let on = set(SnpPolicyBuilder(0), true).build();
            assert_eq!(on.raw(), bit);
            assert!(get(on));
            assert!(!get(SnpPolicy::from_raw(!bit)));
            let off = set(SnpPolicyBuilder(u64::MAX), false).build();
            assert_eq!(off.raw(), !bit);
        }
        assert_eq!(
            SnpPolicy::builder()
                .abi_major(0xAB)
                .abi_minor(0xCD)
                .build()
                .raw(),
            0x2_ABCD
        );
    }

    #[test]
    fn snp_validate() {
        assert_eq!(
            SnpPolicy::from_raw(0x10000).validate(),
            Err(AbiError::InvalidField {
                what: "SNP guest policy",
                field: "RSVD_MBO (bit 17)",
                value: 0x10000
            })
        );
        assert_eq!(
            SnpPolicy::from_raw(0x30000 | 1 << 26).validate(),
            Err(AbiError::Reserved {
                what: "SNP guest policy",
                field: "policy[63:26]",
                value: 1 << 26
            })
        );
        assert!(matches!(
            SnpPolicy::from_raw(u64::MAX).validate(),
            Err(AbiError::Reserved { .. })
        ));
        assert_eq!(SnpPolicy::from_raw(0x3FF_FFFF).validate(), Ok(()));
        assert_eq!(
            SnpPolicy::from_raw(0x0400_0000_0003_0000).to_string(),
            "0x400000000030000 (SMT, RSVD_MBO, RESERVED=0x400000000000000, ABI>=0.0)"
        );
    }

    #[test]
    fn legacy_real_values() {
        let p = GuestPolicy::from_raw(0x03);
        assert!(p.nodbg() && p.noks());
        assert!(!p.es() && !p.nosend() && !p.domain() && !p.sev());
        assert_eq!(p.to_string(), "0x3 (NODBG, NOKS, API>=0.0)");
        let p = GuestPolicy::from_raw(0x0001_0000);
        assert_eq!((p.api_major(), p.api_minor()), (1, 0));
        assert!(p.allows_api(1, 0) && !p.allows_api(0, 24));
        assert_eq!(GuestPolicy::default().raw(), 0);
        assert_eq!(GuestPolicy::from_raw(0x0500_0000).api_minor(), 5);
    }

    #[test]
    fn legacy_builder_and_validate() {
        let p = GuestPolicy::builder()
            .nodbg(true)
            .noks(true)
            .es(true)
            .nosend(true)
            .domain(true)
            .sev(true)
            .api(0x12, 0x34)
            .build();
        assert_eq!(p.raw(), 0x3412_003F);
        assert!(p.nodbg() && p.noks() && p.es() && p.nosend() && p.domain() && p.sev());
        assert_eq!(p.validate(), Ok(()));
        let cleared = GuestPolicyBuilder(u32::MAX)
            .nodbg(false)
            .sev(false)
            .api(0, 0)
            .build();
        assert_eq!(cleared.raw(), 0x0000_FFDE);
        assert_eq!(
            GuestPolicy::from_raw(0x40).validate(),
            Err(AbiError::Reserved {
                what: "SEV guest policy",
                field: "policy[15:6]",
                value: 0x40
            })
        );
        assert_eq!(GuestPolicy::from_raw(0x8000).reserved_bits(), 0x8000);
        assert_eq!(GuestPolicy::from_raw(0xFFFF_003F).validate(), Ok(()));
    }
}
