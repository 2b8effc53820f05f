//! The legacy SEV / SEV-ES launch sequence as a VMM issues it, over any
//! [`AmdSp`]: each step writes its inputs into system memory, runs one AMD
//! command, and reads the outputs back. The same calls drive the in-process
//! firmware and the firmware server, so tests and benchmarks run one
//! sequence through both seams.
//!
//! Where things go in system memory is [`layout`]'s choice; a VMM with its
//! own memory map calls [`AmdSp::execute`] directly.

use sev_abi::commands::{
    ActivateBuffer, HandleBuffer, InitBuffer, LaunchMeasureBuffer, LaunchStartBuffer,
    LaunchUpdateBuffer, PdhCertExportBuffer, PlatformStatusBuffer, SevCommand, TransportBuffer,
    INIT_FLAG_SEV_ES, PLATFORM_CONFIG_ES,
};
use sev_abi::legacy_cert::{SevCert, SEV_CERT_LEN};
use sev_abi::session::{PacketHeader, SessionBlob, LAUNCH_MEASUREMENT_LEN, PACKET_HEADER_LEN};
use sev_abi::status::FirmwareStatus;
use sev_firmware::{MemoryError, PlatformState, SystemMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use sev_sp::{call, AmdSp, SpError};

/// The system-memory map of these helpers.
pub mod layout {
    /// PDH_CERT_EXPORT: the PDH certificate.
    pub const PDH_OUT: u64 = 0x1000;
    /// PDH_CERT_EXPORT: PEK ‖ OCA ‖ CEK.
    pub const CHAIN_OUT: u64 = 0x2000;
    /// LAUNCH_START: the guest owner's DH certificate.
    pub const GODH_IN: u64 = 0x5000;
    /// LAUNCH_START: the session blob.
    pub const SESSION_IN: u64 = 0x6000;
    /// LAUNCH_MEASURE output.
    pub const MEASURE_OUT: u64 = 0x7000;
    /// LAUNCH_SECRET packet header.
    pub const SECRET_HDR: u64 = 0x8000;
    /// LAUNCH_SECRET packet payload (up to 16 KiB).
    pub const SECRET_TRANS: u64 = 0x9000;
    /// The SEV-ES trusted memory region (1 MiB aligned).
    pub const TMR: u64 = 0x10_0000;
    /// Its length.
    pub const TMR_LEN: u32 = 0x10_0000;
    /// VMSA pages, one per vCPU (up to 64).
    pub const VMSA_BASE: u64 = 0x20_0000;
    /// Where LAUNCH_SECRET puts the secret in the guest.
    pub const SECRET_DST: u64 = 0x28_0000;
    /// The guest image (firmware) measured by LAUNCH_UPDATE_DATA.
    pub const IMAGE: u64 = 0x30_0000;

    /// Memory needed for an image of `image_len` bytes.
    pub const fn memory_size(image_len: u64) -> u64 {
        (IMAGE + image_len).next_multiple_of(0x1000)
    }
}

/// Why a launch step failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The firmware refused a command.
    #[error("{command} failed: {} ({:#x})", status.name().unwrap_or("unknown status"), status.code())]
    Firmware {
        /// The command.
        command: &'static str,
        /// AMD's status.
        status: FirmwareStatus,
    },
    /// The command could not be delivered.
    #[error(transparent)]
    Seam(#[from] SpError),
    /// System memory could not be read or written.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The firmware returned a certificate that does not parse.
    #[error("the firmware returned a bad certificate: {0}")]
    Certificate(String),
    /// SEV-ES was asked for on a platform initialized without it.
    #[error("the platform was initialized without SEV-ES")]
    NoSevEs,
}

fn run<S, T>(sp: &mut S, command: SevCommand, buffer: &mut T) -> Result<(), LaunchError>
where
    S: AmdSp + ?Sized,
    T: zerocopy::FromBytes + IntoBytes + zerocopy::Immutable + zerocopy::KnownLayout,
{
    match call(sp, command, buffer)? {
        FirmwareStatus::SUCCESS => Ok(()),
        status => Err(LaunchError::Firmware {
            command: command.name(),
            status,
        }),
    }
}

/// PLATFORM_STATUS.
pub fn platform_status<S: AmdSp + ?Sized>(sp: &mut S) -> Result<PlatformStatusBuffer, LaunchError> {
    let mut b = PlatformStatusBuffer::new_zeroed();
    run(sp, SevCommand::PlatformStatus, &mut b)?;
    Ok(b)
}

/// INITs the platform (with SEV-ES and the TMR at [`layout::TMR`] when
/// `es`) unless it already is; another VM winning the race is fine.
pub fn ensure_init<S: AmdSp + ?Sized>(sp: &mut S, es: bool) -> Result<(), LaunchError> {
    let mut status = platform_status(sp)?;
    if status.state == PlatformState::Uninit as u8 {
        let mut b = InitBuffer::new_zeroed();
        if es {
            b.flags = U32::new(INIT_FLAG_SEV_ES);
            b.tmr_paddr = U64::new(layout::TMR);
            b.tmr_len = U32::new(layout::TMR_LEN);
        }
        match call(sp, SevCommand::Init, &mut b)? {
            FirmwareStatus::SUCCESS | FirmwareStatus::INVALID_PLATFORM_STATE => {}
            status => {
                return Err(LaunchError::Firmware {
                    command: "INIT",
                    status,
                })
            }
        }
        status = platform_status(sp)?;
    }
    if es && status.config.get() & PLATFORM_CONFIG_ES == 0 {
        return Err(LaunchError::NoSevEs);
    }
    Ok(())
}

/// PDH_CERT_EXPORT: the PDH and the chain `[PEK, OCA, CEK]`.
pub fn export_pdh<S: AmdSp + ?Sized>(
    sp: &mut S,
    mem: &mut dyn SystemMemory,
) -> Result<(SevCert, [SevCert; 3]), LaunchError> {
    let mut b = PdhCertExportBuffer::new_zeroed();
    b.pdh_paddr = U64::new(layout::PDH_OUT);
    b.pdh_len = U32::new(SEV_CERT_LEN as u32);
    b.chain_paddr = U64::new(layout::CHAIN_OUT);
    b.chain_len = U32::new(3 * SEV_CERT_LEN as u32);
    run(sp, SevCommand::PdhCertExport, &mut b)?;
    let cert = |paddr: u64| -> Result<SevCert, LaunchError> {
        let mut bytes = vec![0u8; SEV_CERT_LEN];
        mem.read(paddr, &mut bytes)?;
        SevCert::from_bytes(&bytes).map_err(|e| LaunchError::Certificate(e.to_string()))
    };
    let step = SEV_CERT_LEN as u64;
    Ok((
        cert(layout::PDH_OUT)?,
        [
            cert(layout::CHAIN_OUT)?,
            cert(layout::CHAIN_OUT + step)?,
            cert(layout::CHAIN_OUT + 2 * step)?,
        ],
    ))
}

/// LAUNCH_START with `policy` and, when given, the owner's session (GODH
/// certificate and session blob); returns the new guest's handle.
pub fn launch_start<S: AmdSp + ?Sized>(
    sp: &mut S,
    mem: &mut dyn SystemMemory,
    policy: u32,
    session: Option<(&SevCert, &SessionBlob)>,
) -> Result<u32, LaunchError> {
    let mut b = LaunchStartBuffer::new_zeroed();
    b.policy = U32::new(policy);
    if let Some((godh, blob)) = session {
        mem.write(layout::GODH_IN, godh.as_bytes())?;
        mem.write(layout::SESSION_IN, blob.as_bytes())?;
        b.dh_cert_paddr = U64::new(layout::GODH_IN);
        b.dh_cert_len = U32::new(SEV_CERT_LEN as u32);
        b.session_paddr = U64::new(layout::SESSION_IN);
        b.session_len = U32::new(blob.as_bytes().len() as u32);
    }
    run(sp, SevCommand::LaunchStart, &mut b)?;
    Ok(b.handle.get())
}

/// ACTIVATE `handle` on `asid`.
pub fn activate<S: AmdSp + ?Sized>(sp: &mut S, handle: u32, asid: u32) -> Result<(), LaunchError> {
    let mut b = ActivateBuffer {
        handle: U32::new(handle),
        asid: U32::new(asid),
    };
    run(sp, SevCommand::Activate, &mut b)
}

/// LAUNCH_UPDATE_DATA over `[paddr, paddr + len)` (already in memory).
pub fn update_data<S: AmdSp + ?Sized>(
    sp: &mut S,
    handle: u32,
    paddr: u64,
    len: u32,
) -> Result<(), LaunchError> {
    let mut b = LaunchUpdateBuffer::new_zeroed();
    b.handle = U32::new(handle);
    b.paddr = U64::new(paddr);
    b.len = U32::new(len);
    run(sp, SevCommand::LaunchUpdateData, &mut b)
}

/// Writes `page` (a 4 KiB VMSA) at `paddr` and runs LAUNCH_UPDATE_VMSA.
pub fn update_vmsa<S: AmdSp + ?Sized>(
    sp: &mut S,
    mem: &mut dyn SystemMemory,
    handle: u32,
    paddr: u64,
    page: &[u8],
) -> Result<(), LaunchError> {
    mem.write(paddr, page)?;
    let mut b = LaunchUpdateBuffer::new_zeroed();
    b.handle = U32::new(handle);
    b.paddr = U64::new(paddr);
    b.len = U32::new(page.len() as u32);
    run(sp, SevCommand::LaunchUpdateVmsa, &mut b)
}

/// LAUNCH_MEASURE: `(measurement, mnonce)`.
pub fn measure<S: AmdSp + ?Sized>(
    sp: &mut S,
    mem: &mut dyn SystemMemory,
    handle: u32,
) -> Result<([u8; 32], [u8; 16]), LaunchError> {
    let mut b = LaunchMeasureBuffer::new_zeroed();
    b.handle = U32::new(handle);
    b.paddr = U64::new(layout::MEASURE_OUT);
    b.len = U32::new(LAUNCH_MEASUREMENT_LEN as u32);
    run(sp, SevCommand::LaunchMeasure, &mut b)?;
    let mut out = [0u8; LAUNCH_MEASUREMENT_LEN];
    mem.read(layout::MEASURE_OUT, &mut out)?;
    let mut measurement = [0u8; 32];
    let mut mnonce = [0u8; 16];
    measurement.copy_from_slice(&out[..32]);
    mnonce.copy_from_slice(&out[32..]);
    Ok((measurement, mnonce))
}

/// LAUNCH_SECRET: the owner's packet (`header`, `ciphertext`) into the
/// guest at `guest_paddr`.
pub fn inject_secret<S: AmdSp + ?Sized>(
    sp: &mut S,
    mem: &mut dyn SystemMemory,
    handle: u32,
    header: &PacketHeader,
    ciphertext: &[u8],
    guest_paddr: u64,
) -> Result<(), LaunchError> {
    mem.write(layout::SECRET_HDR, header.as_bytes())?;
    mem.write(layout::SECRET_TRANS, ciphertext)?;
    let mut t = TransportBuffer::new_zeroed();
    t.handle = U32::new(handle);
    t.hdr_paddr = U64::new(layout::SECRET_HDR);
    t.hdr_len = U32::new(PACKET_HEADER_LEN as u32);
    t.guest_paddr = U64::new(guest_paddr);
    t.guest_len = U32::new(ciphertext.len() as u32);
    t.trans_paddr = U64::new(layout::SECRET_TRANS);
    t.trans_len = U32::new(ciphertext.len() as u32);
    run(sp, SevCommand::LaunchSecret, &mut t)
}

/// LAUNCH_FINISH.
pub fn finish<S: AmdSp + ?Sized>(sp: &mut S, handle: u32) -> Result<(), LaunchError> {
    let mut b = HandleBuffer {
        handle: U32::new(handle),
    };
    run(sp, SevCommand::LaunchFinish, &mut b)
}

/// DEACTIVATE then DECOMMISSION (the guest's end).
pub fn release<S: AmdSp + ?Sized>(sp: &mut S, handle: u32) -> Result<(), LaunchError> {
    let mut b = HandleBuffer {
        handle: U32::new(handle),
    };
    match call(sp, SevCommand::Deactivate, &mut b)? {
        FirmwareStatus::SUCCESS | FirmwareStatus::INACTIVE => {}
        status => {
            return Err(LaunchError::Firmware {
                command: "DEACTIVATE",
                status,
            })
        }
    }
    run(sp, SevCommand::Decommission, &mut b)
}
