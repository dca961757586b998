//! Plugin authors beyond the core team: Python plugins from `plugin new` to a report, the
//! example Python baseline and probe on real Fashion-MNIST zoos, plugins built against the
//! oldest frozen WIT (0.1.0) and the last before `check` (0.4.0) running on today's host, plugin metadata read without running a
//! plugin, and plugins found through `[experiment] plugin_path`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use weightlab_e2e::{binary, column, experiment, root, weightlab, weightlab_ok};

/// The Fashion-MNIST tests use both cores: one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

/// The guide's Python walk-through manifest: the TOML block of docs/src/plugins.md that runs
/// `demo_py`.
fn guide_python_manifest() -> String {
    let guide = std::fs::read_to_string(root().join("docs/src/plugins.md")).expect("docs/src/plugins.md");
    guide
        .split("```toml tested=tests/tests/plugin_authors.rs\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default())
        .find(|b| b.contains("demo_py/demo_py.wasm"))
        .expect("a TOML block running demo_py in the guide")
        .to_string()
}

/// Copies a plugin folder of the source tree into `dir` (builds write their `.wasm` beside the
/// sources).
fn copy_plugin(from: &Path, dir: &Path) -> PathBuf {
    let to = dir.join(from.file_name().unwrap());
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() && e.path().extension().is_none_or(|x| x != "wasm") {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    to
}

/// The samples file of `method` at `seed` in a finished run.
fn samples(run: &Path, method: &str, seed: u64) -> Vec<u8> {
    let label = format!("method \"{method}\" seed {seed}");
    for e in std::fs::read_dir(run.join("stages")).unwrap().flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("stage.json")) else { continue };
        let stage: serde_json::Value = serde_json::from_str(&text).unwrap();
        if stage["stage"] == label.as_str() {
            return std::fs::read(e.path().join("samples.safetensors")).unwrap();
        }
    }
    panic!("no stage `{label}` in {}", run.display())
}

#[test]
fn python_plugin_from_new_to_report() {
    // Light (a blobs zoo): runs beside the Fashion-MNIST tests, its build overlapping their
    // training.
    let manifest = guide_python_manifest();
    let (dir, _) = experiment(&manifest);
    weightlab_ok(dir.path(), &["plugin", "new", "demo_py", "--lang", "python", "--role", "baseline"]);
    assert!(dir.path().join("demo_py/app.py").is_file() && dir.path().join("demo_py/pyproject.toml").is_file());
    let built = weightlab(dir.path(), &["plugin", "build", "demo_py"]);
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    assert_eq!(String::from_utf8_lossy(&built.stdout).trim(), "demo_py/demo_py.wasm", "stdout is the component's path alone");
    // The build works on a copy: the interpreter componentize-py runs writes `__pycache__`
    // beside what it imports, and that would land in the author's folder.
    assert!(!dir.path().join("demo_py/__pycache__").exists(), "the build left __pycache__ in the plugin's folder");

    // The metadata is in the component, read without running it.
    let inspect: serde_json::Value = serde_json::from_slice(&weightlab(dir.path(), &["plugin", "inspect", "demo_py/demo_py.wasm", "--json"]).stdout).unwrap();
    let meta = &inspect["metadata"];
    assert_eq!((meta["name"].as_str(), meta["role"].as_str(), meta["version"].as_str()), (Some("demo_py"), Some("baseline"), Some("0.1.0")), "{inspect}");
    assert_eq!(meta["built_with"], "componentize-py 0.25.1, reproducible build");
    assert_eq!(inspect["runs_here"], "yes");
    assert_eq!(meta["config_schema"]["properties"]["scale"]["default"], 1.0, "the SDK's config fields give the schema: {meta}");

    // The build is pinned: the same source built in another folder, under another name, with
    // another TMPDIR gives the same bytes, and nothing warns.
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(!stderr.contains("not reproducible") && !stderr.contains("site-packages directory not found"), "{stderr}");
    let elsewhere = dir.path().join("elsewhere/deeper/renamed");
    std::fs::create_dir_all(&elsewhere).unwrap();
    for file in ["app.py", "pyproject.toml"] {
        std::fs::copy(dir.path().join("demo_py").join(file), elsewhere.join(file)).unwrap();
    }
    let tmp = dir.path().join("other-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // With pinning off (WEIGHTLAB_REPRODUCIBLE_BUILDS=0, for systems where tracing is not
    // allowed) the build runs as upstream's and says its hash pins this file only. The two
    // builds are independent (about 10 s each): they run side by side.
    let unpinned = dir.path().join("unpinned");
    std::fs::create_dir_all(&unpinned).unwrap();
    for file in ["app.py", "pyproject.toml"] {
        std::fs::copy(dir.path().join("demo_py").join(file), unpinned.join(file)).unwrap();
    }
    let (again, loose) = std::thread::scope(|s| {
        let again = s.spawn(|| std::process::Command::new(binary()).args(["plugin", "build", "renamed"]).current_dir(elsewhere.parent().unwrap()).env("TMPDIR", &tmp).output().unwrap());
        let loose = std::process::Command::new(binary()).args(["plugin", "build", "unpinned"]).current_dir(dir.path()).env("WEIGHTLAB_REPRODUCIBLE_BUILDS", "0").output().unwrap();
        (again.join().unwrap(), loose)
    });
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let first = std::fs::read(dir.path().join("demo_py/demo_py.wasm")).unwrap();
    assert!(std::fs::read(elsewhere.join("demo_py.wasm")).unwrap() == first, "two builds of one Python source differ");

    // A pin that no longer matches a reproducible build says the code changed.
    let pinned = manifest.replace("plugin = \"demo_py/demo_py.wasm\"", "plugin = \"demo_py/demo_py.wasm\"\nsha256 = \"00\"");
    std::fs::write(dir.path().join("pinned.toml"), &pinned).unwrap();
    let refused = weightlab(dir.path(), &["validate", "pinned.toml"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the plugin's code changed since it was pinned"), "{stderr}");

    // The unpinned build, and a pin that no longer matches it.
    let stderr = String::from_utf8_lossy(&loose.stderr);
    assert!(loose.status.success() && stderr.contains("this Python build is not reproducible (WEIGHTLAB_REPRODUCIBLE_BUILDS=0)"), "{stderr}");
    std::fs::write(dir.path().join("loose.toml"), pinned.replace("demo_py/demo_py.wasm", "unpinned/demo_py.wasm")).unwrap();
    let refused = weightlab(dir.path(), &["validate", "loose.toml"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("componentize-py#247") && stderr.contains("a pin holds for one built file"), "{stderr}");

    let contract = weightlab_ok(dir.path(), &["-q", "plugin", "test", "demo_py/demo_py.wasm"]);
    assert!(contract.contains("8 clauses, 0 failed") && contract.contains("pass  same fit, same samples again"), "{contract}");
    weightlab_ok(dir.path(), &["run", "exp.toml", "-o", "out"]);
    // With scale 0 the template returns the mean of the training checkpoints: every sample the
    // same distance from its nearest training checkpoint.
    let d = column(&dir.path().join("out"), "samples", Some("demo_py"), "nn_l2");
    assert!(!d.is_empty());
    let first = d[0].unwrap();
    assert!(d.iter().all(|x| (x.unwrap() - first).abs() < 1e-9) && first > 0.0, "{d:?}");

    // A config the schema refuses is refused before anything runs, naming the key.
    let bad = manifest.replace("config = { scale = 0.0 }", "config = { scale = -1.0 }");
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = weightlab(dir.path(), &["run", "bad.toml", "-o", "bad"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("scale") && stderr.contains("minimum"), "{stderr}");

    // The template's `check` needs two checkpoints to estimate a spread: a one-model zoo is
    // refused before it trains, at the method's config.
    std::fs::write(dir.path().join("one.toml"), manifest.replace("models = 8", "models = 1")).unwrap();
    let out = weightlab(dir.path(), &["run", "one.toml", "-o", "one"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("plugin `demo_py/demo_py.wasm` config: needs at least 2 training checkpoints to estimate their spread; the zoo has 1") && stderr.contains("one.toml:19:10"), "{stderr}");
    assert!(!dir.path().join("one").exists(), "nothing may run");

    // A plugin_path folder that does not exist, and a name found nowhere, are located errors.
    let lost = manifest.replace("[experiment]\n", "[experiment]\nplugin_path = [\"nope\"]\n").replace("plugin = \"demo_py/demo_py.wasm\"", "plugin = \"demo-pi\"");
    std::fs::write(dir.path().join("lost.toml"), lost).unwrap();
    let out = weightlab(dir.path(), &["validate", "lost.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`experiment.plugin_path`: folder") && stderr.contains("lost.toml:2:16"), "{stderr}");
    assert!(stderr.contains("unknown plugin `demo-pi`"), "{stderr}");
}

/// A Fashion-MNIST MLP zoo; `methods` are appended.
const ZOO: &str = r#"[experiment]
name = "authors"
seeds = [0]
plugin_path = ["found"]

[data.fmnist]
source = "fashion-mnist"
train_subset = 3000
test_subset = 1000

[zoo.mlp]
data = "fmnist"
arch = { kind = "mlp", hidden = [16] }
models = 14
train = { lr = 3e-3, epochs = 1, batch_size = 64 }
split = { train = 12, heldout = 2 }
"#;

#[test]
fn python_and_wit_0_1_and_0_4_averages_equal_the_rust_average_bit_for_bit() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let mut manifest = String::from(ZOO);
    // `average-py` is found by name in the manifest's plugin_path; the 0.1.0 plugin by path.
    for (name, plugin) in [("rust", "average"), ("python", "average-py"), ("wit-0.1", "legacy/average-0_1.wasm"), ("wit-0.4", "legacy/average-0_4.wasm")] {
        manifest += &format!("\n[[method]]\nname = \"{name}\"\nplugin = \"{plugin}\"\nzoo = \"mlp\"\nsamples = 6\nconfig = {{ k = 4 }}\n");
    }
    let (dir, _) = experiment(&manifest);
    let python = copy_plugin(&root().join("plugins/python/average"), dir.path());
    weightlab_ok(dir.path(), &["plugin", "build", python.to_str().unwrap()]);
    std::fs::create_dir_all(dir.path().join("found")).unwrap();
    std::fs::rename(python.join("average-py.wasm"), dir.path().join("found/average-py.wasm")).unwrap();

    // Built against plugins/wit/frozen/0.1.0 and 0.4.0 (the last before `check`) with raw
    // wit-bindgen, as plugins of those times.
    let target = binary().parent().unwrap().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(dir.path().join("legacy")).unwrap();
    for version in ["0.1", "0.4"] {
        let crate_dir = root().join(format!("tests/compat/average-{version}"));
        let out = std::process::Command::new(binary()).args(["plugin", "build"]).arg(&crate_dir).env("CARGO_TARGET_DIR", &target).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let file = format!("average-{}.wasm", version.replace('.', "_"));
        std::fs::copy(crate_dir.join(&file), dir.path().join("legacy").join(&file)).unwrap();
        let inspect: serde_json::Value = serde_json::from_slice(&weightlab(dir.path(), &["plugin", "inspect", &format!("legacy/{file}"), "--json"]).stdout).unwrap();
        assert_eq!(inspect["wit"], format!("{version}.0"));
        assert!(inspect["runs_here"].as_str().unwrap().starts_with("yes, through the adapter"), "{inspect}");
    }

    weightlab_ok(dir.path(), &["run", "exp.toml", "-o", "out"]);
    let run = dir.path().join("out");
    let rust = samples(&run, "rust", 0);
    assert_eq!(samples(&run, "python", 0), rust, "the Python average differs from the Rust one");
    assert_eq!(samples(&run, "wit-0.1", 0), rust, "the WIT 0.1.0 average differs from today's");
    assert_eq!(samples(&run, "wit-0.4", 0), rust, "the WIT 0.4.0 average differs from today's");
    // The runs table records each plugin's WIT version and full hash.
    let plugins = weightlab_e2e::strings(&run, "runs", "plugins").join("; ");
    assert!(
        plugins.contains("average-0.1 0.1.0 (abi 0.1.0, sha256 ") && plugins.contains("average-0.4 0.1.0 (abi 0.4.0, sha256 ") && plugins.contains("average-py 0.1.0 (abi 0.5.0, sha256 "),
        "{plugins}"
    );
    let hashes: Vec<&str> = plugins.split("sha256 ").skip(1).map(|rest| rest.split(')').next().unwrap_or_default()).collect();
    assert!(hashes.len() >= 3 && hashes.iter().all(|h| h.len() == 64), "{plugins}");

    // `weightlab plugins` lists a plugin of the search path with the version it targets.
    let listed = String::from_utf8(std::process::Command::new(binary()).arg("plugins").env("WEIGHTLAB_PLUGIN_PATH", dir.path().join("legacy")).output().unwrap().stdout).unwrap();
    let line = listed.lines().find(|l| l.starts_with("average-0_1")).unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains(" 0.1.0 ") && line.contains("baseline"), "{line}");
}

#[test]
fn python_probe_reads_trees_and_learning_rates_from_a_fashion_mnist_tree() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = "[experiment]\nname = \"py-probe\"\nseeds = [0, 1]\n\n\
                    [data.fmnist]\nsource = \"fashion-mnist\"\ntrain_subset = 3000\ntest_subset = 1000\n\n\
                    [zoo.tree]\ndata = \"fmnist\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 48\ntrain = { lr = 3e-3, epochs = 2, batch_size = 64 }\n\
                    tree = { roots = 3, classes = 2, epochs = [1, 2], lr = [1e-3, 3e-3] }\nsplit = { train = 36, heldout = 12 }\n\n\
                    [[method]]\nname = \"tree\"\nplugin = \"moments-probe/moments-probe.wasm\"\nzoo = \"tree\"\ntarget = \"parent\"\n\n\
                    [[method]]\nname = \"tree shuffled\"\nplugin = \"moments-probe/moments-probe.wasm\"\nzoo = \"tree\"\ntarget = \"parent\"\nshuffle_labels = true\n\n\
                    [[method]]\nname = \"lr\"\nplugin = \"moments-probe/moments-probe.wasm\"\nzoo = \"tree\"\ntarget = \"lr\"\n";
    let (dir, _) = experiment(manifest);
    let probe = copy_plugin(&root().join("plugins/python/moments-probe"), dir.path());
    weightlab_ok(dir.path(), &["plugin", "build", probe.to_str().unwrap()]);
    weightlab_ok(dir.path(), &["run", "exp.toml", "-o", "out"]);
    let run = dir.path().join("out");
    let scores: Vec<weightlab_results::ProbeScoreRow> = weightlab_results::rows::read_table(&run, "probe_scores").unwrap().expect("probe scores");
    let mean = |method: &str, metric: &str| {
        let v: Vec<(f64, f64)> = scores.iter().filter(|s| s.method == method && s.metric == metric).map(|s| (s.value, s.chance)).collect();
        assert_eq!(v.len(), 2, "{method} {metric}: one score per seed");
        (v.iter().map(|x| x.0).sum::<f64>() / 2.0, v[0].1)
    };
    let (tree, chance) = mean("tree", "accuracy");
    let (shuffled, _) = mean("tree shuffled", "accuracy");
    eprintln!("moments-probe: tree accuracy {tree:.3} (chance {chance:.3}), shuffled {shuffled:.3}");
    assert!(tree >= 0.9, "the Python probe tells the three trees apart: accuracy {tree}");
    assert!(shuffled < chance + 0.35, "shuffled labels leave it near chance: {shuffled} vs {chance}");
    let metrics: Vec<&str> = scores.iter().filter(|s| s.method == "lr").map(|s| s.metric.as_str()).collect();
    assert!(!metrics.is_empty(), "the regression target is scored: {metrics:?}");
}
