//! The SNP CPUID page validator on arbitrary pages: it never panics, and a
//! table it corrected validates on a second pass (corrections are a fixed
//! point), as a VMM retrying with the firmware's table expects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_firmware::snp::cpuid::{validate, CpuidPlatform};

fuzz_target!(|data: &[u8]| {
    let mut page = vec![0u8; 4096];
    let n = data.len().min(4096);
    page[..n].copy_from_slice(&data[..n]);
    let platform = CpuidPlatform {
        fms: 0x00A1_0F11,
        c_bit: 51,
    };
    if !validate(&mut page, platform) {
        assert!(validate(&mut page, platform), "a corrected table validates");
    }
    // Short pages are refused.
    let _ = validate(&mut page[..n], platform);
});
