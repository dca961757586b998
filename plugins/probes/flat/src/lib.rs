//! `flat`: the simplest probe, a head on the whole flattened weight vector (standardised per
//! parameter over the training models): linear with `hidden = []`, an MLP otherwise. The
//! baseline ProbeX is measured against; it ignores the weights' structure (and their hidden-unit
//! symmetries).

use weightlab_sdk::prelude::*;
use weightlab_sdk::probing::{Head, Schedule};

/// Configuration of `flat`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Hidden widths of the head; empty: a linear probe.
    #[serde(default)]
    hidden: Vec<usize>,
    /// Adam steps (full batch).
    #[serde(default = "default_steps")]
    steps: usize,
    #[serde(default = "default_lr")]
    lr: f32,
    #[serde(default = "default_weight_decay")]
    weight_decay: f32,
}

fn default_steps() -> usize {
    400
}
fn default_lr() -> f32 {
    1e-3
}
fn default_weight_decay() -> f32 {
    1e-2
}

struct Flat {
    head: Head,
}

impl Probe for Flat {
    type Config = Config;

    fn describe() -> About {
        About::probe("flat", env!("CARGO_PKG_VERSION"), "A linear (or MLP) probe on the flattened, standardised weights.")
    }

    fn fit(_zoo: &Zoo, weights: Tensor, labels: Tensor, target: &Target, label_embeddings: Option<Tensor>, c: Config, seed: u64) -> Result<Self, String> {
        if label_embeddings.is_some() {
            return Err("`flat` scores the training labels only; drop `embed_labels` (ProbeX maps weights into the embedding space)".into());
        }
        let (head, loss) = Head::fit(&weights, &labels, target, &c.hidden, Schedule { steps: c.steps, lr: c.lr, weight_decay: c.weight_decay }, seed);
        log::metric("train-loss", c.steps, loss);
        Ok(Flat { head })
    }

    fn predict(&mut self, weights: Tensor, _label_embeddings: Option<Tensor>) -> Result<Tensor, String> {
        Ok(self.head.predict(&weights))
    }
}

weightlab_sdk::export_probe!(Flat);
