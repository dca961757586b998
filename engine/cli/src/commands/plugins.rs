use weightlab_pipeline::plugins;

/// `weightlab plugins`: name, role, version, ABI and SHA-256 of every plugin found.
pub fn list() -> anyhow::Result<i32> {
    let found = plugins::discover();
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
