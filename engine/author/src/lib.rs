//! Writing weightlab things: a plugin from its template (Rust or Python), its build into a
//! component, and the starter manifest of `weightlab init`. The `weightlab` binary parses the
//! arguments and prints; this crate does the work.

mod pinned;
mod python;
mod rust;
mod starter;

use std::path::{Path, PathBuf};

pub use python::COMPONENTIZE_PY;
pub use starter::starter;
pub use weightlab_pipeline::plugins::REPRODUCIBLE;

/// What can go wrong while writing or building a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A name, a project file or a tool that is not as it must be.
    #[error("{0}")]
    Invalid(String),
    /// The build tool ran and failed; it printed why.
    #[error("{0}")]
    Failed(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_path_buf(), source }
}

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
}

/// Creates plugin `<dir>/<name>` with role `role` from the template: a Rust crate, or a Python
/// module with its `pyproject.toml`. Returns its folder.
pub fn new_plugin(name: &str, role: &str, lang: Lang, dir: &Path) -> Result<PathBuf> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Error::Invalid(format!("plugin name `{name}`: use letters, digits, `-` and `_`, starting with a letter")));
    }
    let target = dir.join(name);
    if target.exists() {
        return Err(Error::Invalid(format!("{} already exists", target.display())));
    }
    match lang {
        Lang::Python => python::new(name, role, &target)?,
        Lang::Rust => rust::new(name, role, &target)?,
    }
    Ok(target)
}

/// A built plugin.
#[derive(Debug)]
pub struct Built {
    /// The component: `<dir>/<name>.wasm`.
    pub path: PathBuf,
    /// What built it, for its metadata section: the tool and version, and for a Python plugin
    /// whether the build was pinned ([`REPRODUCIBLE`]).
    pub built_with: String,
    /// What the author must know when this build's bytes may differ from another build of the
    /// same source (a Python build that could not be pinned): why, and what it means for a pin.
    pub warning: Option<String>,
}

/// Builds the plugin at `dir` — a Python plugin when it has a `pyproject.toml` with
/// `[tool.weightlab]`, else a Rust crate for wasm32-wasip2 — into `<dir>/<name>.wasm`.
pub fn build(dir: &Path) -> Result<Built> {
    if let Some(project) = python::Project::find(dir)? {
        let (path, pinning) = project.build()?;
        return Ok(match pinning {
            pinned::Pinning::Pinned => Built { path, built_with: format!("componentize-py {COMPONENTIZE_PY}, {REPRODUCIBLE}"), warning: None },
            pinned::Pinning::Unpinned(why) => Built {
                path,
                built_with: format!("componentize-py {COMPONENTIZE_PY}"),
                warning: Some(format!(
                    "this Python build is not reproducible ({why}): componentize-py's own output varies (componentize-py#247), so a pin holds for this file, not for the source — keep the .wasm you pin"
                )),
            },
        });
    }
    Ok(Built { path: rust::build(dir)?, built_with: "cargo (wasm32-wasip2)".to_string(), warning: None })
}
