//! The host side of `weightlab:plugin/tensors`: plugin tensors are libtorch tensors (through
//! `tch`, which has dynamic rank, autograd and libtorch's own optimisers) kept in the store's
//! resource table. Every operation is fallible: libtorch errors become a trap whose message
//! names the operation, so a broken plugin fails with a reason instead of crashing the engine.
//!
//! Memory is accounted before it is allocated: each operation first computes the size of its
//! output (and of any large working buffer) from the input shapes ([`crate::shapes`]) and asks
//! the plugin's [`crate::budget::Budget`]; only then does libtorch run. Each handle keeps the charges of what
//! libtorch keeps alive through it (its storage, the base of a view, the autograd inputs it
//! was computed from), so the cap covers the autograd graph, gradients and optimiser state.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Reduction, Tensor};
use wasmtime::component::Resource;

use crate::bindings::weightlab::plugin::tensors::{self as wit, OptimizerKind, Unary};
use crate::budget::Charge;
use crate::shapes::{self, numel};
use crate::state::PluginState;

/// A tensor held by a plugin, with the charges that keep its memory accounted.
pub struct TensorEntry {
    pub tensor: Tensor,
    /// The storage this tensor uses (shared by views of it).
    storage: Arc<Charge>,
    /// For tensors in an autograd graph: a node keeping the storage and the inputs alive.
    graph: Option<Arc<Charge>>,
}

impl TensorEntry {
    /// The charge that covers everything this handle keeps alive.
    fn root(&self) -> Arc<Charge> {
        self.graph.clone().unwrap_or_else(|| self.storage.clone())
    }
}

/// An optimiser held by a plugin, with its state's charge.
pub struct OptimizerEntry {
    opt: Optim,
    _state: Arc<Charge>,
}

/// Adam and AdamW in libtorch's fused kernel; plain SGD (no state) in its C++ optimiser.
enum Optim {
    Sgd(tch::COptimizer),
    Adam(crate::fused_adam::FusedAdam),
}

impl Optim {
    fn step(&self) -> Result<(), tch::TchError> {
        match self {
            Optim::Sgd(opt) => opt.step(),
            Optim::Adam(opt) => opt.step(),
        }
    }

    fn zero_grad(&self) -> Result<(), tch::TchError> {
        match self {
            Optim::Sgd(opt) => opt.zero_grad(),
            Optim::Adam(opt) => {
                opt.zero_grad();
                Ok(())
            }
        }
    }

    fn set_lr(&mut self, lr: f64) -> Result<(), tch::TchError> {
        match self {
            Optim::Sgd(opt) => opt.set_learning_rate(lr),
            Optim::Adam(opt) => {
                opt.set_lr(lr);
                Ok(())
            }
        }
    }
}

/// How an operation's result relates to its inputs' memory.
#[derive(Clone, Copy, PartialEq)]
enum Out {
    /// Fresh storage.
    New,
    /// Shares the first input's storage (transpose, narrow, expand, detach, …).
    View,
    /// Either, depending on strides (reshape): a view when it starts at the input's data.
    MaybeView,
}

/// The device host tensors live on: the parent's choice ([`use_device`]), or in a worker
/// process what its parent passed in `WEIGHTLAB_DEVICE`; the CPU otherwise.
static DEVICE: std::sync::OnceLock<tch::Device> = std::sync::OnceLock::new();

/// The environment variable a worker process reads its device from.
pub const DEVICE_VAR: &str = "WEIGHTLAB_DEVICE";

/// Puts this process's host tensors (and its workers') on `device`; the first call holds.
pub fn use_device(device: tch::Device) -> tch::Device {
    *DEVICE.get_or_init(|| device)
}

/// The device host tensors live on.
pub fn device() -> tch::Device {
    *DEVICE.get_or_init(|| match std::env::var(DEVICE_VAR).ok().as_deref().and_then(|v| v.strip_prefix("cuda:")).and_then(|n| n.parse().ok()) {
        Some(n) => tch::Device::Cuda(n),
        None => tch::Device::Cpu,
    })
}

/// How [`device`] is written in `WEIGHTLAB_DEVICE`.
pub fn device_name() -> String {
    match device() {
        tch::Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".into(),
    }
}

fn opts() -> (Kind, tch::Device) {
    (Kind::Float, device())
}

/// A borrowed handle to the same table entry, for passing an owned handle where the generated
/// bindings take one by value without giving it up.
pub(crate) fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(r.rep())
}

impl PluginState {
    /// Puts a tensor the host made (e.g. the zoo's weights) in the table, charged as new storage.
    pub fn push_tensor(&mut self, tensor: Tensor) -> Result<Resource<TensorEntry>> {
        let elements = numel(&tensor.size());
        self.budget.admit("input", &tensor.size(), shapes::bytes(elements), Some(0))?;
        self.store(tensor, &[], false)
    }

    /// Stores an op's result: charges its storage (or shares its base's) and links the
    /// autograd inputs when the result is part of a graph.
    fn store(&mut self, tensor: Tensor, inputs: &[Arc<Charge>], is_view: bool) -> Result<Resource<TensorEntry>> {
        let storage = match (is_view, inputs.first()) {
            (true, Some(base)) => base.clone(),
            _ => {
                let bytes = numel(&tensor.size()).unwrap_or(u64::MAX).saturating_mul(crate::budget::ELEMENT_BYTES);
                self.budget.charge(bytes, vec![])
            }
        };
        let graph = tensor.requires_grad().then(|| {
            let mut parents = vec![storage.clone()];
            parents.extend(inputs.iter().cloned());
            self.budget.charge(0, parents)
        });
        Ok(self.table.push(TensorEntry { tensor, storage, graph })?)
    }

    pub fn tensor(&self, r: &Resource<TensorEntry>) -> Result<&Tensor> {
        Ok(&self.table.get(r)?.tensor)
    }

    /// The tensors and charges of `inputs`, detached from the table borrow.
    fn inputs(&self, inputs: &[&Resource<TensorEntry>]) -> Result<(Vec<Tensor>, Vec<Arc<Charge>>)> {
        let mut tensors = Vec::with_capacity(inputs.len());
        let mut charges = Vec::with_capacity(inputs.len());
        for r in inputs {
            let e = self.table.get(r)?;
            tensors.push(e.tensor.shallow_clone());
            charges.push(e.root());
        }
        Ok((tensors, charges))
    }

    /// Runs one operation: checks that `out_elems` of output plus `work_elems` of working
    /// memory fit the budget, then calls libtorch, then stores the result.
    fn op(
        &mut self,
        what: &'static str,
        inputs: &[&Resource<TensorEntry>],
        out_elems: Option<u64>,
        work_elems: Option<u64>,
        out: Out,
        f: impl FnOnce(&[Tensor]) -> Result<Tensor, tch::TchError>,
    ) -> Result<Resource<TensorEntry>> {
        let (tensors, charges) = self.inputs(inputs)?;
        let shapes: Vec<Vec<i64>> = tensors.iter().map(Tensor::size).collect();
        let out_bytes = if out == Out::View { Some(0) } else { shapes::bytes(out_elems) };
        let shown: &dyn std::fmt::Debug = if shapes.len() == 1 { &shapes[0] } else { &shapes };
        self.budget.admit(what, shown, out_bytes, shapes::bytes(work_elems)).map_err(|e| anyhow!(e))?;
        let result = self.activity.during(what, || f(&tensors));
        let t = result.with_context(|| format!("tensor.{what}: input shapes {shapes:?}"))?;
        let is_view = match out {
            Out::View => true,
            Out::MaybeView => t.numel() > 0 && tensors.first().is_some_and(|x| x.data_ptr() == t.data_ptr()),
            Out::New => false,
        };
        self.store(t, &charges, is_view)
    }

    /// A tensor made from nothing (zeros, randn, …) of `shape`.
    fn create(&mut self, what: &'static str, shape: &[u32], work_elems: Option<u64>, f: impl FnOnce(&[i64], usize) -> Result<Tensor, tch::TchError>) -> Result<Resource<TensorEntry>> {
        let dims = shapes::from_u32(shape);
        let elements = numel(&dims);
        self.budget.admit(what, &shape, shapes::bytes(elements), shapes::bytes(work_elems)).map_err(|e| anyhow!(e))?;
        let n = usize::try_from(elements.unwrap_or(u64::MAX)).map_err(|_| anyhow!("tensor.{what}: shape {shape:?} is too large"))?;
        // Values made on the CPU (seeded draws, lists) move to the device; a no-op there.
        let result = self.activity.during(what, || f(&dims, n)?.f_to_device(device()));
        let t = result.with_context(|| format!("tensor.{what} of shape {shape:?}"))?;
        self.store(t, &[], false)
    }

    /// An elementwise op over one input: same number of elements out.
    fn map(&mut self, what: &'static str, r: &Resource<TensorEntry>, f: impl FnOnce(&Tensor) -> Result<Tensor, tch::TchError>) -> Result<Resource<TensorEntry>> {
        let n = numel(&self.tensor(r)?.size());
        self.op(what, &[r], n, Some(0), Out::New, |t| f(&t[0]))
    }

    /// A binary elementwise op (broadcasting).
    fn zip(&mut self, what: &'static str, a: &Resource<TensorEntry>, b: &Resource<TensorEntry>, f: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor, tch::TchError>) -> Result<Resource<TensorEntry>> {
        let n = shapes::elementwise(&self.tensor(a)?.size(), &self.tensor(b)?.size());
        self.op(what, &[a, b], n, Some(0), Out::New, |t| f(&t[0], &t[1]))
    }

    /// A reduction along `dim`.
    fn reduce(&mut self, what: &'static str, r: &Resource<TensorEntry>, dim: i32, work: bool, f: impl FnOnce(&Tensor) -> Result<Tensor, tch::TchError>) -> Result<Resource<TensorEntry>> {
        let size = self.tensor(r)?.size();
        let work = if work { numel(&size) } else { Some(0) };
        self.op(what, &[r], shapes::reduced(&size, dim), work, Out::New, |t| f(&t[0]))
    }

    /// A view of one input (no new storage).
    fn view(&mut self, what: &'static str, r: &Resource<TensorEntry>, f: impl FnOnce(&Tensor) -> Result<Tensor, tch::TchError>) -> Result<Resource<TensorEntry>> {
        self.op(what, &[r], Some(0), Some(0), Out::View, |t| f(&t[0]))
    }

    fn optional(&self, r: &Option<Resource<TensorEntry>>) -> Result<Option<Tensor>> {
        r.as_ref().map(|r| self.tensor(r).map(Tensor::shallow_clone)).transpose()
    }

    fn size(&self, r: &Resource<TensorEntry>) -> Result<Vec<i64>> {
        Ok(self.tensor(r)?.size())
    }
}

impl wit::Host for PluginState {}

impl wit::HostTensor for PluginState {
    fn zeros(&mut self, shape: Vec<u32>) -> Result<Resource<TensorEntry>> {
        self.create("zeros", &shape, Some(0), |dims, _| Tensor::f_zeros(dims, opts()))
    }

    fn full(&mut self, shape: Vec<u32>, value: f32) -> Result<Resource<TensorEntry>> {
        self.create("full", &shape, Some(0), |dims, _| Tensor::f_full(dims, value as f64, opts()))
    }

    fn from_list(&mut self, data: Vec<f32>, shape: Vec<u32>) -> Result<Resource<TensorEntry>> {
        if numel(&shapes::from_u32(&shape)) != Some(data.len() as u64) {
            bail!("tensor.from-list: {} values do not fill shape {shape:?}", data.len());
        }
        self.create("from-list", &shape, Some(0), |dims, _| Tensor::f_from_slice(&data)?.f_reshape(dims))
    }

    fn randn(&mut self, shape: Vec<u32>, seed: u64) -> Result<Resource<TensorEntry>> {
        let n = numel(&shapes::from_u32(&shape));
        self.create("randn", &shape, n, |dims, _| crate::native::draw(dims, seed, true))
    }

    fn rand(&mut self, shape: Vec<u32>, seed: u64) -> Result<Resource<TensorEntry>> {
        let n = numel(&shapes::from_u32(&shape));
        self.create("rand", &shape, n, |dims, _| crate::native::draw(dims, seed, false))
    }

    fn randperm(&mut self, n: u32, seed: u64) -> Result<Resource<TensorEntry>> {
        self.create("randperm", &[n], Some(n as u64), |_, n| {
            let mut order: Vec<f32> = (0..n).map(|i| i as f32).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            Tensor::f_from_slice(&order)
        })
    }

    fn arange(&mut self, n: u32) -> Result<Resource<TensorEntry>> {
        self.create("arange", &[n], Some(0), |_, n| Tensor::f_arange(n as i64, opts()))
    }

    fn cat(&mut self, parts: Vec<Resource<TensorEntry>>, dim: i32) -> Result<Resource<TensorEntry>> {
        let refs: Vec<&Resource<TensorEntry>> = parts.iter().collect();
        let n = shapes::sum(parts.iter().map(|p| self.size(p).ok().and_then(|s| numel(&s))));
        self.op("cat", &refs, n, Some(0), Out::New, |t| Tensor::f_cat(t, dim as i64))
    }

    fn stack(&mut self, parts: Vec<Resource<TensorEntry>>, dim: i32) -> Result<Resource<TensorEntry>> {
        let refs: Vec<&Resource<TensorEntry>> = parts.iter().collect();
        let n = shapes::sum(parts.iter().map(|p| self.size(p).ok().and_then(|s| numel(&s))));
        self.op("stack", &refs, n, Some(0), Out::New, |t| Tensor::f_stack(t, dim as i64))
    }

    fn shape(&mut self, r: Resource<TensorEntry>) -> Result<Vec<u32>> {
        Ok(self.size(&r)?.into_iter().map(|d| d as u32).collect())
    }

    fn to_list(&mut self, r: Resource<TensorEntry>) -> Result<Vec<f32>> {
        let size = self.size(&r)?;
        // A contiguous copy and the list itself, both released when the call returns.
        self.budget.admit("to-list", &size, Some(0), shapes::bytes(numel(&size).and_then(|n| n.checked_mul(2)))).map_err(|e| anyhow!(e))?;
        let t = self.tensor(&r)?.f_contiguous()?.f_to_kind(Kind::Float)?.f_view([-1])?.f_to_device(tch::Device::Cpu)?;
        Vec::<f32>::try_from(&t).context("tensor.to-list")
    }

    fn item(&mut self, r: Resource<TensorEntry>) -> Result<f32> {
        let t = self.tensor(&r)?;
        if t.numel() != 1 {
            bail!("tensor.item on a tensor of shape {:?}", t.size());
        }
        Ok(t.f_double_value(&[])? as f32)
    }

    fn add(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.zip("add", &a, &b, |x, y| x.f_add(y))
    }

    fn sub(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.zip("sub", &a, &b, |x, y| x.f_sub(y))
    }

    fn mul(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.zip("mul", &a, &b, |x, y| x.f_mul(y))
    }

    fn div(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.zip("div", &a, &b, |x, y| x.f_div(y))
    }

    fn affine(&mut self, r: Resource<TensorEntry>, a: f32, b: f32) -> Result<Resource<TensorEntry>> {
        let n = numel(&self.size(&r)?);
        self.op("affine", &[&r], n, n, Out::New, |t| t[0].f_mul_scalar(a as f64)?.f_add_scalar(b as f64))
    }

    fn pow(&mut self, r: Resource<TensorEntry>, exponent: f32) -> Result<Resource<TensorEntry>> {
        self.map("pow", &r, |t| t.f_pow_tensor_scalar(exponent as f64))
    }

    fn apply(&mut self, r: Resource<TensorEntry>, f: Unary) -> Result<Resource<TensorEntry>> {
        self.map("apply", &r, |t| match f {
            Unary::Neg => t.f_neg(),
            Unary::Exp => t.f_exp(),
            Unary::Log => t.f_log(),
            Unary::Sqrt => t.f_sqrt(),
            Unary::Abs => t.f_abs(),
            Unary::Square => t.f_square(),
            Unary::Sin => t.f_sin(),
            Unary::Cos => t.f_cos(),
            Unary::Floor => t.f_floor(),
            Unary::Tanh => t.f_tanh(),
            Unary::Sigmoid => t.f_sigmoid(),
            Unary::Relu => t.f_relu(),
            Unary::Gelu => t.f_gelu("none"),
            Unary::Silu => crate::native::enabled().then(|| crate::native::silu(t)).flatten().unwrap_or_else(|| t.f_silu()),
        })
    }

    fn clamp(&mut self, r: Resource<TensorEntry>, lo: f32, hi: f32) -> Result<Resource<TensorEntry>> {
        self.map("clamp", &r, |t| t.f_clamp(lo as f64, hi as f64))
    }

    fn greater(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        // A boolean result, then its float copy.
        self.zip("greater", &a, &b, |x, y| x.f_gt_tensor(y)?.f_to_kind(Kind::Float))
    }

    fn matmul(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let (x, y) = (self.size(&a)?, self.size(&b)?);
        let (out, work) = match shapes::matmul(&x, &y) {
            // Broadcast batches are expanded into contiguous copies of both operands.
            Some((shape, batch)) if batch > 1 => {
                let matrix = |s: &[i64]| numel(&s[s.len().saturating_sub(2)..]);
                (numel(&shape), shapes::sum([matrix(&x), matrix(&y)]).and_then(|m| m.checked_mul(batch)))
            }
            Some((shape, _)) => (numel(&shape), Some(0)),
            None => (numel(&x).max(numel(&y)), Some(0)),
        };
        self.op("matmul", &[&a, &b], out, work, Out::New, |t| t[0].f_matmul(&t[1]))
    }

    fn sum_all(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.op("sum-all", &[&r], Some(1), Some(0), Out::New, |t| t[0].f_sum(None::<Kind>))
    }

    fn mean_all(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.op("mean-all", &[&r], Some(1), Some(0), Out::New, |t| t[0].f_mean(None::<Kind>))
    }

    fn sum(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.reduce("sum", &r, dim, false, |t| t.f_sum_dim_intlist([dim as i64].as_slice(), keepdim, None::<Kind>))
    }

    fn mean(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.reduce("mean", &r, dim, false, |t| t.f_mean_dim([dim as i64].as_slice(), keepdim, None::<Kind>))
    }

    fn std(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.reduce("std", &r, dim, true, |t| t.f_std_dim([dim as i64].as_slice(), true, keepdim))
    }

    fn max(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        // Values and int64 indices.
        self.reduce("max", &r, dim, true, |t| t.f_max_dim(dim as i64, keepdim).map(|(v, _)| v))
    }

    fn min(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.reduce("min", &r, dim, true, |t| t.f_min_dim(dim as i64, keepdim).map(|(v, _)| v))
    }

    fn argmax(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.reduce("argmax", &r, dim, true, |t| t.f_argmax(dim as i64, false)?.f_to_kind(Kind::Float))
    }

    fn reshape(&mut self, r: Resource<TensorEntry>, shape: Vec<i64>) -> Result<Resource<TensorEntry>> {
        let size = self.size(&r)?;
        // A copy when the strides do not allow a view: charged as one until it proves a view.
        self.op("reshape", &[&r], numel(&size), Some(0), Out::MaybeView, |t| t[0].f_reshape(shape.as_slice())).with_context(|| format!("tensor.reshape from {size:?} to {shape:?}"))
    }

    fn transpose(&mut self, r: Resource<TensorEntry>, dim0: i32, dim1: i32) -> Result<Resource<TensorEntry>> {
        self.view("transpose", &r, |t| t.f_transpose(dim0 as i64, dim1 as i64))
    }

    fn narrow(&mut self, r: Resource<TensorEntry>, dim: i32, start: u32, len: u32) -> Result<Resource<TensorEntry>> {
        let size = self.size(&r)?;
        self.view("narrow", &r, |t| t.f_narrow(dim as i64, start as i64, len as i64)).with_context(|| format!("tensor.narrow(dim {dim}, {start}+{len}) of {size:?}"))
    }

    fn index_select(&mut self, r: Resource<TensorEntry>, dim: i32, index: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let (size, picks) = (self.size(&r)?, numel(&self.size(&index)?));
        let out = shapes::reduced(&size, dim).and_then(|row| row.checked_mul(picks?));
        self.op("index-select", &[&r, &index], out, picks.and_then(|p| p.checked_mul(2)), Out::New, |t| t[0].f_index_select(dim as i64, &t[1].f_to_kind(Kind::Int64)?))
    }

    fn unsqueeze(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.view("unsqueeze", &r, |t| t.f_unsqueeze(dim as i64))
    }

    fn expand(&mut self, r: Resource<TensorEntry>, shape: Vec<u32>) -> Result<Resource<TensorEntry>> {
        self.view("expand", &r, |t| t.f_expand(shapes::from_u32(&shape), false))
    }

    fn softmax(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.map("softmax", &r, |t| t.f_softmax(dim as i64, None::<Kind>))
    }

    fn log_softmax(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.map("log-softmax", &r, |t| t.f_log_softmax(dim as i64, None::<Kind>))
    }

    fn mse(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let diff = shapes::elementwise(&self.size(&a)?, &self.size(&b)?);
        self.op("mse", &[&a, &b], Some(1), diff.and_then(|d| d.checked_mul(2)), Out::New, |t| t[0].f_mse_loss(&t[1], Reduction::Mean))
    }

    fn cross_entropy(&mut self, logits: Resource<TensorEntry>, targets: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let (x, y) = (numel(&self.size(&logits)?), numel(&self.size(&targets)?));
        // log-softmax of the logits and the int64 targets.
        let work = shapes::sum([x, y.and_then(|y| y.checked_mul(2))]);
        self.op("cross-entropy", &[&logits, &targets], Some(1), work, Out::New, |t| t[0].f_cross_entropy_loss(&t[1].f_to_kind(Kind::Int64)?, None::<Tensor>, Reduction::Mean, -100, 0.0))
    }

    fn linear(&mut self, r: Resource<TensorEntry>, weight: Resource<TensorEntry>, bias: Option<Resource<TensorEntry>>) -> Result<Resource<TensorEntry>> {
        let (x, w) = (self.size(&r)?, self.size(&weight)?);
        let out = shapes::linear(&x, &w);
        let b = self.optional(&bias)?;
        let mut inputs = vec![&r, &weight];
        inputs.extend(bias.as_ref());
        self.op("linear", &inputs, out, Some(0), Out::New, |t| t[0].f_linear(&t[1], b.as_ref()))
    }

    fn layer_norm(&mut self, r: Resource<TensorEntry>, weight: Option<Resource<TensorEntry>>, bias: Option<Resource<TensorEntry>>, eps: f32) -> Result<Resource<TensorEntry>> {
        let size = self.size(&r)?;
        let last = *size.last().ok_or_else(|| anyhow!("tensor.layer-norm on a scalar"))?;
        let (w, b) = (self.optional(&weight)?, self.optional(&bias)?);
        let mut inputs = vec![&r];
        inputs.extend(weight.as_ref());
        inputs.extend(bias.as_ref());
        self.op("layer-norm", &inputs, numel(&size), numel(&size), Out::New, |t| t[0].f_layer_norm([last].as_slice(), w.as_ref(), b.as_ref(), eps as f64, false))
    }

    fn conv1d(&mut self, r: Resource<TensorEntry>, weight: Resource<TensorEntry>, bias: Option<Resource<TensorEntry>>, stride: u32, padding: u32) -> Result<Resource<TensorEntry>> {
        let (x, w) = (self.size(&r)?, self.size(&weight)?);
        // Output N × Cout × Lout; working memory: the unfolded input, N × Cin·K × Lout.
        let (out, work) = match (x.as_slice(), w.as_slice()) {
            ([n, _, l], [cout, cin, k]) => match shapes::conv_len(*l, *k, stride as i64, padding as i64) {
                Some(lout) => (numel(&[*n, *cout, lout]), numel(&[*n, *cin, *k, lout])),
                None => (numel(&x), Some(0)),
            },
            _ => (numel(&x), Some(0)),
        };
        let b = self.optional(&bias)?;
        let mut inputs = vec![&r, &weight];
        inputs.extend(bias.as_ref());
        self.op("conv1d", &inputs, out, work, Out::New, |t| {
            let (stride, padding) = (stride as i64, padding as i64);
            crate::native::enabled()
                .then(|| crate::native::conv1d(&t[0], &t[1], b.as_ref(), stride, padding))
                .flatten()
                .unwrap_or_else(|| t[0].f_conv1d(&t[1], b.as_ref(), [stride].as_slice(), [padding].as_slice(), [1i64].as_slice(), 1))
        })
    }

    fn conv_transpose1d(
        &mut self,
        r: Resource<TensorEntry>,
        weight: Resource<TensorEntry>,
        bias: Option<Resource<TensorEntry>>,
        stride: u32,
        padding: u32,
        output_padding: u32,
    ) -> Result<Resource<TensorEntry>> {
        let (x, w) = (self.size(&r)?, self.size(&weight)?);
        // Output N × Cout × Lout; working memory: the columns, N × Cout·K × Lin.
        let (out, work) = match (x.as_slice(), w.as_slice()) {
            ([n, _, l], [_, cout, k]) => match shapes::conv_transpose_len(*l, *k, stride as i64, padding as i64, output_padding as i64) {
                Some(lout) => (numel(&[*n, *cout, lout]), numel(&[*n, *cout, *k, *l])),
                None => (numel(&x), Some(0)),
            },
            _ => (numel(&x), Some(0)),
        };
        let b = self.optional(&bias)?;
        let mut inputs = vec![&r, &weight];
        inputs.extend(bias.as_ref());
        self.op("conv-transpose1d", &inputs, out, work, Out::New, |t| {
            let (stride, padding, output_padding) = (stride as i64, padding as i64, output_padding as i64);
            crate::native::enabled()
                .then(|| crate::native::conv_transpose1d(&t[0], &t[1], b.as_ref(), stride, padding, output_padding))
                .flatten()
                .unwrap_or_else(|| t[0].f_conv_transpose1d(&t[1], b.as_ref(), [stride].as_slice(), [padding].as_slice(), [output_padding].as_slice(), 1, [1i64].as_slice()))
        })
    }

    fn attention(&mut self, q: Resource<TensorEntry>, k: Resource<TensorEntry>, v: Resource<TensorEntry>, causal: bool) -> Result<Resource<TensorEntry>> {
        let (qs, ks, vs) = (self.size(&q)?, self.size(&k)?, self.size(&v)?);
        // Output … × L × Dv; working memory: the scores and their softmax, … × L × S, twice.
        let (out, work) = match (qs.len(), ks.len(), vs.last()) {
            (a, b, Some(&dv)) if a >= 2 && b >= 2 => {
                let batch = shapes::broadcast(&qs[..a - 2], &ks[..b - 2]).and_then(|s| numel(&s));
                let (l, s) = (qs[a - 2], ks[b - 2]);
                (batch.and_then(|n| numel(&[l, dv])?.checked_mul(n)), batch.and_then(|n| numel(&[l, s, 2])?.checked_mul(n)))
            }
            _ => (numel(&qs), Some(0)),
        };
        self.op("attention", &[&q, &k, &v], out, work, Out::New, |t| Tensor::f_scaled_dot_product_attention(&t[0], &t[1], &t[2], None::<Tensor>, 0.0, causal, None, false))
    }

    fn embedding(&mut self, table: Resource<TensorEntry>, indices: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let (w, picks) = (self.size(&table)?, numel(&self.size(&indices)?));
        let out = picks.and_then(|p| p.checked_mul(u64::try_from(*w.last()?).ok()?));
        self.op("embedding", &[&table, &indices], out, picks.and_then(|p| p.checked_mul(2)), Out::New, |t| Tensor::f_embedding(&t[0], &t[1].f_to_kind(Kind::Int64)?, -1, false, false))
    }

    fn parameter(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        // The value and the gradient that backward will fill: a leaf, charged twice its size.
        let size = self.size(&r)?;
        let bytes = shapes::bytes(numel(&size).and_then(|n| n.checked_mul(2)));
        self.budget.admit("parameter", &size, bytes, Some(0)).map_err(|e| anyhow!(e))?;
        let t = self.tensor(&r)?.f_detach()?.copy().set_requires_grad(true);
        let storage = self.budget.charge(bytes.unwrap_or(0), vec![]);
        Ok(self.table.push(TensorEntry { tensor: t, storage, graph: None })?)
    }

    fn detach(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        // Shares the storage, but not the graph.
        let (t, storage) = {
            let e = self.table.get(&r)?;
            (e.tensor.f_detach()?, e.storage.clone())
        };
        Ok(self.table.push(TensorEntry { tensor: t, storage, graph: None })?)
    }

    fn backward(&mut self, r: Resource<TensorEntry>) -> Result<()> {
        let e = self.table.get(&r)?;
        if e.tensor.numel() != 1 {
            bail!("tensor.backward needs a scalar loss, got shape {:?}", e.tensor.size());
        }
        // Gradients of every node of the graph may exist at once while backward runs.
        let graph = Charge::reachable_bytes(&[&e.root()]);
        let t = e.tensor.shallow_clone();
        self.budget.admit("backward", &"(graph)", Some(0), Some(graph)).map_err(|e| anyhow!(e))?;
        self.activity.during("backward", || t.f_backward()).context("tensor.backward")
    }

    fn grad(&mut self, r: Resource<TensorEntry>) -> Result<Option<Resource<TensorEntry>>> {
        let (g, storage) = {
            let e = self.table.get(&r)?;
            (e.tensor.f_grad()?, e.storage.clone())
        };
        if !g.defined() {
            return Ok(None);
        }
        // The gradient slot was charged with the parameter.
        Ok(Some(self.table.push(TensorEntry { tensor: g.f_detach()?, storage, graph: None })?))
    }

    fn drop(&mut self, r: Resource<TensorEntry>) -> Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

impl wit::HostOptimizer for PluginState {
    fn new(&mut self, kind: OptimizerKind, params: Vec<Resource<TensorEntry>>, lr: f32, weight_decay: f32) -> Result<Resource<OptimizerEntry>> {
        let (lr, wd) = (lr as f64, weight_decay as f64);
        let (tensors, charges) = self.inputs(&params.iter().collect::<Vec<_>>())?;
        // Adam keeps two moments per parameter; plain SGD (no momentum) keeps nothing.
        let moments = match kind {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Adam | OptimizerKind::Adamw => 2,
        };
        let elements = shapes::sum(tensors.iter().map(|t| numel(&t.size()))).and_then(|n| n.checked_mul(moments));
        self.budget.admit("optimizer", &format!("{} parameters", tensors.len()), shapes::bytes(elements), Some(0)).map_err(|e| anyhow!(e))?;
        for t in &tensors {
            if !t.requires_grad() {
                bail!("optimizer: a tensor of shape {:?} is not a parameter (make it with `parameter()`)", t.size());
            }
        }
        let opt = match kind {
            OptimizerKind::Sgd => {
                let mut opt = tch::COptimizer::sgd(lr, 0.0, 0.0, wd, false).context("optimizer")?;
                for t in &tensors {
                    opt.add_parameters(t, 0).context("optimizer.add-parameters")?;
                }
                Optim::Sgd(opt)
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => Optim::Adam(crate::fused_adam::FusedAdam::new(&tensors, lr, wd, kind == OptimizerKind::Adamw).context("optimizer")?),
        };
        let state = self.budget.charge(shapes::bytes(elements).unwrap_or(0), charges);
        Ok(self.table.push(OptimizerEntry { opt, _state: state })?)
    }

    fn step(&mut self, r: Resource<OptimizerEntry>) -> Result<()> {
        let entry = self.table.get(&r)?;
        self.activity.during("optimizer.step", || entry.opt.step()).context("optimizer.step")
    }

    fn zero_grad(&mut self, r: Resource<OptimizerEntry>) -> Result<()> {
        self.table.get(&r)?.opt.zero_grad().context("optimizer.zero-grad")
    }

    fn set_lr(&mut self, r: Resource<OptimizerEntry>, lr: f32) -> Result<()> {
        self.table.get_mut(&r)?.opt.set_lr(lr as f64).context("optimizer.set-lr")
    }

    fn drop(&mut self, r: Resource<OptimizerEntry>) -> Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}
