//! Zoo stages: train a unit of a zoo's models (batched), or put a zoo together from its
//! trained parts or imported files; store its checkpoints and its index table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use weightlab_compute::{Arch, Dataset, Zoo, zoo};
use weightlab_manifest::{ZooSpec, ZooUnit};
use weightlab_results::{ZooRow, rows::table_of};

use crate::error::{Error, Result};
use crate::output;
use crate::records::ZooRecord;

/// Trains one unit of zoo `name`'s models ([`weightlab_manifest::ZooSpec::units`]) into `dir`
/// as a zoo of its own; a tree's children need the parts holding the roots (`roots`).
pub(crate) fn train_part(name: &str, spec: &ZooSpec, data: &Dataset, arch: &Arch, part: usize, roots: &[&Zoo], dir: &Path) -> Result<ZooRecord> {
    let units = spec.units();
    let unit = units.get(part).ok_or_else(|| Error::Internal(format!("zoo {name} has no part {}", part + 1)))?;
    let started = Instant::now();
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
    if let Some(why) = zoo::train::tape_reason(arch, data) {
        output::status("Note", &format!("zoo {name} trains on the autodiff tape (slower than the native engine): {why}"));
    }
    let pb = output::bar((unit.len() * epochs) as u64, "Training", "model-epochs");
    let zoo = zoo::train::train_unit(arch, data, spec, unit, roots, Some(&pb)).map_err(|reason| Error::Training { zoo: name.to_string(), reason })?;
    pb.finish_and_clear();
    zoo::store::save(&zoo, dir)?;
    let secs = started.elapsed().as_secs_f64();
    output::detail(&format!("{label}: {} checkpoints in {secs:.1}s ({:.2} models/s)", zoo.checkpoints.len(), unit.len() as f64 / secs));
    Ok(ZooRecord { checkpoints: zoo.checkpoints.len(), parameters: arch.layout().len(), mean_test_accuracy: mean_accuracy(&zoo), seconds: secs })
}

/// Where a zoo's checkpoints come from: its trained parts (with the seconds each took), or a
/// folder of imported files.
pub(crate) enum Source {
    Parts(Vec<(Zoo, f64)>),
    Import(PathBuf),
}

/// Puts zoo `name` together from `source` into `dir` — its checkpoints, its index table and,
/// on a task family, the tasks' conditions — and returns its record and the zoo.
pub(crate) fn assemble(name: &str, spec: &ZooSpec, data: &Dataset, arch: &Arch, source: Source, dir: &Path) -> Result<(ZooRecord, Zoo)> {
    let started = Instant::now();
    let mut training_secs = 0.0;
    let imported = matches!(source, Source::Import(_));
    let zoo = match source {
        Source::Import(folder) => {
            output::status("Importing", &format!("zoo {name} from {}", folder.display()));
            // Without a split every file is a training checkpoint.
            let (train, heldout) = spec.split.as_ref().map_or((usize::MAX, None), |s| (s.train, Some(s.heldout)));
            let mut zoo = zoo::store::import(arch, &folder, train, heldout)?;
            zoo::train::score_checkpoints(&mut zoo, data);
            zoo
        }
        // The parts were trained (and scored) by their own stages.
        Source::Parts(parts) => {
            training_secs = parts.iter().map(|(_, s)| s).sum();
            zoo::train::assemble(arch, spec, parts.into_iter().map(|(z, _)| z).collect())
        }
    };
    zoo::store::save(&zoo, dir)?;
    table_of(&zoo_rows(name, &zoo, spec)).write(dir, "zoo")?;
    if let Some(conditions) = crate::tasks::TaskConditions::compute(data, arch, spec.arch.descriptor().plugin_arch) {
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
    if imported {
        use weightlab_compute::zoo::Side;
        let (train, heldout) = (zoo.side(Side::Train).len(), zoo.side(Side::Heldout).len());
        output::status("Imported", &format!("zoo {name}: {} checkpoints ({train} training, {heldout} held out) in {secs:.1}s", zoo.checkpoints.len()));
    } else {
        output::status("Trained", &format!("zoo {name}: {} checkpoints, {:.1}s of training ({:.2} models/s)", zoo.checkpoints.len(), secs, zoo::train::models_trained(spec) as f64 / secs));
    }
    if !accs.is_empty() {
        output::status("", &format!("test accuracy min {min_acc:.3} · mean {mean_acc:.3} · max {max_acc:.3}"));
    } else if let Some(max_loss) = zoo.checkpoints.iter().map(|c| c.test_loss).reduce(f32::max) {
        let mean_loss = zoo.checkpoints.iter().map(|c| c.test_loss).sum::<f32>() / zoo.checkpoints.len() as f32;
        output::status("", &format!("test SDF error (MSE) mean {mean_loss:.5} · max {max_loss:.5}"));
    }
    let record = ZooRecord { checkpoints: zoo.checkpoints.len(), parameters: arch.layout().len(), mean_test_accuracy: (!accs.is_empty()).then_some(mean_acc as f64), seconds: secs };
    Ok((record, zoo))
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

#[cfg(test)]
mod tests {
    use weightlab_compute::{Arch, Side};

    use super::{Source, assemble, train_part};

    /// A part trained by its stage and assembled by another is the zoo training gives in one
    /// go, bit for bit, and the stage leaves its checkpoints and index table on disk.
    #[test]
    fn a_zoo_trained_as_parts_and_assembled_is_the_zoo_trained_at_once() {
        let (data, whole, spec) = crate::stages::testing::tiny(8);
        let arch = Arch::new(&spec.arch, &data).unwrap();
        let parts = tempfile::tempdir().unwrap();
        let record = train_part("z", &spec, &data, &arch, 0, &[], parts.path()).unwrap();
        assert_eq!((record.checkpoints, record.parameters), (whole.checkpoints.len(), arch.layout().len()));
        assert!(train_part("z", &spec, &data, &arch, spec.units().len(), &[], parts.path()).is_err(), "a part the zoo does not have is refused");
        let part = weightlab_compute::zoo::store::load(&arch, parts.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let (record, zoo) = assemble("z", &spec, &data, &arch, Source::Parts(vec![(part, record.seconds)]), out.path()).unwrap();
        assert_eq!(zoo.weights, whole.weights, "the same bits as training the zoo at once");
        assert_eq!((zoo.side(Side::Train).len(), zoo.side(Side::Heldout).len()), (4, 2));
        assert_eq!(record.checkpoints, 6);
        let mean = zoo.checkpoints.iter().filter_map(|c| c.test_accuracy).sum::<f32>() / 6.0;
        assert_eq!(record.mean_test_accuracy, Some(mean as f64), "the record holds the checkpoints' mean test accuracy");
        let rows = weightlab_results::read_table::<weightlab_results::ZooRow>(out.path(), "zoo").unwrap().expect("the index table");
        assert_eq!(rows.len(), 6);
        assert_eq!(weightlab_compute::zoo::store::load(&arch, out.path()).unwrap().weights, zoo.weights, "the checkpoints on disk are the zoo's");
    }
}
