//! Seeded uniform and normal samples from a counter-based generator: value `i` of a seed's
//! stream is a function of `(seed, i)` alone, so any range of a stream can be computed on any
//! thread, in any order, and it is the same bits on every CPU and thread count.
//!
//! Why: the generators draw fresh noise for every step (p-diff's and Hyper-Representations'
//! input noise is a whole batch of checkpoints, 200 × 2,048 values; HyperDiffusion's DDPM noise
//! 64 × 7,960). Drawn one value at a time from a sequential generator (ChaCha8 and a ziggurat)
//! that cost about 2.3 ms per 409,600 normals on one core — a fifth of a Hyper-Representations
//! step — where PyTorch's `randn` takes about 1.5 ms.
//!
//! How: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011;
//! the generator of cuRAND and of PyTorch's CUDA tensors) turns a block counter and the seed
//! into four 32-bit words; a normal pair is the Box–Muller transform of two of them. Sixteen
//! blocks are computed side by side (one AVX-512 register per word, [`crate::multiversion!`]),
//! with the logarithm, sine and cosine as single-precision polynomials (Cephes' `logf`,
//! `sinf`, `cosf`, within a few units in the last place) instead of calls into the C library
//! that would stop the vectorisation. The floating-point operations and their order are fixed,
//! so the bits do not depend on the vector width either.
//!
//! Layout: values are computed in groups of [`GROUP`] (16 blocks × 4 words); value `i` is word
//! `(i % 64) / 16` of block `16 · (i / 64) + i % 16`, so a group's values are four contiguous
//! rows of sixteen, one per word.

/// Values per group: 16 blocks of four words.
pub const GROUP: usize = 64;

const LANES: usize = 16;
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32-10 of `counter` under `key`: the four words the generator gives for one block.
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (p0, p1) = (u64::from(M0) * u64::from(c[0]), u64::from(M1) * u64::from(c[2]));
        c = [(p1 >> 32) as u32 ^ c[1] ^ k[0], p1 as u32, (p0 >> 32) as u32 ^ c[3] ^ k[1], p0 as u32];
    }
    c
}

/// The four words of the sixteen blocks of group `group`, word by word (`words[w][lane]`):
/// [`philox`] per lane, written so that the lanes vectorise.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // one index into four rows
fn group_words(group: u64, key: [u32; 2]) -> [[u32; LANES]; 4] {
    let mut words = [[0u32; LANES]; 4];
    for lane in 0..LANES {
        let block = group * LANES as u64 + lane as u64;
        let (mut c0, mut c1, mut c2, mut c3) = (block as u32, (block >> 32) as u32, 0u32, 0u32);
        let (mut k0, mut k1) = (key[0], key[1]);
        for round in 0..10 {
            if round > 0 {
                k0 = k0.wrapping_add(W0);
                k1 = k1.wrapping_add(W1);
            }
            let (p0, p1) = (u64::from(M0) * u64::from(c0), u64::from(M1) * u64::from(c2));
            (c0, c1, c2, c3) = ((p1 >> 32) as u32 ^ c1 ^ k0, p1 as u32, (p0 >> 32) as u32 ^ c3 ^ k1, p0 as u32);
        }
        words[0][lane] = c0;
        words[1][lane] = c1;
        words[2][lane] = c2;
        words[3][lane] = c3;
    }
    words
}

/// The key of a 64-bit seed.
fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// A word's top 24 bits as a float in [0, 1): every value a multiple of 2⁻²⁴.
#[inline(always)]
fn unit(word: u32) -> f32 {
    ((word >> 8) as i32) as f32 * (1.0 / 16_777_216.0)
}

/// ln(x) for x in (0, 1] (Cephes `logf`: the exponent, and a polynomial of the mantissa
/// reduced to [√½ − 1, √2 − 1)).
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let low = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= i32::from(low);
    m = if low { m + m - 1.0 } else { m - 1.0 };
    let e = e as f32;
    let z = m * m;
    let mut y = 7.037_683_6e-2;
    for c in [-1.151_461e-1, 1.167_699_9e-1, -1.242_014_1e-1, 1.424_932_3e-1, -1.666_805_8e-1, 2.000_071_5e-1, -2.499_999_4e-1, 3.333_333e-1] {
        y = y * m + c;
    }
    y = y * m * z;
    y += e * -2.121_944_4e-4;
    y += -0.5 * z;
    m + y + e * 0.693_359_4
}

/// (sin 2πu, cos 2πu) for u in [0, 1), u a multiple of 2⁻²⁴: the eighths of the turn are
/// exact, so the polynomials (Cephes `sinf`, `cosf`) only see [−π/4, π/4).
#[inline(always)]
fn sin_cos_turn(u: f32) -> (f32, f32) {
    let eighths = u * 8.0;
    // Nearest quarter turn j (as eighths 2j), and the rest in [−1, 1) eighths.
    let j = ((eighths + 1.0) * 0.5) as u32;
    let x = (eighths - (2 * j) as f32) * std::f32::consts::FRAC_PI_4;
    let z = x * x;
    let s = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * x + x;
    let c = ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0;
    let (swap, negate_sin, negate_cos) = (j & 1 == 1, j & 2 == 2, (j + 1) & 2 == 2);
    let (sin, cos) = if swap { (c, s) } else { (s, c) };
    (if negate_sin { -sin } else { sin }, if negate_cos { -cos } else { cos })
}

crate::multiversion! {
    /// Groups `first..` of the seed's normal stream into `out` (whole groups).
    fn normal_groups(key: [u32; 2], first: u64, out: &mut [f32]) {
        for (g, values) in out.chunks_exact_mut(GROUP).enumerate() {
            let words = group_words(first + g as u64, key);
            let (rows01, rows23) = values.split_at_mut(2 * LANES);
            for (pair, rows) in [(0, rows01), (2, rows23)] {
                let (cos_row, sin_row) = rows.split_at_mut(LANES);
                for lane in 0..LANES {
                    // u in (0, 1]: the logarithm is finite.
                    let u = unit(words[pair][lane]) + 1.0 / 16_777_216.0;
                    let r = (-2.0 * ln(u)).sqrt();
                    let (sin, cos) = sin_cos_turn(unit(words[pair + 1][lane]));
                    cos_row[lane] = r * cos;
                    sin_row[lane] = r * sin;
                }
            }
        }
    }
}

crate::multiversion! {
    /// Groups `first..` of the seed's uniform stream into `out` (whole groups).
    fn uniform_groups(key: [u32; 2], first: u64, out: &mut [f32]) {
        for (g, values) in out.chunks_exact_mut(GROUP).enumerate() {
            let words = group_words(first + g as u64, key);
            for (row, word) in values.chunks_exact_mut(LANES).zip(words.iter()) {
                for (v, &w) in row.iter_mut().zip(word.iter()) {
                    *v = unit(w);
                }
            }
        }
    }
}

/// Values `start..start + out.len()` of a stream whose whole groups `fill` computes: whole
/// groups in place, a partial group at either end through a group-sized buffer.
fn fill(start: u64, out: &mut [f32], groups: impl Fn(u64, &mut [f32])) {
    let group = GROUP as u64;
    let mut at = 0usize;
    let mut index = start;
    while at < out.len() {
        let (g, offset) = (index / group, (index % group) as usize);
        let whole = (out.len() - at) / GROUP * GROUP;
        if offset == 0 && whole > 0 {
            groups(g, &mut out[at..at + whole]);
            at += whole;
            index += whole as u64;
        } else {
            let mut buffer = [0.0f32; GROUP];
            groups(g, &mut buffer);
            let take = (GROUP - offset).min(out.len() - at);
            out[at..at + take].copy_from_slice(&buffer[offset..offset + take]);
            at += take;
            index += take as u64;
        }
    }
}

/// Values `start..start + out.len()` of `seed`'s standard normal stream.
pub fn normal(seed: u64, start: u64, out: &mut [f32]) {
    fill(start, out, |g, o| normal_groups(key(seed), g, o));
}

/// Values `start..start + out.len()` of `seed`'s uniform stream, in [0, 1) (multiples of 2⁻²⁴).
pub fn uniform(seed: u64, start: u64, out: &mut [f32]) {
    fill(start, out, |g, o| uniform_groups(key(seed), g, o));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known answers (`tests/kat_vectors`, the `philox4x32 10` lines).
    #[test]
    fn philox_known_answers() {
        assert_eq!(philox([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox([u32::MAX; 4], [u32::MAX; 2]), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        assert_eq!(philox([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]), [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]);
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // one index into four rows
    fn groups_are_philox_blocks() {
        let (seed, g) = (0x1234_5678_9abc_def0u64, 5u64);
        let words = group_words(g, key(seed));
        for lane in 0..LANES {
            let block = g * LANES as u64 + lane as u64;
            let expected = philox([block as u32, (block >> 32) as u32, 0, 0], key(seed));
            assert_eq!([words[0][lane], words[1][lane], words[2][lane], words[3][lane]], expected, "lane {lane}");
        }
        let mut u = [0.0f32; GROUP];
        uniform(seed, g * GROUP as u64, &mut u);
        assert_eq!(u[3 * LANES + 7], unit(words[3][7]), "value i is word (i % 64) / 16 of block 16·(i / 64) + i % 16");
    }

    #[test]
    fn polynomials_match_the_library() {
        let mut worst = (0.0f64, 0.0f64);
        for k in (0..1u32 << 24).step_by(97) {
            let u = k as f32 / 16_777_216.0;
            let x = u + 1.0 / 16_777_216.0;
            worst.0 = worst.0.max((f64::from(ln(x)) - f64::from(x).ln()).abs() / f64::from(x).ln().abs().max(1e-30));
            let (s, c) = sin_cos_turn(u);
            let angle = std::f64::consts::TAU * f64::from(u);
            worst.1 = worst.1.max((f64::from(s) - angle.sin()).abs()).max((f64::from(c) - angle.cos()).abs());
        }
        assert!(worst.0 < 5e-7, "ln: worst relative error {}", worst.0);
        assert!(worst.1 < 4e-7, "sin/cos: worst absolute error {}", worst.1);
    }

    #[test]
    fn any_range_is_the_same_bits() {
        let mut whole = vec![0.0f32; 1000];
        normal(42, 0, &mut whole);
        for (start, len) in [(0usize, 1usize), (3, 70), (63, 2), (64, 64), (100, 900), (999, 1)] {
            let mut part = vec![0.0f32; len];
            normal(42, start as u64, &mut part);
            assert_eq!(part, whole[start..start + len], "normal values {start}..{}", start + len);
        }
        let mut other = vec![0.0f32; 1000];
        normal(43, 0, &mut other);
        assert_ne!(other, whole, "another seed, other values");
    }

    /// The largest distance between the sample's distribution function and `cdf`.
    fn kolmogorov_smirnov(mut values: Vec<f32>, cdf: impl Fn(f64) -> f64) -> f64 {
        values.sort_by(f32::total_cmp);
        let n = values.len() as f64;
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let f = cdf(f64::from(v));
                (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
            })
            .fold(0.0, f64::max)
    }

    /// Φ(x) by the complementary error function's continued-fraction-free approximation of
    /// Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
    fn normal_cdf(x: f64) -> f64 {
        let z = x.abs() / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * z);
        let poly = t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let erfc = poly * (-z * z).exp();
        if x >= 0.0 { 1.0 - 0.5 * erfc } else { 0.5 * erfc }
    }

    #[test]
    fn samples_follow_their_distributions() {
        let n = 1 << 20;
        let mut v = vec![0.0f32; n];
        normal(7, 0, &mut v);
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
        let var = v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n as f64;
        let kurtosis = v.iter().map(|&x| (f64::from(x) - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 0.004 && (var - 1.0).abs() < 0.006 && (kurtosis - 3.0).abs() < 0.03, "normal: mean {mean}, variance {var}, kurtosis {kurtosis}");
        assert!(v.iter().all(|x| x.is_finite() && x.abs() < 6.0), "normal: a value beyond 6σ or not finite");
        // 1.95/√n: the 0.1 % critical value of the Kolmogorov–Smirnov statistic.
        let critical = 1.95 / (n as f64).sqrt();
        let d = kolmogorov_smirnov(v, normal_cdf);
        assert!(d < critical, "normal: Kolmogorov–Smirnov distance {d} ≥ {critical}");
        let mut u = vec![0.0f32; n];
        uniform(7, 0, &mut u);
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)), "uniform: a value outside [0, 1)");
        let d = kolmogorov_smirnov(u, |x| x.clamp(0.0, 1.0));
        assert!(d < critical, "uniform: Kolmogorov–Smirnov distance {d} ≥ {critical}");
    }
}
