//! Manifest errors in the style of rustc and cargo: `file:line:col`, the offending line with a
//! caret under the span, and one `help:` line.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

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

/// Everything wrong with one manifest file, with the text needed to show where.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ManifestError {
    /// The file as the user named it.
    pub path: PathBuf,
    /// Its text (after `--set` overrides).
    pub source_text: String,
    /// The problems, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ManifestError {
    /// Line and column (both 1-based, column in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source_text, offset)
    }
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

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, d) in self.diagnostics.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            writeln!(f, "error: {}", d.message)?;
            match &d.span {
                Some(span) => {
                    let (line, col) = self.line_col(span.start);
                    writeln!(f, "  --> {}:{}:{}", self.path.display(), line, col)?;
                    let text = self.source_text.lines().nth(line - 1).unwrap_or("");
                    let gutter = line.to_string().len();
                    // Underline to the span's end or the line's end, whichever is first.
                    let (end_line, end_col) = self.line_col(span.end.max(span.start + 1));
                    let width = if end_line == line { end_col.saturating_sub(col).max(1) } else { text.chars().count().saturating_sub(col - 1).max(1) };
                    writeln!(f, "{:gutter$} |", "")?;
                    writeln!(f, "{line} | {text}")?;
                    writeln!(f, "{:gutter$} | {}{}", "", " ".repeat(col - 1), "^".repeat(width))?;
                }
                None => writeln!(f, "  --> {}", self.path.display())?,
            }
            if let Some(help) = &d.help {
                writeln!(f, "  = help: {help}")?;
            }
        }
        Ok(())
    }
}
