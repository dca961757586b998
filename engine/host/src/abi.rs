//! ABI versions. A component names the `weightlab:plugin` interfaces it imports and exports
//! with their package version (`weightlab:plugin/tensors@0.1.0`); the host reads them before
//! instantiating and refuses an incompatible plugin with a message, instead of a link error.
//! Compatible means: the same major version, and before 1.0 the same minor version (semver).

use wasmtime::Engine;
use wasmtime::component::Component;

/// The `weightlab:plugin` versions a component refers to (deduplicated).
pub fn versions(component: &Component, engine: &Engine) -> Vec<String> {
    let ty = component.component_type();
    let names = ty.imports(engine).map(|(n, _)| n.to_string()).chain(ty.exports(engine).map(|(n, _)| n.to_string()));
    let mut found: Vec<String> = names.filter_map(|n| n.strip_prefix("weightlab:plugin/").and_then(|rest| rest.split_once('@')).map(|(_, v)| v.to_string())).collect();
    found.sort();
    found.dedup();
    found
}

fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Whether a plugin built against `plugin` runs on a host implementing `host`.
pub fn compatible(host: &str, plugin: &str) -> bool {
    match (major_minor(host), major_minor(plugin)) {
        (Some((0, hm)), Some((0, pm))) => hm == pm,
        (Some((h, _)), Some((p, _))) => h == p,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn semver_rules() {
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(compatible("1.2.0", "1.0.0"));
        assert!(!compatible("1.0.0", "2.0.0"));
        assert!(!compatible("0.1.0", "garbage"));
    }
}
