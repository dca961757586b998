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

pub const NN_INTERP: Metric = Metric {
    key: "nn_interp",
    label: "NN dist. to an interpolation",
    unit: "L2 norm of the weight difference",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 3,
    shown: true,
    help: "L2 distance to the nearest point on a segment between two training checkpoints (a + t·(b − a), t in [0, 1], over every pair; exact): 0 for a checkpoint and for any mix of two. Never above the raw NN distance. Tests Zeng et al.'s 'copies or simple interpolations'. In raw weight space: two checkpoints are not aligned to each other first.",
    compute: |s: &Scoring| s.nearest_interpolation().iter().map(|n| n.l2).collect(),
};

/// A sample counts as an interpolation when it is at most this share of its NN distance from
/// the nearest interpolation.
pub const INTERPOLATION_MARGIN: f64 = 0.5;

pub const INTERPOLATION: Metric = Metric {
    key: "interpolation",
    label: "Interpolations",
    unit: "share of models",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 2,
    shown: true,
    help: "Share of models closer to an interpolation of two training checkpoints than to any checkpoint by a margin: NN dist. to an interpolation below half the NN distance. Copies do not count (both are 0); the `interpolate` baseline is 1 by construction, isotropic noise around a checkpoint near 0.",
    compute: |s: &Scoring| {
        s.nearest_interpolation()
            .iter()
            .zip(s.nearest())
            .map(|(segment, nearest)| if segment.l2.is_nan() { f64::NAN } else { f64::from(u8::from(segment.l2 < INTERPOLATION_MARGIN * nearest.l2)) })
            .collect()
    },
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
