//! Evaluate stage: score a method's samples natively with the metrics `[evaluate] metrics`
//! selects (see [`crate::metrics`]), their similarity to the training checkpoints and their
//! position in the zoo's PCA view; optionally fine-tune them (few-shot transfer).

use std::path::Path;

use weightlab_manifest::StageKind;
use weightlab_results::FinetuneRow;
use weightlab_results::rows::table_of;

use super::reference::{RowsOf, score};
use crate::error::Result;
use crate::executor::Run;
use crate::metrics::Scoring;
use crate::output;
use crate::records::{EvaluateRecord, MethodRecord};

impl Run {
    pub(crate) fn run_evaluate(&mut self, index: usize, seed: u64, dir: &Path) -> Result<EvaluateRecord> {
        let method = self.loaded.manifest.method[index].clone();
        let method_stage = self.finished(|k| matches!(k, StageKind::Method { index: i, seed: s, .. } if *i == index && *s == seed))?.clone();
        let record: MethodRecord = self.store.record(&method_stage)?;
        let (_, samples) = super::method::read_samples(&self.store.dir(&method_stage))?;
        let data_name = self.loaded.manifest.zoo[&method.zoo].data.clone();
        let data = self.dataset(&data_name)?;
        let zoo = self.zoo(&method.zoo)?;
        let metrics = self.metrics.clone();
        let steps = self.loaded.manifest.evaluate.finetune_steps.clone();
        let recipe = self.loaded.manifest.zoo[&method.zoo].train.clone();
        let frame = self.frame(&method.zoo)?;
        let targets = record.sample_tasks();
        let scoring = Scoring::new(&zoo.arch, &data, &samples, &frame.train, Some(&frame.predictions)).on_tasks(targets.clone());
        let who = RowsOf { zoo: &method.zoo, method: &method.name, role: &record.role, seed };
        let mut scored = score(&who, &scoring, &metrics, frame);
        for (row, file) in scored.samples.iter_mut().zip(super::method::imported_files(&self.store.dir(&method_stage))?) {
            row.file = file;
        }
        scored.write(dir, &metrics)?;
        if !steps.is_empty() {
            let scores = weightlab_compute::finetune::finetune(&zoo.arch, &data, &recipe, &samples, &steps, seed, targets.as_deref());
            let group = |i: usize| targets.as_ref().map(|t| data.tasks.get(t[i]).map_or("", |x| x.group.name()).to_string()).unwrap_or_default();
            let mut finetune: Vec<FinetuneRow> = Vec::new();
            for (&k, at) in steps.iter().zip(&scores) {
                for (i, s) in at.iter().enumerate() {
                    finetune.push(FinetuneRow {
                        zoo: method.zoo.clone(),
                        method: method.name.clone(),
                        role: record.role.clone(),
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
            output::status("Fine-tuned", &format!("\"{}\" seed {seed}: accuracy after steps {}", method.name, summary.join(", ")));
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
        output::status("Evaluated", &format!("\"{}\" seed {seed}: {}", method.name, shown.join(", ")));
        Ok(EvaluateRecord { samples: scored.samples.len(), means })
    }
}
