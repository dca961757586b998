use std::path::PathBuf;

use crate::output;

/// `weightlab validate`: every manifest is checked — its own keys, then every plugin it names
/// is loaded and each method's config checked against the plugin's schema; all errors are
/// printed.
pub fn validate(manifests: &[PathBuf], sets: &[String]) -> anyhow::Result<i32> {
    let mut code = 0;
    for path in manifests {
        match super::load_manifest(path, sets).and_then(|loaded| crate::config_check::check_methods(&loaded, true)) {
            Ok(()) => output::status("Valid", &path.display().to_string()),
            Err(c) => code = c,
        }
    }
    Ok(code)
}
