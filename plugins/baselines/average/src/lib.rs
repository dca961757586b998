//! `average`: each sample is the mean of k training checkpoints chosen at random without
//! replacement (k = 16 in Zeng et al. 2025).

use weightlab_sdk::prelude::*;

/// Configuration of `average`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Checkpoints averaged per sample; must be fewer than the training checkpoints, or every
    /// sample would be the same mean of all of them.
    #[schemars(range(min = 1), extend("x-weightlab-below" = "training_checkpoints"))]
    k: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { k: 16 }
    }
}

struct Average {
    weights: Tensor,
    k: usize,
}

impl Method for Average {
    type Config = Config;

    fn describe() -> About {
        About::baseline("average", env!("CARGO_PKG_VERSION"), "The mean of k random training checkpoints per sample.")
    }

    fn fit(_zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        if config.k == 0 {
            return Err("k must be at least 1".into());
        }
        let rows = weights.shape()[0];
        if config.k >= rows {
            return Err(format!("k = {} but the zoo has {rows} training checkpoints: with k ≥ {rows} every sample is the same mean of all of them; use k < {rows}", config.k));
        }
        Ok(Average { weights, k: config.k })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let rows = self.weights.shape()[0];
        let means: Vec<Tensor> = (0..n)
            .map(|i| {
                let pick = Tensor::choose(rows, self.k, seed.wrapping_add(i as u64));
                self.weights.index_select(0, &pick).mean(0, false)
            })
            .collect();
        Ok(Tensor::stack(&means.iter().collect::<Vec<_>>(), 0))
    }
}

weightlab_sdk::export_method!(Average);
