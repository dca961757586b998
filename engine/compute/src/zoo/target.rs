//! What the hand-written engines' models learn to predict, and the gradient of their loss with
//! respect to a model's outputs: mean cross-entropy for classes, mean squared error for one
//! real value — the tape's losses ([`super::batch::per_model_loss`]). One piece of code for
//! every engine, whatever layout its outputs have, so they all take the same steps.

use crate::data::{Split, Task};

/// The training split's targets.
pub(super) enum Target {
    Classes(Vec<usize>),
    Values(Vec<f32>),
}

impl Target {
    /// The targets of `train` for a model with `outputs` outputs; `None` when the loss does not
    /// fit them (classes other than the outputs, regression onto more than one).
    pub fn of(train: &Split, task: Task, outputs: usize) -> Option<Self> {
        match task {
            Task::Classification { classes } if classes == outputs => Some(Target::Classes(train.y.iter().map(|&v| v as usize).collect())),
            Task::Regression if outputs == 1 => Some(Target::Values(train.y.clone())),
            _ => None,
        }
    }

    /// d(`scale` × loss)/d(outputs) for training example `i`, written over its `outputs`
    /// outputs, which `d` holds at `d[c·stride]` on entry.
    #[inline]
    pub fn gradient(&self, i: usize, d: &mut [f32], stride: usize, outputs: usize, scale: f32) {
        match self {
            Target::Classes(y) => cross_entropy_grad(d, stride, outputs, y[i], scale),
            Target::Values(y) => d[0] = (d[0] - y[i]) * (2.0 * scale),
        }
    }
}

/// (softmax − one-hot(`label`)) · `scale` over the `classes` logits at `d[c·stride]`, in place:
/// d(`scale` × cross-entropy)/d(logits).
#[inline]
pub(super) fn cross_entropy_grad(d: &mut [f32], stride: usize, classes: usize, label: usize, scale: f32) {
    let max = (0..classes).map(|c| d[c * stride]).fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for c in 0..classes {
        let e = (d[c * stride] - max).exp();
        d[c * stride] = e;
        sum += e;
    }
    for c in 0..classes {
        d[c * stride] = (d[c * stride] / sum - if c == label { 1.0 } else { 0.0 }) * scale;
    }
}
