//! Method stage: load the plugin (sandboxed), check its config, fit it on the zoo's training
//! checkpoints, sample, and store the samples (safetensors) and what the plugin logged.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use weightlab_compute::{Side, Zoo};
use weightlab_host::{Limits, Plugin, Role, Runtime, ZooView, role_name};
use weightlab_host::bindings::weightlab::plugin::zoo as wit;
use weightlab_manifest::{Loaded, MethodSpec};

use crate::executor::Run;
use crate::output;

/// Loads the plugin a method names, with the method's limits.
pub fn load_plugin(runtime: &Runtime, method: &MethodSpec, base_dir: &Path) -> Result<Plugin> {
    let path = crate::plugins::resolve(&method.plugin, base_dir).ok_or_else(|| anyhow!("plugin `{}` not found", method.plugin))?;
    let l = &method.limits;
    let limits = Limits {
        timeout: std::time::Duration::from_secs_f64(l.timeout_secs),
        fuel: l.fuel,
        memory_bytes: (l.memory_mib as usize) << 20,
        tensor_bytes: l.tensor_memory_mib << 20,
    };
    Ok(Plugin::load(runtime, &method.plugin, &path, limits)?)
}

/// Checks a loaded plugin against its manifest entry: role and config.
pub fn check_plugin(loaded: &Loaded, index: usize, plugin: &Plugin) -> Result<serde_json::Value> {
    let method = &loaded.manifest.method[index];
    let d = &plugin.description;
    if let Some(role) = method.role {
        let wanted = serde_json::to_value(role)?.as_str().unwrap_or_default().to_string();
        if wanted != role_name(d.role) {
            bail!("method `{}`: plugin `{}` is a {}, but the manifest says role = \"{wanted}\"", method.name, method.plugin, role_name(d.role));
        }
    }
    if d.role == Role::Probe {
        bail!("method `{}`: plugin `{}` is a probe; probes are not run as methods", method.name, method.plugin);
    }
    let config = serde_json::to_value(&method.config)?;
    crate::config_check::check(loaded, index, &method.plugin, &d.config_schema, &config).map_err(|e| anyhow!("invalid config\n{e}"))?;
    Ok(config)
}

/// What a method sees of a zoo: layout, its training checkpoints' metadata, dataset identity.
pub fn zoo_view(name: &str, zoo: &Zoo, rows: &[usize], dataset: &str, classes: usize) -> ZooView {
    let layout = zoo.layout();
    let arch = match &zoo.arch {
        weightlab_compute::Arch::Mlp { .. } => "mlp",
        weightlab_compute::Arch::CnnS { .. } => "cnn-s",
    };
    ZooView {
        name: name.to_string(),
        arch: arch.to_string(),
        parameters: layout.len() as u32,
        layout: layout.params.iter().map(|p| wit::Param { name: p.name.clone(), shape: p.shape.iter().map(|&d| d as u32).collect(), offset: p.offset as u32 }).collect(),
        checkpoints: rows
            .iter()
            .map(|&i| {
                let c = &zoo.checkpoints[i];
                wit::Checkpoint {
                    model: c.model as u32,
                    epoch: c.epoch as u32,
                    seed: c.seed,
                    train_accuracy: c.train_accuracy,
                    test_accuracy: c.test_accuracy,
                    test_loss: c.test_loss,
                    parent: c.parent.map(|p| p as u32),
                }
            })
            .collect(),
        dataset: dataset.to_string(),
        classes: classes as u32,
    }
}

impl Run {
    pub(crate) fn run_method(&mut self, index: usize, seed: u64, dir: &Path) -> Result<serde_json::Value> {
        let method = self.loaded.manifest.method[index].clone();
        output::status("Running", &format!("method \"{}\" ({}) seed {seed}", method.name, method.plugin));
        let zoo_spec = self.loaded.manifest.zoo[&method.zoo].clone();
        let data = self.dataset(&zoo_spec.data)?.clone();
        let zoo = self.zoo(&method.zoo)?.clone();
        let runtime = self.runtime()?;
        let mut plugin = load_plugin(&runtime, &method, self.base_dir())?;
        let config = check_plugin(&self.loaded, index, &plugin)?;
        let rows = zoo.side(Side::Train);
        let view = zoo_view(&method.zoo, &zoo, &rows, &data.hash, match data.task {
            weightlab_compute::data::Task::Classification { classes } => classes,
            weightlab_compute::data::Task::Regression => 0,
        });
        let p = zoo.layout().len();
        let bar = output::bar(0, "Fitting", "steps");
        let progress = bar.clone();
        plugin.on_progress(move |done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        });
        let started = std::time::Instant::now();
        let fitted = plugin.fit(&view, &zoo.stack(&rows), &config, seed);
        bar.finish_and_clear();
        fitted?;
        let fit_secs = started.elapsed().as_secs_f64();
        let samples = plugin.sample(method.samples, p, seed.wrapping_mul(0x9E37_79B9).wrapping_add(1))?;
        let sample_secs = started.elapsed().as_secs_f64() - fit_secs;
        let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![method.samples, p], &bytes)?;
        std::fs::write(dir.join("samples.safetensors"), safetensors::serialize([("samples", view)], None)?).context("writing samples")?;
        let log = serde_json::json!({ "metrics": plugin.take_metrics(), "messages": plugin.take_messages() });
        std::fs::write(dir.join("log.json"), serde_json::to_vec(&log)?)?;
        let d = &plugin.description;
        output::detail(&format!("fit {fit_secs:.2}s, sample {sample_secs:.2}s"));
        Ok(serde_json::json!({
            "plugin": d.name, "version": d.version, "abi": d.abi, "role": role_name(d.role),
            "hash": crate::plugins::identity(&method.plugin, self.base_dir()),
            "samples": method.samples, "parameters": p, "fit_seconds": fit_secs, "sample_seconds": sample_secs,
        }))
    }
}

/// Reads the samples a method stage stored.
pub fn read_samples(dir: &Path) -> Result<(usize, Vec<f32>)> {
    let bytes = std::fs::read(dir.join("samples.safetensors")).context("reading samples")?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let t = st.tensor("samples")?;
    let n = t.shape()[0];
    Ok((n, t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}
