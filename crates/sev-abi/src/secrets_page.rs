//! The SNP secrets page (4 KiB), written by firmware for a
//! `PAGE_TYPE_SECRETS` page at launch. It carries the four VM platform
//! communication keys (VMPCKs) that encrypt guest messages.
//!
//! ```text
//! 0x000 u32 version   0x004 u32 flags (bit0 IMI_EN)   0x008 u32 fms   0x00C rsvd
//! 0x010 gosvw[16]     0x020 vmpck0..3 [4 × 32]
//! 0x0A0 guest OS area (firmware writes zeros; GHCB/edk2 layout):
//!       u32 msg_seqno_0..3 (low halves), u64 ap_jump_table_pa @0xB0,
//!       u32 msg_seqno_hi_0..3 @0xB8, rsvd[22] @0xC8, u16 version @0xDE, guest_usage[32] @0xE0
//! 0x100 vmsa_tweak_bitmap[64]
//! 0x140 SVSM area: u64 svsm_base, u64 svsm_size, u64 svsm_caa, u32 svsm_max_version, u8 svsm_guest_vmpl, rsvd[3]
//! 0x160 u32 tsc_factor   0x164 rsvd   0x168 u64 launch_mit_vector   0x170 rsvd to 0x1000
//! ```
//!
//! `Debug` never prints the VMPCKs.

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{read_exact, Result};
use crate::signature::HexBytes;

/// Size of the secrets page.
pub const SECRETS_PAGE_LEN: usize = 0x1000;
/// Size of one VMPCK.
pub const VMPCK_LEN: usize = 32;
/// Number of VMPCKs.
pub const VMPCK_COUNT: usize = 4;
/// `flags` bit 0: the guest was launched with IMI enabled (migration agent import).
pub const SECRETS_FLAG_IMI_EN: u32 = 1;

/// The SNP secrets page. Not `Copy` (it holds keys); compare with `as_bytes()`.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SecretsPage {
    /// Layout version written by firmware (2 or 3).
    pub version: U32,
    /// Bit 0: IMI_EN.
    pub flags: U32,
    /// CPUID_Fn0000_0001_EAX (family/model/stepping) of the platform.
    pub fms: U32,
    /// Reserved.
    pub reserved0: U32,
    /// Guest OS-visible workarounds, from LAUNCH_START.
    pub gosvw: [u8; 16],
    /// VMPCK0..3: the AES-256-GCM keys of guest messages, by VMPL.
    pub vmpck: [[u8; VMPCK_LEN]; VMPCK_COUNT],
    /// Guest message sequence numbers, low 32 bits, per VMPCK (guest-owned).
    pub msg_seqno: [U32; VMPCK_COUNT],
    /// AP jump table physical address (guest-owned).
    pub ap_jump_table_pa: U64,
    /// Guest message sequence numbers, high 32 bits, per VMPCK (edk2; reserved for Linux).
    pub msg_seqno_hi: [U32; VMPCK_COUNT],
    /// Reserved (guest OS area).
    pub os_reserved: [u8; 22],
    /// Guest OS area layout version (edk2).
    pub os_version: U16,
    /// Free for guest use.
    pub guest_usage: [u8; 32],
    /// Which VMSA quadwords are XOR-tweaked under VMSA register protection.
    pub vmsa_tweak_bitmap: [u8; 64],
    /// SVSM: base of the SVSM memory (written by an SVSM, not by firmware).
    pub svsm_base: U64,
    /// SVSM: size of the SVSM memory.
    pub svsm_size: U64,
    /// SVSM: calling area address.
    pub svsm_caa: U64,
    /// SVSM: highest supported protocol version.
    pub svsm_max_version: U32,
    /// SVSM: the VMPL the guest runs at.
    pub svsm_guest_vmpl: u8,
    /// Reserved (SVSM area).
    pub svsm_reserved: [u8; 3],
    /// TSC factor (Genoa: 200): mean TSC = nominal × (1 − tsc_factor / 100000).
    pub tsc_factor: U32,
    /// Reserved.
    pub reserved1: U32,
    /// Launch mitigation vector (newer firmware).
    pub launch_mit_vector: U64,
    /// Reserved to the end of the page.
    pub reserved2: [u8; SECRETS_PAGE_LEN - 0x170],
}

impl SecretsPage {
    /// Parses exactly 4096 bytes (the version is not checked).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "secrets page";
        read_exact::<Self>(WHAT, bytes)
    }

    /// VMPCK `index` (0–3).
    pub fn vmpck(&self, index: usize) -> Option<&[u8; VMPCK_LEN]> {
        self.vmpck.get(index)
    }

    /// Overwrites VMPCK `index` with zeros (what a guest does after a failed
    /// message exchange, to rule out IV reuse). Returns false for a bad index.
    pub fn wipe_vmpck(&mut self, index: usize) -> bool {
        match self.vmpck.get_mut(index) {
            Some(key) => {
                *key = [0; VMPCK_LEN];
                true
            }
            None => false,
        }
    }

    /// The 64-bit message sequence number for VMPCK `index` (high half from
    /// `msg_seqno_hi`).
    pub fn msg_seqno_u64(&self, index: usize) -> Option<u64> {
        let lo = self.msg_seqno.get(index)?.get();
        let hi = self.msg_seqno_hi.get(index)?.get();
        Some(u64::from(hi) << 32 | u64::from(lo))
    }

    /// Stores a 64-bit message sequence number for VMPCK `index`; returns
    /// false for a bad index.
    pub fn set_msg_seqno_u64(&mut self, index: usize, seqno: u64) -> bool {
        match (
            self.msg_seqno.get_mut(index),
            self.msg_seqno_hi.get_mut(index),
        ) {
            (Some(lo), Some(hi)) => {
                *lo = U32::new(seqno as u32);
                *hi = U32::new((seqno >> 32) as u32);
                true
            }
            _ => false,
        }
    }

    /// True when IMI_EN is set.
    pub fn imi_enabled(&self) -> bool {
        self.flags.get() & SECRETS_FLAG_IMI_EN != 0
    }
}

impl fmt::Debug for SecretsPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seqno: [u64; VMPCK_COUNT] =
            core::array::from_fn(|i| self.msg_seqno_u64(i).unwrap_or_default());
        f.debug_struct("SecretsPage")
            .field("version", &self.version.get())
            .field("flags", &self.flags.get())
            .field("fms", &format_args!("{:#x}", self.fms.get()))
            .field("gosvw", &HexBytes(&self.gosvw))
            .field("vmpck", &"<redacted>")
            .field("msg_seqno", &seqno)
            .field(
                "ap_jump_table_pa",
                &format_args!("{:#x}", self.ap_jump_table_pa.get()),
            )
            .field("os_version", &self.os_version.get())
            .field("vmsa_tweak_bitmap", &HexBytes(&self.vmsa_tweak_bitmap))
            .field("svsm_base", &format_args!("{:#x}", self.svsm_base.get()))
            .field("svsm_size", &format_args!("{:#x}", self.svsm_size.get()))
            .field("svsm_caa", &format_args!("{:#x}", self.svsm_caa.get()))
            .field("svsm_max_version", &self.svsm_max_version.get())
            .field("svsm_guest_vmpl", &self.svsm_guest_vmpl)
            .field("tsc_factor", &self.tsc_factor.get())
            .field(
                "launch_mit_vector",
                &format_args!("{:#x}", self.launch_mit_vector.get()),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};
    use zerocopy::FromZeros;

    #[test]
    fn layout() {
        assert_eq!(size_of::<SecretsPage>(), 0x1000);
        assert_eq!(offset_of!(SecretsPage, version), 0x000);
        assert_eq!(offset_of!(SecretsPage, flags), 0x004);
        assert_eq!(offset_of!(SecretsPage, fms), 0x008);
        assert_eq!(offset_of!(SecretsPage, reserved0), 0x00C);
        assert_eq!(offset_of!(SecretsPage, gosvw), 0x010);
        assert_eq!(offset_of!(SecretsPage, vmpck), 0x020);
        assert_eq!(offset_of!(SecretsPage, msg_seqno), 0x0A0);
        assert_eq!(offset_of!(SecretsPage, ap_jump_table_pa), 0x0B0);
        assert_eq!(offset_of!(SecretsPage, msg_seqno_hi), 0x0B8);
        assert_eq!(offset_of!(SecretsPage, os_reserved), 0x0C8);
        assert_eq!(offset_of!(SecretsPage, os_version), 0x0DE);
        assert_eq!(offset_of!(SecretsPage, guest_usage), 0x0E0);
        assert_eq!(offset_of!(SecretsPage, vmsa_tweak_bitmap), 0x100);
        assert_eq!(offset_of!(SecretsPage, svsm_base), 0x140);
        assert_eq!(offset_of!(SecretsPage, svsm_size), 0x148);
        assert_eq!(offset_of!(SecretsPage, svsm_caa), 0x150);
        assert_eq!(offset_of!(SecretsPage, svsm_max_version), 0x158);
        assert_eq!(offset_of!(SecretsPage, svsm_guest_vmpl), 0x15C);
        assert_eq!(offset_of!(SecretsPage, svsm_reserved), 0x15D);
        assert_eq!(offset_of!(SecretsPage, tsc_factor), 0x160);
        assert_eq!(offset_of!(SecretsPage, reserved1), 0x164);
        assert_eq!(offset_of!(SecretsPage, launch_mit_vector), 0x168);
        assert_eq!(offset_of!(SecretsPage, reserved2), 0x170);
    }

    #[test]
    fn round_trip_and_accessors() {
        let bytes: Vec<u8> = (0..0x1000u32).map(|i| (i % 251) as u8).collect();
        let mut page = SecretsPage::from_bytes(&bytes).unwrap();
        assert_eq!(page.as_bytes(), &bytes[..]);
        assert_eq!(page.vmpck(1).unwrap(), &bytes[0x40..0x60]);
        assert!(page.vmpck(4).is_none());
        assert!(page.set_msg_seqno_u64(2, 0x1_0000_0005));
        assert_eq!(page.msg_seqno_u64(2), Some(0x1_0000_0005));
        assert_eq!(&page.as_bytes()[0xA8..0xAC], &5u32.to_le_bytes());
        assert_eq!(&page.as_bytes()[0xC0..0xC4], &1u32.to_le_bytes());
        assert!(!page.set_msg_seqno_u64(4, 1));
        assert!(page.wipe_vmpck(3));
        assert_eq!(page.vmpck(3), Some(&[0; 32]));
        assert!(!page.wipe_vmpck(4));
        page.flags = U32::new(1);
        assert!(page.imi_enabled());
    }

    #[test]
    fn wrong_length() {
        assert!(SecretsPage::from_bytes(&[0; 0xFFF]).is_err());
        assert!(SecretsPage::from_bytes(&[0; 0x1001]).is_err());
        assert!(SecretsPage::from_bytes(&[]).is_err());
    }

    #[test]
    fn debug_redacts_vmpck() {
        let mut page = SecretsPage::new_zeroed();
        page.vmpck = [[0xAB; 32]; 4];
        let text = format!("{page:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.to_lowercase().contains("abab"), "{text}");
        assert!(!text.contains("171"), "{text}");
    }
}
