//! The hidden-unit permutation symmetry of feed-forward networks (MLPs, CNNs, and declared
//! `sequential` networks with norms and residual blocks), read from their flat layout alone. Reordering a hidden layer's units — the rows of its weight and its bias,
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

/// The hidden layers of a layout, read from its PyTorch names and shapes.
///
/// A *module* is the tensors sharing a name prefix (`3.weight`, `3.bias`): a linear or conv
/// layer when its `weight` has rank ≥ 2, a per-unit affine (BatchNorm with its running
/// statistics, LayerNorm) when its tensors are 1-D. Modules named `<block>.layers.<i>` and
/// `<block>.shortcut.<i>` form a residual block, `layers(x) + shortcut(x)` (the identity when
/// there is no shortcut), as weightlab's `sequential` networks name them; other nested names
/// (`layers.0`, `features.conv1`) are plain sequences.
///
/// Units flow as streams: each linear/conv layer opens one (its output rows), a norm joins the
/// stream it normalises, the next linear/conv layer's inputs close it (`width` inputs per unit
/// where a conv's channels are flattened), and a residual block's two branches merge into one
/// stream — units tied by a skip connection permute together. The data's input and the
/// network's output are fixed; every other stream is a group whose units can be reordered.
/// Anything else (embeddings, attention, a 1-D tensor whose length is not its stream's units) is
/// refused with the tensor at fault.
pub fn unit_groups(layout: &[Param]) -> Result<Vec<UnitGroup>, String> {
    let modules = modules_of(layout)?;
    let tree = parse(&modules, 0)?;
    let mut streams = Streams::default();
    let input = streams.open(None, Vec::new());
    let last = streams.walk(&tree, input)?;
    let out = streams.find(last);
    streams.fixed[out] = true;
    let input = streams.find(input);
    streams.fixed[input] = true;
    streams.groups()
}

/// The tensors of one module, in layout order.
struct Module<'a> {
    segments: Vec<&'a str>,
    tensors: Vec<(&'a str, &'a Param)>,
}

fn modules_of(layout: &[Param]) -> Result<Vec<Module<'_>>, String> {
    let mut modules: Vec<Module> = Vec::new();
    for p in layout {
        let (prefix, kind) = p.name.rsplit_once('.').unwrap_or(("", p.name.as_str()));
        let segments: Vec<&str> = if prefix.is_empty() { Vec::new() } else { prefix.split('.').collect() };
        match modules.last_mut() {
            Some(m) if m.segments == segments => m.tensors.push((kind, p)),
            _ => {
                if modules.iter().any(|m| m.segments == segments) {
                    return Err(format!("`{}` is apart from the other tensors of its module", p.name));
                }
                modules.push(Module { segments, tensors: vec![(kind, p)] })
            }
        }
    }
    Ok(modules)
}

/// A layout as a tree of modules.
enum Node<'a> {
    /// A linear or conv layer: rows of `weight` (and `bias`) are its units.
    Dense {
        weight: &'a Param,
        bias: Option<&'a Param>,
    },
    /// Per-unit tensors of the stream it sits on (norm weights, biases, running statistics).
    Affine(Vec<&'a Param>),
    Residual {
        layers: Vec<Node<'a>>,
        shortcut: Vec<Node<'a>>,
    },
}

/// The modules (all sharing their first `depth` name segments) as nodes in order.
fn parse<'a>(modules: &[Module<'a>], depth: usize) -> Result<Vec<Node<'a>>, String> {
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < modules.len() {
        let head = modules[i].segments.get(depth).copied();
        let run = modules[i..].iter().take_while(|m| m.segments.get(depth).copied() == head).count();
        let group = &modules[i..i + run];
        i += run;
        if group.len() == 1 && group[0].segments.len() == depth + usize::from(head.is_some()) {
            nodes.push(leaf(&group[0])?);
            continue;
        }
        let Some(_) = head else { return Err("a module has tensors both of its own and of submodules".into()) };
        let branch = |name: &str| group.iter().filter(|m| m.segments.get(depth + 1) == Some(&name)).count();
        let residual = depth + 1 < group[0].segments.len() && branch("layers") + branch("shortcut") == group.len() && branch("layers") > 0 && head.is_some_and(|h| h.parse::<usize>().is_ok());
        if residual {
            let split = group.iter().position(|m| m.segments[depth + 1] == "shortcut").unwrap_or(group.len());
            if group[split..].iter().any(|m| m.segments[depth + 1] != "shortcut") {
                return Err(format!("residual block `{}`: its `layers` and `shortcut` tensors are interleaved", group[0].segments[..=depth].join(".")));
            }
            nodes.push(Node::Residual { layers: parse(&group[..split], depth + 2)?, shortcut: parse(&group[split..], depth + 2)? });
        } else {
            nodes.extend(parse(group, depth + 1)?);
        }
    }
    Ok(nodes)
}

fn leaf<'a>(m: &Module<'a>) -> Result<Node<'a>, String> {
    let get = |kind: &str| m.tensors.iter().find(|(k, _)| *k == kind).map(|(_, p)| *p);
    let name = |kind: &str| if m.segments.is_empty() { kind.to_string() } else { format!("{}.{kind}", m.segments.join(".")) };
    match get("weight") {
        Some(w) if w.shape.len() >= 2 => {
            let bias = get("bias");
            if let Some((kind, p)) = m.tensors.iter().find(|(k, _)| *k != "weight" && *k != "bias") {
                return Err(format!("`{}` (shape {:?}) is neither a layer's weight nor its bias", name(kind), p.shape));
            }
            if bias.is_some_and(|b| b.shape != [w.shape[0]]) {
                return Err(format!("bias `{}` does not match its layer's {} units", name("bias"), w.shape[0]));
            }
            Ok(Node::Dense { weight: w, bias })
        }
        _ => {
            for (kind, p) in &m.tensors {
                if !matches!(*kind, "weight" | "bias" | "running_mean" | "running_var") || p.shape.len() != 1 {
                    return Err(format!(
                        "`{}` (shape {:?}) is neither a layer's weight nor its bias, nor a per-unit norm tensor: only linear, conv, norm and residual layouts have this symmetry",
                        name(kind),
                        p.shape
                    ));
                }
            }
            Ok(Node::Affine(m.tensors.iter().map(|(_, p)| *p).collect()))
        }
    }
}

/// Streams of units joined by residual additions (a union-find).
#[derive(Default)]
struct Streams {
    parent: Vec<usize>,
    units: Vec<Option<usize>>,
    places: Vec<Vec<Place>>,
    fixed: Vec<bool>,
}

impl Streams {
    fn open(&mut self, units: Option<usize>, places: Vec<Place>) -> usize {
        self.parent.push(self.parent.len());
        self.units.push(units);
        self.places.push(places);
        self.fixed.push(false);
        self.parent.len() - 1
    }

    fn find(&mut self, mut s: usize) -> usize {
        while self.parent[s] != s {
            self.parent[s] = self.parent[self.parent[s]];
            s = self.parent[s];
        }
        s
    }

    fn walk(&mut self, nodes: &[Node], mut current: usize) -> Result<usize, String> {
        for node in nodes {
            current = match node {
                Node::Dense { weight, bias } => {
                    let root = self.find(current);
                    if let Some(units) = self.units[root] {
                        let inputs = weight.shape[1];
                        if units == 0 || inputs % units != 0 {
                            return Err(format!("`{}` takes {inputs} inputs, which the {units} units before it do not divide", weight.name));
                        }
                        self.places[root].push(Place { param: weight.name.clone(), axis: 1, width: inputs / units });
                    }
                    let mut own = vec![Place { param: weight.name.clone(), axis: 0, width: 1 }];
                    own.extend(bias.map(|b| Place { param: b.name.clone(), axis: 0, width: 1 }));
                    self.open(Some(weight.shape[0]), own)
                }
                Node::Affine(tensors) => {
                    let root = self.find(current);
                    if let Some(units) = self.units[root] {
                        for t in tensors {
                            if t.shape[0] != units {
                                return Err(format!("`{}` has {} values, but the layer before it has {units} units", t.name, t.shape[0]));
                            }
                            self.places[root].push(Place { param: t.name.clone(), axis: 0, width: 1 });
                        }
                    }
                    current
                }
                Node::Residual { layers, shortcut } => {
                    let a = self.walk(layers, current)?;
                    let b = self.walk(shortcut, current)?;
                    self.join(a, b)?
                }
            };
        }
        Ok(current)
    }

    /// Merges two streams added together; their units must agree.
    fn join(&mut self, a: usize, b: usize) -> Result<usize, String> {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return Ok(a);
        }
        let (keep, gone) = (a.min(b), a.max(b));
        match (self.units[keep], self.units[gone]) {
            (Some(x), Some(y)) if x != y => return Err(format!("a residual block adds {x} units to {y}")),
            (None, _) | (_, None) => self.units[keep] = None,
            _ => {}
        }
        self.parent[gone] = keep;
        let moved = std::mem::take(&mut self.places[gone]);
        self.places[keep].extend(moved);
        self.fixed[keep] |= self.fixed[gone];
        Ok(keep)
    }

    /// The free streams in order of first appearance, each a group.
    fn groups(mut self) -> Result<Vec<UnitGroup>, String> {
        let mut out = Vec::new();
        for s in 0..self.parent.len() {
            if self.find(s) != s || self.fixed[s] {
                continue;
            }
            if let Some(units) = self.units[s] {
                let mut places = std::mem::take(&mut self.places[s]);
                // A stream's own tensors first, then the inputs it feeds, each in layout order.
                places.sort_by_key(|p| !p.is_own());
                out.push(UnitGroup { units, places });
            }
        }
        Ok(out)
    }
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
        let e = unit_groups(&layout(&[("l.weight", &[4, 3]), ("attn.in_proj_weight", &[4]), ("o.weight", &[2, 4])])).unwrap_err();
        assert!(e.contains("attn.in_proj_weight"), "{e}");
        let e = unit_groups(&layout(&[("l.weight", &[4, 3]), ("norm.running_mean", &[5]), ("o.weight", &[2, 4])])).unwrap_err();
        assert!(e.contains("`norm.running_mean` has 5 values, but the layer before it has 4 units"), "{e}");
        let e = unit_groups(&layout(&[("a.weight", &[4, 3]), ("b.weight", &[2, 6])])).unwrap_err();
        assert!(e.contains("`b.weight` takes 6 inputs, which the 4 units before it do not divide"), "{e}");
    }

    #[test]
    fn norms_join_their_layer_and_residual_branches_share_units() {
        // conv(0) → bn(1) → residual(2: conv, bn | shortcut conv) → flatten → linear(4)
        let l = layout(&[
            ("0.weight", &[4, 1, 3, 3]),
            ("0.bias", &[4]),
            ("1.weight", &[4]),
            ("1.bias", &[4]),
            ("1.running_mean", &[4]),
            ("1.running_var", &[4]),
            ("2.layers.0.weight", &[6, 4, 3, 3]),
            ("2.layers.1.weight", &[6]),
            ("2.layers.1.bias", &[6]),
            ("2.shortcut.0.weight", &[6, 4, 1, 1]),
            ("4.weight", &[3, 24]),
            ("4.bias", &[3]),
        ]);
        let groups = unit_groups(&l).unwrap();
        assert_eq!(groups.len(), 2);
        fn names(g: &UnitGroup) -> Vec<(&str, usize, usize)> {
            g.places.iter().map(|p| (p.param.as_str(), p.axis, p.width)).collect()
        }
        assert_eq!(groups[0].units, 4);
        assert_eq!(
            names(&groups[0]),
            [("0.weight", 0, 1), ("0.bias", 0, 1), ("1.weight", 0, 1), ("1.bias", 0, 1), ("1.running_mean", 0, 1), ("1.running_var", 0, 1), ("2.layers.0.weight", 1, 1), ("2.shortcut.0.weight", 1, 1)]
        );
        // The block's conv and its shortcut write one stream: 6 units, read by the linear layer 4 inputs each.
        assert_eq!(groups[1].units, 6);
        assert_eq!(names(&groups[1]), [("2.layers.0.weight", 0, 1), ("2.layers.1.weight", 0, 1), ("2.layers.1.bias", 0, 1), ("2.shortcut.0.weight", 0, 1), ("4.weight", 1, 4)]);
    }

    #[test]
    fn an_identity_shortcut_ties_a_block_to_its_input() {
        let l = layout(&[("0.weight", &[5, 3]), ("0.bias", &[5]), ("2.layers.0.weight", &[7, 5]), ("2.layers.2.weight", &[5, 7]), ("3.weight", &[2, 5])]);
        let groups = unit_groups(&l).unwrap();
        fn names(g: &UnitGroup) -> Vec<&str> {
            g.places.iter().map(|p| p.param.as_str()).collect()
        }
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].units, names(&groups[0])), (5, vec!["0.weight", "0.bias", "2.layers.2.weight", "2.layers.0.weight", "3.weight"]));
        assert_eq!((groups[1].units, names(&groups[1])), (7, vec!["2.layers.0.weight", "2.layers.2.weight"]));
        // A residual straight on the input is tied to the input: nothing there permutes.
        let l = layout(&[("0.layers.0.weight", &[7, 3]), ("0.layers.2.weight", &[3, 7]), ("1.weight", &[2, 3])]);
        assert_eq!(unit_groups(&l).unwrap().iter().map(|g| g.units).collect::<Vec<_>>(), [7]);
    }
}
