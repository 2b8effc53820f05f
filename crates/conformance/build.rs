//! Finds the shared test vectors (real AMD data) at build time, so that tests
//! needing them are marked `#[ignore]` with a reason when they are absent
//! instead of passing silently.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sevkit_vectors)");
    println!("cargo::rerun-if-env-changed=SEVKIT_VECTORS");
    let dir = match std::env::var_os("SEVKIT_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    };
    println!("cargo::rerun-if-changed={}", dir.display());
    if dir.join("README.md").is_file() {
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo::rustc-cfg=sevkit_vectors");
        println!("cargo::rustc-env=SEVKIT_VECTORS_DIR={}", dir.display());
    } else {
        println!("cargo::rustc-env=SEVKIT_VECTORS_DIR=");
    }
}
