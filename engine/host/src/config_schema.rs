//! The JSON Schema subset a plugin may declare for its config, checked before any validator is
//! built from it. A schema is plugin-controlled input: a self-reference such as
//! `{"allOf":[{"$ref":"#"}]}` or a `$defs` cycle sends a general validator into unbounded
//! recursion, a chain of definitions that each use the one before twice grows exponentially,
//! and `$ref`/`$id`/`$schema` could name documents elsewhere. The subset is what config
//! derives (schemars in the Rust SDK, the Python SDK's fields) produce, and nothing that can
//! recurse, reach out or run a regular expression:
//!
//! - size: at most [`SCHEMA_BYTES`](crate::untrusted::SCHEMA_BYTES) as JSON, [`MAX_DEPTH`]
//!   nested schemas, and [`MAX_EXPANDED`] schema nodes once every `$ref` is expanded;
//! - `$ref` only to a local definition (`#/$defs/NAME` or `#/definitions/NAME`) that exists,
//!   and no definition reaches itself (so recursive config types are refused);
//! - `$schema`, when given, one of the JSON Schema drafts by its usual URI;
//! - the keywords in [`ANNOTATIONS`], [`VALUE_KEYWORDS`] and the applicators below; anything
//!   else (`$id`, `$anchor`, `$dynamicRef`, `pattern`, `patternProperties`, `format: "regex"`,
//!   …) is refused by name.
//!
//! Checking is linear in the schema's size, so it is bounded whatever the plugin sends.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Deepest nesting of schemas (objects inside `properties`, `items`, `allOf`, …).
pub const MAX_DEPTH: usize = 32;
/// Most schema nodes once every `$ref` is expanded: bounds a validator's size and the time it
/// takes per config, even for a schema whose definitions reuse each other many times.
pub const MAX_EXPANDED: u64 = 20_000;

/// Keywords that only annotate.
pub const ANNOTATIONS: &[&str] = &["title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment", "nullable"];
/// Keywords that constrain a value without holding schemas.
pub const VALUE_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "required",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "format",
];
/// weightlab's own keyword: a bound relative to the zoo a method gets, named by one of
/// [`ZOO_QUANTITIES`] — `{"type": "integer", "x-weightlab-below": "training_checkpoints"}` — which
/// the engine turns into `exclusiveMaximum` once it knows the zoo, before anything runs.
pub const BELOW: &str = "x-weightlab-below";
/// What [`BELOW`] may name.
pub const ZOO_QUANTITIES: &[&str] = &["training_checkpoints"];

/// Keywords whose value is one schema.
const ONE_SCHEMA: &[&str] = &["additionalProperties", "items", "not", "if", "then", "else"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: &[&str] = &["properties", "$defs", "definitions"];

/// The drafts `$schema` may name.
const DRAFTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema#",
    "http://json-schema.org/draft-04/schema#",
];

/// Why a schema is outside the subset, with where (a JSON pointer into the schema).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("config schema{}: {reason}", if at.is_empty() { String::new() } else { format!(" at `{at}`") })]
pub struct SchemaError {
    pub at: String,
    pub reason: String,
}

fn refuse(at: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError { at: at.to_string(), reason: reason.into() }
}

/// Checks that `schema` is inside the subset (see the module docs).
pub fn check(schema: &Value) -> Result<(), SchemaError> {
    let size = serde_json::to_vec(schema).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > crate::untrusted::SCHEMA_BYTES {
        return Err(refuse("", format!("{size} bytes of JSON, more than the {} allowed", crate::untrusted::SCHEMA_BYTES)));
    }
    let defs = definitions(schema);
    let walk = Walk { defs: &defs };
    walk.node(schema, "", 0)?;
    // Each definition's expanded size, memoised; a definition met again while it is being
    // expanded is a cycle.
    let mut sizes: HashMap<String, Option<u64>> = HashMap::new();
    let root = expanded(schema, &defs, &mut sizes, "")?;
    // Definitions the root does not use are still compiled by a validator: no cycles there either.
    for (name, def) in &defs {
        if !sizes.contains_key(name) {
            sizes.insert(name.clone(), None);
            let n = expanded(def, &defs, &mut sizes, name.trim_start_matches('#'))?;
            sizes.insert(name.clone(), Some(n));
        }
    }
    if root > MAX_EXPANDED {
        return Err(refuse("", format!("expands to more than {MAX_EXPANDED} schemas once its `$ref`s are followed")));
    }
    Ok(())
}

/// `schema` (inside the subset: call [`check`] first) with every `$ref` replaced by the
/// definition it names, and the definitions dropped: a schema with no references at all. A
/// validator built from it needs no reference resolution (jsonschema 0.33 keeps every
/// validator that resolves a `$ref` alive through a cycle of shared pointers: megabytes a
/// validator, never freed), and its size is the expanded size [`check`] bounded.
pub fn inline(schema: &Value) -> Value {
    let defs = definitions(schema);
    let mut out = inline_node(schema, &defs, 0);
    if let Value::Object(map) = &mut out {
        map.remove("$defs");
        map.remove("definitions");
    }
    out
}

fn inline_node(schema: &Value, defs: &HashMap<String, &Value>, depth: usize) -> Value {
    let Value::Object(map) = schema else { return schema.clone() };
    // A cycle cannot pass `check`; the depth guard keeps a caller that skipped it finite.
    if depth > 4 * MAX_DEPTH {
        return Value::Bool(false);
    }
    let mut out = Map::new();
    let mut target = None;
    for (key, value) in map {
        let inlined = match key.as_str() {
            "$ref" => {
                target = value.as_str().and_then(|t| defs.get(t)).map(|d| inline_node(d, defs, depth + 1));
                continue;
            }
            "$defs" | "definitions" if depth > 0 => continue,
            k if ONE_SCHEMA.contains(&k) => inline_node(value, defs, depth + 1),
            k if SCHEMA_LISTS.contains(&k) => Value::Array(value.as_array().into_iter().flatten().map(|v| inline_node(v, defs, depth + 1)).collect()),
            "properties" => Value::Object(value.as_object().into_iter().flatten().map(|(n, v)| (n.clone(), inline_node(v, defs, depth + 1))).collect()),
            _ => value.clone(),
        };
        out.insert(key.clone(), inlined);
    }
    match target {
        None => Value::Object(out),
        // `$ref` beside other keywords applies alongside them (draft 2019-09 on).
        Some(def) if out.keys().all(|k| ANNOTATIONS.contains(&k.as_str()) || k == "$schema") => match def {
            Value::Object(mut d) => {
                for (k, v) in out {
                    d.entry(k).or_insert(v);
                }
                Value::Object(d)
            }
            other => other,
        },
        Some(def) => {
            let all = out.entry("allOf").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = all {
                list.push(def);
            }
            Value::Object(out)
        }
    }
}

/// The local definitions of the root (`$defs` and `definitions`), by the `$ref` that names them.
fn definitions(schema: &Value) -> HashMap<String, &Value> {
    let mut out = HashMap::new();
    for key in ["$defs", "definitions"] {
        for (name, def) in schema.get(key).and_then(Value::as_object).into_iter().flatten() {
            out.insert(format!("#/{key}/{}", name.replace('~', "~0").replace('/', "~1")), def);
        }
    }
    out
}

struct Walk<'a> {
    defs: &'a HashMap<String, &'a Value>,
}

impl Walk<'_> {
    fn node(&self, schema: &Value, at: &str, depth: usize) -> Result<(), SchemaError> {
        if depth > MAX_DEPTH {
            return Err(refuse(at, format!("nested more than {MAX_DEPTH} schemas deep")));
        }
        let map = match schema {
            Value::Bool(_) => return Ok(()),
            Value::Object(map) => map,
            _ => return Err(refuse(at, "a schema must be an object or a boolean")),
        };
        for (key, value) in map {
            let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
            match key.as_str() {
                "$ref" => self.reference(value, &here)?,
                "$schema" if depth == 0 => {
                    if !value.as_str().is_some_and(|s| DRAFTS.contains(&s)) {
                        return Err(refuse(&here, format!("`$schema` must name a JSON Schema draft ({})", DRAFTS[0])));
                    }
                }
                BELOW => {
                    if !value.as_str().is_some_and(|q| ZOO_QUANTITIES.contains(&q)) {
                        return Err(refuse(&here, format!("`{BELOW}` names one of {}", ZOO_QUANTITIES.join(", "))));
                    }
                }
                "format" if value.as_str() == Some("regex") => return Err(refuse(&here, "`format: \"regex\"` is not supported (it compiles config values as regular expressions)")),
                k if ANNOTATIONS.contains(&k) || VALUE_KEYWORDS.contains(&k) => {}
                k if ONE_SCHEMA.contains(&k) => self.node(value, &here, depth + 1)?,
                k if SCHEMA_LISTS.contains(&k) => {
                    let list = value.as_array().ok_or_else(|| refuse(&here, format!("`{k}` must be a list of schemas")))?;
                    for (i, s) in list.iter().enumerate() {
                        self.node(s, &format!("{here}/{i}"), depth + 1)?;
                    }
                }
                k if SCHEMA_MAPS.contains(&k) => {
                    if matches!(k, "$defs" | "definitions") && depth > 0 {
                        return Err(refuse(&here, format!("`{k}` is allowed at the top of the schema only")));
                    }
                    let entries = value.as_object().ok_or_else(|| refuse(&here, format!("`{k}` must map names to schemas")))?;
                    for (name, s) in entries {
                        self.node(s, &format!("{here}/{}", name.replace('~', "~0").replace('/', "~1")), depth + 1)?;
                    }
                }
                k => {
                    return Err(refuse(
                        &here,
                        format!(
                            "keyword `{k}` is outside the subset plugins may use (see the threat model: annotations, {}, properties, items, allOf/anyOf/oneOf, local `$ref`s)",
                            VALUE_KEYWORDS.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn reference(&self, value: &Value, at: &str) -> Result<(), SchemaError> {
        let target = value.as_str().ok_or_else(|| refuse(at, "`$ref` must be a string"))?;
        if !self.defs.contains_key(target) {
            let why = if target.starts_with("#/$defs/") || target.starts_with("#/definitions/") { "names no definition of this schema" } else { "must name a local definition (`#/$defs/NAME`)" };
            return Err(refuse(at, format!("`$ref` \"{}\" {why}", crate::untrusted::line(target, 80))));
        }
        Ok(())
    }
}

/// Schema nodes under `schema` with every `$ref` expanded; a cycle is an error.
fn expanded(schema: &Value, defs: &HashMap<String, &Value>, sizes: &mut HashMap<String, Option<u64>>, at: &str) -> Result<u64, SchemaError> {
    let Value::Object(map) = schema else { return Ok(1) };
    let mut total = 1u64;
    for (key, value) in map {
        let add = match key.as_str() {
            "$ref" => {
                let target = value.as_str().unwrap_or_default();
                match sizes.get(target) {
                    Some(Some(n)) => *n,
                    Some(None) => return Err(refuse(at, format!("`$ref` \"{}\" refers back to itself (recursive config schemas are not supported)", crate::untrusted::line(target, 80)))),
                    None => {
                        sizes.insert(target.to_string(), None);
                        let n = match defs.get(target) {
                            Some(def) => expanded(def, defs, sizes, target.trim_start_matches('#'))?,
                            None => 1,
                        };
                        sizes.insert(target.to_string(), Some(n));
                        n
                    }
                }
            }
            "$defs" | "definitions" => 0,
            k if ONE_SCHEMA.contains(&k) => expanded(value, defs, sizes, at)?,
            k if SCHEMA_LISTS.contains(&k) => children(value.as_array().into_iter().flatten(), defs, sizes, at)?,
            "properties" => children(value.as_object().map(Map::values).into_iter().flatten(), defs, sizes, at)?,
            _ => 0,
        };
        total = total.saturating_add(add);
        if total > MAX_EXPANDED {
            return Ok(total);
        }
    }
    Ok(total)
}

fn children<'a>(values: impl Iterator<Item = &'a Value>, defs: &HashMap<String, &Value>, sizes: &mut HashMap<String, Option<u64>>, at: &str) -> Result<u64, SchemaError> {
    let mut total = 0u64;
    for v in values {
        total = total.saturating_add(expanded(v, defs, sizes, at)?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_the_sdks_derive_is_inside() {
        // schemars' output for a config with an enum in `$defs` and bounds.
        let schemars = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Config", "type": "object", "additionalProperties": false,
            "properties": {
                "sigma": { "description": "std", "type": "number", "format": "float", "minimum": 0.0, "default": 0.05 },
                "schedule": { "$ref": "#/$defs/Schedule", "default": "linear" },
                "hidden": { "type": ["array", "null"], "items": { "type": "integer", "format": "uint", "minimum": 0 } },
                "opt": { "anyOf": [{ "$ref": "#/$defs/Schedule" }, { "type": "null" }] }
            },
            "required": ["sigma"],
            "$defs": { "Schedule": { "oneOf": [{ "const": "linear", "type": "string" }, { "enum": ["cosine"] }] } }
        });
        check(&schemars).unwrap();
        check(&json!({})).unwrap();
        check(&json!(true)).unwrap();
        // weightlab's own bound relative to the zoo: a known quantity only.
        check(&json!({ "properties": { "k": { "type": "integer", "x-weightlab-below": "training_checkpoints" } } })).unwrap();
        assert!(check(&json!({ "properties": { "k": { "x-weightlab-below": "parameters" } } })).is_err());
        assert!(check(&json!({ "properties": { "k": { "x-weightlab-below": 3 } } })).is_err());
    }

    #[test]
    fn inlining_leaves_no_reference_and_keeps_the_meaning() {
        let schema = json!({
            "type": "object",
            "properties": { "s": { "$ref": "#/$defs/S", "default": "linear" }, "t": { "$ref": "#/$defs/S", "minLength": 2 } },
            "$defs": { "S": { "enum": ["linear", "cosine"] } }
        });
        check(&schema).unwrap();
        let flat = inline(&schema);
        assert!(!serde_json::to_string(&flat).unwrap().contains("$ref") && flat.get("$defs").is_none(), "{flat}");
        assert_eq!(flat["properties"]["s"], json!({ "enum": ["linear", "cosine"], "default": "linear" }));
        assert_eq!(flat["properties"]["t"], json!({ "minLength": 2, "allOf": [{ "enum": ["linear", "cosine"] }] }));
    }

    #[test]
    fn recursion_remote_references_and_blow_ups_are_refused() {
        let root_cycle = check(&json!({ "allOf": [{ "$ref": "#" }] })).unwrap_err();
        assert!(root_cycle.reason.contains("local definition"), "{root_cycle}");
        let defs_cycle = check(&json!({ "$ref": "#/$defs/a", "$defs": { "a": { "$ref": "#/$defs/b" }, "b": { "allOf": [{ "$ref": "#/$defs/a" }] } } })).unwrap_err();
        assert!(defs_cycle.reason.contains("refers back to itself"), "{defs_cycle}");
        assert!(check(&json!({ "$ref": "https://example.invalid/s.json" })).is_err());
        assert!(check(&json!({ "$id": "https://example.invalid/" })).unwrap_err().reason.contains("`$id`"));
        assert!(check(&json!({ "properties": { "a": { "pattern": "(a+)+$" } } })).unwrap_err().reason.contains("`pattern`"));
        assert!(check(&json!({ "$schema": "https://example.invalid/meta" })).is_err());
        // 2^30 once expanded: each definition uses the one before twice.
        let mut defs = serde_json::Map::new();
        defs.insert("d0".into(), json!({ "type": "number" }));
        for i in 1..30 {
            defs.insert(format!("d{i}"), json!({ "allOf": [{ "$ref": format!("#/$defs/d{}", i - 1) }, { "$ref": format!("#/$defs/d{}", i - 1) }] }));
        }
        let wide = check(&json!({ "$ref": "#/$defs/d29", "$defs": defs })).unwrap_err();
        assert!(wide.reason.contains("expands to more than"), "{wide}");
        let mut deep = json!({ "type": "number" });
        for _ in 0..40 {
            deep = json!({ "items": deep });
        }
        assert!(check(&deep).unwrap_err().reason.contains("nested more than"));
    }
}
