//! Composition: `extends = ["base.toml", …]` at the top of a manifest. The bases are read
//! first (each may extend others; paths are relative to the file that names them), then merged
//! in order, then the manifest itself on top: tables merge key by key, arrays of tables
//! (`[[method]]`) merge by `name` (an entry with a new name is appended), and any other value —
//! a sweep table included — replaces the one below it.
//!
//! Every text read is kept in a [`SourceMap`], so an error points into the file that holds
//! the bad line.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::path;
use crate::spans::Spans;

/// The manifest and everything it extends, merged.
#[derive(Debug, Clone)]
pub struct Composed {
    /// Every file read (the manifest first).
    pub sources: SourceMap,
    /// Indices into `sources` in merge order: the deepest base first, the manifest last.
    pub order: Vec<usize>,
    /// The merged document, without `extends`.
    pub merged: Table,
    /// True when the manifest extends another file.
    pub extends: bool,
}

/// Reads `raw` (the text of `path`) and every file it extends. Errors are located in the file
/// at fault; a syntax error anywhere stops there.
pub fn compose(path: &Path, raw: &str) -> Result<Composed, (SourceMap, Vec<Diagnostic>)> {
    let mut sources = SourceMap::default();
    let mut order = Vec::new();
    let mut stack = Vec::new();
    match read(path, raw.to_string(), &mut sources, &mut order, &mut stack) {
        Ok(merged) => {
            let extends = order.len() > 1;
            Ok(Composed { sources, order, merged, extends })
        }
        Err(d) => Err((sources, d)),
    }
}

fn read(path: &Path, text: String, sources: &mut SourceMap, order: &mut Vec<usize>, stack: &mut Vec<PathBuf>) -> Result<Table, Vec<Diagnostic>> {
    let start = sources.add(path.display().to_string(), text.clone());
    let index = sources.files().len() - 1;
    let shift = |d: Diagnostic| Diagnostic { span: d.span.map(|s| s.start + start..s.end + start), ..d };
    let mut doc: Table = toml::from_str(&text).map_err(|e| vec![shift(crate::load::from_toml_error(&e))])?;
    let spans = Spans::new(&text);
    let bases = match doc.remove("extends") {
        None => vec![],
        Some(Value::String(s)) => vec![(s, spans.value(&path!["extends"]))],
        Some(Value::Array(list)) if list.iter().all(Value::is_str) => list.iter().enumerate().map(|(i, v)| (v.as_str().unwrap_or_default().to_string(), spans.value(&path!["extends", i]))).collect(),
        Some(_) => return Err(vec![shift(Diagnostic::new("`extends` is a list of manifest files", spans.value(&path!["extends"])))]),
    };
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    stack.push(canonical);
    let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut merged = Table::new();
    for (name, at) in bases {
        let base_path = folder.join(&name);
        let located = |message: String, help: Option<String>| vec![shift(Diagnostic::new(message, at.clone()).with_help(help))];
        let canonical = base_path.canonicalize().unwrap_or_else(|_| base_path.clone());
        if stack.contains(&canonical) {
            return Err(located(format!("`{name}` is already being read: `extends` forms a cycle"), Some("remove one `extends` of the cycle".into())));
        }
        let base_text = crate::files::read_manifest(&base_path)
            .map_err(|e| located(format!("cannot read `{}`: {e}", base_path.display()), Some("paths in `extends` are relative to the file that names them".into())))?;
        let base = read(&base_path, base_text, sources, order, stack)?;
        merge(&mut merged, base);
    }
    stack.pop();
    merge(&mut merged, doc);
    order.push(index);
    Ok(merged)
}

/// Merges `top` into `base`: see the module documentation.
pub fn merge(base: &mut Table, top: Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(t)) if !is_sweep(b) && !is_sweep(&t) => merge(b, t),
            // Lists of named entries (`[[method]]`) merge by name; any other list — a network's
            // `layers` included — is a value, and replaces.
            (Some(Value::Array(b)), Value::Array(t)) if is_named(b) && is_named(&t) => {
                for entry in t {
                    let name = entry.get("name").and_then(|n| n.as_str()).map(str::to_string);
                    match b.iter_mut().find(|e| name.is_some() && e.get("name").and_then(|n| n.as_str()) == name.as_deref()) {
                        Some(Value::Table(existing)) => {
                            if let Value::Table(entry) = entry {
                                merge(existing, entry);
                            }
                        }
                        _ => b.push(entry),
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn is_sweep(t: &Table) -> bool {
    t.contains_key("sweep")
}

fn is_named(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|v| v.get("name").is_some_and(Value::is_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_entries_merge_by_name_and_other_lists_replace() {
        let mut base: Table = toml::from_str("[[method]]\nname = 'a'\nsamples = 4\n[zoo.z]\narch = { kind = 'sequential', layers = [{ type = 'flatten' }, { type = 'linear', out = 10 }] }").unwrap();
        let top: Table = toml::from_str("[[method]]\nname = 'a'\nsamples = 8\n[[method]]\nname = 'b'\n[zoo.z]\narch = { layers = [{ type = 'linear', out = 3 }] }").unwrap();
        merge(&mut base, top);
        let methods = base["method"].as_array().unwrap();
        assert_eq!(methods.len(), 2);
        assert_eq!(methods[0]["samples"].as_integer(), Some(8));
        let layers = base["zoo"]["z"]["arch"]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "a network's layers are replaced, not appended: {layers:?}");
        assert_eq!(base["zoo"]["z"]["arch"]["kind"].as_str(), Some("sequential"));
    }
}
