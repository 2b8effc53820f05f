//! The guest owner's launch parameters, as QEMU takes them.
//!
//! A confidential VM is described by the same command line that launches it
//! under QEMU, so existing command lines work unchanged:
//!
//! ```text
//! -machine q35,confidential-guest-support=sev0
//! -object sev-guest,id=sev0,cbitpos=47,reduced-phys-bits=1,policy=0x5
//! ```
//!
//! or the same configuration as TOML ([`VmConfig::from_toml`]). Both front
//! ends feed one validator, which checks every property with QEMU's rules
//! and reports QEMU's messages ([`ConfigError`]). [`VmConfig::validate`]
//! adds the checks QEMU makes against the host when KVM starts
//! (`sev_common_kvm_init`); a VMM calls it before the first firmware
//! command. [`VmConfig::to_qemu_args`] gives the canonical command line
//! back.
//!
//! # Command line
//!
//! [`VmConfig::from_qemu_args`] takes the arguments after the program name.
//! Options may be spelled `-opt` or `--opt`.
//!
//! | Option | Meaning |
//! |--------|---------|
//! | `-object sev-guest,id=ID,...` | SEV / SEV-ES guest ([`SevGuestConfig`]) |
//! | `-object sev-snp-guest,id=ID,...` | SEV-SNP guest ([`SevSnpGuestConfig`]) |
//! | `-object '{"qom-type":...}'` | the same in QEMU's JSON form (as libvirt writes it) |
//! | `-machine [type=]q35,confidential-guest-support=ID,smm=on\|off\|auto` (also `-M`) | the machine; `memory-encryption=ID` is the legacy alias; also `kernel=`, `initrd=`, `append=`, `firmware=`, `accel=kvm`, `graphics=`, `vmport=` |
//! | `-bios F`, `-kernel F`, `-initrd F`, `-append S` | firmware and direct kernel boot |
//! | `-smp N` or `-smp cpus=N,sockets=S,dies=D,modules=M,cores=C,threads=T,maxcpus=N` | vCPUs |
//! | `-m SIZE` or `-m size=SIZE` | RAM: a plain number is MiB, else `K`/`M`/`G`/`T`/`P`/`E` (either case); default 128 MiB |
//! | `-cpu MODEL` | vCPU model from [`sev_measure::VCPU_TYPES`] (exact name); default `EPYC-v4` |
//! | `-S` | do not start the vCPUs (launch secret injection window) |
//! | `-qmp unix:PATH,server=on,wait=off` (or `server,nowait`) | the QMP socket |
//!
//! Accepted and ignored, so real QEMU command lines work: `-enable-kvm`,
//! `-accel kvm`, `-nographic`, `-display none`, `-vga none`, `-nodefaults`,
//! `-no-user-config`, `-name ...`, and the machine properties `accel=kvm`,
//! `graphics=`, `vmport=`. They describe the accelerator or devices sevkit
//! has no counterpart for. Other QEMU options (`-drive`, `-device`, ...)
//! are refused with [`ConfigErrorKind::Unsupported`]; unknown ones with
//! QEMU's `invalid option`.
//!
//! Values follow QEMU's parsers exactly:
//!
//! * integers (`policy`, `handle`, `cbitpos`, ...) are read like
//!   `strtoull` with base 0: decimal, `0x` hex, and **octal for a leading
//!   `0`** (`063` is 51); negative numbers are refused;
//! * booleans are `on`/`yes`/`true`/`y` or `off`/`no`/`false`/`n`; a bare
//!   `kernel-hashes` means `kernel-hashes=on` and `nokernel-hashes` means
//!   `off`;
//! * in `-object`, `-m` and `-qmp` values `,,` is a literal comma
//!   (`dh-cert-file=/tmp/a,,b` is the file `/tmp/a,b`);
//! * base64 blobs are decoded as QEMU (GLib) decodes them.
//!
//! # Named policy fields
//!
//! Besides the raw `policy`, the policy bits can be given by name, applied
//! in order on top of the raw value (or QEMU's default, 0x1 for
//! `sev-guest` and 0x30000 for `sev-snp-guest`): `policy.NAME` for every
//! field NAME of the object's policy in [`sev_abi::policy::POLICY_FIELDS`]
//! (the [`PolicyKind::Sev`](sev_abi::policy::PolicyKind::Sev) rows for
//! `sev-guest`, the [`PolicyKind::Snp`](sev_abi::policy::PolicyKind::Snp)
//! rows for `sev-snp-guest`): a boolean for a one-bit field, 0..255 for a
//! version byte.
//!
//! These, and `certs-path` on `sev-snp-guest` (the certificate file for
//! extended guest requests, the name QEMU's proposed patches use), are
//! sevkit extensions; QEMU rejects them.
//!
//! # TOML
//!
//! The TOML form mirrors the command line. Top-level keys: `bios`,
//! `kernel`, `initrd`, `append` (strings), `cpu` (string), `smp` (integer,
//! `-smp` string, or table of `-smp` keys), `memory` (string as `-m`, or
//! integer MiB), `paused` (boolean, `-S`), `qmp` (socket path). The
//! `[machine]` table holds `-machine` properties; each `[[object]]` table
//! holds `qom-type`, `id` and the object's properties by their command-line
//! names, with typed values (as QEMU's JSON `-object` syntax has them;
//! strings are also accepted for numbers and booleans and read as on the
//! command line). `policy` may be an integer, a string, or a table of named
//! fields. Unknown keys are errors that name the key.
//!
//! ```toml
#![doc = include_str!("config/example.toml")]
//! ```
//!
//! # Rules and messages
//!
//! Parsing ([`VmConfig::from_qemu_args`], [`VmConfig::from_toml`]) checks
//! everything that does not depend on the host:
//!
//! | Rule | Message (QEMU's where it has one) |
//! |------|---------|
//! | unknown option | `invalid option` |
//! | option without its argument | `requires an argument` |
//! | unknown object type | `Parameter 'qom-type' does not accept value '...'` |
//! | missing `qom-type` / `id` / `reduced-phys-bits` | `Parameter '...' is missing` |
//! | malformed id | `Parameter 'id' expects an identifier` |
//! | two objects with one id | `Duplicate ID '...' for object` |
//! | unknown property (also a `sev-guest` property on `sev-snp-guest` and vice versa) | `Invalid parameter '...'` |
//! | not an unsigned integer | `Parameter '...' expects a uint64 value` |
//! | over 32 bits in a `uint32` | `Parameter '...' expects uint32_t` |
//! | not a boolean | `Parameter '...' expects 'on' or 'off'` |
//! | bad `legacy-vm-type` / `smm` | `Parameter '...' does not accept value '...'` |
//! | bad base64 | `Base64 data contains invalid characters` |
//! | `id-block` not 96 bytes | `parameter length of N not equal to 96` |
//! | `id-auth` over 4096 bytes | `parameter length:ID_AUTH N exceeds max of 4096` |
//! | `host-data` not 32 bytes | `parameter length of N not equal to 32` |
//! | `guest-visible-workarounds` not 16 bytes | `parameter length of N exceeds max of 16` (QEMU's wording, also for shorter blobs) |
//! | `reduced-phys-bits` outside 1..63 | `reduced_phys_bits check failed, it should be in the range of 1 to 63, requested 'N'` |
//! | `id-block` without `id-auth` | sevkit's rule: KVM reads 4096 bytes of ID authentication for every ID block |
//! | `confidential-guest-support` names no object | `Device '...' not found` (`memory-encryption`: `No such memory encryption object '...'`) |
//! | SEV-SNP with `smm=on` | `SEV-SNP does not support SMM.` |
//! | `-append` / `-initrd` without `-kernel` | `-append only allowed with -kernel option` |
//! | unknown machine | `unsupported machine type: "..."` |
//! | unknown machine property | `Property '...-machine....' not found` |
//! | bad `-m` | `Parameter 'size' expects a non-negative number below 2^64` |
//! | bad `-smp` | `Parameter 'smp.cpus' expects integer`, `Invalid CPU topology: ...` |
//! | unknown `-cpu` model | `unable to find CPU model '...'` |
//!
//! [`VmConfig::validate`] checks the host, in QEMU's order: the VM type
//! (`vm-type SEV-SNP not supported by KVM`), `cbitpos check failed, host
//! 'H' requested 'R'` (an absent `cbitpos` is QEMU's default 0, which no
//! host has), the reduced-phys-bits range, `guest policy requires SEV-ES,
//! but host SEV-ES support unavailable`, and the guest policy's reserved
//! bits (which KVM or the firmware would refuse at launch).
//!
//! An object that `confidential-guest-support` does not name is checked
//! like any other but then dropped: as in QEMU, the VM is not confidential.
//!
//! # Deviations from QEMU
//!
//! * The default machine is `q35` (QEMU's default `pc` is not modelled),
//!   and the default vCPU model is `EPYC-v4` (QEMU's `qemu64` has no
//!   SEV-capable signature here).
//! * `id-auth` shorter than 4096 bytes is zero-padded (QEMU hands KVM the
//!   short buffer, and KVM reads 4096 bytes from it).
//! * TOML and JSON integers must be non-negative (QEMU's JSON visitor wraps
//!   negative numbers for `uint64`).
//! * Memory and CPU hotplug (`maxmem`, `slots`, `maxcpus` above `cpus`) and
//!   `-qmp` sockets other than listening, non-waiting unix sockets are
//!   refused as unsupported.

use std::path::PathBuf;

use sev_abi::{GuestPolicy, Product, SnpPolicy};

mod cmdline;
mod draft;
mod error;
mod object;
mod toml_front;
mod validate;

pub use error::{ConfigError, ConfigErrorKind, Origin};

/// QEMU's default RAM size for x86 PC machines: 128 MiB.
pub const DEFAULT_MEMORY: u64 = 128 << 20;
/// The default vCPU model.
pub const DEFAULT_CPU_MODEL: &str = "EPYC-v4";
/// The default (and only modelled) machine type.
pub const DEFAULT_MACHINE_TYPE: &str = "q35";
/// QEMU's default `sev-device`.
pub const DEFAULT_SEV_DEVICE: &str = "/dev/sev";
/// QEMU's default `sev-guest` policy (`DEFAULT_GUEST_POLICY`: NODBG).
pub const DEFAULT_SEV_POLICY: u32 = GuestPolicy::NODBG;
/// The most vCPUs a q35 machine accepts.
pub const MAX_CPUS: u32 = 4096;
/// The largest TOML configuration file sevkit reads: 1 MiB. A VM's
/// configuration is a few hundred bytes (paths, numbers, an ID block in
/// base64).
pub const MAX_TOML_LEN: u64 = 1 << 20;

/// A whole VM: the machine, the confidential guest object it references and
/// the boot options around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// The machine (`-machine`).
    pub machine: MachineConfig,
    /// The object `confidential-guest-support` names, `None` for an
    /// ordinary (not confidential) VM.
    pub guest: Option<ConfidentialGuest>,
    /// Firmware image (`-bios`, machine property `firmware`).
    pub bios: Option<PathBuf>,
    /// Kernel for direct boot (`-kernel`).
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk (`-initrd`); needs a kernel.
    pub initrd: Option<PathBuf>,
    /// Kernel command line (`-append`); needs a kernel.
    pub append: Option<String>,
    /// Number of vCPUs (`-smp`), 1..=[`MAX_CPUS`].
    pub smp: u32,
    /// RAM in bytes (`-m`), a multiple of 8 KiB as QEMU rounds it.
    pub memory: u64,
    /// vCPU model (`-cpu`), a name from [`sev_measure::VCPU_TYPES`].
    pub cpu_model: String,
    /// Do not start the vCPUs after the launch (`-S`).
    pub start_paused: bool,
    /// Path of the QMP unix socket (`-qmp unix:PATH,server=on,wait=off`).
    pub qmp: Option<PathBuf>,
}

impl Default for VmConfig {
    /// A q35 machine without confidential guest, 1 vCPU, 128 MiB,
    /// `EPYC-v4`: what an empty command line gives.
    fn default() -> Self {
        Self {
            machine: MachineConfig::default(),
            guest: None,
            bios: None,
            kernel: None,
            initrd: None,
            append: None,
            smp: 1,
            memory: DEFAULT_MEMORY,
            cpu_model: DEFAULT_CPU_MODEL.to_owned(),
            start_paused: false,
            qmp: None,
        }
    }
}

/// The machine options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// The machine type as given: `q35` or a versioned `pc-q35-X.Y`.
    pub machine_type: String,
    /// The id `confidential-guest-support` (or `memory-encryption`) names;
    /// equal to the guest's id.
    pub confidential_guest_support: Option<String>,
    /// System management mode (`smm`); SEV-SNP needs it `off` or `auto`.
    pub smm: OnOffAuto,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            machine_type: DEFAULT_MACHINE_TYPE.to_owned(),
            confidential_guest_support: None,
            smm: OnOffAuto::Auto,
        }
    }
}

/// QAPI's `OnOffAuto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnOffAuto {
    /// `on`
    On,
    /// `off`
    Off,
    /// `auto` (the default)
    #[default]
    Auto,
}

impl OnOffAuto {
    /// The QAPI spelling: `on`, `off` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Auto => "auto",
        }
    }

    /// Parses the QAPI spelling (case-sensitive, as QEMU).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }
}

/// The confidential guest object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfidentialGuest {
    /// `-object sev-guest`: SEV, or SEV-ES when the policy has ES.
    Sev(SevGuestConfig),
    /// `-object sev-snp-guest`: SEV-SNP.
    Snp(SevSnpGuestConfig),
}

impl ConfidentialGuest {
    /// The properties both object types share.
    pub fn common(&self) -> &SevCommonConfig {
        match self {
            Self::Sev(g) => &g.common,
            Self::Snp(g) => &g.common,
        }
    }

    /// The shared properties, mutably.
    pub fn common_mut(&mut self) -> &mut SevCommonConfig {
        match self {
            Self::Sev(g) => &mut g.common,
            Self::Snp(g) => &mut g.common,
        }
    }

    /// The object's id.
    pub fn id(&self) -> &str {
        &self.common().id
    }

    /// QEMU's type name: `sev-guest` or `sev-snp-guest`.
    pub fn qom_type(&self) -> &'static str {
        match self {
            Self::Sev(_) => "sev-guest",
            Self::Snp(_) => "sev-snp-guest",
        }
    }

    /// True for SEV-ES: an SNP guest, or a `sev-guest` whose policy has ES.
    pub fn is_es(&self) -> bool {
        match self {
            Self::Sev(g) => g.policy.es(),
            Self::Snp(_) => true,
        }
    }
}

/// Properties of both `sev-guest` and `sev-snp-guest` (QAPI
/// `SevCommonProperties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevCommonConfig {
    /// The object id.
    pub id: String,
    /// `sev-device`: the SEV platform device (default `/dev/sev`).
    pub sev_device: PathBuf,
    /// `cbitpos`: the C-bit position in page-table entries. Optional in
    /// QAPI with default 0, which fails QEMU's host check; `None` when not
    /// given.
    pub cbitpos: Option<u32>,
    /// `reduced-phys-bits` (mandatory): physical address bits lost to
    /// memory encryption, 1..=63.
    pub reduced_phys_bits: u32,
    /// `kernel-hashes`: measure `-kernel`/`-initrd`/`-append` through the
    /// firmware's hash table.
    pub kernel_hashes: bool,
}

/// `-object sev-guest` (QAPI `SevGuestProperties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevGuestConfig {
    /// The shared properties.
    pub common: SevCommonConfig,
    /// `policy` (default 0x1), with the named fields applied.
    pub policy: GuestPolicy,
    /// `handle`: 0 for a new guest context, else the firmware handle to
    /// share keys with.
    pub handle: u32,
    /// `dh-cert-file`: the guest owner's PDH (base64 file), read at launch.
    pub dh_cert_file: Option<PathBuf>,
    /// `session-file`: the guest owner's session parameters (base64 file).
    pub session_file: Option<PathBuf>,
    /// `legacy-vm-type`: `on` forces KVM_SEV_INIT (legacy VM type),
    /// `off` KVM_SEV_INIT2, `auto` (default) legacy unless needed.
    pub legacy_vm_type: OnOffAuto,
}

/// `-object sev-snp-guest` (QAPI `SevSnpGuestProperties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevSnpGuestConfig {
    /// The shared properties.
    pub common: SevCommonConfig,
    /// `policy` (default 0x30000), with the named fields applied.
    pub policy: SnpPolicy,
    /// `guest-visible-workarounds`: SNP_LAUNCH_START's GOSVW (16 bytes).
    pub guest_visible_workarounds: [u8; 16],
    /// `id-block`: the ID block for SNP_LAUNCH_FINISH (96 bytes).
    pub id_block: Option<[u8; sev_abi::snp_launch::ID_BLOCK_LEN]>,
    /// `id-auth`: the ID authentication information (4096 bytes; a shorter
    /// blob is zero-padded).
    pub id_auth: Option<Box<[u8; sev_abi::snp_launch::ID_AUTH_LEN]>>,
    /// `author-key-enabled`: `id-auth` carries an author key.
    pub author_key_enabled: bool,
    /// `vcek-disabled`: the guest may only use a VLEK.
    pub vcek_disabled: bool,
    /// `host-data`: SNP_LAUNCH_FINISH's HOST_DATA (32 bytes).
    pub host_data: [u8; 32],
    /// `certs-path` (sevkit extension): certificate table file returned to
    /// extended guest requests.
    pub certs_path: Option<PathBuf>,
}

/// What the host offers: the facts QEMU checks at KVM init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostCaps {
    /// CPUID 0x8000001F EBX\[5:0\]: the host's C-bit position.
    pub cbitpos: u32,
    /// The platform supports SEV-ES (SEV_STATUS_FLAGS_CONFIG_ES).
    pub sev_es: bool,
    /// The platform (and KVM) supports SEV-SNP VMs.
    pub snp: bool,
}

impl HostCaps {
    /// The capabilities of a product generation: Naples SEV only, Rome
    /// SEV and SEV-ES, Milan, Genoa and Turin all three; the C-bit position
    /// of [`Product::c_bit_position`](sev_abi::product::Product::c_bit_position).
    pub fn for_product(product: Product) -> Self {
        Self {
            cbitpos: u32::from(product.c_bit_position()),
            sev_es: !matches!(product, Product::Naples),
            snp: product.is_snp_capable(),
        }
    }
}

impl VmConfig {
    /// Parses a QEMU command line (the arguments after the program name).
    ///
    /// Checks every rule that does not depend on the host; see the module
    /// documentation for the syntax and the rules.
    pub fn from_qemu_args<S: AsRef<str>>(args: &[S]) -> Result<VmConfig, ConfigError> {
        cmdline::parse(args)
    }

    /// Parses the TOML form (see the module documentation). Files are read
    /// up to [`MAX_TOML_LEN`] bytes.
    pub fn from_toml(text: &str) -> Result<VmConfig, ConfigError> {
        toml_front::parse(text)
    }

    /// Checks the configuration against the host, as QEMU does when KVM
    /// starts, and re-checks the host-independent rules (so a hand-built
    /// configuration is covered too). A VMM calls this before any firmware
    /// command.
    pub fn validate(&self, host: &HostCaps) -> Result<(), ConfigError> {
        validate::validate(self, *host)
    }

    /// The canonical command line for this configuration, without the
    /// program name. [`VmConfig::from_qemu_args`] parses it back to an
    /// equal configuration (paths that are not UTF-8 are converted
    /// lossily).
    pub fn to_qemu_args(&self) -> Vec<String> {
        cmdline::emit(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_doc_example_parses() {
        let cfg = VmConfig::from_toml(include_str!("config/example.toml")).unwrap();
        let Some(ConfidentialGuest::Snp(snp)) = &cfg.guest else {
            panic!("not SNP: {cfg:?}");
        };
        assert_eq!(&snp.host_data, b"sevkit example host data 32 byte");
        assert!(snp.common.kernel_hashes);
        assert_eq!(cfg.memory, 2 << 30);
        cfg.validate(&HostCaps::for_product(Product::Milan))
            .unwrap();
    }

    #[test]
    fn host_caps_per_product() {
        let naples = HostCaps::for_product(Product::Naples);
        assert_eq!(
            (naples.cbitpos, naples.sev_es, naples.snp),
            (47, false, false)
        );
        let rome = HostCaps::for_product(Product::Rome);
        assert_eq!((rome.cbitpos, rome.sev_es, rome.snp), (47, true, false));
        for p in [Product::Milan, Product::Genoa, Product::Turin] {
            let caps = HostCaps::for_product(p);
            assert_eq!(
                (caps.cbitpos, caps.sev_es, caps.snp),
                (51, true, true),
                "{p}"
            );
        }
    }

    #[test]
    fn on_off_auto_spelling() {
        for v in [OnOffAuto::On, OnOffAuto::Off, OnOffAuto::Auto] {
            assert_eq!(OnOffAuto::parse(v.as_str()), Some(v));
        }
        assert_eq!(OnOffAuto::parse("ON"), None);
        assert_eq!(OnOffAuto::parse("yes"), None);
    }
}
