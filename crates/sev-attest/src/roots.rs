//! AMD's root keys, embedded in the binary and pinned.
//!
//! These are public keys, copied from AMD's key distribution service (as
//! shipped in the `sev` crate's data): the X.509 ARK and ASK that sign SNP
//! VCEK certificates, and the legacy binary ARK and ASK that sign the CEK of a
//! legacy SEV platform. A chain verifies against AMD only if its ARK is
//! byte-identical to the one pinned here for the product.

use sev_abi::amd_cert::AmdCert;
use sev_abi::product::Product;
use sev_crypto::x509::X509Cert;

/// The pinned SNP root (ARK) and signing key (ASK) of one product.
#[derive(Debug, Clone)]
pub struct SnpRoots {
    /// The product these roots belong to.
    pub product: Product,
    /// AMD Root Key, self-signed (RSA-4096, RSASSA-PSS SHA-384).
    pub ark: X509Cert,
    /// AMD SEV Signing Key, signed by the ARK; it signs VCEK certificates.
    pub ask: X509Cert,
}

/// The pinned legacy ARK and ASK of one product, in AMD's binary format.
#[derive(Debug, Clone)]
pub struct LegacyRoots {
    /// The product these roots belong to.
    pub product: Product,
    /// AMD Root Key (self-signed; Naples: RSA-2048 SHA-256, later RSA-4096 SHA-384).
    pub ark: AmdCert,
    /// AMD SEV Signing Key, signed by the ARK; it signs the CEK.
    pub ask: AmdCert,
}

fn snp_pem(product: Product) -> Option<(&'static str, &'static str)> {
    match product {
        Product::Milan => Some((
            include_str!("../roots/snp/milan/ark.pem"),
            include_str!("../roots/snp/milan/ask.pem"),
        )),
        Product::Genoa => Some((
            include_str!("../roots/snp/genoa/ark.pem"),
            include_str!("../roots/snp/genoa/ask.pem"),
        )),
        Product::Turin => Some((
            include_str!("../roots/snp/turin/ark.pem"),
            include_str!("../roots/snp/turin/ask.pem"),
        )),
        Product::Naples | Product::Rome => None,
    }
}

fn legacy_bytes(product: Product) -> (&'static [u8], &'static [u8]) {
    match product {
        Product::Naples => (
            include_bytes!("../roots/sev/naples/ark.cert"),
            include_bytes!("../roots/sev/naples/ask.cert"),
        ),
        Product::Rome => (
            include_bytes!("../roots/sev/rome/ark.cert"),
            include_bytes!("../roots/sev/rome/ask.cert"),
        ),
        Product::Milan => (
            include_bytes!("../roots/sev/milan/ark.cert"),
            include_bytes!("../roots/sev/milan/ask.cert"),
        ),
        Product::Genoa => (
            include_bytes!("../roots/sev/genoa/ark.cert"),
            include_bytes!("../roots/sev/genoa/ask.cert"),
        ),
        Product::Turin => (
            include_bytes!("../roots/sev/turin/ark.cert"),
            include_bytes!("../roots/sev/turin/ask.cert"),
        ),
    }
}

/// The pinned SNP roots of `product`, or `None` for products without SEV-SNP
/// (Naples, Rome).
pub fn snp_roots(product: Product) -> Option<SnpRoots> {
    let (ark, ask) = snp_pem(product)?;
    // The embedded files are tested to parse; failure here is a build defect.
    let ark = X509Cert::from_pem(ark).expect("embedded ARK parses");
    let ask = X509Cert::from_pem(ask).expect("embedded ASK parses");
    Some(SnpRoots { product, ark, ask })
}

/// The pinned legacy ARK and ASK of `product`.
pub fn legacy_roots(product: Product) -> LegacyRoots {
    let (ark, ask) = legacy_bytes(product);
    let ark = AmdCert::from_bytes(ark).expect("embedded legacy ARK parses");
    let ask = AmdCert::from_bytes(ask).expect("embedded legacy ASK parses");
    LegacyRoots { product, ark, ask }
}

/// Finds the SNP product whose pinned ARK is byte-identical to `ark`.
pub fn snp_product_of_ark(ark: &X509Cert) -> Option<Product> {
    Product::ALL
        .iter()
        .copied()
        .find(|p| snp_roots(*p).is_some_and(|roots| roots.ark.der() == ark.der()))
}

/// Finds the product whose pinned legacy ARK is byte-identical to `ark`.
pub fn legacy_product_of_ark(ark: &AmdCert) -> Option<Product> {
    let bytes = ark.to_bytes();
    Product::ALL
        .iter()
        .copied()
        .find(|p| legacy_bytes(*p).0 == bytes.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_snp_root_parses_and_is_self_consistent() {
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let roots = snp_roots(product).unwrap();
            roots.ark.verify_issued_by(&roots.ark).unwrap();
            roots.ask.verify_issued_by(&roots.ark).unwrap();
            let ark_cn = roots.ark.subject_common_name().unwrap();
            assert_eq!(ark_cn, format!("ARK-{}", product.name()));
            let ask_cn = roots.ask.subject_common_name().unwrap();
            assert_eq!(ask_cn, format!("SEV-{}", product.name()));
            assert_eq!(snp_product_of_ark(&roots.ark), Some(product));
        }
        assert!(snp_roots(Product::Rome).is_none());
    }

    #[test]
    fn every_legacy_root_parses() {
        for product in Product::ALL.iter().copied() {
            let roots = legacy_roots(product);
            assert!(roots.ark.is_self_signed(), "{product:?} ARK is self-signed");
            assert_eq!(roots.ask.certifying_id, roots.ark.key_id, "{product:?}");
            assert_eq!(legacy_product_of_ark(&roots.ark), Some(product));
        }
    }

    #[test]
    fn roots_differ_between_products() {
        let milan = snp_roots(Product::Milan).unwrap();
        let genoa = snp_roots(Product::Genoa).unwrap();
        assert_ne!(milan.ark.der(), genoa.ark.der());
    }
}
