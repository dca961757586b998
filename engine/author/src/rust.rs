//! Rust plugins: a crate from `plugins/template`, built for wasm32-wasip2 with cargo.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result, io};

const CARGO_TOML: &str = include_str!("../../../plugins/template/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../../plugins/template/src/lib.rs.in");
const PROBE_RS: &str = include_str!("../../../plugins/template/src/probe.rs.in");

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// The Rust SDK a new plugin depends on: the copy embedded in this binary, written once into
/// `<cache>/sdk/<hash of its files>/` (a new SDK, a new folder; concurrent writers each finish
/// their own temporary copy and the first rename wins). Plugins so depend on neither the clone
/// the binary was built in nor where it is.
fn sdk_path() -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (path, bytes) in embedded::SDK_FILES {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let cache = weightlab_host::cache_dir().ok_or_else(|| Error::Invalid("no cache folder for the plugin SDK: set WEIGHTLAB_CACHE or HOME".into()))?;
    let dir = cache.join("sdk").join(&hex::encode(h.finalize())[..16]);
    if !dir.join("sdk/Cargo.toml").is_file() {
        let parent = cache.join("sdk");
        std::fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
        let staging = tempfile::tempdir_in(&parent).map_err(io("creating a folder in", &parent))?;
        for (path, bytes) in embedded::SDK_FILES {
            let file = staging.path().join(path);
            if let Some(folder) = file.parent() {
                std::fs::create_dir_all(folder).map_err(io("creating", folder))?;
            }
            std::fs::write(&file, bytes).map_err(io("writing", &file))?;
        }
        let staged = staging.keep();
        if std::fs::rename(&staged, &dir).is_err() {
            // Another process wrote it first.
            let _ = std::fs::remove_dir_all(&staged);
        }
    }
    Ok(dir.join("sdk"))
}

/// Writes the Rust template into `target`.
pub(crate) fn new(name: &str, role: &str, target: &Path) -> Result<()> {
    let sdk = sdk_path()?;
    let fill = |text: &str| text.replace("{{name}}", name).replace("{{crate_name}}", name).replace("{{role}}", role).replace("{{sdk_path}}", &sdk.display().to_string());
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
