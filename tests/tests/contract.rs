//! The plugin contract harness (`weightlab plugin test`): every built-in generator, baseline and
//! probe passes it (generators with short training: the contract is about shapes, finiteness,
//! determinism and limits, not quality); misbehaving plugins fail it with the right reason
//! (`hostile.rs`).

use std::path::PathBuf;

use weightlab_e2e::{root, weightlab, weightlab_beside};

/// (plugin, config, zoo)
const BUILT_INS: [(&str, &str, &str); 17] = [
    ("copy", "{ permute = true }", "plain"),
    ("noise", "{ sigma = 0.1 }", "plain"),
    ("average", "{ k = 4 }", "plain"),
    ("interpolate", "{}", "plain"),
    ("gaussian", "{}", "plain"),
    ("random-init", "{}", "plain"),
    ("nearest-task", "{}", "tasks"),
    ("pdiff", "{ ae_steps = 20, ddpm_steps = 20, permutations = 1 }", "plain"),
    ("hyperreps", "{ steps = 20, permutations = 1 }", "plain"),
    ("hyperreps", r#"{ steps = 20, autoencoder = "transformer", dim = 16, depth = 1, permute_each_step = true, contrastive = 0.1 }"#, "plain"),
    ("gpt", "{ steps = 20 }", "plain"),
    ("gpt", r#"{ steps = 20, timesteps = 50, schedule = "scaled" }"#, "plain"),
    ("flown", "{ ae_steps = 20, flow_steps = 20 }", "plain"),
    ("flown", "{ ae_steps = 20, flow_steps = 20 }", "tasks"),
    ("hyperdiffusion", "{ steps = 20 }", "plain"),
    ("d2nwg", "{ vae_steps = 20, diffusion_steps = 20 }", "tasks"),
    ("igpg", "{ vq_steps = 20, ar_steps = 20 }", "tasks"),
];

#[test]
fn every_built_in_method_passes_the_contract() {
    let dist = std::env::var_os("WEIGHTLAB_PLUGIN_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("plugins/dist"));
    // Three at a time, one compute thread each: a run keeps about two thirds of a core busy.
    let results: Vec<(String, std::process::Output)> = BUILT_INS
        .chunks(3)
        .flat_map(|pair| {
            let handles: Vec<_> = pair
                .iter()
                .map(|&(plugin, config, zoo)| {
                    let wasm = dist.join(format!("{plugin}.wasm"));
                    std::thread::spawn(move || {
                        let out = weightlab_beside(&root(), &["-q", "plugin", "test", wasm.to_str().unwrap(), "--config", config, "--zoo", zoo]);
                        (format!("{plugin} {config} ({zoo})"), out)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        })
        .collect();
    let mut failed = Vec::new();
    for (what, out) in &results {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let clauses = [
            "pass  loads and describes itself",
            "pass  config schema",
            "pass  its check accepts the config tested",
            "pass  fit and sample within the default limits",
            "pass  finite values",
            "pass  same seed, same samples",
            "pass  same fit, same samples again",
            "8 clauses, 0 failed",
        ];
        if out.status.code() != Some(0) || clauses.iter().any(|c| !stdout.contains(c)) {
            failed.push(format!("{what}:\n{stdout}{}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    assert!(failed.is_empty(), "{} of {} fail the contract:\n{}", failed.len(), results.len(), failed.join("\n"));
}

#[test]
fn every_built_in_probe_passes_the_contract() {
    let dist = std::env::var_os("WEIGHTLAB_PLUGIN_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("plugins/dist"));
    for probe in ["probex", "flat", "weight-stats"] {
        let wasm = dist.join(format!("{probe}.wasm"));
        let out = weightlab(&root(), &["-q", "plugin", "test", wasm.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("report.html") && !stdout.contains("report.html"), "the inner runs' report paths are not printed: {stderr}");
        for clause in [
            "pass  loads and describes itself",
            "pass  its check accepts the config tested: no problem found in 3 checks",
            "pass  fit and predict within the default limits: multi-label (classes), single-label (parent), regression (lr)",
            "pass  finite values",
            "pass  same seed, same predictions",
            "pass  reads the weights: tells the trees apart",
            "7 clauses, 0 failed",
        ] {
            assert!(stdout.contains(clause), "{probe} lacks `{clause}`:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn a_config_the_plugin_refuses_and_a_missing_file_fail_clearly() {
    let dist = std::env::var_os("WEIGHTLAB_PLUGIN_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("plugins/dist"));
    let noise = dist.join("noise.wasm");
    let out = weightlab(&root(), &["-q", "plugin", "test", noise.to_str().unwrap(), "--config", "{ sgima = 0.1 }"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  config schema") && stdout.contains("'sgima' was unexpected"), "{stdout}");
    // A conditional generator on a zoo without tasks: its own check says why, before `fit` does.
    let igpg = dist.join("igpg.wasm");
    let out = weightlab(&root(), &["-q", "plugin", "test", igpg.to_str().unwrap(), "--config", "{ vq_steps = 2, ar_steps = 2 }", "--zoo", "plain"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  its check accepts the config tested: it refuses the contract's zoo: `condition`: conditions on the `instruction`"), "{stdout}");
    let out = weightlab(&root(), &["plugin", "test", "nope.wasm"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.wasm is not a file"));
}
