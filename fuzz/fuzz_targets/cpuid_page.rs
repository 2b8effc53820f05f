//! The SNP CPUID page validator on arbitrary pages: it never panics, and a
//! table it corrected validates on a second pass (corrections are a fixed
//! point), as a VMM retrying with the firmware's table expects. The last
//! input byte (past the table) picks the product whose profile applies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::product::Product;
use sev_firmware::snp::cpuid::{validate, CpuidPlatform};

fuzz_target!(|data: &[u8]| {
    let mut page = vec![0u8; 4096];
    let n = data.len().min(4096);
    page[..n].copy_from_slice(&data[..n]);
    let product = match data.last().copied().unwrap_or(0) % 3 {
        0 => Product::Milan,
        1 => Product::Genoa,
        _ => Product::Turin,
    };
    let platform = CpuidPlatform::for_product(product);
    if !validate(&mut page, platform) {
        let corrected = page.clone();
        assert!(validate(&mut page, platform), "a corrected table validates");
        assert_eq!(page, corrected, "and stays unchanged");
    }
    // Short pages are refused.
    let _ = validate(&mut page[..n], platform);
});
