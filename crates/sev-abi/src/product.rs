//! AMD EPYC product generations and the per-generation TCB_VERSION encoding
//! (reference §2.10 and §2.13).
//!
//! A TCB_VERSION is a 64-bit value whose eight bytes (little-endian, byte 0
//! first) hold security patch levels (SPLs). Which byte holds which component
//! depends on the product generation; see [`TcbLayout`].

use core::fmt;
use core::str::FromStr;

use crate::error::AbiError;

/// An AMD EPYC processor generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// EPYC 7001 (Zen 1): SEV only.
    Naples,
    /// EPYC 7002 (Zen 2): SEV and SEV-ES.
    Rome,
    /// EPYC 7003 (Zen 3): first SEV-SNP generation.
    Milan,
    /// EPYC 9004/8004 (Zen 4), including Bergamo and Siena.
    Genoa,
    /// EPYC 9005 (Zen 5).
    Turin,
}

impl Product {
    /// The C-bit position (CPUID 0x8000_001F EBX bits 5:0): 51 on the SNP
    /// generations (Milan, Genoa, Turin), 47 on Naples and Rome.
    pub const fn c_bit_position(self) -> u8 {
        match self {
            Product::Naples | Product::Rome => 47,
            Product::Milan | Product::Genoa | Product::Turin => 51,
        }
    }

    /// CPUID Fn0000_0001_EAX (family/model/stepping) sevkit reports for the
    /// product: Naples B2 (17h/01h), Rome B0 (17h/31h), Milan B1 (19h/01h),
    /// Genoa B1 (19h/11h), Turin C1 (1Ah/02h).
    pub const fn default_fms(self) -> u32 {
        match self {
            Product::Naples => 0x0080_0F12,
            Product::Rome => 0x0083_0F10,
            Product::Milan => 0x00A0_0F11,
            Product::Genoa => 0x00A1_0F11,
            Product::Turin => 0x00B0_0F21,
        }
    }

    /// Every product, oldest first.
    pub const ALL: &'static [Product] = &[
        Product::Naples,
        Product::Rome,
        Product::Milan,
        Product::Genoa,
        Product::Turin,
    ];

    /// The name AMD uses in KDS URLs and certificate names (`"Milan"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Naples => "Naples",
            Self::Rome => "Rome",
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// True for generations that support SEV-SNP (Milan, Genoa, Turin).
    pub const fn is_snp_capable(self) -> bool {
        matches!(self, Self::Milan | Self::Genoa | Self::Turin)
    }

    /// The TCB_VERSION byte layout of this generation.
    ///
    /// Naples and Rome have no SNP TCB; they report
    /// [`TcbLayout::MilanGenoa`], which is meaningless for them.
    pub const fn tcb_layout(self) -> TcbLayout {
        match self {
            Self::Turin => TcbLayout::Turin,
            _ => TcbLayout::MilanGenoa,
        }
    }

    /// Number of meaningful CHIP_ID bytes: 64, except 8 on Turin (where the
    /// rest of the report's 64-byte field is zero).
    pub const fn chip_id_len(self) -> usize {
        match self {
            Self::Turin => 8,
            _ => 64,
        }
    }

    /// Identifies the generation from CPUID family and model (family =
    /// extended family + base family, model = extended model << 4 | base
    /// model), as in the v3+ attestation report's CPUID bytes.
    pub const fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x17, 0x00..=0x0F) => Some(Self::Naples),
            (0x17, 0x30..=0x3F) => Some(Self::Rome),
            (0x19, 0x00..=0x0F) => Some(Self::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(Self::Genoa),
            (0x1A, 0x00..=0x11) => Some(Self::Turin),
            _ => None,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True for a stepping suffix such as `B0` or `B1`: one ASCII letter followed
/// by one or more ASCII digits.
fn is_stepping(suffix: &str) -> bool {
    let mut chars = suffix.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && !chars.as_str().is_empty()
        && chars.all(|c| c.is_ascii_digit())
}

impl FromStr for Product {
    type Err = AbiError;

    /// Parses a product name, case-insensitively. Accepts the plain names,
    /// the VCEK `productName` forms with a stepping (`"Milan-B0"`,
    /// `"Genoa-B1"`), and `"Bergamo"` / `"Siena"`, which map to Genoa.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let base = match s.split_once('-') {
            Some((base, stepping)) if is_stepping(stepping) => base,
            Some(_) => "",
            None => s,
        };
        let product = match base.to_ascii_lowercase().as_str() {
            "naples" => Self::Naples,
            "rome" => Self::Rome,
            "milan" => Self::Milan,
            "genoa" | "bergamo" | "siena" => Self::Genoa,
            "turin" => Self::Turin,
            _ => {
                return Err(AbiError::Malformed {
                    what: "product name",
                    reason: format!("unknown AMD product {s:?}"),
                })
            }
        };
        Ok(product)
    }
}

/// Which byte of a TCB_VERSION holds which security patch level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcbLayout {
    /// Milan and Genoa: byte 0 BOOT_LOADER, byte 1 TEE, bytes 2–5 reserved,
    /// byte 6 SNP, byte 7 MICROCODE.
    MilanGenoa,
    /// Turin and later: byte 0 FMC, byte 1 BOOT_LOADER, byte 2 TEE, byte 3
    /// SNP, bytes 4–6 reserved, byte 7 MICROCODE.
    Turin,
}

impl TcbLayout {
    /// The byte positions that are reserved in this layout.
    const fn reserved_range(self) -> core::ops::Range<usize> {
        match self {
            Self::MilanGenoa => 2..6,
            Self::Turin => 4..7,
        }
    }
}

/// A raw TCB_VERSION: the 64-bit little-endian value as stored in reports,
/// so the report bytes `03 00 00 00 00 00 08 73` are `0x7308_0000_0000_0003`.
///
/// Decode it with [`TcbVersion::decode`] and the product's [`TcbLayout`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcbVersion(pub u64);

impl TcbVersion {
    /// Wraps a raw value.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Builds the value from its eight wire bytes (little-endian).
    pub const fn from_le_bytes(bytes: [u8; 8]) -> Self {
        Self(u64::from_le_bytes(bytes))
    }

    /// The eight wire bytes (little-endian).
    pub const fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// Splits the value into its components according to `layout`.
    /// `fmc` is `Some` only for [`TcbLayout::Turin`].
    pub const fn decode(self, layout: TcbLayout) -> TcbParts {
        let b = self.0.to_le_bytes();
        match layout {
            TcbLayout::MilanGenoa => TcbParts {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            TcbLayout::Turin => TcbParts {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
        }
    }

    /// True when the bytes that `layout` reserves are all zero.
    pub fn reserved_bytes_zero(self, layout: TcbLayout) -> bool {
        let bytes = self.to_le_bytes();
        bytes
            .get(layout.reserved_range())
            .is_some_and(|r| r.iter().all(|b| *b == 0))
    }
}

impl From<u64> for TcbVersion {
    fn from(raw: u64) -> Self {
        Self(raw)
    }
}

impl From<TcbVersion> for u64 {
    fn from(tcb: TcbVersion) -> Self {
        tcb.0
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

impl fmt::Debug for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcbVersion({:#018x})", self.0)
    }
}

/// The security patch levels held in a TCB_VERSION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcbParts {
    /// FMC SPL (Turin and later only; `None` for Milan/Genoa).
    pub fmc: Option<u8>,
    /// BOOT_LOADER SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl TcbParts {
    /// Packs the components into a TCB_VERSION with `layout`; reserved bytes
    /// are zero. With [`TcbLayout::MilanGenoa`] `fmc` is ignored; with
    /// [`TcbLayout::Turin`] a missing `fmc` encodes as 0.
    pub const fn encode(&self, layout: TcbLayout) -> TcbVersion {
        let mut b = [0u8; 8];
        match layout {
            TcbLayout::MilanGenoa => {
                b[0] = self.bootloader;
                b[1] = self.tee;
                b[6] = self.snp;
                b[7] = self.microcode;
            }
            TcbLayout::Turin => {
                b[0] = match self.fmc {
                    Some(fmc) => fmc,
                    None => 0,
                };
                b[1] = self.bootloader;
                b[2] = self.tee;
                b[3] = self.snp;
                b[7] = self.microcode;
            }
        }
        TcbVersion::from_le_bytes(b)
    }

    /// True when every component is at least the one in `min`. `fmc` is
    /// compared only when both sides have it.
    pub fn meets_minimum(&self, min: &TcbParts) -> bool {
        let fmc_ok = match (self.fmc, min.fmc) {
            (Some(have), Some(need)) => have >= need,
            _ => true,
        };
        fmc_ok
            && self.bootloader >= min.bootloader
            && self.tee >= min.tee
            && self.snp >= min.snp
            && self.microcode >= min.microcode
    }
}

impl fmt::Display for TcbParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "FMC {fmc}, ")?;
        }
        write!(
            f,
            "BL {}, TEE {}, SNP {}, ucode {:#04x}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing() {
        for p in Product::ALL {
            assert_eq!(p.name().parse::<Product>(), Ok(*p));
            assert_eq!(p.name().to_uppercase().parse::<Product>(), Ok(*p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!("Milan-B0".parse(), Ok(Product::Milan));
        assert_eq!("genoa-b1".parse(), Ok(Product::Genoa));
        assert_eq!("Turin".parse(), Ok(Product::Turin));
        assert_eq!("Bergamo".parse(), Ok(Product::Genoa));
        assert_eq!("siena".parse(), Ok(Product::Genoa));
        for bad in [
            "",
            "Milan-",
            "Milan-B",
            "Milan-0",
            "Milan-B0x",
            "-B0",
            "Venice",
            "Mila",
            "Milan B0",
        ] {
            assert!(bad.parse::<Product>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn properties() {
        let snp: Vec<_> = Product::ALL.iter().filter(|p| p.is_snp_capable()).collect();
        assert_eq!(snp, [&Product::Milan, &Product::Genoa, &Product::Turin]);
        assert_eq!(Product::Turin.tcb_layout(), TcbLayout::Turin);
        assert_eq!(Product::Milan.tcb_layout(), TcbLayout::MilanGenoa);
        assert_eq!(Product::Genoa.tcb_layout(), TcbLayout::MilanGenoa);
        assert_eq!(Product::Turin.chip_id_len(), 8);
        assert_eq!(Product::Genoa.chip_id_len(), 64);
    }

    #[test]
    fn cpuid() {
        assert_eq!(Product::from_cpuid(0x17, 0x01), Some(Product::Naples));
        assert_eq!(Product::from_cpuid(0x17, 0x31), Some(Product::Rome));
        assert_eq!(Product::from_cpuid(0x17, 0x10), None);
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x0F), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0xA0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0x21), None);
        assert_eq!(Product::from_cpuid(0x1A, 0x00), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x1A, 0x11), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x1A, 0x12), None);
        assert_eq!(
            Product::from_cpuid(0x1A, 0x50),
            None,
            "Venice is not modelled"
        );
        assert_eq!(Product::from_cpuid(0x18, 0x00), None);
    }

    #[test]
    fn real_milan_tcb() {
        // REPORTED_TCB bytes of a real Milan report (offset 0x180).
        let tcb = TcbVersion::from_le_bytes([0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x73]);
        assert_eq!(tcb.raw(), 0x7308_0000_0000_0003);
        let parts = tcb.decode(TcbLayout::MilanGenoa);
        assert_eq!(
            parts,
            TcbParts {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 0x73
            }
        );
        assert_eq!(parts.encode(TcbLayout::MilanGenoa), tcb);
        assert!(tcb.reserved_bytes_zero(TcbLayout::MilanGenoa));
        assert!(
            !tcb.reserved_bytes_zero(TcbLayout::Turin),
            "byte 6 (SNP) is reserved on Turin"
        );
        assert_eq!(parts.to_string(), "BL 3, TEE 0, SNP 8, ucode 0x73");
    }

    #[test]
    fn turin_layout() {
        let tcb = TcbVersion::from_le_bytes([1, 2, 3, 4, 0, 0, 0, 0x48]);
        let parts = tcb.decode(TcbLayout::Turin);
        assert_eq!(
            parts,
            TcbParts {
                fmc: Some(1),
                bootloader: 2,
                tee: 3,
                snp: 4,
                microcode: 0x48
            }
        );
        assert_eq!(parts.encode(TcbLayout::Turin), tcb);
        assert!(tcb.reserved_bytes_zero(TcbLayout::Turin));
        assert!(!tcb.reserved_bytes_zero(TcbLayout::MilanGenoa));
        let dirty = TcbVersion::from_le_bytes([1, 2, 3, 4, 0, 9, 0, 0x48]);
        assert!(!dirty.reserved_bytes_zero(TcbLayout::Turin));
        assert_eq!(
            TcbParts { fmc: None, ..parts }
                .encode(TcbLayout::Turin)
                .to_le_bytes(),
            [0, 2, 3, 4, 0, 0, 0, 0x48]
        );
        // fmc is dropped by the Milan/Genoa layout.
        assert_eq!(
            parts
                .encode(TcbLayout::MilanGenoa)
                .decode(TcbLayout::MilanGenoa)
                .fmc,
            None
        );
    }

    #[test]
    fn minimum() {
        let have = TcbParts {
            fmc: Some(2),
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 0x73,
        };
        assert!(have.meets_minimum(&have));
        assert!(have.meets_minimum(&TcbParts::default()));
        assert!(have.meets_minimum(&TcbParts { fmc: None, ..have }));
        assert!(!have.meets_minimum(&TcbParts {
            fmc: Some(3),
            ..have
        }));
        assert!(!have.meets_minimum(&TcbParts {
            bootloader: 4,
            ..have
        }));
        assert!(!have.meets_minimum(&TcbParts { tee: 1, ..have }));
        assert!(!have.meets_minimum(&TcbParts { snp: 9, ..have }));
        assert!(!have.meets_minimum(&TcbParts {
            microcode: 0x74,
            ..have
        }));
        assert!(TcbParts { fmc: None, ..have }.meets_minimum(&TcbParts {
            fmc: Some(9),
            ..have
        }));
    }
}
