//! Weight-space nearest neighbours: for every model, the training checkpoint with the smallest
//! L2 distance, that distance, and the cosine similarity to it. Computed exactly in f64 so a
//! copied checkpoint has distance 0, not rounding noise; a GEMM only decides which pairs to
//! measure exactly.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::arch::align::{Aligner, Columns};
use crate::simd::multiversion;

/// Pivot references of the aligned search's triangle bound (one hidden layer; references
/// beyond 4 per pivot only).
const PIVOTS: usize = 16;

/// A model's nearest training checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Nearest {
    /// Row of the nearest reference model.
    pub index: usize,
    /// Its L2 distance.
    pub l2: f64,
    /// Cosine similarity with it.
    pub cosine: f64,
}

/// Every row's squared norm, accumulated in f64.
pub(crate) fn squared_norms(rows: &[f32], p: usize) -> Vec<f64> {
    rows.chunks_exact(p.max(1)).map(|r| products(r, r)[1]).collect()
}

/// All dot products of `a`'s rows with `b`'s (rows of length `p`), as an (a rows × b rows)
/// row-major matrix: one GEMM in libtorch in `kind` (f64 where the products must be nearly
/// exact, f32 for a bound that allows for its rounding), in blocks of `a` rows so memory
/// stays bounded.
pub(crate) fn gram(a: &[f32], b: &[f32], p: usize, kind: tch::Kind) -> Vec<f64> {
    let _guard = tch::no_grad_guard();
    let (n, m) = (a.len() / p.max(1), b.len() / p.max(1));
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let bt = tch::Tensor::from_slice(b).view([m as i64, p as i64]).to_kind(kind).transpose(0, 1);
    let block = 256usize;
    let mut out = Vec::with_capacity(n * m);
    for start in (0..n).step_by(block) {
        let rows = block.min(n - start);
        let x = tch::Tensor::from_slice(&a[start * p..(start + rows) * p]).view([rows as i64, p as i64]).to_kind(kind);
        out.extend(Vec::<f64>::try_from(x.matmul(&bt).to_kind(tch::Kind::Double).contiguous().view([-1])).expect("f64 products"));
    }
    out
}

/// How far a squared distance assembled from the GEMM (‖a‖² + ‖b‖² − 2 a·b) may be from the
/// exact one: far above the f64 rounding of a dot product of 10⁵–10⁶ terms (≈ p·2⁻⁵³·‖a‖‖b‖),
/// far below any distance worth telling apart.
#[inline(always)]
pub(crate) fn slack(na: f64, nb: f64) -> f64 {
    1e-9 * (na + nb) + f64::MIN_POSITIVE
}

/// Runs `one` on every model row, spread over as many threads as libtorch computes with
/// (`OMP_NUM_THREADS`, the CPUs of a cluster task). Each row's result is its own (the same
/// arithmetic whichever thread runs it), so results do not depend on the thread count.
pub(crate) fn per_model<T: Send>(n: usize, one: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = (tch::get_num_threads().max(1) as usize).min(n.max(1));
    if threads <= 1 {
        return (0..n).map(one).collect();
    }
    let per = n.div_ceil(threads);
    let one = &one;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n).step_by(per).map(|start| scope.spawn(move || (start..(start + per).min(n)).map(one).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("a metric thread panicked")).collect()
    })
}

/// The exact L2 distance of two rows, in f64.
pub(crate) fn exact_l2(a: &[f32], b: &[f32]) -> f64 {
    squared_difference(a, b).sqrt()
}

/// The exact L2 distance and dot product of two rows, in f64.
fn exact(a: &[f32], b: &[f32]) -> (f64, f64) {
    (exact_l2(a, b), products(a, b)[0])
}

/// Lanes of the f64 sums below: value k is added to lane k mod 8, the lanes then summed in
/// a fixed tree and the tail after them. Eight independent sums vectorize (one AVX-512
/// register, two AVX2 ones) where a single running sum waits on every addition's latency —
/// the aligned search measures ≈ 10⁵ pairs of 25,000 values; the order is the same at every
/// vector width, so the same bits on every machine.
const SUM_LANES: usize = 8;

/// The fixed order the lanes of a sum are added in: ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)).
#[inline(always)]
fn reduce(lanes: &[f64; SUM_LANES]) -> f64 {
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

multiversion! {
    /// Σ (a − b)², in f64 lanes.
    fn squared_difference(a: &[f32], b: &[f32]) -> f64 {
        let mut lanes = [0.0f64; SUM_LANES];
        let (ca, cb) = (a.chunks_exact(SUM_LANES), b.chunks_exact(SUM_LANES));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..SUM_LANES {
                let d = x[l] as f64 - y[l] as f64;
                lanes[l] += d * d;
            }
        }
        let mut sum = reduce(&lanes);
        for (&x, &y) in ta.iter().zip(tb) {
            let d = x as f64 - y as f64;
            sum += d * d;
        }
        sum
    }
}

multiversion! {
    /// [Σ a·b, Σ a², Σ b²], in f64 lanes.
    fn products(a: &[f32], b: &[f32]) -> [f64; 3] {
        let mut lanes = [[0.0f64; SUM_LANES]; 3];
        let (ca, cb) = (a.chunks_exact(SUM_LANES), b.chunks_exact(SUM_LANES));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..SUM_LANES {
                let (u, v) = (x[l] as f64, y[l] as f64);
                lanes[0][l] += u * v;
                lanes[1][l] += u * u;
                lanes[2][l] += v * v;
            }
        }
        let mut out = lanes.map(|l| reduce(&l));
        for (&x, &y) in ta.iter().zip(tb) {
            let (u, v) = (x as f64, y as f64);
            out[0] += u * v;
            out[1] += u * u;
            out[2] += v * v;
        }
        out
    }
}

/// For each of the `models` (rows of length `p`), its nearest row of `reference`. With
/// `exclude_same_row`, row i of `models` never matches row i of `reference` (leave-one-out
/// among the training checkpoints themselves). Ties go to the lowest row.
///
/// Every distance is first estimated from one GEMM; only the rows whose estimate is within
/// rounding slack of the smallest are measured exactly (in f64, term by term), so the result is the
/// exact search's, at the cost of a matrix product instead of n·m·p scalar steps.
pub fn nearest(models: &[f32], reference: &[f32], p: usize, exclude_same_row: bool) -> Vec<Nearest> {
    let (n, m) = (models.len() / p.max(1), reference.len() / p.max(1));
    let (mn, rn) = (squared_norms(models, p), squared_norms(reference, p));
    let dots = gram(models, reference, p, tch::Kind::Double);
    per_model(n, |i| {
        let row = &models[i * p..(i + 1) * p];
        let estimate = |j: usize| mn[i] + rn[j] - 2.0 * dots[i * m + j];
        let allowed = |j: &usize| !(exclude_same_row && i == *j);
        let lowest = (0..m).filter(allowed).map(|j| estimate(j) + slack(mn[i], rn[j])).fold(f64::INFINITY, f64::min);
        let mut best = Nearest { index: usize::MAX, l2: f64::INFINITY, cosine: f64::NAN };
        for j in (0..m).filter(allowed).filter(|&j| estimate(j) - slack(mn[i], rn[j]) <= lowest) {
            let (l2, dot) = exact(row, &reference[j * p..(j + 1) * p]);
            if l2 < best.l2 {
                best = Nearest { index: j, l2, cosine: dot / (mn[i].sqrt() * rn[j].sqrt()).max(f64::MIN_POSITIVE) };
            }
        }
        best
    })
}

/// Like [`nearest`], after aligning each model's hidden units to every reference model in turn
/// (the Hungarian matching of [`Aligner`]): the distance Zeng et al. 2025 report, blind to the
/// permutation symmetry; never above the raw distance. `cosine` is taken with the aligned model.
/// Ties go to the lowest row.
///
/// A matching per pair is the costliest metric there is, so screens keep most pairs from
/// being measured. References are visited in order of a lower bound on their aligned
/// distance — the distance between the models' values sorted within each tensor
/// ([`Aligner::sorted_within_tensors`]), from one GEMM — and the search stops at the first
/// whose bound exceeds the best distance found (for one hidden layer: the least upper
/// estimate). For one hidden layer three more screens apply:
/// - with more than 64 references, the aligned distance being a metric on models up to
///   reordering, 16 pivot references (picked farthest-first) bound every pair by the triangle
///   inequality, |d(m, q) − d(q, r)| ≤ d(m, r). Pivot distances are bracketed from unit costs
///   alone (row minima below, a greedy matching above), never matched: a reference far from
///   the model's neighbourhood is ruled out without touching its units;
/// - the unit costs of every pair left ([`Aligner::estimate`]: one f32 Gram matrix of the two
///   models' units, given up part way when a bound rules the pair out);
/// - only once every reference is estimated are the pairs whose estimates lie within rounding
///   slack of the least matched and measured exactly (in f64), in order of their estimates.
///
/// The answer is the same as matching and measuring every pair (unit-tested against that
/// search).
pub fn nearest_aligned(models: &[f32], reference: &[f32], p: usize, exclude_same_row: bool, aligner: &Aligner) -> Vec<Nearest> {
    if aligner.moves_nothing() {
        return nearest(models, reference, p, exclude_same_row);
    }
    let (n, m) = (models.len() / p.max(1), reference.len() / p.max(1));
    let prepared: Vec<_> = reference.chunks_exact(p).map(|r| aligner.prepare(r)).collect();
    let sort = |rows: &[f32]| -> Vec<f32> { per_model(rows.len() / p.max(1), |k| aligner.sorted_within_tensors(&rows[k * p..(k + 1) * p])).concat() };
    let (mn, rn) = (squared_norms(models, p), squared_norms(reference, p));
    // In f32: any order of summing p products errs by at most p·u·(‖a‖² + ‖b‖²)/2.
    let dots = gram(&sort(models), &sort(reference), p, tch::Kind::Float);
    let sorted_slack = |i: usize, j: usize| p as f64 * f32::EPSILON as f64 * (mn[i] + rn[j]) + slack(mn[i], rn[j]);
    // The aligned distance of a row (`first` its units, `norm` its squared norm) to reference j,
    // bracketed from the unit costs without matching: [below every matching, a matching found
    // greedily], each side less or more the f32 estimates' rounding.
    let bracket = |row: &[f32], first: &Columns, norm: f64, j: usize| -> (f64, f64) {
        let estimate = aligner.estimate(row, first, &reference[j * p..(j + 1) * p], &prepared[j], f64::INFINITY).expect("one hidden layer");
        let s = aligner.slack(norm, rn[j]);
        ((estimate.least - s).max(0.0).sqrt(), (estimate.greedy().min(estimate.own) + s).sqrt())
    };
    // With one hidden layer the aligned distance is a metric on models up to reordering, so a
    // few pivot references bound every other pair: d(m, r) ≥ |d(m, q) − d(q, r)|. Pivots are
    // picked farthest-first, their distances to every reference bracketed once.
    let pivots: Vec<(usize, Vec<(f64, f64)>)> = if aligner.is_exact() && m > 4 * PIVOTS {
        farthest_pivots(m, PIVOTS, |q| {
            let pivot = &reference[q * p..(q + 1) * p];
            let first = aligner.prepare_model(pivot);
            per_model(m, |j| bracket(pivot, &first, rn[q], j))
        })
    } else {
        Vec::new()
    };
    per_model(n, |i| {
        let m_row = &models[i * p..(i + 1) * p];
        let first = aligner.prepare_model(m_row);
        let mut best = Nearest { index: usize::MAX, l2: f64::INFINITY, cosine: f64::NAN };
        let to_pivot: Vec<(f64, f64)> = pivots.iter().map(|(q, _)| bracket(m_row, &first, mn[i], *q)).collect();
        let bound = |j: usize| {
            let sorted = (mn[i] + rn[j] - 2.0 * dots[i * m + j] - sorted_slack(i, j)).max(0.0).sqrt();
            let pivot = pivots.iter().zip(&to_pivot).map(|((_, from_q), &(mq_low, mq_high))| (mq_low - from_q[j].1).max(from_q[j].0 - mq_high)).fold(0.0f64, f64::max);
            sorted.max(pivot)
        };
        let mut order: Vec<(f64, usize)> = (0..m).filter(|&j| !(exclude_same_row && i == j)).map(|j| (bound(j), j)).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if !aligner.is_exact() {
            for (lower, j) in order {
                if lower > best.l2 {
                    break;
                }
                let r = &reference[j * p..(j + 1) * p];
                let (d, chosen) = measured(m_row, aligner.align_model(m_row, &first, &prepared[j]), r);
                best.offer(j, d, &chosen, r);
            }
            return best;
        }
        // One hidden layer: every reference still in the running is estimated first (its unit
        // costs), and only then are the few whose estimates come within rounding of the least
        // matched and measured exactly. `upper` (squared) is above the distance of some pair
        // seen (a pivot's bracket at first): a pair whose estimate exceeds it by more than the
        // slack cannot win.
        let mut upper = pivots.iter().zip(&to_pivot).filter(|((q, _), _)| !(exclude_same_row && i == *q)).map(|(_, &(_, high))| high * high).fold(f64::INFINITY, f64::min);
        let mut estimated = Vec::new();
        for (lower, j) in order {
            if lower.powi(2) > upper {
                break;
            }
            let (r, s) = (&reference[j * p..(j + 1) * p], aligner.slack(mn[i], rn[j]));
            let Some(estimate) = aligner.estimate(m_row, &first, r, &prepared[j], upper + s) else {
                continue;
            };
            upper = upper.min(estimate.greedy().min(estimate.own) + s);
            estimated.push((estimate.least - s, j, estimate));
        }
        estimated.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (least, j, estimate) in estimated {
            if least > best.l2.powi(2) {
                break;
            }
            let (perm, matched) = aligner.settle(&estimate);
            let r = &reference[j * p..(j + 1) * p];
            if matched.min(estimate.own) - aligner.slack(mn[i], rn[j]) > best.l2.powi(2) {
                continue;
            }
            let (d, chosen) = measured(m_row, aligner.apply(m_row, &perm), r);
            best.offer(j, d, &chosen, r);
        }
        best
    })
}

/// The aligned distance of `model` to reference `r` once matched (`aligned`), in f64, and the
/// model as measured. Layer-by-layer matching can lose to the units' own order in deep nets;
/// the identity is a permutation too, so the better of the two counts. An untouched model (no
/// layer moved) is its own raw distance: one pass, not two.
fn measured<'a>(model: &'a [f32], aligned: Cow<'a, [f32]>, r: &[f32]) -> (f64, Cow<'a, [f32]>) {
    match aligned {
        Cow::Borrowed(_) => (exact_l2(model, r), aligned),
        Cow::Owned(moved) => match (exact_l2(&moved, r), exact_l2(model, r)) {
            (a, raw) if a <= raw => (a, Cow::Owned(moved)),
            (_, raw) => (raw, Cow::Borrowed(model)),
        },
    }
}

impl Nearest {
    /// Takes reference `j` at distance `d` (with `model` the model as measured against `r`)
    /// when it is nearer, or as near with a lower row.
    fn offer(&mut self, j: usize, d: f64, model: &[f32], r: &[f32]) {
        if d < self.l2 || (d == self.l2 && j < self.index) {
            *self = Nearest { index: j, l2: d, cosine: cosine(model, r) };
        }
    }
}

/// Pivot references for [`nearest_aligned`]'s triangle bound: `count` of the `m`, the first
/// one 0, each next the reference farthest (by the lower end of the brackets) from every pivot
/// so far; with each, its distance to every reference bracketed (`brackets(q)`).
fn farthest_pivots(m: usize, count: usize, brackets: impl Fn(usize) -> Vec<(f64, f64)>) -> Vec<(usize, Vec<(f64, f64)>)> {
    let mut pivots: Vec<(usize, Vec<(f64, f64)>)> = Vec::with_capacity(count);
    let mut nearest_pivot = vec![f64::INFINITY; m];
    let mut next = 0;
    for _ in 0..count.min(m) {
        let d = brackets(next);
        for (near, &(low, _)) in nearest_pivot.iter_mut().zip(&d) {
            *near = near.min(low);
        }
        pivots.push((next, d));
        next = (0..m).max_by(|&a, &b| nearest_pivot[a].total_cmp(&nearest_pivot[b]).then(b.cmp(&a))).unwrap_or(0);
        if nearest_pivot[next] == 0.0 {
            break;
        }
    }
    pivots
}

/// Cosine similarity of two weight vectors, accumulated in f64 (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let [dot, na, nb] = products(a, b);
    dot / (na.sqrt() * nb.sqrt()).max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::arch::Arch;

    #[test]
    fn aligned_distances_never_exceed_raw_ones_even_for_deep_nets() {
        let arch = Arch::CnnS { classes: 10 };
        let p = arch.layout().len();
        let draw = |seeds: std::ops::Range<u64>| seeds.flat_map(|s| arch.init(&mut ChaCha8Rng::seed_from_u64(s))).collect::<Vec<f32>>();
        let (models, reference) = (draw(0..4), draw(10..14));
        let raw = nearest(&models, &reference, p, false);
        let aligned = nearest_aligned(&models, &reference, p, false, &Aligner::new(&arch));
        for (r, a) in raw.iter().zip(&aligned) {
            assert!(a.l2 <= r.l2, "aligned {} > raw {}", a.l2, r.l2);
        }
    }

    /// A network without hidden units (one linear layer) has nothing to reorder: its aligned
    /// distance is the raw one (it used to index a hidden layer that is not there and panic).
    #[test]
    fn a_network_without_hidden_units_has_its_raw_distance_as_aligned() {
        let arch = Arch::Mlp { sizes: vec![5, 3], activation: weightlab_manifest::Activation::Relu };
        let p = arch.layout().len();
        let draw = |seeds: std::ops::Range<u64>| seeds.flat_map(|s| arch.init(&mut ChaCha8Rng::seed_from_u64(s))).collect::<Vec<f32>>();
        let (models, reference) = (draw(0..3), draw(10..15));
        let aligner = Aligner::new(&arch);
        assert!(aligner.moves_nothing());
        let (raw, aligned) = (nearest(&models, &reference, p, false), nearest_aligned(&models, &reference, p, false, &aligner));
        assert_eq!(raw.iter().map(|n| (n.index, n.l2)).collect::<Vec<_>>(), aligned.iter().map(|n| (n.index, n.l2)).collect::<Vec<_>>());
        assert_eq!(aligner.align(&models[..p], &reference[..p]), &models[..p]);
    }

    #[test]
    fn copies_are_at_distance_zero_and_leave_one_out_skips_self() {
        let reference = [0.0, 0.0, 3.0, 4.0, 1.0, 0.0];
        let exact = nearest(&[3.0, 4.0], &reference, 2, false);
        assert_eq!(exact[0].index, 1);
        assert_eq!(exact[0].l2, 0.0);
        assert!((exact[0].cosine - 1.0).abs() < 1e-12);
        let loo = nearest(&reference, &reference, 2, true);
        assert_eq!(loo.iter().map(|n| n.index).collect::<Vec<_>>(), vec![2, 2, 0]);
        assert!((loo[0].l2 - 1.0).abs() < 1e-12);
    }

    /// The searches as they read in the papers: every pair, in order, strictly smaller wins.
    fn exhaustive(models: &[f32], reference: &[f32], p: usize, loo: bool, aligner: Option<&Aligner>) -> Vec<Nearest> {
        models
            .chunks_exact(p)
            .enumerate()
            .map(|(i, m)| {
                let mut best = Nearest { index: usize::MAX, l2: f64::INFINITY, cosine: f64::NAN };
                for (j, r) in reference.chunks_exact(p).enumerate().filter(|(j, _)| !(loo && i == *j)) {
                    let candidates = match aligner {
                        Some(a) => vec![a.align(m, r), m.to_vec()],
                        None => vec![m.to_vec()],
                    };
                    let (d, chosen) = candidates.iter().map(|c| (exact(c, r).0, c)).fold((f64::INFINITY, &candidates[0]), |acc, x| if x.0 < acc.0 { x } else { acc });
                    if d < best.l2 {
                        best = Nearest { index: j, l2: d, cosine: cosine(chosen, r) };
                    }
                }
                best
            })
            .collect()
    }

    #[test]
    fn the_pruned_searches_equal_exhaustive_ones() {
        use weightlab_manifest::Activation;
        let arch = Arch::Mlp { sizes: vec![6, 8, 5, 3], activation: Activation::Relu };
        let p = arch.layout().len();
        let mut reference: Vec<f32> = (0..30u64).flat_map(|s| arch.init(&mut ChaCha8Rng::seed_from_u64(s))).collect();
        // A duplicated checkpoint: ties go to the lower row.
        let dup = reference[4 * p..5 * p].to_vec();
        reference.extend(dup);
        let row = |j: usize| reference[j * p..(j + 1) * p].to_vec();
        let mut models: Vec<f32> = Vec::new();
        models.extend(row(3));
        models.extend(arch.permute_hidden(&row(7), 5));
        models.extend(row(4));
        models.extend(row(11).iter().enumerate().map(|(k, v)| v + 1e-3 * ((k as f32) * 0.37).sin()));
        models.extend(arch.permute_hidden(&row(20), 9).iter().map(|v| v * 1.01));
        for s in 100..106u64 {
            models.extend(arch.init(&mut ChaCha8Rng::seed_from_u64(s)));
        }
        let aligner = Aligner::new(&arch);
        assert_eq!(nearest(&models, &reference, p, false), exhaustive(&models, &reference, p, false, None));
        assert_eq!(nearest(&reference, &reference, p, true), exhaustive(&reference, &reference, p, true, None));
        let aligned = nearest_aligned(&models, &reference, p, false, &aligner);
        assert_eq!(aligned, exhaustive(&models, &reference, p, false, Some(&aligner)));
        assert_eq!((aligned[1].index, aligned[1].l2), (7, 0.0), "a permuted copy aligns back onto its checkpoint");
        assert_eq!(aligned[2].index, 4, "of two equal checkpoints, the lower row");
        assert_eq!(nearest_aligned(&reference, &reference, p, true, &aligner), exhaustive(&reference, &reference, p, true, Some(&aligner)));
    }

    /// One hidden layer takes the screened path (pairs ruled out from their unit costs, part
    /// of the features at a time — 75 features per unit here, so seven checkpoints): the same
    /// answers as matching and measuring every pair, on near-ties among noisy copies.
    #[test]
    fn the_screened_search_for_one_hidden_layer_equals_the_exhaustive_one() {
        use rand::Rng;
        use weightlab_manifest::Activation;
        let arch = Arch::Mlp { sizes: vec![70, 24, 4], activation: Activation::Relu };
        let p = arch.layout().len();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let bases: Vec<Vec<f32>> = (0..3u64).map(|s| arch.init(&mut ChaCha8Rng::seed_from_u64(s))).collect();
        let mut copies = |count: usize, permute: bool| -> Vec<f32> {
            (0..count)
                .flat_map(|k| {
                    let w: Vec<f32> = bases[k % 3].iter().map(|v| v + rng.random_range(-0.03f32..0.03)).collect();
                    if permute { arch.permute_hidden(&w, k as u64) } else { w }
                })
                .collect()
        };
        // More references than 4 per pivot: the triangle bound through pivots is in play.
        let mut reference = copies(90, false);
        let mut models = copies(9, true);
        let dup = reference[2 * p..3 * p].to_vec();
        reference.extend(dup);
        let aligner = Aligner::new(&arch);
        let screened = nearest_aligned(&models, &reference, p, false, &aligner);
        assert_eq!(screened, exhaustive(&models, &reference, p, false, Some(&aligner)));
        assert!(screened.iter().enumerate().all(|(k, s)| s.index % 3 == k % 3), "each model's nearest is a copy of its own base: {screened:?}");
        // Models of no family: every reference is far, row minima collide, the pivots' brackets
        // are wide and the Hungarian algorithm decides.
        for s in 50..56u64 {
            models.extend(arch.init(&mut ChaCha8Rng::seed_from_u64(s)));
        }
        assert_eq!(nearest_aligned(&models, &reference, p, false, &aligner), exhaustive(&models, &reference, p, false, Some(&aligner)));
        assert_eq!(nearest_aligned(&reference, &reference, p, true, &aligner), exhaustive(&reference, &reference, p, true, Some(&aligner)));
    }
}
