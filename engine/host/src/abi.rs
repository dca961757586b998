//! ABI versions. A component names the `weightlab:plugin` interfaces it imports and exports
//! with their package version (`weightlab:plugin/tensors@0.1.0`); the host reads them before
//! compiling ([`crate::metadata::wit_versions`]) and runs the plugin as it is when its version
//! is compatible with the host's — the same major version, and before 1.0 the same minor
//! version (semver) — through an adapter when it is an older frozen version
//! ([`crate::compat`]), and refuses it with a message otherwise, instead of a link error.

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
