//! OVMF firmware images: the footer GUID table, the SEV metadata
//! (`ASEV`, the pages QEMU hands to SNP_LAUNCH_UPDATE besides the image),
//! the SEV-ES reset block and the kernel hashes table location.
//!
//! ```text
//! ... image ... | table entries | footer entry | 32 bytes (reset vector) |  <- image end (4 GiB)
//! entry  = data || u16 size (data + 18) || GUID (EFI mixed-endian)
//! footer = u16 size (whole table + 18) || 96b582de-1fb2-45f7-baea-a366c55a082d
//! ASEV   = {sig "ASEV", u32 size, u32 version = 1, u32 n} || n × {u32 gpa, u32 size, u32 type}
//! ```
//!
//! Entries are read backwards from the footer. The metadata entry holds the
//! offset of the `ASEV` header counted back from the end of the image.
//! A missing footer GUID means "no table" (a plain firmware image, which
//! legacy SEV can still measure); a table that is present but whose lengths
//! lie is an error.

use sev_abi::guid::{
    Guid, OVMF_SEV_ES_RESET_BLOCK, OVMF_SEV_HASH_TABLE_RV, OVMF_SEV_METADATA,
    OVMF_SEV_SECRET_BLOCK, OVMF_SVSM_INFO, OVMF_TABLE_FOOTER,
};
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{MeasureError, Result};

/// Where an OVMF image ends in guest physical memory (QEMU maps the flash
/// so that it ends at 4 GiB).
pub const FOUR_GIB: u64 = 0x1_0000_0000;

/// The largest firmware image (OVMF, or an SVSM binary) sevkit reads,
/// measures or launches: 16 MiB. QEMU maps `-bios` to end at 4 GiB, in the
/// space below the flash window; OVMF builds are 2 to 4 MiB.
pub const MAX_FIRMWARE_LEN: u64 = 16 << 20;

/// The footer table ends this many bytes before the end of the image.
pub const FOOTER_GAP: usize = 32;

/// Size of a footer-table entry header (`u16 size; GUID`).
pub const ENTRY_HEADER_LEN: usize = 18;

/// Size of the `ASEV` metadata header.
pub const METADATA_HEADER_LEN: usize = 16;

/// Size of one metadata section descriptor.
pub const METADATA_SECTION_LEN: usize = 12;

/// The `ASEV` signature.
pub const METADATA_SIGNATURE: [u8; 4] = *b"ASEV";

/// The metadata version this crate reads.
pub const METADATA_VERSION: u32 = 1;

/// Footer-table entry header, as stored after the entry's data.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawEntryHeader {
    /// Size of the entry including this header.
    pub size: U16,
    /// GUID in EFI mixed-endian form.
    pub guid: [u8; 16],
}

/// `ASEV` metadata header.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawMetadataHeader {
    /// `ASEV`.
    pub signature: [u8; 4],
    /// Size of the header and its descriptors.
    pub size: U32,
    /// Version (1).
    pub version: U32,
    /// Number of section descriptors.
    pub num_items: U32,
}

/// One metadata section descriptor.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawMetadataSection {
    /// Guest physical address.
    pub gpa: U32,
    /// Size in bytes.
    pub size: U32,
    /// Section type.
    pub section_type: U32,
}

/// The kinds of SEV metadata section OVMF defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// Memory OVMF expects pre-validated (SNP: ZERO pages; GCE: UNMEASURED).
    SnpSecMem,
    /// The SNP secrets page (SECRETS).
    SnpSecrets,
    /// The CPUID page (CPUID).
    Cpuid,
    /// The SVSM calling area (ZERO pages).
    SvsmCaa,
    /// The page holding the kernel hashes table (NORMAL with `--kernel`, else ZERO).
    SnpKernelHashes,
}

impl SectionKind {
    /// Maps the metadata type field (1, 2, 3, 4, 0x10).
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::SnpSecMem,
            2 => Self::SnpSecrets,
            3 => Self::Cpuid,
            4 => Self::SvsmCaa,
            0x10 => Self::SnpKernelHashes,
            _ => return None,
        })
    }

    /// The type field value.
    pub fn as_u32(self) -> u32 {
        match self {
            Self::SnpSecMem => 1,
            Self::SnpSecrets => 2,
            Self::Cpuid => 3,
            Self::SvsmCaa => 4,
            Self::SnpKernelHashes => 0x10,
        }
    }

    /// The name used in launch logs (`SNP_SEC_MEM`, `SECRETS`, `CPUID`,
    /// `SVSM_CAA`, `KERNEL_HASHES`).
    pub fn name(self) -> &'static str {
        match self {
            Self::SnpSecMem => "SNP_SEC_MEM",
            Self::SnpSecrets => "SECRETS",
            Self::Cpuid => "CPUID",
            Self::SvsmCaa => "SVSM_CAA",
            Self::SnpKernelHashes => "KERNEL_HASHES",
        }
    }
}

/// One footer-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FooterEntry<'a> {
    /// The entry's GUID.
    pub guid: Guid,
    /// Its data (without the 18-byte header).
    pub data: &'a [u8],
    /// File offset of the data.
    pub offset: usize,
}

/// A `{u32 base; u32 size}` area named by a footer entry (hashes table,
/// launch secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableArea {
    /// Guest physical address.
    pub base: u32,
    /// Size in bytes.
    pub size: u32,
}

/// One SEV metadata section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataSection {
    /// Guest physical address.
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
    /// The raw type field.
    pub section_type: u32,
}

impl MetadataSection {
    /// The section's kind, if the type is one OVMF defines.
    pub fn kind(&self) -> Option<SectionKind> {
        SectionKind::from_u32(self.section_type)
    }

    /// Checks what a launch needs of section `index` (of `kind`): GPA and
    /// size multiples of 4 KiB ([`MeasureError::SectionNotPageAligned`]),
    /// the end at or below 4 GiB ([`MeasureError::SectionPastFourGib`]).
    /// The measurement and sevkit's launch path check the same, so a
    /// firmware that cannot be launched is not measured either.
    pub fn check(&self, index: usize, kind: SectionKind) -> Result<()> {
        let page = crate::snp::PAGE_LEN as u64;
        let (gpa, size) = (u64::from(self.gpa), u64::from(self.size));
        if !gpa.is_multiple_of(page) || !size.is_multiple_of(page) {
            return Err(MeasureError::SectionNotPageAligned {
                index,
                kind: kind.name(),
                gpa: self.gpa,
                size: self.size,
            });
        }
        if gpa + size > FOUR_GIB {
            return Err(MeasureError::SectionPastFourGib {
                index,
                kind: kind.name(),
                gpa: self.gpa,
                size: self.size,
            });
        }
        Ok(())
    }
}

/// The SEV metadata of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevMetadata {
    /// File offset of the `ASEV` header.
    pub offset: usize,
    /// The header's size field.
    pub size: u32,
    /// The header's version field (1).
    pub version: u32,
    /// The sections, in file order (the order they are measured in).
    pub sections: Vec<MetadataSection>,
}

impl SevMetadata {
    /// True when a section of `kind` is listed.
    pub fn has(&self, kind: SectionKind) -> bool {
        self.sections.iter().any(|s| s.kind() == Some(kind))
    }
}

/// A parsed OVMF (or pre-IGVM SVSM) image. Borrows the bytes.
#[derive(Debug, Clone)]
pub struct OvmfImage<'a> {
    data: &'a [u8],
    gpa: u64,
    footer: bool,
    entries: Vec<FooterEntry<'a>>,
    metadata: Option<SevMetadata>,
}

impl<'a> OvmfImage<'a> {
    /// Parses an image mapped so that it ends at 4 GiB (OVMF).
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        Self::parse_ending_at(data, FOUR_GIB, "firmware")
    }

    /// Parses an image mapped so that it ends at `end` (an SVSM binary sits
    /// below OVMF and its variable store). `what` names the image in errors.
    pub fn parse_ending_at(data: &'a [u8], end: u64, what: &'static str) -> Result<Self> {
        let len = data.len() as u64;
        let gpa = end.checked_sub(len).ok_or(MeasureError::ImageTooLarge {
            what,
            len,
            limit: end,
        })?;
        let (footer, entries) = parse_footer_table(data)?;
        let mut image = Self {
            data,
            gpa,
            footer,
            entries,
            metadata: None,
        };
        image.metadata = image.parse_metadata()?;
        Ok(image)
    }

    /// The whole image.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The guest physical address of the image's first byte.
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// True when the image has an OVMF footer GUID table.
    pub fn has_footer_table(&self) -> bool {
        self.footer
    }

    /// The footer-table entries, from the end of the table backwards.
    pub fn footer_entries(&self) -> &[FooterEntry<'a>] {
        &self.entries
    }

    /// The data of the entry with `guid`.
    pub fn entry(&self, guid: Guid) -> Option<&'a [u8]> {
        self.entries.iter().find(|e| e.guid == guid).map(|e| e.data)
    }

    /// The SEV-ES AP reset address (`00f771de-…`), if the entry exists.
    pub fn sev_es_reset_eip(&self) -> Result<Option<u32>> {
        self.entry_u32(OVMF_SEV_ES_RESET_BLOCK)
    }

    /// The kernel hashes table area (`7255371f-…`), if the entry exists.
    /// Builds without measured direct boot carry the entry with base 0.
    pub fn hash_table(&self) -> Result<Option<TableArea>> {
        self.entry_area(OVMF_SEV_HASH_TABLE_RV)
    }

    /// The launch-secret area (`4c2eb361-…`), if the entry exists.
    pub fn secret_area(&self) -> Result<Option<TableArea>> {
        self.entry_area(OVMF_SEV_SECRET_BLOCK)
    }

    /// The SVSM entry offset from the image's GPA (`a789a612-…`, SVSM
    /// binaries only).
    pub fn svsm_info_offset(&self) -> Result<Option<u32>> {
        self.entry_u32(OVMF_SVSM_INFO)
    }

    /// The SEV metadata, if the image has any.
    pub fn metadata(&self) -> Option<&SevMetadata> {
        self.metadata.as_ref()
    }

    fn entry_u32(&self, guid: Guid) -> Result<Option<u32>> {
        let Some(data) = self.entry(guid) else {
            return Ok(None);
        };
        Ok(Some(le_u32(data, 0).ok_or(
            MeasureError::EntryTooShort {
                guid: guid.to_string(),
                len: data.len(),
                need: 4,
            },
        )?))
    }

    fn entry_area(&self, guid: Guid) -> Result<Option<TableArea>> {
        let Some(data) = self.entry(guid) else {
            return Ok(None);
        };
        match (le_u32(data, 0), le_u32(data, 4)) {
            (Some(base), Some(size)) => Ok(Some(TableArea { base, size })),
            _ => Err(MeasureError::EntryTooShort {
                guid: guid.to_string(),
                len: data.len(),
                need: 8,
            }),
        }
    }

    fn parse_metadata(&self) -> Result<Option<SevMetadata>> {
        let bad = |reason: String| MeasureError::Metadata(reason);
        let Some(offset_from_end) = self.entry_u32(OVMF_SEV_METADATA)? else {
            return Ok(None);
        };
        let len = self.data.len();
        let start = len
            .checked_sub(offset_from_end as usize)
            .filter(|_| offset_from_end != 0)
            .ok_or_else(|| {
                bad(format!(
                    "the metadata entry points {offset_from_end:#x} bytes back from the end \
                     of a {len:#x}-byte image"
                ))
            })?;
        let header_bytes = start
            .checked_add(METADATA_HEADER_LEN)
            .and_then(|end| self.data.get(start..end))
            .ok_or_else(|| {
                bad(format!(
                    "the header at file offset {start:#x} runs past the end of the image"
                ))
            })?;
        let header = RawMetadataHeader::read_from_bytes(header_bytes)
            .map_err(|_| bad("unreadable header".into()))?;
        if header.signature != METADATA_SIGNATURE {
            return Err(bad(format!(
                "signature at file offset {start:#x} is {:02x?}, expected \"ASEV\"",
                header.signature
            )));
        }
        if header.version.get() != METADATA_VERSION {
            return Err(bad(format!(
                "version is {}, sevkit reads version {METADATA_VERSION}",
                header.version.get()
            )));
        }
        let n = header.num_items.get() as usize;
        let need = n
            .checked_mul(METADATA_SECTION_LEN)
            .and_then(|b| b.checked_add(METADATA_HEADER_LEN))
            .ok_or_else(|| bad(format!("{n} sections is impossibly many")))?;
        if (header.size.get() as usize) < need {
            return Err(bad(format!(
                "the header lists {n} sections ({need} bytes) but its size field says {} bytes",
                header.size.get()
            )));
        }
        let items = start
            .checked_add(need)
            .and_then(|end| self.data.get(start + METADATA_HEADER_LEN..end))
            .ok_or_else(|| {
                bad(format!(
                    "{n} sections starting at file offset {:#x} run past the end of the image",
                    start + METADATA_HEADER_LEN
                ))
            })?;
        let sections = items
            .chunks_exact(METADATA_SECTION_LEN)
            .filter_map(|c| RawMetadataSection::read_from_bytes(c).ok())
            .map(|s| MetadataSection {
                gpa: s.gpa.get(),
                size: s.size.get(),
                section_type: s.section_type.get(),
            })
            .collect();
        Ok(Some(SevMetadata {
            offset: start,
            size: header.size.get(),
            version: header.version.get(),
            sections,
        }))
    }
}

fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

type FooterParse<'a> = (bool, Vec<FooterEntry<'a>>);

fn parse_footer_table(data: &[u8]) -> Result<FooterParse<'_>> {
    let bad = |reason: String| MeasureError::FooterTable(reason);
    let min = FOOTER_GAP + ENTRY_HEADER_LEN;
    let footer_start = data
        .len()
        .checked_sub(min)
        .ok_or(MeasureError::ImageTooSmall {
            len: data.len(),
            min,
        })?;
    let footer = data
        .get(footer_start..footer_start + ENTRY_HEADER_LEN)
        .and_then(|b| RawEntryHeader::read_from_bytes(b).ok())
        .ok_or(MeasureError::ImageTooSmall {
            len: data.len(),
            min,
        })?;
    if Guid::from_le_bytes(footer.guid) != OVMF_TABLE_FOOTER {
        return Ok((false, Vec::new()));
    }
    let total = usize::from(footer.size.get());
    let table_len = total.checked_sub(ENTRY_HEADER_LEN).ok_or_else(|| {
        bad(format!(
            "the footer entry's size is {total}, smaller than its own {ENTRY_HEADER_LEN}-byte header"
        ))
    })?;
    let table_start = footer_start.checked_sub(table_len).ok_or_else(|| {
        bad(format!(
            "the footer says the table is {table_len} bytes but only {footer_start} bytes precede it"
        ))
    })?;
    let mut rest = data.get(table_start..footer_start).unwrap_or_default();
    let mut entries: Vec<FooterEntry<'_>> = Vec::new();
    while rest.len() >= ENTRY_HEADER_LEN {
        let header_at = rest.len() - ENTRY_HEADER_LEN;
        let header = rest
            .get(header_at..)
            .and_then(|b| RawEntryHeader::read_from_bytes(b).ok())
            .ok_or_else(|| bad("unreadable entry header".into()))?;
        let guid = Guid::from_le_bytes(header.guid);
        let size = usize::from(header.size.get());
        let entry_start = table_start + header_at;
        if size < ENTRY_HEADER_LEN {
            return Err(bad(format!(
                "entry {guid} (header at file offset {entry_start:#x}) has size {size}, smaller \
                 than its {ENTRY_HEADER_LEN}-byte header"
            )));
        }
        let data_at = rest.len().checked_sub(size).ok_or_else(|| {
            bad(format!(
                "entry {guid} (header at file offset {entry_start:#x}) claims {size} bytes but \
                 only {} bytes of the table remain",
                rest.len()
            ))
        })?;
        if entries.iter().any(|e| e.guid == guid) {
            return Err(bad(format!(
                "GUID {guid} appears twice (QEMU and OVMF would disagree on which one counts)"
            )));
        }
        entries.push(FooterEntry {
            guid,
            data: rest.get(data_at..header_at).unwrap_or_default(),
            offset: table_start + data_at,
        });
        rest = rest.get(..data_at).unwrap_or_default();
    }
    Ok((true, entries))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a synthetic OVMF image of `len` bytes: `entries` in the footer
    /// table (first listed = nearest the footer), and, when `metadata` is
    /// given, an `ASEV` block placed in the image with a metadata entry.
    pub fn synthetic_image(
        len: usize,
        entries: &[(Guid, Vec<u8>)],
        metadata: Option<&[(u32, u32, u32)]>,
    ) -> Vec<u8> {
        let mut image = vec![0xCCu8; len];
        let mut entries: Vec<(Guid, Vec<u8>)> = entries.to_vec();
        if let Some(sections) = metadata {
            let meta_at = len / 2;
            let size = METADATA_HEADER_LEN + METADATA_SECTION_LEN * sections.len();
            let mut block = Vec::new();
            block.extend_from_slice(b"ASEV");
            block.extend_from_slice(&(size as u32).to_le_bytes());
            block.extend_from_slice(&1u32.to_le_bytes());
            block.extend_from_slice(&(sections.len() as u32).to_le_bytes());
            for (gpa, size, kind) in sections {
                block.extend_from_slice(&gpa.to_le_bytes());
                block.extend_from_slice(&size.to_le_bytes());
                block.extend_from_slice(&kind.to_le_bytes());
            }
            image[meta_at..meta_at + block.len()].copy_from_slice(&block);
            entries.push((
                OVMF_SEV_METADATA,
                ((len - meta_at) as u32).to_le_bytes().to_vec(),
            ));
        }
        // Lay the table out backwards from the footer.
        let mut table = Vec::new();
        for (guid, data) in entries.iter().rev() {
            table.extend_from_slice(data);
            table.extend_from_slice(&((data.len() + ENTRY_HEADER_LEN) as u16).to_le_bytes());
            table.extend_from_slice(&guid.to_le_bytes());
        }
        table.extend_from_slice(&((table.len() + ENTRY_HEADER_LEN) as u16).to_le_bytes());
        table.extend_from_slice(&OVMF_TABLE_FOOTER.to_le_bytes());
        let end = len - FOOTER_GAP;
        image[end - table.len()..end].copy_from_slice(&table);
        image
    }

    pub fn amdsev_like() -> Vec<u8> {
        synthetic_image(
            0x4000,
            &[
                (
                    OVMF_SEV_ES_RESET_BLOCK,
                    0x0080_B004u32.to_le_bytes().to_vec(),
                ),
                (
                    OVMF_SEV_HASH_TABLE_RV,
                    [0x0081_0C00u32.to_le_bytes(), 0x400u32.to_le_bytes()].concat(),
                ),
            ],
            Some(&[
                (0x80_0000, 0x9000, 1),
                (0x80_A000, 0x3000, 1),
                (0x80_D000, 0x1000, 2),
                (0x80_E000, 0x1000, 3),
                (0x81_0000, 0x1000, 0x10),
                (0x81_1000, 0x2000, 1),
            ]),
        )
    }

    #[test]
    fn parses_a_synthetic_image() {
        let image = amdsev_like();
        let ovmf = OvmfImage::parse(&image).unwrap();
        assert!(ovmf.has_footer_table());
        assert_eq!(ovmf.gpa(), FOUR_GIB - 0x4000);
        assert_eq!(ovmf.sev_es_reset_eip().unwrap(), Some(0x0080_B004));
        assert_eq!(
            ovmf.hash_table().unwrap(),
            Some(TableArea {
                base: 0x81_0C00,
                size: 0x400
            })
        );
        assert_eq!(ovmf.secret_area().unwrap(), None);
        let meta = ovmf.metadata().unwrap();
        assert_eq!(meta.sections.len(), 6);
        assert_eq!(meta.sections[2].kind(), Some(SectionKind::SnpSecrets));
        assert!(meta.has(SectionKind::SnpKernelHashes));
        assert!(!meta.has(SectionKind::SvsmCaa));
    }

    #[test]
    fn no_footer_means_no_table() {
        let image = vec![0u8; 4096];
        let ovmf = OvmfImage::parse(&image).unwrap();
        assert!(!ovmf.has_footer_table());
        assert!(ovmf.footer_entries().is_empty());
        assert_eq!(ovmf.sev_es_reset_eip().unwrap(), None);
        assert!(ovmf.metadata().is_none());
    }

    #[test]
    fn too_small() {
        assert!(matches!(
            OvmfImage::parse(&[0u8; 49]),
            Err(MeasureError::ImageTooSmall { len: 49, .. })
        ));
        assert!(OvmfImage::parse(&[0u8; 50]).is_ok());
    }

    #[test]
    fn lying_lengths_are_errors() {
        let good = amdsev_like();
        let footer_size_at = good.len() - FOOTER_GAP - ENTRY_HEADER_LEN;
        // Footer claims more table than the image holds.
        let mut img = good.clone();
        img[footer_size_at..footer_size_at + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert!(matches!(
            OvmfImage::parse(&img),
            Err(MeasureError::FooterTable(_))
        ));
        // Footer smaller than its header.
        let mut img = good.clone();
        img[footer_size_at..footer_size_at + 2].copy_from_slice(&5u16.to_le_bytes());
        assert!(matches!(
            OvmfImage::parse(&img),
            Err(MeasureError::FooterTable(_))
        ));
        // An entry claiming more than the table holds.
        let mut img = good.clone();
        let first_entry_size_at = footer_size_at - ENTRY_HEADER_LEN;
        img[first_entry_size_at..first_entry_size_at + 2].copy_from_slice(&0x7000u16.to_le_bytes());
        assert!(matches!(
            OvmfImage::parse(&img),
            Err(MeasureError::FooterTable(_))
        ));
        // An entry smaller than its header.
        let mut img = good.clone();
        img[first_entry_size_at..first_entry_size_at + 2].copy_from_slice(&3u16.to_le_bytes());
        let err = OvmfImage::parse(&img).unwrap_err();
        assert!(err.to_string().contains("smaller than"), "{err}");
    }

    #[test]
    fn corrupted_metadata_is_an_error() {
        let good = amdsev_like();
        let meta_at = good.len() / 2;
        let mut img = good.clone();
        img[meta_at] = b'X';
        assert!(OvmfImage::parse(&img)
            .unwrap_err()
            .to_string()
            .contains("ASEV"));
        let mut img = good.clone();
        img[meta_at + 8] = 2;
        assert!(OvmfImage::parse(&img)
            .unwrap_err()
            .to_string()
            .contains("version"));
        let mut img = good.clone();
        img[meta_at + 12..meta_at + 16].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        assert!(matches!(
            OvmfImage::parse(&img),
            Err(MeasureError::Metadata(_))
        ));
        // The metadata pointer pointing outside the image.
        let img = synthetic_image(
            0x1000,
            &[(OVMF_SEV_METADATA, 0x2000u32.to_le_bytes().to_vec())],
            None,
        );
        assert!(matches!(
            OvmfImage::parse(&img),
            Err(MeasureError::Metadata(_))
        ));
        let img = synthetic_image(
            0x1000,
            &[(OVMF_SEV_METADATA, 8u32.to_le_bytes().to_vec())],
            None,
        );
        assert!(matches!(
            OvmfImage::parse(&img),
            Err(MeasureError::Metadata(_))
        ));
    }

    #[test]
    fn short_entries_and_duplicates() {
        let img = synthetic_image(0x1000, &[(OVMF_SEV_ES_RESET_BLOCK, vec![1, 2])], None);
        let ovmf = OvmfImage::parse(&img).unwrap();
        assert!(matches!(
            ovmf.sev_es_reset_eip(),
            Err(MeasureError::EntryTooShort { need: 4, .. })
        ));
        let img = synthetic_image(
            0x1000,
            &[
                (OVMF_SEV_ES_RESET_BLOCK, vec![1, 2, 3, 4]),
                (OVMF_SEV_ES_RESET_BLOCK, vec![5, 6, 7, 8]),
            ],
            None,
        );
        assert!(OvmfImage::parse(&img)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn never_panics_on_truncations_and_flips() {
        let good = amdsev_like();
        for cut in 0..good.len().min(200) {
            let _ = OvmfImage::parse(&good[cut..]);
            let _ = OvmfImage::parse(&good[..good.len() - cut]);
        }
        let tail = good.len() - 200;
        for i in tail..good.len() {
            let mut img = good.clone();
            img[i] ^= 0xFF;
            let _ = OvmfImage::parse(&img);
        }
    }
}
