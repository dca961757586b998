//! Architectures of zoo models, with their flat layouts and a batched forward pass: K models
//! of one architecture run as one computation (batched matmul for dense layers, grouped
//! convolution for conv layers), their parameters stacked as one (K × P) tensor.

pub mod align;
pub mod bench_nets;
pub mod layout;
pub mod permute;
pub mod sequential;

use burn::tensor::Tensor;
use burn::tensor::activation;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use weightlab_manifest::{Activation, ArchSpec};

use crate::data::Dataset;
pub use layout::{Layout, ParamSpec};
pub use sequential::{Network, ShapeError};

/// A concrete architecture: the manifest's spec completed with the dataset's sizes.
#[derive(Debug, Clone, PartialEq)]
pub enum Arch {
    /// Dense layers `sizes[0] → sizes[1] → … → sizes[n]`.
    Mlp { sizes: Vec<usize>, activation: Activation },
    /// The Hyper-Representations CNN-s on 28×28×1 inputs (2,464 parameters for 10 classes).
    CnnS { classes: usize },
    /// A declared `sequential` network (any layers; PyTorch's names).
    Sequential(std::sync::Arc<Network>),
}

impl Arch {
    /// Completes `spec` with the input and output sizes of `data`. Only a declared network can
    /// fail: a layer that does not fit the shapes reaching it.
    pub fn new(spec: &ArchSpec, data: &Dataset) -> Result<Self, ShapeError> {
        Self::for_shape(spec, &data.input_shape, data.outputs())
    }

    /// [`Arch::new`] from the data's shapes alone: inputs of `input_shape`, `outputs` outputs.
    pub fn for_shape(spec: &ArchSpec, input_shape: &[usize], outputs: usize) -> Result<Self, ShapeError> {
        let features = input_shape.iter().product();
        Ok(match spec {
            ArchSpec::Mlp { hidden, activation } => {
                let sizes = std::iter::once(features).chain(hidden.iter().copied()).chain([outputs]).collect();
                Arch::Mlp { sizes, activation: *activation }
            }
            ArchSpec::SdfMlp { hidden } => {
                let sizes = std::iter::once(features).chain(hidden.iter().copied()).chain([1]).collect();
                Arch::Mlp { sizes, activation: Activation::Relu }
            }
            ArchSpec::CnnS {} => Arch::CnnS { classes: outputs },
            ArchSpec::Sequential { layers } => Arch::Sequential(std::sync::Arc::new(Network::new(layers, input_shape, outputs)?)),
        })
    }

    /// The largest number of values one example holds inside the network.
    pub fn widest(&self) -> usize {
        match self {
            Arch::Mlp { sizes, .. } => sizes.iter().copied().max().unwrap_or(1),
            Arch::CnnS { .. } => 8 * 24 * 24,
            Arch::Sequential(net) => net.widest(),
        }
    }

    /// The values one example holds across the network, its input included: what a backward
    /// pass keeps (bounds training memory, [`crate::memory::Training`]).
    pub fn activations(&self) -> usize {
        match self {
            Arch::Mlp { sizes, .. } => sizes.iter().sum(),
            // 28×28 in; conv1 8@24×24, pooled 12×12; conv2 6@8×8, pooled 4×4; conv3 4@3×3; 20; classes.
            Arch::CnnS { classes } => 784 + 8 * 24 * 24 + 8 * 12 * 12 + 6 * 8 * 8 + 6 * 4 * 4 + 36 + 20 + classes,
            Arch::Sequential(net) => net.activations(),
        }
    }

    /// Named parameter tensors, PyTorch-style.
    pub fn layout(&self) -> Layout {
        match self {
            Arch::Mlp { sizes, .. } => Layout::new(sizes.windows(2).enumerate().flat_map(|(i, w)| [(format!("layers.{i}.weight"), vec![w[1], w[0]]), (format!("layers.{i}.bias"), vec![w[1]])])),
            Arch::CnnS { classes } => Layout::new(
                [
                    ("conv1.weight", vec![8, 1, 5, 5]),
                    ("conv1.bias", vec![8]),
                    ("conv2.weight", vec![6, 8, 5, 5]),
                    ("conv2.bias", vec![6]),
                    ("conv3.weight", vec![4, 6, 2, 2]),
                    ("conv3.bias", vec![4]),
                    ("fc1.weight", vec![20, 36]),
                    ("fc1.bias", vec![20]),
                    ("fc2.weight", vec![*classes, 20]),
                    ("fc2.bias", vec![*classes]),
                ]
                .into_iter()
                .map(|(n, s)| (n.to_string(), s)),
            ),
            Arch::Sequential(net) => net.layout.clone(),
        }
    }

    /// A fresh model drawn as PyTorch's default initialisation does: every weight and bias
    /// uniform in ±1/√fan_in, fan_in being a weight's input size (times kernel area).
    pub fn init(&self, rng: &mut ChaCha8Rng) -> Vec<f32> {
        if let Arch::Sequential(net) = self {
            return net.init(rng);
        }
        let layout = self.layout();
        let mut flat = vec![0.0; layout.len()];
        for pair in layout.params.chunks(2) {
            let fan_in: usize = pair[0].shape[1..].iter().product();
            let bound = 1.0 / (fan_in as f32).sqrt();
            for p in pair {
                for v in &mut flat[p.range()] {
                    *v = rng.random_range(-bound..bound);
                }
            }
        }
        flat
    }

    /// Forward pass of K models at once. `params`: (K × P); `x`: (K × B × features), model k
    /// seeing its own batch. Returns (K × B × outputs).
    pub fn forward(&self, params: &Tensor<2>, x: Tensor<3>) -> Tensor<3> {
        if let Arch::Sequential(net) = self {
            return net.forward(params, x);
        }
        let layout = self.layout();
        let [k, b, _] = x.dims();
        let param = |name: &str| {
            let p = layout.get(name).expect("layout names are fixed");
            params.clone().narrow(1, p.offset, p.numel())
        };
        match self {
            Arch::Mlp { sizes, activation } => {
                let mut h = x;
                let last = sizes.len() - 2;
                for i in 0..=last {
                    let w = param(&format!("layers.{i}.weight")).reshape([k, sizes[i + 1], sizes[i]]);
                    let bias = param(&format!("layers.{i}.bias")).reshape([k, 1, sizes[i + 1]]);
                    h = h.matmul(w.swap_dims(1, 2)) + bias;
                    if i < last {
                        h = activate(h, *activation);
                    }
                }
                h
            }
            Arch::Sequential(_) => unreachable!("handled above"),
            Arch::CnnS { classes } => {
                // Models become channel groups: (B × K·C × H × W) with `groups = K`.
                let img = x.swap_dims(0, 1).reshape([b, k, 28, 28]);
                let conv = |h: Tensor<4>, name: &str, out: usize, cin: usize, ks: usize| {
                    let w = param(&format!("{name}.weight")).reshape([k * out, cin, ks, ks]);
                    let bias = param(&format!("{name}.bias")).reshape([k * out]);
                    conv2d(h, w, Some(bias), ConvOptions::new([1, 1], [0, 0], [1, 1], k))
                };
                let pool = |h: Tensor<4>| max_pool2d(h, MaxPoolOptions::new([2, 2]));
                let h = activation::tanh(pool(conv(img, "conv1", 8, 1, 5)));
                let h = activation::tanh(pool(conv(h, "conv2", 6, 8, 5)));
                let h = activation::tanh(conv(h, "conv3", 4, 6, 2));
                let h: Tensor<3> = h.reshape([b, k, 36]).swap_dims(0, 1);
                let w1 = param("fc1.weight").reshape([k, 20, 36]);
                let b1 = param("fc1.bias").reshape([k, 1, 20]);
                let h = activation::tanh(h.matmul(w1.swap_dims(1, 2)) + b1);
                let w2 = param("fc2.weight").reshape([k, *classes, 20]);
                let b2 = param("fc2.bias").reshape([k, 1, *classes]);
                h.matmul(w2.swap_dims(1, 2)) + b2
            }
        }
    }
}

fn activate(h: Tensor<3>, a: Activation) -> Tensor<3> {
    match a {
        Activation::Relu => activation::relu(h),
        Activation::Tanh => activation::tanh(h),
        Activation::Silu => activation::silu(h),
        Activation::Sine => (h * 30.0).sin(),
    }
}
