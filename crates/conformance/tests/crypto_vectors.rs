//! sev-crypto against real AMD material: the SNP X.509 chains (VCEK <- ASK
//! <- ARK), a real Milan attestation report signature, and the legacy SEV
//! certificate chains (ECDSA P-384 SHA-256 and RSA-PSS over little-endian
//! integers).

use sev_abi::pubkey::EccPublicKey;
use sev_abi::signature::EcdsaSignature;
use sev_crypto::ecdsa::P384PublicKey;
use sev_crypto::report::{verify_report_signature, REPORT_LEN, REPORT_SIGNED_LEN};
use sev_crypto::rsa_pss::{verify_rsa_pss_le, RsaHash};
use sev_crypto::x509::{pem_chain, CertPublicKey, ObjectIdentifier, X509Cert};
use sev_crypto::CryptoError;

use sevkit_conformance::{read_hex as read_hex_vector, read_text};

/// (VCEK, ASK, ARK) of a product directory under real/snp.
fn real_chain(product: &str) -> (X509Cert, X509Cert, X509Cert) {
    let vcek = X509Cert::from_der(&sevkit_conformance::read_vector(&format!(
        "real/snp/{product}/vcek.der"
    )))
    .expect("VCEK parses");
    let mut chain = pem_chain(&read_text(&format!("real/snp/{product}/cert_chain.pem")))
        .expect("cert_chain.pem parses");
    assert_eq!(chain.len(), 2, "cert_chain.pem holds ASK then ARK");
    let ark = chain.pop().unwrap();
    let ask = chain.pop().unwrap();
    (vcek, ask, ark)
}

fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

fn check_chain(product: &str, signer_cn: &str, root_cn: &str) -> (X509Cert, X509Cert, X509Cert) {
    let (vcek, ask, ark) = real_chain(product);
    assert_eq!(vcek.subject_common_name().as_deref(), Some("SEV-VCEK"));
    assert_eq!(vcek.issuer_common_name().as_deref(), Some(signer_cn));
    assert_eq!(ask.subject_common_name().as_deref(), Some(signer_cn));
    assert_eq!(ask.issuer_common_name().as_deref(), Some(root_cn));
    assert_eq!(ark.subject_common_name().as_deref(), Some(root_cn));

    assert!(matches!(vcek.public_key().unwrap(), CertPublicKey::P384(_)));
    assert!(matches!(ask.public_key().unwrap(), CertPublicKey::Rsa(_)));
    assert!(matches!(ark.public_key().unwrap(), CertPublicKey::Rsa(_)));

    ark.verify_self_signed().expect("ARK is self-signed");
    ask.verify_issued_by(&ark).expect("ASK issued by ARK");
    vcek.verify_issued_by(&ask).expect("VCEK issued by ASK");

    // Wrong issuers.
    assert_eq!(
        vcek.verify_issued_by(&ark),
        Err(CryptoError::IssuerMismatch)
    );
    assert_eq!(ask.verify_issued_by(&ask), Err(CryptoError::IssuerMismatch));
    assert!(vcek.verify_issued_by(&vcek).is_err());

    // The TBS slice is the raw encoding that follows the outer header.
    let tbs = vcek.tbs_der();
    assert_eq!(tbs[0], 0x30);
    let start = vcek.der().len() - vcek.der()[4..].len();
    assert_eq!(&vcek.der()[start..start + tbs.len()], tbs);
    (vcek, ask, ark)
}

/// Flips one bit of `der` at `offset` and expects either a parse error or a
/// failed signature check against `issuer`.
fn tampered_fails(der: &[u8], offset: usize, issuer: &X509Cert) {
    let mut bad = der.to_vec();
    bad[offset] ^= 0x01;
    if let Ok(cert) = X509Cert::from_der(&bad) {
        assert!(
            cert.verify_issued_by(issuer).is_err(),
            "tampered byte {offset:#x} still verifies"
        );
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn milan_chain_verifies() {
    let (vcek, ask, ark) = check_chain("milan", "SEV-Milan", "ARK-Milan");

    // Validity 2023-04-03 .. 2030-04-03 (UTC dates; allow a day either way).
    let (from, to) = vcek.validity_unix();
    assert!(
        (1_680_393_600..1_680_566_400).contains(&from),
        "not_before {from}"
    );
    assert!(
        (1_901_318_400..1_901_491_200).contains(&to),
        "not_after {to}"
    );

    // VCEK extensions: productName, the TCB SPLs (TCB 0x0300000000000873),
    // and the 64-byte hwID.
    let ext = |s: &str| vcek.extension(&oid(s)).map(<[u8]>::to_vec);
    assert_eq!(ext("1.3.6.1.4.1.3704.1.2").unwrap(), b"\x16\x08Milan-B0");
    assert_eq!(ext("1.3.6.1.4.1.3704.1.3.1").unwrap(), [0x02, 0x01, 0x03]);
    assert_eq!(ext("1.3.6.1.4.1.3704.1.3.2").unwrap(), [0x02, 0x01, 0x00]);
    assert_eq!(ext("1.3.6.1.4.1.3704.1.3.3").unwrap(), [0x02, 0x01, 0x08]);
    assert_eq!(ext("1.3.6.1.4.1.3704.1.3.8").unwrap(), [0x02, 0x01, 0x73]);
    assert_eq!(ext("1.3.6.1.4.1.3704.1.4").unwrap().len(), 64);
    assert_eq!(ext("1.3.6.1.4.1.3704.1.9"), None);

    // The embedded AMD root copies equal the served chain.
    let pinned_root = X509Cert::from_pem(&read_text("amd-roots/snp/milan/ark.pem")).unwrap();
    let pinned_signer = X509Cert::from_pem(&read_text("amd-roots/snp/milan/ask.pem")).unwrap();
    assert_eq!(pinned_root.der(), ark.der());
    assert_eq!(pinned_signer.der(), ask.der());

    // Tampering with the VCEK's TBS (serial, validity, key, extensions) or
    // with its signature makes the check fail.
    let der = vcek.der();
    let n = der.len();
    for offset in [
        8,
        15,
        0x60,
        0x100,
        0x200,
        vcek.tbs_der().len(),
        n - 100,
        n - 1,
    ] {
        tampered_fails(der, offset, &ask);
    }
    let der = ask.der();
    for offset in [20, 0x150, der.len() - 2] {
        tampered_fails(der, offset, &ark);
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn turin_chain_verifies() {
    let (vcek, _, ark) = check_chain("turin", "SEV-Turin", "ARK-Turin");
    let ext = |s: &str| vcek.extension(&oid(s)).map(<[u8]>::to_vec);
    assert_eq!(
        ext("1.3.6.1.4.1.3704.1.1").unwrap(),
        [0x02, 0x01, 0x01],
        "structVersion 1"
    );
    assert_eq!(ext("1.3.6.1.4.1.3704.1.2").unwrap(), b"\x16\x05Turin");
    assert!(ext("1.3.6.1.4.1.3704.1.3.9").is_some(), "fmcSPL present");
    assert_eq!(ext("1.3.6.1.4.1.3704.1.4").unwrap().len(), 8, "8-byte hwID");

    let pinned_root = X509Cert::from_pem(&read_text("amd-roots/snp/turin/ark.pem")).unwrap();
    assert_eq!(pinned_root.der(), ark.der());
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn genoa_roots_verify() {
    let ark = X509Cert::from_pem(&read_text("amd-roots/snp/genoa/ark.pem")).unwrap();
    let ask = X509Cert::from_pem(&read_text("amd-roots/snp/genoa/ask.pem")).unwrap();
    assert_eq!(ark.subject_common_name().as_deref(), Some("ARK-Genoa"));
    assert_eq!(ask.subject_common_name().as_deref(), Some("SEV-Genoa"));
    ark.verify_self_signed().unwrap();
    ask.verify_issued_by(&ark).unwrap();

    // Cross-product issuers fail.
    let milan_ark = X509Cert::from_pem(&read_text("amd-roots/snp/milan/ark.pem")).unwrap();
    assert!(ask.verify_issued_by(&milan_ark).is_err());
    // A PEM chain is not one certificate.
    assert!(X509Cert::from_pem(&read_text("real/snp/milan/cert_chain.pem")).is_err());
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn real_milan_report_signature() {
    let report = read_hex_vector("real/snp/milan/report.hex");
    assert_eq!(report.len(), REPORT_LEN);
    let (vcek, ask, _) = real_chain("milan");
    vcek.verify_issued_by(&ask).unwrap();
    let CertPublicKey::P384(key) = vcek.public_key().unwrap() else {
        panic!("VCEK key is not P-384");
    };
    verify_report_signature(&report, &key).expect("real Milan report verifies");

    // Any signed byte, and any signature byte, matters.
    let signed = [
        0x000, 0x008, 0x038, 0x050, 0x090, 0x0C0, 0x180, 0x1A0, 0x1F8, 0x29F,
    ];
    let sig = [
        0x2A0,
        0x2A0 + 20,
        0x2A0 + 47,
        0x2E8,
        0x2E8 + 30,
        0x2A0 + 60,
        0x330,
        0x49F,
    ];
    for offset in signed.into_iter().chain(sig) {
        let mut bad = report.clone();
        bad[offset] ^= 0x01;
        assert!(
            verify_report_signature(&bad, &key).is_err(),
            "offset {offset:#x}"
        );
    }
    assert!(verify_report_signature(&report[..REPORT_SIGNED_LEN], &key).is_err());

    // Another product's VCEK does not verify it.
    let (turin_vcek, _, _) = real_chain("turin");
    let CertPublicKey::P384(turin_key) = turin_vcek.public_key().unwrap() else {
        panic!("Turin VCEK key is not P-384");
    };
    assert!(verify_report_signature(&report, &turin_key).is_err());
}

// ---- Legacy SEV certificates (amd-sp-reference.md §1.7, §1.8) ----

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

/// The P-384 public key of a `sev_cert` (ECDSA or ECDH).
fn sev_cert_ecc_key(cert: &[u8]) -> P384PublicKey {
    assert_eq!(u32_at(cert, 0x10), 2, "curve P-384");
    let mut x = [0u8; 48];
    let mut y = [0u8; 48];
    for i in 0..48 {
        x[i] = cert[0x14 + 47 - i];
        y[i] = cert[0x14 + 72 + 47 - i];
    }
    P384PublicKey::from_amd(&EccPublicKey::from_p384_be(&x, &y)).expect("valid P-384 key")
}

/// The signature slot of `cert` made by a signer with `usage`.
fn sev_cert_sig(cert: &[u8], usage: u32) -> (u32, &[u8]) {
    for base in [0x414, 0x61C] {
        if u32_at(cert, base) == usage {
            return (u32_at(cert, base + 4), &cert[base + 8..base + 8 + 512]);
        }
    }
    panic!("no signature with usage {usage:#x}");
}

fn ecdsa_slot(slot: &[u8]) -> EcdsaSignature {
    EcdsaSignature {
        r: slot[..72].try_into().unwrap(),
        s: slot[72..144].try_into().unwrap(),
        reserved: slot[144..].try_into().unwrap(),
    }
}

/// Verifies that `signer` (usage `signer_usage`) signed `cert` with ECDSA
/// P-384 SHA-256, and that a flipped byte breaks it.
fn check_ecdsa_sha256(cert: &[u8], signer: &[u8], signer_usage: u32) {
    let (algo, slot) = sev_cert_sig(cert, signer_usage);
    assert_eq!(algo, 0x2, "ECDSA_SHA256");
    let key = sev_cert_ecc_key(signer);
    let sig = ecdsa_slot(slot);
    key.verify_sha256(&cert[..0x414], &sig)
        .expect("legacy ECDSA signature verifies");
    let mut bad = cert[..0x414].to_vec();
    bad[0x20] ^= 1;
    assert!(key.verify_sha256(&bad, &sig).is_err());
    assert!(key.verify_sha384(&cert[..0x414], &sig).is_err());
}

/// An AMD legacy ARK/ASK certificate: (signed bytes, exponent LE, modulus
/// LE, signature LE, hash).
struct AmdCert {
    signed: Vec<u8>,
    exponent: Vec<u8>,
    modulus: Vec<u8>,
    signature: Vec<u8>,
    hash: RsaHash,
}

fn amd_cert(bytes: &[u8]) -> AmdCert {
    let exp_len = u32_at(bytes, 0x38) as usize / 8;
    let mod_len = u32_at(bytes, 0x3C) as usize / 8;
    let mod_start = 0x40 + exp_len;
    let sig_start = mod_start + mod_len;
    AmdCert {
        signed: bytes[..sig_start].to_vec(),
        exponent: bytes[0x40..mod_start].to_vec(),
        modulus: bytes[mod_start..sig_start].to_vec(),
        signature: bytes[sig_start..sig_start + mod_len].to_vec(),
        hash: if mod_len == 256 {
            RsaHash::Sha256
        } else {
            RsaHash::Sha384
        },
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn legacy_amd_roots_verify() {
    for product in ["rome", "milan", "genoa", "turin"] {
        let ark = amd_cert(&sevkit_conformance::read_vector(&format!(
            "amd-roots/sev/{product}/ark.cert"
        )));
        let ask = amd_cert(&sevkit_conformance::read_vector(&format!(
            "amd-roots/sev/{product}/ask.cert"
        )));
        assert_eq!(ark.hash, RsaHash::Sha384);
        verify_rsa_pss_le(
            &ark.modulus,
            &ark.exponent,
            ark.hash,
            &ark.signed,
            &ark.signature,
        )
        .unwrap_or_else(|e| panic!("{product} ARK self-signature: {e}"));
        verify_rsa_pss_le(
            &ark.modulus,
            &ark.exponent,
            ark.hash,
            &ask.signed,
            &ask.signature,
        )
        .unwrap_or_else(|e| panic!("{product} ASK by ARK: {e}"));
        // The ASK does not verify itself, and a changed byte fails.
        assert!(verify_rsa_pss_le(
            &ask.modulus,
            &ask.exponent,
            ask.hash,
            &ask.signed,
            &ask.signature
        )
        .is_err());
        let mut bad = ask.signed.clone();
        bad[0x10] ^= 1;
        assert!(
            verify_rsa_pss_le(&ark.modulus, &ark.exponent, ark.hash, &bad, &ask.signature).is_err()
        );
    }
    // Naples: the ASK is RSA-2048 with SHA-256.
    let naples_ask = amd_cert(&sevkit_conformance::read_vector(
        "amd-roots/sev/naples/ask.cert",
    ));
    assert_eq!(naples_ask.hash, RsaHash::Sha256);
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn legacy_platform_chains_verify() {
    for product in ["naples", "rome"] {
        let read =
            |name: &str| sevkit_conformance::read_vector(&format!("real/sev/{product}/{name}"));
        let (pdh, pek, oca, cek) = (
            read("pdh.cert"),
            read("pek.cert"),
            read("oca.cert"),
            read("cek.cert"),
        );
        // ECDSA P-384 with SHA-256: OCA self, PEK by OCA and CEK, PDH by PEK.
        check_ecdsa_sha256(&oca, &oca, 0x1001);
        check_ecdsa_sha256(&pek, &oca, 0x1001);
        check_ecdsa_sha256(&pek, &cek, 0x1004);
        check_ecdsa_sha256(&pdh, &pek, 0x1002);

        // CEK by the ASK: RSA-PSS over [0, 0x414) with a little-endian
        // signature in a 512-byte slot.
        let ask = amd_cert(&sevkit_conformance::read_vector(&format!(
            "amd-roots/sev/{product}/ask.cert"
        )));
        let (algo, slot) = sev_cert_sig(&cek, 0x13);
        let hash = match algo {
            0x1 => RsaHash::Sha256,
            0x101 => RsaHash::Sha384,
            other => panic!("{product}: unexpected CEK signature algo {other:#x}"),
        };
        assert_eq!(hash, ask.hash);
        verify_rsa_pss_le(&ask.modulus, &ask.exponent, hash, &cek[..0x414], slot)
            .unwrap_or_else(|e| panic!("{product} CEK by ASK: {e}"));
        let mut bad = cek[..0x414].to_vec();
        bad[0x30] ^= 1;
        assert!(verify_rsa_pss_le(&ask.modulus, &ask.exponent, hash, &bad, slot).is_err());
    }
}
