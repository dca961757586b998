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

/// Novelty of each model given its test predictions and those of the training checkpoints.
/// With `exclude_same_row`, model i is not compared with reference i (leave-one-out).
pub fn behaviour(models: &[Vec<u8>], reference: &[Vec<u8>], labels: &[u8], exclude_same_row: bool) -> Vec<Behaviour> {
    models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut best = Behaviour { index: usize::MAX, novelty: 1.0, agreement: f64::NAN };
            let mut best_sim = f64::NEG_INFINITY;
            for (j, r) in reference.iter().enumerate() {
                if exclude_same_row && i == j {
                    continue;
                }
                let sim = error_iou(m, r, labels);
                if sim > best_sim {
                    best_sim = sim;
                    let agree = m.iter().zip(r).filter(|(a, b)| a == b).count() as f64 / m.len().max(1) as f64;
                    best = Behaviour { index: j, novelty: 1.0 - sim, agreement: agree };
                }
            }
            best
        })
        .collect()
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
    fn ensemble_votes_by_majority() {
        let labels = [0, 1, 2, 1];
        let models = vec![vec![0, 1, 0, 0], vec![0, 2, 2, 1], vec![1, 1, 2, 1]];
        // Votes per example: 0 (2 of 3), 1 (2 of 3), 2 (2 of 3), 1 (2 of 3): all right.
        assert_eq!(ensemble_accuracy(&models, &labels), Some(1.0));
        assert_eq!(ensemble_accuracy(&models[..1], &labels), Some(0.5));
    }
}
