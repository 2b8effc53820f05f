//! The two `key=value,...` dialects of QEMU's command line.
//!
//! * **QemuOpts** (`-object`, `-m`, the `unix:` chardev of `-qmp`): the
//!   first element may omit its key (the *implied* key); a value runs to
//!   the next single comma and `,,` stands for a literal comma; an element
//!   without `=` is a flag, `foo` meaning `foo=on` and `nofoo` meaning
//!   `foo=off`; `id=` is taken out of the list.
//! * **keyval** (`-machine`, `-smp`): keys must be QAPI names (dotted
//!   paths allowed); every element but an implied first one needs `=`; the
//!   implied value ends at the first `,` or `=` (no `,,` escape there).

use sev_os::excerpt;

/// A parsed QemuOpts string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Opts {
    /// The first `id=` value (QEMU's `opts_parse_id`), if any.
    pub id: Option<String>,
    /// Every other element, in order, flags already turned into `on`/`off`.
    pub items: Vec<(String, String)>,
}

/// `help` and `?`, which ask QEMU to print help instead of parsing.
pub(crate) fn is_help(name: &str) -> bool {
    name == "help" || name == "?"
}

/// Reads a value up to the next single comma; `,,` is a literal comma.
/// Returns the value and the rest (starting at the ending comma, or empty).
fn opt_value(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut rest = s;
    loop {
        match rest.find(',') {
            None => {
                value.push_str(rest);
                return (value, "");
            }
            Some(i) => {
                value.push_str(rest.get(..i).unwrap_or_default());
                let after = rest.get(i + 1..).unwrap_or_default();
                if let Some(next) = after.strip_prefix(',') {
                    value.push(',');
                    rest = next;
                } else {
                    return (value, rest.get(i..).unwrap_or_default());
                }
            }
        }
    }
}

/// QEMU's `get_opt_name_value`: one element of a QemuOpts string.
/// Returns `(name, value, rest)`.
fn opt_name_value<'a>(params: &'a str, implied: Option<&str>) -> (String, String, &'a str) {
    let len = params.find(['=', ',']).unwrap_or(params.len());
    let (name, value, rest) = if params.as_bytes().get(len) == Some(&b'=') {
        let name = params.get(..len).unwrap_or_default().to_owned();
        let (value, rest) = opt_value(params.get(len + 1..).unwrap_or_default());
        (name, value, rest)
    } else if let Some(implied) = implied {
        let (value, rest) = opt_value(params);
        (implied.to_owned(), value, rest)
    } else {
        let flag = params.get(..len).unwrap_or_default();
        let rest = params.get(len..).unwrap_or_default();
        match flag.strip_prefix("no") {
            Some(name) => (name.to_owned(), "off".to_owned(), rest),
            None => (flag.to_owned(), "on".to_owned(), rest),
        }
    };
    let rest = rest.strip_prefix(',').unwrap_or(rest);
    (name, value, rest)
}

/// Parses a QemuOpts string (`qemu_opts_parse` with `permit_abbrev` when
/// `implied` is given). Never fails: QemuOpts has no syntax errors, only
/// unknown names, which the caller checks.
pub(crate) fn qemu_opts(params: &str, implied: Option<&str>) -> Opts {
    // The id is found by a separate pass without the implied key, exactly
    // as QEMU's opts_parse_id does.
    let mut id = None;
    let mut rest = params;
    while !rest.is_empty() {
        let (name, value, next) = opt_name_value(rest, None);
        if name == "id" {
            id = Some(value);
            break;
        }
        rest = next;
    }
    let mut items = Vec::new();
    let mut first = implied;
    let mut rest = params;
    while !rest.is_empty() {
        let (name, value, next) = opt_name_value(rest, first);
        first = None;
        rest = next;
        if name != "id" {
            items.push((name, value));
        }
    }
    Opts { id, items }
}

/// QEMU's `parse_qapi_name(s, false)`: the length of the QAPI name at the
/// start of `s` (letters, digits, `-`, `_`, starting with a letter; or a
/// downstream `__RFQDN_` prefix), `None` if there is none.
fn qapi_name_len(s: &[u8]) -> Option<usize> {
    let mut p = 0;
    if s.first() == Some(&b'_') {
        p = 1;
        if s.get(p) != Some(&b'_') {
            return None;
        }
        p += 1;
        while s
            .get(p)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        {
            p += 1;
        }
        if s.get(p) != Some(&b'_') {
            return None;
        }
        p += 1;
    }
    if !s.get(p).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    p += 1;
    while s
        .get(p)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    {
        p += 1;
    }
    Some(p)
}

/// Why a keyval string did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyvalError {
    /// A syntax error, with QEMU's message.
    Syntax(String),
    /// `help` or `?`.
    Help,
}

/// Parses a keyval string (`keyval_parse`), returning `(key, value)` pairs
/// in order; dotted keys stay dotted (`smp.cpus`). A repeated key is kept
/// twice; the caller lets the last one win, as QEMU does.
pub(crate) fn keyval(
    params: &str,
    implied: Option<&str>,
) -> Result<Vec<(String, String)>, KeyvalError> {
    let mut out = Vec::new();
    let mut implied = implied;
    let mut s = params;
    while !s.is_empty() {
        let bytes = s.as_bytes();
        let len = s.find(['=', ',']).unwrap_or(s.len());
        if len > 0 && bytes.get(len) != Some(&b'=') {
            let word = s.get(..len).unwrap_or_default();
            if is_help(word) {
                return Err(KeyvalError::Help);
            }
            if let Some(key) = implied {
                out.push((key.to_owned(), word.to_owned()));
                let rest = s.get(len..).unwrap_or_default();
                s = rest.strip_prefix(',').unwrap_or(rest);
                implied = None;
                continue;
            }
        }
        implied = None;
        let key = s.get(..len).unwrap_or_default();
        // Every dot-separated fragment must be a QAPI name (or, after the
        // first, a list index).
        let mut pos = 0;
        loop {
            let frag = bytes.get(pos..).unwrap_or_default();
            let flen = if pos > 0 && frag.first().is_some_and(u8::is_ascii_digit) {
                frag.iter().take_while(|c| c.is_ascii_digit()).count()
            } else {
                qapi_name_len(frag).unwrap_or(0)
            };
            let frag_end = pos + flen;
            if flen == 0 || (frag_end < len && bytes.get(frag_end) != Some(&b'.')) {
                return Err(KeyvalError::Syntax(format!(
                    "Invalid parameter '{}'",
                    excerpt(key)
                )));
            }
            if flen >= 128 {
                let whole = pos == 0 && frag_end == len;
                let fragment =
                    core::str::from_utf8(frag.get(..flen).unwrap_or_default()).unwrap_or_default();
                return Err(KeyvalError::Syntax(format!(
                    "Parameter{} '{}' is too long",
                    if whole { "" } else { " fragment" },
                    excerpt(fragment)
                )));
            }
            if frag_end >= len {
                break;
            }
            pos = frag_end + 1;
        }
        if bytes.get(len) != Some(&b'=') {
            return Err(KeyvalError::Syntax(format!(
                "Expected '=' after parameter '{}'",
                excerpt(key)
            )));
        }
        let (value, rest) = opt_value(s.get(len + 1..).unwrap_or_default());
        out.push((key.to_owned(), value));
        s = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(out)
}

/// Escapes a QemuOpts/keyval value: every comma doubled.
pub(crate) fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(o: &Opts) -> Vec<(&str, &str)> {
        o.items
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn qemu_opts_implied_flags_and_commas() {
        let o = qemu_opts(
            "sev-guest,id=sev0,policy=0x1,kernel-hashes,nofoo",
            Some("qom-type"),
        );
        assert_eq!(o.id.as_deref(), Some("sev0"));
        assert_eq!(
            items(&o),
            [
                ("qom-type", "sev-guest"),
                ("policy", "0x1"),
                ("kernel-hashes", "on"),
                ("foo", "off"),
            ]
        );
        let o = qemu_opts("x,dh-cert-file=/a,,b,,,,c,session-file=d", Some("qom-type"));
        assert_eq!(
            items(&o),
            [
                ("qom-type", "x"),
                ("dh-cert-file", "/a,b,,c"),
                ("session-file", "d")
            ]
        );
        // The implied value keeps escaped commas too.
        let o = qemu_opts("/tmp/a,,b,server=on", Some("path"));
        assert_eq!(items(&o), [("path", "/tmp/a,b"), ("server", "on")]);
        // Values may contain '='; a trailing comma is harmless.
        let o = qemu_opts("size=1,x=a=b,", None);
        assert_eq!(items(&o), [("size", "1"), ("x", "a=b")]);
        // The first id wins.
        assert_eq!(
            qemu_opts("t,id=a,id=b", Some("qom-type")).id.as_deref(),
            Some("a")
        );
        // An empty element is a flag with an empty name.
        assert_eq!(items(&qemu_opts("a=1,,", None)), [("a", "1,")]);
        assert_eq!(items(&qemu_opts(",a=1", None)), [("", "on"), ("a", "1")]);
    }

    #[test]
    fn keyval_rules() {
        let kv = keyval("q35,smm=off,confidential-guest-support=sev0", Some("type")).unwrap();
        assert_eq!(kv[0], ("type".to_owned(), "q35".to_owned()));
        assert_eq!(kv[1], ("smm".to_owned(), "off".to_owned()));
        assert_eq!(kv.len(), 3);
        assert_eq!(
            keyval("type=q35,kernel=/a,,b", Some("type")).unwrap()[1],
            ("kernel".to_owned(), "/a,b".to_owned())
        );
        assert_eq!(
            keyval("q35,smm", Some("type")),
            Err(KeyvalError::Syntax(
                "Expected '=' after parameter 'smm'".into()
            ))
        );
        assert_eq!(
            keyval("q35,,smm=on", Some("type")),
            Err(KeyvalError::Syntax("Invalid parameter ''".into()))
        );
        assert_eq!(
            keyval("1x=2", None),
            Err(KeyvalError::Syntax("Invalid parameter '1x'".into()))
        );
        assert_eq!(
            keyval("a.b=1,smp.0=2", None).unwrap(),
            [
                ("a.b".to_owned(), "1".to_owned()),
                ("smp.0".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(keyval("help", Some("type")), Err(KeyvalError::Help));
        // QEMU quotes the whole name; sevkit an excerpt.
        let long = "a".repeat(128);
        assert_eq!(
            keyval(&format!("{long}=1"), None),
            Err(KeyvalError::Syntax(format!(
                "Parameter '{}…' is too long",
                &long[..sev_os::EXCERPT_CHARS - 1]
            )))
        );
        assert_eq!(keyval("", Some("type")).unwrap(), []);
    }
}
