//! Hidden-unit permutations: the symmetry that makes weight-space distances blind to function.
//! Reordering a layer's hidden units (rows of its weight and bias, and the matching inputs of
//! the next layer) gives another weight vector computing exactly the same function. Zeng et
//! al.'s symmetry check applies such permutations to the training checkpoints and asks how far
//! generated models then are from them. Where the units sit is read from the layout by
//! `weightlab-symmetry`, which the plugin SDK's permutation augmentation shares.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use weightlab_symmetry::{Param, UnitGroup, permute_group, unit_groups};

use super::{Arch, Layout};

impl Layout {
    /// The layout in `weightlab-symmetry`'s terms.
    pub(crate) fn symmetry_params(&self) -> Vec<Param> {
        self.params.iter().map(|p| Param { name: p.name.clone(), shape: p.shape.clone(), offset: p.offset }).collect()
    }
}

impl Arch {
    /// The layout in `weightlab-symmetry`'s terms, and its hidden layers (whose units can be
    /// reordered).
    pub(crate) fn symmetry(&self) -> (Vec<Param>, Vec<UnitGroup>) {
        let params = self.layout().symmetry_params();
        let groups = unit_groups(&params).expect("layouts made from an architecture (presets or declared layers) always have the symmetry");
        (params, groups)
    }

    /// `flat` with every hidden layer's units randomly reordered (seeded): the same function,
    /// other weights.
    pub fn permute_hidden(&self, flat: &[f32], seed: u64) -> Vec<f32> {
        let (params, groups) = self.symmetry();
        let mut out = flat.to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for group in groups {
            let mut perm: Vec<usize> = (0..group.units).collect();
            perm.shuffle(&mut rng);
            permute_group(&mut out, &params, &group, &perm);
        }
        out
    }
}
