//! The TOML front end: the document is turned into the same option and
//! property lists the command line gives, then checked by the same code.

use std::path::PathBuf;

use sev_os::{excerpt, excerpt_at};
use toml::Value;

use super::cmdline::memory_opts;
use super::draft::{Draft, TOML_NAMES};
use super::error::{ConfigError, ConfigErrorKind as Kind, Origin};
use super::object::{self, ObjectInput, PropValue};
use super::VmConfig;
use crate::qemu::lex;

/// A TOML value's type name, for messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Boolean(_) => "boolean",
        Value::Datetime(_) => "datetime",
        Value::Array(_) => "array",
        Value::Table(_) => "table",
    }
}

/// The error for a value of the wrong type.
fn type_error(origin: Origin, key: &str, expected: &str, value: &Value) -> ConfigError {
    ConfigError::new(
        Kind::InvalidType,
        origin,
        Some(key),
        format!(
            "Invalid parameter type for '{key}', expected: {expected} (got {})",
            type_name(value)
        ),
    )
}

/// A top-level string.
fn string(key: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(type_error(Origin::Toml, key, "string", other)),
    }
}

/// A scalar as keyval text (`-machine`, `-smp` take strings only):
/// booleans become `on`/`off`, integers decimal.
fn keyval_text(origin: &Origin, key: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(n) => Ok(n.to_string()),
        Value::Boolean(b) => Ok(if *b { "on" } else { "off" }.to_owned()),
        other => Err(type_error(origin.clone(), key, "string", other)),
    }
}

/// A TOML value as a property value.
fn prop_value(value: &Value) -> PropValue {
    match value {
        Value::String(s) => PropValue::Text(s.clone()),
        Value::Integer(n) => PropValue::Int(i128::from(*n)),
        Value::Boolean(b) => PropValue::Bool(*b),
        Value::Table(t) => {
            PropValue::Table(t.iter().map(|(k, v)| (k.clone(), prop_value(v))).collect())
        }
        other => PropValue::Other(type_name(other)),
    }
}

/// A TOML syntax error: where (line and column, 1-based), the parser's
/// message, and an [`excerpt_at`] of the line with a caret under the
/// position. (The parser's own rendering quotes the whole line: a 100 MB
/// one-line file would make a 100 MB message.)
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return ConfigError::new(Kind::Syntax, Origin::Toml, None, excerpt(message));
    };
    // The span is a byte offset at a character boundary; stay safe anyway.
    let mut at = span.start.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let (before, after) = text.split_at(at);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = at + after.find('\n').unwrap_or(after.len());
    let line = text[line_start..line_end].trim_end_matches('\r');
    let line_number = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = text[line_start..at].chars().count();
    let (shown, caret) = excerpt_at(line, column);
    ConfigError::new(
        Kind::Syntax,
        Origin::Toml,
        None,
        format!(
            "parse error at line {line_number}, column {}: {message}\n    {shown}\n    {}^",
            column + 1,
            " ".repeat(caret)
        ),
    )
}

/// Parses the TOML form.
pub(crate) fn parse(text: &str) -> Result<VmConfig, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| syntax_error(text, &e))?;
    let mut draft = Draft::new(TOML_NAMES);

    // Objects first, so the machine can reference them whatever the order.
    if let Some(objects) = table.get("object") {
        add_objects(&mut draft, objects)?;
    }

    for (key, value) in &table {
        match key.as_str() {
            "object" => {}
            "bios" => draft.machine.push(("firmware".into(), string(key, value)?)),
            "kernel" | "initrd" | "append" => {
                draft.machine.push((key.clone(), string(key, value)?));
            }
            "cpu" => draft.cpu = Some(string(key, value)?),
            "paused" => match value {
                Value::Boolean(b) => draft.start_paused = *b,
                other => return Err(type_error(Origin::Toml, key, "boolean", other)),
            },
            "qmp" => {
                let path = string(key, value)?;
                if path.is_empty() {
                    return Err(ConfigError::new(
                        Kind::InvalidValue,
                        Origin::Option("qmp".into()),
                        Some("path"),
                        "the socket path is empty",
                    ));
                }
                draft.qmp = Some(PathBuf::from(path));
            }
            "memory" => {
                let text = match value {
                    Value::Integer(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    other => return Err(type_error(Origin::Toml, key, "string or integer", other)),
                };
                draft.memory.extend(memory_opts("memory", &text)?);
            }
            "smp" => add_smp(&mut draft, value)?,
            "machine" => {
                let Value::Table(t) = value else {
                    return Err(type_error(Origin::Toml, key, "table", value));
                };
                let origin = Origin::Option(TOML_NAMES.machine.into());
                for (k, v) in t {
                    draft.machine.push((k.clone(), keyval_text(&origin, k, v)?));
                }
            }
            other => {
                return Err(ConfigError::new(
                    Kind::InvalidParameter,
                    Origin::Toml,
                    Some(other),
                    format!("unknown key '{}'", excerpt(other)),
                ))
            }
        }
    }
    draft.finish()
}

/// The `[[object]]` array.
fn add_objects(draft: &mut Draft, objects: &Value) -> Result<(), ConfigError> {
    let expected = "array of tables ([[object]])";
    let Value::Array(objects) = objects else {
        return Err(type_error(Origin::Toml, "object", expected, objects));
    };
    for value in objects {
        let Value::Table(t) = value else {
            return Err(type_error(Origin::Toml, "object", expected, value));
        };
        let mut input = ObjectInput::default();
        for (key, value) in t {
            let v = prop_value(value);
            match key.as_str() {
                "qom-type" => input.qom_type = Some(v),
                "id" => input.id = Some(v),
                _ => input.props.push((key.clone(), v)),
            }
        }
        draft.add_object(object::build(input)?)?;
    }
    Ok(())
}

/// `smp`: an integer (cpus), a `-smp` string or a table of `-smp` keys.
fn add_smp(draft: &mut Draft, value: &Value) -> Result<(), ConfigError> {
    let origin = Origin::Option("smp".into());
    match value {
        Value::Integer(n) => draft.smp.push(("cpus".into(), n.to_string())),
        Value::String(s) => {
            let items = lex::keyval(s, Some("cpus")).map_err(|e| match e {
                lex::KeyvalError::Syntax(m) => {
                    ConfigError::new(Kind::Syntax, origin.clone(), None, m)
                }
                lex::KeyvalError::Help => ConfigError::new(
                    Kind::Unsupported,
                    origin.clone(),
                    None,
                    "help output is not supported by sevkit",
                ),
            })?;
            draft.smp.extend(items);
        }
        Value::Table(t) => {
            for (k, v) in t {
                draft.smp.push((k.clone(), keyval_text(&origin, k, v)?));
            }
        }
        other => {
            return Err(type_error(
                Origin::Toml,
                "smp",
                "integer, string or table",
                other,
            ))
        }
    }
    Ok(())
}
