//! Reading a manifest: file → `--set` overrides → TOML syntax → the JSON Schema (every unknown
//! key, wrong type and missing key at once) → serde → cross-section validation (every broken
//! reference at once). Every failure becomes a located [`Diagnostic`]; like rustc, one pass
//! reports all it can find rather than stopping at the first.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, ManifestError};
use crate::overrides::{self, OverrideError};
use crate::spans::Spans;
use crate::suggest::{did_you_mean, one_of, serde_unknown};
use crate::types::Manifest;
use crate::validate::{self, Catalog, Context};

/// A manifest that parsed and validated, with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    /// The manifest file.
    pub path: PathBuf,
    /// Its text after overrides: what was actually run (kept for provenance).
    pub text: String,
    /// The folder relative paths are resolved against (the manifest's folder).
    pub base_dir: PathBuf,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read manifest `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Override(#[from] OverrideError),
    #[error("{0}")]
    Invalid(#[from] ManifestError),
}

/// Loads and validates the manifest at `path`.
pub fn load(path: &Path, sets: &[String], catalog: &Catalog) -> Result<Loaded, LoadError> {
    let raw = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir };
    load_str(path, &raw, sets, &base_dir, catalog)
}

/// Like [`load`], from text; `path` only names the source in messages.
pub fn load_str(path: &Path, raw: &str, sets: &[String], base_dir: &Path, catalog: &Catalog) -> Result<Loaded, LoadError> {
    let text = overrides::apply(raw, sets)?;
    let fail = |diagnostics: Vec<Diagnostic>| ManifestError { path: path.to_path_buf(), source_text: text.clone(), diagnostics };
    let document: toml::Table = toml::from_str(&text).map_err(|e| fail(vec![from_toml_error(&e)]))?;
    let spans = Spans::new(&text);
    let json = serde_json::to_value(&document).unwrap_or_default();
    let ctx = Context { base_dir, catalog };
    let references = validate::references(&json, &spans, &ctx);
    let mut diagnostics = crate::schema::check(&json, &crate::schema::manifest_schema(catalog), &spans);
    if diagnostics.is_empty() {
        let manifest: Manifest = toml::from_str(&text).map_err(|e| fail(vec![from_toml_error(&e)]))?;
        diagnostics = validate::validate(&manifest, &spans, &ctx);
        if diagnostics.is_empty() && references.is_empty() {
            return Ok(Loaded { manifest, path: path.to_path_buf(), text, base_dir: base_dir.to_path_buf() });
        }
    }
    diagnostics.extend(references);
    diagnostics.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
    Err(fail(diagnostics).into())
}

/// Turns a TOML/serde error into a diagnostic, adding a did-you-mean for unknown names.
fn from_toml_error(e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_string();
    let help = match serde_unknown(&message) {
        Some((word, expected)) => Some(did_you_mean(&word, expected.iter()).unwrap_or_else(|| one_of("allowed names", &expected))),
        None if message.starts_with("missing field") => Some("see `weightlab schema` for every key and its default".to_string()),
        None => None,
    };
    let message = match message.split_once(", expected") {
        Some((head, _)) if help.is_some() && serde_unknown(&message).is_some() => head.to_string(),
        _ => message,
    };
    Diagnostic::new(message, e.span()).with_help(help)
}
