//! What a benchmark runs beside the engine: the PyTorch reference scripts, the Python of the
//! torch install, and the benchmark plugins. All of them ship inside the binary, so a copied
//! `weightlab` benchmarks as well as one in a checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The reference scripts of one `weightlab bench` call: those in `WEIGHTLAB_BENCHES` when it
/// names a folder (edit a reference without rebuilding), else the copies embedded at build
/// time, written into a temporary folder that lives as long as this value.
pub struct Scripts {
    dir: PathBuf,
    _unpacked: Option<tempfile::TempDir>,
}

impl Scripts {
    pub fn new() -> Result<Self> {
        if let Some(dir) = std::env::var_os("WEIGHTLAB_BENCHES") {
            return Ok(Self { dir: PathBuf::from(dir), _unpacked: None });
        }
        let tmp = tempfile::tempdir().context("creating a folder for the PyTorch references")?;
        for (name, text) in embedded::SCRIPTS {
            std::fs::write(tmp.path().join(name), text).with_context(|| format!("writing {name}"))?;
        }
        Ok(Self { dir: tmp.path().to_path_buf(), _unpacked: Some(tmp) })
    }

    /// The reference `name` (e.g. `zoo.py`).
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if !path.is_file() {
            bail!("the PyTorch reference {} is missing", path.display());
        }
        Ok(path)
    }

    /// Runs reference `name` with `args` under `python` (with `env`, and the engine's glibc heap thresholds: with glibc's defaults small-tensor code pays an mmap and page faults per step); its stdout is one number,
    /// the figure it measured (seconds, or GFLOP/s for `sgemm`).
    pub fn measure(&self, python: &Path, name: &str, args: &[String], env: &[(&str, String)]) -> Result<f64> {
        let mut command = Command::new(python);
        command.arg(self.path(name)?).args(args);
        command.env("MALLOC_MMAP_THRESHOLD_", weightlab_host::worker::MMAP_THRESHOLD.to_string());
        command.env("MALLOC_TRIM_THRESHOLD_", weightlab_host::worker::TRIM_THRESHOLD.to_string());
        for (key, value) in env {
            command.env(key, value);
        }
        let out = command.output().with_context(|| format!("running benches/{name}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.trim().parse().map_err(|_| anyhow!("benches/{name} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The Python of the torch install the engine links: `WEIGHTLAB_TORCH_PYTHON`, else the venv
/// the set-up made under `~/.cache/weightlab/`.
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEIGHTLAB_TORCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/weightlab/torch-2.9.0/bin/python");
    p.is_file().then_some(p)
}

/// [`python`], or an error saying how to get it.
pub fn require_python() -> Result<PathBuf> {
    python().ok_or_else(|| anyhow!("the torch venv is missing: run `make setup`, or name its python in WEIGHTLAB_TORCH_PYTHON"))
}

/// The component of benchmark plugin `name` (e.g. `bench-autoencoder`): from
/// `WEIGHTLAB_PLUGIN_DIR/bench/` when that is set, else embedded.
pub fn bench_plugin(name: &str) -> Result<weightlab_host::PluginCode> {
    let file = format!("{name}.wasm");
    if let Some(dir) = std::env::var_os("WEIGHTLAB_PLUGIN_DIR") {
        let path = PathBuf::from(dir).join("bench").join(&file);
        if path.is_file() {
            return Ok(weightlab_host::PluginCode::read(&path)?);
        }
    }
    match embedded::PLUGINS.iter().find(|(n, _)| *n == file) {
        Some((_, bytes)) => Ok(weightlab_host::PluginCode::from_bytes(Path::new(&file), bytes.to_vec())),
        None => bail!("this binary was built without the benchmark plugin {name}: run `make plugins`, then rebuild"),
    }
}

/// The component of built-in plugin `name` (e.g. `pdiff`), found as a run finds it.
pub fn builtin_plugin(name: &str) -> Result<weightlab_host::PluginCode> {
    let dir = weightlab_pipeline::plugins::builtin_dir().context("no built-in plugins: this binary was built before `make plugins`")?;
    Ok(weightlab_host::PluginCode::read(&dir.join(format!("{name}.wasm")))?)
}
