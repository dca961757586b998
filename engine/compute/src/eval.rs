//! Weight evaluation: given flat parameter vectors of one architecture, run them as batched
//! models on a dataset split and report loss, accuracy and every prediction. Every method's
//! samples are scored here, so hundreds of generated models evaluate in a few big operations.

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::data::{Dataset, Split};
use crate::device;
use crate::zoo::batch::{DeviceSplit, correct, per_model_loss};

/// Models evaluated together (bounds memory: K × examples × features per chunk).
const MODELS_PER_CHUNK: usize = 64;
const EXAMPLES_PER_CHUNK: usize = 1000;
/// Values one layer's activations may hold across a chunk (64 M floats, 256 MB): wide networks
/// (convolutions on 32×32 images) evaluate fewer examples at a time.
const VALUES_PER_CHUNK: usize = 64 << 20;

/// How one model did on a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// Mean loss (cross-entropy, or MSE of the signed distance for neural fields).
    pub loss: f32,
    /// Fraction correct (classification); `None` for regression.
    pub accuracy: Option<f32>,
    /// Predicted class per example (classification), in the split's order.
    pub predictions: Vec<u8>,
    /// The shape the model was scored on (many-shape neural-field datasets).
    #[serde(default)]
    pub task: Option<usize>,
}

/// Evaluates `n` models stored back to back in `weights` (n × P) on `split`. On a many-shape
/// dataset each model is scored on the shape it fits best ([`ModelScore::task`]), which is how
/// generated neural fields are judged.
pub fn evaluate(arch: &Arch, data: &Dataset, split: &Split, weights: &[f32]) -> Vec<ModelScore> {
    evaluate_on(arch, data, split, weights, None)
}

/// Like [`evaluate`], but model i of a many-shape dataset is scored on shape `tasks[i]`.
pub fn evaluate_on(arch: &Arch, data: &Dataset, split: &Split, weights: &[f32], tasks: Option<&[usize]>) -> Vec<ModelScore> {
    let p = arch.layout().len();
    assert_eq!(weights.len() % p.max(1), 0, "weights are not a whole number of models");
    let n = weights.len() / p;
    let device = device::current();
    let dsplit = DeviceSplit::new(split, data.features(), data.task, &device);
    let classification = dsplit.y_class.is_some();
    let groups = data.groups.max(1);
    let mut scores = Vec::with_capacity(n);
    for start in (0..n).step_by(MODELS_PER_CHUNK) {
        let k = MODELS_PER_CHUNK.min(n - start);
        let examples_per_chunk = (VALUES_PER_CHUNK / (k * arch.widest()).max(1)).clamp(1, EXAMPLES_PER_CHUNK);
        let params: Tensor<2> = Tensor::from_data(TensorData::new(weights[start * p..(start + k) * p].to_vec(), [k, p]), &device);
        // Loss of every model on every group (one group unless the dataset has several shapes).
        let mut loss_sum = vec![vec![0.0f64; groups]; k];
        let mut hits = vec![vec![0i64; groups]; k];
        let mut preds: Vec<Vec<u8>> = vec![Vec::new(); k];
        let mut group_len = 0;
        for g in 0..groups {
            let range = data.group_range(dsplit.len, g);
            group_len = range.len();
            for ex in range.clone().step_by(examples_per_chunk) {
                let b = examples_per_chunk.min(range.end - ex);
                let (x, targets) = dsplit.range(ex, b, k);
                let out = arch.forward(&params, x);
                let losses = per_model_loss(out.clone(), &targets).into_data().try_into_vec::<f32>().unwrap_or_default();
                for (acc, l) in loss_sum.iter_mut().zip(losses) {
                    acc[g] += l as f64 * b as f64;
                }
                if let Some((h, pred)) = correct(out, &targets) {
                    for m in 0..k {
                        hits[m][g] += h[m];
                        preds[m].extend(pred[m * b..(m + 1) * b].iter().map(|&c| c as u8));
                    }
                }
            }
        }
        for m in 0..k {
            let task = match tasks {
                Some(t) => t[start + m] % groups,
                None => (0..groups).min_by(|&a, &b| loss_sum[m][a].total_cmp(&loss_sum[m][b])).unwrap_or(0),
            };
            let loss = (loss_sum[m][task] / group_len.max(1) as f64) as f32;
            // A model is right or wrong on its own task (one group, unless the dataset has several).
            let accuracy = classification.then(|| hits[m][task] as f32 / group_len.max(1) as f32);
            scores.push(ModelScore { loss, accuracy, predictions: std::mem::take(&mut preds[m]), task: (groups > 1).then_some(task) });
        }
    }
    scores
}

/// Fraction of `predictions` that are right among the examples whose label is in `classes`
/// (a tree child's accuracy on the task it was fine-tuned for).
pub fn subset_accuracy(predictions: &[u8], labels: &[f32], classes: &[usize]) -> Option<f32> {
    let (mut right, mut total) = (0usize, 0usize);
    for (&p, &y) in predictions.iter().zip(labels) {
        if classes.contains(&(y as usize)) {
            total += 1;
            right += usize::from(p as usize == y as usize);
        }
    }
    (total > 0).then(|| right as f32 / total as f32)
}
