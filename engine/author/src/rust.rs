//! Rust plugins: a crate from `plugins/template`, built for wasm32-wasip2 with cargo.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result, io};

const CARGO_TOML: &str = include_str!("../../../plugins/template/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../../plugins/template/src/lib.rs.in");
const PROBE_RS: &str = include_str!("../../../plugins/template/src/probe.rs.in");

/// The SDK of this checkout (plugins depend on it by path).
fn sdk_path() -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk"));
    p.canonicalize().unwrap_or(p)
}

/// Writes the Rust template into `target`.
pub(crate) fn new(name: &str, role: &str, target: &Path) -> Result<()> {
    let fill = |text: &str| text.replace("{{name}}", name).replace("{{crate_name}}", name).replace("{{role}}", role).replace("{{sdk_path}}", &sdk_path().display().to_string());
    std::fs::create_dir_all(target.join("src")).map_err(io("creating", target))?;
    let cargo = target.join("Cargo.toml");
    std::fs::write(&cargo, fill(CARGO_TOML)).map_err(io("writing", &cargo))?;
    let lib = target.join("src/lib.rs");
    std::fs::write(&lib, fill(if role == "probe" { PROBE_RS } else { LIB_RS })).map_err(io("writing", &lib))
}

/// Builds a Rust plugin crate into `<dir>/<name>.wasm`.
pub(crate) fn build(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Error::Invalid(format!("{} has neither a Cargo.toml (a Rust plugin) nor a pyproject.toml with [tool.weightlab] (a Python plugin); give the plugin's folder", dir.display())));
    }
    weightlab_pipeline::output::status("Building", &format!("{} for wasm32-wasip2", dir.display()));
    // Every plugin shares one target folder (the SDK and its dependencies are built once, not
    // 160 MB per plugin), unless the author chose one.
    let shared = std::env::var_os("CARGO_TARGET_DIR").is_none().then(|| weightlab_host::cache_dir().map(|c| c.join("plugin-target")));
    let cargo = |args: &[&str]| {
        let mut c = Command::new("cargo");
        c.args(args).arg(&manifest);
        if let Some(Some(dir)) = &shared {
            c.env("CARGO_TARGET_DIR", dir);
        }
        c
    };
    let tool = || Error::Invalid("cannot run cargo: is the Rust toolchain installed? (`make` installs the wasm32-wasip2 target)".into());
    let status = cargo(&["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"]).status().map_err(|_| tool())?;
    if !status.success() {
        return Err(Error::Failed(format!("cargo could not build {} (its message is above)", dir.display())));
    }
    let meta = cargo(&["metadata", "--format-version", "1", "--no-deps", "--manifest-path"]).output().map_err(|_| tool())?;
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).map_err(|e| Error::Failed(format!("reading cargo metadata: {e}")))?;
    let field = |v: &serde_json::Value, what: &str| v.as_str().map(str::to_string).ok_or_else(|| Error::Failed(format!("cargo metadata has no {what}")));
    let name = field(&meta["packages"][0]["name"], "package name")?;
    let target = PathBuf::from(field(&meta["target_directory"], "target directory")?);
    let built = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    let out = dir.join(format!("{name}.wasm"));
    std::fs::copy(&built, &out).map_err(io("copying", &built))?;
    Ok(out)
}
