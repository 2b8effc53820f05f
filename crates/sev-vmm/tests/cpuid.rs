//! The SNP CPUID page: it passes the software firmware's validation for
//! every SNP product and every AMD vCPU model the host can run, it is laid
//! out as QEMU's `SnpCpuidInfo`, and a wrong C-bit is caught.

use sev_abi::product::Product;
use sev_firmware::snp::cpuid::features::Zen;
use sev_firmware::snp::cpuid::{validate, xsave_size, xsaves_size, CpuidPlatform};
use sev_firmware::snp::platform::{c_bit_position, default_fms};
use sev_measure::{vcpu_type, VcpuType, VCPU_TYPES};
use sev_vmm::machine::cpuid::{
    cpuid_entries, cpuid_page, cpuid_page_for, CpuidError, CpuidHost, CPUID_PAGE_LEN,
    ENTRIES_OFFSET, ENTRY_LEN, HYPERVISOR_BIT, MAX_EXT_LEAF, MAX_STD_LEAF,
};

const SNP_PRODUCTS: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

/// What sevkit's software firmware checks against for `product`.
fn platform(product: Product) -> CpuidPlatform {
    let p = CpuidPlatform::for_product(product);
    assert_eq!(
        (p.fms, p.c_bit),
        (default_fms(product), c_bit_position(product))
    );
    p
}

fn u32_at(page: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(page[at..at + 4].try_into().unwrap())
}

fn u64_at(page: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(page[at..at + 8].try_into().unwrap())
}

/// One entry read with QEMU's `SnpCpuidFunc` offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raw {
    eax_in: u32,
    ecx_in: u32,
    xcr0_in: u64,
    xss_in: u64,
    regs: [u32; 4],
    reserved: u64,
}

/// The entries of a page, read with QEMU's offsets: count at 0, entry `i`
/// at 16 + 48 i.
fn raw_entries(page: &[u8]) -> Vec<Raw> {
    let count = u32_at(page, 0) as usize;
    (0..count)
        .map(|i| {
            let at = 16 + 48 * i;
            Raw {
                eax_in: u32_at(page, at),
                ecx_in: u32_at(page, at + 4),
                xcr0_in: u64_at(page, at + 8),
                xss_in: u64_at(page, at + 16),
                regs: [
                    u32_at(page, at + 24),
                    u32_at(page, at + 28),
                    u32_at(page, at + 32),
                    u32_at(page, at + 36),
                ],
                reserved: u64_at(page, at + 40),
            }
        })
        .collect()
}

fn find(entries: &[Raw], leaf: u32, sub: u32) -> Raw {
    *entries
        .iter()
        .find(|e| e.eax_in == leaf && e.ecx_in == sub)
        .unwrap_or_else(|| panic!("no entry {leaf:#x}.{sub}"))
}

#[test]
fn validates_for_every_product_and_model() {
    let mut passed = 0;
    let mut refused = 0;
    for product in SNP_PRODUCTS {
        let host = CpuidHost::for_product(product);
        for vcpu in VCPU_TYPES {
            assert!(vcpu.name.starts_with("EPYC"), "{}", vcpu.name);
            match cpuid_page(vcpu, host) {
                Ok(page) => {
                    assert!(vcpu.signature() <= host.fms);
                    let mut checked = page.clone();
                    assert!(
                        validate(&mut checked, platform(product)),
                        "{} on {product:?}: the firmware corrected the page",
                        vcpu.name
                    );
                    assert_eq!(checked, page, "validation must leave a valid page alone");
                    passed += 1;
                }
                Err(CpuidError::NewerThanHost {
                    vcpu_fms, host_fms, ..
                }) => {
                    assert!(vcpu_fms > host_fms);
                    assert_eq!(vcpu_fms, vcpu.signature());
                    refused += 1;
                }
                Err(e) => panic!("{} on {product:?}: {e}", vcpu.name),
            }
        }
    }
    // Milan runs the EPYC, Rome and Milan models (17 of 22); Genoa all but
    // the two Turin ones (20); Turin all 22.
    let n = VCPU_TYPES.len();
    assert_eq!(n, 22);
    assert_eq!(passed, 17 + 20 + 22);
    assert_eq!(passed + refused, 3 * n);
}

#[test]
fn a_newer_model_than_the_host_is_refused_with_a_reason() {
    let milan = CpuidHost::for_product(Product::Milan);
    let err = cpuid_page_for("EPYC-Genoa", milan).unwrap_err();
    assert!(matches!(err, CpuidError::NewerThanHost { .. }));
    assert!(err.to_string().contains("EPYC-Genoa"), "{err}");
    // And the firmware agrees: the same table with a Turin host's FMS
    // fails Milan's check.
    let turin = CpuidHost::for_product(Product::Turin);
    let mut page = cpuid_page_for("EPYC-Turin", turin).unwrap();
    let mut milan_platform = platform(Product::Milan);
    milan_platform.c_bit = turin.c_bit;
    assert!(!validate(&mut page, milan_platform));
}

#[test]
fn a_genoa_page_on_milan_loses_exactly_the_genoa_features() {
    // The EPYC-Genoa page checked by a Milan platform: the signature is
    // lowered, and every Zen 4 feature the VMM took from the shared
    // definitions is cleared, leaving the Zen 3 set the EPYC-Milan page has.
    let genoa = cpuid_page_for("EPYC-Genoa", CpuidHost::for_product(Product::Genoa)).unwrap();
    let milan_page = cpuid_page_for("EPYC-Milan", CpuidHost::for_product(Product::Milan)).unwrap();
    let mut checked = genoa.clone();
    assert!(!validate(&mut checked, platform(Product::Milan)));
    let (before, after, milan) = (
        raw_entries(&genoa),
        raw_entries(&checked),
        raw_entries(&milan_page),
    );
    assert_eq!(before.len(), after.len());
    let zen3 = Zen::Zen3.features();
    assert_eq!(find(&after, 1, 0).regs[0], default_fms(Product::Milan));
    assert_eq!(
        find(&after, 7, 0).regs,
        [0, zen3.leaf7_ebx, zen3.leaf7_ecx, zen3.leaf7_edx]
    );
    assert_eq!(find(&after, 7, 0).regs, find(&milan, 7, 0).regs);
    assert_eq!(find(&after, 7, 1).regs, [0; 4]);
    assert_eq!(find(&after, 0xD, 0).regs, find(&milan, 0xD, 0).regs);
    for c in [5, 6, 7] {
        assert_ne!(find(&before, 0xD, c).regs, [0; 4]);
        assert_eq!(find(&after, 0xD, c).regs, [0; 4], "0xD.{c}");
    }
    // 57 linear address bits need LA57, which Milan lacks.
    assert_eq!(
        find(&after, 0x8000_0008, 0).regs,
        find(&milan, 0x8000_0008, 0).regs
    );
    // Everything else is untouched.
    for (b, a) in before.iter().zip(&after) {
        if ![0x1, 0x7, 0xD, 0x8000_0001, 0x8000_0008].contains(&b.eax_in) {
            assert_eq!(b, a, "{:#x}.{}", b.eax_in, b.ecx_in);
        }
    }
    // And Genoa takes its own page as is.
    let mut on_genoa = genoa.clone();
    assert!(validate(&mut on_genoa, platform(Product::Genoa)));
}

#[test]
fn layout_is_qemus_snp_cpuid_info() {
    assert_eq!(ENTRIES_OFFSET, 16);
    assert_eq!(ENTRY_LEN, 48);
    let host = CpuidHost::for_product(Product::Genoa);
    for vcpu in VCPU_TYPES.iter().filter(|v| v.signature() <= host.fms) {
        let page = cpuid_page(vcpu, host).unwrap();
        assert_eq!(page.len(), CPUID_PAGE_LEN);
        let typed = cpuid_entries(vcpu, host).unwrap();
        // Header: count, then 12 reserved zero bytes.
        assert_eq!(u32_at(&page, 0) as usize, typed.len());
        assert!(page[4..16].iter().all(|b| *b == 0));
        // Every entry at 16 + 48 i with QEMU's field offsets.
        let raw = raw_entries(&page);
        assert_eq!(raw.len(), typed.len());
        for (r, t) in raw.iter().zip(&typed) {
            assert_eq!(r.eax_in, t.eax_in.get());
            assert_eq!(r.ecx_in, t.ecx_in.get());
            assert_eq!(r.xcr0_in, t.xcr0_in.get());
            assert_eq!(r.xss_in, t.xss_in.get());
            assert_eq!(r.regs, [t.eax.get(), t.ebx.get(), t.ecx.get(), t.edx.get()]);
            assert_eq!(r.reserved, 0);
        }
        // Unused slots and the rest of the page are zero.
        let used = 16 + 48 * raw.len();
        assert!(page[used..].iter().all(|b| *b == 0), "{}", vcpu.name);
        // The first entry is leaf 0 at byte 16.
        assert_eq!(u32_at(&page, 16), 0);
        assert_eq!(u32_at(&page, 16 + 4), 0);
    }
}

#[test]
fn count_never_exceeds_64() {
    for product in SNP_PRODUCTS {
        let host = CpuidHost::for_product(product);
        for vcpu in VCPU_TYPES.iter().filter(|v| v.signature() <= host.fms) {
            let page = cpuid_page(vcpu, host).unwrap();
            let count = u32_at(&page, 0);
            assert!(count <= 64, "{count}");
            assert!(count >= 9, "{count}");
        }
    }
}

#[test]
fn leaves_have_their_documented_meaning() {
    let host = CpuidHost {
        fms: default_fms(Product::Turin),
        c_bit: 51,
        reduced_phys_bits: 5,
    };
    for vcpu in VCPU_TYPES {
        let page = cpuid_page(vcpu, host).unwrap();
        let e = raw_entries(&page);
        let name = vcpu.name;
        // Sorted by (leaf, sub-leaf), no duplicates.
        for w in e.windows(2) {
            assert!(
                (w[0].eax_in, w[0].ecx_in) < (w[1].eax_in, w[1].ecx_in),
                "{name}"
            );
        }
        // 0x0 and 0x8000_0000: maximum leaf covering every entry, AMD vendor.
        let vendor = |r: Raw| {
            let mut s = Vec::new();
            for reg in [r.regs[1], r.regs[3], r.regs[2]] {
                s.extend_from_slice(&reg.to_le_bytes());
            }
            String::from_utf8(s).unwrap()
        };
        let l0 = find(&e, 0, 0);
        assert_eq!(l0.regs[0], MAX_STD_LEAF);
        assert_eq!(vendor(l0), "AuthenticAMD");
        let x0 = find(&e, 0x8000_0000, 0);
        assert_eq!(x0.regs[0], MAX_EXT_LEAF);
        assert!(x0.regs[0] >= 0x8000_001F);
        assert_eq!(vendor(x0), "AuthenticAMD");
        for r in &e {
            if r.eax_in < 0x4000_0000 {
                assert!(r.eax_in <= MAX_STD_LEAF, "{name} {:#x}", r.eax_in);
            } else if r.eax_in >= 0x8000_0000 {
                assert!(r.eax_in <= MAX_EXT_LEAF, "{name} {:#x}", r.eax_in);
            }
            assert_eq!(r.reserved, 0);
        }
        // 0x1: the model's signature, CLFLUSH 64 bytes, hypervisor bit.
        let l1 = find(&e, 1, 0);
        assert_eq!(l1.regs[0], vcpu.signature(), "{name}");
        assert_eq!((l1.regs[1] >> 8) & 0xFF, 8);
        assert_ne!(l1.regs[2] & HYPERVISOR_BIT, 0);
        assert_eq!(l1.regs[2] & (1 << 27), 0, "OSXSAVE is 0 at reset");
        assert_eq!(find(&e, 0x8000_0001, 0).regs[0], vcpu.signature());
        // 0x7.0: its EAX names the highest sub-leaf present.
        let l7 = find(&e, 7, 0);
        let subs = e.iter().filter(|r| r.eax_in == 7).count() as u32;
        assert_eq!(l7.regs[0] + 1, subs, "{name}");
        // 0xD: QEMU's xcr0_in = 1 / xss_in = 0 convention, sizes consistent
        // with the firmware's.
        let d0 = find(&e, 0xD, 0);
        let d1 = find(&e, 0xD, 1);
        assert_eq!((d0.xcr0_in, d0.xss_in), (1, 0));
        assert_eq!((d1.xcr0_in, d1.xss_in), (1, 0));
        assert_eq!(d0.regs[1], xsave_size(d0.xcr0_in));
        assert_eq!(d0.regs[1], 0x240);
        assert_eq!(d1.regs[1], xsaves_size(d1.xcr0_in, d1.xss_in));
        let supported = u64::from(d0.regs[0]) | (u64::from(d0.regs[3]) << 32);
        assert_eq!(supported & 0x3, 0x3, "x87 and SSE");
        assert_eq!(d0.regs[2], xsave_size(supported));
        // One sub-leaf per supported component >= 2, ending where ECX says.
        let mut end = 0x240;
        for c in 2..64 {
            let present = e.iter().any(|r| r.eax_in == 0xD && r.ecx_in == c);
            assert_eq!(present, supported & (1 << c) != 0, "{name} 0xD.{c}");
            if present {
                let r = find(&e, 0xD, c);
                assert_eq!((r.xcr0_in, r.xss_in), (0, 0));
                end = end.max(r.regs[0] + r.regs[1]);
            }
        }
        assert_eq!(end, d0.regs[2], "{name}");
        // 0x8000_0008: 40 physical address bits, below the C-bit.
        let x8 = find(&e, 0x8000_0008, 0);
        assert_eq!(x8.regs[0] & 0xFF, 40);
        assert!(u32::from(host.c_bit) > x8.regs[0] & 0xFF);
        // 0x8000_001F: SEV, SEV-ES, SNP; C-bit and reduced bits.
        let sev = find(&e, 0x8000_001F, 0);
        assert_eq!(sev.regs[0] & 0b1_1010, 0b1_1010);
        assert_eq!(sev.regs[1] & 0x3F, 51);
        assert_eq!((sev.regs[1] >> 6) & 0x3F, 5);
        assert_eq!(sev.regs[1] >> 12, 0, "no VMPLs, as KVM reports");
        assert_eq!((sev.regs[2], sev.regs[3]), (0, 0));
        // KVM's hypervisor leaves.
        let kvm = find(&e, 0x4000_0000, 0);
        let mut sig = Vec::new();
        for reg in &kvm.regs[1..] {
            sig.extend_from_slice(&reg.to_le_bytes());
        }
        assert_eq!(&sig, b"KVMKVMKVM\0\0\0");
        assert_eq!(kvm.regs[0], 0x4000_0001);
    }
}

#[test]
fn a_wrong_c_bit_is_rejected_by_the_firmware() {
    for product in SNP_PRODUCTS {
        let right = CpuidHost::for_product(product);
        let wrong = CpuidHost { c_bit: 47, ..right };
        assert_ne!(wrong.c_bit, right.c_bit);
        let mut page = cpuid_page_for("EPYC-Milan", wrong).unwrap();
        assert!(
            !validate(&mut page, platform(product)),
            "{product:?} accepted C-bit 47"
        );
        // The firmware's correction is exactly the page built with the
        // right C-bit.
        assert_eq!(page, cpuid_page_for("EPYC-Milan", right).unwrap());
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let host = CpuidHost::for_product(Product::Genoa);
    assert!(matches!(
        cpuid_page_for("Skylake-Server", host),
        Err(CpuidError::UnknownModel { .. })
    ));
    assert!(matches!(
        cpuid_page_for("", host),
        Err(CpuidError::UnknownModel { .. })
    ));
    let intel = VcpuType {
        name: "Icelake-Server",
        family: 6,
        model: 0x6A,
        stepping: 0,
        in_sev_snp_measure: false,
    };
    assert!(matches!(
        cpuid_page(&intel, host),
        Err(CpuidError::NotAmdZen { family: 6, .. })
    ));
    let epyc = vcpu_type("epyc-milan").unwrap();
    for c_bit in [0, 12, 40, 64, 255] {
        let h = CpuidHost { c_bit, ..host };
        assert_eq!(cpuid_page(epyc, h), Err(CpuidError::CBit { c_bit }));
    }
    for bits in [0, 64, 200] {
        let h = CpuidHost {
            reduced_phys_bits: bits,
            ..host
        };
        assert_eq!(
            cpuid_page(epyc, h),
            Err(CpuidError::ReducedPhysBits { bits })
        );
    }
    // Case-insensitive names, deterministic pages.
    assert_eq!(
        cpuid_page_for("epyc-genoa", host).unwrap(),
        cpuid_page_for("EPYC-Genoa", host).unwrap()
    );
}
