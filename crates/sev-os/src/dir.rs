//! Directories that hold secrets.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::file::{read_fd_bounded, temp_affixes, write_atomic_at};
use crate::{FileMode, OsError};

/// A directory checked to be private: owned by the effective user and not
/// writable by group or others. Every file operation goes through the
/// directory's descriptor, without following symbolic links, and checks the
/// file the same way.
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn check(path: &Path, stat: &Stat, want: FileType) -> Result<(), OsError> {
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != want {
        return Err(match want {
            FileType::Directory => OsError::NotADirectory {
                path: path.to_owned(),
            },
            _ => OsError::NotAFile {
                path: path.to_owned(),
            },
        });
    }
    let uid = rustix::process::geteuid().as_raw();
    if stat.st_uid != uid {
        return Err(OsError::NotOwned {
            path: path.to_owned(),
            owner: stat.st_uid,
            uid,
        });
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(OsError::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

impl PrivateDir {
    /// Opens the existing directory `path` and checks it
    /// ([`OsError::Missing`] when there is none). `path` itself must not be
    /// a symbolic link.
    pub fn open(path: &Path) -> Result<Self, OsError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            // O_NOFOLLOW | O_DIRECTORY on a symbolic link gives ENOTDIR.
            if e == rustix::io::Errno::NOTDIR && is_symlink(path) {
                OsError::Symlink {
                    path: path.to_owned(),
                }
            } else {
                OsError::errno(path, "open", e)
            }
        })?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| OsError::errno(path, "stat", e))?;
        check(path, &stat, FileType::Directory)?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// Opens `path`, creating it first (mode 0700 whatever the umask;
    /// missing parents as `mkdir -p` makes them, but never writable by
    /// group or others, so nobody else can rename the directory away) when
    /// it does not exist.
    pub fn create(path: &Path) -> Result<Self, OsError> {
        match Self::open(path) {
            Err(OsError::Missing { .. }) => {}
            other => return other,
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| OsError::io(parent, "create", e))?;
        }
        match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
            // Someone created it meanwhile: it is checked like any other.
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(OsError::errno(path, "create", e)),
        }
        let dir = Self::open(path)?;
        rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(0o700))
            .map_err(|e| OsError::errno(path, "chmod", e))?;
        Ok(dir)
    }

    /// The directory's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the directory (for messages).
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn open_file(&self, name: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd, OsError> {
        let path = self.join(name);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
        .map_err(|e| OsError::errno(&path, "open", e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| OsError::errno(&path, "stat", e))?;
        check(&path, &stat, FileType::RegularFile)?;
        Ok(fd)
    }

    /// Reads file `name` whole (at most `max` bytes; `what` names it in
    /// errors): `Ok(None)` when there is none. The file must be a regular
    /// file of the user's, not writable by group or others.
    pub fn read(
        &self,
        name: &str,
        max: u64,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, OsError> {
        match self.open_file(name, OFlags::RDONLY, Mode::empty()) {
            Ok(fd) => read_fd_bounded(fd, &self.join(name), max, what).map(Some),
            Err(OsError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces file `name` atomically with `bytes` at `mode` (see
    /// [`crate::write_atomic`]).
    pub fn write_atomic(&self, name: &str, bytes: &[u8], mode: FileMode) -> Result<(), OsError> {
        write_atomic_at(self.fd.as_fd(), &self.path, OsStr::new(name), bytes, mode)
    }

    /// Deletes file `name` (a missing one is not an error) and flushes the
    /// directory.
    pub fn remove(&self, name: &str) -> Result<(), OsError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(OsError::errno(self.join(name), "remove", e)),
        }
        rustix::fs::fsync(&self.fd).map_err(|e| OsError::errno(&self.path, "fsync directory", e))
    }

    /// Removes the temporary files an interrupted [`Self::write_atomic`] of
    /// `name` left behind (they never hold the only copy of anything: the
    /// rename had not happened).
    pub fn remove_stale_temps(&self, name: &str) -> Result<(), OsError> {
        let (prefix, suffix) = temp_affixes(OsStr::new(name));
        // A new open file description: a duplicate of `self.fd` would share
        // its position, which the previous listing left at the end.
        let fresh = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| OsError::errno(&self.path, "read directory", e))?;
        let mut dir = rustix::fs::Dir::new(fresh)
            .map_err(|e| OsError::errno(&self.path, "read directory", e))?;
        let mut stale = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| OsError::errno(&self.path, "read directory", e))?;
            let bytes = entry.file_name().to_bytes();
            if bytes.starts_with(&prefix) && bytes.ends_with(suffix) {
                stale.push(bytes.to_vec());
            }
        }
        for name in stale {
            match rustix::fs::unlinkat(&self.fd, OsStr::from_bytes(&name), AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => {
                    return Err(OsError::errno(
                        self.path.join(OsStr::from_bytes(&name)),
                        "remove",
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    /// Opens (creating it at 0600 if needed) file `name` for a lock: checked
    /// like every file here, never through a symbolic link.
    pub fn lock_file(&self, name: &str) -> Result<File, OsError> {
        self.open_file(
            name,
            OFlags::RDWR | OFlags::CREATE,
            Mode::from_raw_mode(0o600),
        )
        .map(File::from)
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn created_0700_whatever_the_umask() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("a/b/state");
        let old = rustix::process::umask(Mode::empty());
        let dir = PrivateDir::create(&path);
        rustix::process::umask(old);
        dir.unwrap();
        assert_eq!(mode_of(&path), 0o700);
        // The parents it made are not writable by group or others.
        assert_eq!(mode_of(&base.path().join("a")), 0o755);
        assert_eq!(mode_of(&base.path().join("a/b")), 0o755);
    }

    #[test]
    fn group_or_other_writable_is_refused_with_the_fix() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("state");
        std::fs::create_dir(&path).unwrap();
        for mode in [0o777, 0o1777, 0o770, 0o702] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = PrivateDir::open(&path).unwrap_err();
            assert!(matches!(err, OsError::Writable { .. }), "{mode:o}: {err}");
            assert!(err.to_string().contains("chmod go-w"), "{err}");
            // create() opens an existing directory: it is refused too.
            assert!(PrivateDir::create(&path).is_err());
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        PrivateDir::open(&path).unwrap();
    }

    #[test]
    fn symlinked_directory_and_files_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            PrivateDir::open(&link),
            Err(OsError::Symlink { .. })
        ));
        let dir = PrivateDir::open(&real).unwrap();
        let elsewhere = base.path().join("elsewhere");
        std::fs::write(&elsewhere, b"x").unwrap();
        std::os::unix::fs::symlink(&elsewhere, real.join("chip.sevfw")).unwrap();
        assert!(matches!(
            dir.read("chip.sevfw", 100, "state"),
            Err(OsError::Symlink { .. })
        ));
    }

    #[test]
    fn wide_files_are_refused_and_missing_ones_are_none() {
        let base = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&base.path().join("s")).unwrap();
        assert!(dir.read("f", 10, "state").unwrap().is_none());
        dir.write_atomic("f", b"abc", FileMode::Private).unwrap();
        assert_eq!(dir.read("f", 10, "state").unwrap().unwrap(), b"abc");
        assert_eq!(mode_of(&dir.join("f")), 0o600);
        std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            dir.read("f", 10, "state"),
            Err(OsError::Writable { .. })
        ));
        dir.remove("f").unwrap();
        dir.remove("f").unwrap();
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let base = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&base.path().join("s")).unwrap();
        std::fs::write(dir.join(".chip.sevfw.1.2.3.tmp"), b"x").unwrap();
        std::fs::write(dir.join(".chip.sevfw.tmp"), b"x").unwrap();
        std::fs::write(dir.join("chip.sevfw"), b"keep").unwrap();
        std::fs::write(dir.join(".platform.sevfw.1.tmp"), b"keep").unwrap();
        dir.remove_stale_temps("chip.sevfw").unwrap();
        // A second listing sees the whole directory again.
        std::fs::write(dir.join(".snp.sevfw.tmp"), b"x").unwrap();
        dir.remove_stale_temps("snp.sevfw").unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".platform.sevfw.1.tmp", "chip.sevfw"]);
    }
}
