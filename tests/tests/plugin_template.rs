//! `weightlab plugin new` + `weightlab plugin build` give a plugin that a manifest can run: the
//! walk-through of the author's guide (`docs/src/plugins.md`), with its manifest taken from the guide.

use weightlab_e2e::{binary, column, experiment, root, weightlab_ok};

/// The guide's example manifest: its first TOML block.
fn guide_manifest() -> String {
    let guide = std::fs::read_to_string(root().join("docs/src/plugins.md")).expect("docs/src/plugins.md");
    let fence = "```toml tested=tests/tests/plugin_template.rs\n";
    let start = guide.find(fence).expect("a TOML block in the guide") + fence.len();
    let end = start + guide[start..].find("```").expect("the block ends");
    guide[start..end].to_string()
}

#[test]
fn new_plugin_builds_passes_the_contract_and_runs_from_the_guides_manifest() {
    let manifest = guide_manifest();
    assert!(manifest.contains("plugin = \"demo/demo.wasm\"") && manifest.contains("config = { scale = 0.0 }"), "{manifest}");
    let (dir, _) = experiment(&manifest);
    weightlab_ok(dir.path(), &["plugin", "new", "demo", "--role", "baseline"]);
    assert!(dir.path().join("demo/src/lib.rs").is_file());
    // It depends on the binary's own copy of the SDK in the cache folder, not on this clone
    // (which may move or go): the copy's sources are this clone's.
    let cargo_toml = std::fs::read_to_string(dir.path().join("demo/Cargo.toml")).unwrap();
    let sdk = cargo_toml.lines().find_map(|l| l.strip_prefix("weightlab-sdk = { path = \"")).and_then(|rest| rest.split('"').next()).unwrap_or_else(|| panic!("{cargo_toml}"));
    assert!(!sdk.contains(&root().display().to_string()) && sdk.contains("/sdk/"), "{sdk}");
    for file in ["src/lib.rs", "src/nn.rs"] {
        assert_eq!(std::fs::read_to_string(std::path::Path::new(sdk).join(file)).unwrap(), std::fs::read_to_string(root().join("plugins/sdk").join(file)).unwrap(), "{file}");
    }
    // Share the workspace's target folder so the SDK's dependencies are already built.
    let target = binary().parent().unwrap().parent().unwrap().to_path_buf();
    let out = std::process::Command::new(binary()).args(["plugin", "build", "demo"]).current_dir(dir.path()).env("CARGO_TARGET_DIR", &target).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("demo/demo.wasm").is_file());
    let contract = weightlab_ok(dir.path(), &["-q", "plugin", "test", "demo/demo.wasm"]);
    assert!(contract.contains("8 clauses, 0 failed") && contract.contains("pass  same fit, same samples again"), "{contract}");
    weightlab_ok(dir.path(), &["run", "exp.toml", "-o", "out"]);
    // With scale 0 the template plugin returns the mean of the training checkpoints.
    let d = column(&dir.path().join("out"), "samples", Some("demo"), "nn_l2");
    assert_eq!(d.len(), 4);
    let first = d[0].unwrap();
    assert!(d.iter().all(|x| (x.unwrap() - first).abs() < 1e-9) && first > 0.0, "{d:?}");
}

#[test]
fn new_probe_plugin_builds_and_predicts_from_a_manifest() {
    let manifest = "[experiment]\nname = \"demo\"\n[data.b]\nsource = \"blobs\"\nclasses = 4\nsamples = 512\n\
                    [zoo.tree]\ndata = \"b\"\narch = { kind = \"mlp\", hidden = [8] }\nmodels = 24\ntrain = { lr = 0.01, epochs = 3, batch_size = 32 }\n\
                    tree = { roots = 2, classes = 2, epochs = 2 }\nsplit = { train = 18, heldout = 6 }\n\
                    [[method]]\nname = \"demo probe\"\nplugin = \"demo_probe/demo_probe.wasm\"\nzoo = \"tree\"\ntarget = \"parent\"\n";
    let (dir, _) = experiment(manifest);
    weightlab_ok(dir.path(), &["plugin", "new", "demo_probe", "--role", "probe"]);
    let target = binary().parent().unwrap().parent().unwrap().to_path_buf();
    let out = std::process::Command::new(binary()).args(["plugin", "build", "demo_probe"]).current_dir(dir.path()).env("CARGO_TARGET_DIR", &target).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    weightlab_ok(dir.path(), &["run", "exp.toml", "-o", "out"]);
    // The template's probe (per-tensor mean and spread, linear head) tells the two trees apart.
    let accuracy = column(&dir.path().join("out"), "probe_scores", Some("demo probe"), "value");
    assert_eq!(accuracy.len(), 1, "one metric (accuracy) for a parent target");
    assert!(accuracy[0].unwrap() > 0.8, "template probe's tree accuracy {accuracy:?}");
}
