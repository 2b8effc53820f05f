//! Attestation report parser: never panics; a parsed report re-serializes to
//! the input, and every accessor works on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::report::AttestationReport;
use zerocopy::IntoBytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = AttestationReport::from_bytes(data) {
        assert_eq!(report.as_bytes(), data);
        let _ = report.policy().validate();
        let _ = report.key_info();
        let _ = report.platform_info();
        let _ = report.cpuid();
        let _ = report.mitigation_vectors();
        let _ = report.product_hint();
        let _ = report.reserved_nonzero();
        let _ = report.signature.to_be_scalars();
        let _ = format!("{report:?}");
    }
});
