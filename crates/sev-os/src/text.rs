//! Quoting untrusted input in messages.
//!
//! An error that quotes what it refuses helps, until the input is a 100 MB
//! line: then the message costs as much memory and terminal as the input.
//! Every message that quotes input (a value, a key, a line of a file) quotes
//! it through [`excerpt`] or [`excerpt_at`]: at most [`EXCERPT_CHARS`]
//! characters, a cut marked with `…`. Short input is quoted unchanged, so
//! messages that reproduce another program's (QEMU's) stay identical.

use std::borrow::Cow;

/// The most characters of input a message quotes (the `…` marking a cut
/// included).
pub const EXCERPT_CHARS: usize = 80;

/// The marker of a cut.
const CUT: char = '…';

/// `text` as a message may quote it: unchanged when it has at most
/// [`EXCERPT_CHARS`] characters, else its first `EXCERPT_CHARS - 1`
/// characters and `…`.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    if text.char_indices().nth(EXCERPT_CHARS).is_none() {
        return Cow::Borrowed(text);
    }
    let end = text
        .char_indices()
        .nth(EXCERPT_CHARS - 1)
        .map_or(text.len(), |(i, _)| i);
    let mut out = String::with_capacity(end + CUT.len_utf8());
    out.push_str(&text[..end]);
    out.push(CUT);
    Cow::Owned(out)
}

/// The part of `line` around its character `column` (0-based), for a
/// message that points at a position (a parse error): at most
/// [`EXCERPT_CHARS`] characters, starting a little before the column, with
/// `…` where the line was cut. Returns the excerpt and the position (in
/// characters) of the column's character in it, for a caret line; a column
/// past the end of the line points just after the excerpt.
pub fn excerpt_at(line: &str, column: usize) -> (String, usize) {
    let len = line.chars().count();
    // Show some context before the column: a quarter of the room.
    let start = column.min(len).saturating_sub(EXCERPT_CHARS / 4);
    let mut room = EXCERPT_CHARS;
    let mut out = String::new();
    if start > 0 {
        out.push(CUT);
        room -= 1;
    }
    let rest = len - start;
    let take = if rest > room { room - 1 } else { rest };
    out.extend(line.chars().skip(start).take(take));
    if rest > room {
        out.push(CUT);
    }
    let caret = usize::from(start > 0) + column.min(len) - start;
    (out, caret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert!(matches!(excerpt("abc"), Cow::Borrowed("abc")));
        let exact = "x".repeat(EXCERPT_CHARS);
        assert!(matches!(excerpt(&exact), Cow::Borrowed(_)));
        // Nothing is escaped: QEMU's messages quote input as it is.
        assert_eq!(excerpt("a\nb"), "a\nb");
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
        let huge = "z".repeat(100 << 20);
        assert_eq!(excerpt(&huge).len(), EXCERPT_CHARS - 1 + '…'.len_utf8());
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
        assert_eq!(e.chars().count(), EXCERPT_CHARS, "{e}");
        assert!(e.starts_with('…') && e.ends_with('…'));
        assert_eq!(e.chars().nth(caret), Some('!'));

        // At the start and at the end of the line, and past it.
        let (e, caret) = excerpt_at(&line, 0);
        assert_eq!((caret, e.chars().count()), (0, EXCERPT_CHARS));
        assert_eq!(excerpt_at("abc", 3), ("abc".to_owned(), 3));
        let (e, caret) = excerpt_at(&line, 2 << 20 | 1);
        assert!(e.starts_with('…') && !e.ends_with('…'), "{e}");
        assert_eq!(caret, e.chars().count());
        assert_eq!(excerpt_at("", 0), (String::new(), 0));
    }
}
