//! The host side of `weightlab:plugin/tensors`: plugin tensors are libtorch tensors (through
//! `tch`, which has dynamic rank, autograd and libtorch's own optimisers) kept in the store's
//! resource table. Every operation is fallible: libtorch errors become a trap whose message
//! names the operation, so a broken plugin fails with a reason instead of crashing the engine.
//! Every tensor a plugin creates is charged to its tensor-memory budget and refunded on drop.

use anyhow::{Context, Result, anyhow, bail};
use rand::{Rng, SeedableRng};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tch::{Kind, Reduction, Tensor};
use wasmtime::component::Resource;

use crate::bindings::weightlab::plugin::tensors::{self as wit, OptimizerKind, Unary};
use crate::state::PluginState;

/// A tensor held by a plugin, with the bytes charged for it.
pub struct TensorEntry {
    pub tensor: Tensor,
    bytes: u64,
}

/// An optimiser held by a plugin.
pub struct OptimizerEntry {
    opt: tch::COptimizer,
}

const OPTS: (Kind, tch::Device) = (Kind::Float, tch::Device::Cpu);

/// A borrowed handle to the same table entry, for passing an owned handle where the generated
/// bindings take one by value without giving it up.
pub(crate) fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(r.rep())
}

fn shape_i64(shape: &[u32]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn seeded_values(shape: &[u32], seed: u64, normal: bool) -> Vec<f32> {
    let n: usize = shape.iter().map(|&d| d as usize).product();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if normal {
        (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
    } else {
        (0..n).map(|_| rng.random::<f32>()).collect()
    }
}

impl PluginState {
    /// Puts a new tensor in the table, charging its bytes to the plugin's budget.
    pub fn push_tensor(&mut self, tensor: Tensor) -> Result<Resource<TensorEntry>> {
        let bytes = (tensor.numel() * tensor.kind().elt_size_in_bytes()) as u64;
        if self.tensor_bytes + bytes > self.tensor_cap {
            bail!(
                "tensor memory cap exceeded: holding {} MiB, a new {:?} tensor needs {} MiB more, the cap is {} MiB (raise `limits.tensor_memory_mib`)",
                self.tensor_bytes >> 20,
                tensor.size(),
                bytes.div_ceil(1 << 20),
                self.tensor_cap >> 20
            );
        }
        self.tensor_bytes += bytes;
        Ok(self.table.push(TensorEntry { tensor, bytes })?)
    }

    pub fn tensor(&self, r: &Resource<TensorEntry>) -> Result<&Tensor> {
        Ok(&self.table.get(r)?.tensor)
    }

    fn unary(&mut self, r: &Resource<TensorEntry>, what: &str, f: impl FnOnce(&Tensor) -> Result<Tensor, tch::TchError>) -> Result<Resource<TensorEntry>> {
        let t = f(self.tensor(r)?).with_context(|| format!("tensor.{what}"))?;
        self.push_tensor(t)
    }

    fn binary(&mut self, a: &Resource<TensorEntry>, b: &Resource<TensorEntry>, what: &str, f: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor, tch::TchError>) -> Result<Resource<TensorEntry>> {
        let (x, y) = (self.tensor(a)?, self.tensor(b)?);
        let t = f(x, y).with_context(|| format!("tensor.{what}: shapes {:?} and {:?}", x.size(), y.size()))?;
        self.push_tensor(t)
    }

    fn optional(&self, r: &Option<Resource<TensorEntry>>) -> Result<Option<&Tensor>> {
        r.as_ref().map(|r| self.tensor(r)).transpose()
    }

    fn index_tensor(&self, r: &Resource<TensorEntry>) -> Result<Tensor> {
        Ok(self.tensor(r)?.f_to_kind(Kind::Int64)?)
    }

    fn list(&self, parts: &[Resource<TensorEntry>]) -> Result<Vec<&Tensor>> {
        parts.iter().map(|r| self.tensor(r)).collect()
    }
}

impl wit::Host for PluginState {}

impl wit::HostTensor for PluginState {
    fn zeros(&mut self, shape: Vec<u32>) -> Result<Resource<TensorEntry>> {
        let t = Tensor::f_zeros(shape_i64(&shape), OPTS).context("tensor.zeros")?;
        self.push_tensor(t)
    }

    fn full(&mut self, shape: Vec<u32>, value: f32) -> Result<Resource<TensorEntry>> {
        let t = Tensor::f_full(shape_i64(&shape), value as f64, OPTS).context("tensor.full")?;
        self.push_tensor(t)
    }

    fn from_list(&mut self, data: Vec<f32>, shape: Vec<u32>) -> Result<Resource<TensorEntry>> {
        let n: u64 = shape.iter().map(|&d| d as u64).product();
        if n != data.len() as u64 {
            bail!("tensor.from-list: {} values do not fill shape {shape:?}", data.len());
        }
        let t = Tensor::f_from_slice(&data)?.f_reshape(shape_i64(&shape))?;
        self.push_tensor(t)
    }

    fn randn(&mut self, shape: Vec<u32>, seed: u64) -> Result<Resource<TensorEntry>> {
        let t = Tensor::f_from_slice(&seeded_values(&shape, seed, true))?.f_reshape(shape_i64(&shape))?;
        self.push_tensor(t)
    }

    fn rand(&mut self, shape: Vec<u32>, seed: u64) -> Result<Resource<TensorEntry>> {
        let t = Tensor::f_from_slice(&seeded_values(&shape, seed, false))?.f_reshape(shape_i64(&shape))?;
        self.push_tensor(t)
    }

    fn randperm(&mut self, n: u32, seed: u64) -> Result<Resource<TensorEntry>> {
        let mut order: Vec<f32> = (0..n).map(|i| i as f32).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        self.push_tensor(Tensor::f_from_slice(&order)?)
    }

    fn arange(&mut self, n: u32) -> Result<Resource<TensorEntry>> {
        let t = Tensor::f_arange(n as i64, OPTS).context("tensor.arange")?;
        self.push_tensor(t)
    }

    fn cat(&mut self, parts: Vec<Resource<TensorEntry>>, dim: i32) -> Result<Resource<TensorEntry>> {
        let t = {
            let list = self.list(&parts)?;
            Tensor::f_cat(&list, dim as i64).with_context(|| format!("tensor.cat of shapes {:?}", list.iter().map(|t| t.size()).collect::<Vec<_>>()))?
        };
        self.push_tensor(t)
    }

    fn stack(&mut self, parts: Vec<Resource<TensorEntry>>, dim: i32) -> Result<Resource<TensorEntry>> {
        let t = {
            let list = self.list(&parts)?;
            Tensor::f_stack(&list, dim as i64).with_context(|| format!("tensor.stack of shapes {:?}", list.iter().map(|t| t.size()).collect::<Vec<_>>()))?
        };
        self.push_tensor(t)
    }

    fn shape(&mut self, r: Resource<TensorEntry>) -> Result<Vec<u32>> {
        Ok(self.tensor(&r)?.size().into_iter().map(|d| d as u32).collect())
    }

    fn to_list(&mut self, r: Resource<TensorEntry>) -> Result<Vec<f32>> {
        let t = self.tensor(&r)?.f_contiguous()?.f_to_kind(Kind::Float)?.f_view([-1])?;
        Ok(Vec::<f32>::try_from(&t).context("tensor.to-list")?)
    }

    fn item(&mut self, r: Resource<TensorEntry>) -> Result<f32> {
        let t = self.tensor(&r)?;
        if t.numel() != 1 {
            bail!("tensor.item on a tensor of shape {:?}", t.size());
        }
        Ok(t.f_double_value(&[])? as f32)
    }

    fn add(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.binary(&a, &b, "add", |x, y| x.f_add(y))
    }

    fn sub(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.binary(&a, &b, "sub", |x, y| x.f_sub(y))
    }

    fn mul(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.binary(&a, &b, "mul", |x, y| x.f_mul(y))
    }

    fn div(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.binary(&a, &b, "div", |x, y| x.f_div(y))
    }

    fn affine(&mut self, r: Resource<TensorEntry>, a: f32, b: f32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "affine", |t| t.f_mul_scalar(a as f64)?.f_add_scalar(b as f64))
    }

    fn pow(&mut self, r: Resource<TensorEntry>, exponent: f32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "pow", |t| t.f_pow_tensor_scalar(exponent as f64))
    }

    fn apply(&mut self, r: Resource<TensorEntry>, f: Unary) -> Result<Resource<TensorEntry>> {
        self.unary(&r, &format!("apply({f:?})"), |t| match f {
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
            Unary::Silu => t.f_silu(),
        })
    }

    fn clamp(&mut self, r: Resource<TensorEntry>, lo: f32, hi: f32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "clamp", |t| t.f_clamp(lo as f64, hi as f64))
    }

    fn greater(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.binary(&a, &b, "greater", |x, y| x.f_gt_tensor(y)?.f_to_kind(Kind::Float))
    }

    fn matmul(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.binary(&a, &b, "matmul", |x, y| x.f_matmul(y))
    }

    fn sum_all(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "sum-all", |t| t.f_sum(None::<Kind>))
    }

    fn mean_all(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "mean-all", |t| t.f_mean(None::<Kind>))
    }

    fn sum(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "sum", |t| t.f_sum_dim_intlist([dim as i64].as_slice(), keepdim, None::<Kind>))
    }

    fn mean(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "mean", |t| t.f_mean_dim([dim as i64].as_slice(), keepdim, None::<Kind>))
    }

    fn std(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "std", |t| t.f_std_dim([dim as i64].as_slice(), true, keepdim))
    }

    fn max(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "max", |t| t.f_max_dim(dim as i64, keepdim).map(|(v, _)| v))
    }

    fn min(&mut self, r: Resource<TensorEntry>, dim: i32, keepdim: bool) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "min", |t| t.f_min_dim(dim as i64, keepdim).map(|(v, _)| v))
    }

    fn argmax(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "argmax", |t| t.f_argmax(dim as i64, false)?.f_to_kind(Kind::Float))
    }

    fn reshape(&mut self, r: Resource<TensorEntry>, shape: Vec<i64>) -> Result<Resource<TensorEntry>> {
        let size = self.tensor(&r)?.size();
        self.unary(&r, &format!("reshape from {size:?} to {shape:?}"), |t| t.f_reshape(shape.as_slice()))
    }

    fn transpose(&mut self, r: Resource<TensorEntry>, dim0: i32, dim1: i32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "transpose", |t| t.f_transpose(dim0 as i64, dim1 as i64))
    }

    fn narrow(&mut self, r: Resource<TensorEntry>, dim: i32, start: u32, len: u32) -> Result<Resource<TensorEntry>> {
        let size = self.tensor(&r)?.size();
        self.unary(&r, &format!("narrow(dim {dim}, {start}+{len}) of {size:?}"), |t| t.f_narrow(dim as i64, start as i64, len as i64))
    }

    fn index_select(&mut self, r: Resource<TensorEntry>, dim: i32, index: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let idx = self.index_tensor(&index)?;
        self.unary(&r, "index-select", |t| t.f_index_select(dim as i64, &idx))
    }

    fn unsqueeze(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "unsqueeze", |t| t.f_unsqueeze(dim as i64))
    }

    fn expand(&mut self, r: Resource<TensorEntry>, shape: Vec<u32>) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "expand", |t| t.f_expand(shape_i64(&shape), false))
    }

    fn softmax(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "softmax", |t| t.f_softmax(dim as i64, None::<Kind>))
    }

    fn log_softmax(&mut self, r: Resource<TensorEntry>, dim: i32) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "log-softmax", |t| t.f_log_softmax(dim as i64, None::<Kind>))
    }

    fn mse(&mut self, a: Resource<TensorEntry>, b: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.binary(&a, &b, "mse", |x, y| x.f_mse_loss(y, Reduction::Mean))
    }

    fn cross_entropy(&mut self, logits: Resource<TensorEntry>, targets: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let y = self.index_tensor(&targets)?;
        self.unary(&logits, "cross-entropy", |x| x.f_cross_entropy_loss(&y, None::<Tensor>, Reduction::Mean, -100, 0.0))
    }

    fn linear(&mut self, r: Resource<TensorEntry>, weight: Resource<TensorEntry>, bias: Option<Resource<TensorEntry>>) -> Result<Resource<TensorEntry>> {
        let t = {
            let (x, w, b) = (self.tensor(&r)?, self.tensor(&weight)?, self.optional(&bias)?);
            x.f_linear(w, b).with_context(|| format!("tensor.linear: input {:?}, weight {:?}", x.size(), w.size()))?
        };
        self.push_tensor(t)
    }

    fn layer_norm(&mut self, r: Resource<TensorEntry>, weight: Option<Resource<TensorEntry>>, bias: Option<Resource<TensorEntry>>, eps: f32) -> Result<Resource<TensorEntry>> {
        let t = {
            let x = self.tensor(&r)?;
            let last = *x.size().last().ok_or_else(|| anyhow!("tensor.layer-norm on a scalar"))?;
            x.f_layer_norm([last].as_slice(), self.optional(&weight)?, self.optional(&bias)?, eps as f64, false).context("tensor.layer-norm")?
        };
        self.push_tensor(t)
    }

    fn conv1d(&mut self, r: Resource<TensorEntry>, weight: Resource<TensorEntry>, bias: Option<Resource<TensorEntry>>, stride: u32, padding: u32) -> Result<Resource<TensorEntry>> {
        let t = {
            let (x, w) = (self.tensor(&r)?, self.tensor(&weight)?);
            x.f_conv1d(w, self.optional(&bias)?, [stride as i64].as_slice(), [padding as i64].as_slice(), [1i64].as_slice(), 1)
                .with_context(|| format!("tensor.conv1d: input {:?}, weight {:?}", x.size(), w.size()))?
        };
        self.push_tensor(t)
    }

    fn conv_transpose1d(&mut self, r: Resource<TensorEntry>, weight: Resource<TensorEntry>, bias: Option<Resource<TensorEntry>>, stride: u32, padding: u32, output_padding: u32) -> Result<Resource<TensorEntry>> {
        let t = {
            let (x, w) = (self.tensor(&r)?, self.tensor(&weight)?);
            x.f_conv_transpose1d(w, self.optional(&bias)?, [stride as i64].as_slice(), [padding as i64].as_slice(), [output_padding as i64].as_slice(), 1, [1i64].as_slice())
                .with_context(|| format!("tensor.conv-transpose1d: input {:?}, weight {:?}", x.size(), w.size()))?
        };
        self.push_tensor(t)
    }

    fn attention(&mut self, q: Resource<TensorEntry>, k: Resource<TensorEntry>, v: Resource<TensorEntry>, causal: bool) -> Result<Resource<TensorEntry>> {
        let t = {
            let (q, k, v) = (self.tensor(&q)?, self.tensor(&k)?, self.tensor(&v)?);
            Tensor::f_scaled_dot_product_attention(q, k, v, None::<Tensor>, 0.0, causal, None, false)
                .with_context(|| format!("tensor.attention: q {:?}, k {:?}, v {:?}", q.size(), k.size(), v.size()))?
        };
        self.push_tensor(t)
    }

    fn embedding(&mut self, table: Resource<TensorEntry>, indices: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        let idx = self.index_tensor(&indices)?;
        self.unary(&table, "embedding", |w| Tensor::f_embedding(w, &idx, -1, false, false))
    }

    fn parameter(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "parameter", |t| Ok(t.f_detach()?.copy().set_requires_grad(true)))
    }

    fn detach(&mut self, r: Resource<TensorEntry>) -> Result<Resource<TensorEntry>> {
        self.unary(&r, "detach", |t| t.f_detach())
    }

    fn backward(&mut self, r: Resource<TensorEntry>) -> Result<()> {
        let t = self.tensor(&r)?;
        if t.numel() != 1 {
            bail!("tensor.backward needs a scalar loss, got shape {:?}", t.size());
        }
        t.f_backward().context("tensor.backward")
    }

    fn grad(&mut self, r: Resource<TensorEntry>) -> Result<Option<Resource<TensorEntry>>> {
        let g = self.tensor(&r)?.f_grad()?;
        if !g.defined() {
            return Ok(None);
        }
        Ok(Some(self.push_tensor(g.f_detach()?)?))
    }

    fn drop(&mut self, r: Resource<TensorEntry>) -> Result<()> {
        let entry = self.table.delete(r)?;
        self.tensor_bytes = self.tensor_bytes.saturating_sub(entry.bytes);
        Ok(())
    }
}

impl wit::HostOptimizer for PluginState {
    fn new(&mut self, kind: OptimizerKind, params: Vec<Resource<TensorEntry>>, lr: f32, weight_decay: f32) -> Result<Resource<OptimizerEntry>> {
        let (lr, wd) = (lr as f64, weight_decay as f64);
        let mut opt = match kind {
            OptimizerKind::Sgd => tch::COptimizer::sgd(lr, 0.0, 0.0, wd, false),
            OptimizerKind::Adam => tch::COptimizer::adam(lr, 0.9, 0.999, wd, 1e-8, false),
            OptimizerKind::Adamw => tch::COptimizer::adamw(lr, 0.9, 0.999, wd, 1e-8, false),
        }
        .context("optimizer")?;
        for p in &params {
            let t = self.tensor(p)?;
            if !t.requires_grad() {
                bail!("optimizer: a tensor of shape {:?} is not a parameter (make it with `parameter()`)", t.size());
            }
            opt.add_parameters(t, 0).context("optimizer.add-parameters")?;
        }
        Ok(self.table.push(OptimizerEntry { opt })?)
    }

    fn step(&mut self, r: Resource<OptimizerEntry>) -> Result<()> {
        self.table.get(&r)?.opt.step().context("optimizer.step")
    }

    fn zero_grad(&mut self, r: Resource<OptimizerEntry>) -> Result<()> {
        self.table.get(&r)?.opt.zero_grad().context("optimizer.zero-grad")
    }

    fn set_lr(&mut self, r: Resource<OptimizerEntry>, lr: f32) -> Result<()> {
        self.table.get_mut(&r)?.opt.set_learning_rate(lr as f64).context("optimizer.set-lr")
    }

    fn drop(&mut self, r: Resource<OptimizerEntry>) -> Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}
