//! Python plugins. A plugin is a folder with a `pyproject.toml` whose `[tool.weightlab]` table
//! names its role (and, optionally, its module, `app` by default); componentize-py builds the
//! module, the Python SDK (`weightlab_sdk`) and a CPython interpreter into one component
//! against the WIT. The WIT and the SDK are the ones this binary was built with, written to a
//! temporary folder for each build, so a plugin always targets the host that builds it. The
//! plugin's own sources are copied there too: the interpreter that componentize-py runs at build
//! time writes `__pycache__` folders beside what it imports, and those would otherwise land in
//! the author's folder and change what the next build snapshots. The tool runs under
//! [`crate::pinned`], so the same source gives the same bytes in any folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use weightlab_pipeline::output;

use crate::{Error, Result, io, pinned};

/// The componentize-py version the set-up installs and the SDK is tested with.
pub use weightlab_pipeline::plugins::COMPONENTIZE_PY;

const WIT: &str = include_str!("../../../plugins/wit/weightlab.wit");
const SDK: &str = include_str!("../../../plugins/sdk-python/weightlab_sdk.py");
const PYPROJECT: &str = include_str!("../../../plugins/template/python/pyproject.toml.in");
const APP_PY: &str = include_str!("../../../plugins/template/python/app.py.in");
const PROBE_PY: &str = include_str!("../../../plugins/template/python/probe.py.in");

/// Writes a Python plugin from the template into `target`.
pub fn new(name: &str, role: &str, target: &Path) -> Result<()> {
    let class = match role {
        "generator" => "Generator",
        "probe" => "Probe",
        _ => "Baseline",
    };
    let fill = |text: &str| text.replace("{{name}}", name).replace("{{role}}", role).replace("{{Role}}", class);
    std::fs::create_dir_all(target).map_err(io("creating", target))?;
    let (pyproject, app) = (target.join("pyproject.toml"), target.join("app.py"));
    std::fs::write(&pyproject, fill(PYPROJECT)).map_err(io("writing", &pyproject))?;
    std::fs::write(&app, fill(if role == "probe" { PROBE_PY } else { APP_PY })).map_err(io("writing", &app))?;
    Ok(())
}

/// A Python plugin's project: what its pyproject.toml says.
#[derive(Debug)]
pub struct Project {
    dir: PathBuf,
    name: String,
    role: String,
    module: String,
}

impl Project {
    /// The Python plugin at `dir`, if `dir` holds one (a pyproject.toml with `[tool.weightlab]`).
    pub fn find(dir: &Path) -> Result<Option<Project>> {
        let path = dir.join("pyproject.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let doc: toml::Table = toml::from_str(&text).map_err(|e| Error::Invalid(format!("{} is not valid TOML: {e}", path.display())))?;
        let Some(tool) = doc.get("tool").and_then(|t| t.get("weightlab")) else {
            return Ok(None);
        };
        let text_of = |v: Option<&toml::Value>, key: &str| -> Result<String> {
            v.and_then(|v| v.as_str()).map(str::to_string).ok_or_else(|| Error::Invalid(format!("{}: `{key}` is missing or not a string", path.display())))
        };
        let name = text_of(doc.get("project").and_then(|p| p.get("name")), "project.name")?;
        let role = text_of(tool.get("role"), "tool.weightlab.role")?;
        if !["generator", "baseline", "probe"].contains(&role.as_str()) {
            return Err(Error::Invalid(format!("{}: `tool.weightlab.role` is `{role}`; use generator, baseline or probe", path.display())));
        }
        let module = tool.get("module").and_then(|m| m.as_str()).unwrap_or("app").to_string();
        if !dir.join(format!("{module}.py")).is_file() && !dir.join(&module).join("__init__.py").is_file() {
            return Err(Error::Invalid(format!("{}: the plugin's module `{module}` ({module}.py) is not in {}", path.display(), dir.display())));
        }
        Ok(Some(Project { dir: dir.to_path_buf(), name, role, module }))
    }

    /// Builds `<dir>/<name>.wasm` with componentize-py, pinned where it can be ([`pinned`]).
    pub fn build(&self) -> Result<(PathBuf, pinned::Pinning)> {
        let tool = componentize_py()?;
        let work = tempfile::tempdir().map_err(io("creating a temporary folder for the build in", &std::env::temp_dir()))?;
        let (wit, sdk, src) = (work.path().join("wit"), work.path().join("sdk"), work.path().join("src"));
        copy_sources(&self.dir, &src)?;
        for (folder, file, text) in [(&wit, "weightlab.wit", WIT), (&sdk, "weightlab_sdk.py", SDK)] {
            std::fs::create_dir_all(folder).map_err(io("creating", folder))?;
            std::fs::write(folder.join(file), text).map_err(io("writing", &folder.join(file)))?;
        }
        let world = if self.role == "probe" { "probe-plugin" } else { &self.role };
        let out = self.dir.join(format!("{}.wasm", self.name));
        output::status("Building", &format!("{} ({} in Python) with componentize-py", self.dir.display(), self.role));
        // The tool's temporary folders, and the packages it would add from a virtual
        // environment, come from the build's own folder: nothing of the machine's reaches the
        // snapshot but what `pinned` pins.
        let (tmp, venv) = (work.path().join("tmp"), work.path().join("venv"));
        // An empty site-packages where the tool looks for one (else it warns that it found none).
        for folder in [&tmp, &venv.join("lib/python3/site-packages")] {
            std::fs::create_dir_all(folder).map_err(io("creating", folder))?;
        }
        let make = || {
            let mut command = Command::new(&tool);
            command
                .arg("-d")
                .arg(&wit)
                .args(["-w", world, "componentize", &self.module, "-p"])
                .arg(&src)
                .arg("-p")
                .arg(&sdk)
                .arg("-o")
                .arg(&out)
                .env("TMPDIR", &tmp)
                .env("VIRTUAL_ENV", &venv)
                .env("PYTHONHASHSEED", "0")
                .env("PYTHONDONTWRITEBYTECODE", "1")
                // Its chatter goes to stderr: stdout is the built component's path alone.
                .stdout(std::process::Stdio::from(std::io::stderr()));
            command
        };
        // The tool's installation: the virtual environment its script is in (`<venv>/bin/…`).
        let installed = tool.canonicalize().ok().and_then(|t| t.parent()?.parent().map(Path::to_path_buf)).unwrap_or_else(|| tool.clone());
        let (status, pinning) = pinned::status(&make, work.path(), &installed).map_err(io("running", &tool))?;
        if !status.success() {
            return Err(Error::Failed(format!("componentize-py could not build {} (its message is above)", self.dir.display())));
        }
        Ok((out, pinning))
    }
}

/// Copies a plugin folder's sources into `to`: everything but build output (`*.wasm`,
/// `__pycache__`, `target`) and hidden entries (`.git`, `.venv`, …). Symbolic links are not
/// followed, so a link out of the folder cannot pull other files into the component.
fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io("creating", to))?;
    for entry in std::fs::read_dir(from).map_err(io("reading", from))? {
        let entry = entry.map_err(io("reading", from))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') || text == "__pycache__" || text == "target" || text.ends_with(".wasm") {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type().map_err(io("reading", &source))?;
        if kind.is_dir() {
            copy_sources(&source, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(io("copying", &source))?;
        }
    }
    Ok(())
}

/// componentize-py: `WEIGHTLAB_COMPONENTIZE_PY`, else the one the set-up installed next to
/// libtorch (known when this binary was built), else the first on PATH.
fn componentize_py() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WEIGHTLAB_COMPONENTIZE_PY") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = option_env!("WEIGHTLAB_COMPONENTIZE_PY").map(PathBuf::from).filter(|p| p.is_file()) {
        return Ok(path);
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("componentize-py")).find(|p| p.is_file())) {
        return Ok(path);
    }
    Err(Error::Invalid(format!(
        "componentize-py is not installed: `make setup` installs componentize-py=={COMPONENTIZE_PY} next to libtorch, or `pip install componentize-py=={COMPONENTIZE_PY}` puts it on PATH (WEIGHTLAB_COMPONENTIZE_PY may name it)"
    )))
}
