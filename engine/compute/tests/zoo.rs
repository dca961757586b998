//! The compute core on real (small) data: flat ↔ named round trips, bit-identical training for
//! a seed, zoos far above chance on Fashion-MNIST, agreement with PyTorch on the same weights,
//! safetensors written by torch importing back identically, and neural fields that fit.

use std::path::Path;
use std::process::Command;

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
    for arch in [Arch::new(&weightlab_manifest::ArchSpec::CnnS {}, &data), Arch::Mlp { sizes: vec![784, 10, 10], activation: Default::default() }] {
        let layout = arch.layout();
        let flat: Vec<f32> = (0..layout.len()).map(|i| (i as f32 * 0.618).sin()).collect();
        let bytes = store::to_safetensors(&layout, &flat, None);
        assert_eq!(store::from_safetensors(&layout, &bytes).unwrap(), flat);
        let named = layout.unflatten(&flat);
        let back = layout.flatten(|n| named.iter().find(|(m, _, _)| m == n).map(|(_, s, v)| (s.as_slice(), v.as_slice()))).unwrap();
        assert_eq!(back, flat);
    }
    let cnn = Arch::new(&weightlab_manifest::ArchSpec::CnnS {}, &data);
    assert_eq!(cnn.layout().len(), 2464, "CNN-s has the Hyper-Representations parameter count");
}

#[test]
fn same_seed_gives_bit_identical_checkpoints() {
    let data = dataset("source = \"blobs\"\nsamples = 512");
    let spec = zoo_spec("data = \"d\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 6\ntrain = { lr = 0.01, epochs = 3, batch_size = 32 }\nkeep = { last_epochs = 2 }\nsplit = { train = 4, heldout = 2 }");
    let arch = Arch::new(&spec.arch, &data);
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
        let arch = Arch::new(&spec.arch, &data);
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
    let imported = store::import(arch, &mlp_dir, 3).unwrap();
    assert_eq!(imported.checkpoints.len(), 4);
    assert_eq!(imported.side(Side::Train).len(), 3);
    assert_eq!(imported.weights_of(2), exported["model-mlp-2.safetensors"].1.as_slice());
}

#[test]
fn sdf_zoo_fits_its_shape() {
    let data = dataset("source = \"sdf-shapes\"\nsamples = 4096\nseed = 3");
    let spec = zoo_spec("data = \"d\"\narch = { kind = \"sdf-mlp\", hidden = [32, 32] }\nmodels = 4\ntrain = { lr = 0.003, epochs = 30, batch_size = 128 }");
    let arch = Arch::new(&spec.arch, &data);
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
    let spec = zoo_spec("data = \"d\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 2\ntrain = { lr = 0.01, epochs = 2, batch_size = 32 }\ncontinue = { params = [\"layers.1\"], steps = 30, keep_every = 3 }");
    let arch = Arch::new(&spec.arch, &data);
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
    let arch = Arch::new(&spec.arch, &data);
    let zoo = train::train_zoo(&arch, &data, &spec, None).unwrap();
    for c in &zoo.checkpoints {
        assert!(c.test_accuracy.unwrap() > 0.7, "4 classes, chance 0.25: {:?}", c.test_accuracy);
    }
}
