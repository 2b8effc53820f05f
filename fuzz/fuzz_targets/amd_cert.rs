//! AMD ARK/ASK binary certificate parser: never panics, round-trips, and the
//! self-signature check handles any key it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::amd_cert::AmdCert;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = AmdCert::from_bytes(data) {
        assert_eq!(cert.to_bytes(), data);
        let _ = cert.signed_bytes();
        let _ = sev_crypto::legacy_cert::verify_amd_by_amd(&cert, &cert);
    }
});
