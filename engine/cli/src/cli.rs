//! Command-line arguments (clap derive). Every command and flag is documented here; `--help`
//! prints these doc comments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// weightlab — research on neural-network weights as data.
///
/// Describe an experiment (datasets, model zoos, methods, metrics, report) in a TOML manifest;
/// weightlab validates it, trains the zoos natively on libtorch, runs each method as a
/// sandboxed WebAssembly plugin, and writes Arrow/Parquet tables and an HTML report.
/// Finished stages are cached by content, so reruns only do what changed.
#[derive(Debug, Parser)]
#[command(name = "weightlab", version, propagate_version = true, after_long_help = weightlab_manifest::schema::sections_help())]
pub struct Cli {
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (stage keys, timings, plugin logs).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Colour status lines: `auto` (when stderr is a terminal and `NO_COLOR` is unset),
    /// `always`, `never`.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn verbosity(&self) -> weightlab_pipeline::output::Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => weightlab_pipeline::output::Verbosity::Quiet,
            (_, true) => weightlab_pipeline::output::Verbosity::Verbose,
            _ => weightlab_pipeline::output::Verbosity::Normal,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an experiment: every stage of its plan that is not cached yet, then the report.
    /// With `--shard i/n` (or inside a Slurm job array) only shard i's stages, into the shared
    /// stage store; `weightlab merge` renders the report once every shard is done.
    Run {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        schedule: ScheduleArgs,
    },
    /// Combine the stage stores of sharded runs, check that every stage of the plan is there
    /// (exactly once, or identical wherever it was computed twice) and render the report.
    /// Exit 1 when a stage is missing or failed.
    Merge {
        /// Run folders (the output folders the shards wrote to); the first receives the rest.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where to merge into (default: the first run folder).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run an experiment on a cluster: write one job array per dependency level of the plan,
    /// chained with `--dependency=afterok`, and a final merge job, then submit them.
    Submit(SubmitArgs),
    /// Check manifests without running anything; errors point at file:line:col.
    Validate {
        /// Manifest files.
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
        /// Print the effective manifest: the files it extends merged, `--set` applied, sweeps
        /// as written (what a run stores as `manifest.toml`).
        #[arg(long)]
        print: bool,
        /// Print the result as JSON: per manifest, `valid`, `errors` (file, line, column,
        /// message, help), `warnings`, `variants`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Show the stages a run would execute and which are already cached.
    Plan {
        #[command(flatten)]
        run: RunArgs,
        /// Print the plan as JSON (stages with level, key and `cached`; sweeps).
        #[arg(long)]
        json: bool,
    },
    /// Remove the stages of the shared stage store that no run folder refers to any more (its
    /// folder is gone, or it uses another store), and compiled plugin code that this weightlab
    /// cannot use (another build's) or has not used lately; say how much that frees.
    Gc {
        /// The store (default: `WEIGHTLAB_STORE`, else `~/.cache/weightlab/stages`).
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Compiled plugins and functions not used for this many days are removed.
        #[arg(long, value_name = "DAYS", default_value_t = 30.0)]
        unused_days: f64,
    },
    /// Start an experiment: write a commented manifest that runs as it is (a Fashion-MNIST MLP
    /// zoo, the noise baseline and copy), to edit from there.
    Init {
        /// The manifest to write (refused if it exists).
        #[arg(default_value = "experiment.toml")]
        path: PathBuf,
        /// The experiment's name (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a shell completion script: `weightlab completions bash > ~/.local/share/bash-completion/completions/weightlab`.
    Completions { shell: clap_complete::Shell },
    /// Print the JSON Schema of manifests (for editors: `#:schema` in a manifest).
    Schema,
    /// List the available method plugins with their role, version and SHA-256 (what
    /// `[[method]] sha256` pins); with a manifest, also the plugins it names by path and those
    /// in its `[experiment] plugin_path`.
    Plugins {
        /// A manifest whose own plugins to list too.
        manifest: Option<PathBuf>,
        /// Print the list as JSON (name, role, version, abi, path, sha256).
        #[arg(long)]
        json: bool,
    },
    /// Text embeddings (all-MiniLM-L6-v2, run natively and offline) of the given texts, as a
    /// JSON array of 384-d unit vectors: what probes see as label embeddings.
    Embed {
        /// Texts to embed, e.g. "a photo of a sneaker".
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Benchmarks, each against its reference in the same run (ratios, not absolute claims).
    #[command(subcommand)]
    Bench(weightlab_bench::BenchCommand),
    /// Create or build a method plugin.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// The runs of an output folder, oldest first: when, status, time, mean accuracy per method,
    /// and what changed in the manifest since the run before. Each is kept whole in
    /// `<output>/history/<run>/` (report, tables, manifest); the folder's top holds the newest.
    Runs {
        /// An output folder, or a manifest (its output folder: `experiment.output`, else
        /// `reports/<experiment name>`).
        target: PathBuf,
    },
    /// Re-render the report of finished runs from their tables, without recomputing. With
    /// several run folders, their methods appear side by side (prefixed by the run's name).
    Report {
        /// Run folders (each holds manifest.toml, samples.parquet, …).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where to write report.html (default: the first run folder).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// A folder with a report.html.j2 to use instead of the built-in template.
        #[arg(long)]
        template: Option<PathBuf>,
    },
    /// Write a method's samples as state_dicts (`.safetensors`, the zoo's PyTorch names) that
    /// `model.load_state_dict(safetensors.torch.load_file(path))` accepts.
    Export {
        /// The run folder.
        run: PathBuf,
        /// The method whose samples to write (its `name` in the manifest).
        #[arg(long)]
        method: String,
        /// The folder to write them into (created if missing).
        #[arg(long)]
        to: PathBuf,
    },
    /// Browse the runs under a folder in a web browser: each run's status, date, manifest,
    /// commit and failures, its report, its stages live while it runs, and any runs side by
    /// side. Read-only; on 127.0.0.1 unless `--bind` says otherwise.
    Serve {
        /// The folder to look for run folders in (default: `reports`).
        #[arg(default_value = "reports")]
        folder: PathBuf,
        /// Address and port to listen on (port 0: any free one).
        #[arg(long, default_value = "127.0.0.1:8765")]
        bind: String,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment manifest.
    pub manifest: PathBuf,
    /// Output folder (default: `experiment.output`, else `reports/<experiment name>`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The stage store: finished stages live there once, whatever the output folder (default:
    /// `WEIGHTLAB_STORE`, else the machine's shared store `~/.cache/weightlab/stages`;
    /// `run`: the output folder's own `stages/`). `weightlab gc` cleans it.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

impl RunArgs {
    /// The store `--store` names for a run into `output`.
    pub fn store(&self, output: &std::path::Path) -> Option<weightlab_pipeline::store::StageStore> {
        Some(weightlab_pipeline::store::StageStore::named(self.store.as_deref()?, output))
    }
}

/// Which part of the plan a `weightlab run` process takes.
#[derive(Debug, Args, Clone, Default)]
pub struct ScheduleArgs {
    /// Run only shard I of N (0-based): the stages of each dependency level are dealt out
    /// round-robin. Default: from `SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT`, or
    /// `JOB_COMPLETION_INDEX`/`WEIGHTLAB_SHARDS` (Kubernetes Indexed Jobs).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<weightlab_manifest::Shard>,
    /// Run only the stages of this dependency level (`weightlab plan` shows levels); their
    /// inputs must be finished. What each job of `weightlab submit` runs.
    #[arg(long, value_name = "L")]
    pub level: Option<usize>,
    /// How long a shard waits for an input another shard is computing, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    pub wait: u64,
    /// Run the plan as N shards side by side here, each with its share of the cores, then merge.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
    /// Refuse to run unless the plan has this fingerprint (set by `weightlab submit`, so a
    /// manifest or plugin changed after submission is not mixed into the same store).
    #[arg(long, value_name = "FINGERPRINT")]
    pub expect_plan: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The scheduler (Slurm is the one there is).
    #[arg(long, required = true)]
    pub slurm: bool,
    #[command(flatten)]
    pub run: RunArgs,
    /// Print the job scripts instead of submitting them (they are written either way).
    #[arg(long)]
    pub dry_run: bool,
    /// Most array tasks per level (default: `[cluster] shards`, else 4).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Slurm partition (`[cluster] partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task, as Slurm writes it, e.g. `2:00:00` (`[cluster] time`).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (`[cluster] cpus`).
    #[arg(long)]
    pub cpus: Option<usize>,
    /// Memory per task, e.g. `16G` (`[cluster] mem`).
    #[arg(long)]
    pub mem: Option<String>,
    /// GPUs per task (`[cluster] gpus`).
    #[arg(long)]
    pub gpus: Option<usize>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Overrides {
    /// Override a manifest value before validation, e.g. `--set zoo.mlp.models=32` or
    /// `--set method.noise.config.sigma=0.1` (array entries by index or by `name`); a sweep
    /// too: `--set 'method.noise.config.sigma={ sweep = [0.01, 0.1] }'`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Where to compute: `cpu`, `cuda`, `cuda:N` or `auto` (the manifest's
    /// `[experiment] device`, overridden).
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
}

impl Overrides {
    /// The `--set` values, `--device` as one of them.
    pub fn all(&self) -> Vec<String> {
        let mut sets = self.sets.clone();
        if let Some(d) = &self.device {
            sets.push(format!("experiment.device={}", toml::Value::String(d.clone())));
        }
        sets
    }
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin from the template (`plugins/template`): a Rust crate, or a Python module
    /// with `--lang python`.
    New {
        /// Name of the plugin (and of its folder).
        name: String,
        /// What the plugin is.
        #[arg(long, value_enum, default_value = "generator")]
        role: NewRole,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin into a WebAssembly component — a Rust crate for wasm32-wasip2, a Python
    /// plugin (a folder with a pyproject.toml that has `[tool.weightlab]`) with componentize-py —
    /// and write its metadata into it; prints the path of the `.wasm` component.
    Build {
        /// The plugin's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// What a built plugin says about itself — name, version, role, WIT version, config schema,
    /// SHA-256 — read from the component without running it.
    Inspect {
        /// A plugin's name (built-in, or in `WEIGHTLAB_PLUGIN_PATH`) or its `.wasm` file.
        plugin: String,
        /// Print the metadata as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the metadata section into built components that lack one (what `plugin build`
    /// does), so `plugins` and `plugin inspect` read them without loading them.
    Stamp { wasm: Vec<PathBuf> },
    /// Check a built plugin against the plugin contract on a tiny built-in zoo: it describes
    /// itself, its config schema is valid, its check accepts the config, fit and sample finish
    /// within the default limits with the right shape and finite values, and the same seed
    /// gives the same samples. Prints a pass/fail list; exit 1 when a clause fails.
    Test {
        /// The `.wasm` component.
        wasm: PathBuf,
        /// The config to test with, as a TOML inline table.
        #[arg(long, default_value = "{}")]
        config: String,
        /// The zoo: `plain` (20 MLP checkpoints), or `tasks` (a task family with conditions,
        /// for conditional generators and transfer baselines).
        #[arg(long, value_enum, default_value = "plain")]
        zoo: TestZooArg,
    },
}

/// The zoos `weightlab plugin test` offers.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TestZooArg {
    Plain,
    Tasks,
}

/// Languages a plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    /// Built with componentize-py (installed by the set-up).
    Python,
}

/// Roles a new plugin can take.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NewRole {
    Generator,
    Baseline,
    /// Predicts a property of models from their weights.
    Probe,
}

impl NewRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NewRole::Generator => "generator",
            NewRole::Baseline => "baseline",
            NewRole::Probe => "probe",
        }
    }
}
