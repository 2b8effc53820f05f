//! QEMU's HMP memory dumps, `xp /fmt addr` (guest physical) and
//! `x /fmt addr` (guest virtual), over [`MemoryDebugOps`].
//!
//! The rules are QEMU's (monitor/hmp.c `monitor_parse_arguments` for the
//! `/fmt` argument and `get_expr` for the address; monitor/hmp-cmds-target.c
//! `memory_dump`, as released through QEMU 10.2), reimplemented from their
//! documented behaviour:
//!
//! * `/fmt` is `/[count][format][size]`: `count` decimal digits (default 1);
//!   format letters `x` hex, `d` signed decimal, `u` unsigned decimal, `o`
//!   octal, `c` character, `i` instructions; size letters `b` (1 byte),
//!   `h` (2), `w` (4), `g` or `L` (8), format and size letters in any order
//!   (the last of each kind wins). Anything else before the next blank is
//!   "invalid char in format: 'C'". Without `/fmt` the count is 1.
//! * Format and size are sticky, as in QEMU's monitor: an omitted format or
//!   size is the last one used, initially `x` and `w` ([`DumpDefaults`];
//!   the free functions [`hmp_xp`] and [`hmp_x`] start from those initial
//!   defaults every time).
//! * The address is an HMP expression: numbers as C's `strtoull` base 0
//!   (`0x` hex, leading `0` octal, else decimal), `'c'` character
//!   constants, unary `+ - ~`, parentheses, and binary operators with
//!   QEMU's precedence (lowest first): `+ -`, then `& | ^`, then `* / %`.
//!   `$register` is refused ("unknown register"): there is no vCPU state
//!   here.
//! * Output: one line per 16 bytes (8 with 1-byte units). Each line is the
//!   address as 16 lower-case hex digits (QEMU's `HWADDR_FMT_plx`, and
//!   `TARGET_FMT_lx` on x86-64), a colon, then each unit preceded by a
//!   space: `x` as `0x` and zero-padded hex of 2 × size digits; `u` and `d`
//!   right-aligned in ⌈size × 80 / 33⌉ columns (3, 5, 10, 20); `o` in C's
//!   `%#*o` form (leading 0) right-aligned in ⌈size × 8 / 3⌉ columns; `c`
//!   one quoted character per byte (`\n`, `\r`, `\\`, `\'` escaped, other
//!   bytes outside 32..=126 as `\xNN`). Units are little-endian. With `c`
//!   the byte count is still count × size and the line length follows the
//!   size (16 bytes unless the size is `b`), as in QEMU. `d` of units
//!   smaller than 8 bytes is never negative (QEMU zero-extends them).
//! * A line whose memory cannot be read ends in " Cannot access memory"
//!   and the dump stops there.
//!
//! `i` (disassembly) is not supported. QEMU's development tree for 11.0
//! (December 2025) prints physical addresses with 8 digits minimum and octal
//! as `0%*o`; this follows the released behaviour.

use std::fmt::Write as _;

use crate::debug::walk::PageWalk;
use crate::debug::{Access, DebugError, MemoryDebugOps};

/// Largest dump (count × size bytes) accepted.
pub const MAX_DUMP_BYTES: u64 = 1 << 20;

/// A memory dump's display format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpFormat {
    /// `x`: hexadecimal.
    Hex,
    /// `d`: signed decimal.
    Signed,
    /// `u`: unsigned decimal.
    Unsigned,
    /// `o`: octal.
    Octal,
    /// `c`: characters.
    Char,
    /// `i`: instructions (not supported here).
    Instruction,
}

impl DumpFormat {
    /// The format of letter `c`.
    pub fn from_letter(c: u8) -> Option<Self> {
        Some(match c {
            b'x' => Self::Hex,
            b'd' => Self::Signed,
            b'u' => Self::Unsigned,
            b'o' => Self::Octal,
            b'c' => Self::Char,
            b'i' => Self::Instruction,
            _ => return None,
        })
    }

    /// Its letter.
    pub const fn letter(self) -> char {
        match self {
            Self::Hex => 'x',
            Self::Signed => 'd',
            Self::Unsigned => 'u',
            Self::Octal => 'o',
            Self::Char => 'c',
            Self::Instruction => 'i',
        }
    }
}

/// A parsed `/fmt addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpSpec {
    /// Number of units.
    pub count: u64,
    /// Display format.
    pub format: DumpFormat,
    /// Unit size in bytes (1, 2, 4 or 8); `None` only for `i` without a
    /// size.
    pub size: Option<u8>,
    /// Start address.
    pub addr: u64,
}

/// The monitor's sticky format and size (QEMU's `default_fmt_format` and
/// `default_fmt_size`): initially `x` and 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpDefaults {
    /// Format used when `/fmt` names none.
    pub format: DumpFormat,
    /// Size used when `/fmt` names none.
    pub size: u8,
}

impl Default for DumpDefaults {
    fn default() -> Self {
        Self {
            format: DumpFormat::Hex,
            size: 4,
        }
    }
}

impl DumpDefaults {
    /// Parses the arguments of `command` (`"xp"` or `"x"`; used in
    /// messages): `args` is the text after the command name, e.g.
    /// `"/8xb 0x1000"`. Updates the defaults as QEMU does.
    ///
    /// # Errors
    /// [`DebugError::Hmp`] with QEMU's message.
    pub fn parse(&mut self, command: &str, args: &str) -> Result<DumpSpec, DebugError> {
        let mut p = Cursor::new(args);
        p.skip_space();
        let (count, format, size) = if p.peek() == Some(b'/') {
            p.bump();
            let mut count = 1u64;
            if p.peek().is_some_and(|c| c.is_ascii_digit()) {
                count = 0;
                while let Some(d) = p.peek().filter(u8::is_ascii_digit) {
                    count = count
                        .checked_mul(10)
                        .and_then(|c| c.checked_add(u64::from(d - b'0')))
                        .filter(|&c| c <= MAX_DUMP_BYTES)
                        .ok_or_else(|| too_big(command))?;
                    p.bump();
                }
            }
            let mut format = None;
            let mut size = None;
            loop {
                match p.peek() {
                    Some(c) if DumpFormat::from_letter(c).is_some() => {
                        format = DumpFormat::from_letter(c);
                    }
                    Some(b'b') => size = Some(1),
                    Some(b'h') => size = Some(2),
                    Some(b'w') => size = Some(4),
                    Some(b'g' | b'L') => size = Some(8),
                    _ => break,
                }
                p.bump();
            }
            if let Some(c) = p.rest().chars().next().filter(|c| !is_space(*c)) {
                return Err(DebugError::Hmp(format!("invalid char in format: '{c}'")));
            }
            let format = format.unwrap_or(self.format);
            if format != DumpFormat::Instruction {
                let s = size.unwrap_or(self.size);
                self.size = s;
                size = Some(s);
            }
            self.format = format;
            (count, format, size)
        } else {
            let size = (self.format != DumpFormat::Instruction).then_some(self.size);
            (1, self.format, size)
        };
        let addr = p.expr()?;
        p.skip_space();
        if !p.rest().is_empty() {
            return Err(DebugError::Hmp(format!(
                "{command}: extraneous characters at the end of line"
            )));
        }
        Ok(DumpSpec {
            count,
            format,
            size,
            addr,
        })
    }

    /// `xp /fmt addr`: a dump of guest physical memory, each page read as
    /// [`GuestMemory`](crate::GuestMemory) records it (private pages
    /// decrypted through the firmware).
    ///
    /// # Errors
    /// A command line QEMU refuses ([`DebugError::Hmp`]), the `i` format, a
    /// dump over [`MAX_DUMP_BYTES`], or a firmware refusal. Memory that is
    /// not there is not an error: the dump ends with "Cannot access memory".
    pub fn xp<O: MemoryDebugOps + ?Sized>(
        &mut self,
        ops: &mut O,
        args: &str,
    ) -> Result<String, DebugError> {
        let spec = self.parse("xp", args)?;
        dump(&spec, |addr, buf| ops.read(addr, buf, Access::ByPageState))
    }

    /// `x /fmt addr`: a dump of guest virtual memory through `walk` (the
    /// vCPU's CR3 and paging mode); each page's data is read as its leaf
    /// entry's C-bit says.
    ///
    /// # Errors
    /// As [`DumpDefaults::xp`]; unmapped addresses end the dump with
    /// "Cannot access memory".
    pub fn x<O: MemoryDebugOps + ?Sized>(
        &mut self,
        ops: &mut O,
        walk: &PageWalk,
        args: &str,
    ) -> Result<String, DebugError> {
        let spec = self.parse("x", args)?;
        dump(&spec, |addr, buf| walk.read(ops, addr, buf))
    }
}

/// `xp /fmt addr` with the monitor's initial defaults (format `x`, size
/// `w`). See [`DumpDefaults::xp`].
///
/// # Errors
/// As [`DumpDefaults::xp`].
pub fn hmp_xp<O: MemoryDebugOps + ?Sized>(ops: &mut O, args: &str) -> Result<String, DebugError> {
    DumpDefaults::default().xp(ops, args)
}

/// `x /fmt addr` through 4-level paging from `cr3`, with the monitor's
/// initial defaults. See [`DumpDefaults::x`].
///
/// # Errors
/// As [`DumpDefaults::x`].
pub fn hmp_x<O: MemoryDebugOps + ?Sized>(
    ops: &mut O,
    cr3: u64,
    c_bit: u8,
    args: &str,
) -> Result<String, DebugError> {
    DumpDefaults::default().x(ops, &PageWalk::new(cr3, c_bit), args)
}

fn too_big(command: &str) -> DebugError {
    DebugError::Hmp(format!(
        "{command}: a dump is limited to {MAX_DUMP_BYTES} bytes"
    ))
}

/// QEMU's `memory_dump` over `read`.
fn dump(
    spec: &DumpSpec,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), DebugError>,
) -> Result<String, DebugError> {
    let Some(size) = spec.size.filter(|_| spec.format != DumpFormat::Instruction) else {
        return Err(DebugError::Unsupported(
            "the i (disassemble) format is not supported: dump the bytes with /xb",
        ));
    };
    let size = u64::from(size);
    let len = spec
        .count
        .checked_mul(size)
        .filter(|&l| l <= MAX_DUMP_BYTES)
        .ok_or(DebugError::Hmp(format!(
            "a dump is limited to {MAX_DUMP_BYTES} bytes"
        )))?;
    let line_size: u64 = if size == 1 { 8 } else { 16 };
    let (digits, unit) = match spec.format {
        DumpFormat::Octal => ((size * 8).div_ceil(3), size),
        DumpFormat::Unsigned | DumpFormat::Signed => ((size * 80).div_ceil(33), size),
        DumpFormat::Char => (0, 1),
        DumpFormat::Hex | DumpFormat::Instruction => (size * 2, size),
    };
    let digits = digits as usize;
    // Read everything at once; if part of it is missing, read line by line
    // to find where the dump stops, as QEMU does.
    let mut all = zeroize::Zeroizing::new(vec![0u8; len as usize]);
    let whole = match read(spec.addr, &mut all) {
        Ok(()) => true,
        Err(e) if e.is_inaccessible() => false,
        Err(e) => return Err(e),
    };
    let mut out = String::new();
    let mut addr = spec.addr;
    let mut done = 0u64;
    while done < len {
        let _ = write!(out, "{addr:016x}:");
        let l = (len - done).min(line_size);
        let line = &mut all[done as usize..(done + l) as usize];
        if !whole {
            match read(addr, line) {
                Ok(()) => {}
                Err(e) if e.is_inaccessible() => {
                    out.push_str(" Cannot access memory\n");
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        for chunk in line.chunks_exact(unit as usize) {
            let mut le = [0u8; 8];
            le[..chunk.len()].copy_from_slice(chunk);
            let v = u64::from_le_bytes(le);
            out.push(' ');
            match spec.format {
                DumpFormat::Octal => {
                    let s = if v == 0 {
                        "0".to_owned()
                    } else {
                        format!("0{v:o}")
                    };
                    let _ = write!(out, "{s:>digits$}");
                }
                DumpFormat::Hex | DumpFormat::Instruction => {
                    let _ = write!(out, "0x{v:0digits$x}");
                }
                DumpFormat::Unsigned => {
                    let _ = write!(out, "{v:>digits$}");
                }
                DumpFormat::Signed => {
                    let _ = write!(out, "{:>digits$}", v.cast_signed());
                }
                DumpFormat::Char => printc(&mut out, chunk[0]),
            }
        }
        out.push('\n');
        addr = addr.wrapping_add(l);
        done += l;
    }
    Ok(out)
}

/// QEMU's `monitor_printc`.
fn printc(out: &mut String, c: u8) {
    out.push('\'');
    match c {
        b'\'' => out.push_str("\\'"),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        32..=126 => out.push(char::from(c)),
        _ => {
            let _ = write!(out, "\\x{c:02x}");
        }
    }
    out.push('\'');
}

fn is_space(c: char) -> bool {
    // C's isspace in the "C" locale.
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// QEMU's monitor expression parser, over a byte cursor.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn bump(&mut self) {
        if self.pos < self.s.len() {
            self.pos += 1;
        }
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|c| is_space(char::from(c))) {
            self.pos += 1;
        }
    }

    /// QEMU's `next()`: past this character and the blanks after it.
    fn next_token(&mut self) {
        if self.peek().is_some() {
            self.bump();
            self.skip_space();
        }
    }

    fn error(msg: impl Into<String>) -> DebugError {
        DebugError::Hmp(msg.into())
    }

    /// `get_expr`: the value of the expression at the cursor.
    fn expr(&mut self) -> Result<u64, DebugError> {
        self.skip_space();
        self.sum(0)
    }

    fn sum(&mut self, depth: u32) -> Result<u64, DebugError> {
        let mut v = self.logic(depth)?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.next_token();
            let w = self.logic(depth)?;
            v = if op == b'+' {
                v.wrapping_add(w)
            } else {
                v.wrapping_sub(w)
            };
        }
        Ok(v)
    }

    fn logic(&mut self, depth: u32) -> Result<u64, DebugError> {
        let mut v = self.prod(depth)?;
        while let Some(op @ (b'&' | b'|' | b'^')) = self.peek() {
            self.next_token();
            let w = self.prod(depth)?;
            v = match op {
                b'&' => v & w,
                b'|' => v | w,
                _ => v ^ w,
            };
        }
        Ok(v)
    }

    fn prod(&mut self, depth: u32) -> Result<u64, DebugError> {
        let mut v = self.unary(depth)?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.next_token();
            let w = self.unary(depth)?;
            v = match op {
                b'*' => v.wrapping_mul(w),
                _ if w == 0 => return Err(Self::error("division by zero")),
                // QEMU computes in int64_t.
                b'/' => v
                    .cast_signed()
                    .wrapping_div(w.cast_signed())
                    .cast_unsigned(),
                _ => v
                    .cast_signed()
                    .wrapping_rem(w.cast_signed())
                    .cast_unsigned(),
            };
        }
        Ok(v)
    }

    fn unary(&mut self, depth: u32) -> Result<u64, DebugError> {
        // Bound the recursion (QEMU's is bounded by its line length).
        if depth > 256 {
            return Err(Self::error("expression too deeply nested"));
        }
        let depth = depth + 1;
        match self.peek() {
            Some(b'+') => {
                self.next_token();
                self.unary(depth)
            }
            Some(b'-') => {
                self.next_token();
                Ok(self.unary(depth)?.wrapping_neg())
            }
            Some(b'~') => {
                self.next_token();
                Ok(!self.unary(depth)?)
            }
            Some(b'(') => {
                self.next_token();
                let v = self.sum(depth)?;
                if self.peek() != Some(b')') {
                    return Err(Self::error("')' expected"));
                }
                self.next_token();
                Ok(v)
            }
            Some(b'\'') => {
                self.bump();
                let Some(c) = self.peek() else {
                    return Err(Self::error("character constant expected"));
                };
                self.bump();
                if self.peek() != Some(b'\'') {
                    return Err(Self::error("missing terminating ' character"));
                }
                self.next_token();
                // QEMU stores a (signed) char.
                Ok(i64::from(c.cast_signed()).cast_unsigned())
            }
            Some(b'$') => Err(Self::error("unknown register")),
            None => Err(Self::error("unexpected end of expression")),
            Some(_) => self.number(),
        }
    }

    /// `strtoull(p, &end, 0)`.
    fn number(&mut self) -> Result<u64, DebugError> {
        let b = self.rest().as_bytes();
        let (radix, start) = match b {
            [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, 2),
            [b'0', ..] => (8, 0),
            _ => (10, 0),
        };
        let digits = b[start..]
            .iter()
            .take_while(|c| char::from(**c).is_digit(radix))
            .count();
        if digits == 0 {
            let c = self.rest().chars().next().unwrap_or('?');
            return Err(Self::error(format!("invalid char '{c}' in expression")));
        }
        let text = &self.rest()[start..start + digits];
        let v = u64::from_str_radix(text, radix).map_err(|_| Self::error("number too large"))?;
        self.pos += start + digits;
        self.skip_space();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debug::walk::tests::Flat;

    fn parse(args: &str) -> Result<DumpSpec, DebugError> {
        DumpDefaults::default().parse("xp", args)
    }

    fn err(args: &str) -> String {
        parse(args).unwrap_err().to_string()
    }

    #[test]
    fn format_letters_and_defaults() {
        let s = parse("/10xb 0x1000").unwrap();
        assert_eq!(
            (s.count, s.format, s.size, s.addr),
            (10, DumpFormat::Hex, Some(1), 0x1000)
        );
        let s = parse("0x1000").unwrap();
        assert_eq!((s.count, s.format, s.size), (1, DumpFormat::Hex, Some(4)));
        // Letters in any order; the last of each kind wins.
        let s = parse("/gdu 8").unwrap();
        assert_eq!((s.format, s.size), (DumpFormat::Unsigned, Some(8)));
        let s = parse("/L 8").unwrap();
        assert_eq!((s.count, s.size), (1, Some(8)));
        let s = parse("/ 8").unwrap();
        assert_eq!(s.count, 1);
        let s = parse("/0x 8").unwrap();
        assert_eq!(s.count, 0);
        assert_eq!(parse("/i 0").unwrap().size, None);
        // Sticky defaults.
        let mut d = DumpDefaults::default();
        d.parse("xp", "/4ub 0").unwrap();
        assert_eq!(d.parse("xp", "0").unwrap().size, Some(1));
        assert_eq!(d.parse("xp", "/2 0").unwrap().format, DumpFormat::Unsigned);
        d.parse("xp", "/i 0").unwrap();
        assert_eq!(
            d,
            DumpDefaults {
                format: DumpFormat::Instruction,
                size: 1
            }
        );
        assert_eq!(d.parse("xp", "0").unwrap().size, None);
        assert_eq!(d.parse("xp", "/x 0").unwrap().size, Some(1));
    }

    #[test]
    fn command_line_errors_have_qemus_messages() {
        assert_eq!(err("/8z 0"), "invalid char in format: 'z'");
        assert_eq!(err("/x10 0"), "invalid char in format: '1'");
        assert_eq!(err("/xé 0"), "invalid char in format: 'é'");
        assert_eq!(err(""), "unexpected end of expression");
        assert_eq!(err("/4x"), "unexpected end of expression");
        assert_eq!(
            err("0x1000 5"),
            "xp: extraneous characters at the end of line"
        );
        assert_eq!(
            err("0x1000g"),
            "xp: extraneous characters at the end of line"
        );
        // strtoull reads "0x" as 0 followed by an "x".
        assert_eq!(err("0x"), "xp: extraneous characters at the end of line");
        assert_eq!(err("zz"), "invalid char 'z' in expression");
        assert_eq!(err("(1"), "')' expected");
        assert_eq!(err("1/0"), "division by zero");
        assert_eq!(err("'a"), "missing terminating ' character");
        assert_eq!(err("'"), "character constant expected");
        assert_eq!(err("$eip"), "unknown register");
        assert_eq!(err("0x1ffffffffffffffff"), "number too large");
        assert!(err("/99999999999999999999 0").contains("limited"));
        assert!(err(&"(".repeat(10_000)).contains("nested"));
    }

    #[test]
    fn expressions() {
        let v = |s: &str| parse(s).unwrap().addr;
        assert_eq!(v("0x1000 + 0x10"), 0x1010);
        assert_eq!(v("010"), 8);
        assert_eq!(v("0"), 0);
        assert_eq!(v("  4096"), 4096);
        assert_eq!(v("1 + 2 * 3"), 7);
        // & | ^ bind tighter than + - in QEMU's grammar.
        assert_eq!(v("1 + 6 & 3"), 3);
        assert_eq!(v("-1"), u64::MAX);
        assert_eq!(v("~0xfff"), !0xfff);
        assert_eq!(v("(0x1000+1)*2"), 0x2002);
        assert_eq!(v("'A'"), 65);
        assert_eq!(v("-7 / 2"), (-3i64).cast_unsigned());
        assert_eq!(v("0x8000000000000000 / -1"), 0x8000_0000_0000_0000);
    }

    fn flat() -> Flat {
        let mut m = Flat::new(0x3000);
        for (i, b) in m.mem[0x1000..0x1020].iter_mut().enumerate() {
            *b = i as u8;
        }
        m.mem[0x1000..0x1008].copy_from_slice(b"A'\\\n\r\x00\xff~");
        m
    }

    #[test]
    fn layouts() {
        // Lines: 16 hex digits of address, ':', then " value" per unit.
        let mut m = flat();
        assert_eq!(
            hmp_xp(&mut m, "/2x 0x1010").unwrap(),
            "0000000000001010: 0x13121110 0x17161514\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/5xw 0x1010").unwrap(),
            "0000000000001010: 0x13121110 0x17161514 0x1b1a1918 0x1f1e1d1c\n\
             0000000000001020: 0x00000000\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/10xb 0x1010").unwrap(),
            "0000000000001010: 0x10 0x11 0x12 0x13 0x14 0x15 0x16 0x17\n\
             0000000000001018: 0x18 0x19\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/3hx 0x1010").unwrap(),
            "0000000000001010: 0x1110 0x1312 0x1514\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/3g 0x1010").unwrap(),
            "0000000000001010: 0x1716151413121110 0x1f1e1d1c1b1a1918\n\
             0000000000001020: 0x0000000000000000\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/3ub 0x1010").unwrap(),
            "0000000000001010:  16  17  18\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/2uh 0x1010").unwrap(),
            "0000000000001010:  4368  4882\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/1uw 0x1010").unwrap(),
            "0000000000001010:  319951120\n"
        );
        // d: units below 8 bytes are zero-extended, never negative.
        assert_eq!(
            hmp_xp(&mut m, "/1db 0x1006").unwrap(),
            "0000000000001006: 255\n"
        );
        m.mem[0x2000..0x2008].copy_from_slice(&(-2i64).to_le_bytes());
        assert_eq!(
            hmp_xp(&mut m, "/1dg 0x2000").unwrap(),
            "0000000000002000:                   -2\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/1ug 0x2000").unwrap(),
            "0000000000002000: 18446744073709551614\n"
        );
        // o: %#*o, zero printed as a lone 0.
        assert_eq!(
            hmp_xp(&mut m, "/2ow 0x1018").unwrap(),
            "0000000000001018: 03306414430 03707416434\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/2ob 0x2ffe").unwrap(),
            "0000000000002ffe:   0   0\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/1og 0x2000").unwrap(),
            "0000000000002000: 01777777777777777777776\n"
        );
        // c: quoted, escaped; size w (the default) still counts 4 bytes per
        // unit and 16 bytes per line.
        assert_eq!(
            hmp_xp(&mut m, "/2c 0x1000").unwrap(),
            "0000000000001000: 'A' '\\'' '\\\\' '\\n' '\\r' '\\x00' '\\xff' '~'\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "/10cb 0x1000").unwrap(),
            "0000000000001000: 'A' '\\'' '\\\\' '\\n' '\\r' '\\x00' '\\xff' '~'\n\
             0000000000001008: '\\x08' '\\x09'\n"
        );
        // Nothing to dump.
        assert_eq!(hmp_xp(&mut m, "/0x 0x1000").unwrap(), "");
    }

    #[test]
    fn unreadable_memory_ends_the_dump() {
        let mut m = flat();
        assert_eq!(
            hmp_xp(&mut m, "/8x 0x2ff0").unwrap(),
            "0000000000002ff0: 0x00000000 0x00000000 0x00000000 0x00000000\n\
             0000000000003000: Cannot access memory\n"
        );
        assert_eq!(
            hmp_xp(&mut m, "-16").unwrap(),
            "fffffffffffffff0: Cannot access memory\n"
        );
        assert!(matches!(
            hmp_xp(&mut m, "/i 0x1000"),
            Err(DebugError::Unsupported(_))
        ));
        assert!(hmp_xp(&mut m, "/1048577b 0").is_err());
        assert!(hmp_xp(&mut m, "/262145w 0").is_err());
        assert!(hmp_xp(&mut m, "/262144w 0").is_ok());
    }

    #[test]
    fn virtual_dumps_walk_the_tables() {
        let mut m = Flat::new(0x8000);
        let put =
            |m: &mut Flat, at: usize, v: u64| m.mem[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put(&mut m, 0x1000, 0x2000 | 3);
        put(&mut m, 0x2000, 0x3000 | 3);
        put(&mut m, 0x3000, 0x4000 | 3);
        put(&mut m, 0x4000, 0x6000 | (1 << 47) | 3); // gva 0 -> 0x6000
        m.mem[0x6ff8..0x7000].copy_from_slice(b"abcdefgh");
        assert_eq!(
            hmp_x(&mut m, 0x1000, 47, "/8cb 0xff8").unwrap(),
            "0000000000000ff8: 'a' 'b' 'c' 'd' 'e' 'f' 'g' 'h'\n"
        );
        assert_eq!(
            hmp_x(&mut m, 0x1000, 47, "/6x 0xff0").unwrap(),
            "0000000000000ff0: 0x00000000 0x00000000 0x64636261 0x68676665\n\
             0000000000001000: Cannot access memory\n"
        );
        // A line is read as a whole: one that runs into unmapped memory is
        // not printed at all.
        assert_eq!(
            hmp_x(&mut m, 0x1000, 47, "/4x 0xff8").unwrap(),
            "0000000000000ff8: Cannot access memory\n"
        );
        let mut d = DumpDefaults::default();
        let w = PageWalk::new(0x1000, 47);
        assert_eq!(
            d.x(&mut m, &w, "/2xg 0xffff800000000000").unwrap(),
            "ffff800000000000: Cannot access memory\n"
        );
        assert!(d
            .x(&mut m, &w, "/2xg 0x800000000000")
            .unwrap()
            .ends_with("Cannot access memory\n"));
    }
}
