//! `weightlab validate` as data: everything wrong with a manifest — its own keys, the files it
//! reads, every plugin config against its plugin's schema and `check` — gathered in one pass,
//! for the human rendering (rustc-style, on stderr) and for `--json` (a stable shape that CI
//! scripts read: see docs/src/cli.md).

use std::path::{Path, PathBuf};

use serde::Serialize;
use weightlab_manifest::{LoadError, Located, ManifestError};

/// What validating one manifest found.
#[derive(Debug, Serialize)]
pub struct Validation {
    pub manifest: PathBuf,
    pub valid: bool,
    /// Every error, located ones in source order first (`file`, `line`, `column` are null for
    /// the rest: a plugin that cannot be loaded, a file that cannot be read).
    pub errors: Vec<Located>,
    pub warnings: Vec<String>,
    /// Variants the sweeps expanded into (0 without sweeps), and the number of sweep axes.
    pub variants: usize,
    pub axes: usize,
    /// The located errors as rustc-style text (for the terminal).
    #[serde(skip)]
    pub rendered: Option<ManifestError>,
    /// The effective manifest, when it loaded (`validate --print`).
    #[serde(skip)]
    pub text: Option<String>,
}

impl Validation {
    fn unlocated(message: String) -> Located {
        Located { file: None, line: None, column: None, message, help: None }
    }
}

/// The errors of a manifest that does not load (`err`) with, in the same list in source order,
/// those of every plugin config that can be checked despite them.
pub fn with_plugin_configs(path: &Path, sets: &[String], mut err: ManifestError) -> ManifestError {
    if let Some(draft) = weightlab_manifest::draft(path, sets) {
        err.diagnostics.extend(crate::config_check::draft_diagnostics(&draft));
        weightlab_manifest::load::sort(&mut err.diagnostics);
    }
    err
}

/// Validates the manifest at `path` with `sets` applied: a manifest that does not load reports
/// its errors with those of every plugin config that can be checked despite them; one that
/// loads is held to its files, plugins and their checks as `weightlab run` would.
pub fn validate(path: &Path, sets: &[String]) -> Validation {
    let mut out = Validation { manifest: path.to_path_buf(), valid: false, errors: Vec::new(), warnings: Vec::new(), variants: 0, axes: 0, rendered: None, text: None };
    match crate::load_manifest(path, sets) {
        Ok(loaded) => {
            let found = crate::config_check::gather(&loaded, &crate::plugins::Plugins::resolve(&loaded), true);
            out.errors = found.located.located();
            out.errors.extend(found.errors.into_iter().map(Validation::unlocated));
            out.warnings = found.warnings;
            out.variants = loaded.expansion.variants.len();
            out.axes = loaded.expansion.axes.len();
            out.rendered = (!found.located.diagnostics.is_empty()).then_some(found.located);
            out.text = Some(loaded.text);
        }
        Err(LoadError::Invalid(err)) => {
            let err = with_plugin_configs(path, sets, err);
            out.errors = err.located();
            out.rendered = Some(err);
        }
        Err(other) => out.errors.push(Validation::unlocated(other.to_string())),
    }
    out.valid = out.errors.is_empty();
    out
}
