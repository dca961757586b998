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
/// The report's script (tooltips, legends that hide methods, sortable tables, downloads),
/// available to every template as `{% include "report.js" %}`.
pub const SCRIPT: &str = include_str!("../../../templates/report.js");

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
    /// Metric keys this row is best at within its zoo, distinguishably (see [`marks`]).
    pub best: Vec<String>,
    /// Metric keys this row ties for best at: its interval overlaps the best row's.
    #[serde(default)]
    pub tied: Vec<String>,
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
    /// Probe tables: predictions against the truth, or average precision per label.
    pub plots: PlotSet,
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
    /// Keys of the metrics this row is best at within its table, distinguishably.
    pub best: Vec<String>,
    /// Keys of the metrics this row ties for best at.
    #[serde(default)]
    pub tied: Vec<String>,
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
    /// One plot per zoo and axis of the frontier.
    pub frontier_plots: PlotSet,
    /// The sample rows plotted points refer to (`data-i`), as JSON for the report's script.
    pub points: String,
    /// Whether any method produced models (a probe-only run has none: its report shows no
    /// generator summary and no sample plots, only the zoo's own models would fill them).
    pub has_methods: bool,
}

impl ReportContext {
    /// Marks, per zoo and metric, the best row (by the metric's direction) in the summary and in
    /// every probe, transfer and ablation table — or the rows tied for best ([`marks`]).
    pub fn mark_best(&mut self) {
        for table in self.probes.iter_mut().chain(self.transfer.iter_mut()).chain(self.ablations.iter_mut().map(|a| &mut a.table)) {
            for (m, column) in table.metrics.iter().enumerate() {
                let cells: Vec<Option<Stat>> = table.rows.iter().map(|r| r.values.get(m).copied().flatten()).collect();
                let chance: Vec<Option<f64>> = table.rows.iter().map(|r| r.chance.get(m).copied().flatten()).collect();
                for (r, mark) in table.rows.iter_mut().zip(marks(&column.direction, &cells, &chance)) {
                    mark.apply(&column.key, &mut r.best, &mut r.tied);
                }
            }
        }
        let zoos: Vec<String> = self.rows.iter().map(|r| r.zoo.clone()).collect();
        for (m, column) in self.metrics.iter().enumerate() {
            for zoo in &zoos {
                // Within a zoo, among the methods (the zoo's own reference rows compete with none).
                let cells: Vec<Option<Stat>> = self.rows.iter().map(|r| if &r.zoo == zoo && r.role != "reference" { r.metrics.get(m).copied().flatten() } else { None }).collect();
                for (r, mark) in self.rows.iter_mut().zip(marks(&column.direction, &cells, &vec![None; cells.len()])) {
                    if !r.best.contains(&column.key) && !r.tied.contains(&column.key) {
                        mark.apply(&column.key, &mut r.best, &mut r.tied);
                    }
                }
            }
        }
    }
}

/// How a cell is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    None,
    /// The best mean, and its 95 % interval overlaps no other row's.
    Best,
    /// The best mean or within its interval's reach: the intervals overlap, so no one of them
    /// can be called best.
    Tied,
}

impl Mark {
    fn apply(self, key: &str, best: &mut Vec<String>, tied: &mut Vec<String>) {
        match self {
            Mark::Best => best.push(key.to_string()),
            Mark::Tied => tied.push(key.to_string()),
            Mark::None => {}
        }
    }
}

/// Which `cells` are best by `direction` (`higher` or `lower`; none on a trade-off axis): the
/// row with the best mean is *best* when its 95 % interval overlaps no other row's (a row
/// without an interval counts as its mean alone); otherwise it and every row whose interval
/// reaches its interval *tie*. A row not better than its `chance` level competes with none (an
/// R² below 0 or a mAP at chance is never marked best).
pub fn marks(direction: &str, cells: &[Option<Stat>], chance: &[Option<f64>]) -> Vec<Mark> {
    let higher = match direction {
        "higher" => true,
        "lower" => false,
        _ => return vec![Mark::None; cells.len()],
    };
    let better = |a: f64, b: f64| if higher { a > b } else { a < b };
    let interval = |s: &Stat| {
        let ci = s.ci95.filter(|c| c.is_finite()).unwrap_or(0.0);
        (s.mean - ci, s.mean + ci)
    };
    let candidates: Vec<Option<Stat>> =
        cells.iter().zip(chance.iter().chain(std::iter::repeat(&None))).map(|(c, chance)| c.filter(|s| s.mean.is_finite() && chance.is_none_or(|ch| better(s.mean, ch)))).collect();
    let Some(top) = candidates.iter().flatten().copied().reduce(|a, b| if better(b.mean, a.mean) { b } else { a }) else {
        return vec![Mark::None; cells.len()];
    };
    let (top_low, top_high) = interval(&top);
    let reaches = |s: &Stat| {
        let (low, high) = interval(s);
        if higher { high >= top_low } else { low <= top_high }
    };
    let group = candidates.iter().flatten().filter(|s| reaches(s)).count();
    candidates
        .iter()
        .map(|c| match c {
            Some(s) if group == 1 && (s.mean - top.mean).abs() <= 1e-12 * top.mean.abs().max(1.0) => Mark::Best,
            Some(s) if group > 1 && reaches(s) => Mark::Tied,
            _ => Mark::None,
        })
        .collect()
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
    env.add_filter("code", |text: String| minijinja::Value::from_safe_string(code(&text)));
    env.add_template("report.js", SCRIPT)?;
    env.add_template_owned("report.html.j2".to_string(), source)?;
    Ok(env.get_template("report.html.j2")?.render(ctx)?)
}

/// `text` escaped for HTML, with `backticked` spans as `<code>` (notes and captions name
/// metrics, keys and plots that way).
pub fn code(text: &str) -> String {
    let escaped = crate::escape(text);
    let parts: Vec<&str> = escaped.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return escaped; // an unpaired backtick: leave the text as it is
    }
    parts.iter().enumerate().map(|(i, p)| if i % 2 == 1 { format!("<code>{p}</code>") } else { p.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_become_code_and_the_rest_is_escaped() {
        assert_eq!(code("`nn_chamfer` is <not> drawn"), "<code>nn_chamfer</code> is &lt;not&gt; drawn");
        assert_eq!(code("a ` b"), "a ` b");
    }

    fn stat(mean: f64, ci95: Option<f64>) -> Option<Stat> {
        Some(Stat { mean, sd: None, ci95, seeds: 2, non_finite: 0 })
    }

    #[test]
    fn a_best_is_marked_only_when_its_interval_stands_apart() {
        // The quickstart's case: 0.853 ± 0.002, 0.852 ± 0.001 and 0.850 ± 0.037 overlap: a tie.
        let tied = marks("higher", &[stat(0.853, Some(0.002)), stat(0.852, Some(0.001)), stat(0.850, Some(0.037)), stat(0.1, Some(0.01))], &[]);
        assert_eq!(tied, [Mark::Tied, Mark::Tied, Mark::Tied, Mark::None]);
        // Apart: a best.
        let apart = marks("higher", &[stat(0.95, Some(0.01)), stat(0.80, Some(0.05)), None], &[]);
        assert_eq!(apart, [Mark::Best, Mark::None, Mark::None]);
        // Lower is better for a loss; a trade-off axis has no best.
        assert_eq!(marks("lower", &[stat(0.2, Some(0.01)), stat(0.5, None)], &[]), [Mark::Best, Mark::None]);
        assert_eq!(marks("none", &[stat(0.2, None)], &[]), [Mark::None]);
    }

    #[test]
    fn nothing_at_or_below_chance_is_best() {
        // An R² of −22.3 and a mAP under its chance level are marked nothing.
        assert_eq!(marks("higher", &[stat(-22.3, Some(5.0)), stat(-40.0, None)], &[Some(0.0), Some(0.0)]), [Mark::None, Mark::None]);
        assert_eq!(marks("higher", &[stat(0.30, Some(0.01)), stat(0.70, Some(0.01))], &[Some(0.35), Some(0.35)]), [Mark::None, Mark::Best]);
    }
}
