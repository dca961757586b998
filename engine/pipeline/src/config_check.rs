//! Checks a method's `config` table against the JSON Schema its plugin declares, and reports
//! problems like manifest errors: file:line:col of the offending key, and a did-you-mean.

use weightlab_manifest::spans::Seg;
use weightlab_manifest::suggest::suggest;
use weightlab_manifest::{Diagnostic, Loaded, ManifestError};

/// A validator for a plugin's config schema: the schema is first held to the subset plugins
/// may declare (bounded in size, depth and expansion, no recursive or remote references:
/// [`weightlab_host::config_schema`]), then its references are inlined, so building and
/// running the validator is bounded too and no reference is ever resolved.
pub fn validator(schema: &serde_json::Value) -> Result<jsonschema::Validator, String> {
    weightlab_host::config_schema::check(schema).map_err(|e| e.to_string())?;
    jsonschema::validator_for(&weightlab_host::config_schema::inline(schema)).map_err(|e| format!("not a valid JSON Schema: {e}"))
}

/// How many training checkpoints method `index` will learn from, when the manifest alone says
/// (plain training: training models × kept epochs; p-diff's continued training: training models
/// × snapshots). `None` for zoos whose count depends on their files or tasks (imported zoos,
/// model trees, task families) and for methods learning from several zoos.
pub fn training_checkpoints(loaded: &Loaded, index: usize) -> Option<usize> {
    let manifest = &loaded.manifest;
    let method = manifest.method.get(index)?;
    if !method.zoos.is_empty() {
        return None;
    }
    let zoo = manifest.zoo.get(&method.zoo)?;
    if zoo.import.is_some() || zoo.tree.is_some() || manifest.data.get(&zoo.data).is_none_or(|d| d.tasks.is_some()) {
        return None;
    }
    let models = zoo.split.as_ref().map_or(zoo.models, |s| s.train);
    let per_model = match &zoo.continuation {
        Some(c) => c.steps / c.keep_every.max(1),
        None => zoo.keep.last_epochs.min(zoo.train.epochs),
    };
    Some(models * per_model)
}

/// `schema` with each [`BELOW`](weightlab_host::config_schema::BELOW) bound turned into
/// `exclusiveMaximum` (when the zoo's quantity is known) or dropped; the keys bounded, with
/// the quantity's value.
fn with_zoo_bounds(schema: &serde_json::Value, checkpoints: Option<usize>) -> (serde_json::Value, Vec<(String, usize)>) {
    use weightlab_host::config_schema::BELOW;
    let mut schema = schema.clone();
    let mut bounded = Vec::new();
    if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        for (key, property) in properties.iter_mut() {
            let Some(object) = property.as_object_mut() else { continue };
            if object.remove(BELOW).is_some()
                && let Some(n) = checkpoints
            {
                object.insert("exclusiveMaximum".into(), n.into());
                bounded.push((key.clone(), n));
            }
        }
    }
    (schema, bounded)
}

/// Validates `config` of method `index` against `schema`; `Err` holds the rendered diagnostics.
/// Bounds the schema declares relative to the zoo are set from what the manifest says of it.
pub fn check(loaded: &Loaded, index: usize, plugin: &str, schema: &serde_json::Value, config: &serde_json::Value) -> Result<(), ManifestError> {
    let (schema, bounded) = with_zoo_bounds(schema, training_checkpoints(loaded, index));
    let schema = &schema;
    // A bound holds for the defaults too (`average`'s k = 16 on an 8-checkpoint zoo).
    let mut config = config.clone();
    let mut defaulted = Vec::new();
    if let (Some(values), Some(properties)) = (config.as_object_mut(), schema.get("properties").and_then(|p| p.as_object())) {
        for (key, property) in properties {
            if let Some(default) = property.get("default").filter(|_| !values.contains_key(key) && bounded.iter().any(|(k, _)| k == key)) {
                values.insert(key.clone(), default.clone());
                defaulted.push(key.clone());
            }
        }
    }
    let config = &config;
    let validator = match validator(schema) {
        Ok(v) => v,
        Err(e) => {
            let d = Diagnostic::new(format!("plugin `{plugin}` declares a config schema weightlab refuses: {e}"), None);
            return Err(loaded.error(vec![d]));
        }
    };
    let spans = loaded.spans();
    let known: Vec<String> = schema.get("properties").and_then(|p| p.as_object()).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let mut diagnostics = Vec::new();
    for e in validator.iter_errors(config) {
        let mut path: Vec<Seg> = vec!["method".into(), index.into(), "config".into()];
        path.extend(e.instance_path().as_str().split('/').filter(|s| !s.is_empty()).map(|s| Seg::Key(s.replace("~1", "/").replace("~0", "~"))));
        let d = match e.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                let key = unexpected.first().cloned().unwrap_or_default();
                path.push(Seg::Key(key.clone()));
                Diagnostic::new(format!("plugin `{plugin}` has no config option `{key}`"), spans.key(&path)).with_help(Some(suggest(&key, "options", &known)))
            }
            jsonschema::error::ValidationErrorKind::ExclusiveMaximum { .. } if let Some((key, n)) = bounded.iter().find(|(k, _)| path.last() == Some(&Seg::Key(k.clone()))) => {
                let zoo = &loaded.manifest.method[index].zoo;
                if defaulted.contains(key) {
                    let at = spans.value(&["method".into(), index.into(), "config".into()]).or_else(|| spans.value(&["method".into(), index.into(), "plugin".into()]));
                    Diagnostic::new(format!("plugin `{plugin}` config: `{key}` is {} by default, but zoo `{zoo}` gives the method {n} training checkpoints", e.instance()), at)
                        .with_help(Some(format!("set `{key}` below {n} in this method's `config`")))
                } else {
                    Diagnostic::new(format!("plugin `{plugin}` config: `{key}` = {}, but zoo `{zoo}` gives the method {n} training checkpoints", e.instance()), spans.value(&path))
                        .with_help(Some(format!("use {key} < {n}")))
                }
            }
            _ => {
                let key = match path.last() {
                    Some(Seg::Key(k)) if path.len() > 3 => format!("`{k}`: "),
                    _ => String::new(),
                };
                Diagnostic::new(format!("plugin `{plugin}` config: {key}{e}"), spans.value(&path))
            }
        };
        diagnostics.push(d);
    }
    if diagnostics.is_empty() { Ok(()) } else { Err(loaded.error(diagnostics)) }
}

/// A problem with key `key` of method `index` (e.g. its `plugin`), rendered like a manifest
/// error: file:line:col, the line, a caret and an optional help line.
pub fn at_method_key(loaded: &Loaded, index: usize, key: &str, message: String, help: Option<String>) -> ManifestError {
    let spans = loaded.spans();
    let path: Vec<Seg> = vec!["method".into(), index.into(), key.into()];
    loaded.error(vec![Diagnostic::new(message, spans.value(&path)).with_help(help)])
}

/// Loads every plugin a manifest names (each in a worker process, once per plugin, from the
/// bytes `plugins` read) and checks each method's pin, role and `config` against what its
/// plugin declares — before any stage runs, so a bad config costs no zoo training. Config and
/// role errors are printed like manifest errors and give `Err(number of errors)`. A plugin that
/// cannot be loaded is an error too when `strict` (`weightlab validate`); for `weightlab run` it
/// is a warning, and that method's stages fail alone with the reason.
pub fn check_methods(loaded: &Loaded, plugins: &crate::plugins::Plugins, strict: bool) -> Result<(), usize> {
    use std::collections::HashMap;
    let methods = &loaded.manifest.method;
    if methods.is_empty() {
        return Ok(());
    }
    crate::output::status("Checking", &format!("{} plugin configs", methods.iter().filter(|m| !m.is_imported()).count()));
    let mut described: HashMap<String, Result<weightlab_host::Description, String>> = HashMap::new();
    let mut errors = 0;
    for (index, method) in methods.iter().enumerate() {
        if method.is_imported() {
            continue;
        }
        if let Some(pin) = &method.sha256 {
            let actual = plugins.identity(&method.plugin);
            if !actual.eq_ignore_ascii_case(pin.trim()) {
                let message = format!("method `{}`: plugin `{}` has sha256 {actual}, not the pinned {}", method.name, method.plugin, pin.trim());
                let help = Some("the plugin's code changed since it was pinned: check the new build, then update `sha256` (`weightlab plugins` lists every hash)".to_string());
                eprintln!("{}", at_method_key(loaded, index, "sha256", message, help));
                errors += 1;
                continue;
            }
        }
        let d = described.entry(method.plugin.clone()).or_insert_with(|| crate::stages::method::describe(method, plugins).map_err(|e| e.to_string()));
        match d {
            Ok(d) => {
                if let Err(e) = crate::stages::method::check_plugin(loaded, index, d) {
                    eprintln!("{e}");
                    errors += 1;
                }
            }
            Err(reason) if strict => {
                crate::output::error(&format!("method `{}`: {reason}", method.name));
                errors += 1;
            }
            Err(reason) => crate::output::warn(&format!("method `{}` will fail: {reason}", method.name)),
        }
    }
    if errors > 0 { Err(errors) } else { Ok(()) }
}
