//! Report stage: gather every evaluated sample into the run's tables, aggregate with polars,
//! draw the plots and render `report.html`. It runs at the end of every run, also when some
//! methods failed (they are listed in the report), and `weightlab report` re-renders it.

use anyhow::{Context, Result};
use weightlab_manifest::StageKind;
use weightlab_results::{FailureRow, FinetuneRow, LogRow, MessageRow, RunRow, SampleRow, SimilarityRow, ZooRow, rows::table_of};

use crate::executor::Run;

impl Run {
    pub(crate) fn run_report(&mut self) -> Result<()> {
        let mut samples: Vec<SampleRow> = Vec::new();
        let mut similarity: Vec<SimilarityRow> = Vec::new();
        let mut finetune: Vec<FinetuneRow> = Vec::new();
        let mut logs: Vec<LogRow> = Vec::new();
        let mut messages: Vec<MessageRow> = Vec::new();
        let mut plugins: Vec<String> = Vec::new();
        let zoo_names: Vec<String> = self.loaded.manifest.zoo.keys().cloned().collect();
        let mut zoo_rows: Vec<ZooRow> = Vec::new();
        for name in &zoo_names {
            if self.zoo(name).is_err() {
                continue;
            }
            let reference = self.reference(name)?;
            samples.extend(reference.rows);
            similarity.extend(reference.similarity);
            let spec = self.loaded.manifest.zoo[name].clone();
            let zoo = self.zoo(name)?;
            zoo_rows.extend(super::zoo::zoo_rows(name, zoo, &spec));
        }
        for stage in self.plan.stages.clone() {
            if !self.store.is_done(&stage) {
                continue;
            }
            let dir = self.store.dir(&stage);
            match &stage.kind {
                StageKind::Evaluate { .. } => {
                    let rows: Vec<SampleRow> = serde_json::from_slice(&std::fs::read(dir.join("rows.json"))?).context("reading evaluated rows")?;
                    samples.extend(rows);
                    // Stages evaluated before heatmaps existed have no similarity file.
                    if let Ok(bytes) = std::fs::read(dir.join("similarity.json")) {
                        similarity.extend(serde_json::from_slice::<Vec<SimilarityRow>>(&bytes).context("reading similarity rows")?);
                    }
                    if let Ok(bytes) = std::fs::read(dir.join("finetune.json")) {
                        finetune.extend(serde_json::from_slice::<Vec<FinetuneRow>>(&bytes).context("reading fine-tuning rows")?);
                    }
                }
                StageKind::Method { name, seed, .. } => {
                    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("log.json"))?)?;
                    for text in log["messages"].as_array().into_iter().flatten() {
                        messages.push(MessageRow { source: name.clone(), seed: *seed, text: text.as_str().unwrap_or_default().to_string() });
                    }
                    for m in log["metrics"].as_array().into_iter().flatten() {
                        logs.push(LogRow {
                            source: name.clone(),
                            seed: *seed,
                            name: m["name"].as_str().unwrap_or_default().to_string(),
                            step: m["step"].as_u64().unwrap_or(0),
                            value: m["value"].as_f64().unwrap_or(f64::NAN),
                        });
                    }
                    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("stage.json"))?)?;
                    let summary = &s["summary"];
                    let plugin = format!(
                        "{} {} (abi {}, sha256 {})",
                        summary["plugin"].as_str().unwrap_or("?"),
                        summary["version"].as_str().unwrap_or("?"),
                        summary["abi"].as_str().unwrap_or("?"),
                        summary["hash"].as_str().unwrap_or("?")
                    );
                    if !plugins.contains(&plugin) {
                        plugins.push(plugin);
                    }
                }
                _ => {}
            }
        }

        let out = self.output.clone();
        table_of(&samples).write(&out, "samples")?;
        table_of(&zoo_rows).write(&out, "zoo")?;
        if !similarity.is_empty() {
            table_of(&similarity).write(&out, "similarity")?;
        }
        if !finetune.is_empty() {
            table_of(&finetune).write(&out, "finetune")?;
        }
        if !logs.is_empty() {
            table_of(&logs).write(&out, "training_log")?;
        }
        if !messages.is_empty() {
            table_of(&messages).write(&out, "messages")?;
        }
        let failure_rows: Vec<FailureRow> = self.failures.clone();
        if failure_rows.is_empty() {
            for ext in ["parquet", "arrow"] {
                let _ = std::fs::remove_file(out.join(format!("failures.{ext}")));
            }
        } else {
            table_of(&failure_rows).write(&out, "failures")?;
        }
        let finished = std::time::SystemTime::now();
        let seconds = finished.duration_since(self.started).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let run = RunRow {
            experiment: self.loaded.manifest.experiment.name.clone(),
            manifest_hash: manifest_hash(&self.loaded.text),
            seeds: format!("{:?}", self.loaded.manifest.experiment.seeds),
            weightlab_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git_commit(self.base_dir()),
            plugins: plugins.join(", "),
            started: utc(self.started),
            finished: utc(finished),
            seconds,
            status: if failure_rows.is_empty() { "ok".into() } else { format!("{} failed", failure_rows.len()) },
        };
        table_of(std::slice::from_ref(&run)).write(&out, "runs")?;

        let stages: Vec<(String, f64, bool)> = self.timings.clone();
        std::fs::write(out.join("stages.json"), serde_json::to_vec_pretty(&stages)?)?;
        self.render_report()
    }

    /// Renders report.html from the run's tables (the manifest's template, if it names one).
    pub(crate) fn render_report(&self) -> Result<()> {
        let template = self.loaded.manifest.report.template.as_ref().map(|t| self.base_dir().join(t));
        crate::report_builder::render_runs(std::slice::from_ref(&self.output), &self.output, template.as_deref())?;
        Ok(())
    }
}

fn manifest_hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

fn git_commit(dir: &std::path::Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// "YYYY-MM-DD HH:MM:SS UTC" of a time (civil date from days since the epoch, Howard
/// Hinnant's algorithm, to avoid a date crate for one line of provenance).
pub fn utc(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}
