//! `sevkit launch`: the host launch path with QEMU's command line (or the
//! same as TOML), on the embedded software AMD-SP or a running
//! `sevkit firmware serve`; and `sevkit debug read`, a QMP client of it.
//!
//! The VMM runs no vCPUs: it performs the launch as QEMU does, then (with
//! `-qmp`) serves QMP until `quit`, or (without) prints what management
//! software would query and exits.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use sev_abi::product::Product;
use sev_firmware::{Firmware, FirmwareConfig};
use sev_firmware_server::{AmdSp, Client, InProcess, StateLock};
use sev_vmm::backend::{SharedVm, VmBackend};
use sev_vmm::config::VmConfig;
use sev_vmm::host::Host;
use sev_vmm::machine::MachinePlan;
use sev_vmm::qmp::{QmpBackend, QmpServer};
use sev_vmm::vm::SevState;
use sev_vmm::GuestMemory;

use crate::attest::SnpProduct;
use crate::input::{invalid, InputError};
use crate::output::{self, FileMode};

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
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
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
    let memory = GuestMemory::new(plan.layout).map_err(err)?;
    // One process per state directory: held until the VM is gone.
    let _state_lock = match (&args.firmware_socket, &args.state) {
        (None, Some(dir)) => Some(StateLock::acquire(dir).map_err(err)?),
        _ => None,
    };
    let sp: Box<dyn AmdSp + Send> = if let Some(socket) = &args.firmware_socket {
        Box::new(
            Client::connect_with_memory(socket, memory.system(), Some(Duration::from_secs(60)))
                .map_err(|e| invalid(format!("{}: {e}", socket.display())))?,
        )
    } else {
        let fw = Firmware::open_existing(FirmwareConfig {
            state_dir: args.state.clone(),
            product,
            ..FirmwareConfig::default()
        })
        .map_err(|e| invalid(format!("software AMD-SP: {e}")))?;
        Box::new(InProcess::new(fw, memory.system_handle().map_err(err)?))
    };
    let vm = plan.launch(Host::new(sp, memory)).map_err(err)?;
    let vm: SharedVm = Arc::new(Mutex::new(vm));
    {
        let mut vm = vm.lock().map_err(|_| invalid("VM lock poisoned"))?;
        let status = vm.status();
        let guest = config.guest.as_ref().map_or("?", |g| g.qom_type());
        println!(
            "launched {guest} ({} vCPUs) in {:.1} ms: SEV state {}, run state {}",
            config.smp,
            started.elapsed().as_secs_f64() * 1e3,
            status.state.name(),
            vm.run_state().name()
        );
        println!(
            "AMD-SP: API {}.{} build {}",
            status.platform.api_major, status.platform.api_minor, status.platform.build
        );
        if let Ok(m) = vm.launch_measure() {
            println!("query-sev-launch-measure: {m}");
        }
        if status.state == SevState::Running {
            if let Ok(launched) = vm.launched_guest() {
                println!(
                    "launch digest (expected): {}",
                    hex::encode(&launched.digest)
                );
            }
        }
        if args.log {
            match vm.launch_log() {
                Ok(log) => print!("{log}"),
                Err(e) => println!("launch log: {e}"),
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
                println!("wrote {}", path.display());
            }
        }
    }
    let Some(server) = server else {
        return Ok(());
    };
    println!("QMP: serving {}", server.path().display());
    let _ = std::io::stdout().flush();
    let backend: Arc<Mutex<dyn QmpBackend>> = Arc::new(Mutex::new(VmBackend::new(vm)));
    let outcome = server.serve(backend).map_err(err)?;
    println!("QMP: {outcome:?}");
    Ok(())
}

/// Arguments of `sevkit debug read`.
#[derive(Debug, Args)]
pub struct DebugReadArgs {
    /// The VM's QMP socket.
    #[arg(long, value_name = "PATH")]
    pub qmp: PathBuf,
    /// Guest physical address (decimal, or 0x-hex).
    #[arg(long, value_name = "ADDR")]
    pub gpa: String,
    /// Bytes to read (at most 1 MiB).
    #[arg(long, value_name = "N")]
    pub len: u64,
    /// Print raw bytes instead of hex.
    #[arg(long)]
    pub raw: bool,
}

/// `sevkit debug ...`
#[derive(Debug, clap::Subcommand)]
pub enum DebugCommand {
    /// Read guest memory through the VM's debug API (QMP `xp`: private
    /// pages via DBG_DECRYPT when the policy allows debugging).
    Read(DebugReadArgs),
}

/// A minimal QMP client: one command, one answer (events skipped).
fn qmp_execute(
    reader: &mut BufReader<UnixStream>,
    command: &serde_json::Value,
) -> Result<serde_json::Value, InputError> {
    let mut line = serde_json::to_string(command).map_err(err)?;
    line.push('\n');
    reader.get_mut().write_all(line.as_bytes()).map_err(err)?;
    loop {
        let mut answer = String::new();
        if reader.read_line(&mut answer).map_err(err)? == 0 {
            return Err(invalid("QMP: the VM closed the connection"));
        }
        let v: serde_json::Value = serde_json::from_str(&answer).map_err(err)?;
        if let Some(r) = v.get("return") {
            return Ok(r.clone());
        }
        if let Some(e) = v.get("error") {
            return Err(invalid(format!(
                "QMP {}: {}",
                e["class"].as_str().unwrap_or("?"),
                e["desc"].as_str().unwrap_or("?")
            )));
        }
    }
}

/// Parses `xp /Nxb` output (`ADDR: 0x.. 0x..`) back into bytes; a line
/// that is not a dump line (an error, "Cannot access memory") is an error.
fn parse_xp_bytes(text: &str) -> Result<Vec<u8>, InputError> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((_, values)) = line.split_once(": ") else {
            return Err(invalid(format!("xp: {line}")));
        };
        if values.contains("Cannot access memory") {
            return Err(invalid(format!("xp: {line}")));
        }
        for v in values.split_whitespace() {
            let hex = v
                .strip_prefix("0x")
                .ok_or_else(|| invalid(format!("xp: {line}")))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| invalid(format!("xp: {line}")))?);
        }
    }
    Ok(out)
}

/// Runs `sevkit debug`.
pub fn run_debug(cmd: &DebugCommand) -> Result<(), InputError> {
    let DebugCommand::Read(args) = cmd;
    let gpa =
        crate::measure::parse_int_auto(&args.gpa).map_err(|e| invalid(format!("--gpa: {e}")))?;
    if args.len == 0 || args.len > 1 << 20 {
        return Err(invalid(format!(
            "--len {}: expected 1 to 1048576",
            args.len
        )));
    }
    let stream = UnixStream::connect(&args.qmp)
        .map_err(|e| invalid(format!("{}: {e}", args.qmp.display())))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).map_err(err)?;
    if !greeting.contains("\"QMP\"") {
        return Err(invalid(format!("{}: not a QMP socket", args.qmp.display())));
    }
    qmp_execute(
        &mut reader,
        &serde_json::json!({"execute": "qmp_capabilities"}),
    )?;
    let out = qmp_execute(
        &mut reader,
        &serde_json::json!({
            "execute": "human-monitor-command",
            "arguments": {"command-line": format!("xp /{}xb {gpa:#x}", args.len)}
        }),
    )?;
    let text = out.as_str().unwrap_or_default();
    let bytes = parse_xp_bytes(text)?;
    if bytes.len() as u64 != args.len {
        return Err(invalid(format!("xp: {}", text.trim())));
    }
    if args.raw {
        std::io::stdout().write_all(&bytes).map_err(err)?;
    } else {
        for (i, chunk) in bytes.chunks(16).enumerate() {
            println!("{:016x}: {}", gpa + 16 * i as u64, hex::encode(chunk));
        }
    }
    Ok(())
}
