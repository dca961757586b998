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

pub const NN_L2_ALIGNED: Metric = Metric {
    key: "nn_l2_aligned",
    label: "NN dist., aligned",
    unit: "L2 norm of the weight difference",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 3,
    shown: true,
    help: "Zeng et al.'s distance: L2 to the nearest training checkpoint after matching hidden units to it (Hungarian algorithm, layer by layer), so a copy with reordered units is at 0. Exact for one hidden layer; for deeper ones an upper bound on the best order, never above the raw distance.",
    compute: |s: &Scoring| s.nearest_aligned().iter().map(|n| n.l2).collect(),
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
