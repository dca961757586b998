//! Reference stage: score a zoo's own models once per run folder, in their own cached stage —
//! the training checkpoints each against the others (leave-one-out, as Zeng et al. do) and
//! the held-out models against the training checkpoints. Their rows are the reference lines
//! of the report; their test predictions are what every evaluation of the zoo compares with.
//!
//! Also here: [`score`], which every stage that scores models uses, and [`ZooFrame`], what
//! scoring against one zoo needs.

use std::path::Path;

use weightlab_compute::metrics::{self, Pca};
use weightlab_compute::{Dataset, Side, Zoo};
use weightlab_results::{ParameterRow, SampleRow, SimilarityRow, rows::samples_table, rows::table_of};

use super::{HELDOUT_REFERENCE, TRAIN_REFERENCE};
use crate::error::Result;
use crate::metrics::{Metric, Scoring};
use crate::output;
use crate::records::ReferenceRecord;
use crate::store::{read_tensor, write_tensor};

/// Training checkpoints a heatmap shows at most (the first ones).
const HEATMAP_COLUMNS: usize = 64;

/// Parameters the parameter heatmap shows: those that vary most across the training
/// checkpoints.
const SHOWN_PARAMETERS: usize = 48;

/// Models per scoring whose parameter values are stored for the heatmap (the first ones).
const PARAMETER_ROWS: usize = 4;

/// What scoring models against one zoo needs, derived from the zoo (and, for `predictions`,
/// read from its reference stage). Kept in memory for the run.
pub(crate) struct ZooFrame {
    /// Weights of the training checkpoints, stacked (checkpoints × P).
    pub train: Vec<f32>,
    /// The zoo's 2-D PCA view.
    pub pca: Pca,
    /// Flat indices of the parameters the parameter heatmap shows, ascending.
    pub shown_parameters: Vec<usize>,
    /// Test predictions of the training checkpoints (classifiers; empty otherwise).
    pub predictions: Vec<Vec<u8>>,
}

impl ZooFrame {
    pub(crate) fn new(zoo: &Zoo) -> Self {
        let p = zoo.layout().len();
        let train = zoo.stack(&zoo.side(Side::Train));
        let pca = Pca::fit(&train, p);
        let shown_parameters = most_varying(&train, p, SHOWN_PARAMETERS);
        Self { train, pca, shown_parameters, predictions: Vec::new() }
    }
}

/// The `count` coordinates with the largest variance over the rows of `weights` (n × p),
/// ascending; ties and constant coordinates come last.
fn most_varying(weights: &[f32], p: usize, count: usize) -> Vec<usize> {
    let n = (weights.len() / p.max(1)) as f64;
    let variance = |j: usize| {
        let column = weights.iter().skip(j).step_by(p.max(1)).map(|&v| v as f64);
        let mean = column.clone().sum::<f64>() / n.max(1.0);
        column.map(|v| (v - mean).powi(2)).sum::<f64>() / n.max(1.0)
    };
    let mut order: Vec<(usize, f64)> = (0..p).map(|j| (j, variance(j))).filter(|(_, v)| *v > 0.0).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut shown: Vec<usize> = order.into_iter().take(count).map(|(j, _)| j).collect();
    shown.sort_unstable();
    shown
}

/// The tables one scoring produces.
pub(crate) struct Scored {
    pub samples: Vec<SampleRow>,
    pub similarity: Vec<SimilarityRow>,
    pub parameters: Vec<ParameterRow>,
}

impl Scored {
    /// Writes the three tables into a stage folder.
    pub(crate) fn write(&self, dir: &Path, metrics: &[&Metric]) -> Result<()> {
        let keys: Vec<&str> = metrics.iter().map(|m| m.key).collect();
        samples_table(&self.samples, &keys).write(dir, "samples")?;
        table_of(&self.similarity).write(dir, "similarity")?;
        table_of(&self.parameters).write(dir, "parameters")?;
        Ok(())
    }

    fn extend(&mut self, other: Scored) {
        self.samples.extend(other.samples);
        self.similarity.extend(other.similarity);
        self.parameters.extend(other.parameters);
    }
}

/// Which rows a scoring produces: the method, its role and seed.
pub(crate) struct RowsOf<'a> {
    pub zoo: &'a str,
    pub method: &'a str,
    pub role: &'a str,
    pub seed: u64,
}

/// One row per scored model with every metric of `metrics` that applies, each model's
/// similarity to the first training checkpoints (IoU of test errors for classifiers, weight
/// cosine otherwise) and the shown parameters of the first models beside their nearest
/// checkpoints'.
pub(crate) fn score(who: &RowsOf, s: &Scoring, metrics: &[&Metric], frame: &ZooFrame) -> Scored {
    let applicable: Vec<&&Metric> = metrics.iter().filter(|m| s.applies(m.applies)).collect();
    let values: Vec<(&str, Vec<f64>)> = applicable.iter().map(|m| (m.key, (m.compute)(s))).collect();
    let positions = frame.pca.project(s.models);
    let nearest = s.nearest();
    let rows = (0..s.len())
        .map(|i| SampleRow {
            method: who.method.to_string(),
            role: who.role.to_string(),
            zoo: who.zoo.to_string(),
            seed: who.seed,
            sample: i,
            nn_index: nearest[i].index as i64,
            pc1: positions[i].0,
            pc2: positions[i].1,
            file: String::new(),
            metrics: values.iter().map(|(k, v)| (k.to_string(), v[i])).collect(),
        })
        .collect();
    let columns = (s.train.len() / s.p.max(1)).min(HEATMAP_COLUMNS);
    let (kind, labels, predictions): (_, &[u8], &[Vec<u8>]) = if s.classification() { ("error-iou", s.labels(), s.predictions()) } else { ("weight-cosine", &[], &[]) };
    let reference = s.reference_predictions.unwrap_or(predictions);
    let mut similarity = Vec::new();
    for (i, m) in s.models.chunks_exact(s.p.max(1)).enumerate() {
        for (j, checkpoint) in s.train.chunks_exact(s.p.max(1)).take(columns).enumerate() {
            let value = if s.classification() { metrics::error_iou(&predictions[i], &reference[j], labels) } else { metrics::cosine(m, checkpoint) };
            similarity.push(SimilarityRow { zoo: who.zoo.to_string(), method: who.method.to_string(), seed: who.seed, sample: i, checkpoint: j, similarity: value, kind: kind.to_string() });
        }
    }
    let p = s.p.max(1);
    let mut parameters = Vec::new();
    // With the aligned distance computed, each model is shown beside its aligned nearest
    // checkpoint with its hidden units matched to it — a permuted copy then looks like the copy
    // it is; otherwise beside its raw nearest checkpoint.
    let aligned = applicable.iter().any(|m| m.key == "nn_l2_aligned").then(|| (s.nearest_aligned(), weightlab_compute::arch::align::Aligner::new(s.arch)));
    for (i, m) in s.models.chunks_exact(p).enumerate().take(PARAMETER_ROWS) {
        let index = aligned.as_ref().map_or(nearest[i].index, |(n, _)| n[i].index);
        // No nearest checkpoint (a one-checkpoint zoo scored leave-one-out): the model alone.
        let checkpoint = index.checked_mul(p).and_then(|start| s.train.get(start..start.checked_add(p)?));
        let shown: std::borrow::Cow<[f32]> = match (&aligned, checkpoint) {
            (Some((_, aligner)), Some(c)) => {
                // The better of the matched and the units' own order, as the distance takes it.
                let moved = aligner.align(m, c);
                let l2 = |x: &[f32]| x.iter().zip(c).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>();
                if l2(&moved) <= l2(m) { std::borrow::Cow::Owned(moved) } else { std::borrow::Cow::Borrowed(m) }
            }
            _ => std::borrow::Cow::Borrowed(m),
        };
        for (source, values) in [("model", Some(&*shown)), ("nearest", checkpoint)] {
            let Some(values) = values else { continue };
            parameters.extend(frame.shown_parameters.iter().map(|&j| ParameterRow {
                zoo: who.zoo.to_string(),
                method: who.method.to_string(),
                seed: who.seed,
                sample: i,
                source: source.to_string(),
                parameter: j,
                value: values[j] as f64,
            }));
        }
    }
    Scored { samples: rows, similarity, parameters }
}

/// Writes test predictions (models × examples, class indices) as a U8 safetensors file.
fn write_predictions(path: &Path, predictions: &[Vec<u8>]) -> Result<()> {
    let width = predictions.first().map_or(0, Vec::len);
    write_tensor(path, "predictions", safetensors::Dtype::U8, vec![predictions.len(), width], &predictions.concat())
}

pub(crate) fn read_predictions(path: &Path) -> Result<Vec<Vec<u8>>> {
    let (shape, bytes) = read_tensor(path, "predictions")?;
    let width = shape.get(1).copied().unwrap_or(0);
    Ok(if width == 0 { vec![Vec::new(); shape.first().copied().unwrap_or(0)] } else { bytes.chunks_exact(width).map(<[u8]>::to_vec).collect() })
}

/// Model trees of a model-tree zoo found from weights alone (every child, training and
/// held-out, one checkpoint per model: the last), scored against the true parents; `None` for
/// a zoo without trees.
fn discover_trees(name: &str, zoo: &Zoo) -> Option<weightlab_results::TreeRow> {
    let mut last: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for (i, c) in zoo.checkpoints.iter().enumerate() {
        if c.parent.is_some() && c.side != Side::Root {
            last.insert(c.model, i);
        }
    }
    if last.is_empty() {
        return None;
    }
    let rows: Vec<usize> = last.into_values().collect();
    let truth: Vec<usize> = rows.iter().map(|&i| zoo.checkpoints[i].parent.unwrap_or(0)).collect();
    let found = weightlab_trees::discover(&weightlab_trees::euclidean(&zoo.stack(&rows), zoo.layout().len()), rows.len());
    let count = |ids: &[usize]| ids.iter().collect::<std::collections::BTreeSet<_>>().len();
    Some(weightlab_results::TreeRow { zoo: name.to_string(), models: rows.len(), true_trees: count(&truth), found_trees: count(&found), ari: weightlab_trees::adjusted_rand_index(&found, &truth) })
}

/// Scores zoo `name`'s own models (see the module) into `dir`; returns the stage's record and
/// the zoo's frame, which every evaluation against the zoo reuses.
pub(crate) fn run(name: &str, zoo: &Zoo, data: &Dataset, metrics: &[&'static Metric], dir: &Path) -> Result<(ReferenceRecord, ZooFrame)> {
    let zoo_name = name;
    output::status("Scoring", &format!("zoo {zoo_name}: its own training and held-out models"));
    let mut frame = ZooFrame::new(zoo);
    // Training checkpoints: each against the others (leave-one-out).
    // On a task family every model is scored on its own task (not the one it fits best).
    let tasks_of = |side: Side| (!data.tasks.is_empty()).then(|| zoo.side(side).iter().map(|&i| zoo.checkpoints[i].task.unwrap_or(0)).collect::<Vec<usize>>());
    let own = Scoring::new(&zoo.arch, data, &frame.train, &frame.train, None).on_tasks(tasks_of(Side::Train));
    let who = RowsOf { zoo: zoo_name, method: TRAIN_REFERENCE, role: "reference", seed: 0 };
    let mut scored = score(&who, &own, metrics, &frame);
    let predictions = own.predictions().to_vec();
    let heldout = zoo.stack(&zoo.side(Side::Heldout));
    if !heldout.is_empty() {
        let against = Scoring::new(&zoo.arch, data, &heldout, &frame.train, Some(&predictions)).on_tasks(tasks_of(Side::Heldout));
        let who = RowsOf { method: HELDOUT_REFERENCE, ..who };
        scored.extend(score(&who, &against, metrics, &frame));
    }
    scored.write(dir, metrics)?;
    if let Some(row) = discover_trees(zoo_name, zoo) {
        output::detail(&format!("model trees from weights alone: {} found, {} true, adjusted Rand index {:.3}", row.found_trees, row.true_trees, row.ari));
        table_of(&[row]).write(dir, "trees")?;
    }
    let keys: Vec<&str> = metrics.iter().map(|m| m.key).collect();
    write_predictions(&dir.join("predictions.safetensors"), &predictions)?;
    let p = zoo.layout().len().max(1);
    let record = ReferenceRecord { train: frame.train.len() / p, heldout: heldout.len() / p, metrics: keys.iter().map(|k| k.to_string()).collect() };
    frame.predictions = predictions;
    Ok((record, frame))
}
