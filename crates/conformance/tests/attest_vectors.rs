//! The verifier (sev-attest) on real AMD material: the real Milan report must
//! verify against its VCEK and AMD's pinned Milan roots; every single-byte
//! change to the signed area, the signature, the VCEK or the ASK must fail the
//! right named check; the real Naples and Rome platform chains must verify to
//! their pinned roots, and a flipped byte in any certificate must name the
//! broken link.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::legacy_cert::SevCert;
use sev_abi::product::{Product, TcbLayout};
use sev_attest::legacy::{verify_platform_chain, LegacyAnchor, PlatformChain};
use sev_attest::snp::{verify_report, ChainSource, ReportExpectations};
use sev_attest::vcek::{EndorsementInfo, EndorsementKind};
use sev_attest::{Outcome, Verdict};
use sev_crypto::x509::{pem_chain, X509Cert};
use sevkit_conformance::{read_hex, read_text, read_vector};

/// A fixed time inside every certificate's validity (2025-06-01), so the
/// tests do not depend on the clock.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_748_736_000)
}

fn milan() -> (Vec<u8>, X509Cert) {
    let report = read_hex("real/snp/milan/report.hex");
    let vcek = X509Cert::from_der(&read_vector("real/snp/milan/vcek.der")).unwrap();
    (report, vcek)
}

fn failed(verdict: &Verdict) -> Vec<&'static str> {
    verdict.failures().map(|c| c.name).collect()
}

fn pinned_milan(report: &[u8], vcek: &X509Cert) -> Verdict {
    verify_report(
        report,
        vcek,
        &ChainSource::Pinned(Product::Milan),
        &ReportExpectations::default(),
        now(),
    )
    .unwrap()
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn real_milan_report_verifies_against_pinned_roots() {
    let (report, vcek) = milan();
    let verdict = pinned_milan(&report, &vcek);
    assert!(verdict.passed(), "failures: {:?}", verdict.checks);
    for name in [
        "chain.ark_trusted",
        "chain.ark_self_signed",
        "chain.ask_signed_by_ark",
        "chain.vcek_signed_by_ask",
        "chain.validity",
        "report.signature",
        "report.tcb",
        "report.chip_id",
        "policy.debug",
    ] {
        assert!(
            matches!(verdict.get(name), Some(Outcome::Pass(_))),
            "{name}: {:?}",
            verdict.get(name)
        );
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn real_milan_report_verifies_with_the_kds_chain_file() {
    let (report, vcek) = milan();
    let mut chain = pem_chain(&read_text("real/snp/milan/cert_chain.pem")).unwrap();
    let ark = chain.pop().unwrap();
    let ask = chain.pop().unwrap();
    let source = ChainSource::Supplied { ask, ark };
    let verdict = verify_report(
        &report,
        &vcek,
        &source,
        &ReportExpectations::default(),
        now(),
    )
    .unwrap();
    assert!(verdict.passed(), "{:?}", verdict.checks);
    // The supplied ARK is recognised as AMD's.
    match verdict.get("chain.ark_trusted") {
        Some(Outcome::Pass(detail)) => {
            assert!(detail.contains("AMD's pinned Milan ARK"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn every_flipped_signed_or_signature_byte_fails() {
    let (report, vcek) = milan();
    // Every byte of the signed area and of r and s; the rest of the slot is
    // zero padding, where a flip must fail too (non-canonical encoding).
    for offset in 0..0x2A0 + 0x90 + 16 {
        let mut tampered = report.clone();
        tampered[offset] ^= 0x01;
        let Ok(verdict) = verify_report(
            &tampered,
            &vcek,
            &ChainSource::Pinned(Product::Milan),
            &ReportExpectations::default(),
            now(),
        ) else {
            // Flipping the version field makes the report unparseable: also a refusal.
            assert!(offset < 4, "offset {offset:#x} made the report unparseable");
            continue;
        };
        assert!(
            matches!(verdict.get("report.signature"), Some(Outcome::Fail(_))),
            "flip at {offset:#x} still verifies"
        );
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn flipped_vcek_or_ask_byte_breaks_the_chain() {
    let (report, vcek) = milan();
    let mut chain = pem_chain(&read_text("real/snp/milan/cert_chain.pem")).unwrap();
    let ark = chain.pop().unwrap();
    let ask = chain.pop().unwrap();

    // VCEK: flip bytes across the signed part (public key, extensions, names).
    let der = vcek.der().to_vec();
    let mut checked = 0;
    for offset in (8..der.len() - 120).step_by(7) {
        let mut tampered = der.clone();
        tampered[offset] ^= 0x01;
        let Ok(cert) = X509Cert::from_der(&tampered) else {
            continue;
        };
        let source = ChainSource::Supplied {
            ask: ask.clone(),
            ark: ark.clone(),
        };
        let verdict = verify_report(
            &report,
            &cert,
            &source,
            &ReportExpectations::default(),
            now(),
        )
        .unwrap();
        assert!(
            failed(&verdict).contains(&"chain.vcek_signed_by_ask"),
            "VCEK flip at {offset:#x}: {:?}",
            failed(&verdict)
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} VCEK flips parsed");

    // ASK: same.
    let der = ask.der().to_vec();
    let mut checked = 0;
    for offset in (8..der.len() - 520).step_by(11) {
        let mut tampered = der.clone();
        tampered[offset] ^= 0x80;
        let Ok(bad_ask) = X509Cert::from_der(&tampered) else {
            continue;
        };
        let source = ChainSource::Supplied {
            ask: bad_ask,
            ark: ark.clone(),
        };
        let verdict = verify_report(
            &report,
            &vcek,
            &source,
            &ReportExpectations::default(),
            now(),
        )
        .unwrap();
        let failures = failed(&verdict);
        assert!(
            failures.contains(&"chain.ask_signed_by_ark")
                || failures.contains(&"chain.vcek_signed_by_ask"),
            "ASK flip at {offset:#x}: {failures:?}"
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} ASK flips parsed");
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn wrong_product_roots_and_expectations_fail_by_name() {
    let (report, vcek) = milan();
    // Genoa's roots did not sign a Milan VCEK.
    let verdict = verify_report(
        &report,
        &vcek,
        &ChainSource::Pinned(Product::Genoa),
        &ReportExpectations::default(),
        now(),
    )
    .unwrap();
    assert!(
        failed(&verdict).contains(&"chain.vcek_signed_by_ask"),
        "{:?}",
        failed(&verdict)
    );

    // Every expectation that differs is reported, all at once.
    let expect = ReportExpectations {
        measurement: Some(SnpLaunchDigest::new([0; 48])),
        report_data: Some(vec![0xAA]),
        host_data: Some(vec![1; 32]),
        id_key_digest: Some(vec![2; 48]),
        author_key_digest: Some(vec![3; 48]),
        min_tcb: Some(sev_abi::product::TcbParts {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 9,
            microcode: 0,
        }),
        vmpl: Some(1),
        allow_debug: false,
        allow_migration_agent: false,
    };
    let verdict = verify_report(
        &report,
        &vcek,
        &ChainSource::Pinned(Product::Milan),
        &expect,
        now(),
    )
    .unwrap();
    let failures = failed(&verdict);
    for name in [
        "report.measurement",
        "report.report_data",
        "report.host_data",
        "report.id_key_digest",
        "report.author_key_digest",
        "report.min_tcb",
        "report.vmpl",
    ] {
        assert!(failures.contains(&name), "{name} missing from {failures:?}");
    }
    assert!(!failures.contains(&"report.signature"));

    // The real values pass.
    let parsed = sev_abi::report::AttestationReport::from_bytes(&report).unwrap();
    let expect = ReportExpectations {
        measurement: Some(parsed.measurement),
        report_data: Some(parsed.report_data.to_vec()),
        host_data: Some(parsed.host_data.to_vec()),
        min_tcb: Some(sev_abi::product::TcbParts {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 0x73,
        }),
        vmpl: Some(0),
        ..ReportExpectations::default()
    };
    let verdict = verify_report(
        &report,
        &vcek,
        &ChainSource::Pinned(Product::Milan),
        &expect,
        now(),
    )
    .unwrap();
    assert!(verdict.passed(), "{:?}", failed(&verdict));
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn expired_certificates_fail_validity() {
    let (report, vcek) = milan();
    let after = UNIX_EPOCH + Duration::from_secs(2_000_000_000); // 2033, past the VCEK's 2030 expiry
    let verdict = verify_report(
        &report,
        &vcek,
        &ChainSource::Pinned(Product::Milan),
        &ReportExpectations::default(),
        after,
    )
    .unwrap();
    assert_eq!(failed(&verdict), vec!["chain.validity"]);
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn masked_chip_id_is_skipped_not_failed() {
    let (report, vcek) = milan();
    let mut masked = report.clone();
    masked[0x1A0..0x1E0].fill(0);
    let verdict = pinned_milan(&masked, &vcek);
    assert!(matches!(
        verdict.get("report.chip_id"),
        Some(Outcome::Skip(_))
    ));
    // Masking changes signed bytes, so this report's signature no longer holds.
    assert!(matches!(
        verdict.get("report.signature"),
        Some(Outcome::Fail(_))
    ));
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn milan_and_turin_vcek_extensions() {
    let (_, vcek) = milan();
    let info = EndorsementInfo::from_cert(&vcek).unwrap();
    assert_eq!(info.kind, EndorsementKind::Vcek);
    assert_eq!(info.product_name, "Milan-B0");
    assert_eq!(info.product, Some(Product::Milan));
    assert_eq!(info.struct_version, Some(0));
    assert_eq!(
        (
            info.tcb.bootloader,
            info.tcb.tee,
            info.tcb.snp,
            info.tcb.microcode
        ),
        (3, 0, 8, 0x73)
    );
    assert_eq!(info.tcb.fmc, None);
    assert_eq!(info.hw_id.as_ref().map(Vec::len), Some(64));
    assert_eq!(info.tcb_layout(), TcbLayout::MilanGenoa);

    let turin = X509Cert::from_der(&read_vector("real/snp/turin/vcek.der")).unwrap();
    let info = EndorsementInfo::from_cert(&turin).unwrap();
    assert_eq!(info.product, Some(Product::Turin));
    assert_eq!(info.product_name, "Turin");
    assert_eq!(info.struct_version, Some(1));
    assert!(info.tcb.fmc.is_some(), "Turin VCEKs carry fmcSPL");
    assert_eq!(
        info.hw_id.as_ref().map(Vec::len),
        Some(8),
        "Turin hwID is 8 bytes"
    );
    assert_eq!(info.tcb_layout(), TcbLayout::Turin);
    // The Turin TCB re-encodes with Turin's byte positions: FMC in byte 0.
    let raw = info.tcb.encode(TcbLayout::Turin);
    assert_eq!(raw.to_le_bytes()[0], info.tcb.fmc.unwrap());
    assert_eq!(raw.to_le_bytes()[1], info.tcb.bootloader);
    assert_eq!(raw.to_le_bytes()[3], info.tcb.snp);
    assert_eq!(raw.to_le_bytes()[7], info.tcb.microcode);

    // The Turin chain verifies against the pinned Turin roots.
    let mut verdict = Verdict::default();
    let product = sev_attest::snp::verify_chain(
        &mut verdict,
        &turin,
        &ChainSource::Pinned(Product::Turin),
        now(),
    );
    assert_eq!(product, Some(Product::Turin));
    assert!(verdict.passed(), "{:?}", verdict.checks);
}

fn platform(product: &str) -> PlatformChain {
    let cert = |name: &str| {
        SevCert::from_bytes(&read_vector(&format!("real/sev/{product}/{name}.cert"))).unwrap()
    };
    PlatformChain {
        pdh: cert("pdh"),
        pek: cert("pek"),
        oca: cert("oca"),
        cek: cert("cek"),
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn naples_and_rome_chains_verify_to_pinned_roots() {
    for (name, product) in [("naples", Product::Naples), ("rome", Product::Rome)] {
        let chain = platform(name);
        for anchor in [LegacyAnchor::Pinned(product), LegacyAnchor::AutoDetect] {
            let verdict = verify_platform_chain(&chain, &anchor);
            assert!(verdict.passed(), "{name}: {:?}", verdict.checks);
        }
        // The other product's roots do not fit.
        let other = if product == Product::Naples {
            Product::Rome
        } else {
            Product::Naples
        };
        let verdict = verify_platform_chain(&chain, &LegacyAnchor::Pinned(other));
        assert_eq!(failed(&verdict), vec!["chain.cek_signed_by_ask"], "{name}");
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn a_flipped_byte_in_any_platform_certificate_names_the_link() {
    use zerocopy::IntoBytes;
    // Which links each certificate's signed bytes take part in.
    let cases: [(&str, &[&str]); 4] = [
        ("pdh", &["chain.pdh_signed_by_pek"]),
        (
            "pek",
            &[
                "chain.pek_signed_by_cek",
                "chain.pek_signed_by_oca",
                "chain.pdh_signed_by_pek",
            ],
        ),
        ("oca", &["chain.oca_self_signed", "chain.pek_signed_by_oca"]),
        (
            "cek",
            &["chain.cek_signed_by_ask", "chain.pek_signed_by_cek"],
        ),
    ];
    for product in ["naples", "rome"] {
        for (which, links) in cases {
            // Flip inside the public key (offset 0x20: part of qx).
            let mut chain = platform(product);
            let cert = match which {
                "pdh" => &mut chain.pdh,
                "pek" => &mut chain.pek,
                "oca" => &mut chain.oca,
                _ => &mut chain.cek,
            };
            let mut bytes = cert.as_bytes().to_vec();
            bytes[0x20] ^= 0x01;
            *cert = SevCert::from_bytes(&bytes).unwrap();
            let verdict = verify_platform_chain(&chain, &LegacyAnchor::AutoDetect);
            let failures = failed(&verdict);
            // The CEK's own flip also hides which product signed it.
            let failures: Vec<_> = failures
                .into_iter()
                .filter(|f| *f != "chain.ark_trusted")
                .collect();
            let mut expected = links.to_vec();
            expected.sort_unstable();
            let mut got = failures.clone();
            got.sort_unstable();
            assert_eq!(got, expected, "{product} {which}");
        }
    }
}

/// A CRL signed by a test root standing in for the ARK (nobody but AMD can
/// sign with AMD's), listing `revoked` serial numbers.
fn test_root_and_crl(
    revoked: &[&[u8]],
    next_update_secs: u64,
) -> (X509Cert, sev_crypto::x509::X509Crl) {
    use core::str::FromStr;
    use der::asn1::{BitString, UtcTime};
    use der::Encode;
    use sev_crypto::ecdsa::P384SigningKey;
    use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
    use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::{Time, Validity};
    use x509_cert::{Certificate, TbsCertificate, Version};

    let time =
        |secs: u64| Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap());
    let ecdsa_sha384 = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"),
        parameters: None,
    };
    let key = P384SigningKey::generate();
    let sign = |tbs: &[u8]| {
        let (r, s) = key.sign_sha384(tbs).unwrap().to_be_scalars().unwrap();
        p384::ecdsa::Signature::from_scalars(r, s)
            .unwrap()
            .to_der()
            .as_bytes()
            .to_vec()
    };
    let name = Name::from_str("CN=ARK-Test,O=sevkit tests").unwrap();
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
            parameters: Some(
                der::Any::encode_from(&ObjectIdentifier::new_unwrap("1.3.132.0.34")).unwrap(),
            ),
        },
        subject_public_key: BitString::from_bytes(&key.public_key().to_sec1()).unwrap(),
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[1]).unwrap(),
        signature: ecdsa_sha384.clone(),
        issuer: name.clone(),
        validity: Validity {
            not_before: time(1_600_000_000),
            not_after: time(2_000_000_000),
        },
        subject: name.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let signature = sign(&tbs.to_der().unwrap());
    let root = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha384.clone(),
        signature: BitString::from_bytes(&signature).unwrap(),
    };
    let root = X509Cert::from_der(&root.to_der().unwrap()).unwrap();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: ecdsa_sha384.clone(),
        issuer: name,
        this_update: time(1_700_000_000),
        next_update: Some(time(next_update_secs)),
        revoked_certificates: Some(
            revoked
                .iter()
                .map(|serial| RevokedCert {
                    serial_number: SerialNumber::new(serial).unwrap(),
                    revocation_date: time(1_700_000_000),
                    crl_entry_extensions: None,
                })
                .collect(),
        ),
        crl_extensions: None,
    };
    let signature = sign(&tbs.to_der().unwrap());
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: ecdsa_sha384,
        signature: BitString::from_bytes(&signature).unwrap(),
    };
    (
        root,
        sev_crypto::x509::X509Crl::from_der(&crl.to_der().unwrap()).unwrap(),
    )
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn crl_check_names_revoked_and_stale_lists() {
    let (_, vcek) = milan();
    let mut chain = pem_chain(&read_text("real/snp/milan/cert_chain.pem")).unwrap();
    chain.pop();
    let ask = chain.pop().unwrap();
    let check = |revoked: &[&[u8]], next_update: u64, signer: Option<&X509Cert>| {
        let (root, crl) = test_root_and_crl(revoked, next_update);
        let ark = signer.cloned().unwrap_or(root);
        let source = ChainSource::Supplied {
            ask: ask.clone(),
            ark,
        };
        let mut verdict = Verdict::default();
        sev_attest::snp::check_crl(&mut verdict, &crl, &vcek, &source, now());
        verdict.get("chain.crl").cloned().unwrap()
    };
    // Nothing of ours revoked, current: pass.
    assert!(matches!(
        check(&[&[0x42]], 1_800_000_000, None),
        Outcome::Pass(_)
    ));
    // The VCEK revoked.
    match check(&[vcek.serial()], 1_800_000_000, None) {
        Outcome::Fail(detail) => assert!(
            detail.contains("VCEK") && detail.contains("revoked"),
            "{detail}"
        ),
        other => panic!("{other:?}"),
    }
    // The ASK revoked.
    match check(&[ask.serial()], 1_800_000_000, None) {
        Outcome::Fail(detail) => assert!(
            detail.contains("ASK") && detail.contains("revoked"),
            "{detail}"
        ),
        other => panic!("{other:?}"),
    }
    // Stale: next update before now.
    match check(&[], 1_710_000_000, None) {
        Outcome::Fail(detail) => assert!(detail.contains("stale"), "{detail}"),
        other => panic!("{other:?}"),
    }
    // Not signed by the chain's ARK (AMD's real Milan ARK here).
    let (_, amd_ark, _) = ChainSource::Pinned(Product::Milan).resolve().unwrap();
    match check(&[], 1_800_000_000, Some(&amd_ark)) {
        Outcome::Fail(detail) => assert!(detail.contains("not signed by the ARK"), "{detail}"),
        other => panic!("{other:?}"),
    }
}
