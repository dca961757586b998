//! `weight-stats`: StatNN-style features (Unterthiner et al., "Predicting Neural Network
//! Accuracy from Weights", 2020): for every parameter tensor of the layout (each layer's weight
//! and bias), its mean, variance, quantiles (0, 25, 50, 75, 100 %) and L2 norm; standardised
//! over the training models, then a linear head (or an MLP with `hidden`).

use weightlab_sdk::prelude::*;
use weightlab_sdk::probing::{Head, HeadConfig};

/// Features per parameter tensor.
const STATS: usize = 8;

/// (offset, size) of every parameter tensor of the layout.
type Slices = Vec<(usize, usize)>;

fn statistics(weights: &Tensor, slices: &Slices) -> Tensor {
    let shape = weights.shape();
    let (models, p) = (shape[0], shape[1]);
    let values = weights.to_vec();
    let mut features = Vec::with_capacity(models * slices.len() * STATS);
    for m in 0..models {
        let row = &values[m * p..(m + 1) * p];
        for &(offset, size) in slices {
            let mut v: Vec<f32> = row[offset..offset + size].to_vec();
            let n = v.len() as f64;
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            let norm = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            v.sort_by(f32::total_cmp);
            let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize] as f64;
            features.extend([mean, var, q(0.0), q(0.25), q(0.5), q(0.75), q(1.0), norm].map(|x| x as f32));
        }
    }
    Tensor::from_slice(&features, &[models, slices.len() * STATS])
}

struct WeightStats {
    slices: Slices,
    head: Head,
}

impl Probe for WeightStats {
    type Config = HeadConfig;

    fn describe() -> About {
        About::probe("weight-stats", env!("CARGO_PKG_VERSION"), "StatNN: per-layer weight statistics (mean, variance, quantiles, norm) with a linear head.")
    }

    fn fit(zoo: &Zoo, weights: Tensor, labels: Tensor, target: &Target, label_embeddings: Option<Tensor>, c: HeadConfig, seed: u64) -> Result<Self, String> {
        if label_embeddings.is_some() {
            return Err("`weight-stats` scores the training labels only; drop `embed_labels`".into());
        }
        let slices: Slices = zoo.layout.iter().map(|p| (p.offset as usize, p.shape.iter().map(|&d| d as usize).product::<usize>())).filter(|&(_, n)| n > 0).collect();
        let (head, loss) = Head::fit(&statistics(&weights, &slices), &labels, target, &c, seed);
        log::metric("train-loss", c.steps, loss);
        Ok(WeightStats { slices, head })
    }

    fn predict(&mut self, weights: Tensor, _label_embeddings: Option<Tensor>) -> Result<Tensor, String> {
        Ok(self.head.predict(&statistics(&weights, &self.slices)))
    }
}

weightlab_sdk::export_probe!(WeightStats);
