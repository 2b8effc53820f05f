//! `sevkit measure`: predict the launch digest of an SEV, SEV-ES or SEV-SNP
//! guest (sev-snp-measure's options and output), and `sevkit measure
//! sev-launch`: the legacy LAUNCH_MEASURE blob (sevctl `measurement build`).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use clap::{Args, Subcommand, ValueEnum};
use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::policy::GuestPolicy;
use sev_abi::session::LaunchMeasurement;
use sev_crypto::session::Tik;
use sev_measure::hashes::MAX_KERNEL_FILE_LEN;
use sev_measure::ovmf::MAX_FIRMWARE_LEN;
use sev_measure::sev::LaunchMeasureParams;
use sev_measure::{
    cpu_signature, launch_measure_blob, measure, vcpu_type, FpuState, KernelHashes, MeasureParams,
    Measurement, Mode, SvsmInput, VmmType, VCPU_TYPES,
};

use sev_os::excerpt;

use crate::input::{self, invalid, InputError};
use crate::number::{self, number};
use crate::output::{self, FileMode};
use crate::Status;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `sevkit measure ...`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct MeasureArgs {
    /// Legacy SEV: the LAUNCH_MEASURE blob instead of the digest.
    #[command(subcommand)]
    pub command: Option<MeasureCommand>,
    /// The guest.
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Subcommands of `sevkit measure`.
#[derive(Debug, Subcommand)]
pub enum MeasureCommand {
    /// Legacy SEV / SEV-ES: the LAUNCH_MEASURE blob for a launch digest
    /// (like `sevctl measurement build`).
    ///
    /// The blob is `MEASURE || MNONCE`, as QEMU's query-sev-launch-measure
    /// returns it; computing it needs the TIK. Prints the blob in base64;
    /// with --launch-measure-blob, checks it instead: exit 0 when it
    /// matches, 1 when it does not, 2 on unusable input.
    SevLaunch(SevLaunchArgs),
}

/// The guest to measure (sev-snp-measure's options).
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Guest mode: sev, seves (sev-es), snp (sev-snp), snp:ovmf-hash, snp:svsm.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// OVMF firmware image (the file QEMU's -bios / pflash unit 0 gets).
    #[arg(long, visible_alias = "firmware", value_name = "PATH")]
    pub ovmf: Option<PathBuf>,
    /// Number of guest vCPUs (required except for sev and snp:ovmf-hash).
    #[arg(long, visible_alias = "num-cpus", value_name = "N", value_parser = number::<u32>())]
    pub vcpus: Option<u32>,
    /// QEMU -cpu model of the guest (EPYC, EPYC-v1..v5, EPYC-IBPB,
    /// EPYC-Rome[-v1..v5], EPYC-Milan[-v1..v3], EPYC-Genoa[-v1,-v2],
    /// EPYC-Turin[-v1]).
    #[arg(long, value_name = "CPUTYPE")]
    pub vcpu_type: Option<String>,
    /// Guest vCPU signature (CPUID 1 EAX), decimal or 0x-hex; beats --vcpu-type.
    #[arg(long, value_name = "VALUE", value_parser = number::<u32>())]
    pub vcpu_sig: Option<u32>,
    /// Guest vCPU family (with --vcpu-model and --vcpu-stepping); beats
    /// --vcpu-sig and --vcpu-type.
    #[arg(long, value_name = "FAMILY", value_parser = number::<u32>())]
    pub vcpu_family: Option<u32>,
    /// Guest vCPU model.
    #[arg(long, value_name = "MODEL", value_parser = number::<u32>())]
    pub vcpu_model: Option<u32>,
    /// Guest vCPU stepping.
    #[arg(long, value_name = "STEPPING", value_parser = number::<u32>())]
    pub vcpu_stepping: Option<u32>,
    /// The VMM that builds the VMSAs: QEMU (default), ec2, gce.
    #[arg(long, value_name = "VMMTYPE")]
    pub vmm_type: Option<String>,
    /// Kernel for measured direct boot (needs an OVMF with a hashes table).
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Initrd (with --kernel).
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line (with --kernel).
    #[arg(
        long,
        visible_alias = "cmdline",
        value_name = "CMDLINE",
        allow_hyphen_values = true
    )]
    pub append: Option<String>,
    /// SNP guest features (VMSA SEV_FEATURES), decimal or 0x-hex; default 0x1.
    #[arg(long, value_name = "VALUE", value_parser = number::<u64>())]
    pub guest_features: Option<u64>,
    /// Precomputed SNP digest of the OVMF pages (hex, 48 bytes; see mode
    /// snp:ovmf-hash). Mode snp only.
    #[arg(long, value_name = "HASH")]
    pub snp_ovmf_hash: Option<String>,
    /// SVSM binary (mode snp:svsm).
    #[arg(long, value_name = "PATH")]
    pub svsm: Option<PathBuf>,
    /// Size of the OVMF_VARS file in bytes (mode snp:svsm).
    #[arg(
        long,
        value_name = "SIZE",
        conflicts_with = "vars_file",
        value_parser = number::<u64>()
    )]
    pub vars_size: Option<u64>,
    /// OVMF_VARS file, for its size (mode snp:svsm).
    #[arg(long, value_name = "PATH")]
    pub vars_file: Option<PathBuf>,
    /// The host predates KVM_SEV_INIT2 (Linux < 6.10 or QEMU < 9.1): VMSAs
    /// carry MXCSR 0 and FCW 0 instead of 0x1f80 and 0x37f (QEMU only).
    #[arg(long)]
    pub legacy_fpu: bool,
    /// Refuse an SNP firmware without SEV metadata (QEMU cannot launch it)
    /// instead of printing sev-snp-measure's digest with a warning.
    #[arg(long)]
    pub strict: bool,
}

/// How `sevkit measure` prints.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Digest output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Hex)]
    pub output_format: OutputFormat,
    /// Write each measured VMSA page to DIR/vmsaN.bin, N the vCPU index (seves, snp, snp:svsm).
    #[arg(long, value_name = "DIR")]
    pub dump_vmsa: Option<PathBuf>,
    /// Print the launch log (every measured page or blob, with the running
    /// digest) to standard error, or to --log-file.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log: Option<LogFormat>,
    /// Write the launch log to this file instead of standard error.
    #[arg(long, value_name = "PATH", requires = "log")]
    pub log_file: Option<PathBuf>,
    /// Prefix the digest with "Calculated SEV_SNP guest measurement: " (the mode's name), as sev-snp-measure -v does.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Digest output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// Launch log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per step, full hashes.
    Table,
    /// JSON.
    Json,
}

/// Arguments of `sevkit measure sev-launch`.
#[derive(Debug, Args)]
pub struct SevLaunchArgs {
    /// The TIK: a 16-byte file, or base64.
    #[arg(long, value_name = "FILE|B64")]
    pub tik: String,
    /// The firmware's nonce (MNONCE, 16 bytes): base64 or a file. Taken from
    /// --launch-measure-blob when omitted.
    #[arg(long, value_name = "B64|FILE")]
    pub nonce: Option<String>,
    /// Firmware API major version (decimal or 0x-hex).
    #[arg(long, value_name = "N", value_parser = number::<u8>())]
    pub api_major: u8,
    /// Firmware API minor version.
    #[arg(long, value_name = "N", value_parser = number::<u8>())]
    pub api_minor: u8,
    /// Firmware build id.
    #[arg(long, visible_alias = "build-id", value_name = "N", value_parser = number::<u8>())]
    pub build: u8,
    /// Guest policy (decimal or 0x-hex, e.g. 0x03).
    #[arg(long, value_name = "POLICY", value_parser = number::guest_policy())]
    pub policy: GuestPolicy,
    /// The launch digest (32 bytes, base64), instead of the image options.
    #[arg(long, value_name = "B64")]
    pub launch_digest: Option<String>,
    /// The blob to check (base64 or a file, 48 bytes, e.g. from QEMU's
    /// query-sev-launch-measure). Exit 0 when it matches, 1 when not.
    #[arg(long, value_name = "B64|FILE")]
    pub launch_measure_blob: Option<String>,
    /// The guest, when no --launch-digest is given (mode sev or seves;
    /// default from the policy's ES bit).
    #[command(flatten)]
    pub image: ImageArgs,
    /// Print the launch log of the image to standard error, or to --log-file.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log: Option<LogFormat>,
    /// Write the launch log to this file instead of standard error.
    #[arg(long, value_name = "PATH", requires = "log")]
    pub log_file: Option<PathBuf>,
}

/// Runs `sevkit measure`.
pub fn run(args: &MeasureArgs) -> Result<Status, InputError> {
    match &args.command {
        Some(MeasureCommand::SevLaunch(a)) => run_sev_launch(a),
        None => run_measure(&args.image, &args.output).map(|()| Status::Ok),
    }
}

/// The kernel hashes of `--kernel`, `--initrd` and `--append`, when a
/// kernel is given.
fn kernel_hashes(a: &ImageArgs) -> Result<Option<KernelHashes>, InputError> {
    let Some(path) = &a.kernel else {
        return Ok(None);
    };
    let kernel = input::read(path, MAX_KERNEL_FILE_LEN, "a kernel")?;
    let initrd = a
        .initrd
        .as_deref()
        .map(|p| input::read(p, MAX_KERNEL_FILE_LEN, "an initrd"))
        .transpose()?;
    Ok(Some(KernelHashes::compute(
        &kernel,
        initrd.as_deref(),
        a.append.as_deref().map(str::as_bytes),
    )))
}

/// Reads a firmware image (`--ovmf`, `attest --firmware`), at most
/// [`MAX_FIRMWARE_LEN`] bytes.
pub(crate) fn read_firmware(path: &Path) -> Result<Vec<u8>, InputError> {
    input::read(path, MAX_FIRMWARE_LEN, "a firmware image (OVMF)")
}

/// Files read and values parsed for one measurement.
struct Prepared {
    mode: Mode,
    ovmf: Vec<u8>,
    svsm: Option<(Vec<u8>, u64)>,
    seed: Option<Vec<u8>>,
    kernel: Option<KernelHashes>,
    vcpus: u32,
    vcpu_sig: u32,
    vmm: VmmType,
    guest_features: u64,
    fpu: FpuState,
    strict: bool,
}

impl Prepared {
    fn params(&self) -> MeasureParams<'_> {
        let mut p = MeasureParams::new(self.mode, &self.ovmf);
        p.vcpus = self.vcpus;
        p.vcpu_sig = self.vcpu_sig;
        p.vmm = self.vmm;
        p.guest_features = self.guest_features;
        p.kernel = self.kernel;
        p.snp_ovmf_hash = self.seed.as_deref();
        p.svsm = self.svsm.as_ref().map(|(image, vars_size)| SvsmInput {
            image,
            vars_size: *vars_size,
        });
        p.fpu = self.fpu;
        p.strict = self.strict;
        p
    }
}

fn parse_mode(name: Option<&str>) -> Result<Mode, InputError> {
    let name = name.ok_or_else(|| {
        invalid("missing --mode (one of sev, seves, snp, snp:ovmf-hash, snp:svsm)")
    })?;
    Mode::from_name(name).ok_or_else(|| {
        invalid(format!(
            "unknown --mode {:?}: use sev, seves (sev-es), snp (sev-snp), snp:ovmf-hash or snp:svsm",
            excerpt(name)
        ))
    })
}

fn vcpu_signature(a: &ImageArgs, mode: Mode, vmm: VmmType) -> Result<u32, InputError> {
    if mode == Mode::Sev {
        return Ok(0);
    }
    if let Some(family) = a.vcpu_family {
        let (Some(model), Some(stepping)) = (a.vcpu_model, a.vcpu_stepping) else {
            return Err(invalid(
                "--vcpu-family needs --vcpu-model and --vcpu-stepping",
            ));
        };
        return Ok(cpu_signature(family, model, stepping));
    }
    if a.vcpu_model.is_some() || a.vcpu_stepping.is_some() {
        return Err(invalid(
            "--vcpu-model and --vcpu-stepping need --vcpu-family",
        ));
    }
    if let Some(sig) = a.vcpu_sig {
        return Ok(sig);
    }
    if let Some(name) = &a.vcpu_type {
        let t = vcpu_type(name).ok_or_else(|| {
            let names: Vec<&str> = VCPU_TYPES.iter().map(|t| t.name).collect();
            invalid(format!(
                "unknown --vcpu-type {:?}; known: {}",
                excerpt(name),
                names.join(", ")
            ))
        })?;
        return Ok(t.signature());
    }
    if vmm == VmmType::Qemu {
        return Err(invalid(format!(
            "missing --vcpu-type or --vcpu-sig or --vcpu-family in guest mode '{}': QEMU puts \
             the guest CPU model's signature in every VMSA",
            mode.name()
        )));
    }
    // EC2 and GCE put a fixed value in RDX.
    Ok(0)
}

/// Parses options and reads files, checking them in sev-snp-measure's order.
fn prepare(a: &ImageArgs, mode: Mode) -> Result<Prepared, InputError> {
    let ovmf_path = a
        .ovmf
        .as_ref()
        .ok_or_else(|| invalid("missing --ovmf PATH (the firmware image)"))?;
    if a.initrd.is_some() && a.kernel.is_none() {
        return Err(invalid("--kernel required when using --initrd"));
    }
    if a.append.as_deref().is_some_and(|s| !s.is_empty()) && a.kernel.is_none() {
        return Err(invalid("--kernel required when using --append"));
    }
    let vcpus = match a.vcpus {
        Some(n) => n,
        None if mode == Mode::Sev => 1,
        None => {
            return Err(invalid(format!(
                "missing --vcpus N in guest mode '{}'",
                mode.name()
            )))
        }
    };
    let vmm = match &a.vmm_type {
        None => VmmType::Qemu,
        Some(name) => VmmType::from_name(name).ok_or_else(|| {
            invalid(format!(
                "unknown VMM type '{}' (use QEMU, ec2 or gce)",
                excerpt(name)
            ))
        })?,
    };
    let vcpu_sig = vcpu_signature(a, mode, vmm)?;
    let vars_size = if mode == Mode::SnpSvsm {
        let size = match (&a.vars_file, a.vars_size) {
            (Some(path), _) => std::fs::metadata(path)
                .map_err(|source| InputError::Read {
                    path: path.display().to_string(),
                    source,
                })?
                .len(),
            (None, Some(size)) => size,
            (None, None) => {
                return Err(invalid("snp:svsm mode requires --vars-size or --vars-file"))
            }
        };
        if a.svsm.is_none() {
            return Err(invalid("snp:svsm mode requires --svsm PATH"));
        }
        Some(size)
    } else {
        None
    };
    let guest_features = a.guest_features.unwrap_or(0x1);
    if a.guest_features.is_some() && !matches!(mode, Mode::Snp) {
        eprintln!(
            "sevkit: warning: --guest-features is ignored in mode {}: only SNP VMSAs carry \
             guest features (SEV-ES VMSAs have 0, SVSM VMSAs 0x1)",
            mode.name()
        );
    }
    let seed = a
        .snp_ovmf_hash
        .as_deref()
        .map(|h| input::hex_arg("snp-ovmf-hash", h, 48, true))
        .transpose()?;
    let ovmf = read_firmware(ovmf_path)?;
    let svsm = match (vars_size, &a.svsm) {
        (Some(size), Some(path)) => {
            Some((input::read(path, MAX_FIRMWARE_LEN, "an SVSM binary")?, size))
        }
        _ => None,
    };
    let kernel = kernel_hashes(a)?;
    Ok(Prepared {
        mode,
        ovmf,
        svsm,
        seed,
        kernel,
        vcpus,
        vcpu_sig,
        vmm,
        guest_features,
        fpu: if a.legacy_fpu {
            FpuState::Legacy
        } else {
            FpuState::Init2
        },
        strict: a.strict,
    })
}

fn compute(prepared: &Prepared) -> Result<Measurement, InputError> {
    measure(&prepared.params()).map_err(|e| invalid(e.to_string()))
}

fn write_log(
    m: &Measurement,
    format: Option<LogFormat>,
    file: Option<&Path>,
) -> Result<(), InputError> {
    let Some(format) = format else {
        return Ok(());
    };
    let text = match format {
        LogFormat::Table => m.log.to_string(),
        LogFormat::Json => {
            let mut s = serde_json::to_string_pretty(&m.log)
                .map_err(|e| invalid(format!("cannot encode the launch log: {e}")))?;
            s.push('\n');
            s
        }
    };
    if let Some(path) = file {
        output::write(path, text.as_bytes(), FileMode::Public)
    } else {
        let _ = std::io::stderr().write_all(text.as_bytes());
        Ok(())
    }
}

fn dump_vmsas(m: &Measurement, dir: &Path) -> Result<(), InputError> {
    output::create_dir(dir)?;
    let files: Vec<_> = (0..m.vmsa_count())
        .filter_map(|i| m.vmsa_page(i).map(|page| (i, page)))
        .map(|(i, page)| (dir.join(format!("vmsa{i}.bin")), page, FileMode::Public))
        .collect();
    output::write_all(&files)
}

fn run_measure(a: &ImageArgs, out: &OutputArgs) -> Result<(), InputError> {
    let mode = parse_mode(a.mode.as_deref())?;
    if mode == Mode::SnpOvmfHash {
        // As sev-snp-measure: only --ovmf counts, and the digest is printed
        // in hex whatever --output-format says.
        let path = a
            .ovmf
            .as_ref()
            .ok_or_else(|| invalid("missing --ovmf PATH (the firmware image)"))?;
        let ovmf = read_firmware(path)?;
        let m = measure(&MeasureParams::new(mode, &ovmf)).map_err(|e| invalid(e.to_string()))?;
        write_log(&m, out.log, out.log_file.as_deref())?;
        outln!("{}", m.digest);
        return Ok(());
    }
    let prepared = prepare(a, mode)?;
    if out.dump_vmsa.is_some() && !mode.has_vmsas() {
        return Err(invalid(
            "--dump-vmsa is not available in the selected mode (seves, snp and snp:svsm only)",
        ));
    }
    let m = compute(&prepared)?;
    for warning in &m.warnings {
        eprintln!("sevkit: warning: {warning}");
    }
    if let Some(dir) = &out.dump_vmsa {
        dump_vmsas(&m, dir)?;
    }
    write_log(&m, out.log, out.log_file.as_deref())?;
    let text = match out.output_format {
        OutputFormat::Hex => m.digest.to_string(),
        OutputFormat::Base64 => B64.encode(m.digest),
    };
    if out.verbose {
        outln!(
            "Calculated {} guest measurement: {text}",
            mode.verbose_name()
        );
    } else {
        outln!("{text}");
    }
    Ok(())
}

fn exact<const N: usize>(name: &str, bytes: &[u8]) -> Result<[u8; N], InputError> {
    bytes
        .try_into()
        .map_err(|_| invalid(format!("--{name}: expected {N} bytes, got {}", bytes.len())))
}

fn image_given(a: &ImageArgs) -> bool {
    a.ovmf.is_some()
        || a.mode.is_some()
        || a.kernel.is_some()
        || a.vcpus.is_some()
        || a.vcpu_type.is_some()
        || a.svsm.is_some()
}

/// The launch digest of `sev-launch`: given, or predicted from the image.
fn sev_launch_digest(a: &SevLaunchArgs) -> Result<SevLaunchDigest, InputError> {
    if let Some(d) = &a.launch_digest {
        if image_given(&a.image) {
            return Err(invalid(
                "--launch-digest and the image options (--ovmf, --mode, ...) exclude each other",
            ));
        }
        let bytes = B64
            .decode(d.trim())
            .map_err(|e| invalid(format!("--launch-digest: not base64 ({e})")))?;
        return SevLaunchDigest::from_slice(&bytes)
            .map_err(|e| invalid(format!("--launch-digest: {e}")));
    }
    if a.image.ovmf.is_none() {
        return Err(invalid(
            "one of --launch-digest or --ovmf (with the image options) is needed",
        ));
    }
    let mode = match a.image.mode.as_deref() {
        Some(name) => parse_mode(Some(name))?,
        None if a.policy.es() => Mode::SevEs,
        None => Mode::Sev,
    };
    if !matches!(mode, Mode::Sev | Mode::SevEs) {
        return Err(invalid(format!(
            "sev-launch measures legacy guests: mode must be sev or seves, not {}",
            mode.name()
        )));
    }
    let prepared = prepare(&a.image, mode)?;
    let m = compute(&prepared)?;
    write_log(&m, a.log, a.log_file.as_deref())?;
    m.digest
        .sev()
        .copied()
        .ok_or_else(|| invalid(format!("mode {} gives no SEV launch digest", mode.name())))
}

fn run_sev_launch(a: &SevLaunchArgs) -> Result<Status, InputError> {
    let tik_bytes = input::path_or_base64("tik", &a.tik, "a TIK")?;
    let tik = Tik::new(exact::<16>("tik", &tik_bytes).map_err(|_| {
        invalid(format!(
            "--tik: the TIK is 16 bytes, got {}{}",
            tik_bytes.len(),
            if tik_bytes.len() == 32 {
                " (a libvirt TK file holds TEK || TIK: pass its last 16 bytes)"
            } else {
                ""
            }
        ))
    })?);
    let blob = a
        .launch_measure_blob
        .as_deref()
        .map(|v| input::path_or_base64("launch-measure-blob", v, "a LAUNCH_MEASURE blob"))
        .transpose()?
        .map(|b| {
            LaunchMeasurement::from_bytes(&b)
                .map_err(|e| invalid(format!("--launch-measure-blob: {e}")))
        })
        .transpose()?;
    let nonce: [u8; 16] = match (&a.nonce, &blob) {
        (Some(n), _) => exact::<16>("nonce", &input::path_or_base64("nonce", n, "a nonce")?)?,
        (None, Some(b)) => b.mnonce,
        (None, None) => {
            return Err(invalid(
                "one of --nonce or --launch-measure-blob is needed (the firmware's MNONCE)",
            ))
        }
    };
    let digest = sev_launch_digest(a)?;
    let params = LaunchMeasureParams {
        api_major: a.api_major,
        api_minor: a.api_minor,
        build: a.build,
        policy: a.policy,
        nonce,
    };
    let computed = launch_measure_blob(&tik, &params, &digest);
    let Some(expected) = blob else {
        outln!("{}", B64.encode(computed));
        return Ok(Status::Ok);
    };
    if sev_crypto::packet::ct_eq(&computed.to_bytes(), &expected.to_bytes()) {
        outln!(
            "OK: the launch measurement matches (launch digest {})",
            B64.encode(digest)
        );
        Ok(Status::Ok)
    } else {
        let why = if computed.mnonce == expected.mnonce {
            "the MAC differs: the launch digest, policy, API version, build or TIK is not what \
             the firmware used"
        } else {
            "the nonce given with --nonce is not the blob's nonce"
        };
        outln!(
            "FAILED: the launch measurement does not match: {why}\n  blob:     {}\n  computed: {}\n  launch digest: {}",
            B64.encode(expected),
            B64.encode(computed),
            B64.encode(digest)
        );
        Ok(Status::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        // sevkit's one number syntax (crate::number): 0x hex or decimal.
        assert_eq!(number::parse("0x21"), Ok(0x21));
        assert_eq!(number::parse("33"), Ok(33));
        assert!(number::parse("0b101").is_err());
        assert!(number::parse("zz").is_err());
        assert_eq!(number::parse_in("0x28", &(0..=255)), Ok(40));
        assert!(number::parse_in("256", &(0..=255)).is_err());
        assert_eq!(number::parse("0xA00F11"), Ok(0x00A0_0F11));
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(Some("sev-es")).unwrap(), Mode::SevEs);
        assert_eq!(parse_mode(Some("SNP:SVSM")).unwrap(), Mode::SnpSvsm);
        assert!(parse_mode(Some("tdx")).is_err());
        assert!(parse_mode(None).is_err());
    }
}
