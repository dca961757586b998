//! A metric added the registry's way (this file and one line in `REGISTRY`): the L2 norm of a
//! model's weights. Generators that shrink or inflate weights show it before accuracy does.

use super::{Aggregation, Applies, Direction, Metric, Scoring};

pub const WEIGHT_NORM: Metric = Metric {
    key: "weight_norm",
    label: "Weight norm",
    unit: "L2 norm of the flat weight vector",
    direction: Direction::None,
    aggregation: Aggregation::Mean,
    applies: Applies::Any,
    digits: 3,
    shown: false,
    help: "L2 norm of all weights; compare with the training models' own rows.",
    compute: |s: &Scoring| s.models.chunks_exact(s.p.max(1)).map(|m| m.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt()).collect(),
};
