//! [`Tensor`]: an owned handle to a host tensor, with PyTorch-like methods and operators.
//! Every method is one call into the host; nothing is computed in the plugin.

use std::ops;

use crate::bindings::weightlab::plugin::tensors as raw;
pub use raw::OptimizerKind;
use raw::Unary;

/// A host tensor of `f32`. Cloning copies the handle, not the data.
pub struct Tensor {
    raw: raw::Tensor,
}

impl Clone for Tensor {
    fn clone(&self) -> Self {
        // A new handle to the same host storage (detach shares data).
        Tensor { raw: self.raw.detach() }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}", self.shape())
    }
}

fn dims(shape: &[usize]) -> Vec<u32> {
    shape.iter().map(|&d| d as u32).collect()
}

impl Tensor {
    fn wrap(raw: raw::Tensor) -> Self {
        Tensor { raw }
    }

    /// An owned handle to a tensor the host lent for one call (shares the host's data).
    pub fn borrowed(raw: &raw::Tensor) -> Self {
        Tensor { raw: raw.detach() }
    }

    /// The underlying handle (to return to the host).
    pub fn into_raw(self) -> raw::Tensor {
        self.raw
    }

    // ---- creation ----
    pub fn zeros(shape: &[usize]) -> Self {
        Self::wrap(raw::Tensor::zeros(&dims(shape)))
    }
    pub fn full(shape: &[usize], value: f32) -> Self {
        Self::wrap(raw::Tensor::full(&dims(shape), value))
    }
    pub fn from_slice(data: &[f32], shape: &[usize]) -> Self {
        Self::wrap(raw::Tensor::from_list(data, &dims(shape)))
    }
    /// A scalar tensor.
    pub fn scalar(value: f32) -> Self {
        Self::full(&[], value)
    }
    /// Standard normal values; the same seed gives the same values.
    pub fn randn(shape: &[usize], seed: u64) -> Self {
        Self::wrap(raw::Tensor::randn(&dims(shape), seed))
    }
    /// Uniform values in [0, 1).
    pub fn rand(shape: &[usize], seed: u64) -> Self {
        Self::wrap(raw::Tensor::rand(&dims(shape), seed))
    }
    /// Uniform values in [lo, hi).
    pub fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Self {
        Self::rand(shape, seed).affine(hi - lo, lo)
    }
    /// `n` whole numbers drawn uniformly from 0..high (as floats), e.g. row indices.
    pub fn randint(high: usize, n: usize, seed: u64) -> Self {
        Self::rand(&[n], seed).affine(high as f32, 0.0).map(Unary::Floor).clamp(0.0, high.saturating_sub(1) as f32)
    }
    /// 0..n in a random order.
    pub fn randperm(n: usize, seed: u64) -> Self {
        Self::wrap(raw::Tensor::randperm(n as u32, seed))
    }
    /// `k` distinct whole numbers from 0..n (a seeded random subset), e.g. checkpoints to combine.
    pub fn choose(n: usize, k: usize, seed: u64) -> Self {
        Self::randperm(n, seed).narrow(0, 0, k.min(n))
    }
    pub fn arange(n: usize) -> Self {
        Self::wrap(raw::Tensor::arange(n as u32))
    }
    /// The n × n identity matrix; its rows picked by `index_select` are one-hot codes.
    pub fn eye(n: usize) -> Self {
        Self::from_slice(&(0..n * n).map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 }).collect::<Vec<f32>>(), &[n, n])
    }
    pub fn cat(parts: &[&Tensor], dim: i32) -> Self {
        let raws: Vec<&raw::Tensor> = parts.iter().map(|t| &t.raw).collect();
        Self::wrap(raw::Tensor::cat(&raws, dim))
    }
    pub fn stack(parts: &[&Tensor], dim: i32) -> Self {
        let raws: Vec<&raw::Tensor> = parts.iter().map(|t| &t.raw).collect();
        Self::wrap(raw::Tensor::stack(&raws, dim))
    }

    // ---- inspection ----
    pub fn shape(&self) -> Vec<usize> {
        self.raw.shape().into_iter().map(|d| d as usize).collect()
    }
    pub fn to_vec(&self) -> Vec<f32> {
        self.raw.to_list()
    }
    pub fn item(&self) -> f32 {
        self.raw.item()
    }

    // ---- elementwise ----
    /// self * a + b
    pub fn affine(&self, a: f32, b: f32) -> Self {
        Self::wrap(self.raw.affine(a, b))
    }
    pub fn pow(&self, exponent: f32) -> Self {
        Self::wrap(self.raw.pow(exponent))
    }
    pub fn map(&self, f: Unary) -> Self {
        Self::wrap(self.raw.apply(f))
    }
    pub fn clamp(&self, lo: f32, hi: f32) -> Self {
        Self::wrap(self.raw.clamp(lo, hi))
    }
    pub fn exp(&self) -> Self {
        self.map(Unary::Exp)
    }
    pub fn log(&self) -> Self {
        self.map(Unary::Log)
    }
    pub fn sqrt(&self) -> Self {
        self.map(Unary::Sqrt)
    }
    pub fn abs(&self) -> Self {
        self.map(Unary::Abs)
    }
    pub fn square(&self) -> Self {
        self.map(Unary::Square)
    }
    pub fn sin(&self) -> Self {
        self.map(Unary::Sin)
    }
    pub fn cos(&self) -> Self {
        self.map(Unary::Cos)
    }
    pub fn tanh(&self) -> Self {
        self.map(Unary::Tanh)
    }
    pub fn sigmoid(&self) -> Self {
        self.map(Unary::Sigmoid)
    }
    pub fn relu(&self) -> Self {
        self.map(Unary::Relu)
    }
    pub fn gelu(&self) -> Self {
        self.map(Unary::Gelu)
    }
    pub fn silu(&self) -> Self {
        self.map(Unary::Silu)
    }
    pub fn greater(&self, other: &Tensor) -> Self {
        Self::wrap(self.raw.greater(&other.raw))
    }

    // ---- linear algebra and reductions ----
    pub fn matmul(&self, other: &Tensor) -> Self {
        Self::wrap(self.raw.matmul(&other.raw))
    }
    pub fn sum_all(&self) -> Self {
        Self::wrap(self.raw.sum_all())
    }
    pub fn mean_all(&self) -> Self {
        Self::wrap(self.raw.mean_all())
    }
    pub fn sum(&self, dim: i32, keepdim: bool) -> Self {
        Self::wrap(self.raw.sum(dim, keepdim))
    }
    pub fn mean(&self, dim: i32, keepdim: bool) -> Self {
        Self::wrap(self.raw.mean(dim, keepdim))
    }
    pub fn std(&self, dim: i32, keepdim: bool) -> Self {
        Self::wrap(self.raw.std(dim, keepdim))
    }
    pub fn max(&self, dim: i32, keepdim: bool) -> Self {
        Self::wrap(self.raw.max(dim, keepdim))
    }
    pub fn min(&self, dim: i32, keepdim: bool) -> Self {
        Self::wrap(self.raw.min(dim, keepdim))
    }
    pub fn argmax(&self, dim: i32) -> Self {
        Self::wrap(self.raw.argmax(dim))
    }

    // ---- shape ----
    pub fn reshape(&self, shape: &[i64]) -> Self {
        Self::wrap(self.raw.reshape(shape))
    }
    pub fn transpose(&self, dim0: i32, dim1: i32) -> Self {
        Self::wrap(self.raw.transpose(dim0, dim1))
    }
    pub fn narrow(&self, dim: i32, start: usize, len: usize) -> Self {
        Self::wrap(self.raw.narrow(dim, start as u32, len as u32))
    }
    pub fn index_select(&self, dim: i32, index: &Tensor) -> Self {
        Self::wrap(self.raw.index_select(dim, &index.raw))
    }
    pub fn unsqueeze(&self, dim: i32) -> Self {
        Self::wrap(self.raw.unsqueeze(dim))
    }
    pub fn expand(&self, shape: &[usize]) -> Self {
        Self::wrap(self.raw.expand(&dims(shape)))
    }

    // ---- neural-network functions ----
    pub fn softmax(&self, dim: i32) -> Self {
        Self::wrap(self.raw.softmax(dim))
    }
    pub fn log_softmax(&self, dim: i32) -> Self {
        Self::wrap(self.raw.log_softmax(dim))
    }
    /// Mean squared error (a scalar).
    pub fn mse(&self, target: &Tensor) -> Self {
        Self::wrap(self.raw.mse(&target.raw))
    }
    /// Mean cross-entropy of logits (N × C) against class indices (N).
    pub fn cross_entropy(&self, targets: &Tensor) -> Self {
        Self::wrap(self.raw.cross_entropy(&targets.raw))
    }
    /// x @ weightᵀ + bias.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Self {
        Self::wrap(self.raw.linear(&weight.raw, bias.map(|b| &b.raw)))
    }
    pub fn layer_norm(&self, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f32) -> Self {
        Self::wrap(self.raw.layer_norm(weight.map(|w| &w.raw), bias.map(|b| &b.raw), eps))
    }
    pub fn conv1d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize) -> Self {
        Self::wrap(self.raw.conv1d(&weight.raw, bias.map(|b| &b.raw), stride as u32, padding as u32))
    }
    pub fn conv_transpose1d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize, output_padding: usize) -> Self {
        Self::wrap(self.raw.conv_transpose1d(&weight.raw, bias.map(|b| &b.raw), stride as u32, padding as u32, output_padding as u32))
    }
    pub fn attention(&self, key: &Tensor, value: &Tensor, causal: bool) -> Self {
        Self::wrap(self.raw.attention(&key.raw, &value.raw, causal))
    }
    pub fn embedding(&self, indices: &Tensor) -> Self {
        Self::wrap(self.raw.embedding(&indices.raw))
    }

    // ---- autodiff ----
    /// A leaf copy that records gradients.
    pub fn parameter(&self) -> Self {
        Self::wrap(self.raw.parameter())
    }
    pub fn detach(&self) -> Self {
        Self::wrap(self.raw.detach())
    }
    pub fn backward(&self) {
        self.raw.backward()
    }
    pub fn grad(&self) -> Option<Tensor> {
        self.raw.grad().map(Self::wrap)
    }
}

macro_rules! binary_op {
    ($trait:ident, $method:ident, $raw:ident) => {
        impl ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::wrap(self.raw.$raw(&rhs.raw))
            }
        }
        impl ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::wrap(self.raw.$raw(&rhs.raw))
            }
        }
        impl ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::wrap(self.raw.$raw(&rhs.raw))
            }
        }
    };
}

binary_op!(Add, add, add);
binary_op!(Sub, sub, sub);
binary_op!(Mul, mul, mul);
binary_op!(Div, div, div);

macro_rules! scalar_op {
    ($trait:ident, $method:ident, |$t:ident, $s:ident| $body:expr) => {
        impl ops::$trait<f32> for &Tensor {
            type Output = Tensor;
            fn $method(self, $s: f32) -> Tensor {
                let $t = self;
                $body
            }
        }
        impl ops::$trait<f32> for Tensor {
            type Output = Tensor;
            fn $method(self, $s: f32) -> Tensor {
                let $t = &self;
                $body
            }
        }
    };
}

scalar_op!(Add, add, |t, s| t.affine(1.0, s));
scalar_op!(Sub, sub, |t, s| t.affine(1.0, -s));
scalar_op!(Mul, mul, |t, s| t.affine(s, 0.0));
scalar_op!(Div, div, |t, s| t.affine(1.0 / s, 0.0));

impl ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        self.map(Unary::Neg)
    }
}

impl ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        self.map(Unary::Neg)
    }
}

/// An optimiser over parameters made with [`Tensor::parameter`].
pub struct Optimizer {
    raw: raw::Optimizer,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, params: &[&Tensor], lr: f32, weight_decay: f32) -> Self {
        let raws: Vec<&raw::Tensor> = params.iter().map(|t| &t.raw).collect();
        Optimizer { raw: raw::Optimizer::new(kind, &raws, lr, weight_decay) }
    }
    pub fn adam(params: &[&Tensor], lr: f32) -> Self {
        Self::new(OptimizerKind::Adam, params, lr, 0.0)
    }
    /// Clears gradients, back-propagates `loss`, and applies one update.
    pub fn step_on(&self, loss: &Tensor) {
        self.raw.zero_grad();
        loss.backward();
        self.raw.step();
    }
    pub fn step(&self) {
        self.raw.step()
    }
    pub fn zero_grad(&self) {
        self.raw.zero_grad()
    }
    pub fn set_lr(&self, lr: f32) {
        self.raw.set_lr(lr)
    }
}
