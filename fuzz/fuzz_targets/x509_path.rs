//! X.509 certificate path: DER parsing, AMD extension decoding and signature
//! verification of a fuzzed certificate by itself and by AMD's Milan ASK.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_attest::vcek::EndorsementInfo;
use sev_crypto::x509::X509Cert;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = X509Cert::from_der(data) {
        let _ = cert.tbs_der();
        let _ = cert.subject_common_name();
        let _ = cert.issuer_common_name();
        let _ = cert.validity();
        let _ = cert.public_key();
        let _ = EndorsementInfo::from_cert(&cert);
        let _ = cert.verify_issued_by(&cert);
        if let Some(roots) = sev_attest::roots::snp_roots(sev_abi::product::Product::Milan) {
            let _ = cert.verify_issued_by(&roots.ask);
        }
    }
});
