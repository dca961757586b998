//! Regression figures: small, fast versions of the generators' own settings (p-diff's and
//! FLoWN's, last-layer snapshots, are in `generators.rs`)
//! (`experiments/<generator>.toml`). They fail when a generator stops learning its zoo — an
//! accuracy or SDF-error floor relative to the zoo's own checkpoints — or when a memorization
//! metric changes definition (a copy is at aligned distance 0 and Chamfer distance 0; aligning
//! never moves a model away from the checkpoints).

use std::path::Path;
use std::sync::Mutex;

use weightlab_e2e::{column, experiment, weightlab_ok};

/// One run at a time: two libtorch runs sharing 2 cores spin against each other and each takes
/// several times as long as alone.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn mean(out: &Path, method: &str, metric: &str) -> f64 {
    let v: Vec<f64> = column(out, "samples", Some(method), metric).into_iter().flatten().filter(|v| v.is_finite()).collect();
    assert!(!v.is_empty(), "{method} has finite {metric} values");
    v.iter().sum::<f64>() / v.len() as f64
}

fn values(out: &Path, method: &str, metric: &str) -> Vec<f64> {
    column(out, "samples", Some(method), metric).into_iter().flatten().collect()
}

/// G.pt's setting: checkpoints along whole runs of the 784 → 10 → 10 MLP.
const GPT: &str = r#"[experiment]
name = "gpt"
seeds = [0]

[data.fmnist]
source = "fashion-mnist"
train_subset = 3000
test_subset = 1000

[zoo.mlp]
data = "fmnist"
arch = { kind = "mlp", hidden = [10] }
models = 6
train = { optimizer = "sgd", lr = 0.05, epochs = 4, batch_size = 64 }
keep = { last_epochs = 4 }
split = { train = 5, heldout = 1 }

# The papers' schedule (β's range scaled by 1000 / T), over 200 timesteps: G.pt trained with
# it learned in 300 steps what the fixed schedule did not in 600 (accuracy 0.733 vs 0.679 when
# measured), and samples in 200 denoising steps instead of 500. 200 steps: samples at 0.740 and aligned
# distance 0.83 (300 steps: 0.772, 0.50; 150: 0.712, 1.03), on a zoo whose checkpoints score
# 0.740 (floor 0.9 × that) and whose held-out run lies 3.80 away (floor: half of that).
[[method]]
name = "G.pt"
plugin = "gpt"
zoo = "mlp"
samples = 12
config = { steps = 200, timesteps = 200, schedule = "scaled" }

# 400 autoencoder steps: samples at 0.784 (1,000 steps: 0.783; 100: 0.776; 20: 0.561, below
# the floor of 0.9 × the checkpoints' 0.742).
[[method]]
name = "hyper-reps S_Neigh"
plugin = "hyperreps"
zoo = "mlp"
samples = 12
config = { steps = 400, sampler = "neighbourhood", bandwidth_scale = 0.2 }

[[method]]
name = "copy"
plugin = "copy"
zoo = "mlp"
samples = 12
"#;

#[test]
fn gpt_and_hyperreps_learn_checkpoints_along_training_runs() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, path) = experiment(GPT);
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let out = dir.path().join("out");
    let zoo = mean(&out, "train (leave-one-out)", "accuracy");
    let acc = mean(&out, "G.pt", "accuracy");
    // Prompted with the zoo's best accuracy, its samples reach at least 90 % of the
    // checkpoints' mean accuracy (chance is 0.1).
    assert!(acc >= 0.9 * zoo, "G.pt samples {acc:.3} vs checkpoints {zoo:.3}");
    // They lie near the checkpoints, far nearer than an independent run does.
    let (nn, heldout) = (mean(&out, "G.pt", "nn_l2_aligned"), mean(&out, "held-out", "nn_l2_aligned"));
    assert!(nn < 0.5 * heldout, "G.pt samples {nn:.3} from the checkpoints (aligned) vs held-out run {heldout:.3}");
    // Hyper-Representations' neighbourhood sampler decodes near training models' latents.
    let hyperreps = mean(&out, "hyper-reps S_Neigh", "accuracy");
    eprintln!("zoo {zoo:.3}, G.pt {acc:.3} at aligned NN {nn:.3} (held-out run {heldout:.3}), hyper-reps S_Neigh {hyperreps:.3}");
    assert!(hyperreps >= 0.9 * zoo, "hyper-reps S_Neigh samples {hyperreps:.3} vs checkpoints {zoo:.3}");
    // Definitions: aligning never increases the distance; a copy is at 0 either way.
    for method in ["G.pt", "hyper-reps S_Neigh", "held-out", "train (leave-one-out)"] {
        for (raw, aligned) in values(&out, method, "nn_l2").into_iter().zip(values(&out, method, "nn_l2_aligned")) {
            assert!(aligned <= raw + 1e-9, "{method}: aligned {aligned} > raw {raw}");
        }
    }
    assert!(values(&out, "copy", "nn_l2_aligned").iter().all(|&d| d == 0.0));
    // The held-out run was trained from another seed: alignment finds a closer match.
    assert!(mean(&out, "held-out", "nn_l2_aligned") < mean(&out, "held-out", "nn_l2"));
}

/// HyperDiffusion's setting: one SDF field per shape, shapes of one family.
const FIELDS: &str = r#"[experiment]
name = "fields"
seeds = [0]

[data.shapes]
source = "sdf-shapes"
samples = 2048
shapes = 12
family = "box"

[zoo.sdf]
data = "shapes"
arch = { kind = "sdf-mlp", hidden = [32, 32] }
models = 12
train = { lr = 3e-3, epochs = 80, batch_size = 128 }
split = { train = 10, heldout = 2 }

# 1,000 steps: SDF error 0.00079 against the zoo's 0.00040 (floor: 4 × that), Chamfer 0.016 from
# the training shapes against the held-out shapes' 0.14 (1,500 steps: 0.00055, 0.013; 600:
# 0.0014, 0.020).
[[method]]
name = "HyperDiffusion"
plugin = "hyperdiffusion"
zoo = "sdf"
samples = 8
config = { steps = 1000, timesteps = 200 }

[[method]]
name = "copy"
plugin = "copy"
zoo = "sdf"
samples = 8
"#;

#[test]
fn hyperdiffusion_learns_its_fields_and_a_copied_field_has_chamfer_zero() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, path) = experiment(FIELDS);
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let out = dir.path().join("out");
    let zoo = mean(&out, "train (leave-one-out)", "loss");
    let loss = mean(&out, "HyperDiffusion", "loss");
    assert!(loss < 4.0 * zoo, "HyperDiffusion SDF error {loss:.5} vs the zoo's {zoo:.5}");
    // Copied fields describe exactly the training shapes.
    let copies = values(&out, "copy", "nn_chamfer");
    assert_eq!(copies.len(), 8);
    assert!(copies.iter().all(|&d| d == 0.0), "Chamfer distance of copied fields: {copies:?}");
    // Other shapes of the family are measurably different; the generated ones sit nearer the
    // training shapes than held-out shapes do.
    let heldout = mean(&out, "held-out", "nn_chamfer");
    assert!(heldout > 0.005, "held-out shapes at Chamfer {heldout}");
    let generated = mean(&out, "HyperDiffusion", "nn_chamfer");
    eprintln!("zoo SDF error {zoo:.5}, HyperDiffusion {loss:.5}; Chamfer: generated {generated:.4}, held-out {heldout:.4}");
    assert!(generated < heldout, "generated shapes at {generated} vs held-out {heldout}");
}
