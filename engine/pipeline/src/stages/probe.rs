//! Probe stage: in a worker process, fit a probe plugin on the zoo's training models and their
//! labels, predict the held-out models, then score the predictions with the probe-metric
//! registry. Stores `probes.parquet` (every prediction), `probe_scores.parquet` (one row per
//! metric) and what the plugin logged (`log.json`, as a method stage does).
//!
//! Labels come from the zoo's records: the classes a model-tree child was fine-tuned on
//! (multi-label), its parent (single label), its test accuracy or its fine-tuning
//! hyper-parameters (regression). Tree roots are not models of the population and are left
//! out. No plugin sees a figure computed on the test split: for `test-accuracy` the probe
//! learns from the training models' *validation* accuracy (the validation subset split off the
//! training data), and its predictions for the held-out models are scored against their test
//! accuracy — the report says so under the target's table ([`label_source`]).

use std::path::Path;

use weightlab_compute::zoo::Checkpoint;
use weightlab_compute::{Dataset, Side, Zoo};
use weightlab_host::worker::Job;
use weightlab_host::{PluginCode, ProbeTarget, TargetKind, role_name};
use weightlab_manifest::{LabelEmbedding, Loaded, MethodSpec};
use weightlab_results::rows::table_of;
use weightlab_results::{ProbeRow, ProbeScoreRow};

use crate::calls::{limits, request, zoo_view};
use crate::config_check::config_json;
use crate::error::{Error, Result};
use crate::metrics::probe::{self, Predictions};
use crate::output;
use crate::records::ProbeRecord;
use crate::stages::method::{run_job, write_log};

/// The labels of a target for a set of checkpoints.
struct Labelled {
    target: ProbeTarget,
    /// rows × `target.label_columns()`.
    values: Vec<f32>,
}

/// Where the labels of target `name` come from, as the report states it.
pub fn label_source(name: &str) -> &'static str {
    match name {
        "classes" => "the classes each training model was fine-tuned on",
        "parent" => "the tree (foundation model) each training model was fine-tuned from",
        "test-accuracy" => {
            "the training models' validation accuracy (on the validation subset of the training split: no probe sees a test-split figure); predictions are scored against the held-out models' test accuracy"
        }
        "lr" | "epochs" => "each training model's fine-tuning hyper-parameter",
        _ => "the zoo's records",
    }
}

/// Whom labels are for: the probe plugin (training models: nothing from the test split) or
/// the scoring of its predictions (held-out models).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum For {
    Plugin,
    Scoring,
}

/// The target `name` of checkpoints `rows`, with label names from `class_names` and the label
/// set fixed by `all` (every model the probe sees or is scored on).
fn labels(name: &str, checkpoints: &[&Checkpoint], all: &[&Checkpoint], class_names: &[String], whom: For) -> Result<Labelled> {
    let missing = |what: &str| Error::Labels { target: name.to_string(), reason: what.to_string() };
    match name {
        "classes" => {
            let cols = class_names.len();
            let mut values = vec![0.0; checkpoints.len() * cols];
            for (r, c) in checkpoints.iter().enumerate() {
                match &c.classes {
                    Some(set) => set.iter().for_each(|&k| values[r * cols + k] = 1.0),
                    None => values[r * cols..(r + 1) * cols].fill(1.0),
                }
            }
            Ok(Labelled { target: ProbeTarget { name: name.into(), kind: TargetKind::MultiLabel, labels: class_names.to_vec() }, values })
        }
        "parent" => {
            let mut parents: Vec<usize> = all.iter().filter_map(|c| c.parent).collect();
            parents.sort_unstable();
            parents.dedup();
            let values = checkpoints
                .iter()
                .map(|c| c.parent.and_then(|p| parents.iter().position(|&q| q == p)).map(|i| i as f32).ok_or_else(|| missing(&format!("model {} has no parent", c.model))))
                .collect::<Result<Vec<f32>>>()?;
            Ok(Labelled { target: ProbeTarget { name: name.into(), kind: TargetKind::SingleLabel, labels: parents.iter().map(|p| format!("root {p}")).collect() }, values })
        }
        _ => {
            let value = |c: &Checkpoint| -> Option<f32> {
                match name {
                    "test-accuracy" if whom == For::Plugin => c.validation_accuracy,
                    "test-accuracy" => c.test_accuracy,
                    "lr" => c.finetune.map(|f| f.lr as f32),
                    "epochs" => c.finetune.map(|f| f.epochs as f32),
                    _ => None,
                }
            };
            let absent = |c: &Checkpoint| match (name, whom) {
                ("test-accuracy", For::Plugin) => missing(&format!("training model {} has no validation accuracy to learn from (give its dataset a validation subset: `validation = 0.1`)", c.model)),
                _ => missing(&format!("model {} has no such label", c.model)),
            };
            let values = checkpoints.iter().map(|c| value(c).ok_or_else(|| absent(c))).collect::<Result<Vec<f32>>>()?;
            Ok(Labelled { target: ProbeTarget { name: name.into(), kind: TargetKind::Regression, labels: Vec::new() }, values })
        }
    }
}

/// Text embeddings (labels × dim, row-major) of `names`.
fn embed(kind: LabelEmbedding, names: &[String]) -> Result<(Vec<f32>, usize)> {
    match kind {
        LabelEmbedding::OneHot => {
            let n = names.len();
            Ok(((0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect(), n))
        }
        LabelEmbedding::Minilm => {
            let prompts: Vec<String> = names.iter().map(|n| format!("a photo of a {}", n.to_lowercase())).collect();
            let embeddings = crate::text::embeddings(&prompts)?;
            Ok((embeddings.values, embeddings.dim))
        }
    }
}

/// Shuffles the label rows (a control: the labels no longer belong to the weights).
fn shuffle_rows(values: &mut [f32], cols: usize, seed: u64) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let rows = values.len() / cols.max(1);
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5A1F));
    let copy = values.to_vec();
    for (r, &from) in order.iter().enumerate() {
        values[r * cols..(r + 1) * cols].copy_from_slice(&copy[from * cols..(from + 1) * cols]);
    }
}

/// Fits probe `index` of `loaded` (seed `seed`) on zoo `zoo`'s training models in a worker
/// (its plugin's component is `code`) and scores its predictions for the held-out models into
/// `dir`.
pub(crate) fn run(loaded: &Loaded, index: usize, seed: u64, data: &Dataset, zoo: &Zoo, code: &PluginCode, dir: &Path) -> Result<ProbeRecord> {
    let method: MethodSpec = loaded.manifest.method[index].clone();
    let located = |key: &str, message: String| Error::Manifest(crate::config_check::at_method_key(loaded, index, key, message, None));
    let target_name = method.target.clone().ok_or_else(|| located("plugin", format!("method `{}` is a probe without a `target`", method.name)))?;
    output::status("Probing", &format!("\"{}\" ({}) predicts {target_name}, seed {seed}", method.name, method.plugin));
    let zoo_spec = &loaded.manifest.zoo[&method.zoo];
    let (train_rows, heldout_rows) = (zoo.side(Side::Train), zoo.side(Side::Heldout));
    if heldout_rows.is_empty() {
        return Err(located("zoo", format!("probe `{}`: zoo `{}` has no held-out models to predict; give it a `split`", method.name, method.zoo)));
    }
    let of = |rows: &[usize]| rows.iter().map(|&i| &zoo.checkpoints[i]).collect::<Vec<_>>();
    let (train_ckpts, heldout_ckpts) = (of(&train_rows), of(&heldout_rows));
    let all: Vec<&Checkpoint> = train_ckpts.iter().chain(&heldout_ckpts).copied().collect();
    let train = labels(&target_name, &train_ckpts, &all, &data.class_names, For::Plugin)?;
    let truth = labels(&target_name, &heldout_ckpts, &all, &data.class_names, For::Scoring)?;

    // Unseen classes: their columns leave the training labels; the probe scores every
    // class through the embeddings at prediction time.
    let unseen = method.unseen_classes.clone();
    let seen: Vec<usize> = (0..truth.target.labels.len()).filter(|c| !unseen.contains(c)).collect();
    let mut fit_target = train.target.clone();
    let mut fit_values = train.values.clone();
    if !unseen.is_empty() {
        let cols = train.target.labels.len();
        fit_target.labels = seen.iter().map(|&c| train.target.labels[c].clone()).collect();
        fit_values = (0..train_ckpts.len()).flat_map(|r| seen.iter().map(move |&c| (r, c))).map(|(r, c)| train.values[r * cols + c]).collect();
    }
    if method.shuffle_labels {
        shuffle_rows(&mut fit_values, fit_target.label_columns().max(1), seed);
    }
    let (fit_embeddings, all_embeddings, dim) = match method.embed_labels {
        Some(kind) => {
            let (values, dim) = embed(kind, &truth.target.labels)?;
            let fit: Vec<f32> = seen.iter().flat_map(|&c| values[c * dim..(c + 1) * dim].iter().copied()).collect();
            (fit, values, dim)
        }
        None => (Vec::new(), Vec::new(), 0),
    };
    // With embeddings the probe scores every label through them (seen and unseen).
    let predict_labels = if dim > 0 { truth.target.labels.len() } else { 0 };

    let view = zoo_view(&method.zoo, zoo_spec.arch.descriptor().plugin_arch, zoo, &train_rows, data);
    let job = Job::Probe { zoo: view, rows: train_rows.len(), target: fit_target.clone(), embedding_dim: dim, predict_rows: heldout_rows.len(), predict_labels, config: config_json(&method)?, seed };
    let mut payload = zoo.stack(&train_rows);
    payload.extend(&fit_values);
    payload.extend(&fit_embeddings);
    payload.extend(zoo.stack(&heldout_rows));
    if predict_labels > 0 {
        payload.extend(&all_embeddings);
    }
    let request = request(&method.plugin, code, limits(&method.limits), job);
    let (description, outcome) = run_job(loaded, index, code, &request, &payload, "predictions")?;

    // Without embeddings and with unseen classes there is nothing to score them with; the
    // validation refuses that combination, so columns are the seen labels here.
    let cols = fit_target.prediction_columns(if predict_labels > 0 { predict_labels } else { fit_target.labels.len() });
    let predictions = Predictions {
        kind: truth.target.kind,
        cols,
        scores: outcome.samples.clone(),
        truth: truth.values.clone(),
        seen: if predict_labels > 0 { seen.clone() } else { (0..cols).collect() },
        unseen: if predict_labels > 0 { unseen.clone() } else { Vec::new() },
    };
    let scores: Vec<ProbeScoreRow> = probe::for_kind(truth.target.kind)
        .into_iter()
        .map(|m| ProbeScoreRow {
            zoo: method.zoo.clone(),
            method: method.name.clone(),
            plugin: description.name.clone(),
            seed,
            target: target_name.clone(),
            metric: m.key.to_string(),
            value: (m.compute)(&predictions),
            chance: (m.chance)(&predictions),
        })
        .filter(|r| r.value.is_finite() || r.chance.is_finite())
        .collect();
    let label_of = |c: usize| match truth.target.kind {
        TargetKind::Regression => String::new(),
        _ => truth.target.labels.get(c).cloned().unwrap_or_default(),
    };
    let truth_of = |r: usize, c: usize| match truth.target.kind {
        TargetKind::MultiLabel => truth.values[r * truth.target.labels.len() + c] as f64,
        TargetKind::SingleLabel => f64::from(truth.values[r] as usize == c),
        TargetKind::Regression => truth.values[r] as f64,
    };
    let rows: Vec<ProbeRow> = (0..heldout_rows.len())
        .flat_map(|r| (0..cols).map(move |c| (r, c)))
        .map(|(r, c)| ProbeRow {
            zoo: method.zoo.clone(),
            method: method.name.clone(),
            seed,
            target: target_name.clone(),
            model: heldout_ckpts[r].model,
            label: label_of(c),
            label_set: match truth.target.kind {
                TargetKind::Regression => String::new(),
                _ if unseen.contains(&c) => "unseen".into(),
                _ => "seen".into(),
            },
            truth: truth_of(r, c),
            prediction: outcome.samples[r * cols + c] as f64,
        })
        .collect();
    write_log(dir, &outcome)?;
    table_of(&rows).write(dir, "probes")?;
    table_of(&scores).write(dir, "probe_scores")?;
    let summary: Vec<String> = scores.iter().filter(|s| s.value.is_finite()).map(|s| format!("{} {:.3} (chance {:.3})", s.metric, s.value, s.chance)).collect();
    // As a method's "Evaluated" line: the figures without opening the report.
    output::status("Probed", &format!("\"{}\" seed {seed}: {}", method.name, if summary.is_empty() { "no finite score".to_string() } else { summary.join(", ") }));
    output::detail(&format!("fit {:.2}s, predict {:.2}s", outcome.fit_seconds, outcome.sample_seconds));
    Ok(ProbeRecord {
        plugin: description.name.clone(),
        version: description.version.clone(),
        abi: description.abi.clone(),
        role: role_name(description.role).to_string(),
        hash: code.sha256.clone(),
        target: target_name,
        train_models: train_rows.len(),
        heldout_models: heldout_rows.len(),
        fit_seconds: outcome.fit_seconds,
        predict_seconds: outcome.sample_seconds,
        peak_tensor_mib: outcome.peak_tensor_bytes as f64 / (1 << 20) as f64,
        peak_rss_mib: outcome.peak_rss_bytes.map(|b| b as f64 / (1 << 20) as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(model: usize, validation: Option<f32>, test: f32) -> Checkpoint {
        let mut c = Checkpoint::new(model, 0, 1, 0, Side::Train);
        (c.validation_accuracy, c.test_accuracy) = (validation, Some(test));
        c
    }

    #[test]
    fn a_test_accuracy_probe_learns_from_validation_figures_only() {
        let (a, b) = (checkpoint(0, Some(0.61), 0.9), checkpoint(1, Some(0.72), 0.8));
        let all = [&a, &b];
        let seen = labels("test-accuracy", &all, &all, &[], For::Plugin).unwrap();
        assert_eq!(seen.values, [0.61, 0.72], "what the plugin gets: validation accuracy");
        let scored = labels("test-accuracy", &all, &all, &[], For::Scoring).unwrap();
        assert_eq!(scored.values, [0.9, 0.8], "what its predictions are scored against: test accuracy");
        let unknown = checkpoint(2, None, 0.5);
        let e = labels("test-accuracy", &[&unknown], &[&unknown], &[], For::Plugin).err().expect("no validation figure, no label");
        assert!(e.to_string().contains("validation subset"), "{e}");
        assert!(label_source("test-accuracy").contains("validation accuracy"));
    }
}
