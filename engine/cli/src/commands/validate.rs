use std::path::PathBuf;

use crate::output;

/// `weightlab validate`: every manifest is checked; all errors are printed.
pub fn validate(manifests: &[PathBuf], sets: &[String]) -> anyhow::Result<i32> {
    let mut code = 0;
    for path in manifests {
        match super::load_manifest(path, sets) {
            Ok(_) => output::status("Valid", &path.display().to_string()),
            Err(c) => code = c,
        }
    }
    Ok(code)
}
