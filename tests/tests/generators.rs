//! Generators trained from a manifest produce usable models: p-diff on a Fashion-MNIST zoo
//! samples models far above chance, and its training curves land in the tables.

use weightlab_e2e::{column, experiment, weightlab_ok};

const MANIFEST: &str = r#"[experiment]
name = "pdiff"
seeds = [0]

[data.fmnist]
source = "fashion-mnist"
train_subset = 6000
test_subset = 1000

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
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
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
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
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
