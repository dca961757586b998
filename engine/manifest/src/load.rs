//! Reading a manifest: file and the files it `extends` → `--set` overrides → sweeps expanded →
//! the JSON Schema (every unknown key, wrong type and missing key at once) → serde →
//! cross-section validation (every broken reference at once). Every failure becomes a located
//! [`Diagnostic`] in the file that holds the bad line; like rustc, one pass reports all it can
//! find rather than stopping at the first.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, ManifestError, SourceMap};
use crate::overrides::{self, OverrideError};
use crate::spans::{Renames, Spans};
use crate::suggest::{did_you_mean, one_of, serde_unknown};
use crate::sweep::{self, Expansion};
use crate::types::Manifest;
use crate::validate::{self, Catalog, Context};

/// A manifest that parsed and validated, with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The manifest with its sweeps expanded: what runs.
    pub manifest: Manifest,
    /// The manifest file.
    pub path: PathBuf,
    /// The effective manifest: the files it extends merged, `--set` applied, sweeps as written
    /// (`weightlab validate --print` shows it; every run stores it).
    pub text: String,
    /// The folder relative paths are resolved against (the manifest's folder).
    pub base_dir: PathBuf,
    /// What the sweeps expanded into (empty without sweeps).
    pub expansion: Expansion,
    /// Every text read, to locate problems found later (plugin configs).
    pub sources: SourceMap,
    /// Indices into `sources`, lowest priority first.
    layers: Vec<usize>,
}

impl Loaded {
    /// The manifest's project: the nearest folder at or above the manifest's own that holds a
    /// `.git`, else the manifest's folder. Output folders resolve here, so one manifest writes
    /// to one place whatever the current directory (`experiments/a.toml` of a repository
    /// writes `reports/a` at its root).
    pub fn project_dir(&self) -> PathBuf {
        let base = std::fs::canonicalize(&self.base_dir).or_else(|_| std::path::absolute(&self.base_dir)).unwrap_or_else(|_| self.base_dir.clone());
        base.ancestors().find(|dir| dir.join(".git").exists()).map(Path::to_path_buf).unwrap_or(base)
    }

    /// Where a run of this manifest writes when the command line does not say: `experiment.
    /// output`, else `reports/<name>`, in the [project](Loaded::project_dir) — shown relative
    /// to the current directory when it lies below it.
    pub fn output_dir(&self) -> PathBuf {
        let experiment = &self.manifest.experiment;
        let dir = self.project_dir().join(experiment.output.clone().unwrap_or_else(|| Path::new("reports").join(&experiment.name)));
        match std::env::current_dir() {
            Ok(cwd) => dir.strip_prefix(&cwd).map(Path::to_path_buf).unwrap_or(dir),
            Err(_) => dir,
        }
    }

    /// Span lookup for paths of the expanded manifest, into the files that hold them.
    pub fn spans(&self) -> Spans {
        spans_of(&self.text, &self.sources, &self.layers, self.expansion.renames.clone())
    }

    /// A manifest error with these diagnostics, shown against this manifest's sources.
    pub fn error(&self, diagnostics: Vec<Diagnostic>) -> ManifestError {
        ManifestError { sources: self.sources.clone(), diagnostics }
    }
}

fn spans_of(text: &str, sources: &SourceMap, layers: &[usize], renames: Renames) -> Spans {
    let files = sources.files();
    let layers: Vec<(&str, usize)> = layers.iter().map(|&i| (files[i].text.as_str(), files[i].start)).collect();
    Spans::layered(text, &layers, renames)
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
    let raw = crate::files::read_manifest(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    load_str(path, &raw, sets, &base_dir_of(path), catalog)
}

/// A manifest read, composed, overridden and expanded, but not (or not successfully)
/// validated: what the engine needs to check the plugin configs of a manifest that has other
/// errors too, so one pass reports them all.
pub struct Draft {
    /// The expanded document as JSON (what the schema checks).
    pub json: serde_json::Value,
    /// Locates paths of `json` in the files that hold them.
    pub spans: Spans,
    pub sources: SourceMap,
    pub base_dir: PathBuf,
}

/// The steps before validation; the effective text and layers besides the draft.
struct Prepared {
    draft: Draft,
    text: String,
    layers: Vec<usize>,
    expanded: toml::Table,
    expansion: Expansion,
}

fn prepare(path: &Path, raw: &str, sets: &[String], base_dir: &Path) -> Result<Prepared, LoadError> {
    let composed = crate::compose::compose(path, raw).map_err(|(sources, diagnostics)| ManifestError { sources, diagnostics })?;
    let (mut sources, mut layers) = (composed.sources, composed.order);
    // Without `extends` the effective manifest is the file as written, comments and all.
    let merged = match composed.extends {
        true => toml::to_string(&composed.merged).unwrap_or_default(),
        false => raw.to_string(),
    };
    let text = overrides::apply(&merged, sets)?;
    if !sets.is_empty() {
        sources.add("--set", overrides::as_toml(sets));
        layers.push(sources.files().len() - 1);
    }
    let fail = |sources: &SourceMap, diagnostics: Vec<Diagnostic>| ManifestError { sources: sources.clone(), diagnostics };
    let document: toml::Table = toml::from_str(&text).map_err(|e| fail(&sources, vec![from_toml_error(&e)]))?;
    let written = spans_of(&text, &sources, &layers, Renames::default());
    let (expanded, expansion) = sweep::expand(&document, &written).map_err(|d| fail(&sources, d))?;
    let spans = written.with_renames(expansion.renames.clone());
    let json = serde_json::to_value(&expanded).unwrap_or_default();
    Ok(Prepared { draft: Draft { json, spans, sources, base_dir: base_dir.to_path_buf() }, text, layers, expanded, expansion })
}

/// The [`Draft`] of the manifest at `path` — also when it does not validate; `None` when it
/// cannot be read, parsed or expanded at all.
pub fn draft(path: &Path, sets: &[String]) -> Option<Draft> {
    let raw = crate::files::read_manifest(path).ok()?;
    prepare(path, &raw, sets, &base_dir_of(path)).ok().map(|p| p.draft)
}

fn base_dir_of(path: &Path) -> PathBuf {
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir }
}

/// Like [`load`], from text; `path` names the source in messages and locates the files it
/// extends.
pub fn load_str(path: &Path, raw: &str, sets: &[String], base_dir: &Path, catalog: &Catalog) -> Result<Loaded, LoadError> {
    let Prepared { draft: Draft { json, spans, sources, .. }, text, layers, expanded, expansion } = prepare(path, raw, sets, base_dir)?;
    let fail = |sources: &SourceMap, diagnostics: Vec<Diagnostic>| ManifestError { sources: sources.clone(), diagnostics };
    let ctx = Context { base_dir, catalog };
    let references = validate::references(&json, &spans, &ctx);
    let mut diagnostics = crate::schema::non_finite(&expanded, &spans);
    // The schema sees those values as `null`: its word on them would only repeat the above.
    let refused: Vec<_> = diagnostics.iter().map(|d| d.span.clone()).collect();
    diagnostics.extend(crate::schema::check(&json, &crate::schema::manifest_schema(catalog), &spans).into_iter().filter(|d| !refused.contains(&d.span)));
    if diagnostics.is_empty() {
        let manifest: Manifest = toml::Value::Table(expanded).try_into().map_err(|e: toml::de::Error| fail(&sources, vec![from_toml_error(&e)]))?;
        diagnostics = validate::validate(&manifest, &spans, &ctx);
        if diagnostics.is_empty() && references.is_empty() {
            return Ok(Loaded { manifest, path: path.to_path_buf(), text, base_dir: base_dir.to_path_buf(), expansion, sources, layers });
        }
    }
    diagnostics.extend(references);
    sort(&mut diagnostics);
    Err(fail(&sources, diagnostics).into())
}

/// Diagnostics in source order, one per problem and place (variants of one entry share its
/// lines).
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
    diagnostics.dedup_by(|a, b| a.message == b.message && a.span == b.span);
}

/// A stored effective manifest (a run folder's `manifest.toml`) with its sweeps expanded, without
/// validation against this machine: how reports read back the runs they show.
pub fn expand_text(text: &str) -> Result<(Manifest, Expansion), String> {
    let document: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let (expanded, expansion) = sweep::expand(&document, &Spans::new(text)).map_err(|diagnostics| ManifestError { sources: SourceMap::single("manifest.toml", text), diagnostics }.to_string())?;
    let manifest = toml::Value::Table(expanded).try_into().map_err(|e: toml::de::Error| e.to_string())?;
    Ok((manifest, expansion))
}

/// Turns a TOML/serde error into a diagnostic, adding a did-you-mean for unknown names.
pub(crate) fn from_toml_error(e: &toml::de::Error) -> Diagnostic {
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
