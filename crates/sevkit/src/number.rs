//! The one number syntax of sevkit's own flags: decimal (`10`), or hex
//! after `0x` / `0X` (`0xa`, `0x0A`). Nothing else: no octal (`010` is ten),
//! no `0b` / `0o`, no sign, no `_` separators, no surrounding spaces, and no
//! hex without its `0x`. Every numeric flag of every sevkit command goes
//! through [`number`], so `--policy 10` means ten everywhere.
//!
//! QEMU's options (`sevkit launch -object ...,policy=`, `-m`, `-smp`) keep
//! QEMU's own rules, in `sev_vmm::config`. Values that are byte strings by
//! nature (`--seed`, `--report-data`, `--host-data`, digests) are hex digits
//! without `0x` and are not numbers.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::ops::RangeInclusive;

use clap::builder::{MapValueParser, TypedValueParser};
use clap::error::ErrorKind;
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_os::excerpt;

/// Why a flag's value is not a number sevkit accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Nothing at all (`--policy ""`).
    #[error("empty: write a number in decimal (10) or in hex after 0x (0xa)")]
    Empty,
    /// Neither decimal digits nor `0x` and hex digits.
    #[error(
        "not a number: write it in decimal (10) or in hex after 0x (0xa); no octal, no other \
         prefix, sign or separator"
    )]
    Syntax,
    /// A number outside what the flag takes.
    #[error("out of range: expected {min} to {max} ({min:#x} to {max:#x})")]
    Range {
        /// The smallest value the flag takes.
        min: u64,
        /// The largest value the flag takes.
        max: u64,
    },
}

/// Parses `text` as sevkit's number syntax into a `u64`.
pub fn parse(text: &str) -> Result<u64, NumberError> {
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    // `from_str_radix` alone would take a leading `+`.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(NumberError::Syntax);
    }
    u64::from_str_radix(digits, radix).map_err(|_| NumberError::Range {
        min: 0,
        max: u64::MAX,
    })
}

/// Parses `text` as a number in `range`.
pub fn parse_in(text: &str, range: &RangeInclusive<u64>) -> Result<u64, NumberError> {
    let range_error = || NumberError::Range {
        min: *range.start(),
        max: *range.end(),
    };
    match parse(text) {
        Ok(v) if range.contains(&v) => Ok(v),
        Ok(_) | Err(NumberError::Range { .. }) => Err(range_error()),
        Err(e) => Err(e),
    }
}

/// An unsigned integer type a flag can hold.
pub trait Unsigned: TryFrom<u64> + Clone + Send + Sync + 'static {
    /// The type's largest value.
    const MAX: u64;
}

macro_rules! unsigned {
    ($($t:ty),*) => {
        $(impl Unsigned for $t {
            const MAX: u64 = <$t>::MAX as u64;
        })*
    };
}
unsigned!(u8, u16, u32, u64, usize);

/// The clap value parser of a numeric flag (see [`number`]).
#[derive(Debug)]
pub struct Number<T> {
    range: RangeInclusive<u64>,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Number<T> {
    fn clone(&self) -> Self {
        Self {
            range: self.range.clone(),
            kind: PhantomData,
        }
    }
}

/// A value parser for a flag holding a `T` written in sevkit's number
/// syntax: `#[arg(long, value_parser = number::<u32>())]`. A bad value
/// exits 2 with a message naming the flag (quoting at most an excerpt of
/// the value).
pub fn number<T: Unsigned>() -> Number<T> {
    Number {
        range: 0..=T::MAX,
        kind: PhantomData,
    }
}

impl<T: Unsigned> Number<T> {
    /// Narrows the accepted values to `range` (within those taken so far).
    #[must_use]
    pub fn range(self, range: RangeInclusive<u64>) -> Self {
        let start = (*range.start()).max(*self.range.start());
        let end = (*range.end()).min(*self.range.end());
        Self {
            range: start..=end,
            kind: PhantomData,
        }
    }
}

impl<T: Unsigned> TypedValueParser for Number<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        parse_in(&text, &self.range)
            .and_then(|v| {
                T::try_from(v).map_err(|_| NumberError::Range {
                    min: *self.range.start(),
                    max: *self.range.end(),
                })
            })
            .map_err(|e| {
                let flag = arg.map_or_else(|| "a number".to_owned(), |a| format!("'{a}'"));
                clap::Error::raw(
                    ErrorKind::ValueValidation,
                    format!("invalid value '{}' for {flag}: {e}\n", excerpt(&text)),
                )
                .with_cmd(cmd)
            })
    }
}

/// The value parser of an SEV / SEV-ES guest policy flag (`--policy`): a
/// 32-bit number in sevkit's syntax.
pub fn guest_policy() -> MapValueParser<Number<u32>, fn(u32) -> GuestPolicy> {
    number::<u32>().map(GuestPolicy::from_raw)
}

/// The value parser of an SEV-SNP guest policy flag (`--policy`): a 64-bit
/// number in sevkit's syntax.
pub fn snp_policy() -> MapValueParser<Number<u64>, fn(u64) -> SnpPolicy> {
    number::<u64>().map(SnpPolicy::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_or_0x_hex_only() {
        for (text, want) in [
            ("10", 10),
            ("0xa", 10),
            ("0x0a", 10),
            ("0XA", 10),
            ("010", 10),
            ("0", 0),
            ("0x0", 0),
            ("18446744073709551615", u64::MAX),
            ("0xffffffffffffffff", u64::MAX),
            ("0x0000000000000000000001", 1),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
        for text in [
            "0x", "a", "0b101", "0o7", "+1", "-1", "1_000", " 1", "1 ", "0x+1", "0x-1", "1e3",
            "0xg", "١",
        ] {
            assert_eq!(parse(text), Err(NumberError::Syntax), "{text:?}");
        }
        assert_eq!(parse(""), Err(NumberError::Empty));
        assert_eq!(
            parse("18446744073709551616"),
            Err(NumberError::Range {
                min: 0,
                max: u64::MAX
            })
        );
        assert_eq!(
            parse_in("256", &(0..=255)),
            Err(NumberError::Range { min: 0, max: 255 })
        );
        assert_eq!(
            parse_in("0x1_0000_0000", &(0..=255)),
            Err(NumberError::Syntax)
        );
        assert_eq!(parse_in("0xff", &(0..=255)), Ok(255));
    }

    #[test]
    fn clap_errors_name_the_flag_and_quote_an_excerpt() {
        let cmd = clap::Command::new("t").arg(
            clap::Arg::new("policy")
                .long("policy")
                .value_name("POLICY")
                .value_parser(number::<u32>()),
        );
        let m = cmd
            .clone()
            .try_get_matches_from(["t", "--policy", "0x0a"])
            .unwrap();
        assert_eq!(m.get_one::<u32>("policy"), Some(&10));
        let e = cmd
            .clone()
            .try_get_matches_from(["t", "--policy", "0x1_0000_0000"])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert_eq!(e.exit_code(), 2);
        let shown = e.to_string();
        assert!(
            shown.contains("'--policy <POLICY>'") && shown.contains("not a number"),
            "{shown}"
        );
        let e = cmd
            .clone()
            .try_get_matches_from(["t", "--policy", "4294967296"])
            .unwrap_err();
        assert!(e.to_string().contains("0 to 4294967295"), "{e}");
        let long = "9".repeat(100_000);
        let e = cmd
            .try_get_matches_from(["t", "--policy", &long])
            .unwrap_err();
        assert!(e.to_string().len() < 1000, "{} bytes", e.to_string().len());
    }

    #[test]
    fn ranges_narrow_within_the_type() {
        let p = number::<u64>().range(1..=86_400);
        assert_eq!(p.range, 1..=86_400);
        let p = number::<u8>().range(0..=1000);
        assert_eq!(p.range, 0..=255);
    }
}
