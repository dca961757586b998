//! `weightlab plugin new`, `build`, `stamp`, `inspect` and `test`: start, build, read and check a plugin,
//! in Rust (a crate built for wasm32-wasip2) or Python (a module built by componentize-py); the
//! work is `weightlab_author`'s.

use std::path::Path;

use anyhow::{Context, Result, bail};

use weightlab_pipeline::output;

use crate::cli::Lang;

/// Creates a plugin `<dir>/<name>` from the template: a Rust crate, or a Python plugin.
pub fn new(name: &str, role: &str, lang: Lang, dir: &Path) -> Result<i32> {
    let lang = if lang == Lang::Python { weightlab_author::Lang::Python } else { weightlab_author::Lang::Rust };
    let target = weightlab_author::new_plugin(name, role, lang, dir)?;
    output::status("Created", &format!("{role} plugin `{name}` in {} — build it with `weightlab plugin build {}`", target.display(), target.display()));
    Ok(0)
}

/// Builds the plugin at `dir` (Rust or Python) into `<dir>/<name>.wasm` and writes its
/// metadata into the component; exit 1 when the build tool failed (it printed why).
pub fn build(dir: &Path) -> Result<i32> {
    let weightlab_author::Built { path: out, built_with, warning } = match weightlab_author::build(dir) {
        Ok(built) => built,
        Err(weightlab_author::Error::Failed(reason)) => {
            output::error(&reason);
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let meta = weightlab_pipeline::plugins::stamp(&out, &built_with).with_context(|| format!("describing the built plugin {} to write its metadata", out.display()))?;
    output::status("Built", &format!("{} ({} {} {}, WIT {})", out.display(), meta.role, meta.name, meta.version, meta.abi));
    if let Some(warning) = warning {
        output::warn(&warning);
    }
    println!("{}", out.display());
    Ok(0)
}

/// Writes the metadata section into each component of `files` that has none (`make` stamps the
/// built-in plugins this way, as built by cargo).
pub fn stamp(files: &[std::path::PathBuf]) -> Result<i32> {
    for file in files.iter().filter(|f| !weightlab_pipeline::plugins::has_metadata(f)) {
        weightlab_pipeline::plugins::stamp(file, "cargo").with_context(|| format!("describing {} to write its metadata", file.display()))?;
    }
    Ok(0)
}

/// Prints what a plugin says about itself — from its metadata section, or, for a component
/// built without one, by loading it in a worker as a run would — and its
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
    let sha256 = &code.sha256;
    let abi = versions.first().cloned().unwrap_or_else(|| "none".into());
    let runs = weightlab_host::compat::runs_here(versions.first().map(String::as_str));
    let (meta, source) = match weightlab_pipeline::plugins::self_description(plugin, &code) {
        Ok(described) => described,
        Err(e) => {
            output::warn(&format!("{}: no metadata section, and loading it failed: {e}", wasm.display()));
            (None, "nothing: it has no metadata section and does not load")
        }
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
