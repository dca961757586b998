//! The probe-metric registry: how a probe's predictions on held-out models are scored, each
//! metric declared once with its direction and the target kinds it applies to. A probe run
//! (method × seed) gets one value per metric; the report summarises them over seeds.
//!
//! Adding a metric: a `pub const` [`ProbeMetric`] here and one line in [`PROBE_REGISTRY`].

use weightlab_compute::metrics::probing;
use weightlab_host::TargetKind;

use super::Direction;

/// A probe's predictions on the held-out models, with the truth.
#[derive(Debug, Clone)]
pub struct Predictions {
    pub kind: TargetKind,
    /// Columns of `scores` (labels; 1 for regression).
    pub cols: usize,
    /// rows × cols, higher = more likely.
    pub scores: Vec<f32>,
    /// Multi-label: rows × cols of 0/1. Single-label: rows of label indices. Regression: rows
    /// of values.
    pub truth: Vec<f32>,
    /// Label columns scored (the labels seen in training).
    pub seen: Vec<usize>,
    /// Label columns withheld from training, scored zero-shot.
    pub unseen: Vec<usize>,
}

/// One probe metric, declared once.
#[derive(Debug, Clone, Copy)]
pub struct ProbeMetric {
    /// Value of the `metric` column of the `probe_scores` table.
    pub key: &'static str,
    pub label: &'static str,
    pub direction: Direction,
    /// The target kinds it scores.
    pub applies: &'static [TargetKind],
    pub help: &'static str,
    /// The figure; NaN where it is undefined (e.g. no unseen label).
    pub compute: fn(&Predictions) -> f64,
    /// What a probe that ignores the weights scores in expectation.
    pub chance: fn(&Predictions) -> f64,
}

/// Every probe metric, in the report's column order.
#[rustfmt::skip]
pub const PROBE_REGISTRY: &[&ProbeMetric] = &[
    &ACCURACY,
    &MAP,
    &ZERO_SHOT_MAP,
    &ZERO_SHOT_ACCURACY,
    &R2,
    &KENDALL_TAU,
];

/// The metrics that score predictions of `kind`.
pub fn for_kind(kind: TargetKind) -> Vec<&'static ProbeMetric> {
    PROBE_REGISTRY.iter().copied().filter(|m| m.applies.contains(&kind)).collect()
}

const LABELS: &[TargetKind] = &[TargetKind::MultiLabel, TargetKind::SingleLabel];

/// Expected mAP over `columns` of a random ranking of the held-out models (per column from its
/// count of positives; columns without one are left out, as in the mAP itself).
fn random_map(p: &Predictions, columns: &[usize]) -> f64 {
    let rows = p.truth.len() / p.cols.max(1);
    let aps: Vec<f64> = columns.iter().map(|&c| probing::random_average_precision(rows, (0..rows).filter(|&r| p.truth[r * p.cols + c] > 0.5).count())).filter(|ap| ap.is_finite()).collect();
    if aps.is_empty() { f64::NAN } else { aps.iter().sum::<f64>() / aps.len() as f64 }
}

/// Expected top-k accuracy of a random ranking: k true labels among `columns`, k drawn.
fn random_top_k(p: &Predictions, columns: &[usize]) -> f64 {
    let rows = p.truth.len() / p.cols.max(1);
    let per_row: Vec<f64> = (0..rows)
        .filter_map(|r| {
            let k = columns.iter().filter(|&&c| p.truth[r * p.cols + c] > 0.5).count();
            (k > 0).then(|| k as f64 / columns.len() as f64)
        })
        .collect();
    if per_row.is_empty() { f64::NAN } else { per_row.iter().sum::<f64>() / per_row.len() as f64 }
}

pub const ACCURACY: ProbeMetric = ProbeMetric {
    key: "accuracy",
    label: "Accuracy",
    direction: Direction::Higher,
    applies: LABELS,
    help: "Single label (parent): share of held-out models whose top-scored label is right. Classes: per model with k training classes, the share of them among its k top-scored seen classes.",
    compute: |p| match p.kind {
        TargetKind::MultiLabel => probing::top_k_accuracy(&p.scores, &p.truth, p.cols, &p.seen),
        _ => probing::argmax_accuracy(&p.scores, &p.truth, p.cols),
    },
    chance: |p| match p.kind {
        TargetKind::MultiLabel => random_top_k(p, &p.seen),
        _ => 1.0 / p.cols.max(1) as f64,
    },
};

pub const MAP: ProbeMetric = ProbeMetric {
    key: "map",
    label: "mAP",
    direction: Direction::Higher,
    applies: &[TargetKind::MultiLabel],
    help: "Mean over the seen classes of the average precision of ranking held-out models by the class's score (macro mAP, as ProbeX reports). Chance: the expected mAP of a random ranking, above the classes' share when held-out models are few.",
    compute: |p| probing::mean_average_precision(&p.scores, &p.truth, p.cols, &p.seen),
    chance: |p| random_map(p, &p.seen),
};

pub const ZERO_SHOT_MAP: ProbeMetric = ProbeMetric {
    key: "zero_shot_map",
    label: "Zero-shot mAP",
    direction: Direction::Higher,
    applies: &[TargetKind::MultiLabel],
    help: "mAP over the classes withheld from training (`unseen_classes`), scored through their text embeddings only.",
    compute: |p| if p.unseen.is_empty() { f64::NAN } else { probing::mean_average_precision(&p.scores, &p.truth, p.cols, &p.unseen) },
    chance: |p| if p.unseen.is_empty() { f64::NAN } else { random_map(p, &p.unseen) },
};

pub const ZERO_SHOT_ACCURACY: ProbeMetric = ProbeMetric {
    key: "zero_shot_accuracy",
    label: "Zero-shot acc.",
    direction: Direction::Higher,
    applies: &[TargetKind::MultiLabel],
    help: "Among held-out models trained on unseen classes: the share of those classes found among the same number of top-scored unseen classes.",
    compute: |p| if p.unseen.len() < 2 { f64::NAN } else { probing::top_k_accuracy(&p.scores, &p.truth, p.cols, &p.unseen) },
    chance: |p| if p.unseen.len() < 2 { f64::NAN } else { random_top_k(p, &p.unseen) },
};

pub const R2: ProbeMetric = ProbeMetric {
    key: "r2",
    label: "R²",
    direction: Direction::Higher,
    applies: &[TargetKind::Regression],
    help: "Coefficient of determination of the predicted values on held-out models (1: exact, 0: no better than the mean).",
    compute: |p| probing::r_squared(&p.scores, &p.truth),
    chance: |_| 0.0,
};

pub const KENDALL_TAU: ProbeMetric = ProbeMetric {
    key: "kendall_tau",
    label: "Kendall τ",
    direction: Direction::Higher,
    applies: &[TargetKind::Regression],
    help: "Kendall's τ-b between predicted and true values on held-out models: how well the probe orders them.",
    compute: |p| probing::kendall_tau(&p.scores, &p.truth),
    chance: |_| 0.0,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_every_kind_is_scored() {
        let mut keys: Vec<&str> = PROBE_REGISTRY.iter().map(|m| m.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), PROBE_REGISTRY.len());
        for kind in [TargetKind::MultiLabel, TargetKind::SingleLabel, TargetKind::Regression] {
            assert!(!for_kind(kind).is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn chance_levels() {
        // Two of four classes per model: random top-k recovers half; each class has one
        // positive among two models: a random ranking's AP is (1 + 1/2) / 2.
        let truth = vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let p = Predictions { kind: TargetKind::MultiLabel, cols: 4, scores: vec![0.0; 8], truth, seen: vec![0, 1, 2, 3], unseen: vec![] };
        assert_eq!((ACCURACY.chance)(&p), 0.5);
        assert!(((MAP.chance)(&p) - 0.75).abs() < 1e-12);
        assert!((ZERO_SHOT_MAP.compute)(&p).is_nan());
    }
}
