//! The convolutions of the weight autoencoders — kernel 4, stride 2, padding 1, which halve a
//! row (and their transposes, which double it) — computed directly, without the product
//! layout of [`crate::conv1d`].
//!
//! Why: p-diff's and FLoWN's autoencoders are nothing but these (16 channels, rows of 128 to
//! 2,048 positions), and through the general construction they ran at 50–80 GFLOP/s on two
//! AVX-512 cores: the phase and spread copies, their zeroing and the product's wide output
//! cost more memory traffic than the arithmetic. Here each output vector (16 consecutive
//! positions of one channel) is a chain of fused multiply-adds over the input channels and
//! the four taps, with the taps read straight from a sample's even and odd positions (one
//! small copy per sample, in the L1/L2 cache) — [`halve`] for the convolution, [`double`] for
//! its transpose (the convolution's input gradient).
//!
//! Every output's sum runs in one fixed order — the bias, then input channel by channel, taps
//! in ascending order — whatever the vector width, the number of output channels computed
//! together and the threads (which split the batch), so the bits are the same everywhere.

/// Positions per vector (an AVX-512 register; two AVX2 registers).
const L: usize = 16;

/// Whether a convolution with these sizes is one of the halving ones.
pub fn applies(k: usize, stride: usize, padding: usize) -> bool {
    k == 4 && stride == 2 && padding == 1
}

/// The even and odd positions of one sample's `rows` (rows of `len`), each row as two rows of
/// `width` (`width` ≥ out + L + 1): `even[m] = x[2m]`, `odd[m] = x[2m − 1]` (0 off the row).
fn split(x: &[f32], rows: usize, len: usize, width: usize, out: &mut Vec<f32>) {
    // Every sample writes the same entries: the zeros around them stay from the first.
    if out.len() != rows * 2 * width {
        out.clear();
        out.resize(rows * 2 * width, 0.0);
    }
    for (src, dst) in x.chunks_exact(len).take(rows).zip(out.chunks_exact_mut(2 * width)) {
        let (even, odd) = dst.split_at_mut(width);
        deinterleave(src, even, &mut odd[1..]);
    }
}

crate::multiversion! {
    /// `even[m] = src[2m]`, `odd[m] = src[2m + 1]`.
    fn deinterleave(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
        let pairs = src.chunks_exact(2);
        if let [last] = pairs.remainder() {
            even[src.len() / 2] = *last;
        }
        for ((pair, e), o) in pairs.zip(even.iter_mut()).zip(odd.iter_mut()) {
            *e = pair[0];
            *o = pair[1];
        }
    }
}

#[inline(always)]
fn load(src: &[f32]) -> [f32; L] {
    let mut v = [0.0; L];
    v.copy_from_slice(&src[..L]);
    v
}

/// One sample of [`halve`], output channel `a0`, in plain loops (the CPU without AVX2).
#[allow(clippy::too_many_arguments)] // the sizes of one kernel call
fn halve_rows(phases: &[f32], width: usize, inputs: usize, w: &[f32], bias: Option<&[f32]>, a0: usize, out: usize, y: &mut [f32]) {
    for j0 in (0..out).step_by(L) {
        let mut acc = [bias.map_or(0.0, |b| b[a0]); L];
        for b in 0..inputs {
            let (even, odd) = phases[b * 2 * width..][..2 * width].split_at(width);
            // Tap t of output j reads x[2j + t − 1]: odd[j], even[j], odd[j + 1], even[j + 1].
            let taps = [load(&odd[j0..]), load(&even[j0..]), load(&odd[j0 + 1..]), load(&even[j0 + 1..])];
            for (tap, &wv) in taps.iter().zip(&w[(a0 * inputs + b) * 4..][..4]) {
                for (a, &x) in acc.iter_mut().zip(tap) {
                    *a = x.mul_add(wv, *a);
                }
            }
        }
        let n = L.min(out - j0);
        y[a0 * out + j0..][..n].copy_from_slice(&acc[..n]);
    }
}

/// [`halve`] for one sample whose input is split into `phases`: AVX-512 or AVX2 registers
/// where the CPU has them ([`x86`]), the plain loops otherwise — the same sums in the same
/// order, so the same bits.
#[allow(clippy::too_many_arguments)] // the sizes of one kernel call
fn halve_sample(phases: &[f32], width: usize, inputs: usize, w: &[f32], bias: Option<&[f32]>, outputs: usize, out: usize, y: &mut [f32]) {
    assert!(phases.len() >= inputs * 2 * width && width > out + L && w.len() == outputs * inputs * 4 && y.len() == outputs * out && bias.is_none_or(|b| b.len() == outputs));
    let level = crate::simd::current();
    let mut a0 = 0;
    while a0 < outputs {
        let rest = outputs - a0;
        #[cfg(target_arch = "x86_64")]
        {
            use crate::simd::Level;
            // SAFETY (each call): `current` says AVX-512F or AVX2 only when the CPU has it
            // (with FMA); the sizes were checked above.
            let step = match level {
                Level::Avx512 if rest >= 16 => unsafe {
                    x86::halve16::<16>(phases, width, inputs, w, bias, a0, out, y);
                    16
                },
                Level::Avx512 if rest >= 4 => unsafe {
                    x86::halve16::<4>(phases, width, inputs, w, bias, a0, out, y);
                    4
                },
                Level::Avx512 => unsafe {
                    x86::halve16::<1>(phases, width, inputs, w, bias, a0, out, y);
                    1
                },
                Level::Avx2 if rest >= 8 => unsafe {
                    x86::halve8::<8>(phases, width, inputs, w, bias, a0, out, y);
                    8
                },
                Level::Avx2 => unsafe {
                    x86::halve8::<1>(phases, width, inputs, w, bias, a0, out, y);
                    1
                },
                Level::Baseline => 0,
            };
            if step > 0 {
                a0 += step;
                continue;
            }
        }
        let _ = (rest, level);
        halve_rows(phases, width, inputs, w, bias, a0, out, y);
        a0 += 1;
    }
}

/// `y` (samples × outputs × out) = bias + the convolution of `x` (samples × inputs × len)
/// with `w` (outputs × inputs × 4), stride 2, padding 1: `out` = ⌊len / 2⌋ positions.
pub fn halve(x: &[f32], inputs: usize, len: usize, w: &[f32], bias: Option<&[f32]>, outputs: usize, y: &mut [f32]) {
    let out = len / 2;
    let width = out + L + 1;
    let mut phases = Vec::new();
    for (x, y) in x.chunks_exact(inputs * len).zip(y.chunks_exact_mut(outputs * out)) {
        split(x, inputs, len, width, &mut phases);
        halve_sample(&phases, width, inputs, w, bias, outputs, out, y);
    }
}

/// One sample of [`double`], output channel `b0`, in plain loops.
#[allow(clippy::too_many_arguments)] // the sizes of one kernel call
fn double_rows(padded: &[f32], width: usize, inputs: usize, outputs: usize, w: &[f32], bias: Option<&[f32]>, b0: usize, out: usize, z: &mut [f32]) {
    for m0 in (0..out.div_ceil(2)).step_by(L) {
        let (mut even, mut odd) = ([bias.map_or(0.0, |b| b[b0]); L], [bias.map_or(0.0, |b| b[b0]); L]);
        for a in 0..inputs {
            // d[m − 1], d[m], d[m + 1] for m in m0..m0 + L (the row is padded by one zero).
            let row = &padded[a * width + m0..];
            let (before, at, after) = (load(row), load(&row[1..]), load(&row[2..]));
            let wt = &w[(a * outputs + b0) * 4..][..4];
            // z[2m] = … + w1·d[m] + w3·d[m − 1]; z[2m + 1] = … + w0·d[m + 1] + w2·d[m].
            for l in 0..L {
                even[l] = at[l].mul_add(wt[1], even[l]);
                even[l] = before[l].mul_add(wt[3], even[l]);
                odd[l] = after[l].mul_add(wt[0], odd[l]);
                odd[l] = at[l].mul_add(wt[2], odd[l]);
            }
        }
        let mut pairs = [0.0f32; 2 * L];
        for l in 0..L {
            pairs[2 * l] = even[l];
            pairs[2 * l + 1] = odd[l];
        }
        let n = (2 * L).min(out - 2 * m0);
        z[b0 * out + 2 * m0..][..n].copy_from_slice(&pairs[..n]);
    }
}

/// [`double`] for one sample whose input rows are `padded`: as [`halve_sample`].
#[allow(clippy::too_many_arguments)] // the sizes of one kernel call
fn double_sample(padded: &[f32], width: usize, inputs: usize, w: &[f32], bias: Option<&[f32]>, outputs: usize, out: usize, z: &mut [f32]) {
    assert!(padded.len() >= inputs * width && width >= out.div_ceil(2) + L + 2 && w.len() == outputs * inputs * 4 && z.len() == outputs * out && bias.is_none_or(|b| b.len() == outputs));
    let level = crate::simd::current();
    let mut b0 = 0;
    while b0 < outputs {
        let rest = outputs - b0;
        #[cfg(target_arch = "x86_64")]
        {
            use crate::simd::Level;
            // SAFETY (each call): as in `halve_sample`.
            let step = match level {
                Level::Avx512 if rest >= 8 => unsafe {
                    x86::double16::<8>(padded, width, inputs, outputs, w, bias, b0, out, z);
                    8
                },
                Level::Avx512 if rest >= 2 => unsafe {
                    x86::double16::<2>(padded, width, inputs, outputs, w, bias, b0, out, z);
                    2
                },
                Level::Avx512 => unsafe {
                    x86::double16::<1>(padded, width, inputs, outputs, w, bias, b0, out, z);
                    1
                },
                Level::Avx2 if rest >= 4 => unsafe {
                    x86::double8::<4>(padded, width, inputs, outputs, w, bias, b0, out, z);
                    4
                },
                Level::Avx2 => unsafe {
                    x86::double8::<1>(padded, width, inputs, outputs, w, bias, b0, out, z);
                    1
                },
                Level::Baseline => 0,
            };
            if step > 0 {
                b0 += step;
                continue;
            }
        }
        let _ = (rest, level);
        double_rows(padded, width, inputs, outputs, w, bias, b0, out, z);
        b0 += 1;
    }
}

/// `z` (samples × outputs × out) = bias + the transposed convolution of `d` (samples × inputs
/// × len) with `w` (inputs × outputs × 4), stride 2, padding 1, cut or zero-extended to `out`
/// positions: `z[b, i] = Σ_a Σ_t w[a, b, t] · d[a, j]` over i = 2j + t − 1. This is the
/// halving convolution's input gradient (with its weight) and the transposed convolution.
#[allow(clippy::too_many_arguments)] // the sizes of one kernel call
pub fn double(d: &[f32], inputs: usize, len: usize, w: &[f32], bias: Option<&[f32]>, outputs: usize, out: usize, z: &mut [f32]) {
    let width = out.div_ceil(2) + L + 2;
    let mut padded = vec![0.0f32; inputs * width];
    for (d, z) in d.chunks_exact(inputs * len).zip(z.chunks_exact_mut(outputs * out)) {
        for (src, dst) in d.chunks_exact(len).zip(padded.chunks_exact_mut(width)) {
            let n = len.min(width - 1);
            dst[1..1 + n].copy_from_slice(&src[..n]);
        }
        double_sample(&padded, width, inputs, w, bias, outputs, out, z);
    }
}

/// Samples per run of [`weight_run`]: the runs' sums are added in order, so a run's length is
/// fixed here, not by the threads.
pub const RUN: usize = 8;

/// Floats of a run's partial sums for a weight of `outputs` × `inputs` × 4.
pub fn run_len(outputs: usize, inputs: usize) -> usize {
    outputs * inputs * 4 * L
}

/// One run of samples' share of the halving convolution's weight gradient,
/// `dw[a, b, t] = Σ_n Σ_j dy[n, a, j] · x[n, b, 2j + t − 1]`: `lanes` ([`run_len`]) holds L
/// running sums per entry, lane l summing the positions j ≡ l (mod L) sample by sample, in
/// order. [`weight_total`] adds the runs' lanes.
pub fn weight_run(dy: &[f32], x: &[f32], inputs: usize, len: usize, outputs: usize, lanes: &mut [f32]) {
    let out = len / 2;
    let (width, blocks) = (out + L + 1, out.div_ceil(L) * L);
    assert_eq!(lanes.len(), run_len(outputs, inputs), "weight gradient lanes");
    lanes.fill(0.0);
    let (mut phases, mut grads) = (Vec::new(), vec![0.0f32; outputs * blocks]);
    for (x, dy) in x.chunks_exact(inputs * len).zip(dy.chunks_exact(outputs * out)) {
        split(x, inputs, len, width, &mut phases);
        // The gradient's rows zero-extended to whole vectors: the taps past the row add 0.
        for (src, dst) in dy.chunks_exact(out).zip(grads.chunks_exact_mut(blocks)) {
            dst[..out].copy_from_slice(src);
        }
        weight_sample(&phases, width, &grads, blocks, inputs, outputs, lanes);
    }
}

/// `dw` (outputs × inputs × 4) from the runs' `lanes`, added run by run, then lane by lane.
pub fn weight_total(lanes: &[f32], dw: &mut [f32]) {
    let entries = dw.len();
    let mut sums = vec![0.0f32; entries * L];
    for run in lanes.chunks_exact(entries * L) {
        for (s, &v) in sums.iter_mut().zip(run) {
            *s += v;
        }
    }
    for (d, lanes) in dw.iter_mut().zip(sums.chunks_exact(L)) {
        *d = lanes.iter().sum();
    }
}

/// One sample of [`weight_run`]: registers where the CPU has them, as [`halve_sample`].
fn weight_sample(phases: &[f32], width: usize, grads: &[f32], blocks: usize, inputs: usize, outputs: usize, lanes: &mut [f32]) {
    assert!(phases.len() >= inputs * 2 * width && width > blocks && grads.len() == outputs * blocks && lanes.len() == run_len(outputs, inputs));
    let level = crate::simd::current();
    let mut a0 = 0;
    while a0 < outputs {
        let rest = outputs - a0;
        #[cfg(target_arch = "x86_64")]
        {
            use crate::simd::Level;
            // SAFETY (each call): as in `halve_sample`.
            let step = match level {
                Level::Avx512 if rest >= 4 => unsafe {
                    x86::weight16::<4>(phases, width, grads, blocks, inputs, a0, lanes);
                    4
                },
                Level::Avx512 => unsafe {
                    x86::weight16::<1>(phases, width, grads, blocks, inputs, a0, lanes);
                    1
                },
                Level::Avx2 if rest >= 2 => unsafe {
                    x86::weight8::<2>(phases, width, grads, blocks, inputs, a0, lanes);
                    2
                },
                Level::Avx2 => unsafe {
                    x86::weight8::<1>(phases, width, grads, blocks, inputs, a0, lanes);
                    1
                },
                Level::Baseline => 0,
            };
            if step > 0 {
                a0 += step;
                continue;
            }
        }
        let _ = (rest, level);
        for b in 0..inputs {
            let (even, odd) = phases[b * 2 * width..][..2 * width].split_at(width);
            let g = &grads[a0 * blocks..][..blocks];
            for t in 0..4 {
                let acc = &mut lanes[((a0 * inputs + b) * 4 + t) * L..][..L];
                let tap = match t {
                    0 => odd,
                    1 => even,
                    2 => &odd[1..],
                    _ => &even[1..],
                };
                for (gs, ts) in g.chunks_exact(L).zip(tap.chunks(L)) {
                    for ((a, &gv), &tv) in acc.iter_mut().zip(gs).zip(ts) {
                        *a = gv.mul_add(tv, *a);
                    }
                }
            }
        }
        a0 += 1;
    }
}

/// The kernels in vector registers: [`halve`]'s outputs 16 (AVX-512) or 8 (AVX2) channels at a
/// time, [`double`]'s 8 or 4, positions in the lanes. Each lane's sum is the plain loops' sum.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::halve_rows`] for channels `a0..a0 + C`, 16 positions a register.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)] // the sizes of one kernel call
    pub(super) unsafe fn halve16<const C: usize>(phases: &[f32], width: usize, inputs: usize, w: &[f32], bias: Option<&[f32]>, a0: usize, out: usize, y: &mut [f32]) {
        let (p, wp) = (phases.as_ptr(), w.as_ptr());
        for j0 in (0..out).step_by(16) {
            let mut acc = [_mm512_setzero_ps(); C];
            for (c, a) in acc.iter_mut().enumerate() {
                *a = _mm512_set1_ps(bias.map_or(0.0, |b| b[a0 + c]));
            }
            for b in 0..inputs {
                // SAFETY (all loads): the rows are `width` ≥ out + 17 floats, zero-padded.
                let (even, odd) = unsafe { (p.add(b * 2 * width + j0), p.add(b * 2 * width + width + j0)) };
                let taps = unsafe { [_mm512_loadu_ps(odd), _mm512_loadu_ps(even), _mm512_loadu_ps(odd.add(1)), _mm512_loadu_ps(even.add(1))] };
                for (c, a) in acc.iter_mut().enumerate() {
                    let wc = unsafe { wp.add(((a0 + c) * inputs + b) * 4) };
                    for (t, &tap) in taps.iter().enumerate() {
                        *a = _mm512_fmadd_ps(tap, _mm512_set1_ps(unsafe { *wc.add(t) }), *a);
                    }
                }
            }
            let mask: __mmask16 = if out - j0 >= 16 { 0xffff } else { (1u16 << (out - j0)) - 1 };
            for (c, &a) in acc.iter().enumerate() {
                // SAFETY: the mask covers positions j0.. below `out` of row a0 + c.
                unsafe { _mm512_mask_storeu_ps(y.as_mut_ptr().add((a0 + c) * out + j0), mask, a) };
            }
        }
    }

    /// [`super::halve_rows`] for channels `a0..a0 + C`, 8 positions a register.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)] // the sizes of one kernel call
    pub(super) unsafe fn halve8<const C: usize>(phases: &[f32], width: usize, inputs: usize, w: &[f32], bias: Option<&[f32]>, a0: usize, out: usize, y: &mut [f32]) {
        let (p, wp) = (phases.as_ptr(), w.as_ptr());
        for j0 in (0..out).step_by(8) {
            let mut acc = [_mm256_setzero_ps(); C];
            for (c, a) in acc.iter_mut().enumerate() {
                *a = _mm256_set1_ps(bias.map_or(0.0, |b| b[a0 + c]));
            }
            for b in 0..inputs {
                // SAFETY (all loads): the rows are `width` ≥ out + 17 floats, zero-padded.
                let (even, odd) = unsafe { (p.add(b * 2 * width + j0), p.add(b * 2 * width + width + j0)) };
                let taps = unsafe { [_mm256_loadu_ps(odd), _mm256_loadu_ps(even), _mm256_loadu_ps(odd.add(1)), _mm256_loadu_ps(even.add(1))] };
                for (c, a) in acc.iter_mut().enumerate() {
                    let wc = unsafe { wp.add(((a0 + c) * inputs + b) * 4) };
                    for (t, &tap) in taps.iter().enumerate() {
                        *a = _mm256_fmadd_ps(tap, _mm256_set1_ps(unsafe { *wc.add(t) }), *a);
                    }
                }
            }
            let n = 8.min(out - j0);
            for (c, &a) in acc.iter().enumerate() {
                let mut v = [0.0f32; 8];
                // SAFETY: `v` holds 8 floats.
                unsafe { _mm256_storeu_ps(v.as_mut_ptr(), a) };
                y[(a0 + c) * out + j0..][..n].copy_from_slice(&v[..n]);
            }
        }
    }

    /// [`super::double_rows`] for channels `b0..b0 + C`, 16 positions a register.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)] // the sizes of one kernel call
    pub(super) unsafe fn double16<const C: usize>(padded: &[f32], width: usize, inputs: usize, outputs: usize, w: &[f32], bias: Option<&[f32]>, b0: usize, out: usize, z: &mut [f32]) {
        let (p, wp) = (padded.as_ptr(), w.as_ptr());
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        for m0 in (0..out.div_ceil(2)).step_by(16) {
            let (mut even, mut odd) = ([_mm512_setzero_ps(); C], [_mm512_setzero_ps(); C]);
            for c in 0..C {
                even[c] = _mm512_set1_ps(bias.map_or(0.0, |b| b[b0 + c]));
                odd[c] = even[c];
            }
            for a in 0..inputs {
                // SAFETY (all loads): rows of `width` ≥ ⌈out / 2⌉ + 18 floats, zero-padded.
                let row = unsafe { p.add(a * width + m0) };
                let (before, at, after) = unsafe { (_mm512_loadu_ps(row), _mm512_loadu_ps(row.add(1)), _mm512_loadu_ps(row.add(2))) };
                for c in 0..C {
                    let wc = unsafe { wp.add((a * outputs + b0 + c) * 4) };
                    let wt = unsafe { [*wc, *wc.add(1), *wc.add(2), *wc.add(3)] };
                    even[c] = _mm512_fmadd_ps(at, _mm512_set1_ps(wt[1]), even[c]);
                    even[c] = _mm512_fmadd_ps(before, _mm512_set1_ps(wt[3]), even[c]);
                    odd[c] = _mm512_fmadd_ps(after, _mm512_set1_ps(wt[0]), odd[c]);
                    odd[c] = _mm512_fmadd_ps(at, _mm512_set1_ps(wt[2]), odd[c]);
                }
            }
            let n = (out - 2 * m0).min(32);
            for c in 0..C {
                let pairs = [_mm512_permutex2var_ps(even[c], low, odd[c]), _mm512_permutex2var_ps(even[c], high, odd[c])];
                let dst = (b0 + c) * out + 2 * m0;
                for (h, &v) in pairs.iter().enumerate() {
                    let k = n.saturating_sub(16 * h).min(16);
                    let mask: __mmask16 = if k == 16 { 0xffff } else { (1u16 << k) - 1 };
                    // SAFETY: the mask covers positions below `out` of row b0 + c.
                    unsafe { _mm512_mask_storeu_ps(z.as_mut_ptr().add(dst + 16 * h), mask, v) };
                }
            }
        }
    }

    /// [`super::double_rows`] for channels `b0..b0 + C`, 8 positions a register.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)] // the sizes of one kernel call
    pub(super) unsafe fn double8<const C: usize>(padded: &[f32], width: usize, inputs: usize, outputs: usize, w: &[f32], bias: Option<&[f32]>, b0: usize, out: usize, z: &mut [f32]) {
        let (p, wp) = (padded.as_ptr(), w.as_ptr());
        for m0 in (0..out.div_ceil(2)).step_by(8) {
            let (mut even, mut odd) = ([_mm256_setzero_ps(); C], [_mm256_setzero_ps(); C]);
            for c in 0..C {
                even[c] = _mm256_set1_ps(bias.map_or(0.0, |b| b[b0 + c]));
                odd[c] = even[c];
            }
            for a in 0..inputs {
                // SAFETY (all loads): rows of `width` ≥ ⌈out / 2⌉ + 18 floats, zero-padded.
                let row = unsafe { p.add(a * width + m0) };
                let (before, at, after) = unsafe { (_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(1)), _mm256_loadu_ps(row.add(2))) };
                for c in 0..C {
                    let wc = unsafe { wp.add((a * outputs + b0 + c) * 4) };
                    let wt = unsafe { [*wc, *wc.add(1), *wc.add(2), *wc.add(3)] };
                    even[c] = _mm256_fmadd_ps(at, _mm256_set1_ps(wt[1]), even[c]);
                    even[c] = _mm256_fmadd_ps(before, _mm256_set1_ps(wt[3]), even[c]);
                    odd[c] = _mm256_fmadd_ps(after, _mm256_set1_ps(wt[0]), odd[c]);
                    odd[c] = _mm256_fmadd_ps(at, _mm256_set1_ps(wt[2]), odd[c]);
                }
            }
            let n = 16.min(out - 2 * m0);
            for c in 0..C {
                let (lo, hi) = (_mm256_unpacklo_ps(even[c], odd[c]), _mm256_unpackhi_ps(even[c], odd[c]));
                let mut v = [0.0f32; 16];
                // SAFETY: `v` holds 16 floats.
                unsafe {
                    _mm256_storeu_ps(v.as_mut_ptr(), _mm256_permute2f128_ps(lo, hi, 0x20));
                    _mm256_storeu_ps(v.as_mut_ptr().add(8), _mm256_permute2f128_ps(lo, hi, 0x31));
                }
                z[(b0 + c) * out + 2 * m0..][..n].copy_from_slice(&v[..n]);
            }
        }
    }

    /// [`super::weight_sample`] for output channels `a0..a0 + C`: per input channel, the
    /// C × 4 entries' 16 lanes in registers over the sample's positions.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn weight16<const C: usize>(phases: &[f32], width: usize, grads: &[f32], blocks: usize, inputs: usize, a0: usize, lanes: &mut [f32]) {
        let (p, g, l) = (phases.as_ptr(), grads.as_ptr(), lanes.as_mut_ptr());
        for b in 0..inputs {
            let mut acc = [[_mm512_setzero_ps(); 4]; C];
            for (c, acc) in acc.iter_mut().enumerate() {
                for (t, a) in acc.iter_mut().enumerate() {
                    // SAFETY: entry (a0 + c, b, t)'s 16 lanes.
                    *a = unsafe { _mm512_loadu_ps(l.add((((a0 + c) * inputs + b) * 4 + t) * 16)) };
                }
            }
            for j0 in (0..blocks).step_by(16) {
                // SAFETY (all loads): phase rows of `width` > blocks floats, gradient rows of `blocks`.
                let (even, odd) = unsafe { (p.add(b * 2 * width + j0), p.add(b * 2 * width + width + j0)) };
                let taps = unsafe { [_mm512_loadu_ps(odd), _mm512_loadu_ps(even), _mm512_loadu_ps(odd.add(1)), _mm512_loadu_ps(even.add(1))] };
                for (c, acc) in acc.iter_mut().enumerate() {
                    let gv = unsafe { _mm512_loadu_ps(g.add((a0 + c) * blocks + j0)) };
                    for (a, &tap) in acc.iter_mut().zip(&taps) {
                        *a = _mm512_fmadd_ps(gv, tap, *a);
                    }
                }
            }
            for (c, acc) in acc.iter().enumerate() {
                for (t, &a) in acc.iter().enumerate() {
                    // SAFETY: as the loads above.
                    unsafe { _mm512_storeu_ps(l.add((((a0 + c) * inputs + b) * 4 + t) * 16), a) };
                }
            }
        }
    }

    /// [`weight16`] in 8-lane registers: lanes 0–7, then 8–15, each over the positions in order.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight8<const C: usize>(phases: &[f32], width: usize, grads: &[f32], blocks: usize, inputs: usize, a0: usize, lanes: &mut [f32]) {
        let (p, g, l) = (phases.as_ptr(), grads.as_ptr(), lanes.as_mut_ptr());
        for b in 0..inputs {
            for half in [0, 8] {
                let mut acc = [[_mm256_setzero_ps(); 4]; C];
                for (c, acc) in acc.iter_mut().enumerate() {
                    for (t, a) in acc.iter_mut().enumerate() {
                        // SAFETY: entry (a0 + c, b, t)'s lanes half..half + 8.
                        *a = unsafe { _mm256_loadu_ps(l.add((((a0 + c) * inputs + b) * 4 + t) * 16 + half)) };
                    }
                }
                for j0 in (half..blocks).step_by(16) {
                    // SAFETY (all loads): as in `weight16`.
                    let (even, odd) = unsafe { (p.add(b * 2 * width + j0), p.add(b * 2 * width + width + j0)) };
                    let taps = unsafe { [_mm256_loadu_ps(odd), _mm256_loadu_ps(even), _mm256_loadu_ps(odd.add(1)), _mm256_loadu_ps(even.add(1))] };
                    for (c, acc) in acc.iter_mut().enumerate() {
                        let gv = unsafe { _mm256_loadu_ps(g.add((a0 + c) * blocks + j0)) };
                        for (a, &tap) in acc.iter_mut().zip(&taps) {
                            *a = _mm256_fmadd_ps(gv, tap, *a);
                        }
                    }
                }
                for (c, acc) in acc.iter().enumerate() {
                    for (t, &a) in acc.iter().enumerate() {
                        // SAFETY: as the loads above.
                        unsafe { _mm256_storeu_ps(l.add((((a0 + c) * inputs + b) * 4 + t) * 16 + half), a) };
                    }
                }
            }
        }
    }
}
