//! Legacy SEV certificates from real AMD machines and AMD's published roots,
//! parsed with `sev-abi`: layouts, usages, key ids, chain links and
//! byte-exact round trips. Also the synthetic ID authentication block.

use sev_abi::amd_cert::{self, AmdCert};
use sev_abi::legacy_cert::{Algorithm, KeyUsage, SevCert, SEV_CERT_LEN, SEV_CERT_SIGNED_LEN};
use sev_abi::snp_launch::{IdAuth, ID_AUTH_ALGO_ECDSA_P384_SHA384};
use sev_abi::AbiError;
use sevkit_conformance::read_vector;
use zerocopy::IntoBytes;

const PRODUCTS: [&str; 5] = ["naples", "rome", "milan", "genoa", "turin"];

fn parse_sev_cert(path: &str) -> SevCert {
    let bytes = read_vector(path);
    assert_eq!(bytes.len(), SEV_CERT_LEN, "{path}");
    let cert = SevCert::from_bytes(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(cert.as_bytes(), &bytes[..], "{path}: round trip");
    assert_eq!(cert.signed_bytes(), &bytes[..SEV_CERT_SIGNED_LEN]);
    cert
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn real_platform_certs_parse_with_expected_usages() {
    for product in ["naples", "rome"] {
        let pdh = parse_sev_cert(&format!("real/sev/{product}/pdh.cert"));
        let pek = parse_sev_cert(&format!("real/sev/{product}/pek.cert"));
        let oca = parse_sev_cert(&format!("real/sev/{product}/oca.cert"));
        let cek = parse_sev_cert(&format!("real/sev/{product}/cek.cert"));

        assert_eq!(pdh.usage(), KeyUsage::Pdh);
        assert_eq!(pdh.pubkey_usage.get(), 0x1003);
        assert_eq!(pek.usage(), KeyUsage::Pek);
        assert_eq!(pek.pubkey_usage.get(), 0x1002);
        assert_eq!(oca.usage(), KeyUsage::Oca);
        assert_eq!(oca.pubkey_usage.get(), 0x1001);
        assert_eq!(cek.usage(), KeyUsage::Cek);
        assert_eq!(cek.pubkey_usage.get(), 0x1004);

        // Firmware keys: ECDH (PDH) / ECDSA (others), SHA-256 code, on P-384.
        assert_eq!(pdh.algorithm(), Algorithm::EcdhSha256, "{product}");
        for cert in [&pek, &oca, &cek] {
            assert_eq!(cert.algorithm(), Algorithm::EcdsaSha256, "{product}");
        }
        for cert in [&pdh, &pek, &oca, &cek] {
            assert_eq!(cert.version.get(), 1);
            let key = cert.ecc_key().expect("ECC key");
            assert!(
                key.to_p384_sec1().is_some(),
                "{product}: P-384 key with zero padding"
            );
            assert!(cert.rsa_key().is_none());
        }

        // Chain links as recorded in the signature slots.
        let [s1, s2] = pdh.signatures();
        assert_eq!(s1.key_usage(), Some(KeyUsage::Pek), "{product} PDH sig1");
        assert!(s2.is_empty());
        let [s1, s2] = pek.signatures();
        assert_eq!(s1.key_usage(), Some(KeyUsage::Oca), "{product} PEK sig1");
        assert_eq!(s2.key_usage(), Some(KeyUsage::Cek), "{product} PEK sig2");
        let [s1, s2] = oca.signatures();
        assert_eq!(
            s1.key_usage(),
            Some(KeyUsage::Oca),
            "{product} OCA self-signed"
        );
        assert!(s2.is_empty());
        let [s1, s2] = cek.signatures();
        assert_eq!(
            s1.key_usage(),
            Some(KeyUsage::Ask),
            "{product} CEK signed by ASK"
        );
        assert!(s1.algorithm().is_some_and(Algorithm::is_rsa));
        assert!(s2.is_empty());
        // The ASK's hash: SHA-256 for Naples (RSA-2048), SHA-384 for Rome.
        let expected_algo = if product == "naples" {
            Algorithm::RsaSha256
        } else {
            Algorithm::RsaSha384
        };
        assert_eq!(s1.algorithm(), Some(expected_algo), "{product}");
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn truncated_sev_cert_is_rejected() {
    let bytes = read_vector("real/sev/rome/pek.cert");
    for len in [0, 0x414, SEV_CERT_LEN - 1] {
        assert!(matches!(
            SevCert::from_bytes(&bytes[..len]),
            Err(AbiError::Length {
                expected: SEV_CERT_LEN,
                ..
            })
        ));
    }
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn amd_roots_parse_and_link() {
    let expected_ids = [
        amd_cert::ARK_KEY_ID_NAPLES,
        amd_cert::ARK_KEY_ID_ROME,
        amd_cert::ARK_KEY_ID_MILAN,
        amd_cert::ARK_KEY_ID_GENOA,
        amd_cert::ARK_KEY_ID_TURIN,
    ];
    for (product, expected_id) in PRODUCTS.iter().zip(expected_ids) {
        let ark_bytes = read_vector(&format!("amd-roots/sev/{product}/ark.cert"));
        let ask_bytes = read_vector(&format!("amd-roots/sev/{product}/ask.cert"));
        let ark = AmdCert::from_bytes(&ark_bytes).unwrap_or_else(|e| panic!("{product} ARK: {e}"));
        let ask = AmdCert::from_bytes(&ask_bytes).unwrap_or_else(|e| panic!("{product} ASK: {e}"));

        assert_eq!(ark.to_bytes(), ark_bytes, "{product} ARK round trip");
        assert_eq!(ask.to_bytes(), ask_bytes, "{product} ASK round trip");

        assert_eq!(ark.usage(), Some(KeyUsage::Ark));
        assert_eq!(ask.usage(), Some(KeyUsage::Ask));
        assert_eq!(ark.key_id, expected_id, "{product} ARK key id");
        assert!(ark.is_self_signed(), "{product}");
        assert!(!ask.is_self_signed(), "{product}");
        assert_eq!(
            ask.certifying_id, ark.key_id,
            "{product}: ASK certified by ARK"
        );
        assert_eq!(
            ark.product().map(str::to_lowercase).as_deref(),
            Some(*product),
            "{product}"
        );
        assert_eq!(ask.product(), ark.product());

        let bits = if *product == "naples" { 2048 } else { 4096 };
        let len = if *product == "naples" { 832 } else { 1600 };
        for cert in [&ark, &ask] {
            assert_eq!(cert.modulus_bits, bits, "{product}");
            assert_eq!(cert.pub_exp_bits, bits, "{product}");
            assert_eq!(cert.signature.len(), bits as usize / 8);
            // Exponent 65537, little-endian.
            assert_eq!(&cert.pub_exp[..4], &[1, 0, 1, 0], "{product}");
            assert!(cert.pub_exp[4..].iter().all(|b| *b == 0));
            assert_eq!(
                cert.signed_bytes(),
                ark_or_ask_prefix(cert, &ark_bytes, &ask_bytes)
            );
        }
        assert_eq!(ark_bytes.len(), len);
        assert_eq!(ask_bytes.len(), len);
    }
}

fn ark_or_ask_prefix<'a>(cert: &AmdCert, ark: &'a [u8], ask: &'a [u8]) -> &'a [u8] {
    let whole = if cert.is_self_signed() { ark } else { ask };
    &whole[..whole.len() - cert.signature.len()]
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn naples_ark_completion() {
    let unsigned = read_vector("real/sev/naples/ark.cert.bad");
    let signature = read_vector("real/sev/naples/ark.cert.sig");
    let published = read_vector("amd-roots/sev/naples/ark.cert");
    assert_eq!(
        unsigned.len(),
        576,
        "header + 2048-bit exponent + 2048-bit modulus"
    );
    assert_eq!(signature.len(), 256, "one 2048-bit signature");

    // On its own the truncated file is not a certificate.
    assert!(matches!(
        AmdCert::from_bytes(&unsigned),
        Err(AbiError::Length {
            expected: 832,
            actual: 576,
            ..
        })
    ));

    // The signature file is in the certificate's own little-endian order:
    // appended as is it reproduces AMD's complete Naples ARK byte for byte.
    let ark = AmdCert::complete_unsigned(&unsigned, &signature).unwrap();
    assert_eq!(ark.to_bytes(), published);
    assert_eq!(ark, AmdCert::from_bytes(&published).unwrap());
    assert_eq!(ark.key_id, amd_cert::ARK_KEY_ID_NAPLES);
    assert!(ark.is_self_signed());

    // Reversed, it would not.
    let reversed: Vec<u8> = signature.iter().rev().copied().collect();
    let wrong = AmdCert::complete_unsigned(&unsigned, &reversed).unwrap();
    assert_ne!(wrong.to_bytes(), published);

    // The Naples ASK names this ARK as its signer.
    let ask = AmdCert::from_bytes(&read_vector("amd-roots/sev/naples/ask.cert")).unwrap();
    assert_eq!(ask.certifying_id, ark.key_id);
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn synthetic_id_auth_block() {
    let bytes = read_vector("synthetic/test_auth_block.bin");
    assert_eq!(bytes.len(), 0x1000);
    let auth = IdAuth::from_bytes(&bytes).unwrap();
    assert_eq!(auth.id_key_algo.get(), ID_AUTH_ALGO_ECDSA_P384_SHA384);
    assert_eq!(auth.auth_key_algo.get(), ID_AUTH_ALGO_ECDSA_P384_SHA384);
    // Both keys are P-384 points with canonical padding.
    assert!(auth.id_key.to_p384_sec1().is_some());
    assert!(auth.author_key.to_p384_sec1().is_some());
    assert!(auth.id_block_sig.to_be_scalars().is_some());
    assert!(auth.id_key_sig.to_be_scalars().is_some());
    // The two signatures are the separately shipped signature files.
    assert_eq!(
        &bytes[0x40..0x240],
        &read_vector("synthetic/test_id_sig.bin")[..]
    );
    assert_eq!(
        &bytes[0x680..0x880],
        &read_vector("synthetic/test_auth_sig.bin")[..]
    );
    assert_eq!(auth.id_block_sig.r[..], bytes[0x40..0x88]);
    assert_eq!(auth.id_key.qx[..], bytes[0x244..0x28C]);
    assert_eq!(auth.author_key.qy[..], bytes[0x8CC..0x914]);
    // Reserved areas are zero.
    assert!(bytes[0x8..0x40].iter().all(|b| *b == 0));
    assert!(bytes[0x644..0x680].iter().all(|b| *b == 0));
    assert!(bytes[0xC84..].iter().all(|b| *b == 0));
}
