//! `-object sev-guest` / `sev-snp-guest`: the property schema and the one
//! validator both front ends use.
//!
//! QEMU reads `-object` through the QAPI `ObjectOptions` visitor: `qom-type`
//! and `id` first, then the members in schema order (a missing mandatory
//! one or a badly typed one stops it), then the leftover keys are reported
//! as `Invalid parameter`. The object's property setters run afterwards
//! (base64 decoding, length checks). This module keeps that order.

use std::path::PathBuf;

use sev_abi::policy::{FieldWidth, PolicyKind};
use sev_abi::snp_launch::{ID_AUTH_LEN, ID_BLOCK_LEN};
use sev_abi::{GuestPolicy, SnpPolicy};
use sev_os::excerpt;

use super::error::{ConfigError, ConfigErrorKind as Kind, Origin};
use super::{
    ConfidentialGuest, OnOffAuto, SevCommonConfig, SevGuestConfig, SevSnpGuestConfig,
    DEFAULT_SEV_DEVICE, DEFAULT_SEV_POLICY,
};
use crate::qemu::b64;
use crate::qemu::numbers::NumError;
use crate::qemu::qapi::{Dialect, Member, Value, VisitError, VisitErrorKind, Visitor};

/// A property value: text from the command line, or a typed value from
/// TOML or JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PropValue {
    /// Command-line text (or a TOML/JSON string), parsed by the
    /// command-line rules.
    Text(String),
    /// A TOML/JSON integer.
    Int(i128),
    /// A TOML/JSON boolean.
    Bool(bool),
    /// A TOML/JSON table (only `policy` takes one).
    Table(Vec<(String, PropValue)>),
    /// Any other TOML/JSON value; the name of its type.
    Other(&'static str),
}

/// The QAPI type of a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PropKind {
    Str,
    U32,
    U64,
    Bool,
    OnOffAuto,
}

/// One property of an object type.
struct PropDef {
    name: &'static str,
    kind: PropKind,
    mandatory: bool,
}

const fn prop(name: &'static str, kind: PropKind) -> PropDef {
    PropDef {
        name,
        kind,
        mandatory: false,
    }
}

/// `SevCommonProperties`, in schema order.
const COMMON: &[PropDef] = &[
    prop("sev-device", PropKind::Str),
    prop("cbitpos", PropKind::U32),
    PropDef {
        name: "reduced-phys-bits",
        kind: PropKind::U32,
        mandatory: true,
    },
    prop("kernel-hashes", PropKind::Bool),
];

/// `SevGuestProperties`, in schema order.
const SEV_GUEST: &[PropDef] = &[
    prop("dh-cert-file", PropKind::Str),
    prop("session-file", PropKind::Str),
    prop("policy", PropKind::U32),
    prop("handle", PropKind::U32),
    prop("legacy-vm-type", PropKind::OnOffAuto),
];

/// `SevSnpGuestProperties`, in schema order, then sevkit's `certs-path`.
const SNP_GUEST: &[PropDef] = &[
    prop("policy", PropKind::U64),
    prop("guest-visible-workarounds", PropKind::Str),
    prop("id-block", PropKind::Str),
    prop("id-auth", PropKind::Str),
    prop("author-key-enabled", PropKind::Bool),
    prop("host-data", PropKind::Str),
    prop("vcek-disabled", PropKind::Bool),
    prop("certs-path", PropKind::Str),
];

/// The object types sevkit implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjType {
    Sev,
    Snp,
}

/// Object types QEMU has that sevkit does not implement (refused as
/// unsupported rather than unknown).
const QEMU_OBJECT_TYPES: &[&str] = &[
    "memory-backend-memfd",
    "memory-backend-ram",
    "memory-backend-file",
    "memory-backend-epc",
    "secret",
    "secret_keyring",
    "rng-random",
    "rng-builtin",
    "rng-egd",
    "iothread",
    "main-loop",
    "thread-context",
    "tdx-guest",
    "igvm-cfg",
    "throttle-group",
    "tls-creds-x509",
    "tls-creds-psk",
    "tls-creds-anon",
    "authz-simple",
    "filter-buffer",
    "cryptodev-backend-builtin",
];

/// The raw input of one object, from either front end.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectInput {
    /// `qom-type`, if given.
    pub qom_type: Option<PropValue>,
    /// `id`, if given.
    pub id: Option<PropValue>,
    /// Every other property, in order (repeats allowed; the last wins).
    pub props: Vec<(String, PropValue)>,
}

/// An object that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct ParsedObject {
    pub guest: ConfidentialGuest,
}

/// QEMU's `id_wellformed`: a letter, then letters, digits, `-`, `.`, `_`.
pub(crate) fn id_wellformed(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The error for a malformed id (QEMU's message; the hint is QEMU's too).
pub(crate) fn bad_id_error(origin: Origin) -> ConfigError {
    ConfigError::new(
        Kind::InvalidValue,
        origin,
        Some("id"),
        "Parameter 'id' expects an identifier (Identifiers consist of letters, digits, \
         '-', '.', '_', starting with a letter.)",
    )
}

/// Flattens `policy = { name = value }` into `policy.name` properties.
/// Other tables are left for the type check to refuse.
pub(crate) fn flatten_policy(props: Vec<(String, PropValue)>) -> Vec<(String, PropValue)> {
    let mut out = Vec::with_capacity(props.len());
    for (key, value) in props {
        match value {
            PropValue::Table(fields) if key == "policy" => {
                for (field, v) in fields {
                    out.push((format!("policy.{field}"), v));
                }
            }
            other => out.push((key, other)),
        }
    }
    out
}

/// One object's visit: QAPI's visitor over its properties, and where its
/// errors point.
struct Visit<'a> {
    origin: Origin,
    visitor: Visitor<'a, PropValue>,
}

impl Member for PropValue {
    fn value(&self) -> Value<'_> {
        match self {
            Self::Text(s) => Value::Str(s),
            Self::Int(i) => Value::Int(*i),
            Self::Bool(b) => Value::Bool(*b),
            Self::Table(_) => Value::Other("object"),
            Self::Other(name) => Value::Other(name),
        }
    }
}

impl Visit<'_> {
    fn err(&self, kind: Kind, property: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(kind, self.origin.clone(), Some(property), message)
    }

    /// The visitor's error as a configuration error of this object.
    fn visit_err(&self, e: VisitError) -> ConfigError {
        let kind = match e.kind {
            VisitErrorKind::Missing => Kind::MissingParameter,
            VisitErrorKind::InvalidType => Kind::InvalidType,
            VisitErrorKind::InvalidValue => Kind::InvalidValue,
            VisitErrorKind::Unexpected => Kind::InvalidParameter,
        };
        self.err(kind, &e.member, e.message)
    }

    fn on_off_auto(&self, name: &str, value: &PropValue) -> Result<OnOffAuto, VisitError> {
        match value {
            // TOML and JSON booleans stand for on and off.
            PropValue::Bool(true) => Ok(OnOffAuto::On),
            PropValue::Bool(false) => Ok(OnOffAuto::Off),
            _ => self.visitor.enumeration(name, value, OnOffAuto::parse),
        }
    }

    /// Visits the members of `defs` in order: type-checks each one given,
    /// reports a missing mandatory one.
    fn members(&mut self, defs: &[PropDef]) -> Result<Members, ConfigError> {
        let mut m = Members::default();
        for def in defs {
            let typed = self.member(def).map_err(|e| self.visit_err(e))?;
            if let Some(typed) = typed {
                m.values.push((def.name, typed));
            }
        }
        Ok(m)
    }

    fn member(&mut self, def: &PropDef) -> Result<Option<Typed>, VisitError> {
        let name = def.name;
        let value = if def.mandatory {
            self.visitor.required(name)?
        } else {
            let Some(value) = self.visitor.optional(name) else {
                return Ok(None);
            };
            value
        };
        let v = &self.visitor;
        Ok(Some(match def.kind {
            PropKind::Str => Typed::Str(v.string(name, value)?),
            PropKind::U32 => Typed::Uint(u64::from(v.uint32(name, value)?)),
            PropKind::U64 => Typed::Uint(v.uint64(name, value)?),
            PropKind::Bool => Typed::Bool(v.boolean(name, value)?),
            PropKind::OnOffAuto => Typed::OnOffAuto(self.on_off_auto(name, value)?),
        }))
    }

    /// Applies the named policy fields of `kind` to `raw`, in order.
    fn apply_policy_fields(&mut self, kind: PolicyKind, mut raw: u64) -> Result<u64, ConfigError> {
        let claimed = self
            .visitor
            .claim(|key| kind.field(key.strip_prefix("policy.")?));
        for (key, field, value) in claimed {
            let value = match field.width {
                FieldWidth::Flag => u64::from(
                    self.visitor
                        .boolean(key, value)
                        .map_err(|e| self.visit_err(e))?,
                ),
                FieldWidth::Byte => self
                    .visitor
                    .uint(key, value, field.max(), "uint8_t")
                    .map_err(|e| self.visit_err(e))?,
            };
            raw = field.with(raw, value);
        }
        Ok(raw)
    }

    /// Reports the first property no member consumed.
    fn check_leftovers(&self, policy: PolicyKind, qom_type: &str) -> Result<(), ConfigError> {
        let Err(e) = self.visitor.finish() else {
            return Ok(());
        };
        let key = e.member.as_str();
        if crate::qemu::lex::is_help(key) {
            return Err(self.err(
                Kind::Unsupported,
                key,
                "help output is not supported by sevkit",
            ));
        }
        let mut message = e.message.clone();
        if key.starts_with("policy.") {
            let names: Vec<&str> = policy.fields().map(|f| f.name).collect();
            message = format!(
                "{message} (the policy fields of {qom_type} are: {})",
                names.join(", ")
            );
        }
        Err(self.err(Kind::InvalidParameter, key, message))
    }

    /// Decodes a base64 property.
    fn base64(&self, name: &str, text: &str) -> Result<Vec<u8>, ConfigError> {
        b64::decode(text).map_err(|m| self.err(Kind::InvalidBase64, name, m))
    }
}

/// A type-checked member value.
#[derive(Debug, Clone)]
enum Typed {
    Str(String),
    Uint(u64),
    Bool(bool),
    OnOffAuto(OnOffAuto),
}

/// The members a visit found, by name.
#[derive(Debug, Default)]
struct Members {
    values: Vec<(&'static str, Typed)>,
}

impl Members {
    fn get(&self, name: &str) -> Option<&Typed> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Typed::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn uint(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Typed::Uint(v)) => Some(*v),
            _ => None,
        }
    }

    fn u32(&self, name: &str) -> Option<u32> {
        self.uint(name).and_then(|v| u32::try_from(v).ok())
    }

    fn boolean(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Typed::Bool(true)))
    }

    fn on_off_auto(&self, name: &str) -> OnOffAuto {
        match self.get(name) {
            Some(Typed::OnOffAuto(v)) => *v,
            _ => OnOffAuto::Auto,
        }
    }
}

/// The reduced-phys-bits range check (QEMU's `sev_common_kvm_init`).
pub(crate) fn check_reduced_phys_bits(origin: &Origin, bits: u32) -> Result<(), ConfigError> {
    if (1..=63).contains(&bits) {
        Ok(())
    } else {
        Err(ConfigError::new(
            Kind::OutOfRange,
            origin.clone(),
            Some("reduced-phys-bits"),
            format!(
                "reduced_phys_bits check failed, it should be in the range of 1 to 63, \
                 requested '{bits}'"
            ),
        ))
    }
}

/// sevkit's rule: KVM copies 4096 bytes of ID authentication information
/// whenever an ID block is given, so an ID block needs `id-auth`.
pub(crate) fn check_id_block_auth(
    origin: &Origin,
    snp: &SevSnpGuestConfig,
) -> Result<(), ConfigError> {
    if snp.id_block.is_some() && snp.id_auth.is_none() {
        return Err(ConfigError::new(
            Kind::Conflict,
            origin.clone(),
            Some("id-auth"),
            "id-block requires id-auth: SNP_LAUNCH_FINISH reads the 4096-byte ID \
             authentication information of every ID block",
        ));
    }
    Ok(())
}

/// The origin of an object's errors.
pub(crate) fn object_origin(qom_type: Option<&str>, id: Option<&str>) -> Origin {
    Origin::Object {
        qom_type: qom_type.map(str::to_owned),
        id: id.map(str::to_owned),
    }
}

/// `qom-type` and `id`, checked in QEMU's order: the type (mandatory, a
/// known string), then the id (mandatory, well formed).
fn header(
    qom_type: Option<PropValue>,
    id: Option<PropValue>,
) -> Result<(ObjType, String, String, Origin), ConfigError> {
    // The id, as far as it is known, names the object in every message.
    let id_text = match &id {
        Some(PropValue::Text(s)) => Some(s.clone()),
        _ => None,
    };
    let anonymous = object_origin(None, id_text.as_deref());
    let unsupported = |message: String| {
        ConfigError::new(
            Kind::Unsupported,
            anonymous.clone(),
            Some("qom-type"),
            message,
        )
    };
    let qom_type = match qom_type {
        None => {
            return Err(ConfigError::new(
                Kind::MissingParameter,
                anonymous,
                Some("qom-type"),
                VisitError::missing("qom-type").message,
            ))
        }
        Some(PropValue::Text(t)) => t,
        Some(other) => {
            return Err(ConfigError::new(
                Kind::InvalidType,
                anonymous,
                Some("qom-type"),
                format!(
                    "{} (got {})",
                    VisitError::invalid_type("qom-type", "string").message,
                    other.value().type_name()
                ),
            ))
        }
    };
    let obj_type = match qom_type.as_str() {
        "sev-guest" => ObjType::Sev,
        "sev-snp-guest" => ObjType::Snp,
        t if crate::qemu::lex::is_help(t) => {
            return Err(unsupported(
                "help output is not supported by sevkit".to_owned(),
            ))
        }
        t if QEMU_OBJECT_TYPES.contains(&t) => {
            return Err(unsupported(format!(
                "object type '{t}' is not supported by sevkit (only sev-guest and sev-snp-guest)"
            )))
        }
        t => {
            return Err(ConfigError::new(
                Kind::InvalidValue,
                anonymous,
                Some("qom-type"),
                VisitError::bad_enum("qom-type", t).message,
            ))
        }
    };
    let origin = object_origin(Some(&qom_type), id_text.as_deref());
    let id = match id {
        None => {
            return Err(ConfigError::new(
                Kind::MissingParameter,
                origin,
                Some("id"),
                VisitError::missing("id").message,
            ))
        }
        Some(PropValue::Text(id)) => id,
        Some(_) => {
            return Err(ConfigError::new(
                Kind::InvalidType,
                origin,
                Some("id"),
                VisitError::invalid_type("id", "string").message,
            ))
        }
    };
    if !id_wellformed(&id) {
        return Err(bad_id_error(origin));
    }
    Ok((obj_type, qom_type, id, origin))
}

/// Validates one object: QEMU's visit order, then its setters, then
/// sevkit's static rules.
pub(crate) fn build(input: ObjectInput) -> Result<ParsedObject, ConfigError> {
    let (obj_type, qom_type, id, typed_origin) = header(input.qom_type, input.id)?;
    let props = flatten_policy(input.props);
    let mut visit = Visit {
        origin: typed_origin,
        visitor: Visitor::new(
            Dialect::Options,
            props.iter().map(|(key, value)| (key.as_str(), value)),
        ),
    };

    let common_members = visit.members(COMMON)?;
    let (specific, policy_kind) = match obj_type {
        ObjType::Sev => (SEV_GUEST, PolicyKind::Sev),
        ObjType::Snp => (SNP_GUEST, PolicyKind::Snp),
    };
    let members = visit.members(specific)?;
    let raw_policy = match obj_type {
        ObjType::Sev => members
            .uint("policy")
            .unwrap_or(u64::from(DEFAULT_SEV_POLICY)),
        ObjType::Snp => members.uint("policy").unwrap_or(SnpPolicy::DEFAULT_RAW),
    };
    let policy = visit.apply_policy_fields(policy_kind, raw_policy)?;
    visit.check_leftovers(policy_kind, &qom_type)?;

    let common = SevCommonConfig {
        id,
        sev_device: PathBuf::from(
            common_members
                .string("sev-device")
                .unwrap_or_else(|| DEFAULT_SEV_DEVICE.to_owned()),
        ),
        cbitpos: common_members.u32("cbitpos"),
        reduced_phys_bits: common_members.u32("reduced-phys-bits").unwrap_or(0),
        kernel_hashes: common_members.boolean("kernel-hashes"),
    };

    let guest = match obj_type {
        ObjType::Sev => ConfidentialGuest::Sev(SevGuestConfig {
            common,
            // Policy fields of sev-guest stay within 32 bits.
            policy: GuestPolicy::from_raw(u32::try_from(policy).unwrap_or(u32::MAX)),
            handle: members.u32("handle").unwrap_or(0),
            dh_cert_file: members.string("dh-cert-file").map(PathBuf::from),
            session_file: members.string("session-file").map(PathBuf::from),
            legacy_vm_type: members.on_off_auto("legacy-vm-type"),
        }),
        ObjType::Snp => ConfidentialGuest::Snp(snp_setters(&visit, common, &members, policy)?),
    };

    check_reduced_phys_bits(&visit.origin, guest.common().reduced_phys_bits)?;
    if let ConfidentialGuest::Snp(snp) = &guest {
        check_id_block_auth(&visit.origin, snp)?;
    }
    Ok(ParsedObject { guest })
}

/// The `sev-snp-guest` setters: base64 decoding and QEMU's length checks.
fn snp_setters(
    visit: &Visit<'_>,
    common: SevCommonConfig,
    members: &Members,
    policy: u64,
) -> Result<SevSnpGuestConfig, ConfigError> {
    let mut gosvw = [0u8; 16];
    if let Some(text) = members.string("guest-visible-workarounds") {
        let name = "guest-visible-workarounds";
        let blob = visit.base64(name, &text)?;
        // QEMU's check is `!=`, its message says "exceeds max".
        if blob.len() != gosvw.len() {
            return Err(visit.err(
                Kind::InvalidLength,
                name,
                format!(
                    "parameter length of {} exceeds max of {}",
                    blob.len(),
                    gosvw.len()
                ),
            ));
        }
        gosvw.copy_from_slice(&blob);
    }

    let mut id_block = None;
    if let Some(text) = members.string("id-block") {
        let blob = visit.base64("id-block", &text)?;
        let block: [u8; ID_BLOCK_LEN] = blob.as_slice().try_into().map_err(|_| {
            visit.err(
                Kind::InvalidLength,
                "id-block",
                format!(
                    "parameter length of {} not equal to {ID_BLOCK_LEN}",
                    blob.len()
                ),
            )
        })?;
        id_block = Some(block);
    }

    let mut id_auth = None;
    if let Some(text) = members.string("id-auth") {
        let blob = visit.base64("id-auth", &text)?;
        let mut auth = Box::new([0u8; ID_AUTH_LEN]);
        let Some(dest) = auth.get_mut(..blob.len()) else {
            return Err(visit.err(
                Kind::InvalidLength,
                "id-auth",
                format!(
                    "parameter length:ID_AUTH {} exceeds max of {ID_AUTH_LEN}",
                    blob.len()
                ),
            ));
        };
        dest.copy_from_slice(&blob);
        id_auth = Some(auth);
    }

    let mut host_data = [0u8; 32];
    if let Some(text) = members.string("host-data") {
        let blob = visit.base64("host-data", &text)?;
        if blob.len() != host_data.len() {
            return Err(visit.err(
                Kind::InvalidLength,
                "host-data",
                format!(
                    "parameter length of {} not equal to {}",
                    blob.len(),
                    host_data.len()
                ),
            ));
        }
        host_data.copy_from_slice(&blob);
    }

    Ok(SevSnpGuestConfig {
        common,
        policy: SnpPolicy::from_raw(policy),
        guest_visible_workarounds: gosvw,
        id_block,
        id_auth,
        author_key_enabled: members.boolean("author-key-enabled"),
        vcek_disabled: members.boolean("vcek-disabled"),
        host_data,
        certs_path: members.string("certs-path").map(PathBuf::from),
    })
}

/// Maps a number error of a `uint` option (QemuOpts `NUMBER`) to QEMU's
/// messages.
pub(crate) fn number_message(name: &str, value: &str, err: NumError) -> String {
    match err {
        NumError::Range => format!(
            "Value '{}' is too large for parameter '{}'",
            excerpt(value),
            excerpt(name)
        ),
        NumError::Invalid => format!("Parameter '{}' expects a number", excerpt(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(pairs: &[(&str, &str)]) -> Vec<(String, PropValue)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), PropValue::Text((*v).to_owned())))
            .collect()
    }

    #[test]
    fn ids() {
        assert!(id_wellformed("sev0"));
        assert!(id_wellformed("a-b.c_d"));
        assert!(!id_wellformed("0sev"));
        assert!(!id_wellformed(""));
        assert!(!id_wellformed("a b"));
        assert!(!id_wellformed("a,b"));
    }

    #[test]
    fn visit_reports_missing_member_before_unknown_key() {
        // QEMU visits the schema members before it looks for leftovers.
        let err = build(ObjectInput {
            qom_type: Some(PropValue::Text("sev-guest".into())),
            id: Some(PropValue::Text("sev0".into())),
            props: text(&[("bogus", "1")]),
        })
        .unwrap_err();
        assert_eq!(err.kind(), Kind::MissingParameter);
        assert_eq!(err.property(), Some("reduced-phys-bits"));
    }

    #[test]
    fn last_value_wins_named_fields_apply_in_order() {
        let obj = build(ObjectInput {
            qom_type: Some(PropValue::Text("sev-guest".into())),
            id: Some(PropValue::Text("sev0".into())),
            props: text(&[
                ("reduced-phys-bits", "1"),
                ("policy.es", "on"),
                ("policy", "0x0"),
                ("policy", "0x2"),
                ("policy.es", "off"),
                ("policy.nodbg", "on"),
            ]),
        })
        .unwrap();
        let ConfidentialGuest::Sev(sev) = obj.guest else {
            panic!()
        };
        assert_eq!(sev.policy.raw(), GuestPolicy::NOKS | GuestPolicy::NODBG);
    }

    #[test]
    fn typed_values() {
        let obj = build(ObjectInput {
            qom_type: Some(PropValue::Text("sev-snp-guest".into())),
            id: Some(PropValue::Text("s".into())),
            props: vec![
                ("reduced-phys-bits".into(), PropValue::Int(1)),
                ("cbitpos".into(), PropValue::Text("0x33".into())),
                ("kernel-hashes".into(), PropValue::Bool(true)),
                (
                    "policy".into(),
                    PropValue::Table(vec![("debug".into(), PropValue::Bool(true))]),
                ),
            ],
        })
        .unwrap();
        let ConfidentialGuest::Snp(snp) = obj.guest else {
            panic!()
        };
        assert_eq!(snp.common.cbitpos, Some(51));
        assert!(snp.common.kernel_hashes);
        assert_eq!(snp.policy.raw(), SnpPolicy::DEFAULT_RAW | SnpPolicy::DEBUG);

        let err = build(ObjectInput {
            qom_type: Some(PropValue::Text("sev-guest".into())),
            id: Some(PropValue::Text("s".into())),
            props: vec![
                ("reduced-phys-bits".into(), PropValue::Int(1)),
                ("sev-device".into(), PropValue::Int(5)),
            ],
        })
        .unwrap_err();
        assert_eq!(err.kind(), Kind::InvalidType);
        assert_eq!(
            err.message(),
            "Invalid parameter type for 'sev-device', expected: string"
        );
        let err = build(ObjectInput {
            qom_type: Some(PropValue::Text("sev-guest".into())),
            id: Some(PropValue::Text("s".into())),
            props: vec![("reduced-phys-bits".into(), PropValue::Int(-1))],
        })
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Parameter 'reduced-phys-bits' expects a uint64 value"
        );
    }
}
