//! `sevkit attest`: a CI attester. Launches an OVMF image as an SEV-SNP guest
//! on the in-process software AMD-SP, laid out as QEMU lays it out, then acts
//! as the guest: asks the firmware for an attestation report through
//! SNP_GUEST_REQUEST and writes the report, the emulated KDS certificates,
//! the GHCB certificate table and the firmware's launch log.
//!
//! Layout (as QEMU): the OVMF image as NORMAL pages ending at 4 GiB; then the
//! SEV metadata sections in file order (SECRETS, CPUID, the others ZERO);
//! then one VMSA per vCPU (sev-measure's, for the vCPU type) at GPA
//! `0xFFFFFFFFF000`; host data and the ID block/auth at LAUNCH_FINISH. Every
//! guest page is identity-mapped (SPA = GPA); the firmware's own pages (guest
//! context, VMSAs, message pages) live above 4 GiB.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use sev_abi::commands::{
    SnpActivateBuffer, SnpCommand, SnpGuestRequestBuffer, SnpLaunchFinishBuffer,
    SnpLaunchStartBuffer, SnpLaunchUpdateBuffer, SnpPaddrBuffer, SNP_LAUNCH_FINISH_AUTH_KEY_EN,
    SNP_LAUNCH_FINISH_ID_BLOCK_EN,
};
use sev_abi::guest_msg::KeySelect;
use sev_abi::product::Product;
use sev_abi::report::REPORT_LEN;
use sev_abi::secrets_page::SecretsPage;
use sev_abi::snp_launch::{IdAuth, PageType, ID_AUTH_LEN, ID_BLOCK_LEN};
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::cpuid::{CpuidEntry, CpuidTable, CPUID_TABLE_LEN};
use sev_firmware::snp::kds::EmulatedKds;
use sev_firmware::snp::keys::ChipEndorsementKeys;
use sev_firmware::snp::rmp::{PageSize, RmpUpdate};
use sev_firmware::{Firmware, FirmwareConfig, SystemMemory, VecMemory};
use sev_firmware_server::StateLock;
use sev_guest::GuestChannel;
use sev_measure::snp::VMSA_GPA;
use sev_measure::{measure, vcpu_type, MeasureParams, Mode, OvmfImage, SectionKind};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use sev_os::excerpt;

use crate::input::{self, invalid, InputError};
use crate::output::{self, FileMode};

/// The host address space: guest memory below 4 GiB, firmware pages above.
const MEM_SIZE: u64 = 1 << 33;
/// The guest context page.
const GCTX: u64 = 0x1_0000_0000;
/// The first VMSA's system page (one page per vCPU from here).
const VMSA_SPA: u64 = 0x1_0010_0000;
/// The guest's request message page (shared).
const REQ_SPA: u64 = 0x1_4000_0000;
/// The firmware-owned response page.
const RSP_SPA: u64 = REQ_SPA + 0x1000;
/// Where the host puts the ID block and ID auth for LAUNCH_FINISH.
const ID_BLOCK_SPA: u64 = REQ_SPA + 0x2000;
const ID_AUTH_SPA: u64 = REQ_SPA + 0x3000;
/// The guest's ASID.
const ASID: u32 = 1;
/// Most vCPUs accepted (QEMU's limit is far lower for SNP guests in practice).
const MAX_VCPUS: u32 = 1024;

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
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub vcpus: u32,
    /// The QEMU vCPU model (its CPUID signature goes into the VMSAs' RDX).
    #[arg(long, value_name = "T", default_value = "EPYC-v4")]
    pub vcpu_type: String,
    /// Guest policy (hex, optional 0x).
    #[arg(long, value_name = "HEX", default_value = "0x30000")]
    pub policy: String,
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
    /// The emulated processor generation.
    #[arg(long, value_enum, default_value_t = SnpProduct::Genoa)]
    pub product: SnpProduct,
    /// Use (and persist) the chip identity in this directory, as `sevkit
    /// firmware init` creates it (locked while the command runs, as `sevkit
    /// firmware serve` locks it); without it an ephemeral chip is minted
    /// (RSA-4096: a few seconds).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
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
    pub measurement: [u8; 48],
    /// Files to write: (name, contents).
    pub files: Vec<(&'static str, Vec<u8>)>,
}

fn fw_err(what: &str, status: FirmwareStatus) -> InputError {
    invalid(format!("software AMD-SP: {what} failed: {status:?}"))
}

fn check(what: &str, status: FirmwareStatus) -> Result<(), InputError> {
    if status == FirmwareStatus::SUCCESS {
        Ok(())
    } else {
        Err(fw_err(what, status))
    }
}

fn mem_err(e: &impl std::fmt::Display) -> InputError {
    invalid(format!("guest memory: {e}"))
}

/// Sends one SNP command whose buffer is `buf`.
fn snp<T>(fw: &mut Firmware, cmd: SnpCommand, buf: &mut T, mem: &mut VecMemory) -> FirmwareStatus
where
    T: FromBytes + IntoBytes + Immutable + KnownLayout,
{
    fw.execute(cmd.id(), buf.as_mut_bytes(), mem)
}

/// RMPUPDATEs `spa` to PRE_GUEST for the guest at `gpa`.
fn pre_guest(fw: &mut Firmware, spa: u64, gpa: u64) -> Result<(), InputError> {
    fw.rmp_update(
        spa,
        &RmpUpdate {
            gpa,
            assigned: true,
            page_size: PageSize::Size4K,
            immutable: true,
            asid: ASID,
        },
    )
    .map_err(|e| invalid(format!("RMPUPDATE of {spa:#x}: {e:?}")))
}

/// RMPUPDATEs `spa` to a firmware page.
fn firmware_page(fw: &mut Firmware, spa: u64) -> Result<(), InputError> {
    fw.rmp_update(
        spa,
        &RmpUpdate {
            assigned: true,
            immutable: true,
            ..RmpUpdate::default()
        },
    )
    .map_err(|e| invalid(format!("RMPUPDATE of {spa:#x}: {e:?}")))
}

/// SNP_LAUNCH_UPDATE of one 4 KiB page.
fn update(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    spa: u64,
    page_type: PageType,
) -> Result<(), InputError> {
    let mut b = SnpLaunchUpdateBuffer::new_zeroed();
    b.gctx_paddr = U64::new(GCTX);
    b.page_paddr = U64::new(spa);
    b.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        false,
        page_type.as_u8(),
        false,
    ));
    let status = snp(fw, SnpCommand::SnpLaunchUpdate, &mut b, mem);
    check(&format!("SNP_LAUNCH_UPDATE at {spa:#x}"), status)
}

/// The CPUID page the host supplies: the SEV leaf with this platform's
/// C-bit (the firmware checks it, as on hardware).
fn cpuid_page(c_bit: u8) -> Vec<u8> {
    let mut t = CpuidTable::new_zeroed();
    t.count = U32::new(1);
    t.entries[0] = CpuidEntry {
        eax_in: U32::new(0x8000_001F),
        eax: U32::new(0x1_FFFF),
        ebx: U32::new(0x4000 | u32::from(c_bit)),
        ..CpuidEntry::default()
    };
    let mut page = vec![0u8; 4096];
    page[..CPUID_TABLE_LEN].copy_from_slice(t.as_bytes());
    page
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

fn parse_policy(value: &str) -> Result<u64, InputError> {
    let v = value.trim();
    let v = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .unwrap_or(v);
    u64::from_str_radix(v, 16)
        .map_err(|e| invalid(format!("--policy {:?}: not hex ({e})", excerpt(value))))
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

/// Everything a launch needs, parsed and checked.
struct LaunchInput {
    image: Vec<u8>,
    vcpus: u32,
    vcpu_sig: u32,
    policy: u64,
    report_data: [u8; 64],
    host_data: [u8; 32],
    id: Option<(Vec<u8>, Vec<u8>, bool)>,
    product: Product,
    state: Option<PathBuf>,
}

fn parse_args(args: &AttestArgs) -> Result<LaunchInput, InputError> {
    if args.vcpus == 0 || args.vcpus > MAX_VCPUS {
        return Err(invalid(format!(
            "--vcpus {}: expected 1..={MAX_VCPUS}",
            args.vcpus
        )));
    }
    let t = vcpu_type(&args.vcpu_type).ok_or_else(|| {
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
    let id = match (&args.id_block, &args.id_auth) {
        (Some(b), Some(a)) => {
            let block = exact_file("id-block", b, ID_BLOCK_LEN)?;
            let auth = exact_file("id-auth", a, ID_AUTH_LEN)?;
            let parsed = IdAuth::from_bytes(&auth)
                .map_err(|e| invalid(format!("--id-auth {}: {e}", a.display())))?;
            let author = parsed.author_key.as_bytes().iter().any(|&b| b != 0);
            Some((block, auth, author))
        }
        (None, None) => None,
        _ => return Err(invalid("--id-block and --id-auth go together")),
    };
    Ok(LaunchInput {
        image: crate::measure::read_firmware(&args.firmware)?,
        vcpus: args.vcpus,
        vcpu_sig: t.signature(),
        policy: parse_policy(&args.policy)?,
        report_data: padded("report-data", args.report_data.as_deref())?,
        host_data: padded("host-data", args.host_data.as_deref())?,
        id,
        product: args.product.into(),
        state: args.state.clone(),
    })
}

/// Opens the firmware, SNP_INIT, guest context, LAUNCH_START, ACTIVATE.
/// With a state directory, it must exist and hold an identity (`sevkit
/// firmware init` makes one), and it is locked as `sevkit firmware serve`
/// locks it: the lock comes back with the firmware and must be held while
/// the firmware is used.
fn start_guest(
    product: Product,
    state: Option<PathBuf>,
    policy: u64,
) -> Result<(Option<StateLock>, Firmware, VecMemory), InputError> {
    let lock = match &state {
        Some(dir) => Some(StateLock::acquire(dir).map_err(|e| invalid(e.to_string()))?),
        None => None,
    };
    let mut fw = Firmware::open_existing(FirmwareConfig {
        state_dir: state,
        product,
        ..FirmwareConfig::default()
    })
    .map_err(|e| invalid(format!("software AMD-SP: {e}")))?;
    let mut mem = VecMemory::new(MEM_SIZE);
    check(
        "SNP_INIT",
        fw.execute(SnpCommand::SnpInit.id(), &mut [], &mut mem),
    )?;
    firmware_page(&mut fw, GCTX)?;
    let mut gctx = SnpPaddrBuffer {
        paddr: U64::new(GCTX),
    };
    check(
        "SNP_GCTX_CREATE",
        snp(&mut fw, SnpCommand::SnpGctxCreate, &mut gctx, &mut mem),
    )?;
    let mut start = SnpLaunchStartBuffer::new_zeroed();
    start.gctx_paddr = U64::new(GCTX);
    start.policy = U64::new(policy);
    check(
        &format!("SNP_LAUNCH_START (policy {policy:#x})"),
        snp(&mut fw, SnpCommand::SnpLaunchStart, &mut start, &mut mem),
    )?;
    let mut act = SnpActivateBuffer {
        gctx_paddr: U64::new(GCTX),
        asid: U32::new(ASID),
    };
    check(
        "SNP_ACTIVATE",
        snp(&mut fw, SnpCommand::SnpActivate, &mut act, &mut mem),
    )?;
    Ok((lock, fw, mem))
}

/// Launches the guest and attests it.
///
/// # Errors
/// Unusable input (no SEV metadata, bad sizes), or a firmware command failed.
pub fn attest(args: &AttestArgs) -> Result<Attestation, InputError> {
    let li = parse_args(args)?;
    let ovmf = OvmfImage::parse(&li.image)
        .map_err(|e| invalid(format!("{}: {e}", args.firmware.display())))?;
    let Some(metadata) = ovmf.metadata() else {
        return Err(invalid(format!(
            "{}: no SEV metadata (OvmfSevMetadataGuid): QEMU refuses to launch it as an SNP \
             guest",
            args.firmware.display()
        )));
    };
    let mut params = MeasureParams::new(Mode::Snp, &li.image);
    params.vcpus = li.vcpus;
    params.vcpu_sig = li.vcpu_sig;
    params.strict = true;
    let predicted =
        measure(&params).map_err(|e| invalid(format!("{}: {e}", args.firmware.display())))?;

    let (_lock, mut fw, mut mem) = start_guest(li.product, li.state.clone(), li.policy)?;

    // OVMF, NORMAL pages ending at 4 GiB.
    let base = ovmf.gpa();
    mem.write(base, ovmf.data()).map_err(|e| mem_err(&e))?;
    let len = ovmf.data().len() as u64;
    for off in (0..len).step_by(4096) {
        pre_guest(&mut fw, base + off, base + off)?;
        update(&mut fw, &mut mem, base + off, PageType::Normal)?;
    }
    // The metadata sections, in file order.
    let c_bit = fw.c_bit_position();
    for s in &metadata.sections {
        let page_type = match s.kind() {
            Some(SectionKind::SnpSecrets) => PageType::Secrets,
            Some(SectionKind::Cpuid) => PageType::Cpuid,
            Some(_) => PageType::Zero,
            None => {
                return Err(invalid(format!(
                    "{}: unknown SEV metadata section type {:#x}",
                    args.firmware.display(),
                    s.section_type
                )))
            }
        };
        for off in (0..u64::from(s.size)).step_by(4096) {
            let gpa = u64::from(s.gpa) + off;
            if gpa >= GCTX {
                return Err(invalid(format!("metadata section at {gpa:#x} above 4 GiB")));
            }
            if page_type == PageType::Cpuid {
                mem.write(gpa, &cpuid_page(c_bit))
                    .map_err(|e| mem_err(&e))?;
            }
            pre_guest(&mut fw, gpa, gpa)?;
            update(&mut fw, &mut mem, gpa, page_type)?;
        }
    }
    // One VMSA per vCPU, each on its own system page, all at VMSA_GPA.
    for i in 0..li.vcpus {
        let spa = VMSA_SPA + u64::from(i) * 4096;
        let page = predicted
            .vmsa_page(i)
            .ok_or_else(|| invalid(format!("sev-measure built no VMSA for vCPU {i}")))?;
        mem.write(spa, page).map_err(|e| mem_err(&e))?;
        pre_guest(&mut fw, spa, VMSA_GPA)?;
        update(&mut fw, &mut mem, spa, PageType::Vmsa)?;
    }
    // LAUNCH_FINISH with host data and the ID block.
    let mut finish = SnpLaunchFinishBuffer::new_zeroed();
    finish.gctx_paddr = U64::new(GCTX);
    finish.host_data = li.host_data;
    if let Some((block, auth, author)) = &li.id {
        mem.write(ID_BLOCK_SPA, block).map_err(|e| mem_err(&e))?;
        mem.write(ID_AUTH_SPA, auth).map_err(|e| mem_err(&e))?;
        finish.id_block_paddr = U64::new(ID_BLOCK_SPA);
        finish.id_auth_paddr = U64::new(ID_AUTH_SPA);
        let mut flags = SNP_LAUNCH_FINISH_ID_BLOCK_EN;
        if *author {
            flags |= SNP_LAUNCH_FINISH_AUTH_KEY_EN;
        }
        finish.flags = U64::new(flags);
    }
    check(
        "SNP_LAUNCH_FINISH",
        snp(&mut fw, SnpCommand::SnpLaunchFinish, &mut finish, &mut mem),
    )?;
    let measurement = fw
        .snp_guest(GCTX)
        .ok_or_else(|| invalid("software AMD-SP: the guest vanished"))?
        .ld;
    let log = fw
        .snp_launch_log(GCTX)
        .ok_or_else(|| invalid("software AMD-SP: no launch log"))?;
    let mut log_json = serde_json::to_string_pretty(log)
        .map_err(|e| invalid(format!("cannot encode the launch log: {e}")))?;
    log_json.push('\n');

    let report = guest_report(&mut fw, &mut mem, li.report_data)?;
    let mut files = vec![("report.bin", report.clone())];
    files.extend(host_certs(&fw, li.product)?);
    files.push(("launch-log.json", log_json.into_bytes()));
    Ok(Attestation {
        report,
        measurement,
        files,
    })
}

/// The guest asks for its report: MSG_REPORT_REQ through SNP_GUEST_REQUEST.
fn guest_report(
    fw: &mut Firmware,
    mem: &mut VecMemory,
    report_data: [u8; 64],
) -> Result<Vec<u8>, InputError> {
    // The guest: its secrets page (the model hands the guest the plaintext
    // page the firmware built; the guest reads it through its own key on
    // hardware), then MSG_REPORT_REQ through SNP_GUEST_REQUEST.
    let guest = fw
        .snp_guest(GCTX)
        .ok_or_else(|| invalid("software AMD-SP: the guest vanished"))?;
    let mut secrets = SecretsPage::new_zeroed();
    secrets.vmpck = guest.vmpck.0;
    let mut channel =
        GuestChannel::from_secrets_page(&secrets, 0).map_err(|e| invalid(format!("guest: {e}")))?;
    let request = channel
        .request_report(report_data, 0, KeySelect::Vcek)
        .map_err(|e| invalid(format!("guest: {e}")))?;
    mem.write(REQ_SPA, &request).map_err(|e| mem_err(&e))?;
    firmware_page(fw, RSP_SPA)?;
    let mut g = SnpGuestRequestBuffer {
        gctx_paddr: U64::new(GCTX),
        req_paddr: U64::new(REQ_SPA),
        rsp_paddr: U64::new(RSP_SPA),
    };
    check(
        "SNP_GUEST_REQUEST (MSG_REPORT_REQ)",
        snp(fw, SnpCommand::SnpGuestRequest, &mut g, mem),
    )?;
    let response = mem.read_vec(RSP_SPA, 4096).map_err(|e| mem_err(&e))?;
    let report = channel
        .open_report_response(&response)
        .map_err(|e| invalid(format!("guest: report response: {e}")))?;
    let report = report.as_bytes().to_vec();
    if report.len() != REPORT_LEN {
        return Err(invalid(format!(
            "report is {} bytes, expected {REPORT_LEN}",
            report.len()
        )));
    }
    Ok(report)
}

/// The host's certificates: the emulated KDS's for this chip and reported
/// TCB (`ark.pem`, `ask.pem`, `vcek.pem`, and the GHCB table `certs.bin`).
fn host_certs(fw: &Firmware, product: Product) -> Result<Vec<(&'static str, Vec<u8>)>, InputError> {
    // The host's certificates: the emulated KDS for this chip and TCB.
    let kds =
        EmulatedKds::new(fw.chip(), product).map_err(|e| invalid(format!("emulated KDS: {e}")))?;
    let keys = ChipEndorsementKeys::new(fw.chip());
    let vcek = kds
        .vcek_cert_for(&keys, fw.snp_platform_view().reported_tcb)
        .map_err(|e| invalid(format!("emulated KDS: {e}")))?;
    let table = kds
        .cert_table(&vcek)
        .to_bytes()
        .map_err(|e| invalid(format!("certificate table: {e}")))?;
    let mut files = kds.export_dir(&vcek);
    files.push(("certs.bin", table));
    Ok(files)
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
    println!("measurement: {}", hex::encode(a.measurement));
    println!("report:      {} bytes, signed by the VCEK", a.report.len());
    for (path, _, _) in &files {
        println!("wrote        {}", path.display());
    }
    Ok(())
}
