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
    /// The first step: the moments are still zero, so they are written and not read. A zoo's
    /// moments are freshly allocated pages; read first, each page would be mapped to the
    /// shared zero page and remapped on the write, and remapping in a process with several
    /// threads interrupts every core to flush its TLB (in a virtual machine, an exit to the
    /// hypervisor each time) — a sixth of an MLP zoo's epoch. Written first, a page is mapped
    /// once, by the thread that trains the model.
    pub first: bool,
}

impl Step {
    /// The constants of step `t` (1-based) at learning rate `lr`.
    pub fn at(lr: f64, weight_decay: f64, t: i32) -> Self {
        let (step_size, eps) = corrected(lr, t);
        Step { beta1: BETA1 as f32, beta2: BETA2 as f32, step_size: step_size as f32, eps: eps as f32, weight_decay: weight_decay as f32, first: t == 1 }
    }
}

/// Step `t`'s step size and ε with Adam's bias corrections folded in:
/// lr·√(1−β2ᵗ)/(1−β1ᵗ) and ε·√(1−β2ᵗ).
pub fn corrected(lr: f64, t: i32) -> (f64, f64) {
    let bias2 = (1.0 - BETA2.powi(t)).sqrt();
    (lr * bias2 / (1.0 - BETA1.powi(t)), EPS * bias2)
}

multiversion! {
    /// Adam on `ps` with gradient `gs` and moments `ms`, `vs` (all the same length; on the
    /// first step the moments' values are not read).
    pub fn adam(ps: &mut [f32], gs: &[f32], ms: &mut [f32], vs: &mut [f32], c: Step) {
        let Step { beta1: b1, beta2: b2, step_size: step, eps, weight_decay: wd, first } = c;
        for (((p, &g), m), v) in ps.iter_mut().zip(gs).zip(ms.iter_mut()).zip(vs.iter_mut()) {
            let g = g + *p * wd;
            // The same arithmetic with zero moments on the first step, so the bits are too.
            let (m0, v0) = if first { (0.0, 0.0) } else { (*m, *v) };
            *m = b1 * m0 + (1.0 - b1) * g;
            *v = b2 * v0 + g * g * (1.0 - b2);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The first step writes the moments without reading them, and gives the bits of a step
    /// from zero moments; later steps read them.
    #[test]
    fn the_first_step_ignores_the_moments_and_equals_a_step_from_zero() {
        let g: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 1e-2).collect();
        let p0: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let first = Step::at(1e-3, 1e-4, 1);
        assert!(first.first && !Step::at(1e-3, 1e-4, 2).first);
        let run = |m0: f32, c: Step| {
            let (mut p, mut m, mut v) = (p0.clone(), vec![m0; 37], vec![m0.abs(); 37]);
            adam(&mut p, &g, &mut m, &mut v, c);
            (p, m, v)
        };
        let from_zero = run(0.0, Step { first: false, ..first });
        let bits = |x: &(Vec<f32>, Vec<f32>, Vec<f32>)| [&x.0, &x.1, &x.2].map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
        assert_eq!(bits(&run(f32::NAN, first)), bits(&from_zero), "the moments' old values are not read");
        assert_ne!(bits(&run(0.5, Step { first: false, ..first })), bits(&from_zero), "later steps read them");
    }
}
