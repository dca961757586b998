//! Method stage: in a worker process (see `weightlab_host::worker`), load the plugin
//! (sandboxed), fit it on the zoo's training checkpoints, sample; then store the samples
//! (safetensors) and what the plugin logged. The plugin's config was checked against its
//! schema before any stage ran (`crate::config_check::before_run`).

use std::path::Path;

use weightlab_compute::{Dataset, Side, Zoo};
use weightlab_host::worker::{self, Conditioning, Draw, Job, Request};
use weightlab_host::{Description, PluginCode, SourceView, ZooView, role_name};
use weightlab_manifest::{Loaded, MethodSpec};

use crate::calls::{checkpoint_view, layout_view, limits, request, worker_exe, zoo_view};
use crate::config_check::{check_plugin, config_json};
use crate::error::{Error, Result, format, io};
use crate::output;
use crate::records::{LoggedMetric, MethodLog, MethodRecord};
use crate::store::{read_tensor, write_tensor};

/// The training weights (rows × widest source, zero-padded), their view and their tasks.
struct Training {
    view: ZooView,
    weights: Vec<f32>,
    tasks: Vec<usize>,
    /// Each source zoo's number of rows, in row order.
    rows_of: Vec<usize>,
}

/// A zoo a method learns from, with the conditions of its tasks on a task family.
pub(crate) struct Source {
    pub name: String,
    /// The plugin-facing architecture name (`mlp`, `cnn-s`, …).
    pub arch: String,
    pub zoo: std::sync::Arc<Zoo>,
    pub conditions: Option<std::sync::Arc<crate::tasks::TaskConditions>>,
}

/// What a method stage reads, assembled by the executor.
pub(crate) struct Inputs<'a> {
    pub loaded: &'a Loaded,
    /// The method's index in the manifest.
    pub index: usize,
    pub seed: u64,
    pub data: &'a Dataset,
    /// The method's own zoo (what it samples) first; then, with `zoos`, every zoo it learns
    /// from, in the manifest's order (the first entry is then not a training source unless
    /// `zoos` names it).
    pub zoo: Source,
    pub sources: Vec<Source>,
    pub code: &'a PluginCode,
}

/// The training checkpoints a method learns from: its zoo's, or those of its `zoos` (other
/// architectures allowed), each row zero-padded to the widest.
fn training(method: &MethodSpec, zoo: &Source, sources: &[Source], data: &Dataset) -> Training {
    let mut view = zoo_view(&method.zoo, &zoo.arch, &zoo.zoo, &[], data);
    let width = sources.iter().map(|s| s.zoo.layout().len()).max().unwrap_or(0);
    let (mut weights, mut tasks, mut rows_of) = (Vec::new(), Vec::new(), Vec::new());
    for (s, source) in sources.iter().enumerate() {
        let z = &source.zoo;
        let rows = z.side(Side::Train);
        for &i in &rows {
            let w = z.weights_of(i);
            weights.extend_from_slice(w);
            weights.extend(std::iter::repeat_n(0.0, width - w.len()));
            view.checkpoints.push(checkpoint_view(&z.checkpoints[i], s as u32));
            tasks.push(z.checkpoints[i].task.unwrap_or(0));
        }
        rows_of.push(rows.len());
        if !method.zoos.is_empty() {
            view.sources.push(SourceView { zoo: source.name.clone(), arch: source.arch.clone(), layout: layout_view(&z.layout()), parameters: z.layout().len() as u32 });
        }
    }
    if !method.zoos.is_empty() {
        let list: Vec<String> = view.sources.iter().map(|s| format!("{} ({} parameters)", s.zoo, s.parameters)).collect();
        output::detail(&format!("learning from {} checkpoints of {}; sampling zoo {}'s architecture ({} parameters)", view.checkpoints.len(), list.join(", "), method.zoo, view.parameters));
    }
    Training { view, weights, tasks, rows_of }
}

/// Runs a method's or probe's job in a worker with a progress bar, then checks the plugin's
/// description against method `index` of the manifest: the same component described itself
/// at the start of the run; it is checked again here, where it actually ran. `what` names
/// the values a finished job returns, for the error when it returns none.
pub(crate) fn run_job(loaded: &Loaded, index: usize, code: &PluginCode, request: &Request, payload: &[f32], what: &str) -> Result<(Description, worker::Outcome)> {
    let bar = output::bar(0, "Fitting", "steps");
    let progress = bar.clone();
    let ran = worker::run_in_worker(&worker_exe()?, code, request, payload, move |done, total| {
        progress.set_length(total as u64);
        progress.set_position(done as u64);
    });
    bar.finish_and_clear();
    let (description, outcome) = ran?;
    check_plugin(loaded, index, &description)?;
    let outcome = outcome.ok_or_else(|| {
        let plugin = loaded.manifest.method[index].plugin.clone();
        Error::Plugin(weightlab_host::PluginError { plugin, call: "fit", reason: format!("the worker returned no {what}"), peak_rss_bytes: None })
    })?;
    Ok((description, outcome))
}

/// A method that draws from the fit of the method of [`Inputs`] (the same plugin, config, zoo
/// and seed: see `weightlab_manifest::Stage::fit`), e.g. its `wrong_condition` control: its
/// index in the manifest and the folder its samples go to.
pub(crate) struct Companion<'a> {
    pub index: usize,
    pub dir: &'a Path,
}

/// Fits the method of `inputs` in a worker and stores its samples and log in `dir`; then
/// draws, from the same fit, the samples of each `companions` method into its folder. Returns
/// the method's record and then each companion's.
pub(crate) fn run(inputs: &Inputs, dir: &Path, companions: &[Companion]) -> Result<Vec<MethodRecord>> {
    let Inputs { loaded, index, seed, data, code, .. } = *inputs;
    let method = &loaded.manifest.method[index];
    let names: Vec<String> = companions.iter().map(|c| format!(" and \"{}\"", loaded.manifest.method[c.index].name)).collect();
    output::status("Running", &format!("method \"{}\"{} ({}) seed {seed}", method.name, names.concat(), method.plugin));
    if !companions.is_empty() {
        output::detail(&format!("one fit for {} methods: they differ only in what they sample (conditions, sample counts)", companions.len() + 1));
    }
    let zoo = &inputs.zoo.zoo;
    let config = config_json(method)?;
    let Training { view, weights: mut payload, tasks: train_tasks, rows_of } = training(method, &inputs.zoo, &inputs.sources, data);
    let rows = view.checkpoints.len();
    let methods: Vec<&MethodSpec> = std::iter::once(method).chain(companions.iter().map(|c| &loaded.manifest.method[c.index])).collect();
    let (conditioning, targets) = match &inputs.zoo.conditions {
        Some(c) => {
            // Each source zoo's rows get its own conditions (their instructions name its
            // architecture); targets are the method's zoo's held-out and OOD tasks.
            let (mut support, mut instruction) = (Vec::new(), Vec::new());
            let mut at = 0;
            for (source, n) in inputs.sources.iter().zip(&rows_of) {
                let mine = source.conditions.as_ref().ok_or_else(|| {
                    Error::Manifest(crate::config_check::at_method_key(
                        loaded,
                        index,
                        "zoos",
                        format!("method `{}`: zoo `{}` is not on a task family, and `{}` is", method.name, source.name, method.zoo),
                        None,
                    ))
                })?;
                let (s, i) = mine.rows(&train_tasks[at..at + n]);
                support.extend(s);
                instruction.extend(i);
                at += n;
            }
            payload.extend(support.into_iter().chain(instruction));
            let targets = c.targets();
            // A control gives every target the condition of the target half a list away.
            let given: Vec<Vec<usize>> =
                methods.iter().map(|m| if m.wrong_condition { (0..targets.len()).map(|i| targets[(i + targets.len() / 2) % targets.len()]).collect() } else { targets.clone() }).collect();
            let rows: Vec<(Vec<f32>, Vec<f32>)> = given.iter().map(|g| c.rows(g)).collect();
            payload.extend(rows.iter().flat_map(|(s, _)| s.iter().copied()).chain(rows.iter().flat_map(|(_, i)| i.iter().copied())));
            output::detail(&format!(
                "conditioned on {} tasks; sampling {} per target task for {} held-out and out-of-distribution tasks{}",
                c.tasks.len() - targets.len(),
                method.samples,
                targets.len(),
                if methods.iter().any(|m| m.wrong_condition) { " (a control: each given another task's condition)" } else { "" }
            ));
            let draws = methods.iter().zip(&given).map(|(m, g)| Draw { samples: m.samples, tasks: g.iter().map(|&t| t as u32).collect() }).collect();
            let conditioning = Conditioning { support_dim: c.support_dim, instruction_dim: c.instruction_dim, draws };
            (conditioning, targets)
        }
        None => (Conditioning { draws: methods.iter().map(|m| Draw { samples: m.samples, tasks: Vec::new() }).collect(), ..Conditioning::default() }, Vec::new()),
    };
    let p = zoo.layout().len();
    let per_draw: Vec<usize> = conditioning.draws.iter().map(Draw::total).collect();
    let job = Job::Run { zoo: view, rows, config, seed, sample_seed: seed.wrapping_mul(0x9E37_79B9).wrapping_add(1), conditioning };
    let request = request(&method.plugin, code, limits(&method.limits), job);
    let (description, outcome) = run_job(loaded, index, code, &request, &payload, "samples")?;
    output::detail(&format!("fit {:.2}s, sample {:.2}s, peak tensor memory {}", outcome.fit_seconds, outcome.sample_seconds, weightlab_host::budget::Size(outcome.peak_tensor_bytes)));
    let d = &description;
    let mut records = Vec::new();
    let mut at = 0;
    for (k, (n, out)) in per_draw.iter().zip(std::iter::once(dir).chain(companions.iter().map(|c| c.dir))).enumerate() {
        let values = outcome.samples.get(at * p..(at + n) * p).ok_or_else(|| Error::Internal(format!("the worker returned {} values, fewer than {} samples", outcome.samples.len(), at + n)))?;
        at += n;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_tensor(&out.join("samples.safetensors"), "samples", safetensors::Dtype::F32, vec![*n, p], &bytes)?;
        // Each method's log: the fit's, then its own draw's.
        match outcome.draws.get(k) {
            Some(draw) => write_logged(out, &draw.metrics, &draw.messages)?,
            None => write_log(out, &outcome)?,
        }
        records.push(MethodRecord {
            plugin: d.name.clone(),
            version: d.version.clone(),
            abi: d.abi.clone(),
            role: role_name(d.role).to_string(),
            hash: code.sha256.clone(),
            samples: methods[k].samples,
            parameters: p,
            fit_seconds: outcome.fit_seconds,
            sample_seconds: outcome.draws.get(k).map_or(outcome.sample_seconds, |d| d.seconds),
            peak_tensor_mib: outcome.peak_tensor_bytes as f64 / (1 << 20) as f64,
            peak_rss_mib: outcome.peak_rss_bytes.map(|b| b as f64 / (1 << 20) as f64),
            targets: targets.clone(),
            fit_shared_with: (k > 0).then(|| method.name.clone()),
        });
    }
    Ok(records)
}

/// An imported method's "run": its folder's state_dicts, in file-name order, checked
/// against the zoo's architecture (a mismatch names the file, the tensor and its layer) and
/// stored as the method's samples, with the file names beside them (`files.json`).
/// `planned` is the files' identity the run's plan was made from.
pub(crate) fn import(method: &MethodSpec, zoo: &Zoo, folder: &Path, planned: &str, dir: &Path) -> Result<MethodRecord> {
    output::status("Importing", &format!("samples of \"{}\" from {}", method.name, folder.display()));
    // The bytes scored are the bytes the plan's key was made from.
    let failed = |reason: String| Error::Import { method: method.name.clone(), reason };
    let (files, hash) = crate::plugins::read_import(folder).map_err(failed)?;
    if hash != planned {
        return Err(failed(format!("the files of {} changed since the run started (sha256 {hash}, planned {planned}); run again", folder.display())));
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
        fit_shared_with: None,
    })
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
    write_logged(dir, &outcome.metrics, &outcome.messages)
}

/// [`write_log`] of `metrics` and `messages`.
fn write_logged(dir: &Path, metrics: &[weightlab_host::state::MetricRecord], messages: &[String]) -> Result<()> {
    let mut non_finite: Vec<&str> = metrics.iter().filter(|m| !m.value.is_finite()).map(|m| m.name.as_str()).collect();
    if !non_finite.is_empty() {
        let count = non_finite.len();
        non_finite.sort_unstable();
        non_finite.dedup();
        output::warn(&format!("the plugin logged {count} non-finite value(s) of {}: kept as NaN in training_log", non_finite.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
    }
    let log = MethodLog { metrics: metrics.iter().map(|m| LoggedMetric { name: m.name.clone(), step: m.step, value: Some(m.value).filter(|v| v.is_finite()) }).collect(), messages: messages.to_vec() };
    let path = dir.join("log.json");
    std::fs::write(&path, serde_json::to_vec(&log).map_err(format(&path))?).map_err(io("writing", &path))
}

/// Reads the samples a method stage stored.
pub fn read_samples(dir: &Path) -> Result<(usize, Vec<f32>)> {
    let (shape, bytes) = read_tensor(&dir.join("samples.safetensors"), "samples")?;
    Ok((shape.first().copied().unwrap_or(0), bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weightlab_compute::Side;
    use weightlab_manifest::MethodSpec;

    use super::{Source, training};
    use crate::stages::testing::tiny;

    #[test]
    fn a_method_learning_from_two_widths_sees_every_training_row_padded_to_the_widest() {
        let (data, narrow, _) = tiny(4);
        let (_, wide, _) = tiny(9);
        let source = |name: &str, zoo: &weightlab_compute::Zoo| Source { name: name.into(), arch: "mlp".into(), zoo: Arc::new(zoo.clone()), conditions: None };
        let method: MethodSpec = toml::from_str("name = \"m\"\nplugin = \"p\"\nzoo = \"narrow\"\nzoos = [\"narrow\", \"wide\"]").unwrap();
        let t = training(&method, &source("narrow", &narrow), &[source("narrow", &narrow), source("wide", &wide)], &data);
        let (pn, pw) = (narrow.layout().len(), wide.layout().len());
        assert!(pw > pn);
        assert_eq!(t.rows_of, vec![4, 4]);
        assert_eq!(t.weights.len(), 8 * pw, "every row as wide as the widest zoo's");
        assert_eq!(t.view.checkpoints.len(), 8);
        assert_eq!(t.view.sources.iter().map(|s| s.parameters as usize).collect::<Vec<_>>(), vec![pn, pw]);
        assert_eq!(t.view.parameters as usize, pn, "the method samples its own zoo's architecture");
        // A narrow row: its own weights, then zeros.
        let first = narrow.weights_of(narrow.side(Side::Train)[0]);
        assert_eq!(&t.weights[..pn], first);
        assert!(t.weights[pn..pw].iter().all(|&v| v == 0.0));
        // Each checkpoint says which source it comes from.
        assert_eq!(t.view.checkpoints.iter().map(|c| c.source).collect::<Vec<_>>(), vec![0, 0, 0, 0, 1, 1, 1, 1]);
    }
}
