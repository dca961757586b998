//! `gpt`: G.pt-style generation (Peebles et al. 2022, "Learning to Learn with Generative Models
//! of Neural Network Checkpoints"): a transformer diffusion model over weight tokens,
//! conditioned on a checkpoint's metric, trained on (checkpoint, metric) pairs of the zoo and
//! prompted at sampling time with a target metric — by default the best in the zoo.
//!
//! The paper also conditions on a starting checkpoint and its loss (one optimisation step as a
//! generative jump) and predicts x₀; here generation starts from noise, the metric is the
//! checkpoint's validation accuracy (validation loss, negated, for neural fields), standardised over the
//! zoo, and the denoiser predicts ε.

use weightlab_sdk::diffusion::{WeightDiffusion, WeightDiffusionConfig};
use weightlab_sdk::prelude::*;

struct Gpt {
    model: WeightDiffusion,
    /// The prompt, standardised like the training conditions.
    target: f32,
}

impl Method for Gpt {
    type Config = WeightDiffusionConfig;

    fn describe() -> About {
        About::generator(
            "gpt",
            env!("CARGO_PKG_VERSION"),
            "G.pt-style (Peebles et al. 2022): a transformer diffusion model over weight tokens conditioned on the checkpoint's validation accuracy, prompted with a target accuracy.",
        )
    }

    fn check(zoo: &ZooPlan, _config: &WeightDiffusionConfig) -> Vec<Problem> {
        zoo.needs_checkpoints(2).into_iter().collect()
    }

    fn fit(zoo: &Zoo, weights: Tensor, _condition: Condition, config: WeightDiffusionConfig, seed: u64) -> Result<Self, String> {
        let rows = weights.shape()[0];
        if rows < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        // The condition: each checkpoint's validation metric, standardised over the zoo.
        let metric: Vec<f32> = (0..rows).map(|i| checkpoint_quality(zoo, i)).collect();
        let mean = metric.iter().sum::<f32>() / rows as f32;
        let std = (metric.iter().map(|m| (m - mean).powi(2)).sum::<f32>() / rows as f32).sqrt().max(1e-6);
        let standardised: Vec<f32> = metric.iter().map(|m| (m - mean) / std).collect();
        let best = metric.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let target = config.target.unwrap_or(best);
        log::message(&format!("conditioned on validation accuracy (zoo: mean {mean:.4}, best {best:.4}); prompting with {target:.4}"));
        let conditions = Tensor::from_slice(&standardised, &[rows, 1]);
        let model = WeightDiffusion::fit(&zoo.layout, &weights, Some(&conditions), &config, seed)?;
        Ok(Gpt { model, target: (target - mean) / std })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        // The prompt: the configured target accuracy (task conditions do not apply to G.pt).
        let prompt = Tensor::full(&[n, 1], self.target);
        Ok(self.model.sample(n, seed, Some(&prompt)))
    }
}

weightlab_sdk::export_method!(Gpt);
