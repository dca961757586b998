use std::path::Path;

use weightlab_pipeline::plugins;

/// `weightlab plugins [MANIFEST]`: name, role, version, ABI and SHA-256 of every plugin found,
/// then those `manifest` names by path or finds in its `plugin_path`.
pub fn list(manifest: Option<&Path>, json: bool) -> anyhow::Result<i32> {
    let mut found = plugins::discover();
    if let Some(path) = manifest {
        let loaded = match super::load_manifest(path, &[]) {
            Ok(l) => l,
            Err(code) => return Ok(code),
        };
        for (name, path) in plugins::of_manifest(&loaded) {
            if !found.iter().any(|p| p.path == path) {
                found.push(plugins::info(name, path));
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(0);
    }
    if found.is_empty() {
        println!("no plugins found: this binary embeds none (built before `make plugins`?), and neither WEIGHTLAB_PLUGIN_DIR nor WEIGHTLAB_PLUGIN_PATH names a folder with any");
        return Ok(0);
    }
    println!("{:<16} {:<10} {:<9} {:<8} {:<64} path", "name", "role", "version", "abi", "sha256");
    for p in found {
        let line = format!("{:<16} {:<10} {:<9} {:<8} {:<64} {}", p.name, p.role, p.version, p.abi, p.sha256, p.path.display());
        println!("{}", weightlab_pipeline::output::plain(&line).replace('\n', " "));
    }
    Ok(0)
}
