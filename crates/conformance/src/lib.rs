//! Helpers shared by the conformance tests: where the real AMD vectors are.
//!
//! The vectors live in `shared/vectors` beside the project checkout (CI puts
//! them there), or wherever `SEVKIT_VECTORS` points at build time. Tests that
//! need them carry
//! `#[cfg_attr(not(sevkit_vectors), ignore = "needs shared/vectors (set SEVKIT_VECTORS)")]`.

use std::path::PathBuf;

/// The vectors directory found at build time, if any.
pub fn vectors_dir() -> Option<PathBuf> {
    let dir = env!("SEVKIT_VECTORS_DIR");
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Reads a file below the vectors directory.
///
/// # Panics
/// When the vectors are absent or the file cannot be read; only call it from
/// tests that are ignored without vectors.
pub fn read_vector(relative: &str) -> Vec<u8> {
    let dir = vectors_dir().expect("shared/vectors not found at build time");
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
