//! `sevkit show`: readable dumps of reports and certificates.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use sev_abi::amd_cert::AmdCert;
use sev_abi::legacy_cert::SevCert;
use sev_abi::policy::{FieldWidth, PolicyKind};
use sev_abi::product::{Product, TcbLayout, TcbVersion};
use sev_abi::report::AttestationReport;
use sev_attest::vcek::EndorsementInfo;
use sev_crypto::x509::{CertPublicKey, X509Cert};

use crate::input::{self, InputError};
use crate::verify::ProductArg;

/// `sevkit show ...`
#[derive(Debug, Subcommand)]
pub enum ShowCommand {
    /// Print every field of an SEV-SNP attestation report (binary or hex),
    /// with TCB values decoded for the product.
    Report(ShowReportArgs),
    /// Print a certificate: X.509 (PEM or DER; VCEK/VLEK/ASK/ARK extensions
    /// decoded), legacy `sev_cert` (PDH, PEK, OCA, CEK) or AMD ARK/ASK binary.
    Cert(ShowCertArgs),
}

/// Arguments of `sevkit show report`.
#[derive(Debug, Args)]
pub struct ShowReportArgs {
    /// The report file.
    pub file: PathBuf,
    /// Decode TCB values with this product's layout (default: from the report's
    /// CPUID fields, v3+; Milan/Genoa layout when unknown).
    #[arg(long, value_enum)]
    pub product: Option<ProductArg>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sevkit show cert`.
#[derive(Debug, Args)]
pub struct ShowCertArgs {
    /// The certificate file (PEM bundles print every certificate).
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `show` subcommand.
pub fn run(cmd: &ShowCommand) -> Result<(), InputError> {
    match cmd {
        ShowCommand::Report(args) => {
            let bytes = crate::verify::read_report(&args.file)?;
            let report = AttestationReport::from_bytes(&bytes)
                .map_err(|e| InputError::Invalid(format!("{}: {e}", args.file.display())))?;
            let fields = report_fields(&report, args.product.map(Product::from));
            print_fields(&fields, args.json);
            Ok(())
        }
        ShowCommand::Cert(args) => {
            let decoded = input::decode(&input::read(
                &args.file,
                input::MAX_CERT_FILE,
                "a certificate or certificate bundle",
            )?)?;
            let mut all = Vec::new();
            for object in &decoded.objects {
                let fields = cert_fields(object)
                    .map_err(|e| InputError::Invalid(format!("{}: {e}", args.file.display())))?;
                all.push(fields);
            }
            if args.json {
                let values: Vec<Value> = all.iter().map(fields_to_json).collect();
                let out = if values.len() == 1 {
                    values[0].clone()
                } else {
                    Value::Array(values)
                };
                outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                for (i, fields) in all.iter().enumerate() {
                    if i > 0 {
                        outln!();
                    }
                    print_fields(fields, false);
                }
            }
            Ok(())
        }
    }
}

type Fields = Vec<(String, Value)>;

fn hex(bytes: &[u8]) -> Value {
    Value::String(hex::encode(bytes))
}

fn tcb_value(tcb: TcbVersion, layout: TcbLayout) -> Value {
    let parts = tcb.decode(layout);
    let mut v = json!({
        "raw": format!("{:#018x}", tcb.0),
        "bootloader": parts.bootloader,
        "tee": parts.tee,
        "snp": parts.snp,
        "microcode": parts.microcode,
    });
    if let Some(fmc) = parts.fmc {
        v["fmc"] = json!(fmc);
    }
    v
}

/// A policy: its raw value, then every named field of `kind` (sev-abi's
/// table), `-` in names written `_` as in every other key: flags as
/// booleans, version bytes as numbers.
fn policy_value(kind: PolicyKind, raw: u64) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("raw".into(), json!(format!("{raw:#x}")));
    for field in kind.fields() {
        let value = field.get(raw);
        map.insert(
            field.name.replace('-', "_"),
            match field.width {
                FieldWidth::Flag => json!(value != 0),
                FieldWidth::Byte => json!(value),
            },
        );
    }
    Value::Object(map)
}

fn report_fields(r: &AttestationReport, product: Option<Product>) -> Fields {
    let product = product.or_else(|| r.product_hint());
    let layout = product.map_or(TcbLayout::MilanGenoa, Product::tcb_layout);
    let policy = r.policy();
    let key_info = r.key_info();
    let platform = r.platform_info();
    let mut f: Fields = vec![
        ("version".into(), json!(r.version.get())),
        ("guest_svn".into(), json!(r.guest_svn.get())),
        ("policy".into(), policy_value(PolicyKind::Snp, policy.raw())),
        ("family_id".into(), hex(&r.family_id)),
        ("image_id".into(), hex(&r.image_id)),
        ("vmpl".into(), json!(r.vmpl.get())),
        ("signature_algo".into(), json!(r.signature_algo.get())),
        (
            "product (for TCB decoding)".into(),
            json!(product.map_or("unknown: Milan/Genoa layout", Product::name)),
        ),
        ("current_tcb".into(), tcb_value(r.current_tcb(), layout)),
        (
            "platform_info".into(),
            json!({
                "raw": format!("{:#x}", r.platform_info.get()),
                "smt_en": platform.smt_en(), "tsme_en": platform.tsme_en(), "ecc_en": platform.ecc_en(),
                "rapl_dis": platform.rapl_dis(), "ciphertext_hiding_en": platform.ciphertext_hiding_en(),
                "alias_check_complete": platform.alias_check_complete(), "tio_en": platform.tio_en(),
            }),
        ),
        (
            "key_info".into(),
            json!({
                "raw": format!("{:#x}", r.key_info.get()),
                "author_key_en": key_info.author_key_en,
                "mask_chip_key": key_info.mask_chip_key,
                "signing_key": format!("{:?}", key_info.signing_key),
            }),
        ),
        ("report_data".into(), hex(&r.report_data)),
        ("measurement".into(), hex(&r.measurement[..])),
        ("host_data".into(), hex(&r.host_data)),
        ("id_key_digest".into(), hex(&r.id_key_digest)),
        ("author_key_digest".into(), hex(&r.author_key_digest)),
        ("report_id".into(), hex(&r.report_id)),
        ("report_id_ma".into(), hex(&r.report_id_ma)),
        ("reported_tcb".into(), tcb_value(r.reported_tcb(), layout)),
    ];
    if let Some((family, model, stepping)) = r.cpuid() {
        f.push(("cpuid".into(), json!({"family": format!("{family:#x}"), "model": format!("{model:#x}"), "stepping": format!("{stepping:#x}")})));
    }
    f.push((
        "chip_id".into(),
        if r.is_chip_id_masked() {
            json!("masked (all zero)")
        } else {
            hex(&r.chip_id)
        },
    ));
    f.push(("committed_tcb".into(), tcb_value(r.committed_tcb(), layout)));
    let (major, minor, build) = r.current_version();
    f.push((
        "current_version".into(),
        json!(format!("{major}.{minor} build {build}")),
    ));
    let (major, minor, build) = r.committed_version();
    f.push((
        "committed_version".into(),
        json!(format!("{major}.{minor} build {build}")),
    ));
    f.push(("launch_tcb".into(), tcb_value(r.launch_tcb(), layout)));
    if let Some((launch, current)) = r.mitigation_vectors() {
        f.push(("launch_mit_vector".into(), json!(format!("{launch:#x}"))));
        f.push(("current_mit_vector".into(), json!(format!("{current:#x}"))));
    }
    let reserved = r.reserved_nonzero();
    if !reserved.is_empty() {
        f.push(("warning: non-zero reserved fields".into(), json!(reserved)));
    }
    f.push((
        "signature".into(),
        match r.signature.to_be_scalars() {
            Some(_) if r.signature.is_zero() => json!("none (unsigned report)"),
            Some((sig_r, sig_s)) => json!({"r": hex::encode(sig_r), "s": hex::encode(sig_s)}),
            None => json!("malformed (non-zero padding)"),
        },
    ));
    f
}

fn cert_fields(bytes: &[u8]) -> Result<Fields, String> {
    if bytes.len() == 0x824 {
        let cert = SevCert::from_bytes(bytes).map_err(|e| e.to_string())?;
        return Ok(sev_cert_fields(&cert));
    }
    if bytes.first() == Some(&0x30) {
        let cert =
            X509Cert::from_der(bytes).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        return Ok(x509_fields(&cert));
    }
    if let Ok(cert) = AmdCert::from_bytes(bytes) {
        return Ok(amd_cert_fields(&cert));
    }
    Err(format!(
        "not a recognised certificate ({} bytes): expected X.509 (PEM/DER), a 2084-byte sev_cert, or an AMD ARK/ASK",
        bytes.len()
    ))
}

fn x509_fields(cert: &X509Cert) -> Fields {
    let (not_before, not_after) = cert.validity();
    let key = match cert.public_key() {
        Ok(CertPublicKey::Rsa(key)) => {
            use rsa::traits::PublicKeyParts;
            json!(format!("RSA-{}", key.size() * 8))
        }
        Ok(CertPublicKey::P384(key)) => {
            json!({"algorithm": "ECDSA P-384", "sec1": hex::encode(key.to_sec1())})
        }
        Err(e) => json!(format!("unsupported: {e}")),
    };
    let mut f: Fields = vec![
        ("format".into(), json!("X.509")),
        (
            "subject".into(),
            json!(cert.cert().tbs_certificate.subject.to_string()),
        ),
        (
            "issuer".into(),
            json!(cert.cert().tbs_certificate.issuer.to_string()),
        ),
        ("serial".into(), hex(cert.serial())),
        (
            "not_before".into(),
            json!(sev_attest::format_time(not_before)),
        ),
        (
            "not_after".into(),
            json!(sev_attest::format_time(not_after)),
        ),
        (
            "signature_algorithm".into(),
            json!(cert.cert().signature_algorithm.oid.to_string()),
        ),
        ("public_key".into(), key),
    ];
    match EndorsementInfo::from_cert(cert) {
        Ok(info) => {
            let mut tcb = json!({"bootloader": info.tcb.bootloader, "tee": info.tcb.tee, "snp": info.tcb.snp, "microcode": info.tcb.microcode});
            if let Some(fmc) = info.tcb.fmc {
                tcb["fmc"] = json!(fmc);
            }
            f.push((
                "amd_extensions".into(),
                json!({
                    "kind": format!("{:?}", info.kind),
                    "struct_version": info.struct_version,
                    "product_name": info.product_name,
                    "tcb": tcb,
                    "hw_id": info.hw_id.as_deref().map(hex::encode),
                    "csp_id": info.csp_id,
                }),
            ));
        }
        Err(_) => f.push((
            "usage".into(),
            json!(cert.subject_common_name().map_or("other", |cn| {
                if cn.starts_with("ARK-") {
                    "AMD Root Key (ARK)"
                } else if cn.starts_with("SEV-") {
                    "AMD SEV Signing Key (ASK/ASVK)"
                } else {
                    "other"
                }
            })),
        )),
    }
    f
}

fn sev_cert_fields(cert: &SevCert) -> Fields {
    let key = if let Some(ecc) = cert.ecc_key() {
        json!({"curve": ecc.curve.get(), "qx": hex::encode(ecc.qx.get(..48).unwrap_or_default()), "qy": hex::encode(ecc.qy.get(..48).unwrap_or_default())})
    } else if let Some(rsa) = cert.rsa_key() {
        json!({"modulus_bits": rsa.modulus_bits})
    } else {
        json!(null)
    };
    let sigs: Vec<Value> = cert
        .signatures()
        .iter()
        .map(|s| {
            if s.is_empty() {
                json!("empty")
            } else {
                json!({"usage": format!("{:#x}", s.usage), "algo": format!("{:#x}", s.algo)})
            }
        })
        .collect();
    vec![
        ("format".into(), json!("SEV legacy certificate (sev_cert)")),
        ("version".into(), json!(cert.version.get())),
        (
            "api".into(),
            json!(format!("{}.{}", cert.api_major, cert.api_minor)),
        ),
        ("usage".into(), json!(format!("{:?}", cert.usage()))),
        ("algorithm".into(), json!(format!("{:?}", cert.algorithm()))),
        ("public_key".into(), key),
        ("signatures".into(), Value::Array(sigs)),
    ]
}

fn amd_cert_fields(cert: &AmdCert) -> Fields {
    vec![
        ("format".into(), json!("AMD legacy ARK/ASK")),
        ("version".into(), json!(cert.version)),
        ("key_id".into(), hex(&cert.key_id)),
        ("certifying_id".into(), hex(&cert.certifying_id)),
        (
            "key_usage".into(),
            json!(match cert.key_usage {
                0 => "ARK".to_owned(),
                0x13 => "ASK".to_owned(),
                u => format!("{u:#x}"),
            }),
        ),
        ("public_exponent_bits".into(), json!(cert.pub_exp_bits)),
        ("modulus_bits".into(), json!(cert.modulus_bits)),
        ("self_signed".into(), json!(cert.is_self_signed())),
    ]
}

fn fields_to_json(fields: &Fields) -> Value {
    Value::Object(fields.iter().cloned().collect())
}

fn print_fields(fields: &Fields, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&fields_to_json(fields)).unwrap_or_default()
        );
        return;
    }
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (name, value) in fields {
        match value {
            Value::Object(map) => {
                let parts: Vec<String> = map
                    .iter()
                    .map(|(k, v)| format!("{k}={}", plain(v)))
                    .collect();
                outln!("{name:width$}  {}", parts.join(" "));
            }
            other => outln!("{name:width$}  {}", plain(other)),
        }
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", plain(v)))
                .collect();
            format!("{{{}}}", parts.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev_abi::policy::POLICY_FIELDS;

    #[test]
    fn policy_fields_come_from_the_table() {
        let v = policy_value(PolicyKind::Snp, 0x3_0133 | (1 << 19));
        let map = v.as_object().unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let snp: Vec<String> = POLICY_FIELDS
            .iter()
            .filter(|f| f.kind == PolicyKind::Snp)
            .map(|f| f.name.replace('-', "_"))
            .collect();
        assert_eq!(keys[0], "raw");
        assert_eq!(
            keys[1..],
            snp.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(map["raw"], "0xb0133");
        assert_eq!(
            (map["abi_major"].clone(), map["abi_minor"].clone()),
            (json!(1), json!(0x33))
        );
        assert_eq!(map["smt"], true);
        assert_eq!(map["rsvd_mbo"], true);
        assert_eq!(map["debug"], true);
        assert_eq!(map["migrate_ma"], false);
        assert_eq!(map["page_swap_disable"], false);
    }
}
