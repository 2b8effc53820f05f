//! `sevkit`: AMD SEV / SEV-ES / SEV-SNP confidential VMs end to end.
//!
//! The binary is thin: it parses arguments, reads files, calls the libraries
//! and prints. Exit status: 0 success, 1 a verification failed, 2 unusable
//! input (unreadable file, wrong length, bad hex); standard output closed
//! by its reader ends a command quietly with 0 ([`out`]).

#[macro_use]
mod out;

mod amd_sp;
mod attest;
mod bench;
mod demo;
mod firmware;
mod input;
mod launch;
mod measure;
mod number;
mod output;
mod owner;
mod qmp_client;
mod show;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// AMD SEV / SEV-ES / SEV-SNP confidential VMs: verify, inspect, measure, emulate.
#[derive(Debug, Parser)]
#[command(name = "sevkit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Clap builds the command once; the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Print AMD structures in readable form.
    #[command(subcommand)]
    Show(show::ShowCommand),
    /// Verify attestation reports and certificate chains.
    #[command(subcommand)]
    Verify(verify::VerifyCommand),
    /// Predict a guest's launch digest (sev-snp-measure compatible), or the
    /// legacy LAUNCH_MEASURE blob (`measure sev-launch`).
    Measure(measure::MeasureArgs),
    /// Guest owner: build a launch session for a platform's PDH (like
    /// `sevctl session`).
    Session(owner::SessionArgs),
    /// Guest owner: build LAUNCH_SECRET packets (like `sevctl secret`).
    #[command(subcommand)]
    Secret(owner::SecretCommand),
    /// Measure sevkit's throughput next to OpenSSL in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The software AMD-SP: serve it on a Unix socket, create, inspect and
    /// export its identity.
    #[command(subcommand)]
    Firmware(firmware::FirmwareCommand),
    /// The host launch path: QEMU's -machine/-object sev-guest|sev-snp-guest
    /// command line (or --config TOML), the launch sequence on the software
    /// AMD-SP, and a QMP socket (-qmp).
    Launch(launch::LaunchArgs),
    /// Debug an encrypted guest through its QMP socket.
    #[command(subcommand)]
    Debug(launch::DebugCommand),
    /// Play guest owner, host and AMD-SP for an SEV-ES and an SNP guest:
    /// every protocol step, the measurements, the verdicts, the secret.
    Demo(demo::DemoArgs),
    /// CI attester: launch an OVMF image as an SNP guest through the VMM on
    /// the software AMD-SP (in process, or a daemon with --firmware-socket),
    /// fetch its attestation report and the host's certificates.
    Attest(attest::AttestArgs),
}

/// How a command ended.
pub enum Status {
    /// Everything checked out.
    Ok,
    /// A verification failed (exit 1).
    Failed,
}

/// Whether a command holds private keys or guest secrets in this process
/// (the software AMD-SP's identity, TEK/TIK, VMPCKs): it runs without core
/// dumps and out of reach of same-user debuggers.
fn holds_secrets(command: &Command) -> bool {
    matches!(
        command,
        Command::Session(_)
            | Command::Secret(_)
            | Command::Bench(_)
            | Command::Firmware(_)
            | Command::Launch(_)
            | Command::Demo(_)
            | Command::Attest(_)
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if holds_secrets(&cli.command) {
        if let Err(e) = sev_os::disable_core_dumps() {
            eprintln!("sevkit: error: cannot keep private keys out of core dumps: {e}");
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Command::Show(cmd) => show::run(&cmd).map(|()| Status::Ok),
        Command::Verify(cmd) => verify::run(&cmd),
        Command::Measure(args) => measure::run(&args),
        Command::Session(args) => owner::run_session(&args).map(|()| Status::Ok),
        Command::Secret(cmd) => owner::run_secret(&cmd).map(|()| Status::Ok),
        Command::Bench(cmd) => bench::run(&cmd).map(|()| Status::Ok),
        Command::Firmware(cmd) => firmware::run(&cmd).map(|()| Status::Ok),
        Command::Attest(args) => attest::run(&args).map(|()| Status::Ok),
        Command::Demo(args) => demo::run(&args),
        Command::Launch(args) => launch::run(&args).map(|()| Status::Ok),
        Command::Debug(cmd) => launch::run_debug(&cmd).map(|()| Status::Ok),
    };
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sevkit: error: {e}");
            ExitCode::from(2)
        }
    }
}
