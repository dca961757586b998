//! K declared (`sequential`) networks trained at once on the CPU, with every layer's forward
//! and backward written out.
//!
//! Why not the autodiff tape: the tape runs K models as grouped convolutions and batched
//! matmuls, which for zoo-sized layers (a few channels, small images) spends its time on
//! dispatch and layout — LeNet-5 trained slower that way than a per-model PyTorch loop. Here a
//! thread takes one model at a time through its batch, layer by layer, with buffers kept from
//! step to step, then updates it with one fused Adam pass ([`super::models`]). Models are
//! independent, so the bits do not depend on the thread count.
//!
//! The layers a zoo needs are here: linear; conv2d with any kernel, stride and padding
//! (stride 1, the common case, as products in the register-tiled kernel of [`crate::gemm`]
//! over the batch's padded images read in place — see [`Conv::product`]); BatchNorm
//! over features or channels (batch statistics, the running buffers moved as PyTorch moves
//! them); max- and average-pooling; global average pooling; flatten; residual blocks with an
//! identity or a declared shortcut; LayerNorm over flat features; dropout (each model's masks
//! from its own seed's stream, [`Draws`]); relu, gelu, tanh, sigmoid, silu, leaky relu and
//! sine. A stride-1 convolution followed by BatchNorm (and ReLU) runs as one step ([`fused`]). A
//! network whose inputs or outputs do not fit the data is refused, and [`NetZoo::new`] says why
//! (the tape then trains it).
//!
//! The arithmetic is the tape's ([`crate::arch::Network`]): each model's mean cross-entropy (or,
//! for one real output, squared error) on its own batch, L2 weight decay added to the gradient, Adam as in PyTorch; max-pooling passes
//! the gradient to the first maximum of a window, as PyTorch does. Sums are taken in a fixed
//! order (the GEMM kernels' order, their dot products in 8 lanes, BatchNorm's statistics in
//! f64 lanes), so the bits are the same at every vector width.

use std::ops::Range;

use weightlab_kernels::activation;
use weightlab_manifest::TrainSpec;

use super::models::{Model, Models, Update};
use super::pool::{Pairs, max_pool_2x2};
use super::target::Target;
use crate::arch::Arch;
use crate::arch::sequential::{Act, Layer, Op};
use crate::data::{Split, Task};
use crate::simd::{Level, multiversion};

mod fused;

/// BatchNorm's ε and momentum: PyTorch's defaults (as the tape uses them).
const EPS: f64 = 1e-5;
const MOMENTUM: f32 = 0.1;

/// One layer as this engine computes it: the op, with the flat offsets of its tensors and
/// the sizes of one example before and after it.
#[derive(Debug, Clone)]
struct Step {
    node: Node,
    /// Values per example in and out.
    inp: usize,
    out: usize,
}

#[derive(Debug, Clone)]
enum Node {
    Linear {
        i: usize,
        o: usize,
        w: usize,
        b: Option<usize>,
    },
    Conv(Conv),
    Norm(Bn),
    /// A stride-1 convolution, the BatchNorm after it and, when `relu`, the ReLU after that,
    /// as one step ([`fused`]): the normalisation reads the convolution's product where the
    /// GEMM left it and its gradient goes where the convolution's backward reads it.
    ConvNorm {
        conv: Conv,
        bn: Bn,
        relu: bool,
    },
    Pool {
        max: bool,
        c: usize,
        h: usize,
        w: usize,
        k: usize,
        s: usize,
        oh: usize,
        ow: usize,
    },
    Global {
        c: usize,
        spatial: usize,
    },
    /// Dropout: each value kept with probability `keep` and scaled by 1/`keep`, else zeroed;
    /// `layer` tells its draws from other dropout layers' ([`Draws`]).
    Dropout {
        keep: f64,
        layer: u64,
    },
    /// LayerNorm over an example's `n` flat features: the flat offsets of γ and β.
    LayerNorm {
        n: usize,
        gamma: usize,
        beta: usize,
    },
    Act(Act),
    Residual {
        layers: Vec<Step>,
        shortcut: Option<Vec<Step>>,
    },
}

/// BatchNorm over `c` channels of `spatial` values each (1 for flat inputs): the flat offsets
/// of γ, β and the running mean and variance.
#[derive(Debug, Clone, Copy)]
struct Bn {
    c: usize,
    spatial: usize,
    gamma: usize,
    beta: usize,
    mean: usize,
    var: usize,
}

/// A convolution's sizes: `ci` → `co` channels, `k`×`k` kernel, stride `s`, padding `p`, an
/// `h`×`w` input (`ph`×`pw` padded) and an `oh`×`ow` output.
#[derive(Debug, Clone, Copy)]
struct Conv {
    ci: usize,
    co: usize,
    k: usize,
    s: usize,
    p: usize,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    weight: usize,
    bias: Option<usize>,
}

/// `layers` as steps, or why this engine cannot take one of them.
fn lower(layers: &[Layer]) -> Result<Vec<Step>, String> {
    let mut steps = Vec::with_capacity(layers.len());
    for layer in layers {
        let (inp, out): (usize, usize) = (layer.input.iter().product(), layer.output.iter().product());
        let at = layer.offsets();
        let image = || match layer.input[..] {
            [c, h, w] => Ok((c, h, w)),
            _ => Err(format!("layer {} `{}` on flat inputs", layer.prefix, layer.kind())),
        };
        let node = match &layer.op {
            &Op::Linear { inputs, out: o, bias } => Node::Linear { i: inputs, o, w: at[0], b: bias.then(|| at[1]) },
            &Op::Conv2d { inputs, out: co, kernel, stride, padding, bias } => {
                let (_, h, w) = image()?;
                let (oh, ow) = (layer.output[1], layer.output[2]);
                Node::Conv(Conv { ci: inputs, co, k: kernel, s: stride, p: padding, h, w, ph: h + 2 * padding, pw: w + 2 * padding, oh, ow, weight: at[0], bias: bias.then(|| at[1]) })
            }
            &Op::BatchNorm { features } => Node::Norm(Bn { c: features, spatial: inp / features, gamma: at[0], beta: at[1], mean: at[2], var: at[3] }),
            &Op::MaxPool { kernel, stride } | &Op::AvgPool { kernel, stride } => {
                let (c, h, w) = image()?;
                Node::Pool { max: matches!(layer.op, Op::MaxPool { .. }), c, h, w, k: kernel, s: stride, oh: layer.output[1], ow: layer.output[2] }
            }
            Op::GlobalAvgPool => {
                let (c, h, w) = image()?;
                Node::Global { c, spatial: h * w }
            }
            // Flattening a (C, H, W) example keeps its values in place; dropout with p = 0 is
            // the identity.
            Op::Flatten => continue,
            Op::Dropout { p: 0.0 } => continue,
            &Op::Dropout { p } => Node::Dropout { keep: 1.0 - p, layer: dropout_layer(&layer.prefix) },
            &Op::Act(a) => Node::Act(a),
            &Op::LayerNorm { features } if features == inp => Node::LayerNorm { n: features, gamma: at[0], beta: at[1] },
            Op::LayerNorm { .. } => return Err(format!("layer {} is a LayerNorm over part of an example", layer.prefix)),
            Op::Residual { layers, shortcut } => Node::Residual { layers: lower(layers)?, shortcut: shortcut.as_deref().map(lower).transpose()? },
        };
        steps.push(Step { node, inp, out });
    }
    Ok(fuse(steps))
}

/// A dropout layer's number in its draws: its place in the network (its state_dict prefix,
/// hashed), so two dropout layers never share a mask and a layer's draws do not move when
/// others are added elsewhere.
fn dropout_layer(prefix: &str) -> u64 {
    prefix.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Where a model's dropout masks come from: `seed`'s stream of uniforms (`weightlab_kernels::
/// random`, keyed apart from its initialisation), step `t`. Each model draws its own, so its
/// masks depend neither on the thread count nor on the other models trained beside it.
#[derive(Debug, Clone, Copy)]
struct Draws {
    seed: u64,
    t: u64,
}

impl Draws {
    /// The mask of dropout layer `layer` for a batch of `n` values: 1/`keep` where a value is
    /// kept (a uniform below `keep`, as the tape draws it), 0 elsewhere.
    fn mask(self, layer: u64, keep: f64, mask: &mut [f32]) {
        // Values `t·2³²..` of the layer's stream: a step never draws past 2³² of them.
        weightlab_kernels::random::uniform(self.seed ^ DROPOUT_STREAM ^ layer, self.t << 32, mask);
        let scale = (1.0 / keep) as f32;
        for v in mask.iter_mut() {
            *v = if f64::from(*v) < keep { scale } else { 0.0 };
        }
    }
}

/// Keys dropout's streams apart from everything else a model's seed draws.
const DROPOUT_STREAM: u64 = 0xD50F_0A7E_D00D_0002;

/// `steps` with every stride-1 convolution followed by a BatchNorm over its channels (and a
/// ReLU) made one [`Node::ConvNorm`] — not a BatchNorm over the flattened features.
fn fuse(steps: Vec<Step>) -> Vec<Step> {
    let mut fused: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        match (fused.last_mut(), &step.node) {
            (Some(Step { node: Node::Conv(conv), inp, .. }), &Node::Norm(bn)) if conv.s == 1 && bn.c == conv.co && bn.spatial == conv.oh * conv.ow => {
                let (conv, inp) = (*conv, *inp);
                *fused.last_mut().expect("matched above") = Step { node: Node::ConvNorm { conv, bn, relu: false }, inp, out: step.out };
            }
            (Some(Step { node: Node::ConvNorm { relu, .. }, .. }), Node::Act(Act::Relu)) if !*relu => *relu = true,
            _ => fused.push(step),
        }
    }
    fused
}

/// The BatchNorm of a step, if it has one.
fn bn_of(node: &Node) -> Option<&Bn> {
    match node {
        Node::Norm(bn) | Node::ConvNorm { bn, .. } => Some(bn),
        _ => None,
    }
}

/// The flat ranges of every BatchNorm buffer (running mean and variance) in `steps`.
fn buffers(steps: &[Step], out: &mut Vec<Range<usize>>) {
    for s in steps {
        match &s.node {
            Node::Residual { layers, shortcut } => {
                buffers(layers, out);
                if let Some(side) = shortcut {
                    buffers(side, out);
                }
            }
            node => {
                if let Some(&Bn { c, mean, var, .. }) = bn_of(node) {
                    out.extend([mean..mean + c, var..var + c]);
                }
            }
        }
    }
}

/// The steps of `arch`, its inputs per example and its outputs, or why this engine does not
/// take it.
fn plan(arch: &Arch, train: &Split, task: Task) -> Result<(Vec<Step>, usize, usize), String> {
    let Arch::Sequential(net) = arch else { return Err("not a declared network".into()) };
    let outputs = match task {
        Task::Classification { classes } => classes,
        Task::Regression => 1,
    };
    let steps = lower(&net.layers)?;
    let features: usize = net.input.iter().product();
    if train.x.len() != train.len() * features || steps.last().map(|s| s.out) != Some(outputs) {
        return Err("the data's shapes differ from the network's".into());
    }
    Ok((steps, features, outputs))
}

/// Why the declared network `arch` trains on the autodiff tape rather than this engine, on
/// the CPU; `None` when this engine (or the MLP engine, for a declared MLP) takes it.
pub fn tape_reason(arch: &Arch, train: &Split, task: Task) -> Option<String> {
    match arch {
        Arch::Sequential(net) if net.as_mlp().is_none() => plan(arch, train, task).err(),
        _ => None,
    }
}

/// K declared networks in training, and the training split they learn from.
pub(super) struct NetZoo<'a> {
    pub models: Models,
    steps: Vec<Step>,
    features: usize,
    outputs: usize,
    /// The training split's examples, borrowed, and what the models learn from them.
    x: &'a [f32],
    target: Target,
    /// Each thread's buffers, kept between steps (sized for batches of `batch`).
    works: Vec<Work>,
    batch: usize,
    /// Each model's seed, for its dropout masks, and the steps taken.
    seeds: Vec<u64>,
    t: u64,
}

impl<'a> NetZoo<'a> {
    /// The declared networks of `arch` with stacked flat parameters `flat` (K × P), learning
    /// `train`; `Err` says why this engine does not take them (another architecture, a layer
    /// it lacks, targets that do not fit its outputs).
    pub fn new(arch: &Arch, recipe: &TrainSpec, flat: &[f32], seeds: &[u64], train: &'a Split, task: Task) -> Result<Self, String> {
        let k = seeds.len();
        let (steps, features, outputs) = plan(arch, train, task)?;
        let target = Target::of(train, task, outputs).ok_or("the data's targets differ from the network's outputs")?;
        let layout = arch.layout();
        let mut models = Models::new(recipe, flat, k, layout.len());
        // The running statistics follow the batches, never a gradient (or weight decay).
        let mut fixed = Vec::new();
        buffers(&steps, &mut fixed);
        fixed.sort_by_key(|r| r.start);
        let mut trains = Vec::new();
        let mut from = 0;
        for r in fixed {
            if r.start > from {
                trains.push(from..r.start);
            }
            from = r.end;
        }
        if from < layout.len() {
            trains.push(from..layout.len());
        }
        models.freeze(trains);
        Ok(NetZoo { models, steps, features, outputs, x: &train.x, target, works: Vec::new(), batch: 0, seeds: seeds.to_vec(), t: 0 })
    }

    /// One optimiser step on the batch `indices` (K·B example indices, model-major).
    pub fn step(&mut self, indices: &[i64]) {
        let b = indices.len() / self.models.k().max(1);
        let update = self.models.updates(1)[0];
        if self.batch != b {
            self.works.clear();
            self.batch = b;
        }
        self.t += 1;
        let NetZoo { models, steps, features, outputs, x, target, works, seeds, t, .. } = self;
        let t = *t;
        let (p, features, outputs, target) = (models.p(), *features, *outputs, &*target);
        models.each_with(
            works,
            || Work::new(steps, b, p),
            |work, j, mut model| {
                let batch = &indices[j * b..(j + 1) * b];
                let mut input = std::mem::take(&mut work.input);
                for (row, &i) in input.chunks_exact_mut(features).zip(batch) {
                    row.copy_from_slice(&x[i as usize * features..(i as usize + 1) * features]);
                }
                train_model(steps, work, &mut model, &input, (target, batch), outputs, &update, Draws { seed: seeds[j], t });
                work.input = input;
            },
        );
    }
}

/// What one step of one layer keeps for the backward pass.
#[derive(Default)]
struct Trace {
    /// Its output, B × out.
    out: Vec<f32>,
    /// The gradient with respect to its input, B × inp.
    din: Vec<f32>,
    /// Convolutions (fused or not): the padded input; BatchNorm alone: the normalised input;
    /// residual blocks: the inner branch's input gradient.
    aux: Vec<f32>,
    /// BatchNorm (alone or fused): per channel mean, biased variance and 1/√(var + ε).
    stat: Vec<f32>,
    /// Max-pooling: where each window's maximum is in its input plane.
    arg: Vec<u32>,
    /// 2 × 2 max-pooling: its two passes' intermediate winners ([`Pairs`]).
    pairs: Pairs,
    /// Convolutions at stride 1: the output of the whole batch at the padded layout
    /// (co × columns), the output gradient at that layout after `lead` zeros, the padded input
    /// gradient (ci × columns), the weights packed for the GEMM kernel, and dW of one call.
    /// At other strides `dpad` is one example's padded input gradient. Linear layers: doutᵀ
    /// (`wide`), rows padded to whole tiles (`dext`), the products' dW and input gradient
    /// (`dw`, `dpad`), see `linear_backward`.
    wide: Vec<f32>,
    dext: Vec<f32>,
    dpad: Vec<f32>,
    panels: Vec<f32>,
    dw: Vec<f32>,
    inner: Vec<Trace>,
    side: Vec<Trace>,
}

fn traces(steps: &[Step], b: usize) -> Vec<Trace> {
    steps
        .iter()
        .map(|s| {
            let mut t = Trace { out: vec![0.0; b * s.out], din: vec![0.0; b * s.inp], ..Trace::default() };
            match &s.node {
                Node::Conv(c) | Node::ConvNorm { conv: c, .. } if c.s == 1 => {
                    if let Node::ConvNorm { bn, .. } = &s.node {
                        t.stat = vec![0.0; 3 * bn.c];
                    }
                    let (nc, row) = c.columns(b);
                    t.aux = vec![0.0; c.ci * row];
                    t.wide = vec![0.0; c.co * nc];
                    t.dext = vec![0.0; c.co * row];
                    t.dpad = vec![0.0; c.ci * nc];
                    t.dw = vec![0.0; c.co * c.ci * c.k * c.k];
                }
                Node::Conv(c) => {
                    t.aux = vec![0.0; b * c.ci * c.ph * c.pw];
                    t.dpad = vec![0.0; c.ci * c.ph * c.pw];
                }
                Node::Norm(bn) => {
                    t.aux = vec![0.0; b * s.inp];
                    t.stat = vec![0.0; 3 * bn.c];
                }
                Node::Pool { .. } => t.arg = vec![0; b * s.out],
                Node::LayerNorm { .. } => {
                    t.aux = vec![0.0; b * s.inp];
                    t.stat = vec![0.0; b];
                }
                Node::Dropout { .. } => t.aux = vec![0.0; b * s.inp],
                Node::Residual { layers, shortcut } => {
                    t.aux = vec![0.0; b * s.inp];
                    t.inner = traces(layers, b);
                    t.side = shortcut.as_deref().map(|side| traces(side, b)).unwrap_or_default();
                }
                _ => {}
            }
            t
        })
        .collect()
}

/// One thread's buffers.
struct Work {
    grad: Vec<f32>,
    input: Vec<f32>,
    traces: Vec<Trace>,
    dlogits: Vec<f32>,
}

impl Work {
    fn new(steps: &[Step], b: usize, p: usize) -> Self {
        let inp = steps.first().map_or(0, |s| s.inp);
        let out = steps.last().map_or(0, |s| s.out);
        Work { grad: vec![0.0; p], input: vec![0.0; b * inp], traces: traces(steps, b), dlogits: vec![0.0; b * out] }
    }
}

/// One model's step: the gradient of its mean loss over the batch `x` (the training examples
/// `batch` of `target`, `outputs` per example), the update, then the BatchNorm buffers moved
/// towards the batch statistics.
#[allow(clippy::too_many_arguments)]
fn train_model(steps: &[Step], work: &mut Work, model: &mut Model, x: &[f32], (target, batch): (&Target, &[i64]), outputs: usize, update: &Update, draws: Draws) {
    let b = batch.len();
    work.grad.iter_mut().for_each(|g| *g = 0.0);
    forward(steps, &mut work.traces, x, b, model.weights, draws);
    let logits = work.traces.last().map_or(x, |t| &t.out[..]);
    let scale = 1.0 / b as f32;
    work.dlogits.copy_from_slice(logits);
    for (d, &i) in work.dlogits.chunks_exact_mut(outputs).zip(batch) {
        target.gradient(i as usize, d, 1, outputs, scale);
    }
    let dlogits = std::mem::take(&mut work.dlogits);
    backward(steps, &mut work.traces, x, &dlogits, b, model.weights, &mut work.grad, None);
    work.dlogits = dlogits;
    model.update(&work.grad, update);
    fold_running(steps, &work.traces, model.weights, b);
}

/// Moves every BatchNorm's running mean and variance (unbiased) towards the batch's.
fn fold_running(steps: &[Step], traces: &[Trace], w: &mut [f32], b: usize) {
    for (s, t) in steps.iter().zip(traces) {
        match &s.node {
            Node::Residual { layers, shortcut } => {
                fold_running(layers, &t.inner, w, b);
                if let Some(side) = shortcut {
                    fold_running(side, &t.side, w, b);
                }
            }
            node => {
                let Some(&Bn { c, spatial, mean, var, .. }) = bn_of(node) else { continue };
                let n = b * spatial;
                let unbiased = (n as f64 / (n.max(2) - 1) as f64) as f32;
                for ch in 0..c {
                    w[mean + ch] = w[mean + ch] * (1.0 - MOMENTUM) + t.stat[ch] * MOMENTUM;
                    w[var + ch] = w[var + ch] * (1.0 - MOMENTUM) + t.stat[c + ch] * unbiased * MOMENTUM;
                }
            }
        }
    }
}

/// The batch `x` (B × the first step's inputs) through `steps`; each step's output stays in its
/// trace.
fn forward(steps: &[Step], traces: &mut [Trace], x: &[f32], b: usize, w: &[f32], draws: Draws) {
    for (i, step) in steps.iter().enumerate() {
        let (before, rest) = traces.split_at_mut(i);
        let input = before.last().map_or(x, |t| &t.out[..]);
        step_forward(step, &mut rest[0], input, b, w, draws);
    }
}

fn step_forward(step: &Step, t: &mut Trace, x: &[f32], b: usize, w: &[f32], draws: Draws) {
    let Trace { out, aux, stat, arg, pairs, inner, side, wide, panels, .. } = t;
    match &step.node {
        &Node::Linear { i, o, w: at, b: bias } => linear_forward(&w[at..at + o * i], bias.map(|at| &w[at..at + o]), x, i, out),
        Node::Conv(c) if c.s == 1 => {
            c.product(c.weights(w), x, b, aux, wide, panels);
            c.copy_out(wide, c.bias.map(|at| &w[at..at + c.co]), b, out);
        }
        Node::ConvNorm { conv, bn, relu } => {
            conv.product(conv.weights(w), x, b, aux, wide, panels);
            fused::forward(conv, bn, *relu, w, b, wide, out, stat);
        }
        Node::Conv(c) => {
            for ((x, pad), out) in x.chunks_exact(step.inp).zip(aux.chunks_exact_mut(c.ci * c.ph * c.pw)).zip(out.chunks_exact_mut(step.out)) {
                c.pad(x, pad);
                conv_forward(c, &w[c.weight..c.weight + c.co * c.ci * c.k * c.k], c.bias.map(|at| &w[at..at + c.co]), pad, out);
            }
        }
        &Node::Norm(Bn { c, spatial, gamma, beta, .. }) => norm_forward(c, spatial, &w[gamma..gamma + c], &w[beta..beta + c], x, out, aux, stat),
        &Node::LayerNorm { n, gamma, beta } => layer_norm_forward(n, &w[gamma..gamma + n], &w[beta..beta + n], x, out, aux, stat),
        &Node::Dropout { keep, layer } => {
            draws.mask(layer, keep, aux);
            out.iter_mut().zip(x).zip(aux.iter()).for_each(|((o, &x), &m)| *o = x * m);
        }
        // The whole batch's maps at once (each example's output is its maps' windows in order).
        &Node::Pool { max: true, c, h, w: width, k: 2, s: 2, .. } if width.is_multiple_of(2) => max_pool_pairs(x, b * c, h, width, pairs, out, arg),
        &Node::Pool { max, c, h, w: width, k, s, oh, ow } => {
            let mut run = vec![0.0f32; oh * ow];
            let corners: Vec<u32> = (0..oh * ow).map(|o| ((o / ow) * s * width + (o % ow) * s) as u32).collect();
            for ((x, out), arg) in x.chunks_exact(step.inp).zip(out.chunks_exact_mut(step.out)).zip(arg.chunks_exact_mut(step.out)) {
                for ch in 0..c {
                    let plane = &x[ch * h * width..(ch + 1) * h * width];
                    let (out, arg) = (&mut out[ch * oh * ow..(ch + 1) * oh * ow], &mut arg[ch * oh * ow..(ch + 1) * oh * ow]);
                    pool_plane(plane, width, k, &corners, max, out, arg, &mut run);
                }
            }
        }
        &Node::Global { c, spatial } => {
            for (x, out) in x.chunks_exact(step.inp).zip(out.chunks_exact_mut(c)) {
                for (o, plane) in out.iter_mut().zip(x.chunks_exact(spatial)) {
                    *o = plane.iter().sum::<f32>() / spatial as f32;
                }
            }
        }
        &Node::Act(a) => act_forward(a, x, out),
        Node::Residual { layers, shortcut } => {
            forward(layers, inner, x, b, w, draws);
            let a = inner.last().map_or(x, |t| &t.out[..]);
            let side_out = match shortcut {
                Some(s) => {
                    forward(s, side, x, b, w, draws);
                    side.last().map_or(x, |t| &t.out[..])
                }
                None => x,
            };
            for ((o, &a), &s) in out.iter_mut().zip(a).zip(side_out) {
                *o = a + s;
            }
        }
    }
}

multiversion! {
    /// 2 × 2 max-pooling with stride 2 of `planes` maps of even width ([`max_pool_2x2`]).
    #[allow(clippy::too_many_arguments)]
    fn max_pool_pairs(x: &[f32], planes: usize, height: usize, width: usize, pairs: &mut Pairs, best: &mut [f32], at: &mut [u32]) {
        max_pool_2x2(x, planes, height, width, pairs, best, at)
    }
}

multiversion! {
    /// One plane's pooling windows (`width` wide, `k` × `k` windows whose top-left corners are
    /// at `corners`), branch-free: for each tap, its value in every window is gathered into one run and
    /// compared as vector lanes — the maximum and where it is (the first maximum, NaN winning,
    /// as PyTorch picks) or the mean.
    #[allow(clippy::too_many_arguments)]
    fn pool_plane(plane: &[f32], width: usize, k: usize, corners: &[u32], max: bool, best: &mut [f32], at: &mut [u32], run: &mut [f32]) {
        let n = best.len();
        if max {
            best.fill(f32::NEG_INFINITY);
            at.copy_from_slice(corners);
        } else {
            best.fill(0.0);
        }
        for ky in 0..k {
            for kx in 0..k {
                let shift = (ky * width + kx) as u32;
                for (r, &c) in run[..n].iter_mut().zip(corners) {
                    *r = plane[(c + shift) as usize];
                }
                if max {
                    for (((b, a), &v), &c) in best.iter_mut().zip(at.iter_mut()).zip(&run[..n]).zip(corners) {
                        let take = v > *b || v.is_nan();
                        *b = if take { v } else { *b };
                        *a = if take { c + shift } else { *a };
                    }
                } else {
                    for (b, &v) in best.iter_mut().zip(&run[..n]) {
                        *b += v;
                    }
                }
            }
        }
        if !max {
            let count = (k * k) as f32;
            best.iter_mut().for_each(|v| *v /= count);
        }
    }
}

/// Back-propagates `dout` (B × the last step's outputs) through `steps`, adding parameter
/// gradients into `grad`; the gradient with respect to `x` goes to `din` when asked for.
#[allow(clippy::too_many_arguments)]
fn backward(steps: &[Step], traces: &mut [Trace], x: &[f32], dout: &[f32], b: usize, w: &[f32], grad: &mut [f32], din: Option<&mut [f32]>) {
    let mut din = din;
    for i in (0..steps.len()).rev() {
        let (before, rest) = traces.split_at_mut(i);
        let (here, after) = rest.split_at_mut(1);
        let input = before.last().map_or(x, |t| &t.out[..]);
        let d = after.first().map_or(dout, |t| &t.din[..]);
        let t = &mut here[0];
        if i == 0 {
            step_backward(&steps[i], t, input, d, b, w, grad, din.as_deref_mut());
        } else {
            let mut own = std::mem::take(&mut t.din);
            step_backward(&steps[i], t, input, d, b, w, grad, Some(&mut own));
            t.din = own;
        }
    }
    if let (true, Some(din)) = (steps.is_empty(), din) {
        din.copy_from_slice(dout);
    }
}

#[allow(clippy::too_many_arguments)]
fn step_backward(step: &Step, t: &mut Trace, x: &[f32], dout: &[f32], b: usize, w: &[f32], grad: &mut [f32], din: Option<&mut [f32]>) {
    match &step.node {
        &Node::Linear { i, o, w: at, b: bias } => {
            let (dw, db) = two(grad, at..at + o * i, bias.map(|at| at..at + o));
            linear_backward(&w[at..at + o * i], x, dout, i, o, dw, db, din, t);
        }
        Node::Conv(c) => {
            let (dw, db) = two(grad, c.weight..c.weight + c.co * c.ci * c.k * c.k, c.bias.map(|at| at..at + c.co));
            let weights = c.weights(w);
            if let Some(db) = db {
                for dout in dout.chunks_exact(step.out) {
                    for (g, d) in db.iter_mut().zip(dout.chunks_exact(c.oh * c.ow)) {
                        *g += d.iter().sum::<f32>();
                    }
                }
            }
            if c.s == 1 {
                c.fill_dext(dout, b, &mut t.dext);
                c.backward_batch(weights, b, t, dw, din);
                return;
            }
            let Trace { aux, dpad, .. } = t;
            let plane = c.ci * c.ph * c.pw;
            let mut din = din;
            for (n, (pad, dout)) in aux.chunks_exact(plane).zip(dout.chunks_exact(step.out)).enumerate() {
                match din.as_deref_mut() {
                    Some(din) => {
                        dpad.fill(0.0);
                        conv_backward(c, weights, pad, dout, dw, Some(dpad));
                        c.unpad(dpad, &mut din[n * step.inp..(n + 1) * step.inp]);
                    }
                    None => conv_backward(c, weights, pad, dout, dw, None),
                }
            }
        }
        Node::ConvNorm { conv: c, bn, relu } => {
            let (dg, dbeta) = two(grad, bn.gamma..bn.gamma + bn.c, Some(bn.beta..bn.beta + bn.c));
            fused::backward(c, bn, *relu, w, b, dout, t, dg, dbeta.expect("BatchNorm has a bias"));
            let (dw, db) = two(grad, c.weight..c.weight + c.co * c.ci * c.k * c.k, c.bias.map(|at| at..at + c.co));
            if let Some(db) = db {
                c.bias_grad(&t.dext, b, db);
            }
            c.backward_batch(c.weights(w), b, t, dw, din);
        }
        &Node::Norm(Bn { c, spatial, gamma, beta, .. }) => {
            let (dg, db) = two(grad, gamma..gamma + c, Some(beta..beta + c));
            norm_backward(c, spatial, &w[gamma..gamma + c], &t.aux, &t.stat, dout, dg, db.expect("BatchNorm has a bias"), din);
        }
        Node::Dropout { .. } => {
            if let Some(din) = din {
                din.iter_mut().zip(dout).zip(&t.aux).for_each(|((o, &d), &m)| *o = d * m);
            }
        }
        &Node::LayerNorm { n, gamma, beta } => {
            let (dg, db) = two(grad, gamma..gamma + n, Some(beta..beta + n));
            layer_norm_backward(n, &w[gamma..gamma + n], &t.aux, &t.stat, dout, dg, db.expect("LayerNorm has a bias"), din);
        }
        &Node::Pool { max, c, h, w: width, k, s, oh, ow } => {
            let Some(din) = din else { return };
            din.iter_mut().for_each(|v| *v = 0.0);
            for ((din, dout), arg) in din.chunks_exact_mut(step.inp).zip(dout.chunks_exact(step.out)).zip(t.arg.chunks(step.out.max(1))) {
                for ch in 0..c {
                    let plane = &mut din[ch * h * width..(ch + 1) * h * width];
                    for o in 0..oh * ow {
                        let d = dout[ch * oh * ow + o];
                        if max {
                            plane[arg[ch * oh * ow + o] as usize] += d;
                        } else {
                            let (oy, ox) = (o / ow, o % ow);
                            let share = d / (k * k) as f32;
                            for ky in 0..k {
                                for kx in 0..k {
                                    plane[(oy * s + ky) * width + ox * s + kx] += share;
                                }
                            }
                        }
                    }
                }
            }
        }
        &Node::Global { c, spatial } => {
            let Some(din) = din else { return };
            for (din, dout) in din.chunks_exact_mut(step.inp).zip(dout.chunks_exact(c)) {
                for (plane, &d) in din.chunks_exact_mut(spatial).zip(dout) {
                    plane.fill(d / spatial as f32);
                }
            }
        }
        &Node::Act(a) => {
            if let Some(din) = din {
                act_backward(a, x, &t.out, dout, din);
            }
        }
        Node::Residual { layers, shortcut } => {
            let Trace { aux, inner, side, .. } = t;
            backward(layers, inner, x, dout, b, w, grad, Some(aux));
            match shortcut {
                Some(s) => {
                    let mut other = vec![0.0; aux.len()];
                    backward(s, side, x, dout, b, w, grad, Some(&mut other));
                    if let Some(din) = din {
                        for ((d, &a), &o) in din.iter_mut().zip(aux.iter()).zip(&other) {
                            *d = a + o;
                        }
                    }
                }
                None => {
                    if let Some(din) = din {
                        for ((d, &a), &o) in din.iter_mut().zip(aux.iter()).zip(dout) {
                            *d = a + o;
                        }
                    }
                }
            }
        }
    }
}

/// The disjoint parts `a` and `b` of a model's gradient (`b`, when there, after `a`).
fn two(grad: &mut [f32], a: Range<usize>, b: Option<Range<usize>>) -> (&mut [f32], Option<&mut [f32]>) {
    match b {
        Some(b) => {
            let (low, high) = grad.split_at_mut(b.start);
            (&mut low[a], Some(&mut high[..b.len()]))
        }
        None => (&mut grad[a], None),
    }
}

impl Conv {
    /// At stride 1, the columns of one row of an example in the batch's padded layout: the
    /// row's values after `p` zeros, the zeros on the right being the next row's on the left
    /// (a tap reaches at most p − 1 columns into the next row), and room for every output.
    fn bw(&self) -> usize {
        (self.w + self.p).max(self.ow)
    }

    /// At stride 1, the values of one example in the batch's padded layout: `p` rows of zeros
    /// above its rows, the zeros below being the next example's above them, each row
    /// [`Conv::bw`] long (measured: with the padding on all sides of every plane, a ResNet's
    /// 7 × 7 maps spent 81 columns of the GEMMs on 49 outputs; now 64).
    fn plane(&self) -> usize {
        (self.h + self.p).max(self.oh) * self.bw()
    }

    /// The largest offset of a kernel tap in the padded layout.
    fn lead(&self) -> usize {
        (self.k - 1) * self.bw() + self.k - 1
    }

    /// At stride 1, for a batch of `b`: the GEMMs' columns (the batch's padded planes end to
    /// end, rounded up to the kernel's tile) and the length of one channel's row in the padded
    /// input (the columns plus room for the farthest tap).
    fn columns(&self, b: usize) -> (usize, usize) {
        let nc = crate::gemm::whole_tiles(b * self.plane());
        (nc, nc + self.lead())
    }

    /// This convolution's weights among a model's parameters `w`.
    fn weights<'w>(&self, w: &'w [f32]) -> &'w [f32] {
        &w[self.weight..self.weight + self.co * self.ci * self.k * self.k]
    }

    /// A stride-1 convolution of the whole batch `x` (B × ci × h × w) as one GEMM without
    /// unfolding, into `wide` (co × columns): each channel's padded planes lie end to end in a
    /// row of `pad` ([`Conv::plane`], [`Conv::bw`]), and the input row of tap (ic, ky, kx) is
    /// that row shifted by ky·bw + kx, so wide = W · rows reads the image where it is. Output
    /// (n, oc, y, x) lands at `wide[oc·columns + n·plane + y·bw + x]`; the positions past a
    /// plane's `ow` columns or `oh` rows are computed and never read.
    #[allow(clippy::too_many_arguments)]
    fn product(&self, weight: &[f32], x: &[f32], b: usize, pad: &mut [f32], wide: &mut [f32], panels: &mut Vec<f32>) {
        let (plane, (nc, row)) = (self.plane(), self.columns(b));
        // The padding and the room past the planes stay zero from the allocation.
        for (n, x) in x.chunks_exact(self.ci * self.h * self.w).enumerate() {
            for (ic, src) in x.chunks_exact(self.h * self.w).enumerate() {
                let dst = &mut pad[ic * row + n * plane..];
                for (y, line) in src.chunks_exact(self.w).enumerate() {
                    dst[(y + self.p) * self.bw() + self.p..][..self.w].copy_from_slice(line);
                }
            }
        }
        let taps = self.ci * self.k * self.k;
        crate::gemm::matmul_rows_of_matrix(weight, taps, &self.tap_rows(pad, row, nc), nc, wide, panels);
    }

    /// The valid outputs of [`Conv::product`] plus the bias, into `out` (B × co × oh × ow).
    fn copy_out(&self, wide: &[f32], bias: Option<&[f32]>, b: usize, out: &mut [f32]) {
        let (plane, (nc, _)) = (self.plane(), self.columns(b));
        let per = self.co * self.oh * self.ow;
        for (n, out) in out.chunks_exact_mut(per).enumerate() {
            for (oc, dst) in out.chunks_exact_mut(self.oh * self.ow).enumerate() {
                let bias = bias.map_or(0.0, |b| b[oc]);
                for (y, line) in dst.chunks_exact_mut(self.ow).enumerate() {
                    for (o, &v) in line.iter_mut().zip(&wide[oc * nc + n * plane + y * self.bw()..][..self.ow]) {
                        *o = v + bias;
                    }
                }
            }
        }
    }

    /// The row each tap (ic, ky, kx) reads, `len` long: channel ic's row of `src` (rows
    /// `stride` apart) shifted by the tap's offset ky·pw + kx.
    fn tap_rows<'a>(&self, src: &'a [f32], stride: usize, len: usize) -> Vec<&'a [f32]> {
        let mut rows = Vec::with_capacity(self.ci * self.k * self.k);
        for ic in 0..self.ci {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    rows.push(&src[ic * stride + ky * self.bw() + kx..][..len]);
                }
            }
        }
        rows
    }

    /// The output gradient `dout` (B × co × oh × ow) where [`Conv::backward_batch`] reads it:
    /// at the padded layout, `lead` zeros into each channel's row of `dext`. The positions
    /// outside the valid outputs stay zero from the allocation.
    fn fill_dext(&self, dout: &[f32], b: usize, dext: &mut [f32]) {
        let (plane, (_, row), lead) = (self.plane(), self.columns(b), self.lead());
        for (n, d) in dout.chunks_exact(self.co * self.oh * self.ow).enumerate() {
            for (oc, src) in d.chunks_exact(self.oh * self.ow).enumerate() {
                for (y, line) in src.chunks_exact(self.ow).enumerate() {
                    dext[oc * row + lead + n * plane + y * self.bw()..][..self.ow].copy_from_slice(line);
                }
            }
        }
    }

    /// The bias gradient from the output gradient in `dext` ([`Conv::fill_dext`]): per example
    /// and channel, the plane's sum in reading order, added to `db`.
    fn bias_grad(&self, dext: &[f32], b: usize, db: &mut [f32]) {
        let (plane, (_, row), lead) = (self.plane(), self.columns(b), self.lead());
        for n in 0..b {
            for (oc, g) in db.iter_mut().enumerate() {
                let at = oc * row + lead + n * plane;
                *g += (0..self.oh).flat_map(|y| &dext[at + y * self.bw()..][..self.ow]).sum::<f32>();
            }
        }
    }

    /// The gradients of [`Conv::product`] from the output gradient in the trace's `dext`
    /// ([`Conv::fill_dext`]): dW += dout · rowsᵀ (one product of long dot products over the
    /// batch's planes) and, when asked, the padded input gradient as Wᵀ-taps over the output
    /// gradient shifted the other way (rows of `dext` start `lead` zeros early), then the
    /// planes' insides copied out (the padding, shared by neighbouring rows and examples,
    /// gathers gradients no one reads).
    fn backward_batch(&self, weight: &[f32], b: usize, t: &mut Trace, dw: &mut [f32], din: Option<&mut [f32]>) {
        let (plane, (nc, row), lead) = (self.plane(), self.columns(b), self.lead());
        let Trace { aux: pad, dext, dpad, panels, dw: part, .. } = t;
        let span = b * plane;
        let taps = self.ci * self.k * self.k;
        let outputs: Vec<&[f32]> = (0..self.co).map(|oc| &dext[oc * row + lead..][..span]).collect();
        crate::gemm::matmul_nt_rows(&outputs, &self.tap_rows(pad, row, span), span, part, taps);
        for (g, &v) in dw.iter_mut().zip(part.iter()) {
            *g += v;
        }
        let Some(din) = din else { return };
        // dpad[ic][q] = Σ_{oc, ky, kx} W[oc, ic, ky, kx] · dout[oc][q − ky·pw − kx].
        let mut flipped = vec![0.0f32; self.ci * self.co * self.k * self.k];
        for ic in 0..self.ci {
            for oc in 0..self.co {
                for tap in 0..self.k * self.k {
                    flipped[ic * self.co * self.k * self.k + oc * self.k * self.k + tap] = weight[(oc * self.ci + ic) * self.k * self.k + tap];
                }
            }
        }
        let mut shifted = Vec::with_capacity(self.co * self.k * self.k);
        for oc in 0..self.co {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    shifted.push(&dext[oc * row + lead - (ky * self.bw() + kx)..][..nc]);
                }
            }
        }
        crate::gemm::matmul_rows_of_matrix(&flipped, self.co * self.k * self.k, &shifted, nc, dpad, panels);
        for (n, din) in din.chunks_exact_mut(self.ci * self.h * self.w).enumerate() {
            for (ic, dst) in din.chunks_exact_mut(self.h * self.w).enumerate() {
                for (y, line) in dst.chunks_exact_mut(self.w).enumerate() {
                    line.copy_from_slice(&dpad[ic * nc + n * plane + (y + self.p) * self.bw() + self.p..][..self.w]);
                }
            }
        }
    }

    /// `x` (ci × h × w) into `pad` (ci × ph × pw) with zeros around.
    fn pad(&self, x: &[f32], pad: &mut [f32]) {
        if self.p == 0 {
            pad.copy_from_slice(x);
            return;
        }
        pad.fill(0.0);
        for (src, dst) in x.chunks_exact(self.h * self.w).zip(pad.chunks_exact_mut(self.ph * self.pw)) {
            for (row, out) in src.chunks_exact(self.w).zip(dst.chunks_exact_mut(self.pw).skip(self.p)) {
                out[self.p..self.p + self.w].copy_from_slice(row);
            }
        }
    }

    /// The inside of the padded gradient `dpad` into `din` (ci × h × w).
    fn unpad(&self, dpad: &[f32], din: &mut [f32]) {
        for (src, dst) in dpad.chunks_exact(self.ph * self.pw).zip(din.chunks_exact_mut(self.h * self.w)) {
            for (row, out) in src.chunks_exact(self.pw).skip(self.p).zip(dst.chunks_exact_mut(self.w)) {
                out.copy_from_slice(&row[self.p..self.p + self.w]);
            }
        }
    }
}

/// y = x·Wᵀ + b for a batch `x` (B × i) and W (o × i): every output one dot product of the
/// register-tiled kernel ([`crate::gemm::matmul_nt`]: the batch's rows against W's, several
/// side by side; one example at a time, each dot product had waited on its own additions).
fn linear_forward(weight: &[f32], bias: Option<&[f32]>, x: &[f32], i: usize, out: &mut [f32]) {
    let o = weight.len() / i.max(1);
    let rows: Vec<&[f32]> = weight.chunks_exact(i.max(1)).collect();
    crate::gemm::matmul_nt(x, &rows, i, out, o);
    if let Some(bias) = bias {
        for y in out.chunks_exact_mut(o.max(1)) {
            add_into(y, bias);
        }
    }
}

multiversion! {
    /// `dst += src`, element by element.
    fn add_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

/// A linear layer's gradients: dW += doutᵀ·x, db += Σ dout, din = dout·W — both products in the
/// register-tiled kernel ([`crate::gemm::matmul_rows_of_matrix`], a panel of rows against 16
/// columns in registers), where one rank-one update of dW per example had streamed the whole
/// of dW through the cache B times. Rows of x and W narrower than a whole number of tiles are
/// copied zero-padded into the trace's buffers, and only the real columns are kept.
#[allow(clippy::too_many_arguments)]
fn linear_backward(weight: &[f32], x: &[f32], dout: &[f32], i: usize, o: usize, dw: &mut [f32], db: Option<&mut [f32]>, din: Option<&mut [f32]>, t: &mut Trace) {
    let b = dout.len() / o.max(1);
    let wide = crate::gemm::whole_tiles(i);
    let Trace { wide: dt, dext: padded, dw: part, dpad: out, panels, .. } = t;
    // dW: doutᵀ (o × B) against the batch's rows of x.
    dt.resize(o * b, 0.0);
    super::dense::transpose(dout, o, dt, b, b, o);
    part.resize(o * wide, 0.0);
    crate::gemm::matmul_rows_of_matrix(dt, b, &rows_of(x, i, wide, padded), wide, part, panels);
    for (g, p) in dw.chunks_exact_mut(i.max(1)).zip(part.chunks_exact(wide.max(1))) {
        add_into(g, &p[..i]);
    }
    if let Some(db) = db {
        for d in dout.chunks_exact(o.max(1)) {
            add_into(db, d);
        }
    }
    // dx: dout (B × o) against W's rows.
    if let Some(din) = din {
        out.resize(b * wide, 0.0);
        crate::gemm::matmul_rows_of_matrix(dout, o, &rows_of(weight, i, wide, padded), wide, out, panels);
        for (d, p) in din.chunks_exact_mut(i.max(1)).zip(out.chunks_exact(wide.max(1))) {
            d.copy_from_slice(&p[..i]);
        }
    }
}

/// The rows of `m` (row-major, `cols` wide) as the GEMM kernel reads them, each at least `wide`
/// long: in place when `cols` is, else copied zero-padded into `buffer`.
fn rows_of<'a>(m: &'a [f32], cols: usize, wide: usize, buffer: &'a mut Vec<f32>) -> Vec<&'a [f32]> {
    if cols == wide {
        return m.chunks_exact(cols.max(1)).collect();
    }
    let n = m.len() / cols.max(1);
    buffer.clear();
    buffer.resize(n * wide, 0.0);
    for (dst, src) in buffer.chunks_exact_mut(wide).zip(m.chunks_exact(cols.max(1))) {
        dst[..cols].copy_from_slice(src);
    }
    buffer.chunks_exact(wide).collect()
}

multiversion! {
    /// One example through a convolution with stride > 1, from its padded input `pad` (ci × ph
    /// × pw) into `out` (co × oh × ow).
    fn conv_forward(c: &Conv, weight: &[f32], bias: Option<&[f32]>, pad: &[f32], out: &mut [f32]) {
        let kk = c.k * c.k;
        let plane = c.ph * c.pw;
        for oc in 0..c.co {
            let dst = &mut out[oc * c.oh * c.ow..(oc + 1) * c.oh * c.ow];
            dst.fill(bias.map_or(0.0, |b| b[oc]));
            for ic in 0..c.ci {
                let src = &pad[ic * plane..(ic + 1) * plane];
                let taps = &weight[(oc * c.ci + ic) * kk..(oc * c.ci + ic + 1) * kk];
                for ky in 0..c.k {
                    for kx in 0..c.k {
                        let t = taps[ky * c.k + kx];
                        for (y, row) in dst.chunks_exact_mut(c.ow).enumerate() {
                            let line = &src[(y * c.s + ky) * c.pw + kx..];
                            for (x, v) in row.iter_mut().enumerate() {
                                *v += t * line[x * c.s];
                            }
                        }
                    }
                }
            }
        }
    }
}

multiversion! {
    /// One example's gradients of a convolution with stride > 1: dW += dout ⋆ pad, and dpad +=
    /// W ⋆ dout when asked.
    fn conv_backward(c: &Conv, weight: &[f32], pad: &[f32], dout: &[f32], dw: &mut [f32], dpad: Option<&mut [f32]>) {
        let kk = c.k * c.k;
        let plane = c.ph * c.pw;
        let mut dpad = dpad;
        for oc in 0..c.co {
            let d = &dout[oc * c.oh * c.ow..(oc + 1) * c.oh * c.ow];
            for ic in 0..c.ci {
                let at = (oc * c.ci + ic) * kk;
                for ky in 0..c.k {
                    for kx in 0..c.k {
                        let mut sum = 0.0;
                        let t = weight[at + ky * c.k + kx];
                        for (y, row) in d.chunks_exact(c.ow).enumerate() {
                            let base = ic * plane + (y * c.s + ky) * c.pw + kx;
                            for (x, &g) in row.iter().enumerate() {
                                sum += g * pad[base + x * c.s];
                                if let Some(dpad) = dpad.as_deref_mut() {
                                    dpad[base + x * c.s] += t * g;
                                }
                            }
                        }
                        dw[at + ky * c.k + kx] += sum;
                    }
                }
            }
        }
    }
}

multiversion! {
    /// BatchNorm in training mode over a batch (B × c × spatial): the batch's mean and biased
    /// variance per channel (summed in f64), x̂ kept in `xhat`, the statistics in `stat`.
    #[allow(clippy::too_many_arguments)]
    fn norm_forward(c: usize, spatial: usize, gamma: &[f32], beta: &[f32], x: &[f32], out: &mut [f32], xhat: &mut [f32], stat: &mut [f32]) {
        let per = c * spatial;
        let n = (x.len() / per.max(1) * spatial) as f64;
        for ch in 0..c {
            let r = ch * spatial..(ch + 1) * spatial;
            let mean = x.chunks_exact(per).map(|e| sum64(&e[r.clone()], None)).sum::<f64>() / n;
            let var = x.chunks_exact(per).map(|e| sum64(&e[r.clone()], Some(mean))).sum::<f64>() / n;
            let (mean32, inv) = (mean as f32, (1.0 / (var + EPS).sqrt()) as f32);
            stat[ch] = mean32;
            stat[c + ch] = var as f32;
            stat[2 * c + ch] = inv;
            let (g, b) = (gamma[ch], beta[ch]);
            for ((x, o), h) in x.chunks_exact(per).zip(out.chunks_exact_mut(per)).zip(xhat.chunks_exact_mut(per)) {
                for ((&x, o), h) in x[r.clone()].iter().zip(&mut o[r.clone()]).zip(&mut h[r.clone()]) {
                    *h = (x - mean32) * inv;
                    *o = *h * g + b;
                }
            }
        }
    }
}

/// (Σ d, Σ d·h) in f64, in 8 lanes.
#[inline(always)]
fn sums64(d: &[f32], h: &[f32]) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f64; 8], [0.0f64; 8]);
    let (dc, hc) = (d.chunks_exact(8), h.chunks_exact(8));
    let (dr, hr) = (dc.remainder(), hc.remainder());
    match hand_laid() {
        // SAFETY: `hand_laid` says AVX-512 only where the CPU has it.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { wide::sums64(dc, hc, &mut a, &mut b) },
        // SAFETY: and AVX2 only where the CPU has that.
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { narrow::sums64(dc, hc, &mut a, &mut b) },
        _ => {
            for (d, h) in dc.zip(hc) {
                for l in 0..8 {
                    a[l] += d[l] as f64;
                    b[l] += (d[l] * h[l]) as f64;
                }
            }
        }
    }
    let (mut sa, mut sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    for (&d, &h) in dr.iter().zip(hr) {
        sa += d as f64;
        sb += (d * h) as f64;
    }
    (sa, sb)
}

/// Σ v, or Σ (v − centre)² given a centre, in f64, in 8 lanes.
#[inline(always)]
fn sum64(xs: &[f32], centre: Option<f64>) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    let term = |v: f32| match centre {
        None => v as f64,
        Some(c) => (v as f64 - c) * (v as f64 - c),
    };
    match hand_laid() {
        // SAFETY: `hand_laid` says AVX-512 only where the CPU has it.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { wide::sum64(chunks, centre, &mut lanes) },
        // SAFETY: and AVX2 only where the CPU has that.
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { narrow::sum64(chunks, centre, &mut lanes) },
        _ => {
            for ch in chunks {
                for l in 0..8 {
                    lanes[l] += term(ch[l]);
                }
            }
        }
    }
    lanes.iter().sum::<f64>() + rest.iter().map(|&v| term(v)).sum::<f64>()
}

/// Which of BatchNorm's hand-laid sums run: [`wide`] at AVX-512, [`narrow`] at AVX2, the
/// portable loops otherwise (and off x86-64).
#[inline(always)]
fn hand_laid() -> Level {
    if cfg!(target_arch = "x86_64") { crate::simd::current() } else { Level::Baseline }
}

/// BatchNorm's sums in f64 lanes laid out by hand for AVX-512, where LLVM assembles the
/// vectors from scalars (measured: BatchNorm 21 % of a ResNet-small step). The same operations
/// in the same order as the portable loops, so the same bits.
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;
    use std::slice::ChunksExact;

    /// Adds Σ d and Σ d·h over the whole chunks of 8 into the lanes `a` and `b`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn sums64(d: ChunksExact<f32>, h: ChunksExact<f32>, a: &mut [f64; 8], b: &mut [f64; 8]) {
        // SAFETY: the lanes hold 8 f64 each.
        let (mut va, mut vb) = unsafe { (_mm512_loadu_pd(a.as_ptr()), _mm512_loadu_pd(b.as_ptr())) };
        for (d, h) in d.zip(h) {
            // SAFETY: every chunk holds 8 f32.
            let (d, h) = unsafe { (_mm256_loadu_ps(d.as_ptr()), _mm256_loadu_ps(h.as_ptr())) };
            va = _mm512_add_pd(va, _mm512_cvtps_pd(d));
            vb = _mm512_add_pd(vb, _mm512_cvtps_pd(_mm256_mul_ps(d, h)));
        }
        // SAFETY: as above.
        unsafe {
            _mm512_storeu_pd(a.as_mut_ptr(), va);
            _mm512_storeu_pd(b.as_mut_ptr(), vb);
        }
    }

    /// Adds Σ v (or Σ (v − centre)²) over the whole chunks of 8 into `lanes`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn sum64(xs: ChunksExact<f32>, centre: Option<f64>, lanes: &mut [f64; 8]) {
        // SAFETY: the lanes hold 8 f64.
        let mut acc = unsafe { _mm512_loadu_pd(lanes.as_ptr()) };
        for x in xs {
            // SAFETY: every chunk holds 8 f32.
            let v = _mm512_cvtps_pd(unsafe { _mm256_loadu_ps(x.as_ptr()) });
            acc = match centre {
                None => _mm512_add_pd(acc, v),
                Some(c) => {
                    let t = _mm512_sub_pd(v, _mm512_set1_pd(c));
                    _mm512_add_pd(acc, _mm512_mul_pd(t, t))
                }
            };
        }
        // SAFETY: as above.
        unsafe { _mm512_storeu_pd(lanes.as_mut_ptr(), acc) };
    }
}

/// [`wide`] for AVX2: the eight f64 lanes in two registers of four (lanes 0–3, 4–7), the same
/// operations in the same order, so the same bits (measured: BatchNorm's sums were 16 % of a
/// ResNet-small step at AVX2 from the portable loops).
#[cfg(target_arch = "x86_64")]
mod narrow {
    use std::arch::x86_64::*;
    use std::slice::ChunksExact;

    /// The eight floats of `v` as f64 lanes 0–3 and 4–7.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn widened(v: __m256) -> (__m256d, __m256d) {
        (_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)))
    }

    /// Adds Σ d and Σ d·h over the whole chunks of 8 into the lanes `a` and `b`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn sums64(d: ChunksExact<f32>, h: ChunksExact<f32>, a: &mut [f64; 8], b: &mut [f64; 8]) {
        // SAFETY: the lanes hold 8 f64 each.
        let (mut a0, mut a1, mut b0, mut b1) = unsafe { (_mm256_loadu_pd(a.as_ptr()), _mm256_loadu_pd(a.as_ptr().add(4)), _mm256_loadu_pd(b.as_ptr()), _mm256_loadu_pd(b.as_ptr().add(4))) };
        for (d, h) in d.zip(h) {
            // SAFETY: every chunk holds 8 f32.
            let (d, h) = unsafe { (_mm256_loadu_ps(d.as_ptr()), _mm256_loadu_ps(h.as_ptr())) };
            let ((d0, d1), (p0, p1)) = (widened(d), widened(_mm256_mul_ps(d, h)));
            (a0, a1) = (_mm256_add_pd(a0, d0), _mm256_add_pd(a1, d1));
            (b0, b1) = (_mm256_add_pd(b0, p0), _mm256_add_pd(b1, p1));
        }
        // SAFETY: as above.
        unsafe {
            _mm256_storeu_pd(a.as_mut_ptr(), a0);
            _mm256_storeu_pd(a.as_mut_ptr().add(4), a1);
            _mm256_storeu_pd(b.as_mut_ptr(), b0);
            _mm256_storeu_pd(b.as_mut_ptr().add(4), b1);
        }
    }

    /// Adds Σ v (or Σ (v − centre)²) over the whole chunks of 8 into `lanes`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn sum64(xs: ChunksExact<f32>, centre: Option<f64>, lanes: &mut [f64; 8]) {
        // SAFETY: the lanes hold 8 f64.
        let (mut l0, mut l1) = unsafe { (_mm256_loadu_pd(lanes.as_ptr()), _mm256_loadu_pd(lanes.as_ptr().add(4))) };
        for x in xs {
            // SAFETY: every chunk holds 8 f32.
            let (v0, v1) = widened(unsafe { _mm256_loadu_ps(x.as_ptr()) });
            (l0, l1) = match centre {
                None => (_mm256_add_pd(l0, v0), _mm256_add_pd(l1, v1)),
                Some(c) => {
                    let c = _mm256_set1_pd(c);
                    let (t0, t1) = (_mm256_sub_pd(v0, c), _mm256_sub_pd(v1, c));
                    (_mm256_add_pd(l0, _mm256_mul_pd(t0, t0)), _mm256_add_pd(l1, _mm256_mul_pd(t1, t1)))
                }
            };
        }
        // SAFETY: as above.
        unsafe {
            _mm256_storeu_pd(lanes.as_mut_ptr(), l0);
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4), l1);
        }
    }
}

multiversion! {
    /// BatchNorm's backward with batch statistics: dγ += Σ dy·x̂, dβ += Σ dy, and
    /// dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)).
    #[allow(clippy::too_many_arguments)]
    fn norm_backward(c: usize, spatial: usize, gamma: &[f32], xhat: &[f32], stat: &[f32], dout: &[f32], dg: &mut [f32], db: &mut [f32], din: Option<&mut [f32]>) {
        let per = c * spatial;
        let n = (dout.len() / per.max(1) * spatial) as f64;
        let mut din = din;
        for ch in 0..c {
            let r = ch * spatial..(ch + 1) * spatial;
            let (mut sum, mut sum_x) = (0.0f64, 0.0f64);
            for (d, h) in dout.chunks_exact(per).zip(xhat.chunks_exact(per)) {
                let (a, b) = sums64(&d[r.clone()], &h[r.clone()]);
                sum += a;
                sum_x += b;
            }
            dg[ch] += sum_x as f32;
            db[ch] += sum as f32;
            if let Some(din) = din.as_deref_mut() {
                let (mean_d, mean_dx) = ((sum / n) as f32, (sum_x / n) as f32);
                let scale = gamma[ch] * stat[2 * c + ch];
                for ((o, d), h) in din.chunks_exact_mut(per).zip(dout.chunks_exact(per)).zip(xhat.chunks_exact(per)) {
                    for ((o, &d), &h) in o[r.clone()].iter_mut().zip(&d[r.clone()]).zip(&h[r.clone()]) {
                        *o = scale * (d - mean_d - h * mean_dx);
                    }
                }
            }
        }
    }
}

multiversion! {
    /// LayerNorm over each example's `n` features (B × n): the example's mean and biased
    /// variance (summed in f64, as BatchNorm's), x̂ kept in `xhat`, 1/√(var + ε) per example
    /// in `inv`; `out = γ·x̂ + β`.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_forward(n: usize, gamma: &[f32], beta: &[f32], x: &[f32], out: &mut [f32], xhat: &mut [f32], inv: &mut [f32]) {
        for (((x, o), h), inv) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)).zip(xhat.chunks_exact_mut(n)).zip(inv.iter_mut()) {
            let mean = sum64(x, None) / n as f64;
            let var = sum64(x, Some(mean)) / n as f64;
            let (mean32, i) = (mean as f32, (1.0 / (var + EPS).sqrt()) as f32);
            *inv = i;
            for ((((&x, o), h), &g), &b) in x.iter().zip(o.iter_mut()).zip(h.iter_mut()).zip(gamma).zip(beta) {
                *h = (x - mean32) * i;
                *o = *h * g + b;
            }
        }
    }
}

multiversion! {
    /// LayerNorm's backward: dγ += Σ over the batch dy·x̂, dβ += Σ dy, and per example, with
    /// g = dy·γ, dx = (g − mean(g) − x̂·mean(g·x̂)) / σ.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward(n: usize, gamma: &[f32], xhat: &[f32], inv: &[f32], dout: &[f32], dg: &mut [f32], db: &mut [f32], din: Option<&mut [f32]>) {
        for (d, h) in dout.chunks_exact(n).zip(xhat.chunks_exact(n)) {
            for (((dg, db), &d), &h) in dg.iter_mut().zip(db.iter_mut()).zip(d).zip(h) {
                *dg += d * h;
                *db += d;
            }
        }
        let Some(din) = din else { return };
        for (((o, d), h), &i) in din.chunks_exact_mut(n).zip(dout.chunks_exact(n)).zip(xhat.chunks_exact(n)).zip(inv) {
            // g = dy·γ where dx goes, then its two sums.
            for ((o, &d), &g) in o.iter_mut().zip(d).zip(gamma) {
                *o = d * g;
            }
            let (sum, sum_x) = sums64(o, h);
            let (mean_g, mean_gx) = ((sum / n as f64) as f32, (sum_x / n as f64) as f32);
            for (o, &h) in o.iter_mut().zip(h) {
                *o = i * (*o - mean_g - h * mean_gx);
            }
        }
    }
}

multiversion! {
    fn act_forward(a: Act, x: &[f32], out: &mut [f32]) {
        // Plain `for` loops, each arm its own: through `for_each` (an out-of-line `fold`) or a
        // `&dyn Fn`, the per-value code was compiled without the width's features, and the
        // exponentials' multiply-adds became calls to the C library's `fmaf`.
        let pairs = out.iter_mut().zip(x);
        match a {
            Act::Relu => {
                for (o, &x) in pairs {
                    *o = x.max(0.0);
                }
            }
            Act::Tanh => {
                for (o, &x) in pairs {
                    *o = super::cnn::tanh(x);
                }
            }
            Act::Sigmoid => {
                for (o, &x) in pairs {
                    *o = activation::sigmoid(x);
                }
            }
            Act::Silu => {
                for (o, &x) in pairs {
                    *o = activation::silu_one(x);
                }
            }
            Act::LeakyRelu(s) => {
                for (o, &x) in pairs {
                    *o = if x > 0.0 { x } else { x * s as f32 };
                }
            }
            Act::Sine(w0) => {
                for (o, &x) in pairs {
                    *o = (x * w0 as f32).sin();
                }
            }
            Act::Gelu => {
                for (o, &x) in pairs {
                    *o = activation::gelu(x);
                }
            }
        }
    }
}

multiversion! {
    /// din = dout · f′(x), from the input `x` or the output `y`, whichever the derivative needs.
    fn act_backward(a: Act, x: &[f32], y: &[f32], dout: &[f32], din: &mut [f32]) {
        let all = din.iter_mut().zip(dout).zip(x.iter().zip(y));
        match a {
            Act::Relu => {
                for ((o, &d), (_, &y)) in all {
                    *o = if y > 0.0 { d } else { 0.0 };
                }
            }
            Act::Tanh => {
                for ((o, &d), (_, &y)) in all {
                    *o = d * (1.0 - y * y);
                }
            }
            Act::Sigmoid => {
                for ((o, &d), (_, &y)) in all {
                    *o = d * y * (1.0 - y);
                }
            }
            Act::Silu => {
                for ((o, &d), (&x, _)) in all {
                    *o = activation::silu_grad_one(d, x);
                }
            }
            Act::LeakyRelu(s) => {
                for ((o, &d), (&x, _)) in all {
                    *o = if x > 0.0 { d } else { d * s as f32 };
                }
            }
            Act::Sine(w0) => {
                for ((o, &d), (&x, _)) in all {
                    *o = d * w0 as f32 * (x * w0 as f32).cos();
                }
            }
            Act::Gelu => {
                for ((o, &d), (&x, _)) in all {
                    *o = activation::gelu_grad(d, x);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropout's masks: about `keep` of the values kept, each kept value scaled by 1/`keep`,
    /// the same for the same model, step and layer and different for another of any of them.
    #[test]
    fn dropout_masks_keep_their_share_and_follow_model_step_and_layer() {
        let mask = |seed, t, layer| {
            let mut m = vec![f32::NAN; 20_000];
            Draws { seed, t }.mask(layer, 0.75, &mut m);
            m
        };
        let m = mask(7, 3, 11);
        let kept = m.iter().filter(|&&v| v != 0.0).count();
        assert!((14_700..15_300).contains(&kept), "{kept} of 20000 kept at 0.75");
        assert!(m.iter().all(|&v| v == 0.0 || v == (1.0 / 0.75f64) as f32));
        assert_eq!(m, mask(7, 3, 11));
        for other in [mask(8, 3, 11), mask(7, 4, 11), mask(7, 3, 12)] {
            let same = m.iter().zip(&other).filter(|(a, b)| a == b).count();
            assert!(same < 13_500, "another model, step or layer draws another mask ({same} agree)");
        }
    }

    /// Through dropout (and the layers around it) the backward pass is the derivative of the
    /// forward pass with the same masks: every weight's gradient against central differences
    /// of the loss.
    #[test]
    fn the_gradient_through_dropout_is_the_forwards_derivative() {
        use crate::arch::Arch;
        use weightlab_manifest::{ArchSpec, DataSpec, LayerSpec};
        let spec: DataSpec = toml::from_str("source = \"blobs\"\nsamples = 64\nclasses = 3").expect("data");
        let data = crate::data::load(&spec, std::path::Path::new(".")).expect("blobs");
        let layers: Vec<LayerSpec> = toml::from_str::<toml::Table>(r#"l = [{ type = "linear", out = 8 }, { type = "tanh" }, { type = "dropout", p = 0.4 }, { type = "linear", out = 3 }]"#)
            .expect("layers")["l"]
            .clone()
            .try_into()
            .expect("layer specs");
        let arch = Arch::new(&ArchSpec::Sequential { layers }, &data).expect("arch");
        let (steps, features, classes) = plan(&arch, &data.train, data.task).expect("the native engine takes it");
        assert!(steps.iter().any(|s| matches!(s.node, Node::Dropout { .. })));
        let b = 16;
        let x = &data.train.x[..b * features];
        let y: Vec<usize> = data.train.y[..b].iter().map(|&v| v as usize).collect();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(5);
        let w0 = arch.init(&mut rng);
        let draws = Draws { seed: 9, t: 2 };
        let loss = |w: &[f32], grad: Option<&mut [f32]>| {
            let mut traces = traces(&steps, b);
            forward(&steps, &mut traces, x, b, w, draws);
            let logits = traces.last().map(|t| t.out.clone()).unwrap_or_default();
            let (mut loss, mut dlogits) = (0.0f64, vec![0.0f32; b * classes]);
            for ((row, d), &label) in logits.chunks_exact(classes).zip(dlogits.chunks_exact_mut(classes)).zip(&y) {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let sum: f64 = row.iter().map(|&l| ((l - max) as f64).exp()).sum();
                loss += (sum.ln() + max as f64 - row[label] as f64) / b as f64;
                for (c, d) in d.iter_mut().enumerate() {
                    *d = ((((row[c] - max) as f64).exp() / sum - if c == label { 1.0 } else { 0.0 }) / b as f64) as f32;
                }
            }
            if let Some(grad) = grad {
                backward(&steps, &mut traces, x, &dlogits, b, w, grad, None);
            }
            loss
        };
        let mut grad = vec![0.0f32; w0.len()];
        loss(&w0, Some(&mut grad));
        let h = 1e-2f32;
        for i in 0..w0.len() {
            let (mut up, mut down) = (w0.clone(), w0.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up, None) - loss(&down, None)) / (2.0 * h as f64);
            assert!((grad[i] as f64 - numeric).abs() < 2e-3 * (1.0 + numeric.abs()), "weight {i}: {} against {numeric}", grad[i]);
        }
        let mut traces = traces(&steps, b);
        forward(&steps, &mut traces, x, b, &w0, draws);
        let masks = steps.iter().zip(&traces).find(|(s, _)| matches!(s.node, Node::Dropout { .. })).map(|(_, t)| t.aux.clone()).unwrap_or_default();
        assert!(masks.contains(&0.0) && masks.iter().any(|&m| m > 1.0), "the mask drops some values and scales the rest");
    }

    /// Every activation and its gradient give the same bits at every width this CPU has (the
    /// exponentials and GELU's Φ are branch-free polynomials, vectorized at each width).
    #[test]
    fn activations_are_the_same_bits_at_every_width() {
        let x: Vec<f32> = (0..203).map(|i| ((i as f32) * 0.37).sin() * 9.0).collect();
        let d: Vec<f32> = (0..203).map(|i| ((i as f32) * 0.91).cos()).collect();
        for a in [Act::Relu, Act::Gelu, Act::Tanh, Act::Sigmoid, Act::Silu, Act::LeakyRelu(0.1), Act::Sine(3.0)] {
            let at = |level| {
                crate::simd::at_level(level, || {
                    let (mut y, mut g) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
                    act_forward(a, &x, &mut y);
                    act_backward(a, &x, &y, &d, &mut g);
                    y.iter().chain(&g).map(|v| v.to_bits()).collect::<Vec<_>>()
                })
            };
            let baseline = at(crate::simd::Level::Baseline);
            for level in crate::simd::available() {
                assert_eq!(at(level), baseline, "{a:?} at {}", level.name());
            }
        }
    }

    /// BatchNorm's f64 sums give the same bits at every width this CPU has (AVX-512's are laid
    /// out by hand), over whole chunks of 8 and a tail.
    #[test]
    fn batchnorm_sums_are_the_same_bits_at_every_width() {
        let d: Vec<f32> = (0..203).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
        let h: Vec<f32> = (0..203).map(|i| ((i as f32) * 0.91).cos()).collect();
        let at = |level| crate::simd::at_level(level, || (sums64(&d, &h), sum64(&d, None), sum64(&d, Some(0.25))));
        let baseline = at(crate::simd::Level::Baseline);
        let plain = (d.iter().map(|&v| v as f64).sum::<f64>(), d.iter().zip(&h).map(|(&d, &h)| (d * h) as f64).sum::<f64>());
        assert!((baseline.0.0 - plain.0).abs() < 1e-9 && (baseline.0.1 - plain.1).abs() < 1e-9, "the sums are sums");
        for level in crate::simd::available() {
            let got = at(level);
            let bits = |s: &((f64, f64), f64, f64)| [s.0.0.to_bits(), s.0.1.to_bits(), s.1.to_bits(), s.2.to_bits()];
            assert_eq!(bits(&got), bits(&baseline), "at {}", level.name());
        }
    }
}
