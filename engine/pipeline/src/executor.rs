//! The executor: walks the plan in order, skips stages whose output is stored under their key,
//! runs the others, and keeps going when one fails — its dependents are skipped, everything
//! else still runs, and every finished stage stays on disk. The report is rendered at the end
//! of every run, failures included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use weightlab_compute::{Dataset, Zoo};
use weightlab_manifest::{Loaded, Plan, Stage, StageKind};
use weightlab_results::FailureRow;

use crate::error::{Error, Result, io};
use crate::output;
use crate::store::StageStore;

/// One run of one manifest.
pub struct Run {
    pub loaded: Loaded,
    pub plan: Plan,
    pub store: StageStore,
    pub output: PathBuf,
    /// The metrics evaluation computes (`[evaluate] metrics`, resolved against the registry).
    pub metrics: Vec<&'static crate::metrics::Metric>,
    /// Loaded once per run and shared by every stage that needs them (no copies).
    pub(crate) datasets: HashMap<String, Arc<Dataset>>,
    pub(crate) zoos: HashMap<String, Arc<Zoo>>,
    /// What scoring against each zoo needs (see `stages::reference`).
    pub(crate) frames: HashMap<String, crate::stages::reference::ZooFrame>,
    /// Task-family conditions per zoo, read on first use.
    pub(crate) conditions: HashMap<String, Option<Arc<crate::tasks::TaskConditions>>>,
    pub(crate) failures: Vec<FailureRow>,
    /// (stage label, seconds, cached), in plan order.
    pub(crate) timings: Vec<(String, f64, bool)>,
    pub(crate) started: std::time::SystemTime,
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
        let output = output.or_else(|| loaded.manifest.experiment.output.as_ref().map(|o| loaded.base_dir.join(o))).unwrap_or_else(|| PathBuf::from("reports").join(&loaded.manifest.experiment.name));
        let base = loaded.base_dir.clone();
        let metrics = crate::metrics::selected(loaded.manifest.evaluate.metrics.as_deref());
        let keys: Vec<String> = metrics.iter().map(|m| m.key.to_string()).collect();
        let plan = Plan::new(&loaded.manifest, &|p| crate::plugins::identity(p, &base), &keys);
        let store = StageStore::new(&output);
        Ok(Self {
            loaded,
            plan,
            store,
            output,
            metrics,
            datasets: HashMap::new(),
            zoos: HashMap::new(),
            frames: HashMap::new(),
            conditions: HashMap::new(),
            failures: Vec::new(),
            timings: Vec::new(),
            started: std::time::SystemTime::now(),
        })
    }

    pub fn execute(&mut self) -> Result<Summary> {
        std::fs::create_dir_all(&self.output).map_err(io("creating the output folder", &self.output))?;
        let saved = self.output.join("manifest.toml");
        std::fs::write(&saved, &self.loaded.text).map_err(io("saving the manifest as run to", &saved))?;
        let mut summary = Summary::default();
        let mut failed: Vec<bool> = vec![false; self.plan.stages.len()];
        for i in 0..self.plan.stages.len() {
            let stage = self.plan.stages[i].clone();
            let is_report = stage.kind == StageKind::Report;
            if !is_report && stage.deps.iter().any(|&d| failed[d]) {
                failed[i] = true;
                summary.skipped += 1;
                output::warn(&format!("skipping {}: a stage it needs failed", stage.label()));
                continue;
            }
            let any_failed = failed.iter().any(|&f| f);
            if self.store.is_done(&stage) && !(is_report && any_failed) {
                summary.cached += 1;
                self.timings.push((stage.label(), 0.0, true));
                output::detail(&format!("cached {} ({})", stage.label(), stage.key));
                if is_report {
                    // Tables are up to date; re-rendering is cheap and picks up a new template.
                    self.render_report()?;
                }
                continue;
            }
            let started = Instant::now();
            match self.execute_stage(&stage, any_failed) {
                Ok(()) => {
                    summary.ran += 1;
                    self.timings.push((stage.label(), started.elapsed().as_secs_f64(), false));
                    output::detail(&format!("{} took {:.1}s", stage.label(), started.elapsed().as_secs_f64()));
                }
                Err(e) => {
                    failed[i] = true;
                    summary.failed += 1;
                    self.timings.push((stage.label(), started.elapsed().as_secs_f64(), false));
                    let method = match &stage.kind {
                        StageKind::Method { name, .. } | StageKind::Evaluate { name, .. } | StageKind::Probe { name, .. } => name.clone(),
                        StageKind::Zoo { .. } | StageKind::Reference { .. } | StageKind::Data { .. } | StageKind::Report => String::new(),
                    };
                    let seconds = started.elapsed().as_secs_f64();
                    // A method's worker reports its peak memory with the failure.
                    let peak_rss_mib = match &e {
                        Error::Plugin(p) => p.peak_rss_bytes.map(|b| b as f64 / (1 << 20) as f64),
                        _ => None,
                    };
                    self.failures.push(FailureRow { stage: stage.label(), method, reason: e.to_string(), seconds, peak_rss_mib });
                    output::error(&format!("{} failed after {seconds:.1}s: {e}", stage.label()));
                }
            }
        }
        output::status("Finished", &format!("{} ran, {} cached, {} failed, {} skipped", summary.ran, summary.cached, summary.failed, summary.skipped));
        output::status("Report", &self.output.join("report.html").display().to_string());
        Ok(summary)
    }

    /// Runs one stage into a temporary folder and commits it with its typed record.
    fn execute_stage(&mut self, stage: &Stage, earlier_failures: bool) -> Result<()> {
        let tmp = self.store.begin(stage)?;
        match &stage.kind {
            StageKind::Data { name } => {
                let record = self.run_data(name)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Zoo { name } => {
                let record = self.run_zoo(name, &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Reference { zoo } => {
                let record = self.run_reference(zoo, &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Method { index, seed, .. } => {
                let record = self.run_method(*index, *seed, &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Evaluate { index, seed, .. } => {
                let record = self.run_evaluate(*index, *seed, &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Probe { index, seed, .. } => {
                let record = self.run_probe(*index, *seed, &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Report => {
                self.run_report()?;
                if earlier_failures {
                    // Rendered, but not cached: a rerun retries the failed stages and re-renders.
                    std::fs::remove_dir_all(&tmp).ok();
                } else {
                    self.store.commit(stage, &tmp, &serde_json::json!({}))?;
                }
            }
        }
        Ok(())
    }

    /// The finished stage of `kind`.
    pub(crate) fn finished(&self, pred: impl Fn(&StageKind) -> bool) -> Result<&Stage> {
        let stage = self.plan.stages.iter().find(|s| pred(&s.kind)).ok_or_else(|| Error::Missing("no such stage in the plan".into()))?;
        if !self.store.is_done(stage) {
            return Err(Error::Missing(format!("{} has not finished", stage.label())));
        }
        Ok(stage)
    }

    /// The folder of the finished stage of `kind`.
    pub(crate) fn stage_dir(&self, pred: impl Fn(&StageKind) -> bool) -> Result<PathBuf> {
        Ok(self.store.dir(self.finished(pred)?))
    }

    /// The dataset `name`, loaded on first use.
    pub(crate) fn dataset(&mut self, name: &str) -> Result<Arc<Dataset>> {
        if !self.datasets.contains_key(name) {
            let spec = self.loaded.manifest.data.get(name).ok_or_else(|| Error::Missing(format!("no dataset `{name}`")))?;
            let d = weightlab_compute::data::load(spec, &self.loaded.base_dir)?;
            self.datasets.insert(name.to_string(), Arc::new(d));
        }
        Ok(self.datasets[name].clone())
    }

    /// The zoo `name`, from memory or from its finished stage folder.
    pub(crate) fn zoo(&mut self, name: &str) -> Result<Arc<Zoo>> {
        if !self.zoos.contains_key(name) {
            let spec = self.loaded.manifest.zoo.get(name).ok_or_else(|| Error::Missing(format!("no zoo `{name}`")))?.clone();
            let data = self.dataset(&spec.data)?;
            let arch = weightlab_compute::Arch::new(&spec.arch, &data);
            let dir = self.stage_dir(|k| matches!(k, StageKind::Zoo { name: n } if n == name))?;
            let zoo = weightlab_compute::zoo::store::load(&arch, &dir)?;
            self.zoos.insert(name.to_string(), Arc::new(zoo));
        }
        Ok(self.zoos[name].clone())
    }

    /// The task-family conditions of zoo `name` (stored by its zoo stage); `None` unless its
    /// data is a task family.
    pub(crate) fn conditions(&mut self, name: &str) -> Result<Option<Arc<crate::tasks::TaskConditions>>> {
        if !self.conditions.contains_key(name) {
            let spec = self.loaded.manifest.zoo.get(name).ok_or_else(|| Error::Missing(format!("no zoo `{name}`")))?.clone();
            let data = self.dataset(&spec.data)?;
            let dir = self.stage_dir(|k| matches!(k, StageKind::Zoo { name: n } if n == name))?;
            let read = crate::tasks::TaskConditions::read(&data, &dir)?;
            self.conditions.insert(name.to_string(), read.map(Arc::new));
        }
        Ok(self.conditions[name].clone())
    }

    pub(crate) fn base_dir(&self) -> &Path {
        &self.loaded.base_dir
    }
}
