//! The plugin contract, checked from outside: `weightlab plugin test <wasm>` runs a method
//! plugin through the same pipeline a manifest does — worker process, sandbox, default limits —
//! on a tiny built-in zoo (MLPs on 2-D blobs, or a task family of them, trained in seconds),
//! twice, and reports each
//! clause as passed or failed with the reason, so a plugin author can put it in CI:
//!
//! - it loads and describes itself (name, version, role, WIT version this host runs);
//! - its config schema is a valid JSON Schema, and the config tested (default `{}`) satisfies it;
//! - its `check` (WIT 0.5) finds nothing wrong with that config on the contract's zoo;
//! - fit and sample finish within the default limits and return `samples` × parameters values;
//! - every value is finite;
//! - the same seed gives the same samples, bit for bit, in a fresh process, and again from the
//!   same fit after another draw (a `wrong_condition` control draws from its method's fit);
//! - another seed gives other samples (a warning, not a failure: a deterministic method may
//!   ignore its seed).
//!
//! A probe is fitted on a small model tree (MLPs on blobs) for one target of each kind —
//! `classes` (multi-label), `parent` (single-label), `lr` (regression) — and checked the same
//! way: it finishes within the limits with predictions of the right shapes, they are finite and
//! the same in a fresh process, and (a warning, not a failure) it tells the two trees apart
//! better than chance.

use std::path::{Path, PathBuf};

use weightlab_host::{Limits, Role, role_name};
use weightlab_manifest::StageKind;

use crate::error::Result;
use crate::executor::Run;

/// How a clause of the contract came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

/// One clause of the contract.
#[derive(Debug, Clone)]
pub struct Check {
    pub clause: String,
    pub outcome: Outcome,
    /// The figures behind a pass, or the reason for a failure.
    pub detail: String,
}

impl Check {
    fn new(clause: &str, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self { clause: clause.to_string(), outcome, detail: detail.into() }
    }

    fn test(clause: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self::new(clause, if ok { Outcome::Pass } else { Outcome::Fail }, detail)
    }
}

/// Samples each run asks for per seed.
const SAMPLES: usize = 4;

/// The zoo a plugin is tested on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestZoo {
    /// 24 MLPs 2 → 8 → 3 on blobs, 20 of them training checkpoints.
    Plain,
    /// A task family (conditional generators, transfer baselines): blobs rotated by 16 angles —
    /// 12 training tasks, 2 held-out and 2 out-of-distribution — one MLP per task from a shared
    /// initialisation, each with its support-set encoding and instruction.
    Tasks,
}

impl TestZoo {
    fn describe(self) -> &'static str {
        match self {
            TestZoo::Plain => "a zoo of 20 training checkpoints of 51 parameters",
            TestZoo::Tasks => "a task family of 12 training tasks (51 parameters), sampling for 4 target tasks",
        }
    }
}

/// Parameters of the test zoos' MLP 2 → 8 → 3.
const PARAMETERS: usize = 2 * 8 + 8 + 8 * 3 + 3;

/// The contract manifest; `twice`: the method listed a second time as `again`, which then
/// draws from the first one's fit (see `weightlab_manifest::Stage::fit`).
fn manifest(plugin: &Path, config: &str, zoo: TestZoo, twice: bool) -> String {
    let (data, zoo) = match zoo {
        TestZoo::Plain => ("", "models = 24\nsplit = { train = 20, heldout = 4 }\n"),
        TestZoo::Tasks => ("tasks = { family = \"rotate\", count = 16, heldout = 2, ood = 2, shots = 5 }\n", "models = 16\nshared_init = true\n"),
    };
    format!(
        "[experiment]\nname = \"plugin-contract\"\nseeds = [0, 1]\n\n\
         [data.blobs]\nsource = \"blobs\"\nclasses = 3\nsamples = 300\n{data}\n\
         [zoo.mlp]\ndata = \"blobs\"\narch = {{ kind = \"mlp\", hidden = [8] }}\n{zoo}\
         train = {{ lr = 0.01, epochs = 3, batch_size = 32 }}\n\n\
         {}\
         [evaluate]\nmetrics = [\"accuracy\"]\n\n[report]\nplots = []\n",
        ["contract", "again"][..if twice { 2 } else { 1 }]
            .iter()
            .map(|name| format!("[[method]]\nname = \"{name}\"\nplugin = {plugin:?}\nzoo = \"mlp\"\nsamples = {SAMPLES}\nconfig = {config}\n\n"))
            .collect::<String>()
    )
}

/// Checks the plugin at `wasm` with `config` (a TOML inline table, e.g. `{ sigma = 0.1 }`),
/// working in `work` (two run folders are made there).
pub fn check(wasm: &Path, config: &str, zoo: TestZoo, work: &Path) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let wasm = std::path::absolute(wasm).unwrap_or_else(|_| wasm.to_path_buf());
    let name = wasm.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let described = weightlab_host::PluginCode::read(&wasm).map_err(crate::Error::from).and_then(|code| crate::calls::describe_code(&name, &code, Limits::default()));
    let description = match described {
        Ok(d) => d,
        Err(e) => {
            checks.push(Check::new("loads and describes itself", Outcome::Fail, e.to_string()));
            return Ok(checks);
        }
    };
    let d = &description;
    let semver = d.version.split('.').count() == 3 && d.version.split('.').all(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()));
    checks.push(Check::test(
        "loads and describes itself",
        !d.name.is_empty() && semver,
        format!("`{}` {} ({}), WIT {}{}", d.name, d.version, role_name(d.role), d.abi, if semver { "" } else { ": the version is not MAJOR.MINOR.PATCH" }),
    ));
    let config_json: serde_json::Value = match toml::from_str::<toml::Table>(&format!("v = {config}")) {
        Ok(t) => serde_json::to_value(&t["v"]).unwrap_or_default(),
        Err(e) => {
            checks.push(Check::new("config schema", Outcome::Fail, format!("the config to test, `{config}`, is not a TOML inline table: {}", e.message())));
            return Ok(checks);
        }
    };
    match crate::config_check::validator(&d.config_schema) {
        Err(e) => checks.push(Check::new("config schema", Outcome::Fail, e)),
        Ok(v) => {
            let errors: Vec<String> = v.iter_errors(&config_json).map(|e| e.to_string()).collect();
            checks.push(Check::test(
                "config schema",
                errors.is_empty(),
                if errors.is_empty() { format!("valid; `{config}` satisfies it") } else { format!("`{config}` does not satisfy it: {}", errors.join("; ")) },
            ));
        }
    }
    let text = if d.role == Role::Probe { probe_manifest(&wasm, config) } else { manifest(&wasm, config, zoo, false) };
    checks.push(own_check(&wasm, &name, &text, work, d));
    if d.role == Role::Probe {
        check_probe(&wasm, config, work, &mut checks)?;
        return Ok(checks);
    }

    let first = run_once(&wasm, config, zoo, false, &work.join("a"))?;
    let samples = match first {
        Err(reason) => {
            checks.push(Check::new("fit and sample within the default limits", Outcome::Fail, reason));
            return Ok(checks);
        }
        Ok(s) => s,
    };
    let limits = Limits::default();
    let (shape, seconds) = (&samples.shape, samples.seconds);
    checks.push(Check::test(
        "fit and sample within the default limits",
        shape.len() == 2 && shape[0] > 0 && shape[0] % SAMPLES == 0 && shape[1] == PARAMETERS,
        format!(
            "{} × {} values per seed on {}, {seconds:.1} s (limits: {:.0} s, {} MiB guest memory, {} MiB tensor memory)",
            shape.first().unwrap_or(&0),
            shape.get(1).unwrap_or(&0),
            zoo.describe(),
            limits.timeout.as_secs_f64(),
            limits.memory_bytes >> 20,
            limits.tensor_bytes >> 20
        ),
    ));
    let bad = samples.seeds.iter().flatten().filter(|v| !v.is_finite()).count();
    checks.push(Check::test("finite values", bad == 0, if bad == 0 { "every value is finite".to_string() } else { format!("{bad} values are NaN or infinite") }));
    // The second run lists the method twice: the second draws from the first one's fit.
    match run_once(&wasm, config, zoo, true, &work.join("b"))? {
        Err(reason) => checks.push(Check::new("same seed, same samples", Outcome::Fail, format!("the second run failed: {reason}"))),
        Ok(second) => {
            let differ = differences(&samples.seeds, &second.seeds);
            let detail = match &differ {
                None => "a second run in fresh worker processes returned the same samples, bit for bit".to_string(),
                Some(d) => format!("a second run with the same seeds returned other samples ({d})"),
            };
            checks.push(Check::test("same seed, same samples", differ.is_none(), detail));
            let differ = differences(&samples.seeds, &second.again);
            let detail = match &differ {
                None => "a second draw from the same fit, after the first, returned the same samples, bit for bit".to_string(),
                Some(d) => format!(
                    "a second draw from the same fit returned other samples ({d}): `sample` must depend only on the fit, `n`, the seed and the condition, as a `wrong_condition` control draws from its method's fit after the method's own samples"
                ),
            };
            checks.push(Check::test("same fit, same samples again", differ.is_none(), detail));
        }
    }
    let differ = samples.seeds[0] != samples.seeds[1];
    checks.push(Check::new(
        "another seed, other samples",
        if differ { Outcome::Pass } else { Outcome::Warn },
        if differ { "seeds 0 and 1 differ" } else { "seeds 0 and 1 gave the same samples (fine if the method is deterministic)" },
    ));
    Ok(checks)
}

/// The clause on the plugin's own `check` (WIT 0.5): on the contract's zoo, with the config
/// tested, it answers within the limits and finds nothing wrong.
fn own_check(wasm: &Path, name: &str, text: &str, work: &Path, d: &weightlab_host::Description) -> Check {
    const CLAUSE: &str = "its check accepts the config tested";
    if !weightlab_host::abi::compatible(weightlab_host::ABI_VERSION, &d.abi) {
        return Check::new(CLAUSE, Outcome::Pass, format!("built against WIT {}, before `check` (0.5.0): its configs are held to their schema alone", d.abi));
    }
    let loaded = match weightlab_manifest::load_str(&work.join("check.toml"), text, &[], work, &crate::catalog()) {
        Ok(l) => l,
        Err(e) => return Check::new(CLAUSE, Outcome::Fail, e.to_string()),
    };
    let requests: Vec<_> = (0..loaded.manifest.method.len()).filter_map(|i| crate::config_check::check_request(&loaded, i, &Default::default())).collect();
    let asked = requests.len();
    let checked = weightlab_host::PluginCode::read(wasm).map_err(crate::Error::from).and_then(|code| crate::calls::check_code(name, &code, Limits::default(), requests));
    match checked {
        Err(e) => Check::new(CLAUSE, Outcome::Fail, e.to_string()),
        Ok((_, problems)) => {
            let found: Vec<String> = problems.into_iter().flatten().map(|p| format!("{}{}", p.key.map(|k| format!("`{k}`: ")).unwrap_or_default(), p.message)).collect();
            if found.is_empty() {
                Check::new(CLAUSE, Outcome::Pass, format!("no problem found in {asked} check{}", if asked == 1 { "" } else { "s" }))
            } else {
                Check::new(CLAUSE, Outcome::Fail, format!("it refuses the contract's zoo: {}", found.join("; ")))
            }
        }
    }
}

/// The probe contract's zoo and methods: a model tree on blobs (two roots, children fine-tuned
/// on pairs of the four classes with two learning rates), and one probe per kind of target.
fn probe_manifest(plugin: &Path, config: &str) -> String {
    let mut text = String::from(
        "[experiment]\nname = \"plugin-contract\"\nseeds = [0]\n\n\
         [data.blobs]\nsource = \"blobs\"\nclasses = 4\nsamples = 512\n\n\
         [zoo.tree]\ndata = \"blobs\"\narch = { kind = \"mlp\", hidden = [8] }\nmodels = 24\n\
         train = { lr = 0.01, epochs = 3, batch_size = 32 }\n\
         tree = { roots = 2, classes = 2, epochs = 2, lr = [0.003, 0.01] }\nsplit = { train = 18, heldout = 6 }\n\n",
    );
    for (target, _) in PROBE_TARGETS {
        text += &format!("[[method]]\nname = \"{target}\"\nplugin = {plugin:?}\nzoo = \"tree\"\ntarget = \"{target}\"\nconfig = {config}\n\n");
    }
    text + "[report]\nplots = []\n"
}

/// The targets a probe is tested on: one of each kind.
const PROBE_TARGETS: [(&str, &str); 3] = [("classes", "multi-label"), ("parent", "single-label"), ("lr", "regression")];

/// What one run of the probe contract produced: each target's predictions, in a fixed order,
/// and the accuracy of the tree (parent) probe with its chance level.
struct Predictions {
    values: Vec<(String, Vec<f64>)>,
    parent: Option<(f64, f64)>,
    rows: usize,
    seconds: f64,
}

fn check_probe(wasm: &Path, config: &str, work: &Path, checks: &mut Vec<Check>) -> Result<()> {
    let first = match run_probe(wasm, config, &work.join("a"))? {
        Err(reason) => {
            checks.push(Check::new("fit and predict within the default limits", Outcome::Fail, reason));
            return Ok(());
        }
        Ok(p) => p,
    };
    let limits = Limits::default();
    let kinds: Vec<String> = PROBE_TARGETS.iter().map(|(t, k)| format!("{k} ({t})")).collect();
    checks.push(Check::test(
        "fit and predict within the default limits",
        first.values.len() == PROBE_TARGETS.len(),
        format!(
            "{} on 18 training and 6 held-out models of a 2-tree zoo, {} predictions, {:.1} s (limits: {:.0} s per call)",
            kinds.join(", "),
            first.rows,
            first.seconds,
            limits.timeout.as_secs_f64()
        ),
    ));
    let bad = first.values.iter().flat_map(|(_, v)| v).filter(|v| !v.is_finite()).count();
    checks.push(Check::test("finite values", bad == 0, if bad == 0 { "every prediction is finite".to_string() } else { format!("{bad} predictions are NaN or infinite") }));
    match run_probe(wasm, config, &work.join("b"))? {
        Err(reason) => checks.push(Check::new("same seed, same predictions", Outcome::Fail, format!("the second run failed: {reason}"))),
        Ok(again) => {
            let differing: Vec<&str> = first.values.iter().zip(&again.values).filter(|(a, b)| a.1.iter().map(|x| x.to_bits()).ne(b.1.iter().map(|x| x.to_bits()))).map(|(a, _)| a.0.as_str()).collect();
            checks.push(Check::test(
                "same seed, same predictions",
                differing.is_empty(),
                if differing.is_empty() {
                    "a second run in fresh worker processes predicted the same, bit for bit".to_string()
                } else {
                    format!("a second run with the same seed predicted otherwise for: {}", differing.join(", "))
                },
            ));
        }
    }
    let (outcome, detail) = match first.parent {
        Some((accuracy, chance)) if accuracy > chance => (Outcome::Pass, format!("tells the trees apart: accuracy {accuracy:.2} (chance {chance:.2})")),
        Some((accuracy, chance)) => (Outcome::Warn, format!("does not tell the trees apart: accuracy {accuracy:.2} at chance {chance:.2} (fine for a control, not for a probe)")),
        None => (Outcome::Warn, "no accuracy for the tree target".to_string()),
    };
    checks.push(Check::new("reads the weights", outcome, detail));
    Ok(())
}

/// Runs the probe contract manifest into `dir`: the predictions, or why a probe failed.
fn run_probe(wasm: &Path, config: &str, dir: &Path) -> Result<std::result::Result<Predictions, String>> {
    let (run, seconds) = match execute(&probe_manifest(wasm, config), dir)? {
        Ok(done) => done,
        Err(reason) => return Ok(Err(reason)),
    };
    let failures: Vec<String> = run.failures.iter().filter(|f| f.stage.starts_with("probe")).map(|f| f.reason.clone()).collect();
    if !failures.is_empty() {
        return Ok(Err(failures.join("; ")));
    }
    let out = dir.join("out");
    let mut rows: Vec<weightlab_results::ProbeRow> = weightlab_results::rows::read_table(&out, "probes")?.unwrap_or_default();
    rows.sort_by(|a, b| (&a.method, a.model, &a.label).cmp(&(&b.method, b.model, &b.label)));
    let values = PROBE_TARGETS.iter().map(|(t, _)| (t.to_string(), rows.iter().filter(|r| r.method == *t).map(|r| r.prediction).collect::<Vec<f64>>())).filter(|(_, v)| !v.is_empty()).collect();
    let scores: Vec<weightlab_results::ProbeScoreRow> = weightlab_results::rows::read_table(&out, "probe_scores")?.unwrap_or_default();
    let parent = scores.iter().find(|s| s.method == "parent" && s.metric == "accuracy").map(|s| (s.value, s.chance));
    Ok(Ok(Predictions { values, parent, rows: rows.len(), seconds }))
}

/// Runs the manifest `text` in `dir` (output in `dir/out`): the finished run and its wall
/// time, or why the manifest was refused.
fn execute(text: &str, dir: &Path) -> Result<std::result::Result<(Run, f64), String>> {
    std::fs::create_dir_all(dir).map_err(crate::error::io("creating", dir))?;
    let loaded = match weightlab_manifest::load_str(&dir.join("contract.toml"), text, &[], dir, &crate::catalog()) {
        Ok(l) => l,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut run = Run::new(loaded, Some(dir.join("out")))?;
    // A store of its own: every clause runs the plugin afresh, never from a shared cache.
    run.use_store(crate::store::StageStore::new(&dir.join("out")));
    let started = std::time::Instant::now();
    // The inner runs are the test's business: their stage lines and report paths (gone when
    // the test ends) are not printed.
    crate::output::muted(|| run.execute())?;
    Ok(Ok((run, started.elapsed().as_secs_f64())))
}

/// Where two runs' samples differ, seed by seed (`None`: bit for bit the same).
fn differences(a: &[Vec<f32>], b: &[Vec<f32>]) -> Option<String> {
    if a == b {
        return None;
    }
    if a.len() != b.len() {
        return Some(format!("{} seeds against {}", a.len(), b.len()));
    }
    let seeds: Vec<String> = a
        .iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(seed, (a, b))| {
            let changed = a.iter().zip(b.iter()).filter(|(x, y)| x.to_bits() != y.to_bits()).count() + a.len().abs_diff(b.len());
            let largest = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            format!("seed {seed}: {changed} of {} values differ, by up to {largest:.3e}", a.len())
        })
        .collect();
    Some(seeds.join("; "))
}

/// What one run of the contract manifest produced.
struct Samples {
    shape: Vec<usize>,
    /// The samples of seed 0 and seed 1.
    seeds: Vec<Vec<f32>>,
    /// With the method listed twice: the second one's, drawn from the first one's fits.
    again: Vec<Vec<f32>>,
    seconds: f64,
}

/// Runs the contract manifest into `dir` (`twice`: see [`manifest`]): the samples, or why the
/// method failed.
fn run_once(wasm: &Path, config: &str, zoo: TestZoo, twice: bool, dir: &Path) -> Result<std::result::Result<Samples, String>> {
    let (run, seconds) = match execute(&manifest(wasm, config, zoo, twice), dir)? {
        Ok(done) => done,
        Err(reason) => return Ok(Err(reason)),
    };
    if let Some(failure) = run.failures.iter().find(|f| f.stage.starts_with("method")) {
        return Ok(Err(failure.reason.clone()));
    }
    let (mut seeds, mut again) = (Vec::new(), Vec::new());
    let mut shape = Vec::new();
    for stage in &run.plan.stages {
        let StageKind::Method { name, .. } = &stage.kind else { continue };
        let path: PathBuf = run.store.dir(stage).join("samples.safetensors");
        let (s, bytes) = crate::store::read_tensor(&path, "samples")?;
        shape = s;
        let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if name == "again" { again.push(values) } else { seeds.push(values) }
    }
    Ok(Ok(Samples { shape, seeds, again, seconds }))
}
