//! Firmware command identifiers and the legacy SEV / SEV-ES command buffers
//! (reference §1.1, §1.6 and §2.1).
//!
//! A command is a 32-bit id plus a command buffer: a packed little-endian
//! structure that the AMD-SP reads its inputs from and writes its outputs
//! back into. Addresses inside a buffer (`*_paddr`) are system physical
//! addresses of further data (certificates, session blobs, guest pages).
//!
//! Every buffer here is `#[repr(C)]` over byte arrays and unaligned
//! little-endian integers, so it has no padding and its in-memory form is the
//! wire form: build one with `new_zeroed()`/struct literals and send
//! `as_bytes()`, parse a reply with `read_from_bytes`/`read_from_prefix`.
//!
//! Length-query convention (§1.6): for LAUNCH_MEASURE, ATTESTATION,
//! SEND_START, SEND_UPDATE_*, PEK_CSR, PDH_CERT_EXPORT and GET_ID, when the
//! supplied length is too small the firmware answers `INVALID_LENGTH` and
//! writes the required length back into the buffer's length field.

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::policy::{GuestPolicy, SnpPolicy};

macro_rules! command_ids {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $code,)*
        }

        impl $name {
            /// Every command of this family, in id order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The command with this id, if it is one of this family.
            pub const fn from_u32(id: u32) -> Option<Self> {
                match id {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The command id.
            pub const fn id(self) -> u32 {
                self as u32
            }

            /// The name AMD's specification and Linux use (`LAUNCH_START`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl From<$name> for u32 {
            fn from(command: $name) -> u32 {
                command.id()
            }
        }
    };
}

command_ids! {
    /// Legacy SEV / SEV-ES command ids (reference §1.1).
    pub enum SevCommand {
        /// Initialize the platform (flags bit 0: enable SEV-ES).
        Init = 0x01 => "INIT",
        /// Return the platform to UNINIT, decommissioning every SEV guest.
        Shutdown = 0x02 => "SHUTDOWN",
        /// Delete the persistent store (OCA, PEK, PDH); also FACTORY_RESET.
        PlatformReset = 0x03 => "PLATFORM_RESET",
        /// Report API version, state, owner, config, build and guest count.
        PlatformStatus = 0x04 => "PLATFORM_STATUS",
        /// Regenerate the OCA, PEK and PDH (self-owned platform).
        PekGen = 0x05 => "PEK_GEN",
        /// Write a certificate signing request for the PEK.
        PekCsr = 0x06 => "PEK_CSR",
        /// Import an OCA-signed PEK certificate and the OCA certificate.
        PekCertImport = 0x07 => "PEK_CERT_IMPORT",
        /// Export the PDH certificate and the PEK/OCA/CEK chain.
        PdhCertExport = 0x08 => "PDH_CERT_EXPORT",
        /// Regenerate the PDH.
        PdhGen = 0x09 => "PDH_GEN",
        /// Flush the data fabric write buffers (makes deactivated ASIDs reusable).
        DfFlush = 0x0A => "DF_FLUSH",
        /// Load a new firmware image.
        DownloadFirmware = 0x0B => "DOWNLOAD_FIRMWARE",
        /// Return the chip id (the CUK's public point on secp256k1).
        GetId = 0x0C => "GET_ID",
        /// INIT with a host-memory persistent store.
        InitEx = 0x0D => "INIT_EX",
        /// Do nothing.
        Nop = 0x0E => "NOP",
        /// Enter ring-buffer mode.
        RingBuffer = 0x0F => "RING_BUFFER",
        /// Delete a guest context.
        Decommission = 0x20 => "DECOMMISSION",
        /// Bind a guest to an ASID (install its key).
        Activate = 0x21 => "ACTIVATE",
        /// Unbind a guest from its ASID.
        Deactivate = 0x22 => "DEACTIVATE",
        /// Report a guest's policy, ASID and state.
        GuestStatus = 0x23 => "GUEST_STATUS",
        /// Copy (re-encrypt) guest memory to a new address.
        Copy = 0x24 => "COPY",
        /// ACTIVATE restricted to a set of CCXs.
        ActivateEx = 0x25 => "ACTIVATE_EX",
        /// Create a guest context, optionally opening an owner session.
        LaunchStart = 0x30 => "LAUNCH_START",
        /// Encrypt guest memory in place and extend the launch digest.
        LaunchUpdateData = 0x31 => "LAUNCH_UPDATE_DATA",
        /// Encrypt an SEV-ES VMSA in place and extend the launch digest.
        LaunchUpdateVmsa = 0x32 => "LAUNCH_UPDATE_VMSA",
        /// Return the launch measurement (HMAC under TIK) and its nonce.
        LaunchMeasure = 0x33 => "LAUNCH_MEASURE",
        /// Inject a secret packet into guest memory.
        LaunchSecret = 0x34 => "LAUNCH_SECRET",
        /// End the launch: close the channel, guest RUNNING.
        LaunchFinish = 0x35 => "LAUNCH_FINISH",
        /// Legacy attestation report signed by the PEK.
        Attestation = 0x36 => "ATTESTATION",
        /// Start sending a guest to another platform.
        SendStart = 0x40 => "SEND_START",
        /// Send a region of guest memory.
        SendUpdateData = 0x41 => "SEND_UPDATE_DATA",
        /// Send an SEV-ES VMSA.
        SendUpdateVmsa = 0x42 => "SEND_UPDATE_VMSA",
        /// End sending.
        SendFinish = 0x43 => "SEND_FINISH",
        /// Abort sending.
        SendCancel = 0x44 => "SEND_CANCEL",
        /// Start receiving a guest.
        ReceiveStart = 0x50 => "RECEIVE_START",
        /// Receive a region of guest memory.
        ReceiveUpdateData = 0x51 => "RECEIVE_UPDATE_DATA",
        /// Receive an SEV-ES VMSA.
        ReceiveUpdateVmsa = 0x52 => "RECEIVE_UPDATE_VMSA",
        /// End receiving.
        ReceiveFinish = 0x53 => "RECEIVE_FINISH",
        /// Decrypt guest memory for a debugger.
        DbgDecrypt = 0x60 => "DBG_DECRYPT",
        /// Encrypt memory into a guest for a debugger.
        DbgEncrypt = 0x61 => "DBG_ENCRYPT",
        /// Swap a guest page out.
        SwapOut = 0x70 => "SWAP_OUT",
        /// Swap a guest page in.
        SwapIn = 0x71 => "SWAP_IN",
    }
}

command_ids! {
    /// SEV-SNP command ids (reference §2.1).
    pub enum SnpCommand {
        /// Initialize SNP (RMP) on the platform.
        SnpInit = 0x81 => "SNP_INIT",
        /// Shut SNP down.
        SnpShutdown = 0x82 => "SNP_SHUTDOWN",
        /// Report SNP platform status.
        SnpPlatformStatus = 0x83 => "SNP_PLATFORM_STATUS",
        /// SNP data-fabric flush.
        SnpDfFlush = 0x84 => "SNP_DF_FLUSH",
        /// SNP_INIT with options.
        SnpInitEx = 0x85 => "SNP_INIT_EX",
        /// SNP_SHUTDOWN with options.
        SnpShutdownEx = 0x86 => "SNP_SHUTDOWN_EX",
        /// Delete an SNP guest context.
        SnpDecommission = 0x90 => "SNP_DECOMMISSION",
        /// Bind an SNP guest to an ASID.
        SnpActivate = 0x91 => "SNP_ACTIVATE",
        /// Report an SNP guest's status.
        SnpGuestStatus = 0x92 => "SNP_GUEST_STATUS",
        /// Create an SNP guest context page.
        SnpGctxCreate = 0x93 => "SNP_GCTX_CREATE",
        /// Relay an encrypted guest message.
        SnpGuestRequest = 0x94 => "SNP_GUEST_REQUEST",
        /// SNP_ACTIVATE restricted to a set of CCXs.
        SnpActivateEx = 0x95 => "SNP_ACTIVATE_EX",
        /// Start an SNP launch.
        SnpLaunchStart = 0xA0 => "SNP_LAUNCH_START",
        /// Add pages to an SNP launch.
        SnpLaunchUpdate = 0xA1 => "SNP_LAUNCH_UPDATE",
        /// Finish an SNP launch (ID block, host data).
        SnpLaunchFinish = 0xA2 => "SNP_LAUNCH_FINISH",
        /// Decrypt SNP guest memory for a debugger.
        SnpDbgDecrypt = 0xB0 => "SNP_DBG_DECRYPT",
        /// Encrypt memory into an SNP guest for a debugger.
        SnpDbgEncrypt = 0xB1 => "SNP_DBG_ENCRYPT",
        /// Swap an SNP page out.
        SnpPageSwapOut = 0xC0 => "SNP_PAGE_SWAP_OUT",
        /// Swap an SNP page in.
        SnpPageSwapIn = 0xC1 => "SNP_PAGE_SWAP_IN",
        /// Move an SNP page.
        SnpPageMove = 0xC2 => "SNP_PAGE_MOVE",
        /// Turn a firmware page into a metadata page.
        SnpPageMdInit = 0xC3 => "SNP_PAGE_MD_INIT",
        /// Set a page's RMP state.
        SnpPageSetState = 0xC6 => "SNP_PAGE_SET_STATE",
        /// Reclaim a firmware or guest page.
        SnpPageReclaim = 0xC7 => "SNP_PAGE_RECLAIM",
        /// Split a 2 MiB RMP entry.
        SnpPageUnsmash = 0xC8 => "SNP_PAGE_UNSMASH",
        /// Set the reported TCB and mask the chip id.
        SnpConfig = 0xC9 => "SNP_CONFIG",
        /// Load new firmware while SNP is running.
        SnpDownloadFirmwareEx = 0xCA => "SNP_DOWNLOAD_FIRMWARE_EX",
        /// Commit the current firmware (raise the committed TCB).
        SnpCommit = 0xCB => "SNP_COMMIT",
        /// Continue a firmware download (firmware-internal).
        SnpDlfwContinue = 0xCC => "DLFW_CONTINUE",
        /// Load a VLEK.
        SnpVlekLoad = 0xCD => "SNP_VLEK_LOAD",
        /// Report firmware feature bits.
        SnpFeatureInfo = 0xCE => "SNP_FEATURE_INFO",
    }
}

/// Name of any command id (legacy, SNP, or a sevkit host-instruction
/// pseudo-command), if it is a known one.
pub fn command_name(id: u32) -> Option<&'static str> {
    SevCommand::from_u32(id)
        .map(SevCommand::name)
        .or_else(|| SnpCommand::from_u32(id).map(SnpCommand::name))
        .or_else(|| crate::host_ops::HostOp::from_u32(id).map(crate::host_ops::HostOp::name))
}

macro_rules! buffer {
    ($(#[$meta:meta])* $name:ident = $size:literal { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
        #[repr(C)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// Size of the buffer in bytes.
            pub const SIZE: usize = $size;
        }

        // The size AMD's table gives is the size of the type, checked when
        // the crate compiles.
        const _: () = assert!(core::mem::size_of::<$name>() == $size);
    };
}
/// Also for the other wire buffers of this crate (`host_ops`).
pub(crate) use buffer;

/// `INIT` flag: enable SEV-ES (needs a TMR).
pub const INIT_FLAG_SEV_ES: u32 = 1 << 0;
/// `PLATFORM_STATUS.owner` bit: the platform is owned externally (an OCA was
/// imported).
pub const PLATFORM_OWNER_EXTERNAL: u8 = 1 << 0;
/// `PLATFORM_STATUS.config` bit: SEV-ES was enabled at INIT.
pub const PLATFORM_CONFIG_ES: u16 = 1 << 0;
/// Value of `InitExBuffer::length`.
pub const INIT_EX_LENGTH: u32 = 0x24;
/// Value of `ActivateExBuffer::ex_len`.
pub const ACTIVATE_EX_LENGTH: u32 = 0x18;

buffer! {
    /// INIT (0x01): `flags` bit 0 enables SEV-ES, whose TMR is at `tmr_paddr`.
    InitBuffer = 0x14 {
        /// Bit 0: SEV-ES.
        flags: U32,
        /// Reserved.
        reserved: U32,
        /// Trusted memory region for SEV-ES (1 MiB aligned).
        tmr_paddr: U64,
        /// TMR length.
        tmr_len: U32,
    }
}

buffer! {
    /// INIT_EX (0x0D): INIT plus a host-memory persistent store.
    InitExBuffer = 0x24 {
        /// Length of this buffer (0x24).
        length: U32,
        /// Bit 0: SEV-ES.
        flags: U32,
        /// Trusted memory region for SEV-ES.
        tmr_paddr: U64,
        /// TMR length.
        tmr_len: U32,
        /// Reserved.
        reserved: U32,
        /// Non-volatile store in host memory (0: the firmware's own).
        nv_paddr: U64,
        /// Non-volatile store length (32 KiB).
        nv_len: U32,
    }
}

buffer! {
    /// PLATFORM_STATUS (0x04), written by the firmware. Linux views bytes 3..7
    /// as one u32 of flags (bit 0 owner, bit 8 SEV-ES configured).
    PlatformStatusBuffer = 0x0C {
        /// API major version.
        api_major: u8,
        /// API minor version.
        api_minor: u8,
        /// Platform state: 0 UNINIT, 1 INIT, 2 WORKING.
        state: u8,
        /// Bit 0: externally owned.
        owner: u8,
        /// Bit 0: SEV-ES initialized.
        config: U16,
        /// Reserved.
        reserved: u8,
        /// Firmware build.
        build: u8,
        /// Number of guests.
        guest_count: U32,
    }
}

buffer! {
    /// PEK_CSR (0x06): the firmware writes an unsigned PEK `sev_cert` at
    /// `paddr` (length query convention).
    PekCsrBuffer = 0x0C {
        /// Where to write the certificate.
        paddr: U64,
        /// In: buffer size; out: required size (0x824).
        len: U32,
    }
}

buffer! {
    /// PEK_CERT_IMPORT (0x07).
    PekCertImportBuffer = 0x1C {
        /// The OCA-signed PEK certificate.
        pek_paddr: U64,
        /// Its length (0x824).
        pek_len: U32,
        /// Reserved.
        reserved: U32,
        /// The OCA certificate.
        oca_paddr: U64,
        /// Its length (0x824).
        oca_len: U32,
    }
}

buffer! {
    /// PDH_CERT_EXPORT (0x08): PDH certificate, and the chain PEK ‖ OCA ‖ CEK
    /// (length query convention on both lengths).
    PdhCertExportBuffer = 0x1C {
        /// Where to write the PDH certificate.
        pdh_paddr: U64,
        /// In: buffer size; out: 0x824.
        pdh_len: U32,
        /// Reserved.
        reserved: U32,
        /// Where to write PEK ‖ OCA ‖ CEK.
        chain_paddr: U64,
        /// In: buffer size; out: 3 × 0x824.
        chain_len: U32,
    }
}

buffer! {
    /// DOWNLOAD_FIRMWARE (0x0B).
    DownloadFirmwareBuffer = 0x0C {
        /// Firmware image.
        paddr: U64,
        /// Its length.
        len: U32,
    }
}

buffer! {
    /// GET_ID (0x0C): per socket `x[32] ‖ y[32]` (big-endian secp256k1
    /// point), length query convention. Linux's GET_ID2 ioctl issues this
    /// command with a caller-chosen length.
    GetIdBuffer = 0x0C {
        /// Where to write the ids.
        paddr: U64,
        /// In: buffer size; out: 64 per socket.
        len: U32,
    }
}

buffer! {
    /// The one-field buffer of DECOMMISSION, DEACTIVATE, LAUNCH_FINISH,
    /// SEND_FINISH, SEND_CANCEL and RECEIVE_FINISH.
    HandleBuffer = 0x04 {
        /// Guest handle.
        handle: U32,
    }
}

buffer! {
    /// ACTIVATE (0x21).
    ActivateBuffer = 0x08 {
        /// Guest handle.
        handle: U32,
        /// ASID to bind.
        asid: U32,
    }
}

buffer! {
    /// ACTIVATE_EX (0x25).
    ActivateExBuffer = 0x18 {
        /// Length of this buffer (0x18).
        ex_len: U32,
        /// Guest handle.
        handle: U32,
        /// ASID to bind.
        asid: U32,
        /// Number of CCX ids at `ids_paddr`.
        numids: U32,
        /// CCX ids (u32 each).
        ids_paddr: U64,
    }
}

buffer! {
    /// GUEST_STATUS (0x23): the firmware fills policy, ASID and state.
    GuestStatusBuffer = 0x0D {
        /// Guest handle (in).
        handle: U32,
        /// Guest policy (out).
        policy: GuestPolicy,
        /// Bound ASID, 0 if none (out).
        asid: U32,
        /// Guest state (out): 1 LUPDATE, 2 LSECRET, 3 RUNNING, 4 SUPDATE,
        /// 5 RUPDATE, 6 SENT.
        state: u8,
    }
}

buffer! {
    /// COPY (0x24).
    CopyBuffer = 0x18 {
        /// Guest handle.
        handle: U32,
        /// Bytes to copy.
        length: U32,
        /// Source.
        src_paddr: U64,
        /// Destination.
        dst_paddr: U64,
    }
}

buffer! {
    /// LAUNCH_START (0x30). A zero `dh_cert_paddr` launches without an owner
    /// session (TEK and TIK stay zero).
    LaunchStartBuffer = 0x24 {
        /// In: guest to share the memory key with (0 = new key); out: the new
        /// guest's handle.
        handle: U32,
        /// Guest policy.
        policy: GuestPolicy,
        /// Guest owner's Diffie-Hellman certificate (GODH, a PDH-usage `sev_cert`).
        dh_cert_paddr: U64,
        /// Its length (0x824).
        dh_cert_len: U32,
        /// Reserved.
        reserved: U32,
        /// Session blob.
        session_paddr: U64,
        /// Its length (0x80).
        session_len: U32,
    }
}

buffer! {
    /// LAUNCH_UPDATE_DATA (0x31) and LAUNCH_UPDATE_VMSA (0x32).
    LaunchUpdateBuffer = 0x14 {
        /// Guest handle.
        handle: U32,
        /// Reserved.
        reserved: U32,
        /// The memory to encrypt in place (16-byte aligned).
        paddr: U64,
        /// Its length (16-byte multiple; 4096 for a VMSA).
        len: U32,
    }
}

buffer! {
    /// LAUNCH_MEASURE (0x33): the firmware writes `measurement[32] ‖
    /// mnonce[16]` at `paddr` (length query convention).
    LaunchMeasureBuffer = 0x14 {
        /// Guest handle.
        handle: U32,
        /// Reserved.
        reserved: U32,
        /// Where to write the measurement.
        paddr: U64,
        /// In: buffer size; out: 0x30.
        len: U32,
    }
}

buffer! {
    /// The transport buffer of LAUNCH_SECRET (0x34), SEND_UPDATE_DATA/VMSA
    /// and RECEIVE_UPDATE_DATA/VMSA: packet header, guest memory, transport
    /// (encrypted) data.
    TransportBuffer = 0x34 {
        /// Guest handle.
        handle: U32,
        /// Reserved.
        reserved: U32,
        /// Packet header (0x34 bytes: flags, IV, MAC).
        hdr_paddr: U64,
        /// Its length.
        hdr_len: U32,
        /// Reserved.
        reserved2: U32,
        /// Guest memory.
        guest_paddr: U64,
        /// Its length.
        guest_len: U32,
        /// Reserved.
        reserved3: U32,
        /// Transport data.
        trans_paddr: U64,
        /// Its length.
        trans_len: U32,
    }
}

buffer! {
    /// ATTESTATION (0x36): the firmware writes a 0xD0-byte legacy report at
    /// `paddr` (length query convention).
    AttestationBuffer = 0x24 {
        /// Guest handle.
        handle: U32,
        /// Reserved.
        reserved: U32,
        /// Where to write the report.
        paddr: U64,
        /// Caller's nonce, copied into the report.
        mnonce: [u8; 16],
        /// In: buffer size; out: 0xD0.
        len: U32,
    }
}

buffer! {
    /// SEND_START (0x40).
    SendStartBuffer = 0x44 {
        /// Guest handle.
        handle: U32,
        /// Guest policy (out).
        policy: GuestPolicy,
        /// Receiver's PDH certificate.
        pdh_paddr: U64,
        /// Its length.
        pdh_len: U32,
        /// Reserved.
        reserved: U32,
        /// Receiver's PEK ‖ OCA ‖ CEK.
        plat_certs_paddr: U64,
        /// Their length.
        plat_certs_len: U32,
        /// Reserved.
        reserved2: U32,
        /// Receiver's ASK ‖ ARK.
        amd_certs_paddr: U64,
        /// Their length.
        amd_certs_len: U32,
        /// Reserved.
        reserved3: U32,
        /// Where to write the session blob.
        session_paddr: U64,
        /// In: buffer size; out: 0x80.
        session_len: U32,
    }
}

buffer! {
    /// RECEIVE_START (0x50).
    ReceiveStartBuffer = 0x24 {
        /// In: guest to share the key with; out: new handle.
        handle: U32,
        /// Guest policy.
        policy: GuestPolicy,
        /// Sender's PDH certificate.
        pdh_paddr: U64,
        /// Its length.
        pdh_len: U32,
        /// Reserved.
        reserved: U32,
        /// Session blob.
        session_paddr: U64,
        /// Its length.
        session_len: U32,
    }
}

buffer! {
    /// DBG_DECRYPT (0x60) and DBG_ENCRYPT (0x61).
    DbgBuffer = 0x1C {
        /// Guest handle.
        handle: U32,
        /// Reserved.
        reserved: U32,
        /// Source.
        src_paddr: U64,
        /// Destination.
        dst_paddr: U64,
        /// Length (16-byte multiple).
        len: U32,
    }
}

// ---------------------------------------------------------------------------
// SEV-SNP command buffers (reference §2.4)
// ---------------------------------------------------------------------------

/// `SNP_INIT_EX` flag: initialise the RMP.
pub const SNP_INIT_FLAG_INIT_RMP: u32 = 1 << 0;
/// `SNP_INIT_EX` flag: `list_paddr` holds a range list of HV_FIXED pages.
pub const SNP_INIT_FLAG_LIST_PADDR_EN: u32 = 1 << 1;
/// `SNP_INIT_EX` flag: disable RAPL.
pub const SNP_INIT_FLAG_RAPL_DIS: u32 = 1 << 2;
/// `SNP_INIT_EX` flag: enable ciphertext hiding.
pub const SNP_INIT_FLAG_CIPHERTEXT_HIDING_EN: u32 = 1 << 3;
/// `SNP_INIT_EX` flag: enable SEV-TIO.
pub const SNP_INIT_FLAG_TIO_EN: u32 = 1 << 4;
/// `SNP_PLATFORM_STATUS` byte 3 bit 0: the RMP is initialised.
pub const SNP_STATUS_IS_RMP_INIT: u8 = 1 << 0;
/// `SNP_PLATFORM_STATUS` flags bit 0: chip id masked (SNP_CONFIG).
pub const SNP_STATUS_MASK_CHIP_ID: u32 = 1 << 0;
/// `SNP_PLATFORM_STATUS` flags bit 1: chip key masked (SNP_CONFIG).
pub const SNP_STATUS_MASK_CHIP_KEY: u32 = 1 << 1;
/// `SNP_PLATFORM_STATUS` flags bit 2: a VLEK is loaded.
pub const SNP_STATUS_VLEK_EN: u32 = 1 << 2;
/// `SNP_PLATFORM_STATUS` flags bit 3: SNP_FEATURE_INFO is supported.
pub const SNP_STATUS_FEATURE_INFO: u32 = 1 << 3;
/// `SNP_PLATFORM_STATUS` flags bit 4: RAPL disabled.
pub const SNP_STATUS_RAPL_DIS: u32 = 1 << 4;
/// `SNP_CONFIG` flag: mask the chip id in reports.
pub const SNP_CONFIG_MASK_CHIP_ID: u32 = 1 << 0;
/// `SNP_CONFIG` flag: mask the chip key (no VCEK signatures).
pub const SNP_CONFIG_MASK_CHIP_KEY: u32 = 1 << 1;
/// `SNP_LAUNCH_START` flag: associate with a migration agent.
pub const SNP_LAUNCH_START_MA_EN: u32 = 1 << 0;
/// `SNP_LAUNCH_START` flag: incoming migration image.
pub const SNP_LAUNCH_START_IMI_EN: u32 = 1 << 1;
/// `SNP_LAUNCH_FINISH` flag: an ID block is supplied.
pub const SNP_LAUNCH_FINISH_ID_BLOCK_EN: u64 = 1 << 0;
/// `SNP_LAUNCH_FINISH` flag: the ID auth carries an author key.
pub const SNP_LAUNCH_FINISH_AUTH_KEY_EN: u64 = 1 << 1;
/// `SNP_LAUNCH_FINISH` flag: the VCEK may not sign this guest's reports.
pub const SNP_LAUNCH_FINISH_VCEK_DISABLED: u64 = 1 << 2;
/// `SNP_SHUTDOWN_EX` length.
pub const SNP_SHUTDOWN_EX_LENGTH: u32 = 8;
/// `SNP_FEATURE_INFO` length.
pub const SNP_FEATURE_INFO_LENGTH: u32 = 0x10;
/// `SNP_COMMIT` length.
pub const SNP_COMMIT_LENGTH: u32 = 4;

buffer! {
    /// SNP_INIT_EX (0x85).
    SnpInitExBuffer = 0x40 {
        /// `SNP_INIT_FLAG_*`.
        flags: U32,
        /// Reserved.
        reserved0: U32,
        /// Range list of pages to make HV_FIXED (with `LIST_PADDR_EN`).
        list_paddr: U64,
        /// Highest SNP ASID (0: the whole SEV-ES range).
        max_snp_asid: U16,
        /// Reserved.
        reserved1: [u8; 32],
        /// Reserved.
        reserved2: [u8; 14],
    }
}

buffer! {
    /// One range of the SNP_INIT_EX range list (after a `u32 n; u32 rsvd` header).
    SnpRange = 0x10 {
        /// First page (4 KiB aligned).
        base: U64,
        /// Number of 4 KiB pages.
        page_count: U32,
        /// Reserved.
        reserved: U32,
    }
}

buffer! {
    /// SNP_SHUTDOWN_EX (0x86).
    SnpShutdownExBuffer = 0x08 {
        /// Length of this buffer (8).
        length: U32,
        /// Bit 0: IOMMU SNP shutdown; bit 1: x86 SNP shutdown.
        flags: U32,
    }
}

buffer! {
    /// SNP_PLATFORM_STATUS (0x83): where to write [`SnpPlatformStatus`].
    SnpPlatformStatusBuffer = 0x08 {
        /// Output page.
        status_paddr: U64,
    }
}

buffer! {
    /// What SNP_PLATFORM_STATUS writes (0x20 bytes).
    SnpPlatformStatus = 0x20 {
        /// API major version.
        api_major: u8,
        /// API minor version.
        api_minor: u8,
        /// SNP platform state: 0 UNINIT, 1 INIT.
        state: u8,
        /// Bit 0 is_rmp_init, bit 1 alias_check_complete, bit 3 tio_en.
        is_rmp_init: u8,
        /// Firmware build id.
        build_id: U32,
        /// `SNP_STATUS_*` flags (mask chip id/key, VLEK, feature info, ...).
        flags: U32,
        /// Number of SNP guests.
        guest_count: U32,
        /// Current TCB_VERSION.
        current_tcb: U64,
        /// Reported TCB_VERSION.
        reported_tcb: U64,
    }
}

buffer! {
    /// SNP_DECOMMISSION (0x90), SNP_GCTX_CREATE (0x93), SNP_PAGE_UNSMASH
    /// (0xC8): one page address.
    SnpPaddrBuffer = 0x08 {
        /// Page address (the guest-context page for GCTX commands).
        paddr: U64,
    }
}

buffer! {
    /// SNP_ACTIVATE (0x91).
    SnpActivateBuffer = 0x0C {
        /// Guest context page.
        gctx_paddr: U64,
        /// ASID.
        asid: U32,
    }
}

buffer! {
    /// SNP_GUEST_STATUS (0x92).
    SnpGuestStatusBuffer = 0x10 {
        /// Guest context page.
        gctx_paddr: U64,
        /// Where to write [`SnpGuestStatus`].
        status_paddr: U64,
    }
}

buffer! {
    /// What SNP_GUEST_STATUS writes (0x20 bytes).
    SnpGuestStatus = 0x20 {
        /// Guest policy.
        policy: SnpPolicy,
        /// Bound ASID (0: none).
        asid: U32,
        /// Guest state: 0 INIT, 1 LAUNCH, 2 RUNNING.
        state: u8,
        /// Reserved.
        reserved0: [u8; 3],
        /// Bit 0: VCEK disabled.
        flags: U32,
        /// Reserved.
        reserved1: U32,
        /// Reserved.
        reserved2: U64,
    }
}

buffer! {
    /// SNP_GUEST_REQUEST (0x94).
    SnpGuestRequestBuffer = 0x18 {
        /// Guest context page.
        gctx_paddr: U64,
        /// Request message page (4 KiB).
        req_paddr: U64,
        /// Response message page (4 KiB, firmware-owned).
        rsp_paddr: U64,
    }
}

buffer! {
    /// SNP_LAUNCH_START (0xA0).
    SnpLaunchStartBuffer = 0x30 {
        /// Guest context page.
        gctx_paddr: U64,
        /// Guest policy.
        policy: SnpPolicy,
        /// Migration agent's guest context (with `MA_EN`).
        ma_gctx_paddr: U64,
        /// `SNP_LAUNCH_START_*` flags.
        flags: U32,
        /// Desired TSC frequency in kHz (Secure TSC).
        desired_tsc_khz: U32,
        /// Guest OS SVN words.
        gosvw: [u8; 16],
    }
}

buffer! {
    /// SNP_LAUNCH_UPDATE (0xA1).
    SnpLaunchUpdateBuffer = 0x20 {
        /// Guest context page.
        gctx_paddr: U64,
        /// Bit 0 page size (0 4K, 1 2M), bits 3:1 page type, bit 4 IMI page.
        flags: U32,
        /// Reserved.
        reserved0: U32,
        /// The page (system physical address).
        page_paddr: U64,
        /// Reserved.
        reserved1: u8,
        /// VMPL1 permissions.
        vmpl1_perms: u8,
        /// VMPL2 permissions.
        vmpl2_perms: u8,
        /// VMPL3 permissions.
        vmpl3_perms: u8,
        /// Reserved.
        reserved2: U32,
    }
}

impl SnpLaunchUpdateBuffer {
    /// Encodes `flags` from page size (2 MiB?), page type and IMI page.
    pub const fn flags_for(page_2m: bool, page_type: u8, imi_page: bool) -> u32 {
        (page_2m as u32) | (((page_type & 7) as u32) << 1) | ((imi_page as u32) << 4)
    }
}

buffer! {
    /// SNP_LAUNCH_FINISH (0xA2).
    SnpLaunchFinishBuffer = 0x40 {
        /// Guest context page.
        gctx_paddr: U64,
        /// ID block (0x60 bytes).
        id_block_paddr: U64,
        /// ID authentication information (0x1000 bytes).
        id_auth_paddr: U64,
        /// `SNP_LAUNCH_FINISH_*` flags.
        flags: U64,
        /// Host data, reported in attestation reports.
        host_data: [u8; 32],
    }
}

buffer! {
    /// SNP_DBG_DECRYPT (0xB0) and SNP_DBG_ENCRYPT (0xB1): one page.
    SnpDbgBuffer = 0x18 {
        /// Guest context page.
        gctx_paddr: U64,
        /// Source page.
        src_paddr: U64,
        /// Destination page.
        dst_paddr: U64,
    }
}

buffer! {
    /// SNP_PAGE_RECLAIM (0xC7): bit 0 of `paddr` is the page size.
    SnpPageReclaimBuffer = 0x08 {
        /// Page address | page size bit.
        paddr: U64,
    }
}

buffer! {
    /// SNP_CONFIG (0xC9).
    SnpConfigBuffer = 0x40 {
        /// Reported TCB_VERSION.
        reported_tcb: U64,
        /// `SNP_CONFIG_*` flags.
        flags: U32,
        /// Reserved.
        reserved0: [u8; 32],
        /// Reserved.
        reserved1: [u8; 20],
    }
}

buffer! {
    /// SNP_COMMIT (0xCB).
    SnpCommitBuffer = 0x04 {
        /// Length of this buffer (4).
        length: U32,
    }
}

buffer! {
    /// SNP_FEATURE_INFO (0xCE).
    SnpFeatureInfoBuffer = 0x10 {
        /// Length of this buffer (0x10).
        length: U32,
        /// ECX input (the sub-leaf).
        ecx_in: U32,
        /// Where to write [`SnpFeatureInfo`].
        feature_info_paddr: U64,
    }
}

buffer! {
    /// What SNP_FEATURE_INFO writes.
    SnpFeatureInfo = 0x10 {
        /// EAX.
        eax: U32,
        /// EBX.
        ebx: U32,
        /// ECX.
        ecx: U32,
        /// EDX.
        edx: U32,
    }
}

buffer! {
    /// SNP_VLEK_LOAD (0xCD).
    SnpVlekLoadBuffer = 0x10 {
        /// Length of this buffer (0x10).
        length: U32,
        /// Wrapped VLEK version.
        vlek_wrapped_version: u8,
        /// Reserved.
        reserved: [u8; 3],
        /// The wrapped VLEK (0x1B0 bytes).
        vlek_wrapped_paddr: U64,
    }
}

// Each buffer's size is checked against AMD's table when the crate compiles
// (`buffer!`); the tests check the field offsets.
#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use zerocopy::FromZeros;

    #[test]
    fn command_ids() {
        assert_eq!(SevCommand::from_u32(0x30), Some(SevCommand::LaunchStart));
        assert_eq!(SevCommand::LaunchSecret.name(), "LAUNCH_SECRET");
        assert_eq!(SevCommand::Attestation.id(), 0x36);
        assert_eq!(SevCommand::from_u32(0x26), None);
        assert_eq!(SevCommand::ALL.len(), 41);
        for c in SevCommand::ALL {
            assert_eq!(SevCommand::from_u32(c.id()), Some(*c));
            assert_eq!(SnpCommand::from_u32(c.id()), None);
        }
        for c in SnpCommand::ALL {
            assert_eq!(SnpCommand::from_u32(c.id()), Some(*c));
        }
        assert_eq!(SnpCommand::SnpGuestRequest.id(), 0x94);
        assert_eq!(command_name(0xA1), Some("SNP_LAUNCH_UPDATE"));
        assert_eq!(command_name(0x0E), Some("NOP"));
        assert_eq!(command_name(0xFF), None);
        assert_eq!(SevCommand::DfFlush.to_string(), "DF_FLUSH");
    }

    #[test]
    fn platform_buffers() {
        assert_eq!(offset_of!(InitBuffer, tmr_paddr), 0x08);
        assert_eq!(offset_of!(InitBuffer, tmr_len), 0x10);

        assert_eq!(offset_of!(InitExBuffer, flags), 0x04);
        assert_eq!(offset_of!(InitExBuffer, tmr_paddr), 0x08);
        assert_eq!(offset_of!(InitExBuffer, nv_paddr), 0x18);
        assert_eq!(offset_of!(InitExBuffer, nv_len), 0x20);

        assert_eq!(offset_of!(PlatformStatusBuffer, owner), 0x03);
        assert_eq!(offset_of!(PlatformStatusBuffer, config), 0x04);
        assert_eq!(offset_of!(PlatformStatusBuffer, build), 0x07);
        assert_eq!(offset_of!(PlatformStatusBuffer, guest_count), 0x08);
        // Linux's u32 flags view: owner bit 0, CONFIG_ES bit 8.
        let mut s = PlatformStatusBuffer::new_zeroed();
        s.owner = PLATFORM_OWNER_EXTERNAL;
        s.config = U16::new(PLATFORM_CONFIG_ES);
        let flags = u32::from_le_bytes(s.as_bytes()[3..7].try_into().unwrap());
        assert_eq!(flags, 0x101);

        assert_eq!(offset_of!(PekCsrBuffer, len), 0x08);
        assert_eq!(offset_of!(PekCertImportBuffer, pek_len), 0x08);
        assert_eq!(offset_of!(PekCertImportBuffer, oca_paddr), 0x10);
        assert_eq!(offset_of!(PekCertImportBuffer, oca_len), 0x18);
        assert_eq!(offset_of!(PdhCertExportBuffer, pdh_len), 0x08);
        assert_eq!(offset_of!(PdhCertExportBuffer, chain_paddr), 0x10);
        assert_eq!(offset_of!(PdhCertExportBuffer, chain_len), 0x18);
        assert_eq!(offset_of!(GetIdBuffer, len), 0x08);
    }

    #[test]
    fn guest_buffers() {
        assert_eq!(offset_of!(ActivateBuffer, asid), 4);
        assert_eq!(offset_of!(ActivateExBuffer, numids), 0x0C);
        assert_eq!(offset_of!(ActivateExBuffer, ids_paddr), 0x10);
        assert_eq!(offset_of!(GuestStatusBuffer, asid), 0x08);
        assert_eq!(offset_of!(GuestStatusBuffer, state), 0x0C);
        assert_eq!(offset_of!(CopyBuffer, dst_paddr), 0x10);

        assert_eq!(offset_of!(LaunchStartBuffer, policy), 0x04);
        assert_eq!(offset_of!(LaunchStartBuffer, dh_cert_paddr), 0x08);
        assert_eq!(offset_of!(LaunchStartBuffer, dh_cert_len), 0x10);
        assert_eq!(offset_of!(LaunchStartBuffer, session_paddr), 0x18);
        assert_eq!(offset_of!(LaunchStartBuffer, session_len), 0x20);
        assert_eq!(offset_of!(LaunchUpdateBuffer, paddr), 0x08);
        assert_eq!(offset_of!(LaunchUpdateBuffer, len), 0x10);
        assert_eq!(offset_of!(LaunchMeasureBuffer, len), 0x10);

        assert_eq!(offset_of!(TransportBuffer, hdr_paddr), 0x08);
        assert_eq!(offset_of!(TransportBuffer, hdr_len), 0x10);
        assert_eq!(offset_of!(TransportBuffer, guest_paddr), 0x18);
        assert_eq!(offset_of!(TransportBuffer, guest_len), 0x20);
        assert_eq!(offset_of!(TransportBuffer, trans_paddr), 0x28);
        assert_eq!(offset_of!(TransportBuffer, trans_len), 0x30);

        assert_eq!(offset_of!(AttestationBuffer, paddr), 0x08);
        assert_eq!(offset_of!(AttestationBuffer, mnonce), 0x10);
        assert_eq!(offset_of!(AttestationBuffer, len), 0x20);

        assert_eq!(offset_of!(SendStartBuffer, pdh_paddr), 0x08);
        assert_eq!(offset_of!(SendStartBuffer, plat_certs_paddr), 0x18);
        assert_eq!(offset_of!(SendStartBuffer, amd_certs_paddr), 0x28);
        assert_eq!(offset_of!(SendStartBuffer, session_paddr), 0x38);
        assert_eq!(offset_of!(SendStartBuffer, session_len), 0x40);
        assert_eq!(offset_of!(ReceiveStartBuffer, session_len), 0x20);

        assert_eq!(offset_of!(DbgBuffer, src_paddr), 0x08);
        assert_eq!(offset_of!(DbgBuffer, dst_paddr), 0x10);
        assert_eq!(offset_of!(DbgBuffer, len), 0x18);
    }

    #[test]
    fn snp_buffers() {
        assert_eq!(offset_of!(SnpInitExBuffer, max_snp_asid), 0x10);
        assert_eq!(offset_of!(SnpPlatformStatus, build_id), 0x04);
        assert_eq!(offset_of!(SnpPlatformStatus, flags), 0x08);
        assert_eq!(offset_of!(SnpPlatformStatus, current_tcb), 0x10);
        assert_eq!(offset_of!(SnpPlatformStatus, reported_tcb), 0x18);
        assert_eq!(offset_of!(SnpGuestStatus, state), 0x0C);
        assert_eq!(offset_of!(SnpGuestStatus, flags), 0x10);
        assert_eq!(offset_of!(SnpLaunchStartBuffer, flags), 0x18);
        assert_eq!(offset_of!(SnpLaunchStartBuffer, desired_tsc_khz), 0x1C);
        assert_eq!(offset_of!(SnpLaunchStartBuffer, gosvw), 0x20);
        assert_eq!(offset_of!(SnpLaunchUpdateBuffer, page_paddr), 0x10);
        assert_eq!(offset_of!(SnpLaunchUpdateBuffer, vmpl1_perms), 0x19);
        assert_eq!(SnpLaunchUpdateBuffer::flags_for(true, 6, true), 0x1D);
        assert_eq!(offset_of!(SnpLaunchFinishBuffer, host_data), 0x20);
    }

    #[test]
    fn round_trip_and_short_input() {
        let mut b = LaunchStartBuffer::new_zeroed();
        b.handle = U32::new(7);
        b.session_len = U32::new(0x80);
        let bytes = b.as_bytes().to_vec();
        assert_eq!(bytes[0], 7);
        assert_eq!(bytes[0x20], 0x80);
        assert_eq!(LaunchStartBuffer::read_from_bytes(&bytes).unwrap(), b);
        assert!(LaunchStartBuffer::read_from_bytes(&bytes[1..]).is_err());
        assert!(LaunchStartBuffer::read_from_prefix(&bytes[..0x23]).is_err());
    }
}
