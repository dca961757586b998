//! Finding plugins: built-in ones (built by `make plugins` into `plugins/dist/`) and any
//! folder listed in `WEIGHTLAB_PLUGIN_PATH` (colon-separated). A plugin's name is its file stem.

use std::path::PathBuf;

/// What `weightlab plugins` shows about a plugin.
pub struct PluginInfo {
    pub name: String,
    pub role: String,
    pub version: String,
    pub abi: String,
    pub path: PathBuf,
}

/// Folder of the built-in plugins: `WEIGHTLAB_PLUGIN_DIR`, else `plugins/dist` of this checkout.
pub fn builtin_dir() -> PathBuf {
    std::env::var_os("WEIGHTLAB_PLUGIN_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/dist")))
}

fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![builtin_dir()];
    if let Some(extra) = std::env::var_os("WEIGHTLAB_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs
}

/// Every `.wasm` file in the search folders, first one wins for a name.
pub fn find_all() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for dir in search_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
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

/// Names a manifest may use in `plugin = "…"`.
pub fn builtin_names() -> Vec<String> {
    find_all().into_iter().map(|(n, _)| n).collect()
}

/// Path of a plugin given by name or path (relative to `base_dir`).
pub fn resolve(plugin: &str, base_dir: &std::path::Path) -> Option<PathBuf> {
    if weightlab_manifest::validate::is_plugin_path(plugin) {
        return Some(base_dir.join(plugin));
    }
    find_all().into_iter().find(|(n, _)| n == plugin).map(|(_, p)| p)
}

/// Every plugin found, described by loading it in a worker process (compiled components are
/// cached on disk). A plugin that fails to load is listed with the reason in place of its role.
pub fn discover() -> Vec<PluginInfo> {
    find_all()
        .into_iter()
        .map(|(name, path)| match crate::stages::method::describe_path(&name, path.clone(), weightlab_host::Limits::default()) {
            Ok(d) => PluginInfo { name, role: weightlab_host::role_name(d.role).to_string(), version: d.version, abi: d.abi, path },
            Err(e) => {
                let reason = e.downcast_ref::<weightlab_host::PluginError>().map(|e| e.reason.clone()).unwrap_or_else(|| format!("{e:#}"));
                PluginInfo { name, role: format!("broken: {reason}"), version: "-".into(), abi: "-".into(), path }
            }
        })
        .collect()
}

/// What identifies a plugin's code for caching: a hash of its component's bytes.
pub fn identity(plugin: &str, base_dir: &std::path::Path) -> String {
    use sha2::Digest;
    match resolve(plugin, base_dir).and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => hex::encode(&sha2::Sha256::digest(&bytes)[..8]),
        None => "missing".to_string(),
    }
}
