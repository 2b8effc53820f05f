//! Base64 as QEMU decodes it, with GLib's `g_base64_decode`, which never
//! fails: characters outside the alphabet (white space, line breaks,
//! anything else) are skipped, `=` counts as a zero digit wherever it is
//! (and drops the second or third byte of its group), padding is optional,
//! an incomplete last group is dropped, the text ends at a NUL byte (it is
//! a C string). Decoding the same text must give the same bytes QEMU sees,
//! because the length checks after it are QEMU's.
//!
//! * [`decode`]: object properties (`id-block`, `host-data`, ...), which
//!   QEMU reads with `qbase64_decode`: the alphabet (with `=` and newline)
//!   is checked first, then GLib decodes.
//! * [`glib_decode`]: `sev-inject-launch-secret`'s header and secret,
//!   `query-sev-attestation-report`'s mnonce and the contents of
//!   `dh-cert-file` and `session-file`, which QEMU hands to
//!   `g_base64_decode` directly; it refuses only what decodes to too few
//!   bytes.

use base64::Engine as _;

/// QEMU's `base64_valid_chars`: the alphabet, `=` and newline.
fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\n')
}

/// GLib's `mime_base64_rank`: the 6-bit value of an alphabet character,
/// 0 for `=`, `None` for anything else (skipped).
fn rank(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        b'=' => 0,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes a property as QEMU does (`qbase64_decode(text, -1, ...)`): the
/// alphabet check, then [`glib_decode`].
///
/// # Errors
///
/// QEMU's message when a character is outside the alphabet.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, &'static str> {
    if !text.bytes().all(valid_char) {
        return Err("Base64 data contains invalid characters");
    }
    Ok(glib_decode(text.as_bytes()))
}

/// GLib's `g_base64_decode(text, &len)`: never fails (see the module).
pub(crate) fn glib_decode(text: &[u8]) -> Vec<u8> {
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    let text = &text[..end];
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut v: u32 = 0;
    let mut count = 0;
    // The last two ranked characters: after a full group of four, the third
    // and the fourth; `=` there drops the second and third output byte.
    let mut last = [0u8; 2];
    for &c in text {
        let Some(r) = rank(c) else { continue };
        last[1] = last[0];
        last[0] = c;
        v = (v << 6) | r;
        count += 1;
        if count == 4 {
            let [_, b0, b1, b2] = v.to_be_bytes();
            out.push(b0);
            if last[1] != b'=' {
                out.push(b1);
            }
            if last[0] != b'=' {
                out.push(b2);
            }
            count = 0;
        }
    }
    out
}

/// Canonical (padded, standard alphabet) base64, which [`decode`] reads
/// back to the same bytes.
pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes as QMP carries them: canonical base64 text ([`encode`], what
/// `g_base64_encode` writes), read back strictly. For
/// `#[serde(with = "crate::qemu::b64::text")]`.
pub(crate) mod text {
    use base64::Engine as _;
    use serde::{de, Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as base64 text.
    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::encode(bytes))
    }

    /// Reads canonical base64 text.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_round_trips() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i: u8| i.wrapping_mul(37).wrapping_add(11))
                .collect();
            assert_eq!(decode(&encode(&bytes)), Ok(bytes));
        }
    }

    #[test]
    fn glib_leniency() {
        // No padding: the incomplete last group is dropped.
        assert_eq!(decode("AAA"), Ok(vec![]));
        assert_eq!(decode("QUJD"), Ok(b"ABC".to_vec()));
        assert_eq!(decode("QUJDRA"), Ok(b"ABC".to_vec()));
        assert_eq!(decode("QUJDRA=="), Ok(b"ABCD".to_vec()));
        // Newlines are skipped.
        assert_eq!(decode("QU\nJD\n"), Ok(b"ABC".to_vec()));
        // '=' inside the text counts as a zero digit.
        assert_eq!(decode("Q=JD").map(|v| v.len()), Ok(3));
        assert_eq!(decode(""), Ok(vec![]));
    }

    #[test]
    fn glib_decode_takes_what_a_strict_decoder_refuses() {
        use base64::engine::general_purpose::STANDARD;
        let strict = |t: &str| STANDARD.decode(t).ok();
        for (text, bytes) in [
            // Line breaks and white space anywhere (PEM-style wrapping, CRLF).
            ("QUJD\nREVG", &b"ABCDEF"[..]),
            ("QUJD\r\nREVG\r\n", b"ABCDEF"),
            (" QU JD\tRE VG ", b"ABCDEF"),
            // Any other character outside the alphabet is skipped too.
            ("QU!J.D-_", b"ABC"),
            // Trailing bits that are not zero.
            ("QR==", b"A"),
            // Padding inside the text: each group decodes on its own.
            ("QQ==QQ==", b"AA"),
            // Missing padding: the incomplete last group is dropped.
            ("QUJDRA", b"ABC"),
            // The text is a C string: it ends at a NUL byte.
            ("QUJD\0REVG", b"ABC"),
        ] {
            assert_eq!(
                strict(text),
                None,
                "{text:?} is refused by a strict decoder"
            );
            assert_eq!(glib_decode(text.as_bytes()), bytes, "{text:?}");
        }
        // Nothing to decode: empty, never an error.
        for text in ["", "!!!", "AAA", "\0QUJD"] {
            assert_eq!(glib_decode(text.as_bytes()), b"", "{text:?}");
        }
        assert_eq!(glib_decode(&[0xFF, b'Q', b'Q', 0x80, b'=', b'=']), b"A");
    }

    #[test]
    fn alphabet_is_checked_first() {
        for bad in ["QUJD!", "QU JD", "QUJD\r\n", "QUJD-", "QUJD_", "Ä"] {
            assert_eq!(
                decode(bad),
                Err("Base64 data contains invalid characters"),
                "{bad:?}"
            );
        }
    }
}
