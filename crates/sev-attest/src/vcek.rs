//! What AMD's key server writes into VCEK and VLEK certificates: the TCB the
//! key was derived for, the product, and (VCEK) the chip's hardware id.
//!
//! The extensions live under OID 1.3.6.1.4.1.3704.1. SPL values are DER
//! INTEGERs and the product name an IA5String. The hwID is the chip id as
//! raw bytes: KDS puts the 64 (Milan, Genoa) or 8 (Turin) bytes directly into
//! the extension value without an OCTET STRING tag; a tagged form is accepted
//! too.

use const_oid::ObjectIdentifier;
use der::asn1::Ia5StringRef;
use der::Decode;
use sev_abi::product::{Product, TcbLayout, TcbParts};
use sev_crypto::x509::X509Cert;

/// structVersion (0 on Milan/Genoa, 1 on Turin).
pub const OID_STRUCT_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
/// productName, e.g. `Milan-B0`.
pub const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
/// blSPL: boot loader security patch level.
pub const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
/// teeSPL: PSP OS security patch level.
pub const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
/// snpSPL: SNP firmware security patch level.
pub const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
/// ucodeSPL: microcode patch level.
pub const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
/// fmcSPL: firmware mini-controller patch level (Turin and later).
pub const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
/// hwID: the chip id (VCEK only).
pub const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
/// cspId: the cloud provider a VLEK was issued to (VLEK only).
pub const OID_CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");

/// Why a VCEK/VLEK extension could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcekError {
    /// A required extension is absent.
    #[error("certificate lacks the {0} extension (1.3.6.1.4.1.3704.1.*): not a VCEK/VLEK from AMD's key server")]
    Missing(&'static str),
    /// An extension is present but not encoded as AMD encodes it.
    #[error("certificate extension {0} is malformed: {1}")]
    Malformed(&'static str, String),
}

/// Whether the certificate is a chip key (VCEK) or a loaded key (VLEK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum EndorsementKind {
    /// Versioned Chip Endorsement Key: unique to one chip and TCB.
    Vcek,
    /// Versioned Loaded Endorsement Key: issued to a cloud provider.
    Vlek,
}

/// The AMD extensions of a VCEK or VLEK certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndorsementInfo {
    /// VCEK or VLEK (by subject common name, `SEV-VCEK` / `SEV-VLEK`).
    pub kind: EndorsementKind,
    /// structVersion, when present.
    pub struct_version: Option<u32>,
    /// productName as written, e.g. `Milan-B0`.
    pub product_name: String,
    /// The product named by `product_name`, if known.
    pub product: Option<Product>,
    /// The TCB the key was derived for.
    pub tcb: TcbParts,
    /// The chip id (hwID); absent for VLEKs.
    pub hw_id: Option<Vec<u8>>,
    /// The cloud provider id (VLEK only).
    pub csp_id: Option<String>,
}

fn spl(
    cert: &X509Cert,
    oid: &ObjectIdentifier,
    name: &'static str,
) -> Result<Option<u8>, VcekError> {
    let Some(raw) = cert.extension(oid) else {
        return Ok(None);
    };
    let value = u32::from_der(raw).map_err(|e| VcekError::Malformed(name, e.to_string()))?;
    u8::try_from(value)
        .map(Some)
        .map_err(|_| VcekError::Malformed(name, format!("value {value} exceeds 255")))
}

fn required_spl(
    cert: &X509Cert,
    oid: &ObjectIdentifier,
    name: &'static str,
) -> Result<u8, VcekError> {
    spl(cert, oid, name)?.ok_or(VcekError::Missing(name))
}

fn hw_id(raw: &[u8]) -> Vec<u8> {
    // KDS writes the raw chip id (64 or 8 bytes). Accept an OCTET STRING that
    // wraps exactly the rest of the value too.
    if raw.len() != 64 && raw.len() != 8 {
        if let Ok(inner) = der::asn1::OctetStringRef::from_der(raw) {
            return inner.as_bytes().to_vec();
        }
    }
    raw.to_vec()
}

impl EndorsementInfo {
    /// Reads the AMD extensions of a VCEK or VLEK certificate.
    pub fn from_cert(cert: &X509Cert) -> Result<Self, VcekError> {
        let kind = match cert.subject_common_name().as_deref() {
            Some("SEV-VLEK") => EndorsementKind::Vlek,
            _ => EndorsementKind::Vcek,
        };
        let struct_version = match cert.extension(&OID_STRUCT_VERSION) {
            Some(raw) => Some(
                u32::from_der(raw)
                    .map_err(|e| VcekError::Malformed("structVersion", e.to_string()))?,
            ),
            None => None,
        };
        let product_name = cert
            .extension(&OID_PRODUCT_NAME)
            .ok_or(VcekError::Missing("productName"))
            .and_then(|raw| {
                Ia5StringRef::from_der(raw)
                    .map(|s| s.as_str().to_owned())
                    .map_err(|e| VcekError::Malformed("productName", e.to_string()))
            })?;
        let product: Option<Product> = product_name.parse().ok();
        let fmc = spl(cert, &OID_FMC_SPL, "fmcSPL")?;
        let tcb = TcbParts {
            fmc,
            bootloader: required_spl(cert, &OID_BL_SPL, "blSPL")?,
            tee: required_spl(cert, &OID_TEE_SPL, "teeSPL")?,
            snp: required_spl(cert, &OID_SNP_SPL, "snpSPL")?,
            microcode: required_spl(cert, &OID_UCODE_SPL, "ucodeSPL")?,
        };
        let hw_id = cert.extension(&OID_HW_ID).map(hw_id);
        if kind == EndorsementKind::Vcek && hw_id.is_none() {
            return Err(VcekError::Missing("hwID"));
        }
        let csp_id = match cert.extension(&OID_CSP_ID) {
            Some(raw) => Some(
                Ia5StringRef::from_der(raw)
                    .map(|s| s.as_str().to_owned())
                    .map_err(|e| VcekError::Malformed("cspId", e.to_string()))?,
            ),
            None => None,
        };
        Ok(Self {
            kind,
            struct_version,
            product_name,
            product,
            tcb,
            hw_id,
            csp_id,
        })
    }

    /// The TCB layout to decode reports with: Turin's when the product is
    /// Turin or the certificate carries an fmcSPL, else Milan/Genoa's.
    pub fn tcb_layout(&self) -> TcbLayout {
        match self.product {
            Some(p) => p.tcb_layout(),
            None if self.tcb.fmc.is_some() => TcbLayout::Turin,
            None => TcbLayout::MilanGenoa,
        }
    }
}
