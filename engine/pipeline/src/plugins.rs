//! Finding plugins. The built-in ones are, in order of precedence:
//!
//! 1. the folder `WEIGHTLAB_PLUGIN_DIR` names (an override, e.g. for plugins under development);
//! 2. a `plugins/` folder beside the `weightlab` binary (an installation that ships them as files);
//! 3. the components embedded in the binary at build time (`build.rs`), unpacked once into
//!    `~/.cache/weightlab/plugins/<content hash>/` where worker processes can load them.
//!
//! A manifest's `[experiment] plugin_path` folders, then those in `WEIGHTLAB_PLUGIN_PATH`
//! (colon-separated), add more ([`Lookup`]). A plugin's name is its file stem; the first folder
//! that has a name wins. Nothing here depends on the source tree the binary was built from.

use std::path::{Path, PathBuf};

use sha2::Digest;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));
}

/// What `weightlab plugins` shows about a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub role: String,
    pub version: String,
    pub abi: String,
    pub path: PathBuf,
    /// SHA-256 of the component (what `[[method]] sha256` pins).
    pub sha256: String,
}

/// The folder the embedded plugins are unpacked into (once per distinct set of components);
/// hashed and checked once per process, since every plugin lookup asks for it.
fn unpacked_dir() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(unpack).clone()
}

fn unpack() -> Option<PathBuf> {
    if embedded::EMBEDDED.is_empty() {
        return None;
    }
    let mut h = sha2::Sha256::new();
    for (name, bytes) in embedded::EMBEDDED {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    let root = weightlab_host::cache_dir()?;
    let dir = root.join("plugins").join(hex::encode(&h.finalize()[..8]));
    if !dir.join(".complete").is_file() {
        // Unpack into a private folder and rename it into place, so concurrent runs never see
        // half-written components.
        let tmp = root.join("plugins").join(format!(".unpack-{}", std::process::id()));
        let unpack = || -> std::io::Result<()> {
            std::fs::create_dir_all(&tmp)?;
            for (name, bytes) in embedded::EMBEDDED {
                std::fs::write(tmp.join(format!("{name}.wasm")), bytes)?;
            }
            std::fs::write(tmp.join(".complete"), b"")?;
            match std::fs::rename(&tmp, &dir) {
                Err(_) if dir.join(".complete").is_file() => std::fs::remove_dir_all(&tmp),
                other => other,
            }
        };
        if let Err(e) = unpack() {
            crate::output::warn(&format!("cannot unpack the built-in plugins into {}: {e}", dir.display()));
            return None;
        }
    }
    Some(dir)
}

/// Where the built-in plugins come from, as a folder (see the module docs for the order).
pub fn builtin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIGHTLAB_PLUGIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("plugins")));
    if let Some(dir) = beside.filter(|d| d.is_dir()) {
        return Some(dir);
    }
    unpacked_dir()
}

/// The built-in folder, then the folders of `WEIGHTLAB_PLUGIN_PATH`; `manifest` folders (a
/// manifest's `[experiment] plugin_path`) go between the two.
fn search_dirs(manifest: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = builtin_dir().into_iter().collect();
    dirs.extend(manifest.iter().cloned());
    if let Some(extra) = std::env::var_os("WEIGHTLAB_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs
}

/// The plugins (file stems of `.wasm` files) in `dirs` with their paths, each folder sorted;
/// the first folder that has a name wins.
pub fn plugins_in(dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "wasm")).collect();
        paths.sort();
        for path in paths {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if !found.iter().any(|(n, _)| *n == name) {
                found.push((name, path));
            }
        }
    }
    found
}

/// The plugin names in `dirs` ([`plugins_in`]): how the manifest's validation learns the
/// names a manifest's own `plugin_path` adds.
pub fn names_in(dirs: &[PathBuf]) -> Vec<String> {
    plugins_in(dirs).into_iter().map(|(n, _)| n).collect()
}

/// Every `.wasm` file in the search folders (no manifest's), first one wins for a name.
pub fn find_all() -> Vec<(String, PathBuf)> {
    plugins_in(&search_dirs(&[]))
}

/// Names a manifest may use in `plugin = "…"` besides those in its own `plugin_path`.
pub fn builtin_names() -> Vec<String> {
    find_all().into_iter().map(|(n, _)| n).collect()
}

/// Where one manifest's plugins are found: a `plugin = "…"` that is a path is a file relative to
/// the manifest's folder; a name is looked up in the built-in plugins, then the manifest's
/// `[experiment] plugin_path`, then `WEIGHTLAB_PLUGIN_PATH`.
/// The folders are scanned once, when the lookup is made.
#[derive(Debug, Clone)]
pub struct Lookup {
    base_dir: PathBuf,
    found: Vec<(String, PathBuf)>,
}

impl Lookup {
    pub fn new(base_dir: &Path, plugin_path: &[PathBuf]) -> Self {
        Self { base_dir: base_dir.to_path_buf(), found: plugins_in(&search_dirs(&plugin_path.iter().map(|d| base_dir.join(d)).collect::<Vec<_>>())) }
    }

    /// The lookup of a loaded manifest.
    pub fn of(loaded: &weightlab_manifest::Loaded) -> Self {
        Self::new(&loaded.base_dir, &loaded.manifest.experiment.plugin_path)
    }

    /// The path of a plugin given by name or path.
    pub fn resolve(&self, plugin: &str) -> Option<PathBuf> {
        if weightlab_manifest::validate::is_plugin_path(plugin) {
            return Some(self.base_dir.join(plugin));
        }
        self.found.iter().find(|(n, _)| n == plugin).map(|(_, p)| p.clone())
    }
}

/// The plugins a manifest adds to the built-in ones: those it names by path, then those in its
/// `[experiment] plugin_path` folders (name, path).
pub fn of_manifest(loaded: &weightlab_manifest::Loaded) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for method in &loaded.manifest.method {
        if !method.is_imported() && weightlab_manifest::validate::is_plugin_path(&method.plugin) {
            let path = loaded.base_dir.join(&method.plugin);
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if !out.iter().any(|(_, p)| *p == path) {
                out.push((name, path));
            }
        }
    }
    let dirs: Vec<PathBuf> = loaded.manifest.experiment.plugin_path.iter().map(|d| loaded.base_dir.join(d)).collect();
    out.extend(plugins_in(&dirs));
    out
}

/// The plugins one manifest names, each resolved once: found, read and hashed when the run
/// starts. Pins are checked against these hashes, plan keys and provenance carry them, and
/// workers are handed these bytes — a plugin file changed on disk afterwards changes nothing
/// in this run. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    by_name: std::sync::Arc<std::collections::BTreeMap<String, std::result::Result<weightlab_host::PluginCode, String>>>,
    /// Imported samples folders (`import:<folder>`) and the hash of their files.
    imports: std::sync::Arc<std::collections::BTreeMap<String, std::result::Result<String, String>>>,
}

impl Plugins {
    /// Finds and reads every plugin `loaded` names (a plugin that cannot be had is kept with
    /// the reason: its methods fail alone).
    pub fn resolve(loaded: &weightlab_manifest::Loaded) -> Self {
        let lookup = Lookup::of(loaded);
        let mut by_name = std::collections::BTreeMap::new();
        let mut imports = std::collections::BTreeMap::new();
        for method in &loaded.manifest.method {
            if let Some(dir) = &method.import {
                imports.entry(method.source_key()).or_insert_with(|| folder_hash(&loaded.base_dir.join(dir)));
                continue;
            }
            by_name.entry(method.plugin.clone()).or_insert_with(|| match lookup.resolve(&method.plugin) {
                None => Err("not found".to_string()),
                Some(path) => weightlab_host::PluginCode::read(&path).map_err(|e| e.to_string()),
            });
        }
        Self { by_name: std::sync::Arc::new(by_name), imports: std::sync::Arc::new(imports) }
    }

    /// The code of plugin `plugin` (as a manifest names it).
    pub fn code(&self, plugin: &str) -> crate::Result<&weightlab_host::PluginCode> {
        match self.by_name.get(plugin) {
            Some(Ok(code)) => Ok(code),
            Some(Err(reason)) => Err(crate::Error::Unresolved { plugin: plugin.to_string(), reason: reason.clone() }),
            None => Err(crate::Error::Internal(format!("plugin `{plugin}` is not one this manifest names"))),
        }
    }

    /// What identifies a plugin's code, for caching, provenance and pins: the SHA-256 of the
    /// bytes read (64 hex digits), or `missing`.
    pub fn identity(&self, plugin: &str) -> String {
        if let Some(found) = self.imports.get(plugin) {
            return found.clone().unwrap_or_else(|_| "missing".to_string());
        }
        self.code(plugin).map(|c| c.sha256.clone()).unwrap_or_else(|_| "missing".to_string())
    }
}

/// The componentize-py version the set-up installs and Python plugins are built with.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// What a Python plugin's `built_with` ends in when its build was pinned
/// (`weightlab_author`'s `pinned`): the same source and componentize-py version give the same
/// bytes in any folder.
pub const REPRODUCIBLE: &str = "reproducible build";

/// Whether a component's metadata says componentize-py built it without pinning the build:
/// another build of the same source has other bytes, so its hash pins one built file, never a
/// source.
pub fn unreproducible_python_build(bytes: &[u8]) -> bool {
    weightlab_host::metadata::read(bytes).ok().flatten().is_some_and(|m| m.built_with.starts_with("componentize-py") && !m.built_with.ends_with(REPRODUCIBLE))
}

/// The SHA-256 of an imported samples folder ([`read_import`]).
fn folder_hash(dir: &std::path::Path) -> std::result::Result<String, String> {
    read_import(dir).map(|(_, hash)| hash)
}

/// One file of an imported samples folder: its path and bytes.
pub type ImportedFile = (std::path::PathBuf, Vec<u8>);

/// The state_dict files of an imported samples folder, in file-name order, with their bytes,
/// and the SHA-256 over every file's name and bytes: a changed, added or renamed file makes
/// another plan key, and the method stage checks the bytes it scores against the hash planned.
pub fn read_import(dir: &std::path::Path) -> std::result::Result<(Vec<ImportedFile>, String), String> {
    use sha2::{Digest, Sha256};
    let files = weightlab_compute::zoo::store::state_dict_files(dir).map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    let mut read = Vec::with_capacity(files.len());
    for file in files {
        let bytes = weightlab_manifest::files::read_regular(&file, weightlab_compute::zoo::store::MAX_CHECKPOINT_BYTES).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
        read.push((file, bytes));
    }
    Ok((read, hex::encode(h.finalize())))
}

/// Every plugin found, described from its metadata section (written by `weightlab plugin
/// build`) or, for a component without one, by loading it in a worker process (compiled
/// components are cached on disk). A plugin that fails to load is listed with the reason in
/// place of its role.
pub fn discover() -> Vec<PluginInfo> {
    find_all().into_iter().map(|(name, path)| info(name, path)).collect()
}

/// What `weightlab plugins` shows of the plugin at `path`.
pub fn info(name: String, path: PathBuf) -> PluginInfo {
    let name = weightlab_host::untrusted::line(&name, weightlab_host::untrusted::NAME_BYTES);
    let code = match weightlab_host::PluginCode::read(&path) {
        Ok(code) => code,
        Err(e) => return PluginInfo { name, role: format!("broken: {e}"), version: "-".into(), abi: "-".into(), path, sha256: "unreadable".into() },
    };
    let sha256 = code.sha256.clone();
    let versions = weightlab_host::metadata::wit_versions(&code.bytes).unwrap_or_default();
    if let Ok(Some(m)) = weightlab_host::metadata::read(&code.bytes)
        && versions == [m.abi.clone()]
    {
        return PluginInfo { name, role: m.role, version: m.version, abi: m.abi, path, sha256 };
    }
    match crate::calls::describe_code(&name, &code, weightlab_host::Limits::default()) {
        Ok(d) => PluginInfo { name, role: weightlab_host::role_name(d.role).to_string(), version: d.version, abi: d.abi, path, sha256 },
        Err(e) => {
            let reason = match e {
                crate::Error::Plugin(p) => p.reason,
                other => other.to_string(),
            };
            PluginInfo { name, role: format!("broken: {reason}"), version: "-".into(), abi: "-".into(), path, sha256 }
        }
    }
}

/// What plugin `code` says of itself, and where that was read: its metadata section, else (a
/// component built without one, e.g. by cargo alone) a description from loading it in a worker
/// process.
pub fn self_description(name: &str, code: &weightlab_host::PluginCode) -> crate::Result<(Option<weightlab_host::metadata::Metadata>, &'static str)> {
    if let Ok(Some(m)) = weightlab_host::metadata::read(&code.bytes) {
        return Ok((Some(m), "its metadata section"));
    }
    Ok((Some(described(name, code, "unknown (no metadata section)")?), "loading it (no metadata section)"))
}

/// The metadata of plugin `code` as a worker process describes it, with `built_with`.
fn described(name: &str, code: &weightlab_host::PluginCode, built_with: &str) -> crate::Result<weightlab_host::metadata::Metadata> {
    let d = crate::calls::describe_code(name, code, weightlab_host::Limits::default())?;
    Ok(weightlab_host::metadata::Metadata::described(&d, built_with))
}

/// Whether the component at `path` carries a metadata section (unreadable files do not).
pub fn has_metadata(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| weightlab_host::metadata::read(&bytes).is_ok_and(|m| m.is_some()))
}

/// Describes the freshly built plugin at `path` (loading it in a worker process, as a run
/// would) and writes the description into it as its metadata section; returns it.
pub fn stamp(path: &Path, built_with: &str) -> crate::Result<weightlab_host::metadata::Metadata> {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let code = weightlab_host::PluginCode::read(path)?;
    let meta = described(&name, &code, built_with)?;
    weightlab_host::metadata::stamp(&code, &meta).map_err(crate::error::format(path))?;
    Ok(meta)
}

/// One option of a plugin's config, as `weightlab plugin inspect` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigOption {
    pub key: String,
    /// `number`, `integer`, `boolean`, `string`, `a | b` for a choice, …
    pub kind: String,
    /// The default as TOML would write it ("" when required or unknown).
    pub default: String,
    /// `≥ 0`, `< training checkpoints`, … joined by ", ".
    pub bounds: String,
    /// The option's doc comment (its schema's `description`), on one line.
    pub doc: String,
}

/// The top-level options of a config schema (references followed), in the schema's order.
pub fn config_options(schema: &serde_json::Value) -> Vec<ConfigOption> {
    use serde_json::Value;
    let deref = |node: &Value| -> Value {
        let mut node = node.clone();
        for _ in 0..8 {
            let Some(pointer) = node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) else { break };
            let Some(target) = schema.pointer(pointer) else { break };
            node = target.clone();
        }
        node
    };
    let text = |v: &Value| match v {
        Value::String(s) => format!("{s:?}"),
        // An f32 default widened to f64 (0.0010000000474974513) reads as the f32 it was (0.001).
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if (f as f32) as f64 == f => format!("{}", f as f32),
            Some(f) => format!("{f}"),
            None => n.to_string(),
        },
        other => other.to_string(),
    };
    let kind_of = |node: &Value| -> String {
        if let Some(choices) = node.get("enum").and_then(Value::as_array) {
            return choices.iter().map(text).collect::<Vec<_>>().join(" | ");
        }
        let alternatives: Vec<String> = node
            .get("oneOf")
            .or_else(|| node.get("anyOf"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|b| match b.get("const") {
                Some(c) => text(c),
                None => b.get("type").map(|t| t.as_str().map(str::to_string).unwrap_or_else(|| t.to_string())).unwrap_or_else(|| "…".into()),
            })
            .collect();
        if !alternatives.is_empty() {
            return alternatives.join(" | ");
        }
        match node.get("type") {
            Some(Value::String(t)) if t == "array" => format!("list of {}", node.get("items").and_then(|i| i.get("type")).and_then(Value::as_str).unwrap_or("values")),
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" | "),
            _ => "any".into(),
        }
    };
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .map(|(key, raw)| {
            let node = deref(raw);
            let mut bounds = Vec::new();
            for (keyword, sign) in [("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")] {
                if let Some(v) = raw.get(keyword).or_else(|| node.get(keyword)) {
                    bounds.push(format!("{sign} {v}"));
                }
            }
            if let Some(q) = raw.get(weightlab_host::config_schema::BELOW).and_then(Value::as_str) {
                bounds.push(format!("< {}", q.replace('_', " ")));
            }
            let doc = raw.get("description").or_else(|| node.get("description")).and_then(Value::as_str).unwrap_or_default();
            ConfigOption {
                key: key.clone(),
                kind: kind_of(&node),
                default: raw.get("default").map(text).unwrap_or_default(),
                bounds: bounds.join(", "),
                doc: doc.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_from_a_schema_with_bounds_defaults_and_docs() {
        let schema = serde_json::json!({
            "properties": {
                "k": { "type": "integer", "minimum": 1, "x-weightlab-below": "training_checkpoints", "default": 16, "description": "Checkpoints\n averaged." },
                "mode": { "$ref": "#/$defs/Mode", "default": "fast" },
                "scale": { "type": ["number", "null"] }
            },
            "$defs": { "Mode": { "enum": ["fast", "slow"] } }
        });
        let options = config_options(&schema);
        assert_eq!(options[0], ConfigOption { key: "k".into(), kind: "integer".into(), default: "16".into(), bounds: "≥ 1, < training checkpoints".into(), doc: "Checkpoints averaged.".into() });
        assert_eq!((options[1].kind.as_str(), options[1].default.as_str()), ("\"fast\" | \"slow\"", "\"fast\""));
        assert_eq!(options[2].kind, "number");
    }
}
