//! K MLPs trained on the CPU with the forward and backward passes written out, one model at a
//! time.
//!
//! Why not K-batched library calls ([`super::mlp`], which GPUs use): on a zoo of small MLPs a
//! step is a few products of 32 × 784 blocks per model, and the time goes to what surrounds
//! them — gathering every model's batch into one tensor, Adam streaming all K models'
//! parameters and moments through memory every step. Here a thread takes a model and runs all
//! the steps it is given (an epoch) before the next: its weights, moments and gradient
//! (≈ 400 KB for 784 → 32 → 10) stay in the core's cache for the whole epoch, its batch is read
//! straight from the training split, and the products run in the register-tiled kernel of
//! [`crate::gemm`]. Models are independent, so the bits depend neither on the thread count nor
//! on how many steps a call is given.
//!
//! The arithmetic is the tape's ([`crate::arch::Arch::forward`]): each model's mean loss on
//! its own batch (cross-entropy, or squared error for one real output), L2 weight decay added
//! to the gradient, Adam as in PyTorch. Activations are kept feature-major (units × batch), so
//! every product is one call of the kernel.

use std::ops::Range;

use weightlab_manifest::{Activation, TrainSpec};

use super::models::{Model, Models, Update};
use super::target::Target;
use crate::arch::Arch;
use crate::data::{Split, Task};
use crate::gemm::{matmul_add, matmul_nt, matmul_rows, pack_into, pack_transposed, whole_tiles};

/// The networks and what they learn from: everything a step reads but does not change.
struct Net<'a> {
    sizes: Vec<usize>,
    activation: Activation,
    /// Per layer: where its weight (out × in, as PyTorch stores it) and bias sit in a model's
    /// vector.
    layers: Vec<(Range<usize>, Range<usize>)>,
    /// The training split's examples, borrowed (a zoo's unit does not copy them).
    x: &'a [f32],
    target: Target,
}

/// K MLPs in training, and the training split they learn from.
pub(super) struct DenseZoo<'a> {
    pub models: Models,
    net: Net<'a>,
}

impl<'a> DenseZoo<'a> {
    /// The MLPs of `arch` with stacked flat parameters `flat` (K × P), learning `train`;
    /// `None` for other architectures and for outputs the loss does not fit.
    pub fn new(arch: &Arch, recipe: &TrainSpec, flat: &[f32], k: usize, train: &'a Split, task: Task) -> Option<Self> {
        let Arch::Mlp { sizes, activation } = arch else { return None };
        let (inputs, outputs) = (*sizes.first()?, *sizes.last()?);
        if train.x.len() != train.len() * inputs {
            return None;
        }
        let target = Target::of(train, task, outputs)?;
        let layout = arch.layout();
        let range = |name: String| layout.get(&name).map(|p| p.range());
        let layers = (0..sizes.len() - 1).map(|i| Some((range(format!("layers.{i}.weight"))?, range(format!("layers.{i}.bias"))?))).collect::<Option<Vec<_>>>()?;
        let net = Net { sizes: sizes.clone(), activation: *activation, layers, x: &train.x, target };
        Some(DenseZoo { models: Models::new(recipe, flat, k, layout.len()), net })
    }

    /// One optimizer step per entry of `batches` (each K·B example indices, model-major),
    /// every model taking all of its steps before the next model starts.
    pub fn steps(&mut self, batches: &[Vec<i64>]) {
        let Some(b) = batches.first().map(|batch| batch.len() / self.models.k().max(1)) else { return };
        let updates = self.models.updates(batches.len());
        let trains = self.models.trains();
        let Some(lowest) = self.net.layers.iter().position(|(w, b)| trains.iter().any(|r| overlaps(r, w) || overlaps(r, b))) else { return };
        let shared = Shared { net: &self.net, lowest, b };
        let p = self.models.p();
        self.models.each(
            || Work::new(&shared, p),
            |work, j, mut model| {
                for (batch, update) in batches.iter().zip(&updates) {
                    train_step(&shared, work, &mut model, &batch[j * b..(j + 1) * b], update);
                }
            },
        );
    }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// What every thread reads.
struct Shared<'a> {
    net: &'a Net<'a>,
    /// The lowest layer with a parameter that trains: no gradient is taken below it.
    lowest: usize,
    b: usize,
}

/// One thread's buffers. Activations are feature-major (units × `bp` batch columns, the
/// columns past the batch zero).
struct Work {
    bp: usize,
    grad: Vec<f32>,
    /// Layer l's input for l ≥ 1: the activation of the hidden layer below (the examples,
    /// layer 0's input, are read where they are).
    inputs: Vec<Vec<f32>>,
    /// Layer l's output before the activation.
    pre: Vec<Vec<f32>>,
    panels: Vec<f32>,
    rows: Vec<f32>,
    dz: Vec<f32>,
    dh: Vec<f32>,
    dw: Vec<f32>,
}

impl Work {
    fn new(s: &Shared, p: usize) -> Self {
        let sizes = &s.net.sizes;
        let bp = whole_tiles(s.b);
        let widest = sizes.iter().copied().max().unwrap_or(0);
        Work {
            bp,
            grad: vec![0.0; p],
            inputs: sizes[..sizes.len() - 1].iter().enumerate().map(|(l, &n)| if l == 0 { Vec::new() } else { vec![0.0; n * bp] }).collect(),
            pre: sizes[1..].iter().map(|&n| vec![0.0; n * bp]).collect(),
            panels: Vec::new(),
            rows: vec![0.0; bp * whole_tiles(widest)],
            dz: vec![0.0; widest * bp],
            dh: vec![0.0; widest * bp],
            dw: Vec::new(),
        }
    }
}

/// One step of one model: the gradient of its mean loss over `batch`, then the update.
fn train_step(s: &Shared, work: &mut Work, model: &mut Model, batch: &[i64], update: &Update) {
    let w = &*model.weights;
    let net = s.net;
    let (sizes, bp, n) = (&net.sizes, work.bp, batch.len());
    let last = net.layers.len() - 1;
    // The batch's examples, read where they are.
    let features = sizes[0];
    let examples: Vec<&[f32]> = batch.iter().map(|&i| &net.x[i as usize * features..(i as usize + 1) * features]).collect();
    // Forward.
    for (l, (wr, br)) in net.layers.iter().enumerate() {
        let (fan_in, out) = (sizes[l], sizes[l + 1]);
        let z = &mut work.pre[l];
        if l == 0 {
            matmul_nt(&w[wr.clone()], &examples, fan_in, z, bp);
        } else {
            pack_into(&w[wr.clone()], fan_in, &mut work.panels);
            matmul_add(&work.panels, &work.inputs[l], fan_in, bp, 0..fan_in, z);
        }
        for (o, &bias) in w[br.clone()].iter().enumerate() {
            z[o * bp..o * bp + n].iter_mut().for_each(|v| *v += bias);
        }
        if l < last {
            let (z, next) = (&work.pre[l], &mut work.inputs[l + 1]);
            for o in 0..out {
                let (zs, hs) = (&z[o * bp..o * bp + n], &mut next[o * bp..o * bp + n]);
                activate(zs, hs, net.activation);
            }
        }
    }
    // d(mean loss)/d(output), feature-major; the padding columns stay zero.
    let outputs = sizes[last + 1];
    let (logits, dz) = (&work.pre[last], &mut work.dz);
    dz[..outputs * bp].iter_mut().for_each(|v| *v = 0.0);
    let scale = 1.0 / n as f32;
    for (b, &i) in batch.iter().enumerate() {
        for c in 0..outputs {
            dz[c * bp + b] = logits[c * bp + b];
        }
        net.target.gradient(i as usize, &mut dz[b..], bp, outputs, scale);
    }
    // Backward, last layer first.
    for l in (s.lowest..=last).rev() {
        let (wr, br) = &net.layers[l];
        let (fan_in, out) = (sizes[l], sizes[l + 1]);
        // dW = dZ · X (out × in): dZ's rows against the layer's input example-major.
        let width = whole_tiles(fan_in);
        pack_into(&work.dz[..out * bp], bp, &mut work.panels);
        let grad = &mut work.grad;
        if l == 0 && width == fan_in {
            // The examples where they are, straight into the gradient (the batch's padding
            // columns of dZ are zero, so the padding examples are not needed).
            matmul_rows(&work.panels, &examples, bp, width, &mut grad[wr.clone()]);
        } else {
            if l == 0 {
                for (b, example) in examples.iter().enumerate() {
                    work.rows[b * width..b * width + fan_in].copy_from_slice(example);
                }
                work.rows[n * width..bp * width].iter_mut().for_each(|v| *v = 0.0);
            } else {
                transpose(&work.inputs[l], bp, &mut work.rows, width, fan_in, bp);
            }
            if width == fan_in {
                // Straight into the gradient, whose rows are as wide as the tiles.
                matmul_add(&work.panels, &work.rows, bp, width, 0..bp, &mut grad[wr.clone()]);
            } else {
                work.dw.resize(out * width, 0.0);
                matmul_add(&work.panels, &work.rows, bp, width, 0..bp, &mut work.dw);
                for o in 0..out {
                    grad[wr.start + o * fan_in..wr.start + (o + 1) * fan_in].copy_from_slice(&work.dw[o * width..o * width + fan_in]);
                }
            }
        }
        for o in 0..out {
            grad[br.start + o] = work.dz[o * bp..o * bp + n].iter().sum();
        }
        if l > s.lowest {
            // dH = Wᵀ · dZ (in × batch), then through the activation below.
            pack_transposed(&w[wr.clone()], fan_in, &mut work.panels);
            let dh = &mut work.dh[..fan_in * bp];
            matmul_add(&work.panels, &work.dz[..out * bp], out, bp, 0..out, dh);
            let (z, h) = (&work.pre[l - 1], &work.inputs[l]);
            for f in 0..fan_in {
                let row = f * bp..f * bp + n;
                derivative(&mut work.dh[row.clone()], &z[row.clone()], &h[row.clone()], net.activation);
            }
            work.dz[..fan_in * bp].copy_from_slice(&work.dh[..fan_in * bp]);
        }
    }
    model.update(&work.grad, update);
}

/// `to[c·to_stride + r] = from[r·from_stride + c]` for the first `rows` × `cols`: a
/// transpose in 8 × 8 blocks, so that reads and writes both stay in a few cache lines (a
/// whole block through registers).
pub(super) fn transpose(from: &[f32], from_stride: usize, to: &mut [f32], to_stride: usize, rows: usize, cols: usize) {
    const B: usize = 8;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            if r0 + B <= rows && c0 + B <= cols {
                let mut block = [[0.0f32; B]; B];
                for (r, line) in block.iter_mut().enumerate() {
                    line.copy_from_slice(&from[(r0 + r) * from_stride + c0..][..B]);
                }
                for c in 0..B {
                    let dst = &mut to[(c0 + c) * to_stride + r0..][..B];
                    for r in 0..B {
                        dst[r] = block[r][c];
                    }
                }
                continue;
            }
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    to[c * to_stride + r] = from[r * from_stride + c];
                }
            }
        }
    }
}

/// `h = act(z)`.
fn activate(z: &[f32], h: &mut [f32], a: Activation) {
    for (h, &z) in h.iter_mut().zip(z) {
        *h = match a {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => super::cnn::tanh(z),
            Activation::Silu => z / (1.0 + (-z).exp()),
            Activation::Sine => (30.0 * z).sin(),
        };
    }
}

/// `d *= act'(z)`, given the pre-activations `z` and activations `h`.
fn derivative(d: &mut [f32], z: &[f32], h: &[f32], a: Activation) {
    for ((d, &z), &h) in d.iter_mut().zip(z).zip(h) {
        *d *= match a {
            Activation::Relu => (z > 0.0) as u8 as f32,
            Activation::Tanh => 1.0 - h * h,
            Activation::Silu => {
                let s = 1.0 / (1.0 + (-z).exp());
                s * (1.0 + z * (1.0 - s))
            }
            Activation::Sine => 30.0 * (30.0 * z).cos(),
        };
    }
}
