//! Weights as a sequence of per-unit tokens, the input of the paper's transformer autoencoder
//! (Schürholt et al. 2021/2022): one token per neuron or output channel — the unit's incoming
//! weights (a row of a linear layer, a whole kernel of a convolution) followed by its bias —
//! zero-padded to the longest unit. Reordering the units of a hidden layer then reorders that
//! layer's tokens and the entries inside the next layer's tokens, which is what permutation
//! augmentation teaches the transformer to see through.
//!
//! Values are normalised per parameter tensor (its mean and deviation over every checkpoint and
//! coordinate), the paper's layer-wise normalisation: a layer with small weights counts as much
//! in the reconstruction loss as one with large weights, and the normalisation commutes with
//! reordering units, so a permuted copy normalises to the permuted normalised model.

use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::{self, UnitPermutation};

/// Where every modelled coordinate of a flat weight vector sits in the token sequence, and the
/// per-tensor normalisation. "Model space" is the V coordinates that vary across the training
/// checkpoints, normalised (N × V), in the order of the flat vector.
pub struct Tokens {
    /// Tokens per model.
    pub count: usize,
    /// Entries per token: the largest unit's fan-in plus its bias.
    pub size: usize,
    /// How many coordinates every checkpoint shares (restored, not modelled).
    pub constant: usize,
    /// The flat coordinates modelled (V, ascending).
    modelled: Tensor,
    /// For each of `count × size` token entries, the modelled column it holds, or V (padding,
    /// read from an appended zero column).
    gather: Tensor,
    /// For each modelled column, its position among the `count × size` token entries.
    scatter: Tensor,
    /// For each flat coordinate, its modelled column, or V for a constant one.
    full: Tensor,
    /// Per modelled column: its tensor's mean and the inverse of its deviation (1 × V).
    shift: Tensor,
    inverse_scale: Tensor,
    /// Per flat coordinate: its tensor's deviation (0 when constant) and mean (the constant's
    /// value when constant), 1 × P.
    full_scale: Tensor,
    full_shift: Tensor,
}

impl Tokens {
    /// Reads the units from `layout` (a `<prefix>.bias` right after `<prefix>.weight` with one
    /// entry per unit joins that weight's tokens; any other tensor is cut along its first
    /// dimension) and the normalisation from the training `weights` (N × P).
    pub fn new(layout: &[Param], weights: &Tensor) -> Result<Self, String> {
        let parameters = weights.shape()[1];
        // (offset of the unit's first weight, fan-in, offset of its bias) per unit.
        let mut units: Vec<(usize, usize, Option<usize>)> = Vec::new();
        let mut i = 0;
        while i < layout.len() {
            let p = &layout[i];
            let shape: Vec<usize> = p.shape.iter().map(|&s| s as usize).collect();
            let rows = shape.first().copied().unwrap_or(1).max(1);
            let fan_in = shape.iter().skip(1).product::<usize>().max(1);
            let bias =
                layout.get(i + 1).filter(|b| p.name.strip_suffix(".weight").is_some_and(|prefix| b.name.strip_suffix(".bias") == Some(prefix)) && b.shape.len() == 1 && b.shape[0] as usize == rows);
            units.extend((0..rows).map(|u| (p.offset as usize + u * fan_in, fan_in, bias.map(|b| b.offset as usize + u))));
            i += if bias.is_some() { 2 } else { 1 };
        }
        // Coordinates every checkpoint shares (layers a `continue` zoo keeps frozen) are not
        // modelled: they join no token and are restored exactly. A unit none of whose
        // coordinates varies gets no token at all.
        let rows = weights.shape()[0];
        let values = weights.to_vec();
        let at = |r: usize, j: usize| f64::from(values[r * parameters + j]);
        let spread: Vec<f64> = (0..parameters)
            .map(|j| {
                let mean = (0..rows).map(|r| at(r, j)).sum::<f64>() / rows as f64;
                (0..rows).map(|r| (at(r, j) - mean).powi(2)).sum::<f64>()
            })
            .collect();
        let top = spread.iter().cloned().fold(0.0, f64::max);
        let varying: Vec<bool> = spread.iter().map(|&s| s > top * 1e-12).collect();
        if !varying.iter().any(|&v| v) {
            return Err("all training checkpoints are identical: nothing to model".into());
        }
        let unit_coordinates = |&(start, fan_in, bias): &(usize, usize, Option<usize>)| (start..start + fan_in).chain(bias);
        units.retain(|u| unit_coordinates(u).any(|j| varying[j]));
        let modelled: Vec<usize> = (0..parameters).filter(|&j| varying[j]).collect();
        let v = modelled.len();
        let mut column = vec![v; parameters];
        for (c, &j) in modelled.iter().enumerate() {
            column[j] = c;
        }
        let size = units.iter().map(|&(_, f, b)| f + usize::from(b.is_some())).max().unwrap_or(1);
        let count = units.len();
        let mut gather = vec![v; count * size];
        let mut scatter = vec![usize::MAX; v];
        for (t, unit) in units.iter().enumerate() {
            for (k, j) in unit_coordinates(unit).enumerate() {
                if varying[j] {
                    gather[t * size + k] = column[j];
                    scatter[column[j]] = t * size + k;
                }
            }
        }
        if let Some(c) = scatter.iter().position(|&pos| pos == usize::MAX) {
            return Err(format!("coordinate {} of the flat vector belongs to no parameter of the zoo's layout", modelled[c]));
        }
        // Per-tensor mean and deviation over every checkpoint and varying coordinate; a
        // constant coordinate restores to its value (deviation 0).
        let (mut full_shift, mut full_scale) = (vec![0.0f32; parameters], vec![0.0f32; parameters]);
        for p in layout {
            let (start, len) = (p.offset as usize, p.shape.iter().map(|&s| s as usize).product::<usize>().max(1));
            let entries = || (start..start + len).filter(|&j| varying[j]).flat_map(|j| (0..rows).map(move |r| (r, j)));
            let n = entries().count().max(1) as f64;
            let mean = entries().map(|(r, j)| at(r, j)).sum::<f64>() / n;
            let deviation = (entries().map(|(r, j)| (at(r, j) - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-8);
            for j in start..start + len {
                (full_shift[j], full_scale[j]) = if varying[j] { (mean as f32, deviation as f32) } else { (values[j], 0.0) };
            }
        }
        let shift: Vec<f32> = modelled.iter().map(|&j| full_shift[j]).collect();
        let inverse: Vec<f32> = modelled.iter().map(|&j| 1.0 / full_scale[j]).collect();
        Ok(Tokens {
            count,
            size,
            constant: parameters - v,
            modelled: index_tensor(&modelled),
            gather: index_tensor(&gather),
            scatter: index_tensor(&scatter),
            full: index_tensor(&column),
            shift: Tensor::from_slice(&shift, &[1, v]),
            inverse_scale: Tensor::from_slice(&inverse, &[1, v]),
            full_scale: Tensor::from_slice(&full_scale, &[1, parameters]),
            full_shift: Tensor::from_slice(&full_shift, &[1, parameters]),
        })
    }

    /// Raw weights (N × P) → model space (N × V).
    pub fn normalise(&self, weights: &Tensor) -> Tensor {
        &(&weights.index_select(1, &self.modelled) - &self.shift) * &self.inverse_scale
    }

    /// Model space (N × V) → raw weights (N × P), constant coordinates put back.
    pub fn restore(&self, x: &Tensor) -> Tensor {
        &(&with_zero_column(x).index_select(1, &self.full) * &self.full_scale) + &self.full_shift
    }

    /// Model space (N × V) → token sequences (N × count × size), padding entries 0.
    pub fn tokenise(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0] as i64;
        with_zero_column(x).index_select(1, &self.gather).reshape(&[n, self.count as i64, self.size as i64])
    }

    /// Token sequences (N × count × size) → model space (N × V); padding entries dropped.
    pub fn flatten(&self, tokens: &Tensor) -> Tensor {
        let n = tokens.shape()[0] as i64;
        tokens.reshape(&[n, -1]).index_select(1, &self.scatter)
    }
}

/// Random reorderings of a model's hidden units, drawn once as gather indices over the flat
/// vector (K × P, on the host), so that permuting a batch every step is three host operations
/// rather than a loop over every coordinate in the plugin: each row takes one of the K at
/// random (`permuted[j] = x[index[j]]`).
pub struct PermutationPool {
    pool: Tensor,
    size: usize,
}

impl PermutationPool {
    /// `size` reorderings from `symmetry` (the identity among them only by chance).
    pub fn new(symmetry: &UnitPermutation, size: usize, seed: u64) -> Self {
        let rows: Vec<Tensor> = (0..size).map(|k| index_tensor(&symmetry.index(seed.wrapping_add(k as u64).wrapping_mul(0x2545_F491_4F6C_DD1D))).unsqueeze(0)).collect();
        PermutationPool { pool: Tensor::cat(&rows.iter().collect::<Vec<_>>(), 0), size }
    }

    /// Each row of `x` (N × P: a model space with no constant coordinates) reordered by a
    /// reordering of the pool drawn for it with `seed`.
    pub fn permute(&self, x: &Tensor, seed: u64) -> Tensor {
        let (n, p) = (x.shape()[0], x.shape()[1]);
        let picks = self.pool.index_select(0, &Tensor::randint(self.size, n, seed));
        // Indices travel as f32, exact below 2^24: gather blocks of rows that stay under it.
        let block = ((1usize << 24) / p.max(1)).max(1);
        let parts: Vec<Tensor> = (0..n)
            .step_by(block)
            .map(|start| {
                let len = block.min(n - start);
                let offsets = (Tensor::arange(len) * p as f32).unsqueeze(1);
                let index = (&picks.narrow(0, start, len) + &offsets).reshape(&[-1]);
                x.narrow(0, start, len).reshape(&[-1]).index_select(0, &index).reshape(&[len as i64, p as i64])
            })
            .collect();
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0)
    }
}

/// `x` (N × p) with a zero column appended: what padding entries and constant coordinates
/// gather from.
fn with_zero_column(x: &Tensor) -> Tensor {
    weights::pad(x, x.shape()[1] + 1)
}

fn index_tensor(index: &[usize]) -> Tensor {
    let values: Vec<f32> = index.iter().map(|&i| i as f32).collect();
    Tensor::from_slice(&values, &[values.len()])
}
