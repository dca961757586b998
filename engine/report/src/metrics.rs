//! Metric declarations, as lm-evaluation-harness declares `higher_is_better` per metric.

use serde::Serialize;

/// How a metric is shown and ranked.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MetricDecl {
    /// Field name in the summaries.
    pub key: &'static str,
    pub label: &'static str,
    /// Which end is highlighted as best.
    pub higher_is_better: bool,
    /// Decimal places.
    pub digits: usize,
    pub help: &'static str,
}

/// Every metric of the summary table, in column order.
pub const METRICS: [MetricDecl; 6] = [
    MetricDecl { key: "accuracy", label: "Test accuracy", higher_is_better: true, digits: 3, help: "Mean test accuracy of the samples (per seed, then over seeds)." },
    MetricDecl { key: "ensemble_accuracy", label: "Ensemble acc.", higher_is_better: true, digits: 3, help: "Test accuracy of the majority vote of a seed's samples." },
    MetricDecl {
        key: "loss",
        label: "Test loss",
        higher_is_better: false,
        digits: 4,
        help: "Mean test loss of the samples: cross-entropy for classifiers, mean squared SDF error for neural fields (on the shape each fits best).",
    },
    MetricDecl { key: "nn_l2", label: "NN distance (L2)", higher_is_better: true, digits: 3, help: "L2 distance to the nearest training checkpoint; 0 means a copy." },
    MetricDecl {
        key: "nn_l2_permuted",
        label: "NN dist., permuted",
        higher_is_better: true,
        digits: 3,
        help: "Symmetry check: L2 distance to the nearest training checkpoint after randomly permuting each checkpoint's hidden units (same functions). A large jump from the plain NN distance shows weight-space distance alone cannot tell copies from new models.",
    },
    MetricDecl {
        key: "novelty",
        label: "Novelty",
        higher_is_better: true,
        digits: 3,
        help: "1 − the highest IoU of wrong test predictions with any training checkpoint; 0 means the same mistakes as a training model.",
    },
];
