//! Text a plugin controls — its description, failure reasons, log messages, metric names — made
//! safe to keep, print and render: bounded in length (with a note saying how much was cut) and
//! stripped of characters that act on a terminal or reorder what a reader sees. Applied once,
//! where the text crosses into the engine (the parent side of the worker protocol, and
//! metadata sections read from disk), so tables, reports and terminals all get the same clean
//! text.

/// Longest plugin name, version or metric name kept.
pub const NAME_BYTES: usize = 128;
/// Longest `about` text kept.
pub const ABOUT_BYTES: usize = 4 << 10;
/// Longest failure reason kept.
pub const REASON_BYTES: usize = 8 << 10;
/// Largest config schema accepted, as compact JSON.
pub const SCHEMA_BYTES: usize = 64 << 10;

/// Whether `c` is kept in plugin text: printable characters, newlines and tabs. Dropped: the
/// C0 and C1 control characters (ESC starts every terminal escape: title, clipboard, clear
/// screen, cursor moves) and DEL, and the Unicode bidirectional controls, which make a line
/// read differently from what it holds.
fn kept(c: char, newlines: bool) -> bool {
    match c {
        '\n' => newlines,
        '\t' => true,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' => false,
        c => !c.is_control(),
    }
}

/// Room kept for the note a cut text ends in.
const NOTE_BYTES: usize = 48;

/// `text` without control characters (newlines kept when `newlines`), at most `max` bytes: a
/// longer text is cut at a character boundary and ends in `… [N more bytes cut]`, the note
/// included in the `max` — so cleaning a cleaned text again changes nothing.
fn clean(text: &str, max: usize, newlines: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut cut = 0usize;
    let fits = text.len() <= max;
    let keep = if fits { max } else { max.saturating_sub(NOTE_BYTES) };
    for (i, c) in text.char_indices() {
        if !kept(c, newlines) {
            continue;
        }
        if out.len() + c.len_utf8() > keep {
            cut = text.len() - i;
            break;
        }
        out.push(c);
    }
    if cut > 0 {
        out.push_str(&format!("… [{cut} more bytes cut]"));
    }
    out
}

/// Multi-line plugin text (a reason, a message, an `about`), at most `max` bytes.
pub fn text(text: &str, max: usize) -> String {
    clean(text, max, true)
}

/// One-line plugin text (a name, a version, a metric name), at most `max` bytes: newlines are
/// dropped with the other control characters.
pub fn line(text: &str, max: usize) -> String {
    clean(text, max, false)
}

/// Whether `text` would come through [`text`] unchanged at length `max`.
pub fn is_clean(text: &str, max: usize) -> bool {
    text.len() <= max && text.chars().all(|c| kept(c, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_are_dropped() {
        let hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[1A\rFinished\u{202E}txt.exe\u{9b}31m ok";
        assert_eq!(text(hostile, 1000), "]0;pwned[2J[1AFinishedtxt.exe31m ok");
        assert_eq!(line("a\nb\tc", 100), "ab\tc");
        assert_eq!(text("a\nb", 100), "a\nb");
        assert!(!is_clean(hostile, 1000));
        assert!(is_clean("Gaussian noise σ = 0.05\n", 100));
    }

    #[test]
    fn long_text_is_cut_at_a_character_and_says_so() {
        let long = "é".repeat(100);
        let cut = text(&long, 61);
        assert_eq!(cut, format!("{}… [188 more bytes cut]", "é".repeat(6)));
        assert!(cut.len() <= 61);
        assert_eq!(text(&cut, 61), cut, "cleaning twice changes nothing");
        assert_eq!(text("short", 5), "short");
    }
}
