//! Model zoos: many models of one architecture, trained in batches, stored as checkpoints.
//!
//! - [`train`]: training K models at once, by the fastest engine that applies: `dense`
//!   (MLPs on the CPU), `cnn` (CNN-s on the CPU), `mlp` (MLPs on GPUs) or burn's autodiff.
//! - [`store`]: safetensors files with PyTorch names plus an index; import and export.
//! - [`batch`]: device-side data and the per-model loss shared with evaluation.

mod adam;
pub mod batch;
mod cnn;
mod dense;
mod mlp;
mod models;
mod net;
mod pool;
pub mod store;
mod target;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::arch::{Arch, Layout};

/// Which side of the zoo's split a model is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// Methods learn from these checkpoints.
    Train,
    /// Kept aside: a reference for new models of the same distribution.
    Heldout,
    /// A foundation model of a model tree: the parent of fine-tuned models, given to no method.
    Root,
}

/// One stored checkpoint and what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Model index within the zoo.
    pub model: usize,
    /// Seed that initialised the model and ordered its data.
    pub seed: u64,
    /// Epoch after which the checkpoint was taken (1-based).
    pub epoch: usize,
    /// Step of continued training at which it was taken (0: an epoch checkpoint).
    #[serde(default)]
    pub step: usize,
    pub side: Side,
    /// Losses are NaN where unknown (no validation examples) or where training diverged; JSON
    /// writes NaN as `null`, read back as NaN.
    #[serde(deserialize_with = "weightlab_manifest::json::nan_if_null")]
    pub train_loss: f32,
    pub train_accuracy: Option<f32>,
    /// On the validation subset split off the training data: what methods may see.
    #[serde(default = "nan", deserialize_with = "weightlab_manifest::json::nan_if_null")]
    pub validation_loss: f32,
    #[serde(default)]
    pub validation_accuracy: Option<f32>,
    /// On the test split: for reports only, never shown to a method.
    #[serde(deserialize_with = "weightlab_manifest::json::nan_if_null")]
    pub test_loss: f32,
    pub test_accuracy: Option<f32>,
    /// Parent model for model trees (fine-tuned from it).
    pub parent: Option<usize>,
    /// Classes the model was fine-tuned on (model trees); `None`: all classes.
    #[serde(default)]
    pub classes: Option<Vec<usize>>,
    /// Task (shape) the model learned on a many-shape dataset.
    #[serde(default)]
    pub task: Option<usize>,
    /// How a model-tree child was fine-tuned (its learning rate and epochs are labels).
    #[serde(default)]
    pub finetune: Option<Finetune>,
    /// Safetensors file holding it, relative to the zoo folder.
    pub file: String,
}

impl Checkpoint {
    /// A checkpoint not yet scored (losses NaN, accuracies unknown), with its file name.
    pub fn new(model: usize, seed: u64, epoch: usize, step: usize, side: Side) -> Self {
        Checkpoint {
            model,
            seed,
            epoch,
            step,
            side,
            train_loss: f32::NAN,
            train_accuracy: None,
            validation_loss: f32::NAN,
            validation_accuracy: None,
            test_loss: f32::NAN,
            test_accuracy: None,
            parent: None,
            classes: None,
            task: None,
            finetune: None,
            file: store::checkpoint_file(model, epoch, step),
        }
    }
}

/// The fine-tuning recipe of a model-tree child.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Finetune {
    pub lr: f64,
    pub epochs: usize,
}

fn nan() -> f32 {
    f32::NAN
}

/// A zoo in memory: checkpoints and their flat weights, (checkpoints × P) row-major.
#[derive(Debug, Clone)]
pub struct Zoo {
    pub arch: Arch,
    pub checkpoints: Vec<Checkpoint>,
    pub weights: Vec<f32>,
}

impl Zoo {
    pub fn layout(&self) -> Layout {
        self.arch.layout()
    }

    /// Flat weights of checkpoint `i`.
    pub fn weights_of(&self, i: usize) -> &[f32] {
        let p = self.layout().len();
        &self.weights[i * p..(i + 1) * p]
    }

    /// Indices of the checkpoints on one side of the split.
    pub fn side(&self, side: Side) -> Vec<usize> {
        self.checkpoints.iter().enumerate().filter(|(_, c)| c.side == side).map(|(i, _)| i).collect()
    }

    /// The weights of the given checkpoints, stacked.
    pub fn stack(&self, indices: &[usize]) -> Vec<f32> {
        indices.iter().flat_map(|&i| self.weights_of(i).iter().copied()).collect()
    }
}

/// The seed of model `index` in a zoo seeded with `zoo_seed` (SplitMix64 of both), so each
/// model's randomness depends only on its own identity, never on batching or run order.
pub fn model_seed(zoo_seed: u64, index: usize) -> u64 {
    let mut z = zoo_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(index as u64 + 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_with_unknown_or_diverged_losses_reads_back() {
        // No validation examples, and a model whose training diverged.
        let mut c = Checkpoint::new(3, 7, 2, 0, Side::Train);
        c.test_loss = f32::INFINITY;
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"train_loss\":null"), "{json}");
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert!(back.train_loss.is_nan() && back.validation_loss.is_nan() && back.test_loss.is_nan());
        assert_eq!((back.model, back.seed, back.epoch), (3, 7, 2));
    }
}
