//! `sevkit verify`: attestation reports and certificate chains.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};
use sev_abi::amd_cert::AmdCert;
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::legacy_cert::SevCert;
use sev_abi::product::{Product, TcbParts};
use sev_attest::legacy::{verify_platform_chain, LegacyAnchor, PlatformChain};
use sev_attest::snp::{verify_report, ChainSource, ReportExpectations};
use sev_attest::{Outcome, Verdict};
use sev_crypto::x509::X509Cert;

use sev_os::excerpt;

use crate::input::{self, invalid, InputError};
use crate::number::{self, number};
use crate::Status;

/// A product name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProductArg {
    /// EPYC 7001 (legacy SEV only).
    Naples,
    /// EPYC 7002 (legacy SEV, SEV-ES).
    Rome,
    /// EPYC 7003.
    Milan,
    /// EPYC 9004 (also Bergamo, Siena).
    Genoa,
    /// EPYC 9005.
    Turin,
}

impl From<ProductArg> for Product {
    fn from(p: ProductArg) -> Self {
        match p {
            ProductArg::Naples => Product::Naples,
            ProductArg::Rome => Product::Rome,
            ProductArg::Milan => Product::Milan,
            ProductArg::Genoa => Product::Genoa,
            ProductArg::Turin => Product::Turin,
        }
    }
}

/// `sevkit verify ...`
#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Verify an SEV-SNP attestation report: chain to AMD's root, signature,
    /// TCB and chip id against the VCEK, policy, and the expected values given.
    ///
    /// Exit 0 when every check passes, 1 when any fails (each is named),
    /// 2 when an input is unusable.
    Report(ReportArgs),
    /// Verify a legacy SEV platform chain: ARK -> ASK -> CEK -> PEK -> PDH and
    /// OCA -> PEK. Exit 0/1/2 as for `verify report`, naming the broken link.
    SevChain(SevChainArgs),
    /// Verify the real Milan attestation report embedded in sevkit against
    /// its VCEK and AMD's pinned Milan roots: a demonstration that needs no files.
    Example {
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `sevkit verify report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report: 1184 bytes binary, or hex text.
    pub report: PathBuf,
    /// The VCEK (or VLEK) certificate: DER, PEM or hex.
    #[arg(long)]
    pub vcek: PathBuf,
    /// PEM file with the ASK (or ASVK) then the ARK, e.g. AMD's `cert_chain`.
    /// Its ARK becomes the trust anchor. Without it, AMD's pinned roots.
    #[arg(long, conflicts_with = "product")]
    pub chain: Option<PathBuf>,
    /// Product whose pinned roots to use (default: the one named by the
    /// VCEK's issuer, e.g. `SEV-Milan`).
    #[arg(long, value_enum)]
    pub product: Option<ProductArg>,
    /// Expected launch measurement (48 bytes, hex).
    #[arg(long, value_name = "HEX")]
    pub measurement: Option<String>,
    /// Expected REPORT_DATA (up to 64 bytes, hex; shorter values are zero-padded).
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Expected HOST_DATA (32 bytes, hex).
    #[arg(long, value_name = "HEX")]
    pub host_data: Option<String>,
    /// Expected ID_KEY_DIGEST (48 bytes, hex).
    #[arg(long, value_name = "HEX")]
    pub id_key_digest: Option<String>,
    /// Expected AUTHOR_KEY_DIGEST (48 bytes, hex).
    #[arg(long, value_name = "HEX")]
    pub author_key_digest: Option<String>,
    /// Minimum reported TCB, e.g. `bl=3,tee=0,snp=8,ucode=115` (Turin: add `fmc=N`).
    #[arg(long, value_name = "LIST")]
    pub min_tcb: Option<String>,
    /// Accept a policy that allows the host to debug the guest.
    #[arg(long)]
    pub allow_debug: bool,
    /// Accept a policy that allows a migration agent.
    #[arg(long)]
    pub allow_migration_agent: bool,
    /// Required VMPL of the report.
    #[arg(long, value_parser = number::<u32>())]
    pub vmpl: Option<u32>,
    /// AMD certificate revocation list (DER or PEM) signed by the ARK.
    #[arg(long)]
    pub crl: Option<PathBuf>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sevkit verify sev-chain`.
#[derive(Debug, Args)]
pub struct SevChainArgs {
    /// Platform Diffie-Hellman certificate (`sev_cert`, 2084 bytes).
    #[arg(long)]
    pub pdh: PathBuf,
    /// Platform Endorsement Key certificate.
    #[arg(long)]
    pub pek: PathBuf,
    /// Owner Certificate Authority certificate.
    #[arg(long)]
    pub oca: PathBuf,
    /// Chip Endorsement Key certificate.
    #[arg(long)]
    pub cek: PathBuf,
    /// AMD SEV Signing Key (AMD binary format); with --ark.
    #[arg(long, requires = "ark", conflicts_with = "product")]
    pub ask: Option<PathBuf>,
    /// AMD Root Key (AMD binary format); with --ask.
    #[arg(long, requires = "ask", conflicts_with = "product")]
    pub ark: Option<PathBuf>,
    /// Product whose pinned roots to use (default: detect from the CEK's signer).
    #[arg(long, value_enum)]
    pub product: Option<ProductArg>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `verify` subcommand.
pub fn run(cmd: &VerifyCommand) -> Result<Status, InputError> {
    match cmd {
        VerifyCommand::Report(args) => report(args),
        VerifyCommand::SevChain(args) => sev_chain(args),
        VerifyCommand::Example { json } => example(*json),
    }
}

/// The first object of a file of at most `max` bytes of `what`.
fn read_object(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    Ok(input::decode(&input::read(path, max, what)?)?
        .first()
        .to_vec())
}

/// Reads a report: 1184 raw bytes or hex text of them.
pub fn read_report(path: &Path) -> Result<Vec<u8>, InputError> {
    let bytes = read_object(path, input::MAX_STRUCT_FILE, "an attestation report")?;
    if bytes.len() != sev_abi::report::REPORT_LEN {
        return Err(InputError::Invalid(format!(
            "{}: an attestation report is {} bytes, this is {} bytes",
            path.display(),
            sev_abi::report::REPORT_LEN,
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Reads one X.509 certificate (DER, PEM or hex).
pub fn read_x509(path: &Path) -> Result<X509Cert, InputError> {
    let der = read_object(path, input::MAX_CERT_FILE, "a certificate")?;
    X509Cert::from_der(&der).map_err(|e| {
        InputError::Invalid(format!("{}: not an X.509 certificate: {e}", path.display()))
    })
}

fn parse_min_tcb(text: &str) -> Result<TcbParts, InputError> {
    let mut tcb = TcbParts {
        fmc: None,
        bootloader: 0,
        tee: 0,
        snp: 0,
        microcode: 0,
    };
    let mut seen = Vec::new();
    for item in text.split(',').filter(|s| !s.is_empty()) {
        let (key, value) = item.split_once('=').ok_or_else(|| {
            InputError::Invalid(format!("--min-tcb: '{}' is not NAME=VALUE", excerpt(item)))
        })?;
        let value = value.trim();
        // sevkit's one number syntax: decimal, or hex after 0x.
        let number = number::parse_in(value, &(0..=255))
            .ok()
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| {
                InputError::Invalid(format!(
                    "--min-tcb: {}={} is not a number 0..255",
                    excerpt(key),
                    excerpt(value)
                ))
            })?;
        match key.trim() {
            "bl" => tcb.bootloader = number,
            "tee" => tcb.tee = number,
            "snp" => tcb.snp = number,
            "ucode" => tcb.microcode = number,
            "fmc" => tcb.fmc = Some(number),
            other => {
                return Err(InputError::Invalid(format!(
                    "--min-tcb: unknown component '{}' (use bl, tee, snp, ucode, fmc)",
                    excerpt(other)
                )))
            }
        }
        seen.push(key.trim().to_owned());
    }
    for required in ["bl", "tee", "snp", "ucode"] {
        if !seen.iter().any(|s| s == required) {
            return Err(InputError::Invalid(format!(
                "--min-tcb: missing {required}=N"
            )));
        }
    }
    Ok(tcb)
}

fn product_from_issuer(vcek: &X509Cert) -> Option<Product> {
    let issuer = vcek.issuer_common_name()?;
    let name = issuer
        .strip_prefix("SEV-VLEK-")
        .or_else(|| issuer.strip_prefix("SEV-"))?;
    name.parse().ok()
}

fn report(args: &ReportArgs) -> Result<Status, InputError> {
    let report = read_report(&args.report)?;
    let vcek = read_x509(&args.vcek)?;
    let source = if let Some(chain) = &args.chain {
        let decoded = input::decode(&input::read(
            chain,
            input::MAX_CERT_FILE,
            "a certificate chain",
        )?)?;
        let certs = decoded
            .objects
            .iter()
            .map(|der| X509Cert::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InputError::Invalid(format!("{}: {e}", chain.display())))?;
        let [ask, ark] = <[X509Cert; 2]>::try_from(certs).map_err(|certs| {
            InputError::Invalid(format!(
                "{}: expected two certificates (ASK then ARK), found {}",
                chain.display(),
                certs.len()
            ))
        })?;
        ChainSource::Supplied { ask, ark }
    } else {
        let product = match args.product {
            Some(p) => Product::from(p),
            None => product_from_issuer(&vcek).ok_or_else(|| {
                InputError::Invalid(
                    "cannot tell the product from the VCEK's issuer; pass --product or --chain"
                        .into(),
                )
            })?,
        };
        ChainSource::Pinned(product)
    };
    let hex_opt = |name: &str, value: &Option<String>, len: usize, exact: bool| {
        value
            .as_deref()
            .map(|v| input::hex_arg(name, v, len, exact))
            .transpose()
    };
    let expect = ReportExpectations {
        measurement: hex_opt("measurement", &args.measurement, SnpLaunchDigest::LEN, true)?
            .map(|bytes| SnpLaunchDigest::from_slice(&bytes))
            .transpose()
            .map_err(|e| invalid(format!("--measurement: {e}")))?,
        report_data: hex_opt("report-data", &args.report_data, 64, false)?,
        host_data: hex_opt("host-data", &args.host_data, 32, true)?,
        id_key_digest: hex_opt("id-key-digest", &args.id_key_digest, 48, true)?,
        author_key_digest: hex_opt("author-key-digest", &args.author_key_digest, 48, true)?,
        min_tcb: args.min_tcb.as_deref().map(parse_min_tcb).transpose()?,
        vmpl: args.vmpl,
        allow_debug: args.allow_debug,
        allow_migration_agent: args.allow_migration_agent,
    };
    let crl = match &args.crl {
        Some(path) => Some(
            sev_crypto::x509::X509Crl::from_der(&read_object(
                path,
                input::MAX_CERT_FILE,
                "a certificate revocation list",
            )?)
            .map_err(|e| InputError::Invalid(format!("{}: not a CRL: {e}", path.display())))?,
        ),
        None => None,
    };
    let now = SystemTime::now();
    let mut verdict = verify_report(&report, &vcek, &source, &expect, now)
        .map_err(|e| InputError::Invalid(format!("{}: {e}", args.report.display())))?;
    match crl {
        Some(crl) => sev_attest::snp::check_crl(&mut verdict, &crl, &vcek, &source, now),
        None => verdict.checks.push(sev_attest::Check {
            name: "chain.crl",
            outcome: sev_attest::Outcome::Skip("no CRL given (--crl)".into()),
        }),
    }
    Ok(print_verdict(&verdict, args.json))
}

fn read_sev_cert(path: &Path) -> Result<SevCert, InputError> {
    let bytes = read_object(path, input::MAX_CERT_FILE, "a certificate")?;
    SevCert::from_bytes(&bytes).map_err(|e| InputError::Invalid(format!("{}: {e}", path.display())))
}

fn read_amd_cert(path: &Path) -> Result<AmdCert, InputError> {
    let bytes = read_object(path, input::MAX_CERT_FILE, "a certificate")?;
    AmdCert::from_bytes(&bytes).map_err(|e| InputError::Invalid(format!("{}: {e}", path.display())))
}

fn sev_chain(args: &SevChainArgs) -> Result<Status, InputError> {
    let chain = PlatformChain {
        pdh: read_sev_cert(&args.pdh)?,
        pek: read_sev_cert(&args.pek)?,
        oca: read_sev_cert(&args.oca)?,
        cek: read_sev_cert(&args.cek)?,
    };
    let anchor = match (&args.ask, &args.ark, args.product) {
        (Some(ask), Some(ark), _) => LegacyAnchor::Supplied {
            ask: read_amd_cert(ask)?,
            ark: read_amd_cert(ark)?,
        },
        (_, _, Some(product)) => LegacyAnchor::Pinned(product.into()),
        _ => LegacyAnchor::AutoDetect,
    };
    let verdict = verify_platform_chain(&chain, &anchor);
    Ok(print_verdict(&verdict, args.json))
}

/// A real Milan attestation report (hex), shipped as a built-in example.
pub const EXAMPLE_REPORT: &str = include_str!("../data/milan/report.hex");
/// The VCEK that signed [`EXAMPLE_REPORT`].
pub const EXAMPLE_VCEK: &[u8] = include_bytes!("../data/milan/vcek.der");

fn example(json: bool) -> Result<Status, InputError> {
    let report = input::decode(EXAMPLE_REPORT.as_bytes())?.first().to_vec();
    let vcek = X509Cert::from_der(EXAMPLE_VCEK)
        .map_err(|e| InputError::Invalid(format!("embedded VCEK: {e}")))?;
    if !json {
        outln!("Verifying a real attestation report from an AMD EPYC Milan machine");
        outln!("against its VCEK and AMD's pinned Milan ARK/ASK (embedded in sevkit):\n");
    }
    let verdict = verify_report(
        &report,
        &vcek,
        &ChainSource::Pinned(Product::Milan),
        &ReportExpectations::default(),
        SystemTime::now(),
    )
    .map_err(|e| InputError::Invalid(format!("embedded report: {e}")))?;
    Ok(print_verdict(&verdict, json))
}

/// Prints a verdict (text or JSON) and returns the matching status.
pub fn print_verdict(verdict: &Verdict, json: bool) -> Status {
    let passed = verdict.passed();
    if json {
        let value = serde_json::json!({
            "verdict": if passed { "pass" } else { "fail" },
            "failed": verdict.failures().map(|c| c.name).collect::<Vec<_>>(),
            "checks": verdict.checks,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        let width = verdict
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        for check in &verdict.checks {
            let (tag, detail) = match &check.outcome {
                Outcome::Pass(d) => ("PASS", d),
                Outcome::Fail(d) => ("FAIL", d),
                Outcome::Skip(d) => ("SKIP", d),
            };
            outln!("{tag}  {:width$}  {detail}", check.name);
        }
        let failed: Vec<_> = verdict.failures().map(|c| c.name).collect();
        if failed.is_empty() {
            outln!("\nverdict: PASS ({} checks)", verdict.checks.len());
        } else {
            outln!(
                "\nverdict: FAIL ({} of {} checks failed: {})",
                failed.len(),
                verdict.checks.len(),
                failed.join(", ")
            );
        }
    }
    if passed {
        Status::Ok
    } else {
        Status::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_tcb_parses_and_requires_components() {
        let t = parse_min_tcb("bl=3,tee=0,snp=8,ucode=0x73").unwrap();
        assert_eq!(
            (t.bootloader, t.tee, t.snp, t.microcode, t.fmc),
            (3, 0, 8, 0x73, None)
        );
        assert!(parse_min_tcb("bl=3,tee=0,snp=8").is_err());
        assert!(parse_min_tcb("bl=3,tee=0,snp=8,ucode=256").is_err());
        assert!(parse_min_tcb("bl=3,tee=0,snp=8,ucode=1,xyz=1").is_err());
        assert_eq!(
            parse_min_tcb("fmc=1,bl=3,tee=0,snp=8,ucode=1").unwrap().fmc,
            Some(1)
        );
    }
}
