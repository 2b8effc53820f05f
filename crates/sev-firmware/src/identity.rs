//! The platform's identity: the chip (CUK, CEK, emulated AMD ARK/ASK) and
//! the persistent store (OCA, PEK, PDH), in AMD's binary formats and signed
//! as real ones are (reference §1.7, §1.8).
//!
//! | key | algorithm | signed by |
//! |---|---|---|
//! | ARK | RSA-4096, RSASSA-PSS SHA-384 (AMD cert format) | itself |
//! | ASK | RSA-4096, RSASSA-PSS SHA-384 (AMD cert format) | ARK |
//! | CEK | ECDSA P-384 (`sev_cert`, ECDSA_SHA256), derived from the CUK | ASK (RSA_SHA384 slot) |
//! | OCA | ECDSA P-384 (ECDSA_SHA256) | itself (or the owner's, after PEK_CERT_IMPORT) |
//! | PEK | ECDSA P-384 (ECDSA_SHA256) | OCA (slot 1) and CEK (slot 2) |
//! | PDH | ECDH P-384 (ECDH_SHA256) | PEK |
//!
//! The emulated ARK and ASK key ids start with [`EMULATED_KEY_ID_PREFIX`], so
//! they can never be mistaken for AMD's (`sev_abi::amd_cert::KNOWN_ARK_KEY_IDS`);
//! sevkit's verifier trusts them only when they are supplied explicitly.
//!
//! Every key is drawn from the caller's RNG, so a seeded RNG gives
//! byte-identical identities (ECDSA signatures are deterministic, RFC 6979;
//! RSA-PSS salts come from the same RNG).

use core::fmt;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pss::Pss;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use sev_abi::amd_cert::{AmdCert, AmdCertHeader, AMD_CERT_VERSION, KNOWN_ARK_KEY_IDS};
use sev_abi::legacy_cert::{Algorithm, KeyUsage, SevCert};
use sev_abi::signature::SIGNATURE_LEN;
use sev_crypto::ecdsa::P384SigningKey;
use sev_crypto::kdf::{kdf, LABEL_CEK};
use sev_crypto::rsa_pss::rsa_public_key_to_le;
use sev_crypto::session::EcdhP384Secret;
use sha2::{Digest, Sha256, Sha384};
use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;
use zeroize::Zeroizing;

use crate::error::IdentityError;

/// The first eight bytes of the emulated ARK's and ASK's key ids
/// (`"sevkitEM"`); the other eight are random.
pub const EMULATED_KEY_ID_PREFIX: [u8; 8] = *b"sevkitEM";

/// Modulus size of the emulated ARK and ASK (as Rome and later).
pub const AMD_ROOT_BITS: usize = 4096;

/// The P-384 group order `n`, big-endian.
const P384_ORDER_BE: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// The chip: its unique key (CUK, the "fuses"), the CEK derived from it, and
/// the emulated AMD root (ARK, ASK) that endorses the CEK.
///
/// Private keys zeroize on drop; `Debug` shows only public values.
#[derive(Clone)]
pub struct ChipIdentity {
    cuk: Zeroizing<[u8; 32]>,
    chip_id: [u8; 64],
    ark_key: RsaPrivateKey,
    ask_key: RsaPrivateKey,
    ark: AmdCert,
    ask: AmdCert,
    cek: std::sync::Arc<P384SigningKey>,
    cek_cert: SevCert,
}

impl fmt::Debug for ChipIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChipIdentity")
            .field("chip_id", &Hex(&self.chip_id))
            .field("ark_key_id", &Hex(&self.ark.key_id))
            .field("ask_key_id", &Hex(&self.ask.key_id))
            .field("private_keys", &"<redacted>")
            .finish_non_exhaustive()
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl ChipIdentity {
    /// Mints a new chip: a random CUK, its CEK, and a fresh emulated ARK and
    /// ASK (two RSA-4096 key generations: this takes seconds). The CEK
    /// certificate carries API version `api_major.api_minor`.
    pub fn generate(
        rng: &mut dyn CryptoRngCore,
        api_major: u8,
        api_minor: u8,
    ) -> Result<Self, IdentityError> {
        Self::generate_with_bits(rng, api_major, api_minor, AMD_ROOT_BITS)
    }

    /// As [`Self::generate`], with ARK/ASK moduli of `bits`: 4096 (Rome and
    /// later, RSASSA-PSS SHA-384) or 2048 (Naples, SHA-256), which is much
    /// faster to mint (fuzzing, quick experiments).
    pub fn generate_with_bits(
        rng: &mut dyn CryptoRngCore,
        api_major: u8,
        api_minor: u8,
        bits: usize,
    ) -> Result<Self, IdentityError> {
        if bits != 2048 && bits != AMD_ROOT_BITS {
            return Err(IdentityError::KeyGeneration(format!(
                "AMD root keys are RSA-2048 or RSA-4096, not {bits} bits"
            )));
        }
        let mut cuk = Zeroizing::new([0u8; 32]);
        let chip_id = loop {
            rng.fill_bytes(&mut cuk[..]);
            if let Some(id) = chip_id_of(&cuk) {
                break id;
            }
        };
        let ark_key = RsaPrivateKey::new(rng, bits)
            .map_err(|e| IdentityError::KeyGeneration(format!("ARK: {e}")))?;
        let ask_key = RsaPrivateKey::new(rng, bits)
            .map_err(|e| IdentityError::KeyGeneration(format!("ASK: {e}")))?;
        let ark_id = emulated_key_id(rng);
        let mut ask_id = emulated_key_id(rng);
        while ask_id == ark_id {
            ask_id = emulated_key_id(rng);
        }
        let ark = amd_cert(rng, ark_id, ark_id, KeyUsage::Ark, &ark_key, &ark_key)?;
        let ask = amd_cert(rng, ask_id, ark_id, KeyUsage::Ask, &ask_key, &ark_key)?;
        let cek = derive_cek(&cuk)?;
        let mut cek_cert = SevCert::new_ecc(
            api_major,
            api_minor,
            KeyUsage::Cek,
            Algorithm::EcdsaSha256,
            &cek.public_key_ref().to_amd(),
        );
        let sig = rsa_pss_sign_le(rng, &ask_key, cek_cert.signed_bytes())?;
        let mut slot = [0u8; SIGNATURE_LEN];
        slot[..sig.len()].copy_from_slice(&sig);
        let algo = if bits <= 2048 {
            Algorithm::RsaSha256
        } else {
            Algorithm::RsaSha384
        };
        set_sig(&mut cek_cert, 0, KeyUsage::Ask, algo, &slot);
        Ok(Self {
            cuk,
            chip_id,
            ark_key,
            ask_key,
            ark,
            ask,
            cek: std::sync::Arc::new(cek),
            cek_cert,
        })
    }

    /// The emulated ARK certificate (self-signed, AMD's binary format).
    pub fn ark(&self) -> &AmdCert {
        &self.ark
    }

    /// The emulated ASK certificate (signed by the ARK).
    pub fn ask(&self) -> &AmdCert {
        &self.ask
    }

    /// The CEK certificate (signed by the ASK).
    pub fn cek_cert(&self) -> &SevCert {
        &self.cek_cert
    }

    /// The CEK signing key.
    pub(crate) fn cek(&self) -> &P384SigningKey {
        &self.cek
    }

    /// The chip unique key (the "fuses"): the root of the SNP VCEK hash
    /// stick and the model's VLEK wrapping key (`snp::keys`).
    pub(crate) fn cuk(&self) -> &Zeroizing<[u8; 32]> {
        &self.cuk
    }

    /// The emulated ARK's RSA private key (also the SNP X.509 ARK's, as on
    /// AMD parts, where the legacy and X.509 ARK share one key).
    pub(crate) fn ark_key(&self) -> &RsaPrivateKey {
        &self.ark_key
    }

    /// The emulated ASK's RSA private key (also the SNP X.509 ASK's).
    pub(crate) fn ask_key(&self) -> &RsaPrivateKey {
        &self.ask_key
    }

    /// The GET_ID value (and SNP CHIP_ID): the CUK's public point on
    /// secp256k1, `x ‖ y`, each 32 bytes big-endian.
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.chip_id
    }

    /// Serializes the chip for its state file.
    pub(crate) fn to_payload(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        let der = |k: &RsaPrivateKey| {
            k.to_pkcs1_der()
                .map_err(|e| IdentityError::Encoding(format!("RSA key: {e}")))
        };
        let ark_der = der(&self.ark_key)?;
        let ask_der = der(&self.ask_key)?;
        let mut out = Writer::default();
        out.field(&self.cuk[..]);
        out.field(ark_der.as_bytes());
        out.field(ask_der.as_bytes());
        out.field(&self.ark.to_bytes());
        out.field(&self.ask.to_bytes());
        out.field(self.cek_cert.as_bytes());
        Ok(out.finish())
    }

    /// Parses and cross-checks a chip state payload.
    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, String> {
        let mut r = Reader(payload);
        let cuk_bytes: [u8; 32] = r
            .field()?
            .try_into()
            .map_err(|_| "CUK is not 32 bytes".to_string())?;
        let cuk = Zeroizing::new(cuk_bytes);
        let ark_key = RsaPrivateKey::from_pkcs1_der(r.field()?)
            .map_err(|e| format!("ARK private key: {e}"))?;
        let ask_key = RsaPrivateKey::from_pkcs1_der(r.field()?)
            .map_err(|e| format!("ASK private key: {e}"))?;
        let ark = AmdCert::from_bytes(r.field()?).map_err(|e| format!("ARK certificate: {e}"))?;
        let ask = AmdCert::from_bytes(r.field()?).map_err(|e| format!("ASK certificate: {e}"))?;
        let cek_cert =
            SevCert::from_bytes(r.field()?).map_err(|e| format!("CEK certificate: {e}"))?;
        r.end()?;
        let chip_id = chip_id_of(&cuk).ok_or("CUK is not a valid secp256k1 scalar")?;
        let cek = derive_cek(&cuk).map_err(|e| e.to_string())?;
        if cek_cert.ecc_key() != Some(&cek.public_key_ref().to_amd()) {
            return Err("CEK certificate does not hold the key derived from the CUK".into());
        }
        for (name, key, cert) in [("ARK", &ark_key, &ark), ("ASK", &ask_key, &ask)] {
            let width = cert.modulus.len();
            let (n, e) = rsa_public_key_to_le(&key.to_public_key(), width)
                .map_err(|e| format!("{name} key: {e}"))?;
            if n != cert.modulus || e[..cert.pub_exp.len().min(e.len())] != cert.pub_exp[..] {
                return Err(format!(
                    "{name} certificate does not hold its private key's modulus"
                ));
            }
        }
        Ok(Self {
            cuk,
            chip_id,
            ark_key,
            ask_key,
            ark,
            ask,
            cek: std::sync::Arc::new(cek),
            cek_cert,
        })
    }

    /// True when both describe the same chip (same CUK and root keys).
    pub(crate) fn same_chip(&self, other: &Self) -> bool {
        self.chip_id == other.chip_id && self.ark == other.ark && self.ask == other.ask
    }
}

/// The platform's persistent store: OCA, PEK, PDH and their certificates.
pub(crate) struct PlatformKeys {
    /// None once an external OCA was imported (the owner keeps its key).
    pub(crate) oca: Option<P384SigningKey>,
    pub(crate) oca_cert: SevCert,
    pub(crate) pek: P384SigningKey,
    pub(crate) pek_cert: SevCert,
    pub(crate) pdh: EcdhP384Secret,
    pdh_scalar: Zeroizing<[u8; 48]>,
    pub(crate) pdh_cert: SevCert,
}

impl fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKeys")
            .field("externally_owned", &self.oca.is_none())
            .field("private_keys", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl PlatformKeys {
    /// PEK_GEN: a new self-signed OCA, a PEK signed by it and the CEK, a new PDH.
    pub(crate) fn generate(
        rng: &mut dyn CryptoRngCore,
        api: (u8, u8),
        cek: &P384SigningKey,
    ) -> Result<Self, IdentityError> {
        let oca = random_p384(rng)?;
        let mut oca_cert = ecc_cert(api, KeyUsage::Oca, Algorithm::EcdsaSha256, &oca);
        sign(&mut oca_cert, 0, KeyUsage::Oca, &oca)?;
        let pek = random_p384(rng)?;
        let mut pek_cert = ecc_cert(api, KeyUsage::Pek, Algorithm::EcdsaSha256, &pek);
        sign(&mut pek_cert, 0, KeyUsage::Oca, &oca)?;
        sign(&mut pek_cert, 1, KeyUsage::Cek, cek)?;
        let (pdh, pdh_scalar, pdh_cert) = new_pdh(rng, api, &pek)?;
        Ok(Self {
            oca: Some(oca),
            oca_cert,
            pek,
            pek_cert,
            pdh,
            pdh_scalar,
            pdh_cert,
        })
    }

    /// PDH_GEN: a new PDH signed by the PEK (everything else kept).
    pub(crate) fn with_new_pdh(
        &self,
        rng: &mut dyn CryptoRngCore,
        api: (u8, u8),
    ) -> Result<Self, IdentityError> {
        let (pdh, pdh_scalar, pdh_cert) = new_pdh(rng, api, &self.pek)?;
        Ok(Self {
            oca: self.oca.as_ref().map(clone_key).transpose()?,
            oca_cert: self.oca_cert,
            pek: clone_key(&self.pek)?,
            pek_cert: self.pek_cert,
            pdh,
            pdh_scalar,
            pdh_cert,
        })
    }

    /// PEK_CERT_IMPORT: the owner's OCA certificate and the PEK certificate
    /// it signed (slot 1), completed with the CEK's signature (slot 2).
    pub(crate) fn with_imported_oca(
        &self,
        oca_cert: &SevCert,
        pek_cert: &SevCert,
    ) -> Result<Self, IdentityError> {
        Ok(Self {
            oca: None,
            oca_cert: *oca_cert,
            pek: clone_key(&self.pek)?,
            pek_cert: *pek_cert,
            pdh: self.pdh.clone(),
            pdh_scalar: self.pdh_scalar.clone(),
            pdh_cert: self.pdh_cert,
        })
    }

    /// True when the OCA was imported (PLATFORM_STATUS owner bit).
    pub(crate) fn externally_owned(&self) -> bool {
        self.oca.is_none()
    }

    /// PEK_CSR: the PEK certificate body with both signature slots empty.
    pub(crate) fn pek_csr(&self) -> SevCert {
        let mut csr = self.pek_cert;
        let _ = csr.clear_signature(0);
        let _ = csr.clear_signature(1);
        csr
    }

    pub(crate) fn to_payload(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Writer::default();
        let flags: u32 = u32::from(self.externally_owned());
        out.field(&flags.to_le_bytes());
        match &self.oca {
            Some(k) => out.field(&k.to_be_scalar()[..]),
            None => out.field(&[]),
        }
        out.field(self.oca_cert.as_bytes());
        out.field(&self.pek.to_be_scalar()[..]);
        out.field(self.pek_cert.as_bytes());
        out.field(&self.pdh_scalar[..]);
        out.field(self.pdh_cert.as_bytes());
        out.finish()
    }

    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, String> {
        let mut r = Reader(payload);
        let flags = r.field()?;
        if flags.len() != 4 {
            return Err("flags field is not 4 bytes".into());
        }
        let external = flags[0] & 1 != 0;
        let oca_scalar = r.field()?;
        let oca = if external {
            if !oca_scalar.is_empty() {
                return Err("externally owned platform with an OCA private key".into());
            }
            None
        } else {
            Some(p384_from(oca_scalar, "OCA")?)
        };
        let oca_cert = SevCert::from_bytes(r.field()?).map_err(|e| format!("OCA: {e}"))?;
        let pek = p384_from(r.field()?, "PEK")?;
        let pek_cert = SevCert::from_bytes(r.field()?).map_err(|e| format!("PEK: {e}"))?;
        let pdh_bytes: [u8; 48] = r
            .field()?
            .try_into()
            .map_err(|_| "PDH scalar is not 48 bytes".to_string())?;
        let pdh_scalar = Zeroizing::new(pdh_bytes);
        let pdh =
            EcdhP384Secret::from_be_bytes(&pdh_scalar[..]).map_err(|e| format!("PDH: {e}"))?;
        let pdh_cert = SevCert::from_bytes(r.field()?).map_err(|e| format!("PDH: {e}"))?;
        r.end()?;
        if let Some(oca) = &oca {
            if oca_cert.ecc_key() != Some(&oca.public_key_ref().to_amd()) {
                return Err("OCA certificate does not hold the OCA key".into());
            }
        }
        if pek_cert.ecc_key() != Some(&pek.public_key_ref().to_amd()) {
            return Err("PEK certificate does not hold the PEK".into());
        }
        if pdh_cert.ecc_key() != Some(&pdh.public_amd()) {
            return Err("PDH certificate does not hold the PDH key".into());
        }
        Ok(Self {
            oca,
            oca_cert,
            pek,
            pek_cert,
            pdh,
            pdh_scalar,
            pdh_cert,
        })
    }
}

/// The secp256k1 public point of a CUK (little-endian scalar), or None when
/// the CUK is not a valid scalar.
fn chip_id_of(cuk_le: &[u8; 32]) -> Option<[u8; 64]> {
    let mut be = Zeroizing::new(*cuk_le);
    be.reverse();
    let secret = k256::SecretKey::from_slice(&be[..]).ok()?;
    let point = secret.public_key().to_encoded_point(false);
    let bytes = point.as_bytes();
    let mut id = [0u8; 64];
    id.copy_from_slice(bytes.get(1..65)?);
    Some(id)
}

/// CEK = ecc_keypair_from_extra_bits(P-384, KDF(SHA-256(CUK),
/// "sev-chip-endorsement-key", ∅, 56)): the 56 bytes as a little-endian
/// integer c, d = (c mod (n-1)) + 1.
fn derive_cek(cuk: &[u8; 32]) -> Result<P384SigningKey, IdentityError> {
    let seed = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(cuk)));
    let mut rdata = Zeroizing::new([0u8; 56]);
    kdf(&seed[..], LABEL_CEK, &[], &mut rdata[..]);
    let c = BigUint::from_bytes_le(&rdata[..]);
    let n_minus_1 = BigUint::from_bytes_be(&P384_ORDER_BE) - 1u32;
    let d = (c % n_minus_1) + 1u32;
    let d_be = d.to_bytes_be();
    let mut scalar = Zeroizing::new([0u8; 48]);
    let start = 48usize.saturating_sub(d_be.len());
    scalar[start..].copy_from_slice(&d_be[d_be.len().saturating_sub(48)..]);
    P384SigningKey::from_be_scalar(&scalar)
        .map_err(|e| IdentityError::KeyGeneration(format!("CEK: {e}")))
}

fn emulated_key_id(rng: &mut dyn CryptoRngCore) -> [u8; 16] {
    loop {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&EMULATED_KEY_ID_PREFIX);
        rng.fill_bytes(&mut id[8..]);
        if KNOWN_ARK_KEY_IDS.iter().all(|(_, known)| *known != id) {
            return id;
        }
    }
}

/// RSASSA-PSS as AMD signs with an RSA-4096 key (SHA-384, salt 48) or an
/// RSA-2048 one (SHA-256, salt 32); the signature little-endian.
fn rsa_pss_sign_le(
    rng: &mut dyn CryptoRngCore,
    key: &RsaPrivateKey,
    msg: &[u8],
) -> Result<Vec<u8>, IdentityError> {
    let result = if key.size() <= 256 {
        let digest = Sha256::digest(msg);
        key.sign_with_rng(&mut &mut *rng, Pss::new_with_salt::<Sha256>(32), &digest)
    } else {
        let digest = Sha384::digest(msg);
        key.sign_with_rng(&mut &mut *rng, Pss::new_with_salt::<Sha384>(48), &digest)
    };
    let mut sig = result.map_err(|e| IdentityError::Signing(format!("RSA-PSS: {e}")))?;
    sig.reverse();
    Ok(sig)
}

fn amd_cert(
    rng: &mut dyn CryptoRngCore,
    key_id: [u8; 16],
    certifying_id: [u8; 16],
    usage: KeyUsage,
    subject: &RsaPrivateKey,
    signer: &RsaPrivateKey,
) -> Result<AmdCert, IdentityError> {
    // 256 bytes for RSA-2048 (Naples style), 512 for RSA-4096.
    let field = subject.size();
    let (modulus, pub_exp) = rsa_public_key_to_le(&subject.to_public_key(), field)
        .map_err(|e| IdentityError::Encoding(e.to_string()))?;
    let bits = (field * 8) as u32;
    let header = AmdCertHeader {
        version: U32::new(AMD_CERT_VERSION),
        key_id,
        certifying_id,
        key_usage: U32::new(usage.as_u32()),
        reserved: [0; 16],
        pub_exp_size: U32::new(bits),
        modulus_size: U32::new(bits),
    };
    let mut unsigned = header.as_bytes().to_vec();
    unsigned.extend_from_slice(&pub_exp);
    unsigned.extend_from_slice(&modulus);
    let sig = rsa_pss_sign_le(rng, signer, &unsigned)?;
    let mut sig_field = vec![0u8; field];
    sig_field[..sig.len().min(field)].copy_from_slice(&sig[..sig.len().min(field)]);
    AmdCert::complete_unsigned(&unsigned, &sig_field)
        .map_err(|e| IdentityError::Encoding(e.to_string()))
}

fn random_p384(rng: &mut dyn CryptoRngCore) -> Result<P384SigningKey, IdentityError> {
    for _ in 0..64 {
        let mut scalar = Zeroizing::new([0u8; 48]);
        rng.fill_bytes(&mut scalar[..]);
        if let Ok(key) = P384SigningKey::from_be_scalar(&scalar) {
            return Ok(key);
        }
    }
    Err(IdentityError::KeyGeneration(
        "RNG produced no valid P-384 scalar".into(),
    ))
}

fn p384_from(scalar: &[u8], what: &str) -> Result<P384SigningKey, String> {
    let bytes: Zeroizing<[u8; 48]> = Zeroizing::new(
        scalar
            .try_into()
            .map_err(|_| format!("{what} scalar is not 48 bytes"))?,
    );
    P384SigningKey::from_be_scalar(&bytes).map_err(|e| format!("{what}: {e}"))
}

fn clone_key(key: &P384SigningKey) -> Result<P384SigningKey, IdentityError> {
    P384SigningKey::from_be_scalar(&key.to_be_scalar())
        .map_err(|e| IdentityError::KeyGeneration(e.to_string()))
}

fn new_pdh(
    rng: &mut dyn CryptoRngCore,
    api: (u8, u8),
    pek: &P384SigningKey,
) -> Result<(EcdhP384Secret, Zeroizing<[u8; 48]>, SevCert), IdentityError> {
    for _ in 0..64 {
        let mut scalar = Zeroizing::new([0u8; 48]);
        rng.fill_bytes(&mut scalar[..]);
        if let Ok(pdh) = EcdhP384Secret::from_be_bytes(&scalar[..]) {
            let mut cert = SevCert::new_ecc(
                api.0,
                api.1,
                KeyUsage::Pdh,
                Algorithm::EcdhSha256,
                &pdh.public_amd(),
            );
            sign(&mut cert, 0, KeyUsage::Pek, pek)?;
            return Ok((pdh, scalar, cert));
        }
    }
    Err(IdentityError::KeyGeneration(
        "RNG produced no valid P-384 scalar".into(),
    ))
}

fn ecc_cert(api: (u8, u8), usage: KeyUsage, algo: Algorithm, key: &P384SigningKey) -> SevCert {
    SevCert::new_ecc(api.0, api.1, usage, algo, &key.public_key_ref().to_amd())
}

/// Signs `cert` with ECDSA P-384 / SHA-256 into `slot` (0 or 1).
pub(crate) fn sign(
    cert: &mut SevCert,
    slot: usize,
    signer_usage: KeyUsage,
    signer: &P384SigningKey,
) -> Result<(), IdentityError> {
    let sig = signer
        .sign_sha256(cert.signed_bytes())
        .map_err(|e| IdentityError::Signing(e.to_string()))?;
    let mut bytes = [0u8; SIGNATURE_LEN];
    bytes.copy_from_slice(sig.as_bytes());
    set_sig(cert, slot, signer_usage, Algorithm::EcdsaSha256, &bytes);
    Ok(())
}

fn set_sig(
    cert: &mut SevCert,
    slot: usize,
    usage: KeyUsage,
    algo: Algorithm,
    bytes: &[u8; SIGNATURE_LEN],
) {
    // Slots 0 and 1 always exist.
    let _ = cert.set_signature(slot, usage, algo, bytes);
}

/// Length-prefixed fields (u32 LE length, bytes).
#[derive(Default)]
struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    fn field(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn finish(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn field(&mut self) -> Result<&'a [u8], String> {
        let (len, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or("payload ends inside a field length")?;
        let len = u32::from_le_bytes(*len) as usize;
        let (field, rest) = rest
            .split_at_checked(len)
            .ok_or("payload ends inside a field")?;
        self.0 = rest;
        Ok(field)
    }

    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected bytes after the last field",
                self.0.len()
            ))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use sev_crypto::legacy_cert::{verify_amd_by_amd, verify_sev_by_amd, verify_sev_by_sev};

    #[test]
    fn cek_derivation_is_deterministic_and_valid() {
        let a = derive_cek(&[7; 32]).unwrap();
        let b = derive_cek(&[7; 32]).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(derive_cek(&[8; 32]).unwrap().public_key(), a.public_key());
    }

    #[test]
    fn chip_id_is_secp256k1_point_of_cuk() {
        // CUK = 1 (little-endian): the id is the secp256k1 generator.
        let mut one = [0u8; 32];
        one[0] = 1;
        let id = chip_id_of(&one).unwrap();
        assert_eq!(
            id[..32],
            [
                0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87,
                0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b,
                0x16, 0xf8, 0x17, 0x98
            ]
        );
        assert!(chip_id_of(&[0; 32]).is_none());
        assert!(chip_id_of(&[0xFF; 32]).is_none());
    }

    #[test]
    fn small_chip_round_trips_and_verifies() {
        // RSA-2048 roots (Naples style) keep this unit test fast; the
        // RSA-4096 path is exercised by the integration tests.
        let chip =
            ChipIdentity::generate_with_bits(&mut ChaCha20Rng::from_seed([1; 32]), 1, 55, 2048)
                .unwrap();
        let again =
            ChipIdentity::generate_with_bits(&mut ChaCha20Rng::from_seed([1; 32]), 1, 55, 2048)
                .unwrap();
        assert_eq!(
            chip.ark().to_bytes(),
            again.ark().to_bytes(),
            "seeded = identical"
        );
        assert_eq!(chip.cek_cert(), again.cek_cert());
        assert!(chip.ark().key_id.starts_with(&EMULATED_KEY_ID_PREFIX));
        verify_amd_by_amd(chip.ark(), chip.ark()).unwrap();
        verify_amd_by_amd(chip.ask(), chip.ark()).unwrap();
        verify_sev_by_amd(chip.cek_cert(), chip.ask()).unwrap();

        let payload = chip.to_payload().unwrap();
        let back = ChipIdentity::from_payload(&payload).unwrap();
        assert!(back.same_chip(&chip));
        let mut bad = payload.to_vec();
        bad[5] ^= 1; // inside the CUK
        assert!(ChipIdentity::from_payload(&bad).is_err());
        assert!(ChipIdentity::from_payload(&payload[..payload.len() - 1]).is_err());
        let dbg = format!("{chip:?}");
        assert!(dbg.contains("<redacted>"));

        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let keys = PlatformKeys::generate(&mut rng, (1, 55), chip.cek()).unwrap();
        verify_sev_by_sev(&keys.oca_cert, &keys.oca_cert).unwrap();
        verify_sev_by_sev(&keys.pek_cert, &keys.oca_cert).unwrap();
        verify_sev_by_sev(&keys.pek_cert, chip.cek_cert()).unwrap();
        verify_sev_by_sev(&keys.pdh_cert, &keys.pek_cert).unwrap();
        let p = keys.to_payload();
        let back = PlatformKeys::from_payload(&p).unwrap();
        assert_eq!(back.pdh_cert, keys.pdh_cert);
        assert_eq!(back.pdh.public_amd(), keys.pdh.public_amd());
        let new = keys.with_new_pdh(&mut rng, (1, 55)).unwrap();
        assert_ne!(new.pdh_cert, keys.pdh_cert);
        assert_eq!(new.pek_cert, keys.pek_cert);
        verify_sev_by_sev(&new.pdh_cert, &new.pek_cert).unwrap();
        let csr = keys.pek_csr();
        assert!(csr
            .signatures()
            .iter()
            .all(sev_abi::legacy_cert::SignatureSlot::is_empty));
        assert!(format!("{keys:?}").contains("<redacted>"));
    }
}
