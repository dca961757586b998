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
    /// A method's config cannot be read as JSON.
    #[error("{0}")]
    Config(String),
    /// Something a stage needs is not there: a plugin, an unfinished stage, a name.
    #[error("{0}")]
    Missing(String),
    /// Zoo training refused or failed.
    #[error("zoo `{zoo}`: {reason}")]
    Training { zoo: String, reason: String },
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
