//! X.509 certificates of the SNP chain: ARK (self-signed RSA-4096), ASK /
//! ASVK (RSA-4096, signed by the ARK) and VCEK / VLEK (P-384, signed by the
//! ASK / ASVK), all signed with RSASSA-PSS SHA-384; ECDSA-with-SHA384
//! issuers are accepted too.
//!
//! Signatures are checked over the raw `tbsCertificate` bytes sliced out of
//! the original DER, never over a re-encoding.

use core::fmt;
use core::ops::Range;
use std::time::SystemTime;

use const_oid::db::{rfc4519, rfc5912};
use der::asn1::ObjectIdentifier as Oid;
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, Tagged};
use rsa::pkcs1::{RsaPssParams, TrailerField};
use rsa::BigUint;
use x509_cert::name::Name;
use x509_cert::Certificate;

pub use const_oid::ObjectIdentifier;

use crate::ecdsa::P384PublicKey;
use crate::rsa_pss::{checked_public_key, verify_rsa_pss, RsaHash, RsaPublicKey};
use crate::{CryptoError, Result};

/// The public key of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertPublicKey {
    /// An RSA key (ARK, ASK, ASVK).
    Rsa(RsaPublicKey),
    /// A P-384 key (VCEK, VLEK).
    P384(P384PublicKey),
}

/// A parsed certificate that keeps its original DER.
#[derive(Clone)]
pub struct X509Cert {
    der: Vec<u8>,
    cert: Certificate,
    tbs: Range<usize>,
}

impl fmt::Debug for X509Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Cert")
            .field("subject", &self.cert.tbs_certificate.subject.to_string())
            .field("issuer", &self.cert.tbs_certificate.issuer.to_string())
            .finish_non_exhaustive()
    }
}

fn malformed(what: &str, err: impl fmt::Display) -> CryptoError {
    CryptoError::MalformedCertificate(format!("{what}: {err}"))
}

/// Locates the tbsCertificate inside the DER of a Certificate by walking
/// the outer SEQUENCE header and the TBS SEQUENCE header.
fn tbs_range(der: &[u8]) -> Result<Range<usize>> {
    let err = |e: der::Error| malformed("locating tbsCertificate", e);
    let mut reader = SliceReader::new(der).map_err(err)?;
    let outer = Header::decode(&mut reader).map_err(err)?;
    outer.tag.assert_eq(Tag::Sequence).map_err(err)?;
    let start = usize::try_from(reader.position()).map_err(err)?;
    let tbs = Header::decode(&mut reader).map_err(err)?;
    tbs.tag.assert_eq(Tag::Sequence).map_err(err)?;
    let body = usize::try_from(reader.position()).map_err(err)?;
    let len = usize::try_from(tbs.length).map_err(err)?;
    let end = body
        .checked_add(len)
        .filter(|end| *end <= der.len())
        .ok_or_else(|| {
            CryptoError::MalformedCertificate("tbsCertificate overruns the certificate".into())
        })?;
    Ok(start..end)
}

fn common_name(name: &Name) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find_map(|atv| {
        if atv.oid != rfc4519::CN {
            return None;
        }
        match atv.value.tag() {
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
                core::str::from_utf8(atv.value.value())
                    .ok()
                    .map(str::to_owned)
            }
            _ => None,
        }
    })
}

/// PSS parameters accepted: (hash, salt length).
fn pss_params(params: Option<&der::Any>) -> Result<(RsaHash, usize)> {
    let unsupported = |what: &str| CryptoError::UnsupportedAlgorithm(format!("RSASSA-PSS {what}"));
    let params = params.ok_or_else(|| unsupported("without parameters"))?;
    let params: RsaPssParams<'_> = params
        .decode_as()
        .map_err(|e| malformed("RSASSA-PSS parameters", e))?;
    let hash = match params.hash.oid {
        rfc5912::ID_SHA_384 => RsaHash::Sha384,
        rfc5912::ID_SHA_256 => RsaHash::Sha256,
        other => return Err(unsupported(&format!("hash {other}"))),
    };
    if params.mask_gen.oid != rfc5912::ID_MGF_1 {
        return Err(unsupported(&format!(
            "mask generation {}",
            params.mask_gen.oid
        )));
    }
    match params.mask_gen.parameters {
        Some(mgf_hash) if mgf_hash.oid == params.hash.oid => {}
        _ => return Err(unsupported("MGF1 hash differing from the message hash")),
    }
    if usize::from(params.salt_len) != hash.digest_len() {
        return Err(unsupported(&format!(
            "salt length {} (expected {})",
            params.salt_len,
            hash.digest_len()
        )));
    }
    if params.trailer_field != TrailerField::BC {
        return Err(unsupported("trailer field"));
    }
    Ok((hash, hash.digest_len()))
}

fn pem_block_to_der(block: &str) -> Result<Vec<u8>> {
    let (label, der) =
        der::pem::decode_vec(block.as_bytes()).map_err(|e| malformed("PEM decoding", e))?;
    if label != "CERTIFICATE" {
        return Err(CryptoError::MalformedCertificate(format!(
            "PEM label is {label:?}, expected \"CERTIFICATE\""
        )));
    }
    Ok(der)
}

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// Parses every `CERTIFICATE` PEM block of `pem`, in order (AMD's
/// `cert_chain` is the ASK then the ARK). Text between blocks is ignored.
pub fn pem_chain(pem: &str) -> Result<Vec<X509Cert>> {
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some(begin) = rest.find(PEM_BEGIN) {
        let after = &rest[begin..];
        let end = after
            .find(PEM_END)
            .ok_or_else(|| CryptoError::MalformedCertificate("unterminated PEM block".into()))?;
        let block_end = end + PEM_END.len();
        certs.push(X509Cert::from_der(&pem_block_to_der(&after[..block_end])?)?);
        rest = &after[block_end..];
    }
    if certs.is_empty() {
        return Err(CryptoError::MalformedCertificate(
            "no CERTIFICATE PEM block".into(),
        ));
    }
    Ok(certs)
}

impl X509Cert {
    /// Parses one DER certificate (no trailing data).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = Certificate::from_der(der).map_err(|e| malformed("DER decoding", e))?;
        let tbs = tbs_range(der)?;
        Ok(Self {
            der: der.to_vec(),
            cert,
            tbs,
        })
    }

    /// Parses a PEM text holding exactly one certificate.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let mut certs = pem_chain(pem)?;
        if certs.len() != 1 {
            return Err(CryptoError::MalformedCertificate(format!(
                "expected one PEM certificate, found {}",
                certs.len()
            )));
        }
        Ok(certs.remove(0))
    }

    /// The original DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The decoded certificate.
    pub fn cert(&self) -> &Certificate {
        &self.cert
    }

    /// The raw DER of `tbsCertificate` (the signed bytes), sliced from the
    /// original encoding.
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    /// The first common name of the subject.
    pub fn subject_common_name(&self) -> Option<String> {
        common_name(&self.cert.tbs_certificate.subject)
    }

    /// The first common name of the issuer.
    pub fn issuer_common_name(&self) -> Option<String> {
        common_name(&self.cert.tbs_certificate.issuer)
    }

    /// The serial number's content bytes (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate.serial_number.as_bytes()
    }

    /// `(not_before, not_after)`.
    pub fn validity(&self) -> (SystemTime, SystemTime) {
        let v = &self.cert.tbs_certificate.validity;
        (v.not_before.to_system_time(), v.not_after.to_system_time())
    }

    /// `(not_before, not_after)` in seconds since the Unix epoch.
    pub fn validity_unix(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    /// True when `time` lies within the validity period (inclusive).
    pub fn is_valid_at(&self, time: SystemTime) -> bool {
        let (from, to) = self.validity();
        (from..=to).contains(&time)
    }

    /// The contents of the extnValue OCTET STRING of the first extension
    /// with this OID.
    pub fn extension(&self, oid: &ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|ext| ext.extn_id == *oid)
            .map(|ext| ext.extn_value.as_bytes())
    }

    /// The subject public key: RSA (`rsaEncryption` or `id-RSASSA-PSS`) or
    /// EC P-384.
    pub fn public_key(&self) -> Result<CertPublicKey> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let bits = spki.subject_public_key.as_bytes().ok_or_else(|| {
            CryptoError::MalformedCertificate("public key BIT STRING has unused bits".into())
        })?;
        match spki.algorithm.oid {
            rfc5912::RSA_ENCRYPTION | rfc5912::ID_RSASSA_PSS => {
                let key = rsa::pkcs1::RsaPublicKey::from_der(bits)
                    .map_err(|e| malformed("RSA public key", e))?;
                let n = BigUint::from_bytes_be(key.modulus.as_bytes());
                let e = BigUint::from_bytes_be(key.public_exponent.as_bytes());
                Ok(CertPublicKey::Rsa(checked_public_key(n, e)?))
            }
            rfc5912::ID_EC_PUBLIC_KEY => {
                let curve: Option<Oid> = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as().ok());
                if curve != Some(rfc5912::SECP_384_R_1) {
                    return Err(CryptoError::UnsupportedAlgorithm(
                        "EC public key on a curve other than P-384".into(),
                    ));
                }
                Ok(CertPublicKey::P384(P384PublicKey::from_sec1(bits)?))
            }
            other => Err(CryptoError::UnsupportedAlgorithm(format!(
                "public key algorithm {other}"
            ))),
        }
    }

    /// Checks that `issuer` signed this certificate: the outer
    /// signatureAlgorithm must equal the TBS signature field, the issuer
    /// name must equal the issuer's subject, and the signature must verify
    /// over [`Self::tbs_der`] with the issuer's key. Supports RSASSA-PSS
    /// (SHA-384 or SHA-256, MGF1 of the same hash, salt = hash length) and
    /// ecdsa-with-SHA384 with a P-384 issuer key. Validity dates are not
    /// checked (see [`Self::is_valid_at`]).
    pub fn verify_issued_by(&self, issuer: &X509Cert) -> Result<()> {
        let alg = &self.cert.signature_algorithm;
        if alg.to_der().ok() != self.cert.tbs_certificate.signature.to_der().ok() {
            return Err(CryptoError::MalformedCertificate(
                "outer signatureAlgorithm differs from the TBS signature field".into(),
            ));
        }
        if self.cert.tbs_certificate.issuer.to_der().ok()
            != issuer.cert.tbs_certificate.subject.to_der().ok()
        {
            return Err(CryptoError::IssuerMismatch);
        }
        let sig = self.cert.signature.as_bytes().ok_or_else(|| {
            CryptoError::MalformedCertificate("signature BIT STRING has unused bits".into())
        })?;
        verify_signed_data(issuer, alg, self.tbs_der(), sig)
    }

    /// Checks that the certificate is self-signed
    /// (`self.verify_issued_by(self)`).
    pub fn verify_self_signed(&self) -> Result<()> {
        self.verify_issued_by(self)
    }
}

/// Verifies `signature` over `signed` with `issuer`'s public key, using the
/// algorithm `alg` (RSASSA-PSS with SHA-384 or SHA-256, MGF1 of the same hash
/// and salt = hash length; or ecdsa-with-SHA384 with a P-384 key). Shared by
/// certificates and CRLs.
pub fn verify_signed_data(
    issuer: &X509Cert,
    alg: &spki::AlgorithmIdentifierOwned,
    signed: &[u8],
    signature: &[u8],
) -> Result<()> {
    match (alg.oid, issuer.public_key()?) {
        (rfc5912::ID_RSASSA_PSS, CertPublicKey::Rsa(key)) => {
            let (hash, salt) = pss_params(alg.parameters.as_ref())?;
            verify_rsa_pss(&key, hash, salt, signed, signature)
        }
        (rfc5912::ECDSA_WITH_SHA_384, CertPublicKey::P384(key)) => {
            if alg.parameters.is_some() {
                return Err(CryptoError::UnsupportedAlgorithm(
                    "ecdsa-with-SHA384 with parameters".into(),
                ));
            }
            key.verify_sha384_der(signed, signature)
        }
        (oid, _) => Err(CryptoError::UnsupportedAlgorithm(format!(
            "signature algorithm {oid} with the issuer's key type"
        ))),
    }
}

/// An X.509 certificate revocation list (AMD publishes one per product,
/// signed by the ARK), keeping its original DER.
#[derive(Clone)]
pub struct X509Crl {
    der: Vec<u8>,
    crl: x509_cert::crl::CertificateList,
}

impl fmt::Debug for X509Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Crl")
            .field("issuer", &self.crl.tbs_cert_list.issuer.to_string())
            .field(
                "revoked",
                &self
                    .crl
                    .tbs_cert_list
                    .revoked_certificates
                    .as_ref()
                    .map_or(0, Vec::len),
            )
            .finish_non_exhaustive()
    }
}

impl X509Crl {
    /// Parses a DER-encoded CRL.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let crl =
            x509_cert::crl::CertificateList::from_der(der).map_err(|e| malformed("CRL", e))?;
        // The signed part must be locatable in the original bytes.
        tbs_range(der)?;
        Ok(Self {
            der: der.to_vec(),
            crl,
        })
    }

    /// The parsed CRL.
    pub fn crl(&self) -> &x509_cert::crl::CertificateList {
        &self.crl
    }

    /// The raw bytes of tbsCertList, sliced from the original DER.
    pub fn tbs_der(&self) -> &[u8] {
        tbs_range(&self.der).map_or(&[][..], |range| &self.der[range])
    }

    /// Verifies the CRL's signature with `issuer`'s key (and that the CRL
    /// names the issuer).
    pub fn verify_issued_by(&self, issuer: &X509Cert) -> Result<()> {
        let tbs = &self.crl.tbs_cert_list;
        if tbs.signature.to_der().ok() != self.crl.signature_algorithm.to_der().ok() {
            return Err(CryptoError::MalformedCertificate(
                "CRL outer signatureAlgorithm differs from the TBS signature field".into(),
            ));
        }
        if tbs.issuer.to_der().ok() != issuer.cert.tbs_certificate.subject.to_der().ok() {
            return Err(CryptoError::IssuerMismatch);
        }
        let sig = self.crl.signature.as_bytes().ok_or_else(|| {
            CryptoError::MalformedCertificate("CRL signature BIT STRING has unused bits".into())
        })?;
        verify_signed_data(issuer, &self.crl.signature_algorithm, self.tbs_der(), sig)
    }

    /// True when a certificate with this serial number is revoked.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .as_ref()
            .is_some_and(|list| list.iter().any(|r| r.serial_number.as_bytes() == serial))
    }

    /// thisUpdate and nextUpdate (if present).
    pub fn update_times(&self) -> (SystemTime, Option<SystemTime>) {
        let tbs = &self.crl.tbs_cert_list;
        (
            tbs.this_update.to_system_time(),
            tbs.next_update.map(|t| t.to_system_time()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;
    use core::time::Duration;
    use der::asn1::{BitString, OctetString, UtcTime};
    use der::Any;
    use rsa::pkcs8::EncodePublicKey;
    use sha2::Sha384;
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use x509_cert::ext::Extension;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::{Time, Validity};
    use x509_cert::{TbsCertificate, Version};

    use crate::ecdsa::P384SigningKey;
    use crate::rsa_pss::tests::test_key;

    enum Signer<'a> {
        Ec(&'a P384SigningKey),
        Rsa(&'a rsa::RsaPrivateKey, u8),
    }

    fn ecdsa_alg() -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: rfc5912::ECDSA_WITH_SHA_384,
            parameters: None,
        }
    }

    fn pss_alg(salt: u8) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSASSA_PSS,
            parameters: Some(Any::encode_from(&RsaPssParams::new::<Sha384>(salt)).unwrap()),
        }
    }

    fn ec_spki(key: &P384SigningKey) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&rfc5912::SECP_384_R_1).unwrap()),
            },
            subject_public_key: BitString::from_bytes(&key.public_key().to_sec1()).unwrap(),
        }
    }

    fn rsa_spki(key: &rsa::RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
        let der = key.to_public_key().to_public_key_der().unwrap();
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).unwrap()
    }

    fn time(secs: u64) -> Time {
        Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap())
    }

    fn make_cert(
        subject: &str,
        issuer: &str,
        spki: SubjectPublicKeyInfoOwned,
        signer: &Signer<'_>,
        outer_alg: Option<AlgorithmIdentifierOwned>,
    ) -> Vec<u8> {
        let alg = match signer {
            Signer::Ec(_) => ecdsa_alg(),
            Signer::Rsa(_, salt) => pss_alg(*salt),
        };
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[0x01, 0x00, 0x01]).unwrap(),
            signature: alg.clone(),
            issuer: Name::from_str(issuer).unwrap(),
            validity: Validity {
                not_before: time(1_680_000_000),
                not_after: time(1_900_000_000),
            },
            subject: Name::from_str(subject).unwrap(),
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![Extension {
                extn_id: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1"),
                critical: false,
                extn_value: OctetString::new(vec![0x02, 0x01, 0x03]).unwrap(),
            }]),
        };
        let tbs_der = tbs.to_der().unwrap();
        let sig = match signer {
            Signer::Ec(key) => {
                let amd = key.sign_sha384(&tbs_der).unwrap();
                let (r, s) = amd.to_be_scalars().unwrap();
                p384::ecdsa::Signature::from_scalars(r, s)
                    .unwrap()
                    .to_der()
                    .as_bytes()
                    .to_vec()
            }
            Signer::Rsa(key, salt) => {
                let hashed = <Sha384 as sha2::Digest>::digest(&tbs_der);
                key.sign_with_rng(
                    &mut rand_core::OsRng,
                    rsa::pss::Pss::new_with_salt::<Sha384>(usize::from(*salt)),
                    &hashed,
                )
                .unwrap()
            }
        };
        Certificate {
            tbs_certificate: tbs,
            signature_algorithm: outer_alg.unwrap_or(alg),
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    const ROOT: &str = "CN=ARK-Test,O=Advanced Micro Devices";
    const LEAF: &str = "CN=SEV-VCEK,O=Advanced Micro Devices";

    #[test]
    fn crl_signature_and_revocation() {
        use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
        let ark_key = P384SigningKey::generate();
        let ark = X509Cert::from_der(&make_cert(
            ROOT,
            ROOT,
            ec_spki(&ark_key),
            &Signer::Ec(&ark_key),
            None,
        ))
        .unwrap();
        let tbs = TbsCertList {
            version: Version::V2,
            signature: ecdsa_alg(),
            issuer: Name::from_str(ROOT).unwrap(),
            this_update: time(1_700_000_000),
            next_update: Some(time(1_800_000_000)),
            revoked_certificates: Some(vec![RevokedCert {
                serial_number: SerialNumber::new(&[0x05]).unwrap(),
                revocation_date: time(1_700_000_000),
                crl_entry_extensions: None,
            }]),
            crl_extensions: None,
        };
        let tbs_der = tbs.to_der().unwrap();
        let (r, s) = ark_key
            .sign_sha384(&tbs_der)
            .unwrap()
            .to_be_scalars()
            .unwrap();
        let sig = p384::ecdsa::Signature::from_scalars(r, s)
            .unwrap()
            .to_der()
            .as_bytes()
            .to_vec();
        let der = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: ecdsa_alg(),
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap();
        let crl = X509Crl::from_der(&der).unwrap();
        assert_eq!(
            crl.tbs_der(),
            tbs_der.as_slice(),
            "tbsCertList sliced from the original bytes"
        );
        crl.verify_issued_by(&ark).unwrap();
        assert!(crl.is_revoked(&[0x05]));
        assert!(!crl.is_revoked(&[0x01, 0x00, 0x01]));
        let (this, next) = crl.update_times();
        assert!(next.unwrap() > this);

        // Another key, or a changed revocation list, must not verify.
        let other_key = P384SigningKey::generate();
        let other = X509Cert::from_der(&make_cert(
            ROOT,
            ROOT,
            ec_spki(&other_key),
            &Signer::Ec(&other_key),
            None,
        ))
        .unwrap();
        assert!(crl.verify_issued_by(&other).is_err());
        let mut tampered = der.clone();
        let pos = tampered
            .windows(3)
            .position(|w| w == [0x02, 0x01, 0x05])
            .unwrap();
        tampered[pos + 2] = 0x06;
        let tampered = X509Crl::from_der(&tampered).unwrap();
        assert!(tampered.is_revoked(&[0x06]));
        assert!(tampered.verify_issued_by(&ark).is_err());
        assert!(X509Crl::from_der(&der[..der.len() - 1]).is_err());
    }

    #[test]
    fn ecdsa_chain() {
        let root_key = P384SigningKey::generate();
        let leaf_key = P384SigningKey::generate();
        let root_der = make_cert(ROOT, ROOT, ec_spki(&root_key), &Signer::Ec(&root_key), None);
        let leaf_der = make_cert(LEAF, ROOT, ec_spki(&leaf_key), &Signer::Ec(&root_key), None);
        let root = X509Cert::from_der(&root_der).unwrap();
        let leaf = X509Cert::from_der(&leaf_der).unwrap();
        root.verify_self_signed().unwrap();
        leaf.verify_issued_by(&root).unwrap();
        assert_eq!(
            leaf.tbs_der(),
            leaf.cert().tbs_certificate.to_der().unwrap()
        );
        assert_eq!(leaf.subject_common_name().as_deref(), Some("SEV-VCEK"));
        assert_eq!(leaf.issuer_common_name().as_deref(), Some("ARK-Test"));
        assert_eq!(leaf.serial(), &[0x01, 0x00, 0x01]);
        assert_eq!(leaf.validity_unix(), (1_680_000_000, 1_900_000_000));
        assert!(leaf.is_valid_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
        assert!(!leaf.is_valid_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000)));
        assert_eq!(
            leaf.extension(&ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1")),
            Some(&[0x02, 0x01, 0x03][..])
        );
        assert_eq!(leaf.extension(&rfc4519::CN), None);
        assert_eq!(
            leaf.public_key().unwrap(),
            CertPublicKey::P384(leaf_key.public_key())
        );

        // A leaf signed by another key with the right issuer name fails.
        let other = P384SigningKey::generate();
        let forged = make_cert(LEAF, ROOT, ec_spki(&leaf_key), &Signer::Ec(&other), None);
        assert!(matches!(
            X509Cert::from_der(&forged).unwrap().verify_issued_by(&root),
            Err(CryptoError::BadSignature(_))
        ));
        // Name mismatch.
        assert_eq!(
            root.verify_issued_by(&leaf),
            Err(CryptoError::IssuerMismatch)
        );
        // Flipping the last signature byte fails.
        let mut bad = leaf_der.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(X509Cert::from_der(&bad)
            .unwrap()
            .verify_issued_by(&root)
            .is_err());
    }

    #[test]
    fn rsa_pss_chain_and_parameter_checks() {
        let root_key = test_key();
        let leaf_key = P384SigningKey::generate();
        let root_der = make_cert(
            ROOT,
            ROOT,
            rsa_spki(root_key),
            &Signer::Rsa(root_key, 48),
            None,
        );
        let root = X509Cert::from_der(&root_der).unwrap();
        root.verify_self_signed().unwrap();
        assert!(matches!(root.public_key().unwrap(), CertPublicKey::Rsa(_)));

        let leaf_der = make_cert(
            LEAF,
            ROOT,
            ec_spki(&leaf_key),
            &Signer::Rsa(root_key, 48),
            None,
        );
        let leaf = X509Cert::from_der(&leaf_der).unwrap();
        leaf.verify_issued_by(&root).unwrap();

        // Salt 20 (the PSS default) is not what AMD uses: rejected.
        let salt20 = make_cert(
            LEAF,
            ROOT,
            ec_spki(&leaf_key),
            &Signer::Rsa(root_key, 20),
            None,
        );
        assert!(matches!(
            X509Cert::from_der(&salt20).unwrap().verify_issued_by(&root),
            Err(CryptoError::UnsupportedAlgorithm(_))
        ));
        // Outer algorithm differing from the TBS one.
        let mismatch = make_cert(
            LEAF,
            ROOT,
            ec_spki(&leaf_key),
            &Signer::Rsa(root_key, 48),
            Some(pss_alg(32)),
        );
        assert!(matches!(
            X509Cert::from_der(&mismatch)
                .unwrap()
                .verify_issued_by(&root),
            Err(CryptoError::MalformedCertificate(_))
        ));
        // ECDSA-signed leaf claimed under an RSA issuer: wrong key type.
        let ec_signed = make_cert(LEAF, ROOT, ec_spki(&leaf_key), &Signer::Ec(&leaf_key), None);
        assert!(matches!(
            X509Cert::from_der(&ec_signed)
                .unwrap()
                .verify_issued_by(&root),
            Err(CryptoError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn pem_parsing() {
        let key = P384SigningKey::generate();
        let a = make_cert(ROOT, ROOT, ec_spki(&key), &Signer::Ec(&key), None);
        let b = make_cert(LEAF, ROOT, ec_spki(&key), &Signer::Ec(&key), None);
        let pem_a = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &a).unwrap();
        let pem_b = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::CRLF, &b).unwrap();
        let chain = pem_chain(&format!("junk\n{pem_b}\n{pem_a}trailer")).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].der(), &b[..]);
        assert_eq!(chain[1].der(), &a[..]);
        assert_eq!(X509Cert::from_pem(&pem_a).unwrap().der(), &a[..]);
        assert!(X509Cert::from_pem(&format!("{pem_a}{pem_b}")).is_err());
        assert!(pem_chain("").is_err());
        assert!(pem_chain(&pem_a[..pem_a.len() - 10]).is_err());
        let key_pem = pem_a.replace("CERTIFICATE", "PRIVATE KEY");
        assert!(pem_chain(&key_pem).is_err());
        let mangled = pem_a.replacen("MII", "MIX", 1);
        assert!(pem_chain(&mangled).is_err());
    }

    #[test]
    fn truncated_and_garbage_der_are_errors() {
        let key = P384SigningKey::generate();
        let der = make_cert(ROOT, ROOT, ec_spki(&key), &Signer::Ec(&key), None);
        for len in [0, 1, 2, 4, 5, 10, der.len() / 2, der.len() - 1] {
            assert!(X509Cert::from_der(&der[..len]).is_err(), "length {len}");
        }
        let mut extra = der.clone();
        extra.push(0);
        assert!(X509Cert::from_der(&extra).is_err());
        assert!(tbs_range(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x30, 0x01]).is_err());
        assert!(tbs_range(&[0x30, 0x03, 0x30, 0x05, 0x00]).is_err());
        assert!(tbs_range(&[0x31, 0x02, 0x30, 0x00]).is_err());
        assert_eq!(tbs_range(&[0x30, 0x02, 0x30, 0x00]).unwrap(), 2..4);
    }

    #[test]
    fn unsupported_public_keys() {
        let key = P384SigningKey::generate();
        let mut spki = ec_spki(&key);
        spki.algorithm.parameters = Some(Any::encode_from(&rfc5912::SECP_256_R_1).unwrap());
        let der = make_cert(ROOT, ROOT, spki, &Signer::Ec(&key), None);
        let cert = X509Cert::from_der(&der).unwrap();
        assert!(matches!(
            cert.public_key(),
            Err(CryptoError::UnsupportedAlgorithm(_))
        ));
        assert!(cert.verify_self_signed().is_err());
    }
}
