//! QAPI's input visitor, once for both front ends that read typed members:
//! a QMP command's `arguments` and an `-object`'s properties (command line,
//! JSON or TOML).
//!
//! A visit asks for the members by name in schema order (a missing
//! mandatory member or a badly typed one ends it), then reports the first
//! member nobody asked for. The two inputs differ only where QEMU's visitors
//! differ, which [`Dialect`] names: QMP's values are typed by JSON, an
//! object's text is parsed by the option rules. The messages are QEMU's;
//! input quoted in them is cut to an excerpt ([`sev_os::excerpt`]).

use sev_os::excerpt;

use super::json::Json;
use super::numbers::parse_uint_full;

/// Which of QEMU's visitors reads the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The QObject input visitor on a QMP command's `arguments`: a value's
    /// JSON type is its type (a string is never a number); `uint64` takes a
    /// negative `int64` modulo 2^64 "for backward compatibility"; a member
    /// left over is `Parameter 'x' is unexpected`.
    Qmp,
    /// The options visitor of `-object` (and sevkit's TOML and JSON forms of
    /// it): numbers and booleans are parsed from text by QemuOpts' rules
    /// (`parse_uint_full`, `on`/`off`/`yes`/`no`/...), a typed integer must
    /// be non-negative; a member left over is `Invalid parameter 'x'`.
    Options,
}

/// A member's value as the visitor sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// A string (command-line text, a JSON or TOML string).
    Str(&'a str),
    /// An integer (JSON and TOML integers fit).
    Int(i128),
    /// A boolean.
    Bool(bool),
    /// Any other value, by the name of its type (`number`, `null`,
    /// `array`, `object`, `datetime`, ...).
    Other(&'static str),
}

impl Value<'_> {
    /// The type's name as messages give it.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Self::Str(_) => "string",
            Self::Int(_) => "integer",
            Self::Bool(_) => "boolean",
            Self::Other(name) => name,
        }
    }
}

/// An input value the visitor can read.
pub(crate) trait Member {
    /// The value as the visitor sees it.
    fn value(&self) -> Value<'_>;
}

impl Member for Json {
    fn value(&self) -> Value<'_> {
        match self {
            Self::Str(s) => Value::Str(s),
            Self::Int(i) => Value::Int(i128::from(*i)),
            Self::UInt(u) => Value::Int(i128::from(*u)),
            Self::Bool(b) => Value::Bool(*b),
            Self::Double(_) => Value::Other("number"),
            Self::Null => Value::Other("null"),
            Self::List(_) => Value::Other("array"),
            Self::Dict(_) => Value::Other("object"),
        }
    }
}

/// Which rule a member broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VisitErrorKind {
    /// A mandatory member is absent.
    Missing,
    /// A value of the wrong type.
    InvalidType,
    /// A value of the right type that does not parse or is out of range.
    InvalidValue,
    /// A member the schema does not have.
    Unexpected,
}

/// A visit's error: the rule, the member, QEMU's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VisitError {
    /// The rule broken.
    pub(crate) kind: VisitErrorKind,
    /// The member (as given, not cut).
    pub(crate) member: String,
    /// QEMU's message.
    pub(crate) message: String,
}

impl VisitError {
    fn new(kind: VisitErrorKind, member: &str, message: String) -> Self {
        Self {
            kind,
            member: member.to_owned(),
            message,
        }
    }

    /// `Parameter 'name' is missing`.
    pub(crate) fn missing(name: &str) -> Self {
        let message = format!("Parameter '{}' is missing", excerpt(name));
        Self::new(VisitErrorKind::Missing, name, message)
    }

    /// `Invalid parameter type for 'name', expected: expected`.
    pub(crate) fn invalid_type(name: &str, expected: &str) -> Self {
        let message = format!(
            "Invalid parameter type for '{}', expected: {expected}",
            excerpt(name)
        );
        Self::new(VisitErrorKind::InvalidType, name, message)
    }

    /// `Parameter 'name' expects what`.
    pub(crate) fn expects(name: &str, what: &str) -> Self {
        let message = format!("Parameter '{}' expects {what}", excerpt(name));
        Self::new(VisitErrorKind::InvalidValue, name, message)
    }

    /// An enumeration's refusal: `Parameter 'name' does not accept value
    /// 'value'`.
    pub(crate) fn bad_enum(name: &str, value: &str) -> Self {
        let message = format!(
            "Parameter '{}' does not accept value '{}'",
            excerpt(name),
            excerpt(value)
        );
        Self::new(VisitErrorKind::InvalidValue, name, message)
    }

    /// A member left over, in `dialect`'s words.
    fn unexpected(dialect: Dialect, name: &str) -> Self {
        let message = match dialect {
            Dialect::Qmp => format!("Parameter '{}' is unexpected", excerpt(name)),
            Dialect::Options => format!("Invalid parameter '{}'", excerpt(name)),
        };
        Self::new(VisitErrorKind::Unexpected, name, message)
    }
}

/// QEMU's `qapi_bool_parse`: the words an option's boolean takes.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// One visit of a struct's members.
pub(crate) struct Visitor<'a, M> {
    dialect: Dialect,
    /// The members in the order leftovers are looked for (repeats allowed:
    /// the last one given wins).
    members: Vec<(&'a str, &'a M)>,
    visited: Vec<bool>,
}

impl<'a, M: Member> Visitor<'a, M> {
    /// A visit of `members` by `dialect`'s rules.
    pub(crate) fn new(
        dialect: Dialect,
        members: impl IntoIterator<Item = (&'a str, &'a M)>,
    ) -> Self {
        let members: Vec<_> = members.into_iter().collect();
        let visited = vec![false; members.len()];
        Self {
            dialect,
            members,
            visited,
        }
    }

    /// The member `name`, if given (the last one when it is given more than
    /// once; every occurrence counts as visited).
    pub(crate) fn optional(&mut self, name: &str) -> Option<&'a M> {
        let mut found = None;
        for ((key, value), visited) in self.members.iter().zip(&mut self.visited) {
            if *key == name {
                found = Some(*value);
                *visited = true;
            }
        }
        found
    }

    /// The mandatory member `name`.
    pub(crate) fn required(&mut self, name: &str) -> Result<&'a M, VisitError> {
        self.optional(name).ok_or_else(|| VisitError::missing(name))
    }

    /// Every member `pick` claims (with what it made of the name), in
    /// order, each marked visited.
    pub(crate) fn claim<P>(
        &mut self,
        pick: impl Fn(&str) -> Option<P>,
    ) -> Vec<(&'a str, P, &'a M)> {
        let mut out = Vec::new();
        for ((key, value), visited) in self.members.iter().zip(&mut self.visited) {
            if let Some(p) = pick(key) {
                out.push((*key, p, *value));
                *visited = true;
            }
        }
        out
    }

    /// `visit_check_struct`: the first member nobody asked for is an error.
    pub(crate) fn finish(&self) -> Result<(), VisitError> {
        match self
            .members
            .iter()
            .zip(&self.visited)
            .find(|(_, visited)| !**visited)
        {
            Some(((key, _), _)) => Err(VisitError::unexpected(self.dialect, key)),
            None => Ok(()),
        }
    }

    /// QAPI `str`.
    #[allow(clippy::unused_self)] // every read has the same shape, whatever the dialect
    pub(crate) fn string(&self, name: &str, member: &M) -> Result<String, VisitError> {
        match member.value() {
            Value::Str(s) => Ok(s.to_owned()),
            _ => Err(VisitError::invalid_type(name, "string")),
        }
    }

    /// QAPI `int`: an integer that fits `int64_t` (no option has one: a
    /// string is never an `int` here).
    #[allow(clippy::unused_self)] // every read has the same shape, whatever the dialect
    pub(crate) fn int(&self, name: &str, member: &M) -> Result<i64, VisitError> {
        match member.value() {
            Value::Int(i) => {
                i64::try_from(i).map_err(|_| VisitError::invalid_type(name, "integer"))
            }
            _ => Err(VisitError::invalid_type(name, "integer")),
        }
    }

    /// QAPI `uint64`.
    pub(crate) fn uint64(&self, name: &str, member: &M) -> Result<u64, VisitError> {
        match (self.dialect, member.value()) {
            (Dialect::Qmp, Value::Int(i)) => u64::try_from(i)
                .ok()
                .or_else(|| i64::try_from(i).ok().map(i64::cast_unsigned))
                .ok_or_else(|| VisitError::expects(name, "uint64")),
            (Dialect::Qmp, _) => Err(VisitError::expects(name, "uint64")),
            (Dialect::Options, Value::Str(s)) => {
                parse_uint_full(s).map_err(|_| VisitError::expects(name, "a uint64 value"))
            }
            (Dialect::Options, Value::Int(i)) => {
                u64::try_from(i).map_err(|_| VisitError::expects(name, "a uint64 value"))
            }
            (Dialect::Options, _) => Err(VisitError::invalid_type(name, "integer")),
        }
    }

    /// QAPI's narrower unsigned types (`uint32`: `max` `u32::MAX`,
    /// `type_name` `uint32_t`): a `uint64` no greater than `max`.
    pub(crate) fn uint(
        &self,
        name: &str,
        member: &M,
        max: u64,
        type_name: &str,
    ) -> Result<u64, VisitError> {
        let v = self.uint64(name, member)?;
        if v > max {
            return Err(VisitError::expects(name, type_name));
        }
        Ok(v)
    }

    /// QAPI `uint32`.
    pub(crate) fn uint32(&self, name: &str, member: &M) -> Result<u32, VisitError> {
        let v = self.uint(name, member, u64::from(u32::MAX), "uint32_t")?;
        u32::try_from(v).map_err(|_| VisitError::expects(name, "uint32_t"))
    }

    /// QAPI `bool`.
    pub(crate) fn boolean(&self, name: &str, member: &M) -> Result<bool, VisitError> {
        match (self.dialect, member.value()) {
            (_, Value::Bool(b)) => Ok(b),
            (Dialect::Options, Value::Str(s)) => {
                parse_bool(s).ok_or_else(|| VisitError::expects(name, "'on' or 'off'"))
            }
            _ => Err(VisitError::invalid_type(name, "boolean")),
        }
    }

    /// A QAPI enumeration: a string `parse` knows.
    #[allow(clippy::unused_self)] // every read has the same shape, whatever the dialect
    pub(crate) fn enumeration<T>(
        &self,
        name: &str,
        member: &M,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, VisitError> {
        match member.value() {
            Value::Str(s) => parse(s).ok_or_else(|| VisitError::bad_enum(name, s)),
            _ => Err(VisitError::invalid_type(name, "string")),
        }
    }
}

/// Defines a QAPI enumeration: the Rust enum, its values' QEMU names
/// written once (`as_str`), and serde's (de)serialization by those names.
macro_rules! qapi_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $wire:literal,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )*
        }

        impl $name {
            /// QEMU's name for the value (its QAPI wire form).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                match name.as_str() {
                    $($wire => Ok(Self::$variant),)*
                    other => Err(<D::Error as ::serde::de::Error>::unknown_variant(
                        other,
                        &[$($wire),*],
                    )),
                }
            }
        }
    };
}
pub(crate) use qapi_enum;

#[cfg(test)]
mod tests {
    use super::*;

    impl Member for Value<'_> {
        fn value(&self) -> Value<'_> {
            *self
        }
    }

    fn visit<'a>(dialect: Dialect, members: &'a [(&'a str, Value<'a>)]) -> Visitor<'a, Value<'a>> {
        Visitor::new(dialect, members.iter().map(|(k, v)| (*k, v)))
    }

    #[test]
    fn last_value_wins_and_leftovers_are_reported_in_order() {
        let members = [
            ("a", Value::Int(1)),
            ("x", Value::Int(2)),
            ("a", Value::Int(3)),
            ("y", Value::Int(4)),
        ];
        let mut v = visit(Dialect::Options, &members);
        assert_eq!(v.optional("a"), Some(&Value::Int(3)));
        assert_eq!(v.optional("b"), None);
        assert_eq!(
            v.required("b").unwrap_err().message,
            "Parameter 'b' is missing"
        );
        let e = v.finish().unwrap_err();
        assert_eq!(
            (e.kind, e.member.as_str()),
            (VisitErrorKind::Unexpected, "x")
        );
        assert_eq!(e.message, "Invalid parameter 'x'");
        let mut v = visit(Dialect::Qmp, &members);
        let claimed = v.claim(|k| (k != "y").then_some(k.len()));
        assert_eq!(claimed.len(), 3);
        assert_eq!(
            v.finish().unwrap_err().message,
            "Parameter 'y' is unexpected"
        );
    }

    qapi_enum! {
        /// A test enumeration.
        enum Sample {
            /// One.
            One = "one",
            /// Two words.
            TwoWords = "two-words",
        }
    }

    #[test]
    fn enumerations_are_named_once() {
        assert_eq!(Sample::TwoWords.as_str(), "two-words");
        assert_eq!(serde_json::to_value(Sample::One).unwrap(), "one");
        let back: Sample = serde_json::from_value("two-words".into()).unwrap();
        assert_eq!(back, Sample::TwoWords);
        let err = serde_json::from_value::<Sample>("three".into()).unwrap_err();
        assert!(err.to_string().contains("unknown variant `three`"), "{err}");
    }

    #[test]
    fn dialects_differ_where_qemus_visitors_do() {
        let qmp = Visitor::<Value<'_>>::new(Dialect::Qmp, []);
        let opts = Visitor::<Value<'_>>::new(Dialect::Options, []);
        let msg = |r: Result<u64, VisitError>| r.unwrap_err().message;
        // QMP: negative int64 wraps, strings are not numbers.
        assert_eq!(qmp.uint64("g", &Value::Int(-1)), Ok(u64::MAX));
        assert_eq!(
            msg(qmp.uint64("g", &Value::Str("1"))),
            "Parameter 'g' expects uint64"
        );
        assert_eq!(
            msg(qmp.uint64("g", &Value::Other("number"))),
            "Parameter 'g' expects uint64"
        );
        // Options: text is parsed, negative integers are refused.
        assert_eq!(opts.uint64("g", &Value::Str("0x33")), Ok(51));
        assert_eq!(
            msg(opts.uint64("g", &Value::Int(-1))),
            "Parameter 'g' expects a uint64 value"
        );
        assert_eq!(
            msg(opts.uint64("g", &Value::Bool(true))),
            "Invalid parameter type for 'g', expected: integer"
        );
        // Both: the narrower types' range.
        for v in [&qmp, &opts] {
            assert_eq!(
                v.uint32("c", &Value::Int(1 << 32)).unwrap_err().message,
                "Parameter 'c' expects uint32_t"
            );
            assert_eq!(v.boolean("b", &Value::Bool(true)), Ok(true));
        }
        assert_eq!(opts.boolean("b", &Value::Str("yes")), Ok(true));
        assert_eq!(
            opts.boolean("b", &Value::Str("maybe")).unwrap_err().message,
            "Parameter 'b' expects 'on' or 'off'"
        );
        assert_eq!(
            qmp.boolean("b", &Value::Str("on")).unwrap_err().message,
            "Invalid parameter type for 'b', expected: boolean"
        );
        assert_eq!(
            qmp.int("i", &Value::Int(1 << 63)).unwrap_err().message,
            "Invalid parameter type for 'i', expected: integer"
        );
        assert_eq!(
            qmp.enumeration("e", &Value::Str("z"), |s| (s == "a").then_some(()))
                .unwrap_err()
                .message,
            "Parameter 'e' does not accept value 'z'"
        );
    }
}
