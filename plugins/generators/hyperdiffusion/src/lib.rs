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

struct HyperDiffusion(WeightDiffusion);

impl Method for HyperDiffusion {
    type Config = WeightDiffusionConfig;

    fn describe() -> About {
        About::generator("hyperdiffusion", env!("CARGO_PKG_VERSION"), "HyperDiffusion-style (Erkoç et al. 2023): a DDPM directly on flattened weights with a transformer denoiser over weight tokens.")
    }

    fn check(zoo: &ZooPlan, _config: &WeightDiffusionConfig) -> Vec<Problem> {
        zoo.needs_checkpoints(2).into_iter().collect()
    }

    fn fit(zoo: &Zoo, weights: Tensor, _condition: Condition, config: WeightDiffusionConfig, seed: u64) -> Result<Self, String> {
        if weights.shape()[0] < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        if config.target.is_some() {
            return Err("`target` prompts a conditioned model; hyperdiffusion is unconditional (use the `gpt` plugin)".into());
        }
        Ok(HyperDiffusion(WeightDiffusion::fit(&zoo.layout, &weights, None, &config, seed)?))
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        Ok(self.0.sample(n, seed, None))
    }
}

weightlab_sdk::export_method!(HyperDiffusion);
