//! `gaussian`: fits an independent normal to every parameter across the training checkpoints
//! (mean and standard deviation per coordinate) and samples from it (Zeng et al. 2025).

use weightlab_sdk::prelude::*;

/// Configuration of `gaussian`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Multiplies the fitted standard deviations (1 = the fitted distribution).
    scale: f32,
}

impl Default for Config {
    fn default() -> Self {
        Self { scale: 1.0 }
    }
}

struct Gaussian {
    mean: Tensor,
    std: Tensor,
}

impl Method for Gaussian {
    type Config = Config;

    fn describe() -> About {
        About::baseline("gaussian", env!("CARGO_PKG_VERSION"), "An independent per-parameter normal fitted to the training checkpoints.")
    }

    fn check(zoo: &ZooPlan, _config: &Config) -> Vec<Problem> {
        zoo.needs_checkpoints(2).into_iter().collect()
    }

    fn fit(_zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        if weights.shape()[0] < 2 {
            return Err("needs at least 2 training checkpoints to fit a deviation".into());
        }
        Ok(Gaussian { mean: weights.mean(0, true), std: weights.std(0, true) * config.scale })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let p = self.mean.shape()[1];
        Ok(&self.mean + &(Tensor::randn(&[n, p], seed) * &self.std))
    }
}

weightlab_sdk::export_method!(Gaussian);
