//! K CNN-s models trained at once on the CPU, with the forward and backward passes written out.
//!
//! Why not batched library calls: a zoo of CNN-s models is thousands of convolutions with 1–8
//! channels on 28×28 images. As one grouped convolution (`groups = K`) the CPU kernels spend
//! their time on layout and dispatch, not arithmetic — batching K models bought nothing over a
//! per-model loop. An im2col per model turns conv1 into K GEMMs of 8 × 25 × (B·576), but the
//! unfolded images are 25× the input and the GEMM is memory-bound. Here each model's batch runs
//! through loops over one image at a time whose data stay in the L1 cache: the convolutions
//! vectorize along an image row (24 and 8 lanes), max-pooling remembers where each maximum was,
//! so the backward through it touches a quarter of the positions (conv2's backward
//! channels-last, so that a window's kernel row is 40 consecutive floats rather than 5), and
//! each model's gradient feeds one fused Adam pass over its 2,464 parameters while they are
//! still in cache. The products are fused multiply-adds (one rounding; on Intel cores a
//! multiply and an add take the two ports one fused multiply-add takes alone). Models
//! are independent, so threads take whole models and the bits do not depend on how many there
//! are.
//!
//! The arithmetic is the tape's ([`crate::arch::Arch::forward`]): each model's mean
//! cross-entropy on its own batch, L2 weight decay added to the gradient, Adam as in PyTorch.
//! tanh is a rational approximation accurate to a few ulp ([`tanh`]); max-pooling passes the
//! gradient to the first maximum of a window, as PyTorch does.

use std::ops::Range;

use weightlab_manifest::TrainSpec;

use super::models::{Model, Models, Update};
use super::pool::{Pairs, max_pool_2x2};
use crate::arch::Arch;
use crate::data::{Split, Task};
use crate::simd::multiversion;

/// Input side (one channel).
const SIDE: usize = 28;
/// conv1: 1 → 8 channels, 5×5, 24×24 out, pooled to 12×12.
const C1: usize = 8;
const K1: usize = 5;
const O1: usize = 24;
const P1: usize = 12;
/// conv2: 8 → 6 channels, 5×5, 8×8 out, pooled to 4×4.
const C2: usize = 6;
const K2: usize = 5;
const O2: usize = 8;
const P2: usize = 4;
/// conv3: 6 → 4 channels, 2×2, 3×3 out, flattened to 36.
const C3: usize = 4;
const K3: usize = 2;
const O3: usize = 3;
const FLAT: usize = C3 * O3 * O3;
/// fc1: 36 → 20; fc2: 20 → classes.
const HIDDEN: usize = 20;

/// Where each parameter tensor sits in a model's flat vector.
struct At {
    w1: Range<usize>,
    b1: Range<usize>,
    w2: Range<usize>,
    b2: Range<usize>,
    w3: Range<usize>,
    b3: Range<usize>,
    f1: Range<usize>,
    c1: Range<usize>,
    f2: Range<usize>,
    c2: Range<usize>,
}

impl At {
    fn of(layout: &crate::Layout) -> At {
        let r = |name: &str| layout.get(name).expect("CNN-s layouts name every tensor").range();
        At {
            w1: r("conv1.weight"),
            b1: r("conv1.bias"),
            w2: r("conv2.weight"),
            b2: r("conv2.bias"),
            w3: r("conv3.weight"),
            b3: r("conv3.bias"),
            f1: r("fc1.weight"),
            c1: r("fc1.bias"),
            f2: r("fc2.weight"),
            c2: r("fc2.bias"),
        }
    }
}

/// K CNN-s models in training, and the training split they learn from.
pub(super) struct CnnZoo<'a> {
    pub models: Models,
    classes: usize,
    at: At,
    /// The training split's examples, borrowed.
    x: &'a [f32],
    y: Vec<usize>,
}

impl<'a> CnnZoo<'a> {
    /// The CNN-s models of `arch` with stacked flat parameters `flat` (K × P), learning
    /// `train`; `None` for other architectures and for targets that are not classes.
    pub fn new(arch: &Arch, recipe: &TrainSpec, flat: &[f32], k: usize, train: &'a Split, task: Task) -> Option<Self> {
        let Arch::CnnS { classes } = arch else { return None };
        let Task::Classification { .. } = task else { return None };
        if train.x.len() != train.len() * SIDE * SIDE {
            return None;
        }
        let layout = arch.layout();
        Some(CnnZoo { models: Models::new(recipe, flat, k, layout.len()), classes: *classes, at: At::of(&layout), x: &train.x, y: train.y.iter().map(|&v| v as usize).collect() })
    }

    /// One optimiser step on the batch `indices` (K·B example indices, model-major).
    pub fn step(&mut self, indices: &[i64]) {
        let b = indices.len() / self.models.k().max(1);
        let update = self.models.updates(1)[0];
        let shared = Shared { at: &self.at, x: self.x, y: &self.y };
        let (p, classes) = (self.models.p(), self.classes);
        self.models.each(|| Work::new(p, classes), |work, j, mut model| train_model(&shared, work, &mut model, &indices[j * b..(j + 1) * b], &update));
    }
}

/// What every thread reads.
struct Shared<'a> {
    at: &'a At,
    x: &'a [f32],
    y: &'a [usize],
}

/// One thread's buffers: a model's gradient and one image's activations.
struct Work {
    grad: Vec<f32>,
    /// conv1 before pooling; tanh(pool(conv1)) and where each window's maximum was.
    z1: Vec<f32>,
    h1: Vec<f32>,
    arg1: Vec<u32>,
    pairs: Pairs,
    z2: Vec<f32>,
    h2: Vec<f32>,
    arg2: Vec<u32>,
    h3: Vec<f32>,
    a: Vec<f32>,
    logits: Vec<f32>,
    /// Gradients with respect to h1, h2, h3 and a.
    dh1: Vec<f32>,
    dh2: Vec<f32>,
    dh3: Vec<f32>,
    da: Vec<f32>,
    /// conv2's backward works channels-last ([`conv2_backward`]).
    last: ChannelsLast,
}

/// conv2's weights and their gradient as [out][row][column][in], h1 and its gradient as
/// [row][column][channel].
struct ChannelsLast {
    w2: Vec<f32>,
    dw2: Vec<f32>,
    h1: Vec<f32>,
    dh1: Vec<f32>,
}

impl Work {
    fn new(p: usize, classes: usize) -> Self {
        Work {
            grad: vec![0.0; p],
            z1: vec![0.0; C1 * O1 * O1],
            h1: vec![0.0; C1 * P1 * P1],
            arg1: vec![0; C1 * P1 * P1],
            pairs: Pairs::default(),
            z2: vec![0.0; C2 * O2 * O2],
            h2: vec![0.0; C2 * P2 * P2],
            arg2: vec![0; C2 * P2 * P2],
            h3: vec![0.0; FLAT],
            a: vec![0.0; HIDDEN],
            logits: vec![0.0; classes],
            dh1: vec![0.0; C1 * P1 * P1],
            dh2: vec![0.0; C2 * P2 * P2],
            dh3: vec![0.0; FLAT],
            da: vec![0.0; HIDDEN],
            last: ChannelsLast { w2: vec![0.0; C2 * C1 * K2 * K2], dw2: vec![0.0; C2 * C1 * K2 * K2], h1: vec![0.0; C1 * P1 * P1], dh1: vec![0.0; C1 * P1 * P1] },
        }
    }
}

/// One model's step: the gradient of its mean loss over `batch`, then the update.
fn train_model(s: &Shared, work: &mut Work, model: &mut Model, batch: &[i64], update: &Update) {
    gradient(s, work, model.weights, batch);
    model.update(&work.grad, update);
}

/// The gradient of a model's mean loss over `batch` with weights `w`, into `work.grad`.
fn gradient(s: &Shared, work: &mut Work, w: &[f32], batch: &[i64]) {
    work.grad.iter_mut().for_each(|g| *g = 0.0);
    conv2_channels_last(&w[s.at.w2.clone()], &mut work.last.w2);
    work.last.dw2.iter_mut().for_each(|g| *g = 0.0);
    let scale = 1.0 / batch.len() as f32;
    for &i in batch {
        let i = i as usize;
        let img = &s.x[i * SIDE * SIDE..(i + 1) * SIDE * SIDE];
        forward(s.at, w, img, work);
        backward(s.at, w, img, s.y[i], scale, work);
    }
    conv2_from_channels_last(&work.last.dw2, &mut work.grad[s.at.w2.clone()]);
}

/// conv2's weights from PyTorch's [out][in][row][column] to [out][row][column][in].
fn conv2_channels_last(w: &[f32], wt: &mut [f32]) {
    conv2_positions().for_each(|(torch, last)| wt[last] = w[torch]);
}

/// The inverse of [`conv2_channels_last`].
fn conv2_from_channels_last(wt: &[f32], w: &mut [f32]) {
    conv2_positions().for_each(|(torch, last)| w[torch] = wt[last]);
}

/// Each of conv2's weights' place in PyTorch's layout and channels-last.
fn conv2_positions() -> impl Iterator<Item = (usize, usize)> {
    (0..C2).flat_map(|o| (0..C1).flat_map(move |c| (0..K2 * K2).map(move |t| ((o * C1 + c) * K2 * K2 + t, (o * K2 * K2 + t) * C1 + c))))
}

/// One image through one model, keeping what the backward needs in `work`.
fn forward(at: &At, w: &[f32], img: &[f32], work: &mut Work) {
    conv1(&w[at.w1.clone()], &w[at.b1.clone()], img, &mut work.z1);
    pool_tanh_conv1(&work.z1, &mut work.pairs, &mut work.h1, &mut work.arg1);
    conv2(&w[at.w2.clone()], &w[at.b2.clone()], &work.h1, &mut work.z2);
    pool_tanh_conv2(&work.z2, &mut work.pairs, &mut work.h2, &mut work.arg2);
    conv3(&w[at.w3.clone()], &w[at.b3.clone()], &work.h2, &mut work.h3);
    tanh_in_place(&mut work.h3);
    dense(&w[at.f1.clone()], &w[at.c1.clone()], &work.h3, &mut work.a);
    tanh_in_place(&mut work.a);
    dense(&w[at.f2.clone()], &w[at.c2.clone()], &work.a, &mut work.logits);
}

/// Adds the gradient of `scale` × this image's cross-entropy to `work.grad`.
fn backward(at: &At, w: &[f32], img: &[f32], label: usize, scale: f32, work: &mut Work) {
    let Work { grad, h1, arg1, h2, arg2, h3, a, logits, dh1, dh2, dh3, da, last, .. } = work;
    // d loss / d logits, in place.
    let classes = logits.len();
    super::target::cross_entropy_grad(logits, 1, classes, label, scale);
    // fc2, then through tanh.
    let (dw, db) = pair(grad, &at.f2, &at.c2);
    dense_backward(&w[at.f2.clone()], a, logits, dw, db, da);
    tanh_backward(da, a);
    let (dw, db) = pair(grad, &at.f1, &at.c1);
    dense_backward(&w[at.f1.clone()], h3, da, dw, db, dh3);
    tanh_backward(dh3, h3);
    let (dw, db) = pair(grad, &at.w3, &at.b3);
    conv3_backward(&w[at.w3.clone()], h2, dh3, dw, db, dh2);
    tanh_backward(dh2, h2);
    let db = &mut grad[at.b2.clone()];
    conv2_backward(h1, dh2, arg2, db, dh1, last);
    let (dw, db) = pair(grad, &at.w1, &at.b1);
    conv1_backward(img, dh1, arg1, dw, db);
}

/// The two disjoint parts `a` and `b` (`a` first) of a model's gradient.
#[inline(always)]
fn pair<'g>(grad: &'g mut [f32], a: &Range<usize>, b: &Range<usize>) -> (&'g mut [f32], &'g mut [f32]) {
    let (low, high) = grad.split_at_mut(b.start);
    (&mut low[a.clone()], &mut high[..b.len()])
}

multiversion! {
    /// conv1 (1 → 8 channels, 5×5, valid): an output row at a time, its 24 positions as vector
    /// lanes, four channels at once (each image row loaded once for the four; the four rows of
    /// sums fit the registers at AVX2 too), each sum in the order bias, then kernel rows and
    /// columns.
    fn conv1(w: &[f32], b: &[f32], img: &[f32], z: &mut [f32]) {
        const GROUP: usize = 4;
        for c0 in (0..C1).step_by(GROUP) {
            for y in 0..O1 {
                let mut acc = [[0.0f32; O1]; GROUP];
                for (g, row) in acc.iter_mut().enumerate() {
                    *row = [b[c0 + g]; O1];
                }
                for i in 0..K1 {
                    for j in 0..K1 {
                        let at = (y + i) * SIDE + j;
                        let src: &[f32; O1] = img[at..at + O1].try_into().expect("a row");
                        for (g, row) in acc.iter_mut().enumerate() {
                            let wv = w[(c0 + g) * K1 * K1 + i * K1 + j];
                            for x in 0..O1 {
                                row[x] = wv.mul_add(src[x], row[x]);
                            }
                        }
                    }
                }
                for (g, row) in acc.iter().enumerate() {
                    let c = c0 + g;
                    z[(c * O1 + y) * O1..(c * O1 + y + 1) * O1].copy_from_slice(row);
                }
            }
        }
    }
}

multiversion! {
    /// conv2 (8 → 6 channels, 5×5, valid): all output channels of a row at once, 8 lanes.
    fn conv2(w: &[f32], b: &[f32], h: &[f32], z: &mut [f32]) {
        for y in 0..O2 {
            let mut acc = [[0.0f32; O2]; C2];
            for (o, row) in acc.iter_mut().enumerate() {
                *row = [b[o]; O2];
            }
            for c in 0..C1 {
                for i in 0..K2 {
                    let src_row = &h[(c * P1 + y + i) * P1..(c * P1 + y + i + 1) * P1];
                    for j in 0..K2 {
                        let src: &[f32; O2] = src_row[j..j + O2].try_into().expect("a row");
                        for (o, row) in acc.iter_mut().enumerate() {
                            let wv = w[((o * C1 + c) * K2 + i) * K2 + j];
                            for x in 0..O2 {
                                row[x] = wv.mul_add(src[x], row[x]);
                            }
                        }
                    }
                }
            }
            for (o, row) in acc.iter().enumerate() {
                z[(o * O2 + y) * O2..(o * O2 + y + 1) * O2].copy_from_slice(row);
            }
        }
    }
}

/// conv3 (6 → 4 channels, 2×2, valid) on the 4×4 maps: 864 multiply-adds, plain loops.
#[inline(always)]
fn conv3(w: &[f32], b: &[f32], h: &[f32], z: &mut [f32]) {
    for o in 0..C3 {
        for y in 0..O3 {
            for x in 0..O3 {
                let mut acc = b[o];
                for c in 0..C2 {
                    for i in 0..K3 {
                        for j in 0..K3 {
                            acc += w[((o * C2 + c) * K3 + i) * K3 + j] * h[(c * P2 + y + i) * P2 + x + j];
                        }
                    }
                }
                z[(o * O3 + y) * O3 + x] = acc;
            }
        }
    }
}

/// `out = W·x + b` for W (out × in), row-major as PyTorch stores it.
#[inline(always)]
fn dense(w: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    for (o, slot) in out.iter_mut().enumerate() {
        let mut acc = b[o];
        for (wv, xv) in w[o * n..(o + 1) * n].iter().zip(x) {
            acc += wv * xv;
        }
        *slot = acc;
    }
}

multiversion! {
    /// conv1's pooling: 8 maps of 24 × 24 to 12 × 12 ([`pool_tanh`]).
    fn pool_tanh_conv1(z: &[f32], pairs: &mut Pairs, h: &mut [f32], arg: &mut [u32]) {
        pool_tanh::<O1, P1>(z, C1, pairs, h, arg)
    }
}

multiversion! {
    /// conv2's pooling: 6 maps of 8 × 8 to 4 × 4 ([`pool_tanh`]).
    fn pool_tanh_conv2(z: &[f32], pairs: &mut Pairs, h: &mut [f32], arg: &mut [u32]) {
        pool_tanh::<O2, P2>(z, C2, pairs, h, arg)
    }
}

/// 2×2 max-pooling with stride 2 of `channels` maps of side `S` ([`max_pool_2x2`]; `H` = S / 2
/// windows a row), then tanh of each window's maximum. The sizes are constants, so the loops
/// are laid out for them.
#[inline(always)]
fn pool_tanh<const S: usize, const H: usize>(z: &[f32], channels: usize, pairs: &mut Pairs, h: &mut [f32], arg: &mut [u32]) {
    const { assert!(2 * H == S, "H windows of two a row") };
    max_pool_2x2(z, channels, S, S, pairs, h, arg);
    // Apart, so that it runs as vector lanes.
    for v in h[..channels * H * H].iter_mut() {
        *v = tanh(*v);
    }
}

/// dW += dout ⊗ x, db += dout, dx = Wᵀ·dout for `out = W·x + b`.
#[inline(always)]
fn dense_backward(w: &[f32], x: &[f32], dout: &[f32], dw: &mut [f32], db: &mut [f32], dx: &mut [f32]) {
    let n = x.len();
    dx.iter_mut().for_each(|v| *v = 0.0);
    for (o, &g) in dout.iter().enumerate() {
        db[o] += g;
        for (d, &xv) in dw[o * n..(o + 1) * n].iter_mut().zip(x) {
            *d += g * xv;
        }
        for (d, &wv) in dx.iter_mut().zip(&w[o * n..(o + 1) * n]) {
            *d += wv * g;
        }
    }
}

/// conv3's backward: weight and bias gradients, and the gradient with respect to its input.
#[inline(always)]
fn conv3_backward(w: &[f32], h: &[f32], dz: &[f32], dw: &mut [f32], db: &mut [f32], dh: &mut [f32]) {
    dh.iter_mut().for_each(|v| *v = 0.0);
    for o in 0..C3 {
        for y in 0..O3 {
            for x in 0..O3 {
                let g = dz[(o * O3 + y) * O3 + x];
                db[o] += g;
                for c in 0..C2 {
                    for i in 0..K3 {
                        for j in 0..K3 {
                            let wi = ((o * C2 + c) * K3 + i) * K3 + j;
                            let hi = (c * P2 + y + i) * P2 + x + j;
                            dw[wi] += g * h[hi];
                            dh[hi] += w[wi] * g;
                        }
                    }
                }
            }
        }
    }
}

multiversion! {
    /// conv2's backward through its max-pooling: only each window's maximum gets a gradient
    /// (`dp`, already through tanh), so a quarter of the output positions are visited. It runs
    /// channels-last ([`ChannelsLast`]: `h1` copied as [row][column][channel], the weights and
    /// their gradient as [out][row][column][in]), so that one kernel row of a window
    /// is 5 × 8 = 40 consecutive floats in all four and updates as vector lanes; in PyTorch's
    /// layout a kernel row is 5 floats and the loop ran on scalars (a quarter of CNN-s training
    /// time). `dh` comes out in PyTorch's layout, through the tanh that made `h1`.
    fn conv2_backward(h1: &[f32], dp: &[f32], arg: &[u32], db: &mut [f32], dh: &mut [f32], last: &mut ChannelsLast) {
        const ROW: usize = K2 * C1;
        let ChannelsLast { w2: w2t, dw2: dw2t, h1: h1t, dh1: dh1t } = last;
        for c in 0..C1 {
            for q in 0..P1 * P1 {
                h1t[q * C1 + c] = h1[c * P1 * P1 + q];
            }
        }
        dh1t.iter_mut().for_each(|v| *v = 0.0);
        for o in 0..C2 {
            for q in 0..P2 * P2 {
                let g = dp[o * P2 * P2 + q];
                let pos = arg[o * P2 * P2 + q] as usize;
                let (ay, ax) = (pos / O2, pos % O2);
                db[o] += g;
                for i in 0..K2 {
                    let hi = ((ay + i) * P1 + ax) * C1;
                    let wi = (o * K2 + i) * ROW;
                    let src: &[f32; ROW] = h1t[hi..hi + ROW].try_into().expect("a window row");
                    let wrow: &[f32; ROW] = w2t[wi..wi + ROW].try_into().expect("a kernel row");
                    axpy((&mut dw2t[wi..wi + ROW]).try_into().expect("a kernel row"), g, src);
                    axpy((&mut dh1t[hi..hi + ROW]).try_into().expect("a window row"), g, wrow);
                }
            }
        }
        for c in 0..C1 {
            for q in 0..P1 * P1 {
                let h = h1[c * P1 * P1 + q];
                dh[c * P1 * P1 + q] = dh1t[q * C1 + c] * (1.0 - h * h);
            }
        }
    }
}

/// `y += a·x`, one fused multiply-add per element. Computed in a copy of `y` and written back:
/// updated in place, with `y` and `x` both reached through [`ChannelsLast`]'s buffers, the
/// compiler kept the loop on scalars (it could not rule out that they overlap).
#[inline(always)]
fn axpy<const N: usize>(y: &mut [f32; N], a: f32, x: &[f32; N]) {
    let mut t = *y;
    for k in 0..N {
        t[k] = a.mul_add(x[k], t[k]);
    }
    *y = t;
}

multiversion! {
    /// conv1's weight and bias gradients through its max-pooling (no input gradient: it is the
    /// first layer).
    fn conv1_backward(img: &[f32], dp: &[f32], arg: &[u32], dw: &mut [f32], db: &mut [f32]) {
        for c in 0..C1 {
            // The channel's 25 sums stay in registers over its windows: accumulated in `dw`
            // itself, each window's update waited on the previous one's stores.
            let mut acc = [0.0f32; K1 * K1];
            for q in 0..P1 * P1 {
                let g = dp[c * P1 * P1 + q];
                let pos = arg[c * P1 * P1 + q] as usize;
                let (ay, ax) = (pos / O1, pos % O1);
                db[c] += g;
                for i in 0..K1 {
                    let src: &[f32; K1] = img[(ay + i) * SIDE + ax..(ay + i) * SIDE + ax + K1].try_into().expect("a window row");
                    for j in 0..K1 {
                        acc[i * K1 + j] = g.mul_add(src[j], acc[i * K1 + j]);
                    }
                }
            }
            for (d, a) in dw[c * K1 * K1..(c + 1) * K1 * K1].iter_mut().zip(acc) {
                *d += a;
            }
        }
    }
}

/// `d *= 1 − h²`: through tanh, given its outputs `h`.
#[inline(always)]
fn tanh_backward(d: &mut [f32], h: &[f32]) {
    for (d, &h) in d.iter_mut().zip(h) {
        *d *= 1.0 - h * h;
    }
}

#[inline(always)]
fn tanh_in_place(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = tanh(*x);
    }
}

/// tanh as a 13/6-degree rational function of x on [−9, 9] (±1 outside, to f32 precision),
/// accurate to a few ulp — the interpolant Eigen uses — in plain arithmetic, so it vectorizes
/// and gives the same bits at every vector width.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    #[allow(clippy::excessive_precision)]
    const ALPHA: [f32; 7] = [4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16];
    #[allow(clippy::excessive_precision)]
    const BETA: [f32; 4] = [4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06];
    let x = x.clamp(-9.0, 9.0);
    let x2 = x * x;
    let mut p = ALPHA[6];
    for &a in ALPHA[..6].iter().rev() {
        p = p * x2 + a;
    }
    let mut q = BETA[3];
    for &b in BETA[..3].iter().rev() {
        q = q * x2 + b;
    }
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels are compiled once per vector width, and the calibration may pick any of
    /// them: a gradient must be the same bits at each (the tests against the tape run at the
    /// width this machine picked only).
    #[test]
    fn a_gradient_is_the_same_bits_at_every_vector_width() {
        let (classes, n) = (10, 24);
        let layout = Arch::CnnS { classes }.layout();
        let at = At::of(&layout);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let x: Vec<f32> = (0..n * SIDE * SIDE).map(|_| uniform()).collect();
        let y: Vec<usize> = (0..n).map(|i| i % classes).collect();
        let w: Vec<f32> = (0..layout.len()).map(|_| (uniform() - 0.5) * 0.6).collect();
        let shared = Shared { at: &at, x: &x, y: &y };
        let batch: Vec<i64> = (0..n as i64).rev().collect();
        let grads: Vec<(crate::simd::Level, Vec<f32>)> = crate::simd::available()
            .into_iter()
            .map(|level| {
                crate::simd::at_level(level, || {
                    let mut work = Work::new(layout.len(), classes);
                    gradient(&shared, &mut work, &w, &batch);
                    (level, work.grad)
                })
            })
            .collect();
        let (first, reference) = &grads[0];
        assert!(reference.iter().filter(|g| **g != 0.0).count() > layout.len() / 2, "a gradient of mostly zeros proves little");
        for (level, grad) in &grads[1..] {
            let same = grad.iter().zip(reference).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "the gradient at {} differs from the one at {}", level.name(), first.name());
        }
    }

    #[test]
    fn the_rational_tanh_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 5e-5;
            let exact = (x as f64).tanh();
            let err = (super::tanh(x) as f64 - exact).abs() / (exact.abs().max(1e-30) * f32::EPSILON as f64);
            worst = worst.max(err);
        }
        assert!(worst < 4.0, "{worst} ulp");
        assert_eq!(super::tanh(20.0), 1.0);
        assert_eq!(super::tanh(-20.0), -1.0);
        assert!(super::tanh(f32::NAN).is_nan());
    }
}
