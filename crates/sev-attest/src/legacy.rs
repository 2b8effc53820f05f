//! Legacy SEV: the platform chain ARK -> ASK -> CEK -> PEK -> PDH, and
//! OCA -> PEK.
//!
//! A guest owner checks this chain before encrypting launch secrets to the
//! platform's PDH: the CEK proves the chip is AMD's, the OCA proves the
//! platform owner accepted the PEK.

use sev_abi::amd_cert::AmdCert;
use sev_abi::legacy_cert::{KeyUsage, SevCert};
use sev_abi::product::Product;
use sev_crypto::legacy_cert::{verify_amd_by_amd, verify_sev_by_amd, verify_sev_by_sev};

use crate::roots::{legacy_product_of_ark, legacy_roots};
use crate::Verdict;

/// The platform's certificates, as `sevctl export` or PDH_CERT_EXPORT give them.
#[derive(Debug, Clone)]
pub struct PlatformChain {
    /// Platform Diffie-Hellman key, signed by the PEK.
    pub pdh: SevCert,
    /// Platform Endorsement Key, signed by the OCA and the CEK.
    pub pek: SevCert,
    /// Owner Certificate Authority, self-signed.
    pub oca: SevCert,
    /// Chip Endorsement Key, signed by AMD's ASK.
    pub cek: SevCert,
}

/// Where the legacy ARK and ASK come from.
// The supplied variant is large, but an anchor is built once per verification.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum LegacyAnchor {
    /// AMD's pinned roots for this product.
    Pinned(Product),
    /// Try every product's pinned roots and use the one whose ASK signed the CEK.
    AutoDetect,
    /// A supplied ASK and ARK (the trust anchor is then the supplied ARK).
    Supplied {
        /// The signing key.
        ask: AmdCert,
        /// The root key.
        ark: AmdCert,
    },
}

fn usage_is(name: &'static str, cert: &SevCert, usage: KeyUsage, verdict: &mut Verdict) {
    let found = cert.usage();
    if found == usage {
        verdict.pass(name, format!("{usage:?}"));
    } else {
        verdict.fail(
            name,
            format!("expected a {usage:?} certificate, found {found:?}"),
        );
    }
}

/// Verifies a legacy platform chain against `anchor`, recording every link.
pub fn verify_platform_chain(chain: &PlatformChain, anchor: &LegacyAnchor) -> Verdict {
    let mut verdict = Verdict::default();
    usage_is("cert.pdh_usage", &chain.pdh, KeyUsage::Pdh, &mut verdict);
    usage_is("cert.pek_usage", &chain.pek, KeyUsage::Pek, &mut verdict);
    usage_is("cert.oca_usage", &chain.oca, KeyUsage::Oca, &mut verdict);
    usage_is("cert.cek_usage", &chain.cek, KeyUsage::Cek, &mut verdict);

    let (ask, ark) = match anchor {
        LegacyAnchor::Pinned(product) => {
            let roots = legacy_roots(*product);
            verdict.pass(
                "chain.ark_trusted",
                format!("AMD's pinned {} ARK", product.name()),
            );
            (roots.ask, roots.ark)
        }
        LegacyAnchor::AutoDetect => {
            let found = Product::ALL
                .iter()
                .map(|p| legacy_roots(*p))
                .find(|roots| verify_sev_by_amd(&chain.cek, &roots.ask).is_ok());
            if let Some(roots) = found {
                verdict.pass(
                    "chain.ark_trusted",
                    format!(
                        "AMD's pinned {} ARK (detected from the CEK's signer)",
                        roots.product.name()
                    ),
                );
                (roots.ask, roots.ark)
            } else {
                verdict.fail(
                    "chain.ark_trusted",
                    "no pinned AMD ASK (Naples..Turin) signed this CEK",
                );
                let roots = legacy_roots(Product::Naples);
                (roots.ask, roots.ark)
            }
        }
        LegacyAnchor::Supplied { ask, ark } => {
            match legacy_product_of_ark(ark) {
                Some(p) => verdict.pass(
                    "chain.ark_trusted",
                    format!("supplied ARK is AMD's pinned {} ARK", p.name()),
                ),
                None => verdict.pass(
                    "chain.ark_trusted",
                    "supplied ARK is NOT one of AMD's roots; trusted because it was supplied",
                ),
            }
            (ask.clone(), ark.clone())
        }
    };
    verdict.record(
        "chain.ark_self_signed",
        verify_amd_by_amd(&ark, &ark)
            .map(|()| "ARK signature verifies with its own key".to_owned()),
    );
    verdict.record(
        "chain.ask_signed_by_ark",
        verify_amd_by_amd(&ask, &ark).map(|()| "ASK signed by ARK".to_owned()),
    );
    verdict.record(
        "chain.cek_signed_by_ask",
        verify_sev_by_amd(&chain.cek, &ask).map(|()| "CEK signed by ASK".to_owned()),
    );
    verdict.record(
        "chain.pek_signed_by_cek",
        verify_sev_by_sev(&chain.pek, &chain.cek).map(|()| "PEK signed by CEK".to_owned()),
    );
    verdict.record(
        "chain.oca_self_signed",
        verify_sev_by_sev(&chain.oca, &chain.oca).map(|()| "OCA signed by itself".to_owned()),
    );
    verdict.record(
        "chain.pek_signed_by_oca",
        verify_sev_by_sev(&chain.pek, &chain.oca).map(|()| "PEK signed by OCA".to_owned()),
    );
    verdict.record(
        "chain.pdh_signed_by_pek",
        verify_sev_by_sev(&chain.pdh, &chain.pek).map(|()| "PDH signed by PEK".to_owned()),
    );
    verdict
}
