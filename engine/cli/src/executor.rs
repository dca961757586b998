//! The executor: walks the plan in order, skips stages whose output is stored under their key,
//! runs the others, and keeps going when one fails — its dependents are skipped, everything
//! else still runs, and every finished stage stays on disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use weightlab_compute::{Arch, Dataset, Zoo, data, zoo};
use weightlab_manifest::{Loaded, Plan, Stage, StageKind};

use crate::output;
use crate::stage_store::StageStore;

/// One run of one manifest.
pub struct Run {
    pub loaded: Loaded,
    pub plan: Plan,
    pub store: StageStore,
    pub output: PathBuf,
    datasets: HashMap<String, Dataset>,
    zoos: HashMap<String, Zoo>,
}

/// How a run went.
#[derive(Debug, Default)]
pub struct Summary {
    pub ran: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Run {
    pub fn new(loaded: Loaded, output: Option<PathBuf>) -> Result<Self> {
        let output = output
            .or_else(|| loaded.manifest.experiment.output.as_ref().map(|o| loaded.base_dir.join(o)))
            .unwrap_or_else(|| PathBuf::from("reports").join(&loaded.manifest.experiment.name));
        let base = loaded.base_dir.clone();
        let plan = Plan::new(&loaded.manifest, &|p| crate::plugins::identity(p, &base));
        let store = StageStore::new(&output);
        Ok(Self { loaded, plan, store, output, datasets: HashMap::new(), zoos: HashMap::new() })
    }

    pub fn execute(&mut self) -> Result<Summary> {
        std::fs::create_dir_all(&self.output).with_context(|| format!("creating output folder {}", self.output.display()))?;
        std::fs::write(self.output.join("manifest.toml"), &self.loaded.text).context("saving the manifest as run")?;
        let mut summary = Summary::default();
        let mut failed: Vec<bool> = vec![false; self.plan.stages.len()];
        for i in 0..self.plan.stages.len() {
            let stage = self.plan.stages[i].clone();
            if stage.deps.iter().any(|&d| failed[d]) {
                failed[i] = true;
                summary.skipped += 1;
                output::warn(&format!("skipping {}: a stage it needs failed", stage.label()));
                continue;
            }
            if self.store.is_done(&stage) {
                summary.cached += 1;
                output::detail(&format!("cached {} ({})", stage.label(), stage.key));
                continue;
            }
            let started = Instant::now();
            match self.execute_stage(&stage) {
                Ok(()) => {
                    summary.ran += 1;
                    output::detail(&format!("{} took {:.1}s", stage.label(), started.elapsed().as_secs_f64()));
                }
                Err(e) => {
                    failed[i] = true;
                    summary.failed += 1;
                    output::error(&format!("{} failed: {e:#}", stage.label()));
                }
            }
        }
        output::status("Finished", &format!("{} ran, {} cached, {} failed, {} skipped → {}", summary.ran, summary.cached, summary.failed, summary.skipped, self.output.display()));
        Ok(summary)
    }

    fn execute_stage(&mut self, stage: &Stage) -> Result<()> {
        let tmp = self.store.begin(stage)?;
        let summary = match &stage.kind {
            StageKind::Data { name } => {
                output::status("Loading", &format!("data {name}"));
                let d = self.dataset(name)?;
                serde_json::json!({ "hash": d.hash, "train": d.train.len(), "test": d.test.len(), "input_shape": d.input_shape })
            }
            StageKind::Zoo { name } => self.train_zoo(name, &tmp)?,
            StageKind::Method { name, .. } | StageKind::Evaluate { name, .. } => {
                return Err(anyhow!("method `{name}`: the plugin host is not built into this version yet"));
            }
            StageKind::Report => serde_json::json!({}),
        };
        self.store.commit(stage, &tmp, summary)?;
        Ok(())
    }

    fn dataset(&mut self, name: &str) -> Result<&Dataset> {
        if !self.datasets.contains_key(name) {
            let spec = self.loaded.manifest.data.get(name).ok_or_else(|| anyhow!("no dataset `{name}`"))?;
            let d = data::load(spec, &self.loaded.base_dir).with_context(|| format!("loading data `{name}`"))?;
            self.datasets.insert(name.to_string(), d);
        }
        Ok(&self.datasets[name])
    }

    fn train_zoo(&mut self, name: &str, dir: &std::path::Path) -> Result<serde_json::Value> {
        let spec = self.loaded.manifest.zoo[name].clone();
        let data = self.dataset(&spec.data)?.clone();
        let arch = Arch::new(&spec.arch, &data);
        let started = Instant::now();
        let zoo = match &spec.import {
            Some(folder) => {
                output::status("Importing", &format!("zoo {name} from {}", folder.display()));
                zoo::store::import(&arch, &self.loaded.base_dir.join(folder), spec.split().train)?
            }
            None => {
                output::status("Training", &format!("zoo {name}: {} models × {} parameters, {} epochs", spec.models, arch.layout().len(), spec.train.epochs));
                let pb = output::bar((spec.models * spec.train.epochs) as u64, "Training", "model-epochs");
                let zoo = zoo::train::train_zoo(&arch, &data, &spec, Some(&pb));
                pb.finish_and_clear();
                zoo
            }
        };
        zoo::store::save(&zoo, dir)?;
        let accs: Vec<f32> = zoo.checkpoints.iter().filter_map(|c| c.test_accuracy).collect();
        let mean_acc = if accs.is_empty() { f32::NAN } else { accs.iter().sum::<f32>() / accs.len() as f32 };
        let secs = started.elapsed().as_secs_f64();
        output::status("Trained", &format!("zoo {name}: {} checkpoints, mean test accuracy {:.3}, {:.1}s ({:.1} models/s)", zoo.checkpoints.len(), mean_acc, secs, spec.models as f64 / secs));
        let summary = serde_json::json!({ "checkpoints": zoo.checkpoints.len(), "parameters": arch.layout().len(), "mean_test_accuracy": mean_acc, "seconds": secs });
        self.zoos.insert(name.to_string(), zoo);
        Ok(summary)
    }
}
