//! A small built-in guest image for `sevkit demo`: everything QEMU and the
//! measurement tools require of an OVMF image, and nothing else.
//!
//! **This is not a firmware.** Its reset vector (and the SEV-ES AP reset
//! address) is a three-instruction real-mode stub, `cli; hlt; jmp short
//! hlt`: a vCPU that runs it halts forever and does nothing useful. What the
//! image does have is the structure a VMM and a verifier read:
//!
//! * the OVMF footer GUID table, ending 32 bytes before the end of the image
//!   (`96b582de-1fb2-45f7-baea-a366c55a082d`), with the entries
//!   * SEV-ES reset block (`00f771de-…`): the AP reset address;
//!   * SEV launch-secret area (`4c2eb361-…`): `{u32 base; u32 size}`;
//!   * SEV hash table area (`7255371f-…`): `{u32 base; u32 size}`;
//!   * SEV metadata (`dc886566-…`): the offset from the end of the image to
//!     the `ASEV` header;
//! * the `ASEV` metadata: SNP_SEC_MEM, SNP_SECRETS, CPUID and
//!   SNP_KERNEL_HASHES sections at the low guest-physical addresses an
//!   AmdSevX64 OVMF build uses (its layout, not its bytes);
//! * the reset vector at 4 GiB − 16.
//!
//! The image is [`DEMO_IMAGE_SIZE`] (256 KiB) bytes and is mapped, as QEMU
//! maps a firmware image, so that it ends at 4 GiB. 256 KiB is a multiple of
//! 4 KiB (SNP measures whole pages, pflash sectors are 4 KiB) and of 64 KiB
//! (QEMU's `-bios` size rule).
//!
//! Image layout (file offsets; GPA = [`DEMO_IMAGE_GPA`] + offset):
//!
//! | file offset | GPA | size | contents |
//! |---|---|---|---|
//! | 0x00000 | 0xFFFC_0000 | ≤ 0x100 | ASCII banner ([`BANNER`]), NUL-padded |
//! | 0x00100 | 0xFFFC_0100 | 0x3EF00 | zero |
//! | 0x3F000 | 0xFFFF_F000 | 0x58 | `ASEV` header + 6 section descriptors |
//! | 0x3F100 | 0xFFFF_F100 | 4 | AP reset stub ([`AP_RESET_ADDRESS`]) |
//! | 0x3FF6E | 0xFFFF_FF6E | 0x60 | footer table entries (metadata, hash table, secret, reset block) |
//! | 0x3FFCE | 0xFFFF_FFCE | 0x12 | footer entry (u16 size 0x72, footer GUID) |
//! | 0x3FFE0 | 0xFFFF_FFE0 | 0x10 | zero |
//! | 0x3FFF0 | 0xFFFF_FFF0 | 0x10 | reset vector stub, `hlt`-padded |
//!
//! Guest memory the metadata describes (the same GPAs as AmdSevX64 OVMF):
//!
//! | GPA | size | section | SNP page type |
//! |---|---|---|---|
//! | 0x80_0000 | 0x9000 | SNP_SEC_MEM | ZERO |
//! | 0x80_A000 | 0x3000 | SNP_SEC_MEM (holds the launch-secret area) | ZERO |
//! | 0x80_D000 | 0x1000 | SNP_SECRETS | SECRETS |
//! | 0x80_E000 | 0x1000 | CPUID | CPUID |
//! | 0x81_0000 | 0x1000 | SNP_KERNEL_HASHES (hash table at 0x81_0C00) | NORMAL with a kernel, else ZERO |
//! | 0x81_1000 | 0xF000 | SNP_SEC_MEM | ZERO |
//!
//! 0x80_9000 (OVMF's GHCB page) and 0x80_F000 (OVMF's SVSM calling area)
//! are left out, as in OVMF builds without an SVSM section.
//!
//! The bytes are built by code from these constants; nothing is copied from
//! an OVMF image. [`demo_image`] returns the same bytes on every call.

use sev_abi::guid::{
    Guid, OVMF_SEV_ES_RESET_BLOCK, OVMF_SEV_HASH_TABLE_RV, OVMF_SEV_METADATA,
    OVMF_SEV_SECRET_BLOCK, OVMF_TABLE_FOOTER,
};
use sev_measure::ovmf::{
    RawEntryHeader, RawMetadataHeader, RawMetadataSection, SectionKind, ENTRY_HEADER_LEN,
    FOOTER_GAP, FOUR_GIB, METADATA_HEADER_LEN, METADATA_SECTION_LEN, METADATA_SIGNATURE,
    METADATA_VERSION,
};
use zerocopy::little_endian::{U16, U32};
use zerocopy::IntoBytes;

/// Size of the image: 256 KiB.
pub const DEMO_IMAGE_SIZE: usize = 0x4_0000;

/// Guest physical address of the image's first byte (it ends at 4 GiB).
pub const DEMO_IMAGE_GPA: u64 = FOUR_GIB - DEMO_IMAGE_SIZE as u64;

/// Where the BSP starts: 4 GiB − 16 (CS base 0xFFFF_0000, IP 0xFFF0).
pub const RESET_VECTOR_GPA: u64 = FOUR_GIB - 16;

/// File offset of the reset vector.
pub const RESET_VECTOR_OFFSET: usize = DEMO_IMAGE_SIZE - 16;

/// The AP reset address of the SEV-ES reset block: the AP stub in the last
/// page of the image. QEMU and KVM start the APs with CS base
/// `addr & 0xFFFF_0000` (0xFFFF_0000) and IP `addr & 0xFFFF` (0xF100).
pub const AP_RESET_ADDRESS: u32 = 0xFFFF_F100;

/// File offset of the AP reset stub.
pub const AP_RESET_OFFSET: usize = (AP_RESET_ADDRESS as u64 - DEMO_IMAGE_GPA) as usize;

/// File offset of the `ASEV` metadata header (the start of the last page).
pub const METADATA_OFFSET: usize = DEMO_IMAGE_SIZE - 0x1000;

/// The value of the metadata footer entry: the `ASEV` header's offset
/// counted back from the end of the image.
pub const METADATA_OFFSET_FROM_END: u32 = (DEMO_IMAGE_SIZE - METADATA_OFFSET) as u32;

/// The SEV launch-secret area (`4c2eb361-…`) base: where
/// `sev-inject-launch-secret` writes by default. Inside the second
/// SNP_SEC_MEM section, as in OVMF.
pub const SECRET_AREA_GPA: u32 = 0x80_C000;

/// Size of the launch-secret area.
pub const SECRET_AREA_SIZE: u32 = 0xC00;

/// The SEV hash table area (`7255371f-…`) base: where QEMU writes the kernel
/// hashes table of measured direct boot. Inside the SNP_KERNEL_HASHES page,
/// at offset 0xC00, as in OVMF.
pub const HASH_TABLE_GPA: u32 = 0x81_0C00;

/// Size of the hash table area (at least the 176-byte padded table).
pub const HASH_TABLE_SIZE: u32 = 0x400;

/// The SNP secrets page.
pub const SECRETS_PAGE_GPA: u32 = 0x80_D000;

/// The SNP CPUID page.
pub const CPUID_PAGE_GPA: u32 = 0x80_E000;

/// The SNP kernel hashes page.
pub const KERNEL_HASHES_PAGE_GPA: u32 = 0x81_0000;

/// One SEV metadata section of the demo image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSection {
    /// Guest physical address.
    pub gpa: u32,
    /// Size in bytes (whole pages).
    pub size: u32,
    /// Section type.
    pub kind: SectionKind,
}

const fn section(gpa: u32, size: u32, kind: SectionKind) -> DemoSection {
    DemoSection { gpa, size, kind }
}

/// The metadata sections, in the order they are listed (and measured).
pub const SECTIONS: [DemoSection; 6] = [
    section(0x80_0000, 0x9000, SectionKind::SnpSecMem),
    section(0x80_A000, 0x3000, SectionKind::SnpSecMem),
    section(SECRETS_PAGE_GPA, 0x1000, SectionKind::SnpSecrets),
    section(CPUID_PAGE_GPA, 0x1000, SectionKind::Cpuid),
    section(KERNEL_HASHES_PAGE_GPA, 0x1000, SectionKind::SnpKernelHashes),
    section(0x81_1000, 0xF000, SectionKind::SnpSecMem),
];

/// Lowest guest physical address the metadata describes.
pub const METADATA_LOW_GPA: u32 = 0x80_0000;

/// One past the highest guest physical address the metadata describes
/// (guest RAM must reach at least this far).
pub const METADATA_END_GPA: u32 = 0x82_0000;

/// The banner at the start of the image.
pub const BANNER: &str = "sevkit demo guest image. NOT a firmware: the reset vector and the \
SEV-ES AP reset address run `cli; hlt; jmp short hlt` and halt forever. It carries the OVMF \
footer GUID table and SEV metadata that QEMU and the measurement tools read.\n";

/// Room reserved for the banner at the start of the image.
pub const BANNER_MAX: usize = 0x100;

/// The real-mode stub at the reset vector and the AP reset address:
/// `cli` (FA), `hlt` (F4), `jmp short -3` (EB FD, back to the `hlt`).
pub const HALT_STUB: [u8; 4] = [0xFA, 0xF4, 0xEB, 0xFD];

/// `hlt`, padding the 16-byte reset vector after [`HALT_STUB`].
const HLT: u8 = 0xF4;

/// The footer-table entries, nearest the footer first (the order OVMF uses).
fn footer_entries() -> [(Guid, Vec<u8>); 4] {
    let area = |base: u32, size: u32| [base.to_le_bytes(), size.to_le_bytes()].concat();
    [
        (
            OVMF_SEV_ES_RESET_BLOCK,
            AP_RESET_ADDRESS.to_le_bytes().to_vec(),
        ),
        (
            OVMF_SEV_SECRET_BLOCK,
            area(SECRET_AREA_GPA, SECRET_AREA_SIZE),
        ),
        (
            OVMF_SEV_HASH_TABLE_RV,
            area(HASH_TABLE_GPA, HASH_TABLE_SIZE),
        ),
        (
            OVMF_SEV_METADATA,
            METADATA_OFFSET_FROM_END.to_le_bytes().to_vec(),
        ),
    ]
}

/// Size of the whole footer table: the entries plus the footer entry.
pub const FOOTER_TABLE_LEN: usize = (4 + 4) + (8 + 8) + 4 * ENTRY_HEADER_LEN + ENTRY_HEADER_LEN;

/// File offset of the footer table's first byte.
pub const FOOTER_TABLE_OFFSET: usize = DEMO_IMAGE_SIZE - FOOTER_GAP - FOOTER_TABLE_LEN;

/// Size of the `ASEV` block: header and descriptors.
const METADATA_LEN: usize = METADATA_HEADER_LEN + SECTIONS.len() * METADATA_SECTION_LEN;

// The pieces must not overlap, and everything must sit where the constants
// say (checked at compile time, so building the image cannot fail).
const _: () = {
    assert!(DEMO_IMAGE_SIZE.is_multiple_of(0x1_0000));
    assert!(BANNER.len() <= BANNER_MAX);
    assert!(BANNER_MAX <= METADATA_OFFSET);
    assert!(METADATA_OFFSET + METADATA_LEN <= AP_RESET_OFFSET);
    assert!(AP_RESET_OFFSET + HALT_STUB.len() <= FOOTER_TABLE_OFFSET);
    assert!(AP_RESET_ADDRESS as u64 >= DEMO_IMAGE_GPA);
    assert!(AP_RESET_ADDRESS & 0xFFFF_0000 == 0xFFFF_0000);
    assert!(FOOTER_TABLE_OFFSET + FOOTER_TABLE_LEN + FOOTER_GAP == DEMO_IMAGE_SIZE);
    assert!(RESET_VECTOR_OFFSET >= DEMO_IMAGE_SIZE - FOOTER_GAP);
    assert!(FOOTER_TABLE_LEN <= u16::MAX as usize);
};

/// Copies `bytes` to `image[at..]` (in range by the compile-time checks).
fn put(image: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = at
        .checked_add(bytes.len())
        .and_then(|end| image.get_mut(at..end))
    {
        dst.copy_from_slice(bytes);
    }
}

/// The `ASEV` header and its section descriptors.
fn metadata_block() -> Vec<u8> {
    let mut block = Vec::with_capacity(METADATA_LEN);
    let header = RawMetadataHeader {
        signature: METADATA_SIGNATURE,
        size: U32::new(METADATA_LEN as u32),
        version: U32::new(METADATA_VERSION),
        num_items: U32::new(SECTIONS.len() as u32),
    };
    block.extend_from_slice(header.as_bytes());
    for s in &SECTIONS {
        let raw = RawMetadataSection {
            gpa: U32::new(s.gpa),
            size: U32::new(s.size),
            section_type: U32::new(s.kind.as_u32()),
        };
        block.extend_from_slice(raw.as_bytes());
    }
    block
}

/// The footer GUID table: each entry is `data || u16 size || GUID` (size
/// counting the 18-byte header), the entry nearest the footer last, then
/// the footer entry whose size covers the whole table.
fn footer_table() -> Vec<u8> {
    let mut table = Vec::with_capacity(FOOTER_TABLE_LEN);
    for (guid, data) in footer_entries().iter().rev() {
        table.extend_from_slice(data);
        let header = RawEntryHeader {
            size: U16::new((data.len() + ENTRY_HEADER_LEN) as u16),
            guid: guid.to_le_bytes(),
        };
        table.extend_from_slice(header.as_bytes());
    }
    let footer = RawEntryHeader {
        size: U16::new((table.len() + ENTRY_HEADER_LEN) as u16),
        guid: OVMF_TABLE_FOOTER.to_le_bytes(),
    };
    table.extend_from_slice(footer.as_bytes());
    table
}

/// The demo image: [`DEMO_IMAGE_SIZE`] bytes, identical on every call.
pub fn demo_image() -> Vec<u8> {
    let mut image = vec![0u8; DEMO_IMAGE_SIZE];
    put(&mut image, 0, BANNER.as_bytes());
    put(&mut image, METADATA_OFFSET, &metadata_block());
    put(&mut image, AP_RESET_OFFSET, &HALT_STUB);
    put(&mut image, FOOTER_TABLE_OFFSET, &footer_table());
    let mut reset = [HLT; 16];
    put(&mut reset, 0, &HALT_STUB);
    put(&mut image, RESET_VECTOR_OFFSET, &reset);
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = demo_image();
        assert_eq!(a.len(), DEMO_IMAGE_SIZE);
        assert_eq!(a, demo_image());
        assert_eq!(footer_table().len(), FOOTER_TABLE_LEN);
        assert_eq!(metadata_block().len(), METADATA_LEN);
    }

    #[test]
    fn pieces_are_where_the_constants_say() {
        let img = demo_image();
        assert_eq!(&img[METADATA_OFFSET..METADATA_OFFSET + 4], b"ASEV");
        assert_eq!(&img[AP_RESET_OFFSET..AP_RESET_OFFSET + 4], &HALT_STUB);
        assert_eq!(
            &img[RESET_VECTOR_OFFSET..RESET_VECTOR_OFFSET + 4],
            &HALT_STUB
        );
        assert_eq!(img[DEMO_IMAGE_SIZE - 1], HLT);
        assert_eq!(
            &img[DEMO_IMAGE_SIZE - FOOTER_GAP - 16..DEMO_IMAGE_SIZE - FOOTER_GAP],
            &OVMF_TABLE_FOOTER.to_le_bytes()
        );
        assert!(img[..BANNER.len()].starts_with(b"sevkit demo"));
        assert_eq!(
            DEMO_IMAGE_GPA + RESET_VECTOR_OFFSET as u64,
            RESET_VECTOR_GPA
        );
        let end = SECTIONS
            .iter()
            .map(|s| s.gpa + s.size)
            .max()
            .unwrap_or_default();
        assert_eq!(end, METADATA_END_GPA);
        let low = SECTIONS.iter().map(|s| s.gpa).min().unwrap_or_default();
        assert_eq!(low, METADATA_LOW_GPA);
    }
}
