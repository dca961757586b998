//! The command line: schema, validation errors and exit codes, plan and its cache.

// The tests run side by side, each run with one compute thread.
use weightlab_e2e::{experiment, root, weightlab_beside as weightlab, weightlab_ok_beside as weightlab_ok};

const MANIFEST: &str = r#"[experiment]
name = "cli"
seeds = [0, 1]

[data.blobs]
source = "blobs"
classes = 4
samples = 512

[zoo.mlp]
data = "blobs"
arch = { kind = "mlp", hidden = [8] }
models = 8
train = { lr = 0.01, epochs = 2, batch_size = 32 }
split = { train = 6, heldout = 2 }

[[method]]
name = "a"
plugin = "copy"
zoo = "mlp"
samples = 4

[[method]]
name = "b"
plugin = "noise"
zoo = "mlp"
samples = 4
config = { sigma = 0.01 }
"#;

#[test]
fn schema_command_matches_the_committed_schema() {
    let out = weightlab(&root(), &["schema"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(root().join("engine/manifest/weightlab.schema.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn invalid_manifest_exits_2_with_location_and_suggestion() {
    let (dir, path) = experiment(&MANIFEST.replace("zoo = \"mlp\"\nsamples = 4\nconfig", "zoo = \"mpl\"\nsamples = 4\nconfig"));
    let out = weightlab(dir.path(), &["validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exp.toml:26:7"), "{stderr}");
    assert!(stderr.contains("did you mean `mlp`?"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_folder_that_is_not_a_run_is_named_once_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    for (args, says) in [
        (&["report", "nope"][..], "nope: not a run folder of weightlab"),
        (&["report", "empty"][..], "empty: not a run folder of weightlab"),
        (&["merge", "empty"][..], "empty: not a run folder of weightlab"),
        (&["runs", "nope"][..], "nope: no such output folder or manifest"),
    ] {
        let out = weightlab(dir.path(), args);
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
        assert!(text.matches("No such file or directory").count() <= 1, "{args:?} says its cause once: {text}");
    }
    // An I/O error of the engine's, through the command line's error chain: its cause once.
    let (dir, path) = experiment(MANIFEST);
    let out = weightlab(dir.path(), &["run", path.to_str().unwrap(), "-o", "/proc/weightlab-cannot-be-here"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("/proc/weightlab-cannot-be-here"), "{text}");
    assert_eq!(text.matches("No such file or directory").count(), 1, "{text}");
    // `-o` naming a file (the manifest, say) is refused as such, not as "File exists".
    let out = weightlab(dir.path(), &["run", path.to_str().unwrap(), "-o", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("is a file, not a folder: give `-o` the folder the run writes into"), "{text}");
}

#[test]
fn bad_plugin_config_is_reported_at_its_line() {
    let (dir, path) = experiment(&MANIFEST.replace("config = { sigma = 0.01 }", "config = { sgima = 0.01 }"));
    let out = weightlab(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a config its plugin refuses is a manifest error, found before anything runs: {stderr}");
    assert!(stderr.contains("exp.toml:28:12") && stderr.contains("did you mean `sigma`?"), "{stderr}");
    assert!(!dir.path().join("out/stages").exists(), "no stage ran: no zoo was trained for nothing");
}

#[test]
fn plan_is_cached_after_a_run_and_a_config_change_reruns_only_that_method() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    let before = weightlab_ok(dir.path(), &["plan", p, "-o", "out"]);
    assert!(before.contains("0 cached"), "{before}");
    weightlab_ok(dir.path(), &["run", p, "-o", "out"]);
    let after = weightlab_ok(dir.path(), &["plan", p, "-o", "out"]);
    assert!(after.contains("13 stages, 13 cached, 0 to run"), "{after}");
    let changed = weightlab_ok(dir.path(), &["plan", p, "-o", "out", "--set", "method.b.config.sigma=0.02"]);
    // Lines look like `  run     3     method "b" seed 0      <key>` (mark, level, label, key).
    let labels: Vec<String> = changed
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("run ")?.trim_start().split_once(' '))
        .map(|(_level, rest)| rest.trim().rsplit_once(' ').map_or(rest, |(label, _key)| label).trim().to_string())
        .collect();
    assert_eq!(labels, vec!["method \"b\" seed 0", "evaluate \"b\" seed 0", "method \"b\" seed 1", "evaluate \"b\" seed 1", "report"], "{changed}");
    // Running again with the change reruns exactly those.
    let rerun = weightlab_ok(dir.path(), &["run", p, "-o", "out", "--set", "method.b.config.sigma=0.02"]);
    assert!(rerun.contains("5 ran, 8 cached, 0 failed"), "{rerun}");
}

#[test]
fn plugins_lists_the_built_in_baselines() {
    let out = weightlab_ok(&root(), &["plugins"]);
    for name in ["copy", "noise", "average", "interpolate", "gaussian", "random-init"] {
        assert!(out.lines().any(|l| l.starts_with(name) && l.contains("baseline") && l.contains("0.1.0")), "{name} missing in:\n{out}");
    }
}

#[test]
fn only_the_listed_metrics_are_computed_and_the_report_says_what_it_cannot_draw() {
    let (dir, path) = experiment(&format!("{MANIFEST}\n[evaluate]\nmetrics = [\"accuracy\", \"nn_l2\"]\n"));
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let df = weightlab_results::read_parquet(&dir.path().join("out/samples.parquet")).unwrap();
    let columns: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
    assert!(columns.contains(&"accuracy".to_string()) && columns.contains(&"nn_l2".to_string()), "{columns:?}");
    for unlisted in ["novelty", "loss", "nn_l2_aligned", "ensemble_accuracy", "weight_norm"] {
        assert!(!columns.contains(&unlisted.to_string()), "`{unlisted}` was computed though not listed: {columns:?}");
    }
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(html.contains("<code>accuracy-novelty</code> is not drawn: it needs the metric <code>novelty</code>"), "the report explains the missing plot");
    assert!(!html.contains(">Novelty<"), "no novelty column in the summary");
}

#[test]
fn a_probe_without_target_and_a_baseline_with_one_are_located() {
    let manifest = "[experiment]\nname = \"t\"\n[data.b]\nsource = \"blobs\"\n[zoo.tree]\ndata = \"b\"\narch = { kind = \"mlp\" }\nmodels = 8\n\
                    tree = { roots = 2, classes = 2 }\nsplit = { train = 6, heldout = 2 }\n\
                    [[method]]\nname = \"p\"\nplugin = \"probex\"\nzoo = \"tree\"\n[[method]]\nname = \"n\"\nplugin = \"noise\"\nzoo = \"tree\"\ntarget = \"classes\"\n";
    let (dir, _) = experiment(manifest);
    let out = weightlab(dir.path(), &["validate", "exp.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exp.toml:13:10") && stderr.contains("probes need a `target`"), "{stderr}");
    assert!(stderr.contains("exp.toml:19:10") && stderr.contains("not a probe, so it has no `target`"), "{stderr}");
}

#[test]
fn a_sweep_runs_as_variants_with_an_ablation_report_and_an_added_value_runs_alone() {
    // The data and zoo come from a base file; the manifest sweeps noise σ over it.
    let (base, methods) = MANIFEST.split_at(MANIFEST.find("[[method]]").unwrap());
    let top = format!("extends = [\"base.toml\"]\n\n{}", methods.replace("config = { sigma = 0.01 }", "config = { sigma = { sweep = [0.05, 0.2, 0.8] } }"));
    let (dir, path) = experiment(&top);
    std::fs::write(dir.path().join("base.toml"), base).unwrap();
    let p = path.to_str().unwrap();

    let printed = weightlab_ok(dir.path(), &["validate", "--print", p]);
    assert!(!printed.contains("extends") && printed.contains("[zoo.mlp]") && printed.contains("sweep = [0.05, 0.2, 0.8]"), "{printed}");
    let plan = weightlab_ok(dir.path(), &["plan", p, "-o", "out"]);
    assert!(plan.contains("1 axis → 3 variants") && plan.contains("method  b[sigma=0.2]"), "{plan}");

    let run = weightlab_ok(dir.path(), &["run", p, "-o", "out"]);
    assert!(run.contains("21 ran, 0 cached"), "{run}");
    let out = dir.path().join("out");
    let names = weightlab_e2e::strings(&out, "variants", "name");
    assert_eq!(names, ["b[sigma=0.05]", "b[sigma=0.2]", "b[sigma=0.8]"]);
    // More noise, further from the checkpoints: the variants differ as their values say.
    let distance = |name: &str| {
        let d = weightlab_e2e::column(&out, "samples", Some(name), "nn_l2");
        d.iter().flatten().sum::<f64>() / d.len() as f64
    };
    assert!(distance("b[sigma=0.05]") < distance("b[sigma=0.2]") && distance("b[sigma=0.2]") < distance("b[sigma=0.8]"));
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("id=\"ablations\"") && report.contains("plot-ablation-b-method-b-config-sigma-accuracy"), "ablation section with its plots");
    assert!(std::fs::read_to_string(out.join("manifest.toml")).unwrap().contains("sweep = [0.05, 0.2, 0.8]"), "the effective manifest is stored");

    // One more value: only its stages (2 seeds × method + evaluate) and the report run.
    let more = weightlab_ok(dir.path(), &["run", p, "-o", "out", "--set", "method.b.config.sigma={ sweep = [0.05, 0.2, 0.8, 0.4] }"]);
    assert!(more.contains("5 ran, 20 cached"), "{more}");

    // Above the cap: refused before anything runs, pointing at the cap.
    let capped = weightlab(dir.path(), &["run", p, "-o", "out2", "--set", "experiment.max_variants=2"]);
    let stderr = String::from_utf8_lossy(&capped.stderr);
    assert_eq!(capped.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("above `[experiment] max_variants` = 2") && stderr.contains("--set:1:"), "{stderr}");
    assert!(!dir.path().join("out2/stages").exists());
}

#[test]
fn a_pinned_plugin_hash_is_checked_before_anything_runs_and_runs_record_full_hashes() {
    let listing = weightlab_ok(&root(), &["plugins"]);
    let line = listing.lines().find(|l| l.starts_with("copy ")).unwrap_or_else(|| panic!("{listing}"));
    let sha = line.split_whitespace().find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit())).unwrap_or_else(|| panic!("no sha256 in `{line}`")).to_string();
    let pinned = |hash: &str| MANIFEST.replace("name = \"a\"\nplugin = \"copy\"\n", &format!("name = \"a\"\nplugin = \"copy\"\nsha256 = \"{hash}\"\n"));
    let (dir, path) = experiment(&pinned(&"0".repeat(64)));
    let out = weightlab(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("plugin `copy` has sha256 {sha}, not the pinned")) && stderr.contains("exp.toml:20:10"), "{stderr}");
    assert!(!dir.path().join("out/stages").exists(), "nothing ran");
    let (dir, path) = experiment(&pinned(&sha));
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let plugins = weightlab_e2e::strings(&dir.path().join("out"), "runs", "plugins");
    assert!(plugins[0].contains(&format!("sha256 {sha}")), "{plugins:?}");
}

#[test]
fn the_device_is_chosen_from_the_manifest_or_the_command_line_and_cuda_is_refused_without_a_gpu() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    // A misspelt device is located like any other manifest error.
    let bad = weightlab(dir.path(), &["validate", p, "--device", "gpu"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("device `gpu` is not one of") && stderr.contains("--set:1:"), "{stderr}");
    // This machine has no GPU (the tests run on the CPU): CUDA is refused before anything runs.
    let cuda = weightlab(dir.path(), &["run", p, "-o", "out", "--device", "cuda"]);
    let stderr = String::from_utf8_lossy(&cuda.stderr);
    assert_eq!(cuda.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("libtorch sees no CUDA device on this machine"), "{stderr}");
    // The binary does not link libtorch's CUDA half; asked for a GPU, it loads it (the set-up
    // installs PyTorch's CUDA build).
    assert!(stderr.contains("libtorch_cuda.so loaded"), "{stderr}");
    assert!(!dir.path().join("out/stages").exists(), "nothing ran");
    // `auto` falls back to the CPU and says so.
    let auto = weightlab_ok(dir.path(), &["run", p, "-o", "out", "--set", "experiment.device=\"auto\""]);
    assert!(auto.contains("device auto: no CUDA device here, computing on the CPU"), "{auto}");
}

#[test]
fn plugins_are_discoverable_by_name_with_their_options_and_a_manifests_own_are_listed() {
    // A built-in plugin by name: its options as a table (key, type, default, bounds, doc).
    let out = weightlab_ok(&root(), &["plugin", "inspect", "pdiff"]);
    let row = |key: &str| out.lines().find(|l| l.starts_with(&format!("{key} "))).unwrap_or_else(|| panic!("no `{key}` row:\n{out}")).to_string();
    assert!(out.contains("option") && out.contains("bounds"), "{out}");
    // `make` stamps the built-in plugins: they are described without being loaded.
    assert!(row("described").contains("read from its metadata section") && row("built with").contains("cargo"), "{out}");
    assert!(row("ae_steps").contains("integer") && row("ae_steps").contains("1000") && row("ae_steps").contains("Autoencoder training steps"), "{out}");
    assert!(row("latent_dim").contains("≥ 1"), "{out}");
    assert!(row("lr").contains("0.001 ") && !row("lr").contains("0.00100000"), "f32 defaults read as written: {out}");
    let average = weightlab_ok(&root(), &["plugin", "inspect", "average"]);
    assert!(average.lines().any(|l| l.starts_with("k ") && l.contains("≥ 1, < training checkpoints")), "{average}");
    let unknown = weightlab(&root(), &["plugin", "inspect", "pdif"]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no plugin `pdif`"), "{unknown:?}");

    // A manifest's own plugin (by path) is listed with the built-in ones; a wrong pin on a swept
    // entry is said once, at its line.
    let manifest = MANIFEST.replace("plugin = \"noise\"", "plugin = \"mine/my-noise.wasm\"\nsha256 = \"00\"").replace("sigma = 0.01", "sigma = { sweep = [0.01, 0.02, 0.03] }");
    let (dir, path) = experiment(&manifest);
    std::fs::create_dir_all(dir.path().join("mine")).unwrap();
    std::fs::copy(root().join("plugins/dist/noise.wasm"), dir.path().join("mine/my-noise.wasm")).unwrap();
    let out = weightlab(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("not the pinned").count(), 1, "{stderr}");
    let listing = weightlab_ok(dir.path(), &["plugins", path.to_str().unwrap()]);
    let mine = listing.lines().find(|l| l.starts_with("my-noise ")).unwrap_or_else(|| panic!("{listing}"));
    assert!(mine.contains("baseline") && mine.contains("mine/my-noise.wasm"), "{mine}");
    assert!(listing.lines().any(|l| l.starts_with("copy ")), "{listing}");
}

#[test]
fn init_writes_a_manifest_that_validates_and_completions_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let made = weightlab_ok(dir.path(), &["init", "mine.toml"]);
    assert!(made.contains("mine.toml"), "{made}");
    let text = std::fs::read_to_string(dir.path().join("mine.toml")).unwrap();
    assert!(text.contains("name = \"mine\"") && text.contains("plugin = \"noise\""), "{text}");
    weightlab_ok(dir.path(), &["validate", "mine.toml"]);
    let again = weightlab(dir.path(), &["init", "mine.toml"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"), "never overwrites");
    for shell in ["bash", "zsh", "fish"] {
        let script = weightlab_ok(dir.path(), &["completions", shell]);
        assert!(script.contains("weightlab") && script.contains("validate"), "{shell}: {script}");
    }
}

/// `engine/cli` is argument parsing and printing: the work lives in the library crates.
#[test]
fn the_command_line_crate_stays_thin() {
    let mut lines = 0;
    let mut dirs = vec![root().join("engine/cli/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                lines += std::fs::read_to_string(&path).unwrap().lines().count();
            }
        }
    }
    assert!(lines <= 1000, "engine/cli has {lines} lines: move the work into a library crate");
}

#[test]
fn validate_plan_and_plugins_speak_json_for_ci_scripts() {
    // Three mistakes: an unknown key, a negative σ and an unknown zoo.
    let bad = MANIFEST
        .replace("seeds = [0, 1]", "seeds = [0, 1]\nsedes = 1")
        .replace("sigma = 0.01", "sigma = -1")
        .replace("name = \"a\"\nplugin = \"copy\"\nzoo = \"mlp\"", "name = \"a\"\nplugin = \"copy\"\nzoo = \"mpl\"");
    let (dir, path) = experiment(&bad);
    let p = path.to_str().unwrap();
    let out = weightlab(dir.path(), &["validate", "--json", p]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let errors = v[0]["errors"].as_array().unwrap();
    assert_eq!((v[0]["valid"].as_bool(), errors.len()), (Some(false), 3), "{v:#}");
    let lines: Vec<(u64, &str)> = errors.iter().map(|e| (e["line"].as_u64().unwrap(), e["message"].as_str().unwrap())).collect();
    assert!(lines[0].0 == 4 && lines[0].1.contains("unknown key `sedes`"), "{lines:?}");
    assert!(lines[1].1.contains("refers to zoo `mpl`") && errors[1]["help"].as_str().is_some_and(|h| h.contains("mlp")), "{v:#}");
    assert!(lines[2].1.contains("sigma") && errors[2]["column"].as_u64().is_some() && errors[2]["file"].as_str().is_some_and(|f| f.ends_with("exp.toml")), "{v:#}");
    assert!(String::from_utf8_lossy(&out.stderr).lines().all(|l| !l.starts_with("error")), "errors go to the JSON, not stderr");

    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    let ok: serde_json::Value = serde_json::from_slice(&weightlab(dir.path(), &["validate", "--json", p]).stdout).unwrap();
    assert_eq!((ok[0]["valid"].as_bool(), ok[0]["errors"].as_array().map(Vec::len)), (Some(true), Some(0)));
    let plan: serde_json::Value = serde_json::from_slice(&weightlab(dir.path(), &["plan", "--json", p, "-o", "out"]).stdout).unwrap();
    let stages = plan["stages"].as_array().unwrap();
    assert!(stages.len() > 5 && stages.iter().all(|s| s["cached"] == false && s["key"].as_str().is_some_and(|k| k.len() == 16)), "{plan:#}");
    assert_eq!(plan["to_run"].as_u64(), Some(stages.len() as u64));
    let plugins: serde_json::Value = serde_json::from_slice(&weightlab(dir.path(), &["plugins", "--json"]).stdout).unwrap();
    let noise = plugins.as_array().unwrap().iter().find(|p| p["name"] == "noise").expect("noise listed");
    assert!(noise["sha256"].as_str().is_some_and(|h| h.len() == 64) && noise["role"] == "baseline", "{noise}");
}

/// Into a log (stderr not a terminal: a file, a Slurm job's output), long work writes its
/// progress bar's line out whole now and then — position, rate, ETA — instead of nothing
/// between `Running method …` and its result; short work writes none.
#[test]
fn long_work_writes_its_progress_into_a_log_and_short_work_does_not() {
    let manifest = MANIFEST
        .replace("epochs = 2,", "epochs = 4000,")
        .replace("plugin = \"noise\"\nzoo = \"mlp\"\nsamples = 4\nconfig = { sigma = 0.01 }", "plugin = \"pdiff\"\nzoo = \"mlp\"\nsamples = 4\nconfig = { ae_steps = 1000, ddpm_steps = 1000 }");
    let (dir, path) = experiment(&manifest);
    let p = path.to_str().unwrap();
    let quiet = weightlab(dir.path(), &["run", p, "-o", "short", "--set", "zoo.mlp.train.epochs=2", "--set", "method.b.config.ae_steps=2", "--set", "method.b.config.ddpm_steps=2"]);
    let text = String::from_utf8_lossy(&quiet.stderr);
    assert!(quiet.status.success() && !text.contains("ETA"), "{text}");
    let logged = weightlab_e2e::command(dir.path(), &["run", p, "-o", "long"]).env("WEIGHTLAB_PROGRESS_EVERY", "0.3").env("OMP_NUM_THREADS", "1").output().unwrap();
    let text = String::from_utf8_lossy(&logged.stderr);
    assert!(logged.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("ETA")).collect();
    let training = lines.iter().find(|l| l.trim_start().starts_with("Training [") && l.contains("/32000 model-epochs (")).unwrap_or_else(|| panic!("no training progress: {text}"));
    let fitting = lines.iter().find(|l| l.trim_start().starts_with("Fitting [") && l.contains(" steps (")).unwrap_or_else(|| panic!("no fitting progress: {text}"));
    assert!(!training.contains('\x1b') && !fitting.contains('\r'), "plain lines for a log: {training:?} {fitting:?}");
}
