//! Build-time detection of what the tests can compare against, shared by the
//! build scripts of the crates whose tests need it.
//!
//! A test that needs real AMD data or a peer tool must not pass silently
//! where they are missing: it is marked
//! `#[cfg_attr(not(CFG), ignore = "why")]`, with one of these cfgs, which are
//! set here when the thing is present at build time:
//!
//! | cfg | set when | env for the test |
//! |---|---|---|
//! | `sevkit_vectors` | `shared/vectors` beside the checkout, or `$SEVKIT_VECTORS` | `SEVKIT_VECTORS_DIR` |
//! | `sevkit_sev_snp_measure` | `sev-snp-measure` (PyPI) is on `PATH` | |
//! | `sevkit_sevctl` | `sevctl` (crates.io) is on `PATH` | |
//! | `sevkit_snpguest` | `snpguest` (crates.io) is on `PATH` | |
//! | `sevkit_debian_ovmf` | Debian's `ovmf` package is installed (`/usr/share/ovmf/OVMF.fd`) | |
//! | `sevkit_qemu_qmp` | `python3 -c "import qemu.qmp"` succeeds (PyPI `qemu.qmp`, QEMU's QMP client) | |
//!
//! CI (`.ci/run`) installs every peer, so there every such test runs.
//!
//! [`peer_program`] finds a peer's executable at run time, for the tests and
//! benchmarks that start it.

use std::path::{Path, PathBuf};

/// Every cfg this crate may set.
pub const CFGS: &[&str] = &[
    "sevkit_vectors",
    "sevkit_sev_snp_measure",
    "sevkit_sevctl",
    "sevkit_snpguest",
    "sevkit_debian_ovmf",
    "sevkit_qemu_qmp",
];

/// The first file named `program` in a `PATH` directory.
fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn on_path(program: &str) -> bool {
    find_on_path(program).is_some()
}

/// A peer's executable: the first `program` on `PATH`, seen through a pyenv
/// shim when there is one (a shim is a bash script that costs ~0.1 s per
/// call before Python even starts, which would swamp a timing and slow a
/// test matrix). Not found: `program` itself, so that running it fails
/// with the usual "not found".
pub fn peer_program(program: &str) -> PathBuf {
    let Some(found) = find_on_path(program) else {
        return PathBuf::from(program);
    };
    let shim = found
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "shims");
    if shim {
        if let Ok(out) = std::process::Command::new("pyenv")
            .args(["which", program])
            .output()
        {
            let real = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && real.is_file() {
                return real;
            }
        }
    }
    found
}

/// Prints the `cargo::` lines for a build script. `manifest_dir` is the
/// calling crate's `CARGO_MANIFEST_DIR` (two levels below the checkout).
pub fn emit(manifest_dir: &Path) {
    for cfg in CFGS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    println!("cargo::rerun-if-env-changed=SEVKIT_VECTORS");
    println!("cargo::rerun-if-env-changed=PATH");
    let vectors = match std::env::var_os("SEVKIT_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => manifest_dir.join("../../../shared/vectors"),
    };
    println!("cargo::rerun-if-changed={}", vectors.display());
    if vectors.join("README.md").is_file() {
        let vectors = vectors.canonicalize().unwrap_or(vectors);
        println!("cargo::rustc-cfg=sevkit_vectors");
        println!("cargo::rustc-env=SEVKIT_VECTORS_DIR={}", vectors.display());
    } else {
        println!("cargo::rustc-env=SEVKIT_VECTORS_DIR=");
    }
    // A tool installed after the first build lands in a PATH directory:
    // watch those, so the next build notices it.
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths).filter(|d| d.is_dir()) {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
    for (program, cfg) in [
        ("sev-snp-measure", "sevkit_sev_snp_measure"),
        ("sevctl", "sevkit_sevctl"),
        ("snpguest", "sevkit_snpguest"),
    ] {
        if on_path(program) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    let ovmf = Path::new("/usr/share/ovmf/OVMF.fd");
    println!("cargo::rerun-if-changed={}", ovmf.display());
    if ovmf.is_file() {
        println!("cargo::rustc-cfg=sevkit_debian_ovmf");
    }
    // One interpreter start per build script run. Installing the package
    // puts its scripts (qmp-shell) in a PATH directory, which is watched
    // above, so a later install is noticed.
    println!("cargo::rerun-if-env-changed=PYTHONPATH");
    if python_imports("qemu.qmp") {
        println!("cargo::rustc-cfg=sevkit_qemu_qmp");
    }
}

/// Whether `python3 -c "import MODULE"` succeeds.
fn python_imports(module: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_program_finds_a_program_on_path_or_names_it() {
        let sh = peer_program("sh");
        assert!(sh.is_absolute() && sh.is_file(), "{}", sh.display());
        assert_eq!(sh.file_name().unwrap(), "sh");
        let missing = "sevkit-no-such-peer-program";
        assert_eq!(peer_program(missing), PathBuf::from(missing));
    }
}
