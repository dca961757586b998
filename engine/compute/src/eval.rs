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
    let device = device::current();
    let dsplit = DeviceSplit::new(split, data.features(), data.task, &device);
    let classification = dsplit.y_class.is_some();
    let groups = data.groups.max(1);
    let mut scores = Vec::new();
    for (start, chunk) in chunks(arch, weights, &device) {
        let k = chunk.k;
        // Loss of every model on every group (one group unless the dataset has several shapes).
        let mut loss_sum = vec![vec![0.0f64; groups]; k];
        let mut hits = vec![vec![0i64; groups]; k];
        let mut preds: Vec<Vec<u8>> = vec![Vec::new(); k];
        let mut group_len = 0;
        for g in 0..groups {
            let range = data.group_range(dsplit.len, g);
            group_len = range.len();
            for ex in range.clone().step_by(chunk.examples) {
                let b = chunk.examples.min(range.end - ex);
                let (x, targets) = dsplit.range(ex, b, k);
                let (losses, correct) = chunk.batch(arch, x, &targets, b);
                for (acc, l) in loss_sum.iter_mut().zip(losses) {
                    acc[g] += l;
                }
                if let Some((h, pred)) = correct {
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

/// K models evaluated together, and how many examples they take at a time.
struct Chunk {
    params: Tensor<2>,
    k: usize,
    examples: usize,
}

/// The models stored back to back in `weights`, in chunks of [`MODELS_PER_CHUNK`], each with the
/// index of its first model.
fn chunks<'a>(arch: &'a Arch, weights: &'a [f32], device: &'a burn::tensor::Device) -> impl Iterator<Item = (usize, Chunk)> + 'a {
    let p = arch.layout().len();
    assert_eq!(weights.len() % p.max(1), 0, "weights are not a whole number of models");
    let n = weights.len() / p.max(1);
    (0..n).step_by(MODELS_PER_CHUNK).map(move |start| {
        let k = MODELS_PER_CHUNK.min(n - start);
        let examples = (VALUES_PER_CHUNK / (k * arch.widest()).max(1)).clamp(1, EXAMPLES_PER_CHUNK);
        let params = Tensor::from_data(TensorData::new(weights[start * p..(start + k) * p].to_vec(), [k, p]), device);
        (start, Chunk { params, k, examples })
    })
}

/// Each model's hits on a batch and its predictions (K × B), for classes ([`correct`]).
type Correct = Option<(Vec<i64>, Vec<i64>)>;

impl Chunk {
    /// The chunk's models on one batch of `b` examples (K × B × F inputs): each model's loss
    /// summed over the batch, and for classes each one's hits and predictions (K × B).
    fn batch(&self, arch: &Arch, x: Tensor<3>, targets: &crate::zoo::batch::Targets, b: usize) -> (Vec<f64>, Correct) {
        let out = arch.forward(&self.params, x);
        let losses = per_model_loss(out.clone(), targets).into_data().try_into_vec::<f32>().unwrap_or_default();
        (losses.into_iter().map(|l| l as f64 * b as f64).collect(), correct(out, targets))
    }
}

/// Loss and accuracy of each model on its own group of `split` only — model `i` on group
/// `tasks[i]` of a dataset with several (a task family) — as [`evaluate_on`] gives them for
/// that group, bit for bit, without predictions (empty). [`evaluate_on`] runs every model on every
/// group (its predictions cover the whole split, which the behavioural metrics compare);
/// scoring a zoo's checkpoints needs only each model's own task, so this costs one group's
/// examples per model instead of all of them: 64× less on a family of 64 tasks.
pub fn evaluate_own_groups(arch: &Arch, data: &Dataset, split: &Split, weights: &[f32], tasks: &[usize]) -> Vec<ModelScore> {
    let device = device::current();
    let dsplit = DeviceSplit::new(split, data.features(), data.task, &device);
    let classification = dsplit.y_class.is_some();
    let groups = data.groups.max(1);
    let group_len = data.group_range(dsplit.len, 0).len();
    let mut scores = Vec::new();
    for (start, chunk) in chunks(arch, weights, &device) {
        let own: Vec<usize> = (start..start + chunk.k).map(|m| tasks.get(m).copied().unwrap_or(0) % groups).collect();
        let first: Vec<usize> = own.iter().map(|&g| data.group_range(dsplit.len, g).start).collect();
        let (mut loss_sum, mut hits) = (vec![0.0f64; chunk.k], vec![0i64; chunk.k]);
        // The same chunks of each group as `evaluate_on` walks, each model in its own group.
        for offset in (0..group_len).step_by(chunk.examples) {
            let b = chunk.examples.min(group_len - offset);
            let indices: Vec<i64> = first.iter().flat_map(|&at| (at + offset..at + offset + b).map(|i| i as i64)).collect();
            let (x, targets) = dsplit.gather(&indices, chunk.k, &device);
            let (losses, correct) = chunk.batch(arch, x, &targets, b);
            for (acc, l) in loss_sum.iter_mut().zip(losses) {
                *acc += l;
            }
            if let Some((h, _)) = correct {
                for (total, h) in hits.iter_mut().zip(h) {
                    *total += h;
                }
            }
        }
        for (m, &task) in own.iter().enumerate() {
            let loss = (loss_sum[m] / group_len.max(1) as f64) as f32;
            let accuracy = classification.then(|| hits[m] as f32 / group_len.max(1) as f32);
            scores.push(ModelScore { loss, accuracy, predictions: Vec::new(), task: (groups > 1).then_some(task) });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_on_its_own_group_scores_as_on_every_group() {
        let spec: weightlab_manifest::DataSpec = toml::from_str("source = \"blobs\"\nclasses = 4\nsamples = 96\ntasks = { family = \"rotate\", count = 6, heldout = 1, ood = 1 }").expect("data spec");
        let data = crate::data::load(&spec, std::path::Path::new(".")).expect("a task family");
        assert!(data.groups > 1, "several groups");
        let arch_spec: weightlab_manifest::ArchSpec = toml::from_str("kind = \"mlp\"\nhidden = [8]").expect("arch spec");
        let arch = Arch::new(&arch_spec, &data).expect("arch");
        let p = arch.layout().len();
        // Nine models (more than one per group), random weights.
        let mut state = 7u64;
        let weights: Vec<f32> = (0..9 * p)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
            })
            .collect();
        let tasks: Vec<usize> = (0..9).map(|m| (m * 5) % data.groups).collect();
        for split in [&data.train, &data.test] {
            let all = evaluate_on(&arch, &data, split, &weights, Some(&tasks));
            let own = evaluate_own_groups(&arch, &data, split, &weights, &tasks);
            let pairs = |scores: &[ModelScore]| scores.iter().map(|s| (s.loss, s.accuracy, s.task)).collect::<Vec<_>>();
            assert_eq!(pairs(&own), pairs(&all));
        }
    }
}
