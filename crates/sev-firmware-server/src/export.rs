//! The platform's identity as files, in AMD's formats, as `sevctl export`
//! writes them: `pdh.cert`, `pek.cert`, `oca.cert`, `cek.cert` (2084-byte
//! `sev_cert`s) and `ask.cert`, `ark.cert` (AMD certificate format; for the
//! software AMD-SP the emulated root, key ids `sevkitEM…`).

use std::io;
use std::path::{Path, PathBuf};

use sev_abi::amd_cert::AmdCert;
use sev_abi::commands::{InitBuffer, PdhCertExportBuffer, PlatformStatusBuffer, SevCommand};
use sev_abi::legacy_cert::{SevCert, SEV_CERT_LEN};
use sev_abi::status::FirmwareStatus;
use sev_firmware::{Firmware, PlatformState, SystemMemory, VecMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

/// The files [`ExportedIdentity::write_to`] writes, in chain order.
pub const EXPORT_FILES: [&str; 6] = [
    "pdh.cert", "pek.cert", "oca.cert", "cek.cert", "ask.cert", "ark.cert",
];

/// Why the identity could not be exported or read back.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A firmware command failed.
    #[error("{command} failed: {} ({:#x})", status.name().unwrap_or("unknown status"), status.code())]
    Firmware {
        /// The command.
        command: &'static str,
        /// AMD's status.
        status: FirmwareStatus,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The files could not be written (the message names the file).
    #[error(transparent)]
    Write(#[from] sev_os::OsError),
    /// A certificate does not parse.
    #[error("{name}: {reason}")]
    Parse {
        /// The file (or certificate) name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The six certificates of a legacy SEV platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedIdentity {
    /// Platform Diffie-Hellman key, signed by the PEK.
    pub pdh: SevCert,
    /// Platform Endorsement Key, signed by the OCA and the CEK.
    pub pek: SevCert,
    /// Owner Certificate Authority.
    pub oca: SevCert,
    /// Chip Endorsement Key, signed by the ASK.
    pub cek: SevCert,
    /// AMD Signing Key (emulated), signed by the ARK.
    pub ask: AmdCert,
    /// AMD Root Key (emulated), self-signed.
    pub ark: AmdCert,
}

fn expect(command: SevCommand, status: FirmwareStatus) -> Result<(), ExportError> {
    if status == FirmwareStatus::SUCCESS {
        Ok(())
    } else {
        Err(ExportError::Firmware {
            command: command.name(),
            status,
        })
    }
}

impl ExportedIdentity {
    /// Exports from a firmware: INIT first if the platform is UNINIT (which
    /// mints and persists OCA, PEK and PDH if it has none) and SHUTDOWN again
    /// after, then PDH_CERT_EXPORT; ARK and ASK come from the chip.
    pub fn from_firmware(fw: &mut Firmware) -> Result<Self, ExportError> {
        let mut mem = VecMemory::new(0x10000);
        let mut status = PlatformStatusBuffer::new_zeroed();
        expect(
            SevCommand::PlatformStatus,
            fw.call(SevCommand::PlatformStatus, &mut status, &mut mem),
        )?;
        let was_uninit = status.state == PlatformState::Uninit as u8;
        if was_uninit {
            let mut init = InitBuffer::new_zeroed();
            expect(
                SevCommand::Init,
                fw.call(SevCommand::Init, &mut init, &mut mem),
            )?;
        }
        let mut b = PdhCertExportBuffer::new_zeroed();
        b.pdh_paddr = U64::new(0x1000);
        b.pdh_len = U32::new(SEV_CERT_LEN as u32);
        b.chain_paddr = U64::new(0x2000);
        b.chain_len = U32::new(3 * SEV_CERT_LEN as u32);
        let exported = fw.call(SevCommand::PdhCertExport, &mut b, &mut mem);
        if was_uninit {
            let mut none = [0u8; 0];
            fw.execute(SevCommand::Shutdown.id(), &mut none, &mut mem);
        }
        expect(SevCommand::PdhCertExport, exported)?;
        let cert = |name: &str, paddr: u64| -> Result<SevCert, ExportError> {
            let mut bytes = vec![0u8; SEV_CERT_LEN];
            mem.read(paddr, &mut bytes)
                .map_err(|e| ExportError::Parse {
                    name: name.into(),
                    reason: e.to_string(),
                })?;
            SevCert::from_bytes(&bytes).map_err(|e| ExportError::Parse {
                name: name.into(),
                reason: e.to_string(),
            })
        };
        let step = SEV_CERT_LEN as u64;
        Ok(Self {
            pdh: cert("pdh", 0x1000)?,
            pek: cert("pek", 0x2000)?,
            oca: cert("oca", 0x2000 + step)?,
            cek: cert("cek", 0x2000 + 2 * step)?,
            ask: fw.chip().ask().clone(),
            ark: fw.chip().ark().clone(),
        })
    }

    /// The files and their bytes, in [`EXPORT_FILES`] order.
    pub fn files(&self) -> [(&'static str, Vec<u8>); 6] {
        [
            (EXPORT_FILES[0], self.pdh.as_bytes().to_vec()),
            (EXPORT_FILES[1], self.pek.as_bytes().to_vec()),
            (EXPORT_FILES[2], self.oca.as_bytes().to_vec()),
            (EXPORT_FILES[3], self.cek.as_bytes().to_vec()),
            (EXPORT_FILES[4], self.ask.to_bytes()),
            (EXPORT_FILES[5], self.ark.to_bytes()),
        ]
    }

    /// Writes the six files into `dir` (created if needed), all or none:
    /// each is written to a new temporary file (mode 0644 less the umask)
    /// and flushed, and only then are they renamed into place
    /// ([`sev_os::write_atomic_all`]), so a reader never sees half a
    /// certificate and a failure leaves no partial set.
    pub fn write_to(&self, dir: &Path) -> Result<(), ExportError> {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let files = self.files();
        let paths: Vec<PathBuf> = files.iter().map(|(name, _)| dir.join(name)).collect();
        let new: Vec<sev_os::NewFile<'_>> = files
            .iter()
            .zip(&paths)
            .map(|((_, bytes), path)| sev_os::NewFile {
                path,
                bytes,
                mode: sev_os::FileMode::Public,
            })
            .collect();
        sev_os::write_atomic_all(&new)?;
        Ok(())
    }

    /// Reads the six files back from `dir`.
    pub fn read_from(dir: &Path) -> Result<Self, ExportError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ExportError::Io { path, source })
        };
        let sev = |name: &str| -> Result<SevCert, ExportError> {
            SevCert::from_bytes(&read(name)?).map_err(|e| ExportError::Parse {
                name: name.into(),
                reason: e.to_string(),
            })
        };
        let amd = |name: &str| -> Result<AmdCert, ExportError> {
            AmdCert::from_bytes(&read(name)?).map_err(|e| ExportError::Parse {
                name: name.into(),
                reason: e.to_string(),
            })
        };
        Ok(Self {
            pdh: sev("pdh.cert")?,
            pek: sev("pek.cert")?,
            oca: sev("oca.cert")?,
            cek: sev("cek.cert")?,
            ask: amd("ask.cert")?,
            ark: amd("ark.cert")?,
        })
    }
}
