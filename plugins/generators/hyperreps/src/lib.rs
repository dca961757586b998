//! `hyperreps`: Hyper-Representations as generative models (Schürholt et al., NeurIPS 2022).
//!
//! 1. Normalise the training checkpoints (varying coordinates, per-coordinate mean, one scale).
//! 2. Train an autoencoder over the weights: by default MLPs over the flat varying coordinates,
//!    trained on reconstruction with input noise (the CPU-scale stand-in); with
//!    `autoencoder = "transformer"` the paper's transformer over per-unit tokens
//!    ([`tokens`]), optionally with its contrastive term (`contrastive`, NT-Xent between two
//!    augmented views) and a fresh permutation of every model's units at every step
//!    (`permute_each_step`) — the components the paper credits for `S_KDE`'s samples working.
//! 3. Sample like the paper's `S_KDE` (their best sampler): take the latents of the best 30% of
//!    the training checkpoints by validation accuracy (lowest validation loss for neural fields), fit a
//!    Gaussian kernel density estimate to each latent dimension separately (Silverman's
//!    bandwidth), draw every dimension independently and decode. Or like `S_Neigh`: pick one of
//!    those latents whole and add Gaussian noise of the same bandwidth (a product-kernel KDE
//!    over whole latent vectors), so a sample stays in one model's neighbourhood.

mod autoencoder;
mod tokens;

use autoencoder::{Coder, Training, TransformerShape};
use tokens::PermutationPool;
use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::{UnitPermutation, with_permuted_copies};

/// How many random reorderings `permute_each_step` draws from (each model takes one of them at
/// random every step): enough that no arrangement repeats often, drawn once so a step costs
/// three host operations.
const PERMUTATION_POOL: usize = 256;

/// Configuration of `hyperreps`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Size of the latent code.
    #[schemars(range(min = 1))]
    latent_dim: usize,
    /// Hidden width of encoder and decoder.
    #[schemars(range(min = 1))]
    hidden: usize,
    /// Autoencoder training steps (full batch).
    steps: usize,
    /// Learning rate (AdamW).
    lr: f32,
    /// Gaussian noise added to the normalised input during training (augmentation).
    input_noise: f32,
    /// Fraction of checkpoints, best first, whose latents the KDE is fitted to (paper: 0.3).
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    top_fraction: f32,
    /// Multiplies Silverman's bandwidth (1 = the rule as is).
    bandwidth_scale: f32,
    /// `kde`: the paper's `S_KDE`, every latent dimension drawn independently (dimensions of
    /// different models mix). `neighbourhood`: the paper's `S_Neigh`, one model's latent plus
    /// noise.
    sampler: Sampler,
    /// Permutation augmentation (the paper trains with it): this many copies of each training
    /// checkpoint with its hidden units randomly reordered — the same function in another
    /// arrangement — join the autoencoder's training set. 0: off.
    permutations: usize,
    /// `mlp`: MLP encoder and decoder over the flat weights (the CPU-scale stand-in).
    /// `transformer`: the paper's transformer over one token per unit (a neuron's or output
    /// channel's incoming weights and bias), normalised per layer.
    autoencoder: Autoencoder,
    /// Transformer width (token embedding size).
    #[schemars(range(min = 1))]
    dim: usize,
    /// Transformer blocks in the encoder, and as many in the decoder.
    #[schemars(range(min = 1))]
    depth: usize,
    /// Attention heads (must divide `dim`).
    #[schemars(range(min = 1))]
    heads: usize,
    /// Weight of the paper's contrastive term: NT-Xent between the latents (through a
    /// projection head) of two augmented views of each model, beside their reconstruction.
    /// 0: reconstruction only.
    #[schemars(range(min = 0.0))]
    contrastive: f32,
    /// NT-Xent's temperature.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    temperature: f32,
    /// The paper's permutation augmentation: at every step, every model's hidden units in a
    /// random order (one of 256 reorderings drawn at the start, picked anew per model and step;
    /// needs `autoencoder = "transformer"`).
    permute_each_step: bool,
    /// What the decoder is asked for when the input is a permuted view: `view` (that view
    /// itself: the latent must then say how the units are arranged) or `original` (the
    /// checkpoint in its own order: the latent can ignore the arrangement, as the contrastive
    /// term pushes it to).
    reconstruct: Reconstruct,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            latent_dim: 32,
            hidden: 256,
            steps: 1000,
            lr: 1e-3,
            input_noise: 0.05,
            top_fraction: 0.3,
            bandwidth_scale: 1.0,
            sampler: Default::default(),
            permutations: 0,
            autoencoder: Default::default(),
            dim: 64,
            depth: 2,
            heads: 4,
            contrastive: 0.0,
            temperature: 0.1,
            permute_each_step: false,
            reconstruct: Default::default(),
        }
    }
}

/// The reconstruction target of a permuted view (see `Config::reconstruct`).
#[derive(Deserialize, JsonSchema, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Reconstruct {
    #[default]
    View,
    Original,
}

/// Which autoencoder learns the zoo.
#[derive(Deserialize, JsonSchema, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Autoencoder {
    #[default]
    Mlp,
    Transformer,
}

/// How latents are drawn.
#[derive(Deserialize, JsonSchema, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Sampler {
    #[default]
    Kde,
    Neighbourhood,
}

struct HyperReps {
    coder: Coder,
    /// The autoencoder's reconstructions of the training checkpoints (checkpoints × P):
    /// Zeng et al. measure samples against these, since the decoder cannot do better.
    reconstructions: Tensor,
    /// Latents of the best checkpoints (rows of `latent_dim`).
    anchors: Vec<Vec<f32>>,
    /// KDE bandwidth per latent dimension.
    bandwidth: Vec<f32>,
    sampler: Sampler,
}

impl Method for HyperReps {
    type Config = Config;

    fn describe() -> About {
        About::generator(
            "hyperreps",
            env!("CARGO_PKG_VERSION"),
            "Hyper-Representations (Schürholt et al. 2022): an autoencoder over flattened weights; samples decode draws from a per-dimension KDE fitted to the latents of the best 30% of the zoo.",
        )
    }

    fn check(zoo: &ZooPlan, config: &Config) -> Vec<Problem> {
        let mut problems: Vec<Problem> = zoo.needs_checkpoints(2).into_iter().collect();
        if config.permute_each_step && config.autoencoder != Autoencoder::Transformer {
            problems.push(Problem::at(
                "permute_each_step",
                "needs `autoencoder = \"transformer\"` (the MLP autoencoder's per-coordinate normalisation does not commute with reordering units; use `permutations = N` copies instead)",
            ));
        }
        if config.heads == 0 || !config.dim.is_multiple_of(config.heads) {
            problems.push(Problem::at("heads", format!("must divide `dim` ({}); {} does not", config.dim, config.heads)));
        }
        if (config.permute_each_step || config.permutations > 0)
            && let Err(e) = UnitPermutation::new(&zoo.layout)
        {
            problems.push(Problem::at(if config.permute_each_step { "permute_each_step" } else { "permutations" }, e));
        }
        problems
    }

    fn fit(zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, seed: u64) -> Result<Self, String> {
        let rows = weights.shape()[0];
        if rows < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        if config.latent_dim == 0 || config.hidden == 0 || !(config.top_fraction > 0.0 && config.top_fraction <= 1.0) {
            return Err("latent_dim and hidden must be positive and top_fraction in (0, 1]".into());
        }
        // The autoencoder trains on the checkpoints and their permuted copies; the KDE sees
        // the checkpoints' own latents (rows 0 .. rows).
        let augmented = with_permuted_copies(zoo, &weights, config.permutations, seed.wrapping_add(77))?;
        let (coder, x_train) = match config.autoencoder {
            Autoencoder::Mlp => Coder::mlp(&augmented, config.hidden, config.latent_dim, seed)?,
            Autoencoder::Transformer => {
                let shape = TransformerShape { dim: config.dim, depth: config.depth, heads: config.heads };
                Coder::transformer(&zoo.layout, &augmented, &shape, config.latent_dim, seed)?
            }
        };
        let x = x_train.narrow(0, 0, rows);
        let permute = match (&coder, config.permute_each_step) {
            (Coder::Transformer { tokens, .. }, true) if tokens.constant > 0 => {
                return Err(format!(
                    "permute_each_step: {} coordinates are the same in every checkpoint (layers the zoo keeps frozen); reordering units would move them, so permutation augmentation needs a zoo whose every layer trains",
                    tokens.constant
                ));
            }
            (Coder::Mlp { .. }, true) => return Err("permute_each_step needs `autoencoder = \"transformer\"`".into()),
            (Coder::Transformer { .. }, true) => Some(PermutationPool::new(&UnitPermutation::new(&zoo.layout)?, PERMUTATION_POOL, seed.wrapping_add(91))),
            (_, false) => None,
        };
        let training = Training {
            steps: config.steps,
            lr: config.lr,
            input_noise: config.input_noise,
            contrastive: config.contrastive,
            temperature: config.temperature,
            permute,
            reconstruct: config.reconstruct,
        };
        autoencoder::train(&coder, &x_train, &training, config.latent_dim, seed);
        let d = config.latent_dim;
        // Best checkpoints first: highest validation accuracy, or lowest validation loss
        // without accuracy.
        let mut order: Vec<usize> = (0..rows).collect();
        let score = |i: usize| checkpoint_quality(zoo, i);
        order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
        let keep = ((rows as f32 * config.top_fraction).ceil() as usize).clamp(1, rows);
        let codes = coder.encode(&x).detach();
        let reconstructions = coder.restore(&coder.decode(&codes).detach());
        let errors = row_distances(&reconstructions, &weights);
        let mean_error = errors.iter().sum::<f32>() / errors.len().max(1) as f32;
        log::metric("reconstruction-l2", 0, mean_error);
        log::message(&format!("reconstructions of the training checkpoints: mean L2 error {mean_error:.4}"));
        let latents = codes.to_vec();
        let anchors: Vec<Vec<f32>> = order[..keep].iter().map(|&i| latents[i * d..(i + 1) * d].to_vec()).collect();
        // Silverman's rule per dimension: h = 1.06 σ n^(-1/5).
        let n = anchors.len() as f32;
        let bandwidth: Vec<f32> = (0..d)
            .map(|j| {
                let mean = anchors.iter().map(|a| a[j]).sum::<f32>() / n;
                let var = anchors.iter().map(|a| (a[j] - mean).powi(2)).sum::<f32>() / (n - 1.0).max(1.0);
                1.06 * var.sqrt() * n.powf(-0.2) * config.bandwidth_scale
            })
            .collect();
        log::message(&format!("KDE on the latents of the best {keep} of {rows} checkpoints"));
        Ok(HyperReps { coder, reconstructions, anchors, bandwidth, sampler: config.sampler })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let d = self.bandwidth.len();
        // S_KDE: each dimension independently, a random anchor's value plus kernel noise.
        // S_Neigh: one anchor for the whole latent vector.
        let picks = if self.sampler == Sampler::Kde { n * d } else { n };
        let drawn = Tensor::randint(self.anchors.len(), picks, seed).to_vec();
        let pick: Vec<f32> = if self.sampler == Sampler::Kde { drawn } else { (0..n * d).map(|i| drawn[i / d]).collect() };
        let noise = Tensor::randn(&[n * d], seed.wrapping_add(1)).to_vec();
        let z: Vec<f32> = (0..n * d).map(|i| self.anchors[pick[i] as usize][i % d] + self.bandwidth[i % d] * noise[i]).collect();
        let decoded = self.coder.decode(&Tensor::from_slice(&z, &[n, d])).detach();
        let samples = self.coder.restore(&decoded);
        // Distance of each sample to the nearest reconstruction (Zeng et al.'s Hyper-
        // Representations analysis), logged per sample until the interface carries it as a column.
        let rows = self.reconstructions.shape()[0];
        let nearest: Vec<f32> = (0..n)
            .map(|i| {
                let one = samples.narrow(0, i, 1).expand(&[rows, samples.shape()[1]]);
                row_distances(&one, &self.reconstructions).into_iter().fold(f32::INFINITY, f32::min)
            })
            .collect();
        for (i, d) in nearest.iter().enumerate() {
            log::metric("nn-l2-reconstruction", i, *d);
        }
        log::message(&format!("samples: mean L2 distance to the nearest reconstruction {:.4}", nearest.iter().sum::<f32>() / n.max(1) as f32));
        Ok(samples)
    }
}

/// L2 norm of each row of `a − b` (both N × P).
fn row_distances(a: &Tensor, b: &Tensor) -> Vec<f32> {
    (a - b).square().sum(1, false).sqrt().to_vec()
}

weightlab_sdk::export_method!(HyperReps);
