//! Report stage: gather every evaluated sample into the run's tables, aggregate with polars,
//! draw the plots and render `report.html`. It runs at the end of every run, also when some
//! methods failed (they are listed in the report), and `weightlab report` re-renders it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use weightlab_manifest::{Plot, StageKind};
use weightlab_report::svg::{self, Series};
use weightlab_report::{Failure, PlotSet, ReportContext, Row};
use weightlab_results::{FailureRow, LogRow, RunRow, SampleRow, ZooRow, rows::table_of};

use crate::executor::Run;

impl Run {
    pub(crate) fn run_report(&mut self) -> Result<()> {
        let mut samples: Vec<SampleRow> = Vec::new();
        let mut logs: Vec<LogRow> = Vec::new();
        let mut plugins: Vec<String> = Vec::new();
        let zoo_names: Vec<String> = self.loaded.manifest.zoo.keys().cloned().collect();
        let mut zoo_rows: Vec<ZooRow> = Vec::new();
        for name in &zoo_names {
            if self.zoo(name).is_err() {
                continue;
            }
            samples.extend(self.reference(name)?.rows);
            let zoo = self.zoo(name)?;
            zoo_rows.extend(super::zoo::zoo_rows(name, zoo));
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
                }
                StageKind::Method { name, seed, .. } => {
                    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("log.json"))?)?;
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
                    let plugin = format!("{} {} (abi {})", s["summary"]["plugin"].as_str().unwrap_or("?"), s["summary"]["version"].as_str().unwrap_or("?"), s["summary"]["abi"].as_str().unwrap_or("?"));
                    if !plugins.contains(&plugin) {
                        plugins.push(plugin);
                    }
                }
                _ => {}
            }
        }

        let out = self.output.clone();
        let samples_df = table_of(&samples).write(&out, "samples")?;
        table_of(&zoo_rows).write(&out, "zoo")?;
        if !logs.is_empty() {
            table_of(&logs).write(&out, "training_log")?;
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
            started: unix(self.started),
            finished: unix(finished),
            seconds,
            status: if failure_rows.is_empty() { "ok".into() } else { format!("{} failed", failure_rows.len()) },
        };
        table_of(std::slice::from_ref(&run)).write(&out, "runs")?;

        let summaries = weightlab_results::summarize(&samples_df)?;
        let mut rows: Vec<Row> = summaries
            .iter()
            .map(|s| Row {
                method: s.method.clone(),
                role: s.role.clone(),
                zoo: s.zoo.clone(),
                seeds: s.seeds,
                samples: s.samples,
                metrics: vec![s.accuracy, s.nn_l2, s.novelty],
                best: Vec::new(),
                best_accuracy: s.best_accuracy,
                rank: s.rank,
                status: "ok".into(),
            })
            .collect();
        for m in &self.loaded.manifest.method {
            if !rows.iter().any(|r| r.method == m.name) {
                let reason = failure_rows.iter().find(|f| f.method == m.name).map(|f| f.reason.lines().next().unwrap_or("").to_string()).unwrap_or_else(|| "not run".into());
                rows.push(Row { method: m.name.clone(), role: "?".into(), zoo: m.zoo.clone(), seeds: 0, samples: 0, metrics: vec![None; 3], best: vec![], best_accuracy: None, rank: 0, status: format!("failed: {reason}") });
            }
        }
        // Reference rows last within each zoo, methods in manifest order.
        let order = |r: &Row| (r.zoo.clone(), r.role == "reference", self.loaded.manifest.method.iter().position(|m| m.name == r.method).unwrap_or(usize::MAX), r.method.clone());
        rows.sort_by_key(order);

        let plots = self.plots(&samples, &logs);
        let m = &self.loaded.manifest;
        let zoos = m.zoo.iter().map(|(name, z)| {
            let arch = weightlab_manifest::validate::arch_kind(&z.arch);
            let params = self.zoos.get(name).map(|zoo| zoo.layout().len()).unwrap_or(0);
            (name.clone(), format!("{} models of {arch} ({params} parameters) on `{}`, split {} train / {} held-out", z.models, z.data, z.split().train, z.split().heldout))
        }).collect();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut ctx = ReportContext {
            title: m.experiment.name.clone(),
            description: m.experiment.description.clone(),
            generated: run.finished.clone(),
            rows,
            metrics: weightlab_report::metrics::METRICS.to_vec(),
            plots,
            failures: failure_rows.iter().map(|f| Failure { stage: f.stage.clone(), method: f.method.clone(), reason: f.reason.clone() }).collect(),
            provenance: vec![
                ("weightlab".into(), run.weightlab_version.clone()),
                ("git commit".into(), run.git_commit.clone()),
                ("manifest".into(), format!("{} (sha256 {})", self.loaded.path.display(), run.manifest_hash)),
                ("seeds".into(), run.seeds.clone()),
                ("plugins".into(), run.plugins.clone()),
                ("compute".into(), format!("libtorch 2.9.0 via burn 0.22 (tch backend), CPU, {cores} cores")),
                ("run time".into(), format!("{seconds:.1} s")),
            ],
            stages: self.timings.clone(),
            manifest: self.loaded.text.clone(),
            zoos,
        };
        ctx.mark_best();
        let template = m.report.template.as_ref().map(|t| self.base_dir().join(t));
        let html = weightlab_report::render(&ctx, template.as_deref())?;
        let tmp = out.join(".report.html.partial");
        std::fs::write(&tmp, html)?;
        std::fs::rename(&tmp, out.join("report.html"))?;
        Ok(())
    }

    fn plots(&self, samples: &[SampleRow], logs: &[LogRow]) -> PlotSet {
        let mut set = PlotSet::default();
        let by_method = |f: &dyn Fn(&SampleRow) -> Option<(f64, f64)>, zoo: &str| -> Vec<Series> {
            let mut groups: BTreeMap<(bool, usize, String), Vec<(f64, f64)>> = BTreeMap::new();
            for r in samples.iter().filter(|r| r.zoo == zoo) {
                if let Some(pt) = f(r) {
                    let pos = self.loaded.manifest.method.iter().position(|m| m.name == r.method).unwrap_or(usize::MAX);
                    groups.entry((r.role == "reference", pos, r.method.clone())).or_default().push(pt);
                }
            }
            groups.into_iter().map(|((_, _, name), points)| Series { name, points }).collect()
        };
        for zoo in self.loaded.manifest.zoo.keys() {
            let suffix = if self.loaded.manifest.zoo.len() > 1 { format!(" — zoo {zoo}") } else { String::new() };
            for plot in &self.loaded.manifest.report.plots {
                match plot {
                    Plot::AccuracyNovelty => {
                        let s = by_method(&|r| Some((r.novelty?, r.accuracy?)), zoo);
                        if !s.is_empty() {
                            set.add(&format!("accuracy-novelty-{zoo}"), "Each point is one model: test accuracy against novelty (1 − max IoU of its test errors with any training checkpoint). Memorizing methods sit at novelty ≈ 0; the question is which methods reach high accuracy at high novelty.", svg::scatter(&format!("Accuracy vs. novelty{suffix}"), "novelty", "test accuracy", &s));
                        }
                    }
                    Plot::NnDistance => {
                        let s = by_method(&|r| Some((r.nn_l2, 0.0)), zoo);
                        set.add(&format!("nn-distance-{zoo}"), "Distribution of the L2 distance from each model to its nearest training checkpoint. The training models' own leave-one-out distances show what \"different model of the same zoo\" looks like.", svg::histogram(&format!("Nearest-neighbour distance{suffix}"), "L2 distance to nearest training checkpoint", &s, 24));
                    }
                    Plot::WeightPca => {
                        let s = by_method(&|r| Some((r.pc1, r.pc2)), zoo);
                        set.add(&format!("weight-pca-{zoo}"), "Weights projected on the first two principal components of the training checkpoints.", svg::scatter(&format!("Weights, PCA of training checkpoints{suffix}"), "PC 1", "PC 2", &s));
                    }
                    Plot::TrainingCurves => {}
                }
            }
        }
        if self.loaded.manifest.report.plots.contains(&Plot::TrainingCurves) && !logs.is_empty() {
            let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for l in logs.iter().filter(|l| l.seed == self.loaded.manifest.experiment.seeds[0]) {
                groups.entry(format!("{}: {}", l.source, l.name)).or_default().push((l.step as f64, l.value));
            }
            let series: Vec<Series> = groups.into_iter().map(|(name, points)| Series { name, points }).collect();
            set.add("training-curves", "Metrics logged by the plugins during fit (first seed).", svg::lines("Training curves", "step", "value", &series));
        }
        set
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

fn unix(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // Civil date from days since the epoch (Howard Hinnant's algorithm), to avoid a date crate.
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
