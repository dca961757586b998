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
use crate::gemm::{matmul_add, pack, whole_tiles};

/// Squared costs are scaled to integers for the assignment solver; this keeps ≥ 15
/// significant digits while a sum over a layer's units stays far below `i64::MAX`.
const COST_RESOLUTION: f64 = 1e15;

/// How many parts [`Aligner::estimate`] splits the features into, checking its lower
/// bound after each.
const PARTS: usize = 8;

/// The feature indices where [`Aligner::estimate`] checks its bound: every eighth of `w`
/// (none for a handful of features).
fn checkpoints(w: usize) -> Vec<usize> {
    if w < 8 * PARTS { Vec::new() } else { (1..PARTS).map(|k| k * w / PARTS).collect() }
}

/// Per checkpoint of `checkpoints(w)` and unit: the squared norm of the unit's features before
/// it, and the norm (not squared) of those from it on, in f32 — `rows` unit-major.
fn split_norms(rows: &[f32], w: usize) -> (Vec<f32>, Vec<f32>) {
    let cuts = checkpoints(w);
    let n = rows.len() / w.max(1);
    let (mut before, mut after) = (vec![0.0f32; cuts.len() * n], vec![0.0f32; cuts.len() * n]);
    for (i, row) in rows.chunks_exact(w.max(1)).enumerate() {
        for (c, &k) in cuts.iter().enumerate() {
            before[c * n + i] = dot(&row[..k], &row[..k]);
            after[c * n + i] = dot(&row[k..], &row[k..]).sqrt();
        }
    }
    (before, after)
}

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

/// Each row's cheapest column in the n × n `cost` (the first on ties).
fn cheapest(cost: &[f64], n: usize) -> Vec<usize> {
    let first_least = |row: &[f64]| row.iter().enumerate().fold(0, |best, (j, v)| if v.total_cmp(&row[best]).is_lt() { j } else { best });
    cost.chunks_exact(n.max(1)).map(first_least).collect()
}

/// The assignment of rows to columns of the n × n `cost` with the least total, given each
/// row's `cheapest` column. When those are all different, that is the answer (no assignment
/// can beat the sum of row minima) — the common case of a model near a reference — and the
/// Hungarian algorithm is skipped.
fn assignment(cost: &[f64], n: usize, cheapest: Vec<usize>) -> Vec<usize> {
    let mut taken = vec![false; n];
    if cheapest.iter().all(|&j| !std::mem::replace(&mut taken[j], true)) {
        return cheapest;
    }
    let top = cost.iter().cloned().fold(0.0f64, f64::max);
    let scale = if top > 0.0 { COST_RESOLUTION / top } else { 1.0 };
    let weights = Matrix::from_fn(n, n, |(i, j)| (cost[i * n + j] * scale).round() as i64);
    kuhn_munkres_min(&weights).1
}

/// One hidden layer's units of a reference as feature vectors of `width`, packed for [`matmul_add`],
/// with their squared norms (and their parts' norms, [`split_norms`]).
struct Units {
    panels: Vec<f32>,
    norms: Vec<f32>,
    width: usize,
    before: Vec<f32>,
    after: Vec<f32>,
}

/// One hidden layer's units of a model, feature-major (`width` rows of `padded` columns, the
/// columns past the units zero), with their squared norms: the side of the Gram matrix the
/// kernel streams.
pub struct Columns {
    values: Vec<f32>,
    norms: Vec<f32>,
    padded: usize,
    before: Vec<f32>,
    after: Vec<f32>,
}

/// What [`Aligner::estimate`] knows of a pair before matching: the unit costs (rows are
/// reference units), each row's cheapest column, and two squared distances estimated in f32
/// (each within [`Aligner::slack`] of the exact one): `least`, below every matching; `own`, the
/// units' own order. `rest` is the part of the fixed values (the output bias).
pub struct Estimate {
    cost: Vec<f64>,
    cheapest: Vec<usize>,
    rest: f64,
    pub least: f64,
    pub own: f64,
}

impl Estimate {
    /// The estimate of a matching found without the Hungarian algorithm: reference units in
    /// order each take their cheapest model unit not taken yet — the row minima when they are
    /// all different. An upper bound on the best matching's, for screening.
    pub fn greedy(&self) -> f64 {
        let n = self.cheapest.len();
        let mut taken = vec![false; n];
        let mut total = self.rest;
        for (i, &first) in self.cheapest.iter().enumerate() {
            let row = &self.cost[i * n..(i + 1) * n];
            let j = if taken[first] { (0..n).filter(|&j| !taken[j]).min_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(first) } else { first };
            taken[j] = true;
            total += row[j];
        }
        total
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
    /// With one hidden layer whose moving values are all compared (an MLP with one hidden
    /// layer): the flat positions no unit carries (the output bias). The squared distance
    /// after a matching is then the sum of the matched units' costs plus these values' part,
    /// which lets [`Aligner::estimate`] rule a pair out before any exact measurement.
    fixed: Option<Vec<usize>>,
}

impl Aligner {
    pub fn new(arch: &Arch) -> Self {
        let (layout, groups) = arch.symmetry();
        let own: HashSet<&str> = groups.iter().flat_map(|g| g.places.iter().filter(|p| p.is_own()).map(|p| p.param.as_str())).collect();
        // Per group, per unit: the flat positions of the unit's values in the places kept.
        // Per group, per unit: the flat positions of the unit's values in the places `keep`
        // (given the group's index) retains.
        let positions = |keep: &dyn Fn(usize, &Place) -> bool| -> Vec<Vec<Vec<usize>>> {
            groups
                .iter()
                .enumerate()
                .map(|(g, group)| {
                    (0..group.units)
                        .map(|u| {
                            group
                                .places
                                .iter()
                                .filter(|place| keep(g, place))
                                .filter_map(|place| layout.iter().find(|p| p.name == place.param).map(|spec| (spec, place.axis, place.width)))
                                .flat_map(|(spec, axis, width)| unit_positions(&spec.shape, axis, width, u).map(move |k| spec.offset + k))
                                .collect()
                        })
                        .collect()
                })
                .collect()
        };
        // Outgoing weights first: they are few and large (they feed the output layer), so the
        // bound of `estimate` grows fastest over the first features.
        let outgoing = positions(&|_, place| !place.is_own() && !own.contains(place.param.as_str()));
        // A group is matched on the rows of the layers writing it whose inputs are already
        // aligned (they come from earlier groups, or from the data). Through a residual block a
        // stream is also written by layers reading later groups (the block's last conv reads the
        // block's inner units): those rows are left out, else a permuted copy could mismatch.
        let input_of: std::collections::HashMap<&str, usize> =
            groups.iter().enumerate().flat_map(|(g, group)| group.places.iter().filter(|p| !p.is_own()).map(move |p| (p.param.as_str(), g))).collect();
        let ready = positions(&|g, place| place.is_own() && input_of.get(place.param.as_str()).is_none_or(|&from| from < g));
        let mine = ready.into_iter().zip(positions(&|_, place| place.is_own())).map(|(ready, all)| if ready.first().is_some_and(|r| !r.is_empty()) { ready } else { all });
        let compared: Vec<Vec<Vec<usize>>> = outgoing.into_iter().zip(mine).map(|(out, mine)| out.into_iter().zip(mine).map(|(a, b)| [a, b].concat()).collect()).collect();
        let moves = positions(&|_, _| true);
        let tensors: Vec<std::ops::Range<usize>> = layout.iter().map(|p| p.offset..p.offset + p.shape.iter().product::<usize>()).collect();
        let all = |sets: &[Vec<usize>]| -> Vec<usize> {
            let mut v: Vec<usize> = sets.iter().flatten().copied().collect();
            v.sort_unstable();
            v
        };
        let fixed = match (&compared[..], &moves[..]) {
            ([c], [m]) if all(c) == all(m) => {
                let moving: HashSet<usize> = all(m).into_iter().collect();
                Some((0..tensors.last().map_or(0, |t| t.end)).filter(|k| !moving.contains(k)).collect())
            }
            _ => None,
        };
        Self { groups, compared, moves, tensors, fixed }
    }

    /// `flat` with each parameter tensor's values sorted. A permutation of hidden units only
    /// moves values within their tensors, so for any model m and reference r,
    /// ‖sorted(m) − sorted(r)‖ ≤ ‖π(m) − r‖ for every π (the rearrangement inequality): a lower
    /// bound on the aligned distance that costs no matching.
    pub fn sorted_within_tensors(&self, flat: &[f32]) -> Vec<f32> {
        let mut out = flat.to_vec();
        for range in &self.tensors {
            // A radix sort: 25,000 values per model in under half a comparison sort's time (measured).
            radsort::sort(&mut out[range.clone()]);
        }
        out
    }

    /// `flat` with model unit `perm[j]` of group `g` put in position j: `permute_group` on
    /// precomputed positions (the same values moved to the same places).
    fn permuted(&self, flat: &[f32], g: usize, perm: &[usize]) -> Vec<f32> {
        let units = &self.moves[g];
        let mut out = flat.to_vec();
        for (j, &from) in perm.iter().enumerate() {
            for (&dst, &src) in units[j].iter().zip(&units[from]) {
                out[dst] = flat[src];
            }
        }
        out
    }

    fn units(&self, flat: &[f32], group: usize) -> Units {
        let rows = &self.compared[group];
        let width = rows.first().map_or(0, Vec::len);
        let values: Vec<f32> = rows.iter().flat_map(|idx| idx.iter().map(|&i| flat[i])).collect();
        let norms = values.chunks(width.max(1)).map(|r| dot(r, r)).collect();
        let (before, after) = split_norms(&values, width);
        Units { panels: pack(&values, width), norms, width, before, after }
    }

    fn columns(&self, flat: &[f32], group: usize) -> Columns {
        let rows = &self.compared[group];
        let (n, width) = (rows.len(), rows.first().map_or(0, Vec::len));
        let padded = whole_tiles(n);
        let unit_major: Vec<f32> = rows.iter().flat_map(|idx| idx.iter().map(|&i| flat[i])).collect();
        let mut values = vec![0.0f32; width * padded];
        for (u, row) in unit_major.chunks_exact(width.max(1)).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                values[k * padded + u] = v;
            }
        }
        let norms = unit_major.chunks_exact(width.max(1)).map(|r| dot(r, r)).collect();
        let (before, after) = split_norms(&unit_major, width);
        Columns { values, norms, padded, before, after }
    }

    /// `reference`'s units, ready for [`Aligner::align_prepared`].
    pub fn prepare(&self, reference: &[f32]) -> Prepared {
        Prepared { layers: (0..self.groups.len()).map(|g| self.units(reference, g)).collect() }
    }

    /// `model`'s first hidden layer, gathered once for [`Aligner::estimate`] against many
    /// references (the first layer's features do not depend on any matching).
    pub fn prepare_model(&self, model: &[f32]) -> Columns {
        if self.moves_nothing() {
            return Columns { values: Vec::new(), norms: Vec::new(), padded: 0, before: Vec::new(), after: Vec::new() };
        }
        self.columns(model, 0)
    }

    /// Whether the network has no hidden units to reorder (a single linear layer, say): every
    /// model is then aligned to any other as it is, and the aligned distance is the raw one.
    pub fn moves_nothing(&self) -> bool {
        self.groups.is_empty()
    }

    /// ‖r − m‖² = ‖r‖² + ‖m‖² − 2 r·m for every (reference unit, model unit), computed in f32
    /// (one Gram matrix) and widened: rows are reference units.
    fn costs(target: &Units, current: &Columns) -> Vec<f64> {
        let mut g = vec![0.0f32; target.panels.len() / target.width.max(1) * current.padded];
        matmul_add(&target.panels, &current.values, target.width, current.padded, 0..target.width, &mut g);
        Self::costs_from(target, current, &g)
    }

    /// The costs of [`Aligner::costs`] from the finished Gram matrix `g`.
    fn costs_from(target: &Units, current: &Columns, g: &[f32]) -> Vec<f64> {
        let n = target.norms.len();
        let mut cost = Vec::with_capacity(n * n);
        for (&ti, products) in target.norms.iter().zip(g.chunks_exact(current.padded)) {
            cost.extend(products.iter().zip(&current.norms).map(|(&p, &mj)| (ti + mj - 2.0 * p).max(0.0) as f64));
        }
        cost
    }

    /// A lower bound on every matching's cost once `g` holds the products over the features
    /// before checkpoint `c`: per reference unit, its cheapest model unit on those features'
    /// distance plus (‖r'‖ − ‖m'‖)² for the rest (r', m' the features from the checkpoint on,
    /// ‖r' − m'‖ ≥ |‖r'‖ − ‖m'‖|), summed over the reference units.
    fn partial_bound(target: &Units, current: &Columns, g: &[f32], c: usize) -> f64 {
        let n = target.norms.len();
        let (tb, ta) = (&target.before[c * n..(c + 1) * n], &target.after[c * n..(c + 1) * n]);
        let (mb, ma) = (&current.before[c * n..(c + 1) * n], &current.after[c * n..(c + 1) * n]);
        let mut total = 0.0f64;
        for i in 0..n {
            let products = &g[i * current.padded..i * current.padded + n];
            let least = (0..n).map(|j| (tb[i] + mb[j] - 2.0 * products[j]).max(0.0) + (ta[i] - ma[j]).powi(2)).fold(f32::INFINITY, f32::min);
            total += least as f64;
        }
        total
    }

    /// How far a squared distance (or bound) estimated in f32 from the units of a model and a
    /// reference with squared norms `model_sq`, `reference_sq` can be from the exact one. A
    /// cost is a sum of `width` products plus two norms, each within `width`·u (u = 2⁻²⁴) of
    /// its magnitude, so a matching's sum is within (2·width + 6)·u·(‖m‖² + ‖r‖²); the
    /// bounds of [`Aligner::estimate`] add the norms of the features' parts, another
    /// 4·width·u at most. Allowed: 8·(width + 4)·u.
    pub fn slack(&self, model_sq: f64, reference_sq: f64) -> f64 {
        let width = self.compared.first().and_then(|g| g.first()).map_or(0, Vec::len) as f64;
        4.0 * (width + 4.0) * f32::EPSILON as f64 * (model_sq + reference_sq) + f64::MIN_POSITIVE
    }

    /// The unit costs of `model` against the prepared `reference` (one hidden layer only, see
    /// [`Aligner::is_exact`]), unless the pair is sure to lie farther than `cutoff` (a
    /// squared distance, beyond the estimates' [`Aligner::slack`]): `None` then. The Gram
    /// matrix is accumulated an eighth of the features at a time, and after each eighth a
    /// lower bound is compared with `cutoff`, so a pair far off is dropped after a fraction of
    /// the work; then the sum of each reference unit's cheapest cost (no matching beats it).
    /// No matching is computed here: the search keeps the estimate and matches
    /// ([`Aligner::settle`]) only the pairs still in the running once every reference has been
    /// estimated. `first` is [`Aligner::prepare_model`] of `model`; `None` too for a deeper
    /// network.
    pub fn estimate(&self, model: &[f32], first: &Columns, reference: &[f32], prepared: &Prepared, cutoff: f64) -> Option<Estimate> {
        let fixed = self.fixed.as_ref()?;
        let target = &prepared.layers[0];
        let n = target.norms.len();
        let rest: f64 = fixed.iter().map(|&k| (model[k] as f64 - reference[k] as f64).powi(2)).sum();
        // The Gram matrix part by part: a pair far off shows it after a fraction of the features.
        let mut g = vec![0.0f32; target.panels.len() / target.width.max(1) * first.padded];
        let mut done = 0;
        for (c, k) in checkpoints(target.width).into_iter().enumerate() {
            matmul_add(&target.panels, &first.values, target.width, first.padded, done..k, &mut g);
            done = k;
            if Self::partial_bound(target, first, &g, c) + rest > cutoff {
                return None;
            }
        }
        matmul_add(&target.panels, &first.values, target.width, first.padded, done..target.width, &mut g);
        let cost = Self::costs_from(target, first, &g);
        let cheapest = cheapest(&cost, n);
        let least = cheapest.iter().enumerate().map(|(i, &j)| cost[i * n + j]).sum::<f64>() + rest;
        if least > cutoff {
            return None;
        }
        let own = (0..n).map(|i| cost[i * n + i]).sum::<f64>() + rest;
        Some(Estimate { cost, cheapest, rest, least, own })
    }

    /// The matching of an [`Estimate`] (position i takes model unit `perm[i]`) and its
    /// estimated squared distance: the row minima when they fall in different columns, the
    /// Hungarian algorithm's assignment otherwise.
    pub fn settle(&self, estimate: &Estimate) -> (Vec<usize>, f64) {
        let n = estimate.cheapest.len();
        let perm = assignment(&estimate.cost, n, estimate.cheapest.clone());
        let matched = perm.iter().enumerate().map(|(i, &j)| estimate.cost[i * n + j]).sum::<f64>() + estimate.rest;
        (perm, matched)
    }

    /// `model` with its (single) hidden layer's units put in the order `perm` of
    /// [`Aligner::settle`]; borrowed when that is their own order.
    pub fn apply<'m>(&self, model: &'m [f32], perm: &[usize]) -> Cow<'m, [f32]> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Cow::Borrowed(model);
        }
        Cow::Owned(self.permuted(model, 0, perm))
    }

    /// `model` with its hidden units reordered, layer by layer, to lie as close as possible to
    /// the prepared reference (the same function as `model`); borrowed when no layer moved.
    pub fn align_prepared<'m>(&self, model: &'m [f32], reference: &Prepared) -> Cow<'m, [f32]> {
        self.align_from(model, None, reference)
    }

    /// [`Aligner::align_prepared`] with the model's first layer gathered already
    /// ([`Aligner::prepare_model`]): one model against many references.
    pub fn align_model<'m>(&self, model: &'m [f32], first: &Columns, reference: &Prepared) -> Cow<'m, [f32]> {
        self.align_from(model, Some(first), reference)
    }

    /// [`Aligner::align_prepared`], the first layer's model units given or gathered.
    fn align_from<'m>(&self, model: &'m [f32], first: Option<&Columns>, reference: &Prepared) -> Cow<'m, [f32]> {
        let mut out = Cow::Borrowed(model);
        for (g, target) in reference.layers.iter().enumerate() {
            let gathered;
            let current = match (g, first) {
                (0, Some(columns)) => columns,
                _ => {
                    gathered = self.columns(&out, g);
                    &gathered
                }
            };
            let n = target.norms.len();
            let cost = Self::costs(target, current);
            // Position i takes model unit perm[i].
            let perm = assignment(&cost, n, cheapest(&cost, n));
            if perm.iter().enumerate().any(|(i, &p)| i != p) {
                out = Cow::Owned(self.permuted(&out, g, &perm));
            }
        }
        out
    }

    /// Whether the aligned distance is the exact minimum over every reordering of hidden units
    /// (one hidden layer): it is then a metric on models up to reordering, and the triangle
    /// inequality bounds one distance by two others (`metrics::nearest_aligned`'s pivots).
    pub fn is_exact(&self) -> bool {
        self.fixed.is_some()
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
        let solve = |cost: &[f64]| assignment(cost, 2, cheapest(cost, 2));
        assert_eq!(solve(&[5.0, 1.0, 0.5, 9.0]), vec![1, 0]);
        // Both rows prefer column 0: 1 + 10 = 11 loses to 2 + 1 = 3.
        assert_eq!(solve(&[1.0, 2.0, 1.0, 10.0]), vec![1, 0]);
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
