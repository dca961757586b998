//! Manifest errors in the style of rustc and cargo: `file:line:col`, the offending line with a
//! caret under the span, and one `help:` line.

use std::fmt;
use std::ops::Range;

/// One problem in a manifest, located in its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// What is wrong, in one sentence.
    pub message: String,
    /// Byte range in the source; `None` when the problem has no place (e.g. an empty file).
    pub span: Option<Range<usize>>,
    /// A suggestion, e.g. a did-you-mean.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Self { message: message.into(), span, help: None }
    }

    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// The texts a manifest was read from — the manifest, the files it `extends`, the `--set`
/// overrides — in one offset space, as rustc's source map does: file `k` occupies
/// `start_k .. start_k + len_k`, so a diagnostic's span is a plain byte range yet names its file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

/// One text of a [`SourceMap`].
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// How messages name it: the path as the user gave it, or `--set`.
    pub name: String,
    pub text: String,
    /// Offset of its first byte in the map.
    pub start: usize,
}

impl SourceMap {
    /// A map holding one text.
    pub fn single(name: impl Into<String>, text: impl Into<String>) -> Self {
        let mut map = Self::default();
        map.add(name, text);
        map
    }

    /// Adds a text and returns the offset of its first byte.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> usize {
        // One byte of gap between files, so an end offset never reads as the next file's start.
        let start = self.files.last().map_or(0, |f| f.start + f.text.len() + 1);
        self.files.push(SourceFile { name: name.into(), text: text.into(), start });
        start
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The file holding global offset `offset`, and the offset within it.
    pub fn locate(&self, offset: usize) -> Option<(&SourceFile, usize)> {
        let file = self.files.iter().rev().find(|f| f.start <= offset)?;
        Some((file, offset - file.start))
    }
}

/// Everything wrong with a manifest, with the texts needed to show where.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ManifestError {
    /// The manifest, the files it extends and the `--set` overrides.
    pub sources: SourceMap,
    /// The problems, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ManifestError {
    /// File name, line and column (both 1-based, column in characters) of a global offset.
    pub fn position(&self, offset: usize) -> Option<(&str, usize, usize)> {
        let (file, local) = self.sources.locate(offset)?;
        let (line, col) = line_col(&file.text, local);
        Some((&file.name, line, col))
    }

    /// Line and column of a global offset in the file holding it.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.position(offset).map_or((1, 1), |(_, l, c)| (l, c))
    }

    /// Each problem as plain data — file, line, column, message, help — for `--json` output
    /// (control characters in quoted text left to the JSON encoder to escape).
    pub fn located(&self) -> Vec<Located> {
        self.diagnostics
            .iter()
            .map(|d| {
                let at = d.span.as_ref().and_then(|s| self.position(s.start));
                Located {
                    file: at.map(|(f, _, _)| f.to_string()).or_else(|| self.sources.files().first().map(|f| f.name.clone())),
                    line: at.map(|(_, l, _)| l),
                    column: at.map(|(_, _, c)| c),
                    message: d.message.clone(),
                    help: d.help.clone(),
                }
            })
            .collect()
    }
}

/// One problem of a manifest as plain data ([`ManifestError::located`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Located {
    /// The file (the manifest, a file it extends, or `--set`).
    pub file: Option<String>,
    /// 1-based line and column (in characters); none for a problem without a place.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

/// Line and column (1-based; column counted in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl ManifestError {
    fn render(&self, f: &mut String) -> fmt::Result {
        use std::fmt::Write;
        let first = self.sources.files().first().map_or("manifest", |f| f.name.as_str());
        for (n, d) in self.diagnostics.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            writeln!(f, "error: {}", d.message)?;
            match d.span.as_ref().and_then(|s| Some((s, self.sources.locate(s.start)?))) {
                Some((span, (file, local))) => {
                    let (line, col) = line_col(&file.text, local);
                    writeln!(f, "  --> {}:{}:{}", file.name, line, col)?;
                    let text = file.text.lines().nth(line - 1).unwrap_or("");
                    let gutter = line.to_string().len();
                    // Underline to the span's end or the line's end, whichever is first.
                    let end = span.end.max(span.start + 1).saturating_sub(file.start);
                    let (end_line, end_col) = line_col(&file.text, end);
                    let width = if end_line == line { end_col.saturating_sub(col).max(1) } else { text.chars().count().saturating_sub(col - 1).max(1) };
                    let (text, col, width) = window(text, col, width);
                    writeln!(f, "{:gutter$} |", "")?;
                    writeln!(f, "{line} | {text}")?;
                    writeln!(f, "{:gutter$} | {}{}", "", " ".repeat(col - 1), "^".repeat(width))?;
                }
                None => writeln!(f, "  --> {first}")?,
            }
            if let Some(help) = &d.help {
                writeln!(f, "  = help: {help}")?;
            }
        }
        Ok(())
    }
}

/// Characters of a source line shown around a mistake.
const SHOWN_CHARS: usize = 120;

/// The part of `text` (a source line) shown for a mistake at column `col` (1-based) spanning
/// `width` characters, with the column and width in it: a long line is cut to a window that
/// starts a little before the mistake, marked `…` where cut.
fn window(text: &str, col: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= SHOWN_CHARS {
        return (text.to_string(), col, width);
    }
    let start = (col - 1).saturating_sub(20).min(chars.len());
    let end = (start + SHOWN_CHARS).min(chars.len());
    let lead = if start > 0 { "…" } else { "" };
    let shown = format!("{lead}{}{}", chars[start..end].iter().collect::<String>(), if end < chars.len() { "…" } else { "" });
    // The mistake starts at index `col - 1` of the line; the window shows up to `end`.
    let visible = end.saturating_sub(col - 1);
    (shown, col - start + lead.chars().count(), width.min(visible).max(1))
}

impl fmt::Display for ManifestError {
    /// The rendering with control characters shown as `�`: a diagnostic quotes the manifest's
    /// lines and values, and a manifest may come from someone else (an escape sequence in it
    /// must not act on the terminal the error is printed to).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.render(&mut out)?;
        let shown: String = out.chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '\u{fffd}' } else { c }).collect();
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn a_long_line_is_shown_around_its_mistake() {
        assert_eq!(window("a = 1", 5, 1), ("a = 1".to_string(), 5, 1));
        let line = format!("name = \"{}\"", "c".repeat(5000));
        let (shown, col, width) = window(&line, 8, 5002);
        assert!(shown.starts_with("name = \"ccc") && shown.ends_with('…') && shown.chars().count() == 121, "{shown}");
        assert_eq!((col, width), (8, 113), "the caret under the value's start, to the window's end");
        let far = format!("{}x = 1", " ".repeat(1000));
        let (shown, col, width) = window(&far, 1001, 1);
        assert!(shown.starts_with('…'), "{shown}");
        assert_eq!(shown.chars().nth(col - 1), Some('x'), "{shown} {col}");
        assert_eq!(width, 1);
    }
}
