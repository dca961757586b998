//! Generators trained from a manifest produce usable models: p-diff on a Fashion-MNIST zoo
//! samples models far above chance, and its training curves land in the tables. The tests run
//! side by side, each run with one compute thread.

use weightlab_e2e::{column, experiment, weightlab_ok_beside};

const MANIFEST: &str = r#"extends = ["$FIXTURES/fmnist.toml"]

[experiment]
name = "pdiff"
seeds = [0]

[zoo.mlp]
data = "fmnist"
arch = { kind = "mlp", hidden = [10] }
models = 20
train = { lr = 3e-3, epochs = 2, batch_size = 64 }
split = { train = 16, heldout = 4 }

[[method]]
name = "p-diff"
plugin = "pdiff"
zoo = "mlp"
samples = 16
config = { ae_steps = 400, ddpm_steps = 400, timesteps = 200 }
"#;

#[test]
fn pdiff_samples_models_far_above_chance() {
    let (dir, path) = experiment(MANIFEST);
    weightlab_ok_beside(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let out = dir.path().join("out");
    let acc: Vec<f64> = column(&out, "samples", Some("p-diff"), "accuracy").into_iter().flatten().collect();
    assert_eq!(acc.len(), 16);
    let mean = acc.iter().sum::<f64>() / acc.len() as f64;
    assert!(mean > 0.2, "p-diff samples average {mean} accuracy; chance is 0.1");
    let best = acc.iter().cloned().fold(0.0, f64::max);
    assert!(best > 0.3, "best p-diff sample {best}");
    // Its autoencoder and diffusion losses were logged and went down.
    let df = weightlab_results::read_parquet(&out.join("training_log.parquet")).unwrap();
    let names: Vec<String> = df.column("name").unwrap().str().unwrap().into_iter().map(|v| v.unwrap().to_string()).collect();
    let values: Vec<f64> = df.column("value").unwrap().f64().unwrap().into_iter().map(|v| v.unwrap()).collect();
    for metric in ["ae-loss", "ddpm-loss"] {
        let series: Vec<f64> = names.iter().zip(&values).filter(|(n, _)| *n == metric).map(|(_, v)| *v).collect();
        assert!(series.len() >= 2, "{metric} logged");
        assert!(series.last().unwrap() < &(0.5 * series[0]), "{metric} did not decrease: {series:?}");
    }
}

#[test]
fn pdiff_in_its_own_setting_reproduces_its_training_snapshots() {
    // p-diff's recipe: one trained model whose last layer keeps training; 100 snapshots.
    let manifest = MANIFEST
        .replace("models = 20", "models = 1")
        .replace("hidden = [10]", "hidden = [16]")
        .replace("split = { train = 16, heldout = 4 }", "continue = { params = [\"layers.1\"], steps = 100, keep_every = 1 }")
        .replace("config = { ae_steps = 400, ddpm_steps = 400, timesteps = 200 }", "config = { ae_steps = 600, ddpm_steps = 600 }");
    let (dir, path) = experiment(&manifest);
    weightlab_ok_beside(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let out = dir.path().join("out");
    let mean = |v: Vec<Option<f64>>| {
        let v: Vec<f64> = v.into_iter().flatten().collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let train_acc = mean(column(&out, "samples", Some("train (leave-one-out)"), "accuracy"));
    let train_nn = mean(column(&out, "samples", Some("train (leave-one-out)"), "nn_l2"));
    let acc = mean(column(&out, "samples", Some("p-diff"), "accuracy"));
    let nn = mean(column(&out, "samples", Some("p-diff"), "nn_l2"));
    // Generated models work as well as the snapshots and sit among them (Zeng et al. 2025).
    assert!(acc > train_acc - 0.06, "p-diff accuracy {acc} vs snapshots {train_acc}");
    // Closer to a snapshot than the snapshot plus N(0, 0.01²) noise would be (√12,730 · 0.01 ≈ 1.13).
    assert!(nn < 1.0, "p-diff samples are {nn} from the snapshots (snapshots are {train_nn} apart)");
}

/// The p-diff setting (one model whose last layer keeps training; 100 snapshots) for every other
/// generator, plus FLoWN sampled with zero ODE steps.
const SNAPSHOTS: &str = r#"extends = ["$FIXTURES/fmnist.toml"]

[experiment]
name = "generators"
seeds = [0]

[zoo.mlp]
data = "fmnist"
arch = { kind = "mlp", hidden = [16] }
models = 1
train = { lr = 3e-3, epochs = 2, batch_size = 64 }
continue = { params = ["layers.1"], steps = 100, keep_every = 1 }

[[method]]
name = "hyperreps"
plugin = "hyperreps"
zoo = "mlp"
samples = 16
config = { steps = 600 }

[[method]]
name = "hyperreps transformer"
plugin = "hyperreps"
zoo = "mlp"
samples = 16
config = { steps = 300, autoencoder = "transformer", dim = 32 }

# The diffusion generators at 400 steps: samples 0.0127 (HyperDiffusion) and 0.0122 (G.pt)
# from the snapshots, which lie 0.0095 apart (1,000 steps: 0.0082, 0.0073; 20 steps: 0.051,
# 0.055 — above the floor of twice the snapshots' spacing).
[[method]]
name = "hyperdiffusion"
plugin = "hyperdiffusion"
zoo = "mlp"
samples = 16
config = { steps = 400, timesteps = 200 }

[[method]]
name = "gpt"
plugin = "gpt"
zoo = "mlp"
samples = 16
config = { steps = 400, timesteps = 200, token_size = 64 }

[[method]]
name = "flown"
plugin = "flown"
zoo = "mlp"
samples = 16
config = { ae_steps = 600, flow_steps = 600, ode_steps = 20 }

[[method]]
name = "flown prior"
plugin = "flown"
zoo = "mlp"
samples = 64
config = { ae_steps = 600, flow_steps = 600, ode_steps = 0 }
"#;

#[test]
fn every_generator_learns_its_snapshots_and_flow_matching_starts_from_its_prior() {
    let (dir, path) = experiment(SNAPSHOTS);
    weightlab_ok_beside(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let out = dir.path().join("out");
    let mean = |method: &str, col: &str| {
        let v: Vec<f64> = column(&out, "samples", Some(method), col).into_iter().flatten().collect();
        assert!(!v.is_empty(), "{method} has samples");
        v.iter().sum::<f64>() / v.len() as f64
    };
    let snapshots = mean("train (leave-one-out)", "accuracy");
    // The diffusion models learn the snapshots' distribution, not just a blur around it: their
    // samples lie within twice the snapshots' own spacing of one.
    let spacing = mean("train (leave-one-out)", "nn_l2");
    for method in ["hyperdiffusion", "gpt"] {
        let nn = mean(method, "nn_l2");
        assert!(nn < 2.0 * spacing, "{method}: samples {nn} from the snapshots, which lie {spacing} apart");
    }
    for method in ["hyperreps", "hyperreps transformer", "hyperdiffusion", "gpt", "flown"] {
        let (acc, nn) = (mean(method, "accuracy"), mean(method, "nn_l2"));
        assert!(acc > snapshots - 0.06, "{method}: accuracy {acc} vs snapshots {snapshots} (chance 0.1)");
        assert!(nn < 1.0, "{method}: samples are {nn} from the snapshots");
        // The hidden layer is frozen in this setting: aligning hidden units cannot bring the
        // samples closer than the raw distance, and never moves them away.
        let aligned = mean(method, "nn_l2_aligned");
        assert!(aligned <= nn + 1e-9 && aligned > 0.9 * nn, "{method}: aligned {aligned} vs raw {nn}");
    }
    // Zero ODE steps: the latents handed to the decoder are the prior's draws, N(0, I).
    let df = weightlab_results::read_parquet(&out.join("training_log.parquet")).unwrap();
    let logged = |source: &str, name: &str| -> f64 {
        let (s, n, v) = (df.column("source").unwrap().str().unwrap(), df.column("name").unwrap().str().unwrap(), df.column("value").unwrap().f64().unwrap());
        (0..df.height()).find(|&i| s.get(i) == Some(source) && n.get(i) == Some(name)).and_then(|i| v.get(i)).unwrap_or_else(|| panic!("{source} logged {name}"))
    };
    let (m, s) = (logged("flown prior", "sample-latent-mean"), logged("flown prior", "sample-latent-std"));
    assert!(m.abs() < 0.1 && (s - 1.0).abs() < 0.1, "zero-step latents: mean {m}, std {s}");
    // Integrating the learned flow moves them onto the data: its samples sit closer to the
    // snapshots than decoded prior draws (the decoder alone already maps noise near them).
    let (flow, prior) = (mean("flown", "nn_l2"), mean("flown prior", "nn_l2"));
    assert!(flow < prior, "flow samples {flow} vs decoded prior draws {prior} from the snapshots");
}
