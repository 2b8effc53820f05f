//! SNP launch structures: page types and the PAGE_INFO record hashed into
//! the launch digest (SNP_LAUNCH_UPDATE), the ID block and the ID
//! authentication information (SNP_LAUNCH_FINISH).

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{read_exact, AbiError, Result};
use crate::launch_digest::SnpLaunchDigest;
use crate::policy::SnpPolicy;
use crate::pubkey::EccPublicKey;
use crate::signature::{EcdsaSignature, HexBytes};

/// Size of a launch digest (SHA-384).
pub const LD_LEN: usize = 48;
/// Size of PAGE_INFO.
pub const PAGE_INFO_LEN: usize = 0x70;
/// Size of the ID block.
pub const ID_BLOCK_LEN: usize = 0x60;
/// Size of the ID authentication information.
pub const ID_AUTH_LEN: usize = 0x1000;
/// ID block version firmware accepts (the firmware does not check it).
pub const ID_BLOCK_VERSION: u32 = 1;
/// `id_key_algo` / `auth_key_algo`: ECDSA P-384 with SHA-384.
pub const ID_AUTH_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// VMPL permission bit: read.
pub const VMPL_PERM_READ: u8 = 1 << 0;
/// VMPL permission bit: write.
pub const VMPL_PERM_WRITE: u8 = 1 << 1;
/// VMPL permission bit: execute at CPL3.
pub const VMPL_PERM_EXEC_USER: u8 = 1 << 2;
/// VMPL permission bit: execute at CPL0–2.
pub const VMPL_PERM_EXEC_SUPERVISOR: u8 = 1 << 3;
/// VMPL permission bit: supervisor shadow stack.
pub const VMPL_PERM_SSS: u8 = 1 << 4;

/// Page types of SNP_LAUNCH_UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PageType {
    /// Measured data page (CONTENTS = SHA-384 of the page).
    Normal = 1,
    /// VMSA page (measured with the TSC scale/offset zeroed).
    Vmsa = 2,
    /// Zero page (CONTENTS zero).
    Zero = 3,
    /// Unmeasured page (CONTENTS zero, data kept).
    Unmeasured = 4,
    /// Secrets page built by firmware (CONTENTS zero).
    Secrets = 5,
    /// CPUID page validated by firmware (CONTENTS zero).
    Cpuid = 6,
}

impl PageType {
    /// Maps a wire value (1–6) to a page type.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Normal,
            2 => Self::Vmsa,
            3 => Self::Zero,
            4 => Self::Unmeasured,
            5 => Self::Secrets,
            6 => Self::Cpuid,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// PAGE_INFO (0x70 bytes): `launch_digest = SHA-384(PAGE_INFO)` per 4 KiB page.
///
/// Bytes 0x64..0x68 are in **firmware order**: reserved, vmpl1, vmpl2,
/// vmpl3 (virtee/sev and sev-snp-measure write the reverse, which only
/// coincides when all permissions are zero).
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PageInfo {
    /// Launch digest (or IMD) before this page.
    pub digest_cur: SnpLaunchDigest,
    /// SHA-384 of the page, or zeros.
    pub contents: [u8; LD_LEN],
    /// 0x70.
    pub length: U16,
    /// Page type (see [`PageType`]).
    pub page_type: u8,
    /// Bit 0: IMI page; bits 7:1 reserved.
    pub imi_page: u8,
    /// Reserved, zero.
    pub reserved: u8,
    /// VMPL1 permissions.
    pub vmpl1_perms: u8,
    /// VMPL2 permissions.
    pub vmpl2_perms: u8,
    /// VMPL3 permissions.
    pub vmpl3_perms: u8,
    /// Guest physical address of the page.
    pub gpa: U64,
}

impl PageInfo {
    /// Builds a PAGE_INFO; `vmpl_perms` are the VMPL1, VMPL2 and VMPL3
    /// permissions in that order.
    pub fn new(
        digest_cur: SnpLaunchDigest,
        contents: [u8; LD_LEN],
        page_type: PageType,
        imi_page: bool,
        vmpl_perms: [u8; 3],
        gpa: u64,
    ) -> Self {
        let [perms1, perms2, perms3] = vmpl_perms;
        Self {
            digest_cur,
            contents,
            length: U16::new(PAGE_INFO_LEN as u16),
            page_type: page_type.as_u8(),
            imi_page: u8::from(imi_page),
            reserved: 0,
            vmpl1_perms: perms1,
            vmpl2_perms: perms2,
            vmpl3_perms: perms3,
            gpa: U64::new(gpa),
        }
    }

    /// Parses 0x70 bytes, checking the length field (0x70), the page type
    /// (1–6) and the reserved bits.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "PAGE_INFO";
        let info: Self = read_exact(WHAT, bytes)?;
        if usize::from(info.length.get()) != PAGE_INFO_LEN {
            return Err(AbiError::InvalidField {
                what: WHAT,
                field: "length",
                value: u64::from(info.length.get()),
            });
        }
        if PageType::from_u8(info.page_type).is_none() {
            return Err(AbiError::InvalidField {
                what: WHAT,
                field: "page_type",
                value: u64::from(info.page_type),
            });
        }
        if info.imi_page & !1 != 0 {
            return Err(AbiError::Reserved {
                what: WHAT,
                field: "imi_page",
                value: u64::from(info.imi_page & !1),
            });
        }
        if info.reserved != 0 {
            return Err(AbiError::Reserved {
                what: WHAT,
                field: "reserved",
                value: u64::from(info.reserved),
            });
        }
        Ok(info)
    }

    /// The page type, if valid.
    pub fn page_type(&self) -> Option<PageType> {
        PageType::from_u8(self.page_type)
    }

    /// VMPL1, VMPL2 and VMPL3 permissions.
    pub fn vmpl_perms(&self) -> [u8; 3] {
        [self.vmpl1_perms, self.vmpl2_perms, self.vmpl3_perms]
    }
}

impl fmt::Debug for PageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageInfo")
            .field("digest_cur", &HexBytes(&self.digest_cur[..]))
            .field("contents", &HexBytes(&self.contents))
            .field("length", &self.length.get())
            .field("page_type", &self.page_type)
            .field("imi_page", &self.imi_page)
            .field("vmpl_perms", &self.vmpl_perms())
            .field("gpa", &format_args!("{:#x}", self.gpa.get()))
            .finish_non_exhaustive()
    }
}

/// The ID block (0x60 bytes) a guest owner signs and passes to SNP_LAUNCH_FINISH.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IdBlock {
    /// Expected launch digest.
    pub ld: SnpLaunchDigest,
    /// Family id (reported in the attestation report).
    pub family_id: [u8; 16],
    /// Image id (reported in the attestation report).
    pub image_id: [u8; 16],
    /// Version, 1 (not checked by firmware).
    pub version: U32,
    /// Guest security version number.
    pub guest_svn: U32,
    /// Expected guest policy.
    pub policy: SnpPolicy,
}

impl IdBlock {
    /// Parses 0x60 bytes. The version is not checked (firmware does not
    /// check it either; mushroom launches with version 0).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("ID block", bytes)
    }
}

impl fmt::Debug for IdBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdBlock")
            .field("ld", &HexBytes(&self.ld[..]))
            .field("family_id", &HexBytes(&self.family_id))
            .field("image_id", &HexBytes(&self.image_id))
            .field("version", &self.version.get())
            .field("guest_svn", &self.guest_svn.get())
            .field("policy", &self.policy)
            .finish()
    }
}

/// ID authentication information (4096 bytes): the ID block's signature, the
/// ID key, and optionally the author key's signature over the ID key.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IdAuth {
    /// Algorithm of the ID key signature, 1 (ECDSA P-384 SHA-384).
    pub id_key_algo: U32,
    /// Algorithm of the author key signature, 1.
    pub auth_key_algo: U32,
    /// Reserved.
    pub reserved0: [u8; 0x38],
    /// Signature of the 0x60-byte ID block by the ID key.
    pub id_block_sig: EcdsaSignature,
    /// The ID public key.
    pub id_key: EccPublicKey,
    /// Reserved.
    pub reserved1: [u8; 0x3C],
    /// Signature of the 0x404-byte `id_key` structure by the author key.
    pub id_key_sig: EcdsaSignature,
    /// The author public key.
    pub author_key: EccPublicKey,
    /// Reserved to the end of the page.
    pub reserved2: [u8; ID_AUTH_LEN - 0xC84],
}

impl IdAuth {
    /// Parses 4096 bytes. Only the length is checked: in particular
    /// `id_key_algo == 1` and `auth_key_algo == 1` are **not** enforced here
    /// (SNP_LAUNCH_FINISH checks them and fails with INVALID_PARAM), so a
    /// firmware model can parse a bad block and report the firmware's error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        read_exact("ID authentication information", bytes)
    }
}

impl fmt::Debug for IdAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdAuth")
            .field("id_key_algo", &self.id_key_algo.get())
            .field("auth_key_algo", &self.auth_key_algo.get())
            .field("id_block_sig", &self.id_block_sig)
            .field("id_key", &self.id_key)
            .field("id_key_sig", &self.id_key_sig)
            .field("author_key", &self.author_key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn page_info_layout() {
        assert_eq!(size_of::<PageInfo>(), 0x70);
        assert_eq!(offset_of!(PageInfo, digest_cur), 0x00);
        assert_eq!(offset_of!(PageInfo, contents), 0x30);
        assert_eq!(offset_of!(PageInfo, length), 0x60);
        assert_eq!(offset_of!(PageInfo, page_type), 0x62);
        assert_eq!(offset_of!(PageInfo, imi_page), 0x63);
        assert_eq!(offset_of!(PageInfo, reserved), 0x64);
        assert_eq!(offset_of!(PageInfo, vmpl1_perms), 0x65);
        assert_eq!(offset_of!(PageInfo, vmpl2_perms), 0x66);
        assert_eq!(offset_of!(PageInfo, vmpl3_perms), 0x67);
        assert_eq!(offset_of!(PageInfo, gpa), 0x68);
    }

    #[test]
    fn page_info_bytes_and_round_trip() {
        let info = PageInfo::new(
            SnpLaunchDigest::new([1; 48]),
            [2; 48],
            PageType::Vmsa,
            true,
            [VMPL_PERM_READ, VMPL_PERM_WRITE, VMPL_PERM_EXEC_SUPERVISOR],
            0xFFFF_FFFF_F000,
        );
        let b = info.as_bytes();
        assert_eq!(&b[0x60..0x68], &[0x70, 0x00, 2, 1, 0, 1, 2, 8]);
        assert_eq!(&b[0x68..0x70], &0xFFFF_FFFF_F000u64.to_le_bytes());
        let parsed = PageInfo::from_bytes(b).unwrap();
        assert_eq!(parsed, info);
        assert_eq!(parsed.as_bytes(), b);
        assert_eq!(parsed.page_type(), Some(PageType::Vmsa));
        assert_eq!(parsed.vmpl_perms(), [1, 2, 8]);
        assert!(format!("{parsed:?}").contains("0xfffffffff000"));
    }

    #[test]
    fn page_info_rejects() {
        let good = PageInfo::new(
            SnpLaunchDigest::new([0; 48]),
            [0; 48],
            PageType::Normal,
            false,
            [0; 3],
            0,
        );
        assert!(matches!(
            PageInfo::from_bytes(&[0; 0x6F]),
            Err(AbiError::Length { .. })
        ));
        assert!(matches!(
            PageInfo::from_bytes(&[0; 0x71]),
            Err(AbiError::Length { .. })
        ));
        let mut b = good;
        b.length = U16::new(0x60);
        assert!(PageInfo::from_bytes(b.as_bytes()).is_err());
        let mut b = good;
        b.page_type = 7;
        assert!(PageInfo::from_bytes(b.as_bytes()).is_err());
        b.page_type = 0;
        assert!(PageInfo::from_bytes(b.as_bytes()).is_err());
        let mut b = good;
        b.imi_page = 2;
        assert!(matches!(
            PageInfo::from_bytes(b.as_bytes()),
            Err(AbiError::Reserved { .. })
        ));
        let mut b = good;
        b.reserved = 1;
        assert!(matches!(
            PageInfo::from_bytes(b.as_bytes()),
            Err(AbiError::Reserved { .. })
        ));
    }

    #[test]
    fn page_types() {
        for v in 1..=6u8 {
            assert_eq!(PageType::from_u8(v).unwrap().as_u8(), v);
        }
        assert_eq!(PageType::from_u8(0), None);
        assert_eq!(PageType::from_u8(7), None);
    }

    #[test]
    fn id_block_layout_and_round_trip() {
        assert_eq!(size_of::<IdBlock>(), 0x60);
        assert_eq!(offset_of!(IdBlock, ld), 0x00);
        assert_eq!(offset_of!(IdBlock, family_id), 0x30);
        assert_eq!(offset_of!(IdBlock, image_id), 0x40);
        assert_eq!(offset_of!(IdBlock, version), 0x50);
        assert_eq!(offset_of!(IdBlock, guest_svn), 0x54);
        assert_eq!(offset_of!(IdBlock, policy), 0x58);
        let bytes: Vec<u8> = (0..0x60u8).collect();
        let block = IdBlock::from_bytes(&bytes).unwrap();
        assert_eq!(block.as_bytes(), &bytes[..]);
        assert_eq!(
            block.version.get(),
            u32::from_le_bytes([0x50, 0x51, 0x52, 0x53])
        );
        assert!(IdBlock::from_bytes(&bytes[1..]).is_err());
        assert!(IdBlock::from_bytes(&[0; 0x61]).is_err());
        assert!(format!("{block:?}").contains("guest_svn"));
    }

    #[test]
    fn id_auth_layout_and_round_trip() {
        assert_eq!(size_of::<IdAuth>(), 0x1000);
        assert_eq!(offset_of!(IdAuth, id_key_algo), 0x000);
        assert_eq!(offset_of!(IdAuth, auth_key_algo), 0x004);
        assert_eq!(offset_of!(IdAuth, reserved0), 0x008);
        assert_eq!(offset_of!(IdAuth, id_block_sig), 0x040);
        assert_eq!(offset_of!(IdAuth, id_key), 0x240);
        assert_eq!(offset_of!(IdAuth, reserved1), 0x644);
        assert_eq!(offset_of!(IdAuth, id_key_sig), 0x680);
        assert_eq!(offset_of!(IdAuth, author_key), 0x880);
        assert_eq!(offset_of!(IdAuth, reserved2), 0xC84);
        let bytes: Vec<u8> = (0..0x1000u32).map(|i| (i * 7) as u8).collect();
        let auth = IdAuth::from_bytes(&bytes).unwrap();
        assert_eq!(auth.as_bytes(), &bytes[..]);
        // Algorithms are not enforced by the parser.
        assert_ne!(auth.id_key_algo.get(), ID_AUTH_ALGO_ECDSA_P384_SHA384);
        assert!(IdAuth::from_bytes(&bytes[..0xFFF]).is_err());
        assert!(IdAuth::from_bytes(&[0; 0x1001]).is_err());
        assert!(format!("{auth:?}").contains("IdAuth"));
    }
}
