//! Calling a plugin in a worker process: the limits a method's manifest entry sets, the
//! request, describing and checking a component, and what a plugin is shown of a zoo. Used by
//! the checks before a run ([`crate::config_check`]), plugin discovery ([`crate::plugins`]),
//! the contract harness and the method and probe stages.

use std::path::{Path, PathBuf};

use weightlab_compute::Zoo;
use weightlab_host::worker::{self, Job, Request};
use weightlab_host::{CheckpointView, Description, Limits, ParamView, PluginCode, ZooView};
use weightlab_manifest::LimitsSpec;

use crate::error::{Result, io};

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
    Ok(worker::describe(&worker_exe()?, name, code, limits)?)
}

/// Loads and describes the plugin `code` in a worker process, and has it `check` each of
/// `checks`: its description and the problems found, one list per check.
pub fn check_code(name: &str, code: &PluginCode, limits: Limits, checks: Vec<worker::CheckRequest>) -> Result<(Description, Vec<Vec<weightlab_host::Problem>>)> {
    let (description, outcome) = worker::run_in_worker(&worker_exe()?, code, &request(name, code, limits, Job::Check { checks }), &[], |_, _| {})?;
    Ok((description, outcome.map(|o| o.problems).unwrap_or_default()))
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
pub(crate) fn checkpoint_view(c: &weightlab_compute::zoo::Checkpoint, source: u32) -> CheckpointView {
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
