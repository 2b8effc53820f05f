//! Atomic writes and bounded reads.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::OsError;

/// The permissions a written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// 0600 exactly, whatever the umask: keys, TEK/TIK, firmware state.
    Private,
    /// 0644 less the umask: certificates, reports, measurements.
    Public,
}

impl FileMode {
    fn bits(self) -> Mode {
        match self {
            Self::Private => Mode::from_raw_mode(0o600),
            Self::Public => Mode::from_raw_mode(0o644),
        }
    }
}

/// Writes `bytes` to `path` atomically (see the crate documentation): the
/// file appears whole at `mode` or not at all. A symbolic link at `path` is
/// replaced, never followed. The directory holding `path` must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), OsError> {
    let (dir_path, name) = split(path)?;
    let dir = rustix::fs::open(
        dir_path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| OsError::errno(dir_path, "open directory", e))?;
    write_atomic_at(dir.as_fd(), dir_path, name, bytes, mode)
}

/// The directory (`.` for a bare name) and the file name of `path`.
pub(crate) fn split(path: &Path) -> Result<(&Path, &OsStr), OsError> {
    let name = path.file_name().ok_or_else(|| OsError::NotAFile {
        path: path.to_owned(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// Counter that makes temporary names unique within the process (the pid
/// makes them unique across processes; `O_EXCL` makes any clash harmless).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The prefix and suffix of every temporary name for `name`.
pub(crate) fn temp_affixes(name: &OsStr) -> (Vec<u8>, &'static [u8]) {
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.push(b'.');
    (prefix, b".tmp")
}

/// Creates a new temporary file for `name` in `dir` at `mode`.
fn create_temp(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &OsStr,
    mode: FileMode,
) -> Result<(OwnedFd, Vec<u8>), OsError> {
    let (prefix, suffix) = temp_affixes(name);
    let mut last = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut temp = prefix.clone();
        temp.extend_from_slice(format!("{}.{n}.{nanos:08x}", std::process::id()).as_bytes());
        temp.extend_from_slice(suffix);
        match rustix::fs::openat(
            dir,
            OsStr::from_bytes(&temp),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode.bits(),
        ) {
            Ok(fd) => {
                if mode == FileMode::Private {
                    // The umask may have removed bits; 0600 is asked for.
                    if let Err(e) = rustix::fs::fchmod(&fd, mode.bits()) {
                        let _ =
                            rustix::fs::unlinkat(dir, OsStr::from_bytes(&temp), AtFlags::empty());
                        return Err(OsError::errno(
                            dir_path.join(OsStr::from_bytes(&temp)),
                            "chmod",
                            e,
                        ));
                    }
                }
                return Ok((fd, temp));
            }
            Err(rustix::io::Errno::EXIST) => last = Some(rustix::io::Errno::EXIST),
            Err(e) => {
                return Err(OsError::errno(
                    dir_path.join(OsStr::from_bytes(&temp)),
                    "create",
                    e,
                ))
            }
        }
    }
    Err(OsError::errno(
        dir_path.join(name),
        "create a temporary file",
        last.unwrap_or(rustix::io::Errno::EXIST),
    ))
}

/// Writes `bytes` to a new temporary file for `name` in `dir` at `mode`
/// and flushes it to disk; returns the temporary name. On failure the
/// temporary file is already gone.
fn prepare(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &OsStr,
    bytes: &[u8],
    mode: FileMode,
) -> Result<Vec<u8>, OsError> {
    let (fd, temp) = create_temp(dir, dir_path, name, mode)?;
    let temp_name = OsStr::from_bytes(&temp);
    let result = (|| {
        let mut file = File::from(fd);
        file.write_all(bytes)
            .map_err(|e| OsError::io(dir_path.join(temp_name), "write", e))?;
        file.sync_all()
            .map_err(|e| OsError::io(dir_path.join(temp_name), "fsync", e))
    })();
    if let Err(e) = result {
        // No partial file: the temporary file goes, the target is untouched.
        let _ = rustix::fs::unlinkat(dir, temp_name, AtFlags::empty());
        return Err(e);
    }
    Ok(temp)
}

/// Renames the temporary file `temp` over `name`; on failure the
/// temporary file is removed.
fn commit(dir: BorrowedFd<'_>, dir_path: &Path, temp: &[u8], name: &OsStr) -> Result<(), OsError> {
    let temp = OsStr::from_bytes(temp);
    rustix::fs::renameat(dir, temp, dir, name).map_err(|e| {
        let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
        OsError::errno(dir_path.join(name), "rename", e)
    })
}

/// [`write_atomic`] relative to an open directory.
pub(crate) fn write_atomic_at(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &OsStr,
    bytes: &[u8],
    mode: FileMode,
) -> Result<(), OsError> {
    let temp = prepare(dir, dir_path, name, bytes, mode)?;
    commit(dir, dir_path, &temp, name)?;
    rustix::fs::fsync(dir).map_err(|e| OsError::errno(dir_path, "fsync directory", e))
}

/// One file of [`write_atomic_all`].
#[derive(Debug, Clone, Copy)]
pub struct NewFile<'a> {
    /// Where the file goes (its directory must exist).
    pub path: &'a Path,
    /// Its content.
    pub bytes: &'a [u8],
    /// Its permissions.
    pub mode: FileMode,
}

/// A written, flushed temporary file waiting for its rename.
struct Pending<'a> {
    dir: OwnedFd,
    dir_path: &'a Path,
    name: &'a OsStr,
    temp: Vec<u8>,
}

impl Pending<'_> {
    fn discard(&self) {
        let _ = rustix::fs::unlinkat(&self.dir, OsStr::from_bytes(&self.temp), AtFlags::empty());
    }
}

/// Writes several files all or nothing: every file is first written to its
/// temporary file (as [`write_atomic`] does) and only when all of them are
/// on disk are they renamed into place, in order. A failure before the
/// renames (a full disk, a missing directory, a target that is a
/// directory) removes every temporary file and leaves all targets as they
/// were. A rename failing after others succeeded (which the checks before
/// make unlikely: it needs the file system to change meanwhile) leaves the
/// files renamed before it in place and the rest as they were.
pub fn write_atomic_all(files: &[NewFile<'_>]) -> Result<(), OsError> {
    let mut pending: Vec<Pending<'_>> = Vec::with_capacity(files.len());
    let discard_all = |pending: &[Pending<'_>]| pending.iter().for_each(Pending::discard);
    for file in files {
        let prepared = (|| {
            let (dir_path, name) = split(file.path)?;
            let dir = rustix::fs::open(
                dir_path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| OsError::errno(dir_path, "open directory", e))?;
            // A directory at the target would make its rename fail after
            // the others were done: refuse it now.
            if let Ok(stat) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                    return Err(OsError::NotAFile {
                        path: file.path.to_owned(),
                    });
                }
            }
            let temp = prepare(dir.as_fd(), dir_path, name, file.bytes, file.mode)?;
            Ok(Pending {
                dir,
                dir_path,
                name,
                temp,
            })
        })();
        match prepared {
            Ok(p) => pending.push(p),
            Err(e) => {
                discard_all(&pending);
                return Err(e);
            }
        }
    }
    for (i, p) in pending.iter().enumerate() {
        if let Err(e) = commit(p.dir.as_fd(), p.dir_path, &p.temp, p.name) {
            discard_all(&pending[i + 1..]);
            return Err(e);
        }
    }
    for p in &pending {
        rustix::fs::fsync(&p.dir).map_err(|e| OsError::errno(p.dir_path, "fsync directory", e))?;
    }
    Ok(())
}

/// Reads the file at `path` whole, refusing one larger than `max` bytes
/// before reading it (and stopping after `max + 1` bytes of a stream such
/// as `/dev/zero` or a pipe). `what` names the content in the error ("an
/// attestation report").
pub fn read_bounded(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, OsError> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| OsError::errno(path, "open", e))?;
    read_fd_bounded(fd, path, max, what)
}

/// [`read_bounded`] of an open file.
pub(crate) fn read_fd_bounded(
    fd: OwnedFd,
    path: &Path,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, OsError> {
    let stat = rustix::fs::fstat(&fd).map_err(|e| OsError::errno(path, "stat", e))?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind == FileType::Directory {
        return Err(OsError::NotAFile {
            path: path.to_owned(),
        });
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if kind == FileType::RegularFile && size > max {
        return Err(too_large(path, what, max, Some(size)));
    }
    // A regular file's size is known: read it without reallocating (no
    // stray copies of secret content in freed memory).
    let capacity = if kind == FileType::RegularFile {
        size
    } else {
        0
    };
    let mut out = Vec::with_capacity(usize::try_from(capacity.saturating_add(1)).unwrap_or(0));
    File::from(fd)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| OsError::io(path, "read", e))?;
    if out.len() as u64 > max {
        let size = (kind == FileType::RegularFile).then_some(out.len() as u64);
        return Err(too_large(path, what, max, size));
    }
    Ok(out)
}

fn too_large(path: &Path, what: &'static str, max: u64, size: Option<u64>) -> OsError {
    OsError::TooLarge {
        path: PathBuf::from(path),
        what,
        max,
        size,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn private_file_is_0600_whatever_the_umask_and_replaces_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        let out = dir.path().join("out.bin");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        let old = rustix::process::umask(Mode::empty());
        let result = write_atomic(&out, b"secret", FileMode::Private);
        rustix::process::umask(old);
        result.unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
        assert_eq!(std::fs::read(&out).unwrap(), b"secret");
        assert_eq!(mode_of(&out), 0o600);
    }

    #[test]
    fn existing_wide_file_is_replaced_at_0600() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tek.bin");
        std::fs::write(&out, b"old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&out, b"new", FileMode::Private).unwrap();
        assert_eq!(mode_of(&out), 0o600);
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        // Only the target remains: no temporary file.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the write.
        let out = dir.path().join("sub");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("x"), b"x").unwrap();
        assert!(write_atomic(&out, b"data", FileMode::Public).is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("sub")]);
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn several_files_all_at_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a_tek.bin"), dir.path().join("b.b64"));
        std::fs::write(&a, b"old").unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
        let old = rustix::process::umask(Mode::from_raw_mode(0o022));
        let result = write_atomic_all(&[
            NewFile {
                path: &a,
                bytes: b"secret",
                mode: FileMode::Private,
            },
            NewFile {
                path: &b,
                bytes: b"public",
                mode: FileMode::Public,
            },
        ]);
        rustix::process::umask(old);
        result.unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"secret");
        assert_eq!(mode_of(&a), 0o600);
        assert_eq!(std::fs::read(&b).unwrap(), b"public");
        assert_eq!(mode_of(&b), 0o644);
        assert_eq!(names_in(dir.path()), ["a_tek.bin", "b.b64"]);
    }

    #[test]
    fn one_failure_writes_none() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        std::fs::write(&first, b"keep").unwrap();
        let fresh = dir.path().join("fresh");
        // The third target is a directory, the fourth's directory does not
        // exist: either way nothing is written.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        for bad in [blocked.clone(), dir.path().join("none/x")] {
            let files = [
                NewFile {
                    path: &first,
                    bytes: b"new",
                    mode: FileMode::Private,
                },
                NewFile {
                    path: &fresh,
                    bytes: b"new",
                    mode: FileMode::Public,
                },
                NewFile {
                    path: &bad,
                    bytes: b"new",
                    mode: FileMode::Public,
                },
            ];
            assert!(write_atomic_all(&files).is_err(), "{}", bad.display());
            assert_eq!(std::fs::read(&first).unwrap(), b"keep");
            assert_eq!(names_in(dir.path()), ["blocked", "first"]);
        }
    }

    #[test]
    fn bounded_reads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, vec![7u8; 100]).unwrap();
        assert_eq!(read_bounded(&f, 100, "a test file").unwrap().len(), 100);
        let err = read_bounded(&f, 99, "a test file").unwrap_err();
        assert!(
            matches!(
                err,
                OsError::TooLarge {
                    size: Some(100),
                    max: 99,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("a test file is at most 99 bytes; this file is 100 bytes"));
        // A stream without a size stops after max + 1 bytes.
        let err = read_bounded(Path::new("/dev/zero"), 4096, "a report").unwrap_err();
        assert!(matches!(err, OsError::TooLarge { size: None, .. }), "{err}");
        assert!(err.to_string().contains("longer than 4096 bytes"), "{err}");
        assert!(matches!(
            read_bounded(dir.path(), 10, "x"),
            Err(OsError::NotAFile { .. })
        ));
        assert!(read_bounded(&dir.path().join("none"), 10, "x")
            .unwrap_err()
            .is_missing());
    }
}
