//! K MLPs trained as one computation, with the backward pass written out by hand and one fused
//! Adam pass over each parameter tensor: the MLP engine for GPUs (on the CPU, [`super::dense`]
//! trains one model at a time in cache and is faster).
//!
//! Why not the autodiff tape the other architectures use: on a zoo of small models the GEMMs
//! are a few milliseconds per step and everything around them — recording the tape, slicing
//! every layer out of one flat (K × P) tensor and scattering its gradient back, Adam as eight
//! separate passes over K × P floats — cost as much again. Here each layer's weights are their
//! own (K × out × in) tensor, the forward keeps what the backward needs, the backward is four
//! batched GEMM calls per layer (none for frozen layers, and no input gradient for the first),
//! and Adam reads and writes each parameter once per step (on the CPU; on a GPU it is tensor
//! ops with the same arithmetic). The flat layout is assembled only when weights are read.
//!
//! The arithmetic is the same as the tape's: the loss is the sum over models of each model's
//! mean loss on its own batch, so each model's gradient is its own; L2 weight decay is added to
//! the gradient; Adam as in PyTorch (bias-corrected, eps outside the square root).

use tch::{Kind, Tensor};
use weightlab_manifest::{Activation, Optimizer, TrainSpec};

use super::adam;
use crate::arch::Arch;
use crate::data::{Split, Task};

/// The training split on the device, as libtorch tensors.
pub(super) struct TchSplit {
    x: Tensor,
    y_class: Option<Tensor>,
    y_value: Option<Tensor>,
    features: i64,
}

impl TchSplit {
    pub fn new(split: &Split, features: usize, task: Task, device: tch::Device) -> Self {
        let x = Tensor::from_slice(&split.x).view([split.len() as i64, features as i64]).to_device(device);
        let (y_class, y_value) = match task {
            Task::Classification { .. } => (Some(Tensor::from_slice(&split.y.iter().map(|&v| v as i64).collect::<Vec<_>>()).to_device(device)), None),
            Task::Regression => (None, Some(Tensor::from_slice(&split.y).to_device(device))),
        };
        Self { x, y_class, y_value, features: features as i64 }
    }
}

/// One parameter tensor in training: its value, Adam's moments, and whether it trains.
struct Param {
    value: Tensor,
    moments: Option<(Tensor, Tensor)>,
    trains: bool,
}

/// K MLPs in training.
pub(super) struct MlpZoo {
    sizes: Vec<usize>,
    activation: Activation,
    k: i64,
    /// layers.i.weight (K × out × in) and layers.i.bias (K × 1 × out), in layer order.
    weights: Vec<Param>,
    biases: Vec<Param>,
    t: i32,
    lr: f64,
    weight_decay: f64,
}

impl MlpZoo {
    /// The MLPs of `arch` with the K stacked flat parameter vectors `flat` (K × P).
    pub fn new(arch: &Arch, recipe: &TrainSpec, flat: &[f32], k: usize, device: tch::Device) -> Option<Self> {
        let Arch::Mlp { sizes, activation } = arch else { return None };
        let mut zoo = MlpZoo { sizes: sizes.clone(), activation: *activation, k: k as i64, weights: Vec::new(), biases: Vec::new(), t: 0, lr: recipe.lr, weight_decay: recipe.weight_decay };
        let with_adam = recipe.optimizer == Optimizer::Adam;
        let param = |value: Tensor| {
            let moments = with_adam.then(|| (value.zeros_like(), value.zeros_like()));
            Param { value, moments, trains: true }
        };
        let (weights, biases) = zoo.split(arch, flat, device);
        zoo.weights = weights.into_iter().map(param).collect();
        zoo.biases = biases.into_iter().map(param).collect();
        Some(zoo)
    }

    /// Per-layer tensors of the flat (K × P) parameters.
    fn split(&self, arch: &Arch, flat: &[f32], device: tch::Device) -> (Vec<Tensor>, Vec<Tensor>) {
        let layout = arch.layout();
        let all = Tensor::from_slice(flat).view([self.k, layout.len() as i64]).to_device(device);
        let take = |name: String, shape: [i64; 3]| {
            let p = layout.get(&name).expect("MLP layouts name every layer");
            all.narrow(1, p.offset as i64, p.numel() as i64).reshape(shape).contiguous()
        };
        let k = self.k;
        (0..self.sizes.len() - 1)
            .map(|i| {
                let (fan_in, out) = (self.sizes[i] as i64, self.sizes[i + 1] as i64);
                (take(format!("layers.{i}.weight"), [k, out, fan_in]), take(format!("layers.{i}.bias"), [k, 1, out]))
            })
            .unzip()
    }

    /// Replaces the weights (K × P stacked), keeping the optimiser state.
    pub fn set_weights(&mut self, arch: &Arch, flat: &[f32]) {
        let device = self.weights[0].value.device();
        let (weights, biases) = self.split(arch, flat, device);
        for (p, v) in self.weights.iter_mut().zip(weights).chain(self.biases.iter_mut().zip(biases)) {
            p.value = v;
        }
    }

    /// The weights now, stacked (K × P) in the layout's order.
    pub fn weights(&self, arch: &Arch) -> Vec<f32> {
        let layout = arch.layout();
        let mut parts: Vec<(usize, Tensor)> = Vec::new();
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            for (name, t) in [(format!("layers.{i}.weight"), &w.value), (format!("layers.{i}.bias"), &b.value)] {
                parts.push((layout.get(&name).expect("MLP layouts name every layer").offset, t.view([self.k, -1])));
            }
        }
        parts.sort_by_key(|(offset, _)| *offset);
        let flat = Tensor::cat(&parts.iter().map(|(_, t)| t).collect::<Vec<_>>(), 1).to_device(tch::Device::Cpu);
        Vec::<f32>::try_from(flat.view([-1])).expect("f32 parameters")
    }

    /// From now on only the parameters `trains` says (by layout name) change.
    pub fn freeze(&mut self, trains: impl Fn(&str) -> bool) {
        for (i, (w, b)) in self.weights.iter_mut().zip(self.biases.iter_mut()).enumerate() {
            w.trains = trains(&format!("layers.{i}.weight"));
            b.trains = trains(&format!("layers.{i}.bias"));
        }
    }

    /// Fresh optimiser state with learning rate `lr`.
    pub fn restart_optimizer(&mut self, lr: f64) {
        self.lr = lr;
        self.t = 0;
        for p in self.weights.iter_mut().chain(self.biases.iter_mut()) {
            if let Some((m, v)) = p.moments.as_mut() {
                let _ = m.zero_();
                let _ = v.zero_();
            }
        }
    }

    /// One optimiser step on the batch `indices` (K·B example indices, model-major) of `data`.
    pub fn step(&mut self, data: &TchSplit, indices: &[i64]) {
        let _guard = tch::no_grad_guard();
        let device = self.weights[0].value.device();
        let k = self.k;
        let b = indices.len() as i64 / k;
        let idx = Tensor::from_slice(indices).to_device(device);
        let x = data.x.index_select(0, &idx).view([k, b, data.features]);
        // Forward, keeping each layer's input and pre-activation.
        let last = self.weights.len() - 1;
        let mut inputs: Vec<Tensor> = Vec::with_capacity(last + 1);
        let mut pre: Vec<Tensor> = Vec::with_capacity(last);
        let mut h = x;
        for i in 0..=last {
            let z = self.biases[i].value.baddbmm(&h, &self.weights[i].value.transpose(1, 2), 1.0, 1.0);
            inputs.push(h);
            h = if i < last {
                let a = activate(&z, self.activation);
                pre.push(z);
                a
            } else {
                z
            };
        }
        // d(sum over models of each model's mean loss) / d(output).
        let mut grad = match (&data.y_class, &data.y_value) {
            (Some(y), _) => {
                let onehot = Tensor::zeros(h.size(), (Kind::Float, device)).scatter_value(2, &y.index_select(0, &idx).view([k, b, 1]), 1.0);
                (h.softmax(2, Kind::Float) - onehot) / b as f64
            }
            (_, Some(y)) => (h - y.index_select(0, &idx).view([k, b, 1])) * (2.0 / b as f64),
            _ => unreachable!("a split has targets"),
        };
        // Backward, last layer first; no input gradient below the lowest layer that trains.
        let lowest = (0..=last).find(|&i| self.weights[i].trains || self.biases[i].trains);
        let Some(lowest) = lowest else { return };
        let mut grads: Vec<(usize, bool, Tensor)> = Vec::new();
        for i in (lowest..=last).rev() {
            if self.weights[i].trains {
                grads.push((i, true, grad.transpose(1, 2).bmm(&inputs[i])));
            }
            if self.biases[i].trains {
                grads.push((i, false, grad.sum_dim_intlist(1, true, Kind::Float)));
            }
            if i > lowest {
                let upstream = grad.bmm(&self.weights[i].value);
                grad = upstream * derivative(&pre[i - 1], self.activation);
            }
        }
        self.t += 1;
        for (i, is_weight, g) in grads {
            let p = if is_weight { &mut self.weights[i] } else { &mut self.biases[i] };
            update(p, g, self.lr, self.weight_decay, self.t);
        }
    }
}

fn activate(z: &Tensor, a: Activation) -> Tensor {
    match a {
        Activation::Relu => z.relu(),
        Activation::Tanh => z.tanh(),
        Activation::Silu => z.silu(),
        Activation::Sine => (z * 30.0).sin(),
    }
}

/// The activation's derivative at the pre-activations `z`.
fn derivative(z: &Tensor, a: Activation) -> Tensor {
    match a {
        Activation::Relu => z.gt(0.0).to_kind(Kind::Float),
        Activation::Tanh => 1.0 - z.tanh().square(),
        Activation::Silu => {
            let s = z.sigmoid();
            &s * (1.0 + z * (1.0 - &s))
        }
        Activation::Sine => (z * 30.0).cos() * 30.0,
    }
}

/// One Adam (or SGD) update of `p` with gradient `g` at step `t`.
fn update(p: &mut Param, g: Tensor, lr: f64, weight_decay: f64, t: i32) {
    let (step_size, eps) = adam::corrected(lr, t);
    match p.moments.as_mut() {
        None => {
            let g = if weight_decay > 0.0 { g + &p.value * weight_decay } else { g };
            let _ = p.value.g_sub_(&(g * lr));
        }
        Some((m, v)) if p.value.device() == tch::Device::Cpu => fused_adam(&mut p.value, &g.contiguous(), m, v, adam::Step::at(lr, weight_decay, t)),
        Some((m, v)) => {
            let g = if weight_decay > 0.0 { g + &p.value * weight_decay } else { g };
            let _ = m.g_mul_scalar_(adam::BETA1).g_add_(&(&g * (1.0 - adam::BETA1)));
            let _ = v.g_mul_scalar_(adam::BETA2).g_add_(&(&g * &g * (1.0 - adam::BETA2)));
            let _ = p.value.g_sub_(&(&*m * step_size / (v.sqrt() + eps)));
        }
    }
}

/// Adam in one pass over the parameter, its gradient and moments (CPU tensors, contiguous
/// f32), split over libtorch's threads.
fn fused_adam(p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, c: adam::Step) {
    let n = p.numel();
    for t in [&*p, g, &*m, &*v] {
        assert!(t.is_contiguous() && t.kind() == Kind::Float && t.numel() == n, "fused Adam needs contiguous f32 tensors of one size");
    }
    // SAFETY: four distinct contiguous f32 CPU tensors of n elements, alive for this call; only
    // this function touches them meanwhile (no autograd, no other thread).
    let (ps, gs, ms, vs) = unsafe {
        (
            std::slice::from_raw_parts_mut(p.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts(g.data_ptr() as *const f32, n),
            std::slice::from_raw_parts_mut(m.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts_mut(v.data_ptr() as *mut f32, n),
        )
    };
    let run = |ps: &mut [f32], gs: &[f32], ms: &mut [f32], vs: &mut [f32]| adam::adam(ps, gs, ms, vs, c);
    let threads = (tch::get_num_threads().max(1) as usize).min(n / 65_536).max(1);
    if threads == 1 {
        run(ps, gs, ms, vs);
        return;
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        for (((p, g), m), v) in ps.chunks_mut(chunk).zip(gs.chunks(chunk)).zip(ms.chunks_mut(chunk)).zip(vs.chunks_mut(chunk)) {
            s.spawn(move || run(p, g, m, v));
        }
    });
}
