//! Legacy `sev_cert` parser and its signature check against itself (as for
//! a self-signed OCA): never panics, round-trips byte-exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::legacy_cert::SevCert;
use zerocopy::IntoBytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = SevCert::from_bytes(data) {
        assert_eq!(cert.as_bytes(), data);
        let _ = cert.ecc_key();
        let _ = cert.rsa_key();
        let _ = cert.signatures();
        let _ = sev_crypto::legacy_cert::verify_sev_by_sev(&cert, &cert);
    }
});
