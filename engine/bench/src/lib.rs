//! `weightlab bench`: each benchmark runs the engine and its strongest PyTorch reference
//! (`benches/*.py`, under the same torch install) side by side in one run, interleaved, and
//! prints medians and ratios — never absolute claims, since machines differ. Every line names
//! the core count; name the CPU and its ISA when you quote a figure.
//!
//! The references and the benchmark plugins are embedded in the binary ([`references`]), so
//! a copied `weightlab` benchmarks without the source tree; `WEIGHTLAB_BENCHES` names a folder
//! of edited references instead.

mod isa;
mod metrics;
mod plugin;
mod record;
pub mod references;
mod workers;
mod zoo;

pub use isa::Isa;
pub use record::SaveArgs;

use clap::{Args, Subcommand};

/// Runs one benchmark; the process exit code. The `--save` folder is made first, so a path that
/// cannot be one fails before minutes of measuring, not after.
pub fn run(command: &BenchCommand) -> anyhow::Result<i32> {
    command.save().prepare()?;
    if let Some(code) = isa::rerun_limited(command.save().isa)? {
        return Ok(code);
    }
    match command {
        BenchCommand::Plugin(args) => plugin::plugin(args),
        BenchCommand::Pdiff(args) => plugin::pdiff(args),
        BenchCommand::Flown(args) => plugin::flown(args),
        BenchCommand::Hyperreps(args) => plugin::hyperreps(args),
        BenchCommand::D2nwg(args) => plugin::d2nwg(args),
        BenchCommand::Igpg(args) => plugin::igpg(args),
        BenchCommand::Diffusion(args) => plugin::diffusion(args),
        BenchCommand::Generators(args) => plugin::generators(args),
        BenchCommand::Zoo(args) => zoo::zoo(args),
        BenchCommand::Metrics(args) => metrics::metrics(args),
        BenchCommand::Workers(args) => workers::workers(args),
    }
}

impl BenchCommand {
    /// Where the bench saves what it measured (`--save`).
    fn save(&self) -> &SaveArgs {
        match self {
            BenchCommand::Plugin(a) => &a.out,
            BenchCommand::Pdiff(a) | BenchCommand::Flown(a) | BenchCommand::Hyperreps(a) | BenchCommand::D2nwg(a) => &a.out,
            BenchCommand::Igpg(a) => &a.out,
            BenchCommand::Diffusion(a) => &a.out,
            BenchCommand::Generators(a) => &a.out,
            BenchCommand::Zoo(a) => &a.out,
            BenchCommand::Metrics(a) => &a.out,
            BenchCommand::Workers(a) => &a.out,
        }
    }
}

/// The median of `v` (the upper one for an even count); NaN for none.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The cores this process may use, for the header line of every benchmark.
fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The cost of the plugin boundary: an autoencoder loop as a wasm plugin vs. natively
    /// through the same host API vs. PyTorch.
    Plugin(BenchPluginArgs),
    /// Batched zoo training vs. PyTorch: a per-model loop, torch.func vmap and hand-batched
    /// PyTorch (models/s and GFLOP/s, against the measured SGEMM rate).
    Zoo(BenchZooArgs),
    /// p-diff's training (autoencoder + latent DDPM) as the `pdiff` plugin vs. the same steps
    /// in PyTorch (`benches/pdiff.py`): time per step and the ratio.
    Pdiff(BenchFitArgs),
    /// FLoWN's training (p-diff's autoencoder, then flow matching in its latent space) as the
    /// `flown` plugin vs. the same steps in PyTorch (`benches/flown.py`): time per step and
    /// the ratio.
    Flown(BenchFitArgs),
    /// Hyper-Representations' training (the default MLP autoencoder over the flat weights) as
    /// the `hyperreps` plugin vs. the same steps in PyTorch (`benches/hyperreps.py`): time per
    /// step and the ratio.
    Hyperreps(BenchFitArgs),
    /// D2NWG's training (a weight VAE, then a latent DDPM conditioned on each checkpoint's
    /// task) as the `d2nwg` plugin vs. the same steps in PyTorch (`benches/d2nwg.py`): time
    /// per step and the ratio.
    D2nwg(BenchFitArgs),
    /// IGPG's training (a VQ-VAE tokeniser over chunks of the weights, then a causal
    /// transformer over each checkpoint's codes, conditioned on its task) as the `igpg` plugin
    /// vs. the same steps in PyTorch (`benches/igpg.py`): time per step and the ratio.
    Igpg(BenchIgpgArgs),
    /// HyperDiffusion's and G.pt's training (a DDPM over weight tokens with a transformer
    /// denoiser) as the `hyperdiffusion` plugin vs. the same steps in PyTorch
    /// (`benches/diffusion.py`): time per step and the ratio.
    Diffusion(BenchDiffusionArgs),
    /// Every generator's fit above (p-diff, FLoWN, Hyper-Representations, D2NWG, IGPG,
    /// HyperDiffusion/G.pt), each with its bench's defaults, one after the other: the table of
    /// the docs in one command (`--save` writes one summary for all).
    Generators(BenchGeneratorsArgs),
    /// The evaluation stage at scale: n generated MLPs scored against n training checkpoints
    /// on the Fashion-MNIST test set — accuracy, raw and aligned NN distance, distance to the
    /// nearest interpolation, novelty and agreement — with the time of each part for each n.
    Metrics(BenchMetricsArgs),
    /// What starting a plugin worker costs: forked from the engine's fork server against
    /// started with exec (libtorch's start-up again), the same `describe` jobs each way, in
    /// one process: milliseconds per worker and the ratio.
    Workers(BenchWorkersArgs),
}

#[derive(Debug, Args)]
pub struct BenchWorkersArgs {
    /// Workers started one after another each way in a repeat.
    #[arg(long, default_value_t = 20)]
    pub jobs: usize,
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}

#[derive(Debug, Args)]
pub struct BenchMetricsArgs {
    /// Numbers of generated models (and of training checkpoints), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000")]
    pub sizes: Vec<usize>,
    /// Test examples each model is scored on.
    #[arg(long, default_value_t = 10000)]
    pub test: usize,
    /// Hidden width of the MLP (784 → hidden → 10).
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Largest n for which the aligned NN distance (up to n² unit matchings) is measured;
    /// above it, its time is extrapolated from the largest measured n as n².
    #[arg(long, default_value_t = 1000)]
    pub aligned_max: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}

// A generator's fit on synthetic checkpoints (p-diff, FLoWN, Hyper-Representations, D2NWG).
#[derive(Debug, Args)]
pub struct BenchFitArgs {
    /// Training checkpoints (p-diff keeps 200).
    #[arg(long, default_value_t = 200)]
    pub rows: usize,
    /// Parameters per checkpoint (p-diff's ResNet-18 BatchNorm layers: 2,048).
    #[arg(long, default_value_t = 2048)]
    pub params: usize,
    /// Steps of each stage (the autoencoder or VAE; for p-diff, FLoWN and D2NWG then as many
    /// of the latent DDPM or flow).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Interleaved repeats; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}

#[derive(Debug, Args)]
pub struct BenchDiffusionArgs {
    /// Training checkpoints.
    #[arg(long, default_value_t = 200)]
    pub rows: usize,
    /// Parameters per checkpoint (G.pt's MNIST MLP 784 → 10 → 10: 7,960).
    #[arg(long, default_value_t = 7960)]
    pub params: usize,
    /// Training steps.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Interleaved repeats; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}

#[derive(Debug, Args)]
pub struct BenchIgpgArgs {
    /// Training checkpoints.
    #[arg(long, default_value_t = 200)]
    pub rows: usize,
    /// Parameters per checkpoint.
    #[arg(long, default_value_t = 2048)]
    pub params: usize,
    /// Parameters per token (the plugin's default is 2, a sequence of 1,024 tokens here; 32
    /// gives 64 tokens, which keeps a repeat to seconds).
    #[arg(long, default_value_t = 32)]
    pub chunk: usize,
    /// Steps of each stage (the VQ-VAE, then as many of the transformer).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Interleaved repeats; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}

#[derive(Debug, Args)]
pub struct BenchGeneratorsArgs {
    /// Interleaved repeats of each fit; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}

#[derive(Debug, Args)]
pub struct BenchZooArgs {
    /// `mlp`, `cnn`, `both` (the two), `lenet5` (LeNet-5 with BatchNorm), `lenet5-gelu-dropout`
    /// (with GELU and dropout in its classifier) or `resnet-small`
    /// (two residual blocks with BatchNorm, one with a 1×1 conv shortcut) — declared networks,
    /// on the native engine for declared networks — or `all`; several separated by commas
    /// (`--arch mlp,resnet-small`) run in one call, under one ceiling measurement.
    #[arg(long, default_value = "both")]
    pub arch: String,
    /// Hidden width of the MLP (784 → hidden → 10); 10 is the G.pt MNIST MLP of the quickstart.
    #[arg(long, default_value_t = 32)]
    pub mlp_hidden: usize,
    /// Models in the zoo.
    #[arg(long, default_value_t = 64)]
    pub models: usize,
    /// Training examples per model.
    #[arg(long, default_value_t = 2000)]
    pub train: usize,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Runs per method; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}

#[derive(Debug, Args)]
pub struct BenchPluginArgs {
    /// Training checkpoints (rows of the batch).
    #[arg(long, default_value_t = 64)]
    pub rows: usize,
    /// Parameters per checkpoint.
    #[arg(long, default_value_t = 2464)]
    pub params: usize,
    /// Width of the bottleneck.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Adam steps.
    #[arg(long, default_value_t = 500)]
    pub steps: usize,
    /// Interleaved repeats; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    #[command(flatten)]
    pub out: SaveArgs,
}
