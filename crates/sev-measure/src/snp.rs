//! The SNP launch digest: a SHA-384 chain over PAGE_INFO records, one per
//! 4 KiB page (SNP_LAUNCH_UPDATE), recorded in a [`LaunchLog`].
//!
//! ```text
//! LD_0 = 48 zero bytes (or a precomputed seed)
//! LD_i = SHA-384(PAGE_INFO{LD_{i-1}, CONTENTS, 0x70, page type, imi 0, perms 0, gpa})
//! CONTENTS = SHA-384(page) for NORMAL and VMSA pages, zeros otherwise
//! ```

use rayon::prelude::*;
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::snp_launch::{PageInfo, PageType, LD_LEN};
use sha2::{Digest, Sha384};
use zerocopy::IntoBytes;

use crate::log::{DigestAlgorithm, LaunchLog, LogPageType};

/// The size of a page.
pub const PAGE_LEN: usize = 4096;

/// GPA KVM records for VMSA pages (`INITIAL_VMSA_GPA`).
pub const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// One step of the chain: the launch digest after measuring a page of
/// `page_type` at `gpa` whose PAGE_INFO CONTENTS is `contents`, with all
/// VMPL permissions zero and IMI off (what VMMs launch with).
pub fn extend(
    digest: &SnpLaunchDigest,
    contents: &[u8; LD_LEN],
    page_type: PageType,
    gpa: u64,
) -> SnpLaunchDigest {
    extend_with(digest, contents, page_type, false, [0; 3], gpa)
}

/// One step of the chain with the IMI_PAGE flag and VMPL1..3 permissions
/// as SNP_LAUNCH_UPDATE gives them: SHA-384 of the PAGE_INFO. The software
/// AMD-SP extends both its launch digest and its IMI digest with it.
pub fn extend_with(
    digest: &SnpLaunchDigest,
    contents: &[u8; LD_LEN],
    page_type: PageType,
    imi_page: bool,
    vmpl_perms: [u8; 3],
    gpa: u64,
) -> SnpLaunchDigest {
    let info = PageInfo::new(*digest, *contents, page_type, imi_page, vmpl_perms, gpa);
    SnpLaunchDigest::new(Sha384::digest(info.as_bytes()).into())
}

/// SHA-384 of one page (the CONTENTS of a NORMAL or VMSA page).
pub fn page_hash(page: &[u8]) -> [u8; LD_LEN] {
    Sha384::digest(page).into()
}

/// A running SNP launch digest with its log.
#[derive(Debug, Clone)]
pub struct SnpDigestBuilder {
    digest: SnpLaunchDigest,
    log: LaunchLog,
}

impl Default for SnpDigestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnpDigestBuilder {
    /// Starts from 48 zero bytes.
    pub fn new() -> Self {
        Self::with_seed(SnpLaunchDigest::default())
    }

    /// Starts from a precomputed digest (e.g. of the OVMF pages).
    pub fn with_seed(seed: SnpLaunchDigest) -> Self {
        Self {
            digest: seed,
            log: LaunchLog::new(DigestAlgorithm::Sha384, Some(seed.to_vec())),
        }
    }

    /// The current digest.
    pub fn digest(&self) -> SnpLaunchDigest {
        self.digest
    }

    /// The log so far.
    pub fn log(&self) -> &LaunchLog {
        &self.log
    }

    /// Ends the chain, returning the digest and the log.
    pub fn finish(self) -> (SnpLaunchDigest, LaunchLog) {
        (self.digest, self.log)
    }

    fn update(&mut self, region: &str, page_type: PageType, gpa: u64, contents: [u8; LD_LEN]) {
        self.digest = extend(&self.digest, &contents, page_type, gpa);
        self.log.push(
            region,
            Some(gpa),
            LogPageType::from_snp(page_type),
            PAGE_LEN as u64,
            &contents,
            &self.digest[..],
        );
    }

    /// Measures `data` as NORMAL pages from `gpa` up. A final partial page
    /// is hashed as it is (callers pass whole pages; OVMF images are).
    pub fn normal_pages(&mut self, region: &str, gpa: u64, data: &[u8]) {
        let mut page_gpa = gpa;
        for hash in page_hashes(data) {
            self.update(region, PageType::Normal, page_gpa, hash);
            page_gpa = page_gpa.wrapping_add(PAGE_LEN as u64);
        }
    }

    /// Measures `pages` pages of a content-less type (ZERO, UNMEASURED,
    /// SECRETS, CPUID) from `gpa` up.
    pub fn empty_pages(&mut self, region: &str, page_type: PageType, gpa: u64, pages: u64) {
        for i in 0..pages {
            let page_gpa = gpa.wrapping_add(i.wrapping_mul(PAGE_LEN as u64));
            self.update(region, page_type, page_gpa, [0; LD_LEN]);
        }
    }

    /// Measures a VMSA page at [`VMSA_GPA`].
    pub fn vmsa_page(&mut self, region: &str, page: &[u8]) {
        self.update(region, PageType::Vmsa, VMSA_GPA, page_hash(page));
    }
}

/// SHA-384 of each 4 KiB page of `data` (a final partial page as it is).
///
/// Page hashes are independent of each other (only the PAGE_INFO chain is
/// sequential), so a large image is hashed on all available cores (rayon's
/// pool): hashing is nearly all of the time `measure` takes.
fn page_hashes(data: &[u8]) -> Vec<[u8; LD_LEN]> {
    // Below this, handing pages to other threads costs more than it saves.
    const PARALLEL_MIN_BYTES: usize = 1 << 20;
    if data.len() < PARALLEL_MIN_BYTES {
        return data.chunks(PAGE_LEN).map(page_hash).collect();
    }
    data.par_chunks(PAGE_LEN).map(page_hash).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_page_hashes_equal_sequential_ones() {
        // 2 MiB plus a partial page: above the parallel threshold.
        let data: Vec<u8> = (0..(2 << 20) + 100)
            .map(|i: usize| (i * 31 % 251) as u8)
            .collect();
        let sequential: Vec<[u8; LD_LEN]> = data.chunks(PAGE_LEN).map(page_hash).collect();
        assert_eq!(page_hashes(&data), sequential);
        assert_eq!(page_hashes(&data[..PAGE_LEN * 3]), sequential[..3].to_vec());
    }

    #[test]
    fn extend_matches_the_byte_layout() {
        // PAGE_INFO as sev-snp-measure assembles it (its permission byte
        // order coincides with the firmware's when all are zero).
        let mut info = Vec::new();
        info.extend_from_slice(&[0u8; 48]);
        info.extend_from_slice(&[7u8; 48]);
        info.extend_from_slice(&0x70u16.to_le_bytes());
        info.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
        info.extend_from_slice(&0xffc0_0000u64.to_le_bytes());
        let expected: [u8; 48] = Sha384::digest(&info).into();
        assert_eq!(
            extend(
                &SnpLaunchDigest::default(),
                &[7; 48],
                PageType::Normal,
                0xffc0_0000
            ),
            expected
        );
    }

    #[test]
    fn log_tracks_every_page() {
        let mut ld = SnpDigestBuilder::new();
        ld.normal_pages("ovmf", 0xffff_e000, &[1u8; 8192]);
        ld.empty_pages("SNP_SEC_MEM", PageType::Zero, 0x80_0000, 3);
        ld.vmsa_page("vmsa[0]", &[0u8; 4096]);
        let (digest, log) = ld.finish();
        assert_eq!(log.entries.len(), 6);
        assert_eq!(log.entries[1].gpa, Some(0xffff_f000));
        assert_eq!(log.entries[4].gpa, Some(0x80_2000));
        assert_eq!(log.final_digest(), Some(&digest[..]));
    }
}
