//! `hyperdiffusion`: HyperDiffusion-style generation (Erkoç et al., ICCV 2023): a DDPM trained
//! directly on the flattened weights of neural fields (or any zoo), with a transformer
//! denoiser over weight tokens — no autoencoder in between.
//!
//! The paper overfits one MLP per shape, tokenises its weights layer by layer and denoises
//! with a transformer (T = 500 there); sampled weights are meshed and compared with the
//! training shapes. Here the flat normalised vector is cut into fixed-size tokens in layout
//! order, and samples are scored natively (SDF error on the shape they fit best).

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

struct HyperDiffusion(WeightDiffusion);

impl Method for HyperDiffusion {
    type Config = Config;

    fn describe() -> About {
        About::generator(
            "hyperdiffusion",
            env!("CARGO_PKG_VERSION"),
            "HyperDiffusion-style (Erkoç et al. 2023): a DDPM directly on flattened weights with a transformer denoiser over weight tokens.",
        )
    }

    fn fit(_zoo: &Zoo, weights: Tensor, c: Config, seed: u64) -> Result<Self, String> {
        if weights.shape()[0] < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        let config = WeightDiffusionConfig { token_size: c.token_size, dim: c.dim, depth: c.depth, heads: c.heads, timesteps: c.timesteps, steps: c.steps, lr: c.lr, batch: c.batch };
        Ok(HyperDiffusion(WeightDiffusion::fit(&weights, None, &config, seed)?))
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: Option<Tensor>) -> Result<Tensor, String> {
        Ok(self.0.sample(n, seed, None))
    }
}

weightlab_sdk::export_method!(HyperDiffusion);
