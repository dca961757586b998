//! One loaded plugin and the calls the engine makes into it. Every way a plugin can go wrong —
//! a trap or panic, running out of time, fuel or memory, returning the wrong shape or
//! non-finite values — comes back as a [`PluginError`] naming the plugin, the call and the
//! reason; the engine itself never panics on a plugin's account.

use std::path::{Path, PathBuf};

use wasmtime::component::Resource;
use wasmtime::{Store, StoreLimitsBuilder, Trap};

use crate::bindings::Generator;
use crate::bindings::exports::weightlab::plugin::method;
use crate::bindings::weightlab::plugin::{types, zoo};
use crate::limits::Limits;
use crate::probe_bindings::ProbePlugin;
use crate::probe_bindings::exports::weightlab::plugin::probe;
use crate::runtime::{Runtime, TICK};
use crate::state::PluginState;

pub use types::Role;

/// The manifest's name of a role: `generator`, `baseline` or `probe`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Generator => "generator",
        Role::Baseline => "baseline",
        Role::Probe => "probe",
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub role: Role,
    pub about: String,
    /// JSON Schema of its config.
    pub config_schema: serde_json::Value,
    /// The `weightlab:plugin` ABI version it was built against.
    pub abi: String,
}

impl Description {
    /// The description with its text cleaned and bounded as plugin text is
    /// ([`crate::untrusted`]), and its config schema checked against the subset plugins may
    /// use ([`crate::config_schema`]); `Err` says why it is refused.
    pub fn checked(self) -> Result<Description, String> {
        use crate::untrusted::{ABOUT_BYTES, NAME_BYTES, line, text};
        crate::config_schema::check(&self.config_schema).map_err(|e| e.to_string())?;
        Ok(Description {
            name: line(&self.name, NAME_BYTES),
            version: line(&self.version, NAME_BYTES),
            role: self.role,
            about: text(&self.about, ABOUT_BYTES),
            config_schema: self.config_schema,
            abi: line(&self.abi, NAME_BYTES),
        })
    }
}

/// What the host tells a conditional generator about tasks, as plain data: matrices with one
/// row per training checkpoint (`fit`) or one row for the target task (`sample`), row-major
/// with their widths. Empty (the default) when the zoo's data is not a task family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions<'a> {
    /// The target task's id (`sample` only).
    pub task: Option<u32>,
    /// Set encodings of the tasks' support examples, and their width.
    pub support: Option<(&'a [f32], usize)>,
    /// Text embeddings of the tasks' instructions, and their width.
    pub instruction: Option<(&'a [f32], usize)>,
}

/// A failed plugin call.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` failed in {call}: {reason}")]
pub struct PluginError {
    pub plugin: String,
    /// load, describe, fit or sample.
    pub call: &'static str,
    pub reason: String,
    /// Peak resident memory of the worker process the call ran in, when it ran in one.
    pub peak_rss_bytes: Option<u64>,
}

/// One named tensor in a model's flat parameter vector (PyTorch state_dict name).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamView {
    pub name: String,
    pub shape: Vec<u32>,
    pub offset: u32,
}

/// What a method sees of one training checkpoint: figures from the training split and the
/// validation subset only, never from the test split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointView {
    pub model: u32,
    pub epoch: u32,
    pub seed: u64,
    pub train_accuracy: Option<f32>,
    pub validation_accuracy: Option<f32>,
    /// NaN where there are no validation examples (`null` in JSON).
    #[serde(deserialize_with = "weightlab_manifest::json::nan_if_null")]
    pub validation_loss: f32,
    pub parent: Option<u32>,
    /// Classes trained on (a model-tree child's subset); empty: all.
    #[serde(default)]
    pub classes: Vec<u32>,
    /// Task the model learned (a shape of a many-shape dataset, a task of a task family).
    #[serde(default)]
    pub task: Option<u32>,
    /// Its architecture: an index into [`ZooView::sources`].
    #[serde(default)]
    pub source: u32,
}

/// One architecture the training checkpoints come in (the WIT `source` record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceView {
    pub zoo: String,
    pub arch: String,
    pub layout: Vec<ParamView>,
    pub parameters: u32,
}

/// What kind of property a probe predicts (the WIT `target-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A set of labels (0/1 per label); predictions are a score per label.
    MultiLabel,
    /// One label of several (its index); predictions are a score per label.
    SingleLabel,
    /// A number.
    Regression,
}

/// The property a probe learns to predict (the WIT `target` record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeTarget {
    pub name: String,
    pub kind: TargetKind,
    /// Label names; empty for regression.
    pub labels: Vec<String>,
}

impl ProbeTarget {
    /// Columns of the labels tensor.
    pub fn label_columns(&self) -> usize {
        match self.kind {
            TargetKind::MultiLabel => self.labels.len(),
            TargetKind::SingleLabel | TargetKind::Regression => 1,
        }
    }

    /// Columns of the predictions over `labels` labels.
    pub fn prediction_columns(&self, labels: usize) -> usize {
        match self.kind {
            TargetKind::Regression => 1,
            _ => labels,
        }
    }

    fn to_wit(&self) -> probe::Target {
        probe::Target {
            name: self.name.clone(),
            kind: match self.kind {
                TargetKind::MultiLabel => probe::TargetKind::MultiLabel,
                TargetKind::SingleLabel => probe::TargetKind::SingleLabel,
                TargetKind::Regression => probe::TargetKind::Regression,
            },
            labels: self.labels.clone(),
        }
    }
}

impl PluginError {
    /// A failure of `call` in `plugin`; the worker's peak memory is added where it is known.
    /// The reason is plugin text (a plugin's own error, its panic message): it is cleaned and
    /// cut to [`crate::untrusted::REASON_BYTES`].
    pub fn new(plugin: impl Into<String>, call: &'static str, reason: impl Into<String>) -> Self {
        use crate::untrusted::{NAME_BYTES, REASON_BYTES, line, text};
        Self { plugin: line(&plugin.into(), NAME_BYTES), call, reason: text(&reason.into(), REASON_BYTES), peak_rss_bytes: None }
    }
}

/// The zoo as a method sees it (the WIT `zoo-info` record as plain data).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ZooView {
    pub name: String,
    /// Architecture kind as plugins know it, e.g. "mlp" or "cnn-s".
    pub arch: String,
    pub layout: Vec<ParamView>,
    pub parameters: u32,
    pub checkpoints: Vec<CheckpointView>,
    /// Content hash of the training and validation examples.
    pub dataset: String,
    pub classes: u32,
    /// Names of the classes; empty for regression.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// The training checkpoints' architectures when they come from several zoos; empty: all
    /// are this zoo's (`layout`).
    #[serde(default)]
    pub sources: Vec<SourceView>,
}

fn params_wit(layout: &[ParamView]) -> Vec<zoo::Param> {
    layout.iter().map(|p| zoo::Param { name: p.name.clone(), shape: p.shape.clone(), offset: p.offset }).collect()
}

fn sources_wit(sources: &[SourceView]) -> Vec<zoo::Source> {
    sources.iter().map(|s| zoo::Source { zoo: s.zoo.clone(), arch: s.arch.clone(), layout: params_wit(&s.layout), parameters: s.parameters }).collect()
}

/// What the manifest says of a zoo before anything trains (the WIT `zoo-plan` record): what
/// a plugin's `check` sees.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ZooPlan {
    pub name: String,
    pub arch: String,
    pub layout: Vec<ParamView>,
    pub parameters: u32,
    /// The training checkpoints' architectures when they come from several zoos; empty: all
    /// are this zoo's.
    #[serde(default)]
    pub sources: Vec<SourceView>,
    /// Training checkpoints `fit` will get, when known before training.
    pub checkpoints: Option<u32>,
    pub classes: u32,
    #[serde(default)]
    pub class_names: Vec<String>,
    pub task_family: bool,
}

impl ZooPlan {
    fn to_wit(&self) -> zoo::ZooPlan {
        zoo::ZooPlan {
            name: self.name.clone(),
            arch: self.arch.clone(),
            layout: params_wit(&self.layout),
            parameters: self.parameters,
            sources: sources_wit(&sources_or_own(&self.sources, &self.name, &self.arch, &self.layout, self.parameters)),
            checkpoints: self.checkpoints,
            classes: self.classes,
            class_names: self.class_names.clone(),
            task_family: self.task_family,
        }
    }
}

/// `sources`, or (when empty) the one architecture of a zoo of one.
fn sources_or_own(sources: &[SourceView], name: &str, arch: &str, layout: &[ParamView], parameters: u32) -> Vec<SourceView> {
    if sources.is_empty() { vec![SourceView { zoo: name.to_string(), arch: arch.to_string(), layout: layout.to_vec(), parameters }] } else { sources.to_vec() }
}

/// A mistake a plugin's `check` found in a config: the key at fault (none: the whole config).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub key: Option<String>,
    pub message: String,
}

/// Most problems one `check` call may report, and the longest key: a plugin's words are
/// untrusted.
pub const MAX_PROBLEMS: usize = 32;
const KEY_BYTES: usize = 128;
/// Most configs one check job may carry (one per method of a manifest that uses the plugin).
pub const MAX_CHECKS: usize = 4096;

/// `problems` cut to [`MAX_PROBLEMS`], each key to one short line and each message to a
/// bounded reason.
pub fn bounded_problems(problems: Vec<Problem>) -> Vec<Problem> {
    use crate::untrusted::{REASON_BYTES, line, text};
    problems.into_iter().take(MAX_PROBLEMS).map(|p| Problem { key: p.key.map(|k| line(&k, KEY_BYTES)).filter(|k| !k.is_empty()), message: text(&p.message, REASON_BYTES) }).collect()
}

impl ZooView {
    /// Width of the training weights: the widest source's parameters (this zoo's alone
    /// without sources).
    pub fn width(&self) -> usize {
        self.sources.iter().map(|s| s.parameters).max().unwrap_or(self.parameters) as usize
    }

    /// The architectures of the training checkpoints: [`ZooView::sources`], or this zoo's
    /// alone.
    pub fn source_list(&self) -> Vec<SourceView> {
        sources_or_own(&self.sources, &self.name, &self.arch, &self.layout, self.parameters)
    }

    fn to_wit(&self) -> zoo::ZooInfo {
        let sources = sources_wit(&self.source_list());
        zoo::ZooInfo {
            name: self.name.clone(),
            arch: self.arch.clone(),
            layout: params_wit(&self.layout),
            parameters: self.parameters,
            sources,
            checkpoints: self
                .checkpoints
                .iter()
                .map(|c| zoo::Checkpoint {
                    model: c.model,
                    epoch: c.epoch,
                    seed: c.seed,
                    train_accuracy: c.train_accuracy,
                    validation_accuracy: c.validation_accuracy,
                    validation_loss: c.validation_loss,
                    parent: c.parent,
                    classes: c.classes.clone(),
                    task: c.task,
                    source: c.source,
                })
                .collect(),
            dataset: self.dataset.clone(),
            classes: self.classes,
            class_names: self.class_names.clone(),
        }
    }
}

/// The exports of an instantiated plugin: a method (generator or baseline) or a probe.
enum Exports {
    Method(Generator),
    Probe(ProbePlugin),
    /// Built against an older WIT version.
    Legacy(crate::compat::Legacy),
}

impl Exports {
    fn is_probe(&self) -> bool {
        match self {
            Exports::Method(_) => false,
            Exports::Probe(_) => true,
            Exports::Legacy(l) => l.is_probe(),
        }
    }
}

/// A loaded, instantiated plugin.
pub struct Plugin {
    name: String,
    path: PathBuf,
    store: Store<PluginState>,
    bindings: Exports,
    limits: Limits,
    pub description: Description,
}

impl Plugin {
    /// Compiles (cached), checks the ABI, instantiates and describes the plugin whose
    /// component is `code` (bytes the caller has read and hashed: never re-read from a path).
    /// `seed` seeds the WASI randomness the plugin may draw (use the method seed).
    pub fn load(runtime: &Runtime, name: &str, code: &crate::PluginCode, limits: Limits, seed: u64) -> Result<Plugin, PluginError> {
        let fail = |call: &'static str, reason: String| PluginError::new(name.to_string(), call, reason);
        let path = code.path.as_path();
        let (versions, bytes) = crate::metadata::for_loading(&code.bytes).map_err(|e| fail("load", format!("{}: {e}", path.display())))?;
        let Some(abi) = versions.first().cloned() else {
            return Err(fail("load", format!("{} does not use the weightlab:plugin interfaces; is it a weightlab plugin?", path.display())));
        };
        let known = |v: &str| crate::abi::compatible(crate::ABI_VERSION, v) || crate::compat::supported(v).is_some();
        if let Some(bad) = versions.iter().find(|v| !known(v)) {
            return Err(fail(
                "load",
                format!(
                    "built against weightlab:plugin@{bad}, but this engine runs @{} and the older {}; rebuild the plugin against plugins/wit of this version",
                    crate::ABI_VERSION,
                    crate::compat::SUPPORTED.iter().map(|v| format!("@{v}")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if versions.iter().any(|v| !crate::abi::compatible(&abi, v)) {
            return Err(fail("load", format!("mixes WIT versions {}: build it against one version of plugins/wit", versions.join(", "))));
        }
        // A plugin built against an older frozen version is adapted (see `compat`).
        let legacy = if crate::abi::compatible(crate::ABI_VERSION, &abi) { None } else { crate::compat::supported(&abi) };
        let bytes = match legacy {
            Some(_) => crate::compat::relabel(&bytes, &abi, crate::ABI_VERSION).map_err(|e| fail("load", e))?,
            None => bytes,
        };
        let component = runtime.compile(&bytes, &path.display().to_string()).map_err(|e| fail("load", format!("{e:#}")))?;
        let store_limits = StoreLimitsBuilder::new().memory_size(limits.memory_bytes).instances(4).tables(16).memories(4).build();
        let mut store = Store::new(&runtime.engine, PluginState::new(store_limits, limits.tensor_bytes, seed));
        store.limiter(|s| s);
        Self::arm(&mut store, &limits);
        let is_probe = component.component_type().exports(&runtime.engine).any(|(n, _)| n.starts_with("weightlab:plugin/probe@"));
        let instantiated = match legacy {
            Some(minor) => crate::compat::Legacy::instantiate(minor, is_probe, &mut store, &component, &runtime.linker).map(Exports::Legacy),
            None if is_probe => ProbePlugin::instantiate(&mut store, &component, &runtime.linker).map(Exports::Probe),
            None => Generator::instantiate(&mut store, &component, &runtime.linker).map(Exports::Method),
        };
        let bindings = instantiated.map_err(|e| {
            let reason = format!("{e:#}");
            fail(
                "load",
                if reason.contains("matching implementation") || reason.contains("import") {
                    format!("cannot link: {reason} (plugins may import only weightlab:plugin interfaces and the sandboxed WASI)")
                } else {
                    reason
                },
            )
        })?;
        let mut plugin = Plugin {
            name: name.to_string(),
            path: path.to_path_buf(),
            store,
            bindings,
            limits,
            description: Description { name: name.into(), version: String::new(), role: Role::Baseline, about: String::new(), config_schema: serde_json::json!({}), abi: abi.clone() },
        };
        plugin.description = plugin.describe()?;
        plugin.description.abi = abi;
        Ok(plugin)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the fuel and the wall-clock deadline for the next call.
    fn arm(store: &mut Store<PluginState>, limits: &Limits) {
        let _ = store.set_fuel(limits.fuel);
        let ticks = (limits.timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
    }

    /// Turns a wasmtime error into a readable reason.
    fn reason(&self, e: &anyhow::Error) -> String {
        let stderr = self.store.data().stderr_text();
        let panic = stderr.lines().skip_while(|l| !l.contains("panicked")).take(3).filter(|l| !l.starts_with("note:")).collect::<Vec<_>>().join(" ");
        match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => format!("ran out of fuel: used its CPU budget of {} units (raise `limits.fuel`)", self.limits.fuel),
            Some(Trap::Interrupt) => format!("time limit {:.0?} exceeded (raise `limits.timeout_secs`)", self.limits.timeout),
            Some(Trap::UnreachableCodeReached) if !panic.is_empty() => format!("panicked: {panic}"),
            Some(trap) if stderr.contains("memory allocation") => format!("ran out of memory (cap {} MiB, `limits.memory_mib`): {trap}", self.limits.memory_bytes >> 20),
            Some(trap) => {
                let detail = if panic.is_empty() { String::new() } else { format!(" ({panic})") };
                format!("trapped: {trap}{detail}")
            }
            // A host error (e.g. the tensor-memory cap): the cause first, then where.
            None => {
                // libtorch's messages carry C++ stack frames after their first line: drop them.
                let chain: Vec<String> =
                    e.chain().map(|c| c.to_string().lines().next().unwrap_or_default().trim().to_string()).filter(|c| !c.starts_with("error while executing at wasm backtrace")).collect();
                match chain.iter().find(|c| c.starts_with("tensor-memory cap")) {
                    Some(cause) => cause.clone(),
                    None => chain.last().cloned().map(|root| if chain.len() > 1 { format!("{root} (in {})", chain[..chain.len() - 1].join(": ")) } else { root }).unwrap_or_default(),
                }
            }
        }
    }

    fn call<T>(&mut self, call: &'static str, f: impl FnOnce(&Exports, &mut Store<PluginState>) -> anyhow::Result<T>) -> Result<T, PluginError> {
        Self::arm(&mut self.store, &self.limits);
        crate::limits::set_in_progress(Some(crate::limits::CallInProgress {
            call,
            timeout: self.limits.timeout,
            deadline: std::time::Instant::now() + self.limits.timeout,
            activity: self.store.data().activity.clone(),
        }));
        let result = f(&self.bindings, &mut self.store);
        crate::limits::set_in_progress(None);
        result.map_err(|e| PluginError::new(self.name.clone(), call, self.reason(&e)))
    }

    fn describe(&mut self) -> Result<Description, PluginError> {
        let d = self.call("describe", |b, s| match b {
            Exports::Method(m) => Ok(m.weightlab_plugin_method().call_describe(s)?),
            Exports::Probe(p) => Ok(p.weightlab_plugin_probe().call_describe(s)?),
            Exports::Legacy(l) => Ok(l.describe(s)?),
        })?;
        let refuse = |reason: String| PluginError::new(self.name.clone(), "describe", reason);
        if d.config_schema.len() > crate::untrusted::SCHEMA_BYTES {
            return Err(refuse(format!("config schema is {} bytes, more than the {} allowed", d.config_schema.len(), crate::untrusted::SCHEMA_BYTES)));
        }
        let config_schema = serde_json::from_str(&d.config_schema).map_err(|e| refuse(format!("config schema is not JSON: {e}")))?;
        Description { name: d.name, version: d.version, role: d.role, about: d.about, config_schema, abi: String::new() }.checked().map_err(refuse)
    }

    /// The plugin's `check` of `config` for the zoo `plan` (and, for a probe, `target`): the
    /// mistakes it finds before anything trains, bounded in number and size. Plugins built
    /// before WIT 0.5 cannot check: none.
    pub fn check(&mut self, plan: &ZooPlan, target: Option<&ProbeTarget>, config: &serde_json::Value) -> Result<Vec<Problem>, PluginError> {
        let plan_wit = plan.to_wit();
        let config = config.to_string();
        let target = target.cloned().unwrap_or(ProbeTarget { name: String::new(), kind: TargetKind::Regression, labels: Vec::new() });
        let target_wit = target.to_wit();
        let found = self.call("check", |b, s| match b {
            Exports::Method(m) => Ok(m.weightlab_plugin_method().call_check(s, &plan_wit, &config)?),
            Exports::Probe(p) => Ok(p.weightlab_plugin_probe().call_check(s, &plan_wit, &target_wit, &config)?),
            Exports::Legacy(_) => Ok(Vec::new()),
        })?;
        Ok(bounded_problems(found.into_iter().map(|p| Problem { key: p.key, message: p.message }).collect()))
    }

    fn wrong_role(&self, call: &'static str) -> PluginError {
        let role = if self.bindings.is_probe() { "a probe" } else { "a generator or baseline" };
        PluginError::new(self.name.clone(), call, format!("is {role}, which has no `{call}`"))
    }

    /// `values` (a row-major `cols`-column matrix) as a host tensor the plugin may borrow.
    fn matrix(&mut self, values: &[f32], cols: usize, call: &'static str) -> Result<Resource<crate::tensors::TensorEntry>, PluginError> {
        let rows = values.len().checked_div(cols).unwrap_or(0);
        self.host_tensor(tch::Tensor::from_slice(values).reshape([rows as i64, cols as i64]).to_device(crate::tensors::device()), call)
    }

    /// Fits the method on `weights` (rows × P, row-major), each row with its `conditions`.
    pub fn fit(&mut self, zoo: &ZooView, weights: &[f32], conditions: &Conditions, config: &serde_json::Value, seed: u64) -> Result<(), PluginError> {
        if self.bindings.is_probe() {
            return Err(self.wrong_role("fit"));
        }
        let width = zoo.width();
        let zoo_wit = &zoo.to_wit();
        let handle = self.matrix(weights, width, "fit")?;
        let (support, instruction) = self.condition_tensors(conditions, "fit")?;
        let config = config.to_string();
        let result = self.call("fit", |b, s| match b {
            Exports::Method(m) => {
                let condition = method::Condition { task: conditions.task, support: support.as_ref().map(crate::tensors::borrow), instruction: instruction.as_ref().map(crate::tensors::borrow) };
                Ok(m.weightlab_plugin_method().call_fit(&mut *s, zoo_wit, crate::tensors::borrow(&handle), condition, &config, seed)?)
            }
            Exports::Legacy(l) => {
                let condition = crate::compat::Condition { task: conditions.task, support: support.as_ref(), instruction: instruction.as_ref() };
                Ok(l.fit(s, zoo, &handle, &condition, &config, seed)?)
            }
            Exports::Probe(_) => unreachable!("checked above"),
        });
        self.drop_tensor(handle);
        support.into_iter().chain(instruction).for_each(|t| self.drop_tensor(t));
        result?.map_err(|reason| PluginError::new(self.name.clone(), "fit", reason))
    }

    /// Samples `n` flat weight vectors of length `p` for the task `conditions` describes;
    /// checks their shape and that they are finite.
    pub fn sample(&mut self, n: usize, p: usize, seed: u64, conditions: &Conditions) -> Result<Vec<f32>, PluginError> {
        if self.bindings.is_probe() {
            return Err(self.wrong_role("sample"));
        }
        let (support, instruction) = self.condition_tensors(conditions, "sample")?;
        let out = self.call("sample", |b, s| match b {
            Exports::Method(m) => {
                let condition = method::Condition { task: conditions.task, support: support.as_ref().map(crate::tensors::borrow), instruction: instruction.as_ref().map(crate::tensors::borrow) };
                Ok(m.weightlab_plugin_method().call_sample(s, n as u32, seed, condition)?)
            }
            Exports::Legacy(l) => {
                let condition = crate::compat::Condition { task: conditions.task, support: support.as_ref(), instruction: instruction.as_ref() };
                Ok(l.sample(s, n as u32, seed, &condition)?)
            }
            Exports::Probe(_) => unreachable!("checked above"),
        });
        support.into_iter().chain(instruction).for_each(|t| self.drop_tensor(t));
        let handle = out?.map_err(|reason| PluginError::new(self.name.clone(), "sample", reason))?;
        self.take_matrix(handle, "sample", n, p, "samples × parameters")
    }

    /// Host tensors for the two condition matrices that are given.
    #[allow(clippy::type_complexity)]
    fn condition_tensors(&mut self, c: &Conditions, call: &'static str) -> Result<(Option<Resource<crate::tensors::TensorEntry>>, Option<Resource<crate::tensors::TensorEntry>>), PluginError> {
        let support = c.support.map(|(values, dim)| self.matrix(values, dim, call)).transpose()?;
        let instruction = c.instruction.map(|(values, dim)| self.matrix(values, dim, call)).transpose()?;
        Ok((support, instruction))
    }

    /// Fits a probe on `weights` (rows × P) with `labels` (rows × `target.label_columns()`);
    /// `label_embeddings` (labels × dim, row-major) when the probe asked for them.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_probe(
        &mut self,
        zoo: &ZooView,
        weights: &[f32],
        labels: &[f32],
        target: &ProbeTarget,
        label_embeddings: Option<(&[f32], usize)>,
        config: &serde_json::Value,
        seed: u64,
    ) -> Result<(), PluginError> {
        if !self.bindings.is_probe() {
            return Err(self.wrong_role("fit-probe"));
        }
        let zoo_wit = &zoo.to_wit();
        let columns = target.label_columns().max(1);
        let target_wit = target.to_wit();
        let w = self.matrix(weights, zoo.parameters as usize, "fit")?;
        let y = self.matrix(labels, columns, "fit")?;
        let e = label_embeddings.map(|(values, dim)| self.matrix(values, dim, "fit")).transpose()?;
        let config = config.to_string();
        let result = self.call("fit", |b, s| match b {
            Exports::Probe(p) => {
                Ok(p.weightlab_plugin_probe().call_fit(&mut *s, zoo_wit, crate::tensors::borrow(&w), crate::tensors::borrow(&y), &target_wit, e.as_ref().map(crate::tensors::borrow), &config, seed)?)
            }
            Exports::Legacy(l) => Ok(l.fit_probe(s, zoo, &w, &y, target, e.as_ref(), &config, seed)?),
            Exports::Method(_) => unreachable!("checked above"),
        });
        self.drop_tensor(w);
        self.drop_tensor(y);
        if let Some(e) = e {
            self.drop_tensor(e);
        }
        result?.map_err(|reason| PluginError::new(self.name.clone(), "fit", reason))
    }

    /// A fitted probe's predictions for `weights` (rows × `p`): rows × `columns`, checked for
    /// shape and finiteness. `label_embeddings` (labels × dim) name the labels to score.
    pub fn predict(&mut self, weights: &[f32], p: usize, label_embeddings: Option<(&[f32], usize)>, columns: usize) -> Result<Vec<f32>, PluginError> {
        if !self.bindings.is_probe() {
            return Err(self.wrong_role("predict"));
        }
        let rows = weights.len().checked_div(p).unwrap_or(0);
        let w = self.matrix(weights, p, "predict")?;
        let e = label_embeddings.map(|(values, dim)| self.matrix(values, dim, "predict")).transpose()?;
        let out = self.call("predict", |b, s| match b {
            Exports::Probe(p) => Ok(p.weightlab_plugin_probe().call_predict(&mut *s, crate::tensors::borrow(&w), e.as_ref().map(crate::tensors::borrow))?),
            Exports::Legacy(l) => Ok(l.predict(s, &w, e.as_ref())?),
            Exports::Method(_) => unreachable!("checked above"),
        });
        self.drop_tensor(w);
        if let Some(e) = e {
            self.drop_tensor(e);
        }
        let handle = out?.map_err(|reason| PluginError::new(self.name.clone(), "predict", reason))?;
        self.take_matrix(handle, "predict", rows, columns, "models × labels")
    }

    /// The values of a tensor the plugin returned, checked to be `rows × cols` and finite; the
    /// handle is dropped.
    fn take_matrix(&mut self, handle: Resource<crate::tensors::TensorEntry>, call: &'static str, rows: usize, cols: usize, what: &str) -> Result<Vec<f32>, PluginError> {
        let plugin = self.name.clone();
        let fail = |reason: String| PluginError::new(plugin.clone(), call, reason);
        let tensor = {
            let data = self.store.data();
            data.tensor(&handle).map(|t| t.shallow_clone())
        };
        self.drop_tensor(handle);
        let tensor = tensor.map_err(|e| fail(format!("returned an invalid tensor handle: {e}")))?;
        let shape = tensor.size();
        if shape != [rows as i64, cols as i64] {
            return Err(fail(format!("returned a tensor of shape {shape:?}; expected [{rows}, {cols}] ({what})")));
        }
        let values = Vec::<f32>::try_from(tensor.contiguous().view([-1]).to_device(tch::Device::Cpu)).map_err(|e| fail(e.to_string()))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            return Err(fail(format!("returned {bad} non-finite values (first at row {}, column {}: {})", i / cols.max(1), i % cols.max(1), values[i])));
        }
        Ok(values)
    }

    /// Metrics the plugin logged so far.
    pub fn take_metrics(&mut self) -> Vec<crate::state::MetricRecord> {
        std::mem::take(&mut self.store.data_mut().metrics)
    }

    /// How many metric records and messages the plugin has logged so far (and not taken).
    pub fn logged(&mut self) -> (usize, usize) {
        let data = self.store.data_mut();
        (data.metrics.len(), data.messages.len())
    }

    /// Messages the plugin logged so far.
    pub fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.store.data_mut().messages)
    }

    /// Sets the callback for the plugin's progress reports.
    pub fn on_progress(&mut self, f: impl FnMut(u32, u32) + Send + 'static) {
        self.store.data_mut().on_progress = Some(Box::new(f));
    }

    /// The most host tensor memory the plugin held at once.
    pub fn peak_tensor_bytes(&self) -> u64 {
        self.store.data().peak_tensor_bytes()
    }

    fn host_tensor(&mut self, t: tch::Tensor, call: &'static str) -> Result<Resource<crate::tensors::TensorEntry>, PluginError> {
        self.store.data_mut().push_tensor(t).map_err(|e| PluginError::new(self.name.clone(), call, format!("{e:#}")))
    }

    fn drop_tensor(&mut self, r: Resource<crate::tensors::TensorEntry>) {
        use crate::bindings::weightlab::plugin::tensors::HostTensor;
        let _ = HostTensor::drop(self.store.data_mut(), r);
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name).field("path", &self.path).finish()
    }
}
