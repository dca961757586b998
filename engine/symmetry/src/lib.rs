//! The hidden-unit permutation symmetry of feed-forward networks (MLPs, CNNs), read from their
//! flat layout alone. Reordering a hidden layer's units — the rows of its weight and its bias,
//! and the matching inputs of the next layer — gives another weight vector computing exactly the
//! same function. The engine aligns models through it (weight matching before distances); the
//! plugin SDK permutes training checkpoints with it (permutation augmentation). Plain Rust with
//! no dependencies, so the same code runs natively and in wasm plugins.

use std::ops::Range;

/// One named tensor of a flat layout (PyTorch state_dict names: `layers.0.weight`,
/// `conv1.bias`), row-major, starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl Param {
    fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.shape.iter().product::<usize>()
    }
}

/// Where one hidden layer's units sit in the flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitGroup {
    /// Number of units (output rows or channels).
    pub units: usize,
    pub places: Vec<Place>,
}

/// An axis of a parameter that a hidden layer's units index: axis 0 of the layer's own weight
/// and bias (`width` 1); axis 1 of the next layer's weight, where each unit covers `width`
/// consecutive inputs (1 after a dense layer; a channel's whole feature map where a convolution
/// is flattened into a dense layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub param: String,
    pub axis: usize,
    pub width: usize,
}

impl Place {
    /// Whether this is the layer's own weight or bias (not the next layer's inputs).
    pub fn is_own(&self) -> bool {
        self.axis == 0
    }
}

/// The hidden layers of a feed-forward layout: layers are its `<prefix>.weight` (rank ≥ 2) /
/// `<prefix>.bias` pairs in layout order, and every layer but the last is hidden. A layout with
/// any other parameter (normalisation, attention, embeddings), or whose next layer's inputs are
/// not a whole multiple of a layer's units, is refused with the parameter at fault.
pub fn unit_groups(layout: &[Param]) -> Result<Vec<UnitGroup>, String> {
    // (prefix, weight, bias)
    let mut layers: Vec<(&str, &Param, Option<&Param>)> = Vec::new();
    for p in layout {
        let (prefix, kind) = p.name.rsplit_once('.').unwrap_or(("", p.name.as_str()));
        match kind {
            "weight" if p.shape.len() >= 2 => layers.push((prefix, p, None)),
            "bias" if p.shape.len() == 1 => match layers.last_mut() {
                Some((name, weight, bias @ None)) if *name == prefix && weight.shape[0] == p.shape[0] => *bias = Some(p),
                _ => return Err(format!("bias `{}` does not follow its layer's weight", p.name)),
            },
            _ => return Err(format!("`{}` (shape {:?}) is neither a layer's weight nor its bias: only plain MLP and CNN layouts have this symmetry", p.name, p.shape)),
        }
    }
    layers
        .windows(2)
        .map(|pair| {
            let ((name, weight, bias), (next_name, next, _)) = (pair[0], pair[1]);
            let (units, inputs) = (weight.shape[0], next.shape[1]);
            if inputs % units != 0 {
                return Err(format!("`{name}` has {units} units but `{next_name}` takes {inputs} inputs"));
            }
            let mut places = vec![Place { param: weight.name.clone(), axis: 0, width: 1 }];
            places.extend(bias.map(|b| Place { param: b.name.clone(), axis: 0, width: 1 }));
            places.push(Place { param: next.name.clone(), axis: 1, width: inputs / units });
            Ok(UnitGroup { units, places })
        })
        .collect()
}

/// Positions (within a tensor of `shape`, row-major) that unit `unit` covers on `axis`, `width`
/// consecutive positions per unit, in order.
pub fn unit_positions(shape: &[usize], axis: usize, width: usize, unit: usize) -> impl Iterator<Item = usize> + '_ {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    (0..outer).flat_map(move |o| (unit * width..(unit + 1) * width).flat_map(move |k| (o * n + k) * inner..(o * n + k + 1) * inner))
}

/// Reorders the units of one hidden layer of `flat`: unit j takes what unit `perm[j]` held, in
/// every place the layer's units index. Generic so a gather index (`0..P`) can be permuted as
/// well as weights.
pub fn permute_group<T: Copy>(flat: &mut [T], layout: &[Param], group: &UnitGroup, perm: &[usize]) {
    for place in &group.places {
        let Some(param) = layout.iter().find(|p| p.name == place.param) else { continue };
        let values = &mut flat[param.range()];
        let old = values.to_vec();
        for (j, &from) in perm.iter().enumerate() {
            for (dst, src) in unit_positions(&param.shape, place.axis, place.width, j).zip(unit_positions(&param.shape, place.axis, place.width, from)) {
                values[dst] = old[src];
            }
        }
    }
}

/// A gather index for reordering every hidden layer by `perms` (one permutation per group, in
/// order): `permuted[j] = original[index[j]]`.
pub fn gather_index(layout: &[Param], groups: &[UnitGroup], perms: &[Vec<usize>]) -> Vec<usize> {
    let len = layout.iter().map(|p| p.range().end).max().unwrap_or(0);
    let mut index: Vec<usize> = (0..len).collect();
    for (group, perm) in groups.iter().zip(perms) {
        permute_group(&mut index, layout, group, perm);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(shapes: &[(&str, &[usize])]) -> Vec<Param> {
        let mut offset = 0;
        shapes
            .iter()
            .map(|(name, shape)| {
                let p = Param { name: name.to_string(), shape: shape.to_vec(), offset };
                offset += shape.iter().product::<usize>();
                p
            })
            .collect()
    }

    /// A tiny MLP forward pass over a flat vector (ReLU), to check permutations keep the function.
    fn mlp(flat: &[f32], sizes: &[usize], x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        let mut at = 0;
        for (l, w) in sizes.windows(2).enumerate() {
            let (inputs, outputs) = (w[0], w[1]);
            let weight = &flat[at..at + inputs * outputs];
            let bias = &flat[at + inputs * outputs..at + inputs * outputs + outputs];
            at += inputs * outputs + outputs;
            let mut out: Vec<f32> = (0..outputs).map(|o| bias[o] + (0..inputs).map(|i| weight[o * inputs + i] * h[i]).sum::<f32>()).collect();
            if l + 2 < sizes.len() {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = out;
        }
        h
    }

    #[test]
    fn a_permuted_mlp_computes_the_same_function() {
        let sizes = [3, 4, 5, 2];
        let layout = layout(&[("layers.0.weight", &[4, 3]), ("layers.0.bias", &[4]), ("layers.1.weight", &[5, 4]), ("layers.1.bias", &[5]), ("layers.2.weight", &[2, 5]), ("layers.2.bias", &[2])]);
        let groups = unit_groups(&layout).unwrap();
        assert_eq!(groups.iter().map(|g| g.units).collect::<Vec<_>>(), [4, 5]);
        let flat: Vec<f32> = (0..layout.iter().map(|p| p.range().end).max().unwrap()).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let index = gather_index(&layout, &groups, &[vec![2, 0, 3, 1], vec![4, 3, 0, 1, 2]]);
        let permuted: Vec<f32> = index.iter().map(|&i| flat[i]).collect();
        assert_ne!(permuted, flat);
        for x in [[1.0, -2.0, 0.5], [0.3, 0.3, -1.0]] {
            let (a, b) = (mlp(&flat, &sizes, &x), mlp(&permuted, &sizes, &x));
            assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn a_flattened_convolution_covers_whole_feature_maps() {
        let layout = layout(&[("conv.weight", &[4, 1, 3, 3]), ("conv.bias", &[4]), ("fc.weight", &[10, 36]), ("fc.bias", &[10])]);
        let groups = unit_groups(&layout).unwrap();
        assert_eq!(groups[0].places[2], Place { param: "fc.weight".into(), axis: 1, width: 9 });
        let index = gather_index(&layout, &groups, &[vec![1, 0, 2, 3]]);
        // fc row 0, channel 0's first input now reads channel 1's.
        let fc = 40;
        assert_eq!(index[fc], fc + 9);
        assert_eq!(index[0], 9, "conv channel 0's first weight reads channel 1's");
    }

    #[test]
    fn other_layouts_are_refused_with_the_parameter() {
        let e = unit_groups(&layout(&[("l.weight", &[4, 3]), ("norm.running_mean", &[4]), ("o.weight", &[2, 4])])).unwrap_err();
        assert!(e.contains("norm.running_mean"), "{e}");
        let e = unit_groups(&layout(&[("a.weight", &[4, 3]), ("b.weight", &[2, 6])])).unwrap_err();
        assert!(e.contains("`a` has 4 units but `b` takes 6 inputs"), "{e}");
    }
}
