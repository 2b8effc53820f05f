//! QEMU's JSON dialect, as the QMP monitor reads and writes it and as
//! `-object '{...}'` is read ([`parse_one`]).
//!
//! * [`JsonStreamer`] splits the byte stream a client sends into messages the
//!   way QEMU's `json-lexer.c` / `json-streamer.c` / `json-parser.c` do: a
//!   DFA lexer with error recovery (a lexical error is reported as
//!   `JSON parse error, stray '<token>'`, then input is skipped up to a
//!   structural character or a control character), a streamer that hands a
//!   message to the parser as soon as its braces and brackets balance (or go
//!   negative), QEMU's limits (64 MiB of token text per message, 2 Mi tokens,
//!   nesting 1024) and the parser's messages (`JSON parse error, expecting
//!   value`, `... duplicate key`, ...). The dialect's extensions are kept:
//!   single-quoted strings, the `\'` escape; input is modified UTF-8
//!   (`"\xC0\x80"` is U+0000), Unicode noncharacters and lone surrogates are
//!   rejected.
//! * [`write`] formats a value like QEMU's `json-writer.c` in compact mode:
//!   `": "` and `", "` separators, ASCII only (`\uXXXX` with upper-case hex,
//!   surrogate pairs beyond the BMP), doubles as `%.17g`, and object members
//!   in the iteration order of QEMU's `QDict` (512 buckets by the tdb hash,
//!   newest first within a bucket). So a reply is byte for byte what QEMU
//!   sends for the same content.

use std::collections::HashMap;
use std::fmt::Write as _;

use sev_os::excerpt;

/// QEMU's `MAX_TOKEN_SIZE`: the most token text one message may have, and
/// the longest single token (64 MiB).
pub(crate) const MAX_TOKEN_SIZE: usize = 64 << 20;
/// QEMU's `MAX_TOKEN_COUNT`: the most tokens one message may have.
pub(crate) const MAX_TOKEN_COUNT: usize = 2 << 20;
/// QEMU's `MAX_NESTING`: the deepest nesting of objects and arrays.
pub(crate) const MAX_NESTING: i64 = 1 << 10;

/// A JSON value as QEMU's QObject holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `int64_t` (`QNUM_I64`).
    Int(i64),
    /// An integer beyond `INT64_MAX` that fits `uint64_t` (`QNUM_U64`).
    UInt(u64),
    /// Any other number (`QNUM_DOUBLE`).
    Double(f64),
    /// A string.
    Str(String),
    /// An array.
    List(Vec<Json>),
    /// An object.
    Dict(Dict),
}

impl Json {
    /// Builds a string value.
    pub(crate) fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    /// Serializes `value` with serde: object members in the order serde
    /// gives them (the declaration order: this crate's `serde_json` keeps
    /// insertion order, its `preserve_order` feature), which decides the
    /// order of members that share a `QDict` bucket.
    ///
    /// # Errors
    ///
    /// serde's, for a value JSON cannot hold (a map with non-string keys).
    pub(crate) fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, String> {
        serde_json::to_value(value)
            .map(|v| Self::from_serde(&v))
            .map_err(|e| e.to_string())
    }

    /// Converts a serde_json value (object members in its map order).
    pub(crate) fn from_serde(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Self::UInt(u)
                } else {
                    Self::Double(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Self::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Self::List(items.iter().map(Self::from_serde).collect())
            }
            serde_json::Value::Object(map) => {
                let mut dict = Dict::new();
                for (key, value) in map {
                    dict.put(key.clone(), Self::from_serde(value));
                }
                Self::Dict(dict)
            }
        }
    }
}

/// A JSON object in insertion order; [`Dict::iter`] walks it in QEMU's
/// `QDict` order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dict {
    entries: Vec<(String, Json)>,
    /// Key to position in `entries` (a message may have half a million
    /// members: lookups must not be linear).
    index: HashMap<String, usize>,
}

impl PartialEq for Dict {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Dict {
    /// An empty object.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces, in place, like `qdict_put_obj`) a member.
    pub(crate) fn put(&mut self, key: impl Into<String>, value: Json) {
        let key = key.into();
        if let Some(&i) = self.index.get(&key) {
            self.entries[i].1 = value;
        } else {
            self.index.insert(key.clone(), self.entries.len());
            self.entries.push((key, value));
        }
    }

    /// Builder form of [`Dict::put`].
    pub(crate) fn with(mut self, key: impl Into<String>, value: Json) -> Self {
        self.put(key, value);
        self
    }

    /// The member named `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Whether a member named `key` exists.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The members in QEMU's `QDict` iteration order, with their insertion
    /// index.
    pub(crate) fn iter_indexed(&self) -> impl Iterator<Item = (usize, &str, &Json)> {
        let mut order: Vec<(u32, usize)> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (qdict_bucket(k), i))
            .collect();
        // Buckets ascending; within a bucket the newest entry first
        // (QLIST_INSERT_HEAD).
        order.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        order.into_iter().map(|(_, i)| {
            let (k, v) = &self.entries[i];
            (i, k.as_str(), v)
        })
    }

    /// The members in QEMU's `QDict` iteration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.iter_indexed().map(|(_, k, v)| (k, v))
    }

    /// The members in insertion order.
    pub(crate) fn into_entries(self) -> Vec<(String, Json)> {
        self.entries
    }
}

/// QEMU's `tdb_hash(key) % QDICT_BUCKET_MAX` over the key's modified UTF-8.
pub(crate) fn qdict_bucket(key: &str) -> u32 {
    let mut bytes = Vec::with_capacity(key.len());
    for c in key.chars() {
        if c == '\0' {
            bytes.extend_from_slice(&[0xC0, 0x80]);
        } else {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    let mut value = 0x238F_13AFu32.wrapping_mul(bytes.len() as u32);
    for (i, &b) in bytes.iter().enumerate() {
        let shift = (i as u32).wrapping_mul(5) % 24;
        value = value.wrapping_add(u32::from(b) << shift);
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345) % 512
}

// ---------------------------------------------------------------------------
// Writer

/// Formats `value` like QEMU's compact JSON writer.
pub(crate) fn write(value: &Json) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Json) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Json::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Json::Double(d) => out.push_str(&format_g17(*d)),
        Json::Str(s) => write_str(out, s),
        Json::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Json::Dict(dict) => {
            out.push('{');
            for (i, (key, item)) in dict.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => {
                let mut cp = u32::from(c);
                if !is_valid_codepoint(cp) {
                    cp = 0xFFFD;
                }
                if cp > 0xFFFF {
                    let v = cp - 0x10000;
                    let _ = write!(
                        out,
                        "\\u{:04X}\\u{:04X}",
                        0xD800 + (v >> 10),
                        0xDC00 + (v & 0x3FF)
                    );
                } else if !(0x20..0x7F).contains(&cp) {
                    let _ = write!(out, "\\u{cp:04X}");
                } else {
                    out.push(c);
                }
            }
        }
    }
    out.push('"');
}

/// C's `printf("%.17g", v)` for finite `v`. QEMU prints non-finite doubles
/// as `inf` / `nan`, which is not JSON (a FIXME in json-writer.c); they are
/// written as `null` here.
pub(crate) fn format_g17(v: f64) -> String {
    if !v.is_finite() {
        return "null".to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // 17 significant digits, correctly rounded: d.dddddddddddddddde<exp>.
    let sci = format!("{:.16e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if !(-4..17).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let rest = rest.trim_end_matches('0');
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.unsigned_abs())
    } else if exp >= 0 {
        let split = (exp.unsigned_abs() as usize + 1).min(digits.len());
        let (int, frac) = digits.split_at(split);
        let frac = frac.trim_end_matches('0');
        let dot = if frac.is_empty() { "" } else { "." };
        format!("{sign}{int}{dot}{frac}")
    } else {
        let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
        let frac = digits.trim_end_matches('0');
        format!("{sign}0.{zeros}{frac}")
    }
}

// ---------------------------------------------------------------------------
// Modified UTF-8 (util/unicode.c)

fn is_valid_codepoint(cp: u32) -> bool {
    if cp > 0x0010_FFFF {
        return false;
    }
    if (0xFDD0..=0xFDEF).contains(&cp) || (cp & 0xFFFE) == 0xFFFE {
        return false;
    }
    !(0xD800..=0xDFFF).contains(&cp)
}

/// Decodes the modified UTF-8 sequence at the start of `s` (bytes past the
/// end read as NUL, like the C string's terminator): the code point (`None`
/// when invalid) and the length consumed (at least 1 for a non-empty `s`).
fn mod_utf8_codepoint(s: &[u8]) -> (Option<u32>, usize) {
    const MIN_CP: [u32; 5] = [0x80, 0x800, 0x10000, 0x20_0000, 0x400_0000];
    let Some(&first) = s.first() else {
        return (None, 0);
    };
    if first == 0 {
        return (None, 0);
    }
    if first < 0x80 {
        return (Some(u32::from(first)), 1);
    }
    if first >= 0xFE || first & 0x40 == 0 {
        return (None, 1);
    }
    let len = first.leading_ones() as usize;
    let mut cp = u32::from(first) & (0x7F >> len);
    for i in 1..len {
        let byte = s.get(i).copied().unwrap_or(0);
        if byte & 0xC0 != 0x80 {
            return (None, i);
        }
        cp = (cp << 6) | u32::from(byte & 0x3F);
    }
    let valid = is_valid_codepoint(cp) && (cp >= MIN_CP[len - 2] || (cp == 0 && len == 2));
    (valid.then_some(cp), len)
}

/// A C string's text: bytes up to the first NUL, decoded as QEMU's writer
/// decodes them (invalid sequences become U+FFFD).
fn c_string_lossy(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let mut rest = &bytes[..end];
    let mut out = String::with_capacity(rest.len());
    while !rest.is_empty() {
        let (cp, used) = mod_utf8_codepoint(rest);
        out.push(cp.and_then(char::from_u32).unwrap_or('\u{FFFD}'));
        rest = &rest[used.max(1).min(rest.len())..];
    }
    out
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Recovery,
    DqEscape,
    Dq,
    SqEscape,
    Sq,
    Zero,
    ExpDigits,
    ExpSign,
    ExpE,
    Mantissa,
    MantissaDigits,
    Digits,
    Sign,
    Keyword,
    Start,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Integer,
    Float,
    Keyword,
    String,
}

/// One step of the lexer's DFA.
enum Step {
    /// Consume the byte, go to the state.
    Go(Lex),
    /// Consume the byte, which completes a token.
    Emit(Tok),
    /// The token ended before this byte: emit it, then look at the byte
    /// again from the start state.
    EmitBefore(Tok),
    /// Consume the byte, which makes the token invalid.
    Error,
    /// Recovery is over: look at the byte again from the start state.
    Resync,
}

fn transition(state: Lex, ch: u8) -> Step {
    use Step::{Emit, EmitBefore, Error, Go, Resync};
    match state {
        Lex::Recovery => match ch {
            b'\t' => Go(Lex::Recovery),
            0..=0x1F | 0xFE | 0xFF | b'[' | b']' | b'{' | b'}' | b':' | b',' => Resync,
            _ => Go(Lex::Recovery),
        },
        Lex::DqEscape => match ch {
            0x20..=0xFD => Go(Lex::Dq),
            _ => Error,
        },
        Lex::Dq => match ch {
            b'\\' => Go(Lex::DqEscape),
            b'"' => Emit(Tok::String),
            0x20..=0xFD => Go(Lex::Dq),
            _ => Error,
        },
        Lex::SqEscape => match ch {
            0x20..=0xFD => Go(Lex::Sq),
            _ => Error,
        },
        Lex::Sq => match ch {
            b'\\' => Go(Lex::SqEscape),
            b'\'' => Emit(Tok::String),
            0x20..=0xFD => Go(Lex::Sq),
            _ => Error,
        },
        Lex::Zero => match ch {
            b'0'..=b'9' => Error,
            b'.' => Go(Lex::Mantissa),
            _ => EmitBefore(Tok::Integer),
        },
        Lex::ExpDigits => match ch {
            b'0'..=b'9' => Go(Lex::ExpDigits),
            _ => EmitBefore(Tok::Float),
        },
        Lex::ExpSign => match ch {
            b'0'..=b'9' => Go(Lex::ExpDigits),
            _ => Error,
        },
        Lex::ExpE => match ch {
            b'-' | b'+' => Go(Lex::ExpSign),
            b'0'..=b'9' => Go(Lex::ExpDigits),
            _ => Error,
        },
        Lex::MantissaDigits => match ch {
            b'0'..=b'9' => Go(Lex::MantissaDigits),
            b'e' | b'E' => Go(Lex::ExpE),
            _ => EmitBefore(Tok::Float),
        },
        Lex::Mantissa => match ch {
            b'0'..=b'9' => Go(Lex::MantissaDigits),
            _ => Error,
        },
        Lex::Digits => match ch {
            b'0'..=b'9' => Go(Lex::Digits),
            b'e' | b'E' => Go(Lex::ExpE),
            b'.' => Go(Lex::Mantissa),
            _ => EmitBefore(Tok::Integer),
        },
        Lex::Sign => match ch {
            b'0' => Go(Lex::Zero),
            b'1'..=b'9' => Go(Lex::Digits),
            _ => Error,
        },
        Lex::Keyword => match ch {
            b'a'..=b'z' => Go(Lex::Keyword),
            _ => EmitBefore(Tok::Keyword),
        },
        Lex::Start => match ch {
            b'"' => Go(Lex::Dq),
            b'\'' => Go(Lex::Sq),
            b'0' => Go(Lex::Zero),
            b'1'..=b'9' => Go(Lex::Digits),
            b'-' => Go(Lex::Sign),
            b'{' => Emit(Tok::LCurly),
            b'}' => Emit(Tok::RCurly),
            b'[' => Emit(Tok::LSquare),
            b']' => Emit(Tok::RSquare),
            b',' => Emit(Tok::Comma),
            b':' => Emit(Tok::Colon),
            b'a'..=b'z' => Go(Lex::Keyword),
            b' ' | b'\t' | b'\r' | b'\n' => Go(Lex::Start),
            _ => Error,
        },
    }
}

/// One message from the stream: a value, or the text of the
/// `GenericError` QEMU answers (parse errors carry no `id`).
pub(crate) type Message = Result<Json, String>;

#[derive(Debug, Clone, Copy)]
struct Token {
    tok: Tok,
    start: usize,
    len: usize,
}

/// QEMU's `JSONMessageParser`: feed it bytes, it yields messages.
#[derive(Debug)]
pub(crate) struct JsonStreamer {
    state: Lex,
    /// The token being lexed.
    token: Vec<u8>,
    /// Tokens of the message being collected.
    tokens: Vec<Token>,
    /// Text of the value tokens in `tokens`.
    arena: Vec<u8>,
    brace_count: i64,
    bracket_count: i64,
    token_size: usize,
}

impl Default for JsonStreamer {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonStreamer {
    /// A streamer at the start of input.
    pub(crate) fn new() -> Self {
        Self {
            state: Lex::Start,
            token: Vec::new(),
            tokens: Vec::new(),
            arena: Vec::new(),
            brace_count: 0,
            bracket_count: 0,
            token_size: 0,
        }
    }

    /// Lexes `bytes`, appending every completed message to `out`.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) {
        let mut i = 0;
        while i < bytes.len() {
            // Fast path: plain characters inside a string only extend the
            // token (the DFA stays in the same state), up to the size limit.
            let quote = match self.state {
                Lex::Dq => Some(b'"'),
                Lex::Sq => Some(b'\''),
                _ => None,
            };
            if let Some(quote) = quote {
                let room = MAX_TOKEN_SIZE + 1 - self.token.len();
                let run = bytes[i..]
                    .iter()
                    .take(room)
                    .take_while(|&&b| (0x20..=0xFD).contains(&b) && b != quote && b != b'\\')
                    .count();
                if run > 0 {
                    self.token.extend_from_slice(&bytes[i..i + run]);
                    i += run;
                    self.check_token_size(out);
                    continue;
                }
            }
            self.feed_byte(bytes[i], out);
            i += 1;
        }
    }

    fn feed_byte(&mut self, ch: u8, out: &mut Vec<Message>) {
        loop {
            match transition(self.state, ch) {
                Step::Go(next) => {
                    if matches!(next, Lex::Start | Lex::Recovery) {
                        self.token.clear();
                    } else {
                        self.token.push(ch);
                    }
                    self.state = next;
                    break;
                }
                Step::Emit(tok) => {
                    self.token.push(ch);
                    self.process_token(tok, out);
                    self.token.clear();
                    self.state = Lex::Start;
                    break;
                }
                Step::EmitBefore(tok) => {
                    self.process_token(tok, out);
                    self.token.clear();
                    self.state = Lex::Start;
                }
                Step::Error => {
                    self.token.push(ch);
                    let stray = c_string_lossy(&self.token);
                    self.emit(
                        Err(format!("JSON parse error, stray '{}'", excerpt(&stray))),
                        out,
                    );
                    self.token.clear();
                    self.state = Lex::Recovery;
                    break;
                }
                Step::Resync => {
                    self.token.clear();
                    self.state = Lex::Start;
                }
            }
        }
        self.check_token_size(out);
    }

    /// QEMU's `json_message_parser_flush`: the end of input ends the token
    /// being lexed (as a NUL byte would, without adding it to the token),
    /// then whatever tokens are left are parsed as one message.
    pub(crate) fn flush(&mut self, out: &mut Vec<Message>) {
        if !matches!(self.state, Lex::Start) {
            match transition(self.state, 0) {
                Step::Emit(tok) | Step::EmitBefore(tok) => self.process_token(tok, out),
                Step::Error => {
                    let stray = c_string_lossy(&self.token);
                    self.emit(
                        Err(format!("JSON parse error, stray '{}'", excerpt(&stray))),
                        out,
                    );
                }
                Step::Go(_) | Step::Resync => {}
            }
            self.token.clear();
            self.state = Lex::Start;
        }
        if !self.tokens.is_empty() {
            let message = Parser::new(&self.tokens, &self.arena).parse();
            self.emit(message, out);
        }
    }

    /// "Do not let a single token grow to an arbitrarily large size": QEMU
    /// hands the partial token to the streamer, whose size check always
    /// fails for it, and starts lexing afresh.
    fn check_token_size(&mut self, out: &mut Vec<Message>) {
        if self.token.len() > MAX_TOKEN_SIZE {
            self.emit(Err("JSON token size limit exceeded".to_owned()), out);
            self.token = Vec::new();
            self.state = Lex::Start;
        }
    }

    fn process_token(&mut self, tok: Tok, out: &mut Vec<Message>) {
        match tok {
            Tok::LCurly => self.brace_count += 1,
            Tok::RCurly => self.brace_count -= 1,
            Tok::LSquare => self.bracket_count += 1,
            Tok::RSquare => self.bracket_count -= 1,
            _ => {}
        }
        if self.token_size + self.token.len() + 1 > MAX_TOKEN_SIZE {
            self.emit(Err("JSON token size limit exceeded".to_owned()), out);
            return;
        }
        if self.tokens.len() + 1 > MAX_TOKEN_COUNT {
            self.emit(Err("JSON token count limit exceeded".to_owned()), out);
            return;
        }
        if self.bracket_count + self.brace_count > MAX_NESTING {
            self.emit(Err("JSON nesting depth limit exceeded".to_owned()), out);
            return;
        }
        let start = self.arena.len();
        let len = if matches!(tok, Tok::Integer | Tok::Float | Tok::Keyword | Tok::String) {
            self.arena.extend_from_slice(&self.token);
            self.token.len()
        } else {
            0
        };
        self.tokens.push(Token { tok, start, len });
        self.token_size += self.token.len();
        if (self.brace_count > 0 || self.bracket_count > 0)
            && self.brace_count >= 0
            && self.bracket_count >= 0
        {
            return;
        }
        let message = Parser::new(&self.tokens, &self.arena).parse();
        self.emit(message, out);
    }

    /// Emits a message and resets the streamer for the next one.
    fn emit(&mut self, message: Message, out: &mut Vec<Message>) {
        self.brace_count = 0;
        self.bracket_count = 0;
        self.tokens.clear();
        self.arena.clear();
        if self.arena.capacity() > 1 << 20 {
            self.arena = Vec::new();
            self.tokens = Vec::new();
        }
        self.token_size = 0;
        out.push(message);
    }
}

/// QEMU's `qobject_from_json`: the one value `text` holds. The first
/// error wins; a second value is `Expecting at most one JSON value`, no
/// value at all `JSON parse error, expecting value`.
pub(crate) fn parse_one(text: &str) -> Result<Json, String> {
    let mut streamer = JsonStreamer::new();
    let mut out = Vec::new();
    streamer.feed(text.as_bytes(), &mut out);
    streamer.flush(&mut out);
    let mut value = None;
    for message in out {
        if value.is_some() {
            return Err("Expecting at most one JSON value".to_owned());
        }
        value = Some(message?);
    }
    value.ok_or_else(|| "JSON parse error, expecting value".to_owned())
}

// ---------------------------------------------------------------------------
// Parser

enum Frame {
    Object { dict: Dict, key: Option<String> },
    Array { list: Vec<Json> },
}

struct Parser<'a> {
    tokens: &'a [Token],
    arena: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(tokens: &'a [Token], arena: &'a [u8]) -> Self {
        Self {
            tokens,
            arena,
            pos: 0,
        }
    }

    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn pop(&mut self) -> Option<Token> {
        let token = self.peek()?;
        self.pos += 1;
        Some(token)
    }

    fn text(&self, token: Token) -> &'a [u8] {
        &self.arena[token.start..token.start + token.len]
    }

    /// Parses one value (iteratively: nesting is bounded by the streamer,
    /// but the stack of the thread serving a client need not be large).
    /// Errors are QEMU's first parse error.
    fn parse(mut self) -> Message {
        let perr = |msg: &str| Err(format!("JSON parse error, {msg}"));
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            let Some(token) = self.peek() else {
                return perr("premature EOI");
            };
            let mut value = match token.tok {
                Tok::LCurly => {
                    self.pop();
                    match self.peek() {
                        None => return perr("premature EOI"),
                        Some(t) if t.tok == Tok::RCurly => {
                            self.pop();
                            Json::Dict(Dict::new())
                        }
                        Some(_) => {
                            stack.push(Frame::Object {
                                dict: Dict::new(),
                                key: None,
                            });
                            continue 'value;
                        }
                    }
                }
                Tok::LSquare => {
                    self.pop();
                    match self.peek() {
                        None => return perr("premature EOI"),
                        Some(t) if t.tok == Tok::RSquare => {
                            self.pop();
                            Json::List(Vec::new())
                        }
                        Some(_) => {
                            stack.push(Frame::Array { list: Vec::new() });
                            continue 'value;
                        }
                    }
                }
                Tok::Integer | Tok::Float | Tok::String | Tok::Keyword => {
                    self.pop();
                    self.literal(token)?
                }
                _ => return perr("expecting value"),
            };
            // Hand the completed value to its container, closing containers
            // as long as they end.
            loop {
                match stack.last_mut() {
                    None => return Ok(value),
                    Some(Frame::Object { dict, key }) => {
                        if let Some(name) = key.take() {
                            if dict.contains_key(&name) {
                                return perr("duplicate key");
                            }
                            dict.put(name, value);
                            match self.pop() {
                                None => return perr("premature EOI"),
                                Some(t) if t.tok == Tok::RCurly => {
                                    let Some(Frame::Object { dict, .. }) = stack.pop() else {
                                        unreachable!("the top frame is an object")
                                    };
                                    value = Json::Dict(dict);
                                }
                                Some(t) if t.tok == Tok::Comma => continue 'value,
                                Some(_) => return perr("expected separator in dict"),
                            }
                        } else {
                            let Json::Str(name) = value else {
                                return perr("key is not a string in object");
                            };
                            match self.pop() {
                                None => return perr("premature EOI"),
                                Some(t) if t.tok == Tok::Colon => {}
                                Some(_) => return perr("missing : in object pair"),
                            }
                            *key = Some(name);
                            continue 'value;
                        }
                    }
                    Some(Frame::Array { list }) => {
                        list.push(value);
                        match self.pop() {
                            None => return perr("premature EOI"),
                            Some(t) if t.tok == Tok::RSquare => {
                                let Some(Frame::Array { list }) = stack.pop() else {
                                    unreachable!("the top frame is an array")
                                };
                                value = Json::List(list);
                            }
                            Some(t) if t.tok == Tok::Comma => continue 'value,
                            Some(_) => return perr("expected separator in list"),
                        }
                    }
                }
            }
        }
    }

    fn literal(&self, token: Token) -> Result<Json, String> {
        let text = self.text(token);
        match token.tok {
            Tok::String => parse_string(text).map(Json::Str),
            Tok::Keyword => match text {
                b"true" => Ok(Json::Bool(true)),
                b"false" => Ok(Json::Bool(false)),
                b"null" => Ok(Json::Null),
                _ => Err(format!(
                    "JSON parse error, invalid keyword '{}'",
                    excerpt(&String::from_utf8_lossy(text))
                )),
            },
            Tok::Integer => {
                // The lexer only lets ASCII digits and '-' through.
                let s = std::str::from_utf8(text).unwrap_or("0");
                if let Ok(i) = s.parse::<i64>() {
                    Ok(Json::Int(i))
                } else if let (false, Ok(u)) = (s.starts_with('-'), s.parse::<u64>()) {
                    Ok(Json::UInt(u))
                } else {
                    Ok(Json::Double(s.parse::<f64>().unwrap_or(f64::NAN)))
                }
            }
            _ => {
                let s = std::str::from_utf8(text).unwrap_or("0");
                Ok(Json::Double(s.parse::<f64>().unwrap_or(f64::NAN)))
            }
        }
    }
}

/// Four hex digits at the start of `s` (`None` when fewer than four are).
fn cvt4hex(s: &[u8]) -> Option<u32> {
    let mut code = [0u8; 2];
    hex::decode_to_slice(s.get(..4)?, &mut code).ok()?;
    Some(u32::from(u16::from_be_bytes(code)))
}

/// QEMU's `parse_string`: `token` includes its quotes.
fn parse_string(token: &[u8]) -> Result<String, String> {
    let perr = |msg: &str| Err(format!("JSON parse error, {msg}"));
    let quote = token[0];
    let mut out = String::new();
    let mut pos = 1;
    while pos < token.len() && token[pos] != quote {
        if token[pos] == b'\\' {
            let beg = pos;
            pos += 1;
            let esc = token.get(pos).copied().unwrap_or(0);
            pos += 1;
            match esc {
                b'"' => out.push('"'),
                b'\'' => out.push('\''),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let rest = token.get(pos..).unwrap_or(&[]);
                    let mut cp = cvt4hex(rest);
                    pos += 4;
                    if let Some(lead @ 0xD800..=0xDBFF) = cp {
                        if token.get(pos) == Some(&b'\\') && token.get(pos + 1) == Some(&b'u') {
                            let trailing = cvt4hex(token.get(pos + 2..).unwrap_or(&[]));
                            cp = match trailing {
                                Some(t @ 0xDC00..=0xDFFF) => {
                                    pos += 6;
                                    Some(0x10000 + ((lead & 0x3FF) << 10) + (t & 0x3FF))
                                }
                                _ => None,
                            };
                        }
                    }
                    let Some(c) = cp
                        .filter(|&c| is_valid_codepoint(c))
                        .and_then(char::from_u32)
                    else {
                        let end = pos.min(token.len());
                        let seq = String::from_utf8_lossy(&token[beg..end]);
                        return Err(format!(
                            "JSON parse error, {seq} is not a valid Unicode character"
                        ));
                    };
                    out.push(c);
                }
                _ => return perr("invalid escape sequence in string"),
            }
        } else {
            let (cp, used) = mod_utf8_codepoint(&token[pos..]);
            match cp.and_then(char::from_u32) {
                Some(c) => out.push(c),
                None => return perr("invalid UTF-8 sequence in string"),
            }
            pos += used;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(input: &[u8]) -> Vec<Message> {
        let mut streamer = JsonStreamer::new();
        let mut out = Vec::new();
        streamer.feed(input, &mut out);
        out
    }

    fn one(input: &str) -> Message {
        let mut out = messages(input.as_bytes());
        assert_eq!(out.len(), 1, "{input:?} gave {out:?}");
        out.remove(0)
    }

    fn errors(input: &[u8]) -> Vec<String> {
        messages(input)
            .into_iter()
            .map(|m| m.expect_err("an error"))
            .collect()
    }

    #[test]
    fn qdict_order_matches_qemu_greeting() {
        // QEMU's greeting as documented in qmp-spec.rst:
        // {"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 3},
        //  "package": "v3.0.0"}, "capabilities": ["oob"]}}
        let triple = Dict::new()
            .with("major", Json::Int(3))
            .with("minor", Json::Int(0))
            .with("micro", Json::Int(0));
        let version = Dict::new()
            .with("qemu", Json::Dict(triple))
            .with("package", Json::str("v3.0.0"));
        let qmp = Dict::new()
            .with("version", Json::Dict(version))
            .with("capabilities", Json::List(vec![Json::str("oob")]));
        let greeting = Json::Dict(Dict::new().with("QMP", Json::Dict(qmp)));
        assert_eq!(
            write(&greeting),
            r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 3}, "package": "v3.0.0"}, "capabilities": ["oob"]}}"#
        );
    }

    #[test]
    fn qdict_order_matches_qemu_events() {
        // {'timestamp': {...}, 'event': 'SHUTDOWN', 'data': {'guest': True,
        // 'reason': 'guest-reset'}} as QEMU sends it.
        let event = Dict::new()
            .with("event", Json::str("SHUTDOWN"))
            .with(
                "timestamp",
                Json::Dict(
                    Dict::new()
                        .with("seconds", Json::Int(1))
                        .with("microseconds", Json::Int(2)),
                ),
            )
            .with(
                "data",
                Json::Dict(
                    Dict::new()
                        .with("guest", Json::Bool(true))
                        .with("reason", Json::str("guest-reset")),
                ),
            );
        assert_eq!(
            write(&Json::Dict(event)),
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}"#
        );
    }

    #[test]
    fn writer_escapes_like_qemu() {
        let s = Json::str("a\"b\\c\u{8}\u{c}\n\r\t\u{1}\u{7f}é€😀/'\0\u{fffe}");
        assert_eq!(
            write(&s),
            r#""a\"b\\c\b\f\n\r\t\u0001\u007F\u00E9\u20AC\uD83D\uDE00/'\u0000\uFFFD""#
        );
        let list = Json::List(vec![
            Json::Null,
            Json::Bool(false),
            Json::Int(-1),
            Json::UInt(u64::MAX),
        ]);
        assert_eq!(write(&list), "[null, false, -1, 18446744073709551615]");
        assert_eq!(write(&Json::Dict(Dict::new())), "{}");
        assert_eq!(write(&Json::List(vec![])), "[]");
    }

    #[test]
    fn doubles_print_as_percent_17g() {
        for (v, s) in [
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (-2.0, "-2"),
            (1e17, "1e+17"),
            (1.25e16, "12500000000000000"),
            (1e-5, "1.0000000000000001e-05"),
            (1e-4, "0.0001"),
            (123.456, "123.456"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::INFINITY, "null"),
            (1e300, "1.0000000000000001e+300"),
        ] {
            assert_eq!(format_g17(v), s, "{v}");
        }
    }

    #[test]
    fn parses_values_and_numbers_like_qemu() {
        let v = one(r#"{"a": [1, -2, 9223372036854775808, -9223372036854775809, 1.5, 1e2, true, false, null, "x", 'y\'"']}"#)
            .unwrap();
        let Json::Dict(d) = v else {
            panic!("not a dict")
        };
        let Some(Json::List(items)) = d.get("a") else {
            panic!("no list")
        };
        assert_eq!(
            items,
            &vec![
                Json::Int(1),
                Json::Int(-2),
                Json::UInt(9_223_372_036_854_775_808),
                Json::Double(-9_223_372_036_854_775_809.0),
                Json::Double(1.5),
                Json::Double(100.0),
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::str("x"),
                Json::str("y'\""),
            ]
        );
    }

    #[test]
    fn string_escapes_and_unicode() {
        assert_eq!(
            one(r#""\u00e9\ud83d\ude00\/\b""#),
            Ok(Json::str("é😀/\u{8}"))
        );
        assert_eq!(one("\"\u{e9}\""), Ok(Json::str("é")));
        assert_eq!(one(r#""\u0000""#), Ok(Json::str("\0")));
        assert_eq!(
            messages(b"\"\xC0\x80\""),
            vec![Ok(Json::str("\0"))],
            "modified UTF-8 NUL"
        );
        assert_eq!(
            one(r#""\ud800""#),
            Err(r"JSON parse error, \ud800 is not a valid Unicode character".to_owned())
        );
        assert_eq!(
            one(r#""\ud800\u0041""#),
            Err(r"JSON parse error, \ud800 is not a valid Unicode character".to_owned())
        );
        assert_eq!(
            one(r#""\uffff""#),
            Err(r"JSON parse error, \uffff is not a valid Unicode character".to_owned())
        );
        assert_eq!(
            one(r#""\u12""#),
            Err(r#"JSON parse error, \u12" is not a valid Unicode character"#.to_owned())
        );
        assert_eq!(
            one(r#""\x""#),
            Err("JSON parse error, invalid escape sequence in string".to_owned())
        );
        assert_eq!(
            messages(b"\"\xC3\x28\""),
            vec![Err(
                "JSON parse error, invalid UTF-8 sequence in string".to_owned()
            )]
        );
        assert_eq!(
            messages(b"\"\xEF\xBF\xBE\""),
            vec![Err(
                "JSON parse error, invalid UTF-8 sequence in string".to_owned()
            )],
            "raw noncharacter U+FFFE"
        );
        assert_eq!(
            messages(b"\"\xC1\x81\""),
            vec![Err(
                "JSON parse error, invalid UTF-8 sequence in string".to_owned()
            )],
            "overlong"
        );
    }

    #[test]
    fn parse_errors_are_qemus_first_error() {
        for (input, err) in [
            (r#"{ "execute": }"#, "expecting value"),
            (r#"{"a":1,}"#, "expecting value"),
            ("[1,]", "expecting value"),
            ("[1 2]", "expected separator in list"),
            (r#"{"a" 1}"#, "missing : in object pair"),
            (r#"{"a":1 "b":2}"#, "expected separator in dict"),
            (r"{1: 2}", "key is not a string in object"),
            (r"{{}: 2}", "key is not a string in object"),
            (r#"{"a": 1, "a": 2}"#, "duplicate key"),
            (r#"{"a": nul}"#, "invalid keyword 'nul'"),
            ("}", "expecting value"),
            ("]", "expecting value"),
            ("{]", "expecting value"),
            (r#"{"a":[}]"#, "expecting value"),
        ] {
            assert_eq!(
                one(input),
                Err(format!("JSON parse error, {err}")),
                "{input}"
            );
        }
    }

    #[test]
    fn one_value_as_qobject_from_json_reads_it() {
        // The dialect: single quotes, the \' escape, QDict members.
        let Ok(Json::Dict(d)) = parse_one("{'qom-type': 'sev-guest', 'id': 'it\\'s', \"n\": 1}")
        else {
            panic!("not an object")
        };
        assert_eq!(d.get("qom-type"), Some(&Json::str("sev-guest")));
        assert_eq!(d.get("id"), Some(&Json::str("it's")));
        assert_eq!(
            d.into_entries()
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            ["qom-type", "id", "n"],
            "insertion order"
        );
        // The end of input ends a number or keyword.
        assert_eq!(parse_one(" 12"), Ok(Json::Int(12)));
        assert_eq!(parse_one("true"), Ok(Json::Bool(true)));
        for (input, err) in [
            ("", "JSON parse error, expecting value"),
            ("   ", "JSON parse error, expecting value"),
            (r#"{"qom-type":"#, "JSON parse error, premature EOI"),
            ("{", "JSON parse error, premature EOI"),
            (r#"{"a": [1"#, "JSON parse error, premature EOI"),
            (r#"{"a": 1, "a": 2}"#, "JSON parse error, duplicate key"),
            ("{'a", "JSON parse error, stray ''a'"),
            (r#"{"a": @}"#, "JSON parse error, stray '@'"),
            ("{} {}", "Expecting at most one JSON value"),
            ("{}}", "Expecting at most one JSON value"),
            ("{} x", "Expecting at most one JSON value"),
            // The first error wins over what follows.
            ("{\"a\" 1} {}", "JSON parse error, missing : in object pair"),
        ] {
            assert_eq!(parse_one(input), Err(err.to_owned()), "{input:?}");
        }
    }

    #[test]
    fn lexical_errors_and_recovery() {
        // The stray token, then recovery up to the structural '}' which is
        // then parsed on its own.
        assert_eq!(
            errors(br#"{"execute": @}"#),
            vec![
                "JSON parse error, stray '@'",
                "JSON parse error, expecting value"
            ]
        );
        // A raw newline inside a string.
        assert_eq!(
            errors(b"\"ab\ncd\"x\n"),
            vec!["JSON parse error, stray '\"ab\n'"]
        );
        // Numbers.
        assert_eq!(errors(b"01 "), vec!["JSON parse error, stray '01'"]);
        assert_eq!(errors(b"-x "), vec!["JSON parse error, stray '-x'"]);
        assert_eq!(errors(b"1.} "), vec!["JSON parse error, stray '1.}'"]);
        // A NUL byte ends the C string the message is formatted from.
        assert_eq!(errors(b"\0"), vec!["JSON parse error, stray ''"]);
        // 0xFF, shown as U+FFFD.
        assert_eq!(errors(b"\xff"), vec!["JSON parse error, stray '\u{fffd}'"]);
        // A control character forces a resync: the pending message is
        // dropped, the next one parses.
        let out = messages(b"{\"execute\": \"x\"\x01{\"execute\": \"y\"}");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Err("JSON parse error, stray '\u{1}'".to_owned()));
        assert!(out[1].is_ok());
    }

    #[test]
    fn streams_several_messages_and_split_input() {
        let mut streamer = JsonStreamer::new();
        let mut out = Vec::new();
        let input = br#"{"execute": "a"}{"execute":"b"} [1] 3 "s" "#;
        for b in input {
            streamer.feed(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out.len(), 5);
        assert!(matches!(&out[2], Ok(Json::List(_))));
        assert_eq!(out[3], Ok(Json::Int(3)));
        assert_eq!(out[4], Ok(Json::str("s")));
        // A scalar at the end waits for its terminator.
        out.clear();
        streamer.feed(b"42", &mut out);
        assert!(out.is_empty());
        streamer.feed(b"\n", &mut out);
        assert_eq!(out, vec![Ok(Json::Int(42))]);
    }

    #[test]
    fn bulk_and_bytewise_feeding_agree() {
        let input: &[u8] = b"{\"a\": 'x\\'y\"', \"b\": \"\\u00e9\xc3\xa9\"}\"ab\ncd\" 'q\x01' \"\xfe\" [\"\\\"\"]\n";
        let whole = messages(input);
        let mut streamer = JsonStreamer::new();
        let mut bytewise = Vec::new();
        for b in input {
            streamer.feed(std::slice::from_ref(b), &mut bytewise);
        }
        assert_eq!(whole, bytewise);
        assert_eq!(whole.len(), 5, "{whole:?}");
    }

    #[test]
    fn nesting_limit() {
        let ok = format!("{}{}", "[".repeat(1024), "]".repeat(1024));
        assert!(one(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(1025), "]".repeat(1025));
        let out = messages(deep.as_bytes());
        assert_eq!(out[0], Err("JSON nesting depth limit exceeded".to_owned()));
        // The rest of the input is parsed afresh: 1024 stray ']'.
        assert_eq!(out.len(), 1 + 1025);
        assert!(out[1..]
            .iter()
            .all(|m| m == &Err("JSON parse error, expecting value".to_owned())));
    }

    #[test]
    fn token_size_limit() {
        let mut streamer = JsonStreamer::new();
        let mut out = Vec::new();
        streamer.feed(b"\"", &mut out);
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..63 {
            streamer.feed(&chunk, &mut out);
        }
        // The token (with its quote) is now exactly 64 MiB: still allowed.
        streamer.feed(&chunk[1..], &mut out);
        assert!(out.is_empty());
        streamer.feed(b"a", &mut out);
        assert_eq!(out, vec![Err("JSON token size limit exceeded".to_owned())]);
        // Lexing restarts: the rest of the string is a keyword of 'a's.
        out.clear();
        streamer.feed(b"aa\"\n{\"x\": 1}", &mut out);
        assert_eq!(
            out[0],
            Err("JSON parse error, invalid keyword 'aa'".to_owned())
        );
        // The closing quote opened a new string, which the newline ends.
        assert_eq!(out[1], Err("JSON parse error, stray '\"\n'".to_owned()));
        assert!(matches!(out[2], Ok(Json::Dict(_))));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn message_size_limit() {
        // 33 strings of 2 MiB: the message exceeds 64 MiB of tokens.
        let mut streamer = JsonStreamer::new();
        let mut out = Vec::new();
        let s = format!("\"{}\",", "b".repeat(2 << 20));
        streamer.feed(b"[", &mut out);
        for _ in 0..33 {
            streamer.feed(s.as_bytes(), &mut out);
        }
        // The 32nd string overflows; the rest is parsed afresh.
        assert_eq!(out[0], Err("JSON token size limit exceeded".to_owned()));
        assert_eq!(out[1], Err("JSON parse error, expecting value".to_owned()));
        assert!(matches!(out[2], Ok(Json::Str(_))));
    }

    #[test]
    fn many_members_are_not_quadratic() {
        let mut input = String::from("{");
        for i in 0..300_000 {
            let _ = write!(input, "\"k{i}\": {i}, ");
        }
        input.push_str("\"k0\": 0}");
        assert_eq!(
            one(&input),
            Err("JSON parse error, duplicate key".to_owned())
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random byte soup, biased towards JSON
        // punctuation.
        let alphabet =
            b"{}[]:,\"'\\ \n\t0123456789-+.eEtrufalsn\x00\x01\x7f\x80\xbf\xc0\xc3\xe2\xf0\xfe\xffu";
        let mut x: u64 = 0x1234_5678_9abc_def0;
        let mut streamer = JsonStreamer::new();
        let mut out = Vec::new();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = alphabet[(x % alphabet.len() as u64) as usize];
            streamer.feed(&[b], &mut out);
            for v in out.drain(..).flatten() {
                let _ = write(&v);
            }
        }
    }
}
