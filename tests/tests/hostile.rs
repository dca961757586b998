//! Hostile plugins are contained: each misbehaviour stops only its own method, with a reason
//! that says what happened, and the other methods' results are intact.

use std::process::Command;

use weightlab_e2e::{column, experiment, root, weightlab};

/// Builds tests/hostile for wasm32-wasip2 and returns the component's path.
fn build_hostile() -> std::path::PathBuf {
    let manifest = root().join("tests/hostile/Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest)
        .current_dir(root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the hostile plugin failed");
    let meta = Command::new(env!("CARGO")).args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"]).arg(&manifest).current_dir(root()).output().unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap();
    std::path::PathBuf::from(meta["target_directory"].as_str().unwrap()).join("wasm32-wasip2/release/hostile.wasm")
}

fn method(name: &str, mode: &str, limits: &str) -> String {
    format!("[[method]]\nname = \"{name}\"\nplugin = \"hostile.wasm\"\nzoo = \"mlp\"\nsamples = 4\nconfig = {{ mode = \"{mode}\" }}\nlimits = {{ {limits} }}\n\n")
}

#[test]
fn hostile_plugins_are_contained() {
    let wasm = build_hostile();
    let mut manifest = String::from(
        "[experiment]\nname = \"hostile\"\n\n[data.blobs]\nsource = \"blobs\"\nsamples = 256\n\n\
         [zoo.mlp]\ndata = \"blobs\"\narch = { kind = \"mlp\", hidden = [8] }\nmodels = 6\ntrain = { epochs = 1, batch_size = 32 }\n\n\
         [[method]]\nname = \"copy before\"\nplugin = \"copy\"\nzoo = \"mlp\"\nsamples = 4\n\n",
    );
    let cases = [
        ("loop (deadline)", "loop", "timeout_secs = 1.0", "exceeded its time limit"),
        ("loop (fuel)", "loop", "fuel = 50000000", "ran out of fuel"),
        ("allocation bomb", "alloc", "memory_mib = 64", "memory"),
        ("panic", "panic", "", "panicked"),
        ("nan", "nan", "", "non-finite"),
        ("wrong shape", "shape", "", "expected [4, 60]"),
        ("file", "file", "", "could not open a file"),
        ("tensor bomb", "tensors", "tensor_memory_mib = 64", "tensor memory cap exceeded"),
    ];
    for (name, mode, limits, _) in &cases {
        manifest.push_str(&method(name, mode, limits));
    }
    manifest.push_str("[[method]]\nname = \"copy after\"\nplugin = \"copy\"\nzoo = \"mlp\"\nsamples = 4\n");
    let (dir, _) = experiment(&manifest);
    std::fs::copy(&wasm, dir.path().join("hostile.wasm")).unwrap();
    let started = std::time::Instant::now();
    let out = weightlab(dir.path(), &["run", "exp.toml", "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "failed methods make the run exit 1:\n{stderr}");
    assert!(!stderr.contains("panicked at") || stderr.contains("hostile plugin panicked on purpose"), "the engine itself must not panic:\n{stderr}");
    assert!(started.elapsed().as_secs() < 120, "hostile plugins were stopped promptly");

    let run = dir.path().join("out");
    let failures = weightlab_results::read_parquet(&run.join("failures.parquet")).expect("failures table");
    let methods: Vec<String> = failures.column("method").unwrap().str().unwrap().into_iter().map(|v| v.unwrap().to_string()).collect();
    let reasons: Vec<String> = failures.column("reason").unwrap().str().unwrap().into_iter().map(|v| v.unwrap().to_string()).collect();
    for (name, _, _, expected) in &cases {
        let i = methods.iter().position(|m| m == name).unwrap_or_else(|| panic!("no failure recorded for `{name}`:\n{stderr}"));
        assert!(reasons[i].contains(expected), "`{name}` failed with `{}`, expected it to mention `{expected}`", reasons[i]);
        assert!(reasons[i].contains("hostile"), "the reason names the plugin: {}", reasons[i]);
    }
    assert_eq!(methods.len(), cases.len(), "{methods:?}");
    // The well-behaved methods before and after the hostile ones have all their samples.
    assert_eq!(column(&run, "samples", Some("copy before"), "accuracy").len(), 4);
    assert_eq!(column(&run, "samples", Some("copy after"), "accuracy").len(), 4);
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(report.contains("tensor memory cap exceeded") && report.contains("wrong shape"));
}

#[test]
fn a_plugin_for_another_abi_major_is_refused_before_it_runs() {
    // Rewrite the package version inside a built component: same code, other ABI.
    let wasm = std::fs::read(build_hostile()).unwrap();
    let needle = b"weightlab:plugin/tensors@0.1.0";
    let other = b"weightlab:plugin/tensors@9.1.0";
    let mut patched = wasm.clone();
    let mut count = 0;
    for i in 0..patched.len().saturating_sub(needle.len()) {
        if &patched[i..i + needle.len()] == needle {
            patched[i..i + needle.len()].copy_from_slice(other);
            count += 1;
        }
    }
    assert!(count > 0, "the component names its imports with their version");
    let manifest = "[experiment]\nname = \"abi\"\n[data.b]\nsource = \"blobs\"\nsamples = 64\n[zoo.z]\ndata = \"b\"\narch = { kind = \"mlp\" }\nmodels = 2\ntrain = { epochs = 1 }\n\
                    [[method]]\nname = \"future\"\nplugin = \"future.wasm\"\nzoo = \"z\"\nconfig = { mode = \"ok\" }\n";
    let (dir, _) = experiment(manifest);
    std::fs::write(dir.path().join("future.wasm"), patched).unwrap();
    let out = weightlab(dir.path(), &["run", "exp.toml", "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("built against weightlab:plugin@9.1.0") && stderr.contains("@0.1.0"), "{stderr}");
}
