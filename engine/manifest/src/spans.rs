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

/// Span lookup over a manifest's sources.
///
/// A manifest may come from several texts (the files it `extends`, itself, the `--set`
/// overrides) merged into one document, and its sweeps expand entries into variants. Paths are
/// asked about the expanded document; the answer is a span in the [`SourceMap`] offset space, in
/// the text that holds the key: the one whose document reaches deepest along the path, the
/// later text winning ties (it overrides the earlier). Entries of arrays of tables (`[[method]]`)
/// are matched across texts by `name`, as the merge does.
///
/// [`SourceMap`]: crate::diagnostic::SourceMap
pub struct Spans {
    /// The merged document, for the names of array-of-table entries.
    merged: Option<toml_edit::Document<String>>,
    /// Parsed texts with the offset of their first byte, lowest priority first.
    layers: Vec<(Option<toml_edit::Document<String>>, usize)>,
    renames: Renames,
}

/// How the expanded document's entries map back to the merged one: a variant
/// `zoo."mlp[models=10]"` is `zoo.mlp`; method `i` of the expansion is method `methods[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Renames {
    /// (section, variant name) → entry name in the merged document.
    pub entries: std::collections::BTreeMap<(String, String), String>,
    /// Index of each expanded method in the merged document (empty: the identity).
    pub methods: Vec<usize>,
}

impl Renames {
    fn apply(&self, path: &[Seg]) -> Vec<Seg> {
        let mut out = path.to_vec();
        match out.as_mut_slice() {
            [Seg::Key(section), Seg::Index(i), ..] if section == "method" => {
                if let Some(m) = self.methods.get(*i) {
                    *i = *m;
                }
            }
            [Seg::Key(section), Seg::Key(name), ..] => {
                if let Some(base) = self.entries.get(&(section.clone(), name.clone())) {
                    *name = base.clone();
                }
            }
            _ => {}
        }
        out
    }
}

impl Spans {
    /// Spans of one text at offset 0; when it is not valid TOML every lookup answers `None`.
    pub fn new(text: &str) -> Self {
        Self { merged: parse(text), layers: vec![(parse(text), 0)], renames: Renames::default() }
    }

    /// Spans over several texts, given as (text, offset of its first byte), lowest priority
    /// first; `merged` is the document they merge into, `renames` maps the expansion back to it.
    pub fn layered(merged: &str, layers: &[(&str, usize)], renames: Renames) -> Self {
        Self { merged: parse(merged), layers: layers.iter().map(|(text, start)| (parse(text), *start)).collect(), renames }
    }

    /// The same texts, asked about a document whose entries `renames` maps back (after a
    /// sweep expansion), without parsing them again.
    pub fn with_renames(mut self, renames: Renames) -> Self {
        self.renames = renames;
        self
    }

    /// Span of the value at `path`, or of the nearest ancestor that exists.
    pub fn value(&self, path: &[Seg]) -> Option<Range<usize>> {
        self.deepest(path).and_then(|found| found.span)
    }

    /// Span of the key that ends `path` (for "unknown key" style errors), else of its value.
    pub fn key(&self, path: &[Seg]) -> Option<Range<usize>> {
        if let Some(Seg::Key(k)) = path.last() {
            let key_span = self.deepest(path).filter(|found| found.depth == path.len()).and_then(|found| {
                let parent_item = found.parent?;
                let (key, _) = parent_item.as_table_like()?.get_key_value(k)?;
                key.span().map(|s| s.start + found.start..s.end + found.start)
            });
            if key_span.is_some() {
                return key_span;
            }
        }
        self.value(path)
    }

    /// The layer reaching deepest along `path` (later layers win ties).
    fn deepest(&self, path: &[Seg]) -> Option<Found<'_>> {
        let path = self.renames.apply(path);
        let mut best: Option<Found> = None;
        for (doc, start) in self.layers.iter().rev() {
            let Some(doc) = doc else { continue };
            let found = self.walk(doc.as_item(), &path, *start);
            if best.as_ref().is_none_or(|b| found.depth > b.depth) {
                best = Some(found);
            }
        }
        best
    }

    /// Follows `path` in one layer as far as it goes.
    fn walk<'a>(&self, root: &'a toml_edit::Item, path: &[Seg], start: usize) -> Found<'a> {
        let mut merged = self.merged.as_ref().map(|d| d.as_item());
        let mut item = root;
        let mut found = Found { depth: 0, span: None, start, parent: None };
        for seg in path {
            let next = match seg {
                Seg::Key(k) => item.get(k.as_str()),
                Seg::Index(i) => {
                    // Entries of arrays of tables match by name; in the `--set` text they are keys.
                    let name = merged.and_then(|m| m.get(*i)).and_then(|e| e.get("name")).and_then(|n| n.as_str());
                    match (item.is_array_of_tables() || item.is_array(), name) {
                        (true, Some(name)) => (0..len(item)).filter_map(|j| item.get(j)).find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name)),
                        (true, None) => item.get(*i),
                        (false, name) => name.and_then(|n| item.get(n)).or_else(|| item.get(i.to_string().as_str())),
                    }
                }
            };
            merged = merged.and_then(|m| match seg {
                Seg::Key(k) => m.get(k.as_str()),
                Seg::Index(i) => m.get(*i),
            });
            let Some(next) = next else { break };
            found.parent = Some(item);
            item = next;
            found.depth += 1;
            if let Some(s) = item_span(item) {
                found.span = Some(s.start + start..s.end + start);
            }
        }
        found
    }
}

/// How far a path reached in one layer.
struct Found<'a> {
    depth: usize,
    span: Option<Range<usize>>,
    /// Offset of the layer's first byte.
    start: usize,
    /// The table holding the last segment reached.
    parent: Option<&'a toml_edit::Item>,
}

fn parse(text: &str) -> Option<toml_edit::Document<String>> {
    toml_edit::Document::parse(text.to_string()).ok()
}

fn len(item: &toml_edit::Item) -> usize {
    item.as_array_of_tables().map(|a| a.len()).or_else(|| item.as_array().map(|a| a.len())).unwrap_or(0)
}

fn item_span(item: &toml_edit::Item) -> Option<Range<usize>> {
    match item {
        toml_edit::Item::Value(v) => v.span(),
        toml_edit::Item::Table(t) => t.span(),
        toml_edit::Item::ArrayOfTables(a) => a.span(),
        toml_edit::Item::None => None,
    }
}
