//! Guest policies: the 32-bit legacy SEV / SEV-ES policy (reference §1.3) and
//! the 64-bit SEV-SNP policy (reference §2.3).
//!
//! Both are `#[repr(transparent)]` over their little-endian wire integer, so
//! command buffers, reports and ID blocks carry them as they are: any value
//! can be held and round-trips unchanged; [`GuestPolicy::validate`] and
//! [`SnpPolicy::validate`] apply the firmware's reserved-bit rules.
//!
//! Every named field of both policies is described once, in
//! [`POLICY_FIELDS`]: its name, which policy it belongs to, its bits and
//! what it means. The masks, getters and builder setters of the two types,
//! their `Display`, the named `policy.<name>` properties of sevkit's
//! `-object` and `sevkit show`'s fields all come from that table.

use core::fmt;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{AbiError, Result};

// ---------------------------------------------------------------------------
// The field table
// ---------------------------------------------------------------------------

/// Which guest policy a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// The legacy SEV / SEV-ES policy, [`GuestPolicy`] (32 bits).
    Sev,
    /// The SEV-SNP policy, [`SnpPolicy`] (64 bits).
    Snp,
}

impl PolicyKind {
    /// This policy's named fields, in [`POLICY_FIELDS`] order (lowest bit
    /// first).
    pub fn fields(self) -> impl Iterator<Item = &'static PolicyField> {
        POLICY_FIELDS.iter().filter(move |f| f.kind == self)
    }

    /// The field of this policy called `name` (e.g. `"nodbg"`,
    /// `"migrate-ma"`).
    pub fn field(self, name: &str) -> Option<&'static PolicyField> {
        self.fields().find(|f| f.name == name)
    }
}

/// How many bits a policy field has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldWidth {
    /// One bit: a flag, on or off.
    Flag,
    /// Eight bits: a version number, 0 to 255.
    Byte,
}

/// One named field of a guest policy: a row of [`POLICY_FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyField {
    /// The field's name, lowercase with `-`: the `policy.<name>` property of
    /// sevkit's `-object sev-guest` / `sev-snp-guest`, the key `sevkit show`
    /// prints (with `_` for `-`); upper-cased with `_`, the name AMD's
    /// specification uses ([`PolicyField::spec_name`]).
    pub name: &'static str,
    /// The policy the field belongs to.
    pub kind: PolicyKind,
    /// The field's lowest bit.
    pub shift: u32,
    /// One bit or eight.
    pub width: FieldWidth,
    /// What the field means.
    pub meaning: &'static str,
}

impl PolicyField {
    const fn flag(kind: PolicyKind, name: &'static str, bit: u32, meaning: &'static str) -> Self {
        Self {
            name,
            kind,
            shift: bit,
            width: FieldWidth::Flag,
            meaning,
        }
    }

    const fn byte(kind: PolicyKind, name: &'static str, shift: u32, meaning: &'static str) -> Self {
        Self {
            name,
            kind,
            shift,
            width: FieldWidth::Byte,
            meaning,
        }
    }

    /// The largest value the field holds: 1 for a flag, 255 for a byte.
    pub const fn max(&self) -> u64 {
        match self.width {
            FieldWidth::Flag => 1,
            FieldWidth::Byte => 0xFF,
        }
    }

    /// The field's bits, in place.
    pub const fn mask(&self) -> u64 {
        self.max() << self.shift
    }

    /// The field's value in the raw policy `raw`.
    pub const fn get(&self, raw: u64) -> u64 {
        (raw & self.mask()) >> self.shift
    }

    /// `raw` with the field set to `value` (cut to the field's width).
    #[must_use]
    pub const fn with(&self, raw: u64, value: u64) -> u64 {
        (raw & !self.mask()) | ((value << self.shift) & self.mask())
    }

    /// The name as AMD's specification writes it: upper case, `_` for `-`
    /// (`NODBG`, `MIGRATE_MA`).
    pub fn spec_name(&self) -> impl fmt::Display + 'static {
        SpecName(self.name)
    }
}

/// A field name shown as the specification writes it.
struct SpecName(&'static str);

impl fmt::Display for SpecName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for c in self.0.chars() {
            f.write_char(if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            })?;
        }
        Ok(())
    }
}

/// The rows of [`POLICY_FIELDS`], by name: what the types' own accessors
/// are built from, and how code names one field without spelling it.
pub mod field {
    use super::PolicyField;
    use super::PolicyKind::{Sev, Snp};

    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const NODBG: PolicyField = PolicyField::flag(
        Sev,
        "nodbg",
        0,
        "debugging (DBG_DECRYPT / DBG_ENCRYPT) is forbidden",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const NOKS: PolicyField = PolicyField::flag(
        Sev,
        "noks",
        1,
        "sharing keys with other guests is forbidden",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const ES: PolicyField = PolicyField::flag(Sev, "es", 2, "the guest is an SEV-ES guest");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const NOSEND: PolicyField = PolicyField::flag(
        Sev,
        "nosend",
        3,
        "sending the guest to another platform is forbidden",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const DOMAIN: PolicyField = PolicyField::flag(
        Sev,
        "domain",
        4,
        "the guest may only be sent to a platform in the same domain (same OCA)",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const SEV: PolicyField = PolicyField::flag(
        Sev,
        "sev",
        5,
        "the guest may only be sent to a platform with a valid AMD chain",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const API_MAJOR: PolicyField =
        PolicyField::byte(Sev, "api-major", 16, "minimum firmware API major version");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const API_MINOR: PolicyField =
        PolicyField::byte(Sev, "api-minor", 24, "minimum firmware API minor version");

    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const ABI_MINOR: PolicyField =
        PolicyField::byte(Snp, "abi-minor", 0, "minimum firmware ABI minor version");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const ABI_MAJOR: PolicyField =
        PolicyField::byte(Snp, "abi-major", 8, "minimum firmware ABI major version");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const SMT: PolicyField = PolicyField::flag(Snp, "smt", 16, "SMT is allowed");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const RSVD_MBO: PolicyField =
        PolicyField::flag(Snp, "rsvd-mbo", 17, "reserved, must be one");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const MIGRATE_MA: PolicyField = PolicyField::flag(
        Snp,
        "migrate-ma",
        18,
        "association with a migration agent is allowed",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const DEBUG: PolicyField =
        PolicyField::flag(Snp, "debug", 19, "SNP debug commands are allowed");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const SINGLE_SOCKET: PolicyField = PolicyField::flag(
        Snp,
        "single-socket",
        20,
        "the guest may run on one socket only",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const CXL_ALLOW: PolicyField =
        PolicyField::flag(Snp, "cxl-allow", 21, "CXL may be populated");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const MEM_AES_256_XTS: PolicyField = PolicyField::flag(
        Snp,
        "mem-aes-256-xts",
        22,
        "AES-256-XTS memory encryption is required",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const RAPL_DIS: PolicyField =
        PolicyField::flag(Snp, "rapl-dis", 23, "RAPL must be disabled");
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const CIPHERTEXT_HIDING: PolicyField = PolicyField::flag(
        Snp,
        "ciphertext-hiding",
        24,
        "ciphertext hiding must be enabled",
    );
    /// The row of [`POLICY_FIELDS`](super::POLICY_FIELDS) for this field.
    pub const PAGE_SWAP_DISABLE: PolicyField = PolicyField::flag(
        Snp,
        "page-swap-disable",
        25,
        "page swap and move commands are forbidden",
    );
}

/// Every named field of both guest policies, each policy's lowest bit
/// first: the one description of the policy bits.
pub const POLICY_FIELDS: &[PolicyField] = &[
    field::NODBG,
    field::NOKS,
    field::ES,
    field::NOSEND,
    field::DOMAIN,
    field::SEV,
    field::API_MAJOR,
    field::API_MINOR,
    field::ABI_MINOR,
    field::ABI_MAJOR,
    field::SMT,
    field::RSVD_MBO,
    field::MIGRATE_MA,
    field::DEBUG,
    field::SINGLE_SOCKET,
    field::CXL_ALLOW,
    field::MEM_AES_256_XTS,
    field::RAPL_DIS,
    field::CIPHERTEXT_HIDING,
    field::PAGE_SWAP_DISABLE,
];

/// Writes `raw (FLAG, FLAG, [RESERVED=..., ]LABEL>=major.minor)`: the set
/// flags of `kind` by their specification names.
fn write_policy(
    f: &mut fmt::Formatter<'_>,
    kind: PolicyKind,
    raw: u64,
    reserved: u64,
    version: (&str, u8, u8),
) -> fmt::Result {
    write!(f, "{raw:#x} (")?;
    for field in kind.fields() {
        if field.width == FieldWidth::Flag && field.get(raw) != 0 {
            write!(f, "{}, ", field.spec_name())?;
        }
    }
    if reserved != 0 {
        write!(f, "RESERVED={reserved:#x}, ")?;
    }
    let (label, major, minor) = version;
    write!(f, "{label}>={major}.{minor})")
}

// ---------------------------------------------------------------------------
// Legacy SEV policy
// ---------------------------------------------------------------------------

/// The legacy SEV / SEV-ES guest policy (32 bits, reference §1.3), as the
/// little-endian `u32` of command buffers and reports.
///
/// Its named fields are the [`PolicyKind::Sev`] rows of [`POLICY_FIELDS`]
/// (bits 5:0 flags, bits 23:16 and 31:24 the minimum API version); bits
/// 15:6 are reserved and must be 0.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(transparent)]
pub struct GuestPolicy(U32);

impl GuestPolicy {
    /// The mask of [`field::NODBG`].
    pub const NODBG: u32 = field::NODBG.mask() as u32;
    /// The mask of [`field::NOKS`].
    pub const NOKS: u32 = field::NOKS.mask() as u32;
    /// The mask of [`field::ES`].
    pub const ES: u32 = field::ES.mask() as u32;
    /// The mask of [`field::NOSEND`].
    pub const NOSEND: u32 = field::NOSEND.mask() as u32;
    /// The mask of [`field::DOMAIN`].
    pub const DOMAIN: u32 = field::DOMAIN.mask() as u32;
    /// The mask of [`field::SEV`].
    pub const SEV: u32 = field::SEV.mask() as u32;
    /// Bits 15:6, reserved; the firmware rejects a policy with any of them set.
    pub const RESERVED_MASK: u32 = 0x0000_FFC0;

    /// Wraps a raw policy value (no checks; see [`GuestPolicy::validate`]).
    pub const fn from_raw(raw: u32) -> Self {
        Self(U32::new(raw))
    }

    /// The raw 32-bit policy.
    pub const fn raw(self) -> u32 {
        self.0.get()
    }

    /// Starts a builder from the all-zero policy.
    pub const fn builder() -> GuestPolicyBuilder {
        GuestPolicyBuilder(0)
    }

    const fn flag(self, field: &PolicyField) -> bool {
        field.get(self.raw() as u64) != 0
    }

    /// Whether [`field::NODBG`] is set.
    pub const fn nodbg(self) -> bool {
        self.flag(&field::NODBG)
    }

    /// Whether [`field::NOKS`] is set.
    pub const fn noks(self) -> bool {
        self.flag(&field::NOKS)
    }

    /// Whether [`field::ES`] is set.
    pub const fn es(self) -> bool {
        self.flag(&field::ES)
    }

    /// Whether [`field::NOSEND`] is set.
    pub const fn nosend(self) -> bool {
        self.flag(&field::NOSEND)
    }

    /// Whether [`field::DOMAIN`] is set.
    pub const fn domain(self) -> bool {
        self.flag(&field::DOMAIN)
    }

    /// Whether [`field::SEV`] is set.
    pub const fn sev(self) -> bool {
        self.flag(&field::SEV)
    }

    /// The value of [`field::API_MAJOR`].
    pub const fn api_major(self) -> u8 {
        field::API_MAJOR.get(self.raw() as u64) as u8
    }

    /// The value of [`field::API_MINOR`].
    pub const fn api_minor(self) -> u8 {
        field::API_MINOR.get(self.raw() as u64) as u8
    }

    /// The reserved bits 15:6, in place.
    pub const fn reserved_bits(self) -> u32 {
        self.raw() & Self::RESERVED_MASK
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
        Self::from_raw(raw)
    }
}

impl From<GuestPolicy> for u32 {
    fn from(policy: GuestPolicy) -> Self {
        policy.raw()
    }
}

impl fmt::Display for GuestPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_policy(
            f,
            PolicyKind::Sev,
            u64::from(self.raw()),
            u64::from(self.reserved_bits()),
            ("API", self.api_major(), self.api_minor()),
        )
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
    const fn with(self, field: &PolicyField, value: u64) -> Self {
        Self(field.with(self.0 as u64, value) as u32)
    }

    /// Sets [`field::NODBG`].
    #[must_use]
    pub const fn nodbg(self, on: bool) -> Self {
        self.with(&field::NODBG, on as u64)
    }

    /// Sets [`field::NOKS`].
    #[must_use]
    pub const fn noks(self, on: bool) -> Self {
        self.with(&field::NOKS, on as u64)
    }

    /// Sets [`field::ES`].
    #[must_use]
    pub const fn es(self, on: bool) -> Self {
        self.with(&field::ES, on as u64)
    }

    /// Sets [`field::NOSEND`].
    #[must_use]
    pub const fn nosend(self, on: bool) -> Self {
        self.with(&field::NOSEND, on as u64)
    }

    /// Sets [`field::DOMAIN`].
    #[must_use]
    pub const fn domain(self, on: bool) -> Self {
        self.with(&field::DOMAIN, on as u64)
    }

    /// Sets [`field::SEV`].
    #[must_use]
    pub const fn sev(self, on: bool) -> Self {
        self.with(&field::SEV, on as u64)
    }

    /// Sets [`field::API_MAJOR`].
    #[must_use]
    pub const fn api_major(self, major: u8) -> Self {
        self.with(&field::API_MAJOR, major as u64)
    }

    /// Sets [`field::API_MINOR`].
    #[must_use]
    pub const fn api_minor(self, minor: u8) -> Self {
        self.with(&field::API_MINOR, minor as u64)
    }

    /// Sets the minimum firmware API version `major.minor`.
    #[must_use]
    pub const fn api(self, major: u8, minor: u8) -> Self {
        self.api_major(major).api_minor(minor)
    }

    /// Finishes the policy.
    pub const fn build(self) -> GuestPolicy {
        GuestPolicy::from_raw(self.0)
    }
}

// ---------------------------------------------------------------------------
// SNP policy
// ---------------------------------------------------------------------------

/// The SEV-SNP guest policy (64 bits, reference §2.3), as the little-endian
/// `u64` of command buffers, reports and ID blocks.
///
/// Its named fields are the [`PolicyKind::Snp`] rows of [`POLICY_FIELDS`]
/// (bits 15:0 the minimum ABI version, bits 25:16 flags, bit 17 must be
/// one); bits 63:26 are reserved and must be 0.
///
/// `Default` is `0x30000` (SMT allowed, RSVD_MBO set, ABI 0.0), QEMU's
/// default.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(transparent)]
pub struct SnpPolicy(U64);

impl SnpPolicy {
    /// The mask of [`field::SMT`].
    pub const SMT: u64 = field::SMT.mask();
    /// The mask of [`field::RSVD_MBO`].
    pub const RESERVED_MBO: u64 = field::RSVD_MBO.mask();
    /// The mask of [`field::MIGRATE_MA`].
    pub const MIGRATE_MA: u64 = field::MIGRATE_MA.mask();
    /// The mask of [`field::DEBUG`].
    pub const DEBUG: u64 = field::DEBUG.mask();
    /// The mask of [`field::SINGLE_SOCKET`].
    pub const SINGLE_SOCKET: u64 = field::SINGLE_SOCKET.mask();
    /// The mask of [`field::CXL_ALLOW`].
    pub const CXL_ALLOW: u64 = field::CXL_ALLOW.mask();
    /// The mask of [`field::MEM_AES_256_XTS`].
    pub const MEM_AES_256_XTS: u64 = field::MEM_AES_256_XTS.mask();
    /// The mask of [`field::RAPL_DIS`].
    pub const RAPL_DIS: u64 = field::RAPL_DIS.mask();
    /// The mask of [`field::CIPHERTEXT_HIDING`].
    pub const CIPHERTEXT_HIDING: u64 = field::CIPHERTEXT_HIDING.mask();
    /// The mask of [`field::PAGE_SWAP_DISABLE`].
    pub const PAGE_SWAP_DISABLE: u64 = field::PAGE_SWAP_DISABLE.mask();
    /// Bits 63:26, reserved; must be zero.
    pub const RESERVED_MASK: u64 = !((1 << 26) - 1);
    /// QEMU's default policy: SMT allowed, RSVD_MBO set, ABI 0.0.
    pub const DEFAULT_RAW: u64 = 0x30000;

    /// Wraps a raw policy value (no checks; see [`SnpPolicy::validate`]).
    pub const fn from_raw(raw: u64) -> Self {
        Self(U64::new(raw))
    }

    /// The raw 64-bit policy.
    pub const fn raw(self) -> u64 {
        self.0.get()
    }

    /// Starts a builder from `0x20000` (only RSVD_MBO set, ABI 0.0).
    pub const fn builder() -> SnpPolicyBuilder {
        SnpPolicyBuilder(Self::RESERVED_MBO)
    }

    const fn flag(self, field: &PolicyField) -> bool {
        field.get(self.raw()) != 0
    }

    /// The value of [`field::ABI_MINOR`].
    pub const fn abi_minor(self) -> u8 {
        field::ABI_MINOR.get(self.raw()) as u8
    }

    /// The value of [`field::ABI_MAJOR`].
    pub const fn abi_major(self) -> u8 {
        field::ABI_MAJOR.get(self.raw()) as u8
    }

    /// Whether [`field::SMT`] is set.
    pub const fn smt(self) -> bool {
        self.flag(&field::SMT)
    }

    /// Whether [`field::RSVD_MBO`] is set.
    pub const fn reserved_mbo(self) -> bool {
        self.flag(&field::RSVD_MBO)
    }

    /// Whether [`field::MIGRATE_MA`] is set.
    pub const fn migrate_ma(self) -> bool {
        self.flag(&field::MIGRATE_MA)
    }

    /// Whether [`field::DEBUG`] is set.
    pub const fn debug(self) -> bool {
        self.flag(&field::DEBUG)
    }

    /// Whether [`field::SINGLE_SOCKET`] is set.
    pub const fn single_socket(self) -> bool {
        self.flag(&field::SINGLE_SOCKET)
    }

    /// Whether [`field::CXL_ALLOW`] is set.
    pub const fn cxl_allow(self) -> bool {
        self.flag(&field::CXL_ALLOW)
    }

    /// Whether [`field::MEM_AES_256_XTS`] is set.
    pub const fn mem_aes_256_xts(self) -> bool {
        self.flag(&field::MEM_AES_256_XTS)
    }

    /// Whether [`field::RAPL_DIS`] is set.
    pub const fn rapl_dis(self) -> bool {
        self.flag(&field::RAPL_DIS)
    }

    /// Whether [`field::CIPHERTEXT_HIDING`] is set.
    pub const fn ciphertext_hiding(self) -> bool {
        self.flag(&field::CIPHERTEXT_HIDING)
    }

    /// Whether [`field::PAGE_SWAP_DISABLE`] is set.
    pub const fn page_swap_disable(self) -> bool {
        self.flag(&field::PAGE_SWAP_DISABLE)
    }

    /// The reserved bits 63:26, in place.
    pub const fn reserved_bits(self) -> u64 {
        self.raw() & Self::RESERVED_MASK
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
                value: self.raw(),
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
        Self::from_raw(Self::DEFAULT_RAW)
    }
}

impl From<u64> for SnpPolicy {
    fn from(raw: u64) -> Self {
        Self::from_raw(raw)
    }
}

impl From<SnpPolicy> for u64 {
    fn from(policy: SnpPolicy) -> Self {
        policy.raw()
    }
}

impl fmt::Display for SnpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_policy(
            f,
            PolicyKind::Snp,
            self.raw(),
            self.reserved_bits(),
            ("ABI", self.abi_major(), self.abi_minor()),
        )
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
    const fn with(self, field: &PolicyField, value: u64) -> Self {
        Self(field.with(self.0, value))
    }

    /// Sets [`field::ABI_MINOR`].
    #[must_use]
    pub const fn abi_minor(self, minor: u8) -> Self {
        self.with(&field::ABI_MINOR, minor as u64)
    }

    /// Sets [`field::ABI_MAJOR`].
    #[must_use]
    pub const fn abi_major(self, major: u8) -> Self {
        self.with(&field::ABI_MAJOR, major as u64)
    }

    /// Sets the minimum firmware ABI version `major.minor`.
    #[must_use]
    pub const fn abi(self, major: u8, minor: u8) -> Self {
        self.abi_major(major).abi_minor(minor)
    }

    /// Sets [`field::SMT`].
    #[must_use]
    pub const fn smt(self, on: bool) -> Self {
        self.with(&field::SMT, on as u64)
    }

    /// Sets [`field::RSVD_MBO`]. Clearing it makes an invalid policy; this is
    /// only useful for negative tests.
    #[must_use]
    pub const fn reserved_mbo(self, on: bool) -> Self {
        self.with(&field::RSVD_MBO, on as u64)
    }

    /// Sets [`field::MIGRATE_MA`].
    #[must_use]
    pub const fn migrate_ma(self, on: bool) -> Self {
        self.with(&field::MIGRATE_MA, on as u64)
    }

    /// Sets [`field::DEBUG`].
    #[must_use]
    pub const fn debug(self, on: bool) -> Self {
        self.with(&field::DEBUG, on as u64)
    }

    /// Sets [`field::SINGLE_SOCKET`].
    #[must_use]
    pub const fn single_socket(self, on: bool) -> Self {
        self.with(&field::SINGLE_SOCKET, on as u64)
    }

    /// Sets [`field::CXL_ALLOW`].
    #[must_use]
    pub const fn cxl_allow(self, on: bool) -> Self {
        self.with(&field::CXL_ALLOW, on as u64)
    }

    /// Sets [`field::MEM_AES_256_XTS`].
    #[must_use]
    pub const fn mem_aes_256_xts(self, on: bool) -> Self {
        self.with(&field::MEM_AES_256_XTS, on as u64)
    }

    /// Sets [`field::RAPL_DIS`].
    #[must_use]
    pub const fn rapl_dis(self, on: bool) -> Self {
        self.with(&field::RAPL_DIS, on as u64)
    }

    /// Sets [`field::CIPHERTEXT_HIDING`].
    #[must_use]
    pub const fn ciphertext_hiding(self, on: bool) -> Self {
        self.with(&field::CIPHERTEXT_HIDING, on as u64)
    }

    /// Sets [`field::PAGE_SWAP_DISABLE`].
    #[must_use]
    pub const fn page_swap_disable(self, on: bool) -> Self {
        self.with(&field::PAGE_SWAP_DISABLE, on as u64)
    }

    /// Finishes the policy.
    pub const fn build(self) -> SnpPolicy {
        SnpPolicy::from_raw(self.0)
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

    #[test]
    fn field_table_is_consistent() {
        for kind in [PolicyKind::Sev, PolicyKind::Snp] {
            let width_bits = if kind == PolicyKind::Sev { 32 } else { 64 };
            let reserved = match kind {
                PolicyKind::Sev => u64::from(GuestPolicy::RESERVED_MASK),
                PolicyKind::Snp => SnpPolicy::RESERVED_MASK,
            };
            let mut seen = 0u64;
            let mut names = Vec::new();
            for f in kind.fields() {
                assert!(f.shift + 8 <= width_bits || f.width == FieldWidth::Flag);
                assert_eq!(seen & f.mask(), 0, "{} overlaps another field", f.name);
                assert_eq!(reserved & f.mask(), 0, "{} overlaps reserved bits", f.name);
                seen |= f.mask();
                assert!(!names.contains(&f.name), "{} twice", f.name);
                names.push(f.name);
                assert_eq!(kind.field(f.name), Some(f));
                assert!(f
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                assert_eq!(f.get(f.with(0, f.max())), f.max());
                assert_eq!(f.with(u64::MAX, 0), !f.mask());
            }
        }
        assert_eq!(PolicyKind::Sev.field("debug"), None);
        assert_eq!(PolicyKind::Snp.field("nodbg"), None);
        assert_eq!(
            PolicyKind::Snp
                .field("mem-aes-256-xts")
                .map(|f| f.spec_name().to_string()),
            Some("MEM_AES_256_XTS".to_owned())
        );
        // The masks the types export are the table's.
        assert_eq!(
            u64::from(GuestPolicy::NODBG | GuestPolicy::ES),
            PolicyKind::Sev.field("nodbg").unwrap().mask()
                | PolicyKind::Sev.field("es").unwrap().mask()
        );
        assert_eq!(
            SnpPolicy::MIGRATE_MA,
            PolicyKind::Snp.field("migrate-ma").unwrap().mask()
        );
    }

    #[test]
    fn policies_are_their_wire_integers() {
        use zerocopy::{FromBytes, IntoBytes};
        assert_eq!(core::mem::size_of::<GuestPolicy>(), 4);
        assert_eq!(core::mem::size_of::<SnpPolicy>(), 8);
        assert_eq!(core::mem::align_of::<SnpPolicy>(), 1);
        let p = GuestPolicy::from_raw(0x0102_0305);
        assert_eq!(p.as_bytes(), &[0x05, 0x03, 0x02, 0x01]);
        assert_eq!(
            GuestPolicy::read_from_bytes(&[5, 0, 0, 0]).unwrap().raw(),
            5
        );
        let p = SnpPolicy::read_from_bytes(&0x3_0133u64.to_le_bytes()).unwrap();
        assert_eq!((p.abi_major(), p.abi_minor(), p.smt()), (1, 0x33, true));
    }
}
