//! Distance to the nearest *interpolation* of two training checkpoints (Zeng et al. 2025: weight
//! generators produce copies "or simple interpolations" of their training checkpoints): for a
//! model x, the smallest L2 distance to a point a + t·(b − a), t ∈ [0, 1], over every pair
//! (a, b) of training checkpoints.
//!
//! For one pair the nearest point is exact in closed form — t* = ⟨x − a, b − a⟩ / ‖b − a‖²,
//! clamped to [0, 1] — and every quantity in it is a dot product among x, a and b. So two f64
//! GEMMs (models × checkpoints and checkpoints × checkpoints) estimate all m(m−1)/2 segments of
//! every model at O(1) each (one pass), and only the segments whose estimate is within rounding
//! slack of the smallest are measured exactly, term by term. A segment whose t* is clamped is a
//! checkpoint, measured once per model however many segments end there. 1,000 models against
//! 200 checkpoints are 2·10⁷ estimates: well under a second, so no pair needs pruning.

use super::distance::{exact_l2, gram, per_model, slack, squared_norms};
use crate::simd::multiversion;

/// A model's nearest interpolation of two training checkpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// The two checkpoints (rows of the reference; `a < b`).
    pub a: usize,
    pub b: usize,
    /// Where on the segment from `a` to `b` the nearest point lies, in [0, 1].
    pub t: f64,
    /// Its L2 distance.
    pub l2: f64,
}

impl Segment {
    /// No segment: fewer than two checkpoints to interpolate.
    pub const NONE: Segment = Segment { a: usize::MAX, b: usize::MAX, t: f64::NAN, l2: f64::NAN };
}

/// For each of the `models` (rows of length `p`), its nearest point on a segment between two
/// rows of `reference`. With `exclude_same_row`, model i is never compared with a segment
/// ending at reference row i (leave-one-out among the training checkpoints themselves). Ties
/// go to the lowest pair. [`Segment::NONE`] when fewer than two rows are left to pair.
pub fn nearest_interpolation(models: &[f32], reference: &[f32], p: usize, exclude_same_row: bool) -> Vec<Segment> {
    let (n, m) = (models.len() / p.max(1), reference.len() / p.max(1));
    let (mn, rn) = (squared_norms(models, p), squared_norms(reference, p));
    let xr = gram(models, reference, p, tch::Kind::Double);
    let rr = gram(reference, reference, p, tch::Kind::Double);
    per_model(n, |i| {
        let x = &models[i * p..(i + 1) * p];
        let allowed = |j: usize| !(exclude_same_row && i == j);
        // One pass over the pairs, a row of segments (a, ·) at a time: the lowest upper bound
        // so far, and every pair whose lower bound does not exceed it (pruned again as the
        // bound falls), in pair order.
        let mut lowest = f64::INFINITY;
        let mut candidates: Vec<(usize, usize, f64)> = Vec::new();
        let (mut lower, mut upper) = (vec![0.0f64; m], vec![0.0f64; m]);
        let skip = if exclude_same_row { i } else { usize::MAX };
        for a in (0..m).filter(|&a| allowed(a)) {
            let least = segment_bounds(&Row { xi: &xr[i * m..(i + 1) * m], rn: &rn, rr_a: &rr[a * m..(a + 1) * m], a, norm: mn[i], skip }, &mut lower, &mut upper);
            lowest = lowest.min(least);
            candidates.retain(|c| c.2 <= lowest);
            candidates.extend((a + 1..m).filter(|&b| allowed(b) && lower[b] <= lowest).map(|b| (a, b, lower[b])));
        }
        if !lowest.is_finite() {
            return Segment::NONE;
        }
        // Exact distances of the candidates; a clamped segment is its endpoint's distance.
        let mut endpoint: Vec<Option<f64>> = vec![None; m];
        let mut best = Segment::NONE;
        for (a, b, _) in candidates {
            let (row_a, row_b) = (&reference[a * p..(a + 1) * p], &reference[b * p..(b + 1) * p]);
            let (t, l2) = exact_segment(x, row_a, row_b);
            let l2 = if t == 0.0 {
                *endpoint[a].get_or_insert_with(|| exact_l2(x, row_a))
            } else if t == 1.0 {
                *endpoint[b].get_or_insert_with(|| exact_l2(x, row_b))
            } else {
                l2
            };
            if best.l2.is_nan() || l2 < best.l2 {
                best = Segment { a, b, t, l2 };
            }
        }
        best
    })
}

/// What [`segment_bounds`] reads for one model and one checkpoint a.
struct Row<'s> {
    /// The model's dot products with every checkpoint.
    xi: &'s [f64],
    /// The checkpoints' squared norms.
    rn: &'s [f64],
    /// Checkpoint a's dot products with every checkpoint.
    rr_a: &'s [f64],
    a: usize,
    /// The model's squared norm.
    norm: f64,
    /// A segment end left out (the model's own row, leave-one-out), or `usize::MAX`.
    skip: usize,
}

multiversion! {
    /// A model's distance to every segment (a, b), b > a, estimated from dot products and
    /// bracketed by the rounding slack: `lower[b]` = d² − slack, `upper[b]` = d² + slack; returns
    /// the smallest upper bound (b = `row.skip` left out). The nearest point's
    /// t* = ⟨x − a, b − a⟩ / ‖b − a‖² clamped to [0, 1] (0 for a zero-length segment), then
    /// d² = ‖x − a‖² − 2t*⟨x − a, b − a⟩ + t*²‖b − a‖². Branch-free loops over b, so they
    /// vectorize, the division and the minimum (eight lanes) included: 5·10⁸ estimates at
    /// 1,000 × 1,000.
    fn segment_bounds(row: &Row<'_>, lower: &mut [f64], upper: &mut [f64]) -> f64 {
        let &Row { xi, rn, rr_a, a, norm, skip } = row;
        let (rn_a, xi_a) = (rn[a], xi[a]);
        let point_a = norm + rn_a - 2.0 * xi_a;
        let first = a + 1;
        let (rn, rr_a, xi, lower, upper) = (&rn[first..], &rr_a[first..], &xi[first..], &mut lower[first..], &mut upper[first..]);
        for ((((low, up), &rn_b), &rr_ab), &xi_b) in lower.iter_mut().zip(upper.iter_mut()).zip(rn).zip(rr_a).zip(xi) {
            let length2 = rn_a + rn_b - 2.0 * rr_ab;
            let along = xi_b - xi_a - rr_ab + rn_a;
            let t = if length2 > 0.0 { (along / length2).clamp(0.0, 1.0) } else { 0.0 };
            let d2 = point_a - 2.0 * t * along + t * t * length2;
            let tol = slack(norm, rn_a + rn_b);
            *low = d2 - tol;
            *up = d2 + tol;
        }
        if let Some(up) = skip.checked_sub(first).and_then(|k| upper.get_mut(k)) {
            *up = f64::INFINITY;
        }
        let mut lanes = [f64::INFINITY; 8];
        let chunks = upper.chunks_exact(8);
        let tail = chunks.remainder().iter().fold(f64::INFINITY, |m, &v| m.min(v));
        for chunk in chunks {
            for l in 0..8 {
                lanes[l] = lanes[l].min(chunk[l]);
            }
        }
        lanes.iter().fold(tail, |m, &v| m.min(v))
    }
}

/// The nearest point to `x` on the segment from `a` to `b`, exactly in f64: its t and distance
/// (the distance is left NaN when t is clamped to an end: the caller measures that end once).
fn exact_segment(x: &[f32], a: &[f32], b: &[f32]) -> (f64, f64) {
    let (mut along, mut length2) = (0.0f64, 0.0f64);
    for ((&x, &a), &b) in x.iter().zip(a).zip(b) {
        let (x, a, b) = (x as f64, a as f64, b as f64);
        along += (x - a) * (b - a);
        length2 += (b - a) * (b - a);
    }
    let t = if length2 > 0.0 { (along / length2).clamp(0.0, 1.0) } else { 0.0 };
    if t == 0.0 || t == 1.0 {
        return (t, f64::NAN);
    }
    let d2: f64 = x.iter().zip(a).zip(b).map(|((&x, &a), &b)| (x as f64 - (a as f64 + t * (b as f64 - a as f64))).powi(2)).sum();
    (t, d2.sqrt())
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn random(rows: usize, p: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows * p).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// Every pair and t on a fine grid, then the closed form at the best pair: the search the
    /// GEMM screen must agree with.
    fn brute_force(x: &[f32], reference: &[f32], p: usize) -> f64 {
        let m = reference.len() / p;
        let mut best = f64::INFINITY;
        for a in 0..m {
            for b in a + 1..m {
                let (t, l2) = exact_segment(x, &reference[a * p..(a + 1) * p], &reference[b * p..(b + 1) * p]);
                let l2 = if t == 0.0 {
                    exact_l2(x, &reference[a * p..(a + 1) * p])
                } else if t == 1.0 {
                    exact_l2(x, &reference[b * p..(b + 1) * p])
                } else {
                    l2
                };
                best = best.min(l2);
            }
        }
        best
    }

    #[test]
    fn checkpoints_and_their_midpoints_are_at_zero_and_random_models_are_far() {
        let p = 257;
        let reference = random(12, p, 1);
        let row = |j: usize| &reference[j * p..(j + 1) * p];
        let midpoint: Vec<f32> = row(3).iter().zip(row(8)).map(|(a, b)| (a + b) / 2.0).collect();
        let third: Vec<f32> = row(0).iter().zip(row(11)).map(|(a, b)| a + (b - a) / 3.0).collect();
        let far = random(1, p, 99);
        let models = [row(5).to_vec(), midpoint, third, far.clone()].concat();
        let found = nearest_interpolation(&models, &reference, p, false);
        assert_eq!(found[0].l2, 0.0, "a checkpoint is its own interpolation");
        assert!(found[1].l2 < 1e-6 && (found[1].a, found[1].b) == (3, 8) && (found[1].t - 0.5).abs() < 1e-6, "{:?}", found[1]);
        assert!(found[2].l2 < 1e-6 && (found[2].a, found[2].b) == (0, 11) && (found[2].t - 1.0 / 3.0).abs() < 1e-6, "{:?}", found[2]);
        let nearest_checkpoint = super::super::nearest(&far, &reference, p, false)[0].l2;
        assert!(found[3].l2 > 0.5 * nearest_checkpoint && found[3].l2 <= nearest_checkpoint, "{} vs {nearest_checkpoint}", found[3].l2);
    }

    #[test]
    fn the_screen_finds_what_every_pair_finds() {
        let p = 40;
        let reference = random(9, p, 3);
        let models = random(20, p, 4);
        let found = nearest_interpolation(&models, &reference, p, false);
        for (i, s) in found.iter().enumerate() {
            let exact = brute_force(&models[i * p..(i + 1) * p], &reference, p);
            assert!((s.l2 - exact).abs() < 1e-12, "model {i}: {} vs {exact}", s.l2);
        }
    }

    #[test]
    fn leave_one_out_skips_segments_ending_at_the_model_and_one_checkpoint_has_none() {
        let p = 16;
        let reference = random(3, p, 5);
        let loo = nearest_interpolation(&reference, &reference, p, true);
        for (i, s) in loo.iter().enumerate() {
            assert!(s.a != i && s.b != i && s.l2 > 0.0, "row {i}: {s:?}");
        }
        assert!(nearest_interpolation(&reference[..p], &reference[..p], p, false)[0].l2.is_nan());
    }
}
