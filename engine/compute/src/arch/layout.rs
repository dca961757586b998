//! The canonical flat layout of a model's parameters: an ordered list of named tensors with
//! PyTorch state_dict names (`layers.0.weight`, shape `[out, in]`), packed back to back. A model
//! is one flat `f32` vector; a zoo is a (models × parameters) matrix. Methods see zoos in this form.

use serde::{Deserialize, Serialize};

/// One named tensor inside the flat vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    /// Index of its first value in the flat vector.
    pub offset: usize,
    /// A buffer (BatchNorm's running statistics): part of the model, never moved by a gradient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub buffer: bool,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.numel()
    }
}

/// All parameters of an architecture, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub params: Vec<ParamSpec>,
}

impl Layout {
    /// Builds a layout from (name, shape) pairs, assigning offsets in order.
    pub fn new(named: impl IntoIterator<Item = (String, Vec<usize>)>) -> Self {
        Self::with_buffers(named.into_iter().map(|(name, shape)| (name, shape, false)))
    }

    /// Like [`Layout::new`], with (name, shape, is a buffer) triples.
    pub fn with_buffers(named: impl IntoIterator<Item = (String, Vec<usize>, bool)>) -> Self {
        let mut offset = 0;
        let params = named
            .into_iter()
            .map(|(name, shape, buffer)| {
                let p = ParamSpec { name, offset, shape, buffer };
                offset += p.numel();
                p
            })
            .collect();
        Self { params }
    }

    /// Whether any tensor is a buffer.
    pub fn has_buffers(&self) -> bool {
        self.params.iter().any(|p| p.buffer)
    }

    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.params.last().map_or(0, |p| p.offset + p.numel())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Splits a flat vector into named tensors (copies).
    pub fn unflatten(&self, flat: &[f32]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        assert_eq!(flat.len(), self.len(), "flat vector does not match the layout");
        self.params.iter().map(|p| (p.name.clone(), p.shape.clone(), flat[p.range()].to_vec())).collect()
    }

    /// Packs named tensors into a flat vector; every parameter must be present with its shape.
    pub fn flatten<'a>(&self, mut lookup: impl FnMut(&str) -> Option<(&'a [usize], &'a [f32])>) -> Result<Vec<f32>, String> {
        let mut flat = vec![0.0; self.len()];
        for p in &self.params {
            let (shape, values) = lookup(&p.name).ok_or_else(|| format!("parameter `{}` is missing", p.name))?;
            if shape != p.shape.as_slice() {
                return Err(format!("parameter `{}` has shape {shape:?}, expected {:?}", p.name, p.shape));
            }
            flat[p.range()].copy_from_slice(values);
        }
        Ok(flat)
    }
}
