//! Behavioural similarity (Zeng et al. 2025): two classifiers are similar when they get the
//! same test examples wrong. similarity(a, b) = |errors of both| / |errors of either| (the IoU
//! of their error sets); a model's novelty is 1 − its highest similarity to any training
//! checkpoint. Also reported: how often it predicts the same class as that checkpoint.

use serde::{Deserialize, Serialize};

/// A model's behaviour relative to the training checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Training checkpoint with the most similar errors.
    pub index: usize,
    /// 1 − max IoU of wrong predictions.
    pub novelty: f64,
    /// Fraction of test examples where the model and that checkpoint predict the same class.
    pub agreement: f64,
}

/// IoU of the error sets of two prediction vectors on examples with `labels`.
pub fn error_iou(a: &[u8], b: &[u8], labels: &[u8]) -> f64 {
    let (mut both, mut either) = (0usize, 0usize);
    for ((&pa, &pb), &y) in a.iter().zip(b).zip(labels) {
        let (wa, wb) = (pa != y, pb != y);
        both += (wa && wb) as usize;
        either += (wa || wb) as usize;
    }
    if either == 0 { 1.0 } else { both as f64 / either as f64 }
}

/// The examples a prediction vector gets wrong, as a bitset, and how many.
fn errors(predictions: &[u8], labels: &[u8]) -> (Vec<u64>, u32) {
    let mut bits = vec![0u64; labels.len().div_ceil(64)];
    for (k, (&p, &y)) in predictions.iter().zip(labels).enumerate() {
        if p != y {
            bits[k / 64] |= 1 << (k % 64);
        }
    }
    let count = bits.iter().map(|w| w.count_ones()).sum();
    (bits, count)
}

/// Novelty of each model given its test predictions and those of the training checkpoints.
/// With `exclude_same_row`, model i is not compared with reference i (leave-one-out).
///
/// Error sets are bitsets, so a pair costs |examples| / 64 AND-and-count steps: the same
/// integers — and so the same IoU — as [`error_iou`] counts example by example.
pub fn behaviour(models: &[Vec<u8>], reference: &[Vec<u8>], labels: &[u8], exclude_same_row: bool) -> Vec<Behaviour> {
    let refs: Vec<(Vec<u64>, u32)> = reference.iter().map(|r| errors(r, labels)).collect();
    let one = |i: usize| {
        let m = &models[i];
        let (bits, count) = errors(m, labels);
        let mut best = Behaviour { index: usize::MAX, novelty: 1.0, agreement: f64::NAN };
        let mut best_sim = f64::NEG_INFINITY;
        for (j, (r_bits, r_count)) in refs.iter().enumerate() {
            if exclude_same_row && i == j {
                continue;
            }
            let both: u32 = bits.iter().zip(r_bits).map(|(a, b)| (a & b).count_ones()).sum();
            let either = count + r_count - both;
            let sim = if either == 0 { 1.0 } else { both as f64 / either as f64 };
            if sim > best_sim {
                best_sim = sim;
                best = Behaviour { index: j, novelty: 1.0 - sim, agreement: f64::NAN };
            }
        }
        if let Some(r) = reference.get(best.index) {
            best.agreement = m.iter().zip(r).filter(|(a, b)| a == b).count() as f64 / m.len().max(1) as f64;
        }
        best
    };
    super::distance::per_model(models.len(), one)
}

/// Accuracy of the majority vote of `models`' predictions (ties go to the lowest class).
pub fn ensemble_accuracy(models: &[Vec<u8>], labels: &[u8]) -> Option<f64> {
    if models.is_empty() || labels.is_empty() {
        return None;
    }
    let classes = models.iter().flatten().chain(labels).copied().max().unwrap_or(0) as usize + 1;
    let mut right = 0usize;
    let mut votes = vec![0u32; classes];
    for (e, &y) in labels.iter().enumerate() {
        votes.iter_mut().for_each(|v| *v = 0);
        for m in models {
            votes[m[e] as usize] += 1;
        }
        let winner = (0..classes).max_by(|&a, &b| votes[a].cmp(&votes[b]).then(b.cmp(&a))).unwrap_or(0);
        right += usize::from(winner == y as usize);
    }
    Some(right as f64 / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_predictions_have_zero_novelty() {
        let labels = [0, 1, 2, 0];
        let a = vec![0, 2, 2, 1]; // wrong on 1 and 3
        let b = vec![1, 2, 2, 0]; // wrong on 0 and 1
        assert_eq!(error_iou(&a, &a, &labels), 1.0);
        assert!((error_iou(&a, &b, &labels) - 1.0 / 3.0).abs() < 1e-12);
        let out = behaviour(std::slice::from_ref(&a), &[b.clone(), a.clone()], &labels, false);
        assert_eq!(out[0].index, 1);
        assert_eq!(out[0].novelty, 0.0);
        assert_eq!(out[0].agreement, 1.0);
    }

    #[test]
    fn bitset_counts_equal_example_by_example_counts() {
        // 150 examples (three words, the last partial), 10 classes, pseudo-random predictions.
        let draw = |seed: u64, n: usize| -> Vec<u8> { (0..n as u64).map(|k| ((k * 2654435761 + seed * 40503) >> 7) as u8 % 10).collect() };
        let labels = draw(1, 150);
        let models: Vec<Vec<u8>> = (0..7).map(|s| draw(s + 10, 150)).collect();
        let mut reference: Vec<Vec<u8>> = (0..9).map(|s| draw(s + 30, 150)).collect();
        reference.push(models[2].clone());
        for loo in [false, true] {
            for (i, b) in behaviour(&models, &reference, &labels, loo).iter().enumerate() {
                let sims: Vec<(usize, f64)> = reference.iter().enumerate().filter(|(j, _)| !(loo && i == *j)).map(|(j, r)| (j, error_iou(&models[i], r, &labels))).collect();
                let top = sims.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
                let first = sims.iter().find(|s| s.1 == top).unwrap().0;
                assert_eq!((b.index, b.novelty), (first, 1.0 - top), "model {i}");
            }
        }
    }

    #[test]
    fn ensemble_votes_by_majority() {
        let labels = [0, 1, 2, 1];
        let models = vec![vec![0, 1, 0, 0], vec![0, 2, 2, 1], vec![1, 1, 2, 1]];
        // Votes per example: 0 (2 of 3), 1 (2 of 3), 2 (2 of 3), 1 (2 of 3): all right.
        assert_eq!(ensemble_accuracy(&models, &labels), Some(1.0));
        assert_eq!(ensemble_accuracy(&models[..1], &labels), Some(0.5));
    }
}
