//! Rendering: the report's data as one serialisable context, passed to a minijinja template.
//! The built-in template is `templates/report.html.j2` (compiled in); `[report] template =
//! "dir"` points at a folder with a `report.html.j2` of the user's own.

use std::path::Path;

use minijinja::Environment;
use serde::Serialize;

use weightlab_results::Stat;

use crate::metrics::MetricColumn;

/// The built-in template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../../templates/report.html.j2");

/// One row of the summary table: a method with each metric over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub method: String,
    pub role: String,
    pub zoo: String,
    pub seeds: u32,
    pub samples: u32,
    /// One cell per column of [`ReportContext::metrics`]; `None` where not computed.
    pub metrics: Vec<Option<Stat>>,
    /// Metric keys this row is best at within its zoo.
    pub best: Vec<String>,
    pub best_accuracy: Option<f64>,
    pub rank: u32,
    /// `ok`, or the failure reason.
    pub status: String,
}

/// A failed stage.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub stage: String,
    pub method: String,
    pub reason: String,
}

/// Rendered plots (inline SVG), by name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlotSet {
    pub plots: Vec<(String, String, String)>,
}

impl PlotSet {
    /// Adds a plot with an id, a caption and its SVG.
    pub fn add(&mut self, id: &str, caption: &str, svg: String) {
        self.plots.push((id.to_string(), caption.to_string(), svg));
    }
}

/// A table of figures over seeds: one probe target's results (a row per probe, a column per
/// metric), or one task family's transfer results (a row per method, a column per task group
/// and fine-tuning step count).
#[derive(Debug, Clone, Serialize)]
pub struct ScoreTable {
    pub zoo: String,
    /// The probe target (`classes`, `parent`, `test-accuracy`, `lr`, …), or `transfer`.
    pub target: String,
    /// Probe tables: where the labels the probes learned from come from (which split).
    pub labels: Option<String>,
    pub metrics: Vec<MetricColumn>,
    pub rows: Vec<ScoreRow>,
}

/// One method in a [`ScoreTable`].
#[derive(Debug, Clone, Serialize)]
pub struct ScoreRow {
    pub method: String,
    /// The plugin (probe tables) or the method's role (transfer tables).
    pub plugin: String,
    pub seeds: u32,
    /// Per metric column: the figure over seeds (`None`: not computed for this method).
    pub values: Vec<Option<Stat>>,
    /// Per metric column: what a probe that ignores the weights scores.
    pub chance: Vec<Option<f64>>,
    /// Keys of the metrics this row is best at within its table.
    pub best: Vec<String>,
    /// Per metric column: the row's rank by the metric's direction (1 = best; ablation tables).
    pub ranks: Vec<Option<u32>>,
}

/// One swept method of a run: its variants ranked by every metric, and each metric against
/// each swept key.
#[derive(Debug, Clone, Serialize)]
pub struct Ablation {
    /// The method the variants were expanded from.
    pub base: String,
    /// The swept keys its variants take (its own and its zoo's or dataset's).
    pub keys: Vec<String>,
    /// A row per variant (`plugin` holds its swept values), ranked per metric.
    pub table: ScoreTable,
    pub plots: PlotSet,
}

/// One variant entry of an expanded manifest.
#[derive(Debug, Clone, Serialize)]
pub struct VariantLine {
    pub section: String,
    pub name: String,
    pub base: String,
    /// Its swept values, `key = value`, comma-separated.
    pub params: String,
}

/// Model trees found from weights alone (one row per model-tree zoo).
#[derive(Debug, Clone, Serialize)]
pub struct TreeDiscovery {
    pub zoo: String,
    pub models: usize,
    pub true_trees: usize,
    pub found_trees: usize,
    pub ari: f64,
}

/// Everything the template sees.
#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    pub title: String,
    pub description: Option<String>,
    pub generated: String,
    pub rows: Vec<Row>,
    pub metrics: Vec<MetricColumn>,
    pub plots: PlotSet,
    /// Why selected plots are missing (e.g. a metric they draw was not computed).
    pub plot_notes: Vec<String>,
    pub failures: Vec<Failure>,
    /// (key, value) pairs: versions, hashes, machine.
    pub provenance: Vec<(String, String)>,
    /// (stage, seconds, cached).
    pub stages: Vec<(String, f64, bool)>,
    pub manifest: String,
    /// (zoo, text) one-line descriptions of the zoos.
    pub zoos: Vec<(String, String)>,
    /// Probe results, one table per (zoo, target).
    pub probes: Vec<ScoreTable>,
    /// Transfer to new tasks, one table per task-family zoo.
    pub transfer: Vec<ScoreTable>,
    /// Model-tree discovery per model-tree zoo.
    pub trees: Vec<TreeDiscovery>,
    /// Every variant the sweeps expanded into.
    pub variants: Vec<VariantLine>,
    /// One ablation per swept method.
    pub ablations: Vec<Ablation>,
    /// Every method against its zoo's noise frontier (Zeng et al.), per axis.
    pub frontier: Vec<weightlab_results::FrontierRow>,
}

impl ReportContext {
    /// Marks, per zoo and metric, the rows with the best mean (by the metric's direction), in
    /// the summary and in every probe and transfer table.
    pub fn mark_best(&mut self) {
        for table in self.probes.iter_mut().chain(self.transfer.iter_mut()).chain(self.ablations.iter_mut().map(|a| &mut a.table)) {
            for (m, column) in table.metrics.iter().enumerate() {
                let means: Vec<Option<f64>> = table.rows.iter().map(|r| mean_of(&r.values, m)).collect();
                for (r, best) in table.rows.iter_mut().zip(best_of(&column.direction, &means)) {
                    if best {
                        r.best.push(column.key.clone());
                    }
                }
            }
        }
        let zoos: Vec<String> = self.rows.iter().map(|r| r.zoo.clone()).collect();
        for (m, column) in self.metrics.iter().enumerate() {
            for zoo in &zoos {
                // Within a zoo, among the methods (the zoo's own reference rows compete with none).
                let means: Vec<Option<f64>> = self.rows.iter().map(|r| if &r.zoo == zoo && r.role != "reference" { mean_of(&r.metrics, m) } else { None }).collect();
                for (r, best) in self.rows.iter_mut().zip(best_of(&column.direction, &means)) {
                    if best && !r.best.contains(&column.key) {
                        r.best.push(column.key.clone());
                    }
                }
            }
        }
    }
}

/// Ranks (1 = best) of `means` by `direction`; ties share a rank; `None` where there is no
/// mean or the metric has no direction.
pub fn ranks_of(direction: &str, means: &[Option<f64>]) -> Vec<Option<u32>> {
    let higher = match direction {
        "higher" => true,
        "lower" => false,
        _ => return vec![None; means.len()],
    };
    means
        .iter()
        .map(|m| {
            let v = (*m).filter(|v| v.is_finite())?;
            let better = means.iter().flatten().filter(|o| o.is_finite() && if higher { **o > v } else { **o < v }).count();
            Some(better as u32 + 1)
        })
        .collect()
}

/// The finite mean of cell `m` of a row's metrics.
fn mean_of(cells: &[Option<Stat>], m: usize) -> Option<f64> {
    cells.get(m).copied().flatten().map(|s| s.mean).filter(|v| v.is_finite())
}

/// Which of `means` equal the best one by `direction` (`higher` or `lower`; none is best on a
/// trade-off axis).
fn best_of(direction: &str, means: &[Option<f64>]) -> Vec<bool> {
    let higher = match direction {
        "higher" => true,
        "lower" => false,
        _ => return vec![false; means.len()],
    };
    let best = means.iter().flatten().copied().reduce(|a, v| if higher { a.max(v) } else { a.min(v) });
    means.iter().map(|m| matches!((m, best), (Some(v), Some(b)) if (v - b).abs() <= 1e-12 * b.abs().max(1.0))).collect()
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("template error: {0:#}")]
    Template(#[from] minijinja::Error),
}

/// Renders the report with the built-in template, or `template_dir/report.html.j2`.
pub fn render(ctx: &ReportContext, template_dir: Option<&Path>) -> Result<String, RenderError> {
    let source = match template_dir {
        Some(dir) => {
            let path = dir.join("report.html.j2");
            std::fs::read_to_string(&path).map_err(|source| RenderError::Io { path, source })?
        }
        None => DEFAULT_TEMPLATE.to_string(),
    };
    let mut env = Environment::new();
    env.add_filter("fixed", |v: f64, digits: usize| format!("{v:.digits$}"));
    env.add_template_owned("report.html.j2".to_string(), source)?;
    Ok(env.get_template("report.html.j2")?.render(ctx)?)
}
