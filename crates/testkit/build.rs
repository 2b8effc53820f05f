//! Finds Cargo's target directory for the chip cache: the directory above
//! `OUT_DIR` that holds Cargo's `CACHEDIR.TAG`. Its `tmp` is where Cargo
//! points `CARGO_TARGET_TMPDIR` for integration tests, so the cache is the
//! one those tests used before.

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let target = out
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    println!(
        "cargo::rustc-env=SEVKIT_TESTKIT_TMPDIR={}",
        target.join("tmp").display()
    );
}
