//! `sevkit launch`: the host launch path with QEMU's command line (or the
//! same as TOML), on the embedded software AMD-SP or a running
//! `sevkit firmware serve`; and `sevkit debug read`, a QMP client of it.
//!
//! The VMM runs no vCPUs: it performs the launch as QEMU does, then (with
//! `-qmp`) serves QMP until `quit`, or (without) prints what management
//! software would query and exits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Args;
use sev_abi::product::Product;
use sev_vmm::config::{VmConfig, MAX_TOML_LEN};
use sev_vmm::monitor::backend::{SharedVm, VmBackend};
use sev_vmm::monitor::qmp::{QmpBackend, QmpServer, MAX_READ_MEMORY};
use sev_vmm::plan::MachinePlan;
use sev_vmm::vm::SevState;

use crate::amd_sp::{self, Embedded, Sp};
use crate::attest::SnpProduct;
use crate::input::{self, invalid, InputError};
use crate::number::number;
use crate::output::{self, FileMode};
use crate::qmp_client::{QmpClient, QmpClientError};

/// Arguments of `sevkit launch`.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct LaunchArgs {
    /// The VM as TOML (instead of QEMU options).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use a running `sevkit firmware serve` at this socket instead of the
    /// embedded software AMD-SP.
    #[arg(long, value_name = "PATH")]
    pub firmware_socket: Option<PathBuf>,
    /// The emulated processor generation (its C-bit position and
    /// capabilities are what QEMU checks the object against).
    #[arg(long, value_enum, default_value_t = SnpProduct::Genoa)]
    pub product: SnpProduct,
    /// State directory of the embedded AMD-SP (persistent chip and PDH, as
    /// `sevkit firmware init` creates; locked for the VM's life, as `sevkit
    /// firmware serve` locks it); without it a fresh chip is minted.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Print the VMM's launch log.
    #[arg(long)]
    pub log: bool,
    /// SNP: after the launch, play the guest and write its extended report
    /// (`report.bin`) and the certificate table it received (`certs.bin`)
    /// to this directory.
    #[arg(long, value_name = "DIR")]
    pub guest_report: Option<PathBuf>,
    /// QEMU options: -machine, -object, -bios, -kernel, -initrd, -append,
    /// -smp, -m, -cpu, -S, -qmp.
    #[arg(allow_hyphen_values = true, value_name = "QEMU-OPTIONS")]
    pub qemu: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> InputError {
    invalid(e.to_string())
}

fn load_config(args: &LaunchArgs) -> Result<VmConfig, InputError> {
    match &args.config {
        Some(path) => {
            if !args.qemu.is_empty() {
                return Err(invalid(
                    "give the VM either as --config FILE or as QEMU options, not both",
                ));
            }
            let bytes = input::read(path, MAX_TOML_LEN, "a VM configuration (TOML)")?;
            let text = String::from_utf8(bytes)
                .map_err(|e| invalid(format!("{}: not UTF-8 text: {e}", path.display())))?;
            VmConfig::from_toml(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))
        }
        None => VmConfig::from_qemu_args(&args.qemu).map_err(err),
    }
}

/// Runs `sevkit launch`.
pub fn run(args: &LaunchArgs) -> Result<(), InputError> {
    let started = Instant::now();
    let config = load_config(args)?;
    let product = Product::from(args.product);
    // Every property is checked and every file read before the AMD-SP sees
    // a command.
    let plan = MachinePlan::new(&config, product).map_err(err)?;
    // QEMU opens its monitors before machine init: management software can
    // connect at once (it is greeted when the launch is done).
    let server = match &config.qmp {
        Some(path) => Some(
            QmpServer::bind(path).map_err(|e| invalid(format!("-qmp {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let memory = plan.memory().map_err(err)?;
    // One process per state directory: its lock is held until the VM is
    // gone.
    let (_state_lock, sp) = if let Some(socket) = &args.firmware_socket {
        (None, Sp::Socket(socket.clone()))
    } else {
        let embedded = Embedded::open(args.state.as_deref(), product)?;
        (embedded.lock, Sp::Embedded(embedded.firmware))
    };
    let vm = plan.launch(amd_sp::host(sp, memory)?).map_err(err)?;
    let vm: SharedVm = Arc::new(Mutex::new(vm));
    {
        let mut vm = vm.lock().map_err(|_| invalid("VM lock poisoned"))?;
        let status = vm.status();
        let guest = config.guest.as_ref().map_or("?", |g| g.qom_type());
        outln!(
            "launched {guest} ({} vCPUs) in {:.1} ms: SEV state {}, run state {}",
            config.smp,
            started.elapsed().as_secs_f64() * 1e3,
            status.state.as_str(),
            vm.run_state().as_str()
        );
        outln!(
            "AMD-SP: API {}.{} build {}",
            status.platform.api_major,
            status.platform.api_minor,
            status.platform.build
        );
        if let Ok(m) = vm.launch_measure() {
            outln!("query-sev-launch-measure: {m}");
        }
        if status.state == SevState::Running {
            if let Ok(launched) = vm.launched_guest() {
                outln!("launch digest (expected): {}", launched.digest);
            }
        }
        if args.log {
            match vm.launch_log() {
                Ok(log) => out!("{log}"),
                Err(e) => outln!("launch log: {e}"),
            }
        }
        if let Some(dir) = &args.guest_report {
            let got = vm.guest_report([0u8; 64], None).map_err(err)?;
            output::create_dir(dir)?;
            let files = [
                (
                    dir.join("report.bin"),
                    got.report.as_slice(),
                    FileMode::Public,
                ),
                (
                    dir.join("certs.bin"),
                    got.certs.as_slice(),
                    FileMode::Public,
                ),
            ];
            output::write_all(&files)?;
            for (path, _, _) in &files {
                outln!("wrote {}", path.display());
            }
        }
    }
    let Some(server) = server else {
        return Ok(());
    };
    outln!("QMP: serving {}", server.path().display());
    crate::out::flush();
    let backend: Arc<Mutex<dyn QmpBackend>> = Arc::new(Mutex::new(VmBackend::new(vm)));
    let outcome = server.serve(backend).map_err(err)?;
    outln!("QMP: {outcome:?}");
    Ok(())
}

/// Arguments of `sevkit debug read`.
#[derive(Debug, Args)]
pub struct DebugReadArgs {
    /// The VM's QMP socket.
    #[arg(long, value_name = "PATH")]
    pub qmp: PathBuf,
    /// Guest physical address (decimal, or 0x-hex).
    #[arg(long, value_name = "ADDR", value_parser = number::<u64>())]
    pub gpa: u64,
    /// Bytes to read (at most 1 MiB).
    #[arg(long, value_name = "N", value_parser = number::<u64>())]
    pub len: u64,
    /// Print raw bytes instead of hex.
    #[arg(long)]
    pub raw: bool,
    /// How long to wait for the monitor at each step (connect, greeting,
    /// each reply), in seconds. A QMP socket serves one client at a time:
    /// while another client holds it, the read ends after this long.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = DEFAULT_QMP_TIMEOUT_SECS,
        value_parser = number::<u64>().range(1..=86_400)
    )]
    pub timeout: u64,
}

/// `debug read --timeout`'s default, in seconds.
pub const DEFAULT_QMP_TIMEOUT_SECS: u64 = 10;

/// `sevkit debug ...`
#[derive(Debug, clap::Subcommand)]
pub enum DebugCommand {
    /// Read guest memory through the VM's debug API (QMP
    /// `x-sevkit-read-memory`, the binary form of HMP `xp`: private pages via
    /// DBG_DECRYPT / SNP_DBG_DECRYPT when the policy allows debugging).
    Read(DebugReadArgs),
}

/// Runs `sevkit debug`.
pub fn run_debug(cmd: &DebugCommand) -> Result<(), InputError> {
    let DebugCommand::Read(args) = cmd;
    let gpa = args.gpa;
    if args.len == 0 || args.len > MAX_READ_MEMORY {
        return Err(invalid(format!(
            "--len {}: expected 1 to {MAX_READ_MEMORY}",
            args.len
        )));
    }
    let mut qmp = QmpClient::connect(&args.qmp, Duration::from_secs(args.timeout))?;
    // `x-sevkit-read-memory` is `xp`'s binary form (the same debug API), and
    // keeps its name in messages: "xp: " and the VMM's refusal, which names
    // the policy bit that forbids debugging and the remedy.
    let out = qmp
        .execute(
            &serde_json::json!({
                "execute": "x-sevkit-read-memory",
                "arguments": {"gpa": gpa, "size": args.len}
            }),
            "xp",
        )
        .map_err(|e| match e {
            QmpClientError::Command { class, .. } if class == "CommandNotFound" => {
                invalid(format!(
                    "{}: the monitor has no x-sevkit-read-memory: sevkit debug read needs the \
                 monitor of sevkit's VMM (sevkit launch -qmp ...)",
                    args.qmp.display()
                ))
            }
            QmpClientError::Command { desc, .. } => invalid(format!("xp: {desc}")),
            other => other.into(),
        })?;
    let bytes = out
        .get("data")
        .and_then(serde_json::Value::as_str)
        .and_then(|data| B64.decode(data).ok())
        .filter(|bytes| bytes.len() as u64 == args.len)
        .ok_or_else(|| {
            invalid(format!(
                "xp: not {} bytes of base64 data: {}",
                args.len,
                sev_os::excerpt(&out.to_string())
            ))
        })?;
    if args.raw {
        crate::out::bytes(&bytes);
    } else {
        for (i, chunk) in bytes.chunks(16).enumerate() {
            outln!("{:016x}: {}", gpa + 16 * i as u64, hex::encode(chunk));
        }
    }
    Ok(())
}
