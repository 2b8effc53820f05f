//! QEMU's own dialects, as sevkit's front ends and monitor speak them: its
//! JSON parser's extensions (single-quoted strings, interpolation-free),
//! QAPI's input visitor (one for QMP arguments and object properties), the
//! option lexer (`key=value,,escaped`), its number parsers (base 0, sizes
//! with suffixes), and GLib's lenient base64.

pub(crate) mod b64;
pub(crate) mod json;
pub(crate) mod lex;
pub(crate) mod numbers;
pub(crate) mod qapi;
