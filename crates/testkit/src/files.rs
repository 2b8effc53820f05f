//! What tests of files and directories look at: the names in a directory,
//! a file's permission bits (without following a symbolic link), and
//! setting them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The names in `dir` (hidden ones included), sorted.
///
/// # Panics
/// When `dir` cannot be listed or holds a name that is not UTF-8.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .into_string()
                .expect("a UTF-8 name")
        })
        .collect();
    names.sort();
    names
}

/// The permission bits of `path` itself (a symbolic link is not followed).
///
/// # Panics
/// When `path` does not exist.
pub fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// Sets the permission bits of `path` to `mode`.
///
/// # Panics
/// When they cannot be set.
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
