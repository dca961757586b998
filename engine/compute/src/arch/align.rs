//! Aligning hidden units before measuring distance. Two models that differ only by an order of
//! their hidden units compute the same function yet lie far apart in weight space, so Zeng et
//! al. (2025) match a generated model's hidden units to each training checkpoint's with the
//! Hungarian algorithm before taking the L2 distance (their G.pt analysis: per hidden neuron,
//! its incoming weights, bias and outgoing weights; cost = squared L2; the output bias outside
//! any group).
//!
//! For one hidden layer this is the exact minimum over permutations, as in the paper. Deeper
//! networks are matched layer by layer from the input: a layer's units are compared on their
//! own weights and bias (inputs already aligned by the layers before), and the last hidden
//! layer also on its outgoing weights, which feed the fixed output layer. That greedy pass is
//! exact for any model that *is* a permutation of the reference (distance 0) and otherwise an
//! upper bound on the true minimum — the joint problem over several layers is NP-hard (and it
//! can lose to the units' own order, which `metrics::nearest_aligned` then keeps).

use std::borrow::Cow;
use std::collections::HashSet;

use pathfinding::prelude::{Matrix, kuhn_munkres_min};

use weightlab_symmetry::{Place, UnitGroup, unit_positions};

use super::Arch;

/// Squared costs are scaled to integers for the assignment solver; this keeps ≥ 15
/// significant digits while a sum over a layer's units stays far below `i64::MAX`.
const COST_RESOLUTION: f64 = 1e15;

/// Dot product with eight independent accumulators, so the compiler can vectorise it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The assignment of rows to columns of the n × n `cost` with the least total. When every
/// row's cheapest column is a different one, that is the answer (no assignment can beat the
/// sum of row minima) — the common case of a model near a reference — and the Hungarian
/// algorithm is skipped.
fn assignment(cost: &[f64], n: usize) -> Vec<usize> {
    let cheapest: Vec<usize> = (0..n).map(|i| (0..n).min_by(|&a, &b| cost[i * n + a].total_cmp(&cost[i * n + b])).unwrap_or(0)).collect();
    let mut taken = vec![false; n];
    if cheapest.iter().all(|&j| !std::mem::replace(&mut taken[j], true)) {
        return cheapest;
    }
    let top = cost.iter().cloned().fold(0.0f64, f64::max);
    let scale = if top > 0.0 { COST_RESOLUTION / top } else { 1.0 };
    let weights = Matrix::from_fn(n, n, |(i, j)| (cost[i * n + j] * scale).round() as i64);
    kuhn_munkres_min(&weights).1
}

/// One hidden layer's units as feature vectors, unit-major (`count` rows of `width`), with
/// their squared norms.
struct Units {
    values: Vec<f32>,
    norms: Vec<f32>,
    width: usize,
}

impl Units {
    fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

/// A reference model's units in every hidden layer, prepared once and matched against many
/// models (a reference is never permuted, so its features do not change).
pub struct Prepared {
    layers: Vec<Units>,
}

/// Hidden-unit alignment of one architecture, prepared once and applied to many pairs.
pub struct Aligner {
    groups: Vec<UnitGroup>,
    /// For each group and unit, the flat indices its features are read from: its own weights
    /// and bias, plus outgoing weights that feed a layer with no units of its own to permute
    /// (the output layer).
    compared: Vec<Vec<Vec<usize>>>,
    /// The flat range of every parameter tensor.
    tensors: Vec<std::ops::Range<usize>>,
    /// Per group, per unit: the flat positions of every value that moves with the unit (all
    /// its places), in one order for every unit — what `weightlab_symmetry::permute_group` walks, precomputed
    /// because aligning to every checkpoint permutes once per pair.
    moves: Vec<Vec<Vec<usize>>>,
}

impl Aligner {
    pub fn new(arch: &Arch) -> Self {
        let (layout, groups) = arch.symmetry();
        let own: HashSet<&str> = groups.iter().flat_map(|g| g.places.iter().filter(|p| p.is_own()).map(|p| p.param.as_str())).collect();
        // Per group, per unit: the flat positions of the unit's values in the places kept.
        let positions = |keep: &dyn Fn(&Place) -> bool| -> Vec<Vec<Vec<usize>>> {
            groups
                .iter()
                .map(|group| {
                    (0..group.units)
                        .map(|u| {
                            group
                                .places
                                .iter()
                                .filter(|place| keep(place))
                                .filter_map(|place| layout.iter().find(|p| p.name == place.param).map(|spec| (spec, place.axis, place.width)))
                                .flat_map(|(spec, axis, width)| unit_positions(&spec.shape, axis, width, u).map(move |k| spec.offset + k))
                                .collect()
                        })
                        .collect()
                })
                .collect()
        };
        let compared = positions(&|place| place.is_own() || !own.contains(place.param.as_str()));
        let moves = positions(&|_| true);
        let tensors = layout.iter().map(|p| p.offset..p.offset + p.shape.iter().product::<usize>()).collect();
        Self { groups, compared, moves, tensors }
    }

    /// `flat` with each parameter tensor's values sorted. A permutation of hidden units only
    /// moves values within their tensors, so for any model m and reference r,
    /// ‖sorted(m) − sorted(r)‖ ≤ ‖π(m) − r‖ for every π (the rearrangement inequality): a lower
    /// bound on the aligned distance that costs no matching.
    pub fn sorted_within_tensors(&self, flat: &[f32]) -> Vec<f32> {
        let mut out = flat.to_vec();
        for range in &self.tensors {
            out[range.clone()].sort_unstable_by(f32::total_cmp);
        }
        out
    }

    /// Puts model unit `perm[j]` of group `g` in position j: `permute_group` on precomputed
    /// positions (the same values moved to the same places).
    fn permute(&self, flat: &mut [f32], g: usize, perm: &[usize]) {
        let units = &self.moves[g];
        let old: Vec<Vec<f32>> = units.iter().map(|positions| positions.iter().map(|&k| flat[k]).collect()).collect();
        for (j, &from) in perm.iter().enumerate() {
            for (&dst, &v) in units[j].iter().zip(&old[from]) {
                flat[dst] = v;
            }
        }
    }

    fn units(&self, flat: &[f32], group: usize) -> Units {
        let rows = &self.compared[group];
        let width = rows.first().map_or(0, Vec::len);
        let values: Vec<f32> = rows.iter().flat_map(|idx| idx.iter().map(|&i| flat[i])).collect();
        let norms = values.chunks(width.max(1)).map(|r| dot(r, r)).collect();
        Units { values, norms, width }
    }

    /// `reference`'s units, ready for [`Aligner::align_prepared`].
    pub fn prepare(&self, reference: &[f32]) -> Prepared {
        Prepared { layers: (0..self.groups.len()).map(|g| self.units(reference, g)).collect() }
    }

    /// `model` with its hidden units reordered, layer by layer, to lie as close as possible to
    /// the prepared reference (the same function as `model`); borrowed when no layer moved.
    pub fn align_prepared<'m>(&self, model: &'m [f32], reference: &Prepared) -> Cow<'m, [f32]> {
        let mut out = Cow::Borrowed(model);
        for (g, target) in reference.layers.iter().enumerate() {
            let current = self.units(&out, g);
            let n = current.norms.len();
            // ‖r − m‖² = ‖r‖² + ‖m‖² − 2 r·m, for every (reference unit, model unit).
            let cost: Vec<f64> =
                (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| (target.norms[i] + current.norms[j] - 2.0 * dot(target.row(i), current.row(j))).max(0.0) as f64).collect();
            // Position i takes model unit perm[i].
            let perm = assignment(&cost, n);
            if perm.iter().enumerate().any(|(i, &p)| i != p) {
                self.permute(out.to_mut(), g, &perm);
            }
        }
        out
    }

    /// `model` aligned to `reference`.
    pub fn align(&self, model: &[f32], reference: &[f32]) -> Vec<f32> {
        self.align_prepared(model, &self.prepare(reference)).into_owned()
    }
}

impl Arch {
    /// `model` aligned to `reference` (see [`Aligner`]; build one to align many pairs).
    pub fn align_to(&self, model: &[f32], reference: &[f32]) -> Vec<f32> {
        Aligner::new(self).align(model, reference)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use weightlab_manifest::Activation;

    use super::*;
    use weightlab_symmetry::permute_group;

    fn l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt()
    }

    #[test]
    fn a_permuted_model_aligns_back_to_distance_zero() {
        let archs = [Arch::Mlp { sizes: vec![12, 10, 3], activation: Activation::Relu }, Arch::Mlp { sizes: vec![6, 8, 7, 2], activation: Activation::Relu }, Arch::CnnS { classes: 10 }];
        for arch in archs {
            let original = arch.init(&mut ChaCha8Rng::seed_from_u64(3));
            let permuted = arch.permute_hidden(&original, 11);
            assert!(l2(&permuted, &original) > 0.1, "{arch:?}: the permutation changed nothing");
            assert_eq!(l2(&arch.align_to(&permuted, &original), &original), 0.0, "{arch:?}");
        }
    }

    #[test]
    fn alignment_never_increases_the_distance_for_one_hidden_layer() {
        let arch = Arch::Mlp { sizes: vec![5, 6, 3], activation: Activation::Relu };
        let a = arch.init(&mut ChaCha8Rng::seed_from_u64(1));
        let b = arch.init(&mut ChaCha8Rng::seed_from_u64(2));
        let aligned = arch.align_to(&b, &a);
        assert!(l2(&aligned, &a) <= l2(&b, &a) + 1e-9);
        // Brute force over all 720 orders of the 6 hidden units: the Hungarian match is the minimum.
        let (layout, groups) = arch.symmetry();
        let mut best = f64::INFINITY;
        let mut perm: Vec<usize> = (0..6).collect();
        permutohedron_visit(&mut perm, 0, &mut |p| {
            let mut x = b.clone();
            permute_group(&mut x, &layout, &groups[0], p);
            best = best.min(l2(&x, &a));
        });
        assert!((l2(&aligned, &a) - best).abs() < 1e-6, "{} vs brute force {best}", l2(&aligned, &a));
    }

    #[test]
    fn distinct_row_minima_are_the_assignment_and_collisions_go_to_the_hungarian_solver() {
        assert_eq!(assignment(&[5.0, 1.0, 0.5, 9.0], 2), vec![1, 0]);
        // Both rows prefer column 0: 1 + 10 = 11 loses to 2 + 1 = 3.
        assert_eq!(assignment(&[1.0, 2.0, 1.0, 10.0], 2), vec![1, 0]);
    }

    /// Visits every permutation of `items[k..]` (Heap-style recursion, test only).
    fn permutohedron_visit(items: &mut Vec<usize>, k: usize, visit: &mut impl FnMut(&[usize])) {
        if k == items.len() {
            visit(items);
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permutohedron_visit(items, k + 1, visit);
            items.swap(k, i);
        }
    }
}
