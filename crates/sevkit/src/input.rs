//! Reading the files users hand to sevkit: binary, hex text, PEM or DER,
//! detected from the content rather than the file name.

use std::path::Path;

use sev_os::excerpt;

/// The largest file read as one fixed-size AMD structure (an attestation
/// report of 1184 bytes, an ID block, an ID authentication structure of
/// 4 KiB), binary or as hex or base64 text: 64 KiB.
pub const MAX_STRUCT_FILE: u64 = 64 << 10;
/// The largest certificate, certificate chain or bundle, or CRL file (DER,
/// PEM or AMD's binary formats): 1 MiB. AMD's largest, the ARK and ASK
/// bundle and the revocation lists, are a few KiB.
pub const MAX_CERT_FILE: u64 = 1 << 20;
/// The largest key or LAUNCH_MEASURE blob file (`--tik`, `--tek`,
/// `--launch-measure-blob`: 16 or 48 bytes, or their base64): 4 KiB.
pub const MAX_KEY_FILE: u64 = 4 << 10;
/// The largest secret file for a launch secret table (`--secret GUID:FILE`):
/// 64 KiB, more than OVMF's launch secret area (a few pages) can hold.
pub const MAX_SECRET_FILE: u64 = 64 << 10;

/// Said by every error about a secret input (a key, a seed, a secret),
/// which names the argument but never repeats its value.
pub const SECRET_NOT_SHOWN: &str = "the value is not shown: it may be secret";

/// Input that cannot be used; the CLI exits with status 2.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be read whole: missing, unreadable, or larger than
    /// what it should hold.
    #[error("cannot read {0}")]
    File(#[from] sev_os::OsError),
    /// A file's metadata could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A QMP exchange failed.
    #[error(transparent)]
    Qmp(#[from] crate::qmp_client::QmpClientError),
    /// The content is not what the command needs.
    #[error("{0}")]
    Invalid(String),
}

/// A decoded input: one or more binary objects (several only for PEM
/// bundles), whatever the file's encoding was (binary, hex text or PEM).
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The decoded objects.
    pub objects: Vec<Vec<u8>>,
}

impl Decoded {
    /// The first object (every decoded input has at least one).
    pub fn first(&self) -> &[u8] {
        &self.objects[0]
    }
}

/// An [`InputError::Invalid`] with this message.
pub fn invalid(message: impl Into<String>) -> InputError {
    InputError::Invalid(message.into())
}

/// Reads a file whole, refusing it when it holds more than `max` bytes
/// (before reading a regular file; after `max + 1` bytes of a stream such
/// as `/dev/zero`). `what` names the content in that error ("an
/// attestation report").
pub fn read(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    Ok(sev_os::read_bounded(path, max, what)?)
}

/// Detects the encoding of `bytes` and decodes it.
pub fn decode(bytes: &[u8]) -> Result<Decoded, InputError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.contains("-----BEGIN ") {
            // The parser's message may quote a label or header of the file.
            let blocks = pem::parse_many(text).map_err(|e| {
                InputError::Invalid(format!("malformed PEM: {}", excerpt(&e.to_string())))
            })?;
            if blocks.is_empty() {
                return Err(InputError::Invalid("PEM file contains no blocks".into()));
            }
            return Ok(Decoded {
                objects: blocks.into_iter().map(pem::Pem::into_contents).collect(),
            });
        }
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let compact = compact.strip_prefix("0x").unwrap_or(&compact);
        if !compact.is_empty() && compact.chars().all(|c| c.is_ascii_hexdigit()) {
            let decoded = hex::decode(compact)
                .map_err(|e| InputError::Invalid(format!("malformed hex text: {e}")))?;
            return Ok(Decoded {
                objects: vec![decoded],
            });
        }
    }
    if bytes.is_empty() {
        return Err(InputError::Invalid("file is empty".into()));
    }
    Ok(Decoded {
        objects: vec![bytes.to_vec()],
    })
}

/// Parses a hex command-line value (optional `0x`, no whitespace) of an exact
/// or maximum length.
pub fn hex_arg(name: &str, value: &str, len: usize, exact: bool) -> Result<Vec<u8>, InputError> {
    let value = value.trim();
    let value = value.strip_prefix("0x").unwrap_or(value);
    let bytes =
        hex::decode(value).map_err(|e| InputError::Invalid(format!("--{name}: not hex ({e})")))?;
    if (exact && bytes.len() != len) || bytes.len() > len {
        return Err(InputError::Invalid(format!(
            "--{name}: expected {}{len} bytes ({} hex digits), got {}",
            if exact { "" } else { "at most " },
            len * 2,
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Reads a value that names an existing file (at most [`MAX_KEY_FILE`]
/// bytes of `what`), or else decodes it as base64 (sevctl's convention for
/// `--tik`, `--tek`, `--launch-measure-blob`: an existing path wins). The
/// value may be a key: errors name the argument, never the value.
pub fn path_or_base64(name: &str, value: &str, what: &'static str) -> Result<Vec<u8>, InputError> {
    use base64::Engine as _;
    let path = Path::new(value);
    if path.is_file() {
        return read(path, MAX_KEY_FILE, what);
    }
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| {
            InputError::Invalid(format!(
                "--{name}: not an existing file and not base64 ({}): give the path of {what} \
                 file or its base64 ({SECRET_NOT_SHOWN})",
                base64_problem(&e)
            ))
        })
}

/// What is wrong with base64 text, by position and length only: the text
/// may be a secret, so not one of its characters is quoted.
pub fn base64_problem(e: &base64::DecodeError) -> String {
    use base64::DecodeError as E;
    match e {
        E::InvalidByte(offset, _) => {
            format!("a character that is not base64 at offset {offset}")
        }
        E::InvalidLength(len) => format!("{len} symbols, a length base64 never has"),
        E::InvalidLastSymbol(offset, _) => {
            format!("a last symbol that cannot end base64 at offset {offset}")
        }
        E::InvalidPadding => "wrong padding".to_owned(),
    }
}

/// What is wrong with hex text, by position and length only (see
/// [`base64_problem`]).
pub fn hex_problem(e: &hex::FromHexError) -> String {
    match e {
        hex::FromHexError::InvalidHexCharacter { index, .. } => {
            format!("a character that is not a hex digit at position {index}")
        }
        hex::FromHexError::OddLength => "an odd number of digits".to_owned(),
        hex::FromHexError::InvalidStringLength => "the wrong number of digits".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_hex_with_whitespace() {
        let d = decode(b"0a0B\n0c ").unwrap();
        assert_eq!(d.objects, vec![vec![0x0a, 0x0b, 0x0c]]);
    }

    #[test]
    fn odd_hex_is_an_error() {
        assert!(decode(b"abc").is_err());
    }

    #[test]
    fn binary_passes_through() {
        let d = decode(&[0x30, 0x82, 0xff, 0x00]).unwrap();
        assert_eq!(d.objects, vec![vec![0x30, 0x82, 0xff, 0x00]]);
    }

    #[test]
    fn pem_bundle_keeps_order() {
        let a = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2]));
        let b = pem::encode(&pem::Pem::new("CERTIFICATE", vec![3]));
        let d = decode(format!("{a}{b}").as_bytes()).unwrap();
        assert_eq!(d.objects, vec![vec![1, 2], vec![3]]);
    }

    #[test]
    fn malformed_pem_is_quoted_as_an_excerpt() {
        let label = "L".repeat(1 << 20);
        let text = format!("-----BEGIN {label}-----\nAAAA\n-----END OTHER-----\n");
        let e = decode(text.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("malformed PEM: mismatching BEGIN"), "{e}");
        assert!(e.len() < 200, "{} bytes", e.len());
    }

    #[test]
    fn hex_arg_lengths() {
        assert!(hex_arg("measurement", "00", 48, true).is_err());
        assert_eq!(
            hex_arg("report-data", "0x0102", 64, false).unwrap(),
            vec![1, 2]
        );
        assert!(hex_arg("report-data", "zz", 64, false).is_err());
    }
}
