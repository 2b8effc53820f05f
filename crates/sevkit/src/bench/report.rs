//! `sevkit bench report`: SNP attestation reports per second per core
//! through the software AMD-SP's guest-request path, next to OpenSSL's
//! ECDSA P-384 sign/s measured in the same run (goal: at least 80%).
//!
//! One report is a whole guest exchange on one thread: the guest library
//! seals MSG_REPORT_REQ under VMPCK0, `snp::guest_request::handle` opens it,
//! checks the sequence number, builds the report, signs it with the VCEK
//! (ECDSA P-384 / SHA-384) and seals MSG_REPORT_RSP, and the guest opens
//! the response and parses the report. The signature dominates, so OpenSSL's
//! sign/s is the ceiling.

use serde_json::json;
use sev_abi::guest_msg::KeySelect;
use sev_abi::product::Product;
use sev_firmware::snp::guest_request::{
    handle, standalone_guest, standalone_platform, FixedEndorsementKeys,
};
use sev_firmware::snp::GuestRequestEnv;
use sev_guest::GuestChannel;

use crate::input::InputError;

/// Runs the benchmark.
pub fn run(args: &super::BenchArgs) -> Result<(), InputError> {
    let keys = FixedEndorsementKeys::generate(false);
    let vmpck = [[0x11; 32], [0x22; 32], [0x33; 32], [0x44; 32]];
    let mut gctx = standalone_guest(vmpck);
    let platform = standalone_platform(Product::Genoa);
    let mut channel =
        GuestChannel::new(&vmpck[0], 0, 0).map_err(|e| InputError::Invalid(e.to_string()))?;
    // One checked exchange first: the timed loop does the same work.
    let page = channel
        .request_report([0x5A; 64], 0, KeySelect::Vcek)
        .map_err(|e| InputError::Invalid(e.to_string()))?;
    let mut env = GuestRequestEnv {
        gctx: &mut gctx,
        platform: &platform,
        keys: &keys,
    };
    let rsp = handle(&mut env, &page).map_err(|s| InputError::Invalid(s.to_string()))?;
    let report = channel
        .open_report_response(&rsp)
        .map_err(|e| InputError::Invalid(e.to_string()))?;
    sev_crypto::report::verify_report_signature(
        zerocopy::IntoBytes::as_bytes(&report),
        &keys.vcek_public(),
    )
    .map_err(|e| InputError::Invalid(format!("benchmark report does not verify: {e}")))?;
    let mut failure: Option<String> = None;
    let duration = std::time::Duration::from_secs(args.seconds.max(1));
    let reports = super::rate(duration, || {
        if failure.is_some() {
            return;
        }
        let result = channel
            .request_report([0x5A; 64], 0, KeySelect::Vcek)
            .map_err(|e| e.to_string())
            .and_then(|page| {
                let mut env = GuestRequestEnv {
                    gctx: &mut gctx,
                    platform: &platform,
                    keys: &keys,
                };
                handle(&mut env, &page).map_err(|s| s.to_string())
            })
            .and_then(|rsp| {
                channel
                    .open_report_response(&rsp)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        return Err(InputError::Invalid(format!("guest request failed: {e}")));
    }
    let openssl = if args.no_openssl {
        None
    } else {
        super::openssl_ecdsap384(args.seconds.max(1)).map(|(sign, _)| sign)
    };
    if args.json {
        let value = json!({
            "reports_per_s": reports,
            "openssl_ecdsap384_sign_per_s": openssl,
            "ratio": openssl.map(|o| reports / o),
        });
        outln!("{value}");
        return Ok(());
    }
    outln!(
        "{:<44} {:>12} {:>12} {:>8}",
        "measurement (one core)",
        "sevkit/s",
        "openssl/s",
        "ratio"
    );
    let name = "SNP reports (MSG_REPORT_REQ round trip)";
    if let Some(o) = openssl {
        outln!("{name:<44} {reports:>12.0} {o:>12.0} {:>7.2}x", reports / o);
    } else {
        outln!("{name:<44} {reports:>12.0} {:>12} {:>8}", "-", "-");
        if !args.no_openssl {
            outln!("(openssl not found: no comparison)");
        }
    }
    Ok(())
}
