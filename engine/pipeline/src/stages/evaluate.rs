//! Evaluate stage: score a method's samples natively with the metrics `[evaluate] metrics`
//! selects (see [`crate::metrics`]), their similarity to the training checkpoints and their
//! position in the zoo's PCA view; optionally fine-tune them (few-shot transfer).

use std::path::Path;

use weightlab_compute::{Dataset, Zoo};
use weightlab_manifest::TrainSpec;
use weightlab_results::FinetuneRow;
use weightlab_results::rows::table_of;

use super::reference::{RowsOf, ZooFrame, score};
use crate::error::Result;
use crate::metrics::{Metric, Scoring};
use crate::output;
use crate::records::EvaluateRecord;

/// What the evaluate stage reads: a method's samples and everything they are scored against,
/// assembled by the executor from its caches.
pub(crate) struct Inputs<'a> {
    pub zoo_name: &'a str,
    pub method: &'a str,
    pub role: &'a str,
    pub seed: u64,
    /// The samples, stacked (n × P).
    pub samples: &'a [f32],
    /// Each sample's file, for imported samples (else empty).
    pub files: Vec<String>,
    /// Each sample's target task, on a task family.
    pub tasks: Option<Vec<usize>>,
    pub data: &'a Dataset,
    pub zoo: &'a Zoo,
    pub frame: &'a ZooFrame,
    pub metrics: &'a [&'static Metric],
    /// `[evaluate] finetune_steps` and the zoo's recipe they fine-tune with.
    pub finetune_steps: &'a [usize],
    pub recipe: &'a TrainSpec,
}

/// Scores the samples of `inputs` into `dir` (its `samples`, `similarity`, `parameters` and,
/// with fine-tuning steps, `finetune` tables) and returns the stage's record.
pub(crate) fn run(inputs: &Inputs, dir: &Path) -> Result<EvaluateRecord> {
    let Inputs { zoo_name, method, role, seed, samples, data, zoo, frame, metrics, finetune_steps: steps, recipe, .. } = *inputs;
    let targets = inputs.tasks.clone();
    let scoring = Scoring::new(&zoo.arch, data, samples, &frame.train, Some(&frame.predictions)).on_tasks(targets.clone());
    let who = RowsOf { zoo: zoo_name, method, role, seed };
    let mut scored = score(&who, &scoring, metrics, frame);
    for (row, file) in scored.samples.iter_mut().zip(inputs.files.iter().cloned()) {
        row.file = file;
    }
    scored.write(dir, metrics)?;
    if !steps.is_empty() {
        let scores = weightlab_compute::finetune::finetune(&zoo.arch, data, recipe, samples, steps, seed, targets.as_deref());
        let group = |i: usize| targets.as_ref().map(|t| data.tasks.get(t[i]).map_or("", |x| x.group.name()).to_string()).unwrap_or_default();
        let mut finetune: Vec<FinetuneRow> = Vec::new();
        for (&k, at) in steps.iter().zip(&scores) {
            for (i, s) in at.iter().enumerate() {
                finetune.push(FinetuneRow {
                    zoo: zoo_name.to_string(),
                    method: method.to_string(),
                    role: role.to_string(),
                    seed,
                    sample: i,
                    steps: k,
                    task: targets.as_ref().map(|t| t[i] as i64),
                    group: group(i),
                    accuracy: s.accuracy.map(f64::from),
                    loss: s.loss as f64,
                });
            }
        }
        let summary: Vec<String> = steps.iter().zip(&scores).map(|(k, at)| format!("{k}: {:.3}", at.iter().filter_map(|s| s.accuracy).sum::<f32>() / at.len().max(1) as f32)).collect();
        output::status("Fine-tuned", &format!("\"{method}\" seed {seed}: accuracy after steps {}", summary.join(", ")));
        table_of(&finetune).write(dir, "finetune")?;
    }
    let means: std::collections::BTreeMap<String, Option<f64>> = metrics
        .iter()
        .map(|m| m.key)
        .map(|k| {
            let v: Vec<f64> = scored.samples.iter().filter_map(|r| r.metric(k)).filter(|v| v.is_finite()).collect();
            (k.to_string(), (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64))
        })
        .collect();
    let shown: Vec<String> = metrics.iter().filter(|m| m.shown).filter_map(|m| Some(format!("{} {:.3}", m.label.to_lowercase(), means.get(m.key).copied().flatten()?))).collect();
    output::status("Evaluated", &format!("\"{method}\" seed {seed}: {}", shown.join(", ")));
    Ok(EvaluateRecord { samples: scored.samples.len(), means })
}

#[cfg(test)]
mod tests {
    //! The reference and evaluate stages on a tiny zoo (Gaussian blobs, six 2-8-3 MLPs), as
    //! functions of their inputs, without a manifest, a store or a plugin.

    use std::path::Path;

    use weightlab_compute::Side;

    use super::{Inputs, run};
    use crate::stages::reference;

    #[test]
    fn copies_of_training_checkpoints_score_as_copies_and_noise_moves_away() {
        let (data, zoo, spec) = crate::stages::testing::tiny(8);
        let metrics = crate::metrics::selected(Some(&["accuracy".to_string(), "nn_l2".to_string(), "novelty".to_string()]));
        let dir = tempfile::tempdir().unwrap();
        let (record, frame) = reference::run("z", &zoo, &data, &metrics, dir.path()).unwrap();
        assert_eq!((record.train, record.heldout), (4, 2));
        assert_eq!(frame.predictions.len(), 4, "one row of test predictions per training checkpoint");
        let train = zoo.stack(&zoo.side(Side::Train));
        let accuracy: f64 = zoo.side(Side::Train).iter().filter_map(|&i| zoo.checkpoints[i].test_accuracy).map(f64::from).sum::<f64>() / 4.0;
        let evaluate = |samples: &[f32], out: &Path| {
            let inputs = Inputs {
                zoo_name: "z",
                method: "m",
                role: "baseline",
                seed: 0,
                samples,
                files: Vec::new(),
                tasks: None,
                data: &data,
                zoo: &zoo,
                frame: &frame,
                metrics: &metrics,
                finetune_steps: &[],
                recipe: &spec.train,
            };
            run(&inputs, out).unwrap()
        };
        let copies = evaluate(&train, dir.path());
        let mean = |r: &crate::records::EvaluateRecord, k: &str| r.means[k].unwrap();
        assert_eq!(copies.samples, 4);
        assert_eq!(mean(&copies, "nn_l2"), 0.0);
        assert_eq!(mean(&copies, "novelty"), 0.0);
        assert!((mean(&copies, "accuracy") - accuracy).abs() < 1e-6, "copies keep their checkpoints' accuracy");
        let noisy: Vec<f32> = train.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { 0.3 } else { -0.3 }).collect();
        let moved = evaluate(&noisy, &dir.path().join("noisy"));
        assert!(mean(&moved, "nn_l2") > 0.5, "noise of 0.3 per weight moves samples away: {}", mean(&moved, "nn_l2"));
    }
}
