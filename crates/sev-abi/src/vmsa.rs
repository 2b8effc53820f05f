//! The VMCB save area of an SEV-ES / SEV-SNP guest (the "VMSA", 4 KiB).
//!
//! An SEV-ES or SNP vCPU's register state lives in this page, encrypted with
//! the guest's key. At launch the hypervisor fills one per vCPU with the
//! reset state and the AMD-SP measures it: SEV-ES extends the SHA-256 launch
//! digest with the whole page (LAUNCH_UPDATE_VMSA), SNP hashes it into a
//! PAGE_INFO of type VMSA (with GUEST_TSC_SCALE and GUEST_TSC_OFFSET zeroed).
//!
//! ```text
//! 0x000 es cs ss ds fs gs gdtr ldtr idtr tr   (VMCB segments, 16 B each)
//! 0x0A0 vmpl0..3_ssp, u_cet   0x0CA vmpl  0x0CB cpl   0x0D0 efer
//! 0x140 xss  0x148 cr4  0x150 cr3  0x158 cr0  0x160 dr7  0x168 dr6  0x170 rflags  0x178 rip
//! 0x180 dr0..dr3, dr0..dr3 address masks      0x1D8 rsp  s_cet  ssp  isst_addr
//! 0x1F8 rax star lstar cstar sfmask kernel_gs_base sysenter_cs/esp/eip cr2
//! 0x268 g_pat dbgctl br_from br_to last_excp_from last_excp_to
//! 0x2E8 pkru tsc_aux  0x2F0 guest_tsc_scale  0x2F8 guest_tsc_offset  0x300 reg_prot_nonce
//! 0x308 rcx rdx rbx (0x320 reserved) rbp rsi rdi r8..r15
//! 0x390 guest_exit_info_1/2 guest_exit_int_info guest_nrip  0x3B0 sev_features
//! 0x3B8 vintr_ctrl guest_exit_code virtual_tom tlb_id pcpu_id event_inj  0x3E8 xcr0
//! 0x400 x87_dp  0x408 mxcsr  0x40C x87_ftw x87_fsw  0x410 x87_fcw x87_fop x87_ds x87_cs  0x418 x87_rip
//! 0x420 fpreg_x87[80]  0x470 fpreg_xmm[256]  0x570 fpreg_ymm[256]  0x670 rest (KI, ZMM state, padding)
//! ```
//!
//! Offsets follow AMD APM vol. 2 table B-4 as Linux (`struct sev_es_save_area`)
//! and sev-snp-measure lay it out; `shared/spec/amd-sp-reference.md` §3.3.

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{read_exact, Result};

/// Size of the VMSA page.
pub const VMSA_LEN: usize = 0x1000;

/// Offset of GUEST_TSC_SCALE (zeroed when SNP measures a VMSA page).
pub const VMSA_GUEST_TSC_SCALE_OFFSET: usize = 0x2F0;
/// Offset of GUEST_TSC_OFFSET (zeroed when SNP measures a VMSA page).
pub const VMSA_GUEST_TSC_OFFSET_OFFSET: usize = 0x2F8;

/// `SEV_FEATURES` bit 0: SNP active.
pub const SEV_FEATURE_SNP_ACTIVE: u64 = 1 << 0;
/// `SEV_FEATURES` bit 1: virtual TOM.
pub const SEV_FEATURE_VTOM: u64 = 1 << 1;
/// `SEV_FEATURES` bit 2: reflect #VC.
pub const SEV_FEATURE_REFLECT_VC: u64 = 1 << 2;
/// `SEV_FEATURES` bit 3: restricted injection.
pub const SEV_FEATURE_RESTRICTED_INJECTION: u64 = 1 << 3;
/// `SEV_FEATURES` bit 4: alternate injection.
pub const SEV_FEATURE_ALTERNATE_INJECTION: u64 = 1 << 4;
/// `SEV_FEATURES` bit 5: debug register swap (Linux 6.6+ hosts set it by default).
pub const SEV_FEATURE_DEBUG_SWAP: u64 = 1 << 5;
/// `SEV_FEATURES` bit 6: prevent host IBS.
pub const SEV_FEATURE_PREVENT_HOST_IBS: u64 = 1 << 6;
/// `SEV_FEATURES` bit 7: BTB isolation.
pub const SEV_FEATURE_BTB_ISOLATION: u64 = 1 << 7;
/// `SEV_FEATURES` bit 9: secure TSC.
pub const SEV_FEATURE_SECURE_TSC: u64 = 1 << 9;
/// `SEV_FEATURES` bit 14: VMSA register protection.
pub const SEV_FEATURE_VMSA_REG_PROT: u64 = 1 << 14;

/// A VMCB segment register (`struct vmcb_seg`, 16 bytes).
#[derive(
    Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct VmcbSegment {
    /// Selector.
    pub selector: U16,
    /// Attributes in the VMCB's packed form (type, S, DPL, P, AVL, L, D/B, G).
    pub attrib: U16,
    /// Limit.
    pub limit: U32,
    /// Base address.
    pub base: U64,
}

impl VmcbSegment {
    /// Builds a segment from its four values.
    pub fn new(selector: u16, attrib: u16, limit: u32, base: u64) -> Self {
        Self {
            selector: U16::new(selector),
            attrib: U16::new(attrib),
            limit: U32::new(limit),
            base: U64::new(base),
        }
    }
}

impl fmt::Debug for VmcbSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{selector: {:#x}, attrib: {:#x}, limit: {:#x}, base: {:#x}}}",
            self.selector.get(),
            self.attrib.get(),
            self.limit.get(),
            self.base.get()
        )
    }
}

/// The SEV-ES / SNP save area (VMSA), 4096 bytes, in its wire form.
///
/// Fields not named here are reserved or architectural state sevkit does not
/// set; they are kept as byte arrays so every page round-trips exactly.
#[derive(Clone, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SaveArea {
    /// ES segment (0x000).
    pub es: VmcbSegment,
    /// CS segment (0x010).
    pub cs: VmcbSegment,
    /// SS segment (0x020).
    pub ss: VmcbSegment,
    /// DS segment (0x030).
    pub ds: VmcbSegment,
    /// FS segment (0x040).
    pub fs: VmcbSegment,
    /// GS segment (0x050).
    pub gs: VmcbSegment,
    /// GDTR (0x060).
    pub gdtr: VmcbSegment,
    /// LDTR (0x070).
    pub ldtr: VmcbSegment,
    /// IDTR (0x080).
    pub idtr: VmcbSegment,
    /// TR (0x090).
    pub tr: VmcbSegment,
    /// Shadow-stack pointers of VMPL0..3 (0x0A0).
    pub vmpl_ssp: [U64; 4],
    /// U_CET (0x0C0).
    pub u_cet: U64,
    /// Reserved (0x0C8).
    pub reserved_0c8: [u8; 2],
    /// VMPL of this vCPU (SNP, 0x0CA).
    pub vmpl: u8,
    /// CPL (0x0CB).
    pub cpl: u8,
    /// Reserved (0x0CC).
    pub reserved_0cc: [u8; 4],
    /// EFER (0x0D0).
    pub efer: U64,
    /// Reserved (0x0D8).
    pub reserved_0d8: [u8; 104],
    /// XSS (0x140).
    pub xss: U64,
    /// CR4 (0x148).
    pub cr4: U64,
    /// CR3 (0x150).
    pub cr3: U64,
    /// CR0 (0x158).
    pub cr0: U64,
    /// DR7 (0x160).
    pub dr7: U64,
    /// DR6 (0x168).
    pub dr6: U64,
    /// RFLAGS (0x170).
    pub rflags: U64,
    /// RIP (0x178).
    pub rip: U64,
    /// DR0..DR3 (0x180).
    pub dr0_3: [U64; 4],
    /// DR0..DR3 address masks (0x1A0).
    pub dr0_3_addr_mask: [U64; 4],
    /// Reserved (0x1C0).
    pub reserved_1c0: [u8; 24],
    /// RSP (0x1D8).
    pub rsp: U64,
    /// S_CET (0x1E0).
    pub s_cet: U64,
    /// SSP (0x1E8).
    pub ssp: U64,
    /// ISST address (0x1F0).
    pub isst_addr: U64,
    /// RAX (0x1F8).
    pub rax: U64,
    /// STAR (0x200).
    pub star: U64,
    /// LSTAR (0x208).
    pub lstar: U64,
    /// CSTAR (0x210).
    pub cstar: U64,
    /// SFMASK (0x218).
    pub sfmask: U64,
    /// KernelGSBase (0x220).
    pub kernel_gs_base: U64,
    /// SYSENTER_CS (0x228).
    pub sysenter_cs: U64,
    /// SYSENTER_ESP (0x230).
    pub sysenter_esp: U64,
    /// SYSENTER_EIP (0x238).
    pub sysenter_eip: U64,
    /// CR2 (0x240).
    pub cr2: U64,
    /// Reserved (0x248).
    pub reserved_248: [u8; 32],
    /// Guest PAT (0x268).
    pub g_pat: U64,
    /// DBGCTL (0x270).
    pub dbgctl: U64,
    /// BR_FROM (0x278).
    pub br_from: U64,
    /// BR_TO (0x280).
    pub br_to: U64,
    /// LASTEXCPFROM (0x288).
    pub last_excp_from: U64,
    /// LASTEXCPTO (0x290).
    pub last_excp_to: U64,
    /// Reserved (0x298).
    pub reserved_298: [u8; 80],
    /// PKRU (0x2E8).
    pub pkru: U32,
    /// TSC_AUX (0x2EC).
    pub tsc_aux: U32,
    /// GUEST_TSC_SCALE (SNP Secure TSC, 0x2F0); zeroed for measurement.
    pub guest_tsc_scale: U64,
    /// GUEST_TSC_OFFSET (SNP Secure TSC, 0x2F8); zeroed for measurement.
    pub guest_tsc_offset: U64,
    /// Register-protection nonce (0x300).
    pub reg_prot_nonce: U64,
    /// RCX (0x308).
    pub rcx: U64,
    /// RDX (0x310); holds the CPUID signature (family/model/stepping) at reset.
    pub rdx: U64,
    /// RBX (0x318).
    pub rbx: U64,
    /// Reserved / Secure AVIC control (0x320).
    pub reserved_320: U64,
    /// RBP (0x328).
    pub rbp: U64,
    /// RSI (0x330).
    pub rsi: U64,
    /// RDI (0x338).
    pub rdi: U64,
    /// R8..R15 (0x340).
    pub r8_15: [U64; 8],
    /// Reserved (0x380; legacy SEV-ES keeps a checksum pointer at 0x388).
    pub reserved_380: [u8; 16],
    /// GUEST_EXITINFO1 (0x390).
    pub guest_exit_info_1: U64,
    /// GUEST_EXITINFO2 (0x398).
    pub guest_exit_info_2: U64,
    /// GUEST_EXITINTINFO (0x3A0).
    pub guest_exit_int_info: U64,
    /// GUEST_NRIP (0x3A8).
    pub guest_nrip: U64,
    /// SEV_FEATURES (0x3B0); see the `SEV_FEATURE_*` constants.
    pub sev_features: U64,
    /// VINTR_CTRL (0x3B8).
    pub vintr_ctrl: U64,
    /// GUEST_EXIT_CODE (0x3C0).
    pub guest_exit_code: U64,
    /// VIRTUAL_TOM (0x3C8).
    pub virtual_tom: U64,
    /// TLB_ID (0x3D0).
    pub tlb_id: U64,
    /// PCPU_ID (0x3D8).
    pub pcpu_id: U64,
    /// EVENTINJ (0x3E0).
    pub event_inj: U64,
    /// XCR0 (0x3E8).
    pub xcr0: U64,
    /// Reserved (0x3F0).
    pub reserved_3f0: [u8; 16],
    /// x87 data pointer (0x400).
    pub x87_dp: U64,
    /// MXCSR (0x408).
    pub mxcsr: U32,
    /// x87 tag word (0x40C).
    pub x87_ftw: U16,
    /// x87 status word (0x40E).
    pub x87_fsw: U16,
    /// x87 control word (0x410).
    pub x87_fcw: U16,
    /// x87 last opcode (0x412).
    pub x87_fop: U16,
    /// x87 data segment (0x414).
    pub x87_ds: U16,
    /// x87 code segment (0x416).
    pub x87_cs: U16,
    /// x87 instruction pointer (0x418).
    pub x87_rip: U64,
    /// x87 registers ST0..ST7 (0x420).
    pub fpreg_x87: [u8; 80],
    /// XMM registers (0x470).
    pub fpreg_xmm: [u8; 256],
    /// YMM upper halves (0x570).
    pub fpreg_ymm: [u8; 256],
    /// Further extended state (KI at 0x980, ZMM_HI at 0x9C0, HI_ZMM at 0xBC0)
    /// and padding to the end of the page (0x670).
    pub reserved_670: [u8; 2448],
}

impl SaveArea {
    /// An all-zero save area.
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }

    /// Parses a 4096-byte VMSA page.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "VMSA";
        read_exact::<Self>(WHAT, bytes)
    }

    /// The page as SNP measures it: GUEST_TSC_SCALE and GUEST_TSC_OFFSET
    /// zeroed, everything else as is.
    #[must_use]
    pub fn measured_form(&self) -> Self {
        let mut page = self.clone();
        page.guest_tsc_scale = U64::ZERO;
        page.guest_tsc_offset = U64::ZERO;
        page
    }
}

impl fmt::Debug for SaveArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The registers a reset-state VMSA sets; the full page is `as_bytes()`.
        f.debug_struct("SaveArea")
            .field("es", &self.es)
            .field("cs", &self.cs)
            .field("ss", &self.ss)
            .field("ds", &self.ds)
            .field("fs", &self.fs)
            .field("gs", &self.gs)
            .field("gdtr", &self.gdtr)
            .field("ldtr", &self.ldtr)
            .field("idtr", &self.idtr)
            .field("tr", &self.tr)
            .field("vmpl", &self.vmpl)
            .field("cpl", &self.cpl)
            .field("efer", &format_args!("{:#x}", self.efer.get()))
            .field("cr4", &format_args!("{:#x}", self.cr4.get()))
            .field("cr0", &format_args!("{:#x}", self.cr0.get()))
            .field("dr7", &format_args!("{:#x}", self.dr7.get()))
            .field("dr6", &format_args!("{:#x}", self.dr6.get()))
            .field("rflags", &format_args!("{:#x}", self.rflags.get()))
            .field("rip", &format_args!("{:#x}", self.rip.get()))
            .field("g_pat", &format_args!("{:#x}", self.g_pat.get()))
            .field("rdx", &format_args!("{:#x}", self.rdx.get()))
            .field(
                "sev_features",
                &format_args!("{:#x}", self.sev_features.get()),
            )
            .field("xcr0", &format_args!("{:#x}", self.xcr0.get()))
            .field("mxcsr", &format_args!("{:#x}", self.mxcsr.get()))
            .field("x87_fcw", &format_args!("{:#x}", self.x87_fcw.get()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn sizes() {
        assert_eq!(size_of::<VmcbSegment>(), 16);
        assert_eq!(size_of::<SaveArea>(), VMSA_LEN);
    }

    #[test]
    fn offsets_match_the_apm_table() {
        let table = [
            (offset_of!(SaveArea, es), 0x000),
            (offset_of!(SaveArea, cs), 0x010),
            (offset_of!(SaveArea, ss), 0x020),
            (offset_of!(SaveArea, ds), 0x030),
            (offset_of!(SaveArea, fs), 0x040),
            (offset_of!(SaveArea, gs), 0x050),
            (offset_of!(SaveArea, gdtr), 0x060),
            (offset_of!(SaveArea, ldtr), 0x070),
            (offset_of!(SaveArea, idtr), 0x080),
            (offset_of!(SaveArea, tr), 0x090),
            (offset_of!(SaveArea, vmpl_ssp), 0x0A0),
            (offset_of!(SaveArea, u_cet), 0x0C0),
            (offset_of!(SaveArea, vmpl), 0x0CA),
            (offset_of!(SaveArea, cpl), 0x0CB),
            (offset_of!(SaveArea, efer), 0x0D0),
            (offset_of!(SaveArea, xss), 0x140),
            (offset_of!(SaveArea, cr4), 0x148),
            (offset_of!(SaveArea, cr3), 0x150),
            (offset_of!(SaveArea, cr0), 0x158),
            (offset_of!(SaveArea, dr7), 0x160),
            (offset_of!(SaveArea, dr6), 0x168),
            (offset_of!(SaveArea, rflags), 0x170),
            (offset_of!(SaveArea, rip), 0x178),
            (offset_of!(SaveArea, dr0_3), 0x180),
            (offset_of!(SaveArea, dr0_3_addr_mask), 0x1A0),
            (offset_of!(SaveArea, rsp), 0x1D8),
            (offset_of!(SaveArea, rax), 0x1F8),
            (offset_of!(SaveArea, cr2), 0x240),
            (offset_of!(SaveArea, g_pat), 0x268),
            (offset_of!(SaveArea, last_excp_to), 0x290),
            (offset_of!(SaveArea, pkru), 0x2E8),
            (
                offset_of!(SaveArea, guest_tsc_scale),
                VMSA_GUEST_TSC_SCALE_OFFSET,
            ),
            (
                offset_of!(SaveArea, guest_tsc_offset),
                VMSA_GUEST_TSC_OFFSET_OFFSET,
            ),
            (offset_of!(SaveArea, reg_prot_nonce), 0x300),
            (offset_of!(SaveArea, rcx), 0x308),
            (offset_of!(SaveArea, rdx), 0x310),
            (offset_of!(SaveArea, rbx), 0x318),
            (offset_of!(SaveArea, rbp), 0x328),
            (offset_of!(SaveArea, r8_15), 0x340),
            (offset_of!(SaveArea, reserved_380), 0x380),
            (offset_of!(SaveArea, guest_exit_info_1), 0x390),
            (offset_of!(SaveArea, guest_nrip), 0x3A8),
            (offset_of!(SaveArea, sev_features), 0x3B0),
            (offset_of!(SaveArea, vintr_ctrl), 0x3B8),
            (offset_of!(SaveArea, event_inj), 0x3E0),
            (offset_of!(SaveArea, xcr0), 0x3E8),
            (offset_of!(SaveArea, x87_dp), 0x400),
            (offset_of!(SaveArea, mxcsr), 0x408),
            (offset_of!(SaveArea, x87_ftw), 0x40C),
            (offset_of!(SaveArea, x87_fcw), 0x410),
            (offset_of!(SaveArea, x87_rip), 0x418),
            (offset_of!(SaveArea, fpreg_x87), 0x420),
            (offset_of!(SaveArea, fpreg_xmm), 0x470),
            (offset_of!(SaveArea, fpreg_ymm), 0x570),
            (offset_of!(SaveArea, reserved_670), 0x670),
        ];
        for (i, (actual, expected)) in table.into_iter().enumerate() {
            assert_eq!(actual, expected, "row {i}");
        }
    }

    #[test]
    fn round_trip_and_length_check() {
        let mut page = SaveArea::zeroed();
        page.rip = U64::new(0xfff0);
        page.cs = VmcbSegment::new(0xf000, 0x9b, 0xffff, 0xffff_0000);
        let bytes = page.as_bytes().to_vec();
        assert_eq!(bytes[0x178..0x180], 0xfff0u64.to_le_bytes());
        assert_eq!(bytes[0x11], 0xf0);
        assert_eq!(SaveArea::from_bytes(&bytes).unwrap(), page);
        assert!(SaveArea::from_bytes(&bytes[1..]).is_err());
        assert!(format!("{page:?}").contains("rip: 0xfff0"));
    }

    #[test]
    fn measured_form_clears_tsc_fields_only() {
        let mut page = SaveArea::zeroed();
        page.guest_tsc_scale = U64::new(7);
        page.guest_tsc_offset = U64::new(9);
        page.rdx = U64::new(0x00a0_0f11);
        let m = page.measured_form();
        assert_eq!(m.guest_tsc_scale.get(), 0);
        assert_eq!(m.guest_tsc_offset.get(), 0);
        assert_eq!(m.rdx.get(), 0x00a0_0f11);
    }
}
