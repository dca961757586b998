//! `flat`: the simplest probe, a head on the whole flattened weight vector (standardised per
//! parameter over the training models): linear with `hidden = []`, an MLP otherwise. The
//! baseline ProbeX is measured against; it ignores the weights' structure (and their hidden-unit
//! symmetries).

use weightlab_sdk::prelude::*;
use weightlab_sdk::probing::{Head, HeadConfig};

struct Flat {
    head: Head,
}

impl Probe for Flat {
    type Config = HeadConfig;

    fn describe() -> About {
        About::probe("flat", env!("CARGO_PKG_VERSION"), "A linear (or MLP) probe on the flattened, standardised weights.")
    }

    fn fit(_zoo: &Zoo, weights: Tensor, labels: Tensor, target: &Target, label_embeddings: Option<Tensor>, c: HeadConfig, seed: u64) -> Result<Self, String> {
        if label_embeddings.is_some() {
            return Err("`flat` scores the training labels only; drop `embed_labels` (ProbeX maps weights into the embedding space)".into());
        }
        let (head, loss) = Head::fit(&weights, &labels, target, &c, seed);
        log::metric("train-loss", c.steps, loss);
        Ok(Flat { head })
    }

    fn predict(&mut self, weights: Tensor, _label_embeddings: Option<Tensor>) -> Result<Tensor, String> {
        Ok(self.head.predict(&weights))
    }
}

weightlab_sdk::export_probe!(Flat);
