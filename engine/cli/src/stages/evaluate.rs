//! Evaluate stage: score a method's samples natively — test accuracy and loss, nearest training
//! checkpoint in weight space, behavioural novelty against the training checkpoints, and the
//! position in the zoo's 2-D PCA view.

use std::path::Path;

use anyhow::Result;
use weightlab_compute::metrics::{self, Pca};
use weightlab_compute::{Dataset, Side, Zoo, eval};
use weightlab_manifest::StageKind;
use weightlab_results::{FinetuneRow, SampleRow, SimilarityRow};

use crate::executor::Run;
use crate::output;

/// What every evaluation of one zoo compares against, computed once per zoo and run.
#[derive(Clone)]
pub struct ZooReference {
    /// Weights of the training checkpoints, stacked (checkpoints × P).
    pub train: Vec<f32>,
    /// The same checkpoints with their hidden units randomly permuted (the symmetry check).
    pub permuted: Vec<f32>,
    /// Test predictions of the training checkpoints (classification).
    pub predictions: Vec<Vec<u8>>,
    pub pca: Pca,
    /// Rows for the zoo's own training (leave-one-out) and held-out models.
    pub rows: Vec<SampleRow>,
    /// Their similarity to the training checkpoints (heatmap cells).
    pub similarity: Vec<SimilarityRow>,
}

/// What `score` compares models with: the training checkpoints' weights, their test
/// predictions (`None`: the scored models are those checkpoints, compare them with each other)
/// and the zoo's PCA view.
struct Against<'a> {
    train: &'a [f32],
    permuted: &'a [f32],
    predictions: Option<&'a [Vec<u8>]>,
    pca: &'a Pca,
}

/// Training checkpoints a heatmap shows at most (the first ones).
const HEATMAP_COLUMNS: usize = 64;

/// What scoring produces: one row per model, its test predictions, and its similarity to each
/// of the first training checkpoints.
struct Scored {
    rows: Vec<SampleRow>,
    predictions: Vec<Vec<u8>>,
    similarity: Vec<SimilarityRow>,
}

/// Similarity of every model to each of the first [`HEATMAP_COLUMNS`] training checkpoints:
/// IoU of test errors for classifiers, cosine of the weights otherwise.
fn similarities(models: &[f32], preds: &[Vec<u8>], against: &Against, labels: &[u8], p: usize, classification: bool) -> Vec<(usize, usize, f64)> {
    let reference_preds = against.predictions.unwrap_or(preds);
    let columns = (against.train.len() / p.max(1)).min(HEATMAP_COLUMNS);
    let mut out = Vec::new();
    for (i, m) in models.chunks_exact(p).enumerate() {
        for j in 0..columns {
            let sim = if classification {
                metrics::error_iou(&preds[i], &reference_preds[j], labels)
            } else {
                let r = &against.train[j * p..(j + 1) * p];
                let (dot, nm, nr) = m.iter().zip(r).fold((0.0f64, 0.0f64, 0.0f64), |(d, a, b), (&x, &y)| (d + x as f64 * y as f64, a + (x as f64).powi(2), b + (y as f64).powi(2)));
                dot / (nm.sqrt() * nr.sqrt()).max(f64::MIN_POSITIVE)
            };
            out.push((i, j, sim));
        }
    }
    out
}

/// Scores `models` (n × P) against the training side of `zoo`.
fn score(zoo_name: &str, method: &str, role: &str, seed: u64, zoo: &Zoo, data: &Dataset, models: &[f32], against: &Against, leave_one_out: bool) -> Scored {
    let p = zoo.layout().len();
    let scores = eval::evaluate(&zoo.arch, data, &data.test, models);
    let nearest = metrics::nearest(models, against.train, p, leave_one_out);
    let nearest_permuted = metrics::nearest(models, against.permuted, p, leave_one_out);
    let preds: Vec<Vec<u8>> = scores.iter().map(|s| s.predictions.clone()).collect();
    let labels: Vec<u8> = data.test.y.iter().map(|&y| y as u8).collect();
    let classification = scores.first().is_some_and(|s| s.accuracy.is_some());
    let behaviour: Vec<Option<metrics::Behaviour>> = if classification {
        let reference = against.predictions.unwrap_or(&preds);
        metrics::behaviour(&preds, reference, &labels, leave_one_out).into_iter().map(Some).collect()
    } else {
        vec![None; scores.len()]
    };
    let pcs = against.pca.project(models);
    let ensemble = if classification { metrics::ensemble_accuracy(&preds, &labels) } else { None };
    let rows = (0..scores.len())
        .map(|i| SampleRow {
            method: method.to_string(),
            role: role.to_string(),
            zoo: zoo_name.to_string(),
            seed,
            sample: i,
            accuracy: scores[i].accuracy.map(|a| a as f64),
            ensemble_accuracy: ensemble,
            loss: scores[i].loss as f64,
            nn_l2: nearest[i].l2,
            nn_cosine: nearest[i].cosine,
            nn_index: nearest[i].index as i64,
            nn_l2_permuted: nearest_permuted[i].l2,
            novelty: behaviour[i].map(|b| b.novelty),
            agreement: behaviour[i].map(|b| b.agreement),
            pc1: pcs[i].0,
            pc2: pcs[i].1,
        })
        .collect();
    let kind = if classification { "error-iou" } else { "weight-cosine" };
    let similarity = similarities(models, &preds, against, &labels, p, classification)
        .into_iter()
        .map(|(i, j, sim)| SimilarityRow { zoo: zoo_name.to_string(), method: method.to_string(), seed, sample: i, checkpoint: j, similarity: sim, kind: kind.to_string() })
        .collect();
    Scored { rows, predictions: preds, similarity }
}

/// Seed of the symmetry check's permutations (checkpoint i uses this + i).
const SYMMETRY_SEED: u64 = 0x5E_77E7;

impl Run {
    /// The zoo's reference: predictions, PCA and rows of its own models.
    pub(crate) fn reference(&mut self, zoo_name: &str) -> Result<ZooReference> {
        if let Some(r) = self.references.get(zoo_name) {
            return Ok(r.clone());
        }
        let data_name = self.loaded.manifest.zoo[zoo_name].data.clone();
        let data = self.dataset(&data_name)?.clone();
        let zoo = self.zoo(zoo_name)?.clone();
        let p = zoo.layout().len();
        let train = zoo.stack(&zoo.side(Side::Train));
        let pca = Pca::fit(&train, p);
        let permuted: Vec<f32> = train.chunks(p.max(1)).enumerate().flat_map(|(i, w)| zoo.arch.permute_hidden(w, SYMMETRY_SEED + i as u64)).collect();
        // Training checkpoints: each against the others (leave-one-out), as in Zeng et al.
        let own = Against { train: &train, permuted: &permuted, predictions: None, pca: &pca };
        let Scored { mut rows, predictions, mut similarity } = score(zoo_name, "train (leave-one-out)", "reference", 0, &zoo, &data, &train, &own, true);
        let heldout = zoo.stack(&zoo.side(Side::Heldout));
        if !heldout.is_empty() {
            let against = Against { train: &train, permuted: &permuted, predictions: Some(&predictions), pca: &pca };
            let scored = score(zoo_name, "held-out", "reference", 0, &zoo, &data, &heldout, &against, false);
            rows.extend(scored.rows);
            similarity.extend(scored.similarity);
        }
        let reference = ZooReference { train, permuted, predictions, pca, rows, similarity };
        self.references.insert(zoo_name.to_string(), reference.clone());
        Ok(reference)
    }

    pub(crate) fn run_evaluate(&mut self, index: usize, seed: u64, dir: &Path) -> Result<serde_json::Value> {
        let method = self.loaded.manifest.method[index].clone();
        let method_dir = self.stage_dir(|k| matches!(k, StageKind::Method { index: i, seed: s, .. } if *i == index && *s == seed))?;
        let role = std::fs::read_to_string(method_dir.join("stage.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["summary"]["role"].as_str().map(str::to_string))
            .unwrap_or_else(|| "method".into());
        let (_, samples) = super::method::read_samples(&method_dir)?;
        let data_name = self.loaded.manifest.zoo[&method.zoo].data.clone();
        let data = self.dataset(&data_name)?.clone();
        let zoo = self.zoo(&method.zoo)?.clone();
        let reference = self.reference(&method.zoo)?;
        let against = Against { train: &reference.train, permuted: &reference.permuted, predictions: Some(&reference.predictions), pca: &reference.pca };
        let Scored { rows, similarity, .. } = score(&method.zoo, &method.name, &role, seed, &zoo, &data, &samples, &against, false);
        std::fs::write(dir.join("rows.json"), serde_json::to_vec(&rows)?)?;
        std::fs::write(dir.join("similarity.json"), serde_json::to_vec(&similarity)?)?;
        let steps = self.loaded.manifest.evaluate.finetune_steps.clone();
        if !steps.is_empty() {
            let recipe = self.loaded.manifest.zoo[&method.zoo].train.clone();
            let scores = weightlab_compute::finetune::finetune(&zoo.arch, &data, &recipe, &samples, &steps, seed);
            let mut finetune: Vec<FinetuneRow> = Vec::new();
            for (&k, at) in steps.iter().zip(&scores) {
                for (i, s) in at.iter().enumerate() {
                    finetune.push(FinetuneRow {
                        zoo: method.zoo.clone(),
                        method: method.name.clone(),
                        role: role.clone(),
                        seed,
                        sample: i,
                        steps: k,
                        accuracy: s.accuracy.map(f64::from),
                        loss: s.loss as f64,
                    });
                }
            }
            let summary: Vec<String> = steps.iter().zip(&scores).map(|(k, at)| format!("{k}: {:.3}", at.iter().filter_map(|s| s.accuracy).sum::<f32>() / at.len().max(1) as f32)).collect();
            output::status("Fine-tuned", &format!("\"{}\" seed {seed}: accuracy after steps {}", method.name, summary.join(", ")));
            std::fs::write(dir.join("finetune.json"), serde_json::to_vec(&finetune)?)?;
        }
        let mean = |f: &dyn Fn(&SampleRow) -> Option<f64>| {
            let v: Vec<f64> = rows.iter().filter_map(f).collect();
            if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
        };
        let (acc, l2, nov) = (mean(&|r| r.accuracy), mean(&|r| Some(r.nn_l2)), mean(&|r| r.novelty));
        let l2_permuted = mean(&|r| Some(r.nn_l2_permuted));
        output::status("Evaluated", &format!("\"{}\" seed {seed}: accuracy {acc:.3}, NN distance {l2:.3} ({l2_permuted:.3} to permuted checkpoints), novelty {nov:.3}", method.name));
        Ok(serde_json::json!({ "accuracy": acc, "nn_l2": l2, "nn_l2_permuted": l2_permuted, "novelty": nov }))
    }
}
