//! Zoo stage: train (batched) or import a zoo, store its checkpoints and its index table.

use std::path::Path;
use std::time::Instant;

use weightlab_compute::{Zoo, zoo};
use weightlab_manifest::{StageKind, ZooUnit};
use weightlab_results::{ZooRow, rows::table_of};

use crate::error::{Error, Result};
use crate::executor::Run;
use crate::output;
use crate::records::ZooRecord;

impl Run {
    /// Trains one unit of a zoo's models ([`weightlab_manifest::ZooSpec::units`]) and stores
    /// it as a zoo of its own; a tree's children read the parts holding the roots.
    pub(crate) fn run_zoo_part(&mut self, name: &str, part: usize, dir: &Path) -> Result<ZooRecord> {
        let spec = self.loaded.manifest.zoo[name].clone();
        let data = self.dataset(&spec.data)?;
        let arch = crate::executor::arch_of(name, &spec, &data)?;
        let units = spec.units();
        let unit = units.get(part).ok_or_else(|| Error::Missing(format!("zoo {name} has no part {}", part + 1)))?;
        let started = Instant::now();
        let mut roots = Vec::new();
        if unit.needs_roots() {
            for p in (0..units.len()).filter(|&p| !units[p].needs_roots()) {
                let root = self.zoo_part(name, p)?;
                roots.push(zoo::store::load(&arch, &self.store.dir(root))?);
            }
        }
        let what = match unit {
            ZooUnit::Models { start, end } if spec.tree.is_some() => format!("roots {start}–{}", end - 1),
            ZooUnit::Models { start, end } => format!("models {start}–{}", end - 1),
            ZooUnit::Children { ids, lr, epochs } => format!("{} children (lr {lr}, {epochs} epochs)", ids.len()),
        };
        let epochs = match unit {
            ZooUnit::Models { .. } => spec.train.epochs,
            ZooUnit::Children { epochs, .. } => *epochs,
        };
        let label = if units.len() > 1 { format!("zoo {name} part {}/{}: {what}", part + 1, units.len()) } else { format!("zoo {name}: {what}") };
        output::status("Training", &format!("{label} × {epochs} epochs, {} parameters each", arch.layout().len()));
        let pb = output::bar((unit.len() * epochs) as u64, "Training", "model-epochs");
        let root_refs: Vec<&Zoo> = roots.iter().collect();
        let zoo = zoo::train::train_unit(&arch, &data, &spec, unit, &root_refs, Some(&pb)).map_err(|reason| Error::Training { zoo: name.to_string(), reason })?;
        pb.finish_and_clear();
        zoo::store::save(&zoo, dir)?;
        let secs = started.elapsed().as_secs_f64();
        output::detail(&format!("{label}: {} checkpoints in {secs:.1}s ({:.2} models/s)", zoo.checkpoints.len(), unit.len() as f64 / secs));
        Ok(ZooRecord { checkpoints: zoo.checkpoints.len(), parameters: arch.layout().len(), mean_test_accuracy: mean_accuracy(&zoo), seconds: secs })
    }

    /// The finished stage of part `part` of zoo `name`.
    fn zoo_part(&self, name: &str, part: usize) -> Result<&weightlab_manifest::Stage> {
        self.finished(|k| matches!(k, StageKind::ZooPart { name: n, part: p, .. } if n == name && *p == part))
    }

    pub(crate) fn run_zoo(&mut self, name: &str, dir: &Path) -> Result<ZooRecord> {
        let spec = self.loaded.manifest.zoo[name].clone();
        let data = self.dataset(&spec.data)?;
        let arch = crate::executor::arch_of(name, &spec, &data)?;
        let started = Instant::now();
        let mut training_secs = 0.0;
        let zoo = match &spec.import {
            Some(folder) => {
                output::status("Importing", &format!("zoo {name} from {}", folder.display()));
                // Without a split every file is a training checkpoint.
                let (train, heldout) = spec.split.as_ref().map_or((usize::MAX, None), |s| (s.train, Some(s.heldout)));
                let mut zoo = zoo::store::import(&arch, &self.base_dir().join(folder), train, heldout)?;
                zoo::train::score_checkpoints(&mut zoo, &data);
                zoo
            }
            None => {
                // The parts were trained (and scored) by their own stages.
                let units = spec.units();
                let mut parts = Vec::with_capacity(units.len());
                for part in 0..units.len() {
                    let stage = self.zoo_part(name, part)?;
                    training_secs += self.store.record::<ZooRecord>(stage)?.seconds;
                    parts.push(zoo::store::load(&arch, &self.store.dir(stage))?);
                }
                zoo::train::assemble(&arch, &spec, parts)
            }
        };
        zoo::store::save(&zoo, dir)?;
        table_of(&zoo_rows(name, &zoo, &spec)).write(dir, "zoo")?;
        if let Some(conditions) = crate::tasks::TaskConditions::compute(&data, &arch, spec.arch.descriptor().plugin_arch) {
            conditions.write(name, dir)?;
            let count = |g| conditions.tasks.iter().filter(|t| t.group == g).count();
            use weightlab_compute::data::tasks::TaskGroup;
            output::detail(&format!(
                "{} tasks ({} training, {} held-out, {} out-of-distribution); conditions: set encodings ({}-d), instructions ({}-d)",
                conditions.tasks.len(),
                count(TaskGroup::Train),
                count(TaskGroup::Heldout),
                count(TaskGroup::Ood),
                conditions.support_dim,
                conditions.instruction_dim
            ));
        }
        let accs: Vec<f32> = zoo.checkpoints.iter().filter_map(|c| c.test_accuracy).collect();
        let mean_acc = if accs.is_empty() { f32::NAN } else { accs.iter().sum::<f32>() / accs.len() as f32 };
        let (min_acc, max_acc) = accs.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        // Training time is the parts' (on whichever machines they ran).
        let secs = started.elapsed().as_secs_f64() + training_secs;
        output::status("Trained", &format!("zoo {name}: {} checkpoints, {:.1}s of training ({:.2} models/s)", zoo.checkpoints.len(), secs, zoo::train::models_trained(&spec) as f64 / secs));
        if !accs.is_empty() {
            output::status("", &format!("test accuracy min {min_acc:.3} · mean {mean_acc:.3} · max {max_acc:.3}"));
        } else if let Some(max_loss) = zoo.checkpoints.iter().map(|c| c.test_loss).reduce(f32::max) {
            let mean_loss = zoo.checkpoints.iter().map(|c| c.test_loss).sum::<f32>() / zoo.checkpoints.len() as f32;
            output::status("", &format!("test SDF error (MSE) mean {mean_loss:.5} · max {max_loss:.5}"));
        }
        let record = ZooRecord { checkpoints: zoo.checkpoints.len(), parameters: arch.layout().len(), mean_test_accuracy: (!accs.is_empty()).then_some(mean_acc as f64), seconds: secs };
        self.zoos.insert(name.to_string(), std::sync::Arc::new(zoo));
        Ok(record)
    }
}

/// The zoo's index as table rows, with the training recipe of `spec`.
pub fn zoo_rows(name: &str, zoo: &Zoo, spec: &weightlab_manifest::ZooSpec) -> Vec<ZooRow> {
    let imported = spec.import.is_some();
    let optimizer = if imported { String::new() } else { format!("{:?}", spec.train.optimizer).to_lowercase() };
    zoo.checkpoints
        .iter()
        .map(|c| ZooRow {
            zoo: name.to_string(),
            model: c.model,
            seed: c.seed,
            epoch: c.epoch,
            side: format!("{:?}", c.side).to_lowercase(),
            parent: c.parent.map(|p| p as i64),
            classes: c.classes.as_ref().map(|set| set.iter().map(usize::to_string).collect::<Vec<_>>().join(",")).unwrap_or_default(),
            task: c.task.map(|t| t as i64),
            train_loss: c.train_loss as f64,
            train_accuracy: c.train_accuracy.map(|a| a as f64),
            validation_loss: c.validation_loss as f64,
            validation_accuracy: c.validation_accuracy.map(|a| a as f64),
            test_loss: c.test_loss as f64,
            test_accuracy: c.test_accuracy.map(|a| a as f64),
            step: c.step,
            optimizer: optimizer.clone(),
            // A tree child's own fine-tuning recipe, else the zoo's.
            lr: if imported { f64::NAN } else { c.finetune.map_or(spec.train.lr, |f| f.lr) },
            batch_size: if imported { 0 } else { spec.train.batch_size },
            epochs: if imported { 0 } else { c.finetune.map_or(spec.train.epochs, |f| f.epochs) },
            file: c.file.clone(),
        })
        .collect()
}

/// Mean test accuracy of a zoo's checkpoints (`None` for regression zoos).
fn mean_accuracy(zoo: &Zoo) -> Option<f64> {
    let accs: Vec<f64> = zoo.checkpoints.iter().filter_map(|c| c.test_accuracy.map(f64::from)).collect();
    (!accs.is_empty()).then(|| accs.iter().sum::<f64>() / accs.len() as f64)
}
