//! An emulated AMD Key Distribution Service: X.509 ARK, ASK and VCEK
//! certificates shaped exactly like AMD's (reference §2.13), signed with the
//! chip's emulated root keys.
//!
//! AMD's legacy binary ARK/ASK and its X.509 ARK/ASK share one RSA key per
//! product (the moduli of `amd-roots/sev/milan/ark.cert` and
//! `amd-roots/snp/milan/ark.pem` are equal, ASK likewise), so the emulated
//! X.509 ARK and ASK use the [`ChipIdentity`]'s emulated legacy ARK/ASK keys.
//!
//! What is mirrored from real certificates (Milan and Turin from KDS):
//! subject/issuer attribute order OU, C, L, ST, O, CN (C a PrintableString,
//! the others UTF8String); RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 with
//! an explicit trailer field (omitted in Turin VCEKs, as KDS does); ARK
//! extensions KeyUsage (critical, certSign|cRLSign), SubjectKeyIdentifier,
//! BasicConstraints (critical, CA); ASK extensions SKI, AKI, BasicConstraints
//! (critical, CA, pathLen 0), KeyUsage (critical, certSign); VCEK: no
//! standard extensions, the AMD ones in KDS's order with the hwID as raw
//! bytes (no OCTET STRING tag) and structVersion 0 (Milan, Genoa) or 1
//! (Turin, which has fmcSPL first and no spl4).
//!
//! Chosen (documented) differences: serials (ARK `0x0P0000`, ASK
//! `0x0P0001` with P = 1 Milan, 2 Genoa, 3 Turin, as AMD numbers them; the
//! VCEK's from SHA-384 of its inputs, where AMD writes 0), fixed validity
//! (ARK/ASK 2024-01-01 to 2049-01-01; VCEK 2025-01-01 to 2032-01-01, KDS's
//! seven years), key identifiers the leftmost 160 bits of SHA-256 of the key
//! (RFC 7093), no CRL distribution point (there is no emulated CRL), and
//! RSA-PSS salts derived from the chip secret and the signed bytes so that
//! the same chip and inputs give byte-identical certificates.

use core::fmt;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rsa::pss::Pss;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sev_abi::cert_table::{CertKind, CertTable};
use sev_abi::product::{Product, TcbVersion};
use sev_crypto::ecdsa::P384PublicKey;
use sev_crypto::kdf::kdf;
use sha2::{Digest, Sha256, Sha384};
use zeroize::Zeroizing;

use super::keys::{ChipEndorsementKeys, EndorsementKeys};
use crate::error::IdentityError;
use crate::identity::ChipIdentity;

/// KDF label of the key that seeds RSA-PSS salts (model specific).
const LABEL_KDS_SALT: &[u8] = b"sevkit-kds-pss-salt";

const ROOT_NOT_BEFORE: &[u8] = b"240101000000Z";
const ROOT_NOT_AFTER: &[u8] = b"490101000000Z";
const VCEK_NOT_BEFORE: &[u8] = b"250101000000Z";
const VCEK_NOT_AFTER: &[u8] = b"320101000000Z";

/// File names of [`EmulatedKds::export_dir`], as `snpguest` reads them.
pub const EXPORT_FILES: [&str; 3] = ["ark.pem", "ask.pem", "vcek.pem"];

/// An emulated KDS for one chip and product: holds the chip's root keys
/// (zeroized on drop by the `rsa` crate) and the minted ARK and ASK.
///
/// `Debug` shows only the product.
#[derive(Clone)]
pub struct EmulatedKds {
    product: Product,
    ark_key: RsaPrivateKey,
    ask_key: RsaPrivateKey,
    salt_key: Zeroizing<[u8; 32]>,
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
}

impl fmt::Debug for EmulatedKds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatedKds")
            .field("product", &self.product)
            .field("keys", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The `productName` KDS writes into a VCEK: `Milan-B0`, `Genoa-B1`,
/// `Turin`; `None` for products without SEV-SNP.
pub fn product_name(product: Product) -> Option<&'static str> {
    match product {
        Product::Milan => Some("Milan-B0"),
        Product::Genoa => Some("Genoa-B1"),
        Product::Turin => Some("Turin"),
        Product::Naples | Product::Rome => None,
    }
}

/// The VCEK `structVersion`: 0 on Milan and Genoa, 1 on Turin.
pub fn struct_version(product: Product) -> u8 {
    u8::from(product == Product::Turin)
}

fn serial_prefix(product: Product) -> u8 {
    match product {
        Product::Genoa => 2,
        Product::Turin => 3,
        _ => 1,
    }
}

impl EmulatedKds {
    /// Mints the X.509 ARK (`ARK-<Product>`, self-signed) and ASK
    /// (`SEV-<Product>`, signed by the ARK) from `chip`'s emulated root keys.
    ///
    /// # Errors
    /// `product` has no SEV-SNP, or RSA signing failed.
    pub fn new(chip: &ChipIdentity, product: Product) -> Result<Self, IdentityError> {
        if product_name(product).is_none() {
            return Err(IdentityError::KeyGeneration(format!(
                "{product} has no SEV-SNP key server"
            )));
        }
        let mut salt_key = Zeroizing::new([0u8; 32]);
        kdf(&chip.cuk()[..], LABEL_KDS_SALT, &[], &mut salt_key[..]);
        let mut kds = Self {
            product,
            ark_key: chip.ark_key().clone(),
            ask_key: chip.ask_key().clone(),
            salt_key,
            ark_der: Vec::new(),
            ask_der: Vec::new(),
        };
        let ark_name = name(&format!("ARK-{}", product.name()));
        let ask_name = name(&format!("SEV-{}", product.name()));
        let ark_spki = rsa_spki(&kds.ark_key);
        let ask_spki = rsa_spki(&kds.ask_key);
        let ark_ski = key_id(&ark_spki);
        let ask_ski = key_id(&ask_spki);
        let prefix = serial_prefix(product);

        let ark_ext = [
            extension(OID_KEY_USAGE, true, &bit_string_ku(0x06)),
            extension(OID_SKI, false, &octet_string(&ark_ski)),
            extension(OID_BASIC_CONSTRAINTS, true, &seq(&[&boolean_true()])),
        ];
        let ark_tbs = tbs(
            &integer(&[prefix, 0, 0]),
            &pss_alg(true),
            &ark_name,
            (ROOT_NOT_BEFORE, ROOT_NOT_AFTER),
            &ark_name,
            &ark_spki,
            &ark_ext,
        );
        kds.ark_der = kds.sign(&kds.ark_key, &ark_tbs, true)?;

        let ask_ext = [
            extension(OID_SKI, false, &octet_string(&ask_ski)),
            extension(OID_AKI, false, &seq(&[&tlv(0x80, &ark_ski)])),
            extension(
                OID_BASIC_CONSTRAINTS,
                true,
                &seq(&[&boolean_true(), &integer(&[0])]),
            ),
            extension(OID_KEY_USAGE, true, &bit_string_ku(0x04)),
        ];
        let ask_tbs = tbs(
            &integer(&[prefix, 0, 1]),
            &pss_alg(true),
            &ark_name,
            (ROOT_NOT_BEFORE, ROOT_NOT_AFTER),
            &ask_name,
            &ask_spki,
            &ask_ext,
        );
        kds.ask_der = kds.sign(&kds.ark_key, &ask_tbs, true)?;
        Ok(kds)
    }

    /// The product this KDS serves.
    pub fn product(&self) -> Product {
        self.product
    }

    /// The ARK certificate (DER).
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    /// The ASK certificate (DER).
    pub fn ask_der(&self) -> &[u8] {
        &self.ask_der
    }

    /// `cert_chain` as KDS serves it: ASK then ARK, PEM.
    pub fn cert_chain_pem(&self) -> String {
        let mut out = pem(&self.ask_der);
        out.push_str(&pem(&self.ark_der));
        out
    }

    /// The VCEK certificate (DER) KDS would issue for `chip_id` at
    /// `reported_tcb`, certifying `key`. Only the first 8 bytes of the chip
    /// id are used on Turin. Deterministic: the same inputs give the same
    /// bytes.
    ///
    /// # Errors
    /// RSA signing failed.
    pub fn vcek_cert(
        &self,
        chip_id: &[u8; 64],
        reported_tcb: TcbVersion,
        key: &P384PublicKey,
    ) -> Result<Vec<u8>, IdentityError> {
        let product = self.product;
        let turin = product == Product::Turin;
        let tcb = reported_tcb.to_le_bytes();
        let hw_id = &chip_id[..product.chip_id_len().min(64)];
        let spl = |arc: u8, v: u8| extension(&amd_oid(&[3, arc]), false, &integer(&[v]));
        let mut ext = vec![
            extension(&amd_oid(&[1]), false, &integer(&[struct_version(product)])),
            extension(
                &amd_oid(&[2]),
                false,
                &tlv(0x16, product_name(product).unwrap_or_default().as_bytes()),
            ),
        ];
        if turin {
            // fmc, bl, tee, snp, spl5..7 (bytes 4..6), ucode.
            ext.extend([
                spl(9, tcb[0]),
                spl(1, tcb[1]),
                spl(2, tcb[2]),
                spl(3, tcb[3]),
                spl(5, tcb[4]),
                spl(6, tcb[5]),
                spl(7, tcb[6]),
                spl(8, tcb[7]),
            ]);
        } else {
            // bl, tee, spl4..7 (bytes 2..5), snp, ucode.
            ext.extend([
                spl(1, tcb[0]),
                spl(2, tcb[1]),
                spl(4, tcb[2]),
                spl(5, tcb[3]),
                spl(6, tcb[4]),
                spl(7, tcb[5]),
                spl(3, tcb[6]),
                spl(8, tcb[7]),
            ]);
        }
        // hwID: the raw chip id, no OCTET STRING tag (as KDS writes it).
        ext.push(extension(&amd_oid(&[4]), false, hw_id));

        let mut h = Sha384::new();
        h.update(b"sevkit-vcek-serial");
        h.update([serial_prefix(product)]);
        h.update(hw_id);
        h.update(tcb);
        h.update(key.to_sec1());
        let digest = h.finalize();
        let mut serial = [0u8; 8];
        serial.copy_from_slice(&digest[..8]);
        serial[0] = (serial[0] & 0x7F) | 0x01;

        let tbs = tbs(
            &integer(&serial),
            &pss_alg(!turin),
            &name(&format!("SEV-{}", product.name())),
            (VCEK_NOT_BEFORE, VCEK_NOT_AFTER),
            &name("SEV-VCEK"),
            &ec_spki(key),
            &ext,
        );
        self.sign(&self.ask_key, &tbs, !turin)
    }

    /// The VCEK certificate for the chip of `keys` at `reported_tcb`
    /// (derives the VCEK).
    ///
    /// # Errors
    /// Key derivation or RSA signing failed.
    pub fn vcek_cert_for(
        &self,
        keys: &ChipEndorsementKeys,
        reported_tcb: TcbVersion,
    ) -> Result<Vec<u8>, IdentityError> {
        let vcek = keys.vcek(reported_tcb)?;
        self.vcek_cert(keys.chip_id(), reported_tcb, vcek.public_key_ref())
    }

    /// The certificate directory `snpguest verify certs` reads: `(file
    /// name, contents)` for `ark.pem`, `ask.pem`, `vcek.pem` (the caller
    /// writes the files).
    pub fn export_dir(&self, vcek_der: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (EXPORT_FILES[0], pem(&self.ark_der).into_bytes()),
            (EXPORT_FILES[1], pem(&self.ask_der).into_bytes()),
            (EXPORT_FILES[2], pem(vcek_der).into_bytes()),
        ]
    }

    /// The GHCB certificate table a host returns on an extended guest
    /// request: VCEK, ASK, ARK (DER) under their GUIDs.
    pub fn cert_table(&self, vcek_der: &[u8]) -> CertTable {
        let mut table = CertTable {
            entries: Vec::new(),
        };
        table.push(CertKind::Vcek.guid(), vcek_der.to_vec());
        table.push(CertKind::Ask.guid(), self.ask_der.clone());
        table.push(CertKind::Ark.guid(), self.ark_der.clone());
        table
    }

    /// Signs `tbs` with RSASSA-PSS SHA-384 (salt 48) and assembles the
    /// certificate. The salt comes from a ChaCha20 stream seeded with
    /// SHA-256(salt key ‖ TBS): deterministic, unpredictable without the chip.
    fn sign(
        &self,
        key: &RsaPrivateKey,
        tbs: &[u8],
        trailer: bool,
    ) -> Result<Vec<u8>, IdentityError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut h = Sha256::new();
        h.update(&self.salt_key[..]);
        h.update(tbs);
        seed.copy_from_slice(&h.finalize());
        let mut rng = ChaCha20Rng::from_seed(*seed);
        let digest = Sha384::digest(tbs);
        let sig = key
            .sign_with_rng(&mut rng, Pss::new_with_salt::<Sha384>(48), &digest)
            .map_err(|e| IdentityError::Signing(format!("RSA-PSS: {e}")))?;
        let mut bits = Vec::with_capacity(sig.len() + 1);
        bits.push(0);
        bits.extend_from_slice(&sig);
        Ok(seq(&[tbs, &pss_alg(trailer), &tlv(0x03, &bits)]))
    }
}

// --- A minimal DER writer (definite lengths; inputs are our own). ---

const OID_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];
const OID_SKI: &[u8] = &[0x55, 0x1D, 0x0E];
const OID_AKI: &[u8] = &[0x55, 0x1D, 0x23];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        // Lossless: len < 0x80.
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let n = bytes.len() - skip;
        out.push(0x80 | u8::try_from(n).unwrap_or(0));
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(items: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

fn set(items: &[&[u8]]) -> Vec<u8> {
    tlv(0x31, &items.concat())
}

fn oid(body: &[u8]) -> Vec<u8> {
    tlv(0x06, body)
}

/// 1.3.6.1.4.1.3704.1.<arcs> (every arc < 128).
fn amd_oid(arcs: &[u8]) -> Vec<u8> {
    let mut body = vec![0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01];
    body.extend_from_slice(arcs);
    body
}

/// A non-negative INTEGER from big-endian magnitude bytes.
fn integer(be: &[u8]) -> Vec<u8> {
    let skip = be.iter().take_while(|b| **b == 0).count();
    let trimmed = &be[skip..];
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(0x02, &body)
}

fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x04, bytes)
}

fn boolean_true() -> Vec<u8> {
    vec![0x01, 0x01, 0xFF]
}

/// KeyUsage as AMD encodes it: `03 02 01 <bits>`.
fn bit_string_ku(bits: u8) -> Vec<u8> {
    vec![0x03, 0x02, 0x01, bits]
}

fn extension(oid_body: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let id = oid(oid_body);
    let v = octet_string(value);
    if critical {
        seq(&[&id, &boolean_true(), &v])
    } else {
        seq(&[&id, &v])
    }
}

/// RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, and (when `trailer`) the
/// explicit trailer field 1.
fn pss_alg(trailer: bool) -> Vec<u8> {
    let sha384 = seq(&[
        &oid(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02]),
        &[0x05, 0x00],
    ]);
    let mgf1 = seq(&[
        &oid(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08]),
        &sha384,
    ]);
    let mut params = vec![
        tlv(0xA0, &sha384),
        tlv(0xA1, &mgf1),
        tlv(0xA2, &integer(&[48])),
    ];
    if trailer {
        params.push(tlv(0xA3, &integer(&[1])));
    }
    let params: Vec<&[u8]> = params.iter().map(Vec::as_slice).collect();
    seq(&[
        &oid(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A]),
        &seq(&params),
    ])
}

/// AMD's distinguished name: OU, C, L, ST, O, CN.
fn name(cn: &str) -> Vec<u8> {
    let rdn = |oid_last: u8, tag: u8, value: &str| {
        set(&[&seq(&[
            &oid(&[0x55, 0x04, oid_last]),
            &tlv(tag, value.as_bytes()),
        ])])
    };
    seq(&[
        &rdn(0x0B, 0x0C, "Engineering"),
        &rdn(0x06, 0x13, "US"),
        &rdn(0x07, 0x0C, "Santa Clara"),
        &rdn(0x08, 0x0C, "CA"),
        &rdn(0x0A, 0x0C, "Advanced Micro Devices"),
        &rdn(0x03, 0x0C, cn),
    ])
}

fn rsa_spki(key: &RsaPrivateKey) -> Vec<u8> {
    let rsa_key = seq(&[
        &integer(&key.n().to_bytes_be()),
        &integer(&key.e().to_bytes_be()),
    ]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&rsa_key);
    seq(&[
        &seq(&[
            &oid(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]),
            &[0x05, 0x00],
        ]),
        &tlv(0x03, &bits),
    ])
}

fn ec_spki(key: &P384PublicKey) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(&key.to_sec1());
    seq(&[
        &seq(&[
            &oid(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]),
            &oid(&[0x2B, 0x81, 0x04, 0x00, 0x22]),
        ]),
        &tlv(0x03, &bits),
    ])
}

/// Key identifier: leftmost 160 bits of SHA-256 of the SPKI (RFC 7093).
fn key_id(spki: &[u8]) -> Vec<u8> {
    Sha256::digest(spki)[..20].to_vec()
}

fn tbs(
    serial: &[u8],
    alg: &[u8],
    issuer: &[u8],
    validity: (&[u8], &[u8]),
    subject: &[u8],
    spki: &[u8],
    extensions: &[Vec<u8>],
) -> Vec<u8> {
    let ext: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
    seq(&[
        &tlv(0xA0, &integer(&[2])),
        serial,
        alg,
        issuer,
        &seq(&[&tlv(0x17, validity.0), &tlv(0x17, validity.1)]),
        subject,
        spki,
        &tlv(0xA3, &seq(&ext)),
    ])
}

/// PEM `CERTIFICATE` with 64-column base64.
fn pem(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3F) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::keys::tests::test_chip;
    use sev_attest::snp::{verify_chain, ChainSource};
    use sev_attest::vcek::EndorsementInfo;
    use sev_attest::Verdict;
    use sev_crypto::x509::X509Cert;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn now() -> SystemTime {
        // Inside every validity period (2026-01-01).
        UNIX_EPOCH + Duration::from_secs(1_767_225_600)
    }

    fn chain_ok(verdict: &Verdict) -> bool {
        verdict.passed()
    }

    #[test]
    fn vcek_extensions_chain_and_determinism() {
        let chip = test_chip();
        let keys = ChipEndorsementKeys::new(chip);
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let kds = EmulatedKds::new(chip, product).unwrap();
            let parts = sev_abi::product::TcbParts {
                fmc: (product == Product::Turin).then_some(1),
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
            };
            let tcb = parts.encode(product.tcb_layout());
            let der = kds.vcek_cert_for(&keys, tcb).unwrap();
            assert_eq!(der, kds.vcek_cert_for(&keys, tcb).unwrap(), "deterministic");
            assert_eq!(
                kds.ark_der(),
                EmulatedKds::new(chip, product).unwrap().ark_der()
            );
            let cert = X509Cert::from_der(&der).unwrap();
            let info = EndorsementInfo::from_cert(&cert).unwrap();
            assert_eq!(info.product, Some(product));
            assert_eq!(info.product_name, product_name(product).unwrap());
            assert_eq!(
                info.struct_version,
                Some(u32::from(struct_version(product)))
            );
            assert_eq!(info.tcb, parts);
            let hw = info.hw_id.unwrap();
            assert_eq!(hw.len(), product.chip_id_len());
            assert_eq!(hw[..], chip.chip_id()[..hw.len()]);

            let ask = X509Cert::from_der(kds.ask_der()).unwrap();
            let ark = X509Cert::from_der(kds.ark_der()).unwrap();
            assert_eq!(ark.subject_common_name().unwrap(), format!("ARK-{product}"));
            assert_eq!(ask.subject_common_name().unwrap(), format!("SEV-{product}"));
            let mut v = Verdict::default();
            verify_chain(&mut v, &cert, &ChainSource::Supplied { ask, ark }, now());
            assert!(chain_ok(&v), "{v:?}");
            let mut v = Verdict::default();
            verify_chain(&mut v, &cert, &ChainSource::Pinned(product), now());
            assert!(!chain_ok(&v), "AMD's roots must refuse the emulated chain");

            // A TCB change gives another VCEK certificate and key.
            let other = kds
                .vcek_cert_for(&keys, TcbVersion::new(tcb.raw() ^ (1 << 56)))
                .unwrap();
            assert_ne!(other, der);

            let table = kds.cert_table(&der);
            let bytes = table.to_bytes().unwrap();
            let parsed = CertTable::from_bytes(&bytes).unwrap();
            assert_eq!(parsed.get_kind(CertKind::Vcek), Some(&der[..]));
            assert_eq!(parsed.get_kind(CertKind::Ask), Some(kds.ask_der()));
            assert_eq!(parsed.get_kind(CertKind::Ark), Some(kds.ark_der()));
            let files = kds.export_dir(&der);
            let names: Vec<_> = files.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, EXPORT_FILES);
            let pem_vcek = String::from_utf8(files[2].1.clone()).unwrap();
            assert_eq!(X509Cert::from_pem(&pem_vcek).unwrap().der(), &der[..]);
        }
        assert!(EmulatedKds::new(chip, Product::Rome).is_err());
    }
}
