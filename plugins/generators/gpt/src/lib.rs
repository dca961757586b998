//! `gpt`: G.pt-style generation (Peebles et al. 2022, "Learning to Learn with Generative Models
//! of Neural Network Checkpoints"): a transformer diffusion model over weight tokens,
//! conditioned on a checkpoint's metric, trained on (checkpoint, metric) pairs of the zoo and
//! prompted at sampling time with a target metric — by default the best in the zoo.
//!
//! The paper also conditions on a starting checkpoint and its loss (one optimisation step as a
//! generative jump) and predicts x₀; here generation starts from noise, the metric is the
//! checkpoint's test accuracy (test loss, negated, for neural fields), standardised over the
//! zoo, and the denoiser predicts ε.

use weightlab_sdk::diffusion::{WeightDiffusion, WeightDiffusionConfig};
use weightlab_sdk::prelude::*;

/// Configuration of `hyperdiffusion`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Weights per token (a layer spans several tokens).
    #[serde(default = "d_token")]
    token_size: usize,
    /// Transformer width.
    #[serde(default = "d_dim")]
    dim: usize,
    /// Transformer blocks.
    #[serde(default = "d_depth")]
    depth: usize,
    /// Attention heads.
    #[serde(default = "d_heads")]
    heads: usize,
    /// Diffusion steps T (linear betas 1e-4 → 0.02).
    #[serde(default = "d_timesteps")]
    timesteps: usize,
    /// Training steps.
    #[serde(default = "d_steps")]
    steps: usize,
    /// Learning rate (AdamW).
    #[serde(default = "d_lr")]
    lr: f32,
    /// Checkpoints per training step.
    #[serde(default = "d_batch")]
    batch: usize,
    /// Test accuracy to prompt with when sampling (test loss, negated, for neural fields).
    /// Default: the best of the training checkpoints, as G.pt prompts with the best loss.
    #[serde(default)]
    target: Option<f32>,
}

fn d_token() -> usize {
    64
}
fn d_dim() -> usize {
    128
}
fn d_depth() -> usize {
    2
}
fn d_heads() -> usize {
    4
}
fn d_timesteps() -> usize {
    500
}
fn d_steps() -> usize {
    1000
}
fn d_lr() -> f32 {
    1e-3
}
fn d_batch() -> usize {
    64
}

struct Gpt {
    model: WeightDiffusion,
    /// The prompt, standardised like the training conditions.
    target: f32,
}

impl Method for Gpt {
    type Config = Config;

    fn describe() -> About {
        About::generator(
            "gpt",
            env!("CARGO_PKG_VERSION"),
            "G.pt-style (Peebles et al. 2022): a transformer diffusion model over weight tokens conditioned on the checkpoint's test accuracy, prompted with a target accuracy.",
        )
    }

    fn fit(zoo: &Zoo, weights: Tensor, c: Config, seed: u64) -> Result<Self, String> {
        let rows = weights.shape()[0];
        if rows < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        // The condition: each checkpoint's metric, standardised over the zoo.
        let metric: Vec<f32> = (0..rows).map(|i| zoo.checkpoints.get(i).map_or(0.0, |c| c.test_accuracy.unwrap_or(-c.test_loss))).collect();
        let mean = metric.iter().sum::<f32>() / rows as f32;
        let std = (metric.iter().map(|m| (m - mean).powi(2)).sum::<f32>() / rows as f32).sqrt().max(1e-6);
        let standardised: Vec<f32> = metric.iter().map(|m| (m - mean) / std).collect();
        let best = metric.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let target = c.target.unwrap_or(best);
        log::message(&format!("conditioned on test accuracy (zoo: mean {mean:.4}, best {best:.4}); prompting with {target:.4}"));
        let conditions = Tensor::from_slice(&standardised, &[rows, 1]);
        let config = WeightDiffusionConfig { token_size: c.token_size, dim: c.dim, depth: c.depth, heads: c.heads, timesteps: c.timesteps, steps: c.steps, lr: c.lr, batch: c.batch };
        let model = WeightDiffusion::fit(&weights, Some(&conditions), &config, seed)?;
        Ok(Gpt { model, target: (target - mean) / std })
    }

    fn sample(&mut self, n: usize, seed: u64, condition: Option<Tensor>) -> Result<Tensor, String> {
        // A condition passed by the host (n × 1, standardised) overrides the configured target.
        let prompt = condition.unwrap_or_else(|| Tensor::full(&[n, 1], self.target));
        Ok(self.model.sample(n, seed, Some(&prompt)))
    }
}

weightlab_sdk::export_method!(Gpt);
