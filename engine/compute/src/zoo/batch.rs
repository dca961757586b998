//! Tensors shared by training and evaluation: a dataset split on the device, and the loss and
//! accuracy of K models on a batch.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::{Split, Task};

/// A split uploaded once; batches are gathered from it by index.
pub struct DeviceSplit {
    pub x: Tensor<2>,
    /// Class indices (classification).
    pub y_class: Option<Tensor<1, Int>>,
    /// Targets (regression).
    pub y_value: Option<Tensor<1>>,
    pub len: usize,
    pub features: usize,
}

impl DeviceSplit {
    pub fn new(split: &Split, features: usize, task: Task, device: &Device) -> Self {
        let len = split.len();
        let x = Tensor::from_data(TensorData::new(split.x.clone(), [len, features]), device);
        let (y_class, y_value) = match task {
            Task::Classification { .. } => {
                let ys: Vec<i64> = split.y.iter().map(|&v| v as i64).collect();
                (Some(Tensor::from_data(TensorData::new(ys, [len]), device)), None)
            }
            Task::Regression => (None, Some(Tensor::from_data(TensorData::new(split.y.clone(), [len]), device))),
        };
        Self { x, y_class, y_value, len, features }
    }

    /// Inputs (K × B × F) and targets for `indices` (K·B of them, model-major).
    pub fn gather(&self, indices: &[i64], k: usize, device: &Device) -> (Tensor<3>, Targets) {
        let b = indices.len() / k;
        let idx: Tensor<1, Int> = Tensor::from_data(TensorData::new(indices.to_vec(), [indices.len()]), device);
        let x = self.x.clone().select(0, idx.clone()).reshape([k, b, self.features]);
        let targets = match (&self.y_class, &self.y_value) {
            (Some(y), _) => Targets::Class(y.clone().select(0, idx).reshape([k, b, 1])),
            (_, Some(y)) => Targets::Value(y.clone().select(0, idx).reshape([k, b, 1])),
            _ => unreachable!("a split has targets"),
        };
        (x, targets)
    }

    /// Inputs and targets of examples `start..start+b`, the same for all K models.
    pub fn range(&self, start: usize, b: usize, k: usize) -> (Tensor<3>, Targets) {
        let x = self.x.clone().narrow(0, start, b).reshape([1, b, self.features]).expand([k, b, self.features]);
        let targets = match (&self.y_class, &self.y_value) {
            (Some(y), _) => Targets::Class(y.clone().narrow(0, start, b).reshape([1, b, 1]).expand([k, b, 1])),
            (_, Some(y)) => Targets::Value(y.clone().narrow(0, start, b).reshape([1, b, 1]).expand([k, b, 1])),
            _ => unreachable!("a split has targets"),
        };
        (x, targets)
    }
}

/// Targets of a batch, (K × B × 1).
pub enum Targets {
    Class(Tensor<3, Int>),
    Value(Tensor<3>),
}

/// Mean loss per model over the batch: (K). Cross-entropy for classes, MSE for values.
pub fn per_model_loss(out: Tensor<3>, targets: &Targets) -> Tensor<1> {
    let [k, _, _] = out.dims();
    match targets {
        Targets::Class(y) => {
            let logp = log_softmax(out, 2);
            logp.gather(2, y.clone()).neg().mean_dim(1).reshape([k])
        }
        Targets::Value(y) => (out - y.clone()).powi_scalar(2).mean_dim(1).reshape([k]),
    }
}

/// Number of correct predictions per model (K), and the predictions (K × B), for classes.
pub fn correct(out: Tensor<3>, targets: &Targets) -> Option<(Vec<i64>, Vec<i64>)> {
    let Targets::Class(y) = targets else {
        return None;
    };
    let [k, b, _] = out.dims();
    let pred = out.argmax(2);
    let hits = pred.clone().equal(y.clone()).int().sum_dim(1).reshape([k]);
    let hits = hits.into_data().try_into_vec::<i64>().ok()?;
    let pred = pred.reshape([k * b]).into_data().try_into_vec::<i64>().ok()?;
    Some((hits, pred))
}
