//! Source positions of key paths (`zoo.cnn.models`, `method[2].zoo`) in a manifest's text,
//! found by re-reading it with `toml_edit`, which keeps spans. The serde types stay plain data.

use std::ops::Range;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Self {
        Seg::Key(key.to_string())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Builds a key path (an array of segments) from mixed keys and indices: `path!["method", 2, "zoo"]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => { [$($crate::spans::Seg::from($seg)),*] };
}

/// Span lookup over a parsed document.
pub struct Spans {
    doc: Option<toml_edit::Document<String>>,
}

impl Spans {
    /// Parses `text`; when it is not valid TOML every lookup answers `None`.
    pub fn new(text: &str) -> Self {
        Self { doc: toml_edit::Document::parse(text.to_string()).ok() }
    }

    /// Span of the value at `path`, or of the nearest ancestor that exists.
    pub fn value(&self, path: &[Seg]) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut item: &toml_edit::Item = doc.as_item();
        let mut best = None;
        for seg in path {
            let next = match seg {
                Seg::Key(k) => item.get(k.as_str()),
                Seg::Index(i) => item.get(*i),
            };
            match next {
                Some(n) => {
                    item = n;
                    if let Some(s) = item_span(item) {
                        best = Some(s);
                    }
                }
                None => break,
            }
        }
        best
    }

    /// Span of the key that ends `path` (for "unknown key" style errors), else of its value.
    pub fn key(&self, path: &[Seg]) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let (last, parent) = path.split_last()?;
        if let Seg::Key(k) = last {
            let mut item: &toml_edit::Item = doc.as_item();
            for seg in parent {
                item = match seg {
                    Seg::Key(k) => item.get(k.as_str())?,
                    Seg::Index(i) => item.get(*i)?,
                };
            }
            if let Some(s) = item.as_table_like().and_then(|t| t.get_key_value(k)).and_then(|(key, _)| key.span()) {
                return Some(s);
            }
        }
        self.value(path)
    }
}

fn item_span(item: &toml_edit::Item) -> Option<Range<usize>> {
    match item {
        toml_edit::Item::Value(v) => v.span(),
        toml_edit::Item::Table(t) => t.span(),
        toml_edit::Item::ArrayOfTables(a) => a.span(),
        toml_edit::Item::None => None,
    }
}
