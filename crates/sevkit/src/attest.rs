//! `sevkit attest`: a CI attester. Launches an OVMF image as an SEV-SNP
//! guest through sevkit's VMM (the launch QEMU performs:
//! [`sev_vmm::plan::MachinePlan`]), on the embedded software AMD-SP or a
//! running `sevkit firmware serve` (`--firmware-socket`), then plays the
//! guest: it asks for an extended attestation report (MSG_REPORT_REQ sealed
//! with VMPCK0 from its secrets page, forwarded by the VMM as
//! SNP_GUEST_REQUEST) and writes the report, the certificates the host
//! supplied with it, and the VMM's launch log.
//!
//! The machine: q35 with QEMU's default 128 MiB of RAM, the image as
//! `-bios`, `--vcpus` vCPUs of the QEMU model `--vcpu-type` (its CPUID page
//! and VMSAs), an `sev-snp-guest` with `--policy`, `--host-data` and the ID
//! block and its authentication (the author key enabled when the
//! authentication carries one).
//!
//! The certificates are the host's certificate table (`certs-path`, the
//! GHCB table an extended guest request returns). With the embedded AMD-SP
//! attest makes it from the chip: the emulated KDS's ARK and ASK and the
//! VCEK for the platform's reported TCB. A daemon's chip is not in this
//! process: `--certs-path FILE` supplies its table (`sevkit firmware export
//! --snp` writes it, before the daemon starts on the state directory). The
//! files written are what the guest received, and attest refuses to write
//! them unless that VCEK signed the report at the TCB it reports.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use sev_abi::cert_table::{CertKind, CertTable};
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::Product;
use sev_abi::report::{AttestationReport, REPORT_LEN};
use sev_abi::snp_launch::{IdAuth, ID_AUTH_LEN, ID_BLOCK_LEN};
use sev_attest::snp::{check_report, Endorsement, ReportExpectations};
use sev_crypto::x509::X509Cert;
use sev_firmware::Firmware;
use sev_measure::{vcpu_type, OvmfImage};
use sev_os::excerpt;
use sev_vmm::config::DEFAULT_MEMORY;
use sev_vmm::exits::certs::provider::CertsProvider;
use sev_vmm::exits::certs::writer::replace_certs_file;
use sev_vmm::launch::{IdBlockInput, SnpSpec};
use sev_vmm::machine::memory::host_area::MAX_VCPUS;
use sev_vmm::plan::{MachinePlan, PlannedGuest};
use zerocopy::IntoBytes;

use crate::amd_sp::{self, Embedded, Sp};
use crate::input::{self, invalid, InputError};
use crate::number::{self, number};
use crate::output::{self, FileMode};

/// SNP processor generations `attest` emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnpProduct {
    /// EPYC 7003.
    Milan,
    /// EPYC 9004 (the firmware's default).
    Genoa,
    /// EPYC 9005.
    Turin,
}

impl From<SnpProduct> for Product {
    fn from(p: SnpProduct) -> Self {
        match p {
            SnpProduct::Milan => Product::Milan,
            SnpProduct::Genoa => Product::Genoa,
            SnpProduct::Turin => Product::Turin,
        }
    }
}

/// Arguments of `sevkit attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The OVMF image (must carry SEV metadata, as QEMU requires for SNP).
    #[arg(long, value_name = "FILE")]
    pub firmware: PathBuf,
    /// Number of vCPUs (one VMSA each).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = number::<u32>())]
    pub vcpus: u32,
    /// The QEMU vCPU model (its CPUID signature goes into the VMSAs' RDX,
    /// its features into the CPUID page).
    #[arg(long, value_name = "T", default_value = "EPYC-v4")]
    pub vcpu_type: String,
    /// Guest policy (decimal, or hex after `0x`).
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "0x30000",
        value_parser = number::snp_policy()
    )]
    pub policy: SnpPolicy,
    /// REPORT_DATA of the report request (up to 64 bytes, hex; zero-padded).
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// HOST_DATA given at LAUNCH_FINISH (up to 32 bytes, hex; zero-padded).
    #[arg(long, value_name = "HEX")]
    pub host_data: Option<String>,
    /// ID block (96 bytes, binary or hex) for LAUNCH_FINISH.
    #[arg(long, value_name = "FILE", requires = "id_auth")]
    pub id_block: Option<PathBuf>,
    /// ID authentication information (4096 bytes) for LAUNCH_FINISH; the
    /// author key is enabled when it carries one.
    #[arg(long, value_name = "FILE", requires = "id_block")]
    pub id_auth: Option<PathBuf>,
    /// The emulated processor generation (with --firmware-socket: the
    /// daemon's, whose C-bit position and CPUID the VMM builds for).
    #[arg(long, value_enum, default_value_t = SnpProduct::Genoa)]
    pub product: SnpProduct,
    /// Use (and persist) the chip identity in this directory, as `sevkit
    /// firmware init` creates it (locked while the command runs, as `sevkit
    /// firmware serve` locks it); without it an ephemeral chip is minted
    /// (RSA-4096: a few seconds).
    #[arg(long, value_name = "DIR", conflicts_with = "firmware_socket")]
    pub state: Option<PathBuf>,
    /// Launch on a running `sevkit firmware serve` at this socket instead
    /// of the embedded software AMD-SP (needs --certs-path: the daemon's
    /// chip is not in this process).
    #[arg(long, value_name = "PATH", requires = "certs_path")]
    pub firmware_socket: Option<PathBuf>,
    /// The host's certificate table for the guest's extended report (GHCB
    /// format, as `sev-snp-guest`'s `certs-path`; `sevkit firmware export
    /// --snp` writes one as certs.bin). By default the embedded AMD-SP's
    /// emulated KDS makes it.
    #[arg(long, value_name = "FILE")]
    pub certs_path: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What the attester produced.
#[derive(Debug)]
pub struct Attestation {
    /// The signed report (1184 bytes).
    pub report: Vec<u8>,
    /// The launch digest (MEASUREMENT).
    pub measurement: SnpLaunchDigest,
    /// Files to write: (name, contents).
    pub files: Vec<(&'static str, Vec<u8>)>,
}

/// A hex argument of at most `len` bytes, zero-padded to `len`.
fn padded<const N: usize>(name: &str, value: Option<&str>) -> Result<[u8; N], InputError> {
    let mut out = [0u8; N];
    if let Some(v) = value {
        let bytes = input::hex_arg(name, v, N, false)?;
        out[..bytes.len()].copy_from_slice(&bytes);
    }
    Ok(out)
}

/// Reads a file of exactly `len` bytes (binary, or hex text).
fn exact_file(name: &str, path: &Path, len: usize) -> Result<Vec<u8>, InputError> {
    let raw = input::read(path, input::MAX_STRUCT_FILE, "an SNP structure")?;
    let bytes = if raw.len() == len {
        raw
    } else {
        input::decode(&raw)?.first().to_vec()
    };
    if bytes.len() != len {
        return Err(invalid(format!(
            "--{name} {}: expected {len} bytes, got {}",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The ID block and its authentication, when given.
fn id_block(args: &AttestArgs) -> Result<Option<IdBlockInput>, InputError> {
    let (Some(b), Some(a)) = (&args.id_block, &args.id_auth) else {
        return match (&args.id_block, &args.id_auth) {
            (None, None) => Ok(None),
            _ => Err(invalid("--id-block and --id-auth go together")),
        };
    };
    let block = exact_file("id-block", b, ID_BLOCK_LEN)?;
    let auth = exact_file("id-auth", a, ID_AUTH_LEN)?;
    let parsed = IdAuth::from_bytes(&auth)
        .map_err(|e| invalid(format!("--id-auth {}: {e}", a.display())))?;
    let author_key = parsed.author_key.as_bytes().iter().any(|&b| b != 0);
    Ok(Some(IdBlockInput {
        block: block
            .try_into()
            .map_err(|_| invalid("--id-block: expected 96 bytes"))?,
        auth: auth
            .into_boxed_slice()
            .try_into()
            .map_err(|_| invalid("--id-auth: expected 4096 bytes"))?,
        author_key,
    }))
}

/// The machine to launch, every argument checked and every file read
/// before any AMD-SP is opened.
fn plan(args: &AttestArgs) -> Result<MachinePlan, InputError> {
    if args.vcpus == 0 || u64::from(args.vcpus) > MAX_VCPUS {
        return Err(invalid(format!(
            "--vcpus {}: expected 1..={MAX_VCPUS}",
            args.vcpus
        )));
    }
    let model = vcpu_type(&args.vcpu_type).ok_or_else(|| {
        invalid(format!(
            "unknown --vcpu-type {:?}; known: {}",
            excerpt(&args.vcpu_type),
            sev_measure::VCPU_TYPES
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let spec = SnpSpec {
        policy: args.policy,
        gosvw: [0; 16],
        id: id_block(args)?,
        vcek_disabled: false,
        host_data: padded("host-data", args.host_data.as_deref())?,
    };
    let image = crate::measure::read_firmware(&args.firmware)?;
    let ovmf = OvmfImage::parse(&image)
        .map_err(|e| invalid(format!("{}: {e}", args.firmware.display())))?;
    if ovmf.metadata().is_none() {
        return Err(invalid(format!(
            "{}: no SEV metadata (OvmfSevMetadataGuid): QEMU refuses to launch it as an SNP \
             guest",
            args.firmware.display()
        )));
    }
    MachinePlan::for_image(
        image,
        DEFAULT_MEMORY,
        args.vcpus,
        model.name,
        args.product.into(),
        PlannedGuest::Snp(spec, CertsProvider::new(args.certs_path.clone())),
    )
    .map_err(|e| invalid(format!("{}: {e}", args.firmware.display())))
}

/// A private scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The embedded AMD-SP's certificate table (what `sevkit firmware export
/// --snp` writes as certs.bin), in a private file for the VMM's
/// `certs-path`.
fn embedded_certs(fw: &Firmware) -> Result<(Scratch, PathBuf), InputError> {
    let table = crate::firmware::snp_host_certs(fw)?.table;
    let dir = Scratch(output::scratch_dir("sevkit-attest")?);
    let path = dir.0.join("certs.bin");
    replace_certs_file(&path, &table).map_err(|e| invalid(format!("certificate table: {e}")))?;
    Ok((dir, path))
}

/// PEM of a DER certificate, as AMD's KDS and `snpguest` write them.
fn pem(der: &[u8]) -> Vec<u8> {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config).into_bytes()
}

/// `ark.pem`, `ask.pem` and `vcek.pem` from the certificate table the guest
/// received; the VCEK must have signed `report` at the TCB it reports.
fn certificate_files(
    table: &[u8],
    report: &[u8],
    product: Product,
) -> Result<Vec<(&'static str, Vec<u8>)>, InputError> {
    let table = CertTable::from_bytes(table)
        .map_err(|e| invalid(format!("the host's certificate table: {e}")))?;
    let der = |kind: CertKind| {
        table.get_kind(kind).ok_or_else(|| {
            invalid(format!(
                "the host's certificate table has no {kind:?} certificate"
            ))
        })
    };
    let vcek = X509Cert::from_der(der(CertKind::Vcek)?)
        .map_err(|e| invalid(format!("the host's VCEK: {e}")))?;
    let verdict = check_report(
        report,
        &Endorsement::new(vcek, Some(product)),
        &ReportExpectations::default(),
    )
    .map_err(|e| invalid(format!("the report: {e}")))?;
    if !verdict.passed() {
        let failed: Vec<String> = verdict
            .checks
            .iter()
            .filter_map(|c| match &c.outcome {
                sev_attest::Outcome::Fail(why) => Some(format!("{}: {why}", c.name)),
                _ => None,
            })
            .collect();
        return Err(invalid(format!(
            "the host's certificates do not endorse the report ({}): they are not this chip's \
             VCEK at its reported TCB; write them again from the state the AMD-SP runs on \
             (sevkit firmware export --snp) and pass them with --certs-path",
            failed.join("; ")
        )));
    }
    Ok(vec![
        ("ark.pem", pem(der(CertKind::Ark)?)),
        ("ask.pem", pem(der(CertKind::Ask)?)),
        ("vcek.pem", pem(der(CertKind::Vcek)?)),
    ])
}

/// Launches the guest and attests it.
///
/// # Errors
/// Unusable input (no SEV metadata, bad sizes), an unreachable daemon,
/// certificates that do not endorse the report, or a firmware command
/// failed.
pub fn attest(args: &AttestArgs) -> Result<Attestation, InputError> {
    let plan = plan(args)?;
    let product = Product::from(args.product);
    let report_data = padded::<64>("report-data", args.report_data.as_deref())?;
    let memory = plan
        .memory()
        .map_err(|e| invalid(format!("guest memory: {e}")))?;
    // The lock on --state is held until the report is written.
    let (_lock, _scratch, certs, sp) = if let Some(socket) = &args.firmware_socket {
        (None, None, None, Sp::Socket(socket.clone()))
    } else {
        let embedded = Embedded::open(args.state.as_deref(), product)?;
        // Without --certs-path, the chip's own certificates.
        let (scratch, certs) = if args.certs_path.is_some() {
            (None, None)
        } else {
            let (dir, path) = embedded_certs(&embedded.firmware)?;
            (Some(dir), Some(CertsProvider::new(Some(path))))
        };
        (
            embedded.lock,
            scratch,
            certs,
            Sp::Embedded(embedded.firmware),
        )
    };
    let launched = |e: &dyn std::fmt::Display| invalid(format!("{}: {e}", args.firmware.display()));
    let mut vm = plan
        .launch(amd_sp::host(sp, memory)?)
        .map_err(|e| launched(&e))?;
    if let Some(certs) = certs {
        vm = vm.with_certs(certs);
    }
    let got = vm
        .guest_report(report_data, None)
        .map_err(|e| invalid(format!("the guest's report request: {e}")))?;
    let report = got.report;
    if report.len() != REPORT_LEN {
        return Err(invalid(format!(
            "report is {} bytes, expected {REPORT_LEN}",
            report.len()
        )));
    }
    let measurement = AttestationReport::from_bytes(&report)
        .map_err(|e| invalid(format!("the guest's report: {e}")))?
        .measurement;
    let log = vm.launch_log().map_err(|e| launched(&e))?;
    let mut log_json = serde_json::to_string_pretty(&log)
        .map_err(|e| invalid(format!("cannot encode the launch log: {e}")))?;
    log_json.push('\n');

    let mut files = vec![("report.bin", report.clone())];
    files.extend(certificate_files(&got.certs, &report, product)?);
    files.push(("certs.bin", got.certs));
    files.push(("launch-log.json", log_json.into_bytes()));
    Ok(Attestation {
        report,
        measurement,
        files,
    })
}

/// Runs `sevkit attest`.
///
/// # Errors
/// See [`attest`]; also an unwritable output directory.
pub fn run(args: &AttestArgs) -> Result<(), InputError> {
    let a = attest(args)?;
    output::create_dir(&args.out)?;
    let files: Vec<_> = a
        .files
        .iter()
        .map(|(name, bytes)| (args.out.join(name), bytes.as_slice(), FileMode::Public))
        .collect();
    // The report, certificates and log belong together: all or none.
    output::write_all(&files)?;
    outln!("measurement: {}", a.measurement);
    outln!("report:      {} bytes, signed by the VCEK", a.report.len());
    for (path, _, _) in &files {
        outln!("wrote        {}", path.display());
    }
    Ok(())
}
