//! Novelty of neural fields judged by their shapes (HyperDiffusion; Zeng et al. 2025).

use super::{Aggregation, Applies, Direction, Metric, Scoring};

pub const NN_CHAMFER: Metric = Metric {
    key: "nn_chamfer",
    label: "NN Chamfer",
    unit: "mean distance between surface points, in the field's [−1, 1]³ units",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Field,
    digits: 4,
    shown: true,
    help: "Neural fields: symmetric Chamfer distance between the surface of the field (zero crossings on a 41³ grid) and the nearest training field's surface; 0 means the same shape. NaN when a field has no surface in [−1, 1]³.",
    compute: |s: &Scoring| s.nearest_shape().map(|n| n.iter().map(|n| n.1).collect()).unwrap_or_else(|| vec![f64::NAN; s.len()]),
};
