//! `interpolate`: each sample is a random convex combination of k training checkpoints
//! (weights uniform on the simplex; k = 2 is linear interpolation between two models).

use weightlab_sdk::prelude::*;

/// Configuration of `interpolate`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Checkpoints combined per sample.
    #[schemars(range(min = 1))]
    k: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { k: 2 }
    }
}

struct Interpolate {
    weights: Tensor,
    k: usize,
}

impl Method for Interpolate {
    type Config = Config;

    fn describe() -> About {
        About::baseline("interpolate", env!("CARGO_PKG_VERSION"), "Random convex combinations of k training checkpoints.")
    }

    fn fit(_zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        if config.k == 0 {
            return Err("k must be at least 1".into());
        }
        let k = config.k.min(weights.shape()[0]);
        Ok(Interpolate { weights, k })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let rows = self.weights.shape()[0];
        let mixes: Vec<Tensor> = (0..n)
            .map(|i| {
                let s = seed.wrapping_mul(31).wrapping_add(2 * i as u64);
                let pick = Tensor::choose(rows, self.k, s);
                // Exponential draws normalised to sum 1 are uniform on the simplex.
                let e = -Tensor::uniform(&[self.k, 1], 1e-6, 1.0, s + 1).log();
                let alpha = &e / &e.sum_all();
                (self.weights.index_select(0, &pick) * alpha).sum(0, false)
            })
            .collect();
        Ok(Tensor::stack(&mixes.iter().collect::<Vec<_>>(), 0))
    }
}

weightlab_sdk::export_method!(Interpolate);
