//! Declared networks: a manifest's `sequential` layers completed with the data's shapes, with
//! PyTorch's parameter names and a batched forward pass for K models at once.
//!
//! Shapes are inferred from the dataset's input shape, layer by layer, so a manifest never
//! states a width twice; a layer that does not fit the shape reaching it is a [`ShapeError`]
//! naming the layer. The flat layout holds every floating-point tensor of the state_dict in
//! module order — BatchNorm's `running_mean` and `running_var` included (marked as buffers:
//! they move with the batch statistics, never with a gradient) — so one flat vector is a whole
//! model in evaluation mode. `num_batches_tracked` (an integer) is written on export and
//! ignored on import.
//!
//! K models run as one computation: dense layers as batched matmuls over (K × B × F), conv
//! layers as grouped convolutions over (B × K·C × H × W), where per-channel statistics
//! (BatchNorm) are per model by construction.

use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Tensor, TensorData, activation};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use weightlab_manifest::LayerSpec;
use weightlab_manifest::spans::Seg;

use super::layout::Layout;

/// BatchNorm's and LayerNorm's epsilon, and BatchNorm's momentum: PyTorch's defaults.
const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// A declared network with every shape known.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Shape of one input example.
    pub input: Vec<usize>,
    pub layers: Vec<Layer>,
    /// Every tensor of the state_dict but `num_batches_tracked`, in module order.
    pub layout: Layout,
}

/// One layer with its shapes and where its tensors sit in the flat vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Its module name in the state_dict (`3`, `3.layers.0`).
    pub prefix: String,
    pub op: Op,
    /// Shape of one example before and after it.
    pub input: Vec<usize>,
    pub output: Vec<usize>,
    /// Offsets of its tensors in the flat vector, in the order [`Op::tensors`] names them.
    offsets: Vec<usize>,
}

/// What a layer computes, with its sizes resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Linear {
        inputs: usize,
        out: usize,
        bias: bool,
    },
    Conv2d {
        inputs: usize,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    },
    /// BatchNorm over `features` (1-D inputs) or channels (3-D inputs).
    BatchNorm {
        features: usize,
    },
    LayerNorm {
        features: usize,
    },
    MaxPool {
        kernel: usize,
        stride: usize,
    },
    AvgPool {
        kernel: usize,
        stride: usize,
    },
    GlobalAvgPool,
    Flatten,
    Dropout {
        p: f64,
    },
    Act(Act),
    Residual {
        layers: Vec<Layer>,
        shortcut: Option<Vec<Layer>>,
    },
}

/// An element-wise activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Relu,
    Gelu,
    Tanh,
    Sigmoid,
    Silu,
    LeakyRelu(f64),
    Sine(f64),
}

impl Op {
    /// The layer's own tensors: (name within the module, shape, is a buffer).
    fn tensors(&self) -> Vec<(&'static str, Vec<usize>, bool)> {
        match *self {
            Op::Linear { inputs, out, bias } => std::iter::once(("weight", vec![out, inputs], false)).chain(bias.then(|| ("bias", vec![out], false))).collect(),
            Op::Conv2d { inputs, out, kernel, bias, .. } => std::iter::once(("weight", vec![out, inputs, kernel, kernel], false)).chain(bias.then(|| ("bias", vec![out], false))).collect(),
            Op::BatchNorm { features: n } => vec![("weight", vec![n], false), ("bias", vec![n], false), ("running_mean", vec![n], true), ("running_var", vec![n], true)],
            Op::LayerNorm { features: n } => vec![("weight", vec![n], false), ("bias", vec![n], false)],
            _ => Vec::new(),
        }
    }
}

/// Where a declared network does not fit its data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ShapeError {
    /// The layer at fault as a key path below `arch` (`layers`, 3, `layers`, 0).
    pub at: Vec<Seg>,
    pub message: String,
}

impl Network {
    /// Completes `layers` for inputs of shape `input` and `outputs` values out per example
    /// (classes, or 1 for regression).
    pub fn new(layers: &[LayerSpec], input: &[usize], outputs: usize) -> Result<Self, ShapeError> {
        if layers.is_empty() {
            return Err(ShapeError { at: vec![Seg::from("layers")], message: "the network declares no layers".into() });
        }
        if input.is_empty() || input.contains(&0) {
            return Err(ShapeError { at: vec![Seg::from("layers")], message: format!("the data's examples have shape {input:?}, which no layer can take") });
        }
        let mut offset = 0;
        let (layers, out) = infer(layers, input, "", &[Seg::from("layers")], "the data", &mut offset)?;
        if out != [outputs] {
            let (i, last) = (layers.len() - 1, &layers[layers.len() - 1]);
            let what = if outputs == 1 { "1 output (its targets are floats: a regression; integer labels make a classification)".to_string() } else { format!("{outputs} outputs, one per class") };
            return Err(ShapeError {
                at: vec![Seg::from("layers"), Seg::from(i)],
                message: format!("the network ends with {} per example (layer {i} `{}`), but the data needs {what}", shape_text(&out), last.kind()),
            });
        }
        let mut named = Vec::new();
        collect_tensors(&layers, &mut named);
        let layout = Layout::with_buffers(named);
        Ok(Network { input: input.to_vec(), layers, layout })
    }

    /// A fresh model as PyTorch initialises one: weights and biases of linear and conv layers
    /// uniform in ±1/√fan_in (kaiming-uniform with a = √5, PyTorch's default), norms' weights 1
    /// and biases 0, running mean 0 and variance 1.
    pub fn init(&self, rng: &mut ChaCha8Rng) -> Vec<f32> {
        let mut flat = vec![0.0f32; self.layout.len()];
        visit(&self.layers, &mut |layer| {
            let tensors = layer.op.tensors();
            match layer.op {
                Op::Linear { .. } | Op::Conv2d { .. } => {
                    let fan_in: usize = tensors[0].1[1..].iter().product();
                    let bound = 1.0 / (fan_in as f32).sqrt();
                    for ((_, shape, _), &at) in tensors.iter().zip(&layer.offsets) {
                        for v in &mut flat[at..at + shape.iter().product::<usize>()] {
                            *v = rng.random_range(-bound..bound);
                        }
                    }
                }
                Op::BatchNorm { features: n } | Op::LayerNorm { features: n } => {
                    flat[layer.offsets[0]..layer.offsets[0] + n].fill(1.0);
                    if let Some(&var) = layer.offsets.get(3) {
                        flat[var..var + n].fill(1.0);
                    }
                }
                _ => {}
            }
        });
        flat
    }

    /// The MLP preset this network is exactly, if it is one: flat inputs, linear layers with
    /// biases and one activation the preset has (`relu`, `tanh`, `silu`, `sine` with w0 = 30)
    /// between each two, none after the last. Its flat layout is then the preset's (same
    /// shapes in the same order, other names), so the preset's native engines train it.
    pub fn as_mlp(&self) -> Option<(Vec<usize>, weightlab_manifest::Activation)> {
        use weightlab_manifest::Activation;
        let [features] = self.input[..] else { return None };
        let mut sizes = vec![features];
        let mut activation = None;
        for (i, layer) in self.layers.iter().enumerate() {
            match (i % 2, &layer.op) {
                (0, &Op::Linear { out, bias: true, .. }) => sizes.push(out),
                (1, Op::Act(a)) => {
                    let mine = match a {
                        Act::Relu => Activation::Relu,
                        Act::Tanh => Activation::Tanh,
                        Act::Silu => Activation::Silu,
                        Act::Sine(w0) if *w0 == 30.0 => Activation::Sine,
                        _ => return None,
                    };
                    if activation.replace(mine).is_some_and(|a| a != mine) {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        (self.layers.len() % 2 == 1).then(|| (sizes, activation.unwrap_or_default()))
    }

    /// The largest number of values one example holds between two layers (bounds memory when
    /// evaluating many models on many examples).
    pub fn widest(&self) -> usize {
        let mut widest: usize = self.input.iter().product();
        visit(&self.layers, &mut |l| widest = widest.max(l.output.iter().product()));
        widest
    }

    /// The values one example holds across all layers, its input included (bounds the memory
    /// a backward pass keeps).
    pub fn activations(&self) -> usize {
        let mut total: usize = self.input.iter().product();
        visit(&self.layers, &mut |l| total = total.saturating_add(l.output.iter().product()));
        total
    }

    /// What the tensor `name` belongs to, for messages: "layer 8 `linear` (400 inputs → 120)".
    pub fn describe(&self, name: &str) -> Option<String> {
        let prefix = name.rsplit_once('.').map(|(p, _)| p)?;
        let mut found = None;
        visit(&self.layers, &mut |l| {
            if l.prefix == prefix {
                found = Some(format!("layer {} `{}` ({} → {})", l.prefix, l.kind(), shape_text(&l.input), shape_text(&l.output)));
            }
        });
        found
    }

    /// Forward pass of K models (`params`: K × P) on `x` (K × B × features) in evaluation mode.
    pub fn forward(&self, params: &Tensor<2>, x: Tensor<3>) -> Tensor<3> {
        let mut mode = Mode::Eval;
        self.run(params, x, &mut mode)
    }

    /// Folds a training step's batch statistics (from [`Network::forward_train`]) into the
    /// running statistics of `params` (K × P) with PyTorch's momentum:
    /// running ← (1 − 0.1)·running + 0.1·batch (the variance unbiased, as PyTorch keeps it).
    pub fn fold_running(params: Tensor<2>, stats: Vec<(usize, Tensor<2>)>) -> Tensor<2> {
        let mut params = params;
        for (at, stat) in stats {
            let [k, n] = stat.dims();
            let old = params.clone().narrow(1, at, n);
            params = params.slice_assign([0..k, at..at + n], old * (1.0 - MOMENTUM) + stat * MOMENTUM);
        }
        params
    }

    /// Forward pass in training mode: batch statistics in BatchNorm, dropout drawn from `rng`.
    /// Returns the outputs and each BatchNorm's batch statistics as (flat offset of the running
    /// mean or variance, K × n values), detached, for [`Network::fold_running`].
    pub fn forward_train(&self, params: &Tensor<2>, x: Tensor<3>, rng: &mut ChaCha8Rng) -> (Tensor<3>, Vec<(usize, Tensor<2>)>) {
        let mut mode = Mode::Train { rng, updates: Vec::new() };
        let out = self.run(params, x, &mut mode);
        match mode {
            Mode::Train { updates, .. } => (out, updates),
            Mode::Eval => (out, Vec::new()),
        }
    }

    fn run(&self, params: &Tensor<2>, x: Tensor<3>, mode: &mut Mode) -> Tensor<3> {
        let [k, b, _] = x.dims();
        let h = match self.input[..] {
            [c, hh, w] => H::Image(x.swap_dims(0, 1).reshape([b, k * c, hh, w])),
            _ => H::Flat(x),
        };
        match run_layers(&self.layers, params, h, k, mode) {
            H::Flat(t) => t,
            H::Image(t) => {
                let [b, kc, hh, w] = t.dims();
                t.reshape([b, k, kc / k * hh * w]).swap_dims(0, 1)
            }
        }
    }
}

impl Layer {
    /// Where its tensors start in the flat vector, in the order the layer's op names them
    /// (weight, bias; BatchNorm: weight, bias, running_mean, running_var).
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// The `type = "…"` it was declared with.
    pub fn kind(&self) -> &'static str {
        match &self.op {
            Op::Linear { .. } => "linear",
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } if self.input.len() == 1 => "batchnorm1d",
            Op::BatchNorm { .. } => "batchnorm2d",
            Op::LayerNorm { .. } => "layernorm",
            Op::MaxPool { .. } => "maxpool2d",
            Op::AvgPool { .. } => "avgpool2d",
            Op::GlobalAvgPool => "adaptive_avgpool2d",
            Op::Flatten => "flatten",
            Op::Dropout { .. } => "dropout",
            Op::Act(Act::Relu) => "relu",
            Op::Act(Act::Gelu) => "gelu",
            Op::Act(Act::Tanh) => "tanh",
            Op::Act(Act::Sigmoid) => "sigmoid",
            Op::Act(Act::Silu) => "silu",
            Op::Act(Act::LeakyRelu(_)) => "leaky_relu",
            Op::Act(Act::Sine(_)) => "sine",
            Op::Residual { .. } => "residual",
        }
    }
}

/// `(6, 28, 28)`, or `120 values` for a flat shape.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("{n} values"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Every layer, nested ones included, in module order.
fn visit<'a>(layers: &'a [Layer], f: &mut impl FnMut(&'a Layer)) {
    for l in layers {
        f(l);
        if let Op::Residual { layers, shortcut } = &l.op {
            visit(layers, f);
            if let Some(s) = shortcut {
                visit(s, f);
            }
        }
    }
}

fn collect_tensors(layers: &[Layer], out: &mut Vec<(String, Vec<usize>, bool)>) {
    for l in layers {
        out.extend(l.op.tensors().into_iter().map(|(n, s, buffer)| (format!("{}.{n}", l.prefix), s, buffer)));
        if let Op::Residual { layers, shortcut } = &l.op {
            collect_tensors(layers, out);
            if let Some(s) = shortcut {
                collect_tensors(s, out);
            }
        }
    }
}

/// Infers the shapes through `specs` from `input`; `prefix` is the module path (empty at the
/// top), `at` the key path of the list, `before` what feeds the first layer (for messages).
/// Offsets are assigned in module order from `offset`.
fn infer(specs: &[LayerSpec], input: &[usize], prefix: &str, at: &[Seg], before: &str, offset: &mut usize) -> Result<(Vec<Layer>, Vec<usize>), ShapeError> {
    let mut shape = input.to_vec();
    let mut from = before.to_string();
    let mut layers = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let name = if prefix.is_empty() { i.to_string() } else { format!("{prefix}.{i}") };
        let here: Vec<Seg> = at.iter().cloned().chain([Seg::from(i)]).collect();
        let fail = |message: String| ShapeError { at: here.clone(), message: format!("layer {name} `{}`: {message}", spec.kind()) };
        let image = |what: &str| -> Result<[usize; 3], ShapeError> {
            match shape[..] {
                [c, h, w] => Ok([c, h, w]),
                _ => Err(fail(format!("{what} needs (channels, height, width) inputs, but {from} gives {}", shape_text(&shape)))),
            }
        };
        let flat = |what: &str, help: &str| -> Result<usize, ShapeError> {
            match shape[..] {
                [n] => Ok(n),
                _ => Err(fail(format!("{what} needs flat inputs, but {from} gives {}{help}", shape_text(&shape)))),
            }
        };
        let pooled = |n: usize, k: usize, s: usize| if n >= k { (n - k) / s + 1 } else { 0 };
        let (op, out) = match spec {
            LayerSpec::Linear { out, bias } => {
                let inputs = flat("it", "; add `{ type = \"flatten\" }` before it")?;
                (Op::Linear { inputs, out: *out, bias: *bias }, vec![*out])
            }
            LayerSpec::Conv2d { out, kernel, stride, padding, bias } => {
                let [c, h, w] = image("it")?;
                let (oh, ow) = (pooled(h + 2 * padding, *kernel, *stride), pooled(w + 2 * padding, *kernel, *stride));
                if oh == 0 || ow == 0 {
                    return Err(fail(format!("a {kernel}×{kernel} kernel does not fit the {} that {from} gives (padding {padding})", shape_text(&shape))));
                }
                (Op::Conv2d { inputs: c, out: *out, kernel: *kernel, stride: *stride, padding: *padding, bias: *bias }, vec![*out, oh, ow])
            }
            LayerSpec::Batchnorm1d {} => (Op::BatchNorm { features: flat("it", "; use `batchnorm2d` on images")? }, shape.clone()),
            LayerSpec::Batchnorm2d {} => (Op::BatchNorm { features: image("it")?[0] }, shape.clone()),
            LayerSpec::Layernorm {} => (Op::LayerNorm { features: flat("weightlab's `layernorm` (over the features)", "; add `{ type = \"flatten\" }` before it")? }, shape.clone()),
            LayerSpec::Maxpool2d { kernel, stride } | LayerSpec::Avgpool2d { kernel, stride } => {
                let [c, h, w] = image("it")?;
                let s = stride.unwrap_or(*kernel);
                if h < *kernel || w < *kernel {
                    return Err(fail(format!("a {kernel}×{kernel} window does not fit the {} that {from} gives", shape_text(&shape))));
                }
                let op = if matches!(spec, LayerSpec::Maxpool2d { .. }) { Op::MaxPool { kernel: *kernel, stride: s } } else { Op::AvgPool { kernel: *kernel, stride: s } };
                (op, vec![c, pooled(h, *kernel, s), pooled(w, *kernel, s)])
            }
            LayerSpec::AdaptiveAvgpool2d {} => (Op::GlobalAvgPool, vec![image("it")?[0], 1, 1]),
            LayerSpec::Flatten {} => (Op::Flatten, vec![shape.iter().product()]),
            LayerSpec::Dropout { p } => (Op::Dropout { p: *p }, shape.clone()),
            LayerSpec::Relu {} => (Op::Act(Act::Relu), shape.clone()),
            LayerSpec::Gelu {} => (Op::Act(Act::Gelu), shape.clone()),
            LayerSpec::Tanh {} => (Op::Act(Act::Tanh), shape.clone()),
            LayerSpec::Sigmoid {} => (Op::Act(Act::Sigmoid), shape.clone()),
            LayerSpec::Silu {} => (Op::Act(Act::Silu), shape.clone()),
            LayerSpec::LeakyRelu { negative_slope } => (Op::Act(Act::LeakyRelu(*negative_slope)), shape.clone()),
            LayerSpec::Sine { w0 } => (Op::Act(Act::Sine(*w0)), shape.clone()),
            LayerSpec::Residual { layers, shortcut } => {
                let mut tensors_before = *offset;
                let branch = |key: &str, specs: &[LayerSpec], offset: &mut usize| {
                    let at: Vec<Seg> = here.iter().cloned().chain([Seg::from(key)]).collect();
                    infer(specs, &shape, &format!("{name}.{key}"), &at, &format!("the input of residual block {name}"), offset)
                };
                let (inner, a) = branch("layers", layers, &mut tensors_before)?;
                let (side, b) = match shortcut {
                    Some(s) => {
                        let (l, b) = branch("shortcut", s, &mut tensors_before)?;
                        (Some(l), b)
                    }
                    None => (None, shape.clone()),
                };
                *offset = tensors_before;
                if a != b {
                    let what = if shortcut.is_some() { "its `shortcut`" } else { "its input (the identity shortcut)" };
                    return Err(fail(format!("its `layers` give {} but {what} gives {}: the two must match to be added", shape_text(&a), shape_text(&b))));
                }
                (Op::Residual { layers: inner, shortcut: side }, a)
            }
        };
        let offsets: Vec<usize> = op
            .tensors()
            .iter()
            .map(|(_, s, _)| {
                let at = *offset;
                *offset += s.iter().product::<usize>();
                at
            })
            .collect();
        let layer = Layer { prefix: name.clone(), op, input: shape.clone(), output: out.clone(), offsets };
        from = format!("layer {name} `{}`", layer.kind());
        layers.push(layer);
        shape = out;
    }
    Ok((layers, shape))
}

/// Activations between layers: flat (K × B × F) or images (B × K·C × H × W).
enum H {
    Flat(Tensor<3>),
    Image(Tensor<4>),
}

enum Mode<'a> {
    Eval,
    Train { rng: &'a mut ChaCha8Rng, updates: Vec<(usize, Tensor<2>)> },
}

fn slice(params: &Tensor<2>, at: usize, n: usize) -> Tensor<2> {
    params.clone().narrow(1, at, n)
}

fn act<const D: usize>(t: Tensor<D>, a: Act) -> Tensor<D> {
    match a {
        Act::Relu => activation::relu(t),
        Act::Gelu => activation::gelu(t),
        Act::Tanh => activation::tanh(t),
        Act::Sigmoid => activation::sigmoid(t),
        Act::Silu => activation::silu(t),
        Act::LeakyRelu(s) => activation::leaky_relu(t, s),
        Act::Sine(w0) => (t * w0).sin(),
    }
}

fn run_layers(layers: &[Layer], params: &Tensor<2>, mut h: H, k: usize, mode: &mut Mode) -> H {
    for layer in layers {
        h = run_layer(layer, params, h, k, mode);
    }
    h
}

fn run_layer(layer: &Layer, params: &Tensor<2>, h: H, k: usize, mode: &mut Mode) -> H {
    let at = &layer.offsets;
    match (&layer.op, h) {
        (&Op::Linear { inputs, out, bias }, H::Flat(x)) => {
            let w = slice(params, at[0], out * inputs).reshape([k, out, inputs]);
            let y = x.matmul(w.swap_dims(1, 2));
            H::Flat(if bias { y + slice(params, at[1], out).reshape([k, 1, out]) } else { y })
        }
        (&Op::Conv2d { inputs, out, kernel, stride, padding, bias }, H::Image(x)) => {
            let w = slice(params, at[0], out * inputs * kernel * kernel).reshape([k * out, inputs, kernel, kernel]);
            let b = bias.then(|| slice(params, at[1], out).reshape([k * out]));
            H::Image(conv2d(x, w, b, ConvOptions::new([stride, stride], [padding, padding], [1, 1], k)))
        }
        (&Op::BatchNorm { features: n }, h) => {
            let (x, dims): (Tensor<4>, [usize; 4]) = match h {
                // (K × B × F) seen as (K, B, F, 1): statistics over dims 1 and 3.
                H::Flat(x) => {
                    let [kk, b, f] = x.dims();
                    (x.reshape([kk, b, f, 1]), [kk, b, f, 1])
                }
                H::Image(x) => {
                    let d = x.dims();
                    (x, d)
                }
            };
            let flat = matches!(layer.input.len(), 1);
            // Per-(model, feature) statistics: over (B, ·) for flat inputs, over (B, H, W) for images.
            let (reduce, stat_shape, count): (&[usize], [usize; 4], usize) = if flat { (&[1, 3], [k, 1, n, 1], dims[1]) } else { (&[0, 2, 3], [1, k * n, 1, 1], dims[0] * dims[2] * dims[3]) };
            let param = |i: usize| slice(params, at[i], n).reshape(stat_shape);
            let (mean, var) = match mode {
                Mode::Train { updates, .. } => {
                    let mean = x.clone().mean_dims(reduce);
                    let var = (x.clone() - mean.clone()).square().mean_dims(reduce);
                    let unbiased = count as f64 / (count.max(2) - 1) as f64;
                    updates.push((at[2], mean.clone().inner().reshape([k, n])));
                    updates.push((at[3], (var.clone().inner() * unbiased).reshape([k, n])));
                    (mean, var)
                }
                Mode::Eval => (param(2), param(3)),
            };
            let y = (x - mean) / (var + EPS).sqrt() * param(0) + param(1);
            if flat {
                let [kk, b, f, _] = dims;
                H::Flat(y.reshape([kk, b, f]))
            } else {
                H::Image(y)
            }
        }
        (&Op::LayerNorm { features: n }, H::Flat(x)) => {
            let mean = x.clone().mean_dim(2);
            let var = (x.clone() - mean.clone()).square().mean_dim(2);
            let y = (x - mean) / (var + EPS).sqrt();
            H::Flat(y * slice(params, at[0], n).reshape([k, 1, n]) + slice(params, at[1], n).reshape([k, 1, n]))
        }
        (&Op::MaxPool { kernel, stride }, H::Image(x)) => {
            let mut o = MaxPoolOptions::new([kernel, kernel]);
            o.stride = [stride, stride];
            H::Image(max_pool2d(x, o))
        }
        (&Op::AvgPool { kernel, stride }, H::Image(x)) => {
            let mut o = AvgPoolOptions::new([kernel, kernel]);
            o.stride = [stride, stride];
            H::Image(avg_pool2d(x, o))
        }
        (Op::GlobalAvgPool, H::Image(x)) => H::Image(x.mean_dims(&[2, 3])),
        (Op::Flatten, H::Image(x)) => {
            let [b, kc, hh, w] = x.dims();
            H::Flat(x.reshape([b, k, kc / k * hh * w]).swap_dims(0, 1))
        }
        (Op::Flatten, h @ H::Flat(_)) => h,
        (&Op::Dropout { p }, h) => match mode {
            Mode::Train { rng, .. } if p > 0.0 => {
                let keep = 1.0 - p;
                let mut mask = |dims: &[usize], device: &burn::tensor::Device| {
                    let n: usize = dims.iter().product();
                    let values: Vec<f32> = (0..n).map(|_| if rng.random::<f64>() < keep { (1.0 / keep) as f32 } else { 0.0 }).collect();
                    (values, device.clone())
                };
                match h {
                    H::Flat(x) => {
                        let (v, d) = mask(&x.dims(), &x.device());
                        let m: Tensor<3> = Tensor::from_data(TensorData::new(v, x.dims()), &d);
                        H::Flat(x * m)
                    }
                    H::Image(x) => {
                        let (v, d) = mask(&x.dims(), &x.device());
                        let m: Tensor<4> = Tensor::from_data(TensorData::new(v, x.dims()), &d);
                        H::Image(x * m)
                    }
                }
            }
            _ => h,
        },
        (&Op::Act(a), H::Flat(x)) => H::Flat(act(x, a)),
        (&Op::Act(a), H::Image(x)) => H::Image(act(x, a)),
        (Op::Residual { layers, shortcut }, h) => {
            let input = match &h {
                H::Flat(x) => H::Flat(x.clone()),
                H::Image(x) => H::Image(x.clone()),
            };
            let a = run_layers(layers, params, h, k, mode);
            let b = match shortcut {
                Some(s) => run_layers(s, params, input, k, mode),
                None => input,
            };
            match (a, b) {
                (H::Flat(a), H::Flat(b)) => H::Flat(a + b),
                (H::Image(a), H::Image(b)) => H::Image(a + b),
                _ => unreachable!("shape inference checked both branches give one shape"),
            }
        }
        (op, _) => unreachable!("shape inference checked that {op:?} gets inputs of its rank"),
    }
}
