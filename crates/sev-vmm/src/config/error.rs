//! [`ConfigError`]: what is wrong, where (option, object, property), and
//! QEMU's own message for it.

use core::fmt;

use sev_os::excerpt;

/// Which rule a configuration broke.
///
/// The kinds group QEMU's messages; the message text itself is in
/// [`ConfigError::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// An argument starting with `-` that names no option
    /// (QEMU: `invalid option`).
    InvalidOption,
    /// An option that takes an argument is the last word
    /// (QEMU: `requires an argument`).
    MissingArgument,
    /// A word that is not an option (QEMU would open it as a disk image).
    UnexpectedArgument,
    /// A `key=value,...` string, a JSON `-object` or the TOML document is
    /// malformed (QEMU: `Expected '=' after parameter ...`).
    Syntax,
    /// A property the option or object does not have (QEMU:
    /// `Invalid parameter '...'`, `Property '...' not found`,
    /// `Parameter '...' is unexpected`).
    InvalidParameter,
    /// A mandatory property is absent (QEMU: `Parameter '...' is missing`).
    MissingParameter,
    /// A value that does not parse as the property's type, or is out of the
    /// type's range (QEMU: `Parameter '...' expects ...`,
    /// `Parameter '...' does not accept value '...'`).
    InvalidValue,
    /// A TOML or JSON value of the wrong type (QEMU:
    /// `Invalid parameter type for '...', expected: ...`).
    InvalidType,
    /// Base64 text with characters outside the base64 alphabet.
    InvalidBase64,
    /// A base64 blob that decodes to the wrong number of bytes.
    InvalidLength,
    /// Two objects with the same id.
    DuplicateId,
    /// `confidential-guest-support` (or `memory-encryption`) names no object.
    ObjectNotFound,
    /// A value outside the range QEMU allows (reduced-phys-bits, CPU
    /// topology, RAM size).
    OutOfRange,
    /// Properties that cannot be combined (`-append` without `-kernel`,
    /// SEV-SNP with `smm=on`, an ID block without ID authentication).
    Conflict,
    /// A guest policy the firmware (or KVM) rejects.
    InvalidPolicy,
    /// The host's C-bit position differs from the requested one.
    HostMismatch,
    /// The host lacks a feature the guest needs (SEV-ES, SEV-SNP).
    HostUnsupported,
    /// Valid for QEMU, but not something sevkit implements.
    Unsupported,
}

/// Where an error was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A command-line word that is not an option.
    Argument(String),
    /// A command-line option (`-m`, `-machine`, ...) or its TOML
    /// counterpart (`memory`, `[machine]`, ...), by the name the user wrote.
    Option(String),
    /// An `-object` (or a TOML `[[object]]` table), with its type and id
    /// when they are known.
    Object {
        /// The object's `qom-type` (`sev-guest`, `sev-snp-guest`).
        qom_type: Option<String>,
        /// The object's `id`.
        id: Option<String>,
    },
    /// The TOML document as a whole (syntax errors, top-level keys).
    Toml,
}

/// Names from the input are quoted as [`excerpt`]s: a 1 MB option name
/// or object id does not make a 1 MB message.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Argument(arg) => write!(f, "argument '{}'", excerpt(arg)),
            Self::Option(name) => f.write_str(&excerpt(name)),
            Self::Object { qom_type, id } => match (qom_type, id) {
                (Some(t), Some(i)) => write!(f, "{} '{}'", excerpt(t), excerpt(i)),
                (Some(t), None) => f.write_str(&excerpt(t)),
                (None, Some(i)) => write!(f, "-object '{}'", excerpt(i)),
                (None, None) => f.write_str("-object"),
            },
            Self::Toml => f.write_str("TOML"),
        }
    }
}

/// A configuration error: the rule broken ([`kind`](Self::kind)), where
/// ([`origin`](Self::origin), [`property`](Self::property)) and QEMU's
/// message for it, verbatim where QEMU has one ([`message`](Self::message)).
///
/// Every value quoted from the input (in the origin, the property and the
/// message) is an [`excerpt`]: at most [`sev_os::EXCERPT_CHARS`]
/// characters.
///
/// Displays as `origin: property 'name': message`, for example
/// `sev-snp-guest 'sev0': property 'host-data': parameter length of 31 not
/// equal to 32`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", property_part(.property.as_deref()))]
pub struct ConfigError {
    kind: ConfigErrorKind,
    origin: Origin,
    property: Option<String>,
    message: String,
}

/// `": property 'name'"` when there is a property.
fn property_part(property: Option<&str>) -> String {
    match property {
        Some(p) => format!(": property '{}'", excerpt(p)),
        None => String::new(),
    }
}

impl ConfigError {
    /// Builds an error.
    pub(crate) fn new(
        kind: ConfigErrorKind,
        origin: Origin,
        property: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            origin,
            property: property.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Which rule was broken.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The option or object at fault.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The property at fault, when the error concerns one.
    pub fn property(&self) -> Option<&str> {
        self.property.as_deref()
    }

    /// The message alone (QEMU's wording where QEMU has a message for the
    /// rule), without origin and property.
    pub fn message(&self) -> &str {
        &self.message
    }
}
