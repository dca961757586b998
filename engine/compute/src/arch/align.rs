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
//! upper bound on the true minimum — the joint problem over several layers is NP-hard.

use std::collections::HashSet;

use pathfinding::prelude::{Matrix, kuhn_munkres_min};

use super::Arch;
use super::permute::{UnitGroup, apply_permutation, unit_positions};
use crate::arch::Layout;

/// Squared costs are scaled to integers for the assignment solver; this keeps ≥ 15
/// significant digits while a sum over a layer's units stays far below `i64::MAX`.
const COST_RESOLUTION: f64 = 1e15;

/// The places a group's units are compared on: their own parameters, plus outgoing weights
/// that feed a layer with no units of its own to permute (the output layer).
fn compared_places<'g>(group: &'g UnitGroup, own: &HashSet<&str>) -> Vec<&'g (String, usize, usize)> {
    group.1.iter().filter(|(name, axis, _)| *axis == 0 || !own.contains(name.as_str())).collect()
}

/// Unit-major features: for each of the group's units, its values at `places`, back to back.
fn unit_features(flat: &[f32], layout: &Layout, count: usize, places: &[&(String, usize, usize)]) -> Vec<Vec<f32>> {
    (0..count)
        .map(|u| {
            places
                .iter()
                .filter_map(|(name, axis, width)| layout.get(name).map(|spec| (spec, *axis, *width)))
                .flat_map(|(spec, axis, width)| unit_positions(&spec.shape, axis, width, u).map(move |k| flat[spec.offset + k]))
                .collect()
        })
        .collect()
}

/// The permutation of `model`'s units (position i takes model unit `result[i]`) that
/// minimises the summed squared distance to `reference`'s units.
fn best_assignment(reference: &[Vec<f32>], model: &[Vec<f32>]) -> Vec<usize> {
    let n = reference.len();
    let cost: Vec<f64> = reference
        .iter()
        .flat_map(|r| model.iter().map(move |m| r.iter().zip(m).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum::<f64>()))
        .collect();
    let top = cost.iter().cloned().fold(0.0f64, f64::max);
    let scale = if top > 0.0 { COST_RESOLUTION / top } else { 1.0 };
    let weights = Matrix::from_fn(n, n, |(i, j)| (cost[i * n + j] * scale).round() as i64);
    kuhn_munkres_min(&weights).1
}

/// Hidden-unit alignment of one architecture, prepared once and applied to many pairs.
pub struct Aligner {
    layout: Layout,
    groups: Vec<UnitGroup>,
    own: Vec<String>,
}

impl Aligner {
    pub fn new(arch: &Arch) -> Self {
        let groups = arch.unit_groups();
        let own = groups.iter().flat_map(|g| g.1.iter().filter(|p| p.1 == 0).map(|p| p.0.clone())).collect();
        Self { layout: arch.layout(), groups, own }
    }

    /// `model` with its hidden units reordered, layer by layer, to lie as close as possible to
    /// `reference` (the same function as `model`).
    pub fn align(&self, model: &[f32], reference: &[f32]) -> Vec<f32> {
        let own: HashSet<&str> = self.own.iter().map(String::as_str).collect();
        let mut out = model.to_vec();
        for group in &self.groups {
            let places = compared_places(group, &own);
            let target = unit_features(reference, &self.layout, group.0, &places);
            let current = unit_features(&out, &self.layout, group.0, &places);
            let perm = best_assignment(&target, &current);
            apply_permutation(&mut out, &self.layout, group, &perm);
        }
        out
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
        let groups = arch.unit_groups();
        let layout = arch.layout();
        let mut best = f64::INFINITY;
        let mut perm: Vec<usize> = (0..6).collect();
        permutohedron_visit(&mut perm, 0, &mut |p| {
            let mut x = b.clone();
            apply_permutation(&mut x, &layout, &groups[0], p);
            best = best.min(l2(&x, &a));
        });
        assert!((l2(&aligned, &a) - best).abs() < 1e-6, "{} vs brute force {best}", l2(&aligned, &a));
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
