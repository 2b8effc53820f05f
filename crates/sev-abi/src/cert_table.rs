//! The GHCB extended-report certificate table: the certificates a host hands
//! a guest alongside an attestation report.
//!
//! The buffer starts with 24-byte entries `{guid[16] (RFC-4122 order),
//! u32 offset, u32 length}` ended by an all-zero entry, followed by the
//! certificate blobs; offsets count from the start of the table and must lie
//! past the entries (terminator included).

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{AbiError, Result};
use crate::guid::{self, Guid};

/// Size of one table entry.
pub const CERT_TABLE_ENTRY_LEN: usize = 24;

const WHAT: &str = "certificate table";

/// One 24-byte entry as it appears on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct CertTableEntryRaw {
    /// Which certificate (RFC-4122 byte order).
    pub guid: Guid,
    /// Offset of the blob from the start of the table.
    pub offset: U32,
    /// Length of the blob.
    pub length: U32,
}

/// What a certificate-table GUID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// AMD Root Key.
    Ark,
    /// AMD SEV Key (or ASVK).
    Ask,
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key.
    Vlek,
    /// Certificate revocation list.
    Crl,
    /// Any other GUID.
    Other(Guid),
}

impl CertKind {
    /// Classifies a GUID.
    pub fn from_guid(guid: &Guid) -> Self {
        match *guid {
            guid::CERT_ARK => Self::Ark,
            guid::CERT_ASK => Self::Ask,
            guid::CERT_VCEK => Self::Vcek,
            guid::CERT_VLEK => Self::Vlek,
            guid::CERT_CRL => Self::Crl,
            other => Self::Other(other),
        }
    }

    /// The GUID of this kind.
    pub fn guid(&self) -> Guid {
        match self {
            Self::Ark => guid::CERT_ARK,
            Self::Ask => guid::CERT_ASK,
            Self::Vcek => guid::CERT_VCEK,
            Self::Vlek => guid::CERT_VLEK,
            Self::Crl => guid::CERT_CRL,
            Self::Other(g) => *g,
        }
    }
}

/// One certificate of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertTableEntry {
    /// Which certificate.
    pub guid: Guid,
    /// The certificate (DER for X.509 certificates and the CRL).
    pub data: Vec<u8>,
}

impl CertTableEntry {
    /// What the GUID names.
    pub fn kind(&self) -> CertKind {
        CertKind::from_guid(&self.guid)
    }
}

/// A parsed certificate table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertTable {
    /// Entries in table order.
    pub entries: Vec<CertTableEntry>,
}

impl CertTable {
    /// Parses a table. Errors: no all-zero terminator inside the buffer, an
    /// offset inside the entry array, or a blob running past the buffer.
    /// Blobs may overlap one another, be out of order or be followed by
    /// padding (hosts pad to whole pages); such tables parse, but
    /// [`CertTable::to_bytes`] writes the canonical form, which then differs
    /// from the input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut raw = Vec::new();
        let mut rest = bytes;
        loop {
            let Ok((entry, tail)) = CertTableEntryRaw::read_from_prefix(rest) else {
                return Err(AbiError::Malformed {
                    what: WHAT,
                    reason: format!(
                        "no all-zero terminator within {} bytes ({} entries read)",
                        bytes.len(),
                        raw.len()
                    ),
                });
            };
            rest = tail;
            if entry.as_bytes().iter().all(|b| *b == 0) {
                break;
            }
            raw.push(entry);
        }
        let header_len = bytes.len() - rest.len();
        let mut entries = Vec::with_capacity(raw.len());
        for (index, entry) in raw.iter().enumerate() {
            let offset = entry.offset.get() as usize;
            let length = entry.length.get() as usize;
            if offset < header_len {
                return Err(AbiError::Malformed {
                    what: WHAT,
                    reason: format!(
                        "entry {index} ({}) offset {offset:#x} lies inside the {header_len:#x}-byte entry array",
                        entry.guid
                    ),
                });
            }
            let data = offset
                .checked_add(length)
                .and_then(|end| bytes.get(offset..end))
                .ok_or_else(|| AbiError::Malformed {
                    what: WHAT,
                    reason: format!(
                        "entry {index} ({}) blob {offset:#x}+{length:#x} runs past the {:#x}-byte buffer",
                        entry.guid,
                        bytes.len()
                    ),
                })?;
            entries.push(CertTableEntry {
                guid: entry.guid,
                data: data.to_vec(),
            });
        }
        Ok(Self { entries })
    }

    /// Serializes canonically: the entries, the all-zero terminator, then the
    /// blobs in entry order with no padding. Fails only when the result would
    /// not fit 32-bit offsets.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let too_big = || AbiError::Malformed {
            what: WHAT,
            reason: "table does not fit 32-bit offsets".to_string(),
        };
        let header_len = self
            .entries
            .len()
            .checked_add(1)
            .and_then(|n| n.checked_mul(CERT_TABLE_ENTRY_LEN))
            .ok_or_else(too_big)?;
        let mut out = Vec::with_capacity(self.encoded_len());
        let mut offset = header_len;
        for entry in &self.entries {
            let raw = CertTableEntryRaw {
                guid: entry.guid,
                offset: U32::new(u32::try_from(offset).map_err(|_| too_big())?),
                length: U32::new(u32::try_from(entry.data.len()).map_err(|_| too_big())?),
            };
            out.extend_from_slice(raw.as_bytes());
            offset = offset.checked_add(entry.data.len()).ok_or_else(too_big)?;
        }
        u32::try_from(offset).map_err(|_| too_big())?;
        out.extend_from_slice(&[0u8; CERT_TABLE_ENTRY_LEN]);
        for entry in &self.entries {
            out.extend_from_slice(&entry.data);
        }
        Ok(out)
    }

    /// Length of the canonical serialization (saturating).
    pub fn encoded_len(&self) -> usize {
        self.entries.iter().fold(
            (self.entries.len().saturating_add(1)).saturating_mul(CERT_TABLE_ENTRY_LEN),
            |acc, e| acc.saturating_add(e.data.len()),
        )
    }

    /// The blob of the first entry with this GUID.
    pub fn get(&self, guid: &Guid) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.guid == *guid)
            .map(|e| e.data.as_slice())
    }

    /// The blob of the first entry of this kind.
    pub fn get_kind(&self, kind: CertKind) -> Option<&[u8]> {
        self.get(&kind.guid())
    }

    /// Appends an entry.
    pub fn push(&mut self, guid: Guid, data: Vec<u8>) {
        self.entries.push(CertTableEntry { guid, data });
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    fn entry(guid: Guid, offset: u32, length: u32) -> Vec<u8> {
        CertTableEntryRaw {
            guid,
            offset: U32::new(offset),
            length: U32::new(length),
        }
        .as_bytes()
        .to_vec()
    }

    fn sample() -> CertTable {
        let mut t = CertTable::default();
        t.push(guid::CERT_VCEK, b"vcek-der".to_vec());
        t.push(guid::CERT_ASK, b"ask".to_vec());
        t.push(guid::CERT_ARK, b"ark!".to_vec());
        t
    }

    #[test]
    fn layout() {
        assert_eq!(size_of::<CertTableEntryRaw>(), 24);
        assert_eq!(offset_of!(CertTableEntryRaw, guid), 0);
        assert_eq!(offset_of!(CertTableEntryRaw, offset), 16);
        assert_eq!(offset_of!(CertTableEntryRaw, length), 20);
    }

    #[test]
    fn empty_table() {
        let t = CertTable::from_bytes(&[0; 24]).unwrap();
        assert!(t.is_empty());
        assert_eq!(t.to_bytes().unwrap(), vec![0; 24]);
        // Page padding after the terminator is accepted.
        assert!(CertTable::from_bytes(&[0; 4096]).unwrap().is_empty());
    }

    #[test]
    fn round_trip() {
        let t = sample();
        let bytes = t.to_bytes().unwrap();
        assert_eq!(bytes.len(), t.encoded_len());
        assert_eq!(bytes.len(), 4 * 24 + 8 + 3 + 4);
        assert_eq!(&bytes[16..20], &96u32.to_le_bytes());
        assert_eq!(&bytes[0..16], &guid::CERT_VCEK.0);
        let parsed = CertTable::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, t);
        assert_eq!(parsed.to_bytes().unwrap(), bytes);
        assert_eq!(parsed.get(&guid::CERT_ASK), Some(&b"ask"[..]));
        assert_eq!(parsed.get_kind(CertKind::Ark), Some(&b"ark!"[..]));
        assert_eq!(parsed.get(&guid::CERT_VLEK), None);
        assert_eq!(parsed.entries[0].kind(), CertKind::Vcek);
    }

    #[test]
    fn every_truncation_and_corruption_is_handled() {
        let bytes = sample().to_bytes().unwrap();
        for len in 0..bytes.len() {
            let _ = CertTable::from_bytes(&bytes[..len]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xFF;
            let _ = CertTable::from_bytes(&b);
        }
    }

    #[test]
    fn kinds() {
        for k in [
            CertKind::Ark,
            CertKind::Ask,
            CertKind::Vcek,
            CertKind::Vlek,
            CertKind::Crl,
        ] {
            assert_eq!(CertKind::from_guid(&k.guid()), k);
        }
        let g = guid::CERT_GOSEV_EXTRA_PLATFORM_INFO;
        assert_eq!(CertKind::from_guid(&g), CertKind::Other(g));
        assert_eq!(CertKind::Other(g).guid(), g);
    }

    #[test]
    fn malformed() {
        // Too short for even one entry, and no terminator.
        assert!(CertTable::from_bytes(&[]).is_err());
        assert!(CertTable::from_bytes(&[0; 23]).is_err());
        let one = entry(guid::CERT_VCEK, 48, 4);
        assert!(CertTable::from_bytes(&one).is_err());
        let mut b = one.clone();
        b.extend_from_slice(&[0; 23]);
        assert!(CertTable::from_bytes(&b).is_err());
        // Offset inside the entry array.
        let mut b = entry(guid::CERT_VCEK, 40, 4);
        b.extend_from_slice(&[0; 24 + 4]);
        assert!(matches!(
            CertTable::from_bytes(&b),
            Err(AbiError::Malformed { .. })
        ));
        // Blob past the end.
        let mut b = entry(guid::CERT_VCEK, 48, 5);
        b.extend_from_slice(&[0; 24 + 4]);
        assert!(CertTable::from_bytes(&b).is_err());
        // Offset + length overflows.
        let mut b = entry(guid::CERT_VCEK, u32::MAX, u32::MAX);
        b.extend_from_slice(&[0; 24]);
        assert!(CertTable::from_bytes(&b).is_err());
        // A zero GUID with a non-zero offset is an entry, not the terminator.
        let mut b = entry(Guid::NIL, 48, 0);
        b.extend_from_slice(&[0; 24]);
        let t = CertTable::from_bytes(&b).unwrap();
        assert_eq!(t.entries.len(), 1);
        // Exact fit.
        let mut b = entry(guid::CERT_VCEK, 48, 4);
        b.extend_from_slice(&[0; 24]);
        b.extend_from_slice(b"abcd");
        assert_eq!(
            CertTable::from_bytes(&b).unwrap().get(&guid::CERT_VCEK),
            Some(&b"abcd"[..])
        );
    }
}
