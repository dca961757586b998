//! `nearest-task`: the transfer baseline "the training model of the most similar task". For a
//! target task it returns the training checkpoints whose tasks' conditions (the set encoding
//! by default) are nearest to the target's, nearest first, so a conditional generator has to
//! beat picking a neighbour. Needs a task family; on an ordinary zoo it refuses.

use weightlab_sdk::conditioning::{ConditionKind, TaskCondition, nearest_rows};
use weightlab_sdk::prelude::*;

/// Configuration of `nearest-task`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Which task condition measures similarity.
    condition: ConditionKind,
}

impl Default for Config {
    fn default() -> Self {
        Self { condition: ConditionKind::Support }
    }
}

struct NearestTask {
    weights: Tensor,
    condition: TaskCondition,
    /// Standardised conditions of the training rows (rows × dim).
    rows: Tensor,
}

impl Method for NearestTask {
    type Config = Config;

    fn describe() -> About {
        About::baseline(
            "nearest-task",
            env!("CARGO_PKG_VERSION"),
            "Transfer baseline: the training checkpoints of the most similar task (nearest standardised set encoding or instruction embedding), nearest first.",
        )
    }

    fn fit(_zoo: &Zoo, weights: Tensor, condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        let (condition, rows) = TaskCondition::fit(&condition, config.condition)?;
        Ok(NearestTask { weights, condition, rows })
    }

    fn sample(&mut self, n: usize, _seed: u64, condition: &Condition) -> Result<Tensor, String> {
        let target = self.condition.prepare(condition, 1)?;
        Ok(self.weights.index_select(0, &nearest_rows(&self.rows, &target, n)))
    }
}

weightlab_sdk::export_method!(NearestTask);
