//! The SNP CPUID page the VMM supplies: the table QEMU hands to
//! SNP_LAUNCH_UPDATE (page type CPUID) for the metadata section of type
//! CPUID, built here from the QEMU vCPU model the way KVM would report it
//! (KVM_GET_CPUID2 of the first vCPU) for an SNP guest.
//!
//! The firmware validates every architectural entry against its per-leaf
//! policy and the platform's CPUID profile
//! (`sev_firmware::snp::cpuid::validate`, `CpuidProfile`); a violation fails
//! the launch with INVALID_PARAM and the corrected page written back.
//! Everything here is chosen to pass that check on every SNP product not
//! older than the vCPU model: the feature bits come from the same
//! definitions the firmware's profiles are built from
//! ([`sev_abi::cpuid_features`]), and a generation's set
//! contains every older one's, so a guest's bits are a subset of the
//! platform's.
//!
//! # Layout
//!
//! QEMU's `SnpCpuidInfo` in a 4 KiB page: [`sev_abi::cpuid_page`]'s
//! `CpuidTable`, the rest of the page zero.
//!
//! # The entries
//!
//! One vCPU (APIC ID 0, one thread, one core) of the QEMU model, with the
//! feature set of its Zen generation ([`Zen::features`]; from the family
//! and model: 17h models below 30h Zen 1 (`EPYC`), 17h from 30h Zen 2
//! (`EPYC-Rome`), 19h below 10h Zen 3 (`EPYC-Milan`), other 19h Zen 4
//! (`EPYC-Genoa`), 1Ah Zen 5 (`EPYC-Turin`, Zen 4's set in sevkit's
//! model)). Entries are in ascending (leaf, sub-leaf) order.
//!
//! | leaf.sub | EAX | EBX | ECX | EDX | firmware rule |
//! |---|---|---|---|---|---|
//! | 0x0 | max standard leaf 0xD | `Auth` | `cAMD` | `enti` | EAX ≤ platform's |
//! | 0x1 | the model's signature (family/model/stepping) | CLFLUSH 8 (64 B); APIC ID 0; no logical count | SSE3..RDRAND, x2APIC, **hypervisor (bit 31)**; OSXSAVE 0 (reset) | FPU..SSE2 (`0x078BFBFF`) | EAX ≤ platform FMS; CLFLUSH exact; feature masks |
//! | 0x7.0 | max sub-leaf (1 on Zen 4/5, else 0) | FSGSBASE, BMI, AVX2, SMEP, SMAP, SHA… (+AVX-512 on Zen 4/5) | UMIP, RDPID, PKU…; OSPKE 0 (reset) | FSRM (Zen 3+) | EAX ≤ platform's; masks (OSPKE unchecked) |
//! | 0x7.1 (Zen 4/5) | AVX512_BF16 | 0 | 0 | 0 | mask / exact |
//! | 0xD.0 | supported XCR0 bits (x87, SSE, AVX; PKRU Zen 3+; AVX-512 Zen 4+) | XSAVE size for `xcr0_in` = 1: 0x240 | XSAVE size of every supported bit | XCR0 bits 63:32 (0) | EAX mask with x87 and SSE; EBX = size for `xcr0_in`; ECX ≤ platform's; EDX exact |
//! | 0xD.1 | XSAVEOPT, XSAVEC, XGETBV1, XSAVES | compacted size for `xcr0_in` 1, `xss_in` 0: 0x240 | supported XSS (0) | 0 | EBX = compacted size; masks |
//! | 0xD.n | size of component n | its offset | 0 (user, not aligned) | 0 | exact where the platform has the component (else all zero) |
//! | 0x4000_0000 | max hypervisor leaf 0x4000_0001 | `KVMK` | `VMKV` | `M\0\0\0` | unchecked (hypervisor range) |
//! | 0x4000_0001 | no paravirtual features (0) | 0 | 0 | 0 | unchecked |
//! | 0x8000_0000 | max extended leaf 0x8000_001F | `Auth` | `cAMD` | `enti` | EAX ≤ platform's |
//! | 0x8000_0001 | the signature again | 0 | LAHF, ABM, SSE4A, OSVW, TOPOEXT… | SYSCALL, NX, RDTSCP, LM, 1 GiB pages + the 0x1 EDX aliases | EAX ≤ platform FMS; masks |
//! | 0x8000_0008 | 40 physical, 48 (57 with LA57) linear address bits | CLZERO, IBPB, STIBP, SSBD… | 0 (one core) | 0 | address sizes ≤ platform's; EBX mask |
//! | 0x8000_001F | SEV, SEV-ES, SEV-SNP (bits 1, 3, 4) | C-bit in 5:0, reduced physical-address bits in 11:6, no VMPLs | 0 | 0 | EAX mask; EBX 5:0 = platform C-bit, VMPLs ≤ 4, rest exact but 11:6 |
//!
//! `xcr0_in` is 1 and `xss_in` 0 for 0xD.0 and 0xD.1 (QEMU's convention);
//! every other entry has both zero. The XSAVE sizes agree with
//! [`xsave_size`] and [`xsaves_size`]. The hypervisor leaves are what KVM
//! adds to KVM_GET_CPUID2; the firmware passes that range unchecked. The
//! ECX and EDX of 0x8000_001F (number of encrypted guests, minimum SEV ASID)
//! are zero, as QEMU reports them to the guest.
//!
//! A vCPU model newer than the host (a signature above the platform's
//! family/model/stepping) is refused: the firmware would reject its leaf
//! 0x1.

use sev_abi::cpuid_features::{xsave_size, xsaves_size, Zen};
use sev_abi::cpuid_page::{CpuidEntry, CpuidTable, CPUID_TABLE_LEN};
use sev_abi::product::Product;
use sev_measure::{cpu_signature, vcpu_type, VcpuType, VCPU_TYPES};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

/// Size of the CPUID page.
pub const CPUID_PAGE_LEN: usize = 4096;

/// Byte offset of the first entry in the page (after the 16-byte header).
pub const ENTRIES_OFFSET: usize = 16;

/// Size of one entry.
pub const ENTRY_LEN: usize = 48;

/// Guest physical address bits reported in 0x8000_0008 EAX (QEMU's default
/// for named models).
pub const GUEST_PHYS_BITS: u8 = 40;

/// The highest standard leaf reported (0x0 EAX).
pub const MAX_STD_LEAF: u32 = 0xD;

/// The highest extended leaf reported (0x8000_0000 EAX): the SEV leaf.
pub const MAX_EXT_LEAF: u32 = 0x8000_001F;

/// The SEV leaf.
pub const SEV_LEAF: u32 = 0x8000_001F;

/// 0x8000_001F EAX: SEV (bit 1), SEV-ES (bit 3), SEV-SNP (bit 4).
pub const SEV_LEAF_EAX: u32 = (1 << 1) | (1 << 3) | (1 << 4);

/// "AuthenticAMD" as EBX, EDX, ECX of leaves 0x0 and 0x8000_0000.
const VENDOR_EBX: u32 = u32::from_le_bytes(*b"Auth");
const VENDOR_EDX: u32 = u32::from_le_bytes(*b"enti");
const VENDOR_ECX: u32 = u32::from_le_bytes(*b"cAMD");

/// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX of leaf 0x4000_0000.
const KVM_EBX: u32 = u32::from_le_bytes(*b"KVMK");
const KVM_ECX: u32 = u32::from_le_bytes(*b"VMKV");
const KVM_EDX: u32 = u32::from_le_bytes(*b"M\0\0\0");

/// What the page is built for: the host's identity as the firmware checks
/// it, and the guest's `reduced-phys-bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidHost {
    /// The platform's CPUID Fn0000_0001_EAX; the vCPU model's signature must
    /// not exceed it.
    pub fms: u32,
    /// The C-bit position (`cbitpos`, 0x8000_001F EBX 5:0), which must equal
    /// the host's.
    pub c_bit: u8,
    /// The guest's `reduced-phys-bits` (1..=63), 0x8000_001F EBX 11:6.
    pub reduced_phys_bits: u8,
}

impl CpuidHost {
    /// The host sevkit's software firmware emulates for `product`, with
    /// `reduced-phys-bits` 1 (what QEMU's `query-sev-capabilities` reports).
    pub fn for_product(product: Product) -> Self {
        Self {
            fms: product.default_fms(),
            c_bit: product.c_bit_position(),
            reduced_phys_bits: 1,
        }
    }
}

/// Why no CPUID page can be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuidError {
    /// The vCPU model name is not one sevkit knows.
    #[error(
        "unknown vCPU model {name:?}: SEV-SNP guests need an AMD EPYC model (EPYC, EPYC-Rome, \
         EPYC-Milan, EPYC-Genoa, EPYC-Turin or a versioned name of one)"
    )]
    UnknownModel {
        /// The name given.
        name: String,
    },
    /// The model is not an AMD Zen part (family 17h, 19h or 1Ah).
    #[error(
        "vCPU model {name} has family {family:#x}; only AMD Zen families 17h, 19h and 1Ah run \
         SEV-SNP guests"
    )]
    NotAmdZen {
        /// Model name.
        name: String,
        /// Its family.
        family: u32,
    },
    /// The model is newer than the host: the firmware rejects a leaf 0x1
    /// signature above the platform's.
    #[error(
        "vCPU model {name} (signature {vcpu_fms:#x}) is newer than the host (signature \
         {host_fms:#x}); the firmware rejects its CPUID page. Use an older model"
    )]
    NewerThanHost {
        /// Model name.
        name: String,
        /// The model's signature.
        vcpu_fms: u32,
        /// The platform's.
        host_fms: u32,
    },
    /// The C-bit position is outside the address bits it can be.
    #[error(
        "C-bit position {c_bit} is impossible: it must lie above the guest's {GUEST_PHYS_BITS} \
         physical address bits and fit 6 bits (41..=63); use the host's (51 on Milan, Genoa \
         and Turin)"
    )]
    CBit {
        /// The position given.
        c_bit: u8,
    },
    /// A signature that no family/model/stepping encodes (reserved or
    /// processor-type bits set).
    #[error(
        "vCPU signature {sig:#x} is not a plain family/model/stepping encoding (bits 12-15 or \
         28-31 are set)"
    )]
    Signature {
        /// The signature given.
        sig: u32,
    },
    /// `reduced-phys-bits` outside QEMU's range.
    #[error("reduced-phys-bits {bits} is out of range: QEMU accepts 1 to 63")]
    ReducedPhysBits {
        /// The value given.
        bits: u8,
    },
}

/// The Zen generation whose feature set `vcpu` reports.
fn zen_of(vcpu: &VcpuType) -> Result<Zen, CpuidError> {
    Zen::of_family_model(vcpu.family, vcpu.model).ok_or_else(|| CpuidError::NotAmdZen {
        name: vcpu.name.to_owned(),
        family: vcpu.family,
    })
}

/// 0x1 ECX bit 31: running under a hypervisor (KVM sets it; the firmware
/// accepts it).
pub const HYPERVISOR_BIT: u32 = sev_abi::cpuid_features::HYPERVISOR;

/// 0x1 EBX: CLFLUSH line size 8 × 8 = 64 bytes in bits 15:8; APIC ID 0 and
/// no logical processor count (one vCPU).
const LEAF1_EBX: u32 = 8 << 8;

/// The hypervisor leaves KVM adds: 0x4000_0000 (signature) and
/// 0x4000_0001 (paravirtual features).
const KVM_LEAF: u32 = 0x4000_0000;

fn entry(leaf: u32, sub: u32, regs: [u32; 4]) -> CpuidEntry {
    CpuidEntry::new(leaf, sub, regs)
}

fn check_host(vcpu: &VcpuType, host: CpuidHost) -> Result<Zen, CpuidError> {
    let zen = zen_of(vcpu)?;
    if !(GUEST_PHYS_BITS + 1..=63).contains(&host.c_bit) {
        return Err(CpuidError::CBit { c_bit: host.c_bit });
    }
    if !(1..=63).contains(&host.reduced_phys_bits) {
        return Err(CpuidError::ReducedPhysBits {
            bits: host.reduced_phys_bits,
        });
    }
    let vcpu_fms = vcpu.signature();
    if vcpu_fms > host.fms {
        return Err(CpuidError::NewerThanHost {
            name: vcpu.name.to_owned(),
            vcpu_fms,
            host_fms: host.fms,
        });
    }
    Ok(zen)
}

/// The table's entries for `vcpu` on `host`, in ascending (leaf, sub-leaf)
/// order; the module documentation describes each.
pub fn cpuid_entries(vcpu: &VcpuType, host: CpuidHost) -> Result<Vec<CpuidEntry>, CpuidError> {
    let zen = check_host(vcpu, host)?;
    let f = zen.features();
    let sig = vcpu.signature();
    let mut out = Vec::with_capacity(17);

    out.push(entry(
        0x0,
        0,
        [MAX_STD_LEAF, VENDOR_EBX, VENDOR_ECX, VENDOR_EDX],
    ));
    out.push(entry(
        0x1,
        0,
        [sig, LEAF1_EBX, f.leaf1_ecx | HYPERVISOR_BIT, f.leaf1_edx],
    ));
    out.push(entry(
        0x7,
        0,
        [f.leaf7_max_sub, f.leaf7_ebx, f.leaf7_ecx, f.leaf7_edx],
    ));
    if f.leaf7_max_sub >= 1 {
        out.push(entry(0x7, 1, [f.leaf7_1_eax, 0, 0, 0]));
    }

    // QEMU's convention for 0xD.0 and 0xD.1: the sizes for XCR0 = x87 only.
    let xcr0 = f.xcr0;
    let mut d0 = entry(
        0xD,
        0,
        [
            xcr0 as u32,
            xsave_size(1),
            xsave_size(xcr0),
            (xcr0 >> 32) as u32,
        ],
    );
    d0.xcr0_in = U64::new(1);
    out.push(d0);
    let mut d1 = entry(0xD, 1, [f.leaf_d1_eax, xsaves_size(1, 0), f.xss as u32, 0]);
    d1.xcr0_in = U64::new(1);
    out.push(d1);
    for c in f.xsave_components() {
        out.push(entry(0xD, c.index, c.regs()));
    }

    out.push(entry(
        KVM_LEAF,
        0,
        [KVM_LEAF + 1, KVM_EBX, KVM_ECX, KVM_EDX],
    ));
    out.push(entry(KVM_LEAF + 1, 0, [0, 0, 0, 0]));

    out.push(entry(
        0x8000_0000,
        0,
        [MAX_EXT_LEAF, VENDOR_EBX, VENDOR_ECX, VENDOR_EDX],
    ));
    out.push(entry(0x8000_0001, 0, [sig, 0, f.ext1_ecx, f.ext1_edx]));
    out.push(entry(
        0x8000_0008,
        0,
        [
            (f.linear_address_bits() << 8) | u32::from(GUEST_PHYS_BITS),
            f.ext8_ebx,
            0,
            0,
        ],
    ));

    let sev_ebx = u32::from(host.c_bit & 0x3F) | (u32::from(host.reduced_phys_bits & 0x3F) << 6);
    out.push(entry(SEV_LEAF, 0, [SEV_LEAF_EAX, sev_ebx, 0, 0]));
    Ok(out)
}

/// The CPUID table for `vcpu` on `host`.
pub fn cpuid_table(vcpu: &VcpuType, host: CpuidHost) -> Result<CpuidTable, CpuidError> {
    let entries = cpuid_entries(vcpu, host)?;
    let mut table = CpuidTable::new_zeroed();
    // At most 17 entries are built, far below the 64 slots.
    let mut count = 0u32;
    for (slot, e) in table.entries.iter_mut().zip(entries) {
        *slot = e;
        count += 1;
    }
    table.count = U32::new(count);
    Ok(table)
}

/// The CPUID page ([`CPUID_PAGE_LEN`] bytes) for `vcpu` on `host`: the
/// table, then zeros.
pub fn cpuid_page(vcpu: &VcpuType, host: CpuidHost) -> Result<Vec<u8>, CpuidError> {
    let table = cpuid_table(vcpu, host)?;
    let mut page = vec![0u8; CPUID_PAGE_LEN];
    if let Some(dst) = page.get_mut(..CPUID_TABLE_LEN) {
        dst.copy_from_slice(table.as_bytes());
    }
    Ok(page)
}

/// [`cpuid_page`] for a QEMU `-cpu` model name (ASCII case-insensitive, as
/// [`sev_measure::vcpu_type`] looks it up).
pub fn cpuid_page_for(name: &str, host: CpuidHost) -> Result<Vec<u8>, CpuidError> {
    let vcpu = vcpu_type(name).ok_or_else(|| CpuidError::UnknownModel {
        name: name.to_owned(),
    })?;
    cpuid_page(vcpu, host)
}

/// The vCPU model a CPUID signature (Fn0000_0001_EAX, what a launch
/// records as the VMSA's RDX) stands for: the first model of
/// [`VCPU_TYPES`] with that signature, else an unnamed (`"custom"`) one
/// with the decoded family, model and stepping.
pub fn vcpu_from_signature(sig: u32) -> Result<VcpuType, CpuidError> {
    let base_family = (sig >> 8) & 0xF;
    let family = if base_family == 0xF {
        base_family + ((sig >> 20) & 0xFF)
    } else {
        base_family
    };
    let model = (((sig >> 16) & 0xF) << 4) | ((sig >> 4) & 0xF);
    let stepping = sig & 0xF;
    if cpu_signature(family, model, stepping) != sig {
        return Err(CpuidError::Signature { sig });
    }
    Ok(VCPU_TYPES
        .iter()
        .find(|t| t.signature() == sig)
        .copied()
        .unwrap_or(VcpuType {
            name: "custom",
            family,
            model,
            stepping,
            in_sev_snp_measure: false,
        }))
}

/// [`cpuid_page`] for a vCPU known only by its signature (see
/// [`vcpu_from_signature`]).
pub fn cpuid_page_for_signature(sig: u32, host: CpuidHost) -> Result<Vec<u8>, CpuidError> {
    cpuid_page(&vcpu_from_signature(sig)?, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev_abi::cpuid_page::CPUID_MAX_ENTRIES;

    #[test]
    fn layout_constants_match_the_firmware_types() {
        assert_eq!(size_of::<CpuidEntry>(), ENTRY_LEN);
        assert_eq!(CPUID_TABLE_LEN, ENTRIES_OFFSET + 64 * ENTRY_LEN);
        let zen1 = Zen::Zen1.features();
        assert_eq!(zen1.leaf1_edx, 0x078B_FBFF);
        assert_eq!(zen1.ext1_edx, 0x2FD3_FBFF);
        assert_eq!(LEAF1_EBX, 0x800);
        assert_eq!(SEV_LEAF_EAX, 0x1A);
    }

    #[test]
    fn sorted_and_small() {
        let host = CpuidHost::for_product(Product::Turin);
        for v in sev_measure::VCPU_TYPES {
            let e = cpuid_entries(v, host).unwrap();
            assert!(e.len() <= 17 && e.len() <= CPUID_MAX_ENTRIES);
            let keys: Vec<_> = e.iter().map(|e| (e.eax_in.get(), e.ecx_in.get())).collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(keys, sorted, "{}", v.name);
        }
    }

    #[test]
    fn signatures_decode() {
        for v in VCPU_TYPES {
            let d = vcpu_from_signature(v.signature()).unwrap();
            assert_eq!(
                (d.family, d.model, d.stepping),
                (v.family, v.model, v.stepping)
            );
            assert!(d.name.starts_with("EPYC"));
        }
        let custom = vcpu_from_signature(0x00A1_0F11).unwrap();
        assert_eq!(
            (custom.name, custom.family, custom.model),
            ("custom", 25, 0x11)
        );
        assert_eq!(custom.signature(), 0x00A1_0F11);
        assert_eq!(
            vcpu_from_signature(0x1000_0F11),
            Err(CpuidError::Signature { sig: 0x1000_0F11 })
        );
        let host = CpuidHost::for_product(Product::Genoa);
        assert_eq!(
            cpuid_page_for_signature(0x00A0_0F11, host).unwrap(),
            cpuid_page_for("EPYC-Milan", host).unwrap()
        );
        assert!(matches!(
            cpuid_page_for_signature(0, host),
            Err(CpuidError::NotAmdZen { family: 0, .. })
        ));
    }

    #[test]
    fn not_amd() {
        let intel = VcpuType {
            name: "Skylake-Server",
            family: 6,
            model: 0x55,
            stepping: 4,
            in_sev_snp_measure: false,
        };
        let host = CpuidHost::for_product(Product::Genoa);
        assert!(matches!(
            cpuid_page(&intel, host),
            Err(CpuidError::NotAmdZen { family: 6, .. })
        ));
        assert!(matches!(
            cpuid_page_for("Skylake-Server", host),
            Err(CpuidError::UnknownModel { .. })
        ));
    }
}
