//! The manifest's JSON Schema, generated from the serde types and completed with what the
//! engine's registries accept (metric keys, plot ids), plus the schema pass of validation:
//! every key that is unknown, mistyped or missing, found in one pass and located in the text.
//! A committed copy (`engine/manifest/weightlab.schema.json`) lets editors complete and check
//! manifests through a `#:schema` comment; a test keeps it in sync.

use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::spans::{Seg, Spans};
use crate::suggest::{did_you_mean, one_of};
use crate::types::Manifest;
use crate::validate::Catalog;

/// The JSON Schema of a manifest, with the catalog's metric keys and plot ids as enums.
pub fn manifest_schema(catalog: &Catalog) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Manifest)).expect("a schema always serialises");
    let defs = if schema.get("$defs").is_some() { "$defs" } else { "definitions" };
    for (def, field, values) in [("EvaluateSpec", "metrics", &catalog.metrics), ("ReportSpec", "plots", &catalog.plots)] {
        if let Some(prop) = schema.pointer_mut(&format!("/{defs}/{def}/properties/{field}")) {
            let description = prop.get("description").cloned().unwrap_or(Value::Null);
            *prop = json!({ "description": description, "type": "array", "items": { "enum": values } });
        }
    }
    schema
}

/// [`manifest_schema`], pretty-printed.
pub fn manifest_schema_json(catalog: &Catalog) -> String {
    let mut text = serde_json::to_string_pretty(&manifest_schema(catalog)).expect("a schema always serialises");
    text.push('\n');
    text
}

/// The manifest's top-level sections, one line each from the schema's own descriptions (so the
/// list cannot drift from what validation accepts): what `weightlab --help` ends with.
pub fn sections_help() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(Manifest)).unwrap_or_default();
    let mut out = String::from("Manifest sections (`weightlab schema` prints the whole JSON Schema; the manual's \"The manifest\" explains each):\n");
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, value) in properties {
            let header = match key.as_str() {
                "extends" => "extends = [..]".to_string(),
                "method" => "[[method]]".to_string(),
                "data" | "zoo" => format!("[{key}.<name>]"),
                other => format!("[{other}]"),
            };
            let description = value.get("description").and_then(Value::as_str).unwrap_or_default();
            let first = description.split(". ").next().unwrap_or_default().trim_end_matches('.').replace('\n', " ");
            out.push_str(&format!("  {header:<16} {first}\n"));
        }
    }
    out
}

/// Checks a parsed document against the schema and returns every problem, each at the key or
/// value at fault. Where a value could take several forms (an architecture's `kind`), the
/// problems of the form it comes closest to are reported.
pub fn check(document: &Value, schema: &Value, spans: &Spans) -> Vec<Diagnostic> {
    let Ok(validator) = jsonschema::validator_for(schema) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in validator.iter_errors(document) {
        collect(&e, schema, spans, &mut out);
    }
    out.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
    out.dedup_by(|a, b| a.span == b.span && a.message == b.message);
    out
}

/// Every NaN or infinite float of a manifest (TOML writes them `nan`, `inf`), each at its
/// value. JSON — what the schema checks and what plugins get their config as — has neither:
/// converted, they would read as `null` and be refused as "not a number" without saying why.
pub fn non_finite(table: &toml::Table, spans: &Spans) -> Vec<Diagnostic> {
    fn walk(value: &toml::Value, path: &mut Vec<Seg>, spans: &Spans, out: &mut Vec<Diagnostic>) {
        match value {
            toml::Value::Float(f) if !f.is_finite() => {
                out.push(
                    Diagnostic::new(format!("`{}`: {f} is not a finite number", dotted(path)), spans.value(path))
                        .with_help(Some("weightlab takes finite values only (JSON, in which plugins get their config, has no NaN or infinity): write a number".into())),
                );
            }
            toml::Value::Table(t) => {
                for (k, v) in t {
                    path.push(Seg::Key(k.clone()));
                    walk(v, path, spans, out);
                    path.pop();
                }
            }
            toml::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push(Seg::Index(i));
                    walk(v, path, spans, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in table {
        walk(v, &mut vec![Seg::Key(k.clone())], spans, &mut out);
    }
    out
}

fn segments(pointer: &str) -> Vec<Seg> {
    pointer
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = s.replace("~1", "/").replace("~0", "~");
            s.parse::<usize>().map(Seg::Index).unwrap_or(Seg::Key(s))
        })
        .collect()
}

fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn collect(e: &jsonschema::ValidationError, schema: &Value, spans: &Spans, out: &mut Vec<Diagnostic>) {
    use jsonschema::error::ValidationErrorKind as K;
    let path = segments(e.instance_path().as_str());
    let at = dotted(&path);
    match e.kind() {
        K::AdditionalProperties { unexpected } => {
            let known = properties_at(schema, &path);
            for key in unexpected {
                let mut key_path = path.clone();
                key_path.push(Seg::Key(key.clone()));
                let help = did_you_mean(key, known.iter()).unwrap_or_else(|| one_of("allowed keys", &known));
                let place = if at.is_empty() { String::new() } else { format!(" in `{at}`") };
                out.push(Diagnostic::new(format!("unknown key `{key}`{place}"), spans.key(&key_path)).with_help(Some(help)));
            }
        }
        K::OneOfNotValid { context } | K::AnyOf { context } => {
            // A choice among constants (an enum whose variants carry docs): one unknown value.
            let constants: Option<Vec<String>> = context
                .iter()
                .flatten()
                .map(|inner| match inner.kind() {
                    K::Constant { expected_value } if inner.instance_path().as_str() == e.instance_path().as_str() => expected_value.as_str().map(str::to_string),
                    _ => None,
                })
                .collect();
            if let Some(allowed) = constants.filter(|c| !c.is_empty()) {
                let word = e.instance().as_str().map(str::to_string).unwrap_or_else(|| e.instance().to_string());
                let help = did_you_mean(&word, allowed.iter()).unwrap_or_else(|| one_of("allowed values", &allowed));
                out.push(Diagnostic::new(format!("`{at}`: unknown value `{word}`"), spans.value(&path)).with_help(Some(help)));
                return;
            }
            // A tagged union (`arch = { kind = "…" }`): every branch refuses the same tag key
            // with its own constant, so the tag names no branch — say which names exist.
            let tags: Vec<(String, String)> = context
                .iter()
                .filter_map(|branch| {
                    branch.iter().find_map(|inner| match inner.kind() {
                        K::Constant { expected_value } => {
                            let sub = inner.instance_path().as_str().strip_prefix(e.instance_path().as_str())?;
                            (sub.matches('/').count() == 1).then(|| (sub.to_string(), expected_value.as_str().unwrap_or_default().to_string()))
                        }
                        _ => None,
                    })
                })
                .collect();
            if !context.is_empty() && tags.len() == context.len() && tags.iter().all(|(sub, _)| *sub == tags[0].0) {
                let tag_path = segments(&format!("{}{}", e.instance_path().as_str(), tags[0].0));
                let allowed: Vec<String> = tags.iter().map(|(_, v)| v.clone()).collect();
                let found = e.instance().pointer(&tags[0].0).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_default();
                let help = did_you_mean(&found, allowed.iter()).unwrap_or_else(|| one_of("allowed values", &allowed));
                out.push(Diagnostic::new(format!("`{}`: unknown value `{found}`", dotted(&tag_path)), spans.value(&tag_path)).with_help(Some(help)));
                return;
            }
            // Otherwise the branch with the fewest problems is the form the user meant.
            match context.iter().filter(|branch| !branch.is_empty()).min_by_key(|branch| branch.len()) {
                Some(branch) => branch.iter().for_each(|inner| collect(inner, schema, spans, out)),
                None => out.push(Diagnostic::new(format!("`{at}`: {e}"), spans.value(&path))),
            }
        }
        K::Enum { options } => {
            let word = e.instance().as_str().unwrap_or_default().to_string();
            let allowed: Vec<String> = options.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
            let help = did_you_mean(&word, allowed.iter()).unwrap_or_else(|| one_of("allowed values", &allowed));
            out.push(Diagnostic::new(format!("`{at}`: unknown value `{word}`"), spans.value(&path)).with_help(Some(help)));
        }
        K::Constant { expected_value } => {
            out.push(Diagnostic::new(format!("`{at}`: expected `{}`, found {}", expected_value.as_str().unwrap_or_default(), e.instance()), spans.value(&path)));
        }
        K::Required { property } => {
            let what = if at.is_empty() { "the manifest".to_string() } else { format!("`{at}`") };
            out.push(
                Diagnostic::new(format!("{what} is missing the required key `{}`", property.as_str().unwrap_or_default()), spans.value(&path))
                    .with_help(Some("see `weightlab schema` for every key and its default".into())),
            );
        }
        K::MaxLength { limit } => {
            let chars = e.instance().as_str().map_or(0, |t| t.chars().count());
            out.push(Diagnostic::new(format!("`{at}` is {chars} characters long (at most {limit})"), spans.value(&path)));
        }
        _ => {
            // The validator's message quotes the value whole: a long one is cut.
            let instance = e.instance().to_string();
            let message = match instance.char_indices().nth(60) {
                Some((cut, _)) => e.to_string().replace(&instance, &format!("{}…", &instance[..cut])),
                None => e.to_string(),
            };
            out.push(Diagnostic::new(if at.is_empty() { message } else { format!("`{at}`: {message}") }, spans.value(&path)))
        }
    }
}

/// Follows `$ref`s.
fn deref<'a>(schema: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => node = schema.pointer(pointer).unwrap_or(node),
            None => break,
        }
    }
    node
}

/// The keys the schema allows in the table at `path` (best effort, for did-you-mean).
fn properties_at(schema: &Value, path: &[Seg]) -> Vec<String> {
    let mut nodes = vec![deref(schema, schema)];
    for seg in path {
        let mut next = Vec::new();
        for node in nodes.iter().flat_map(|n| branches(schema, n)) {
            let child = match seg {
                Seg::Key(k) => node.pointer(&format!("/properties/{k}")).or_else(|| node.get("additionalProperties").filter(|a| a.is_object())),
                Seg::Index(_) => node.get("items"),
            };
            if let Some(c) = child {
                next.push(deref(schema, c));
            }
        }
        nodes = next;
    }
    let mut keys: Vec<String> = nodes.iter().flat_map(|n| branches(schema, n)).filter_map(|n| n.get("properties").and_then(Value::as_object)).flat_map(|p| p.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A node and, for `oneOf`/`anyOf`/`allOf`, each of its alternatives.
fn branches<'a>(schema: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let mut out = vec![node];
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = node.get(key).and_then(Value::as_array) {
            out.extend(list.iter().map(|b| deref(schema, b)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_help_lists_every_manifest_section() {
        let help = super::sections_help();
        for section in ["[experiment]", "[data.<name>]", "[zoo.<name>]", "[[method]]", "[evaluate]", "[report]", "[sweep]", "[cluster]", "extends = [..]"] {
            assert!(help.contains(section), "{section} missing from:\n{help}");
        }
    }
}
