//! Weight-space nearest neighbours: for every model, the training checkpoint with the smallest
//! L2 distance, that distance, and the cosine similarity to it. Computed exactly in f64 so a
//! copied checkpoint has distance 0, not rounding noise.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::arch::align::Aligner;

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

/// For each of the `models` (rows of length `p`), its nearest row of `reference`. With
/// `exclude_same_row`, row i of `models` never matches row i of `reference` (leave-one-out
/// among the training checkpoints themselves).
pub fn nearest(models: &[f32], reference: &[f32], p: usize, exclude_same_row: bool) -> Vec<Nearest> {
    let norms: Vec<f64> = reference.chunks_exact(p).map(|r| r.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt()).collect();
    models
        .chunks_exact(p)
        .enumerate()
        .map(|(i, m)| {
            let m_norm = m.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
            let mut best = Nearest { index: usize::MAX, l2: f64::INFINITY, cosine: f64::NAN };
            for (j, r) in reference.chunks_exact(p).enumerate() {
                if exclude_same_row && i == j {
                    continue;
                }
                let (mut d2, mut dot) = (0.0f64, 0.0f64);
                for (&a, &b) in m.iter().zip(r) {
                    let (a, b) = (a as f64, b as f64);
                    d2 += (a - b) * (a - b);
                    dot += a * b;
                }
                if d2.sqrt() < best.l2 {
                    best = Nearest { index: j, l2: d2.sqrt(), cosine: dot / (m_norm * norms[j]).max(f64::MIN_POSITIVE) };
                }
            }
            best
        })
        .collect()
}

/// Like [`nearest`], after aligning each model's hidden units to every reference model in turn
/// (the Hungarian matching of [`Aligner`]): the distance Zeng et al. 2025 report, blind to the
/// permutation symmetry; never above the raw distance. `cosine` is taken with the aligned model.
pub fn nearest_aligned(models: &[f32], reference: &[f32], p: usize, exclude_same_row: bool, aligner: &Aligner) -> Vec<Nearest> {
    let prepared: Vec<_> = reference.chunks_exact(p).map(|r| aligner.prepare(r)).collect();
    let one = |(i, m): (usize, &[f32])| {
        let mut best = Nearest { index: usize::MAX, l2: f64::INFINITY, cosine: f64::NAN };
        for (j, (r, units)) in reference.chunks_exact(p).zip(&prepared).enumerate() {
            if exclude_same_row && i == j {
                continue;
            }
            // Layer-by-layer matching can lose to the units' own order in deep nets; the
            // identity is a permutation too, so the better of the two counts.
            // An untouched model (no layer moved) is its own raw distance: one pass, not two.
            let aligned = aligner.align_prepared(m, units);
            let l2 = |x: &[f32]| x.iter().zip(r).map(|(&a, &b)| ((a as f64) - (b as f64)).powi(2)).sum::<f64>().sqrt();
            let (d, chosen) = match &aligned {
                Cow::Borrowed(_) => (l2(m), m),
                Cow::Owned(moved) => match (l2(moved), l2(m)) {
                    (a, raw) if a <= raw => (a, moved.as_slice()),
                    (_, raw) => (raw, m),
                },
            };
            if d < best.l2 {
                best = Nearest { index: j, l2: d, cosine: cosine(chosen, r) };
            }
        }
        best
    };
    // Every model's search is its own (the same arithmetic whichever thread runs it), so the
    // models are spread over as many threads as libtorch computes with (`OMP_NUM_THREADS`, the
    // CPUs of a cluster task): a Hungarian matching per pair is the costliest metric there is.
    let rows: Vec<(usize, &[f32])> = models.chunks_exact(p).enumerate().collect();
    let threads = (tch::get_num_threads().max(1) as usize).min(rows.len().max(1));
    if threads <= 1 {
        return rows.into_iter().map(one).collect();
    }
    let per = rows.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows.chunks(per).map(|chunk| scope.spawn(move || chunk.iter().copied().map(one).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("an alignment thread panicked")).collect()
    })
}

/// Cosine similarity of two weight vectors, accumulated in f64 (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (dot, na, nb) = a.iter().zip(b).fold((0.0f64, 0.0f64, 0.0f64), |(d, x, y), (&u, &v)| (d + u as f64 * v as f64, x + (u as f64).powi(2), y + (v as f64).powi(2)));
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
}
