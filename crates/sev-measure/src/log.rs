//! The launch log: the ordered list of what was measured, with the running
//! digest after each step.
//!
//! The predictor ([`crate::measure()`]) emits it; the software AMD-SP emits
//! the same records as it executes LAUNCH_UPDATE_* commands, so a guest
//! owner can diff prediction and reality and see the first step where they
//! part ([`LaunchLog::first_divergence`]).
//!
//! * SNP: one entry per 4 KiB page (PAGE_INFO): the GPA, the page type, the
//!   CONTENTS field (SHA-384 of the page, or zeros) and the launch digest
//!   after the update.
//! * SEV / SEV-ES: one entry per measured blob (firmware, hashes table, each
//!   VMSA): its SHA-256, and the SHA-256 of everything measured so far (what
//!   the digest would be if the launch ended there).

use core::fmt;

use serde::{Serialize, Serializer};

/// The hash a launch digest is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgorithm {
    /// SEV / SEV-ES: SHA-256 over the concatenated plaintext.
    Sha256,
    /// SNP: the SHA-384 PAGE_INFO chain.
    Sha384,
}

/// What kind of measurement a log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogPageType {
    /// SNP NORMAL page (contents hashed).
    Normal,
    /// VMSA: an SNP VMSA page, or a legacy LAUNCH_UPDATE_VMSA.
    Vmsa,
    /// SNP ZERO page.
    Zero,
    /// SNP UNMEASURED page.
    Unmeasured,
    /// SNP SECRETS page.
    Secrets,
    /// SNP CPUID page.
    Cpuid,
    /// Legacy SEV LAUNCH_UPDATE_DATA.
    SevData,
}

impl LogPageType {
    /// The name printed in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Vmsa => "vmsa",
            Self::Zero => "zero",
            Self::Unmeasured => "unmeasured",
            Self::Secrets => "secrets",
            Self::Cpuid => "cpuid",
            Self::SevData => "sev-data",
        }
    }

    /// The SNP page type this corresponds to (`None` for legacy data).
    pub fn snp_page_type(self) -> Option<sev_abi::PageType> {
        use sev_abi::PageType;
        Some(match self {
            Self::Normal => PageType::Normal,
            Self::Vmsa => PageType::Vmsa,
            Self::Zero => PageType::Zero,
            Self::Unmeasured => PageType::Unmeasured,
            Self::Secrets => PageType::Secrets,
            Self::Cpuid => PageType::Cpuid,
            Self::SevData => return None,
        })
    }

    /// The log type of an SNP page type.
    pub fn from_snp(page_type: sev_abi::PageType) -> Self {
        use sev_abi::PageType;
        match page_type {
            PageType::Normal => Self::Normal,
            PageType::Vmsa => Self::Vmsa,
            PageType::Zero => Self::Zero,
            PageType::Unmeasured => Self::Unmeasured,
            PageType::Secrets => Self::Secrets,
            PageType::Cpuid => Self::Cpuid,
        }
    }
}

/// A hash or digest, printed and serialized as lowercase hex.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// serde's `serialize_with` passes the field by reference.
#[allow(clippy::ref_option)]
fn hex_u64<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&format_args!("{v:#x}")),
        None => s.serialize_none(),
    }
}

/// One measured item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchLogEntry {
    /// Position in the log, from 0.
    pub step: usize,
    /// What was measured: `ovmf`, `svsm`, `SNP_SEC_MEM`, `SECRETS`, `CPUID`,
    /// `SVSM_CAA`, `KERNEL_HASHES`, `vmsa[N]`.
    pub region: String,
    /// Guest physical address (SNP VMSAs: 0xFFFFFFFFF000; legacy VMSAs: none).
    #[serde(serialize_with = "hex_u64")]
    pub gpa: Option<u64>,
    /// Page type.
    pub page_type: LogPageType,
    /// Bytes covered (4096 per SNP page; the blob length for legacy).
    pub length: u64,
    /// SNP: the PAGE_INFO CONTENTS field; legacy: SHA-256 of the blob.
    pub content_hash: HexBytes,
    /// The launch digest after this step.
    pub digest_after: HexBytes,
}

/// Where two launch logs first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// The algorithms or initial digests differ.
    Start,
    /// The entries at this step differ.
    Step(usize),
    /// One log is a prefix of the other; the shorter ends here.
    Length(usize),
}

/// The ordered record of a launch measurement.
///
/// A log may have a limit ([`LaunchLog::with_limit`]): the software AMD-SP
/// keeps at most that many entries per guest, so a host cannot grow its
/// memory without bound with tiny updates. Past the limit, steps are
/// counted in `omitted` and only the newest is kept (in `last`), so the
/// final digest stays known; the table and the JSON say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchLog {
    /// The digest algorithm.
    pub algorithm: DigestAlgorithm,
    /// The digest before the first step (SNP: zeros, or the `--snp-ovmf-hash`
    /// seed); `None` for SEV/SEV-ES.
    pub initial_digest: Option<HexBytes>,
    /// The steps, in order.
    pub entries: Vec<LaunchLogEntry>,
    /// Steps measured after `entries` reached the limit and not recorded.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted: u64,
    /// The newest step when it was not recorded in `entries`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<LaunchLogEntry>,
    /// Most entries kept (`None`: no limit).
    #[serde(skip)]
    limit: Option<usize>,
}

// serde's `skip_serializing_if` passes the field by reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl LaunchLog {
    /// An empty log.
    pub fn new(algorithm: DigestAlgorithm, initial_digest: Option<Vec<u8>>) -> Self {
        Self {
            algorithm,
            initial_digest: initial_digest.map(HexBytes),
            entries: Vec::new(),
            omitted: 0,
            last: None,
            limit: None,
        }
    }

    /// The same log keeping at most `limit` entries (see the type's
    /// documentation).
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether steps were left out (the limit was reached).
    pub fn is_truncated(&self) -> bool {
        self.omitted > 0
    }

    /// Appends an entry, numbering it.
    pub fn push(
        &mut self,
        region: impl Into<String>,
        gpa: Option<u64>,
        page_type: LogPageType,
        length: u64,
        content_hash: &[u8],
        digest_after: &[u8],
    ) {
        let step = self.entries.len() + self.omitted as usize;
        let entry = LaunchLogEntry {
            step,
            region: region.into(),
            gpa,
            page_type,
            length,
            content_hash: HexBytes(content_hash.to_vec()),
            digest_after: HexBytes(digest_after.to_vec()),
        };
        if self.limit.is_some_and(|limit| self.entries.len() >= limit) {
            self.omitted += 1;
            self.last = Some(entry);
        } else {
            self.entries.push(entry);
        }
    }

    /// The digest after the last step (the initial digest when empty).
    pub fn final_digest(&self) -> Option<&[u8]> {
        self.last
            .as_ref()
            .or(self.entries.last())
            .map(|e| e.digest_after.as_slice())
            .or(self.initial_digest.as_ref().map(HexBytes::as_slice))
    }

    /// The first place where `self` and `other` differ, or `None` when they
    /// are identical. A truncated log ([`Self::is_truncated`]) agrees with
    /// another when its recorded entries are a prefix of the other's and
    /// both end at the same digest.
    pub fn first_divergence(&self, other: &LaunchLog) -> Option<Divergence> {
        if self.algorithm != other.algorithm || self.initial_digest != other.initial_digest {
            return Some(Divergence::Start);
        }
        if let Some(i) = self
            .entries
            .iter()
            .zip(&other.entries)
            .position(|(a, b)| a != b)
        {
            return Some(Divergence::Step(i));
        }
        if (self.is_truncated() || other.is_truncated())
            && self.final_digest() == other.final_digest()
        {
            return None;
        }
        (self.entries.len() != other.entries.len())
            .then(|| Divergence::Length(self.entries.len().min(other.entries.len())))
    }
}

/// A fixed-width table, one line per entry, full hashes (so two tables can
/// be compared with `diff`).
impl fmt::Display for LaunchLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = match self.algorithm {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha384 => 96,
        };
        if let Some(init) = &self.initial_digest {
            writeln!(f, "# initial digest {init}")?;
        }
        writeln!(
            f,
            "{:>5}  {:<14}  {:<18}  {:<10}  {:>8}  {:<width$}  digest after",
            "step", "region", "gpa", "type", "length", "content"
        )?;
        let omitted = self.last.as_ref().map(|last| {
            (
                format!(
                    "# {} more steps were measured and not recorded (a log keeps {} entries); \
                     the last:",
                    self.omitted,
                    self.entries.len()
                ),
                last,
            )
        });
        let tail = omitted.iter().map(|(_, last)| *last);
        for (i, e) in self.entries.iter().chain(tail).enumerate() {
            if i == self.entries.len() {
                if let Some((note, _)) = &omitted {
                    writeln!(f, "{note}")?;
                }
            }
            let gpa = e
                .gpa
                .map_or_else(|| "-".to_string(), |g| format!("{g:#018x}"));
            writeln!(
                f,
                "{:>5}  {:<14}  {:<18}  {:<10}  {:>8}  {:<width$}  {}",
                e.step,
                e.region,
                gpa,
                e.page_type.name(),
                e.length,
                e.content_hash,
                e.digest_after
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LaunchLog {
        let mut log = LaunchLog::new(DigestAlgorithm::Sha384, Some(vec![0; 48]));
        log.push(
            "ovmf",
            Some(0xffc0_0000),
            LogPageType::Normal,
            4096,
            &[1; 48],
            &[2; 48],
        );
        log.push(
            "vmsa[0]",
            Some(0xffff_ffff_f000),
            LogPageType::Vmsa,
            4096,
            &[3; 48],
            &[4; 48],
        );
        log
    }

    #[test]
    fn final_digest_and_json() {
        let log = sample();
        assert_eq!(log.final_digest(), Some(&[4u8; 48][..]));
        let json = serde_json::to_value(&log).unwrap();
        assert_eq!(json["algorithm"], "sha384");
        assert_eq!(json["entries"][0]["gpa"], "0xffc00000");
        assert_eq!(json["entries"][1]["page_type"], "vmsa");
        assert_eq!(json["entries"][1]["step"], 1);
        assert_eq!(json["entries"][1]["digest_after"], "04".repeat(48));
        let empty = LaunchLog::new(DigestAlgorithm::Sha256, None);
        assert_eq!(empty.final_digest(), None);
        assert_eq!(
            serde_json::to_value(LogPageType::SevData).unwrap(),
            "sev-data"
        );
    }

    #[test]
    fn table_has_a_line_per_entry() {
        let text = sample().to_string();
        assert_eq!(text.lines().count(), 4);
        assert!(text.contains("0x00000000ffc00000"));
        assert!(text.contains(&"04".repeat(48)));
    }

    #[test]
    fn a_limit_keeps_the_first_entries_and_the_last() {
        let full = {
            let mut log = LaunchLog::new(DigestAlgorithm::Sha256, None);
            for i in 0..10u8 {
                log.push(
                    "update_data",
                    Some(u64::from(i)),
                    LogPageType::SevData,
                    16,
                    &[i; 32],
                    &[i; 32],
                );
            }
            log
        };
        let mut capped = LaunchLog::new(DigestAlgorithm::Sha256, None).with_limit(4);
        for e in &full.entries {
            let (c, d) = (e.content_hash.as_slice(), e.digest_after.as_slice());
            capped.push(e.region.clone(), e.gpa, e.page_type, e.length, c, d);
        }
        assert_eq!(capped.entries, full.entries[..4]);
        assert_eq!((capped.omitted, capped.is_truncated()), (6, true));
        assert_eq!(capped.last.as_ref(), full.entries.last());
        assert_eq!(capped.final_digest(), full.final_digest());
        assert_eq!(capped.first_divergence(&full), None);
        assert_eq!(full.first_divergence(&capped), None);
        let mut other = full.clone();
        other.entries[9].digest_after = HexBytes(vec![0xEE; 32]);
        assert_eq!(capped.first_divergence(&other), Some(Divergence::Length(4)));
        let text = capped.to_string();
        assert!(
            text.contains("# 6 more steps were measured and not recorded"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1 + 4 + 1 + 1, "{text}");
        let json = serde_json::to_value(&capped).unwrap();
        assert_eq!(json["omitted"], 6);
        assert_eq!(json["last"]["step"], 9);
        assert!(serde_json::to_value(&full)
            .unwrap()
            .get("omitted")
            .is_none());
    }

    #[test]
    fn divergence() {
        let a = sample();
        assert_eq!(a.first_divergence(&a.clone()), None);
        let mut b = a.clone();
        b.entries[1].content_hash = HexBytes(vec![9; 48]);
        assert_eq!(a.first_divergence(&b), Some(Divergence::Step(1)));
        let mut c = a.clone();
        c.entries.pop();
        assert_eq!(a.first_divergence(&c), Some(Divergence::Length(1)));
        let d = LaunchLog::new(DigestAlgorithm::Sha256, None);
        assert_eq!(a.first_divergence(&d), Some(Divergence::Start));
    }
}
