//! `copy`: returns training checkpoints unchanged, in a random order without repeats (cycling
//! when more samples than checkpoints are asked). The memorization ceiling: zero distance to
//! the training set, zero novelty.

use weightlab_sdk::prelude::*;

/// `copy` takes no options.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {}

struct Copy {
    weights: Tensor,
}

impl Method for Copy {
    type Config = Config;

    fn describe() -> About {
        About::baseline("copy", env!("CARGO_PKG_VERSION"), "Training checkpoints returned unchanged: the memorization ceiling.")
    }

    fn fit(_zoo: &Zoo, weights: Tensor, _condition: Condition, _config: Config, _seed: u64) -> Result<Self, String> {
        Ok(Copy { weights })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let rows = self.weights.shape()[0];
        let rounds: Vec<Tensor> = (0..n.div_ceil(rows)).map(|r| Tensor::randperm(rows, seed.wrapping_add(r as u64))).collect();
        let order = Tensor::cat(&rounds.iter().collect::<Vec<_>>(), 0).narrow(0, 0, n);
        Ok(self.weights.index_select(0, &order))
    }
}

weightlab_sdk::export_method!(Copy);
