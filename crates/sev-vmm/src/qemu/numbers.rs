//! Number parsing with the C library's and QEMU's rules: `strtoull`,
//! QEMU's `parse_uint` (unsigned properties of `-object`), `qemu_strtoi64`
//! (`-smp`) and `qemu_strtosz` (sizes: `-m`).

/// Why a number did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Not a number, or trailing characters (C: `EINVAL`).
    Invalid,
    /// Negative where unsigned is required, or too large (C: `ERANGE`).
    Range,
}

/// What `strtoull` consumed.
#[derive(Debug, Clone, Copy)]
struct Scanned {
    /// The magnitude (saturated at `u64::MAX` on overflow).
    magnitude: u64,
    /// A `-` sign preceded the digits.
    negative: bool,
    /// The digits overflowed 64 bits.
    overflow: bool,
    /// Index just past the last digit.
    end: usize,
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtoull`'s scanner: leading white space, one optional sign, an optional
/// `0x` prefix (base 0 or 16, only when a hex digit follows), octal for a
/// leading `0` in base 0, then digits. `None` when no digit was consumed.
fn scan(s: &[u8], base: u32) -> Option<Scanned> {
    let mut i = 0;
    while s.get(i).is_some_and(|b| is_c_space(*b)) {
        i += 1;
    }
    let mut negative = false;
    match s.get(i) {
        Some(b'-') => {
            negative = true;
            i += 1;
        }
        Some(b'+') => i += 1,
        _ => {}
    }
    let hex_prefix = s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let radix = if (base == 0 || base == 16) && hex_prefix {
        i += 2;
        16
    } else if base == 0 {
        if s.get(i) == Some(&b'0') {
            8
        } else {
            10
        }
    } else {
        base
    };
    let start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(digit) = s.get(i).and_then(|b| char::from(*b).to_digit(radix)) {
        match magnitude
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
        {
            Some(v) => magnitude = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    if overflow {
        magnitude = u64::MAX;
    }
    Some(Scanned {
        magnitude,
        negative,
        overflow,
        end: i,
    })
}

/// QEMU's `parse_uint`: `strtoull` syntax, but negative numbers (even `-0`)
/// and overflow are `Range`. Returns the value and the index past it; on
/// error, the index past the digits (0 when there were none).
fn parse_uint(s: &[u8], base: u32) -> Result<(u64, usize), (NumError, usize)> {
    match scan(s, base) {
        None => Err((NumError::Invalid, 0)),
        Some(r) if r.overflow || r.negative => Err((NumError::Range, r.end)),
        Some(r) => Ok((r.magnitude, r.end)),
    }
}

/// `parse_uint_full(s, 0)`: the whole string must be one unsigned number,
/// decimal, `0x` hex or `0` octal. This is how the options visitor reads
/// QOM `uint32`/`uint64` properties from the command line.
pub(crate) fn parse_uint_full(s: &str) -> Result<u64, NumError> {
    match parse_uint(s.as_bytes(), 0) {
        Ok((v, end)) if end == s.len() => Ok(v),
        Ok(_) => Err(NumError::Invalid),
        Err((e, _)) => Err(e),
    }
}

/// `qemu_strtoi64(s, NULL, 0)`: a whole signed 64-bit number (the keyval
/// visitor's `int` type, used by `-smp`).
pub(crate) fn strtoi64_full(s: &str) -> Result<i64, NumError> {
    let r = scan(s.as_bytes(), 0).ok_or(NumError::Invalid)?;
    if r.end != s.len() {
        return Err(NumError::Invalid);
    }
    if r.overflow {
        return Err(NumError::Range);
    }
    if r.negative {
        if r.magnitude > 1u64 << 63 {
            return Err(NumError::Range);
        }
        // magnitude <= 2^63, so this is exact.
        Ok(0i64.wrapping_sub_unsigned(r.magnitude))
    } else {
        i64::try_from(r.magnitude).map_err(|_| NumError::Range)
    }
}

/// QEMU's size suffixes (case-insensitive), powers of 1024.
fn suffix_mul(c: Option<&u8>) -> Option<u64> {
    let shift = match c.map(u8::to_ascii_uppercase) {
        Some(b'B') => 0,
        Some(b'K') => 10,
        Some(b'M') => 20,
        Some(b'G') => 30,
        Some(b'T') => 40,
        Some(b'P') => 50,
        Some(b'E') => 60,
        _ => return None,
    };
    Some(1u64 << shift)
}

/// `strtod` for what `qemu_strtosz` hands it: optional white space and
/// sign, then decimal digits with at most one `.` (the caller has cut the
/// string at the first `e`/`E`). Returns the value, the bytes consumed and
/// whether the result underflowed (non-zero digits, zero result).
fn strtod_decimal(s: &[u8]) -> Option<(f64, usize, bool)> {
    let mut i = 0;
    while s.get(i).is_some_and(|b| is_c_space(*b)) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while s.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = s.get(int_start..i).unwrap_or_default();
    let mut frac_digits: &[u8] = &[];
    if s.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        let mut j = frac_start;
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > frac_start || !int_digits.is_empty() {
            frac_digits = s.get(frac_start..j).unwrap_or_default();
            i = j;
        }
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let text = format!(
        "{}{}.{}",
        if negative { "-" } else { "" },
        if int_digits.is_empty() {
            "0"
        } else {
            core::str::from_utf8(int_digits).ok()?
        },
        if frac_digits.is_empty() {
            "0"
        } else {
            core::str::from_utf8(frac_digits).ok()?
        },
    );
    let value: f64 = text.parse().ok()?;
    let nonzero = int_digits.iter().chain(frac_digits).any(|d| *d != b'0');
    let underflow = value == 0.0 && nonzero;
    Some((value, i, underflow))
}

/// QEMU's `qemu_strtosz(s, NULL, ...)`: a byte count with an optional
/// binary suffix (`B`, `K`, `M`, `G`, `T`, `P`, `E`, either case), default
/// bytes. Decimal or `0x` hex (hex takes no suffix and no fraction);
/// a decimal fraction needs a suffix larger than `B` (`1.5G`). Negative
/// numbers and overflow are `Range` (unless trailing characters follow,
/// which QEMU reports as `Invalid`).
pub(crate) fn strtosz(s: &str) -> Result<u64, NumError> {
    let b = s.as_bytes();
    let (value, end, result) = strtosz_inner(b);
    if end != b.len() {
        return Err(NumError::Invalid);
    }
    result.map(|()| value)
}

/// The body of `do_strtosz`: value, end index and status (before the
/// trailing-characters check).
fn strtosz_inner(b: &[u8]) -> (u64, usize, Result<(), NumError>) {
    let (mut val, mut endptr, parsed) = match parse_uint(b, 10) {
        Err((NumError::Range, end)) => return (0, end, Err(NumError::Range)),
        Err((NumError::Invalid, _)) => (0, 0, false),
        Ok((v, end)) => (v, end, true),
    };
    let mut valf: u64 = 0;

    if parsed && val == 0 && matches!(b.get(endptr), Some(b'x' | b'X')) {
        // Looks like hex: reparse, and insist on no fraction or suffix.
        match scan(b, 16) {
            Some(r) if r.overflow => return (0, r.end, Err(NumError::Range)),
            Some(r) => {
                val = if r.negative {
                    r.magnitude.wrapping_neg()
                } else {
                    r.magnitude
                };
                endptr = r.end;
            }
            None => return (0, 0, Err(NumError::Invalid)),
        }
        if b.get(endptr) == Some(&b'.') || suffix_mul(b.get(endptr)).is_some() {
            return (0, 0, Err(NumError::Invalid));
        }
    } else if b.get(endptr) == Some(&b'.') || (endptr == 0 && b.contains(&b'.')) {
        match strtosz_fraction(b, val, endptr, parsed) {
            Ok((v, f, end)) => {
                val = v;
                valf = f;
                endptr = end;
            }
            Err((end, e)) => return (0, end, Err(e)),
        }
    } else if !parsed {
        return (0, endptr, Err(NumError::Invalid));
    }

    let mul = if let Some(m) = suffix_mul(b.get(endptr)) {
        endptr += 1;
        m
    } else {
        1
    };
    if mul == 1 {
        // A fraction needs a scale.
        if valf != 0 {
            return (0, 0, Err(NumError::Invalid));
        }
        return (val, endptr, Ok(()));
    }
    // Exact 64.64 x 64 fixed point, the fraction rounded half up.
    let whole = u128::from(val) * u128::from(mul);
    let frac = u128::from(valf) * u128::from(mul);
    let round = (frac >> 63) & 1;
    match u64::try_from(whole + (frac >> 64) + round) {
        Ok(v) => (v, endptr, Ok(())),
        Err(_) => (0, endptr, Err(NumError::Range)),
    }
}

/// The fraction branch of `do_strtosz`: returns the integral part, the
/// fraction as 64-bit fixed point and the end index, or an early error.
fn strtosz_fraction(
    b: &[u8],
    mut val: u64,
    mut endptr: usize,
    parsed: bool,
) -> Result<(u64, u64, usize), (usize, NumError)> {
    let fraction: f64;
    let mut status: Result<(), NumError> = Ok(());
    if parsed && b.get(endptr) == Some(&b'.') && !b.get(endptr + 1).is_some_and(u8::is_ascii_digit)
    {
        // "1.k": a dot without fraction digits.
        endptr += 1;
        fraction = 0.0;
    } else {
        // strtod treats e/E as an exponent; QEMU cuts the text there.
        let rest = b.get(endptr..).unwrap_or_default();
        let cut = rest
            .iter()
            .position(|c| *c == b'e' || *c == b'E')
            .unwrap_or(rest.len());
        match strtod_decimal(rest.get(..cut).unwrap_or_default()) {
            None => {
                fraction = 0.0;
                status = Err(NumError::Invalid);
            }
            Some((value, used, underflow)) => {
                fraction = value;
                endptr += used;
                if underflow {
                    status = Err(NumError::Range);
                }
                if value.is_sign_negative() {
                    return Err((endptr, NumError::Range));
                }
            }
        }
    }
    let mut valf = 0;
    // QEMU compares exactly: a fraction that rounds to 1.0 carries.
    #[allow(clippy::float_cmp)]
    let carries = fraction == 1.0;
    if carries {
        val = val.checked_add(1).ok_or((endptr, NumError::Range))?;
    } else if status == Err(NumError::Range) {
        // Underflow: non-zero, but too small for a double.
        valf = 1;
        status = Ok(());
    } else {
        // fraction is in [0, 1): the product is below 2^64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let f = (fraction * 18_446_744_073_709_551_616.0) as u64;
        valf = if f == 0 && fraction > 0.0 { 1 } else { f };
    }
    match status {
        Ok(()) => Ok((val, valf, endptr)),
        Err(e) => Err((endptr, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_bases_like_strtoull() {
        assert_eq!(parse_uint_full("51"), Ok(51));
        assert_eq!(parse_uint_full("0x33"), Ok(51));
        assert_eq!(parse_uint_full("0X33"), Ok(51));
        assert_eq!(parse_uint_full("063"), Ok(51), "leading 0 is octal");
        assert_eq!(parse_uint_full("0"), Ok(0));
        assert_eq!(parse_uint_full(" 7"), Ok(7), "strtoull skips white space");
        assert_eq!(parse_uint_full("+7"), Ok(7));
        assert_eq!(
            parse_uint_full("08"),
            Err(NumError::Invalid),
            "8 is no octal digit"
        );
        assert_eq!(parse_uint_full("0x"), Err(NumError::Invalid));
        assert_eq!(parse_uint_full("0xg"), Err(NumError::Invalid));
        assert_eq!(parse_uint_full(""), Err(NumError::Invalid));
        assert_eq!(parse_uint_full("on"), Err(NumError::Invalid));
        assert_eq!(parse_uint_full("7 "), Err(NumError::Invalid));
        assert_eq!(parse_uint_full("-1"), Err(NumError::Range));
        assert_eq!(parse_uint_full("-0"), Err(NumError::Range));
        assert_eq!(parse_uint_full("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_uint_full("18446744073709551616"),
            Err(NumError::Range)
        );
        assert_eq!(parse_uint_full("0xffffffffffffffff"), Ok(u64::MAX));
    }

    #[test]
    fn int64() {
        assert_eq!(strtoi64_full("4"), Ok(4));
        assert_eq!(strtoi64_full("-4"), Ok(-4));
        assert_eq!(strtoi64_full("0x10"), Ok(16));
        assert_eq!(strtoi64_full("010"), Ok(8));
        assert_eq!(strtoi64_full("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(strtoi64_full("9223372036854775808"), Err(NumError::Range));
        assert_eq!(strtoi64_full("4x"), Err(NumError::Invalid));
    }

    #[test]
    fn sizes_like_qemu_strtosz() {
        const MIB: u64 = 1 << 20;
        assert_eq!(strtosz("1024"), Ok(1024));
        assert_eq!(strtosz("1k"), Ok(1024));
        assert_eq!(strtosz("2G"), Ok(2 << 30));
        assert_eq!(strtosz("2g"), Ok(2 << 30));
        assert_eq!(strtosz("512M"), Ok(512 * MIB));
        assert_eq!(strtosz("1T"), Ok(1 << 40));
        assert_eq!(strtosz("1P"), Ok(1 << 50));
        assert_eq!(strtosz("1E"), Ok(1 << 60));
        assert_eq!(strtosz("16E"), Err(NumError::Range));
        assert_eq!(strtosz("12B"), Ok(12));
        assert_eq!(strtosz("1.5G"), Ok(3 << 29));
        assert_eq!(
            strtosz("1.5"),
            Err(NumError::Invalid),
            "fraction needs a unit"
        );
        assert_eq!(strtosz("1.k"), Ok(1024));
        assert_eq!(strtosz(".5K"), Ok(512));
        assert_eq!(strtosz("0x400"), Ok(1024));
        assert_eq!(strtosz("0x1b"), Ok(27), "b is a hex digit here");
        assert_eq!(
            strtosz("0x400M"),
            Err(NumError::Invalid),
            "hex takes no suffix"
        );
        assert_eq!(strtosz("2GB"), Err(NumError::Invalid));
        assert_eq!(strtosz("-5"), Err(NumError::Range));
        assert_eq!(strtosz("-5G"), Err(NumError::Invalid));
        assert_eq!(strtosz("-.5"), Err(NumError::Range));
        assert_eq!(
            strtosz("-.5G"),
            Err(NumError::Invalid),
            "trailing text turns ERANGE into EINVAL"
        );
        assert_eq!(strtosz(""), Err(NumError::Invalid));
        assert_eq!(strtosz("abc"), Err(NumError::Invalid));
        assert_eq!(strtosz("1e3"), Err(NumError::Invalid));
        assert_eq!(strtosz("99999999999999999999"), Err(NumError::Range));
        assert_eq!(strtosz("99999999999999999999G"), Err(NumError::Invalid));
        // One byte above 2^64 - 1 after scaling.
        assert_eq!(strtosz("16383P"), Ok(16383 << 50));
        assert_eq!(strtosz("16384P"), Err(NumError::Range));
        // A fraction too small for a double still counts as non-zero.
        let tiny = format!(".{}1K", "0".repeat(400));
        assert_eq!(strtosz(&tiny), Ok(0));
        let tiny_bytes = format!(".{}1", "0".repeat(400));
        assert_eq!(strtosz(&tiny_bytes), Err(NumError::Invalid));
    }
}
