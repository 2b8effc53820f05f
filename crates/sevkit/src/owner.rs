//! The guest owner's launch tools: `sevkit session` (like `sevctl session`)
//! and `sevkit secret build` (like `sevctl secret build`).

use std::path::{Path, PathBuf};

use base64::Engine;
use clap::{Args, Subcommand};
use sev_abi::legacy_cert::{SevCert, SEV_CERT_LEN};
use sev_abi::session::{LaunchMeasurement, LAUNCH_MEASUREMENT_LEN};
use sev_abi::{GuestPolicy, Guid};
use sev_crypto::session::{Tek, Tik};
use sev_owner::secret::{build_secret_packet, SecretTable};
use sev_owner::session::{decode_key, pdh_public_key, SessionFileNames, SessionFiles};
use zerocopy::IntoBytes;

use sev_os::excerpt;

use crate::input::{self, invalid, InputError, SECRET_NOT_SHOWN};
use crate::number;
use crate::output::{self, FileMode};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `sevkit session`: a launch session for a platform's PDH.
///
/// Writes PREFIX_godh.b64 and PREFIX_session.b64 (base64, for QEMU's
/// `sev-guest` `dh-cert-file` and `session-file`) and PREFIX_tek.bin and
/// PREFIX_tik.bin (16 raw bytes each, mode 0600: keep them secret), exactly
/// as `sevctl session` does. The PDH certificate is not verified: check the
/// platform's chain first (`sevkit verify`).
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// The platform's PDH certificate (`sev_cert`, 0x824 bytes; binary,
    /// base64 or hex), or a chain file that starts with it (`sevctl
    /// export`).
    #[arg(long, value_name = "FILE")]
    pub pdh: PathBuf,
    /// The guest policy the host will launch with (decimal, or hex after
    /// `0x`).
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "0",
        value_parser = number::guest_policy()
    )]
    pub policy: GuestPolicy,
    /// File-name prefix.
    #[arg(long, value_name = "PREFIX", default_value = sev_owner::session::DEFAULT_NAME)]
    pub name: String,
    /// Directory to write the four files into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Replace files of the same name that exist: without it an existing
    /// file is refused, since a TEK / TIK pair may belong to a launch that
    /// still needs it.
    #[arg(long)]
    pub force: bool,
}

/// `sevkit secret ...`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Build a LAUNCH_SECRET packet (header and encrypted payload) holding
    /// secrets in OVMF's secret-table format, like `sevctl secret build`.
    ///
    /// The header (0x34 bytes) and payload are written as raw binary; QEMU's
    /// `sev-inject-launch-secret` takes them base64-encoded.
    Build(SecretBuildArgs),
}

/// Arguments of `sevkit secret build`.
#[derive(Debug, Args)]
pub struct SecretBuildArgs {
    /// The TIK: a 16-byte file (`*_tik.bin`), or base64.
    #[arg(long, value_name = "FILE|B64")]
    pub tik: String,
    /// The TEK: a 16-byte file (`*_tek.bin`), or base64.
    #[arg(long, value_name = "FILE|B64")]
    pub tek: String,
    /// The LAUNCH_MEASURE output (48 bytes: measurement || mnonce), base64
    /// as QEMU's query-sev-launch-measure prints it, or a file.
    #[arg(long, value_name = "B64|FILE")]
    pub launch_measure_blob: String,
    /// A secret: its GUID and the file holding its bytes. Repeatable; the
    /// entries keep the command-line order.
    #[arg(long, value_name = "GUID:FILE")]
    pub secret: Vec<String>,
    /// Where to write the packet header (binary, 0x34 bytes).
    #[arg(long, value_name = "OUT")]
    pub header: PathBuf,
    /// Where to write the encrypted payload (binary).
    #[arg(long, value_name = "OUT")]
    pub payload: PathBuf,
    /// Fixed IV (16 bytes, base64) instead of a random one; for tests only
    /// (sevctl has the same hidden option).
    #[arg(long, value_name = "B64", hide = true)]
    pub iv: Option<String>,
}

/// Reads the PDH certificate: binary (optionally followed by the rest of a
/// chain), base64, or hex / PEM text.
fn read_pdh(path: &Path) -> Result<SevCert, InputError> {
    let raw = input::read(path, input::MAX_CERT_FILE, "a PDH certificate or chain")?;
    let bytes = if raw.len() >= SEV_CERT_LEN && raw.starts_with(&1u32.to_le_bytes()) {
        raw
    } else if let Ok(decoded) = B64.decode(raw.trim_ascii()) {
        decoded
    } else {
        input::decode(&raw)?.first().to_vec()
    };
    if bytes.len() < SEV_CERT_LEN || !bytes.len().is_multiple_of(SEV_CERT_LEN) {
        return Err(invalid(format!(
            "{}: a PDH certificate is {SEV_CERT_LEN} bytes (or a chain of such \
             certificates starting with the PDH), this is {} bytes",
            path.display(),
            bytes.len()
        )));
    }
    SevCert::from_bytes(&bytes[..SEV_CERT_LEN])
        .map_err(|e| invalid(format!("{}: not a PDH certificate: {e}", path.display())))
}

/// `sevkit session`.
pub fn run_session(a: &SessionArgs) -> Result<(), InputError> {
    if a.name.is_empty() || a.name.contains(std::path::is_separator) {
        return Err(invalid(format!(
            "--name {:?}: a file-name prefix without path separators is needed (use --out for the directory)",
            excerpt(&a.name)
        )));
    }
    let policy = a.policy;
    if policy.reserved_bits() != 0 {
        eprintln!(
            "sevkit: warning: policy {:#x} sets reserved bits {:#x}; the firmware refuses \
             LAUNCH_START with POLICY_FAILURE",
            policy.raw(),
            policy.reserved_bits()
        );
    }
    let cert = read_pdh(&a.pdh)?;
    let key = pdh_public_key(&cert).map_err(|e| invalid(format!("{}: {e}", a.pdh.display())))?;
    let files = SessionFiles::build(&key, policy, &mut rand_core::OsRng)
        .map_err(|e| invalid(format!("{}: {e}", a.pdh.display())))?;
    let names = SessionFileNames::new(&a.name);
    let godh = a.out.join(&names.godh);
    let session = a.out.join(&names.session);
    let tek = a.out.join(&names.tek);
    let tik = a.out.join(&names.tik);
    if !a.force {
        // A symbolic link counts as existing too (it is never followed).
        if let Some(existing) = [&tik, &tek, &session, &godh]
            .into_iter()
            .find(|p| std::fs::symlink_metadata(p).is_ok())
        {
            return Err(invalid(format!(
                "{} exists: it may hold the keys of a launch that still needs them; choose \
                 another --name or --out, or pass --force to replace the files",
                existing.display()
            )));
        }
    }
    output::create_dir(&a.out)?;
    // All four or none; the keys at 0600 even over an existing wider file,
    // and a symbolic link at any name is replaced, never followed.
    output::write_all(&[
        (tik.clone(), files.tik.as_bytes(), FileMode::Private),
        (tek.clone(), files.tek.as_bytes(), FileMode::Private),
        (
            session.clone(),
            files.session_b64.as_bytes(),
            FileMode::Public,
        ),
        (godh.clone(), files.godh_b64.as_bytes(), FileMode::Public),
    ])?;
    for path in [&godh, &session, &tek, &tik] {
        outln!("wrote {}", path.display());
    }
    Ok(())
}

/// Reads `--name` (`what` in errors): a 16-byte key file, or base64.
fn read_key(name: &'static str, what: &'static str, value: &str) -> Result<[u8; 16], InputError> {
    let bytes = input::path_or_base64(name, value, what)?;
    decode_key(name, &bytes).map_err(|_| {
        invalid(format!(
            "--{name}: the {} is 16 bytes, got {}{}",
            name.to_uppercase(),
            bytes.len(),
            if bytes.len() == 32 {
                " (a libvirt TK file holds TEK || TIK: split it)"
            } else {
                ""
            }
        ))
    })
}

fn read_blob(value: &str) -> Result<LaunchMeasurement, InputError> {
    let mut bytes = input::path_or_base64("launch-measure-blob", value, "a LAUNCH_MEASURE blob")?;
    // A file holding the base64 text QEMU prints.
    if bytes.len() != LAUNCH_MEASUREMENT_LEN {
        if let Ok(decoded) = B64.decode(bytes.trim_ascii()) {
            bytes = decoded;
        }
    }
    LaunchMeasurement::from_bytes(&bytes).map_err(|_| {
        invalid(format!(
            "--launch-measure-blob: the LAUNCH_MEASURE output is {LAUNCH_MEASUREMENT_LEN} bytes \
             (measurement || mnonce), got {}",
            bytes.len()
        ))
    })
}

/// Parses `--secret GUID:FILE` and reads the file. A malformed value may be
/// a secret pasted by mistake: errors do not repeat it.
fn read_secret(spec: &str) -> Result<(Guid, Vec<u8>), InputError> {
    let (guid, file) = spec.split_once(':').ok_or_else(|| {
        invalid(format!(
            "--secret: expected GUID:FILE, e.g. 736869e5-84f0-4973-92ec-06879ce3da0b:luks.key \
             ({SECRET_NOT_SHOWN})"
        ))
    })?;
    let guid = Guid::parse(guid).map_err(|e| {
        invalid(format!(
            "--secret: the part before ':' is not a GUID ({e}); {SECRET_NOT_SHOWN}"
        ))
    })?;
    let data = input::read(Path::new(file), input::MAX_SECRET_FILE, "a secret")?;
    Ok((guid, data))
}

/// `sevkit secret ...`.
pub fn run_secret(cmd: &SecretCommand) -> Result<(), InputError> {
    match cmd {
        SecretCommand::Build(a) => run_secret_build(a),
    }
}

fn run_secret_build(a: &SecretBuildArgs) -> Result<(), InputError> {
    let tek = Tek::new(read_key("tek", "a TEK", &a.tek)?);
    let tik = Tik::new(read_key("tik", "a TIK", &a.tik)?);
    let blob = read_blob(&a.launch_measure_blob)?;
    let mut table = SecretTable::new();
    for spec in &a.secret {
        let (guid, data) = read_secret(spec)?;
        table.push(guid, data);
    }
    let iv: [u8; 16] = if let Some(v) = &a.iv {
        let bytes = B64
            .decode(v.trim())
            .map_err(|e| invalid(format!("--iv: not base64 ({e})")))?;
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| invalid(format!("--iv: expected 16 bytes, got {}", bytes.len())))?
    } else {
        let mut iv = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut iv);
        iv
    };
    let plaintext = table.to_bytes().map_err(|e| invalid(e.to_string()))?;
    let (header, payload) = build_secret_packet(&tek, &tik, &blob, &plaintext, iv)
        .map_err(|e| invalid(e.to_string()))?;
    // Both or neither.
    output::write_all(&[
        (a.header.clone(), header.as_bytes(), FileMode::Public),
        (a.payload.clone(), payload.as_slice(), FileMode::Public),
    ])?;
    outln!("wrote header to {}", a.header.display());
    outln!("wrote payload to {}", a.payload.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_specs() {
        assert!(read_secret("no-colon").is_err());
        assert!(read_secret("not-a-guid:/dev/null").is_err());
        let (g, d) = read_secret("736869e5-84f0-4973-92ec-06879ce3da0b:/dev/null").unwrap();
        assert_eq!(g.to_string(), "736869e5-84f0-4973-92ec-06879ce3da0b");
        assert!(d.is_empty());
    }
}
