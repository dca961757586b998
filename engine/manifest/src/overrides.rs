//! `--set zoo.mlp.models=32` overrides, applied to the manifest text before it is parsed, so
//! that they go through exactly the same validation as the file itself.
//!
//! A path is dot-separated keys. In an array of tables (`[[method]]`) a segment is either an
//! index (`method.0.samples=8`) or the entry's `name` (`method.copy.samples=8`). The value is
//! read as a TOML value (`32`, `1e-3`, `[1, 2]`, `{ sigma = 0.1 }`, `"text"`); anything that is
//! not valid TOML is taken as a bare string (`plugin=noise`).

use toml_edit::{DocumentMut, Item, value};

/// A `--set` that could not be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OverrideError {
    #[error("`--set {0}`: expected KEY.PATH=VALUE")]
    Syntax(String),
    #[error("`--set {arg}`: `{segment}` does not name an entry of `{parent}`{help}")]
    NoEntry { arg: String, segment: String, parent: String, help: String },
    #[error("`--set {arg}`: `{parent}` is not a table")]
    NotATable { arg: String, parent: String },
}

/// Applies each `KEY.PATH=VALUE` in order to `text` and returns the new text.
pub fn apply(text: &str, sets: &[String]) -> Result<String, OverrideError> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    // A manifest that is not valid TOML gets its syntax error from the parser later, with a span.
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return Ok(text.to_string());
    };
    for arg in sets {
        let (path, raw) = arg.split_once('=').ok_or_else(|| OverrideError::Syntax(arg.clone()))?;
        let segments: Vec<&str> = path.trim().split('.').map(str::trim).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(OverrideError::Syntax(arg.clone()));
        }
        let new_value = parse_value(raw.trim());
        set_path(doc.as_item_mut(), &segments, new_value, arg, "")?;
    }
    Ok(doc.to_string())
}

/// The overrides as a TOML text of dotted keys (`"zoo"."mlp"."models" = 32`), one per line, the
/// last of each key kept: the text errors point into when a problem is in a value `--set` gave.
pub fn as_toml(sets: &[String]) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    for arg in sets {
        let Some((path, raw)) = arg.split_once('=') else { continue };
        let key: Vec<String> = path.trim().split('.').map(|s| format!("{:?}", s.trim())).collect();
        let key = key.join(".");
        let raw = raw.trim();
        let value = if format!("v = {raw}").parse::<DocumentMut>().is_ok() { raw.to_string() } else { format!("{raw:?}") };
        lines.retain(|(k, _)| *k != key);
        lines.push((key, value));
    }
    lines.into_iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

fn parse_value(raw: &str) -> Item {
    match format!("v = {raw}").parse::<DocumentMut>() {
        Ok(doc) => doc.get("v").cloned().unwrap_or_else(|| value(raw)),
        Err(_) => value(raw),
    }
}

fn set_path(item: &mut Item, segments: &[&str], new: Item, arg: &str, parent: &str) -> Result<(), OverrideError> {
    let (first, rest) = segments.split_first().expect("non-empty path");
    let here = if parent.is_empty() { first.to_string() } else { format!("{parent}.{first}") };
    if let Item::ArrayOfTables(array) = item {
        let names: Vec<String> = array.iter().filter_map(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string)).collect();
        let index = first.parse::<usize>().ok().filter(|i| *i < array.len()).or_else(|| names.iter().position(|n| n == first));
        let Some(index) = index else {
            let help = crate::suggest::did_you_mean(first, names.iter()).map(|h| format!("; {h}")).unwrap_or_default();
            return Err(OverrideError::NoEntry { arg: arg.into(), segment: first.to_string(), parent: parent.into(), help });
        };
        let table = array.get_mut(index).expect("index checked");
        return match rest.is_empty() {
            true => Err(OverrideError::Syntax(arg.into())),
            false => set_in_table_like(table, rest, new, arg, &here),
        };
    }
    if item.is_none() {
        *item = Item::Table(toml_edit::Table::new());
    }
    let table = item.as_table_like_mut().ok_or_else(|| OverrideError::NotATable { arg: arg.into(), parent: parent.into() })?;
    set_in_table_like(table, segments, new, arg, parent)
}

fn set_in_table_like(table: &mut dyn toml_edit::TableLike, segments: &[&str], new: Item, arg: &str, parent: &str) -> Result<(), OverrideError> {
    let (first, rest) = segments.split_first().expect("non-empty path");
    if rest.is_empty() {
        table.insert(first, new);
        return Ok(());
    }
    let here = if parent.is_empty() { first.to_string() } else { format!("{parent}.{first}") };
    if table.get(first).is_none() {
        table.insert(first, Item::Table(toml_edit::Table::new()));
    }
    let child = table.get_mut(first).expect("just inserted");
    // Inline tables (`train = { lr = 1e-3 }`) are tables too.
    if let Some(inline) = child.as_inline_table_mut() {
        return set_in_table_like(inline, rest, new, arg, &here);
    }
    set_path(child, rest, new, arg, &here)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[zoo.mlp]\nmodels = 8\ntrain = { lr = 0.1 }\n\n[[method]]\nname = \"copy\"\nsamples = 4\n";

    #[test]
    fn sets_nested_inline_and_array_entries() {
        let out = apply(TEXT, &["zoo.mlp.models=32".into(), "zoo.mlp.train.lr=1e-3".into(), "method.copy.samples=9".into(), "method.0.plugin=copy".into()]).unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["zoo"]["mlp"]["models"].as_integer(), Some(32));
        assert_eq!(v["zoo"]["mlp"]["train"]["lr"].as_float(), Some(1e-3));
        assert_eq!(v["method"][0]["samples"].as_integer(), Some(9));
        assert_eq!(v["method"][0]["plugin"].as_str(), Some("copy"));
    }

    #[test]
    fn bad_overrides_are_explained() {
        assert!(matches!(apply(TEXT, &["zoo.mlp.models".into()]), Err(OverrideError::Syntax(_))));
        let err = apply(TEXT, &["method.cpy.samples=1".into()]).unwrap_err();
        assert!(err.to_string().contains("did you mean `copy`"), "{err}");
    }
}
