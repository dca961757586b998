//! Adam (and SGD) over plain `f32` slices, as PyTorch computes them: L2 weight decay added to
//! the gradient, bias-corrected moments, ε outside the square root. One pass reads and writes
//! each parameter once — the native engines call it on their own memory instead of the eight
//! tensor passes an optimizer made of tensor ops costs.

use crate::simd::multiversion;

/// Adam's constants, as in PyTorch's defaults.
pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f64 = 1e-8;

/// One Adam step's constants: the moments' decay, the step size with both bias corrections
/// folded in, ε scaled to match, and the weight decay.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub beta1: f32,
    pub beta2: f32,
    pub step_size: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Step {
    /// The constants of step `t` (1-based) at learning rate `lr`.
    pub fn at(lr: f64, weight_decay: f64, t: i32) -> Self {
        let (step_size, eps) = corrected(lr, t);
        Step { beta1: BETA1 as f32, beta2: BETA2 as f32, step_size: step_size as f32, eps: eps as f32, weight_decay: weight_decay as f32 }
    }
}

/// Step `t`'s step size and ε with Adam's bias corrections folded in:
/// lr·√(1−β2ᵗ)/(1−β1ᵗ) and ε·√(1−β2ᵗ).
pub fn corrected(lr: f64, t: i32) -> (f64, f64) {
    let bias2 = (1.0 - BETA2.powi(t)).sqrt();
    (lr * bias2 / (1.0 - BETA1.powi(t)), EPS * bias2)
}

multiversion! {
    /// Adam on `ps` with gradient `gs` and moments `ms`, `vs` (all the same length).
    pub fn adam(ps: &mut [f32], gs: &[f32], ms: &mut [f32], vs: &mut [f32], c: Step) {
        let Step { beta1: b1, beta2: b2, step_size: step, eps, weight_decay: wd } = c;
        for (((p, &g), m), v) in ps.iter_mut().zip(gs).zip(ms.iter_mut()).zip(vs.iter_mut()) {
            let g = g + *p * wd;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + g * g * (1.0 - b2);
            *p -= step * *m / (v.sqrt() + eps);
        }
    }
}

/// Plain SGD with weight decay.
pub fn sgd(ps: &mut [f32], gs: &[f32], lr: f32, weight_decay: f32) {
    for (p, &g) in ps.iter_mut().zip(gs) {
        let g = g + *p * weight_decay;
        *p -= g * lr;
    }
}
