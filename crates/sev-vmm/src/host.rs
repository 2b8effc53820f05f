//! The host's side of the firmware seam: the AMD-SP, the guest memory it
//! works on, and typed wrappers for the commands and host instructions the
//! VMM issues (so the launch, the debug path and the guest-request path
//! share one way of running a command and naming its failure).

use sev_abi::commands::{
    GetIdBuffer, InitBuffer, PdhCertExportBuffer, PlatformStatusBuffer, SevCommand, SnpCommand,
    SnpPlatformStatus, SnpPlatformStatusBuffer, INIT_FLAG_SEV_ES, PLATFORM_CONFIG_ES,
};
use sev_abi::host_ops::{
    GuestAccessOp, GuestAttachOp, HostOp, RmpUpdateOp, GUEST_ACCESS_MAX_LEN, GUEST_ACCESS_PRIVATE,
    GUEST_ACCESS_WRITE, GUEST_ATTACH_TAKEN, GUEST_TOKEN_LEN, RMP_ASSIGNED, RMP_IMMUTABLE,
};
use sev_abi::status::FirmwareStatus;
use sev_sp::{AmdSp, SpError};
use sev_sp::{MemoryError, SystemMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};
use zeroize::Zeroizing;

use sev_abi::legacy_cert::SEV_CERT_LEN;

use crate::guest::FirmwareGuest;
use crate::machine::memory::{host_area, GuestMemory, PAGE_SIZE};

/// The capability to act as one guest (its own view of its memory): the
/// token SEVKIT_GUEST_ATTACH mints once per guest
/// ([`sev_abi::host_ops::GuestAttachOp`]). The VMM's vCPU side holds it
/// (today [`crate::guest::SimulatedGuest`]); the monitor and
/// the debug paths never do, so they see a guest's private memory only
/// through DBG_DECRYPT, as the guest policy allows. Zeroized on drop, never
/// printed.
pub struct GuestPrincipal {
    token: Zeroizing<[u8; GUEST_TOKEN_LEN]>,
}

impl core::fmt::Debug for GuestPrincipal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GuestPrincipal(<redacted>)")
    }
}

/// A command or instruction the host issued failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The AMD-SP refused a command.
    #[error("{command} failed: fw_error={:#x} '{}'{}", status.code(),
        status.name().unwrap_or("unknown error"), hint_text(*status))]
    Firmware {
        /// The command's name.
        command: &'static str,
        /// AMD's status code.
        status: FirmwareStatus,
    },
    /// The command could not be delivered to the AMD-SP.
    #[error("cannot reach the AMD-SP: {0}")]
    Seam(#[from] SpError),
    /// System memory could not be read or written.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// An RMP instruction failed with an x86 return code.
    #[error("{instruction} of {spa:#x} failed with return code {rc} ({})", rmp_rc_name(*rc))]
    Rmp {
        /// The instruction.
        instruction: &'static str,
        /// The page.
        spa: u64,
        /// Its x86 return code.
        rc: u32,
    },
    /// The guest's own access faulted (RMP check, validation, no guest).
    #[error("the guest's access to {spa:#x} faulted (code {rc})")]
    GuestFault {
        /// The page.
        spa: u64,
        /// The fault code (`sev_abi::host_ops::GUEST_ACCESS_*`).
        rc: u32,
    },
    /// The guest's principal was attached before (a guest has one).
    #[error(
        "the guest's principal is already attached (SEVKIT_GUEST_ATTACH answers only the first \
         caller: the VMM's guest side holds it)"
    )]
    GuestTaken,
    /// The platform cannot run the guest.
    #[error("{0}")]
    Platform(String),
}

fn hint_text(status: FirmwareStatus) -> &'static str {
    match status {
        FirmwareStatus::POLICY_FAILURE => {
            " (the guest policy or the platform forbids this; check the policy bits)"
        }
        FirmwareStatus::BAD_MEASUREMENT => {
            " (the owner's session or secret packet does not match this launch)"
        }
        FirmwareStatus::INVALID_PLATFORM_STATE => {
            " (the platform is not in the state this command needs)"
        }
        FirmwareStatus::INVALID_GUEST_STATE => {
            " (the guest is not in the state this command needs)"
        }
        _ => "",
    }
}

fn rmp_rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "FAIL_INPUT",
        2 => "FAIL_PERMISSION",
        3 => "FAIL_INUSE",
        4 => "FAIL_OVERLAP",
        6 => "FAIL_SIZEMISMATCH",
        _ => "unknown",
    }
}

/// What PLATFORM_STATUS says about the AMD-SP (QEMU's `query-sev`
/// fields): the API version, the build, whether SEV-ES is initialized.
/// (Not the attestation report's PLATFORM_INFO, [`sev_abi::PlatformInfo`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformStatus {
    /// API major version.
    pub api_major: u8,
    /// API minor version.
    pub api_minor: u8,
    /// Firmware build.
    pub build: u8,
    /// The platform was initialized with SEV-ES.
    pub sev_es: bool,
}

/// The platform's certificates and chip id, as QEMU's
/// `query-sev-capabilities` collects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformCertificates {
    /// The PDH certificate.
    pub pdh: Vec<u8>,
    /// PEK ‖ OCA ‖ CEK.
    pub chain: Vec<u8>,
    /// The first socket's chip id (64 bytes).
    pub chip_id: Vec<u8>,
}

/// The AMD-SP and the guest memory it works on.
pub struct Host {
    sp: Box<dyn AmdSp + Send>,
    memory: GuestMemory,
}

impl core::fmt::Debug for Host {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Host")
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Pairs an AMD-SP with guest memory (which the AMD-SP must also see:
    /// an `sev_firmware::InProcess` over
    /// [`GuestMemory::system_handle`], or a client that passed its fd).
    pub fn new(sp: Box<dyn AmdSp + Send>, memory: GuestMemory) -> Self {
        Self { sp, memory }
    }

    /// The guest memory.
    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    /// The guest memory, for writing.
    pub fn memory_mut(&mut self) -> &mut GuestMemory {
        &mut self.memory
    }

    /// The AMD-SP.
    pub fn sp(&mut self) -> &mut (dyn AmdSp + Send) {
        &mut *self.sp
    }

    /// The AMD-SP and the guest memory at once (for the debug API).
    pub fn parts(&mut self) -> (&mut (dyn AmdSp + Send), &mut GuestMemory) {
        (&mut *self.sp, &mut self.memory)
    }

    /// Runs `command` on `buffer`; anything but SUCCESS is an error.
    pub fn run<T>(&mut self, command: u32, buffer: &mut T) -> Result<(), HostError>
    where
        T: FromBytes + IntoBytes + Immutable + KnownLayout,
    {
        match self.status(command, buffer)? {
            FirmwareStatus::SUCCESS => Ok(()),
            status => Err(HostError::Firmware {
                command: command_name(command),
                status,
            }),
        }
    }

    /// Runs `command` on `buffer` and returns AMD's status.
    pub fn status<T>(&mut self, command: u32, buffer: &mut T) -> Result<FirmwareStatus, HostError>
    where
        T: FromBytes + IntoBytes + Immutable + KnownLayout,
    {
        Ok(self.sp.execute(command, buffer.as_mut_bytes())?)
    }

    /// Writes `data` at host-area offset `offset` and returns its system
    /// address.
    pub fn put(&mut self, offset: u64, data: &[u8]) -> Result<u64, HostError> {
        let paddr = self.memory.layout().host(offset);
        self.memory.system_mut().write(paddr, data)?;
        Ok(paddr)
    }

    /// Reads `len` bytes at host-area offset `offset`.
    pub fn get(&self, offset: u64, len: usize) -> Result<Vec<u8>, HostError> {
        let paddr = self.memory.layout().host(offset);
        Ok(self.memory.system().read_vec(paddr, len)?)
    }

    /// PLATFORM_STATUS.
    pub fn platform_status(&mut self) -> Result<PlatformStatus, HostError> {
        let mut b = PlatformStatusBuffer::new_zeroed();
        self.run(SevCommand::PlatformStatus.id(), &mut b)?;
        Ok(PlatformStatus {
            api_major: b.api_major,
            api_minor: b.api_minor,
            build: b.build,
            sev_es: b.config.get() & PLATFORM_CONFIG_ES != 0,
        })
    }

    /// PDH_CERT_EXPORT and GET_ID, each with the length query first (as
    /// QEMU issues them). The platform must be initialized.
    pub fn platform_certificates(&mut self) -> Result<PlatformCertificates, HostError> {
        let mut b = PdhCertExportBuffer::new_zeroed();
        match self.status(SevCommand::PdhCertExport.id(), &mut b)? {
            FirmwareStatus::INVALID_LENGTH | FirmwareStatus::SUCCESS => {}
            status => {
                return Err(HostError::Firmware {
                    command: "PDH_CERT_EXPORT",
                    status,
                })
            }
        }
        let (pdh_len, chain_len) = (b.pdh_len.get() as usize, b.chain_len.get() as usize);
        if pdh_len > SEV_CERT_LEN || chain_len > 3 * SEV_CERT_LEN {
            return Err(HostError::Platform(format!(
                "PDH_CERT_EXPORT wants {pdh_len} + {chain_len} bytes, more than a PDH and three certificates"
            )));
        }
        b.pdh_paddr = U64::new(self.memory.layout().host(host_area::PDH));
        b.chain_paddr = U64::new(self.memory.layout().host(host_area::CERT_CHAIN));
        self.run(SevCommand::PdhCertExport.id(), &mut b)?;
        let pdh = self.get(host_area::PDH, pdh_len)?;
        let chain = self.get(host_area::CERT_CHAIN, chain_len)?;
        let mut id = GetIdBuffer::new_zeroed();
        match self.status(SevCommand::GetId.id(), &mut id)? {
            FirmwareStatus::INVALID_LENGTH | FirmwareStatus::SUCCESS => {}
            status => {
                return Err(HostError::Firmware {
                    command: "GET_ID",
                    status,
                })
            }
        }
        let id_len = (id.len.get() as usize).min(PAGE_SIZE as usize);
        id.paddr = U64::new(self.memory.layout().host(host_area::GET_ID));
        id.len = U32::new(id_len as u32);
        self.run(SevCommand::GetId.id(), &mut id)?;
        let ids = self.get(host_area::GET_ID, id_len)?;
        Ok(PlatformCertificates {
            pdh,
            chain,
            chip_id: ids[..ids.len().min(64)].to_vec(),
        })
    }

    /// SNP_PLATFORM_STATUS, or `None` when the AMD-SP has no SNP.
    pub fn snp_platform_status(&mut self) -> Result<Option<SnpPlatformStatus>, HostError> {
        let out = self.memory.layout().host(host_area::SCRATCH);
        let mut b = SnpPlatformStatusBuffer {
            status_paddr: U64::new(out),
        };
        match self.status(SnpCommand::SnpPlatformStatus.id(), &mut b)? {
            FirmwareStatus::SUCCESS => {
                let bytes = self
                    .memory
                    .system()
                    .read_vec(out, SnpPlatformStatus::SIZE)?;
                Ok(SnpPlatformStatus::read_from_bytes(&bytes).ok())
            }
            FirmwareStatus::INVALID_COMMAND | FirmwareStatus::UNSUPPORTED => Ok(None),
            status => Err(HostError::Firmware {
                command: "SNP_PLATFORM_STATUS",
                status,
            }),
        }
    }

    /// Brings the platform up as the Linux ccp driver does when it loads:
    /// SNP_INIT first (when the AMD-SP has SNP), then INIT with SEV-ES and
    /// a trusted memory region. A platform that is already up (another VM,
    /// or the firmware server's earlier clients) is left as it is. `snp`:
    /// the guest needs SNP, so SNP must be up afterwards.
    pub fn bring_up(&mut self, snp: bool) -> Result<PlatformStatus, HostError> {
        if self.legacy_uninit()? {
            let snp_uninit = self.snp_platform_status()?.is_some_and(|s| s.state == 0);
            if snp_uninit {
                match self.status(SnpCommand::SnpInit.id(), &mut [0u8; 0])? {
                    FirmwareStatus::SUCCESS | FirmwareStatus::INVALID_PLATFORM_STATE => {}
                    status => {
                        return Err(HostError::Firmware {
                            command: "SNP_INIT",
                            status,
                        })
                    }
                }
            }
            let mut b = InitBuffer::new_zeroed();
            b.flags = U32::new(INIT_FLAG_SEV_ES);
            b.tmr_paddr = U64::new(self.memory.layout().host(host_area::TMR));
            b.tmr_len = U32::new(host_area::TMR_LEN as u32);
            match self.status(SevCommand::Init.id(), &mut b)? {
                FirmwareStatus::SUCCESS | FirmwareStatus::INVALID_PLATFORM_STATE => {}
                status => {
                    return Err(HostError::Firmware {
                        command: "INIT",
                        status,
                    })
                }
            }
        }
        if snp && self.snp_platform_status()?.is_none_or(|s| s.state != 1) {
            return Err(HostError::Platform(
                "SEV-SNP is not initialized on this AMD-SP (the platform was initialized for \
                 legacy SEV only, or the product has no SNP): restart the AMD-SP (e.g. the \
                 `sevkit firmware serve` daemon) with an SNP-capable product"
                    .into(),
            ));
        }
        self.platform_status()
    }

    /// Whether the legacy platform is UNINIT.
    fn legacy_uninit(&mut self) -> Result<bool, HostError> {
        let mut b = PlatformStatusBuffer::new_zeroed();
        self.run(SevCommand::PlatformStatus.id(), &mut b)?;
        Ok(b.state == 0)
    }

    /// RMPUPDATE of one 4 KiB page.
    pub fn rmp_update(
        &mut self,
        spa: u64,
        gpa: u64,
        asid: u32,
        flags: u32,
    ) -> Result<(), HostError> {
        let mut b = RmpUpdateOp {
            spa: U64::new(spa),
            gpa: U64::new(gpa),
            asid: U32::new(asid),
            flags: U32::new(flags),
            ..RmpUpdateOp::default()
        };
        self.run(HostOp::RmpUpdate.id(), &mut b)?;
        match b.rc.get() {
            0 => Ok(()),
            rc => Err(HostError::Rmp {
                instruction: "RMPUPDATE",
                spa,
                rc,
            }),
        }
    }

    /// RMPUPDATE to a pre-guest page of `asid` at `gpa` (before
    /// SNP_LAUNCH_UPDATE).
    pub fn make_pre_guest(&mut self, spa: u64, gpa: u64, asid: u32) -> Result<(), HostError> {
        self.rmp_update(spa, gpa, asid, RMP_ASSIGNED | RMP_IMMUTABLE)
    }

    /// RMPUPDATE to a firmware page.
    pub fn make_firmware(&mut self, spa: u64) -> Result<(), HostError> {
        self.rmp_update(spa, 0, 0, RMP_ASSIGNED | RMP_IMMUTABLE)
    }

    /// SEVKIT_GUEST_ATTACH: the principal of `guest`, which only the first
    /// attach gets ([`HostError::GuestTaken`] after).
    pub fn attach_guest(&mut self, guest: FirmwareGuest) -> Result<GuestPrincipal, HostError> {
        let mut b = GuestAttachOp::default();
        match guest {
            FirmwareGuest::Legacy { handle, .. } => b.handle = U32::new(handle),
            FirmwareGuest::Snp { gctx_paddr, .. } => b.gctx_paddr = U64::new(gctx_paddr),
        }
        self.run(HostOp::GuestAttach.id(), &mut b)?;
        let token = Zeroizing::new(b.token);
        b.token = [0; GUEST_TOKEN_LEN];
        match b.rc.get() {
            0 => Ok(GuestPrincipal { token }),
            GUEST_ATTACH_TAKEN => Err(HostError::GuestTaken),
            rc => Err(HostError::Platform(format!(
                "SEVKIT_GUEST_ATTACH answered an unknown code {rc}"
            ))),
        }
    }

    /// The guest whose principal is `principal` reads (`write == false`) or
    /// writes its memory at `gpa`, privately (C-bit set) or shared. The data
    /// moves through the host area's scratch page; at most a page at a time.
    ///
    /// This is what the guest sees, not what the host may see: only the
    /// holder of the guest's principal (a model of the guest itself) can
    /// call it.
    pub fn guest_access(
        &mut self,
        principal: &GuestPrincipal,
        gpa: u64,
        data: &mut [u8],
        write: bool,
        private: bool,
    ) -> Result<(), HostError> {
        let scratch = self.memory.layout().host(host_area::SCRATCH);
        for (i, chunk) in data.chunks_mut(4096).enumerate() {
            let at = gpa + (i as u64) * 4096;
            if write {
                self.memory.system_mut().write(scratch, chunk)?;
            }
            let mut flags = 0;
            if write {
                flags |= GUEST_ACCESS_WRITE;
            }
            if private {
                flags |= GUEST_ACCESS_PRIVATE;
            }
            debug_assert!(chunk.len() as u32 <= GUEST_ACCESS_MAX_LEN);
            let mut b = GuestAccessOp {
                token: *principal.token,
                spa: U64::new(at),
                gpa: U64::new(at),
                host_paddr: U64::new(scratch),
                len: U32::new(chunk.len() as u32),
                flags: U32::new(flags),
                ..GuestAccessOp::default()
            };
            let result = self.run(HostOp::GuestAccess.id(), &mut b);
            b.token = [0; GUEST_TOKEN_LEN];
            result?;
            if b.rc.get() != 0 {
                return Err(HostError::GuestFault {
                    spa: at,
                    rc: b.rc.get(),
                });
            }
            if !write {
                self.memory.system().read(scratch, chunk)?;
            }
        }
        Ok(())
    }
}

/// The name of any command id the host issues.
pub fn command_name(command: u32) -> &'static str {
    sev_abi::commands::command_name(command).unwrap_or("unknown command")
}
