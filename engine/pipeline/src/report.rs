//! Builds the HTML report from run folders alone — their tables, `manifest.toml` and
//! `stages.json` — so `weightlab report` can re-render a run, or put several runs side by
//! side, without recomputing anything. `weightlab run` ends by rendering with the same code
//! from the tables it has just gathered ([`render`]), without reading them back.

use std::path::{Path, PathBuf};

use weightlab_manifest::Manifest;
use weightlab_manifest::sweep::Expansion;
use weightlab_report::metrics::MetricColumn;
use weightlab_report::svg::{self, IntervalSeries};
use weightlab_report::{Ablation, Failure, PlotSet, ReportContext, Row, ScoreRow, ScoreTable, TreeDiscovery, VariantLine};
use weightlab_results::rows::{read_samples, read_table};
use weightlab_results::{FailureRow, FinetuneRow, LogRow, ParameterRow, ProbeRow, ProbeScoreRow, RunRow, SampleRow, SimilarityRow, Stat, TreeRow, ZooRow};

use crate::error::{Error, Result, io};
use crate::metrics::{self, Direction, Metric};
use crate::plots::{self, Tables};

/// One run's tables: read back from its folder ([`render_runs`]), or handed over by the
/// report stage that has just gathered them ([`render`]).
pub(crate) struct RunTables {
    pub(crate) manifest: Manifest,
    /// What the manifest's sweeps expanded into.
    pub(crate) expansion: Expansion,
    pub(crate) manifest_text: String,
    pub(crate) run: RunRow,
    pub(crate) samples: Vec<SampleRow>,
    pub(crate) similarity: Vec<SimilarityRow>,
    pub(crate) parameters: Vec<ParameterRow>,
    pub(crate) finetune: Vec<FinetuneRow>,
    pub(crate) logs: Vec<LogRow>,
    pub(crate) failures: Vec<FailureRow>,
    pub(crate) zoo: Vec<ZooRow>,
    pub(crate) probe_scores: Vec<ProbeScoreRow>,
    pub(crate) probes: Vec<ProbeRow>,
    pub(crate) trees: Vec<TreeRow>,
    pub(crate) stages: Vec<(String, f64, bool)>,
}

fn read_run(dir: &Path) -> Result<RunTables> {
    let manifest_path = dir.join("manifest.toml");
    let manifest_text = weightlab_manifest::files::read_manifest(&manifest_path)
        .map_err(|e| Error::Format { path: dir.to_path_buf(), reason: format!("not a run folder of weightlab (reading {}: {e})", manifest_path.display()) })?;
    let (manifest, expansion) = weightlab_manifest::expand_text(&manifest_text).map_err(crate::error::format(&manifest_path))?;
    let unfinished = |table: &str| Error::Unfinished(format!("{} has no {table}.parquet: is it a finished weightlab run?", dir.display()));
    let run = read_table::<RunRow>(dir, "runs")?.ok_or_else(|| unfinished("runs"))?.into_iter().next().ok_or_else(|| Error::Unfinished(format!("{}: empty runs table", dir.display())))?;
    let stages = crate::store::read_file(&dir.join("stages.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    Ok(RunTables {
        samples: read_samples(dir)?.ok_or_else(|| unfinished("samples"))?,
        similarity: read_table(dir, "similarity")?.unwrap_or_default(),
        parameters: read_table(dir, "parameters")?.unwrap_or_default(),
        finetune: read_table(dir, "finetune")?.unwrap_or_default(),
        logs: read_table(dir, "training_log")?.unwrap_or_default(),
        failures: read_table(dir, "failures")?.unwrap_or_default(),
        zoo: read_table(dir, "zoo")?.unwrap_or_default(),
        probe_scores: read_table(dir, "probe_scores")?.unwrap_or_default(),
        probes: read_table(dir, "probes")?.unwrap_or_default(),
        trees: read_table(dir, "trees")?.unwrap_or_default(),
        manifest,
        expansion,
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
    let folders: Vec<String> = dirs.iter().map(|d| d.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    render(&runs, &folders, output, template)
}

/// Renders `output/report.html` from runs' tables in memory; `folders` name each run when
/// their experiment names repeat.
pub(crate) fn render(runs: &[RunTables], folders: &[String], output: &Path, template: Option<&Path>) -> Result<PathBuf> {
    let multi = runs.len() > 1;
    let names: Vec<String> = runs
        .iter()
        .zip(folders)
        .map(|(r, folder)| {
            let repeated = runs.iter().filter(|o| o.run.experiment == r.run.experiment).count() > 1;
            if repeated { folder.clone() } else { r.run.experiment.clone() }
        })
        .collect();
    let label = |i: usize, method: &str| {
        if multi { format!("{}: {method}", names[i]) } else { method.to_string() }
    };

    let mut samples = Vec::new();
    let mut similarity = Vec::new();
    let mut parameters = Vec::new();
    let mut finetune = Vec::new();
    let mut logs = Vec::new();
    let mut failures = Vec::new();
    let mut probe_scores = Vec::new();
    let mut probes = Vec::new();
    let mut trees = Vec::new();
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
        parameters.extend(r.parameters.iter().cloned().map(|mut p| {
            p.method = label(i, &p.method);
            p
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
        probe_scores.extend(r.probe_scores.iter().cloned().map(|mut p| {
            p.method = label(i, &p.method);
            p
        }));
        probes.extend(r.probes.iter().cloned().map(|mut p| {
            p.method = label(i, &p.method);
            p
        }));
        trees.extend(r.trees.iter().map(|t| TreeDiscovery { zoo: label(i, &t.zoo), models: t.models, true_trees: t.true_trees, found_trees: t.found_trees, ari: t.ari }));
    }

    // Columns: the registry's shown metrics that some row has, in registry order.
    let columns: Vec<&Metric> = metrics::REGISTRY.iter().copied().filter(|m| m.shown && samples.iter().any(|r| r.metrics.contains_key(m.key))).collect();
    let summaries = weightlab_results::summarize(&samples, &metrics::aggregations(&columns), Some("accuracy"));
    let mut rows: Vec<Row> = summaries
        .into_iter()
        .map(|s| Row {
            method: s.method,
            role: s.role,
            zoo: s.zoo,
            seeds: s.seeds,
            samples: s.samples,
            metrics: s.metrics,
            best: Vec::new(),
            tied: Vec::new(),
            best_accuracy: s.best_accuracy,
            rank: s.rank,
            status: "ok".into(),
        })
        .collect();
    for (i, r) in runs.iter().enumerate() {
        for m in r.manifest.method.iter().filter(|m| !m.is_probe()) {
            let name = label(i, &m.name);
            if !rows.iter().any(|row| row.method == name) {
                let failure = failures.iter().find(|f| f.method == name);
                let reason = failure.map(|f| f.reason.lines().next().unwrap_or("").to_string()).unwrap_or_else(|| "not run (a stage it needs failed)".into());
                // The manifest's role, else the one the run recorded with the failure (its
                // plugin's), else unknown: a method that failed before any stage of its own.
                let recorded = r.failures.iter().find(|f| f.method == m.name && !f.role.is_empty()).map(|f| f.role.clone());
                let role = m.role.map(|r| r.name().to_string()).or(recorded);
                rows.push(Row {
                    method: name,
                    role: role.unwrap_or_else(|| "?".into()),
                    zoo: m.zoo.clone(),
                    seeds: 0,
                    samples: 0,
                    metrics: vec![None; columns.len()],
                    best: vec![],
                    tied: vec![],
                    best_accuracy: None,
                    rank: 0,
                    status: format!("failed: {reason}"),
                });
            }
        }
    }
    let position = |m: &str| order.iter().position(|o| o == m).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| (r.zoo.clone(), r.role == "reference", position(&r.method), r.method.clone()));

    // One colour per method in every plot of this report, the same in every report.
    // Generators first, then the other methods, the zoo's own models, and a sweep's variants
    // last (each group by name): with more methods than colours, those compared keep theirs.
    let mut ranked: Vec<(u8, &str)> = rows
        .iter()
        .map(|r| {
            let rank = match r.role.as_str() {
                _ if r.method.contains('[') => 3,
                "generator" => 0,
                "reference" => 2,
                _ => 1,
            };
            (rank, r.method.as_str())
        })
        .chain(probe_scores.iter().map(|p| (1, p.method.as_str())))
        .collect();
    ranked.sort();
    weightlab_report::svg::assign_colours(ranked.into_iter().map(|(_, m)| m));
    let mut ablations = Vec::new();
    let mut variants = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let label = |name: &str| label(i, name);
        ablations.extend(ablations_of(&r.expansion, &label, &rows, &columns));
        variants.extend(r.expansion.variants.iter().map(|v| VariantLine {
            section: v.section.clone(),
            name: label(&v.name),
            base: v.base.clone(),
            params: v.params.iter().map(|p| format!("{} = {}", p.key, p.display())).collect::<Vec<_>>().join(", "),
        }));
    }

    let first = &runs[0];
    let tables = Tables { samples: &samples, similarity: &similarity, parameters: &parameters, finetune: &finetune, logs: &logs, position: &position };
    let computed: Vec<&str> = metrics::REGISTRY.iter().map(|m| m.key).filter(|k| samples.iter().any(|r| r.metrics.contains_key(*k))).collect();
    let (plots, plot_notes) = draw_plots(&first.manifest, &tables, &computed);
    let zoos = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.manifest.zoo.iter().map(move |(name, z)| {
                let ckpts: Vec<&ZooRow> = r.zoo.iter().filter(|c| &c.zoo == name).collect();
                if ckpts.is_empty() {
                    let reason = r
                        .failures
                        .iter()
                        .find(|f| f.stage == format!("zoo {name}") || f.stage.starts_with(&format!("zoo {name} part ")) || f.stage == format!("data {}", z.data))
                        .map(|f| format!("its stage failed: {}", f.reason.lines().next().unwrap_or_default()));
                    return (label(i, name), format!("no checkpoints — {}", reason.unwrap_or_else(|| "its stage did not finish (see Failures)".into())));
                }
                let accs: Vec<f64> = ckpts.iter().filter_map(|c| c.test_accuracy).collect();
                let losses: Vec<f64> = ckpts.iter().map(|c| c.test_loss).filter(|l| l.is_finite()).collect();
                let mean = if !accs.is_empty() {
                    format!(", mean test accuracy {:.3}", accs.iter().sum::<f64>() / accs.len() as f64)
                } else if !losses.is_empty() {
                    format!(", mean test SDF error (MSE) {:.5}", losses.iter().sum::<f64>() / losses.len() as f64)
                } else {
                    String::new()
                };
                let arch = z.arch.descriptor().name;
                let models = |side: &str| ckpts.iter().filter(|c| c.side == side).map(|c| c.model).collect::<std::collections::BTreeSet<_>>().len();
                let family = r.manifest.data.get(&z.data).and_then(|d| d.tasks.as_ref()).map_or(String::new(), |t| {
                    format!(
                        "; a `{}` task family of {} tasks: {} training, {} held-out, {} out-of-distribution, {} support examples per class",
                        format!("{:?}", t.family).to_lowercase(),
                        t.count,
                        t.train(),
                        t.heldout,
                        t.ood,
                        t.shots
                    )
                });
                (
                    label(i, name),
                    format!("{} checkpoints of {} {arch} models on `{}` (split {} train / {} held-out models){family}{mean}", ckpts.len(), z.models, z.data, models("train"), models("heldout")),
                )
            })
        })
        .collect();
    let mut provenance = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let p = if multi { format!("{}: ", names[i]) } else { String::new() };
        let run = &r.run;
        provenance.push((format!("{p}weightlab"), format!("{} (git {})", run.weightlab_version, run.git_commit)));
        provenance.push((format!("{p}manifest sha256"), run.manifest_hash.clone()));
        provenance.push((format!("{p}seeds"), run.seeds.clone()));
        provenance.push((format!("{p}plugins"), run.plugins.clone()));
        provenance.push((format!("{p}run"), format!("{} → {} ({:.1} s), {}", run.started, run.finished, run.seconds, run.status)));
        let compute = if run.compute.is_empty() { "not recorded (a run made before weightlab recorded where stages ran)".to_string() } else { run.compute.clone() };
        provenance.push((format!("{p}compute"), compute));
    }
    let (frontier, frontier_plots) = frontier_of(runs, &samples, &label);
    let mut ctx = ReportContext {
        title: if multi { names.join(" vs ") } else { first.manifest.experiment.name.clone() },
        description: first.manifest.experiment.description.clone(),
        generated: crate::stages::utc(std::time::SystemTime::now()),
        rows,
        metrics: columns.iter().map(|m| column(m)).collect(),
        plots,
        plot_notes,
        failures,
        provenance,
        stages: runs.iter().enumerate().flat_map(|(i, r)| r.stages.iter().map(move |(s, t, c)| (label(i, s), *t, *c))).collect(),
        manifest: runs.iter().map(|r| r.manifest_text.clone()).collect::<Vec<_>>().join("\n# ----\n"),
        zoos,
        probes: probe_tables(&probe_scores, &position)
            .into_iter()
            .map(|mut t| {
                t.plots = probe_plots(&probes, &t.zoo, &t.target, &position);
                t
            })
            .collect(),
        transfer: transfer_tables(&finetune, &position),
        trees,
        variants,
        ablations,
        frontier,
        frontier_plots,
        points: points_json(&samples, &columns),
        has_methods: false,
    };
    ctx.has_methods = ctx.rows.iter().any(|r| r.role != "reference");
    ctx.mark_best();
    let html = weightlab_report::render(&ctx, template)?;
    std::fs::create_dir_all(output).map_err(io("creating", output))?;
    write_figures(output, &ctx, &columns)?;
    let path = output.join("report.html");
    let tmp = output.join(".report.html.partial");
    std::fs::write(&tmp, html).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("moving into place", &path))?;
    Ok(path)
}

/// Writes the report's figures beside it: `summary.csv` (a row per method: mean and 95 %
/// t-interval half-width of each metric over seeds), `scores.csv` with probes, transfer or
/// model trees (a row per table, method and metric) and, when there is a noise frontier,
/// `frontier.csv` — the numbers the docs quote, in a form a diff and a test can read.
fn write_figures(output: &Path, ctx: &ReportContext, columns: &[&Metric]) -> Result<()> {
    // The declarations of the metrics the tables hold, for readers outside weightlab (the
    // Python package attaches them to its DataFrames and recomputes the summary with them).
    let declared: Vec<serde_json::Value> = columns
        .iter()
        .map(|m| {
            let aggregation = match m.aggregation {
                weightlab_results::Aggregation::Mean => "mean",
                weightlab_results::Aggregation::Max => "max",
            };
            serde_json::json!({ "key": m.key, "label": m.label, "unit": m.unit, "direction": direction(m.direction), "digits": m.digits, "aggregation": aggregation, "help": m.help })
        })
        .collect();
    let path = output.join("metrics.json");
    let text = serde_json::to_string_pretty(&serde_json::json!({ "metrics": declared })).map_err(|source| Error::Json { what: "the report's metric list".into(), source })?;
    std::fs::write(&path, text + "\n").map_err(io("writing", &path))?;
    let number = |v: Option<f64>| v.filter(|v| v.is_finite()).map(|v| format!("{v}")).unwrap_or_default();
    let mut header: Vec<String> = ["zoo", "method", "role", "seeds", "samples", "status"].map(String::from).to_vec();
    for m in columns {
        header.push(m.key.to_string());
        header.push(format!("{}_ci95", m.key));
    }
    let records: Vec<Vec<String>> = ctx
        .rows
        .iter()
        .map(|r| {
            let mut record = vec![r.zoo.clone(), r.method.clone(), r.role.clone(), r.seeds.to_string(), r.samples.to_string(), if r.status == "ok" { "ok".into() } else { "failed".into() }];
            for stat in &r.metrics {
                record.push(number(stat.map(|s| s.mean)));
                record.push(number(stat.and_then(|s| s.ci95)));
            }
            record
        })
        .collect();
    weightlab_results::write_csv(output, "summary", &header, &records)?;
    // Probe, transfer and tree figures, long form: one row per table, method and metric.
    let scores: Vec<Vec<String>> = ctx
        .probes
        .iter()
        .chain(&ctx.transfer)
        .flat_map(|t| {
            t.rows.iter().flat_map(move |r| {
                t.metrics.iter().enumerate().filter_map(move |(k, m)| {
                    let v = r.values.get(k).copied().flatten()?;
                    Some(vec![
                        t.zoo.clone(),
                        t.target.clone(),
                        r.method.clone(),
                        r.plugin.clone(),
                        r.seeds.to_string(),
                        m.key.clone(),
                        number(Some(v.mean)),
                        number(v.ci95),
                        number(r.chance.get(k).copied().flatten()),
                    ])
                })
            })
        })
        .chain(ctx.trees.iter().map(|t| vec![t.zoo.clone(), "trees".into(), "single-linkage".into(), String::new(), "1".into(), "ari".into(), number(Some(t.ari)), String::new(), String::new()]))
        .collect();
    let scores_path = output.join("scores.csv");
    if scores.is_empty() {
        let _ = std::fs::remove_file(&scores_path);
    } else {
        let header: Vec<String> = ["zoo", "target", "method", "plugin", "seeds", "metric", "mean", "ci95", "chance"].map(String::from).to_vec();
        weightlab_results::write_csv(output, "scores", &header, &scores)?;
    }
    let frontier = output.join("frontier.csv");
    if ctx.frontier.is_empty() {
        let _ = std::fs::remove_file(&frontier);
        return Ok(());
    }
    let header: Vec<String> =
        ["zoo", "method", "role", "axis", "position", "quality", "value", "noise_value", "margin", "margin_ci95", "seeds_in_range", "seeds", "verdict"].map(String::from).to_vec();
    let records: Vec<Vec<String>> = ctx
        .frontier
        .iter()
        .map(|f| {
            let verdict = serde_json::to_value(f.verdict).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            vec![
                f.zoo.clone(),
                f.method.clone(),
                f.role.clone(),
                f.axis.clone(),
                number(Some(f.x)),
                f.quality.clone(),
                number(Some(f.value)),
                number(f.noise_value),
                number(f.margin),
                number(f.ci95),
                f.seeds_in_range.to_string(),
                f.seeds.to_string(),
                verdict,
            ]
        })
        .collect();
    Ok(weightlab_results::write_csv(output, "frontier", &header, &records)?)
}

/// Every sample row as compact JSON for the report's script (a plotted point's `data-i` is its
/// index here): `{"metrics": [[key, label, digits]…], "rows": [[method, zoo, seed, sample,
/// [value or null…]]…]}`. `</` is escaped so the text can sit in a `<script>` element.
fn points_json(samples: &[SampleRow], columns: &[&Metric]) -> String {
    let metrics: Vec<serde_json::Value> = columns.iter().map(|m| serde_json::json!([m.key, m.label, m.digits])).collect();
    let rows: Vec<serde_json::Value> = samples
        .iter()
        .map(|r| {
            let values: Vec<Option<f64>> = columns.iter().map(|m| r.metric(m.key).filter(|v| v.is_finite())).collect();
            serde_json::json!([r.method, r.zoo, r.seed, r.sample, values])
        })
        .collect();
    serde_json::json!({ "metrics": metrics, "rows": rows }).to_string().replace("</", "<\\/")
}

/// The axes methods are placed on against the noise frontier, when computed.
const FRONTIER_AXES: [&str; 3] = ["novelty", "nn_l2_aligned", "nn_chamfer"];

/// Every method that is not `noise` against the frontier the runs' `noise` methods trace in
/// its zoo ([`weightlab_results::noise_frontier`]), on each axis that was computed; and one plot
/// per zoo and axis: the curve, and each method at its mean position with its margin's
/// interval as an error bar.
fn frontier_of(runs: &[RunTables], samples: &[SampleRow], label: &dyn Fn(usize, &str) -> String) -> (Vec<weightlab_results::FrontierRow>, PlotSet) {
    let mut noise = Vec::new();
    let mut placed: Vec<(String, String)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        for m in r.manifest.method.iter().filter(|m| !m.is_probe()) {
            let name = label(i, &m.name);
            if m.plugin == "noise" {
                noise.push(name);
            } else if let Some(row) = samples.iter().find(|s| s.method == name) {
                placed.push((name, row.role.clone()));
            }
        }
    }
    let noise: Vec<&str> = noise.iter().map(String::as_str).collect();
    let placed: Vec<(&str, &str)> = placed.iter().map(|(m, r)| (m.as_str(), r.as_str())).collect();
    let axes: Vec<&str> = FRONTIER_AXES.iter().copied().filter(|axis| samples.iter().any(|s| s.metrics.contains_key(*axis))).collect();
    let rows: Vec<weightlab_results::FrontierRow> = axes.iter().flat_map(|axis| weightlab_results::noise_frontier(samples, &noise, crate::stages::TRAIN_REFERENCE, &placed, axis)).collect();
    let mut plots = PlotSet::default();
    let mut drawn: Vec<(&str, &str)> = rows.iter().map(|r| (r.zoo.as_str(), r.axis.as_str())).collect();
    drawn.dedup();
    for (zoo, axis) in drawn {
        let Some(curve) = weightlab_results::curve(samples, zoo, &noise, crate::stages::TRAIN_REFERENCE, axis) else {
            continue;
        };
        let mut series = vec![weightlab_report::svg::IntervalSeries { name: weightlab_report::svg::FRONTIER.into(), points: curve.points.iter().map(|&(x, y)| (x, y, None)).collect() }];
        series.extend(
            rows.iter()
                .filter(|r| r.zoo == zoo && r.axis == axis && r.role == "generator")
                .map(|r| weightlab_report::svg::IntervalSeries { name: r.method.clone(), points: vec![(r.x, r.value, r.ci95)] }),
        );
        let axis_label = metrics::get(axis).map_or(axis.to_string(), |m| m.label.to_string());
        let quality_label = metrics::get(curve.quality).map_or(curve.quality.to_string(), |m| m.label.to_string());
        let bounds = if curve.higher_is_better { (0.0, 1.0) } else { (0.0, f64::INFINITY) };
        let svg = weightlab_report::svg::interval_lines(&format!("{quality_label} against the noise frontier — zoo {zoo}"), &axis_label, &quality_label, &series, false, bounds);
        let caption = format!(
            "The noise frontier on `{axis}`: noise of each σ (and the training checkpoints at 0), joined in order; each generator at its mean position over seeds, its bar the 95 % interval of its margin over the curve. {}",
            if curve.higher_is_better { "Above the line: better than noise at equal position." } else { "Below the line: a lower loss than noise at equal position." }
        );
        plots.add(&format!("frontier-{zoo}-{axis}"), &caption, svg);
    }
    (rows, plots)
}

/// Metrics drawn against every swept key (the memorization study's two axes); the ranked table
/// holds every metric.
const ABLATION_PLOTS: [&str; 2] = ["accuracy", "novelty"];

/// One ablation per swept method of a run: its variants' summary rows ranked by every metric,
/// and accuracy and novelty against each swept key (one line per value of the other keys;
/// the x axis logarithmic when the values are positive and span 30× or more).
fn ablations_of(expansion: &Expansion, label: &dyn Fn(&str) -> String, rows: &[Row], columns: &[&Metric]) -> Vec<Ablation> {
    let mut bases: Vec<&str> = Vec::new();
    for v in expansion.variants.iter().filter(|v| v.section == "method") {
        if !bases.contains(&v.base.as_str()) {
            bases.push(&v.base);
        }
    }
    bases
        .into_iter()
        .map(|base| {
            let variants: Vec<_> = expansion.variants.iter().filter(|v| v.section == "method" && v.base == base).collect();
            let row_of = |name: &str| rows.iter().find(|r| r.method == label(name));
            let mut keys: Vec<(String, String)> = Vec::new();
            for p in variants.iter().flat_map(|v| &v.params) {
                if !keys.iter().any(|(k, _)| *k == p.key) {
                    keys.push((p.key.clone(), p.label.clone()));
                }
            }
            let metric_rows: Vec<ScoreRow> = variants
                .iter()
                .map(|v| {
                    let row = row_of(&v.name);
                    ScoreRow {
                        method: label(&v.name),
                        plugin: v.params.iter().map(|p| format!("{}={}", p.label, p.display())).collect::<Vec<_>>().join(", "),
                        seeds: row.map_or(0, |r| r.seeds),
                        values: row.map_or_else(|| vec![None; columns.len()], |r| r.metrics.clone()),
                        chance: vec![None; columns.len()],
                        best: Vec::new(),
                        tied: Vec::new(),
                        ranks: Vec::new(),
                    }
                })
                .collect();
            let mut table =
                ScoreTable { zoo: String::new(), target: "ablation".into(), labels: None, metrics: columns.iter().map(|m| column(m)).collect(), rows: metric_rows, plots: PlotSet::default() };
            let ranks: Vec<Vec<Option<u32>>> =
                (0..columns.len()).map(|m| weightlab_report::ranks_of(direction(columns[m].direction), &table.rows.iter().map(|r| r.values[m].map(|s| s.mean)).collect::<Vec<_>>())).collect();
            for (i, row) in table.rows.iter_mut().enumerate() {
                row.ranks = ranks.iter().map(|per_metric| per_metric[i]).collect();
            }
            let mut plots = PlotSet::default();
            for (key, key_label) in &keys {
                for metric in ABLATION_PLOTS {
                    let Some(m) = columns.iter().position(|c| c.key == metric) else { continue };
                    // One line per combination of the other swept values.
                    let mut lines: Vec<IntervalSeries> = Vec::new();
                    for (v, row) in variants.iter().zip(&table.rows) {
                        let (Some(x), Some(stat)) = (v.params.iter().find(|p| &p.key == key).and_then(|p| p.number()), row.values[m]) else { continue };
                        let others: Vec<String> = v.params.iter().filter(|p| &p.key != key).map(|p| format!("{}={}", p.label, p.display())).collect();
                        let name = if others.is_empty() { base.to_string() } else { others.join(", ") };
                        match lines.iter_mut().find(|l| l.name == name) {
                            Some(l) => l.points.push((x, stat.mean, stat.ci95)),
                            None => lines.push(IntervalSeries { name, points: vec![(x, stat.mean, stat.ci95)] }),
                        }
                    }
                    if lines.iter().all(|l| l.points.len() < 2) {
                        continue;
                    }
                    let xs: Vec<f64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
                    let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
                    let log_x = lo > 0.0 && hi / lo >= 30.0;
                    let name = &columns[m].label;
                    // Accuracy and novelty are shares: their bars stay within [0, 1].
                    let svg = svg::interval_lines(&format!("{name} against {key_label}: {}", label(base)), key, name, &lines, log_x, (0.0, 1.0));
                    let caption = format!("{name} of `{}`'s variants against `{key}` (mean ± 95 % interval over seeds){}.", label(base), if log_x { ", log scale" } else { "" });
                    plots.add(&format!("ablation-{}-{}-{metric}", slug(base), slug(key)), &caption, svg);
                }
            }
            Ablation { base: label(base), keys: keys.into_iter().map(|(k, _)| k).collect(), table, plots }
        })
        .collect()
}

/// An HTML-id-safe form of a name.
fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// How the report shows a registry metric.
fn column(m: &Metric) -> MetricColumn {
    MetricColumn { key: m.key.into(), label: m.label.into(), unit: m.unit.into(), direction: direction(m.direction).into(), digits: m.digits, help: m.help.into() }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Higher => "higher",
        Direction::Lower => "lower",
        Direction::None => "none",
    }
}

/// The plots of one probe target: a regression target's predictions against the truth (every
/// held-out model, every seed; the diagonal is a perfect probe), a label target's average
/// precision per label (seen labels, then unseen ones scored zero-shot; mean over seeds).
fn probe_plots(rows: &[ProbeRow], zoo: &str, target: &str, position: &dyn Fn(&str) -> usize) -> PlotSet {
    let mut set = PlotSet::default();
    let here: Vec<&ProbeRow> = rows.iter().filter(|r| r.zoo == zoo && r.target == target && r.truth.is_finite() && r.prediction.is_finite()).collect();
    let mut methods: Vec<&str> = here.iter().map(|r| r.method.as_str()).collect();
    methods.sort_by_key(|m| (position(m), m.to_string()));
    methods.dedup();
    if here.is_empty() {
        return set;
    }
    let id = format!("probe-{zoo}-{target}");
    if here.iter().all(|r| r.label.is_empty()) {
        let series: Vec<svg::Series> = methods.iter().map(|m| svg::Series::new(*m, here.iter().filter(|r| r.method == *m).map(|r| (r.truth, r.prediction)).collect())).collect();
        let svg = svg::scatter_diagonal(&format!("Predicted vs. true {target} — zoo {zoo}"), &format!("true {target}"), &format!("predicted {target}"), &series);
        set.add(&id, &format!("Each point is one held-out model at one seed: the probe's prediction of `{target}` against its true value. A perfect probe puts every point on the diagonal; one that ignores the weights, on a horizontal line."), svg);
        return set;
    }
    let mut labels: Vec<(bool, String)> = here.iter().map(|r| (r.label_set == "unseen", r.label.clone())).collect();
    labels.sort();
    labels.dedup();
    let series: Vec<svg::Series> = methods
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let points = labels
                .iter()
                .enumerate()
                .filter_map(|(j, (_, label))| {
                    let mut seeds: Vec<u64> = here.iter().filter(|r| r.method == *m).map(|r| r.seed).collect();
                    seeds.sort();
                    seeds.dedup();
                    let aps: Vec<f64> = seeds
                        .iter()
                        .filter_map(|seed| {
                            // The figure the `map` metric averages (sklearn's definition, ties together).
                            let (scores, truth): (Vec<f32>, Vec<bool>) =
                                here.iter().filter(|r| r.method == *m && r.seed == *seed && &r.label == label).map(|r| (r.prediction as f32, r.truth > 0.5)).unzip();
                            Some(weightlab_compute::metrics::probing::average_precision(&scores, &truth)).filter(|ap| ap.is_finite())
                        })
                        .collect();
                    // Methods side by side within a label's column.
                    let offset = (k as f64 - (methods.len() as f64 - 1.0) / 2.0) * 0.12;
                    (!aps.is_empty()).then(|| (j as f64 + offset, aps.iter().sum::<f64>() / aps.len() as f64))
                })
                .collect();
            svg::Series::new(*m, points)
        })
        .collect();
    let names: Vec<String> = labels.iter().enumerate().map(|(j, (unseen, l))| format!("{j}: {l}{}", if *unseen { " (unseen)" } else { "" })).collect();
    let svg = svg::scatter(&format!("Average precision per label — {target}, zoo {zoo}"), "label (index)", "average precision", &series);
    set.add(&id, &format!("Average precision of ranking the held-out models by each label's score, mean over seeds, one column per label — {}.", names.join(", ")), svg);
    set
}

/// One table per (zoo, target) of the probe runs: each probe method's metrics over seeds (mean
/// ± 95 % t-interval) beside the chance level, columns in registry order.
fn probe_tables(scores: &[ProbeScoreRow], position: &dyn Fn(&str) -> usize) -> Vec<ScoreTable> {
    let mut targets: Vec<(String, String)> = scores.iter().map(|s| (s.zoo.clone(), s.target.clone())).collect();
    targets.sort();
    targets.dedup();
    targets
        .into_iter()
        .map(|(zoo, target)| {
            let here: Vec<&ProbeScoreRow> = scores.iter().filter(|s| s.zoo == zoo && s.target == target).collect();
            let metrics: Vec<&metrics::probe::ProbeMetric> = metrics::probe::PROBE_REGISTRY.iter().copied().filter(|m| here.iter().any(|s| s.metric == m.key && s.value.is_finite())).collect();
            let rows = in_manifest_order(here.iter().map(|s| (s.method.clone(), s.plugin.clone())), position)
                .into_iter()
                .map(|(method, plugin)| {
                    let mine: Vec<&&ProbeScoreRow> = here.iter().filter(|s| s.method == method).collect();
                    let seeds = mine.iter().map(|s| s.seed).collect::<std::collections::BTreeSet<_>>().len() as u32;
                    let per_metric = |key: &str| mine.iter().filter(|s| s.metric == key).copied().copied().collect::<Vec<&ProbeScoreRow>>();
                    let values = metrics
                        .iter()
                        .map(|m| {
                            let all = per_metric(m.key);
                            let finite: Vec<f64> = all.iter().map(|s| s.value).filter(|v| v.is_finite()).collect();
                            (!finite.is_empty()).then(|| Stat::of_seeds(&finite, (all.len() - finite.len()) as u32))
                        })
                        .collect();
                    let chance = metrics
                        .iter()
                        .map(|m| {
                            let c: Vec<f64> = per_metric(m.key).iter().map(|s| s.chance).filter(|v| v.is_finite()).collect();
                            (!c.is_empty()).then(|| c.iter().sum::<f64>() / c.len() as f64)
                        })
                        .collect();
                    ScoreRow { method, plugin, seeds, values, chance, best: Vec::new(), tied: Vec::new(), ranks: Vec::new() }
                })
                .collect();
            let columns = metrics
                .iter()
                .map(|m| MetricColumn { key: m.key.into(), label: m.label.into(), unit: String::new(), direction: direction(m.direction).into(), digits: 3, help: m.help.into() })
                .collect();
            let labels = Some(crate::stages::probe::label_source(&target).to_string());
            ScoreTable { zoo, target, labels, metrics: columns, rows, plots: PlotSet::default() }
        })
        .collect()
}

/// Distinct (method, detail) pairs in the manifest's method order.
fn in_manifest_order(pairs: impl Iterator<Item = (String, String)>, position: &dyn Fn(&str) -> usize) -> Vec<(String, String)> {
    let mut methods: Vec<(String, String)> = pairs.collect();
    methods.sort_by_key(|(m, _)| (position(m), m.clone()));
    methods.dedup();
    methods
}

/// One table per task-family zoo of the fine-tuning runs: each method's accuracy on its target
/// tasks — held-out, then out-of-distribution — after each fine-tuning step count (0: zero-shot),
/// mean ± 95 % t-interval over seeds (each seed: the mean over its samples).
fn transfer_tables(finetune: &[FinetuneRow], position: &dyn Fn(&str) -> usize) -> Vec<ScoreTable> {
    let family: Vec<&FinetuneRow> = finetune.iter().filter(|r| !r.group.is_empty() && r.accuracy.is_some()).collect();
    let mut zoos: Vec<String> = family.iter().map(|r| r.zoo.clone()).collect();
    zoos.sort();
    zoos.dedup();
    zoos.into_iter()
        .map(|zoo| {
            let here: Vec<&&FinetuneRow> = family.iter().filter(|r| r.zoo == zoo).collect();
            let mut cells: Vec<(u8, String, usize)> = here.iter().map(|r| (u8::from(r.group != "heldout"), r.group.clone(), r.steps)).collect();
            cells.sort();
            cells.dedup();
            let rows = in_manifest_order(here.iter().map(|r| (r.method.clone(), r.role.clone())), position)
                .into_iter()
                .map(|(method, role)| {
                    let mine: Vec<&&&FinetuneRow> = here.iter().filter(|r| r.method == method).collect();
                    let seeds: std::collections::BTreeSet<u64> = mine.iter().map(|r| r.seed).collect();
                    let values = cells
                        .iter()
                        .map(|(_, group, steps)| {
                            let per_seed: Vec<f64> = seeds
                                .iter()
                                .filter_map(|&seed| {
                                    let v: Vec<f64> = mine.iter().filter(|r| r.seed == seed && &r.group == group && r.steps == *steps).filter_map(|r| r.accuracy).collect();
                                    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                                })
                                .collect();
                            (!per_seed.is_empty()).then(|| Stat::of_seeds(&per_seed, 0))
                        })
                        .collect();
                    ScoreRow { method, plugin: role, seeds: seeds.len() as u32, values, chance: vec![None; cells.len()], best: Vec::new(), tied: Vec::new(), ranks: Vec::new() }
                })
                .collect();
            let metrics = cells
                .iter()
                .map(|(_, group, steps)| {
                    let place = if group == "heldout" { "held-out tasks" } else { "out-of-distribution tasks" };
                    let when = if *steps == 0 { "zero-shot".to_string() } else { format!("{steps} steps") };
                    MetricColumn {
                        key: format!("{group}-{steps}"),
                        label: format!("{} · {when}", if group == "heldout" { "in-dist." } else { "OOD" }),
                        unit: String::new(),
                        direction: "higher".into(),
                        digits: 3,
                        help: format!("test accuracy on {place} after {steps} fine-tuning steps on the task's support set"),
                    }
                })
                .collect();
            ScoreTable { zoo, target: "transfer".into(), labels: None, metrics, rows, plots: PlotSet::default() }
        })
        .collect()
}

/// The plots `[report] plots` selects, drawn per zoo (zoos in name order), then the
/// report-wide ones; and a note for each plot left out. The note says why: a metric it draws
/// that `[evaluate] metrics` leaves out (not selected), or — for a plot the manifest asks for
/// by name — a metric that does not apply to this run's models or a table the run does not
/// have. A default selection leaves plots that do not apply out silently.
fn draw_plots(manifest: &Manifest, tables: &Tables, computed: &[&str]) -> (PlotSet, Vec<String>) {
    let mut set = PlotSet::default();
    let mut notes = Vec::new();
    let mut zoos: Vec<String> = tables.samples.iter().map(|s| s.zoo.clone()).collect();
    zoos.sort();
    zoos.dedup();
    let asked = manifest.report.plots.is_some();
    let listed = manifest.evaluate.metrics.as_deref();
    let selected = plots::selected(manifest.report.plots.as_deref());
    let mut drawable = Vec::new();
    for plot in selected {
        let missing: Vec<&str> = plot.needs.iter().copied().filter(|k| !computed.contains(k)).collect();
        if !missing.is_empty() {
            let applies = |key: &str| metrics::get(key).map(|m| m.applies);
            if let Some(left_out) = missing.iter().find(|k| listed.is_some_and(|l| !l.iter().any(|m| m == *k))) {
                notes.push(format!("`{}` is not drawn: it needs the metric `{left_out}`, which `[evaluate] metrics` leaves out.", plot.id));
            } else if !asked || tables.samples.is_empty() {
                // Nothing asked by name, or nothing scored at all (Failures says why).
            } else if let Some((key, models)) = missing.iter().find_map(|k| applies(k).filter(|a| *a != metrics::Applies::Any).map(|a| (k, a.models()))) {
                notes.push(format!("`{}` does not apply to this run: it draws `{key}`, which is computed for {models} only.", plot.id));
            } else {
                notes.push(format!("`{}` is not drawn: no model of this run has a `{}` value (see Failures).", plot.id, missing[0]));
            }
        } else if let Some(table) = plot.tables.iter().find(|t| !tables.has(t)) {
            if asked {
                notes.push(format!("`{}` is not drawn: this run has no `{table}` table. {}", plot.id, plot.description));
            }
        } else {
            drawable.push(plot);
        }
    }
    for zoo in &zoos {
        let suffix = if zoos.len() > 1 { format!(" — zoo {zoo}") } else { String::new() };
        for plot in drawable.iter().filter(|p| p.per_zoo) {
            if let Some(figure) = (plot.render)(tables, zoo, &suffix) {
                set.add(&format!("{}-{zoo}", plot.id), &figure.caption, figure.svg);
            }
        }
    }
    for plot in drawable.iter().filter(|p| !p.per_zoo) {
        if let Some(figure) = (plot.render)(tables, "", "") {
            set.add(plot.id, &figure.caption, figure.svg);
        }
    }
    (set, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_missing_a_metric_or_table_are_explained_not_drawn() {
        let manifest: Manifest =
            toml::from_str("[experiment]\nname = \"t\"\n[evaluate]\nmetrics = [\"accuracy\", \"nn_l2\"]\n[report]\nplots = [\"accuracy-novelty\", \"accuracy-distance\", \"finetune\"]\n").unwrap();
        let row = |sample: usize, acc: f64, l2: f64| SampleRow {
            method: "m".into(),
            role: "baseline".into(),
            zoo: "z".into(),
            seed: 0,
            sample,
            nn_index: 0,
            pc1: 0.0,
            pc2: 0.0,
            file: String::new(),
            metrics: [("accuracy".to_string(), acc), ("nn_l2".to_string(), l2)].into(),
        };
        let samples = [row(0, 0.5, 1.0), row(1, 0.7, 2.0)];
        let position = |_: &str| 0;
        let tables = Tables { samples: &samples, similarity: &[], parameters: &[], finetune: &[], logs: &[], position: &position };
        let (set, notes) = draw_plots(&manifest, &tables, &["accuracy", "nn_l2"]);
        let ids: Vec<&str> = set.plots.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(ids, ["accuracy-distance-z"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("`accuracy-novelty` is not drawn: it needs the metric `novelty`"), "{notes:?}");
        assert!(notes[1].contains("`finetune` is not drawn: this run has no `finetune` table") && notes[1].contains("finetune_steps"), "{notes:?}");

        // No `[evaluate] metrics`: a metric missing from the rows does not apply to the models.
        let asked: Manifest = toml::from_str("[experiment]\nname = \"t\"\n[report]\nplots = [\"field-novelty\", \"accuracy-distance\"]\n").unwrap();
        let (_, notes) = draw_plots(&asked, &tables, &["accuracy", "nn_l2", "loss"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("`field-novelty` does not apply to this run: it draws `nn_chamfer`, which is computed for neural fields only"), "{notes:?}");
        // The default selection leaves what does not apply out without a word.
        let default: Manifest = toml::from_str("[experiment]\nname = \"t\"\n").unwrap();
        let (set, notes) = draw_plots(&default, &tables, &["accuracy", "nn_l2"]);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(set.plots.iter().any(|p| p.0 == "accuracy-distance-z"));
    }
}
