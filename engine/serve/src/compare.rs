//! Runs side by side: their `summary.csv` in one table (a row per zoo and method, a column per
//! run), and their report rendered together (`weightlab report a b`: every plot overlays them).

use std::path::{Path, PathBuf};

use crate::runs::RunEntry;

/// The largest `summary.csv` read.
const MAX_SUMMARY_BYTES: u64 = 16 << 20;
const FIXED: [&str; 6] = ["zoo", "method", "role", "seeds", "samples", "status"];

/// One run's summary: its metric columns and rows (zoo, method, role, values by column).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub metrics: Vec<String>,
    pub rows: Vec<(String, String, String, Vec<String>)>,
    header: Vec<String>,
}

impl Summary {
    pub fn read(run: &Path) -> Option<Summary> {
        let bytes = weightlab_manifest::files::read_regular(&run.join("summary.csv"), MAX_SUMMARY_BYTES).ok()?;
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader.headers().ok()?.iter().map(str::to_string).collect();
        let metrics = header.iter().filter(|h| !FIXED.contains(&h.as_str()) && !h.ends_with("_ci95")).cloned().collect();
        let rows = reader
            .records()
            .flatten()
            .map(|r| {
                let cell = |i: usize| r.get(i).unwrap_or_default().to_string();
                (cell(0), cell(1), cell(2), r.iter().map(str::to_string).collect())
            })
            .collect();
        Some(Summary { metrics, rows, header })
    }

    /// "mean ± ci" of `metric` for (zoo, method), formatted to `digits`.
    pub fn cell(&self, zoo: &str, method: &str, metric: &str, digits: usize) -> Option<String> {
        let col = |key: &str| self.header.iter().position(|h| h == key);
        let (m, c) = (col(metric)?, col(&format!("{metric}_ci95")));
        let row = self.rows.iter().find(|r| r.0 == zoo && r.1 == method)?;
        let mean: f64 = row.3.get(m)?.parse().ok()?;
        let ci = c.and_then(|c| row.3.get(c)).and_then(|v| v.parse::<f64>().ok());
        Some(match ci {
            Some(ci) => format!("{mean:.digits$} ± {ci:.digits$}"),
            None => format!("{mean:.digits$}"),
        })
    }
}

/// The comparison of `runs` on `metric`: the metrics any of them has, and one row per (zoo,
/// method, role) in the order they first appear, with a cell per run.
pub struct Comparison {
    pub metrics: Vec<String>,
    pub metric: String,
    pub rows: Vec<(String, String, String, Vec<Option<String>>)>,
}

pub fn compare(runs: &[RunEntry], metric: Option<&str>) -> Comparison {
    let summaries: Vec<Summary> = runs.iter().map(|r| Summary::read(&r.path).unwrap_or_default()).collect();
    let mut metrics: Vec<String> = Vec::new();
    for s in &summaries {
        for m in &s.metrics {
            if !metrics.contains(m) {
                metrics.push(m.clone());
            }
        }
    }
    let metric =
        metric.filter(|m| metrics.iter().any(|k| k == m)).map(str::to_string).or_else(|| metrics.iter().find(|m| *m == "accuracy").cloned()).or_else(|| metrics.first().cloned()).unwrap_or_default();
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for s in &summaries {
        for (zoo, method, role, _) in &s.rows {
            let key = (zoo.clone(), method.clone(), role.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let digits = weightlab_pipeline::metrics::get(&metric).map_or(4, |m| m.digits);
    let rows = keys
        .into_iter()
        .map(|(zoo, method, role)| {
            let cells = summaries.iter().map(|s| s.cell(&zoo, &method, &metric, digits)).collect();
            (zoo, method, role, cells)
        })
        .collect();
    Comparison { metrics, metric, rows }
}

/// The report of `runs` rendered together, in a cache folder keyed by the runs and their
/// reports' times (rendered again when one of them changes).
pub fn combined_report(runs: &[RunEntry]) -> Result<PathBuf, String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for r in runs {
        h.update(r.path.display().to_string().as_bytes());
        let modified = std::fs::metadata(r.path.join("report.html")).and_then(|m| m.modified()).ok();
        h.update(format!("{modified:?}\n").as_bytes());
    }
    let base = weightlab_manifest::files::cache_dir().unwrap_or_else(std::env::temp_dir);
    let out = base.join("serve").join(hex::encode(&h.finalize()[..8]));
    let report = out.join("report.html");
    if !report.is_file() {
        let folders: Vec<PathBuf> = runs.iter().map(|r| r.path.clone()).collect();
        weightlab_pipeline::report::render_runs(&folders, &out, None).map_err(|e| e.to_string())?;
    }
    Ok(report)
}
