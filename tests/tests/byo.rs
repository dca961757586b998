//! Bring your own: models, data and generated weights made in PyTorch (`tests/byo_models.py`)
//! imported through a manifest — a LeNet-5 with BatchNorm and a residual network with a 1×1
//! conv shortcut, data as `.npz`, permuted and noisy copies as imported samples — scored as
//! PyTorch scores them; weightlab's own checkpoints and exported samples load back into the
//! PyTorch modules; and every bad input refused, located, before anything trains.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use weightlab_e2e::{column, root, strings, weightlab, weightlab_ok};

fn python() -> String {
    std::env::var("WEIGHTLAB_TORCH_PYTHON").expect("WEIGHTLAB_TORCH_PYTHON is set by the set-up (.cargo/config.toml)")
}

fn script(mode: &str, dir: &Path) {
    let out = Command::new(python()).arg(root().join("tests/byo_models.py")).arg(mode).arg(dir).output().expect("python runs");
    assert!(out.status.success(), "byo_models.py {mode} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

const LENET: &str = r#"[
  { type = "conv2d", out = 6, kernel = 5, padding = 2 },
  { type = "batchnorm2d" },
  { type = "relu" },
  { type = "maxpool2d", kernel = 2 },
  { type = "conv2d", out = 16, kernel = 5 },
  { type = "relu" },
  { type = "maxpool2d", kernel = 2 },
  { type = "flatten" },
  { type = "linear", out = 120 },
  { type = "relu" },
  { type = "linear", out = 84 },
  { type = "relu" },
  { type = "linear", out = 10 },
]"#;

const RESNET: &str = r#"[
  { type = "conv2d", out = 8, kernel = 3, padding = 1 }, { type = "batchnorm2d" }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "residual",
    layers = [ { type = "conv2d", out = 16, kernel = 3, padding = 1 }, { type = "batchnorm2d" }, { type = "relu" },
               { type = "conv2d", out = 16, kernel = 3, padding = 1 }, { type = "batchnorm2d" } ],
    shortcut = [ { type = "conv2d", out = 16, kernel = 1 }, { type = "batchnorm2d" } ] },
  { type = "relu" },
  { type = "residual",
    layers = [ { type = "conv2d", out = 12, kernel = 3, padding = 1 }, { type = "batchnorm2d" }, { type = "relu" },
               { type = "conv2d", out = 16, kernel = 3, padding = 1 }, { type = "batchnorm2d" } ] },
  { type = "relu" }, { type = "adaptive_avgpool2d" }, { type = "flatten" }, { type = "linear", out = 10 },
]"#;

fn manifest() -> String {
    format!(
        r#"[experiment]
name = "byo"
seeds = [0]

[data.fm]
source = "tensors"
path = "data.npz"

[zoo.lenet]
data = "fm"
arch = {{ kind = "sequential", layers = {LENET} }}
import = "zoo/lenet"
split = {{ train = 2, heldout = 1 }}

[zoo.res]
data = "fm"
arch = {{ kind = "sequential", layers = {RESNET} }}
import = "zoo/res"

[zoo.lenet-tape]
data = "fm"
arch = {{ kind = "sequential", layers = {LENET} }}
models = 3
train = {{ epochs = 2, lr = 1e-3, batch_size = 64 }}

[[method]]
name = "my-lenet-generator"
import = "samples/lenet"
zoo = "lenet"

[[method]]
name = "my-resnet-generator"
import = "samples/res"
zoo = "res"

[[method]]
name = "copy-permuted"
plugin = "copy"
zoo = "res"
samples = 4
config = {{ permute = true }}

[evaluate]
metrics = ["accuracy", "nn_l2", "nn_l2_aligned"]
"#
    )
}

type Accuracies = BTreeMap<String, f64>;

#[test]
fn pytorch_models_data_and_weights_are_audited_as_pytorch_scores_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    script("make", d);
    let torch: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("torch.json")).unwrap()).unwrap();
    let torch_acc = |kind: &str, part: &str| -> Accuracies { serde_json::from_value(torch[kind][part].clone()).unwrap() };
    std::fs::write(d.join("exp.toml"), manifest()).unwrap();
    weightlab_ok(d, &["run", "exp.toml", "-o", "out"]);
    let out = d.join("out");

    // The imported zoos: every checkpoint's test accuracy as PyTorch computes it in eval mode.
    let (zoos, files, accs) = (strings(&out, "zoo", "zoo"), strings(&out, "zoo", "file"), column(&out, "zoo", None, "test_accuracy"));
    for kind in ["lenet", "res"] {
        let expected = torch_acc(kind, "zoo");
        let mine: Vec<(String, f64)> = zoos.iter().zip(&files).zip(&accs).filter(|((z, _), _)| *z == kind).map(|((_, f), a)| (f.clone(), a.unwrap())).collect();
        assert_eq!(mine.len(), 3, "{kind}: three imported checkpoints: {mine:?}");
        for (file, acc) in &mine {
            let want = expected[file];
            assert!((acc - want).abs() <= 1e-4, "{kind}/{file}: weightlab {acc}, PyTorch {want}");
        }
    }

    // Imported samples: file names recorded, accuracy as PyTorch's, permuted copies at aligned
    // distance 0 from their source (the training checkpoints) while far away raw.
    for (method, kind, train_models) in [("my-lenet-generator", "lenet", 2), ("my-resnet-generator", "res", 3)] {
        let expected = torch_acc(kind, "samples");
        let methods = strings(&out, "samples", "method");
        let pick = |name: &str| -> Vec<f64> { column(&out, "samples", Some(method), name).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect() };
        let files: Vec<String> = strings(&out, "samples", "file").into_iter().zip(&methods).filter(|(_, m)| *m == method).map(|(f, _)| f).collect();
        let (acc, raw, aligned) = (pick("accuracy"), pick("nn_l2"), pick("nn_l2_aligned"));
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(files, sorted, "{method}: samples are taken in file-name order");
        assert_eq!(files.len(), 6, "{method}: {files:?}");
        for (i, file) in files.iter().enumerate() {
            assert!((acc[i] - expected[file]).abs() <= 1e-4, "{method}/{file}: weightlab {}, PyTorch {}", acc[i], expected[file]);
            let seed: usize = file.trim_end_matches(".safetensors").rsplit('_').next().unwrap().parse().unwrap();
            if file.starts_with("permuted") && seed < train_models {
                assert!(aligned[i] <= 1e-4, "{method}/{file}: an exact permutation of a training checkpoint is at aligned distance {}", aligned[i]);
                assert!(raw[i] > 1.0, "{method}/{file}: the permutation should move the weights (raw distance {})", raw[i]);
            }
        }
        let roles = strings(&out, "samples", "role");
        assert!(roles.iter().zip(&methods).filter(|(_, m)| *m == method).all(|(r, _)| r == "imported"), "{method}: role `imported`");
    }

    // The plugin SDK derives the same symmetry: `copy { permute = true }` on the residual
    // network makes exact permutations (aligned distance 0) that are far away raw.
    let (raw, aligned) = (column(&out, "samples", Some("copy-permuted"), "nn_l2"), column(&out, "samples", Some("copy-permuted"), "nn_l2_aligned"));
    assert_eq!(raw.len(), 4);
    for (r, a) in raw.iter().zip(&aligned) {
        assert!(r.unwrap() > 1.0 && a.unwrap() <= 1e-4, "copy-permuted: raw {r:?}, aligned {a:?}");
    }

    // The reverse direction: weightlab's own checkpoints (trained on the tape) and its exported
    // samples load into the PyTorch modules and score there as weightlab scored them.
    let check = d.join("check");
    let export = weightlab(d, &["export", "out", "--method", "my-resnet-generator", "--to", "check/res"]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    std::fs::create_dir_all(check.join("lenet")).unwrap();
    let stages = std::fs::read_dir(out.join("stages")).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>();
    // Zoo parts and the assembled zoo hold the same checkpoints: each once.
    let mut tape_accs = BTreeMap::new();
    for stage in stages.iter().filter(|p| p.join("zoo.json").exists()) {
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(stage.join("zoo.json")).unwrap()).unwrap();
        for c in index["checkpoints"].as_array().unwrap().iter().filter(|c| c["file"].as_str().unwrap().starts_with("checkpoints/")) {
            let name = format!("tape-{}", c["file"].as_str().unwrap().trim_start_matches("checkpoints/"));
            std::fs::copy(stage.join(c["file"].as_str().unwrap()), check.join("lenet").join(&name)).unwrap();
            tape_accs.insert(name, c["test_accuracy"].as_f64().unwrap());
        }
    }
    assert_eq!(tape_accs.len(), 3, "the tape-trained LeNet zoo has three checkpoints");
    script("check", d);
    let loaded: Accuracies = serde_json::from_slice(&std::fs::read(d.join("check.json")).unwrap()).unwrap();
    for (name, acc) in &tape_accs {
        let torch = loaded[&format!("lenet/{name}")];
        assert!((torch - acc).abs() <= 1e-4, "{name}: weightlab {acc}, loaded into PyTorch {torch}");
    }
    let exported: Vec<(&String, &f64)> = loaded.iter().filter(|(k, _)| k.starts_with("res/")).collect();
    assert_eq!(exported.len(), 6, "{exported:?}");
    let res_acc: Vec<f64> = column(&out, "samples", Some("my-resnet-generator"), "accuracy").into_iter().map(Option::unwrap).collect();
    for (i, (name, acc)) in exported.iter().enumerate() {
        assert!((res_acc[i] - **acc).abs() <= 1e-4, "{name}: exported sample scores {acc} in PyTorch, {} in weightlab", res_acc[i]);
    }

    // Trained on the tape, LeNet-5 learns as in PyTorch (same recipe; 3 models each, so the
    // margin is seed noise).
    let tape_mean = tape_accs.values().sum::<f64>() / tape_accs.len() as f64;
    let torch_mean = torch["lenet"]["zoo_mean"].as_f64().unwrap();
    assert!((tape_mean - torch_mean).abs() < 0.08, "LeNet-5 on the tape: mean test accuracy {tape_mean:.3}; PyTorch {torch_mean:.3}");
}

#[test]
fn bad_inputs_are_refused_with_their_place_before_anything_trains() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    script("bad", d);
    let refuse = |manifest: &str, expected: &[&str]| {
        std::fs::write(d.join("exp.toml"), manifest).unwrap();
        let out = weightlab(d, &["run", "exp.toml", "-o", "out"]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{text}");
        for e in expected {
            assert!(text.contains(e), "expected {e:?} in:\n{text}");
        }
        assert!(!d.join("out").join("stages").exists(), "nothing may run:\n{text}");
    };
    let zoo = |data: &str, layers: &str, extra: &str| {
        format!("[experiment]\nname = \"bad\"\n\n[data.d]\n{data}\n\n[zoo.z]\ndata = \"d\"\narch = {{ kind = \"sequential\", layers = {layers} }}\nmodels = 2\n{extra}\n")
    };
    let good = r#"source = "tensors"
path = "int_x.npz""#;
    refuse(&zoo("source = \"tensors\"\npath = \"no_y_test.npz\"", LENET, ""), &["exp.toml:6:", "no_y_test.npz", "array `y_test` is missing"]);
    refuse(&zoo(good, LENET, ""), &["int_x.npz", "array `x_train` holds integers"]);
    // A NaN input would train every model into NaN weights; an object array would need pickle.
    refuse(&zoo("source = \"tensors\"\npath = \"nan_x.npz\"", LENET, ""), &["nan_x.npz", "array `x_train` holds 1 NaN or infinite value(s) (the first, NaN, at example 5, position (0, 3, 4))"]);
    refuse(&zoo("source = \"tensors\"\npath = \"object_x.npz\"", LENET, ""), &["object_x.npz", "array `x_train` holds Python objects", "never unpickles"]);
    // A shape that does not fit: a linear layer straight on the images, located at the layer.
    let images = "source = \"idx\"\npath = \"/usr/share/datasets/fashion-mnist\"\ntrain_subset = 100\ntest_subset = 50";
    refuse(
        &zoo(images, r#"[{ type = "conv2d", out = 6, kernel = 5 }, { type = "linear", out = 10 }]"#, ""),
        &["exp.toml:12:83", "layer 1 `linear`: it needs flat inputs, but layer 0 `conv2d` gives (6, 24, 24)"],
    );
    // A state_dict without a tensor of the declaration, and a pickled file.
    refuse(&zoo(images, LENET, "import = \"missing\""), &["exp.toml:", "model.safetensors", "parameter `12.bias` is missing", "layer 12 `linear`"]);
    refuse(&zoo(images, LENET, "import = \"pickled\""), &["model.pt", "is a pickled PyTorch file", "safetensors.torch.save_file(torch.load(f"]);
    refuse(&zoo(images, LENET, "import = \"diverged\""), &["model.safetensors", "tensor `0.weight` holds 150 NaN or infinite value(s)"]);
    let method = format!("{}\n[[method]]\nname = \"mine\"\nimport = \"pickled\"\nzoo = \"z\"\n", zoo(images, LENET, ""));
    refuse(&method, &["method `mine`", "is a pickled PyTorch file"]);
}

/// A declared network no machine holds is a valid manifest (widths are only numbers), but not
/// a crash: its zoo fails alone before allocating, with what it needs and what there is, and
/// the run's other zoo and methods finish.
#[test]
fn a_network_too_large_for_the_machine_fails_its_zoo_alone() {
    let text = zoo_fails_alone("huge", "arch = { kind = \"mlp\", hidden = [1000000, 1000000, 1000000] }\ntrain = { epochs = 1, batch_size = 32 }");
    for expected in ["zoo `huge`: training 2 model(s) of", "parameters at once needs at least", "TiB of memory and", "is available", "declare a smaller network"] {
        assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
    }
}

/// A zoo whose training diverges (here a learning rate of 1e38) used to be stored with NaN
/// weights, and every method reading it failed later with the plugin blamed. Now the zoo fails
/// alone, naming its models and the learning rate; the run's other zoo and methods finish.
#[test]
fn a_zoo_whose_training_diverges_fails_alone_with_its_models_named() {
    let text = zoo_fails_alone(
        "wild",
        "arch = { kind = \"sequential\", layers = [{ type = \"linear\", out = 8 }, { type = \"tanh\" }, { type = \"linear\", out = 4 }] }\ntrain = { epochs = 1, batch_size = 32, lr = 1e38 }",
    );
    for expected in ["zoo `wild`", "2 of 2 model(s) diverged", "model 0 from epoch 1, model 1 from epoch 1", "lower the learning rate (now 1e38)"] {
        assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
    }
    assert!(!text.contains("non-finite values"), "no plugin is blamed:\n{text}");
}

/// Runs the blob zoo and a zoo `name` of two models on the same data (`recipe`: its `arch`
/// and `train` lines), a copy method on each; checks that `name`'s zoo failed alone — exit 1,
/// its failure recorded, the blob zoo's copy scored — and returns what the run printed.
fn zoo_fails_alone(name: &str, recipe: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "{}[experiment]\nname = \"{name}\"\n\n[zoo.{name}]\ndata = \"blobs\"\n{recipe}\nmodels = 2\n\n\
         [[method]]\nname = \"copy\"\nplugin = \"copy\"\nzoo = \"mlp\"\nsamples = 2\n\n[[method]]\nname = \"{name} copy\"\nplugin = \"copy\"\nzoo = \"{name}\"\nsamples = 2\n",
        weightlab_e2e::with_fixtures(weightlab_e2e::BLOBS_ZOO)
    );
    std::fs::write(dir.path().join("exp.toml"), manifest).unwrap();
    let out = weightlab(dir.path(), &["run", "exp.toml", "-o", "out"]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "a failed stage, not a killed engine:\n{text}");
    let run = dir.path().join("out");
    let failed = strings(&run, "failures", "stage");
    assert!(failed.iter().any(|s| s.starts_with(&format!("zoo {name} part"))), "{failed:?}");
    assert!(!failed.iter().any(|s| s.contains("\"copy\"")), "the other zoo's method failed: {failed:?}");
    let accuracy = column(&run, "samples", Some("copy"), "accuracy");
    assert!(!accuracy.is_empty() && accuracy.iter().all(Option::is_some), "the copy of the blob zoo was scored: {accuracy:?}");
    text
}

/// Without a validation subset (`validation = 0`), a checkpoint's validation loss is unknown
/// (NaN, `null` in JSON): the zoo's index and the plugins' requests still read back.
#[test]
fn a_zoo_without_validation_examples_runs_its_methods() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "{}[experiment]\nname = \"novalidation\"\n\n[data.blobs]\nvalidation = 0.0\n\n[[method]]\nname = \"noise\"\nplugin = \"noise\"\nzoo = \"mlp\"\nsamples = 2\n",
        weightlab_e2e::with_fixtures(weightlab_e2e::BLOBS_ZOO)
    );
    std::fs::write(dir.path().join("exp.toml"), manifest).unwrap();
    let out = weightlab(dir.path(), &["run", "exp.toml", "-o", "out"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let losses = column(&dir.path().join("out"), "zoo", None, "validation_loss");
    assert!(!losses.is_empty() && losses.iter().all(|l| l.is_none_or(f64::is_nan)), "no validation examples, no validation loss: {losses:?}");
    assert_eq!(column(&dir.path().join("out"), "samples", Some("noise"), "accuracy").len(), 2);
}

#[test]
fn the_example_manifest_is_valid() {
    weightlab_ok(&root(), &["validate", "experiments/your-own.toml"]);
}
