//! `copy`: returns training checkpoints unchanged, in a random order without repeats (cycling
//! when more samples than checkpoints are asked). The memorization ceiling: zero distance to
//! the training set, zero novelty.
//!
//! With `permute = true` each copy has its hidden units randomly reordered (the SDK's
//! `UnitPermutation`, what permutation augmentation uses): the same functions as the
//! checkpoints, far from them in raw weight distance. A control for distance metrics: only a
//! permutation-aligned distance sees through it.

use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::UnitPermutation;

/// Options of `copy`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Reorder the hidden units of every copy at random (function unchanged).
    #[serde(default)]
    permute: bool,
}

struct Copy {
    weights: Tensor,
    symmetry: Option<UnitPermutation>,
}

impl Method for Copy {
    type Config = Config;

    fn describe() -> About {
        About::baseline("copy", env!("CARGO_PKG_VERSION"), "Training checkpoints returned unchanged: the memorization ceiling.")
    }

    fn fit(zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        let symmetry = if config.permute { Some(UnitPermutation::new(&zoo.layout)?) } else { None };
        Ok(Copy { weights, symmetry })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let rows = self.weights.shape()[0];
        let rounds: Vec<Tensor> = (0..n.div_ceil(rows)).map(|r| Tensor::randperm(rows, seed.wrapping_add(r as u64))).collect();
        let order = Tensor::cat(&rounds.iter().collect::<Vec<_>>(), 0).narrow(0, 0, n);
        let copies = self.weights.index_select(0, &order);
        Ok(match &self.symmetry {
            Some(symmetry) => symmetry.permute(&copies, seed.wrapping_add(1)),
            None => copies,
        })
    }
}

weightlab_sdk::export_method!(Copy);
