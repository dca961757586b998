//! The compute core on real (small) data: flat ↔ named round trips, bit-identical training for
//! a seed, zoos far above chance on Fashion-MNIST, agreement with PyTorch on the same weights,
//! safetensors written by torch importing back identically, and neural fields that fit.

mod common;

use std::path::Path;
use std::process::Command;

use common::engines_differ;
use weightlab_compute::zoo::train::EngineChoice;
use weightlab_compute::zoo::{Side, store, train};
use weightlab_compute::{Arch, Dataset, data, eval};
use weightlab_manifest::{DataSpec, ZooSpec};

fn dataset(spec: &str) -> Dataset {
    let spec: DataSpec = toml::from_str(spec).expect("data spec");
    data::load(&spec, Path::new(".")).expect("dataset loads")
}

fn zoo_spec(spec: &str) -> ZooSpec {
    toml::from_str(spec).expect("zoo spec")
}

#[test]
fn flat_and_named_round_trip_exactly() {
    let data = dataset("source = \"fashion-mnist\"\ntrain_subset = 10\ntest_subset = 10");
    for arch in [Arch::new(&weightlab_manifest::ArchSpec::CnnS {}, &data).expect("a preset always fits"), Arch::Mlp { sizes: vec![784, 10, 10], activation: Default::default() }] {
        let layout = arch.layout();
        let flat: Vec<f32> = (0..layout.len()).map(|i| (i as f32 * 0.618).sin()).collect();
        let bytes = store::to_safetensors(&layout, &flat, None);
        assert_eq!(store::from_safetensors(&layout, &bytes).unwrap(), flat);
        let named = layout.unflatten(&flat);
        let back = layout.flatten(|n| named.iter().find(|(m, _, _)| m == n).map(|(_, s, v)| (s.as_slice(), v.as_slice()))).unwrap();
        assert_eq!(back, flat);
    }
    let cnn = Arch::new(&weightlab_manifest::ArchSpec::CnnS {}, &data).expect("a preset always fits");
    assert_eq!(cnn.layout().len(), 2464, "CNN-s has the Hyper-Representations parameter count");
}

#[test]
fn same_seed_gives_bit_identical_checkpoints() {
    let data = dataset("source = \"blobs\"\nsamples = 512");
    let spec = zoo_spec(
        "data = \"d\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 6\ntrain = { lr = 0.01, epochs = 3, batch_size = 32 }\nkeep = { last_epochs = 2 }\nsplit = { train = 4, heldout = 2 }",
    );
    let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
    let a = train::train_zoo(&arch, &data, &spec, None).unwrap();
    let b = train::train_zoo(&arch, &data, &spec, None).unwrap();
    assert_eq!(a.checkpoints.len(), 12, "2 epochs kept × 6 models");
    assert!(a.weights.iter().zip(&b.weights).all(|(x, y)| x.to_bits() == y.to_bits()), "same seed, same bits");
    assert_eq!(a.side(Side::Heldout).len(), 4);
    let mut other = spec.clone();
    other.seed = 1;
    let c = train::train_zoo(&arch, &data, &other, None).unwrap();
    assert_ne!(a.weights, c.weights, "another zoo seed gives other models");
    // Models of one zoo differ from each other (own init and data order).
    assert_ne!(a.weights_of(0), a.weights_of(2));
    assert!(a.checkpoints.iter().all(|c| c.test_accuracy.unwrap() > 0.8), "blobs are easy: {:?}", a.checkpoints.iter().map(|c| c.test_accuracy).collect::<Vec<_>>());
}

#[test]
fn a_validation_subset_is_split_off_the_training_data_and_scored() {
    let full = dataset("source = \"blobs\"\nsamples = 400\nvalidation = 0.0");
    let data = dataset("source = \"blobs\"\nsamples = 400\nvalidation = 0.25");
    assert_eq!((data.train.len(), data.validation.len(), data.test.len()), (300, 100, 100));
    // The validation examples are the tail of the training examples: models never train on them.
    assert_eq!(&full.train.y[300..], data.validation.y.as_slice());
    assert_eq!(&full.train.x[..600], data.train.x.as_slice());
    assert_eq!(data.test, full.test, "the test split is untouched");
    assert_ne!(data.hash, full.hash);
    let other_test = dataset("source = \"blobs\"\nsamples = 400\nvalidation = 0.25\ntest_subset = 50");
    assert_eq!(other_test.hash, data.hash, "the identity methods see ignores the test split");
    let spec = zoo_spec("data = \"d\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 4\ntrain = { lr = 0.01, epochs = 3, batch_size = 32 }");
    let zoo = train::train_zoo(&Arch::new(&spec.arch, &data).expect("a preset always fits"), &data, &spec, None).unwrap();
    for c in &zoo.checkpoints {
        let (v, t) = (c.validation_accuracy.unwrap(), c.test_accuracy.unwrap());
        assert!(v > 0.8 && c.validation_loss.is_finite(), "validation figures are computed: {v} {}", c.validation_loss);
        assert!((v - t).abs() < 0.2, "validation tracks test on the same distribution: {v} vs {t}");
    }
    // Many-shape fields: each shape keeps its own contiguous validation block.
    let sdf = dataset("source = \"sdf-shapes\"\nsamples = 100\nshapes = 4\nvalidation = 0.2");
    assert_eq!((sdf.train.len(), sdf.validation.len()), (320, 80));
    assert_eq!(sdf.group_range(sdf.validation.len(), 3), 60..80);
}

fn python() -> String {
    std::env::var("WEIGHTLAB_TORCH_PYTHON").expect("WEIGHTLAB_TORCH_PYTHON is set by the set-up (.cargo/config.toml)")
}

#[test]
fn fashion_mnist_zoos_learn_and_agree_with_pytorch() {
    let data = dataset("source = \"fashion-mnist\"\ntrain_subset = 3000\ntest_subset = 500");
    let dir = tempfile::tempdir().unwrap();
    let x: Vec<u8> = data.test.x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let y: Vec<u8> = data.test.y.iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        ("x".to_string(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![data.test.len(), 784], &x).unwrap()),
        ("y".to_string(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![data.test.len()], &y).unwrap()),
    ];
    std::fs::write(dir.path().join("inputs.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();

    let mut ours = std::collections::BTreeMap::new();
    let mut exported = std::collections::BTreeMap::new();
    for (kind, spec) in [
        ("cnn", "data = \"d\"\narch = { kind = \"cnn-s\" }\nmodels = 4\ntrain = { lr = 0.005, epochs = 3, batch_size = 32 }"),
        ("mlp", "data = \"d\"\narch = { kind = \"mlp\", hidden = [32] }\nmodels = 4\ntrain = { lr = 0.003, epochs = 2, batch_size = 32 }"),
    ] {
        let spec = zoo_spec(spec);
        let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
        let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
        let scores = eval::evaluate(&arch, &data, &data.test, &zoo.weights);
        for (i, s) in scores.iter().enumerate() {
            let acc = s.accuracy.unwrap();
            assert!(acc > 0.55, "{kind} model {i}: accuracy {acc} is not far above chance (0.1)");
            let name = format!("model-{kind}-{i}.safetensors");
            std::fs::write(dir.path().join(&name), store::to_safetensors(&arch.layout(), zoo.weights_of(i), None)).unwrap();
            ours.insert(name.clone(), acc as f64);
            exported.insert(name, (arch.clone(), zoo.weights_of(i).to_vec()));
        }
    }
    let out = Command::new(python()).arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/torch_models.py")).arg(dir.path()).output().expect("python runs");
    assert!(out.status.success(), "torch_models.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: std::collections::BTreeMap<String, f64> = serde_json::from_slice(&out.stdout).expect("accuracies as JSON");
    for (name, acc) in &ours {
        let t = theirs[name];
        assert!((acc - t).abs() <= 1.0 / 500.0 + 1e-9, "{name}: weightlab {acc} vs PyTorch {t} on the same weights");
    }
    // State dicts written by torch import back to exactly the exported weights.
    for (name, (arch, flat)) in &exported {
        let bytes = std::fs::read(dir.path().join(name.replace("model-", "torch-"))).unwrap();
        assert_eq!(&store::from_safetensors(&arch.layout(), &bytes).unwrap(), flat, "{name}");
    }
    // And a folder of them imports as a zoo.
    let mlp_dir = dir.path().join("mlp-import");
    std::fs::create_dir_all(&mlp_dir).unwrap();
    for i in 0..4 {
        std::fs::copy(dir.path().join(format!("torch-mlp-{i}.safetensors")), mlp_dir.join(format!("m{i}.safetensors"))).unwrap();
    }
    let (arch, _) = &exported["model-mlp-0.safetensors"];
    let imported = store::import(arch, &mlp_dir, 3, None).unwrap();
    assert_eq!(imported.checkpoints.len(), 4);
    assert_eq!(imported.side(Side::Train).len(), 3);
    assert_eq!(imported.weights_of(2), exported["model-mlp-2.safetensors"].1.as_slice());
}

#[test]
fn sdf_zoo_fits_its_shape() {
    let data = dataset("source = \"sdf-shapes\"\nsamples = 4096\nseed = 3");
    let spec = zoo_spec("data = \"d\"\narch = { kind = \"sdf-mlp\", hidden = [32, 32] }\nmodels = 4\ntrain = { lr = 0.003, epochs = 30, batch_size = 128 }");
    let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
    let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
    let mean = data.test.y.iter().sum::<f32>() / data.test.len() as f32;
    let constant = data.test.y.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / data.test.len() as f32;
    for c in &zoo.checkpoints {
        assert!(c.test_accuracy.is_none());
        assert!(c.test_loss < 0.1 * constant, "SDF MSE {} vs constant predictor {constant}", c.test_loss);
    }
}

#[test]
fn continued_training_keeps_snapshots_of_only_the_chosen_parameters() {
    let data = dataset("source = \"blobs\"\nsamples = 512");
    let spec = zoo_spec(
        "data = \"d\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 2\ntrain = { lr = 0.01, epochs = 2, batch_size = 32 }\ncontinue = { params = [\"layers.1\"], steps = 30, keep_every = 3 }",
    );
    let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
    let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
    assert_eq!(zoo.checkpoints.len(), 20, "10 snapshots × 2 models");
    assert!(zoo.checkpoints.iter().all(|c| c.step % 3 == 0 && c.step > 0 && c.epoch == 2));
    let layout = arch.layout();
    let frozen = layout.get("layers.0.weight").unwrap().range();
    let trained = layout.get("layers.1.weight").unwrap().range();
    let (a, b) = (zoo.weights_of(0), zoo.weights_of(9));
    assert_eq!(zoo.checkpoints[9].model, 0);
    assert_eq!(a[frozen.clone()], b[frozen], "frozen parameters do not move");
    assert_ne!(a[trained.clone()], b[trained], "chosen parameters keep training");
    let mut bad = spec.clone();
    bad.continuation.as_mut().unwrap().params = vec!["head".into()];
    let err = train::train_zoo(&arch, &data, &bad, None).unwrap_err();
    assert!(err.contains("`head` names no parameter") && err.contains("layers.1.bias"), "{err}");
}

#[test]
fn signal_task_is_learnable() {
    let data = dataset("source = \"signals\"\nclasses = 4\nsamples = 2048\nnoise = 0.3");
    assert_eq!(data.input_shape, vec![32]);
    let spec = zoo_spec("data = \"d\"\narch = { kind = \"mlp\", hidden = [32] }\nmodels = 4\ntrain = { lr = 0.003, epochs = 10, batch_size = 64 }");
    let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
    let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
    for c in &zoo.checkpoints {
        assert!(c.test_accuracy.unwrap() > 0.7, "4 classes, chance 0.25: {:?}", c.test_accuracy);
    }
}

#[test]
fn many_shape_zoo_fits_one_shape_per_model() {
    let data = dataset("source = \"sdf-shapes\"\nsamples = 2048\nshapes = 4\nseed = 5");
    assert_eq!(data.groups, 4);
    assert_eq!(data.train.len() + data.validation.len(), 4 * 2048, "a validation block is split off each shape");
    let spec = zoo_spec("data = \"d\"\narch = { kind = \"sdf-mlp\", hidden = [32, 32] }\nmodels = 8\ntrain = { lr = 0.003, epochs = 30, batch_size = 128 }");
    let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
    let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
    // The shapes differ, so a model fitted to one is no good on the others.
    let test_len = data.test.len();
    let constant = |g: usize| {
        let ys = &data.test.y[data.group_range(test_len, g)];
        let mean = ys.iter().sum::<f32>() / ys.len() as f32;
        ys.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / ys.len() as f32
    };
    for c in &zoo.checkpoints {
        let shape = c.task.expect("many-shape checkpoints record their shape");
        assert_eq!(shape, c.model % 4);
        assert!(c.test_loss < 0.1 * constant(shape), "model {} on shape {shape}: MSE {} vs constant {}", c.model, c.test_loss, constant(shape));
    }
    // Scored without being told, every model is recognised as a fit of its own shape.
    let blind = eval::evaluate(&arch, &data, &data.test, &zoo.weights);
    for (c, s) in zoo.checkpoints.iter().zip(&blind) {
        assert_eq!(s.task, c.task, "model {} fits its own shape best", c.model);
    }
    assert_ne!(data.test.y[data.group_range(test_len, 0)], data.test.y[data.group_range(test_len, 1)]);
}

#[test]
fn model_tree_records_parents_and_fine_tuning_classes() {
    let data = dataset("source = \"blobs\"\nclasses = 6\nsamples = 1200\nnoise = 0.5");
    let spec = zoo_spec(
        "data = \"d\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 12\ntrain = { lr = 0.01, epochs = 3, batch_size = 32 }\ntree = { roots = 3, classes = 2, epochs = 2 }\nsplit = { train = 9, heldout = 3 }",
    );
    let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
    let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
    let roots: Vec<_> = zoo.checkpoints.iter().filter(|c| c.side == Side::Root).collect();
    let children: Vec<_> = zoo.checkpoints.iter().filter(|c| c.side != Side::Root).collect();
    assert_eq!((roots.len(), children.len()), (3, 12));
    assert_eq!(zoo.side(Side::Train).len(), 9);
    assert_eq!(zoo.side(Side::Heldout).len(), 3);
    assert!(roots.iter().all(|r| r.parent.is_none() && r.classes.is_none() && r.model >= 12));
    let mut subsets = std::collections::BTreeSet::new();
    for c in &children {
        assert_eq!(c.parent, Some(12 + c.model % 3), "child {} hangs under root {}", c.model, 12 + c.model % 3);
        let classes = c.classes.clone().expect("children record their classes");
        assert_eq!(classes.len(), 2);
        assert!(classes.iter().all(|&k| k < 6));
        subsets.insert(classes);
        assert_eq!(c.epoch, 5, "3 epochs of pre-training + 2 of fine-tuning");
    }
    assert!(subsets.len() >= 4, "children draw different class subsets: {subsets:?}");
    // Fine-tuning specialises: each child is better on its own classes than on the rest.
    let scores = eval::evaluate(&arch, &data, &data.test, &zoo.weights);
    for (c, s) in zoo.checkpoints.iter().zip(&scores) {
        let Some(classes) = &c.classes else { continue };
        let others: Vec<usize> = (0..6).filter(|k| !classes.contains(k)).collect();
        let own = eval::subset_accuracy(&s.predictions, &data.test.y, classes).unwrap();
        let rest = eval::subset_accuracy(&s.predictions, &data.test.y, &others).unwrap();
        assert_eq!(c.test_accuracy, Some(own), "a child's accuracy counts its own classes");
        assert!(own > 0.9 && own > rest, "child {}: own classes {own}, others {rest}", c.model);
    }
    // Children start from their parent: closer to it than to another root.
    let p = arch.layout().len();
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>();
    let weights_of = |model: usize| {
        let i = zoo.checkpoints.iter().position(|c| c.model == model).unwrap();
        &zoo.weights[i * p..(i + 1) * p]
    };
    for c in &children {
        let parent = c.parent.unwrap();
        for other in 12..15 {
            if other != parent {
                assert!(dist(weights_of(c.model), weights_of(parent)) < dist(weights_of(c.model), weights_of(other)));
            }
        }
    }
}

#[test]
fn hidden_unit_permutations_keep_the_function_and_move_the_weights() {
    let data = dataset("source = \"fashion-mnist\"\ntrain_subset = 2000\ntest_subset = 500");
    for arch_spec in ["arch = { kind = \"cnn-s\" }", "arch = { kind = \"mlp\", hidden = [16, 12] }"] {
        let spec = zoo_spec(&format!("data = \"d\"\n{arch_spec}\nmodels = 2\ntrain = {{ lr = 0.003, epochs = 1, batch_size = 64 }}"));
        let arch = Arch::new(&spec.arch, &data).expect("a preset always fits");
        let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
        let original = zoo.weights_of(0);
        let permuted = arch.permute_hidden(original, 7);
        let distance = original.iter().zip(&permuted).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
        let norm = original.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!(distance > 0.3 * norm, "{arch_spec}: permuting moved the weights only {distance} (norm {norm})");
        let mut sorted_a = original.to_vec();
        let mut sorted_b = permuted.clone();
        sorted_a.sort_by(f32::total_cmp);
        sorted_b.sort_by(f32::total_cmp);
        assert_eq!(sorted_a, sorted_b, "a permutation only moves values");
        let both = [original.to_vec(), permuted].concat();
        let scores = eval::evaluate(&arch, &data, &data.test, &both);
        assert_eq!(scores[0].predictions, scores[1].predictions, "{arch_spec}: same function");
        assert!((scores[0].loss - scores[1].loss).abs() < 1e-4);
    }
}

#[test]
fn circles_need_a_hidden_layer_and_an_mlp_learns_them() {
    // A dataset source added through its descriptor: shape and classes come from it.
    let data = dataset("source = \"circles\"\nsamples = 1024\nnoise = 0.1");
    assert_eq!((data.input_shape.clone(), data.outputs()), (vec![2], 2));
    let train_with = |hidden: &str| {
        let spec = zoo_spec(&format!("data = \"d\"\narch = {{ kind = \"mlp\", hidden = {hidden}, activation = \"tanh\" }}\nmodels = 4\ntrain = {{ lr = 0.02, epochs = 30, batch_size = 32 }}"));
        let zoo = train::train_zoo(&Arch::new(&spec.arch, &data).expect("a preset always fits"), &data, &spec, None).unwrap();
        zoo.checkpoints.iter().map(|c| c.test_accuracy.unwrap()).sum::<f32>() / zoo.checkpoints.len() as f32
    };
    let (linear, hidden) = (train_with("[]"), train_with("[16]"));
    assert!(linear < 0.7, "concentric circles are not linearly separable: {linear}");
    assert!(hidden > 0.95, "an MLP with a hidden layer separates them: {hidden}");
}

#[test]
fn the_hand_written_mlp_backward_follows_the_autodiff_tape() {
    use weightlab_manifest::{Activation, ArchSpec, Optimizer, TrainSpec};
    let blobs = dataset("source = \"blobs\"\nclasses = 4\nsamples = 512");
    let sdf = dataset("source = \"sdf-shapes\"\nsamples = 1024\nseed = 3");
    let adam = TrainSpec { lr: 0.01, batch_size: 32, weight_decay: 1e-3, ..TrainSpec::default() };
    let sgd = TrainSpec { optimizer: Optimizer::Sgd, lr: 0.05, batch_size: 32, weight_decay: 1e-3, ..TrainSpec::default() };
    // The CPU's per-model engine, and the K-batched one GPUs use (run here on the CPU).
    for engine in [EngineChoice::Fastest, EngineChoice::Batched] {
        for activation in [Activation::Relu, Activation::Tanh, Activation::Silu, Activation::Sine] {
            let arch = Arch::new(&ArchSpec::Mlp { hidden: vec![16, 8], activation }, &blobs).expect("a preset always fits");
            // sin(30 x) turns rounding differences into different trajectories within a few
            // steps (the engines sum products in different orders; SGD at this rate is chaotic
            // with it: 1e-5 apart after one step, 4e-3 after two, 0.4 after three): compare it
            // over one.
            let steps = if activation == Activation::Sine { 1 } else { 25 };
            for (name, recipe) in [("adam", &adam), ("sgd", &sgd)] {
                let d = engines_differ(engine, &blobs, &arch, recipe, None, steps);
                assert!(d < 1e-4, "{engine:?} {activation:?} {name}: the engines part by {d} (relative)");
            }
            // Continued training of the last layer only.
            let d = engines_differ(engine, &blobs, &arch, &adam, Some("layers.2"), steps.min(10));
            assert!(d < 1e-4, "{engine:?} {activation:?} continued: the engines part by {d}");
        }
        let arch = Arch::new(&ArchSpec::SdfMlp { hidden: vec![32, 32] }, &sdf).expect("a preset always fits");
        let d = engines_differ(engine, &sdf, &arch, &adam, None, 25);
        assert!(d < 1e-4, "{engine:?} regression (MSE): the engines part by {d}");
    }
}

/// The MLP engine runs an epoch model by model, all its steps at once: the same bits as
/// step by step.
#[test]
fn an_epoch_at_once_equals_its_steps_one_by_one() {
    use weightlab_manifest::{ArchSpec, TrainSpec};
    let data = dataset("source = \"blobs\"\nclasses = 4\nsamples = 512");
    let arch = Arch::new(&ArchSpec::Mlp { hidden: vec![16], activation: Default::default() }, &data).expect("a preset always fits");
    let recipe = TrainSpec { lr: 0.01, batch_size: 32, weight_decay: 1e-3, ..TrainSpec::default() };
    let seeds = [1u64, 2, 3, 4, 5];
    let pools = vec![(0..data.train.len() as i64).collect::<Vec<_>>(); seeds.len()];
    let mut whole = train::Trainer::with_pools(&arch, &data, &recipe, &seeds, pools.clone());
    let mut stepwise = train::Trainer::with_pools(&arch, &data, &recipe, &seeds, pools);
    whole.epoch();
    let steps = data.train.len() / recipe.batch_size;
    for _ in 0..steps {
        stepwise.step();
    }
    let (a, b) = (whole.weights(), stepwise.weights());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "an epoch at once and step by step differ");
    assert_ne!(a, train::Trainer::with_pools(&arch, &data, &recipe, &seeds, vec![(0..data.train.len() as i64).collect(); 5]).weights(), "the epoch trained");
}

#[test]
fn the_hand_written_cnn_follows_the_autodiff_tape() {
    use weightlab_manifest::{ArchSpec, Optimizer, TrainSpec};
    let data = dataset("source = \"fashion-mnist\"\ntrain_subset = 512\ntest_subset = 64");
    let arch = Arch::new(&ArchSpec::CnnS {}, &data).expect("a preset always fits");
    let adam = TrainSpec { lr: 0.01, batch_size: 16, weight_decay: 1e-3, ..TrainSpec::default() };
    let sgd = TrainSpec { optimizer: Optimizer::Sgd, lr: 0.05, batch_size: 16, weight_decay: 1e-3, ..TrainSpec::default() };
    // SGD shows the gradients agree over many steps. Adam's first steps move every weight by
    // about lr whatever its gradient's size, so weights whose gradient is rounding noise part
    // by ~lr within a few dozen steps (5e-3 relative after 25 here, 1e-5 after 5): compare it
    // over 5.
    for (name, recipe, steps) in [("sgd", &sgd, 25), ("adam", &adam, 5)] {
        let d = engines_differ(EngineChoice::Fastest, &data, &arch, recipe, None, steps);
        assert!(d < 1e-4, "CNN-s {name}: the engines part by {d} (relative)");
    }
    // Continued training of the convolutions only, then of the classifier only.
    for prefix in ["conv", "fc2"] {
        let d = engines_differ(EngineChoice::Fastest, &data, &arch, &adam, Some(prefix), 3);
        assert!(d < 1e-4, "CNN-s continued ({prefix}): the engines part by {d}");
    }
}
