use std::path::PathBuf;

use weightlab_pipeline::output;

/// `weightlab validate`: every manifest is checked — its own keys, then every plugin it names
/// is loaded and each method's config checked against the plugin's schema; all errors are
/// printed.
pub fn validate(manifests: &[PathBuf], sets: &[String]) -> anyhow::Result<i32> {
    let mut code = 0;
    for path in manifests {
        match super::load_manifest(path, sets).and_then(|loaded| weightlab_pipeline::config_check::check_methods(&loaded, true).map_err(|_| super::INVALID)) {
            Ok(()) => output::status("Valid", &path.display().to_string()),
            Err(c) => code = c,
        }
    }
    Ok(code)
}
