//! Behavioural similarity to the training checkpoints: do a model's test mistakes repeat a
//! training model's (Zeng et al. 2025)?

use super::{Aggregation, Applies, Direction, Metric, Scoring};

pub const NOVELTY: Metric = Metric {
    key: "novelty",
    label: "Novelty",
    unit: "",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Classification,
    digits: 3,
    shown: true,
    help: "1 − the highest IoU of wrong test predictions with any training checkpoint; 0 means the same mistakes as a training model. A trade-off with accuracy, not a goal on its own.",
    compute: |s: &Scoring| s.behaviour().map(|b| b.iter().map(|b| b.novelty).collect()).unwrap_or_else(|| vec![f64::NAN; s.len()]),
};

pub const AGREEMENT: Metric = Metric {
    key: "agreement",
    label: "Agreement",
    unit: "",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Classification,
    digits: 3,
    shown: false,
    help: "Fraction of test predictions shared with the behaviourally closest training checkpoint.",
    compute: |s: &Scoring| s.behaviour().map(|b| b.iter().map(|b| b.agreement).collect()).unwrap_or_else(|| vec![f64::NAN; s.len()]),
};
