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
//! The state directory is a [`PrivateDir`]: it must belong to the user the
//! firmware runs as and must not be writable by group or others (it holds
//! the CUK and every private key), and every file in it is opened through
//! the directory's descriptor without following symbolic links
//! ([`StoreError::Dir`] otherwise).
//!
//! Writes are atomic ([`PrivateDir::write_atomic`]): the new content goes to
//! a new temporary file in the same directory, created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` at mode 0600, is flushed to disk, renamed
//! over the old file, and the directory is flushed, so a crash (even
//! `kill -9`) at any point leaves either the old or the new file, and no
//! other user can open the temporary file. Loading never repairs or
//! overwrites anything: a file that is not ours ([`StoreError::Foreign`]), of
//! another format version or kind, or damaged ([`StoreError::Corrupted`]) is
//! refused and left in place for the operator to inspect.

use std::path::{Path, PathBuf};

use sev_os::{FileMode, OsError, PrivateDir};
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
    pub const fn file_name(self) -> &'static str {
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

    /// What to do about a corrupted file of this kind: removing one is not
    /// harmless, and what it loses differs.
    pub fn corrupted_advice(self) -> &'static str {
        match self {
            Self::Chip => {
                "restore it from a backup; removing it gives the platform a new chip identity \
                 (new CEK, ARK and ASK: every certificate exported before stops verifying), and \
                 platform.sevfw and snp.sevfw, which belong to the old chip, must then go too"
            }
            Self::Platform => {
                "restore it from a backup, or remove it to give the platform new OCA, PEK and \
                 PDH keys (what PLATFORM_RESET does; guest owners need the new PDH)"
            }
            Self::Snp => {
                "restore it from a backup; do not simply remove it: that drops the TCB \
                 SNP_COMMIT committed (the anti-rollback floor: firmware older than it would be \
                 accepted again) and the SNP_CONFIG settings (reported TCB, chip id / chip key \
                 masking)"
            }
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
        "{path}: corrupted firmware state ({reason}); refusing to use or overwrite it: {}",
        .kind.corrupted_advice()
    )]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What the file holds (what removing it would lose).
        kind: StateKind,
        /// What is wrong.
        reason: String,
    },
    /// The state directory or a file in it cannot be used: not owned by
    /// the user the firmware runs as, writable by group or others, a
    /// symbolic link, not a regular file, or an I/O error. The message says
    /// what to fix.
    #[error(transparent)]
    Dir(#[from] OsError),
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
        kind,
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

/// The largest state file read: header, payload and checksum.
const MAX_FILE: u64 = HEADER_LEN as u64 + MAX_PAYLOAD + CHECKSUM_LEN as u64;

/// Loads the state file of `kind` from `dir`: `Ok(None)` when there is none.
/// The file must be a regular file of the directory's owner, not writable
/// by group or others, and not a symbolic link.
pub fn load(dir: &PrivateDir, kind: StateKind) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let path = dir.join(kind.file_name());
    let bytes = match dir.read(kind.file_name(), MAX_FILE, "a firmware state file") {
        Ok(Some(b)) => Zeroizing::new(b),
        Ok(None) => return Ok(None),
        Err(OsError::TooLarge { size, .. }) => {
            return Err(StoreError::Corrupted {
                path,
                kind,
                reason: match size {
                    Some(size) => format!("{size} bytes, more than any state file"),
                    None => "more bytes than any state file".into(),
                },
            })
        }
        Err(e) => return Err(e.into()),
    };
    decode(&path, kind, &bytes).map(Some)
}

/// Atomically replaces the state file of `kind` in `dir` with `payload`
/// (mode 0600; see the module documentation).
pub fn save(dir: &PrivateDir, kind: StateKind, payload: &[u8]) -> Result<(), StoreError> {
    let bytes = encode(kind, payload);
    dir.write_atomic(kind.file_name(), &bytes, FileMode::Private)?;
    Ok(())
}

/// Deletes the state file of `kind` (and any stale temporary file) from
/// `dir`. A missing file is not an error.
pub fn remove(dir: &PrivateDir, kind: StateKind) -> Result<(), StoreError> {
    dir.remove_stale_temps(kind.file_name())?;
    dir.remove(kind.file_name())?;
    Ok(())
}

/// Removes the temporary files a crash left behind (they never hold the
/// only copy of anything: the rename had not happened).
pub fn remove_stale_temp(dir: &PrivateDir, kind: StateKind) -> Result<(), StoreError> {
    dir.remove_stale_temps(kind.file_name())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn round_trip_and_refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = PrivateDir::open(tmp.path()).unwrap();
        let d = &dir;
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
        // No temporary file is left.
        assert_eq!(names(tmp.path()), ["platform.sevfw"]);

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
        let tmp = tempfile::tempdir().unwrap();
        let d = &PrivateDir::open(tmp.path()).unwrap();
        save(d, StateKind::Chip, b"old").unwrap();
        // A crash after writing the temporary file but before the rename
        // (the name of this version and of earlier ones).
        fs::write(d.join(".chip.sevfw.123.0.0.tmp"), b"half-writ").unwrap();
        fs::write(d.join(".chip.sevfw.tmp"), b"half-writ").unwrap();
        assert_eq!(&load(d, StateKind::Chip).unwrap().unwrap()[..], b"old");
        remove_stale_temp(d, StateKind::Chip).unwrap();
        assert_eq!(names(tmp.path()), ["chip.sevfw"]);
    }

    #[test]
    fn corrupted_snp_state_is_not_advised_away() {
        let tmp = tempfile::tempdir().unwrap();
        let d = &PrivateDir::open(tmp.path()).unwrap();
        save(d, StateKind::Snp, b"payload").unwrap();
        let path = d.join(StateKind::Snp.file_name());
        let mut bad = fs::read(&path).unwrap();
        bad[0x18] ^= 1;
        fs::write(&path, &bad).unwrap();
        let err = load(d, StateKind::Snp).unwrap_err().to_string();
        assert!(err.contains("committed"), "{err}");
        assert!(err.contains("anti-rollback"), "{err}");
        assert!(!err.contains("give the platform a new identity"), "{err}");
    }

    #[test]
    fn state_files_are_0600_and_symlinks_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let d = &PrivateDir::open(tmp.path()).unwrap();
        let old = rustix::process::umask(rustix::fs::Mode::empty());
        let saved = save(d, StateKind::Platform, b"keys");
        rustix::process::umask(old);
        saved.unwrap();
        let path = d.join(StateKind::Platform.file_name());
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        // A symbolic link at the chip file is refused, not followed.
        let elsewhere = tmp.path().join("elsewhere");
        fs::write(&elsewhere, &encode(StateKind::Chip, b"x")[..]).unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.join(StateKind::Chip.file_name())).unwrap();
        assert!(matches!(
            load(d, StateKind::Chip),
            Err(StoreError::Dir(OsError::Symlink { .. }))
        ));
    }
}
