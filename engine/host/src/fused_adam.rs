//! Adam and AdamW over a plugin's parameters in libtorch's fused CPU kernel (`_fused_adam_`,
//! `_fused_adamw_`, the kernel of PyTorch's `fused=True`): one pass a step over each
//! parameter, its gradient and its moments. `tch` binds only libtorch's C++ optimisers, which
//! make eight (on Hyper-Representations' 1.2 million parameters 1.24 ms a step against 0.56 ms
//! for the fused kernel, timed inside the plugin). The arithmetic is PyTorch's Adam and AdamW,
//! the formula of the C++ optimiser this replaces, rounding apart; gradients are dropped, not
//! zeroed, between steps (PyTorch's `zero_grad(set_to_none=True)`, as the C++ optimiser did).
//! The C++ side is in `csrc/native_autograd.cpp`.

use std::ffi::{c_char, c_int, c_void};

use tch::{Kind, TchError, Tensor};

use crate::native::{c_message, tensor_pointers};

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn wl_fused_adam(
        params: *const *mut c_void,
        exp_avgs: *const *mut c_void,
        exp_avg_sqs: *const *mut c_void,
        steps: *const *mut c_void,
        n: i64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        decoupled: c_int,
        err: *mut c_char,
        err_len: i64,
    ) -> c_int;
    fn wl_clear_grads(params: *const *mut c_void, n: i64);
}

/// Adam's constants, as PyTorch's defaults.
const BETAS: (f64, f64) = (0.9, 0.999);
const EPS: f64 = 1e-8;

/// Adam (L2 weight decay added to the gradient) or AdamW (decoupled weight decay) over a set of
/// parameters, with its moments and step counts.
pub struct FusedAdam {
    /// The plugin's parameters (handles on the same tensors: their gradients are theirs).
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// Each parameter's step count, a float scalar on its device, as the kernel reads it.
    steps: Vec<Tensor>,
    lr: f64,
    weight_decay: f64,
    decoupled: bool,
}

impl FusedAdam {
    /// Moments of zeros beside each parameter (the caller has charged them to the budget).
    pub fn new(params: &[Tensor], lr: f64, weight_decay: f64, decoupled: bool) -> Result<Self, TchError> {
        let exp_avg = params.iter().map(|p| p.f_zeros_like()).collect::<Result<Vec<_>, _>>()?;
        let exp_avg_sq = params.iter().map(|p| p.f_zeros_like()).collect::<Result<Vec<_>, _>>()?;
        let steps = params.iter().map(|p| Tensor::f_zeros([], (Kind::Float, p.device()))).collect::<Result<Vec<_>, _>>()?;
        Ok(FusedAdam { params: params.iter().map(Tensor::shallow_clone).collect(), exp_avg, exp_avg_sq, steps, lr, weight_decay, decoupled })
    }

    /// One step for every parameter that has a gradient (the others, and their step counts,
    /// stay as they are, as in PyTorch).
    pub fn step(&self) -> Result<(), TchError> {
        let (p, m, v, s) = (tensor_pointers(&self.params), tensor_pointers(&self.exp_avg), tensor_pointers(&self.exp_avg_sq), tensor_pointers(&self.steps));
        let mut err = [0 as c_char; 512];
        // SAFETY: four arrays of `n` live tensors each, for the call; the C++ side catches its
        // exceptions and writes a NUL-terminated message on failure.
        let rc = unsafe {
            wl_fused_adam(
                p.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                s.as_ptr(),
                p.len() as i64,
                self.lr,
                BETAS.0,
                BETAS.1,
                self.weight_decay,
                EPS,
                c_int::from(self.decoupled),
                err.as_mut_ptr(),
                err.len() as i64,
            )
        };
        if rc != 0 {
            return Err(TchError::Torch(c_message(&err)));
        }
        Ok(())
    }

    /// Drops every parameter's gradient.
    pub fn zero_grad(&self) {
        let p = tensor_pointers(&self.params);
        // SAFETY: `n` live tensors for the call; resetting a gradient cannot fail.
        unsafe { wl_clear_grads(p.as_ptr(), p.len() as i64) }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of the fused kernel against the same steps of libtorch's C++ optimiser, which the
    /// host used before: Adam and AdamW, weight decay, a parameter without a gradient.
    #[test]
    fn fused_steps_follow_libtorchs_optimiser() {
        for decoupled in [false, true] {
            // Both sides start from copies of one draw, not from two draws after the same seed:
            // libtorch's generator is global, and the other tests of this binary draw from it
            // (and seed it) on their own threads in between (a failure seen once: 1.3 apart).
            let a = Tensor::randn([40, 30], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let b = Tensor::randn([30], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let start = a.detach().copy();
            let (c, d) = (a.detach().copy().set_requires_grad(true), b.detach().copy().set_requires_grad(true));
            let unused = Tensor::ones([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let fused = FusedAdam::new(&[a.shallow_clone(), b.shallow_clone(), unused.shallow_clone()], 1e-2, 0.05, decoupled).unwrap();
            let mut reference = if decoupled { tch::COptimizer::adamw(1e-2, 0.9, 0.999, 0.05, 1e-8, false) } else { tch::COptimizer::adam(1e-2, 0.9, 0.999, 0.05, 1e-8, false) }.unwrap();
            reference.add_parameters(&c, 0).unwrap();
            reference.add_parameters(&d, 0).unwrap();
            let x = Tensor::randn([16, 40], (Kind::Float, tch::Device::Cpu));
            for _ in 0..5 {
                fused.zero_grad();
                (x.matmul(&a) + &b).tanh().square().mean(Kind::Float).backward();
                fused.step().unwrap();
                reference.zero_grad().unwrap();
                (x.matmul(&c) + &d).tanh().square().mean(Kind::Float).backward();
                reference.step().unwrap();
            }
            let gap = |p: &Tensor, q: &Tensor| f64::try_from((p - q).abs().max()).unwrap() / f64::try_from(q.abs().max()).unwrap();
            assert!(gap(&a, &c) < 1e-5 && gap(&b, &d) < 1e-5, "decoupled {decoupled}: {} {}", gap(&a, &c), gap(&b, &d));
            assert!(gap(&a, &start) > 1e-3, "the parameters moved");
            assert_eq!(f64::try_from(unused.sum(Kind::Float)).unwrap(), 3.0, "a parameter without a gradient stays");
        }
    }
}
