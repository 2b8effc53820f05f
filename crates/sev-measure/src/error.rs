//! The one error type of this crate: what is wrong with the inputs of a
//! measurement, and what to do about it.

/// Why a launch digest cannot be computed.
///
/// Every function of this crate returns this type on bad input and never
/// panics. Each message says what is wrong and, where there is one, what to
/// use instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasureError {
    /// The firmware image is too short to hold the OVMF footer.
    #[error(
        "firmware image is {len} bytes, too small for an OVMF image (the footer GUID table \
         alone needs {min}); is this the right file?"
    )]
    ImageTooSmall {
        /// Image length.
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// The image does not fit below 4 GiB, where QEMU maps it.
    #[error(
        "{what} image of {len} bytes does not fit below the {limit:#x} address it must end at"
    )]
    ImageTooLarge {
        /// Which image ("firmware", "SVSM").
        what: &'static str,
        /// Image length.
        len: u64,
        /// The address the image must end at.
        limit: u64,
    },
    /// SNP measures whole pages; the image is not a multiple of 4 KiB.
    #[error(
        "{what} image is {len} bytes, not a whole number of 4 KiB pages; SNP cannot measure it"
    )]
    ImageNotPageAligned {
        /// Which image.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The OVMF footer GUID table is present but inconsistent.
    #[error("OVMF footer GUID table is corrupt: {0}")]
    FooterTable(String),
    /// The SEV metadata (`ASEV`) is present but inconsistent.
    #[error("OVMF SEV metadata is corrupt: {0}")]
    Metadata(String),
    /// A footer-table entry is shorter than its defined payload.
    #[error("OVMF footer entry {guid} holds {len} bytes, but needs at least {need}")]
    EntryTooShort {
        /// The entry's GUID.
        guid: String,
        /// Its payload length.
        len: usize,
        /// The length needed.
        need: usize,
    },
    /// SEV-ES and SNP need the AP reset vector.
    #[error(
        "the firmware has no SEV-ES reset block (GUID 00f771de-1a7e-4fcb-890e-68c77e2fb44e), \
         so QEMU cannot start its application processors under {mode}; use an OVMF build \
         with SEV-ES support (OvmfPkgX64 or AmdSevX64)"
    )]
    MissingResetBlock {
        /// The mode that needed it.
        mode: &'static str,
    },
    /// The reset block holds address zero but APs need it.
    #[error(
        "the firmware's SEV-ES reset address is zero, so the {vcpus} vCPUs cannot be started \
         (QEMU: \"SEV-ES reset address is zero\"); measure with --vcpus 1 or use another OVMF"
    )]
    ResetVectorZero {
        /// Number of vCPUs requested.
        vcpus: u32,
    },
    /// SNP needs the SEV metadata.
    #[error(
        "the firmware has no SEV metadata (OVMF GUID dc886566-984a-4798-a75e-5585a7bf67cc); \
         QEMU refuses to launch it as SEV-SNP (\"Failed to locate SEV metadata header\"). \
         Use an OVMF built with SEV-SNP support (OvmfPkgX64 from edk2 2022 or later, or AmdSevX64)"
    )]
    MissingMetadata,
    /// `--kernel` with a firmware that has no kernel hashes table.
    #[error(
        "a kernel was given but the firmware has no kernel hashes table ({reason}); measured \
         direct boot needs an OVMF AmdSevX64 build (edk2 OvmfPkg/AmdSev/AmdSevX64.dsc)"
    )]
    NoHashTable {
        /// What exactly is missing.
        reason: &'static str,
    },
    /// A metadata section of a type this crate does not know.
    #[error(
        "OVMF SEV metadata section {index} has type {value:#x}, which sevkit does not know \
         (known: 1 SNP_SEC_MEM, 2 SNP_SECRETS, 3 CPUID, 4 SVSM_CAA, 0x10 SNP_KERNEL_HASHES); \
         the measurement of this firmware cannot be predicted"
    )]
    UnknownSectionType {
        /// Position of the section in the metadata.
        index: usize,
        /// Its type field.
        value: u32,
    },
    /// A section's GPA or size is not a multiple of 4 KiB: SNP_LAUNCH_UPDATE
    /// takes whole pages, so QEMU cannot launch the image (sevkit's launch
    /// path refuses it with this message).
    #[error(
        "OVMF SEV metadata section {index} ({kind}) at {gpa:#x}+{size:#x} is not page \
         aligned: its GPA and size must be multiples of 4 KiB, as SNP_LAUNCH_UPDATE takes \
         whole pages; this firmware cannot be launched as SEV-SNP"
    )]
    SectionNotPageAligned {
        /// Position of the section in the metadata.
        index: usize,
        /// Its type name.
        kind: &'static str,
        /// Its GPA.
        gpa: u32,
        /// Its size.
        size: u32,
    },
    /// A section ends past 4 GiB: the metadata's 32-bit GPAs describe memory
    /// below 4 GiB (sevkit's launch path refuses it with this message).
    #[error(
        "OVMF SEV metadata section {index} ({kind}) at {gpa:#x}+{size:#x} ends past 4 GiB, \
         outside the 32-bit address space the metadata describes; this firmware cannot be \
         launched as SEV-SNP"
    )]
    SectionPastFourGib {
        /// Position of the section in the metadata.
        index: usize,
        /// Its type name.
        kind: &'static str,
        /// Its GPA.
        gpa: u32,
        /// Its size.
        size: u32,
    },
    /// The metadata describes more memory than sevkit will measure.
    #[error(
        "OVMF SEV metadata sections cover {bytes:#x} bytes, more than sevkit's limit of \
         {limit:#x}; no OVMF build pre-validates that much memory"
    )]
    MetadataTooLarge {
        /// Total bytes described.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The kernel hashes section cannot hold the table where QEMU puts it.
    #[error(
        "the SNP_KERNEL_HASHES section ({size:#x} bytes) cannot hold the 176-byte hashes \
         table at page offset {offset:#x}; QEMU needs it to be one 4 KiB page"
    )]
    KernelHashesLayout {
        /// Section size.
        size: u32,
        /// Offset of the table in the page.
        offset: u32,
    },
    /// Too many vCPUs.
    #[error("{vcpus} vCPUs requested; sevkit measures at most {max} (KVM's limit)")]
    TooManyVcpus {
        /// Requested.
        vcpus: u32,
        /// Maximum.
        max: u32,
    },
    /// A precomputed OVMF digest has the wrong length.
    #[error("the precomputed OVMF digest must be 48 bytes (96 hex digits), got {len} bytes")]
    OvmfHashLength {
        /// Length given.
        len: usize,
    },
    /// An option was given to a mode that cannot use it.
    #[error("{option} cannot be used in mode {mode}: {why}")]
    NotInMode {
        /// The option.
        option: &'static str,
        /// The mode.
        mode: &'static str,
        /// Why.
        why: &'static str,
    },
    /// A required input is missing for the mode.
    #[error("mode {mode} needs {what}")]
    Missing {
        /// The mode.
        mode: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// The SVSM binary lacks its entry point.
    #[error(
        "the SVSM binary has no SVSM_INFO entry (GUID a789a612-0597-4c4b-a49f-cbb1fe9d1ddd) \
         in its footer table; is it a pre-IGVM Coconut-SVSM build?"
    )]
    MissingSvsmInfo,
    /// The SVSM layout does not fit in the address space.
    #[error(
        "the SVSM ({svsm_len} bytes) and OVMF_VARS ({vars_size} bytes) do not fit below \
         the firmware at {ovmf_gpa:#x}"
    )]
    SvsmLayout {
        /// SVSM length.
        svsm_len: u64,
        /// Vars size.
        vars_size: u64,
        /// OVMF GPA.
        ovmf_gpa: u64,
    },
}

/// Convenience alias for results of this crate.
pub type Result<T> = core::result::Result<T, MeasureError>;
