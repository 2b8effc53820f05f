//! GUIDs (UUIDs) as they appear in AMD and OVMF structures, and the
//! well-known values sevkit needs.
//!
//! A [`Guid`] stores its 16 bytes in **RFC-4122 order**, the order in which the
//! hyphenated text reads (`c0b406a4-a803-…` starts with byte `0xc0`). This is
//! the order used by the GHCB certificate table.
//!
//! OVMF's GUID tables, the kernel-hashes table and sevctl's secret table use
//! the EFI (Microsoft) **mixed-endian** form instead, where the first three
//! fields (4, 2 and 2 bytes) are stored little-endian: use
//! [`Guid::to_le_bytes`] and [`Guid::from_le_bytes`] for those.

use core::fmt;
use core::str::FromStr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{AbiError, Result};

/// Length of a GUID in bytes.
pub const GUID_LEN: usize = 16;

/// Length of the hyphenated text form (`8-4-4-4-12` hex digits).
pub const GUID_TEXT_LEN: usize = 36;

/// A 128-bit GUID stored in RFC-4122 byte order (as the text reads).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Guid(pub [u8; GUID_LEN]);

impl Guid {
    /// The all-zero GUID.
    pub const NIL: Guid = Guid([0; GUID_LEN]);

    /// Builds a GUID from the 128-bit number its text spells, so constants
    /// read like the text: `Guid::from_u128(0xc0b406a4_a803_4952_9743_3fb6014cd0ae)`.
    pub const fn from_u128(value: u128) -> Self {
        Self(value.to_be_bytes())
    }

    /// The 128-bit number the text spells (inverse of [`Guid::from_u128`]).
    pub const fn to_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// Wraps 16 bytes given in RFC-4122 order.
    pub const fn from_bytes(bytes: [u8; GUID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes in RFC-4122 order.
    pub const fn to_bytes(&self) -> [u8; GUID_LEN] {
        self.0
    }

    /// Reads a GUID stored in EFI mixed-endian form (first three fields
    /// little-endian), as in OVMF GUID tables.
    pub const fn from_le_bytes(bytes: [u8; GUID_LEN]) -> Self {
        Self(swap_fields(bytes))
    }

    /// The EFI mixed-endian form (first three fields little-endian), as
    /// stored in OVMF GUID tables and the kernel-hashes table.
    pub const fn to_le_bytes(&self) -> [u8; GUID_LEN] {
        swap_fields(self.0)
    }

    /// True for the all-zero GUID.
    pub const fn is_nil(&self) -> bool {
        self.to_u128() == 0
    }

    /// Parses the hyphenated text form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`),
    /// hex digits in either case. No braces, no `urn:uuid:` prefix.
    pub fn parse(text: &str) -> Result<Self> {
        // The five groups of digits: where each starts in the text, and the
        // bytes it fills. A '-' precedes every group but the first.
        const GROUPS: [(usize, core::ops::Range<usize>); 5] =
            [(0, 0..4), (9, 4..6), (14, 6..8), (19, 8..10), (24, 10..16)];
        let bad = |reason: String| AbiError::Malformed {
            what: "GUID",
            reason,
        };
        let bytes = text.as_bytes();
        if bytes.len() != GUID_TEXT_LEN {
            return Err(bad(format!(
                "expected {GUID_TEXT_LEN} characters, got {}",
                bytes.len()
            )));
        }
        let mut out = [0u8; GUID_LEN];
        for (start, range) in GROUPS {
            if start > 0 && bytes[start - 1] != b'-' {
                return Err(bad(format!("expected '-' at position {}", start - 1)));
            }
            let digits = &bytes[start..start + 2 * range.len()];
            hex::decode_to_slice(digits, &mut out[range]).map_err(|e| match e {
                hex::FromHexError::InvalidHexCharacter { index, .. } => {
                    bad(format!("invalid hex digit at position {}", start + index))
                }
                other => bad(other.to_string()),
            })?;
        }
        Ok(Self(out))
    }
}

const fn swap_fields(mut b: [u8; GUID_LEN]) -> [u8; GUID_LEN] {
    let (b0, b1, b2, b3) = (b[0], b[1], b[2], b[3]);
    b[0] = b3;
    b[1] = b2;
    b[2] = b1;
    b[3] = b0;
    let (b4, b5) = (b[4], b[5]);
    b[4] = b5;
    b[5] = b4;
    let (b6, b7) = (b[6], b[7]);
    b[6] = b7;
    b[7] = b6;
    b
}

impl FromStr for Guid {
    type Err = AbiError;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl From<[u8; GUID_LEN]> for Guid {
    fn from(bytes: [u8; GUID_LEN]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

// --- GHCB extended-report certificate table (§2.13) -----------------------

/// Certificate table entry: the AMD Root Key (ARK).
pub const CERT_ARK: Guid = Guid::from_u128(0xc0b4_06a4_a803_4952_9743_3fb6_014c_d0ae);
/// Certificate table entry: the AMD SEV Key (ASK), also used for the ASVK.
pub const CERT_ASK: Guid = Guid::from_u128(0x4ab7_b379_bbac_4fe4_a02f_05ae_f327_c782);
/// Certificate table entry: the Versioned Chip Endorsement Key (VCEK).
pub const CERT_VCEK: Guid = Guid::from_u128(0x63da_758d_e664_4564_adc5_f4b9_3be8_accd);
/// Certificate table entry: the Versioned Loaded Endorsement Key (VLEK).
pub const CERT_VLEK: Guid = Guid::from_u128(0xa807_4bc2_a25a_483e_aae6_39c0_45a0_b8a1);
/// Certificate table entry: a certificate revocation list (virtee/sev).
pub const CERT_CRL: Guid = Guid::from_u128(0x92f8_1bc3_5811_4d3d_97ff_d19f_88dc_67ea);
/// Certificate table entry: go-sev-guest's non-standard "extra platform info".
pub const CERT_GOSEV_EXTRA_PLATFORM_INFO: Guid =
    Guid::from_u128(0xecae_0c0f_9502_43b1_afa2_0ae2_e0d5_65b6);

// --- OVMF footer GUID table and its entries --------------------------------

/// OVMF footer GUID table (the table ends 32 bytes before the image end).
pub const OVMF_TABLE_FOOTER: Guid = Guid::from_u128(0x96b5_82de_1fb2_45f7_baea_a366_c55a_082d);
/// OVMF SEV metadata entry (u32 offset from image end to the `ASEV` header).
pub const OVMF_SEV_METADATA: Guid = Guid::from_u128(0xdc88_6566_984a_4798_a75e_5585_a7bf_67cc);
/// OVMF SEV-ES reset block entry (u32 AP reset address).
pub const OVMF_SEV_ES_RESET_BLOCK: Guid =
    Guid::from_u128(0x00f7_71de_1a7e_4fcb_890e_68c7_7e2f_b44e);
/// OVMF SEV hashes-table entry (`SevHashTableDescriptor {u32 base; u32 size}`).
pub const OVMF_SEV_HASH_TABLE_RV: Guid = Guid::from_u128(0x7255_371f_3a3b_4b04_927b_1da6_efa8_d454);
/// OVMF SEV secret block entry (`{u32 base; u32 size}`).
pub const OVMF_SEV_SECRET_BLOCK: Guid = Guid::from_u128(0x4c2e_b361_7d9b_4cc3_8081_127c_90d3_d294);
/// OVMF SVSM information entry.
pub const OVMF_SVSM_INFO: Guid = Guid::from_u128(0xa789_a612_0597_4c4b_a49f_cbb1_fe9d_1ddd);

// --- QEMU kernel-hashes table (measured direct boot) -----------------------

/// Kernel-hashes table header GUID.
pub const KERNEL_HASHES_TABLE: Guid = Guid::from_u128(0x9438_d606_4f22_4cc9_b479_a793_d411_fd21);
/// Kernel-hashes entry: kernel command line.
pub const KERNEL_HASHES_CMDLINE: Guid = Guid::from_u128(0x97d0_2dd8_bd20_4c94_aa78_e771_4d36_ab2a);
/// Kernel-hashes entry: initrd.
pub const KERNEL_HASHES_INITRD: Guid = Guid::from_u128(0x44ba_f731_3a2f_4bd7_9af1_41e2_9169_781d);
/// Kernel-hashes entry: kernel (setup data followed by the kernel image).
pub const KERNEL_HASHES_KERNEL: Guid = Guid::from_u128(0x4de7_9437_abd2_427f_b835_d5b1_72d2_045b);

// --- sevctl -----------------------------------------------------------------

/// sevctl's launch-secret table header GUID (entries `GUID_le || u32 len || data`).
pub const SEVCTL_SECRET_TABLE: Guid = Guid::from_u128(0x1e74_f542_71dd_4d66_963e_ef42_87ff_173b);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(core::mem::size_of::<Guid>(), 16);
    }

    #[test]
    fn constants_match_their_text() {
        let table = [
            (CERT_ARK, "c0b406a4-a803-4952-9743-3fb6014cd0ae"),
            (CERT_ASK, "4ab7b379-bbac-4fe4-a02f-05aef327c782"),
            (CERT_VCEK, "63da758d-e664-4564-adc5-f4b93be8accd"),
            (CERT_VLEK, "a8074bc2-a25a-483e-aae6-39c045a0b8a1"),
            (CERT_CRL, "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"),
            (
                CERT_GOSEV_EXTRA_PLATFORM_INFO,
                "ecae0c0f-9502-43b1-afa2-0ae2e0d565b6",
            ),
            (OVMF_TABLE_FOOTER, "96b582de-1fb2-45f7-baea-a366c55a082d"),
            (OVMF_SEV_METADATA, "dc886566-984a-4798-a75e-5585a7bf67cc"),
            (
                OVMF_SEV_ES_RESET_BLOCK,
                "00f771de-1a7e-4fcb-890e-68c77e2fb44e",
            ),
            (
                OVMF_SEV_HASH_TABLE_RV,
                "7255371f-3a3b-4b04-927b-1da6efa8d454",
            ),
            (
                OVMF_SEV_SECRET_BLOCK,
                "4c2eb361-7d9b-4cc3-8081-127c90d3d294",
            ),
            (OVMF_SVSM_INFO, "a789a612-0597-4c4b-a49f-cbb1fe9d1ddd"),
            (KERNEL_HASHES_TABLE, "9438d606-4f22-4cc9-b479-a793d411fd21"),
            (
                KERNEL_HASHES_CMDLINE,
                "97d02dd8-bd20-4c94-aa78-e7714d36ab2a",
            ),
            (KERNEL_HASHES_INITRD, "44baf731-3a2f-4bd7-9af1-41e29169781d"),
            (KERNEL_HASHES_KERNEL, "4de79437-abd2-427f-b835-d5b172d2045b"),
            (SEVCTL_SECRET_TABLE, "1e74f542-71dd-4d66-963e-ef4287ff173b"),
        ];
        for (guid, text) in table {
            assert_eq!(guid.to_string(), text);
            assert_eq!(Guid::parse(text).unwrap(), guid);
            assert_eq!(Guid::parse(&text.to_uppercase()).unwrap(), guid);
        }
    }

    #[test]
    fn rfc_byte_order() {
        let g = Guid::parse("c0b406a4-a803-4952-9743-3fb6014cd0ae").unwrap();
        assert_eq!(g.0[0], 0xc0);
        assert_eq!(g.0[15], 0xae);
        assert_eq!(Guid::from_u128(g.to_u128()), g);
        assert_eq!(Guid::from_bytes(g.to_bytes()), g);
    }

    #[test]
    fn mixed_endian_form() {
        // The OVMF footer GUID as it appears in an OVMF image.
        let le = [
            0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a,
            0x08, 0x2d,
        ];
        assert_eq!(OVMF_TABLE_FOOTER.to_le_bytes(), le);
        assert_eq!(Guid::from_le_bytes(le), OVMF_TABLE_FOOTER);
        assert_eq!(
            Guid::from_le_bytes(OVMF_SEV_METADATA.to_le_bytes()),
            OVMF_SEV_METADATA
        );
    }

    #[test]
    fn parse_rejects_malformed_text() {
        for bad in [
            "",
            "c0b406a4a8034952974 33fb6014cd0ae",
            "c0b406a4-a803-4952-9743-3fb6014cd0a",
            "c0b406a4-a803-4952-9743-3fb6014cd0aef",
            "c0b406a4_a803-4952-9743-3fb6014cd0ae",
            "c0b406a4-a803-4952-9743-3fb6014cd0ag",
            "{0b406a4-a803-4952-9743-3fb6014cd0a}",
            "c0b406a4-a803-4952-9743-3fb6014cd0\u{e9}",
        ] {
            assert!(Guid::parse(bad).is_err(), "{bad:?}");
        }
        assert!("c0b406a4-a803-4952-9743-3fb6014cd0ae"
            .parse::<Guid>()
            .is_ok());
    }

    #[test]
    fn parse_errors_name_the_position() {
        let reason = |text: &str| match Guid::parse(text) {
            Err(AbiError::Malformed { reason, .. }) => reason,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(
            reason("c0b406a4_a803-4952-9743-3fb6014cd0ae"),
            "expected '-' at position 8"
        );
        assert_eq!(
            reason("c0b406a4-a803-4952-9743-3fb6014cd0ag"),
            "invalid hex digit at position 35"
        );
        assert_eq!(
            reason("c0b406a4-a803-4952-97x3-3fb6014cd0ae"),
            "invalid hex digit at position 21"
        );
        // The first problem from the left is the one named.
        assert_eq!(
            reason("z0b406a4_a803-4952-9743-3fb6014cd0ae"),
            "invalid hex digit at position 0"
        );
        assert_eq!(reason("c0b406a4-a803"), "expected 36 characters, got 13");
        assert_eq!(
            Guid::parse("C0B406A4-A803-4952-9743-3FB6014CD0AE").unwrap(),
            CERT_ARK
        );
    }

    #[test]
    fn nil_and_debug() {
        assert!(Guid::NIL.is_nil());
        assert!(!CERT_ARK.is_nil());
        assert_eq!(
            format!("{CERT_ARK:?}"),
            "Guid(c0b406a4-a803-4952-9743-3fb6014cd0ae)"
        );
    }
}
