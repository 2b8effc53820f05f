//! Signing and verifying SNP attestation reports as raw bytes.
//!
//! The report is 0x4A0 bytes; bytes `[0, 0x2A0)` are signed with ECDSA
//! P-384 / SHA-384 and the signature sits at `0x2A0..0x4A0` in AMD's layout
//! (`r[72]` LE, `s[72]` LE, 368 zero bytes).

use sev_abi::signature::EcdsaSignature;

use crate::ecdsa::{P384PublicKey, P384SigningKey};
use crate::{CryptoError, Result};

/// Length of an attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// Length of the signed prefix of a report (also the signature offset).
pub const REPORT_SIGNED_LEN: usize = 0x2A0;

const SIG_LEN: usize = REPORT_LEN - REPORT_SIGNED_LEN;

fn check_len(report: &[u8]) -> Result<()> {
    if report.len() == REPORT_LEN {
        Ok(())
    } else {
        Err(CryptoError::BadLength {
            what: "attestation report",
            expected: REPORT_LEN,
            actual: report.len(),
        })
    }
}

/// Reads the signature slot of a report.
fn signature_of(report: &[u8]) -> EcdsaSignature {
    let slot = &report[REPORT_SIGNED_LEN..];
    let mut sig = EcdsaSignature {
        r: [0; 72],
        s: [0; 72],
        reserved: [0; SIG_LEN - 144],
    };
    sig.r.copy_from_slice(&slot[..72]);
    sig.s.copy_from_slice(&slot[72..144]);
    sig.reserved.copy_from_slice(&slot[144..]);
    sig
}

/// Verifies a report's signature with the VCEK (or VLEK) public key.
///
/// Fails when the report is not exactly [`REPORT_LEN`] bytes, when the
/// signature slot has non-zero padding (including an all-zero, unsigned
/// report, which fails as a bad signature), or when the signature does not
/// verify over the raw bytes `[0, REPORT_SIGNED_LEN)`.
pub fn verify_report_signature(report: &[u8], vcek: &P384PublicKey) -> Result<()> {
    check_len(report)?;
    let sig = signature_of(report);
    vcek.verify_sha384(&report[..REPORT_SIGNED_LEN], &sig)
}

/// Signs `report[0..REPORT_SIGNED_LEN)` and writes the signature slot.
pub fn sign_report(report: &mut [u8], key: &P384SigningKey) -> Result<()> {
    check_len(report)?;
    let sig = key.sign_sha384(&report[..REPORT_SIGNED_LEN])?;
    let slot = &mut report[REPORT_SIGNED_LEN..];
    slot[..72].copy_from_slice(&sig.r);
    slot[72..144].copy_from_slice(&sig.s);
    slot[144..].copy_from_slice(&sig.reserved);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_tamper() {
        let key = P384SigningKey::generate();
        let mut report = vec![0u8; REPORT_LEN];
        for (i, b) in report[..REPORT_SIGNED_LEN].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        sign_report(&mut report, &key).unwrap();
        assert!(report[REPORT_SIGNED_LEN + 48..REPORT_SIGNED_LEN + 72]
            .iter()
            .all(|b| *b == 0));
        assert!(report[REPORT_SIGNED_LEN + 144..].iter().all(|b| *b == 0));
        let vcek = key.public_key();
        verify_report_signature(&report, &vcek).unwrap();

        for offset in [0, 4, 0x50, 0x90, 0x1F8, REPORT_SIGNED_LEN - 1] {
            let mut bad = report.clone();
            bad[offset] ^= 0x01;
            assert!(
                verify_report_signature(&bad, &vcek).is_err(),
                "offset {offset:#x}"
            );
        }
        for offset in [
            0x2A0,
            0x2A0 + 47,
            0x2A0 + 72,
            0x2A0 + 60,
            0x2A0 + 200,
            REPORT_LEN - 1,
        ] {
            let mut bad = report.clone();
            bad[offset] ^= 0x01;
            assert!(
                verify_report_signature(&bad, &vcek).is_err(),
                "offset {offset:#x}"
            );
        }
        assert!(verify_report_signature(&report[..REPORT_LEN - 1], &vcek).is_err());
        let mut long = report.clone();
        long.push(0);
        assert!(matches!(
            verify_report_signature(&long, &vcek),
            Err(CryptoError::BadLength { .. })
        ));
        assert!(sign_report(&mut long, &key).is_err());

        let mut unsigned = report.clone();
        unsigned[REPORT_SIGNED_LEN..].fill(0);
        assert!(verify_report_signature(&unsigned, &vcek).is_err());
    }
}
