//! The QEMU command-line front end on arbitrary argument vectors: never
//! panics, and whatever parses comes back unchanged through the canonical
//! command line (`to_qemu_args` parses to an equal `VmConfig`, as its
//! documentation promises); the host check never panics either.
//!
//! Input: the arguments separated by NUL bytes (an empty input is an empty
//! command line); inputs that are not UTF-8 are skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::Product;
use sev_vmm::config::{HostCaps, VmConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\0').collect()
    };
    let Ok(cfg) = VmConfig::from_qemu_args(&args) else {
        return;
    };
    let canonical = cfg.to_qemu_args();
    let again = VmConfig::from_qemu_args(&canonical)
        .unwrap_or_else(|e| panic!("canonical line {canonical:?} of {args:?} does not parse: {e}"));
    assert_eq!(
        again, cfg,
        "canonical line {canonical:?} of {args:?} parses to another config"
    );
    // Emitting is deterministic on equal configurations.
    assert_eq!(again.to_qemu_args(), canonical);
    for product in [Product::Genoa, Product::Naples] {
        let _ = cfg.validate(&HostCaps::for_product(product));
    }
});
