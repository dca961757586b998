//! Conditional flow matching (Lipman et al. 2023) with straight paths, as FLoWN uses it:
//! x_t = (1 − t) x0 + t x1 with x0 ~ N(0, I) the prior and x1 the data; the network regresses
//! the constant velocity x1 − x0; sampling integrates dx/dt = v(x, t) from t = 0 to 1.

use crate::Tensor;

/// A training example for data `x1` (N × D): times t ~ U(0, 1) (N), the point x_t on the
/// straight path from a prior draw, and the velocity target x1 − x0.
pub fn training_pair(x1: &Tensor, seed: u64) -> (Tensor, Tensor, Tensor) {
    let shape = x1.shape();
    let x0 = Tensor::randn(&shape, seed);
    let t = Tensor::rand(&[shape[0]], seed.wrapping_add(1));
    let tc = t.unsqueeze(1);
    let xt = &(&x0 * &tc.affine(-1.0, 1.0)) + &(x1 * &tc);
    let target = x1 - &x0;
    (xt, t, target)
}

/// ODE integrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Solver {
    /// Explicit Euler: one velocity evaluation per step.
    Euler,
    /// Heun's method (trapezoidal predictor-corrector): two evaluations per step, second order.
    Heun,
}

/// Integrates dx/dt = velocity(x, t) from t = 0 to 1 in `steps` equal steps, starting at `x0`.
/// With zero steps the prior draw comes back unchanged.
pub fn integrate(x0: Tensor, steps: usize, solver: Solver, velocity: impl Fn(&Tensor, &Tensor) -> Tensor) -> Tensor {
    let n = x0.shape()[0];
    let mut x = x0;
    let dt = 1.0 / steps.max(1) as f32;
    for i in 0..steps {
        let t = Tensor::full(&[n], i as f32 * dt);
        let v = velocity(&x, &t).detach();
        x = match solver {
            Solver::Euler => &x + &(v * dt),
            Solver::Heun => {
                let guess = &x + &(&v * dt);
                let v2 = velocity(&guess, &Tensor::full(&[n], (i + 1) as f32 * dt)).detach();
                &x + &((v + v2) * (dt / 2.0))
            }
        };
    }
    x
}
