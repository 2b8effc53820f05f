//! What both front ends collect before the machine-level rules run, and
//! those rules (`-machine`, `-m`, `-smp`, `-cpu`, cross-option checks).

use std::path::PathBuf;

use sev_os::excerpt;

use super::error::{ConfigError, ConfigErrorKind as Kind, Origin};
use super::object::ParsedObject;
use super::{
    ConfidentialGuest, MachineConfig, OnOffAuto, VmConfig, DEFAULT_CPU_MODEL, DEFAULT_MACHINE_TYPE,
    DEFAULT_MEMORY, MAX_CPUS,
};
use crate::qemu::lex;
use crate::qemu::numbers::{strtoi64_full, strtosz, NumError};
use crate::qemu::qapi::{parse_bool, VisitError};

/// How the front end names each option in messages (`-m` or `memory`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    pub machine: &'static str,
    pub memory: &'static str,
    pub smp: &'static str,
    pub cpu: &'static str,
    pub initrd: &'static str,
    pub append: &'static str,
}

/// Names on the command line.
pub(crate) const CLI_NAMES: Names = Names {
    machine: "-machine",
    memory: "-m",
    smp: "-smp",
    cpu: "-cpu",
    initrd: "-initrd",
    append: "-append",
};

/// Names in TOML.
pub(crate) const TOML_NAMES: Names = Names {
    machine: "[machine]",
    memory: "memory",
    smp: "smp",
    cpu: "cpu",
    initrd: "initrd",
    append: "append",
};

/// The collected, not yet cross-checked configuration.
#[derive(Debug)]
pub(crate) struct Draft {
    pub names: Names,
    /// Machine properties in order (keyval; `-kernel` & co. land here as
    /// `kernel=` & co., as in QEMU). The last value of a key wins.
    pub machine: Vec<(String, String)>,
    /// `-m` properties (QemuOpts `memory`), already checked per element.
    pub memory: Vec<(String, String)>,
    /// `-smp` properties (keyval, implied `cpus`).
    pub smp: Vec<(String, String)>,
    /// `-cpu`, if given.
    pub cpu: Option<String>,
    /// The objects, in order.
    pub objects: Vec<ParsedObject>,
    /// `-S`.
    pub start_paused: bool,
    /// `-qmp` socket path.
    pub qmp: Option<PathBuf>,
}

impl Draft {
    pub(crate) fn new(names: Names) -> Self {
        Self {
            names,
            machine: Vec::new(),
            memory: Vec::new(),
            smp: Vec::new(),
            cpu: None,
            objects: Vec::new(),
            start_paused: false,
            qmp: None,
        }
    }

    /// Adds an object, refusing a second one with the same id.
    pub(crate) fn add_object(&mut self, object: ParsedObject) -> Result<(), ConfigError> {
        let id = object.guest.id().to_owned();
        if self.objects.iter().any(|o| o.guest.id() == id) {
            return Err(duplicate_id(object.guest.qom_type(), &id));
        }
        self.objects.push(object);
        Ok(())
    }

    /// Whether an object with this id exists.
    pub(crate) fn has_object(&self, id: &str) -> bool {
        self.objects.iter().any(|o| o.guest.id() == id)
    }

    /// The last value of a machine property.
    fn machine_value(&self, key: &str) -> Option<&str> {
        self.machine
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Applies the machine-level rules and builds the configuration.
    pub(crate) fn finish(self) -> Result<VmConfig, ConfigError> {
        let names = self.names;
        let kernel = self.machine_value("kernel").map(PathBuf::from);
        let initrd = self.machine_value("initrd").map(PathBuf::from);
        let append = self.machine_value("append").map(str::to_owned);
        let bios = self.machine_value("firmware").map(PathBuf::from);

        // QEMU's qemu_validate_options.
        if kernel.is_none() {
            if append.is_some() {
                return Err(ConfigError::new(
                    Kind::Conflict,
                    Origin::Option(names.append.to_owned()),
                    None,
                    "-append only allowed with -kernel option",
                ));
            }
            if initrd.is_some() {
                return Err(ConfigError::new(
                    Kind::Conflict,
                    Origin::Option(names.initrd.to_owned()),
                    None,
                    "-initrd only allowed with -kernel option",
                ));
            }
        }

        let machine_type = self
            .machine_value("type")
            .unwrap_or(DEFAULT_MACHINE_TYPE)
            .to_owned();
        check_machine_type(names.machine, &machine_type)?;

        let memory = memory_size(names.memory, &self.memory)?;
        let machine = self.apply_machine(&machine_type)?;
        let smp = smp_cpus(names.smp, &excerpt(&machine_type), &self.smp)?;
        let cpu_model = match &self.cpu {
            Some(cpu) => cpu_model(names.cpu, cpu)?,
            None => DEFAULT_CPU_MODEL.to_owned(),
        };

        let guest = machine.confidential_guest_support.as_ref().and_then(|id| {
            self.objects
                .iter()
                .find(|o| o.guest.id() == id.as_str())
                .map(|o| o.guest.clone())
        });
        check_snp_smm(names.machine, guest.as_ref(), machine.smm)?;

        Ok(VmConfig {
            machine,
            guest,
            bios,
            kernel,
            initrd,
            append,
            smp,
            memory,
            cpu_model,
            start_paused: self.start_paused,
            qmp: self.qmp,
        })
    }

    /// The machine properties, in order.
    fn apply_machine(&self, machine_type: &str) -> Result<MachineConfig, ConfigError> {
        let origin = || Origin::Option(self.names.machine.to_owned());
        let mut cfg = MachineConfig {
            machine_type: machine_type.to_owned(),
            confidential_guest_support: None,
            smm: OnOffAuto::Auto,
        };
        for (key, value) in &self.machine {
            let err = |kind, message: String| ConfigError::new(kind, origin(), Some(key), message);
            match key.as_str() {
                "type" | "kernel" | "initrd" | "append" | "firmware" => {}
                "confidential-guest-support" => {
                    if value.is_empty() {
                        cfg.confidential_guest_support = None;
                    } else if self.has_object(value) {
                        cfg.confidential_guest_support = Some(value.clone());
                    } else {
                        return Err(err(
                            Kind::ObjectNotFound,
                            format!("Device '{}' not found", excerpt(value)),
                        ));
                    }
                }
                "memory-encryption" => {
                    if self.has_object(value) {
                        cfg.confidential_guest_support = Some(value.clone());
                    } else {
                        return Err(err(
                            Kind::ObjectNotFound,
                            format!("No such memory encryption object '{}'", excerpt(value)),
                        ));
                    }
                }
                "smm" | "vmport" => {
                    let v = OnOffAuto::parse(value).ok_or_else(|| {
                        err(Kind::InvalidValue, VisitError::bad_enum(key, value).message)
                    })?;
                    if key == "smm" {
                        cfg.smm = v;
                    }
                }
                "graphics" => {
                    if parse_bool(value).is_none() {
                        return Err(err(
                            Kind::InvalidValue,
                            VisitError::expects(key, "'on' or 'off'").message,
                        ));
                    }
                }
                "accel" => {
                    if value != "kvm" {
                        return Err(err(
                            Kind::Unsupported,
                            format!(
                                "accelerator '{}' is not supported: sevkit runs \
                                 confidential guests on KVM only",
                                excerpt(value)
                            ),
                        ));
                    }
                }
                k if QEMU_MACHINE_PROPERTIES.contains(&k) || k.contains('.') => {
                    return Err(err(
                        Kind::Unsupported,
                        format!(
                            "machine property '{}' is not supported by sevkit",
                            excerpt(k)
                        ),
                    ));
                }
                k => {
                    return Err(err(
                        Kind::InvalidParameter,
                        format!(
                            "Property '{}-machine.{}' not found",
                            excerpt(machine_type),
                            excerpt(k)
                        ),
                    ));
                }
            }
        }
        Ok(cfg)
    }
}

/// Machine properties QEMU's q35 has that sevkit does not implement.
const QEMU_MACHINE_PROPERTIES: &[&str] = &[
    "memory-backend",
    "kernel-irqchip",
    "kvm-shadow-mem",
    "usb",
    "dump-guest-core",
    "mem-merge",
    "pflash0",
    "pflash1",
    "hpet",
    "sata",
    "smbus",
    "pit",
    "pic",
    "acpi",
    "igvm-cfg",
    "shim",
    "dtb",
    "dumpdtb",
    "phandle-start",
    "dt-compatible",
    "suppress-vmdesc",
    "boot",
    "smp",
    "memory",
    "nvdimm",
    "hmat",
    "max-ram-below-4g",
    "sgx-epc",
    "bus-lock-ratelimit",
    "x-oem-id",
    "x-oem-table-id",
    "default-bus-bypass-iommu",
    "fd-bootchk",
    "max-fw-size",
    "smbios-entry-point-type",
];

/// The error for a second object with an id.
pub(crate) fn duplicate_id(qom_type: &str, id: &str) -> ConfigError {
    ConfigError::new(
        Kind::DuplicateId,
        Origin::Object {
            qom_type: Some(qom_type.to_owned()),
            id: Some(id.to_owned()),
        },
        Some("id"),
        format!("Duplicate ID '{}' for object", excerpt(id)),
    )
}

/// `q35` and the versioned `pc-q35-X.Y`; other machines are refused.
fn check_machine_type(origin: &str, machine_type: &str) -> Result<(), ConfigError> {
    let versioned = machine_type.strip_prefix("pc-q35-").is_some_and(|v| {
        v.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
    });
    if machine_type == "q35" || versioned {
        return Ok(());
    }
    let err = |kind, message: String| {
        ConfigError::new(
            kind,
            Origin::Option(origin.to_owned()),
            Some("type"),
            message,
        )
    };
    if lex::is_help(machine_type) {
        return Err(err(
            Kind::Unsupported,
            "help output is not supported by sevkit".into(),
        ));
    }
    let other_x86 = matches!(
        machine_type,
        "pc" | "microvm" | "isapc" | "none" | "x-remote"
    ) || machine_type.starts_with("pc-i440fx-")
        || machine_type.starts_with("pc-q35-");
    if other_x86 {
        return Err(err(
            Kind::Unsupported,
            format!(
                "machine type '{}' is not supported by sevkit (only q35)",
                excerpt(machine_type)
            ),
        ));
    }
    Err(err(
        Kind::InvalidValue,
        format!(
            "unsupported machine type: \"{}\" (Use -machine help to list supported machines)",
            excerpt(machine_type)
        ),
    ))
}

/// QEMU's `parse_memory_options` and the machine's `memory` setter.
fn memory_size(origin: &str, props: &[(String, String)]) -> Result<u64, ConfigError> {
    let Some(size) = props
        .iter()
        .rev()
        .find(|(k, _)| k == "size")
        .map(|(_, v)| v)
    else {
        return Ok(DEFAULT_MEMORY);
    };
    let err = |kind, property: &str, message: String| {
        ConfigError::new(
            kind,
            Origin::Option(origin.to_owned()),
            Some(property),
            message,
        )
    };
    // The QemuOpts `size` check (done per element) left only valid sizes.
    let first = strtosz(size)
        .map_err(|e| err(Kind::InvalidValue, "size", size_message("size", size, e)))?;
    if first == 0 {
        // "-m 0" keeps the default, as in QEMU.
        return Ok(DEFAULT_MEMORY);
    }
    // A number without a unit is MiB.
    let fixed = if size.bytes().last().is_some_and(|b| b.is_ascii_digit()) {
        format!("{size}M")
    } else {
        size.clone()
    };
    let bytes = strtosz(&fixed).map_err(|_| {
        err(
            Kind::InvalidValue,
            "size",
            "Parameter 'memory.size' expects size".to_owned(),
        )
    })?;
    // QEMU_ALIGN_UP(size, 8192).
    bytes.checked_add(8191).map(|v| v & !8191).ok_or_else(|| {
        err(
            Kind::OutOfRange,
            "size",
            format!("ram size {bytes} exceeds permitted maximum {}", u64::MAX),
        )
    })
}

/// QEMU's messages for a bad QemuOpts size.
pub(crate) fn size_message(name: &str, value: &str, err: NumError) -> String {
    match err {
        NumError::Range => format!(
            "Value '{}' is out of range for parameter '{name}'",
            excerpt(value)
        ),
        NumError::Invalid => format!(
            "Parameter '{name}' expects a non-negative number below 2^64 (Optional suffix k, \
             M, G, T, P or E means kilo-, mega-, giga-, tera-, peta- and exabytes, \
             respectively.)"
        ),
    }
}

/// The `SMPConfiguration` members.
const SMP_KEYS: &[&str] = &[
    "cpus", "drawers", "books", "sockets", "dies", "clusters", "modules", "cores", "threads",
    "maxcpus",
];

/// The `-smp` values by [`SMP_KEYS`] slot (the last of each key wins).
fn smp_values(origin: &str, props: &[(String, String)]) -> Result<[Option<u64>; 10], ConfigError> {
    let err = |kind, property: &str, message: String| {
        ConfigError::new(
            kind,
            Origin::Option(origin.to_owned()),
            Some(property),
            message,
        )
    };
    let mut given: [Option<u64>; 10] = [None; 10];
    for (key, value) in props {
        let Some(slot) = SMP_KEYS.iter().position(|k| k == key) else {
            return Err(err(
                Kind::InvalidParameter,
                key,
                format!("Parameter 'smp.{}' is unexpected", excerpt(key)),
            ));
        };
        let v = strtoi64_full(value).map_err(|_| {
            err(
                Kind::InvalidValue,
                key,
                format!("Parameter 'smp.{key}' expects integer"),
            )
        })?;
        // QEMU stores the int64 in unsigned fields; sevkit refuses what
        // would wrap.
        let v = u64::try_from(v).map_err(|_| {
            err(
                Kind::OutOfRange,
                key,
                "Invalid CPU topology: CPU topology parameters must be greater than zero"
                    .to_owned(),
            )
        })?;
        if let Some(s) = given.get_mut(slot) {
            *s = Some(v);
        }
    }
    Ok(given)
}

/// QEMU's `machine_parse_smp_config` for q35 (dies and modules supported,
/// clusters, books and drawers not). Returns the number of vCPUs.
/// `machine_type` is quoted in messages as given: pass an excerpt.
fn smp_cpus(
    origin: &str,
    machine_type: &str,
    props: &[(String, String)],
) -> Result<u32, ConfigError> {
    let err = |kind, property: Option<&str>, message: String| {
        ConfigError::new(kind, Origin::Option(origin.to_owned()), property, message)
    };
    let given = smp_values(origin, props)?;
    let [cpus, drawers, books, sockets, dies, clusters, modules, cores, threads, maxcpus] = given;
    if given.contains(&Some(0)) {
        return Err(err(
            Kind::OutOfRange,
            None,
            "Invalid CPU topology: CPU topology parameters must be greater than zero".to_owned(),
        ));
    }
    for (name, value) in [
        ("clusters", clusters),
        ("books", books),
        ("drawers", drawers),
    ] {
        if value.is_some_and(|v| v > 1) {
            return Err(err(
                Kind::OutOfRange,
                Some(name),
                format!("{name} > 1 not supported by this machine's CPU topology"),
            ));
        }
    }
    let modules = modules.unwrap_or(1);
    let dies = dies.unwrap_or(1);
    let mut sockets = sockets.unwrap_or(0);
    let mut cores = cores.unwrap_or(0);
    let mut threads = threads.unwrap_or(0);
    let cpus_in = cpus.unwrap_or(0);
    let mut maxcpus_v = maxcpus.unwrap_or(0);
    let per = |a: u64, b: u64| a.saturating_mul(b);
    if cpus_in == 0 && maxcpus_v == 0 {
        sockets = sockets.max(1);
        cores = cores.max(1);
        threads = threads.max(1);
    } else {
        if maxcpus_v == 0 {
            maxcpus_v = cpus_in;
        }
        // Prefer cores over sockets (QEMU since 6.2).
        if cores == 0 {
            sockets = sockets.max(1);
            threads = threads.max(1);
            cores = maxcpus_v / per(per(per(sockets, dies), modules), threads).max(1);
        } else if sockets == 0 {
            threads = threads.max(1);
            sockets = maxcpus_v / per(per(per(dies, modules), cores), threads).max(1);
        }
        if threads == 0 {
            threads = maxcpus_v / per(per(per(sockets, dies), modules), cores).max(1);
        }
    }
    let total = per(per(per(per(sockets, dies), modules), cores), threads);
    if maxcpus_v == 0 {
        maxcpus_v = total;
    }
    let cpus_v = if cpus_in == 0 { maxcpus_v } else { cpus_in };
    let topo = format!(
        "sockets ({sockets}) * dies ({dies}) * modules ({modules}) * cores ({cores}) * threads ({threads})"
    );
    if total != maxcpus_v {
        return Err(err(
            Kind::OutOfRange,
            None,
            format!(
                "Invalid CPU topology: product of the hierarchy must match maxcpus: {topo} != \
                 maxcpus ({maxcpus_v})"
            ),
        ));
    }
    if maxcpus_v < cpus_v {
        return Err(err(
            Kind::OutOfRange,
            None,
            format!(
                "Invalid CPU topology: maxcpus must be equal to or greater than smp: {topo} == \
                 maxcpus ({maxcpus_v}) < smp_cpus ({cpus_v})"
            ),
        ));
    }
    if maxcpus_v > u64::from(MAX_CPUS) {
        return Err(err(
            Kind::OutOfRange,
            None,
            format!(
                "Invalid SMP CPUs {maxcpus_v}. The max CPUs supported by machine \
                 '{machine_type}' is {MAX_CPUS}"
            ),
        ));
    }
    if maxcpus_v != cpus_v {
        return Err(err(
            Kind::Unsupported,
            Some("maxcpus"),
            format!("CPU hotplug (maxcpus {maxcpus_v} > cpus {cpus_v}) is not supported by sevkit"),
        ));
    }
    u32::try_from(cpus_v)
        .map_err(|_| err(Kind::OutOfRange, None, format!("Invalid SMP CPUs {cpus_v}")))
}

/// `-cpu MODEL`: the model must be one of [`sev_measure::VCPU_TYPES`]
/// (exact name, as QEMU's lookup is case-sensitive); feature flags are not
/// supported.
fn cpu_model(origin: &str, arg: &str) -> Result<String, ConfigError> {
    let err = |kind, message: String| {
        ConfigError::new(
            kind,
            Origin::Option(origin.to_owned()),
            Some("model"),
            message,
        )
    };
    if arg.is_empty() {
        return Err(err(
            Kind::InvalidValue,
            "-cpu option cannot be empty".to_owned(),
        ));
    }
    let (model, features) = match arg.split_once(',') {
        Some((m, f)) => (m, Some(f)),
        None => (arg, None),
    };
    if lex::is_help(model) {
        return Err(err(
            Kind::Unsupported,
            "help output is not supported by sevkit".into(),
        ));
    }
    if !sev_measure::VCPU_TYPES.iter().any(|t| t.name == model) {
        return Err(err(
            Kind::InvalidValue,
            format!("unable to find CPU model '{}'", excerpt(model)),
        ));
    }
    if let Some(features) = features {
        return Err(err(
            Kind::Unsupported,
            format!(
                "CPU features ('{}') are not supported by sevkit",
                excerpt(features)
            ),
        ));
    }
    Ok(model.to_owned())
}

/// SEV-SNP refuses SMM (QEMU's `sev_snp_kvm_init`).
pub(crate) fn check_snp_smm(
    machine_origin: &str,
    guest: Option<&ConfidentialGuest>,
    smm: OnOffAuto,
) -> Result<(), ConfigError> {
    if matches!(guest, Some(ConfidentialGuest::Snp(_))) && smm == OnOffAuto::On {
        return Err(ConfigError::new(
            Kind::Conflict,
            Origin::Option(machine_origin.to_owned()),
            Some("smm"),
            "SEV-SNP does not support SMM.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smp(pairs: &[(&str, &str)]) -> Result<u32, ConfigError> {
        let props: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        smp_cpus("-smp", "q35", &props)
    }

    #[test]
    fn smp_topology_like_qemu() {
        assert_eq!(smp(&[]).unwrap(), 1);
        assert_eq!(smp(&[("cpus", "4")]).unwrap(), 4);
        assert_eq!(
            smp(&[("sockets", "2"), ("cores", "2"), ("threads", "2")]).unwrap(),
            8
        );
        assert_eq!(smp(&[("cpus", "8"), ("sockets", "2")]).unwrap(), 8);
        assert_eq!(smp(&[("cpus", "0x10")]).unwrap(), 16);
        let e = smp(&[("cpus", "8"), ("sockets", "3"), ("cores", "2")]).unwrap_err();
        assert_eq!(
            e.message(),
            "Invalid CPU topology: product of the hierarchy must match maxcpus: sockets (3) * \
             dies (1) * modules (1) * cores (2) * threads (1) != maxcpus (8)"
        );
        let e = smp(&[("cpus", "0")]).unwrap_err();
        assert_eq!(
            e.message(),
            "Invalid CPU topology: CPU topology parameters must be greater than zero"
        );
        let e = smp(&[("clusters", "2"), ("cpus", "2")]).unwrap_err();
        assert_eq!(
            e.message(),
            "clusters > 1 not supported by this machine's CPU topology"
        );
        let e = smp(&[("cpus", "4097")]).unwrap_err();
        assert_eq!(
            e.message(),
            "Invalid SMP CPUs 4097. The max CPUs supported by machine 'q35' is 4096"
        );
        assert_eq!(
            smp(&[("cpus", "4"), ("maxcpus", "8")]).unwrap_err().kind(),
            Kind::Unsupported
        );
        assert_eq!(
            smp(&[("cpus", "4"), ("maxcpus", "2")])
                .unwrap_err()
                .message(),
            "Invalid CPU topology: maxcpus must be equal to or greater than smp: sockets (1) * \
             dies (1) * modules (1) * cores (2) * threads (1) == maxcpus (2) < smp_cpus (4)"
        );
    }

    #[test]
    fn memory_like_qemu() {
        let m = |s: &str| memory_size("-m", &[("size".to_owned(), s.to_owned())]);
        assert_eq!(m("2048").unwrap(), 2 << 30);
        assert_eq!(m("2G").unwrap(), 2 << 30);
        assert_eq!(m("0").unwrap(), DEFAULT_MEMORY);
        assert_eq!(m("1").unwrap(), 1 << 20);
        assert_eq!(m("100k").unwrap(), 106_496, "rounded up to 8 KiB");
        assert_eq!(m("1.5G").unwrap(), 3 << 29);
        assert_eq!(
            m("0x400").unwrap_err().message(),
            "Parameter 'memory.size' expects size",
            "QEMU appends M to the hex number and then refuses it"
        );
        assert_eq!(memory_size("-m", &[]).unwrap(), DEFAULT_MEMORY);
    }
}
