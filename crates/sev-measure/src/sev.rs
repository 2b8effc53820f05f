//! The SEV and SEV-ES launch digest (SHA-256 over everything
//! LAUNCH_UPDATE_DATA and LAUNCH_UPDATE_VMSA measured, in order) and the
//! LAUNCH_MEASURE measurement the AMD-SP returns over it.
//!
//! ```text
//! LD      = SHA-256(firmware || [padded hashes table] || [VMSA_0 || … || VMSA_{n-1}])
//! MEASURE = HMAC-SHA256(TIK, 0x04 || api_major || api_minor || build || u32 policy || LD || MNONCE)
//! blob    = MEASURE || MNONCE     (48 bytes; QEMU query-sev-launch-measure returns it in base64)
//! ```

use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::policy::GuestPolicy;
use sev_abi::session::LaunchMeasurement;
use sev_crypto::packet::{ct_eq, launch_measurement};
use sev_crypto::session::Tik;
use sha2::{Digest, Sha256};
use zerocopy::IntoBytes;

use crate::log::{DigestAlgorithm, LaunchLog, LogPageType};

/// A running SEV/SEV-ES launch digest with its log.
#[derive(Debug, Clone)]
pub struct SevDigestBuilder {
    hasher: Sha256,
    log: LaunchLog,
}

impl Default for SevDigestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SevDigestBuilder {
    /// An empty digest.
    pub fn new() -> Self {
        Self {
            hasher: Sha256::new(),
            log: LaunchLog::new(DigestAlgorithm::Sha256, None),
        }
    }

    /// Measures a blob (LAUNCH_UPDATE_DATA, or LAUNCH_UPDATE_VMSA when
    /// `page_type` is VMSA).
    pub fn update(&mut self, region: &str, gpa: Option<u64>, page_type: LogPageType, data: &[u8]) {
        self.hasher.update(data);
        let content: [u8; 32] = Sha256::digest(data).into();
        let so_far: [u8; 32] = self.hasher.clone().finalize().into();
        self.log
            .push(region, gpa, page_type, data.len() as u64, &content, &so_far);
    }

    /// The log so far.
    pub fn log(&self) -> &LaunchLog {
        &self.log
    }

    /// The digest of everything measured so far.
    pub fn digest(&self) -> SevLaunchDigest {
        SevLaunchDigest::new(self.hasher.clone().finalize().into())
    }

    /// Ends the digest, returning it and the log.
    pub fn finish(self) -> (SevLaunchDigest, LaunchLog) {
        (
            SevLaunchDigest::new(self.hasher.finalize().into()),
            self.log,
        )
    }
}

/// The platform and guest values LAUNCH_MEASURE covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchMeasureParams {
    /// Firmware API major version.
    pub api_major: u8,
    /// Firmware API minor version.
    pub api_minor: u8,
    /// Firmware build.
    pub build: u8,
    /// Guest policy.
    pub policy: GuestPolicy,
    /// The nonce the firmware chose (MNONCE).
    pub nonce: [u8; 16],
}

/// The LAUNCH_MEASURE blob (`MEASURE || MNONCE`) the AMD-SP would return
/// for launch digest `digest`.
pub fn launch_measure_blob(
    tik: &Tik,
    params: &LaunchMeasureParams,
    digest: &SevLaunchDigest,
) -> LaunchMeasurement {
    let mac = launch_measurement(
        tik,
        params.api_major,
        params.api_minor,
        params.build,
        params.policy,
        digest,
        &params.nonce,
    );
    LaunchMeasurement::new(mac, params.nonce)
}

/// Checks a LAUNCH_MEASURE blob against the expected launch digest, in
/// constant time. The nonce is taken from the blob.
pub fn check_launch_measure_blob(
    tik: &Tik,
    api_major: u8,
    api_minor: u8,
    build: u8,
    policy: GuestPolicy,
    digest: &SevLaunchDigest,
    blob: &LaunchMeasurement,
) -> bool {
    let params = LaunchMeasureParams {
        api_major,
        api_minor,
        build,
        policy,
        nonce: blob.mnonce,
    };
    ct_eq(
        launch_measure_blob(tik, &params, digest).as_bytes(),
        blob.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_running_digest() {
        let mut ld = SevDigestBuilder::new();
        ld.update("ovmf", Some(0xffff_f000), LogPageType::SevData, b"abc");
        ld.update("vmsa[0]", None, LogPageType::Vmsa, b"def");
        let first = ld.log().entries[0].digest_after.clone();
        let (digest, log) = ld.finish();
        assert_eq!(
            first.as_slice(),
            &<[u8; 32]>::from(Sha256::digest(b"abc"))[..]
        );
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(b"abcdef")));
        assert_eq!(log.final_digest(), Some(&digest[..]));
        assert_eq!(log.entries[1].length, 3);
    }

    #[test]
    fn blob_round_trip() {
        let tik = Tik::new([5; 16]);
        let params = LaunchMeasureParams {
            api_major: 1,
            api_minor: 40,
            build: 40,
            policy: GuestPolicy::from_raw(3),
            nonce: [9; 16],
        };
        let blob = launch_measure_blob(&tik, &params, &SevLaunchDigest::new([1; 32]));
        assert_eq!(blob.as_bytes()[32..], [9; 16]);
        assert!(check_launch_measure_blob(
            &tik,
            1,
            40,
            40,
            GuestPolicy::from_raw(3),
            &SevLaunchDigest::new([1; 32]),
            &blob
        ));
        assert!(!check_launch_measure_blob(
            &tik,
            1,
            40,
            40,
            GuestPolicy::from_raw(7),
            &SevLaunchDigest::new([1; 32]),
            &blob
        ));
        let mut bad = blob;
        bad.measurement[0] ^= 1;
        assert!(!check_launch_measure_blob(
            &tik,
            1,
            40,
            40,
            GuestPolicy::from_raw(3),
            &SevLaunchDigest::new([1; 32]),
            &bad
        ));
    }
}
