//! Method stage: in a worker process (see `weightlab_host::worker`), load the plugin
//! (sandboxed), fit it on the zoo's training checkpoints, sample; then store the samples
//! (safetensors) and what the plugin logged. The plugin's config was checked against its
//! schema before any stage ran (`crate::config_check::before_run`).

use std::path::{Path, PathBuf};

use weightlab_compute::{Side, Zoo};
use weightlab_host::worker::{self, Conditioning, Job, Request};
use weightlab_host::{CheckpointView, Description, Limits, ParamView, PluginCode, Role, SourceView, ZooView, role_name};
use weightlab_manifest::{LimitsSpec, Loaded, MethodSpec};

use crate::error::{Error, Result, format, io};
use crate::executor::Run;
use crate::output;
use crate::plugins::Plugins;
use crate::records::{LoggedMetric, MethodLog, MethodRecord};
use crate::store::{read_tensor, write_tensor};

/// The host limits of a method's manifest entry.
pub fn limits(l: &LimitsSpec) -> Limits {
    Limits {
        timeout: std::time::Duration::from_secs_f64(l.timeout_secs),
        fuel: l.fuel,
        memory_bytes: (l.memory_mib as usize) << 20,
        tensor_bytes: l.tensor_memory_mib << 20,
        os_memory: l.worker_memory_mib.map(|m| m << 20),
    }
}

/// A request to run `job` for plugin `name` (whose component is `code`) in a worker process.
pub(crate) fn request(name: &str, code: &PluginCode, limits: Limits, job: Job) -> Request {
    Request::new(name, code, limits, weightlab_host::Runtime::default_cache_dir(), job)
}

/// Loads and describes the plugin `code` in a worker process.
pub fn describe_code(name: &str, code: &PluginCode, limits: Limits) -> Result<Description> {
    let (description, _) = worker::run_in_worker(&worker_exe()?, code, &request(name, code, limits, Job::Describe), &[], |_, _| {})?;
    Ok(description)
}

/// Loads and describes the plugin `code` in a worker process, and has it `check` each of
/// `checks`: its description and the problems found, one list per check.
pub fn check_code(name: &str, code: &PluginCode, limits: Limits, checks: Vec<worker::CheckRequest>) -> Result<(Description, Vec<Vec<weightlab_host::Problem>>)> {
    let (description, outcome) = worker::run_in_worker(&worker_exe()?, code, &request(name, code, limits, Job::Check { checks }), &[], |_, _| {})?;
    Ok((description, outcome.map(|o| o.problems).unwrap_or_default()))
}

/// Loads and describes a method's plugin in a worker process.
pub fn describe(method: &MethodSpec, plugins: &Plugins) -> Result<Description> {
    describe_code(&method.plugin, plugins.code(&method.plugin)?, limits(&method.limits))
}

/// This binary, which is also the worker. On Linux, `/proc/self/exe` names the running
/// binary's own file even when it was replaced on disk since the run started (a rebuild or an
/// upgrade mid-run), so later workers still start, and run the same code as the parent.
pub fn worker_exe() -> Result<PathBuf> {
    let proc_self = PathBuf::from("/proc/self/exe");
    if proc_self.exists() {
        return Ok(proc_self);
    }
    std::env::current_exe().map_err(io("finding the weightlab binary to start a worker", Path::new("weightlab")))
}

/// Checks a plugin's description against its manifest entry: role and config. Returns the
/// config as JSON.
pub fn check_plugin(loaded: &Loaded, index: usize, d: &Description) -> Result<serde_json::Value> {
    let method = &loaded.manifest.method[index];
    let located = |key: &str, message: String, help: Option<String>| Error::Manifest(crate::config_check::at_method_key(loaded, index, key, message, help));
    let role = role_name(d.role);
    if let Some(wanted) = method.role {
        let wanted = serde_json::to_value(wanted).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        if wanted != role {
            return Err(located("role", format!("method `{}`: plugin `{}` is a {role}, but the manifest says role = \"{wanted}\"", method.name, method.plugin), None));
        }
    }
    match (d.role == Role::Probe, method.is_probe()) {
        (true, false) => {
            let help = Some(format!("say what it predicts: `target = \"classes\"` (one of {})", weightlab_manifest::PROBE_TARGETS.join(", ")));
            return Err(located("plugin", format!("method `{}`: plugin `{}` is a probe, and probes need a `target`", method.name, method.plugin), help));
        }
        (false, true) => {
            return Err(located("target", format!("method `{}`: plugin `{}` is a {role}, not a probe, so it has no `target`", method.name, method.plugin), None));
        }
        _ => {}
    }
    let config = config_json(method)?;
    crate::config_check::check(loaded, index, &method.plugin, &d.config_schema, &config).map_err(Error::Manifest)?;
    Ok(config)
}

/// A method's `config` table as JSON (what plugins and their schemas read).
pub(crate) fn config_json(method: &MethodSpec) -> Result<serde_json::Value> {
    serde_json::to_value(&method.config).map_err(|e| Error::Config(format!("method `{}`: config: {e}", method.name)))
}

/// What a method sees of a zoo: layout, its training checkpoints' figures on the training and
/// validation data (never the test split), dataset identity.
pub fn zoo_view(name: &str, arch: &str, zoo: &Zoo, rows: &[usize], data: &weightlab_compute::data::Dataset) -> ZooView {
    let layout = layout_view(&zoo.layout());
    ZooView {
        name: name.to_string(),
        arch: arch.to_string(),
        parameters: zoo.layout().len() as u32,
        layout,
        checkpoints: rows.iter().map(|&i| checkpoint_view(&zoo.checkpoints[i], 0)).collect(),
        dataset: data.hash.clone(),
        classes: data.class_names.len() as u32,
        class_names: data.class_names.clone(),
        sources: Vec::new(),
    }
}

/// A flat layout as plugins see it.
pub(crate) fn layout_view(layout: &weightlab_compute::Layout) -> Vec<ParamView> {
    layout.params.iter().map(|p| ParamView { name: p.name.clone(), shape: p.shape.iter().map(|&d| d as u32).collect(), offset: p.offset as u32 }).collect()
}

/// What a method sees of one training checkpoint of source `source`.
fn checkpoint_view(c: &weightlab_compute::zoo::Checkpoint, source: u32) -> CheckpointView {
    CheckpointView {
        model: c.model as u32,
        epoch: c.epoch as u32,
        seed: c.seed,
        train_accuracy: c.train_accuracy,
        validation_accuracy: c.validation_accuracy,
        validation_loss: c.validation_loss,
        parent: c.parent.map(|p| p as u32),
        classes: c.classes.iter().flatten().map(|&k| k as u32).collect(),
        task: c.task.map(|t| t as u32),
        source,
    }
}

/// The training weights (rows × widest source, zero-padded), their view and their tasks.
struct Training {
    view: ZooView,
    weights: Vec<f32>,
    tasks: Vec<usize>,
    /// (source zoo, its number of rows), in row order.
    sources: Vec<(String, usize)>,
}

impl Run {
    /// The training checkpoints method `method` learns from: its zoo's, or those of its `zoos`
    /// (other architectures allowed), each row zero-padded to the widest.
    fn training(&mut self, method: &MethodSpec, zoo: &Zoo, data: &weightlab_compute::data::Dataset) -> Result<Training> {
        let arch_of = |loaded: &Loaded, name: &str| loaded.manifest.zoo.get(name).map(|z| z.arch.descriptor().plugin_arch.to_string()).unwrap_or_default();
        let mut view = zoo_view(&method.zoo, &arch_of(&self.loaded, &method.zoo), zoo, &[], data);
        let names: Vec<String> = if method.zoos.is_empty() { vec![method.zoo.clone()] } else { method.zoos.clone() };
        let zoos: Vec<std::sync::Arc<Zoo>> = names.iter().map(|n| self.zoo(n)).collect::<Result<_>>()?;
        let width = zoos.iter().map(|z| z.layout().len()).max().unwrap_or(0);
        let (mut weights, mut tasks, mut sources) = (Vec::new(), Vec::new(), Vec::new());
        for (s, (name, z)) in names.iter().zip(&zoos).enumerate() {
            let rows = z.side(Side::Train);
            for &i in &rows {
                let w = z.weights_of(i);
                weights.extend_from_slice(w);
                weights.extend(std::iter::repeat_n(0.0, width - w.len()));
                view.checkpoints.push(checkpoint_view(&z.checkpoints[i], s as u32));
                tasks.push(z.checkpoints[i].task.unwrap_or(0));
            }
            sources.push((name.clone(), rows.len()));
            if !method.zoos.is_empty() {
                view.sources.push(SourceView { zoo: name.clone(), arch: arch_of(&self.loaded, name), layout: layout_view(&z.layout()), parameters: z.layout().len() as u32 });
            }
        }
        if !method.zoos.is_empty() {
            let list: Vec<String> = view.sources.iter().map(|s| format!("{} ({} parameters)", s.zoo, s.parameters)).collect();
            output::detail(&format!("learning from {} checkpoints of {}; sampling zoo {}'s architecture ({} parameters)", view.checkpoints.len(), list.join(", "), method.zoo, view.parameters));
        }
        Ok(Training { view, weights, tasks, sources })
    }

    /// Runs a method's or probe's job in a worker with a progress bar, then checks the plugin's
    /// description against method `index` of the manifest: the same component described itself
    /// at the start of the run; it is checked again here, where it actually ran. `what` names
    /// the values a finished job returns, for the error when it returns none.
    pub(crate) fn run_job(&self, index: usize, code: &PluginCode, request: &Request, payload: &[f32], what: &str) -> Result<(Description, worker::Outcome)> {
        let bar = output::bar(0, "Fitting", "steps");
        let progress = bar.clone();
        let ran = worker::run_in_worker(&worker_exe()?, code, request, payload, move |done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        });
        bar.finish_and_clear();
        let (description, outcome) = ran?;
        check_plugin(&self.loaded, index, &description)?;
        let outcome = outcome.ok_or_else(|| Error::Missing(format!("the worker returned no {what}")))?;
        Ok((description, outcome))
    }

    pub(crate) fn run_method(&mut self, index: usize, seed: u64, dir: &Path) -> Result<MethodRecord> {
        let method = self.loaded.manifest.method[index].clone();
        if let Some(folder) = &method.import {
            return self.import_samples(&method, &self.base_dir().join(folder), dir);
        }
        output::status("Running", &format!("method \"{}\" ({}) seed {seed}", method.name, method.plugin));
        let zoo_spec = self.loaded.manifest.zoo[&method.zoo].clone();
        let data = self.dataset(&zoo_spec.data)?;
        let zoo = self.zoo(&method.zoo)?;
        let config = config_json(&method)?;
        let Training { view, weights: mut payload, tasks: train_tasks, sources } = self.training(&method, &zoo, &data)?;
        let rows = view.checkpoints.len();
        let (conditioning, targets) = match self.conditions(&method.zoo)? {
            Some(c) => {
                // Each source zoo's rows get its own conditions (their instructions name its
                // architecture); targets are the method's zoo's held-out and OOD tasks.
                let (mut support, mut instruction) = (Vec::new(), Vec::new());
                let mut at = 0;
                for (name, n) in &sources {
                    let mine = self.conditions(name)?.ok_or_else(|| Error::Config(format!("method `{}`: zoo `{name}` is not on a task family, and `{}` is", method.name, method.zoo)))?;
                    let (s, i) = mine.rows(&train_tasks[at..at + n]);
                    support.extend(s);
                    instruction.extend(i);
                    at += n;
                }
                let targets = c.targets();
                // The control gives every target the condition of the target half a list away.
                let given: Vec<usize> = if method.wrong_condition { (0..targets.len()).map(|i| targets[(i + targets.len() / 2) % targets.len()]).collect() } else { targets.clone() };
                let (target_support, target_instruction) = c.rows(&given);
                payload.extend(support.into_iter().chain(instruction).chain(target_support).chain(target_instruction));
                output::detail(&format!(
                    "conditioned on {} tasks; sampling {} per target task for {} held-out and out-of-distribution tasks{}",
                    c.tasks.len() - targets.len(),
                    method.samples,
                    targets.len(),
                    if method.wrong_condition { " (control: each given another task's condition)" } else { "" }
                ));
                let conditioning = Conditioning { support_dim: c.support_dim, instruction_dim: c.instruction_dim, targets: given.iter().map(|&t| t as u32).collect() };
                (conditioning, targets)
            }
            None => (Conditioning::default(), Vec::new()),
        };
        let (total, p) = (conditioning.total(method.samples), zoo.layout().len());
        let job = Job::Run { zoo: view, rows, config, seed, sample_seed: seed.wrapping_mul(0x9E37_79B9).wrapping_add(1), samples: method.samples, conditioning };
        let code = self.plugins.code(&method.plugin)?.clone();
        let request = request(&method.plugin, &code, limits(&method.limits), job);
        let (description, outcome) = self.run_job(index, &code, &request, &payload, "samples")?;
        let bytes: Vec<u8> = outcome.samples.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_tensor(&dir.join("samples.safetensors"), "samples", safetensors::Dtype::F32, vec![total, p], &bytes)?;
        write_log(dir, &outcome)?;
        let d = &description;
        output::detail(&format!("fit {:.2}s, sample {:.2}s, peak tensor memory {}", outcome.fit_seconds, outcome.sample_seconds, weightlab_host::budget::Size(outcome.peak_tensor_bytes)));
        Ok(MethodRecord {
            plugin: d.name.clone(),
            version: d.version.clone(),
            abi: d.abi.clone(),
            role: role_name(d.role).to_string(),
            hash: code.sha256.clone(),
            samples: method.samples,
            parameters: p,
            fit_seconds: outcome.fit_seconds,
            sample_seconds: outcome.sample_seconds,
            peak_tensor_mib: outcome.peak_tensor_bytes as f64 / (1 << 20) as f64,
            peak_rss_mib: outcome.peak_rss_bytes.map(|b| b as f64 / (1 << 20) as f64),
            targets,
        })
    }
}

impl Run {
    /// An imported method's "run": its folder's state_dicts, in file-name order, checked
    /// against the zoo's architecture (a mismatch names the file, the tensor and its layer) and
    /// stored as the method's samples, with the file names beside them (`files.json`).
    fn import_samples(&mut self, method: &MethodSpec, folder: &Path, dir: &Path) -> Result<MethodRecord> {
        output::status("Importing", &format!("samples of \"{}\" from {}", method.name, folder.display()));
        let zoo = self.zoo(&method.zoo)?;
        // The bytes scored are the bytes the plan's key was made from.
        let (files, hash) = crate::plugins::read_import(folder).map_err(Error::Missing)?;
        let planned = self.plugins.identity(&method.source_key());
        if hash != planned {
            return Err(Error::Config(format!("method `{}`: the files of {} changed since the run started (sha256 {hash}, planned {planned}); run again", method.name, folder.display())));
        }
        let p = zoo.layout().len();
        let mut samples = Vec::with_capacity(files.len() * p);
        for (file, bytes) in &files {
            samples.extend(weightlab_compute::zoo::store::parse_state_dict(&zoo.arch, file, bytes)?);
        }
        let names: Vec<String> = files.iter().map(|(f, _)| f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
        let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_tensor(&dir.join("samples.safetensors"), "samples", safetensors::Dtype::F32, vec![files.len(), p], &bytes)?;
        let path = dir.join(IMPORTED_FILES);
        std::fs::write(&path, serde_json::to_vec(&names).map_err(format(&path))?).map_err(io("writing", &path))?;
        output::detail(&format!("{} state_dicts of {p} parameters", files.len()));
        Ok(MethodRecord {
            plugin: "import".into(),
            version: String::new(),
            abi: String::new(),
            role: IMPORTED_ROLE.into(),
            hash,
            samples: files.len(),
            parameters: p,
            fit_seconds: 0.0,
            sample_seconds: 0.0,
            peak_tensor_mib: 0.0,
            peak_rss_mib: None,
            targets: Vec::new(),
        })
    }
}

/// The role of samples imported from a folder, in every table and plot.
pub const IMPORTED_ROLE: &str = "imported";
/// The file names of imported samples, in sample order, in the method stage's folder.
pub const IMPORTED_FILES: &str = "files.json";

/// The file each sample of a method stage was imported from (empty for a plugin's samples).
pub fn imported_files(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(IMPORTED_FILES);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = weightlab_manifest::files::read_regular(&path, 64 << 20).map_err(io("reading", &path))?;
    serde_json::from_slice(&bytes).map_err(format(&path))
}

/// Stores what a plugin logged (`log.json`: metrics and messages) in its stage folder. A value
/// that is not finite is kept as NaN in training_log (`null` in log.json: JSON has no NaN), with a warning naming the
/// metric: the job's samples stay.
pub(crate) fn write_log(dir: &Path, outcome: &worker::Outcome) -> Result<()> {
    let mut non_finite: Vec<&str> = outcome.metrics.iter().filter(|m| !m.value.is_finite()).map(|m| m.name.as_str()).collect();
    if !non_finite.is_empty() {
        let count = non_finite.len();
        non_finite.sort_unstable();
        non_finite.dedup();
        output::warn(&format!("the plugin logged {count} non-finite value(s) of {}: kept as NaN in training_log", non_finite.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
    }
    let log = MethodLog {
        metrics: outcome.metrics.iter().map(|m| LoggedMetric { name: m.name.clone(), step: m.step, value: Some(m.value).filter(|v| v.is_finite()) }).collect(),
        messages: outcome.messages.clone(),
    };
    let path = dir.join("log.json");
    std::fs::write(&path, serde_json::to_vec(&log).map_err(format(&path))?).map_err(io("writing", &path))
}

/// Reads the samples a method stage stored.
pub fn read_samples(dir: &Path) -> Result<(usize, Vec<f32>)> {
    let (shape, bytes) = read_tensor(&dir.join("samples.safetensors"), "samples")?;
    Ok((shape.first().copied().unwrap_or(0), bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}
