//! How well a model does its task on the test split.

use super::{Aggregation, Applies, Direction, Metric, Scoring};

pub const ACCURACY: Metric = Metric {
    key: "accuracy",
    label: "Test accuracy",
    unit: "",
    direction: Direction::Higher,
    aggregation: Aggregation::Mean,
    applies: Applies::Classification,
    digits: 3,
    shown: true,
    help: "Mean test accuracy of the samples (per seed, then over seeds).",
    compute: |s: &Scoring| s.scores().iter().map(|m| m.accuracy.map_or(f64::NAN, f64::from)).collect(),
};

pub const ENSEMBLE_ACCURACY: Metric = Metric {
    key: "ensemble_accuracy",
    label: "Ensemble acc.",
    unit: "",
    direction: Direction::Higher,
    aggregation: Aggregation::Mean,
    applies: Applies::OneTask,
    digits: 3,
    shown: true,
    help: "Test accuracy of the majority vote of a seed's samples (the same value in each of its rows).",
    compute: |s: &Scoring| {
        let value = weightlab_compute::metrics::ensemble_accuracy(s.predictions(), s.labels()).unwrap_or(f64::NAN);
        vec![value; s.len()]
    },
};

pub const LOSS: Metric = Metric {
    key: "loss",
    label: "Test loss",
    unit: "cross-entropy (classifiers) or mean squared SDF error (neural fields)",
    direction: Direction::Lower,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 4,
    shown: true,
    help: "Mean test loss of the samples: cross-entropy for classifiers, mean squared SDF error for neural fields (on the shape each fits best).",
    compute: |s: &Scoring| s.scores().iter().map(|m| m.loss as f64).collect(),
};
