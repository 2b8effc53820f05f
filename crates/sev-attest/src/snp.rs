//! SEV-SNP: the chain ARK -> ASK -> VCEK (or ASVK -> VLEK) and the checks of
//! an attestation report against it and against the owner's expectations.

use std::time::SystemTime;

use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::product::{Product, TcbLayout, TcbParts};
use sev_abi::report::{AttestationReport, SigningKey};
use sev_abi::AbiError;
use sev_crypto::ecdsa::P384PublicKey;
use sev_crypto::x509::{CertPublicKey, X509Cert, X509Crl};

use crate::roots::{snp_product_of_ark, snp_roots};
use crate::vcek::{EndorsementInfo, EndorsementKind, VcekError};
use crate::Verdict;

/// Where the ASK and ARK come from.
// The supplied variant is large, but a source is built once per verification.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ChainSource {
    /// AMD's pinned roots for this product.
    Pinned(Product),
    /// A chain supplied by the caller (e.g. `cert_chain.pem` from AMD's key
    /// server, or the software firmware's own emulated chain). Its ARK is the
    /// trust anchor; the verdict says whether it is one of AMD's.
    Supplied {
        /// The signing key (ASK or ASVK).
        ask: X509Cert,
        /// The root key.
        ark: X509Cert,
    },
}

impl ChainSource {
    /// The ASK, the ARK and the product they belong to (`None` for a
    /// supplied chain whose ARK is not one of AMD's).
    pub fn resolve(&self) -> Result<(X509Cert, X509Cert, Option<Product>), String> {
        match self {
            Self::Pinned(product) => snp_roots(*product)
                .map(|roots| (roots.ask, roots.ark, Some(*product)))
                .ok_or_else(|| format!("{} has no SEV-SNP roots", product.name())),
            Self::Supplied { ask, ark } => Ok((ask.clone(), ark.clone(), snp_product_of_ark(ark))),
        }
    }
}

/// What the owner expects of the report. `None` means "not checked".
#[derive(Debug, Clone, Default)]
pub struct ReportExpectations {
    /// Expected launch measurement (the launch digest).
    pub measurement: Option<SnpLaunchDigest>,
    /// Expected REPORT_DATA; shorter values are compared zero-padded to 64 bytes.
    pub report_data: Option<Vec<u8>>,
    /// Expected HOST_DATA (32 bytes).
    pub host_data: Option<Vec<u8>>,
    /// Expected ID_KEY_DIGEST (48 bytes).
    pub id_key_digest: Option<Vec<u8>>,
    /// Expected AUTHOR_KEY_DIGEST (48 bytes).
    pub author_key_digest: Option<Vec<u8>>,
    /// Minimum acceptable reported TCB.
    pub min_tcb: Option<TcbParts>,
    /// Required VMPL of the report.
    pub vmpl: Option<u32>,
    /// Accept a policy that allows debugging (DBG_DECRYPT of guest memory).
    pub allow_debug: bool,
    /// Accept a policy that allows association with a migration agent.
    pub allow_migration_agent: bool,
}

/// Input that cannot be verified at all (as opposed to a failed check).
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The report is not a report.
    #[error("attestation report: {0}")]
    Report(#[from] AbiError),
}

fn fmt_tcb(tcb: TcbParts) -> String {
    let fmc = tcb.fmc.map(|fmc| format!("fmc={fmc} ")).unwrap_or_default();
    format!(
        "{fmc}bl={} tee={} snp={} ucode={}",
        tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    )
}

/// Checks a certificate's validity period against `now`.
fn validity(cert: &X509Cert, now: SystemTime) -> Result<String, String> {
    let (not_before, not_after) = cert.validity();
    let name = cert.subject_common_name().unwrap_or_default();
    if now < not_before {
        Err(format!(
            "{name} is not valid before {}",
            crate::format_time(not_before)
        ))
    } else if now > not_after {
        Err(format!(
            "{name} expired at {}",
            crate::format_time(not_after)
        ))
    } else {
        Ok(format!(
            "{name} valid until {}",
            crate::format_time(not_after)
        ))
    }
}

/// Verifies the chain ARK -> ASK -> VCEK/VLEK and records each link.
///
/// Returns the product the chain belongs to, when known.
pub fn verify_chain(
    verdict: &mut Verdict,
    endorsement: &X509Cert,
    source: &ChainSource,
    now: SystemTime,
) -> Option<Product> {
    let (ask, ark, product) = match source.resolve() {
        Ok(resolved) => resolved,
        Err(e) => {
            verdict.fail("chain.ark_trusted", e);
            return None;
        }
    };
    let trust = match (source, product) {
        (ChainSource::Pinned(_), Some(p)) => format!("AMD's pinned {} ARK", p.name()),
        (ChainSource::Supplied { .. }, Some(p)) => {
            format!("supplied ARK is AMD's pinned {} ARK", p.name())
        }
        _ => format!(
            "supplied ARK '{}' is NOT one of AMD's roots; trusted because it was supplied",
            cn(&ark)
        ),
    };
    verdict.pass("chain.ark_trusted", trust);
    verdict.record(
        "chain.ark_self_signed",
        ark.verify_issued_by(&ark)
            .map(|()| "ARK signature verifies with its own key".to_owned()),
    );
    verdict.record(
        "chain.ask_signed_by_ark",
        ask.verify_issued_by(&ark)
            .map(|()| format!("{} signed by {}", cn(&ask), cn(&ark))),
    );
    verdict.record(
        "chain.vcek_signed_by_ask",
        endorsement
            .verify_issued_by(&ask)
            .map(|()| format!("{} signed by {}", cn(endorsement), cn(&ask))),
    );
    let mut problems = Vec::new();
    let mut fine = Vec::new();
    for cert in [&ark, &ask, endorsement] {
        match validity(cert, now) {
            Ok(s) => fine.push(s),
            Err(s) => problems.push(s),
        }
    }
    if problems.is_empty() {
        verdict.pass("chain.validity", fine.join("; "));
    } else {
        verdict.fail("chain.validity", problems.join("; "));
    }
    product
}

fn cn(cert: &X509Cert) -> String {
    cert.subject_common_name()
        .unwrap_or_else(|| "<no CN>".to_owned())
}

fn compare(verdict: &mut Verdict, name: &'static str, expected: Option<&[u8]>, actual: &[u8]) {
    match expected {
        None => verdict.skip(name, "no expected value given"),
        Some(want) if want == actual => verdict.pass(name, hex::encode(actual)),
        Some(want) => {
            verdict.fail(
                name,
                format!(
                    "expected {}, report has {}",
                    hex::encode(want),
                    hex::encode(actual)
                ),
            );
        }
    }
}

/// A VCEK or VLEK whose chain has been checked, prepared for checking many
/// reports: its public key and AMD extensions are decoded once.
#[derive(Debug, Clone)]
pub struct Endorsement {
    /// The certificate.
    pub cert: X509Cert,
    /// Its P-384 public key, or why it has none.
    pub key: Result<P384PublicKey, String>,
    /// Its AMD extensions, or why they could not be read.
    pub info: Result<EndorsementInfo, VcekError>,
    /// The product of the chain that signed it, when known.
    pub chain_product: Option<Product>,
}

impl Endorsement {
    /// Decodes the key and extensions of `cert`, signed by a chain of
    /// `chain_product` (see [`verify_chain`]).
    pub fn new(cert: X509Cert, chain_product: Option<Product>) -> Self {
        let key = match cert.public_key() {
            Ok(CertPublicKey::P384(key)) => Ok(key),
            Ok(CertPublicKey::Rsa(_)) => Err("VCEK has an RSA key, not P-384".to_owned()),
            Err(e) => Err(format!("VCEK public key: {e}")),
        };
        let info = EndorsementInfo::from_cert(&cert);
        Self {
            cert,
            key,
            info,
            chain_product,
        }
    }
}

/// Verifies an SNP attestation report: the certificate chain, the signature
/// over the raw signed bytes, the TCB and chip id against the VCEK, the policy
/// and every expectation given. Every check is evaluated and recorded.
///
/// `report` is the raw 1184-byte report. Fails only when the report cannot
/// be parsed at all; everything else is a check in the verdict.
pub fn verify_report(
    report: &[u8],
    endorsement: &X509Cert,
    source: &ChainSource,
    expect: &ReportExpectations,
    now: SystemTime,
) -> Result<Verdict, AttestError> {
    // Parse first: an unusable report is an input error, not a failed check.
    AttestationReport::from_bytes(report)?;
    let mut verdict = Verdict::default();
    let chain_product = verify_chain(&mut verdict, endorsement, source, now);
    let prepared = Endorsement::new(endorsement.clone(), chain_product);
    let report_verdict = check_report(report, &prepared, expect)?;
    verdict.checks.extend(report_verdict.checks);
    Ok(verdict)
}

/// Checks a report against an endorsement key whose chain was already
/// verified (see [`verify_chain`]): everything [`verify_report`] does but the
/// chain. This is the per-report cost of a verifier that caches chains.
pub fn check_report(
    report: &[u8],
    endorsement: &Endorsement,
    expect: &ReportExpectations,
) -> Result<Verdict, AttestError> {
    let parsed = AttestationReport::from_bytes(report)?;
    let mut verdict = Verdict::default();
    let chain_product = endorsement.chain_product;
    let info = match &endorsement.info {
        Ok(info) => {
            verdict.pass(
                "vcek.extensions",
                format!(
                    "{:?} for {} at {}",
                    info.kind,
                    info.product_name,
                    fmt_tcb(info.tcb)
                ),
            );
            Some(info)
        }
        Err(e) => {
            verdict.fail("vcek.extensions", e.to_string());
            None
        }
    };
    match (chain_product, info.and_then(|i| i.product)) {
        (Some(chain), Some(cert)) if chain != cert => verdict.fail(
            "vcek.product",
            format!(
                "certificate is for {}, chain is {}",
                cert.name(),
                chain.name()
            ),
        ),
        (Some(chain), Some(_)) => verdict.pass("vcek.product", chain.name()),
        _ => verdict.skip("vcek.product", "product of chain or certificate unknown"),
    }

    check_signature(&mut verdict, report, &parsed, endorsement, info);
    // Decode TCBs with the certificate's layout (Turin differs), else the
    // chain's product, else what the report itself suggests.
    let layout = info.map_or_else(
        || {
            chain_product
                .or_else(|| parsed.product_hint())
                .map_or(TcbLayout::MilanGenoa, Product::tcb_layout)
        },
        EndorsementInfo::tcb_layout,
    );
    let reported = parsed.reported_tcb().decode(layout);
    check_tcb_and_chip(&mut verdict, &parsed, reported, info);
    check_policy(&mut verdict, &parsed, expect);
    check_expectations(&mut verdict, &parsed, reported, expect);
    Ok(verdict)
}

/// The signature, over the raw signed bytes, and which key the report names.
fn check_signature(
    verdict: &mut Verdict,
    report: &[u8],
    parsed: &AttestationReport,
    endorsement: &Endorsement,
    info: Option<&EndorsementInfo>,
) {
    verdict.record(
        "report.signature_algo",
        if parsed.signature_algo.get() == 1 {
            Ok("ECDSA P-384 with SHA-384".to_owned())
        } else {
            Err(format!(
                "unknown signature algorithm {}",
                parsed.signature_algo.get()
            ))
        },
    );
    let key_info = parsed.key_info();
    let expected_key = match info.map(|i| i.kind) {
        Some(EndorsementKind::Vlek) => SigningKey::Vlek,
        _ => SigningKey::Vcek,
    };
    if key_info.signing_key == expected_key {
        verdict.pass("report.signing_key", format!("{:?}", key_info.signing_key));
    } else {
        verdict.fail(
            "report.signing_key",
            format!(
                "report says it was signed by {:?}, certificate is a {:?}",
                key_info.signing_key, expected_key
            ),
        );
    }
    let signature = match &endorsement.key {
        Ok(key) => sev_crypto::report::verify_report_signature(report, key)
            .map(|()| "ECDSA P-384 SHA-384 over bytes 0x000..0x2A0 verifies".to_owned())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    verdict.record("report.signature", signature);
}

/// TCB and chip id against the certificate.
fn check_tcb_and_chip(
    verdict: &mut Verdict,
    parsed: &AttestationReport,
    reported: TcbParts,
    info: Option<&EndorsementInfo>,
) {
    match info {
        Some(info) if info.tcb == reported => {
            verdict.pass(
                "report.tcb",
                format!("reported TCB {} matches the certificate", fmt_tcb(reported)),
            );
        }
        Some(info) => verdict.fail(
            "report.tcb",
            format!(
                "reported TCB {} but the certificate is for {}",
                fmt_tcb(reported),
                fmt_tcb(info.tcb)
            ),
        ),
        None => verdict.skip("report.tcb", "certificate extensions unreadable"),
    }
    match info.and_then(|i| i.hw_id.as_deref()) {
        _ if parsed.is_chip_id_masked() => {
            verdict.skip(
                "report.chip_id",
                "chip id masked by the host (MASK_CHIP_ID)",
            );
        }
        None => verdict.skip("report.chip_id", "certificate has no hwID (VLEK)"),
        Some(hw_id) => {
            let chip = &parsed.chip_id[..];
            let matches = chip.get(..hw_id.len()) == Some(hw_id)
                && chip
                    .get(hw_id.len()..)
                    .is_some_and(|rest| rest.iter().all(|b| *b == 0));
            if matches {
                verdict.pass(
                    "report.chip_id",
                    format!("chip id matches hwID {}", hex::encode(hw_id)),
                );
            } else {
                verdict.fail(
                    "report.chip_id",
                    format!(
                        "report chip id {} differs from the certificate's hwID {}",
                        hex::encode(chip),
                        hex::encode(hw_id)
                    ),
                );
            }
        }
    }
}

/// The guest policy: valid, and no debugging or migration agent unless allowed.
fn check_policy(verdict: &mut Verdict, parsed: &AttestationReport, expect: &ReportExpectations) {
    let policy = parsed.policy();
    verdict.record(
        "policy.valid",
        policy.validate().map(|()| format!("{policy}")),
    );
    if policy.debug() && !expect.allow_debug {
        verdict.fail(
            "policy.debug",
            "policy allows the host to debug (decrypt) the guest; pass --allow-debug to accept",
        );
    } else {
        verdict.pass(
            "policy.debug",
            if policy.debug() {
                "debug allowed (accepted)"
            } else {
                "debug forbidden"
            },
        );
    }
    if policy.migrate_ma() && !expect.allow_migration_agent {
        verdict.fail(
            "policy.migration_agent",
            "policy allows a migration agent; pass --allow-migration-agent to accept",
        );
    } else {
        verdict.pass(
            "policy.migration_agent",
            if policy.migrate_ma() {
                "migration agent allowed (accepted)"
            } else {
                "no migration agent"
            },
        );
    }
}

/// The owner's expected values.
fn check_expectations(
    verdict: &mut Verdict,
    parsed: &AttestationReport,
    reported: TcbParts,
    expect: &ReportExpectations,
) {
    let vmpl = parsed.vmpl.get();
    match expect.vmpl {
        None => verdict.skip("report.vmpl", format!("not checked (report VMPL {vmpl})")),
        Some(want) if want == vmpl => verdict.pass("report.vmpl", vmpl.to_string()),
        Some(want) => verdict.fail(
            "report.vmpl",
            format!("expected VMPL {want}, report has {vmpl}"),
        ),
    }
    match &expect.min_tcb {
        None => verdict.skip("report.min_tcb", "no minimum TCB given"),
        Some(min) if reported.meets_minimum(min) => verdict.pass(
            "report.min_tcb",
            format!("{} >= {}", fmt_tcb(reported), fmt_tcb(*min)),
        ),
        Some(min) => verdict.fail(
            "report.min_tcb",
            format!(
                "reported TCB {} is below the minimum {}",
                fmt_tcb(reported),
                fmt_tcb(*min)
            ),
        ),
    }
    compare(
        verdict,
        "report.measurement",
        expect.measurement.as_ref().map(|d| &d[..]),
        &parsed.measurement[..],
    );
    // REPORT_DATA is often a shorter hash or nonce: compare it zero-padded.
    let report_data = expect.report_data.as_ref().map(|want| {
        let mut padded = want.clone();
        padded.resize(parsed.report_data.len().max(want.len()), 0);
        padded
    });
    compare(
        verdict,
        "report.report_data",
        report_data.as_deref(),
        &parsed.report_data,
    );
    compare(
        verdict,
        "report.host_data",
        expect.host_data.as_deref(),
        &parsed.host_data,
    );
    compare(
        verdict,
        "report.id_key_digest",
        expect.id_key_digest.as_deref(),
        &parsed.id_key_digest,
    );
    compare(
        verdict,
        "report.author_key_digest",
        expect.author_key_digest.as_deref(),
        &parsed.author_key_digest,
    );
}

/// Checks AMD's certificate revocation list: it must be signed by the chain's
/// ARK and current at `now`, and revoke neither the ASK nor the VCEK.
/// Records `chain.crl`.
pub fn check_crl(
    verdict: &mut Verdict,
    crl: &X509Crl,
    endorsement: &X509Cert,
    source: &ChainSource,
    now: SystemTime,
) {
    let (ask, ark) = match source.resolve() {
        Ok((ask, ark, _)) => (ask, ark),
        Err(e) => {
            verdict.fail("chain.crl", e);
            return;
        }
    };
    let mut problems = Vec::new();
    if let Err(e) = crl.verify_issued_by(&ark) {
        problems.push(format!("CRL is not signed by the ARK: {e}"));
    }
    let (this_update, next_update) = crl.update_times();
    if now < this_update {
        problems.push(format!(
            "CRL is not valid before {}",
            crate::format_time(this_update)
        ));
    }
    if let Some(next) = next_update.filter(|next| now > *next) {
        problems.push(format!(
            "CRL is stale: next update was due {}",
            crate::format_time(next)
        ));
    }
    for (name, cert) in [("ASK", &ask), ("VCEK", endorsement)] {
        if crl.is_revoked(cert.serial()) {
            problems.push(format!(
                "{name} (serial {}) is revoked",
                hex::encode(cert.serial())
            ));
        }
    }
    if problems.is_empty() {
        verdict.pass(
            "chain.crl",
            "CRL signed by the ARK; neither ASK nor VCEK revoked",
        );
    } else {
        verdict.fail("chain.crl", problems.join("; "));
    }
}
