//! Everything checked before a run, in one pass ([`before_run`]): the user's files
//! ([`crate::preflight`]), each method's pin and role, its `config` against the JSON Schema its
//! plugin declares (with bounds relative to the zoo), and what the plugin's own `check` finds
//! for the zoo it will get ([`zoo_plan`]). Problems are reported like manifest errors:
//! file:line:col of the offending key, and a did-you-mean.

use weightlab_host::worker::CheckRequest;
use weightlab_host::{Description, ProbeTarget, Problem, Role, SourceView, TargetKind, ZooPlan, role_name};
use weightlab_manifest::spans::{Seg, Spans};
use weightlab_manifest::suggest::suggest;
use weightlab_manifest::{Diagnostic, Draft, Loaded, ManifestError, MethodSpec, ZooSpec};

use crate::error::{Error, Result};

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
    let zoo = manifest.zoo.get(&method.zoo)?;
    checkpoints_of(method, zoo, manifest.data.get(&zoo.data)?.tasks.is_some())
}

/// [`training_checkpoints`] from the entries themselves.
fn checkpoints_of(method: &MethodSpec, zoo: &ZooSpec, task_family: bool) -> Option<usize> {
    if !method.zoos.is_empty() || zoo.import.is_some() || zoo.tree.is_some() || task_family {
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
    let method = &loaded.manifest.method[index];
    let diagnostics = diagnostics(&loaded.spans(), index, method, training_checkpoints(loaded, index), plugin, schema, config);
    if diagnostics.is_empty() { Ok(()) } else { Err(loaded.error(diagnostics)) }
}

/// The problems of `config` of method `index` (`method`) under `schema`, located with `spans`;
/// `checkpoints` sets the bounds relative to the zoo.
fn diagnostics(spans: &Spans, index: usize, method: &MethodSpec, checkpoints: Option<usize>, plugin: &str, schema: &serde_json::Value, config: &serde_json::Value) -> Vec<Diagnostic> {
    let (schema, bounded) = with_zoo_bounds(schema, checkpoints);
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
            let at = spans.value(&["method".into(), index.into(), "plugin".into()]);
            return vec![Diagnostic::new(format!("plugin `{plugin}` declares a config schema weightlab refuses: {e}"), at)];
        }
    };
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
                let zoo = &method.zoo;
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
    diagnostics
}

/// A problem with key `key` of method `index` (e.g. its `plugin`), rendered like a manifest
/// error: file:line:col, the line, a caret and an optional help line.
pub fn at_method_key(loaded: &Loaded, index: usize, key: &str, message: String, help: Option<String>) -> ManifestError {
    let spans = loaded.spans();
    let path: Vec<Seg> = vec!["method".into(), index.into(), key.into()];
    loaded.error(vec![Diagnostic::new(message, spans.value(&path)).with_help(help)])
}

/// Everything checked before any stage runs, reported in one pass: the user's files, shapes and
/// imports ([`crate::preflight`]), then every plugin the manifest names, loaded once each in a
/// worker process from the bytes `plugins` read, with each method's pin, role and `config`
/// held to what its plugin declares (schema and zoo bounds) and to what its `check` finds for
/// the zoo it will get — so a bad config costs no zoo training. Located problems are printed
/// together in source order and give `Err(number of errors)`. A plugin that cannot be loaded
/// is an error too when `strict` (`weightlab validate`); for `weightlab run` it is a warning,
/// and that method's stages fail alone with the reason. Returns the datasets read.
pub fn before_run(loaded: &Loaded, plugins: &crate::plugins::Plugins, strict: bool) -> Result<crate::preflight::Read, usize> {
    let found = gather(loaded, plugins, strict);
    for warning in &found.warnings {
        crate::output::warn(warning);
    }
    for error in &found.errors {
        crate::output::error(error);
    }
    let errors = found.errors.len() + found.located.diagnostics.len();
    if !found.located.diagnostics.is_empty() {
        eprint!("{}", found.located);
    }
    if errors > 0 { Err(errors) } else { Ok(found.read) }
}

/// What [`before_run`] finds, not printed.
pub struct Found {
    /// Problems at a place in the manifest, in source order.
    pub located: ManifestError,
    /// Problems without one (a plugin that cannot be loaded, for `validate`).
    pub errors: Vec<String>,
    /// What will fail without stopping the run (a plugin that cannot be loaded, for `run`).
    pub warnings: Vec<String>,
    /// The datasets read.
    pub read: crate::preflight::Read,
}

/// The checks of [`before_run`], gathered.
pub fn gather(loaded: &Loaded, plugins: &crate::plugins::Plugins, strict: bool) -> Found {
    let (mut diagnostics, read) = crate::preflight::diagnostics(loaded);
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    method_diagnostics(loaded, plugins, strict, &read, &mut diagnostics, &mut errors, &mut warnings);
    weightlab_manifest::load::sort(&mut diagnostics);
    Found { located: loaded.error(diagnostics), errors, warnings, read }
}

/// The method half of [`gather`]: located problems go to `diagnostics`, others to `errors`
/// (or `warnings` when not `strict`).
fn method_diagnostics(
    loaded: &Loaded,
    plugins: &crate::plugins::Plugins,
    strict: bool,
    read: &crate::preflight::Read,
    diagnostics: &mut Vec<Diagnostic>,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    use std::collections::BTreeMap;
    let methods = &loaded.manifest.method;
    // The methods of each plugin whose pin holds, in manifest order.
    let mut by_plugin: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, method) in methods.iter().enumerate() {
        if method.is_imported() {
            continue;
        }
        if let Some(pin) = &method.sha256 {
            let actual = plugins.identity(&method.plugin);
            if !actual.eq_ignore_ascii_case(pin.trim()) {
                let message = format!("plugin `{}` has sha256 {actual}, not the pinned {}", method.plugin, pin.trim());
                let help = Some(if plugins.code(&method.plugin).is_ok_and(|c| crate::plugins::unreproducible_python_build(&c.bytes)) {
                    "this Python plugin was built without pinning the build (componentize-py's own output varies: bytecodealliance/componentize-py#247), so each build has another hash and a pin holds for one built file: keep that `.wasm` and point `plugin` at it, or rebuild it with `weightlab plugin build` on Linux x86-64, where builds are reproducible".to_string()
                } else {
                    "the plugin's code changed since it was pinned: check the new build, then update `sha256` (`weightlab plugins <manifest>` lists every hash, its own plugins included)".to_string()
                });
                diagnostics.extend(at_method_key(loaded, index, "sha256", message, help).diagnostics);
                continue;
            }
        }
        by_plugin.entry(method.plugin.as_str()).or_default().push(index);
    }
    if by_plugin.is_empty() {
        return;
    }
    crate::output::status("Checking", &format!("{} plugin configs", by_plugin.values().map(Vec::len).sum::<usize>()));
    for (plugin, indices) in by_plugin {
        // A config is checked for the zoo it will get only when the schema accepts it; the
        // plans are made first, so one worker describes and checks.
        let requests: Vec<Option<CheckRequest>> = indices.iter().map(|&i| check_request(loaded, i, read)).collect();
        let checks: Vec<CheckRequest> = requests.iter().flatten().cloned().collect();
        let first = &methods[indices[0]];
        let checked = plugins.code(plugin).and_then(|code| crate::calls::check_code(plugin, code, crate::calls::limits(&first.limits), checks));
        let (description, problems) = match checked {
            Ok(found) => found,
            Err(e) => {
                for &i in &indices {
                    if strict {
                        errors.push(format!("method `{}`: {e}", methods[i].name));
                    } else {
                        warnings.push(format!("method `{}` will fail: {e}", methods[i].name));
                    }
                }
                continue;
            }
        };
        let mut problems = problems.into_iter();
        for (&index, request) in indices.iter().zip(&requests) {
            let found = if request.is_some() { problems.next().unwrap_or_default() } else { Vec::new() };
            match check_plugin(loaded, index, &description) {
                Ok(_) => diagnostics.extend(found.into_iter().map(|p| problem_diagnostic(loaded, index, plugin, p))),
                Err(crate::Error::Manifest(e)) => diagnostics.extend(e.diagnostics),
                Err(other) => errors.push(format!("method `{}`: {other}", methods[index].name)),
            }
        }
    }
}

/// A problem a plugin's `check` found, at its config key (`a.0.b` walks tables and arrays),
/// else at the method's `config`, else at its `plugin`.
fn problem_diagnostic(loaded: &Loaded, index: usize, plugin: &str, problem: Problem) -> Diagnostic {
    let spans = loaded.spans();
    let method: Vec<Seg> = vec!["method".into(), index.into()];
    let at = match &problem.key {
        Some(key) => {
            let mut path = method.clone();
            path.push("config".into());
            path.extend(key.split('.').map(|k| k.parse::<usize>().map(Seg::from).unwrap_or_else(|_| Seg::Key(k.to_string()))));
            spans.value(&path)
        }
        None => None,
    };
    let at = at.or_else(|| spans.value(&[method[0].clone(), method[1].clone(), "config".into()])).or_else(|| spans.value(&[method[0].clone(), method[1].clone(), "plugin".into()]));
    let key = problem.key.map(|k| format!("`{k}`: ")).unwrap_or_default();
    Diagnostic::new(format!("plugin `{plugin}` config: {key}{}", problem.message), at)
}

/// What method `index`'s zoo will be, as the manifest and its data say before anything trains
/// (the zoo a plugin's `check` is shown). `None` when the data cannot say yet: files that did
/// not read (`read` holds those that did), a network that does not fit them.
pub fn zoo_plan(loaded: &Loaded, index: usize, read: &crate::preflight::Read) -> Option<ZooPlan> {
    let m = &loaded.manifest;
    let method = m.method.get(index)?;
    let source = |name: &str| -> Option<(SourceView, weightlab_compute::data::Declared, bool)> {
        let zoo = m.zoo.get(name)?;
        let spec = m.data.get(&zoo.data)?;
        let declared = match read.get(&zoo.data) {
            Some(d) => weightlab_compute::data::Declared::of(d),
            None => weightlab_compute::data::declared(spec)?,
        };
        let arch = weightlab_compute::Arch::for_shape(&zoo.arch, &declared.input_shape, declared.outputs()).ok()?;
        let layout = arch.layout();
        let view = SourceView { zoo: name.to_string(), arch: zoo.arch.descriptor().plugin_arch.to_string(), layout: crate::calls::layout_view(&layout), parameters: layout.len() as u32 };
        Some((view, declared, spec.tasks.is_some()))
    };
    let (own, declared, task_family) = source(&method.zoo)?;
    let sources = method.zoos.iter().map(|z| source(z).map(|(s, _, _)| s)).collect::<Option<Vec<_>>>()?;
    Some(ZooPlan {
        name: method.zoo.clone(),
        arch: own.arch,
        layout: own.layout,
        parameters: own.parameters,
        sources,
        checkpoints: training_checkpoints(loaded, index).map(|n| n as u32),
        classes: declared.class_names.len() as u32,
        class_names: declared.class_names,
        task_family,
    })
}

/// What method `index`'s plugin is asked to `check`: the zoo it will get ([`zoo_plan`]), its
/// probe target and its config; `None` when the zoo cannot be planned yet.
pub(crate) fn check_request(loaded: &Loaded, index: usize, read: &crate::preflight::Read) -> Option<CheckRequest> {
    let method = loaded.manifest.method.get(index)?;
    let zoo = zoo_plan(loaded, index, read)?;
    Some(CheckRequest { target: probe_target(method, &zoo), config: serde_json::to_value(&method.config).ok()?, zoo })
}

/// The target a probe method will be fitted on, as far as the manifest says (a model tree's
/// parents are known only once it is trained: no labels then).
fn probe_target(method: &MethodSpec, plan: &ZooPlan) -> Option<ProbeTarget> {
    let name = method.target.clone()?;
    let (kind, labels) = match name.as_str() {
        "classes" => (TargetKind::MultiLabel, plan.class_names.clone()),
        "parent" => (TargetKind::SingleLabel, Vec::new()),
        _ => (TargetKind::Regression, Vec::new()),
    };
    Some(ProbeTarget { name, kind, labels })
}

/// The config problems of every method of a manifest that does not validate, as far as they can
/// be known: each `[[method]]` entry that reads as one on its own, with a plugin that can be
/// found and loaded, is checked like [`before_run`] checks a valid one (its schema; not its `check`, which
/// needs the zoo a valid manifest describes) (zoo bounds from its
/// zoo's entry when that reads too). So one pass reports manifest and plugin-config errors
/// together; a plugin that cannot be loaded adds nothing here (the manifest's own errors come
/// first).
pub fn draft_diagnostics(draft: &Draft) -> Vec<Diagnostic> {
    let json = &draft.json;
    let entry = |section: &str, name: &str| json.get(section).and_then(|s| s.get(name)).cloned();
    let plugin_path: Vec<std::path::PathBuf> =
        json.pointer("/experiment/plugin_path").and_then(|p| p.as_array()).into_iter().flatten().filter_map(|d| d.as_str().map(std::path::PathBuf::from)).collect();
    let lookup = crate::plugins::Lookup::new(&draft.base_dir, &plugin_path);
    let mut described: std::collections::HashMap<String, Option<weightlab_host::Description>> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (index, value) in json.get("method").and_then(|m| m.as_array()).into_iter().flatten().enumerate() {
        let Ok(method) = serde_json::from_value::<MethodSpec>(value.clone()) else { continue };
        if method.is_imported() {
            continue;
        }
        let description = described.entry(method.plugin.clone()).or_insert_with(|| {
            let code = weightlab_host::PluginCode::read(&lookup.resolve(&method.plugin)?).ok()?;
            crate::calls::describe_code(&method.plugin, &code, crate::calls::limits(&method.limits)).ok()
        });
        let Some(description) = description else { continue };
        let zoo = entry("zoo", &method.zoo).and_then(|z| serde_json::from_value::<ZooSpec>(z).ok());
        // Only whether the data is a task family matters, so an entry with other mistakes serves.
        let data = zoo.as_ref().and_then(|z| entry("data", &z.data));
        let checkpoints = zoo.as_ref().zip(data.as_ref()).and_then(|(z, d)| checkpoints_of(&method, z, d.get("tasks").is_some()));
        let config = serde_json::to_value(&method.config).unwrap_or_default();
        out.extend(diagnostics(&draft.spans, index, &method, checkpoints, &method.plugin, &description.config_schema, &config));
    }
    out
}

/// Checks a plugin's description against its manifest entry: role and config. Returns the
/// config as JSON.
pub fn check_plugin(loaded: &Loaded, index: usize, d: &Description) -> Result<serde_json::Value> {
    let method = &loaded.manifest.method[index];
    let located = |key: &str, message: String, help: Option<String>| Error::Manifest(at_method_key(loaded, index, key, message, help));
    let role = role_name(d.role);
    if let Some(wanted) = method.role {
        let wanted = serde_json::to_value(wanted).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        if wanted != role {
            return Err(located("role", format!("method `{}`: plugin `{}` is a {role}, but the manifest says role = \"{wanted}\"", method.name, method.plugin), None));
        }
    }
    match (d.role == Role::Probe, method.is_probe()) {
        (true, false) => {
            let help = Some(format!("say what it predicts: `target = \"classes\"` (one of {})", weightlab_manifest::PROBE_TARGETS.join(", ")));
            return Err(located("plugin", format!("method `{}`: plugin `{}` is a probe, and probes need a `target`", method.name, method.plugin), help));
        }
        (false, true) => {
            return Err(located("target", format!("method `{}`: plugin `{}` is a {role}, not a probe, so it has no `target`", method.name, method.plugin), None));
        }
        _ => {}
    }
    let config = config_json(method)?;
    check(loaded, index, &method.plugin, &d.config_schema, &config).map_err(Error::Manifest)?;
    Ok(config)
}

/// A method's `config` table as JSON (what plugins and their schemas read).
pub(crate) fn config_json(method: &MethodSpec) -> Result<serde_json::Value> {
    serde_json::to_value(&method.config).map_err(|source| Error::Json { what: format!("method `{}`: config", method.name), source })
}
