//! The plot registry: each report plot is one entry — an id (its name in `[report] plots`),
//! the metrics and tables it draws from, and a render function from the run's rows to a
//! caption and an inline SVG. Adding a plot: its own file with a `pub const MY_PLOT: Plot`
//! and one line in [`REGISTRY`] (plus its `mod` line).

mod accuracy_distance;
mod accuracy_novelty;
mod field_novelty;
mod finetune;
mod nn_distance;
mod parameter_heatmap;
mod similarity_heatmap;
mod training_curves;
mod weight_pca;

use std::collections::BTreeMap;

use crate::svg::Series;
use weightlab_results::{FinetuneRow, LogRow, ParameterRow, SampleRow, SimilarityRow};

/// The rows of every run being reported, and the method order of their manifests.
pub struct Tables<'a> {
    pub samples: &'a [SampleRow],
    pub similarity: &'a [SimilarityRow],
    pub parameters: &'a [ParameterRow],
    pub finetune: &'a [FinetuneRow],
    pub logs: &'a [LogRow],
    /// Position of a method in the manifests (references first where it matters).
    pub position: &'a dyn Fn(&str) -> usize,
}

impl Tables<'_> {
    /// Whether the run produced rows of table `name` (`samples`, `similarity`, `parameters`, `finetune`,
    /// `training_log`).
    pub fn has(&self, name: &str) -> bool {
        match name {
            "samples" => !self.samples.is_empty(),
            "similarity" => !self.similarity.is_empty(),
            "parameters" => !self.parameters.is_empty(),
            "finetune" => !self.finetune.is_empty(),
            "training_log" => !self.logs.is_empty(),
            _ => false,
        }
    }

    /// One scatter/histogram series per method of `zoo`: references first, then methods in
    /// manifest order; `point` picks a row's coordinates (`None` skips the row).
    pub fn series_by_method(&self, zoo: &str, point: &dyn Fn(&SampleRow) -> Option<(f64, f64)>) -> Vec<Series> {
        let mut groups: BTreeMap<(bool, usize, String), Series> = BTreeMap::new();
        for (i, r) in self.samples.iter().enumerate().filter(|(_, r)| r.zoo == zoo) {
            if let Some(pt) = point(r) {
                let series = groups.entry((r.role == "reference", (self.position)(&r.method), r.method.clone())).or_insert_with(|| Series::new(r.method.clone(), Vec::new()));
                series.points.push(pt);
                series.ids.push(i);
            }
        }
        groups.into_values().collect()
    }
}

/// A rendered plot.
pub struct Figure {
    pub caption: String,
    pub svg: String,
}

/// One plot of the report.
pub struct Plot {
    /// Name in `[report] plots` and the figure's HTML id (with the zoo appended).
    pub id: &'static str,
    /// What the plot shows, for `weightlab schema` and the docs.
    pub description: &'static str,
    /// Metric keys it draws; when `[evaluate] metrics` leaves one out, the report says why the
    /// plot is missing instead of drawing an empty frame.
    pub needs: &'static [&'static str],
    /// Tables it draws from (see [`Tables::has`]); when the run produced none, the report
    /// says so.
    pub tables: &'static [&'static str],
    /// Drawn once per zoo (`true`) or once per report.
    pub per_zoo: bool,
    /// Renders the plot for `zoo` (per-zoo plots) with `suffix` appended to its title;
    /// `None` when the tables hold nothing to draw.
    pub render: fn(&Tables, zoo: &str, suffix: &str) -> Option<Figure>,
}

/// Every plot, in report order.
#[rustfmt::skip] // one entry per line: adding a plot is adding a line
pub const REGISTRY: &[&Plot] = &[
    &accuracy_novelty::ACCURACY_NOVELTY,
    &accuracy_distance::ACCURACY_DISTANCE,
    &field_novelty::FIELD_NOVELTY,
    &nn_distance::NN_DISTANCE,
    &nn_distance::NN_DISTANCE_ALIGNED,
    &weight_pca::WEIGHT_PCA,
    &similarity_heatmap::SIMILARITY_HEATMAP,
    &parameter_heatmap::PARAMETER_HEATMAP,
    &finetune::FINETUNE,
    &training_curves::TRAINING_CURVES,
];

/// The plot with id `id`.
pub fn get(id: &str) -> Option<&'static Plot> {
    REGISTRY.iter().copied().find(|p| p.id == id)
}

/// Every id, in registry order.
pub fn ids() -> Vec<String> {
    REGISTRY.iter().map(|p| p.id.to_string()).collect()
}

/// The plots `[report] plots` selects (all when absent), in the order listed.
pub fn selected(listed: Option<&[String]>) -> Vec<&'static Plot> {
    match listed {
        Some(ids) => ids.iter().filter_map(|id| get(id)).collect(),
        None => REGISTRY.to_vec(),
    }
}
