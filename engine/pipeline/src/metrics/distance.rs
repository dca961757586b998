//! Distance to the training checkpoints in weight space (Zeng et al. 2025).

use super::{Aggregation, Applies, Direction, Metric, Scoring};

pub const NN_L2: Metric = Metric {
    key: "nn_l2",
    label: "NN distance (L2)",
    unit: "L2 norm of the weight difference",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 3,
    shown: true,
    help: "L2 distance to the nearest training checkpoint; 0 means a copy. A trade-off axis, not a goal: random weights are far from everything.",
    compute: |s: &Scoring| s.nearest().iter().map(|n| n.l2).collect(),
};

pub const NN_L2_PERMUTED: Metric = Metric {
    key: "nn_l2_permuted",
    label: "NN dist., permuted",
    unit: "L2 norm of the weight difference",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 3,
    shown: true,
    help: "Symmetry check: L2 distance to the nearest training checkpoint after randomly permuting each checkpoint's hidden units (same functions). A large jump from the plain NN distance shows weight-space distance alone cannot tell copies from new models.",
    compute: |s: &Scoring| s.nearest_permuted().iter().map(|n| n.l2).collect(),
};

pub const NN_COSINE: Metric = Metric {
    key: "nn_cosine",
    label: "NN cosine",
    unit: "",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 3,
    shown: false,
    help: "Cosine similarity with the nearest (by L2) training checkpoint.",
    compute: |s: &Scoring| s.nearest().iter().map(|n| n.cosine).collect(),
};
