//! `noise`: pick training checkpoints at random and add Gaussian noise — the baseline that
//! Zeng et al. 2025 found to match published weight generators on the accuracy/novelty
//! trade-off (they used σ ≈ 0.02–0.12 depending on the zoo).

use weightlab_sdk::prelude::*;

/// Configuration of `noise`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Standard deviation of the noise.
    #[schemars(range(min = 0.0))]
    sigma: f32,
    /// If true, `sigma` is relative: each parameter tensor's noise is scaled by that tensor's
    /// standard deviation in the picked checkpoint.
    relative: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { sigma: 0.05, relative: false }
    }
}

struct Noise {
    weights: Tensor,
    layout: Vec<Param>,
    config: Config,
}

impl Method for Noise {
    type Config = Config;

    fn describe() -> About {
        About::baseline("noise", env!("CARGO_PKG_VERSION"), "Random training checkpoints plus Gaussian noise of standard deviation sigma (absolute, or relative to each layer's scale).")
    }

    fn fit(zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        if !(config.sigma >= 0.0 && config.sigma.is_finite()) {
            return Err(format!("sigma must be a non-negative number, got {}", config.sigma));
        }
        Ok(Noise { weights, layout: zoo.layout.clone(), config })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let rows = Tensor::randint(self.weights.shape()[0], n, seed);
        let picked = self.weights.index_select(0, &rows);
        let noise = Tensor::randn(&picked.shape(), seed.wrapping_add(1));
        let scaled = if self.config.relative {
            let parts: Vec<Tensor> = self
                .layout
                .iter()
                .map(|p| {
                    let len: u32 = p.shape.iter().product();
                    let scale = picked.narrow(1, p.offset as usize, len as usize).std(1, true);
                    noise.narrow(1, p.offset as usize, len as usize) * &scale
                })
                .collect();
            Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1) * self.config.sigma
        } else {
            noise * self.config.sigma
        };
        Ok(picked + scaled)
    }
}

weightlab_sdk::export_method!(Noise);
