//! Building blocks of probes: the loss for each kind of target, feature standardisation, a
//! weight tensor of the flat layout as a batch of matrices, a small training loop, and
//! model-tree discovery (the same code the engine's discovery table runs).

use crate::{Target, TargetKind, Tensor, Zoo, log};

/// Mean loss of `out` against `labels` for a target of `kind`: binary cross-entropy on logits
/// (multi-label), cross-entropy (single-label, `labels` holding indices, models × 1), squared
/// error (regression).
pub fn loss(kind: TargetKind, out: &Tensor, labels: &Tensor) -> Tensor {
    match kind {
        // log(1 + e^x) − x·y, computed stably as relu(x) + log(1 + e^−|x|) − x·y.
        TargetKind::MultiLabel => (out.relu() + (out.abs() * -1.0).exp().affine(1.0, 1.0).log() - out * labels).mean_all(),
        TargetKind::SingleLabel => out.cross_entropy(&labels.reshape(&[-1])),
        TargetKind::Regression => out.mse(labels),
    }
}

/// Output columns of a head for `target`: one per label, or one value.
pub fn outputs(target: &Target) -> usize {
    match target.kind {
        TargetKind::Regression => 1,
        _ => target.labels.len(),
    }
}

/// Per-column standardisation fitted on training rows (columns with no spread are centred only).
#[derive(Clone)]
pub struct Standardize {
    mean: Tensor,
    std: Tensor,
}

impl Standardize {
    pub fn fit(x: &Tensor) -> Self {
        let rows = x.shape()[0];
        let mean = x.mean(0, true);
        let std = if rows > 1 { x.std(0, true).clamp(1e-6, f32::MAX) } else { Tensor::full(&mean.shape(), 1.0) };
        Self { mean, std }
    }
    pub fn apply(&self, x: &Tensor) -> Tensor {
        (x - &self.mean) / &self.std
    }
    /// The inverse of [`Standardize::apply`].
    pub fn invert(&self, x: &Tensor) -> Tensor {
        x * &self.std + &self.mean
    }
}

/// A head on fixed features: standardised inputs, an MLP (linear with no hidden layer), and
/// regression targets learned standardised. What a probe on hand-made features needs.
pub struct Head {
    mlp: crate::nn::Mlp,
    inputs: Standardize,
    targets: Option<Standardize>,
}

/// The `config` of a probe that is a [`Head`] on features: its hidden widths and training.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Hidden widths of the head; empty: a linear probe.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// AdamW steps (full batch).
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default = "default_lr")]
    pub lr: f32,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f32,
}

fn default_steps() -> usize {
    400
}
fn default_lr() -> f32 {
    3e-3
}
fn default_weight_decay() -> f32 {
    3e-3
}

impl Head {
    /// Fits on `features` (models × features) and `labels`; returns the head and its last loss.
    pub fn fit(features: &Tensor, labels: &Tensor, target: &Target, config: &HeadConfig, seed: u64) -> (Self, f32) {
        let inputs = Standardize::fit(features);
        let x = inputs.apply(features);
        let targets = (target.kind == TargetKind::Regression).then(|| Standardize::fit(labels));
        let y = targets.as_ref().map_or_else(|| labels.clone(), |t| t.apply(labels));
        let mut sizes = vec![features.shape()[1]];
        sizes.extend(&config.hidden);
        sizes.push(outputs(target));
        let mlp = crate::nn::Mlp::new(&sizes, crate::nn::Act::Relu, seed);
        let loss = train(&mlp.params(), config.steps, config.lr, config.weight_decay, (0, config.steps), |_| self::loss(target.kind, &mlp.forward(&x), &y));
        (Head { mlp, inputs, targets }, loss)
    }

    /// Scores or values for `features`.
    pub fn predict(&self, features: &Tensor) -> Tensor {
        let out = self.mlp.forward(&self.inputs.apply(features)).detach();
        match &self.targets {
            Some(t) => t.invert(&out),
            None => out,
        }
    }
}

/// Where a weight matrix sits in the flat layout: a dense weight (out × in) as is, a
/// convolution (out × in × k × k) as out × (in·k·k).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerSlice {
    pub offset: usize,
    pub rows: usize,
    pub size: usize,
}

impl LayerSlice {
    /// The parameter `name` of the layout; `None` when there is none or it is a vector.
    pub fn find(zoo: &Zoo, name: &str) -> Option<Self> {
        let p = zoo.layout.iter().find(|p| p.name == name)?;
        if p.shape.len() < 2 {
            return None;
        }
        Some(Self { offset: p.offset as usize, rows: p.shape[0] as usize, size: p.shape.iter().map(|&d| d as usize).product() })
    }

    /// The matrix of every row of `weights` (models × parameters): models × rows × columns.
    pub fn take(&self, weights: &Tensor) -> Tensor {
        let models = weights.shape()[0];
        weights.narrow(1, self.offset, self.size).reshape(&[models as i64, self.rows as i64, (self.size / self.rows) as i64])
    }
}

/// The parameter `name` of every row of `weights` as matrices ([`LayerSlice::take`]).
pub fn layer_matrix(zoo: &Zoo, weights: &Tensor, name: &str) -> Option<Tensor> {
    LayerSlice::find(zoo, name).map(|s| s.take(weights))
}

/// Names of the layout's weight matrices (parameters with two or more dimensions), in order.
pub fn matrix_layers(layout: &[crate::Param]) -> Vec<String> {
    layout.iter().filter(|p| p.shape.len() >= 2).map(|p| p.name.clone()).collect()
}

/// Trains `params` with Adam for `steps` steps on the loss `step_loss` returns, reporting
/// progress as steps `done_before`.. of `total`; returns the last loss.
pub fn train(params: &[&Tensor], steps: usize, lr: f32, weight_decay: f32, progress: (usize, usize), mut step_loss: impl FnMut(usize) -> Tensor) -> f32 {
    let optimizer = crate::Optimizer::new(crate::OptimizerKind::Adamw, params, lr, weight_decay);
    let mut last = f32::NAN;
    for step in 0..steps {
        let loss = step_loss(step);
        optimizer.step_on(&loss);
        if step + 1 == steps || step % 50 == 0 {
            last = loss.item();
            log::progress(progress.0 + step + 1, progress.1);
        }
    }
    last
}

/// Model trees among the rows of `features` (models × anything): single-linkage on their
/// Euclidean distances, cut at the largest jump (`weightlab_trees::discover`). The distance
/// matrix is computed on the host.
pub fn discover_trees(features: &Tensor) -> Vec<usize> {
    let n = features.shape()[0];
    let flat = features.reshape(&[n as i64, -1]);
    let sq = flat.square().sum(1, true);
    let d2 = (&sq + &sq.transpose(0, 1) - flat.matmul(&flat.transpose(0, 1)) * 2.0).clamp(0.0, f32::MAX);
    let distances: Vec<f64> = d2.to_vec().iter().map(|&v| (v as f64).sqrt()).collect();
    weightlab_trees::discover(&distances, n)
}
