//! One function per command. Each returns the process exit code: 0 success, 1 a run that
//! finished with failed stages or an internal error, 2 a manifest that does not validate.

mod embed;
mod plan;
mod plugin;
mod plugins;
mod report;
mod run;
mod schema;
mod submit;
mod validate;

use std::path::Path;

use weightlab_manifest::{LoadError, Loaded};

use crate::cli::{Cli, Command, PluginCommand};

pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run { run, schedule } => run::run(&run, &schedule),
        Command::Merge { runs, output } => run::merge(&runs, output),
        Command::Submit(args) => submit::submit(&args),
        Command::Validate { manifests, print, json, overrides } => validate::validate(&manifests, print, json, &overrides.all()),
        Command::Plan { run, json } => plan::plan(&run, json),
        Command::Schema => schema::schema(),
        Command::Init { path, name } => schema::init(&path, name.as_deref()),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "weightlab", &mut std::io::stdout());
            Ok(0)
        }
        Command::Gc { store, dry_run, unused_days } => run::gc(store, dry_run, unused_days),
        Command::Plugins { manifest, json } => plugins::list(manifest.as_deref(), json),
        Command::Embed { texts } => embed::embed(&texts),
        Command::Bench(bench) => weightlab_bench::run(&bench),
        Command::Plugin(PluginCommand::New { name, role, lang, dir }) => plugin::new(&name, role.as_str(), lang, &dir),
        Command::Plugin(PluginCommand::Build { dir }) => plugin::build(&dir),
        Command::Plugin(PluginCommand::Inspect { plugin, json }) => plugin::inspect(&plugin, json),
        Command::Plugin(PluginCommand::Stamp { wasm }) => plugin::stamp(&wasm),
        Command::Plugin(PluginCommand::Test { wasm, config, zoo }) => plugin::test(&wasm, &config, zoo),
        Command::Report { runs, output, template } => report::report(&runs, output, template),
        Command::Runs { target } => report::runs(&target),
        Command::Export { run, method, to } => report::export(&run, &method, &to),
        Command::Serve { folder, bind } => {
            weightlab_serve::serve(&folder, &bind, |address| weightlab_pipeline::output::result("Serving", &format!("http://{address}/ (the runs under {}; Ctrl-C stops)", folder.display())))?;
            Ok(0)
        }
    }
}

/// Exit code for a manifest that does not validate.
pub const INVALID: i32 = 2;

/// Loads a manifest; prints its errors and returns `Err(exit code)` when it does not validate.
/// The errors are the manifest's and, in the same list in source order, those of every plugin
/// config that can be checked despite them.
pub fn load_manifest(path: &Path, sets: &[String]) -> Result<Loaded, i32> {
    weightlab_pipeline::load_manifest(path, sets).map_err(|e| {
        match e {
            LoadError::Invalid(err) => eprint!("{}", weightlab_pipeline::validation::with_plugin_configs(path, sets, err)),
            other => weightlab_pipeline::output::error(&other.to_string()),
        }
        INVALID
    })
}
