//! `weightlab plugin new`, `build`, `inspect` and `test`: start, build, read and check a plugin,
//! in Rust (a crate built for wasm32-wasip2) or Python (a module built by componentize-py,
//! [`super::python`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use weightlab_pipeline::output;

use crate::cli::Lang;

const CARGO_TOML: &str = include_str!("../../../../plugins/template/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../../../plugins/template/src/lib.rs.in");
const PROBE_RS: &str = include_str!("../../../../plugins/template/src/probe.rs.in");

/// The SDK of this checkout (plugins depend on it by path).
fn sdk_path() -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk"));
    p.canonicalize().unwrap_or(p)
}

/// Creates a plugin `<dir>/<name>` from `plugins/template`: a Rust crate, or a Python plugin.
pub fn new(name: &str, role: &str, lang: Lang, dir: &Path) -> Result<i32> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
        bail!("plugin name `{name}`: use letters, digits, `-` and `_`, starting with a letter");
    }
    let target = dir.join(name);
    if target.exists() {
        bail!("{} already exists", target.display());
    }
    if lang == Lang::Python {
        super::python::new(name, role, &target)?;
    } else {
        let fill = |text: &str| text.replace("{{name}}", name).replace("{{crate_name}}", name).replace("{{role}}", role).replace("{{sdk_path}}", &sdk_path().display().to_string());
        std::fs::create_dir_all(target.join("src")).with_context(|| format!("creating {}", target.display()))?;
        std::fs::write(target.join("Cargo.toml"), fill(CARGO_TOML))?;
        std::fs::write(target.join("src/lib.rs"), fill(if role == "probe" { PROBE_RS } else { LIB_RS }))?;
    }
    output::status("Created", &format!("{role} plugin `{name}` in {} — build it with `weightlab plugin build {}`", target.display(), target.display()));
    Ok(0)
}

/// Builds the plugin at `dir` — a Python plugin when it has a pyproject.toml with
/// `[tool.weightlab]`, else a Rust crate for wasm32-wasip2 — into `<dir>/<name>.wasm`, and
/// writes its metadata into the component.
pub fn build(dir: &Path) -> Result<i32> {
    let (out, built_with) = if let Some(project) = super::python::Project::find(dir)? {
        (project.build()?, format!("componentize-py {}", super::python::COMPONENTIZE_PY))
    } else {
        match build_rust(dir)? {
            Some(out) => (out, "cargo (wasm32-wasip2)".to_string()),
            None => return Ok(1),
        }
    };
    let meta = weightlab_pipeline::plugins::stamp(&out, &built_with).with_context(|| format!("describing the built plugin {} to write its metadata", out.display()))?;
    output::status("Built", &format!("{} ({} {} {}, WIT {})", out.display(), meta.role, meta.name, meta.version, meta.abi));
    if built_with.starts_with("componentize-py") {
        output::warn("Python builds are not byte-reproducible (componentize-py#247): each build has another SHA-256, so a pin holds for this file, not for the source — keep the .wasm you pin");
    }
    println!("{}", out.display());
    Ok(0)
}

/// Builds a Rust plugin crate; `None` when cargo failed (it printed why).
fn build_rust(dir: &Path) -> Result<Option<PathBuf>> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} has neither a Cargo.toml (a Rust plugin) nor a pyproject.toml with [tool.weightlab] (a Python plugin); give the plugin's folder", dir.display());
    }
    output::status("Building", &format!("{} for wasm32-wasip2", dir.display()));
    // Every plugin shares one target folder (the SDK and its dependencies are built once, not
    // 160 MB per plugin), unless the author chose one.
    let shared = std::env::var_os("CARGO_TARGET_DIR").is_none().then(|| {
        let cache = std::env::var_os("WEIGHTLAB_CACHE").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/weightlab")));
        cache.map(|c| c.join("plugin-target"))
    });
    let cargo = |args: &[&str]| {
        let mut c = Command::new("cargo");
        c.args(args).arg(&manifest);
        if let Some(Some(dir)) = &shared {
            c.env("CARGO_TARGET_DIR", dir);
        }
        c
    };
    let status =
        cargo(&["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"]).status().context("running cargo (is the Rust toolchain installed? `make` installs the wasm32-wasip2 target)")?;
    if !status.success() {
        return Ok(None);
    }
    let meta = cargo(&["metadata", "--format-version", "1", "--no-deps", "--manifest-path"]).output()?;
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).context("reading cargo metadata")?;
    let name = meta["packages"][0]["name"].as_str().context("package name")?.to_string();
    let target = PathBuf::from(meta["target_directory"].as_str().context("target directory")?);
    let built = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    let out = dir.join(format!("{name}.wasm"));
    std::fs::copy(&built, &out).with_context(|| format!("copying {}", built.display()))?;
    Ok(Some(out))
}

/// Prints what a plugin says about itself — from its metadata section, or, for a component
/// built without one (the built-in plugins), by loading it in a worker as a run would — and its
/// config options as a table. `plugin` is a `.wasm` file or a plugin's name.
pub fn inspect(plugin: &str, json: bool) -> Result<i32> {
    use weightlab_host::metadata;
    let wasm = match Path::new(plugin) {
        path if path.is_file() => path.to_path_buf(),
        _ => match weightlab_pipeline::plugins::find_all().into_iter().find(|(n, _)| n == plugin) {
            Some((_, path)) => path,
            None => {
                let names: Vec<String> = weightlab_pipeline::plugins::builtin_names();
                bail!("no plugin `{plugin}`: give a `.wasm` file or one of {}", names.join(", "));
            }
        },
    };
    let code = weightlab_host::PluginCode::read(&wasm)?;
    let bytes = &code.bytes;
    let versions = metadata::wit_versions(bytes).with_context(|| wasm.display().to_string())?;
    let stamped = metadata::read(bytes).with_context(|| wasm.display().to_string())?;
    let sha256 = &code.sha256;
    let abi = versions.first().cloned().unwrap_or_else(|| "none".into());
    let runs = if versions.is_empty() {
        "no: it uses no weightlab:plugin interface".to_string()
    } else if weightlab_host::abi::compatible(weightlab_host::ABI_VERSION, &abi) {
        "yes".to_string()
    } else if weightlab_host::compat::supported(&abi).is_some() {
        format!("yes, through the adapter for {abi} (this host implements {})", weightlab_host::ABI_VERSION)
    } else {
        format!("no: this host runs {} and {}", weightlab_host::ABI_VERSION, weightlab_host::compat::SUPPORTED.join(", "))
    };
    // What it says of itself: the metadata section, else a description from loading it.
    let (meta, source) = match stamped {
        Some(m) => (Some(m), "its metadata section"),
        None => match weightlab_pipeline::stages::method::describe_code(plugin, &code, weightlab_host::Limits::default()) {
            Ok(d) => (
                Some(metadata::Metadata {
                    name: d.name,
                    version: d.version,
                    role: weightlab_host::role_name(d.role).to_string(),
                    abi: d.abi,
                    about: d.about,
                    config_schema: d.config_schema,
                    built_with: "unknown (no metadata section)".into(),
                }),
                "loading it (no metadata section)",
            ),
            Err(e) => {
                output::warn(&format!("{}: no metadata section, and loading it failed: {e}", wasm.display()));
                (None, "nothing: it has no metadata section and does not load")
            }
        },
    };
    let options = meta.as_ref().map(|m| weightlab_pipeline::plugins::config_options(&m.config_schema)).unwrap_or_default();
    if json {
        let value = serde_json::json!({ "path": wasm, "sha256": sha256, "bytes": bytes.len(), "wit": abi, "runs_here": runs, "metadata": meta, "options": options });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    println!("{:<11} {}", "path", wasm.display());
    println!("{:<11} {sha256}", "sha256");
    println!("{:<11} {:.1} MB", "size", bytes.len() as f64 / 1e6);
    println!("{:<11} {abi} (runs on this host: {runs})", "WIT");
    println!("{:<11} read from {source}", "described");
    let Some(m) = meta else { return Ok(1) };
    println!("{:<11} {}", "name", output::plain(&m.name));
    println!("{:<11} {}", "version", output::plain(&m.version));
    println!("{:<11} {}", "role", m.role);
    println!("{:<11} {}", "built with", output::plain(&m.built_with));
    println!("{:<11} {}", "about", output::plain(&m.about));
    if options.is_empty() {
        println!("options     none");
        return Ok(0);
    }
    let width = |f: fn(&weightlab_pipeline::plugins::ConfigOption) -> &str, title: &str| options.iter().map(|o| f(o).chars().count()).max().unwrap_or(0).max(title.len());
    let (wk, wt, wd, wb) = (width(|o| &o.key, "option"), width(|o| &o.kind, "type"), width(|o| &o.default, "default"), width(|o| &o.bounds, "bounds"));
    println!("\n{:<wk$}  {:<wt$}  {:<wd$}  {:<wb$}  doc", "option", "type", "default", "bounds");
    for o in &options {
        println!("{:<wk$}  {:<wt$}  {:<wd$}  {:<wb$}  {}", output::plain(&o.key), output::plain(&o.kind), output::plain(&o.default), o.bounds, output::plain(&o.doc));
    }
    println!("\nset them in the method's `config = {{ … }}`; `weightlab validate` checks them against these bounds");
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
        println!("  {mark}  {}: {}", c.clause, output::plain(c.detail.lines().next().unwrap_or_default()));
    }
    let failed = checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
    println!("{} clauses, {} failed", checks.len(), failed);
    Ok(if failed == 0 { 0 } else { 1 })
}
