//! The weightlab pipeline as a library: from a validated manifest to stored stages, tables and
//! the HTML report. The `weightlab` binary is argument parsing and printing on top of this.
//!
//! - [`executor`]: [`Run`] walks the plan, skips cached stages, keeps going past failures.
//! - [`stages`]: one module per stage kind (data, zoo, reference, method, evaluate, probe,
//!   report), each a function of inputs the executor assembles from its caches, returning a
//!   typed record ([`records`]).
//! - [`store`]: stage folders, committed atomically.
//! - [`metrics`]: the metric registry — each metric declared once.
//! - [`plots`]: the plot registry — each report plot declared once.
//! - [`report`]: the report built from run folders alone (also `weightlab report`).
//! - [`history`]: every run of an output folder kept (`history/`), `weightlab runs`.
//! - [`interrupt`]: Ctrl-C and SIGTERM end a run with what is kept said, nothing marked failed.
//! - [`slurm`]: job scripts for `weightlab submit`, everything in them quoted.
//! - [`side_by_side`]: a run as shards side by side on one machine (`weightlab run --jobs N`).
//! - [`text`]: cached offline text embeddings (label names, instructions).
//! - [`plugins`]: finding plugins (embedded, beside the binary, or `WEIGHTLAB_PLUGIN_DIR`).
//! - [`calls`]: calling a plugin in a worker process (describe, check, the zoo it is shown).
//! - [`config_check`]: plugin configs checked against their declared schemas before a run.
//! - [`contract`]: the plugin contract checked on a tiny zoo (`weightlab plugin test`).
//! - [`output`]: status lines and progress bars, one verbosity for everything.
//! - [`error`]: what can go wrong, as data.

pub mod calls;
pub mod config_check;
pub mod contract;
pub mod error;
pub mod executor;
pub mod export;
pub mod history;
pub mod interrupt;
pub mod merge;
pub mod metrics;
pub mod output;
pub mod plan_view;
pub use weightlab_report::plots;
pub mod plugins;
pub mod preflight;
pub mod progress;
pub mod records;
pub mod report;
pub mod side_by_side;
pub mod slurm;
pub mod stages;
pub mod store;
pub mod tasks;
pub mod text;
pub mod validation;

use std::path::Path;

pub use error::{Error, Result};
pub use executor::{Run, RunInfo, Schedule, Summary};
use weightlab_manifest::{Catalog, LoadError, Loaded};

/// Everything a manifest may name: the plugins found, the registered metrics and plots.
pub fn catalog() -> Catalog {
    Catalog { plugins: plugins::builtin_names(), metrics: metrics::keys(), plots: plots::ids(), plugins_in: plugins::names_in }
}

/// Loads and validates a manifest against this engine's [`catalog`].
pub fn load_manifest(path: &Path, sets: &[String]) -> Result<Loaded, LoadError> {
    weightlab_manifest::load(path, sets, &catalog())
}

/// The manifest JSON Schema with this engine's metrics and plots (plugins excluded: they
/// depend on the machine).
pub fn schema_json() -> String {
    weightlab_manifest::schema::manifest_schema_json(&Catalog { metrics: metrics::keys(), plots: plots::ids(), ..Catalog::default() })
}

/// What the engine's `main` does first. Started as a worker (the hidden worker argument,
/// [`weightlab_host::worker`]), this process serves its job and exits here. Otherwise, while it
/// still has one thread, it starts the fork server its workers are forked from
/// ([`weightlab_host::spawn`]), and then has the heap serve tensor-sized blocks (before any
/// thread of ours allocates).
pub fn start_process() {
    if std::env::args().nth(1).as_deref() == Some(weightlab_host::worker::WORKER_ARG) {
        weightlab_host::worker::exit_now(serve_worker());
    }
    weightlab_host::spawn::start_fork_server(serve_worker);
    weightlab_host::worker::tune_allocator();
}

/// The body of a method's worker process (`weightlab` started with
/// [`weightlab_host::worker::WORKER_ARG`]); its exit code. A worker of a run on a GPU computes
/// there too, so libtorch's CUDA half is loaded first.
pub fn serve_worker() -> i32 {
    if weightlab_host::tensors::device_name().starts_with("cuda")
        && let Err(e) = weightlab_compute::device::load_cuda()
    {
        eprintln!("the worker cannot load libtorch's CUDA library: {e}");
        return 1;
    }
    weightlab_host::worker::serve()
}
