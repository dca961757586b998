//! What can go wrong in the pipeline, as data. A stage's error becomes a row of the run's
//! failures table (its text, cause first); the `weightlab` binary adds its own context on top.

use std::path::{Path, PathBuf};

use weightlab_compute::data::DataError;
use weightlab_compute::zoo::store::StoreError;
use weightlab_host::PluginError;
use weightlab_report::render::RenderError;
use weightlab_results::TableError;

/// Why a stage, a report or a plugin lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read, written or moved.
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A file the pipeline wrote or reads back does not parse (a stage record, samples, a log).
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A plugin failed, in its worker process or while describing itself.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A method's manifest entry and what its plugin declares disagree (role, config): located
    /// diagnostics, kept as data until printed.
    #[error("{0}")]
    Manifest(weightlab_manifest::ManifestError),
    /// A run folder's saved manifest does not load (`weightlab export`): its diagnostics.
    #[error(transparent)]
    Load(#[from] weightlab_manifest::LoadError),
    /// A plugin's `.wasm` file cannot be read (absent, not a regular file, too large).
    #[error(transparent)]
    Code(#[from] weightlab_host::code::CodeError),
    /// The text encoder (conditions given as text) cannot be loaded or run.
    #[error(transparent)]
    Text(#[from] weightlab_compute::text::TextError),
    /// A value cannot be written as JSON (a method's config, the report's metric list).
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },
    /// A name the run does not have (a method of a run folder), with a did-you-mean hint.
    #[error("no {what} `{name}` in this run: {hint}")]
    Unknown { what: &'static str, name: String, hint: String },
    /// A plugin the manifest names cannot be resolved or read.
    #[error("plugin `{plugin}`: {reason}")]
    Unresolved { plugin: String, reason: String },
    /// Work this step needs has not finished: a stage of another level or shard, a run
    /// folder's tables, a method's samples.
    #[error("{0}")]
    Unfinished(String),
    /// A method has nothing of the kind asked for (a probe has no samples to export).
    #[error("method `{method}` {reason}")]
    NotApplicable { method: String, reason: String },
    /// An imported method's files cannot be read, or changed between planning and import.
    #[error("method `{method}`: {reason}")]
    Import { method: String, reason: String },
    /// A probe target has no value for some model (no parent, no validation accuracy).
    #[error("probe target `{target}`: {reason}")]
    Labels { target: String, reason: String },
    /// The plan and the run disagree (a stage, zoo part or dataset the plan does not have):
    /// a bug in weightlab, never a user's mistake, so it says so.
    #[error("internal error (please report it): {0}")]
    Internal(String),
    /// Another weightlab process is writing this output folder.
    #[error("{} is being written by another weightlab run: wait for it to end, or give this run another output folder (`-o`)", .0.display())]
    Busy(PathBuf),
    /// The output path names something that is not a folder (`-o exp.toml`).
    #[error("{} is a file, not a folder: give `-o` the folder the run writes into", .0.display())]
    NotAFolder(PathBuf),
    /// Run folders that do not belong together (`weightlab merge` of two plans).
    #[error("{0}")]
    Mismatch(String),
    /// Zoo training refused or failed.
    #[error("zoo `{zoo}`: {reason}")]
    Training { zoo: String, reason: String },
}

/// What to add to an error whose cause is the file system refusing to store anything, found
/// anywhere in its chain: a full disk or an exhausted quota (ENOSPC, EDQUOT — a cluster's home
/// folder fills up long before its disk does), a read-only file system (EROFS: a shared store
/// mounted read-only), no permission (EACCES, EPERM): the reason, and the way out. Empty for
/// any other error.
pub fn storage_hint(e: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut cause = Some(e);
    while let Some(c) = cause {
        match c.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error) {
            Some(libc::ENOSPC | libc::EDQUOT) => {
                return " — the disk (or your quota) is full: free space, or put the stage store and output elsewhere (`--store DIR` or `WEIGHTLAB_STORE`, `-o DIR`); the stages finished so far are kept";
            }
            Some(libc::EROFS) => return " — that file system is read-only: put the stage store and output elsewhere (`--store DIR` or `WEIGHTLAB_STORE`, `-o DIR`)",
            Some(libc::EACCES | libc::EPERM) => {
                return " — you may not write there: put the stage store and output elsewhere (`--store DIR` or `WEIGHTLAB_STORE`, `-o DIR`), or ask for write access";
            }
            _ => cause = c.source(),
        }
    }
    ""
}

/// The pipeline's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an I/O error on `path` to [`Error::Io`] saying what was being done.
pub(crate) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_path_buf(), source }
}

/// Maps a parse error of the file at `path` to [`Error::Format`].
pub(crate) fn format<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Format { path: path.to_path_buf(), reason: e.to_string() }
}
