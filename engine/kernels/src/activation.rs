//! Activations with a vectorizable exponential: SiLU (x · sigmoid(x)) and its gradient for the
//! plugins' `silu` on large tensors, and GELU for the declared networks' native engine.
//!
//! Why not libtorch's: in p-diff's and FLoWN's weight autoencoders every convolution but the
//! last is followed by SiLU, on tensors of millions of values, and libtorch's forward and
//! backward passes (its vectorized loops around SLEEF's `expf8_u10`) were more than a third of
//! a FLoWN fit's time in the plugin's process at AVX2 (`perf`, session 35). Here one pass each
//! way: the exponential by Cephes' `expf` polynomial (Moshier; a degree-5 fit on
//! [−ln 2/2, ln 2/2] after Cody–Waite reduction by ln 2, within 1.5 ulp of the exact value — see
//! the test), the same formulas as libtorch's otherwise: `x / (1 + e^(−x))` forward, and
//! `dy · s · (1 + x (1 − s))` with `s = 1 / (1 + e^(−x))` back.
//!
//! Plain loops compiled per width by [`crate::multiversion!`]: the operations are IEEE ones in
//! a fixed order (the multiply-adds are asked for), so every width gives the same bits. The
//! scalar functions are `#[inline(always)]` for callers' own multiversioned loops; call them
//! from a plain `for` loop there, not through `for_each` or a `&dyn Fn` — compiled out of line,
//! without the width's features, their multiply-adds become calls to the C library's `fmaf`
//! (measured in the declared engine: about a quarter of a LeNet-5 step with GELU).

use crate::multiversion;

/// Cephes' `expf` coefficients for e^r − 1 − r ≈ r²·p(r) on |r| ≤ ln 2 / 2.
const P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];
/// ln 2 split so that n·LN2_HI is exact for the n that occur (|n| ≤ 150).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding it rounds a float below 2²² in magnitude to an integer (to nearest, ties
/// to even), which then sits in the low bits of the sum's mantissa.
const ROUNDER: f32 = 12_582_912.0;

/// e^x. Inputs below −104 give e^−104 (rounded to 0 or the smallest subnormals), above 88.8
/// infinity, NaN NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-104.0, 88.8);
    // n = round(x / ln 2), as a float and as an integer (|n| ≤ 150).
    let shifted = x.mul_add(std::f32::consts::LOG2_E, ROUNDER);
    let n = shifted - ROUNDER;
    let ni = shifted.to_bits() as i32 - ROUNDER.to_bits() as i32;
    // r = x − n ln 2, in two steps so the reduction is exact to f32's precision.
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let mut p = P[0];
    for &c in &P[1..] {
        p = p.mul_add(r, c);
    }
    let e = (p * r).mul_add(r, r) + 1.0;
    // 2ⁿ as two normal powers of two (n from −150 to 128 would not fit one float's exponent
    // at either end): gradual underflow and overflow to infinity come out of the products.
    let half = ni >> 1;
    let power = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    e * power(half) * power(ni - half)
}

/// 1 / (1 + e^−x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// SiLU of one value, as libtorch writes it.
#[inline(always)]
pub fn silu_one(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// SiLU's derivative at `x` times `dy`, as libtorch writes it.
#[inline(always)]
pub fn silu_grad_one(dy: f32, x: f32) -> f32 {
    let s = sigmoid(x);
    dy * s * (1.0 + x * (1.0 - s))
}

/// Φ(x), the standard normal distribution function, as ½ erfc(−x/√2) with erfc by the
/// Chebyshev fit of Press et al. (*Numerical Recipes*, `erfcc`: erfc(z) = t·e^(−z² + P(t)),
/// t = 1/(1 + z/2), relative error below 1.2·10⁻⁷ for z ≥ 0 in exact arithmetic). Its relative
/// error stays small in the lower tail, where 1 + erf would cancel; in f32 it is within
/// 3·10⁻⁶ of the exact value relative to Φ down to x = −5, within 2·10⁻⁵ below (the test) —
/// closer than libtorch's 1 + erf(x/√2) in that tail.
/// Branch-free, so it vectorizes.
#[inline(always)]
pub fn normal_cdf(x: f32) -> f32 {
    // The published coefficients (some carry more digits than an f32 holds).
    #[allow(clippy::excessive_precision)]
    const C: [f32; 10] = [0.170_872_77, -0.822_152_23, 1.488_515_9, -1.135_203_98, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7, -1.265_512_2];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / z.mul_add(0.5, 1.0);
    let mut p = C[0];
    for &c in &C[1..] {
        p = p.mul_add(t, c);
    }
    // ½ erfc(z): Φ(x) for x ≤ 0, 1 − Φ(x) above.
    let half = 0.5 * t * exp((-z).mul_add(z, p));
    if x > 0.0 { 1.0 - half } else { half }
}

/// GELU (PyTorch's exact form, `approximate = "none"`): x · Φ(x).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * normal_cdf(x)
}

/// GELU's derivative at `x` times `dy`, as PyTorch writes it: dy · (Φ(x) + x φ(x)).
#[inline(always)]
pub fn gelu_grad(dy: f32, x: f32) -> f32 {
    // 1/√(2π)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let pdf = exp(-0.5 * x * x) * INV_SQRT_2PI;
    dy * x.mul_add(pdf, normal_cdf(x))
}

multiversion! {
    /// `y = silu(x)` (the shorter length of the two).
    pub fn silu(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = silu_one(x);
        }
    }
}

multiversion! {
    /// `dx = dy · silu'(x)` (the shortest length of the three).
    pub fn silu_backward(dy: &[f32], x: &[f32], dx: &mut [f32]) {
        for ((dx, &dy), &x) in dx.iter_mut().zip(dy).zip(x) {
            *dx = silu_grad_one(dy, x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units of the last place between two finite floats of the same sign.
    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        if a == b32 {
            return 0.0;
        }
        let ulp = (f32::from_bits(b32.abs().to_bits() + 1) - b32.abs()) as f64;
        ((a as f64) - b).abs() / ulp
    }

    #[test]
    fn the_exponential_is_within_one_and_a_half_ulp_wherever_it_is_normal() {
        let mut worst = (0.0f64, 0.0f32);
        let mut x = -87.0f32;
        while x < 88.7 {
            let u = ulps(exp(x), (x as f64).exp());
            if u > worst.0 {
                worst = (u, x);
            }
            x += 0.000_731;
        }
        assert!(worst.0 <= 1.5, "{} ulp at {}", worst.0, worst.1);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(-200.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-100.0) > 0.0 && exp(-100.0) < 1e-43, "gradual underflow: {}", exp(-100.0));
    }

    #[test]
    fn silu_and_its_gradient_match_the_exact_values_and_keep_nan() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.011).chain([-150.0, -90.0, 95.0, 150.0, 0.0, -0.0]).collect();
        let mut y = vec![0.0; xs.len()];
        silu(&xs, &mut y);
        let dy: Vec<f32> = (0..xs.len()).map(|i| 1.0 + (i % 7) as f32 * 0.25).collect();
        let mut dx = vec![0.0; xs.len()];
        silu_backward(&dy, &xs, &mut dx);
        for (i, &x) in xs.iter().enumerate() {
            let x64 = x as f64;
            let s = 1.0 / (1.0 + (-x64).exp());
            let (want_y, want_dx) = (x64 * s, dy[i] as f64 * s * (1.0 + x64 * (1.0 - s)));
            assert!((y[i] as f64 - want_y).abs() <= 4e-7 * want_y.abs().max(1e-30), "silu({x}) = {} (exact {want_y})", y[i]);
            // Relative to the terms' size: the formula cancels where the derivative crosses zero.
            let terms = dy[i] as f64 * s * (1.0 + x64.abs() * (1.0 - s));
            assert!((dx[i] as f64 - want_dx).abs() <= 1e-6 * terms.max(1e-30), "silu'({x})·{} = {} (exact {want_dx})", dy[i], dx[i]);
        }
        // Where libtorch's formula gives NaN or −0 (checked against torch 2.9), so does this.
        let edges = [f32::NAN, f32::NEG_INFINITY, f32::INFINITY, -100.0, -90.0];
        let (mut out, mut grad) = ([0.0; 5], [0.0; 5]);
        silu(&edges, &mut out);
        silu_backward(&[1.0; 5], &edges, &mut grad);
        assert!(out[0].is_nan() && out[1].is_nan() && out[2] == f32::INFINITY);
        assert!(grad[..3].iter().all(|g| g.is_nan()));
        for v in [out[3], out[4], grad[3], grad[4]] {
            assert_eq!(v.to_bits(), (-0.0f32).to_bits());
        }
    }

    /// Φ against an f64 reference (erfc by its continued fraction in the tails, the series of
    /// erf near 0), relative to Φ itself; GELU's derivative against a central difference.
    #[test]
    fn the_normal_distribution_function_and_gelu_are_accurate() {
        fn erfc64(z: f64) -> f64 {
            if z.abs() < 2.0 {
                // erf by its Maclaurin series.
                let (mut term, mut sum, mut n) = (z, z, 0.0);
                while term.abs() > 1e-18 {
                    n += 1.0;
                    term *= -z * z / n;
                    sum += term / (2.0 * n + 1.0);
                }
                return 1.0 - sum * 2.0 / std::f64::consts::PI.sqrt();
            }
            if z < 0.0 {
                return 2.0 - erfc64(-z);
            }
            // Lentz's continued fraction for erfc.
            let mut f = z;
            for k in (1..200).rev() {
                f = z + (k as f64 / 2.0) / f;
            }
            (-z * z).exp() / (std::f64::consts::PI.sqrt() * f)
        }
        let phi = |x: f64| 0.5 * erfc64(-x / std::f64::consts::SQRT_2);
        // Down to Φ = 3·10⁻⁷ (x = −5) within 3·10⁻⁶ of Φ (libtorch's 1 + erf(x/√2) is off by
        // 2·10⁻⁵ of it at x = −3 already: erf's rounding near −1); in the far tail (Φ down to
        // 10⁻³³, where libtorch's has rounded to 0) the exponent's argument, near −z², is
        // itself rounded to f32, so within 2·10⁻⁵.
        for (from, to, bound) in [(-5.0f32, 8.0f32, 3e-6), (-12.0, -5.0, 2e-5)] {
            let mut worst = (0.0f64, 0.0f32);
            let mut x = from;
            while x < to {
                let want = phi(x as f64);
                let err = ((normal_cdf(x) as f64) - want).abs() / want;
                if err > worst.0 {
                    worst = (err, x);
                }
                x += 0.001_3;
            }
            assert!(worst.0 < bound, "Φ is {} off (relative) at {}", worst.0, worst.1);
        }
        for x in [-3.0f32, -1.0, -0.1, 0.0, 0.4, 2.5] {
            let h = 1e-3f64;
            let g = |x: f64| x * phi(x);
            let want = (g(x as f64 + h) - g(x as f64 - h)) / (2.0 * h);
            assert!((gelu_grad(1.0, x) as f64 - want).abs() < 1e-5, "GELU′({x}) = {} (central difference {want})", gelu_grad(1.0, x));
            assert!((gelu(x) as f64 - g(x as f64)).abs() <= 1e-6 * (1.0 + x.abs() as f64), "GELU({x})");
        }
        assert!(gelu(f32::NAN).is_nan() && gelu(f32::INFINITY) == f32::INFINITY);
    }

    #[test]
    fn every_width_gives_the_same_bits() {
        let xs: Vec<f32> = (0..1037).map(|i| ((i as f32) * 0.377).sin() * 30.0).collect();
        let dy: Vec<f32> = (0..1037).map(|i| ((i as f32) * 0.11).cos()).collect();
        let run = || {
            let (mut y, mut dx) = (vec![0.0f32; xs.len()], vec![0.0f32; xs.len()]);
            silu(&xs, &mut y);
            silu_backward(&dy, &xs, &mut dx);
            (y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), dx.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        };
        let levels = crate::simd::available();
        let baseline = crate::simd::at_level(crate::simd::Level::Baseline, run);
        for level in levels {
            assert_eq!(crate::simd::at_level(level, run), baseline, "{}", level.name());
        }
    }
}
