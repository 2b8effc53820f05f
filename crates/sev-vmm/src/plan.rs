//! From a configuration to a launched VM: what QEMU does between parsing
//! its command line and the guest's first instruction.
//!
//! [`MachinePlan::new`] checks the configuration against the host (QEMU's
//! KVM-init checks: C-bit, reduced physical bits, SEV-ES / SNP support,
//! SMM) and reads every file it names (firmware, owner session, kernel
//! hashes inputs) *before* any firmware command, so a bad property never
//! reaches the AMD-SP. [`MachinePlan::launch`] then runs the launch on a
//! [`Host`] whose memory was laid out with [`MachinePlan::layout`]
//! ([`MachinePlan::memory`]), as QEMU orders it; [`MachinePlan::start`]
//! hands the launch's typestate to a caller that drives the stages itself.
//! A program that launches an image it holds (the demo, benchmarks, tests)
//! makes its plan with [`MachinePlan::for_image`]. Every launch sevkit makes
//! is one of these plans.

use std::path::Path;

use sev_abi::product::Product;
use sev_measure::hashes::MAX_KERNEL_FILE_LEN;
use sev_measure::ovmf::MAX_FIRMWARE_LEN;
use sev_measure::KernelHashes;

use crate::config::{ConfidentialGuest, ConfigError, HostCaps, OnOffAuto, VmConfig};
use crate::exits::certs::provider::CertsProvider;
use crate::host::Host;
use crate::launch::{
    IdBlockInput, LaunchError, LaunchSpec, OwnerSession, SevLaunch, SevSpec, SnpLaunch, SnpSpec,
    Updating,
};
use crate::machine::memory::{GuestMemory, LayoutError, MemoryLayout};
use crate::qemu::b64;
use crate::vm::Vm;

/// Why a machine cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The configuration is invalid (names the option and property).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file the configuration names cannot be used.
    #[error("{what} {path}: {why}")]
    File {
        /// The option or property (`-bios`, `dh-cert-file`, ...).
        what: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A file the configuration names cannot be read (missing, unreadable,
    /// or larger than what it should hold).
    #[error("{what}: {source}")]
    Read {
        /// The option or property (`-bios`, `dh-cert-file`, ...).
        what: &'static str,
        /// Why (names the path).
        source: sev_os::OsError,
    },
    /// A required option is missing.
    #[error("{0}")]
    Missing(String),
    /// The memory layout cannot be built.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Guest memory cannot be created.
    #[error("guest memory (a memfd) cannot be created: {0}")]
    Memory(String),
    /// The launch failed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

/// The largest `dh-cert-file` or `session-file`: 64 KiB. They hold the
/// base64 of the owner's 2084-byte certificate and of a session blob of a
/// few hundred bytes.
pub const MAX_OWNER_FILE_LEN: u64 = 64 << 10;

/// Reads the file of `what` (an option or property), at most `max` bytes
/// of `content`.
fn read(
    what: &'static str,
    path: &Path,
    max: u64,
    content: &'static str,
) -> Result<Vec<u8>, MachineError> {
    sev_os::read_bounded(path, max, content).map_err(|source| MachineError::Read { what, source })
}

/// QEMU reads `dh-cert-file` and `session-file` as base64 text, with
/// `g_base64_decode` (line breaks and anything else outside the alphabet
/// are skipped). A file with no base64 in it is refused here: QEMU would
/// hand KVM an empty blob, which LAUNCH_START refuses.
fn read_b64(what: &'static str, path: &Path) -> Result<Vec<u8>, MachineError> {
    let text = read(
        what,
        path,
        MAX_OWNER_FILE_LEN,
        "a launch session file (base64)",
    )?;
    let data = b64::glib_decode(&text);
    if data.is_empty() {
        return Err(MachineError::File {
            what,
            path: path.display().to_string(),
            why: "not base64: it decodes to no bytes".to_owned(),
        });
    }
    Ok(data)
}

/// Which launch the plan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedGuest {
    /// `sev-guest`.
    Sev(SevSpec),
    /// `sev-snp-guest`, with its certificate source.
    Snp(SnpSpec, CertsProvider),
}

/// A checked configuration with its files read: ready to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachinePlan {
    /// The guest memory layout (q35).
    pub layout: MemoryLayout,
    /// What the launch measures.
    pub spec: LaunchSpec,
    /// The guest kind and its owner parameters.
    pub guest: PlannedGuest,
    /// `reduced-phys-bits`, as `query-sev-capabilities` reports it.
    pub reduced_phys_bits: u32,
    /// Whether to wait for `cont` (`-S`).
    pub start_paused: bool,
}

impl MachinePlan {
    /// Checks `config` against a host of `product` and reads its files.
    pub fn new(config: &VmConfig, product: Product) -> Result<Self, MachineError> {
        config.validate(&HostCaps::for_product(product))?;
        let guest = config.guest.as_ref().ok_or_else(|| {
            MachineError::Missing(
                "sevkit launch runs confidential guests: add -machine \
                 q35,confidential-guest-support=ID and -object sev-guest,id=ID,... (or \
                 sev-snp-guest)"
                    .into(),
            )
        })?;
        let bios_path = config.bios.as_ref().ok_or_else(|| {
            MachineError::Missing("-bios FILE is required: the firmware the AMD-SP measures".into())
        })?;
        let image = read(
            "-bios",
            bios_path,
            MAX_FIRMWARE_LEN,
            "a firmware image (OVMF)",
        )?;
        let layout = MemoryLayout::q35(config.memory, image.len() as u64)?;
        let common = guest.common();
        let kernel_hashes = match (&config.kernel, common.kernel_hashes) {
            (Some(kernel), true) => {
                let kernel = read("-kernel", kernel, MAX_KERNEL_FILE_LEN, "a kernel")?;
                let initrd = config
                    .initrd
                    .as_deref()
                    .map(|p| read("-initrd", p, MAX_KERNEL_FILE_LEN, "an initrd"))
                    .transpose()?;
                Some(KernelHashes::compute(
                    &kernel,
                    initrd.as_deref(),
                    config.append.as_deref().map(str::as_bytes),
                ))
            }
            _ => None,
        };
        let mut spec = LaunchSpec::new(image, config.smp, &config.cpu_model, product)?;
        spec.kernel_hashes = kernel_hashes;
        let planned = match guest {
            ConfidentialGuest::Sev(g) => {
                let session = match (&g.dh_cert_file, &g.session_file) {
                    (None, None) => None,
                    (dh, session) => Some(OwnerSession {
                        dh_cert: dh
                            .as_deref()
                            .map(|p| read_b64("dh-cert-file", p))
                            .transpose()?
                            .unwrap_or_default(),
                        session: session
                            .as_deref()
                            .map(|p| read_b64("session-file", p))
                            .transpose()?
                            .unwrap_or_default(),
                    }),
                };
                PlannedGuest::Sev(SevSpec {
                    policy: g.policy,
                    handle: g.handle,
                    session,
                    legacy_vm_type: g.legacy_vm_type != OnOffAuto::Off,
                })
            }
            ConfidentialGuest::Snp(g) => PlannedGuest::Snp(
                SnpSpec {
                    policy: g.policy,
                    gosvw: g.guest_visible_workarounds,
                    id: g.id_block.map(|block| IdBlockInput {
                        block,
                        auth: g
                            .id_auth
                            .clone()
                            .unwrap_or_else(|| Box::new([0u8; sev_abi::snp_launch::ID_AUTH_LEN])),
                        author_key: g.author_key_enabled,
                    }),
                    vcek_disabled: g.vcek_disabled,
                    host_data: g.host_data,
                },
                CertsProvider::new(g.certs_path.clone()),
            ),
        };
        Ok(Self {
            layout,
            spec,
            guest: planned,
            reduced_phys_bits: common.reduced_phys_bits,
            start_paused: config.start_paused,
        })
    }

    /// A plan for a firmware image already in memory (not read from a
    /// configuration's files): `ram` bytes of q35 guest RAM around `image`,
    /// `vcpus` vCPUs of QEMU's model `cpu_model` on a host of `product`
    /// (`reduced-phys-bits` 1), not paused. For launches a program makes
    /// itself (the demo, benchmarks, tests); a VM described by QEMU options
    /// or TOML goes through [`Self::new`].
    ///
    /// # Errors
    /// A RAM or image size q35 cannot map, or an unknown vCPU model.
    pub fn for_image(
        image: Vec<u8>,
        ram: u64,
        vcpus: u32,
        cpu_model: &str,
        product: Product,
        guest: PlannedGuest,
    ) -> Result<Self, MachineError> {
        let layout = MemoryLayout::q35(ram, image.len() as u64)?;
        Ok(Self {
            layout,
            spec: LaunchSpec::new(image, vcpus, cpu_model, product)?,
            guest,
            reduced_phys_bits: 1,
            start_paused: false,
        })
    }

    /// Guest memory laid out for this plan (a sparse memfd): what the
    /// [`Host`] of [`Self::start`] or [`Self::launch`] holds and the AMD-SP
    /// must share (an `sev_firmware::InProcess` over
    /// [`GuestMemory::system_handle`], or a firmware-server client that
    /// passed [`GuestMemory::system`]'s fd).
    ///
    /// # Errors
    /// The memfd cannot be created.
    pub fn memory(&self) -> Result<GuestMemory, MachineError> {
        GuestMemory::new(self.layout).map_err(|e| MachineError::Memory(e.to_string()))
    }

    /// Starts the launch on `host` (whose memory has [`Self::layout`]) and
    /// hands over its typestate: SEV / SEV-ES after LAUNCH_UPDATE_DATA of
    /// the firmware (next: `measure`), SNP after SNP_ACTIVATE with the
    /// firmware loaded (next: `finish`, which measures it). For a caller
    /// that drives the stages itself; [`Self::launch`] drives them as QEMU
    /// does.
    pub fn start(self, host: Host) -> Result<StartedLaunch, MachineError> {
        Ok(match self.guest {
            PlannedGuest::Sev(sev) => StartedLaunch::Sev(SevLaunch::start(host, self.spec, sev)?),
            PlannedGuest::Snp(snp, certs) => {
                StartedLaunch::Snp(SnpLaunch::start(host, self.spec, snp)?, certs)
            }
        })
    }

    /// Starts the launch on `host` (whose memory has [`Self::layout`]):
    /// SEV / SEV-ES up to LAUNCH_MEASURE, SNP up to SNP_ACTIVATE; then, unless
    /// `-S`, the first `cont` (LAUNCH_FINISH / the SNP updates and
    /// SNP_LAUNCH_FINISH).
    pub fn launch(self, host: Host) -> Result<Vm, MachineError> {
        let cbitpos = u32::from(self.spec.host_cpuid.c_bit);
        let (reduced_phys_bits, start_paused) = (self.reduced_phys_bits, self.start_paused);
        let mut vm = match self.start(host)? {
            StartedLaunch::Sev(launch) => Vm::from_sev(launch, cbitpos, reduced_phys_bits)?,
            StartedLaunch::Snp(launch, certs) => {
                Vm::from_snp(launch, cbitpos, reduced_phys_bits).with_certs(certs)
            }
        };
        if !start_paused {
            vm.cont().map_err(|e| LaunchError::Input(e.desc))?;
        }
        Ok(vm)
    }
}

/// A plan's launch after [`MachinePlan::start`]: the typestate of its guest
/// kind, to be driven on by the caller.
#[derive(Debug)]
pub enum StartedLaunch {
    /// SEV / SEV-ES: LAUNCH_START, ACTIVATE and the firmware's
    /// LAUNCH_UPDATE_DATA done.
    Sev(SevLaunch<Updating>),
    /// SEV-SNP: SNP_LAUNCH_START and SNP_ACTIVATE done, the firmware
    /// loaded; with the guest's certificate source (`certs-path`).
    Snp(SnpLaunch<Updating>, CertsProvider),
}
