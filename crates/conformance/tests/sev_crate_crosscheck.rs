//! Cross-checks sevkit's report layout against an independent parser: the
//! `sev` crate (virtee, used by snpguest). Reports of versions 2, 3 and 5 are
//! built field by field with sevkit's layout, each field holding a distinct
//! value, then parsed by `sev`; every field must come back equal. A wrong
//! offset in either parser shows up as a mismatch.

use sev::firmware::guest::AttestationReport as PeerReport;
use sev::parser::ByteParser;
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::{Product, TcbLayout};
use sev_abi::report::AttestationReport;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

fn fill<const N: usize>(seed: u8) -> [u8; N] {
    core::array::from_fn(|i| seed.wrapping_add((i as u8).wrapping_mul(7)) | 1)
}

/// A report whose every field holds a distinct recognisable value.
fn build(version: u32, product: Product) -> AttestationReport {
    let mut r = AttestationReport::new_zeroed();
    r.version = U32::new(version);
    r.guest_svn = U32::new(0x0102_0304);
    r.policy = SnpPolicy::from_raw(0x000B_0304);
    r.family_id = fill(0x10);
    r.image_id = fill(0x20);
    r.vmpl = U32::new(2);
    r.signature_algo = U32::new(1);
    r.current_tcb = U64::new(0x7300_0000_0000_0203);
    r.platform_info = U64::new(0x25);
    r.key_info = U32::new(0x1);
    r.report_data = fill(0x30);
    r.measurement = SnpLaunchDigest::new(fill(0x40));
    r.host_data = fill(0x50);
    r.id_key_digest = fill(0x60);
    r.author_key_digest = fill(0x70);
    r.report_id = fill(0x80);
    r.report_id_ma = fill(0x90);
    r.reported_tcb = U64::new(0x7408_0000_0000_0304);
    // Chip id: Milan/Genoa use 64 bytes, Turin 8 (the rest zero).
    let chip: [u8; 64] = fill(0xA0);
    r.chip_id = chip;
    if product == Product::Turin {
        r.chip_id[8..].fill(0);
        r.current_tcb = U64::new(0x7300_0000_0405_0607);
        r.reported_tcb = U64::new(0x7400_0000_0506_0708);
    }
    if version >= 3 {
        let (family, model) = match product {
            Product::Milan => (0x19, 0x01),
            Product::Genoa => (0x19, 0x11),
            _ => (0x1A, 0x02),
        };
        r.cpuid_fam_id = family;
        r.cpuid_mod_id = model;
        r.cpuid_step = 0x01;
    }
    r.committed_tcb = U64::new(0x7200_0000_0000_0102);
    r.current_build = 0x15;
    r.current_minor = 0x37;
    r.current_major = 0x01;
    r.committed_build = 0x14;
    r.committed_minor = 0x36;
    r.committed_major = 0x01;
    r.launch_tcb = U64::new(0x7100_0000_0000_0101);
    if version >= 5 {
        r.launch_mit_vector = U64::new(0x1122_3344_5566_7788);
        r.current_mit_vector = U64::new(0x8877_6655_4433_2211);
    }
    r.signature.r = fill(0xB0);
    r.signature.s = fill(0xC0);
    r
}

fn check(version: u32, product: Product) {
    let ours = build(version, product);
    let bytes = ours.as_bytes();
    // Our own parser accepts and round-trips it.
    let reparsed = AttestationReport::from_bytes(bytes).expect("sevkit parses its own report");
    assert_eq!(reparsed.as_bytes(), bytes);

    let peer = PeerReport::from_bytes(bytes).expect("sev crate parses the report");
    let ctx = format!("v{version} {product:?}");
    assert_eq!(peer.version, version, "{ctx} version");
    assert_eq!(peer.guest_svn, ours.guest_svn.get(), "{ctx} guest_svn");
    assert_eq!(u64::from(peer.policy), ours.policy.raw(), "{ctx} policy");
    assert_eq!(peer.family_id, ours.family_id, "{ctx} family_id");
    assert_eq!(peer.image_id, ours.image_id, "{ctx} image_id");
    assert_eq!(peer.vmpl, ours.vmpl.get(), "{ctx} vmpl");
    assert_eq!(peer.sig_algo, ours.signature_algo.get(), "{ctx} sig_algo");
    assert_eq!(
        u64::from(peer.plat_info),
        ours.platform_info.get(),
        "{ctx} platform_info"
    );
    assert_eq!(
        u32::from(peer.key_info),
        ours.key_info.get(),
        "{ctx} key_info"
    );
    assert_eq!(peer.report_data, ours.report_data, "{ctx} report_data");
    assert_eq!(peer.measurement, ours.measurement, "{ctx} measurement");
    assert_eq!(peer.host_data, ours.host_data, "{ctx} host_data");
    assert_eq!(
        peer.id_key_digest, ours.id_key_digest,
        "{ctx} id_key_digest"
    );
    assert_eq!(
        peer.author_key_digest, ours.author_key_digest,
        "{ctx} author_key_digest"
    );
    assert_eq!(peer.report_id, ours.report_id, "{ctx} report_id");
    assert_eq!(peer.report_id_ma, ours.report_id_ma, "{ctx} report_id_ma");
    assert_eq!(peer.chip_id, ours.chip_id, "{ctx} chip_id");
    assert_eq!(
        (peer.current.major, peer.current.minor, peer.current.build),
        ours.current_version(),
        "{ctx} current version"
    );
    assert_eq!(
        (
            peer.committed.major,
            peer.committed.minor,
            peer.committed.build
        ),
        ours.committed_version(),
        "{ctx} committed version"
    );
    if version >= 3 {
        assert_eq!(
            (peer.cpuid_fam_id, peer.cpuid_mod_id, peer.cpuid_step),
            ours.cpuid()
                .map(|(f, m, s)| (Some(f), Some(m), Some(s)))
                .unwrap(),
            "{ctx} cpuid"
        );
    }
    if version >= 5 {
        assert_eq!(
            (peer.launch_mit_vector, peer.current_mit_vector),
            ours.mitigation_vectors()
                .map(|(l, c)| (Some(l), Some(c)))
                .unwrap(),
            "{ctx} mitigation vectors"
        );
    }
    assert_eq!(peer.signature.r(), &ours.signature.r, "{ctx} signature r");
    assert_eq!(peer.signature.s(), &ours.signature.s, "{ctx} signature s");

    // TCB values decode the same way per product layout.
    let layout = product.tcb_layout();
    for (name, peer_tcb, our_tcb) in [
        ("current_tcb", peer.current_tcb, ours.current_tcb()),
        ("reported_tcb", peer.reported_tcb, ours.reported_tcb()),
        ("committed_tcb", peer.committed_tcb, ours.committed_tcb()),
        ("launch_tcb", peer.launch_tcb, ours.launch_tcb()),
    ] {
        let parts = our_tcb.decode(layout);
        assert_eq!(
            (
                peer_tcb.fmc,
                peer_tcb.bootloader,
                peer_tcb.tee,
                peer_tcb.snp,
                peer_tcb.microcode
            ),
            (
                parts.fmc,
                parts.bootloader,
                parts.tee,
                parts.snp,
                parts.microcode
            ),
            "{ctx} {name}"
        );
    }
    if layout == TcbLayout::Turin {
        assert!(ours.reported_tcb().decode(layout).fmc.is_some());
    }
}

#[test]
fn version_2_milan_genoa_layout() {
    // v2 has no CPUID bytes; the peer guesses Genoa (same TCB layout as Milan).
    check(2, Product::Milan);
}

#[test]
fn version_2_turin_layout() {
    check(2, Product::Turin);
}

#[test]
fn version_3_each_product() {
    for product in [Product::Milan, Product::Genoa, Product::Turin] {
        check(3, product);
    }
}

#[test]
fn version_5_each_product() {
    for product in [Product::Milan, Product::Genoa, Product::Turin] {
        check(5, product);
    }
}
