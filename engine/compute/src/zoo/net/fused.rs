//! A stride-1 convolution, its BatchNorm and the ReLU after it as one step.
//!
//! Why: apart, the three layers pass every value through memory nine times forward and ten
//! times back — the convolution copies its product out of the GEMM's padded layout, BatchNorm
//! keeps x̂ beside its output, ReLU writes a third copy, and back the other way the output
//! gradient is copied into the padded layout again (measured: copies, BatchNorm and the
//! activations were a third of a ResNet-small step at AVX2). Fused, BatchNorm reads the
//! product where the GEMM left it, writes only the activated output, recomputes x̂ in the
//! backward from the product (the same operations, so the same bits as storing it), and writes
//! the input gradient of the convolution straight into the padded layout the convolution's
//! backward reads.
//!
//! The statistics are summed in f64, as [`super::norm_forward`] sums them, in two sets of 8
//! lanes: the rows of a channel are numbered in order of example, then height; lane l of set s
//! takes the values at l, l + 8, … of rows s, s + 2, …; the 16 lanes are added in order at the
//! end. The AVX2 kernels ([`narrow`], also
//! used at AVX-512) follow the portable loops' operations in the same order, so the bits are
//! the same at every width.

use super::{Bn, Conv, EPS, Trace};
use crate::simd::Level;

/// Floats per vector of the AVX2 kernels.
const LANES: usize = 8;
/// Sets of lanes of the statistics' sums: row r of a channel adds into set r mod SETS, so the
/// AVX2 kernels' additions form two independent chains (one chain waited on its own
/// additions, a row of 7 or 14 values being one or two vectors; the two sets of the gradient's
/// two sums fill half the registers).
const SETS: usize = 2;

/// Where one channel's rows lie in a buffer: row (n, y) of example n and height y starts at
/// `at + n·example + y·row`.
#[derive(Debug, Clone, Copy)]
struct Rows {
    at: usize,
    example: usize,
    row: usize,
}

/// The extent of one channel: `b` examples of `h` rows of `w` values.
#[derive(Debug, Clone, Copy)]
struct Extent {
    b: usize,
    h: usize,
    w: usize,
}

impl Rows {
    /// The start of row `y` of example `n`.
    #[inline(always)]
    fn start(self, n: usize, y: usize) -> usize {
        self.at + n * self.example + y * self.row
    }
}

impl Extent {
    /// The start of every row of `rows`, in order of example then height.
    fn starts(self, rows: Rows) -> impl Iterator<Item = usize> {
        (0..self.b).flat_map(move |n| (0..self.h).map(move |y| rows.start(n, y)))
    }

    /// The lane of the value at `x` in row `r` (module docs).
    fn lane(r: usize, x: usize) -> usize {
        (r % SETS) * LANES + x % LANES
    }
}

/// x̂ = ((v + bias) − mean) · inv, for a value v of the convolution's product.
#[derive(Debug, Clone, Copy)]
struct Centre {
    bias: f32,
    mean: f32,
    inv: f32,
}

impl Centre {
    #[inline(always)]
    fn xhat(self, v: f32) -> f32 {
        (v + self.bias - self.mean) * self.inv
    }
}

/// The gradient d′ = d, or 0 where a fused ReLU's output `y` is not positive.
#[inline(always)]
fn through(relu: bool, d: f32, y: f32) -> f32 {
    let positive = y > 0.0;
    if relu && !positive { 0.0 } else { d }
}

/// The convolution's rows in [`Conv::product`]'s layout (`wide`, co × columns), in the layout
/// of the step's output (B × co × oh × ow) and in `dext` ([`Conv::fill_dext`]), for channel
/// `oc` of a batch of `b`.
fn layouts(c: &Conv, oc: usize, b: usize) -> (Rows, Rows, Rows) {
    let (plane, (nc, row)) = (c.plane(), c.columns(b));
    let spatial = c.oh * c.ow;
    (Rows { at: oc * nc, example: plane, row: c.bw() }, Rows { at: oc * spatial, example: c.co * spatial, row: c.ow }, Rows { at: oc * row + c.lead(), example: plane, row: c.bw() })
}

/// Whether the AVX2 kernels run: at AVX2 and at AVX-512 (whose CPUs have AVX2), never on the
/// baseline or off x86-64.
fn narrow_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::simd::current() != Level::Baseline && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Forward: the batch statistics of the product in `wide` (plus the conv's bias) per channel
/// into `stat` (mean, biased variance, 1/√(var + ε)), and γ·x̂ + β (through ReLU when `relu`)
/// into `out`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(c: &Conv, bn: &Bn, relu: bool, w: &[f32], b: usize, wide: &[f32], out: &mut [f32], stat: &mut [f32]) {
    let extent = Extent { b, h: c.oh, w: c.ow };
    let n = (b * bn.spatial) as f64;
    let narrow = narrow_kernels();
    for oc in 0..c.co {
        let (from, to, _) = layouts(c, oc, b);
        let bias = c.bias.map_or(0.0, |at| w[at + oc]);
        let mean = sum(narrow, wide, from, extent, bias, None) / n;
        let var = sum(narrow, wide, from, extent, bias, Some(mean)) / n;
        let centre = Centre { bias, mean: mean as f32, inv: (1.0 / (var + EPS).sqrt()) as f32 };
        stat[oc] = centre.mean;
        stat[bn.c + oc] = var as f32;
        stat[2 * bn.c + oc] = centre.inv;
        let affine = (w[bn.gamma + oc], w[bn.beta + oc]);
        normalize(narrow, wide, from, out, to, extent, centre, affine, relu);
    }
}

/// Backward: from the step's output gradient `dout`, dγ and dβ (added to `dg`, `dbeta`) and
/// the convolution's output gradient, written into the trace's `dext` where
/// [`Conv::backward_batch`] reads it: dx = γ/σ · (d′ − mean(d′) − x̂·mean(d′·x̂)), d′ the
/// gradient through the ReLU.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(c: &Conv, bn: &Bn, relu: bool, w: &[f32], b: usize, dout: &[f32], t: &mut Trace, dg: &mut [f32], dbeta: &mut [f32]) {
    let Trace { wide, out, stat, dext, .. } = t;
    let extent = Extent { b, h: c.oh, w: c.ow };
    let n = (b * bn.spatial) as f64;
    let narrow = narrow_kernels();
    for oc in 0..c.co {
        let (from, at, to) = layouts(c, oc, b);
        let centre = Centre { bias: c.bias.map_or(0.0, |at| w[at + oc]), mean: stat[oc], inv: stat[2 * bn.c + oc] };
        let (sum, sum_x) = grad_sums(narrow, dout, out, at, wide, from, extent, centre, relu);
        dg[oc] += sum_x as f32;
        dbeta[oc] += sum as f32;
        let scale = w[bn.gamma + oc] * centre.inv;
        let means = ((sum / n) as f32, (sum_x / n) as f32);
        grad(narrow, dout, out, at, wide, from, dext, to, extent, centre, relu, scale, means);
    }
}

/// Σ (v + bias), or Σ ((v + bias) − centre)² given a centre, over the rows of `src`, in f64
/// lanes (module docs).
fn sum(narrow: bool, src: &[f32], rows: Rows, extent: Extent, bias: f32, centre: Option<f64>) -> f64 {
    let mut lanes = [0.0f64; SETS * LANES];
    if narrow {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `narrow` only where the CPU has AVX2 and FMA.
        unsafe {
            narrow::sum(src, rows, extent, bias, centre, &mut lanes)
        };
    } else {
        for (r, at) in extent.starts(rows).enumerate() {
            for (x, &v) in src[at..at + extent.w].iter().enumerate() {
                let v = (v + bias) as f64;
                lanes[Extent::lane(r, x)] += match centre {
                    None => v,
                    Some(c) => (v - c) * (v - c),
                };
            }
        }
    }
    lanes.iter().sum()
}

/// γ·x̂ + β (through ReLU when `relu`) from the rows `from` of `src` into the rows `to` of `dst`.
#[allow(clippy::too_many_arguments)]
fn normalize(narrow: bool, src: &[f32], from: Rows, dst: &mut [f32], to: Rows, extent: Extent, centre: Centre, (g, beta): (f32, f32), relu: bool) {
    if narrow {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `narrow` only where the CPU has AVX2 and FMA.
        unsafe {
            narrow::normalize(src, from, dst, to, extent, centre, (g, beta), relu)
        };
        return;
    }
    for (a, z) in extent.starts(from).zip(extent.starts(to)) {
        for (o, &v) in dst[z..z + extent.w].iter_mut().zip(&src[a..a + extent.w]) {
            let y = centre.xhat(v) * g + beta;
            *o = through(relu, y, y);
        }
    }
}

/// (Σ d′, Σ d′·x̂) in f64 lanes, d′ from the rows `at` of `dout` (and of the output `y`), x̂
/// from the rows `from` of `src`.
#[allow(clippy::too_many_arguments)]
fn grad_sums(narrow: bool, dout: &[f32], y: &[f32], at: Rows, src: &[f32], from: Rows, extent: Extent, centre: Centre, relu: bool) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f64; SETS * LANES], [0.0f64; SETS * LANES]);
    if narrow {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `narrow` only where the CPU has AVX2 and FMA.
        unsafe {
            narrow::grad_sums(dout, y, at, src, from, extent, centre, relu, &mut a, &mut b)
        };
    } else {
        for (row, (r, s)) in extent.starts(at).zip(extent.starts(from)).enumerate() {
            let (d, y, v) = (&dout[r..r + extent.w], &y[r..r + extent.w], &src[s..s + extent.w]);
            for (x, ((&d, &y), &v)) in d.iter().zip(y).zip(v).enumerate() {
                let d = through(relu, d, y);
                a[Extent::lane(row, x)] += d as f64;
                b[Extent::lane(row, x)] += (d * centre.xhat(v)) as f64;
            }
        }
    }
    (a.iter().sum(), b.iter().sum())
}

/// scale · (d′ − mean(d′) − x̂·mean(d′·x̂)) into the rows `to` of `dst`.
#[allow(clippy::too_many_arguments)]
fn grad(narrow: bool, dout: &[f32], y: &[f32], at: Rows, src: &[f32], from: Rows, dst: &mut [f32], to: Rows, extent: Extent, centre: Centre, relu: bool, scale: f32, means: (f32, f32)) {
    if narrow {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `narrow` only where the CPU has AVX2 and FMA.
        unsafe {
            narrow::grad(dout, y, at, src, from, dst, to, extent, centre, relu, scale, means)
        };
        return;
    }
    let (mean_d, mean_dx) = means;
    for ((r, s), z) in extent.starts(at).zip(extent.starts(from)).zip(extent.starts(to)) {
        let (d, y, v) = (&dout[r..r + extent.w], &y[r..r + extent.w], &src[s..s + extent.w]);
        for (o, ((&d, &y), &v)) in dst[z..z + extent.w].iter_mut().zip(d.iter().zip(y).zip(v)) {
            *o = scale * (through(relu, d, y) - mean_d - centre.xhat(v) * mean_dx);
        }
    }
}

/// The kernels for AVX2: each row in vectors of 8, its last 1–7 values loaded and stored under
/// a mask (the lanes past the row read as zeros and add zero), the same operations in the same
/// order as the portable loops.
#[cfg(target_arch = "x86_64")]
mod narrow {
    use std::arch::x86_64::*;

    use super::super::narrow::widened;
    use super::{Centre, Extent, LANES, Rows, SETS};

    /// Eight ones then eight zeros: the mask of the first r lanes starts at 8 − r.
    const ONES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    /// A row of `w` values: its whole vectors, and the mask of its last 1–7 values (if any).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn split(w: usize) -> (usize, Option<__m256i>) {
        let (whole, rest) = (w / LANES * LANES, w % LANES);
        // SAFETY: 8 − rest ≤ 8 and ONES holds 16 values.
        (whole, (rest > 0).then(|| unsafe { _mm256_loadu_si256(ONES.as_ptr().add(LANES - rest).cast()) }))
    }

    /// Calls `f(a, b, c)` for every row of the channel with its starts in three layouts.
    #[inline(always)]
    fn each_row(extent: Extent, a: Rows, b: Rows, c: Rows, mut f: impl FnMut(usize, usize, usize)) {
        for n in 0..extent.b {
            for y in 0..extent.h {
                f(a.start(n, y), b.start(n, y), c.start(n, y));
            }
        }
    }

    /// Calls `f(k, mask)` for each vector of a row split by [`split`]: the whole ones from
    /// offset k without a mask, then the last under its mask.
    #[inline(always)]
    fn each_vector(whole: usize, tail: Option<__m256i>, f: &mut impl FnMut(usize, Option<__m256i>)) {
        for k in (0..whole).step_by(LANES) {
            f(k, None);
        }
        if tail.is_some() {
            f(whole, tail);
        }
    }

    /// The 8 floats at `p`, or under `mask` (zero outside it).
    ///
    /// # Safety
    /// The loaded lanes must be inside the slice `p` points into.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const f32, mask: Option<__m256i>) -> __m256 {
        // SAFETY: the caller's.
        unsafe {
            match mask {
                None => _mm256_loadu_ps(p),
                Some(m) => _mm256_maskload_ps(p, m),
            }
        }
    }

    /// Stores the lanes of `v` at `p` (under `mask`).
    ///
    /// # Safety
    /// The stored lanes must be inside the slice `p` points into.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(p: *mut f32, mask: Option<__m256i>, v: __m256) {
        // SAFETY: the caller's.
        unsafe {
            match mask {
                None => _mm256_storeu_ps(p, v),
                Some(m) => _mm256_maskstore_ps(p, m, v),
            }
        }
    }

    /// `v` with the lanes outside `mask` zeroed.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn keep(v: __m256, mask: Option<__m256i>) -> __m256 {
        match mask {
            None => v,
            Some(m) => _mm256_and_ps(v, _mm256_castsi256_ps(m)),
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn xhat(v: __m256, c: Centre) -> __m256 {
        _mm256_mul_ps(_mm256_sub_ps(_mm256_add_ps(v, _mm256_set1_ps(c.bias)), _mm256_set1_ps(c.mean)), _mm256_set1_ps(c.inv))
    }

    /// d′: `d` where `y` > 0 when `relu`, else `d`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn through(relu: bool, d: __m256, y: __m256) -> __m256 {
        if relu { _mm256_and_ps(d, _mm256_cmp_ps::<_CMP_GT_OQ>(y, _mm256_setzero_ps())) } else { d }
    }

    /// Calls `f(set, a, b, c)` for every row of the channel with its starts in three layouts
    /// and its set of lanes (row r: `sets.0` for even r, `sets.1` for odd), two rows per
    /// iteration, so each set stays in registers (chosen by the row's index, they were kept in
    /// memory and each addition waited on a store).
    #[inline(always)]
    fn each_row_in_sets<A>(extent: Extent, a: Rows, b: Rows, c: Rows, sets: &mut (A, A), mut f: impl FnMut(&mut A, usize, usize, usize)) {
        let (mut n, mut y) = (0, 0);
        let mut next = || {
            let starts = (a.start(n, y), b.start(n, y), c.start(n, y));
            y += 1;
            if y == extent.h {
                (n, y) = (n + 1, 0);
            }
            starts
        };
        let rows = extent.b * extent.h;
        for _ in 0..rows / 2 {
            let (a, b, c) = next();
            f(&mut sets.0, a, b, c);
            let (a, b, c) = next();
            f(&mut sets.1, a, b, c);
        }
        if rows % 2 == 1 {
            let (a, b, c) = next();
            f(&mut sets.0, a, b, c);
        }
    }

    /// Adds the two halves of `v` into the lanes `acc`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn accumulate(acc: &mut [__m256d; 2], (v0, v1): (__m256d, __m256d)) {
        *acc = [_mm256_add_pd(acc[0], v0), _mm256_add_pd(acc[1], v1)];
    }

    /// The lanes of `acc` into `lanes` (set-major, as the portable loops index them).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn spill(acc: &([__m256d; 2], [__m256d; 2]), lanes: &mut [f64; SETS * LANES]) {
        for (set, out) in [acc.0, acc.1].iter().zip(lanes.chunks_exact_mut(LANES)) {
            // SAFETY: `out` holds 8 f64.
            unsafe {
                _mm256_storeu_pd(out.as_mut_ptr(), set[0]);
                _mm256_storeu_pd(out.as_mut_ptr().add(4), set[1]);
            }
        }
    }

    /// Zeroed lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn zeros() -> [__m256d; 2] {
        [_mm256_setzero_pd(); 2]
    }

    /// [`super::sum`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sum(src: &[f32], rows: Rows, extent: Extent, bias: f32, centre: Option<f64>, lanes: &mut [f64; SETS * LANES]) {
        let mut acc = (zeros(), zeros());
        let (whole, tail) = split(extent.w);
        let bias = _mm256_set1_ps(bias);
        let centre = centre.map(|c| _mm256_set1_pd(c));
        each_row_in_sets(extent, rows, rows, rows, &mut acc, |acc, at, _, _| {
            let row = &src[at..at + extent.w];
            let mut add = |k: usize, mask: Option<__m256i>| {
                // SAFETY: the loaded lanes are inside the row.
                let v = _mm256_add_ps(unsafe { load(row.as_ptr().add(k), mask) }, bias);
                let v = match centre {
                    // Outside the row v is the bias: zeroed, so those lanes add 0.
                    None => widened(keep(v, mask)),
                    Some(c) => {
                        let (v0, v1) = widened(v);
                        let (t0, t1) = (_mm256_sub_pd(v0, c), _mm256_sub_pd(v1, c));
                        let squares = (_mm256_mul_pd(t0, t0), _mm256_mul_pd(t1, t1));
                        match mask {
                            None => squares,
                            Some(m) => {
                                let (m0, m1) = (_mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)), _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(m)));
                                (_mm256_and_pd(squares.0, _mm256_castsi256_pd(m0)), _mm256_and_pd(squares.1, _mm256_castsi256_pd(m1)))
                            }
                        }
                    }
                };
                accumulate(acc, v);
            };
            each_vector(whole, tail, &mut add);
        });
        spill(&acc, lanes);
    }

    /// [`super::normalize`].
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn normalize(src: &[f32], from: Rows, dst: &mut [f32], to: Rows, extent: Extent, c: Centre, (g, beta): (f32, f32), relu: bool) {
        let (g, beta) = (_mm256_set1_ps(g), _mm256_set1_ps(beta));
        let (whole, tail) = split(extent.w);
        each_row(extent, from, to, to, |a, z, _| {
            let (row, out) = (&src[a..a + extent.w], &mut dst[z..z + extent.w]);
            let mut put = |k: usize, mask: Option<__m256i>| {
                // SAFETY: the loaded and stored lanes are inside the rows.
                let v = unsafe { load(row.as_ptr().add(k), mask) };
                let y = _mm256_add_ps(_mm256_mul_ps(xhat(v, c), g), beta);
                // max(y, 0) is y where y > 0, else 0 (NaN too), as the portable loop.
                let y = if relu { _mm256_max_ps(y, _mm256_setzero_ps()) } else { y };
                // SAFETY: as above.
                unsafe { store(out.as_mut_ptr().add(k), mask, y) };
            };
            each_vector(whole, tail, &mut put);
        });
    }

    /// [`super::grad_sums`].
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn grad_sums(dout: &[f32], y: &[f32], at: Rows, src: &[f32], from: Rows, extent: Extent, c: Centre, relu: bool, a: &mut [f64; SETS * LANES], b: &mut [f64; SETS * LANES]) {
        let mut sums = ((zeros(), zeros()), (zeros(), zeros()));
        let (whole, tail) = split(extent.w);
        each_row_in_sets(extent, at, from, from, &mut sums, |(sa, sb), r, s, _| {
            let (d, yr, v) = (&dout[r..r + extent.w], &y[r..r + extent.w], &src[s..s + extent.w]);
            let mut add = |k: usize, mask: Option<__m256i>| {
                // SAFETY: the loaded lanes are inside the rows.
                let (dv, yv, vv) = unsafe { (load(d.as_ptr().add(k), mask), load(yr.as_ptr().add(k), mask), load(v.as_ptr().add(k), mask)) };
                let d = through(relu, dv, yv);
                // Outside the row x̂ is not zero: the product is masked so those lanes add 0.
                let p = keep(_mm256_mul_ps(d, xhat(vv, c)), mask);
                accumulate(sa, widened(d));
                accumulate(sb, widened(p));
            };
            each_vector(whole, tail, &mut add);
        });
        spill(&(sums.0.0, sums.1.0), a);
        spill(&(sums.0.1, sums.1.1), b);
    }

    /// [`super::grad`].
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn grad(dout: &[f32], y: &[f32], at: Rows, src: &[f32], from: Rows, dst: &mut [f32], to: Rows, extent: Extent, c: Centre, relu: bool, scale: f32, (mean_d, mean_dx): (f32, f32)) {
        let (scale, mean_d, mean_dx) = (_mm256_set1_ps(scale), _mm256_set1_ps(mean_d), _mm256_set1_ps(mean_dx));
        let (whole, tail) = split(extent.w);
        each_row(extent, at, from, to, |r, s, z| {
            let (d, yr, v, out) = (&dout[r..r + extent.w], &y[r..r + extent.w], &src[s..s + extent.w], &mut dst[z..z + extent.w]);
            let mut put = |k: usize, mask: Option<__m256i>| {
                // SAFETY: the loaded and stored lanes are inside the rows.
                let (dv, yv, vv) = unsafe { (load(d.as_ptr().add(k), mask), load(yr.as_ptr().add(k), mask), load(v.as_ptr().add(k), mask)) };
                let g = _mm256_mul_ps(scale, _mm256_sub_ps(_mm256_sub_ps(through(relu, dv, yv), mean_d), _mm256_mul_ps(xhat(vv, c), mean_dx)));
                // SAFETY: as above.
                unsafe { store(out.as_mut_ptr().add(k), mask, g) };
            };
            each_vector(whole, tail, &mut put);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Level, at_level, available};

    /// Values with ties, negatives and zeros (ReLU's edge), spread over a padded layout.
    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| if i % 11 == 0 { 0.0 } else { ((i as f32 + seed) * 0.37).sin() * 2.5 }).collect()
    }

    /// Every kernel gives the portable loops' bits at every width this CPU has, for rows
    /// shorter than a vector, of whole vectors and with a tail, an odd number of rows; writes
    /// only inside the rows; and the statistics are the plain sums.
    /// The statistics' sums, the output, the gradient's sums (with and without ReLU) and the
    /// gradient, as one run of the kernels gives them.
    type Outcome = ((f64, f64), Vec<f32>, ((f64, f64), (f64, f64)), Vec<f32>);

    #[test]
    fn the_kernels_give_the_same_bits_at_every_width_and_write_only_their_rows() {
        for (b, h, w, pad) in [(3, 5, 7, 2), (2, 4, 16, 0), (3, 3, 14, 2), (1, 3, 3, 5), (2, 2, 28, 2)] {
            let extent = Extent { b, h, w };
            let row = w + pad;
            let from = Rows { at: 3, example: (h + 1) * row, row };
            let at = Rows { at: 0, example: h * w, row: w };
            let src = values(3 + b * (h + 1) * row, 0.5);
            let (dout, y) = (values(b * h * w, 1.5), values(b * h * w, 2.5).iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
            let centre = Centre { bias: 0.25, mean: 0.125, inv: 1.5 };
            let run = |level| -> Outcome {
                at_level(level, || {
                    let narrow = narrow_kernels();
                    let sums = (sum(narrow, &src, from, extent, 0.25, None), sum(narrow, &src, from, extent, 0.25, Some(0.5)));
                    let mut out = vec![f32::NAN; b * h * w];
                    normalize(narrow, &src, from, &mut out, at, extent, centre, (0.75, -0.5), true);
                    let grads = (grad_sums(narrow, &dout, &y, at, &src, from, extent, centre, true), grad_sums(narrow, &dout, &y, at, &src, from, extent, centre, false));
                    let mut dst = vec![7.0f32; src.len()];
                    grad(narrow, &dout, &y, at, &src, from, &mut dst, from, extent, centre, true, 0.8, (0.1, -0.2));
                    (sums, out, grads, dst)
                })
            };
            let base = run(Level::Baseline);
            let inside: Vec<f64> = extent.starts(from).flat_map(|s| src[s..s + w].iter().map(|&v| (v + 0.25) as f64)).collect();
            let plain = inside.iter().sum::<f64>();
            assert!((base.0.0 - plain).abs() < 1e-9 * plain.abs().max(1.0), "{} vs {plain}", base.0.0);
            let squares = inside.iter().map(|v| (v - 0.5) * (v - 0.5)).sum::<f64>();
            assert!((base.0.1 - squares).abs() < 1e-9 * squares, "{} vs {squares}", base.0.1);
            assert!(base.1.iter().all(|v| *v >= 0.0), "ReLU's output is never negative (nor NaN)");
            let written: std::collections::BTreeSet<usize> = extent.starts(from).flat_map(|s| s..s + w).collect();
            assert!(base.3.iter().enumerate().all(|(i, &v)| written.contains(&i) || v == 7.0), "the gradient stays inside the rows");
            for level in available() {
                let got = run(level);
                let bits = |r: &Outcome| {
                    let mut v = vec![r.0.0.to_bits(), r.0.1.to_bits(), r.2.0.0.to_bits(), r.2.0.1.to_bits(), r.2.1.0.to_bits(), r.2.1.1.to_bits()];
                    v.extend(r.1.iter().chain(&r.3).map(|x| x.to_bits() as u64));
                    v
                };
                assert_eq!(bits(&got), bits(&base), "{b}×{h}×{w} at {}", level.name());
            }
        }
    }
}
