//! Hidden-unit permutations: the symmetry that makes weight-space distances blind to function.
//! Reordering a layer's hidden units (rows of its weight and bias, and the matching inputs of
//! the next layer) gives another weight vector computing exactly the same function. Zeng et
//! al.'s symmetry check applies such permutations to the training checkpoints and asks how far
//! generated models then are from them.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{Arch, Layout};

/// Reorders index `axis` of the row-major tensor `values` (of `shape`): position j takes what
/// was at `from[j]`.
fn permute_axis(values: &mut [f32], shape: &[usize], axis: usize, from: &[usize]) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let old = values.to_vec();
    for o in 0..outer {
        for (j, &src) in from.iter().enumerate() {
            let (dst, src) = ((o * n + j) * inner, (o * n + src) * inner);
            values[dst..dst + inner].copy_from_slice(&old[src..src + inner]);
        }
    }
}

/// One hidden layer's units, as (parameter, axis) pairs they index, with how many consecutive
/// positions each unit covers on that axis (a conv channel feeding a flattened dense layer
/// covers the channel's whole feature map).
struct Units {
    count: usize,
    indexes: Vec<(&'static str, usize, usize)>,
}

/// A hidden layer: its unit count and the (parameter, axis, width) places its units index.
/// Axis 0 is the unit's own parameters (its weights and bias); axis 1 is where the next layer
/// reads it.
pub(crate) type UnitGroup = (usize, Vec<(String, usize, usize)>);

/// Positions in `values` (row-major, of `shape`) that unit `unit` covers on `axis`, in order.
pub(crate) fn unit_positions(shape: &[usize], axis: usize, width: usize, unit: usize) -> impl Iterator<Item = usize> + '_ {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    (0..outer).flat_map(move |o| (unit * width..(unit + 1) * width).flat_map(move |k| (o * n + k) * inner..(o * n + k + 1) * inner))
}

/// Reorders the units of one hidden layer of `flat`: unit j takes what unit `perm[j]` held,
/// in every place the layer's units index.
pub(crate) fn apply_permutation(flat: &mut [f32], layout: &Layout, group: &UnitGroup, perm: &[usize]) {
    for (name, axis, width) in &group.1 {
        let Some(spec) = layout.get(name) else {
            continue;
        };
        let from: Vec<usize> = (0..group.0 * width).map(|j| perm[j / width] * width + j % width).collect();
        permute_axis(&mut flat[spec.range()], &spec.shape, *axis, &from);
    }
}

impl Arch {
    pub(crate) fn unit_groups(&self) -> Vec<UnitGroup> {
        match self {
            Arch::Mlp { sizes, .. } => {
                (1..sizes.len() - 1).map(|i| (sizes[i], vec![(format!("layers.{}.weight", i - 1), 0, 1), (format!("layers.{}.bias", i - 1), 0, 1), (format!("layers.{i}.weight"), 1, 1)])).collect()
            }
            Arch::CnnS { .. } => {
                let groups: [Units; 4] = [
                    Units { count: 8, indexes: vec![("conv1.weight", 0, 1), ("conv1.bias", 0, 1), ("conv2.weight", 1, 1)] },
                    Units { count: 6, indexes: vec![("conv2.weight", 0, 1), ("conv2.bias", 0, 1), ("conv3.weight", 1, 1)] },
                    // conv3's 4 channels of 3×3 flatten into fc1's 36 inputs, channel-major.
                    Units { count: 4, indexes: vec![("conv3.weight", 0, 1), ("conv3.bias", 0, 1), ("fc1.weight", 1, 9)] },
                    Units { count: 20, indexes: vec![("fc1.weight", 0, 1), ("fc1.bias", 0, 1), ("fc2.weight", 1, 1)] },
                ];
                groups.into_iter().map(|u| (u.count, u.indexes.into_iter().map(|(n, a, w)| (n.to_string(), a, w)).collect())).collect()
            }
        }
    }

    /// `flat` with every hidden layer's units randomly reordered (seeded): the same function,
    /// other weights.
    pub fn permute_hidden(&self, flat: &[f32], seed: u64) -> Vec<f32> {
        let layout: Layout = self.layout();
        let mut out = flat.to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for group in self.unit_groups() {
            let mut perm: Vec<usize> = (0..group.0).collect();
            perm.shuffle(&mut rng);
            apply_permutation(&mut out, &layout, &group, &perm);
        }
        out
    }
}
