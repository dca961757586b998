//! The executor: walks the plan in order, skips stages whose output is stored under their key,
//! runs the others, and keeps going when one fails — its dependents are skipped, everything
//! else still runs, and every finished stage stays on disk. The report is rendered at the end
//! of every run, failures included.
//!
//! A [`Schedule`] narrows a process to a shard of the plan and/or one dependency level, so
//! that several processes (a Slurm job array, a Kubernetes Indexed Job, a shell loop) share one
//! stage store; `weightlab merge` then checks the store against the plan and renders the
//! report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weightlab_compute::{Dataset, Zoo};
use weightlab_manifest::{Loaded, Plan, Shard, Stage, StageKind};
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
    /// The plugins the manifest names, read and hashed once when the run starts.
    pub plugins: crate::plugins::Plugins,
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
    /// Stages nothing has produced (`weightlab merge` only).
    pub missing: usize,
    /// Stages found stored by the runs merged (`weightlab merge` only).
    pub merged: usize,
}

impl Summary {
    /// The closing line of a run (`8 ran, 0 cached, 0 failed, 0 skipped`) or of a merge
    /// (`1 ran, 12 merged, 0 failed`: the report, from what the shards stored).
    pub fn line(&self, merge: bool) -> String {
        let missing = if self.missing > 0 { format!(", {} missing", self.missing) } else { String::new() };
        if merge {
            format!("{} ran, {} merged, {} failed{missing}", self.ran, self.merged, self.failed)
        } else {
            format!("{} ran, {} cached, {} failed, {} skipped{missing}", self.ran, self.cached, self.failed, self.skipped)
        }
    }
}

/// Which of the plan's stages this process runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Only this shard's stages ([`Plan::shards`]); the report is left to `weightlab merge`.
    pub shard: Option<Shard>,
    /// Only the stages of this dependency level ([`Plan::levels`]): what one job of a chain of
    /// Slurm job arrays runs. Their inputs must be finished already.
    pub level: Option<usize>,
    /// Compute nothing: check that every stage is stored (or recorded as failed) and render
    /// the report (`weightlab merge`).
    pub merge: bool,
    /// How long a shard waits for an input another shard is computing.
    pub wait: Duration,
    /// A shard says how its run is finished (`weightlab merge …`) — not when the process that
    /// started it merges itself (`run --jobs`).
    pub merge_hint: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule { shard: None, level: None, merge: false, wait: Duration::from_secs(24 * 3600), merge_hint: true }
    }
}

/// Holds output folder `output` for this process until the returned file is dropped (or the
/// process ends, however it ends): two runs writing one folder at once would mix their
/// manifests, tables and history entries. Shards of one run share it (`shared`); a whole run
/// or a merge has it alone, and one that cannot is refused at once rather than left waiting.
/// A file system without locks (some cluster mounts) runs unguarded rather than not at all.
fn lock_output(output: &Path, shared: bool) -> Result<Option<std::fs::File>> {
    let path = output.join(".weightlab.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io("opening", &path))?;
    let taken = if shared { file.try_lock_shared() } else { file.try_lock() };
    match taken {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(output.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => {
            output::detail(&format!("{} cannot be locked ({e}): nothing stops another run from writing this folder at the same time", path.display()));
            Ok(None)
        }
    }
}

/// What the provenance file `run.json` holds: where the manifest came from and which plan
/// ran, so that `weightlab merge` can check shards belong together and rebuild the plan.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    /// The manifest file, as given.
    pub manifest: PathBuf,
    /// The folder relative paths in the manifest are resolved against.
    pub base_dir: PathBuf,
    /// [`Plan::fingerprint`].
    pub plan: String,
    /// The root of the stage store the run used (absolute); absent in run folders from before
    /// stores were shared, whose stages are in `<run>/stages`.
    #[serde(default)]
    pub store: Option<PathBuf>,
}

impl RunInfo {
    pub fn read(output: &Path) -> Result<RunInfo> {
        let path = output.join("run.json");
        let bytes = crate::store::read_file(&path).map_err(io("reading", &path))?;
        serde_json::from_slice(&bytes).map_err(crate::error::format(&path))
    }

    /// The stage store of the run in folder `output`.
    pub fn store_of(&self, output: &Path) -> StageStore {
        match &self.store {
            Some(root) => StageStore::shared(root, output),
            None => StageStore::new(output),
        }
    }
}

impl Run {
    pub fn new(loaded: Loaded, output: Option<PathBuf>) -> Result<Self> {
        let plugins = crate::plugins::Plugins::resolve(&loaded);
        Self::with_plugins(loaded, plugins, output)
    }

    /// A run whose plugins were resolved already (and checked: see
    /// [`crate::config_check::before_run`]): the bytes checked are the bytes run.
    pub fn with_plugins(loaded: Loaded, plugins: crate::plugins::Plugins, output: Option<PathBuf>) -> Result<Self> {
        let output = output.unwrap_or_else(|| loaded.output_dir());
        let metrics = crate::metrics::selected(loaded.manifest.evaluate.metrics.as_deref());
        let keys: Vec<String> = metrics.iter().map(|m| m.key.to_string()).collect();
        let plan = Plan::new(&loaded.manifest, &|p| plugins.identity(p), &keys);
        let store = StageStore::shared(&crate::store::resolve(&output, None), &output);
        Ok(Self {
            loaded,
            plan,
            store,
            output,
            metrics,
            plugins,
            datasets: HashMap::new(),
            zoos: HashMap::new(),
            frames: HashMap::new(),
            conditions: HashMap::new(),
            failures: Vec::new(),
            timings: Vec::new(),
            started: std::time::SystemTime::now(),
        })
    }

    /// Uses the stage store at `root` (`weightlab run --store`), or the one the run folder's
    /// `run.json` names (a run being merged, exported or re-read).
    pub fn use_store(&mut self, store: StageStore) {
        self.store = store;
    }

    /// Runs every stage of the plan that is not stored yet, then the report.
    pub fn execute(&mut self) -> Result<Summary> {
        self.execute_scheduled(&Schedule::default())
    }

    /// Runs the stages `schedule` gives this process. Stages are taken in plan order; a
    /// stage whose inputs failed is skipped, one whose inputs another shard is computing is
    /// waited for. Every failure is stored beside the stages (`*.failed.json`), so the report
    /// lists it whichever process renders it.
    pub fn execute_scheduled(&mut self, schedule: &Schedule) -> Result<Summary> {
        if !schedule.merge {
            self.select_device()?;
        }
        if self.output.exists() && !self.output.is_dir() {
            return Err(Error::NotAFolder(self.output.clone()));
        }
        std::fs::create_dir_all(&self.output).map_err(io("creating the output folder", &self.output))?;
        let partial = schedule.shard.is_some() || schedule.level.is_some();
        let _lock = lock_output(&self.output, partial)?;
        if !schedule.merge {
            // The run this one may replace stays in the history, whatever wrote it — before its
            // manifest and run.json are replaced.
            crate::history::keep_previous(&self.output)?;
            let saved = self.output.join("manifest.toml");
            crate::store::write_atomic(&saved, self.loaded.text.as_bytes())?;
            let store = std::path::absolute(self.store.root()).map_err(io("resolving", self.store.root()))?;
            let info = RunInfo { manifest: self.loaded.path.clone(), base_dir: self.loaded.base_dir.clone(), plan: self.plan.fingerprint(), store: Some(store) };
            let path = self.output.join("run.json");
            crate::store::write_atomic(&path, &serde_json::to_vec_pretty(&info).map_err(crate::error::format(&path))?)?;
            // Before any stage: `weightlab gc` keeps what a run in progress refers to.
            self.store.refer(&self.output, &self.plan.stages.iter().collect::<Vec<_>>())?;
            let stale = self.store.remove_stale()?;
            if stale > 0 {
                output::detail(&format!("removed {stale} unfinished stage folder(s) of killed runs"));
            }
        }
        // Which stages are this process's: every one, or its shard's and/or level's (the
        // report only when nothing narrows the run).
        let levels = self.plan.levels();
        let shards = schedule.shard.map(|s| self.plan.shards(s.count));
        let mine: Vec<bool> = (0..self.plan.stages.len())
            .map(|i| match self.plan.stages[i].kind {
                StageKind::Report => !partial,
                _ => schedule.level.is_none_or(|l| levels[i] == l) && schedule.shard.zip(shards.as_ref()).is_none_or(|(s, owners)| owners[i] == Some(s.index)),
            })
            .collect();
        if let Some(s) = schedule.shard {
            let count = mine.iter().filter(|&&m| m).count();
            let level = schedule.level.map(|l| format!(", level {l}")).unwrap_or_default();
            output::status("Shard", &format!("{s}{level}: {count} of the plan's {} stages", self.plan.stages.len()));
        }
        let mut summary = Summary::default();
        let mut failed: Vec<bool> = vec![false; self.plan.stages.len()];
        // Stages computed ahead, with an earlier one whose fit they share: what they shared
        // and the seconds of their own draw.
        let mut drawn: HashMap<usize, (String, f64)> = HashMap::new();
        // This process's stages, as `weightlab serve` shows a run in progress — not for a merge,
        // which computes nothing, nor for a shard: shards share the output folder and would
        // overwrite each other's file.
        let slots: Vec<usize> = (0..self.plan.stages.len()).filter(|&i| mine[i]).collect();
        let mut progress = (!schedule.merge && !partial).then(|| crate::progress::Progress::new(slots.iter().map(|&i| self.plan.stages[i].label())));
        let output_dir = self.output.clone();
        let mut mark = |i: usize, state: &str| {
            if let (Some(p), Ok(slot)) = (progress.as_mut(), slots.binary_search(&i)) {
                p.set(&output_dir, slot, state);
            }
        };
        let mut pending: Vec<usize> = slots.clone();
        while !pending.is_empty() {
            let i = pending.remove(self.next_stage(&pending, &failed, schedule));
            let stage = self.plan.stages[i].clone();
            let is_report = stage.kind == StageKind::Report;
            let any_failed = failed.iter().any(|&f| f);
            if let Some((with, seconds)) = drawn.remove(&i) {
                // Computed with the stage whose fit it shares.
                summary.ran += 1;
                mark(i, "done");
                self.timings.push((stage.label(), seconds, false));
                output::detail(&format!("{} drew its samples from the fit of {with}", stage.label()));
                continue;
            }
            if self.store.is_done(&stage) && !(is_report && any_failed) {
                if schedule.merge && !is_report {
                    summary.merged += 1;
                } else {
                    summary.cached += 1;
                }
                mark(i, "cached");
                match self.store.timing(&stage).filter(|_| schedule.merge && !is_report) {
                    // Merged: computed by the shards; the report shows their times, and the run
                    // starts when the first of them did.
                    Some((started, seconds)) => {
                        self.timings.push((stage.label(), seconds, false));
                        self.started = self.started.min(started);
                    }
                    None => self.timings.push((stage.label(), 0.0, true)),
                }
                output::detail(&format!("cached {} ({})", stage.label(), stage.key));
                if matches!(stage.kind, StageKind::Zoo { .. })
                    && !schedule.merge
                    && let Some(other) = self.store.computed_for_another(&stage)
                {
                    output::status("Reusing", &format!("{} from the shared stage store, trained for {}", stage.label(), other.display()));
                }
                if is_report {
                    // Tables are up to date; re-rendering is cheap and picks up a new template.
                    self.render_report()?;
                }
                continue;
            }
            if schedule.merge && !is_report {
                failed[i] = true;
                match self.store.failure(&stage) {
                    Some(f) => {
                        summary.failed += 1;
                        self.failures.push(f);
                    }
                    None => {
                        summary.missing += 1;
                        output::error(&format!("{} is missing: no run or shard stored it", stage.label()));
                        self.failures.push(FailureRow {
                            stage: stage.label(),
                            method: stage_method(&stage),
                            reason: "missing: no run or shard stored it".into(),
                            seconds: f64::NAN,
                            peak_rss_mib: None,
                            role: self.role_of(&stage).unwrap_or_default(),
                        });
                    }
                }
                continue;
            }
            if !is_report {
                match self.inputs_ready(&stage, &failed, schedule) {
                    Ok(true) => {}
                    Ok(false) => {
                        failed[i] = true;
                        summary.skipped += 1;
                        mark(i, "skipped");
                        output::warn(&format!("skipping {}: a stage it needs failed", stage.label()));
                        continue;
                    }
                    Err(e) => {
                        failed[i] = true;
                        summary.failed += 1;
                        mark(i, "failed");
                        self.record_failure(&stage, &e, 0.0)?;
                        continue;
                    }
                }
            }
            self.store.clear_failure(&stage);
            let started = Instant::now();
            mark(i, "running");
            // Later stages of this process that fit the same model draw from this fit.
            let companions: Vec<usize> = match (&stage.kind, &stage.fit) {
                (StageKind::Method { .. }, Some(fit)) => {
                    (i + 1..self.plan.stages.len()).filter(|&j| mine[j] && !failed[j] && self.plan.stages[j].fit.as_ref() == Some(fit) && !self.store.is_done(&self.plan.stages[j])).collect()
                }
                _ => Vec::new(),
            };
            match contain(|| self.execute_stage(&stage, any_failed, &companions)) {
                Ok(shared) => {
                    for (j, seconds) in shared {
                        drawn.insert(j, (stage.label(), seconds));
                    }
                    summary.ran += 1;
                    mark(i, "done");
                    self.timings.push((stage.label(), started.elapsed().as_secs_f64(), false));
                    output::detail(&format!("{} took {:.1}s", stage.label(), started.elapsed().as_secs_f64()));
                }
                Err(e) => {
                    failed[i] = true;
                    summary.failed += 1;
                    mark(i, "failed");
                    self.timings.push((stage.label(), started.elapsed().as_secs_f64(), false));
                    self.record_failure(&stage, &e, started.elapsed().as_secs_f64())?;
                }
            }
        }
        if let Some(p) = progress.as_mut() {
            p.finish(&self.output);
        }
        output::status("Finished", &summary.line(schedule.merge));
        let report_failed = self.plan.stages.iter().zip(&failed).any(|(s, &f)| s.kind == StageKind::Report && f);
        if !partial && report_failed {
            output::notice("Report", "not written: its stage failed (above); the finished stages are kept, and the same `weightlab run` writes it");
        } else if !partial {
            output::result("Report", &self.output.join("report.html").display().to_string());
        } else if schedule.merge_hint {
            output::status("Stages", &format!("{} (`weightlab merge {}` renders the report once every shard is done)", self.store.root().display(), self.output.display()));
        }
        Ok(summary)
    }

    /// Why this run must not go on when `weightlab submit` planned `expected` (a manifest,
    /// plugin or weightlab changed since); `None` when the plans agree.
    pub fn plan_changed(&self, expected: &str, manifest: &Path) -> Option<String> {
        let actual = self.plan.fingerprint();
        (actual != expected).then(|| {
            format!("the plan of {} is {actual}, not the {expected} it was submitted with: the manifest, a plugin or weightlab changed since `weightlab submit`; submit again", manifest.display())
        })
    }

    /// Puts this process (and its plugin workers) on `[experiment] device`. Refuses a CUDA
    /// device libtorch does not see, before anything runs.
    pub fn select_device(&self) -> Result<()> {
        let text = &self.loaded.manifest.experiment.device;
        // Located at the manifest's `device`, kept as data until printed.
        let at_device = |message: String| {
            let span = self.loaded.spans().value(&["experiment".into(), "device".into()]);
            Error::Manifest(self.loaded.error(vec![weightlab_manifest::Diagnostic::new(message, span)]))
        };
        let spec = weightlab_manifest::parse_device(text).map_err(|e| at_device(format!("`experiment.device`: {e}")))?;
        let chosen = weightlab_compute::device::select(spec).map_err(|e| at_device(format!("`experiment.device = \"{text}\"`: {e}")))?;
        weightlab_host::tensors::use_device(chosen.device);
        match chosen.note {
            Some(note) => output::status("Device", &note),
            None => output::detail(&format!("computing on {}", weightlab_compute::device::description())),
        }
        Ok(())
    }

    /// Which of `pending` (this process's stages not taken yet, in plan order) to take next:
    /// the first whose inputs are settled — stored, failed, or no other process's to compute —
    /// so a shard runs what it can while another computes what the rest need. When none is,
    /// the first, whose inputs are then waited for ([`Run::inputs_ready`]). Without shards
    /// this is plan order.
    fn next_stage(&self, pending: &[usize], failed: &[bool], schedule: &Schedule) -> usize {
        if schedule.shard.is_none() || schedule.level.is_some() {
            return 0;
        }
        let settled = |d: usize| failed[d] || self.store.is_done(&self.plan.stages[d]) || self.store.failure_since(&self.plan.stages[d], self.started).is_some();
        pending.iter().position(|&i| self.plan.stages[i].deps.iter().all(|&d| settled(d))).unwrap_or(0)
    }

    /// Whether every input of `stage` is stored: `Ok(false)` when one failed (here or in
    /// another shard); inputs another shard is computing are waited for.
    fn inputs_ready(&self, stage: &Stage, failed: &[bool], schedule: &Schedule) -> Result<bool> {
        let waiting_since = Instant::now();
        let mut said = false;
        for &d in &stage.deps {
            let dep = &self.plan.stages[d];
            loop {
                if failed[d] {
                    return Ok(false);
                }
                if self.store.is_done(dep) {
                    break;
                }
                // A failure another process recorded during this run (an older one may be retried).
                if let Some(f) = self.store.failure_since(dep, self.started) {
                    output::detail(&format!("{} failed in another process: {}", dep.label(), f.reason.lines().next().unwrap_or("")));
                    return Ok(false);
                }
                if schedule.shard.is_none() || schedule.level.is_some() {
                    // Nothing else is computing it: the level before was not run (or was lost).
                    return Err(Error::Unfinished(format!("it needs {}, which has not finished (run the levels before this one first)", dep.label())));
                }
                if waiting_since.elapsed() > schedule.wait {
                    return Err(Error::Unfinished(format!("waited {:.0}s for {}, which another shard runs", schedule.wait.as_secs_f64(), dep.label())));
                }
                if !said {
                    output::status("Waiting", &format!("for {} (another shard's)", dep.label()));
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(true)
    }

    /// Notes a failed stage: printed, kept for the report and stored for other processes.
    fn record_failure(&mut self, stage: &Stage, e: &Error, seconds: f64) -> Result<()> {
        // A stage cut off by Ctrl-C (its worker got the signal too) is not the stage's fault.
        crate::interrupt::hold_if_interrupted();
        // A method's worker reports its peak memory with the failure.
        let peak_rss_mib = match e {
            Error::Plugin(p) => p.peak_rss_bytes.map(|b| b as f64 / (1 << 20) as f64),
            _ => None,
        };
        let reason = format!("{e}{}", crate::error::storage_hint(e));
        output::error(&format!("{} failed after {seconds:.1}s: {reason}", stage.label()));
        let row = FailureRow { stage: stage.label(), method: stage_method(stage), reason, seconds, peak_rss_mib, role: self.role_of(stage).unwrap_or_default() };
        self.store.abandon(stage);
        self.store.fail(stage, &row)?;
        self.failures.push(row);
        Ok(())
    }

    /// Runs one stage into a temporary folder and commits it with its typed record. A method
    /// stage also draws the samples of its `companions` (stages sharing its fit, by index into
    /// the plan) and commits them: returned with the seconds of their draws.
    fn execute_stage(&mut self, stage: &Stage, earlier_failures: bool, companions: &[usize]) -> Result<Vec<(usize, f64)>> {
        let mut drawn = Vec::new();
        let tmp = self.store.begin(stage)?;
        match &stage.kind {
            StageKind::Data { name } => {
                let data = self.dataset(name)?;
                self.store.commit(stage, &tmp, &crate::stages::data::run(name, &data))?;
            }
            StageKind::ZooPart { name, part, .. } => {
                let (spec, data, arch) = self.zoo_inputs(name)?;
                // A tree's children read the parts holding the roots.
                let units = spec.units();
                let mut roots = Vec::new();
                if units.get(*part).is_some_and(|u| u.needs_roots()) {
                    for p in (0..units.len()).filter(|&p| !units[p].needs_roots()) {
                        roots.push(weightlab_compute::zoo::store::load(&arch, &self.store.dir(self.zoo_part(name, p)?))?);
                    }
                }
                let record = crate::stages::zoo::train_part(name, &spec, &data, &arch, *part, &roots.iter().collect::<Vec<_>>(), &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Zoo { name } => {
                let (spec, data, arch) = self.zoo_inputs(name)?;
                let source = match &spec.import {
                    Some(folder) => crate::stages::zoo::Source::Import(self.base_dir().join(folder)),
                    None => {
                        if let Some(reason) = weightlab_compute::zoo::train::refuse_assembly(&arch, &spec) {
                            return Err(Error::Training { zoo: name.clone(), reason });
                        }
                        let mut parts = Vec::new();
                        for part in 0..spec.units().len() {
                            let stage = self.zoo_part(name, part)?;
                            let seconds = self.store.record::<crate::records::ZooRecord>(stage)?.seconds;
                            parts.push((weightlab_compute::zoo::store::load(&arch, &self.store.dir(stage))?, seconds));
                        }
                        crate::stages::zoo::Source::Parts(parts)
                    }
                };
                let (record, zoo) = crate::stages::zoo::assemble(name, &spec, &data, &arch, source, &tmp)?;
                self.zoos.insert(name.clone(), Arc::new(zoo));
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Reference { zoo } => {
                let data = self.dataset(&self.loaded.manifest.zoo[zoo].data.clone())?;
                let models = self.zoo(zoo)?;
                let (record, frame) = crate::stages::reference::run(zoo, &models, &data, &self.metrics, &tmp)?;
                self.frames.insert(zoo.clone(), frame);
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Method { index, seed, .. } => {
                let mut others = Vec::new();
                for &j in companions {
                    let other = self.plan.stages[j].clone();
                    let StageKind::Method { index, .. } = other.kind else { continue };
                    let dir = self.store.begin(&other)?;
                    others.push((j, index, other, dir));
                }
                let with: Vec<_> = others.iter().map(|(_, index, _, dir)| crate::stages::method::Companion { index: *index, dir }).collect();
                let records = match self.method(*index, *seed, &tmp, &with) {
                    Ok(records) => records,
                    Err(e) => {
                        // The companions run on their own later (and fail on their own, if they do).
                        for (_, _, _, dir) in &others {
                            std::fs::remove_dir_all(dir).ok();
                        }
                        return Err(e);
                    }
                };
                let mut records = records.into_iter();
                let own = records.next().ok_or_else(|| Error::Internal("a method stage returned no record".into()))?;
                for ((j, _, other, dir), record) in others.iter().zip(records) {
                    // Its time is its own draw's: the fit is the method's.
                    self.store.commit_timed(other, dir, &record, Some(record.sample_seconds))?;
                    drawn.push((*j, record.sample_seconds));
                }
                self.store.commit(stage, &tmp, &own)?;
            }
            StageKind::Evaluate { index, seed, .. } => {
                let record = self.evaluate(*index, *seed, &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Probe { index, seed, .. } => {
                let method = &self.loaded.manifest.method[*index];
                let (zoo_name, plugin) = (method.zoo.clone(), method.plugin.clone());
                let data = self.dataset(&self.loaded.manifest.zoo[&zoo_name].data.clone())?;
                let zoo = self.zoo(&zoo_name)?;
                let code = self.plugins.code(&plugin)?.clone();
                let record = crate::stages::probe::run(&self.loaded, *index, *seed, &data, &zoo, &code, &tmp)?;
                self.store.commit(stage, &tmp, &record)?;
            }
            StageKind::Report => {
                let template = self.template();
                let inputs = crate::stages::report::Inputs {
                    loaded: &self.loaded,
                    plan: &self.plan,
                    store: &self.store,
                    metrics: &self.metrics,
                    failures: &self.failures,
                    plugins: &self.plugins,
                    timings: &self.timings,
                    started: self.started,
                    template: template.as_deref(),
                };
                crate::stages::report::run(&inputs, &self.output)?;
                if earlier_failures {
                    // Rendered, but not cached: a rerun retries the failed stages and re-renders.
                    std::fs::remove_dir_all(&tmp).ok();
                } else {
                    self.store.commit(stage, &tmp, &serde_json::json!({}))?;
                }
            }
        }
        Ok(drawn)
    }

    /// The finished stage of `kind`.
    pub(crate) fn finished(&self, pred: impl Fn(&StageKind) -> bool) -> Result<&Stage> {
        let stage = self.plan.stages.iter().find(|s| pred(&s.kind)).ok_or_else(|| Error::Internal("no such stage in the plan".into()))?;
        if !self.store.is_done(stage) {
            return Err(Error::Unfinished(format!("{} has not finished", stage.label())));
        }
        Ok(stage)
    }

    /// The folder of the finished stage of `kind`.
    pub(crate) fn stage_dir(&self, pred: impl Fn(&StageKind) -> bool) -> Result<PathBuf> {
        Ok(self.store.dir(self.finished(pred)?))
    }

    /// Datasets read already (by [`crate::config_check::before_run`]), so they are not read again.
    pub fn adopt_datasets(&mut self, datasets: crate::preflight::Read) {
        self.datasets.extend(datasets.into_iter().map(|(name, d)| (name, Arc::new(d))));
    }

    /// The dataset `name`, loaded on first use.
    pub(crate) fn dataset(&mut self, name: &str) -> Result<Arc<Dataset>> {
        if !self.datasets.contains_key(name) {
            let spec = self.loaded.manifest.data.get(name).ok_or_else(|| Error::Internal(format!("no dataset `{name}`")))?;
            let d = weightlab_compute::data::load(spec, &self.loaded.base_dir)?;
            self.datasets.insert(name.to_string(), Arc::new(d));
        }
        Ok(self.datasets[name].clone())
    }

    /// The zoo `name`, from memory or from its finished stage folder.
    pub(crate) fn zoo(&mut self, name: &str) -> Result<Arc<Zoo>> {
        if !self.zoos.contains_key(name) {
            let spec = self.loaded.manifest.zoo.get(name).ok_or_else(|| Error::Internal(format!("no zoo `{name}`")))?.clone();
            let data = self.dataset(&spec.data)?;
            let arch = arch_of(name, &spec, &data)?;
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
            let spec = self.loaded.manifest.zoo.get(name).ok_or_else(|| Error::Internal(format!("no zoo `{name}`")))?.clone();
            let data = self.dataset(&spec.data)?;
            let dir = self.stage_dir(|k| matches!(k, StageKind::Zoo { name: n } if n == name))?;
            let read = crate::tasks::TaskConditions::read(&data, &dir)?;
            self.conditions.insert(name.to_string(), read.map(Arc::new));
        }
        Ok(self.conditions[name].clone())
    }

    /// Renders report.html from the run's tables on disk (the manifest's template, if it names
    /// one): a cached report picks up a new template without recomputing.
    fn render_report(&self) -> Result<()> {
        crate::report::render_runs(std::slice::from_ref(&self.output), &self.output, self.template().as_deref())?;
        Ok(())
    }

    /// The manifest's report template, if it names one.
    fn template(&self) -> Option<PathBuf> {
        self.loaded.manifest.report.template.as_ref().map(|t| self.base_dir().join(t))
    }

    /// Assembles method `index`'s inputs (its zoo, the zoos it learns from, their task
    /// conditions, its plugin's code) and runs its stage for `seed`, or imports its samples.
    /// `companions` share the fit ([`crate::stages::method::run`]); the records come in order,
    /// the method's first.
    fn method(&mut self, index: usize, seed: u64, dir: &Path, companions: &[crate::stages::method::Companion]) -> Result<Vec<crate::records::MethodRecord>> {
        let method = self.loaded.manifest.method[index].clone();
        if let Some(folder) = &method.import {
            let zoo = self.zoo(&method.zoo)?;
            let planned = self.plugins.identity(&method.source_key());
            return Ok(vec![crate::stages::method::import(&method, &zoo, &self.base_dir().join(folder), &planned, dir)?]);
        }
        let data = self.dataset(&self.loaded.manifest.zoo[&method.zoo].data.clone())?;
        let mut source = |name: &str| -> Result<crate::stages::method::Source> {
            let arch = self.loaded.manifest.zoo.get(name).map(|z| z.arch.descriptor().plugin_arch.to_string()).unwrap_or_default();
            Ok(crate::stages::method::Source { name: name.to_string(), arch, zoo: self.zoo(name)?, conditions: self.conditions(name)? })
        };
        let zoo = source(&method.zoo)?;
        let names: Vec<String> = if method.zoos.is_empty() { vec![method.zoo.clone()] } else { method.zoos.clone() };
        let sources = names.iter().map(|n| source(n)).collect::<Result<Vec<_>>>()?;
        let code = self.plugins.code(&method.plugin)?.clone();
        let inputs = crate::stages::method::Inputs { loaded: &self.loaded, index, seed, data: &data, zoo, sources, code: &code };
        crate::stages::method::run(&inputs, dir, companions)
    }

    /// Zoo `name`'s spec, data and architecture.
    fn zoo_inputs(&mut self, name: &str) -> Result<(weightlab_manifest::ZooSpec, Arc<Dataset>, weightlab_compute::Arch)> {
        let spec = self.loaded.manifest.zoo.get(name).ok_or_else(|| Error::Internal(format!("no zoo `{name}`")))?.clone();
        let data = self.dataset(&spec.data)?;
        let arch = arch_of(name, &spec, &data)?;
        Ok((spec, data, arch))
    }

    /// The finished stage of part `part` of zoo `name`.
    fn zoo_part(&self, name: &str, part: usize) -> Result<&Stage> {
        self.finished(|k| matches!(k, StageKind::ZooPart { name: n, part: p, .. } if n == name && *p == part))
    }

    /// Assembles the inputs of method `index`'s evaluation for `seed` (its samples from the
    /// method stage, the zoo, its data and frame) and runs the stage.
    fn evaluate(&mut self, index: usize, seed: u64, dir: &Path) -> Result<crate::records::EvaluateRecord> {
        let method = self.loaded.manifest.method[index].clone();
        let method_stage = self.finished(|k| matches!(k, StageKind::Method { index: i, seed: s, .. } if *i == index && *s == seed))?.clone();
        let record: crate::records::MethodRecord = self.store.record(&method_stage)?;
        let method_dir = self.store.dir(&method_stage);
        let (_, samples) = crate::stages::method::read_samples(&method_dir)?;
        let files = crate::stages::method::imported_files(&method_dir)?;
        let zoo_spec = self.loaded.manifest.zoo[&method.zoo].clone();
        let data = self.dataset(&zoo_spec.data)?;
        let zoo = self.zoo(&method.zoo)?;
        let metrics = self.metrics.clone();
        let steps = self.loaded.manifest.evaluate.finetune_steps.clone();
        let frame = self.frame(&method.zoo)?;
        let inputs = crate::stages::evaluate::Inputs {
            zoo_name: &method.zoo,
            method: &method.name,
            role: &record.role,
            seed,
            samples: &samples,
            files,
            tasks: record.sample_tasks(),
            data: &data,
            zoo: &zoo,
            frame,
            metrics: &metrics,
            finetune_steps: &steps,
            recipe: &zoo_spec.train,
        };
        crate::stages::evaluate::run(&inputs, dir)
    }

    /// The zoo's frame, with the training checkpoints' predictions from its reference stage.
    pub(crate) fn frame(&mut self, zoo_name: &str) -> Result<&crate::stages::reference::ZooFrame> {
        if !self.frames.contains_key(zoo_name) {
            let mut frame = crate::stages::reference::ZooFrame::new(&*self.zoo(zoo_name)?);
            let dir = self.stage_dir(|k| matches!(k, StageKind::Reference { zoo } if zoo == zoo_name))?;
            frame.predictions = crate::stages::reference::read_predictions(&dir.join("predictions.safetensors"))?;
            self.frames.insert(zoo_name.to_string(), frame);
        }
        self.frames.get(zoo_name).ok_or_else(|| Error::Internal(format!("zoo `{zoo_name}` has no frame")))
    }

    /// The role of the method a method or probe stage runs: the manifest's, else what its
    /// plugin's metadata section says (read from the bytes resolved for this run; a name
    /// outside the three roles is not repeated).
    fn role_of(&self, stage: &Stage) -> Option<String> {
        let (StageKind::Method { index, .. } | StageKind::Probe { index, .. }) = &stage.kind else { return None };
        let method = self.loaded.manifest.method.get(*index)?;
        if let Some(role) = method.role {
            return Some(role.name().to_string());
        }
        let code = self.plugins.code(&method.plugin).ok()?;
        let role = weightlab_host::metadata::read(&code.bytes).ok()??.role;
        ["generator", "baseline", "probe"].contains(&role.as_str()).then_some(role)
    }

    pub(crate) fn base_dir(&self) -> &Path {
        &self.loaded.base_dir
    }
}

/// The method a stage runs, for the failures table ("" for zoo, data and reference stages).
fn stage_method(stage: &Stage) -> String {
    match &stage.kind {
        StageKind::Method { name, .. } | StageKind::Evaluate { name, .. } | StageKind::Probe { name, .. } => name.clone(),
        StageKind::Zoo { .. } | StageKind::ZooPart { .. } | StageKind::Reference { .. } | StageKind::Data { .. } | StageKind::Report => String::new(),
    }
}

/// Zoo `name`'s architecture completed with its data's shapes (a declared network that does
/// not fit is refused before training; `preflight` reports it with its place in the manifest).
pub(crate) fn arch_of(name: &str, spec: &weightlab_manifest::ZooSpec, data: &weightlab_compute::Dataset) -> Result<weightlab_compute::Arch> {
    weightlab_compute::Arch::new(&spec.arch, data).map_err(|e| Error::Training { zoo: name.to_string(), reason: e.to_string() })
}

/// Runs one stage so that a bug in weightlab (a panic: an index past the end, a failed
/// `expect`) fails that stage alone, like any other stage error, instead of ending the run
/// and losing what it has not written yet. The panic's own message (printed by the default
/// hook, with its place) stays above the stage's failure.
fn contain<T>(stage: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(stage)).unwrap_or_else(|payload| {
        let what = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic".into());
        Err(Error::Internal(format!("the stage stopped on a bug in weightlab ({what}); the rest of the run went on")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_stage_fails_alone_with_its_message() {
        let e = contain(|| -> Result<()> { panic!("index out of bounds: the len is 0 but the index is 0") }).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("internal error (please report it): the stage stopped on a bug in weightlab (index out of bounds"), "{text}");
        let e = contain(|| -> Result<()> { panic!("{} of {}", 3, 4) }).unwrap_err();
        assert!(e.to_string().contains("(3 of 4)"), "{e}");
        assert_eq!(contain(|| Ok(7)).unwrap(), 7);
    }
}
