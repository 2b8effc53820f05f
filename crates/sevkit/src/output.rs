//! Writing the files sevkit produces: every one through [`sev_os`]'s atomic
//! write (a new temporary file in the target's directory, created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` at its final mode, flushed, renamed over
//! the target), so a reader sees the old file or the new one, a failure
//! (a full disk) leaves nothing behind, a symbolic link at the target is
//! replaced rather than followed, and secrets are 0600 even where a wider
//! file was before.

use std::path::{Path, PathBuf};

pub use sev_os::FileMode;

use crate::input::InputError;

fn write_error(e: &sev_os::OsError) -> InputError {
    InputError::Invalid(format!("cannot write: {e}"))
}

/// Refuses `path` when its directory does not exist, naming the file.
fn check_dir(path: &Path) -> Result<(), InputError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(InputError::Invalid(format!(
            "cannot write {}: {} is not an existing directory",
            path.display(),
            dir.display()
        )))
    }
}

/// Creates the output directory `dir` (and its parents) if missing.
pub fn create_dir(dir: &Path) -> Result<(), InputError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| InputError::Invalid(format!("cannot create {}: {e}", dir.display())))
}

/// Writes one file (see the module documentation).
pub fn write(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), InputError> {
    check_dir(path)?;
    sev_os::write_atomic(path, bytes, mode)
        .map_err(|e| InputError::Invalid(format!("cannot write {}: {e}", path.display())))
}

/// Writes several files that belong together, all or none: if any cannot
/// be written, none is.
pub fn write_all(files: &[(PathBuf, &[u8], FileMode)]) -> Result<(), InputError> {
    for (path, _, _) in files {
        check_dir(path)?;
    }
    // Other errors name the file's temporary name (`.NAME.….tmp`) or its
    // directory.
    let files: Vec<sev_os::NewFile<'_>> = files
        .iter()
        .map(|(path, bytes, mode)| sev_os::NewFile {
            path,
            bytes,
            mode: *mode,
        })
        .collect();
    sev_os::write_atomic_all(&files).map_err(|e| write_error(&e))
}

/// Creates a new private (0700) scratch directory under the system's
/// temporary directory, named after `prefix` and the process: never one
/// that already exists (another user could have made it, with a symbolic
/// link waiting inside). The caller removes it.
pub fn scratch_dir(prefix: &str) -> Result<PathBuf, InputError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut last = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "{prefix}-{}-{attempt}-{nanos:08x}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(InputError::Invalid(format!(
                    "cannot create {}: {e}",
                    dir.display()
                )))
            }
        }
    }
    Err(InputError::Invalid(format!(
        "cannot create a scratch directory in {}: {}",
        base.display(),
        last.map_or_else(String::new, |e| e.to_string())
    )))
}
