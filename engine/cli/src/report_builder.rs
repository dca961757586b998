//! Builds the HTML report from run folders alone — their tables, `manifest.toml` and
//! `stages.json` — so `weightlab report` can re-render a run, or put several runs side by
//! side, without recomputing anything. `weightlab run` ends by calling the same code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use weightlab_manifest::{Manifest, Plot};
use weightlab_report::svg::{self, RowGroup, Series};
use weightlab_report::{Failure, PlotSet, ReportContext, Row};
use weightlab_results::{FailureRow, FinetuneRow, LogRow, RunRow, SampleRow, SimilarityRow, ZooRow, read_parquet, rows::rows_of, rows::table_of};

/// One run folder, read back.
struct RunTables {
    manifest: Manifest,
    manifest_text: String,
    run: RunRow,
    samples: Vec<SampleRow>,
    similarity: Vec<SimilarityRow>,
    finetune: Vec<FinetuneRow>,
    logs: Vec<LogRow>,
    failures: Vec<FailureRow>,
    zoo: Vec<ZooRow>,
    stages: Vec<(String, f64, bool)>,
}

fn read_rows<T: serde::de::DeserializeOwned>(dir: &Path, table: &str, required: bool) -> Result<Vec<T>> {
    let path = dir.join(format!("{table}.parquet"));
    if !path.is_file() {
        return if required { Err(anyhow!("{} is missing: is {} a finished weightlab run?", path.display(), dir.display())) } else { Ok(Vec::new()) };
    }
    let df = read_parquet(&path)?;
    rows_of(&df).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn read_run(dir: &Path) -> Result<RunTables> {
    let manifest_text = std::fs::read_to_string(dir.join("manifest.toml")).with_context(|| format!("{} has no manifest.toml: not a weightlab run folder", dir.display()))?;
    let manifest: Manifest = toml::from_str(&manifest_text).with_context(|| format!("{}/manifest.toml", dir.display()))?;
    let run = read_rows::<RunRow>(dir, "runs", true)?.into_iter().next().ok_or_else(|| anyhow!("{}: empty runs table", dir.display()))?;
    let stages = std::fs::read(dir.join("stages.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    Ok(RunTables {
        samples: read_rows(dir, "samples", true)?,
        similarity: read_rows(dir, "similarity", false)?,
        finetune: read_rows(dir, "finetune", false)?,
        logs: read_rows(dir, "training_log", false)?,
        failures: read_rows(dir, "failures", false)?,
        zoo: read_rows(dir, "zoo", false)?,
        manifest,
        manifest_text,
        run,
        stages,
    })
}

/// Renders `output/report.html` from the run folders `dirs`, with the built-in template or the
/// `report.html.j2` in `template`. With several runs, method names are prefixed with the run's
/// experiment name (or folder name when those repeat).
pub fn render_runs(dirs: &[PathBuf], output: &Path, template: Option<&Path>) -> Result<PathBuf> {
    let runs: Vec<RunTables> = dirs.iter().map(|d| read_run(d)).collect::<Result<_>>()?;
    let multi = runs.len() > 1;
    let names: Vec<String> = runs
        .iter()
        .zip(dirs)
        .map(|(r, d)| {
            let repeated = runs.iter().filter(|o| o.run.experiment == r.run.experiment).count() > 1;
            if repeated { d.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default() } else { r.run.experiment.clone() }
        })
        .collect();
    let label = |i: usize, method: &str| {
        if multi { format!("{}: {method}", names[i]) } else { method.to_string() }
    };

    let mut samples = Vec::new();
    let mut similarity = Vec::new();
    let mut finetune = Vec::new();
    let mut logs = Vec::new();
    let mut failures = Vec::new();
    let mut order: Vec<String> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        samples.extend(r.samples.iter().cloned().map(|mut s| {
            s.method = label(i, &s.method);
            s
        }));
        similarity.extend(r.similarity.iter().cloned().map(|mut s| {
            s.method = label(i, &s.method);
            s
        }));
        finetune.extend(r.finetune.iter().cloned().map(|mut f| {
            f.method = label(i, &f.method);
            f
        }));
        logs.extend(r.logs.iter().cloned().map(|mut l| {
            l.source = label(i, &l.source);
            l
        }));
        failures.extend(r.failures.iter().map(|f| Failure { stage: label(i, &f.stage), method: label(i, &f.method), reason: f.reason.clone() }));
        order.extend(r.manifest.method.iter().map(|m| label(i, &m.name)));
    }

    let df = table_of(&samples).into_frame()?;
    let summaries = weightlab_results::summarize(&df)?;
    let mut rows: Vec<Row> = summaries
        .iter()
        .map(|s| Row {
            method: s.method.clone(),
            role: s.role.clone(),
            zoo: s.zoo.clone(),
            seeds: s.seeds,
            samples: s.samples,
            metrics: s.metrics.clone(),
            best: Vec::new(),
            best_accuracy: s.best_accuracy,
            rank: s.rank,
            status: "ok".into(),
        })
        .collect();
    for (i, r) in runs.iter().enumerate() {
        for m in &r.manifest.method {
            let name = label(i, &m.name);
            if !rows.iter().any(|row| row.method == name) {
                let reason = failures.iter().find(|f| f.method == name).map(|f| f.reason.lines().next().unwrap_or("").to_string()).unwrap_or_else(|| "not run".into());
                rows.push(Row {
                    method: name,
                    role: "?".into(),
                    zoo: m.zoo.clone(),
                    seeds: 0,
                    samples: 0,
                    metrics: vec![None; weightlab_results::aggregate::METRIC_COLUMNS.len()],
                    best: vec![],
                    best_accuracy: None,
                    rank: 0,
                    status: format!("failed: {reason}"),
                });
            }
        }
    }
    let position = |m: &str| order.iter().position(|o| o == m).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| (r.zoo.clone(), r.role == "reference", position(&r.method), r.method.clone()));

    let first = &runs[0];
    let plots = plots(&first.manifest, &Tables { samples: &samples, similarity: &similarity, finetune: &finetune, logs: &logs }, &position);
    let zoos = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.manifest.zoo.iter().map(move |(name, z)| {
                let ckpts: Vec<&ZooRow> = r.zoo.iter().filter(|c| &c.zoo == name).collect();
                let accs: Vec<f64> = ckpts.iter().filter_map(|c| c.test_accuracy).collect();
                let losses: Vec<f64> = ckpts.iter().map(|c| c.test_loss).filter(|l| l.is_finite()).collect();
                let mean = if !accs.is_empty() {
                    format!(", mean test accuracy {:.3}", accs.iter().sum::<f64>() / accs.len() as f64)
                } else if !losses.is_empty() {
                    format!(", mean test SDF error (MSE) {:.5}", losses.iter().sum::<f64>() / losses.len() as f64)
                } else {
                    String::new()
                };
                let arch = weightlab_manifest::validate::arch_kind(&z.arch);
                (label(i, name), format!("{} checkpoints of {} {arch} models on `{}` (split {} train / {} held-out){mean}", ckpts.len(), z.models, z.data, z.split().train, z.split().heldout))
            })
        })
        .collect();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut provenance = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let p = if multi { format!("{}: ", names[i]) } else { String::new() };
        let run = &r.run;
        provenance.push((format!("{p}weightlab"), format!("{} (git {})", run.weightlab_version, run.git_commit)));
        provenance.push((format!("{p}manifest sha256"), run.manifest_hash.clone()));
        provenance.push((format!("{p}seeds"), run.seeds.clone()));
        provenance.push((format!("{p}plugins"), run.plugins.clone()));
        provenance.push((format!("{p}run"), format!("{} → {} ({:.1} s), {}", run.started, run.finished, run.seconds, run.status)));
    }
    provenance.push(("compute".into(), format!("libtorch 2.9.0 via burn 0.22 (tch backend), CPU, {cores} cores")));
    let mut ctx = ReportContext {
        title: if multi { names.join(" vs ") } else { first.manifest.experiment.name.clone() },
        description: first.manifest.experiment.description.clone(),
        generated: crate::stages::utc(std::time::SystemTime::now()),
        rows,
        metrics: weightlab_report::metrics::METRICS.to_vec(),
        plots,
        failures,
        provenance,
        stages: runs.iter().enumerate().flat_map(|(i, r)| r.stages.iter().map(move |(s, t, c)| (label(i, s), *t, *c))).collect(),
        manifest: runs.iter().map(|r| r.manifest_text.clone()).collect::<Vec<_>>().join("\n# ----\n"),
        zoos,
    };
    ctx.mark_best();
    let html = weightlab_report::render(&ctx, template)?;
    std::fs::create_dir_all(output)?;
    let path = output.join("report.html");
    let tmp = output.join(".report.html.partial");
    std::fs::write(&tmp, html)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Heatmap rows of one zoo: references first, then methods in manifest order; first seed of
/// each method; at most `MAX_ROWS_PER_METHOD` samples each.
fn heatmap_groups(similarity: &[SimilarityRow], zoo: &str, position: &dyn Fn(&str) -> usize) -> (Vec<RowGroup>, String) {
    const MAX_ROWS_PER_METHOD: usize = 16;
    let mut by_method: BTreeMap<(usize, String), BTreeMap<usize, Vec<(usize, f64)>>> = BTreeMap::new();
    let mut first_seed: BTreeMap<&str, u64> = BTreeMap::new();
    for r in similarity.iter().filter(|r| r.zoo == zoo) {
        let s = first_seed.entry(r.method.as_str()).or_insert(r.seed);
        *s = (*s).min(r.seed);
    }
    for r in similarity.iter().filter(|r| r.zoo == zoo && first_seed.get(r.method.as_str()) == Some(&r.seed)) {
        let rank = match r.method.as_str() {
            "train (leave-one-out)" => 0,
            "held-out" => 1,
            m => position(m).saturating_add(2),
        };
        let key = (rank, r.method.clone());
        by_method.entry(key).or_default().entry(r.sample).or_default().push((r.checkpoint, r.similarity));
    }
    let kind = similarity.iter().find(|r| r.zoo == zoo).map(|r| r.kind.clone()).unwrap_or_default();
    let groups = by_method
        .into_iter()
        .map(|((_, name), samples)| {
            let rows = samples
                .into_values()
                .take(MAX_ROWS_PER_METHOD)
                .map(|mut cells| {
                    cells.sort_by_key(|c| c.0);
                    cells.into_iter().map(|c| c.1).collect()
                })
                .collect();
            RowGroup { name, rows }
        })
        .collect();
    (groups, kind)
}

/// The rows plots are drawn from, across all runs being reported.
struct Tables<'a> {
    samples: &'a [SampleRow],
    similarity: &'a [SimilarityRow],
    finetune: &'a [FinetuneRow],
    logs: &'a [LogRow],
}

/// Mean test accuracy (or SDF loss) of each method's fine-tuned samples per step count.
fn finetune_series(rows: &[FinetuneRow], zoo: &str, position: &dyn Fn(&str) -> usize) -> (Vec<Series>, bool) {
    let accuracy = rows.iter().any(|r| r.accuracy.is_some());
    let mut groups: BTreeMap<(usize, String), BTreeMap<usize, (f64, usize)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.zoo == zoo) {
        let v = if accuracy { r.accuracy.unwrap_or(f64::NAN) } else { r.loss };
        let cell = groups.entry((position(&r.method), r.method.clone())).or_default().entry(r.steps).or_insert((0.0, 0));
        cell.0 += v;
        cell.1 += 1;
    }
    let series = groups.into_iter().map(|((_, name), by_step)| Series { name, points: by_step.into_iter().map(|(k, (sum, n))| (k as f64, sum / n.max(1) as f64)).collect() }).collect();
    (series, accuracy)
}

fn plots(manifest: &Manifest, tables: &Tables, position: &dyn Fn(&str) -> usize) -> PlotSet {
    let Tables { samples, similarity, finetune, logs } = *tables;
    let mut set = PlotSet::default();
    let zoos: Vec<String> = {
        let mut z: Vec<String> = samples.iter().map(|s| s.zoo.clone()).collect();
        z.sort();
        z.dedup();
        z
    };
    let by_method = |f: &dyn Fn(&SampleRow) -> Option<(f64, f64)>, zoo: &str| -> Vec<Series> {
        let mut groups: BTreeMap<(bool, usize, String), Vec<(f64, f64)>> = BTreeMap::new();
        for r in samples.iter().filter(|r| r.zoo == zoo) {
            if let Some(pt) = f(r) {
                groups.entry((r.role == "reference", position(&r.method), r.method.clone())).or_default().push(pt);
            }
        }
        groups.into_iter().map(|((_, _, name), points)| Series { name, points }).collect()
    };
    for zoo in &zoos {
        let suffix = if zoos.len() > 1 { format!(" — zoo {zoo}") } else { String::new() };
        for plot in &manifest.report.plots {
            match plot {
                Plot::AccuracyNovelty => {
                    let s = by_method(&|r| Some((r.novelty?, r.accuracy?)), zoo);
                    if !s.is_empty() {
                        set.add(&format!("accuracy-novelty-{zoo}"), "Each point is one model: test accuracy against novelty (1 − max IoU of its test errors with any training checkpoint). Memorizing methods sit at novelty ≈ 0; the question is which methods reach high accuracy at high novelty.", svg::scatter(&format!("Accuracy vs. novelty{suffix}"), "novelty", "test accuracy", &s));
                    }
                }
                Plot::NnDistance => {
                    let s = by_method(&|r| Some((r.nn_l2, 0.0)), zoo);
                    set.add(&format!("nn-distance-{zoo}"), "Distribution of the L2 distance from each model to its nearest training checkpoint. The training models' own leave-one-out distances show what \"a different model of the same zoo\" looks like.", svg::histogram(&format!("Nearest-neighbour distance{suffix}"), "L2 distance to nearest training checkpoint", &s, 24));
                }
                Plot::WeightPca => {
                    let s = by_method(&|r| Some((r.pc1, r.pc2)), zoo);
                    set.add(
                        &format!("weight-pca-{zoo}"),
                        "Weights projected on the first two principal components of the training checkpoints.",
                        svg::scatter(&format!("Weights, PCA of training checkpoints{suffix}"), "PC 1", "PC 2", &s),
                    );
                }
                Plot::SimilarityHeatmap => {
                    let (groups, kind) = heatmap_groups(similarity, zoo, position);
                    if !groups.is_empty() {
                        let what = if kind == "weight-cosine" { "cosine similarity of the weights" } else { "IoU of test errors" };
                        set.add(
                            &format!("similarity-{zoo}"),
                            &format!("Each row is one model (first seed, up to 16 per method), each column one training checkpoint; colour = {what}. A memorizing method shows one dark cell per row, like the training models' own block (whose diagonal is each model itself)."),
                            svg::heatmap(&format!("Similarity to training checkpoints{suffix}"), "training checkpoint", "model (grouped by method)", &groups),
                        );
                    }
                }
                Plot::Finetune => {
                    let (series, accuracy) = finetune_series(finetune, zoo, position);
                    if !series.is_empty() {
                        let y = if accuracy { "mean test accuracy" } else { "mean SDF error (MSE)" };
                        set.add(
                            &format!("finetune-{zoo}"),
                            "Few-shot transfer: every sample fine-tuned with the zoo's recipe for the given number of steps (fresh Adam), averaged over samples and seeds. A generator worth using as an initialisation stays above random-init.",
                            svg::lines(&format!("Fine-tuning from each method's samples{suffix}"), "fine-tuning steps", y, &series),
                        );
                    }
                }
                Plot::TrainingCurves => {}
            }
        }
    }
    if manifest.report.plots.contains(&Plot::TrainingCurves) && !logs.is_empty() {
        let first_seed = logs.iter().map(|l| l.seed).min().unwrap_or(0);
        let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for l in logs.iter().filter(|l| l.seed == first_seed) {
            groups.entry(format!("{}: {}", l.source, l.name)).or_default().push((l.step as f64, l.value));
        }
        let series: Vec<Series> = groups.into_iter().map(|(name, points)| Series { name, points }).collect();
        set.add("training-curves", "Metrics logged by the plugins during fit (first seed).", svg::lines("Training curves", "step", "value", &series));
    }
    set
}

#[cfg(test)]
mod tests {
    #[test]
    fn declared_metrics_match_the_aggregated_columns() {
        let declared: Vec<&str> = weightlab_report::metrics::METRICS.iter().map(|m| m.key).collect();
        assert_eq!(declared, weightlab_results::aggregate::METRIC_COLUMNS.to_vec());
    }
}
