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

/// Reads a text file below the vectors directory (PEM, hex).
///
/// # Panics
/// As [`read_vector`], or when the file is not UTF-8.
pub fn read_text(relative: &str) -> String {
    String::from_utf8(read_vector(relative))
        .unwrap_or_else(|e| panic!("{relative}: not UTF-8: {e}"))
}

/// Reads a hex-text file below the vectors directory and decodes it
/// (whitespace ignored).
///
/// # Panics
/// As [`read_vector`], or when the file is not hex.
pub fn read_hex(relative: &str) -> Vec<u8> {
    let compact: String = read_text(relative)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    hex::decode(compact).unwrap_or_else(|_| panic!("{relative}: not hex"))
}
