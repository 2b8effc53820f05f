//! Quoting untrusted input in messages.
//!
//! An error that quotes what it refuses helps, until the input is a 100 MB
//! line: then the message costs as much memory and terminal as the input.
//! Every message that quotes input (a value, a key, a line of a file) quotes
//! it through [`excerpt`] or [`excerpt_at`]: at most [`EXCERPT_CHARS`]
//! characters, a cut marked with `…`, control characters escaped (so a
//! quoted line cannot move the cursor or recolour the terminal).

use std::borrow::Cow;
use std::fmt::Write as _;

/// The most characters of input a message quotes (the `…` marking a cut
/// included).
pub const EXCERPT_CHARS: usize = 80;

/// The marker of a cut.
const CUT: char = '…';

/// How `c` is shown: itself, or escaped when it is a control character.
fn shown(c: char, out: &mut String) -> usize {
    if c.is_control() {
        let before = out.chars().count();
        let _ = write!(out, "{}", c.escape_default());
        out.chars().count() - before
    } else {
        out.push(c);
        1
    }
}

/// Appends `chars` as shown to `out` while they fit in `room` characters;
/// returns whether all of them did.
fn push_shown(chars: impl Iterator<Item = char>, room: usize, out: &mut String) -> bool {
    let mut used = 0;
    for c in chars {
        let mut one = String::new();
        let width = shown(c, &mut one);
        if used + width > room {
            return false;
        }
        used += width;
        out.push_str(&one);
    }
    true
}

/// `text` as a message may quote it: unchanged when it has at most
/// [`EXCERPT_CHARS`] characters and no control characters; else its
/// beginning, with control characters escaped (`\n`, `\u{1b}`) and `…` where
/// it was cut, [`EXCERPT_CHARS`] characters at most.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    if text.chars().count() <= EXCERPT_CHARS && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    if !push_shown(text.chars(), EXCERPT_CHARS, &mut out) {
        // Make room for the marker.
        out.clear();
        push_shown(text.chars(), EXCERPT_CHARS - 1, &mut out);
        out.push(CUT);
    }
    Cow::Owned(out)
}

/// The part of `line` around its character `column` (0-based), for a
/// message that points at a position (a parse error): at most
/// [`EXCERPT_CHARS`] characters, starting a little before the column, with
/// `…` where the line was cut and control characters escaped. Returns the
/// excerpt and the position (in characters) of the column's character in
/// it, for a caret line.
pub fn excerpt_at(line: &str, column: usize) -> (String, usize) {
    // Show some context before the column: a quarter of the room.
    let start = column.saturating_sub(EXCERPT_CHARS / 4);
    let mut out = String::new();
    let mut caret = 0;
    let mut used = 0;
    if start > 0 {
        out.push(CUT);
        used = 1;
    }
    let mut rest = line.chars().enumerate().skip(start).peekable();
    while let Some((i, c)) = rest.next() {
        let mut one = String::new();
        let width = shown(c, &mut one);
        // Keep one character for the marker unless this is the last one.
        let reserve = usize::from(rest.peek().is_some());
        if used + width + reserve > EXCERPT_CHARS {
            out.push(CUT);
            break;
        }
        if i == column {
            caret = used;
        }
        used += width;
        out.push_str(&one);
    }
    if column >= line.chars().count() {
        // The position is the end of the line (an unexpected end of input).
        caret = used;
    }
    (out, caret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert!(matches!(excerpt("abc"), Cow::Borrowed("abc")));
        let exact = "x".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact);
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let long = "é".repeat(10 * EXCERPT_CHARS);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS);
        assert!(e.ends_with('…'));
        assert!(e.starts_with("éé"));
        let just_over = "y".repeat(EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&just_over).chars().count(), EXCERPT_CHARS);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(excerpt("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let noisy = "\u{1b}".repeat(100);
        let e = excerpt(&noisy);
        assert!(e.chars().count() <= EXCERPT_CHARS);
        assert!(!e.contains('\u{1b}'));
    }

    #[test]
    fn excerpt_at_points_at_the_column() {
        let (e, caret) = excerpt_at("key = 1x", 7);
        assert_eq!(e, "key = 1x");
        assert_eq!(e.chars().nth(caret), Some('x'));

        let mut line = "a".repeat(1 << 20);
        line.push('!');
        line.push_str(&"b".repeat(1 << 20));
        let (e, caret) = excerpt_at(&line, 1 << 20);
        assert!(e.chars().count() <= EXCERPT_CHARS, "{e}");
        assert!(e.starts_with('…') && e.ends_with('…'));
        assert_eq!(e.chars().nth(caret), Some('!'));

        // At the start and at the end of the line.
        let (e, caret) = excerpt_at(&line, 0);
        assert_eq!((caret, e.chars().count()), (0, EXCERPT_CHARS));
        let (e, caret) = excerpt_at("abc", 3);
        assert_eq!((e.as_str(), caret), ("abc", 3));
    }
}
