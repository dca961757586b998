//! The metric registry: every metric is declared once — key, label, unit, direction,
//! aggregation, which models it applies to, and the function that computes it — in the style
//! of lm-evaluation-harness's task metrics. The declarations drive the sample rows, the
//! summary, the report table and the accepted values of `[evaluate] metrics`.
//!
//! Adding a metric: write `my_metric.rs` with a `pub const MY_METRIC: Metric` whose `compute`
//! reads what it needs from [`Scoring`], and register it with one line in [`REGISTRY`] (plus
//! its `mod` line). `weight_norm.rs` is a complete example.

mod behaviour;
mod distance;
mod performance;
pub mod probe;
mod scoring;
mod shape;
mod weight_norm;

pub use scoring::Scoring;
use serde::Serialize;
pub use weightlab_results::Aggregation;

/// Which end of a metric is better — or neither, for trade-off axes (distance to the training
/// set, novelty): the report never marks a "best" on those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Higher,
    Lower,
    None,
}

/// Which models a metric can be computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    /// Classifiers only (test predictions exist).
    Classification,
    /// Classifiers of a dataset with one task: their predictions are comparable example by
    /// example (not a task family, whose models each answer their own task).
    OneTask,
    /// Neural fields only (3-D signed-distance fields: a surface exists).
    Field,
    /// Any model.
    Any,
}

impl Applies {
    /// The models it applies to, in words ("neural fields").
    pub fn models(self) -> &'static str {
        match self {
            Applies::Classification => "classifiers",
            Applies::OneTask => "classifiers of one task",
            Applies::Field => "neural fields",
            Applies::Any => "any model",
        }
    }
}

/// One metric, declared once.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Column name in the `samples` table and value in `[evaluate] metrics`.
    pub key: &'static str,
    /// Column header in the report.
    pub label: &'static str,
    /// Unit shown with the help text ("" for plain fractions).
    pub unit: &'static str,
    pub direction: Direction,
    /// How a seed's samples reduce to one value before the summary over seeds.
    pub aggregation: Aggregation,
    pub applies: Applies,
    /// Decimal places in the report.
    pub digits: usize,
    /// A column of the report's summary table (otherwise only in the `samples` table).
    pub shown: bool,
    pub help: &'static str,
    /// One value per scored model; NaN where it cannot be computed for that model.
    pub compute: fn(&Scoring) -> Vec<f64>,
}

/// Every metric, in the report's column order.
#[rustfmt::skip] // one entry per line: adding a metric is adding a line
pub const REGISTRY: &[&Metric] = &[
    &performance::ACCURACY,
    &performance::ENSEMBLE_ACCURACY,
    &performance::LOSS,
    &distance::NN_L2,
    &distance::NN_L2_ALIGNED,
    &distance::NN_INTERP,
    &distance::INTERPOLATION,
    &distance::NN_COSINE,
    &behaviour::NOVELTY,
    &behaviour::AGREEMENT,
    &shape::NN_CHAMFER,
    &weight_norm::WEIGHT_NORM,
];

/// The metric with key `key`.
pub fn get(key: &str) -> Option<&'static Metric> {
    REGISTRY.iter().copied().find(|m| m.key == key)
}

/// Every key, in registry order.
pub fn keys() -> Vec<String> {
    REGISTRY.iter().map(|m| m.key.to_string()).collect()
}

/// The metrics `[evaluate] metrics` selects (all when it is absent), in registry order.
/// Unknown keys were refused when the manifest was validated.
pub fn selected(listed: Option<&[String]>) -> Vec<&'static Metric> {
    REGISTRY.iter().copied().filter(|m| listed.is_none_or(|l| l.iter().any(|k| k == m.key))).collect()
}

/// `(key, aggregation)` of metrics, as the summary takes them.
pub fn aggregations(metrics: &[&Metric]) -> Vec<(&'static str, Aggregation)> {
    metrics.iter().map(|m| (m.key, m.aggregation)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_trade_offs_have_no_best() {
        let mut keys: Vec<&str> = REGISTRY.iter().map(|m| m.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), REGISTRY.len());
        for key in ["nn_l2", "nn_l2_aligned", "nn_interp", "interpolation", "novelty"] {
            assert_eq!(get(key).map(|m| m.direction), Some(Direction::None), "{key} is a trade-off axis, not a goal");
        }
        assert_eq!(get("loss").map(|m| m.direction), Some(Direction::Lower));
    }

    #[test]
    fn selection_keeps_registry_order() {
        let listed = vec!["novelty".to_string(), "accuracy".to_string()];
        let keys: Vec<&str> = selected(Some(&listed)).iter().map(|m| m.key).collect();
        assert_eq!(keys, ["accuracy", "novelty"]);
        assert_eq!(selected(None).len(), REGISTRY.len());
    }
}
