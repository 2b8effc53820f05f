//! The TOML front end on arbitrary text: never panics, and whatever parses
//! survives the canonical command line (`to_qemu_args` then
//! `from_qemu_args` gives an equal `VmConfig`: the module documents one
//! `VmConfig` for both front ends and that `to_qemu_args` parses back to
//! an equal configuration; TOML paths are UTF-8, so nothing is lossy);
//! the host check never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::Product;
use sev_vmm::config::{HostCaps, VmConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = VmConfig::from_toml(text) else {
        return;
    };
    let canonical = cfg.to_qemu_args();
    let again = VmConfig::from_qemu_args(&canonical)
        .unwrap_or_else(|e| panic!("canonical line {canonical:?} does not parse: {e}"));
    assert_eq!(
        again, cfg,
        "canonical line {canonical:?} parses to another config"
    );
    for product in [Product::Genoa, Product::Naples] {
        let host = HostCaps::for_product(product);
        let _ = cfg.validate(&host);
    }
});
