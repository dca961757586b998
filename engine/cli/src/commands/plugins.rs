use crate::plugins;

/// `weightlab plugins`: name, role, version and ABI of every plugin found.
pub fn list() -> anyhow::Result<i32> {
    let found = plugins::discover();
    if found.is_empty() {
        println!("no plugins found (built-in plugins are built by `make plugins` into {})", plugins::builtin_dir().display());
        return Ok(0);
    }
    println!("{:<16} {:<10} {:<9} {:<8} path", "name", "role", "version", "abi");
    for p in found {
        println!("{:<16} {:<10} {:<9} {:<8} {}", p.name, p.role, p.version, p.abi, p.path.display());
    }
    Ok(0)
}
