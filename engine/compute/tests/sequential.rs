//! Declared (`sequential`) networks: shapes inferred with located errors, the permutation
//! symmetry derived from the declaration (outputs unchanged, aligned distance 0, for every
//! layer type), and training on the tape with BatchNorm's running statistics.

mod common;

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use common::engines_differ;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weightlab_compute::arch::Network;
use weightlab_compute::arch::align::Aligner;
use weightlab_compute::metrics::distance::{nearest, nearest_aligned};
use weightlab_compute::zoo::train;
use weightlab_compute::{Arch, data, device, eval};
use weightlab_manifest::{ArchSpec, DataSpec, LayerSpec, ZooSpec};

fn layers(toml_layers: &str) -> Vec<LayerSpec> {
    #[derive(serde::Deserialize)]
    struct Wrap {
        layers: Vec<LayerSpec>,
    }
    let w: Wrap = toml::from_str(&format!("layers = {toml_layers}")).expect("layers parse");
    w.layers
}

/// Random weights, running statistics included (a positive variance), so every tensor matters.
fn random_model(arch: &Arch, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layout = arch.layout();
    let mut flat = arch.init(&mut rng);
    for p in &layout.params {
        for v in &mut flat[p.range()] {
            *v = if p.name.ends_with("running_var") {
                rng.random_range(0.5..2.0)
            } else if p.buffer || p.shape.len() == 1 {
                rng.random_range(-0.5..0.5)
            } else {
                *v * 2.0
            };
        }
    }
    flat
}

fn outputs(arch: &Arch, models: &[f32], x: &[f32], features: usize) -> Vec<f32> {
    let p = arch.layout().len();
    let k = models.len() / p;
    let b = x.len() / features;
    let device = device::current();
    let params: Tensor<2> = Tensor::from_data(TensorData::new(models.to_vec(), [k, p]), &device);
    let xs: Vec<f32> = (0..k).flat_map(|_| x.iter().copied()).collect();
    let x: Tensor<3> = Tensor::from_data(TensorData::new(xs, [k, b, features]), &device);
    arch.forward(&params, x).into_data().try_into_vec::<f32>().unwrap()
}

/// One network per family of layers: flat (norms, every activation, dropout, residuals with and
/// without a shortcut) and images (conv, BatchNorm2d, pooling, a residual block with a 1×1
/// conv shortcut, global pooling).
fn networks() -> Vec<(&'static str, Vec<usize>, usize, Vec<LayerSpec>)> {
    vec![
        (
            "flat",
            vec![6],
            3,
            layers(
                r#"[
                { type = "linear", out = 8 }, { type = "batchnorm1d" }, { type = "relu" },
                { type = "residual", layers = [ { type = "linear", out = 5 }, { type = "gelu" }, { type = "linear", out = 8 } ] },
                { type = "layernorm" }, { type = "tanh" }, { type = "dropout", p = 0.3 },
                { type = "residual", layers = [ { type = "linear", out = 7 }, { type = "silu" } ], shortcut = [ { type = "linear", out = 7, bias = false } ] },
                { type = "leaky_relu", negative_slope = 0.1 }, { type = "linear", out = 4 }, { type = "sigmoid" }, { type = "sine", w0 = 2.0 },
                { type = "linear", out = 3 },
            ]"#,
            ),
        ),
        (
            "image",
            vec![2, 10, 10],
            4,
            layers(
                r#"[
                { type = "conv2d", out = 4, kernel = 3, padding = 1 }, { type = "batchnorm2d" }, { type = "relu" },
                { type = "maxpool2d", kernel = 2 },
                { type = "residual", layers = [ { type = "conv2d", out = 6, kernel = 3, padding = 1, bias = false }, { type = "batchnorm2d" }, { type = "relu" },
                                                { type = "conv2d", out = 6, kernel = 3, padding = 1 } ],
                                     shortcut = [ { type = "conv2d", out = 6, kernel = 1 }, { type = "batchnorm2d" } ] },
                { type = "relu" }, { type = "avgpool2d", kernel = 2, stride = 1 },
                { type = "conv2d", out = 5, kernel = 2, stride = 2 }, { type = "adaptive_avgpool2d" },
                { type = "flatten" }, { type = "linear", out = 4 },
            ]"#,
            ),
        ),
        (
            "lenet5",
            vec![1, 28, 28],
            10,
            layers(
                r#"[
                { type = "conv2d", out = 6, kernel = 5, padding = 2 }, { type = "batchnorm2d" }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
                { type = "conv2d", out = 16, kernel = 5 }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
                { type = "flatten" }, { type = "linear", out = 120 }, { type = "relu" }, { type = "linear", out = 84 }, { type = "relu" }, { type = "linear", out = 10 },
            ]"#,
            ),
        ),
    ]
}

#[test]
fn names_and_shapes_are_pytorchs() {
    let (_, input, outputs, specs) = networks().remove(2);
    let net = Network::new(&specs, &input, outputs).unwrap();
    let names: Vec<(String, Vec<usize>)> = net.layout.params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
    let expected: Vec<(String, Vec<usize>)> = [
        ("0.weight", vec![6, 1, 5, 5]),
        ("0.bias", vec![6]),
        ("1.weight", vec![6]),
        ("1.bias", vec![6]),
        ("1.running_mean", vec![6]),
        ("1.running_var", vec![6]),
        ("4.weight", vec![16, 6, 5, 5]),
        ("4.bias", vec![16]),
        ("8.weight", vec![120, 400]),
        ("8.bias", vec![120]),
        ("10.weight", vec![84, 120]),
        ("10.bias", vec![84]),
        ("12.weight", vec![10, 84]),
        ("12.bias", vec![10]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(names, expected);
    let (_, input, outputs, specs) = networks().remove(1);
    let net = Network::new(&specs, &input, outputs).unwrap();
    let names: Vec<&str> = net.layout.params.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"4.layers.0.weight") && names.contains(&"4.shortcut.1.running_var") && !names.contains(&"4.layers.0.bias"), "{names:?}");
}

#[test]
fn a_layer_that_does_not_fit_is_named() {
    let err = |specs: &str, input: &[usize], outputs: usize| Network::new(&layers(specs), input, outputs).unwrap_err();
    let e = err(r#"[{ type = "conv2d", out = 6, kernel = 5 }, { type = "linear", out = 10 }]"#, &[1, 28, 28], 10);
    assert_eq!(e.message, "layer 1 `linear`: it needs flat inputs, but layer 0 `conv2d` gives (6, 24, 24); add `{ type = \"flatten\" }` before it");
    assert_eq!(e.at, weightlab_manifest::path!["layers", 1usize].to_vec());
    let e = err(r#"[{ type = "conv2d", out = 6, kernel = 5 }]"#, &[784], 10);
    assert!(e.message.contains("needs (channels, height, width) inputs, but the data gives 784 values"), "{}", e.message);
    let e = err(r#"[{ type = "flatten" }, { type = "linear", out = 12 }]"#, &[1, 28, 28], 10);
    assert_eq!(e.message, "the network ends with 12 values per example (layer 1 `linear`), but the data needs 10 outputs, one per class");
    let e = err(r#"[{ type = "maxpool2d", kernel = 8 }, { type = "conv2d", out = 2, kernel = 5 }, { type = "flatten" }, { type = "linear", out = 2 }]"#, &[1, 28, 28], 2);
    assert!(e.message.starts_with("layer 1 `conv2d`: a 5×5 kernel does not fit the (1, 3, 3)"), "{}", e.message);
    let e = err(r#"[{ type = "flatten" }, { type = "residual", layers = [{ type = "linear", out = 3 }] }, { type = "linear", out = 2 }]"#, &[4], 2);
    assert!(e.message.contains("layer 1 `residual`: its `layers` give 3 values but its input (the identity shortcut) gives 4 values"), "{}", e.message);
    let e = err(r#"[{ type = "residual", layers = [{ type = "batchnorm2d" }] }, { type = "linear", out = 2 }]"#, &[4], 2);
    assert_eq!(e.at, weightlab_manifest::path!["layers", 0usize, "layers", 0usize].to_vec());
    assert!(e.message.starts_with("layer 0.layers.0 `batchnorm2d`"), "{}", e.message);
}

#[test]
fn permuted_networks_compute_the_same_function_and_align_to_distance_zero() {
    for (family, input, outputs_n, specs) in networks() {
        let arch = Arch::Sequential(Arc::new(Network::new(&specs, &input, outputs_n).unwrap()));
        let features: usize = input.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x: Vec<f32> = (0..5 * features).map(|_| rng.random_range(-1.0..1.0)).collect();
        let p = arch.layout().len();
        for seed in 0..3 {
            let model = random_model(&arch, seed);
            let permuted = arch.permute_hidden(&model, 100 + seed);
            let (a, b) = (outputs(&arch, &model, &x, features), outputs(&arch, &permuted, &x, features));
            let worst = a.iter().zip(&b).map(|(u, v)| (u - v).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "{family}: a permuted copy computes other outputs (off by {worst})");
            let raw = nearest(&permuted, &model, p, false)[0].l2;
            let aligned = nearest_aligned(&permuted, &model, p, false, &Aligner::new(&arch))[0].l2;
            assert!(raw > 1.0, "{family}: the permutation moved nothing (raw distance {raw})");
            assert!(aligned <= 1e-4, "{family}: aligned distance {aligned} for an exact permutation (raw {raw})");
        }
    }
}

#[test]
fn a_declared_network_trains_on_the_tape_with_running_statistics() {
    let spec: DataSpec = toml::from_str("source = \"blobs\"\nsamples = 1024\nclasses = 4\nnoise = 0.3").unwrap();
    let data = data::load(&spec, Path::new(".")).unwrap();
    let arch_spec =
        ArchSpec::Sequential { layers: layers(r#"[{ type = "linear", out = 16 }, { type = "batchnorm1d" }, { type = "relu" }, { type = "dropout", p = 0.1 }, { type = "linear", out = 4 }]"#) };
    let arch = Arch::new(&arch_spec, &data).unwrap();
    let zoo: ZooSpec = toml::from_str("data = \"d\"\narch = { kind = \"mlp\" }\nmodels = 3\ntrain = { epochs = 4, lr = 0.01, batch_size = 32 }").unwrap();
    let trained = train::train_zoo(&arch, &data, &zoo, None).unwrap();
    let again = train::train_zoo(&arch, &data, &zoo, None).unwrap();
    assert_eq!(trained.weights, again.weights, "training is bit-identical for a seed");
    let layout = arch.layout();
    let var = layout.get("1.running_var").unwrap();
    for i in 0..trained.checkpoints.len() {
        let w = trained.weights_of(i);
        assert!(w[var.range()].iter().any(|v| (v - 1.0).abs() > 0.05), "running variance never moved: {:?}", &w[var.range()]);
    }
    let scores = eval::evaluate(&arch, &data, &data.test, &trained.weights);
    for s in &scores {
        assert!(s.accuracy.unwrap() > 0.8, "blobs are easy; a trained model scores {:?}", s.accuracy);
    }
}

#[test]
fn a_declared_mlp_trains_on_the_native_engine_bit_for_bit_as_the_preset() {
    let spec: DataSpec = toml::from_str("source = \"blobs\"\nsamples = 512\nclasses = 3").unwrap();
    let data = data::load(&spec, Path::new(".")).unwrap();
    let declared = Arch::new(&ArchSpec::Sequential { layers: layers(r#"[{ type = "linear", out = 16 }, { type = "tanh" }, { type = "linear", out = 3 }]"#) }, &data).unwrap();
    let preset = Arch::new(&ArchSpec::Mlp { hidden: vec![16], activation: weightlab_manifest::Activation::Tanh }, &data).unwrap();
    let Arch::Sequential(net) = &declared else { unreachable!() };
    assert_eq!(net.as_mlp(), Some((vec![2, 16, 3], weightlab_manifest::Activation::Tanh)));
    let zoo: ZooSpec = toml::from_str("data = \"d\"\narch = { kind = \"mlp\" }\nmodels = 3\ntrain = { epochs = 2, batch_size = 32 }").unwrap();
    let (a, b) = (train::train_zoo(&declared, &data, &zoo, None).unwrap(), train::train_zoo(&preset, &data, &zoo, None).unwrap());
    assert_eq!(a.weights, b.weights, "same flat layout, same engine, same bits");
    // Not an MLP: a norm, a bias-free layer, a trailing activation, mixed activations.
    for other in [
        r#"[{ type = "linear", out = 16 }, { type = "batchnorm1d" }, { type = "linear", out = 3 }]"#,
        r#"[{ type = "linear", out = 16, bias = false }, { type = "relu" }, { type = "linear", out = 3 }]"#,
        r#"[{ type = "linear", out = 3 }, { type = "relu" }]"#,
        r#"[{ type = "linear", out = 8 }, { type = "relu" }, { type = "linear", out = 8 }, { type = "tanh" }, { type = "linear", out = 3 }]"#,
    ] {
        let Arch::Sequential(net) = Arch::new(&ArchSpec::Sequential { layers: layers(other) }, &data).unwrap() else { unreachable!() };
        assert_eq!(net.as_mlp(), None, "{other}");
    }
}

/// K declared networks trained `steps` steps by the native engine and by the autodiff tape
/// (see [`engines_differ`]), after checking the native engine takes them.
fn native_and_tape_differ(data: &data::Dataset, arch: &Arch, recipe: &weightlab_manifest::TrainSpec, freeze: Option<&str>, steps: usize) -> f32 {
    let pools = vec![(0..data.train.len() as i64).collect::<Vec<_>>(); 1];
    let native = train::Trainer::with_engine(arch, data, recipe, &[3], pools, train::EngineChoice::Fastest);
    assert_eq!((native.engine(), native.note()), ("net", None), "the native engine takes this network");
    engines_differ(train::EngineChoice::Fastest, data, arch, recipe, freeze, steps)
}

/// Every layer the native engine computes, in a network of its own, follows the tape: its
/// forward (the loss it differentiates) and its backward (the gradients SGD follows), the
/// running statistics, Adam, and continued training of some layers. Over 3 steps: max-pooling
/// after a ReLU turns rounding into other trajectories once two values of a window are within
/// rounding of each other (zeros and tiny positives; the engines sum in different orders, so
/// the other one can win) — measured on conv, BatchNorm, ReLU, max-pool: 7·10⁻⁷ apart after 3
/// SGD steps, 1.3·10⁻⁴ after 4 (without the ReLU, 2·10⁻⁶ after 5).
#[test]
fn every_layer_of_the_native_engine_follows_the_tape() {
    use weightlab_manifest::{Optimizer, TrainSpec};
    let spec: DataSpec = toml::from_str("source = \"fashion-mnist\"\ntrain_subset = 256\ntest_subset = 64").unwrap();
    let data = data::load(&spec, Path::new(".")).unwrap();
    let sgd = TrainSpec { optimizer: Optimizer::Sgd, lr: 0.05, batch_size: 16, weight_decay: 1e-3, ..TrainSpec::default() };
    let adam = TrainSpec { lr: 0.01, batch_size: 16, weight_decay: 1e-3, ..TrainSpec::default() };
    let cases = [
        ("conv, padding, relu, linear", r#"[{ type = "conv2d", out = 3, kernel = 3, padding = 1 }, { type = "relu" }, { type = "flatten" }, { type = "linear", out = 10 }]"#),
        (
            "gelu after a convolution and a linear layer",
            r#"[{ type = "conv2d", out = 3, kernel = 3, stride = 2 }, { type = "gelu" }, { type = "flatten" }, { type = "linear", out = 16 }, { type = "gelu" }, { type = "linear", out = 10 }]"#,
        ),
        (
            "layernorm over a convolution's flattened features and after a linear layer",
            r#"[{ type = "conv2d", out = 2, kernel = 5, stride = 2 }, { type = "flatten" }, { type = "layernorm" }, { type = "relu" }, { type = "linear", out = 16 }, { type = "layernorm" }, { type = "tanh" }, { type = "linear", out = 10 }]"#,
        ),
        ("conv with stride, no bias, tanh", r#"[{ type = "conv2d", out = 4, kernel = 4, stride = 2, bias = false }, { type = "tanh" }, { type = "flatten" }, { type = "linear", out = 10 }]"#),
        (
            "batchnorm2d and max-pooling",
            // No bias before the BatchNorm (as networks declare it): BatchNorm removes the mean,
            // so that bias's gradient is zero in exact arithmetic and rounding noise in both
            // engines, which Adam scales up to about lr (measured: 1.7·10⁻⁴ apart after 3 steps).
            r#"[{ type = "conv2d", out = 4, kernel = 5, bias = false }, { type = "batchnorm2d" }, { type = "relu" }, { type = "maxpool2d", kernel = 2 }, { type = "flatten" }, { type = "linear", out = 10 }]"#,
        ),
        (
            "average pooling with stride, sigmoid, pooling windows that overlap",
            r#"[{ type = "conv2d", out = 2, kernel = 3, stride = 1 }, { type = "sigmoid" }, { type = "avgpool2d", kernel = 3, stride = 2 }, { type = "maxpool2d", kernel = 3, stride = 2 }, { type = "flatten" }, { type = "linear", out = 10 }]"#,
        ),
        (
            "residual blocks (1×1 conv shortcut, identity), silu, leaky relu, global pooling",
            r#"[{ type = "conv2d", out = 4, kernel = 3, padding = 1 }, { type = "silu" }, { type = "maxpool2d", kernel = 2 },
                { type = "residual", layers = [ { type = "conv2d", out = 6, kernel = 3, padding = 1, bias = false }, { type = "batchnorm2d" }, { type = "relu" },
                                                { type = "conv2d", out = 6, kernel = 3, padding = 1 } ],
                                     shortcut = [ { type = "conv2d", out = 6, kernel = 1 }, { type = "batchnorm2d" } ] },
                { type = "residual", layers = [ { type = "conv2d", out = 6, kernel = 3, padding = 1 }, { type = "leaky_relu", negative_slope = 0.1 } ] },
                { type = "adaptive_avgpool2d" }, { type = "flatten" }, { type = "linear", out = 10 }]"#,
        ),
        (
            // A BatchNorm over a convolution's flattened outputs normalises each feature, not
            // each channel: it must not be fused with the convolution as a BatchNorm2d is.
            // Tanh after it, not ReLU: a window over the background (the image's corners) gives
            // a feature constant over the batch, which BatchNorm turns into rounding noise, and
            // a ReLU's mask on that noise picks which examples' gradients reach the shift — by
            // the noise's signs, which differ between the engines and between CPUs (measured on
            // an AMD EPYC, Zen 4: the corner features' shifts 1.8·10⁻⁴ apart after 3 SGD steps,
            // 2.8·10⁻⁷ with tanh; an Intel Xeon's libtorch happened to round as the native engine).
            "flat features of a convolution: batchnorm1d after flatten",
            r#"[{ type = "conv2d", out = 2, kernel = 5, bias = false }, { type = "flatten" }, { type = "batchnorm1d" }, { type = "tanh" }, { type = "linear", out = 10 }]"#,
        ),
        (
            "flat: batchnorm1d, sine, a flat residual block, dropout 0",
            r#"[{ type = "flatten" }, { type = "linear", out = 24, bias = false }, { type = "batchnorm1d" }, { type = "sine", w0 = 2.0 }, { type = "dropout", p = 0.0 },
                { type = "residual", layers = [ { type = "linear", out = 12 }, { type = "relu" }, { type = "linear", out = 24, bias = false } ] },
                { type = "linear", out = 10 }]"#,
        ),
    ];
    for (name, declared) in cases {
        let arch = Arch::new(&ArchSpec::Sequential { layers: layers(declared) }, &data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = native_and_tape_differ(&data, &arch, &sgd, None, 3);
        assert!(d < 1e-4, "{name}, SGD: the engines part by {d} (relative)");
        // A weight feeding a BatchNorm from an input constant over the batch (a background
        // pixel) has a gradient that is zero in exact arithmetic (BatchNorm's input gradient
        // sums to zero over the batch), so the engines' gradients are rounding noise of other
        // signs, which Adam's first steps scale up to about lr: Adam is compared where no
        // linear layer on raw pixels feeds a BatchNorm.
        if !name.starts_with("flat") {
            let d = native_and_tape_differ(&data, &arch, &adam, None, 3);
            assert!(d < 1e-4, "{name}, Adam: the engines part by {d} (relative)");
        }
    }
    // LeNet-5 with BatchNorm, and continued training of its classifier only.
    let lenet = networks().into_iter().find(|n| n.0 == "lenet5").unwrap().3;
    let arch = Arch::new(&ArchSpec::Sequential { layers: lenet }, &data).unwrap();
    // (Adam is left out here: a first-layer feature that is ReLU's zero in one engine and a
    // rounding-sized positive in the other gives a weight a gradient in one only, which Adam's
    // first steps scale up to about lr — measured 5·10⁻⁴ on `8.weight` after 3 steps.)
    for (what, recipe, freeze, steps) in [("SGD", &sgd, None, 3), ("continued", &sgd, Some("8"), 3)] {
        let d = native_and_tape_differ(&data, &arch, recipe, freeze, steps);
        assert!(d < 1e-4, "LeNet-5, {what}: the engines part by {d} (relative)");
    }
}

/// On the CPU the native engine takes every declared network, regression too (one real output,
/// squared error): it follows the tape there as well.
#[test]
fn a_regression_network_trains_on_the_native_engine_and_follows_the_tape() {
    use weightlab_manifest::{Optimizer, TrainSpec};
    let spec: DataSpec = toml::from_str("source = \"sdf-shapes\"\nsamples = 256\nshapes = 2").unwrap();
    let data = data::load(&spec, Path::new(".")).unwrap();
    let arch = Arch::new(
        &ArchSpec::Sequential {
            layers: layers(r#"[{ type = "linear", out = 16 }, { type = "layernorm" }, { type = "gelu" }, { type = "linear", out = 8 }, { type = "tanh" }, { type = "linear", out = 1 }]"#),
        },
        &data,
    )
    .unwrap();
    assert_eq!(train::tape_reason(&arch, &data), None);
    let sgd = TrainSpec { optimizer: Optimizer::Sgd, lr: 0.05, batch_size: 16, ..TrainSpec::default() };
    let adam = TrainSpec { lr: 0.01, batch_size: 16, ..TrainSpec::default() };
    for (name, recipe) in [("SGD", &sgd), ("Adam", &adam)] {
        let d = native_and_tape_differ(&data, &arch, recipe, None, 5);
        assert!(d < 1e-4, "regression, {name}: the engines part by {d} (relative)");
    }
}
