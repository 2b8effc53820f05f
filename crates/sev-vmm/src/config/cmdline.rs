//! The command-line front end ([`parse`]) and the canonical command line
//! ([`emit`]).

use std::path::{Path, PathBuf};

use sev_os::excerpt;

use super::draft::{size_message, Draft, CLI_NAMES};
use super::error::{ConfigError, ConfigErrorKind as Kind, Origin};
use super::object::{self, bad_id_error, id_wellformed, number_message, ObjectInput, PropValue};
use super::{ConfidentialGuest, OnOffAuto, VmConfig, DEFAULT_SEV_DEVICE};
use crate::qemu::b64;
use crate::qemu::json::{self, Json};
use crate::qemu::lex::{self, escape, KeyvalError};
use crate::qemu::numbers::{parse_uint_full, strtosz};
use crate::qemu::qapi::{parse_bool, VisitError};

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arity {
    None,
    One,
}

/// What sevkit does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// Parsed.
    Parse,
    /// Accepted and ignored.
    Ignore,
    /// A QEMU option sevkit refuses.
    Unsupported,
}

/// The options sevkit knows: its own, the harmless ones it ignores and
/// common QEMU options it refuses (so they are not called "invalid").
const OPTIONS: &[(&str, Arity, Handling)] = &[
    ("machine", Arity::One, Handling::Parse),
    ("M", Arity::One, Handling::Parse),
    ("object", Arity::One, Handling::Parse),
    ("bios", Arity::One, Handling::Parse),
    ("kernel", Arity::One, Handling::Parse),
    ("initrd", Arity::One, Handling::Parse),
    ("append", Arity::One, Handling::Parse),
    ("smp", Arity::One, Handling::Parse),
    ("m", Arity::One, Handling::Parse),
    ("cpu", Arity::One, Handling::Parse),
    ("S", Arity::None, Handling::Parse),
    ("qmp", Arity::One, Handling::Parse),
    ("accel", Arity::One, Handling::Parse),
    ("display", Arity::One, Handling::Parse),
    ("vga", Arity::One, Handling::Parse),
    ("enable-kvm", Arity::None, Handling::Ignore),
    ("nographic", Arity::None, Handling::Ignore),
    ("nodefaults", Arity::None, Handling::Ignore),
    ("no-user-config", Arity::None, Handling::Ignore),
    ("name", Arity::One, Handling::Ignore),
    ("drive", Arity::One, Handling::Unsupported),
    ("device", Arity::One, Handling::Unsupported),
    ("netdev", Arity::One, Handling::Unsupported),
    ("net", Arity::One, Handling::Unsupported),
    ("nic", Arity::One, Handling::Unsupported),
    ("chardev", Arity::One, Handling::Unsupported),
    ("serial", Arity::One, Handling::Unsupported),
    ("monitor", Arity::One, Handling::Unsupported),
    ("mon", Arity::One, Handling::Unsupported),
    ("qmp-pretty", Arity::One, Handling::Unsupported),
    ("pflash", Arity::One, Handling::Unsupported),
    ("hda", Arity::One, Handling::Unsupported),
    ("cdrom", Arity::One, Handling::Unsupported),
    ("blockdev", Arity::One, Handling::Unsupported),
    ("numa", Arity::One, Handling::Unsupported),
    ("global", Arity::One, Handling::Unsupported),
    ("incoming", Arity::One, Handling::Unsupported),
    ("boot", Arity::One, Handling::Unsupported),
    ("mem-path", Arity::One, Handling::Unsupported),
    ("mem-prealloc", Arity::None, Handling::Unsupported),
    ("vnc", Arity::One, Handling::Unsupported),
    ("spice", Arity::One, Handling::Unsupported),
    ("fw_cfg", Arity::One, Handling::Unsupported),
    ("readconfig", Arity::One, Handling::Unsupported),
    ("set", Arity::One, Handling::Unsupported),
    ("daemonize", Arity::None, Handling::Unsupported),
    ("pidfile", Arity::One, Handling::Unsupported),
    ("no-reboot", Arity::None, Handling::Unsupported),
    ("no-shutdown", Arity::None, Handling::Unsupported),
    ("overcommit", Arity::One, Handling::Unsupported),
    ("rtc", Arity::One, Handling::Unsupported),
    ("uuid", Arity::One, Handling::Unsupported),
    ("snapshot", Arity::None, Handling::Unsupported),
    ("gdb", Arity::One, Handling::Unsupported),
    ("s", Arity::None, Handling::Unsupported),
    ("d", Arity::One, Handling::Unsupported),
    ("D", Arity::One, Handling::Unsupported),
    ("L", Arity::One, Handling::Unsupported),
    ("trace", Arity::One, Handling::Unsupported),
    ("sandbox", Arity::One, Handling::Unsupported),
    ("run-with", Arity::One, Handling::Unsupported),
    ("usb", Arity::None, Handling::Unsupported),
    ("usbdevice", Arity::One, Handling::Unsupported),
    ("k", Arity::One, Handling::Unsupported),
    ("action", Arity::One, Handling::Unsupported),
    ("watchdog-action", Arity::One, Handling::Unsupported),
    ("preconfig", Arity::None, Handling::Unsupported),
    ("h", Arity::None, Handling::Unsupported),
    ("help", Arity::None, Handling::Unsupported),
    ("version", Arity::None, Handling::Unsupported),
];

/// Parameters of QEMU's `chardev` options (for `-qmp unix:...`): the ones
/// sevkit refuses as unsupported rather than invalid.
const CHARDEV_PARAMS: &[&str] = &[
    "backend",
    "host",
    "port",
    "fd",
    "localaddr",
    "localport",
    "to",
    "ipv4",
    "ipv6",
    "delay",
    "nodelay",
    "reconnect",
    "reconnect-ms",
    "telnet",
    "tn3270",
    "websocket",
    "tls-creds",
    "tls-authz",
    "mux",
    "signal",
    "logfile",
    "logappend",
    "abstract",
    "tight",
    "append",
    "debug",
    "size",
    "chardev",
    "name",
];

/// Parses a command line.
pub(crate) fn parse<S: AsRef<str>>(args: &[S]) -> Result<VmConfig, ConfigError> {
    let mut draft = Draft::new(CLI_NAMES);
    let mut i = 0;
    while let Some(word) = args.get(i).map(AsRef::as_ref) {
        i += 1;
        if !word.starts_with('-') {
            return Err(ConfigError::new(
                Kind::UnexpectedArgument,
                Origin::Argument(word.to_owned()),
                None,
                "disk images and other positional arguments are not supported by sevkit",
            ));
        }
        // QEMU treats --foo as -foo.
        let name = word
            .strip_prefix("--")
            .unwrap_or_else(|| word.get(1..).unwrap_or_default());
        let Some(&(_, arity, handling)) = OPTIONS.iter().find(|(n, _, _)| *n == name) else {
            return Err(ConfigError::new(
                Kind::InvalidOption,
                Origin::Option(word.to_owned()),
                None,
                "invalid option",
            ));
        };
        if handling == Handling::Unsupported {
            return Err(ConfigError::new(
                Kind::Unsupported,
                Origin::Option(word.to_owned()),
                None,
                "option not supported by sevkit",
            ));
        }
        let arg = if arity == Arity::One {
            let Some(arg) = args.get(i).map(AsRef::as_ref) else {
                return Err(ConfigError::new(
                    Kind::MissingArgument,
                    Origin::Option(word.to_owned()),
                    None,
                    "requires an argument",
                ));
            };
            i += 1;
            arg
        } else {
            ""
        };
        if handling == Handling::Ignore {
            continue;
        }
        option(&mut draft, word, name, arg)?;
    }
    draft.finish()
}

/// One parsed option.
fn option(draft: &mut Draft, word: &str, name: &str, arg: &str) -> Result<(), ConfigError> {
    let origin = || Origin::Option(word.to_owned());
    match name {
        "machine" | "M" => {
            let items = lex::keyval(arg, Some("type")).map_err(|e| keyval_error(origin(), e))?;
            draft.machine.extend(items);
        }
        "object" => {
            let parsed = if arg.starts_with('{') {
                object::build(json_object(word, arg)?)?
            } else {
                object::build(opts_object(draft, arg)?)?
            };
            draft.add_object(parsed)?;
        }
        "bios" => draft.machine.push(("firmware".into(), arg.into())),
        "kernel" | "initrd" | "append" => draft.machine.push((name.into(), arg.into())),
        "smp" => {
            let items = lex::keyval(arg, Some("cpus")).map_err(|e| keyval_error(origin(), e))?;
            draft.smp.extend(items);
        }
        "m" => draft.memory.extend(memory_opts(word, arg)?),
        "cpu" => draft.cpu = Some(arg.to_owned()),
        "S" => draft.start_paused = true,
        "qmp" => {
            if draft.qmp.is_some() {
                return Err(ConfigError::new(
                    Kind::Unsupported,
                    origin(),
                    None,
                    "only one QMP monitor is supported by sevkit",
                ));
            }
            draft.qmp = Some(qmp_path(word, arg)?);
        }
        "accel" => {
            let opts = lex::qemu_opts(arg, Some("accel"));
            for (key, value) in &opts.items {
                if key != "accel" {
                    return Err(ConfigError::new(
                        Kind::Unsupported,
                        origin(),
                        Some(key),
                        "accelerator properties are not supported by sevkit",
                    ));
                }
                if value != "kvm" {
                    return Err(ConfigError::new(
                        Kind::Unsupported,
                        origin(),
                        Some("accel"),
                        format!(
                            "accelerator '{}' is not supported: sevkit runs confidential \
                             guests on KVM only",
                            excerpt(value)
                        ),
                    ));
                }
            }
        }
        "display" | "vga" if arg != "none" => {
            return Err(ConfigError::new(
                Kind::Unsupported,
                origin(),
                None,
                format!(
                    "'{}' is not supported by sevkit (only 'none')",
                    excerpt(arg)
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// A keyval error as a [`ConfigError`].
fn keyval_error(origin: Origin, e: KeyvalError) -> ConfigError {
    match e {
        KeyvalError::Syntax(message) => ConfigError::new(Kind::Syntax, origin, None, message),
        KeyvalError::Help => ConfigError::new(
            Kind::Unsupported,
            origin,
            None,
            "help output is not supported by sevkit",
        ),
    }
}

/// The QemuOpts form of `-object`: id checks (QemuOpts makes them before
/// anything else), then the object validator.
fn opts_object(draft: &Draft, arg: &str) -> Result<ObjectInput, ConfigError> {
    let opts = lex::qemu_opts(arg, Some("qom-type"));
    let qom_type = opts
        .items
        .iter()
        .rev()
        .find(|(k, _)| k == "qom-type")
        .map(|(_, v)| v.clone());
    if let Some(id) = &opts.id {
        let origin = object::object_origin(qom_type.as_deref(), Some(id));
        if !id_wellformed(id) {
            return Err(bad_id_error(origin));
        }
        if draft.has_object(id) {
            return Err(super::draft::duplicate_id(
                qom_type.as_deref().unwrap_or("object"),
                id,
            ));
        }
    }
    Ok(ObjectInput {
        qom_type: qom_type.map(PropValue::Text),
        id: opts.id.map(PropValue::Text),
        props: opts
            .items
            .into_iter()
            .filter(|(k, _)| k != "qom-type")
            .map(|(k, v)| (k, PropValue::Text(v)))
            .collect(),
    })
}

/// The JSON form of `-object`: QEMU's JSON dialect (`qobject_from_json`,
/// so single-quoted strings are accepted and a duplicate key is refused),
/// members in the order given.
fn json_object(word: &str, arg: &str) -> Result<ObjectInput, ConfigError> {
    let origin = || Origin::Option(word.to_owned());
    let value = json::parse_one(arg)
        .map_err(|message| ConfigError::new(Kind::Syntax, origin(), None, message))?;
    let Json::Dict(dict) = value else {
        return Err(ConfigError::new(
            Kind::InvalidType,
            origin(),
            None,
            "Invalid parameter type, expected: object",
        ));
    };
    let mut input = ObjectInput::default();
    for (key, value) in dict.into_entries() {
        let value = json_value(value);
        match key.as_str() {
            "qom-type" => input.qom_type = Some(value),
            "id" => input.id = Some(value),
            _ => input.props.push((key, value)),
        }
    }
    Ok(input)
}

/// A JSON value as a property value.
fn json_value(value: Json) -> PropValue {
    match value {
        Json::Str(s) => PropValue::Text(s),
        Json::Bool(b) => PropValue::Bool(b),
        Json::Int(i) => PropValue::Int(i128::from(i)),
        Json::UInt(u) => PropValue::Int(i128::from(u)),
        Json::Double(_) => PropValue::Other("number"),
        Json::Dict(dict) => PropValue::Table(
            dict.into_entries()
                .into_iter()
                .map(|(k, v)| (k, json_value(v)))
                .collect(),
        ),
        Json::List(_) => PropValue::Other("array"),
        Json::Null => PropValue::Other("null"),
    }
}

/// `-m`: QemuOpts `memory` (implied `size`; `size`, `slots`, `maxmem`),
/// each element checked as QemuOpts checks it.
pub(crate) fn memory_opts(origin: &str, arg: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let err = |kind, property: Option<&str>, message: String| {
        ConfigError::new(kind, Origin::Option(origin.to_owned()), property, message)
    };
    let opts = lex::qemu_opts(arg, Some("size"));
    if opts.id.is_some() {
        // `memory` merges its lists, so it takes no id.
        return Err(err(
            Kind::InvalidParameter,
            Some("id"),
            "Invalid parameter 'id'".into(),
        ));
    }
    for (key, value) in &opts.items {
        match key.as_str() {
            "size" => {
                strtosz(value)
                    .map_err(|e| err(Kind::InvalidValue, Some(key), size_message(key, value, e)))?;
            }
            "maxmem" | "slots" => {
                let valid = if key == "slots" {
                    parse_uint_full(value).map_err(|e| number_message(key, value, e))
                } else {
                    strtosz(value).map_err(|e| size_message(key, value, e))
                };
                valid.map_err(|m| err(Kind::InvalidValue, Some(key), m))?;
                return Err(err(
                    Kind::Unsupported,
                    Some(key),
                    "memory hotplug is not supported by sevkit".into(),
                ));
            }
            k if lex::is_help(k) => {
                return Err(err(
                    Kind::Unsupported,
                    None,
                    "help output is not supported by sevkit".into(),
                ))
            }
            k => {
                return Err(err(
                    Kind::InvalidParameter,
                    Some(k),
                    format!("Invalid parameter '{}'", excerpt(k)),
                ))
            }
        }
    }
    Ok(opts.items)
}

/// `-qmp unix:PATH,server=on,wait=off`: the socket path.
fn qmp_path(word: &str, arg: &str) -> Result<PathBuf, ConfigError> {
    let err = |kind, property: Option<&str>, message: String| {
        ConfigError::new(kind, Origin::Option(word.to_owned()), property, message)
    };
    let Some(rest) = arg.strip_prefix("unix:") else {
        return Err(err(
            Kind::Unsupported,
            None,
            format!(
                "'{}': only unix sockets are supported by sevkit \
                 (unix:PATH,server=on,wait=off)",
                excerpt(arg)
            ),
        ));
    };
    // QemuOpts with the implied key "path"; `id` is dropped as QEMU's
    // qemu_opts_do_parse drops it.
    let opts = lex::qemu_opts(rest, Some("path"));
    let mut path = None;
    let mut server = false;
    let mut wait = true;
    for (key, value) in &opts.items {
        let boolean = || {
            parse_bool(value).ok_or_else(|| {
                err(
                    Kind::InvalidValue,
                    Some(key),
                    VisitError::expects(key, "'on' or 'off'").message,
                )
            })
        };
        match key.as_str() {
            "path" => path = Some(value.clone()),
            "server" => server = boolean()?,
            "wait" => wait = boolean()?,
            k if CHARDEV_PARAMS.contains(&k) => {
                return Err(err(
                    Kind::Unsupported,
                    Some(k),
                    format!("chardev parameter '{k}' is not supported by sevkit"),
                ))
            }
            k => {
                return Err(err(
                    Kind::InvalidParameter,
                    Some(k),
                    format!("Invalid parameter '{}'", excerpt(k)),
                ))
            }
        }
    }
    let Some(path) = path else {
        return Err(err(
            Kind::MissingParameter,
            Some("path"),
            VisitError::missing("path").message,
        ));
    };
    if path.is_empty() {
        return Err(err(
            Kind::InvalidValue,
            Some("path"),
            "the socket path is empty".into(),
        ));
    }
    if !server {
        return Err(err(
            Kind::Unsupported,
            Some("server"),
            "only listening sockets (server=on) are supported by sevkit".into(),
        ));
    }
    if wait {
        return Err(err(
            Kind::Unsupported,
            Some("wait"),
            "waiting for a client before start (wait=on, the default for server sockets) is \
             not supported by sevkit; add wait=off"
                .into(),
        ));
    }
    Ok(PathBuf::from(path))
}

/// A path as command-line text.
fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Memory in the largest unit that is exact.
fn memory_text(bytes: u64) -> String {
    for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// The canonical command line.
pub(crate) fn emit(cfg: &VmConfig) -> Vec<String> {
    let mut args = Vec::new();
    let mut machine = vec![format!("type={}", cfg.machine.machine_type)];
    if let Some(id) = &cfg.machine.confidential_guest_support {
        machine.push(format!("confidential-guest-support={}", escape(id)));
    }
    if cfg.machine.smm != OnOffAuto::Auto {
        machine.push(format!("smm={}", cfg.machine.smm.as_str()));
    }
    args.push("-machine".to_owned());
    args.push(machine.join(","));

    if let Some(guest) = &cfg.guest {
        args.push("-object".to_owned());
        args.push(object_text(guest));
    }
    for (opt, value) in [
        ("-bios", cfg.bios.as_deref().map(text)),
        ("-kernel", cfg.kernel.as_deref().map(text)),
        ("-initrd", cfg.initrd.as_deref().map(text)),
        ("-append", cfg.append.clone()),
    ] {
        if let Some(value) = value {
            args.push(opt.to_owned());
            args.push(value);
        }
    }
    args.extend([
        "-cpu".to_owned(),
        cfg.cpu_model.clone(),
        "-smp".to_owned(),
        cfg.smp.to_string(),
        "-m".to_owned(),
        memory_text(cfg.memory),
    ]);
    if cfg.start_paused {
        args.push("-S".to_owned());
    }
    if let Some(path) = &cfg.qmp {
        let path = text(path);
        // An '=' in the first element would be read as a key.
        let key = if path.contains('=') { "path=" } else { "" };
        args.push("-qmp".to_owned());
        args.push(format!("unix:{key}{},server=on,wait=off", escape(&path)));
    }
    args
}

/// `sev-guest,id=...,...` for a guest.
fn object_text(guest: &ConfidentialGuest) -> String {
    let common = guest.common();
    let mut parts = vec![guest.qom_type().to_owned(), format!("id={}", common.id)];
    if common.sev_device != Path::new(DEFAULT_SEV_DEVICE) {
        parts.push(format!("sev-device={}", escape(&text(&common.sev_device))));
    }
    if let Some(c) = common.cbitpos {
        parts.push(format!("cbitpos={c}"));
    }
    parts.push(format!("reduced-phys-bits={}", common.reduced_phys_bits));
    if common.kernel_hashes {
        parts.push("kernel-hashes=on".to_owned());
    }
    match guest {
        ConfidentialGuest::Sev(sev) => {
            parts.push(format!("policy={:#x}", sev.policy.raw()));
            if sev.handle != 0 {
                parts.push(format!("handle={}", sev.handle));
            }
            if let Some(f) = &sev.dh_cert_file {
                parts.push(format!("dh-cert-file={}", escape(&text(f))));
            }
            if let Some(f) = &sev.session_file {
                parts.push(format!("session-file={}", escape(&text(f))));
            }
            if sev.legacy_vm_type != OnOffAuto::Auto {
                parts.push(format!("legacy-vm-type={}", sev.legacy_vm_type.as_str()));
            }
        }
        ConfidentialGuest::Snp(snp) => {
            parts.push(format!("policy={:#x}", snp.policy.raw()));
            if snp.guest_visible_workarounds != [0; 16] {
                parts.push(format!(
                    "guest-visible-workarounds={}",
                    b64::encode(&snp.guest_visible_workarounds)
                ));
            }
            if let Some(block) = &snp.id_block {
                parts.push(format!("id-block={}", b64::encode(block)));
            }
            if let Some(auth) = &snp.id_auth {
                parts.push(format!("id-auth={}", b64::encode(auth.as_slice())));
            }
            if snp.author_key_enabled {
                parts.push("author-key-enabled=on".to_owned());
            }
            if snp.host_data != [0; 32] {
                parts.push(format!("host-data={}", b64::encode(&snp.host_data)));
            }
            if snp.vcek_disabled {
                parts.push("vcek-disabled=on".to_owned());
            }
            if let Some(p) = &snp.certs_path {
                parts.push(format!("certs-path={}", escape(&text(p))));
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(memory_text(2 << 30), "2G");
        assert_eq!(memory_text(128 << 20), "128M");
        assert_eq!(memory_text(1536 << 20), "1536M");
        assert_eq!(memory_text(8192), "8K");
        assert_eq!(memory_text(1 << 40), "1T");
        assert_eq!(memory_text(1000), "1000B");
        assert_eq!(memory_text(0), "0B");
    }

    #[test]
    fn qmp_spellings() {
        for arg in [
            "unix:/run/q.sock,server=on,wait=off",
            "unix:/run/q.sock,server,nowait",
            "unix:path=/run/q.sock,server=yes,wait=no",
            "unix:/run/q.sock,wait=off,server=true",
        ] {
            assert_eq!(
                qmp_path("-qmp", arg).unwrap(),
                Path::new("/run/q.sock"),
                "{arg}"
            );
        }
        assert_eq!(
            qmp_path("-qmp", "unix:/a,,b,server=on,wait=off").unwrap(),
            Path::new("/a,b")
        );
    }
}
