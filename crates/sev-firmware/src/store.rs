//! State files: the only place the firmware touches the file system.
//!
//! A state file is
//!
//! ```text
//! 0x00 magic[8]        "SEVKITFW"
//! 0x08 u32 version     FORMAT_VERSION
//! 0x0C u32 kind        1 = chip (fuses + emulated AMD root), 2 = platform (OCA/PEK/PDH),
//!                      3 = SNP (committed TCB, SNP_CONFIG)
//! 0x10 u64 length      payload length
//! 0x18 payload[length]
//!      sha256[32]      over every byte before it
//! ```
//!
//! Writes are atomic: the new content goes to a temporary file in the same
//! directory, is flushed to disk, renamed over the old file, and the
//! directory is flushed, so a crash (even `kill -9`) at any point leaves
//! either the old or the new file. Loading never repairs or overwrites
//! anything: a file that is not ours ([`StoreError::Foreign`]), of another
//! format version or kind, or damaged ([`StoreError::Corrupted`]) is refused
//! and left in place for the operator to inspect.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The first eight bytes of every state file.
pub const MAGIC: [u8; 8] = *b"SEVKITFW";
/// The state file format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the fixed header.
const HEADER_LEN: usize = 0x18;
/// Length of the trailing checksum.
const CHECKSUM_LEN: usize = 32;
/// Largest payload accepted (the real payloads are a few KiB).
const MAX_PAYLOAD: u64 = 1 << 20;

/// What a state file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum StateKind {
    /// The chip: CUK ("fuses") and the emulated AMD ARK/ASK with their
    /// private keys. Survives PLATFORM_RESET, as silicon does.
    Chip = 1,
    /// The platform's persistent store: OCA, PEK and PDH. Deleted by
    /// PLATFORM_RESET.
    Platform = 2,
    /// The SNP platform's persistent state: the TCB SNP_COMMIT committed
    /// and the configuration SNP_CONFIG set (reported TCB, MASK_CHIP_ID,
    /// MASK_CHIP_KEY). Survives PLATFORM_RESET.
    Snp = 3,
}

impl StateKind {
    /// The file name of this kind inside the state directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Chip => "chip.sevfw",
            Self::Platform => "platform.sevfw",
            Self::Snp => "snp.sevfw",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Chip => "chip",
            Self::Platform => "platform",
            Self::Snp => "SNP",
        }
    }
}

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file does not start with the state-file magic: it is not a
    /// sevkit firmware state file.
    #[error(
        "{path}: not a sevkit firmware state file (no SEVKITFW magic); refusing to use or \
         overwrite it: point the firmware at another state directory or move the file away"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The file is a state file of an unknown format version.
    #[error(
        "{path}: state file format version {version}, this build reads version {FORMAT_VERSION}; \
         refusing to use or overwrite it"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The file holds another kind of state (e.g. a chip file renamed).
    #[error("{path}: holds {found} state, expected {expected} state; refusing to use it")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// What was expected.
        expected: &'static str,
        /// What the header says (`unknown` for an unknown kind).
        found: &'static str,
    },
    /// Length or checksum do not match, or the payload does not decode.
    #[error(
        "{path}: corrupted firmware state ({reason}); refusing to use or overwrite it: restore \
         it from a backup, or remove it to give the platform a new identity"
    )]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Encodes a payload into the state-file format.
pub fn encode(kind: StateKind, payload: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        HEADER_LEN + payload.len() + CHECKSUM_LEN,
    ));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(kind as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let sum = Sha256::digest(&out[..]);
    out.extend_from_slice(&sum);
    out
}

/// Decodes a state file's bytes, checking magic, version, kind, length and
/// checksum. `path` is only used in errors.
pub fn decode(
    path: &Path,
    kind: StateKind,
    bytes: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let corrupted = |reason: String| StoreError::Corrupted {
        path: path.to_owned(),
        reason,
    };
    let Some(magic) = bytes.get(..MAGIC.len()) else {
        // A prefix of our magic is a truncated state file; anything else
        // is someone else's file.
        return Err(if MAGIC.starts_with(bytes) && !bytes.is_empty() {
            corrupted(format!("truncated to {} bytes", bytes.len()))
        } else {
            StoreError::Foreign {
                path: path.to_owned(),
            }
        });
    };
    if magic != MAGIC {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
        });
    }
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(corrupted(format!("truncated to {} bytes", bytes.len())));
    };
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion {
            path: path.to_owned(),
            version,
        });
    }
    let found = word(12);
    if found != kind as u32 {
        return Err(StoreError::WrongKind {
            path: path.to_owned(),
            expected: kind.name(),
            found: match found {
                1 => StateKind::Chip.name(),
                2 => StateKind::Platform.name(),
                3 => StateKind::Snp.name(),
                _ => "unknown",
            },
        });
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&header[16..24]);
    let len = u64::from_le_bytes(len_bytes);
    if len > MAX_PAYLOAD {
        return Err(corrupted(format!("payload length {len} is implausible")));
    }
    let expected = HEADER_LEN + len as usize + CHECKSUM_LEN;
    if bytes.len() != expected {
        return Err(corrupted(format!(
            "file is {} bytes, its header says {expected}",
            bytes.len()
        )));
    }
    let (body, sum) = bytes.split_at(HEADER_LEN + len as usize);
    if Sha256::digest(body).as_slice() != sum {
        return Err(corrupted("checksum mismatch".into()));
    }
    Ok(Zeroizing::new(body[HEADER_LEN..].to_vec()))
}

/// Loads the state file of `kind` from `dir`: `Ok(None)` when there is none.
pub fn load(dir: &Path, kind: StateKind) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let path = dir.join(kind.file_name());
    let bytes = match fs::read(&path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    decode(&path, kind, &bytes).map(Some)
}

/// Atomically replaces the state file of `kind` in `dir` with `payload`.
pub fn save(dir: &Path, kind: StateKind, payload: &[u8]) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(kind.file_name());
    let tmp = temp_path(dir, kind);
    let bytes = encode(kind, payload);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        restrict_permissions(&file, &tmp)?;
        file.write_all(&bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

/// Deletes the state file of `kind` (and any stale temporary file) from
/// `dir`. A missing file is not an error.
pub fn remove(dir: &Path, kind: StateKind) -> Result<(), StoreError> {
    for path in [dir.join(kind.file_name()), temp_path(dir, kind)] {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    if dir.exists() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes a temporary file a crash left behind (it never holds the only
/// copy of anything: the rename had not happened).
pub fn remove_stale_temp(dir: &Path, kind: StateKind) -> Result<(), StoreError> {
    let tmp = temp_path(dir, kind);
    match fs::remove_file(&tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&tmp)(e)),
    }
}

fn temp_path(dir: &Path, kind: StateKind) -> PathBuf {
    dir.join(format!(".{}.tmp", kind.file_name()))
}

#[cfg(unix)]
fn restrict_permissions(file: &File, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err(path))
}

#[cfg(not(unix))]
fn restrict_permissions(_file: &File, _path: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(load(d, StateKind::Platform).unwrap().is_none());
        save(d, StateKind::Platform, b"payload").unwrap();
        assert_eq!(
            &load(d, StateKind::Platform).unwrap().unwrap()[..],
            b"payload"
        );
        save(d, StateKind::Platform, b"second").unwrap();
        assert_eq!(
            &load(d, StateKind::Platform).unwrap().unwrap()[..],
            b"second"
        );
        assert!(!temp_path(d, StateKind::Platform).exists());

        let path = d.join(StateKind::Platform.file_name());
        let good = fs::read(&path).unwrap();
        for i in [9, 13, 17, 0x18, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            fs::write(&path, &bad).unwrap();
            let err = load(d, StateKind::Platform).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Corrupted { .. }
                        | StoreError::UnsupportedVersion { .. }
                        | StoreError::WrongKind { .. }
                ),
                "byte {i}: {err}"
            );
            // Refused, never overwritten.
            assert_eq!(fs::read(&path).unwrap(), bad);
        }
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(
            load(d, StateKind::Platform),
            Err(StoreError::Corrupted { .. })
        ));
        fs::write(&path, &good[..5]).unwrap();
        assert!(matches!(
            load(d, StateKind::Platform),
            Err(StoreError::Corrupted { .. })
        ));
        fs::write(&path, b"").unwrap();
        assert!(matches!(
            load(d, StateKind::Platform),
            Err(StoreError::Foreign { .. })
        ));
        fs::write(&path, b"{\"json\": true}").unwrap();
        let err = load(d, StateKind::Platform).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }));
        assert!(err.to_string().contains("not a sevkit firmware state file"));

        // A chip file where the platform file should be.
        fs::write(&path, &encode(StateKind::Chip, b"x")[..]).unwrap();
        assert!(matches!(
            load(d, StateKind::Platform),
            Err(StoreError::WrongKind { .. })
        ));
        // An SNP state file where the platform file should be.
        fs::write(&path, &encode(StateKind::Snp, b"x")[..]).unwrap();
        let err = load(d, StateKind::Platform).unwrap_err();
        assert!(err.to_string().contains("holds SNP state"), "{err}");

        remove(d, StateKind::Platform).unwrap();
        assert!(!path.exists());
        remove(d, StateKind::Platform).unwrap();
    }

    #[test]
    fn stale_temp_file_is_ignored_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        save(d, StateKind::Chip, b"old").unwrap();
        // A crash after writing the temporary file but before the rename.
        fs::write(temp_path(d, StateKind::Chip), b"half-writ").unwrap();
        assert_eq!(&load(d, StateKind::Chip).unwrap().unwrap()[..], b"old");
        remove_stale_temp(d, StateKind::Chip).unwrap();
        assert!(!temp_path(d, StateKind::Chip).exists());
    }
}
