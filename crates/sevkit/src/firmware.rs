//! `sevkit firmware`: the software AMD-SP as a daemon, and its identity.
//!
//! * `serve --state DIR --socket PATH`: serve many VMs at once over a Unix
//!   socket (protocol in docs/FIRMWARE.md); SIGTERM or SIGINT stops it
//!   gracefully (exit 0, socket removed). With `--init` it first does what
//!   `init` does.
//! * `init --state DIR`: create the directory (mode 0700) and mint the chip
//!   (emulated ARK/ASK, CEK) and the platform keys (OCA, PEK, PDH) if the
//!   directory has none. A failed `init` leaves nothing behind.
//! * `status --state DIR` or `--socket PATH`: platform state and identity.
//! * `export --state DIR --out DIR`: pdh.cert, pek.cert, oca.cert, cek.cert,
//!   ask.cert, ark.cert in AMD's formats, as `sevctl export` writes them;
//!   with `--snp` also the SNP host certificates (ark.pem, ask.pem,
//!   vcek.pem, and their certificate table certs.bin), as a host fetches
//!   them from AMD's KDS.
//!
//! Only `init` and `serve --init` create a state directory or mint an
//! identity; every other command needs an existing one (exit 2 naming the
//! path otherwise). The directory must be the user's and closed to group and
//! others (it holds private keys). One process per state directory: the
//! daemon locks it for its life, the other commands (and `launch --state`,
//! `attest --state`) while they run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use sev_abi::commands::{GetIdBuffer, PlatformStatusBuffer, SevCommand};
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::kds::EmulatedKds;
use sev_firmware::snp::keys::ChipEndorsementKeys;
use sev_firmware::store::StateKind;
use sev_firmware::InProcess;
use sev_firmware::{
    Firmware, FirmwareConfig, PlatformState, SystemMemory, DEFAULT_MAX_ASID, DEFAULT_MAX_GUESTS,
    DEFAULT_MIN_SEV_ASID, GET_ID_LEN,
};
use sev_firmware_server::{Client, ExportedIdentity, Server, ServerConfig, StateLock};
use sev_sp::{call, AmdSp, FdMemory};
use sha2::{Digest, Sha256};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use crate::input::{self, InputError, SECRET_NOT_SHOWN};
use crate::number::number;
use crate::output::FileMode;

/// `sevkit firmware ...`
#[derive(Debug, Subcommand)]
pub enum FirmwareCommand {
    /// Serve the software AMD-SP on a Unix socket, one thread per VM (guest
    /// memory passed as a memfd). SIGTERM stops it gracefully.
    Serve(ServeArgs),
    /// Create a state directory (mode 0700) and its identity (chip, then
    /// OCA/PEK/PDH) if it has none; print the chip id.
    Init(StateArgs),
    /// Print the platform's state and identity.
    Status(StatusArgs),
    /// Write the identity as pdh.cert, pek.cert, oca.cert, cek.cert,
    /// ask.cert and ark.cert (AMD's formats, as `sevctl export`).
    Export(ExportArgs),
}

/// The state directory and how to open the firmware on it.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// State directory (chip.sevfw, platform.sevfw, snp.sevfw): yours and not
    /// writable by group or others. Only `init` (and `serve --init`) create
    /// one.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Deterministic mode for tests: every key comes from this 32-byte seed
    /// (hex). Never use it for a platform that guards real secrets.
    // Parsed by `parse_seed`, not by clap, whose errors repeat the value.
    #[arg(long, value_name = "HEX")]
    pub seed: Option<String>,
    /// Highest ASID (ASIDs below --min-sev-asid are for SEV-ES guests).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ASID, value_parser = number::<u32>())]
    pub max_asid: u32,
    /// Lowest ASID of plain SEV guests.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_SEV_ASID, value_parser = number::<u32>())]
    pub min_sev_asid: u32,
    /// Most guests at once (LAUNCH_START answers RESOURCE_LIMIT beyond).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_GUESTS, value_parser = number::<u32>())]
    pub max_guests: u32,
}

/// Arguments of `sevkit firmware serve`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent command-line switches
pub struct ServeArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Unix socket to listen on (created with mode 0600; a stale one is
    /// replaced, a live one refused).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// Let the socket's group connect too (mode 0660): the group of a
    /// set-group-ID socket directory, else the daemon's. Whoever can connect
    /// may administer the platform and launch guests of their own.
    #[arg(long)]
    pub group_access: bool,
    /// Create the state directory and its identity first if there is none,
    /// as `sevkit firmware init` does; without it the directory must hold
    /// one already.
    #[arg(long)]
    pub init: bool,
    /// Most clients at once.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = number::<usize>())]
    pub max_clients: usize,
    /// Log connections and refused commands to stderr (never buffers or
    /// memory).
    #[arg(long)]
    pub verbose: bool,
    /// Keep no per-guest launch log: LAUNCH_UPDATE_DATA then hashes each
    /// byte once instead of twice.
    #[arg(long)]
    pub no_launch_log: bool,
}

/// Arguments of `sevkit firmware status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// State directory (must exist; the daemon must not be running on it).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "socket",
        conflicts_with = "socket"
    )]
    pub state: Option<PathBuf>,
    /// Ask a running daemon instead.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sevkit firmware export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Directory to write the six certificates to (created if missing; the
    /// six are written all or none).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also write the SNP host certificates, as a host fetches them from
    /// AMD's KDS: the emulated KDS's ark.pem, ask.pem and vcek.pem (the
    /// VCEK for the chip at the platform's reported TCB) and certs.bin,
    /// their GHCB certificate table (for `certs-path` and `sevkit attest
    /// --certs-path`).
    #[arg(long)]
    pub snp: bool,
}

/// Parses `--seed`; errors never repeat it (every key derives from it).
fn parse_seed(s: &str) -> Result<[u8; 32], InputError> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(s).map_err(|e| {
        invalid(format!(
            "--seed: not hex ({}); {SECRET_NOT_SHOWN}",
            input::hex_problem(&e)
        ))
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        invalid(format!(
            "--seed: 32 bytes (64 hex digits) expected, got {}",
            b.len()
        ))
    })
}

fn invalid(e: impl std::fmt::Display) -> InputError {
    InputError::Invalid(e.to_string())
}

impl StateArgs {
    fn config(&self) -> Result<FirmwareConfig, InputError> {
        Ok(FirmwareConfig {
            state_dir: Some(self.state.clone()),
            seed: self.seed.as_deref().map(parse_seed).transpose()?,
            max_asid: self.max_asid,
            min_sev_asid: self.min_sev_asid,
            max_guests: self.max_guests,
            ..FirmwareConfig::default()
        })
    }

    /// Locks the existing directory and opens the firmware on its identity
    /// (nothing is created).
    fn open_existing(&self) -> Result<(StateLock, Firmware), InputError> {
        let lock = StateLock::acquire(&self.state).map_err(invalid)?;
        let fw = Firmware::open_existing(self.config()?).map_err(invalid)?;
        Ok((lock, fw))
    }

    /// `init`: creates the directory (0700) if missing, locks it, opens the
    /// firmware (minting a chip if there is none) and INIT mints OCA, PEK
    /// and PDH if there are none. When that fails, the state files this
    /// run created are removed again, and the directory if it created it:
    /// a failed `init` leaves nothing behind.
    fn create(
        &self,
        config: FirmwareConfig,
    ) -> Result<(StateLock, Firmware, ExportedIdentity), InputError> {
        let existed = std::fs::symlink_metadata(&self.state).is_ok();
        let lock = StateLock::create(&self.state).map_err(invalid)?;
        let present = |name: &str| std::fs::symlink_metadata(lock.dir().join(name)).is_ok();
        let before: Vec<bool> = STATE_FILES.iter().map(|name| present(name)).collect();
        let minted = Firmware::open(config).map_err(invalid).and_then(|mut fw| {
            // INIT mints and persists OCA, PEK and PDH when the store has
            // none.
            let identity = identity_of(&mut fw)?;
            Ok((fw, identity))
        });
        match minted {
            Ok((fw, identity)) => Ok((lock, fw, identity)),
            Err(e) => {
                for (name, was) in STATE_FILES.iter().zip(before) {
                    if !was {
                        let _ = lock.dir().remove_stale_temps(name);
                        let _ = lock.dir().remove(name);
                    }
                }
                if !existed {
                    let _ = lock.dir().remove(sev_firmware_server::lock::LOCK_FILE);
                    drop(lock);
                    let _ = std::fs::remove_dir(&self.state);
                }
                Err(e)
            }
        }
    }
}

/// The platform's identity (INIT first if it is UNINIT, which mints OCA,
/// PEK and PDH when there are none); a failure says why the firmware failed
/// (a state write, say).
fn identity_of(fw: &mut Firmware) -> Result<ExportedIdentity, InputError> {
    ExportedIdentity::from_firmware(fw).map_err(|e| match fw.last_error() {
        Some(why) => invalid(format!("{e}: {why}")),
        None => invalid(e),
    })
}

/// The files a state directory holds.
const STATE_FILES: [&str; 3] = [
    StateKind::Chip.file_name(),
    StateKind::Platform.file_name(),
    StateKind::Snp.file_name(),
];

/// Runs a `sevkit firmware` command.
pub fn run(cmd: &FirmwareCommand) -> Result<(), InputError> {
    match cmd {
        FirmwareCommand::Serve(args) => serve(args),
        FirmwareCommand::Init(args) => init(args),
        FirmwareCommand::Status(args) => status(args),
        FirmwareCommand::Export(args) => export(args),
    }
}

fn serve(args: &ServeArgs) -> Result<(), InputError> {
    let config = FirmwareConfig {
        launch_log: !args.no_launch_log,
        ..args.state.config()?
    };
    let (lock, fw) = if args.init {
        let (lock, fw, _) = args.state.create(config)?;
        (lock, fw)
    } else {
        let lock = StateLock::acquire(&args.state.state).map_err(invalid)?;
        (lock, Firmware::open_existing(config).map_err(invalid)?)
    };
    let server = Server::bind(
        fw,
        &args.socket,
        ServerConfig {
            max_clients: args.max_clients.max(1),
            verbose: args.verbose,
            access: if args.group_access {
                sev_os::SocketAccess::OwnerAndGroup
            } else {
                sev_os::SocketAccess::Owner
            },
            ..ServerConfig::default()
        },
    )
    .map_err(invalid)?;
    server.shutdown_handle().on_sigterm().map_err(invalid)?;
    eprintln!(
        "sevkit firmware serve: listening on {} (state {}, pid {})",
        args.socket.display(),
        args.state.state.display(),
        std::process::id()
    );
    let summary = server.run().map_err(invalid)?;
    drop(lock);
    eprintln!(
        "sevkit firmware serve: stopped ({} connections, {} commands, {} protocol errors)",
        summary.connections, summary.commands, summary.protocol_errors
    );
    Ok(())
}

fn init(args: &StateArgs) -> Result<(), InputError> {
    let (_lock, fw, identity) = args.create(args.config()?)?;
    outln!("state: {}", args.state.display());
    outln!("chip id: {}", hex::encode(fw.chip().chip_id()));
    outln!(
        "pdh sha256: {}",
        hex::encode(Sha256::digest(identity.pdh.as_bytes()))
    );
    Ok(())
}

/// What `status` reports.
struct Report {
    status: PlatformStatusBuffer,
    chip_id: Vec<u8>,
    pdh_sha256: Option<String>,
}

fn query(
    sp: &mut dyn AmdSp,
    mem: &dyn SystemMemory,
) -> Result<(PlatformStatusBuffer, Vec<u8>), InputError> {
    let mut status = PlatformStatusBuffer::new_zeroed();
    expect(
        SevCommand::PlatformStatus,
        call(sp, SevCommand::PlatformStatus, &mut status).map_err(invalid)?,
    )?;
    let mut id = GetIdBuffer::new_zeroed();
    id.paddr = U64::new(0);
    id.len = U32::new(GET_ID_LEN);
    expect(
        SevCommand::GetId,
        call(sp, SevCommand::GetId, &mut id).map_err(invalid)?,
    )?;
    let mut chip_id = vec![0u8; GET_ID_LEN as usize];
    mem.read(0, &mut chip_id).map_err(invalid)?;
    Ok((status, chip_id))
}

fn expect(command: SevCommand, status: FirmwareStatus) -> Result<(), InputError> {
    if status == FirmwareStatus::SUCCESS {
        Ok(())
    } else {
        Err(InputError::Invalid(format!(
            "{} failed: {} ({:#x})",
            command.name(),
            status.name().unwrap_or("unknown status"),
            status.code()
        )))
    }
}

fn status(args: &StatusArgs) -> Result<(), InputError> {
    let report = match (&args.state, &args.socket) {
        (Some(dir), _) => {
            let lock = StateLock::acquire(dir).map_err(invalid)?;
            let fw = Firmware::open_existing(FirmwareConfig {
                state_dir: Some(dir.clone()),
                ..FirmwareConfig::default()
            })
            .map_err(invalid)?;
            let pdh_sha256 = fw
                .pdh_cert()
                .map(|c| hex::encode(Sha256::digest(c.as_bytes())));
            let mem = FdMemory::memfd("sevkit-status", 0x1000).map_err(invalid)?;
            let mut sp = InProcess::new(fw, mem);
            let host = sp.memory().try_clone().map_err(invalid)?;
            let (status, chip_id) = query(&mut sp, &host)?;
            drop(lock);
            Report {
                status,
                chip_id,
                pdh_sha256,
            }
        }
        (None, Some(socket)) => {
            let mem = FdMemory::memfd("sevkit-status", 0x1000).map_err(invalid)?;
            let mut client =
                Client::connect_with_memory(socket, &mem, Some(Duration::from_secs(30)))
                    .map_err(invalid)?;
            let (status, chip_id) = query(&mut client, &mem)?;
            Report {
                status,
                chip_id,
                pdh_sha256: None,
            }
        }
        (None, None) => return Err(invalid("give --state DIR or --socket PATH")),
    };
    print_status(&report, args.json);
    Ok(())
}

fn print_status(r: &Report, as_json: bool) {
    let s = &r.status;
    let state = match s.state {
        0 => PlatformState::Uninit.name(),
        1 => PlatformState::Init.name(),
        2 => PlatformState::Working.name(),
        _ => "unknown",
    };
    let owner = if s.owner & 1 != 0 { "external" } else { "self" };
    let es = s.config.get() & 1 != 0;
    if as_json {
        let v = json!({
            "api_version": format!("{}.{}", s.api_major, s.api_minor),
            "build": s.build,
            "state": state,
            "owner": owner,
            "sev_es": es,
            "guests": s.guest_count.get(),
            "chip_id": hex::encode(&r.chip_id),
            "pdh_sha256": r.pdh_sha256,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        outln!(
            "api version: {}.{} (build {})",
            s.api_major,
            s.api_minor,
            s.build
        );
        outln!("state: {state}");
        outln!("owner: {owner}");
        outln!("sev-es: {}", if es { "initialized" } else { "no" });
        outln!("guests: {}", s.guest_count.get());
        outln!("chip id: {}", hex::encode(&r.chip_id));
        if let Some(pdh) = &r.pdh_sha256 {
            outln!("pdh sha256: {pdh}");
        }
    }
}

fn export(args: &ExportArgs) -> Result<(), InputError> {
    let (_lock, mut fw) = args.state.open_existing()?;
    let identity = identity_of(&mut fw)?;
    identity.write_to(&args.out).map_err(invalid)?;
    for (name, _) in identity.files() {
        outln!("{}", Path::new(&args.out).join(name).display());
    }
    if args.snp {
        let SnpHostCerts { mut files, table } = snp_host_certs(&fw)?;
        files.push(("certs.bin", table));
        let files: Vec<_> = files
            .iter()
            .map(|(name, bytes)| (args.out.join(name), bytes.as_slice(), FileMode::Public))
            .collect();
        crate::output::write_all(&files)?;
        for (path, _, _) in &files {
            outln!("{}", path.display());
        }
    }
    Ok(())
}

/// The SNP host certificates of a chip, as a host fetches them from AMD's
/// KDS for the platform's reported TCB.
pub struct SnpHostCerts {
    /// `ark.pem`, `ask.pem`, `vcek.pem` (the emulated KDS's), as `(file
    /// name, contents)`.
    pub files: Vec<(&'static str, Vec<u8>)>,
    /// Their GHCB certificate table (VCEK, ASK, ARK), which a host supplies
    /// to its guests' extended reports (`certs-path`).
    pub table: Vec<u8>,
}

/// The SNP host certificates of `fw`'s chip at its reported TCB.
pub fn snp_host_certs(fw: &Firmware) -> Result<SnpHostCerts, InputError> {
    let view = fw.snp_platform_view();
    let kds = EmulatedKds::new(fw.chip(), view.product)
        .map_err(|e| invalid(format!("emulated KDS: {e}")))?;
    let vcek = kds
        .vcek_cert_for(&ChipEndorsementKeys::new(fw.chip()), view.reported_tcb)
        .map_err(|e| invalid(format!("emulated KDS: {e}")))?;
    let table = kds
        .cert_table(&vcek)
        .to_bytes()
        .map_err(|e| invalid(format!("certificate table: {e}")))?;
    Ok(SnpHostCerts {
        files: kds.export_dir(&vcek),
        table,
    })
}
