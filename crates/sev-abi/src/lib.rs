//! # sev-abi
//!
//! Every AMD-defined byte layout and constant that sevkit speaks: firmware
//! status codes, SEV and SNP guest policies, legacy `sev_cert` and AMD ARK/ASK
//! certificates, the SNP attestation report (versions 2, 3 and 5) with its
//! per-product TCB encodings, the GHCB certificate table, SNP page info, ID
//! block and ID authentication, the secrets page, the CPUID page, guest message headers and
//! payloads, the legacy launch session and packet headers, the VMSA save
//! area, the launch digests and OVMF GUIDs.
//!
//! Fixed-size structures are `#[repr(C)]` types built from byte arrays and
//! little-endian integers (`zerocopy`), so their in-memory form *is* the wire
//! form: parsing checks the length (and, where the specification says so, a
//! version or reserved fields) and serializing is `as_bytes()`. Every parser
//! returns [`AbiError`] on bad input and never panics.
//!
//! Sources for every layout are digested in the project's `shared/spec/`; each
//! structure's tests check its size and field offsets against those tables.
//!
//! This crate performs no I/O, draws no randomness and contains no unsafe code.

pub mod error;
pub mod policy;
pub mod product;
pub mod pubkey;
pub mod report;
pub mod signature;
pub mod status;

pub mod amd_cert;
pub mod cert_table;
pub mod guest_msg;
pub mod guid;
pub mod launch_digest;
pub mod legacy_cert;
pub mod secrets_page;
pub mod session;
pub mod snp_launch;
pub mod vmsa;

pub use error::{AbiError, Result};
pub use policy::{FieldWidth, GuestPolicy, PolicyField, PolicyKind, SnpPolicy, POLICY_FIELDS};
pub use product::{Product, TcbLayout, TcbParts, TcbVersion};
pub use report::{AttestationReport, KeyInfo, PlatformInfo, SigningKey};
pub use status::FirmwareStatus;

pub use amd_cert::AmdCert;
pub use cert_table::{CertKind, CertTable, CertTableEntry};
pub use guest_msg::{
    GuestMessageHeader, KeyRequest, KeyRequestV2, KeyResponse, KeySelect, MessageType,
    ReportRequest, ReportResponseHeader,
};
pub use guid::Guid;
pub use launch_digest::{LaunchDigest, SevLaunchDigest, SnpLaunchDigest};
pub use legacy_cert::{Algorithm, HashAlgorithm, KeyUsage, SevCert};
pub use secrets_page::SecretsPage;
pub use session::{
    ChannelContext, LaunchMeasurement, LegacyAttestationReport, PacketHeader, SessionBlob,
};
pub use snp_launch::{IdAuth, IdBlock, PageInfo, PageType};
pub use vmsa::{SaveArea, VmcbSegment};
pub mod commands;
pub mod cpuid_features;
pub mod cpuid_page;
pub mod host_ops;
