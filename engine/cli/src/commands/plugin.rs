//! `weightlab plugin new`, `build` and `test`: start, build and check a plugin crate.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use weightlab_pipeline::output;

const CARGO_TOML: &str = include_str!("../../../../plugins/template/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../../../plugins/template/src/lib.rs.in");
const PROBE_RS: &str = include_str!("../../../../plugins/template/src/probe.rs.in");

/// The SDK of this checkout (plugins depend on it by path).
fn sdk_path() -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk"));
    p.canonicalize().unwrap_or(p)
}

/// Creates a plugin crate `<dir>/<name>` from `plugins/template`.
pub fn new(name: &str, role: &str, dir: &Path) -> Result<i32> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
        bail!("plugin name `{name}`: use letters, digits, `-` and `_`, starting with a letter");
    }
    let target = dir.join(name);
    if target.exists() {
        bail!("{} already exists", target.display());
    }
    let fill = |text: &str| text.replace("{{name}}", name).replace("{{crate_name}}", name).replace("{{role}}", role).replace("{{sdk_path}}", &sdk_path().display().to_string());
    std::fs::create_dir_all(target.join("src")).with_context(|| format!("creating {}", target.display()))?;
    std::fs::write(target.join("Cargo.toml"), fill(CARGO_TOML))?;
    std::fs::write(target.join("src/lib.rs"), fill(if role == "probe" { PROBE_RS } else { LIB_RS }))?;
    output::status("Created", &format!("{role} plugin `{name}` in {} — build it with `weightlab plugin build {}`", target.display(), target.display()));
    Ok(0)
}

/// Builds the plugin crate at `dir` for wasm32-wasip2 and copies the component to
/// `<dir>/<name>.wasm`.
pub fn build(dir: &Path) -> Result<i32> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} has no Cargo.toml; give the plugin crate's folder", dir.display());
    }
    output::status("Building", &format!("{} for wasm32-wasip2", dir.display()));
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest)
        .status()
        .context("running cargo (is the Rust toolchain installed? `make` installs the wasm32-wasip2 target)")?;
    if !status.success() {
        return Ok(1);
    }
    let meta = Command::new("cargo").args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"]).arg(&manifest).output()?;
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).context("reading cargo metadata")?;
    let name = meta["packages"][0]["name"].as_str().context("package name")?.to_string();
    let target = PathBuf::from(meta["target_directory"].as_str().context("target directory")?);
    let built = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    let out = dir.join(format!("{name}.wasm"));
    std::fs::copy(&built, &out).with_context(|| format!("copying {}", built.display()))?;
    output::status("Built", &out.display().to_string());
    println!("{}", out.display());
    Ok(0)
}

/// Checks the plugin at `wasm` against the contract (`weightlab_pipeline::contract`) and prints
/// one line per clause; exit 1 when a clause fails.
pub fn test(wasm: &Path, config: &str, zoo: crate::cli::TestZooArg) -> Result<i32> {
    use weightlab_pipeline::contract::{Outcome, TestZoo};
    let zoo = match zoo {
        crate::cli::TestZooArg::Plain => TestZoo::Plain,
        crate::cli::TestZooArg::Tasks => TestZoo::Tasks,
    };
    if !wasm.is_file() {
        bail!("{} is not a file: give the `.wasm` component `weightlab plugin build` printed", wasm.display());
    }
    let work = tempfile::tempdir().context("creating a temporary folder for the contract runs")?;
    let checks = weightlab_pipeline::contract::check(wasm, config, zoo, work.path())?;
    println!("plugin contract: {}", wasm.display());
    for c in &checks {
        let mark = match c.outcome {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
        };
        println!("  {mark}  {}: {}", c.clause, c.detail.lines().next().unwrap_or_default());
    }
    let failed = checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
    println!("{} clauses, {} failed", checks.len(), failed);
    Ok(if failed == 0 { 0 } else { 1 })
}
