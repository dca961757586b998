//! `probex`: ProbeX (Horwitz et al., "Learning on Model Weights using Tree Experts", CVPR 2025)
//! at CPU scale. For one layer's weight matrix W (out × in; a convolution as out × in·k·k):
//! learned probe vectors U (in × r) give W·U, each of its r columns goes through a shared
//! projection with a ReLU, the concatenation becomes the model's representation, and a task
//! head predicts the target. The layer is chosen on validation models (a fifth of the training
//! models) unless `layer` names one.
//!
//! `experts = true`: models fine-tuned from one foundation model form a tree; trees are found
//! from the weights alone (single-linkage clustering, cut at the largest jump), one expert is
//! trained per tree, and a router sends each model to the expert of the nearest tree centre.
//! Unlike the paper, whose trees hold thousands of models, an expert by default starts from the
//! probe fitted on every tree and is fine-tuned on its own tree's models (`expert_steps`): with
//! a few dozen models per tree, an expert trained from scratch has little to learn from.
//! `expert_init = "scratch"` trains each expert from a fresh start on its tree alone (`steps`
//! steps), as the paper does — the ablation of whether sharing across trees helps or hurts.
//!
//! With label embeddings (`embed_labels` in the manifest) the head maps the representation
//! into the embedding space and scores a label by the cosine with its embedding: labels never
//! seen in training can be scored (zero-shot, as ProbeX aligns to CLIP text embeddings).

use weightlab_sdk::prelude::*;
use weightlab_sdk::probing::{self, LayerSlice, Standardize};

/// The head of a label target.
#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
enum HeadKind {
    /// 10 × the cosine between the representation's image and each label's embedding (an
    /// axis per label when no text embeddings are given), plus a shared offset.
    #[default]
    Cosine,
    /// One output per label.
    Linear,
}

/// Where a tree expert starts.
#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Default, Debug)]
#[serde(rename_all = "kebab-case")]
enum ExpertInit {
    /// From the probe fitted on every tree, fine-tuned on its own tree (`expert_steps`).
    #[default]
    Shared,
    /// From a fresh start on its own tree only (`steps`), as in the paper.
    Scratch,
}

/// Configuration of `probex`.
#[derive(Deserialize, JsonSchema, Clone)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Parameter whose weight matrix is probed (a state_dict name such as `layers.3.weight`).
    /// Default: the layer with the lowest validation loss.
    layer: Option<String>,
    /// One expert per discovered model tree, with a router.
    experts: bool,
    /// Head of label targets (regression always has a linear one).
    head: HeadKind,
    /// Probe vectors (columns of U).
    #[schemars(range(min = 1))]
    probes: usize,
    /// Width of the shared projection of each probe response.
    #[schemars(range(min = 1))]
    projection: usize,
    /// Width of the model representation.
    #[schemars(range(min = 1))]
    representation: usize,
    /// Adam steps (full batch).
    #[schemars(range(min = 1))]
    steps: usize,
    /// Adam steps per candidate layer when choosing the layer on validation models.
    select_steps: usize,
    lr: f32,
    weight_decay: f32,
    /// Adam steps of each expert, starting from the probe fitted on all trees.
    expert_steps: usize,
    /// Where each tree expert starts: `shared` (the probe fitted on every tree, fine-tuned on
    /// its own tree) or `scratch` (its own tree only, as the paper).
    expert_init: ExpertInit,
    /// Trees with fewer training models than this share the single probe instead of an expert.
    min_expert_models: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            layer: None,
            experts: false,
            head: Default::default(),
            probes: 16,
            projection: 32,
            representation: 64,
            steps: 400,
            select_steps: 150,
            lr: 3e-3,
            weight_decay: 1e-3,
            expert_steps: 200,
            expert_init: Default::default(),
            min_expert_models: 6,
        }
    }
}

/// Scale of cosine scores in the embedding head (a fixed temperature of 0.1).
const COSINE_SCALE: f32 = 10.0;

/// One ProbeX model on one layer.
struct Expert {
    u: Tensor,
    projection: nn::Linear,
    representation: nn::Linear,
    head: nn::Linear,
    /// Learned offset of embedding-head scores (one for all labels, so unseen ones get it too).
    bias: Tensor,
    inputs: Standardize,
    /// Regression targets are learned standardised.
    targets: Option<Standardize>,
    embedded: bool,
}

impl Expert {
    /// `x`: models × out × in (standardised).
    fn represent(&self, x: &Tensor) -> Tensor {
        let models = x.shape()[0];
        let responses = x.matmul(&self.u).transpose(1, 2); // models × r × out
        let projected = self.projection.forward(&responses).relu(); // models × r × projection
        self.representation.forward(&projected.reshape(&[models as i64, -1])).relu()
    }

    /// Scores or values for `x` (standardised), against `embeddings` (labels × dim) if embedded.
    fn forward(&self, x: &Tensor, embeddings: Option<&Tensor>) -> Tensor {
        let z = self.head.forward(&self.represent(x));
        match embeddings.filter(|_| self.embedded) {
            Some(e) => unit_rows(&z).matmul(&unit_rows(e).transpose(0, 1)) * COSINE_SCALE + &self.bias,
            None => z,
        }
    }

    /// A fresh expert for `x` (models × out × in) and `labels`, with its standardisations
    /// fitted on them; untrained.
    fn new(x: &Tensor, labels: &Tensor, target: &Target, embeddings: Option<&Tensor>, c: &Config, seed: u64) -> Self {
        let shape = x.shape();
        let (out, inp) = (shape[1], shape[2]);
        let outputs = match embeddings {
            Some(e) => e.shape()[1],
            None => probing::outputs(target),
        };
        Expert {
            u: (Tensor::randn(&[inp, c.probes], seed) * (1.0 / (inp as f32).sqrt())).parameter(),
            projection: nn::Linear::new(out, c.projection, seed + 1),
            representation: nn::Linear::new(c.probes * c.projection, c.representation, seed + 2),
            head: nn::Linear::new(c.representation, outputs, seed + 3),
            bias: Tensor::zeros(&[1]).parameter(),
            inputs: Standardize::fit(x),
            targets: (target.kind == TargetKind::Regression).then(|| Standardize::fit(labels)),
            embedded: embeddings.is_some(),
        }
    }

    /// A copy with its own parameters (same values, fresh leaves), to fine-tune.
    fn copy(&self) -> Self {
        let p = |t: &Tensor| t.detach().parameter();
        let linear = |l: &nn::Linear| nn::Linear { weight: p(&l.weight), bias: p(&l.bias) };
        Expert {
            u: p(&self.u),
            projection: linear(&self.projection),
            representation: linear(&self.representation),
            head: linear(&self.head),
            bias: p(&self.bias),
            inputs: self.inputs.clone(),
            targets: self.targets.clone(),
            embedded: self.embedded,
        }
    }

    /// Trains on `x` and `labels` for `steps` full-batch AdamW steps; returns the last loss.
    #[allow(clippy::too_many_arguments)]
    fn train(&self, x: &Tensor, labels: &Tensor, target: &Target, embeddings: Option<&Tensor>, c: &Config, steps: usize, progress: (usize, usize)) -> f32 {
        let xs = self.inputs.apply(x);
        let ys = self.targets.as_ref().map_or_else(|| labels.clone(), |t| t.apply(labels));
        let mut params = vec![&self.u, &self.bias];
        params.extend(self.projection.params());
        params.extend(self.representation.params());
        params.extend(self.head.params());
        probing::train(&params, steps, c.lr, c.weight_decay, progress, |_| probing::loss(target.kind, &self.forward(&xs, embeddings), &ys))
    }

    #[allow(clippy::too_many_arguments)]
    fn fit(x: &Tensor, labels: &Tensor, target: &Target, embeddings: Option<&Tensor>, c: &Config, steps: usize, seed: u64, progress: (usize, usize)) -> (Self, f32) {
        let expert = Expert::new(x, labels, target, embeddings, c, seed);
        let loss = expert.train(x, labels, target, embeddings, c, steps, progress);
        (expert, loss)
    }

    fn predict(&self, x: &Tensor, embeddings: Option<&Tensor>) -> Tensor {
        let out = self.forward(&self.inputs.apply(x), embeddings).detach();
        match &self.targets {
            Some(t) => t.invert(&out),
            None => out,
        }
    }
}

fn unit_rows(x: &Tensor) -> Tensor {
    x / &x.square().sum(1, true).sqrt().clamp(1e-6, f32::MAX)
}

struct ProbeX {
    layer: LayerSlice,
    /// The single probe, or the fallback of small trees.
    global: Expert,
    /// (tree centre over all parameters, expert) per tree with its own expert.
    experts: Vec<(Tensor, Expert)>,
    /// Tree centres of trees without an expert (routed to `global`).
    others: Vec<Tensor>,
    embeddings: Option<Tensor>,
}

/// Rows `rows` of `x` (dimension 0).
fn rows_of(x: &Tensor, rows: &[usize]) -> Tensor {
    let index: Vec<f32> = rows.iter().map(|&r| r as f32).collect();
    x.index_select(0, &Tensor::from_slice(&index, &[rows.len()]))
}

/// Picks the layer with the lowest validation loss: a fifth of the training models (at least
/// two) are held back, a short ProbeX fits on the rest of each candidate layer.
fn choose_layer(zoo: &Zoo, weights: &Tensor, labels: &Tensor, target: &Target, embeddings: Option<&Tensor>, c: &Config, seed: u64) -> Result<String, String> {
    let candidates = probing::matrix_layers(&zoo.layout);
    if candidates.is_empty() {
        return Err("the layout has no weight matrix to probe".into());
    }
    let n = weights.shape()[0];
    let order: Vec<usize> = Tensor::randperm(n, seed ^ 0x5E1E_C7).to_vec().iter().map(|&v| v as usize).collect();
    let held = (n / 5).max(2).min(n.saturating_sub(2));
    let (val, fit) = order.split_at(held);
    let total = candidates.len() * c.select_steps;
    let mut best: Option<(f32, String)> = None;
    for (i, layer) in candidates.iter().enumerate() {
        let x = probing::layer_matrix(zoo, weights, layer).ok_or_else(|| format!("`{layer}` is not a weight matrix"))?;
        let (expert, _) = Expert::fit(&rows_of(&x, fit), &rows_of(labels, fit), target, embeddings, c, c.select_steps, seed + 10, (i * c.select_steps, total));
        let xv = expert.inputs.apply(&rows_of(&x, val));
        let yv = rows_of(labels, val);
        let yv = expert.targets.as_ref().map_or(yv.clone(), |t| t.apply(&yv));
        let loss = probing::loss(target.kind, &expert.forward(&xv, embeddings), &yv).item();
        log::message(&format!("layer {layer}: validation loss {loss:.4}"));
        if best.as_ref().is_none_or(|(b, _)| loss < *b) {
            best = Some((loss, layer.clone()));
        }
    }
    best.map(|(_, l)| l).ok_or_else(|| "no layer could be scored".into())
}

impl Probe for ProbeX {
    type Config = Config;

    fn describe() -> About {
        About::probe(
            "probex",
            env!("CARGO_PKG_VERSION"),
            "ProbeX: learned probe vectors on one layer's weight matrix, a shared projection and a task head; optionally one expert per discovered model tree with a router (Horwitz et al. 2025).",
        )
    }

    fn check(zoo: &ZooPlan, _target: &Target, c: &Config) -> Vec<Problem> {
        let mut problems = Vec::new();
        let matrices = probing::matrix_layers(&zoo.layout);
        if let Some(l) = c.layer.as_ref().filter(|l| !matrices.contains(l)) {
            problems.push(Problem::at("layer", format!("`{l}` is not a weight matrix of zoo `{}`; its matrices: {}", zoo.name, matrices.join(", "))));
        }
        if matrices.is_empty() {
            problems.push(Problem::config(format!("zoo `{}` has no weight matrix to probe", zoo.name)));
        }
        if let Some(n) = zoo.checkpoints.filter(|&n| n < 4) {
            problems.push(Problem::config(format!("{n} training models are too few to fit a probe (at least 4)")));
        }
        problems
    }

    fn fit(zoo: &Zoo, weights: Tensor, labels: Tensor, target: &Target, label_embeddings: Option<Tensor>, c: Config, seed: u64) -> Result<Self, String> {
        if c.probes == 0 || c.projection == 0 || c.representation == 0 || c.steps == 0 {
            return Err("probes, projection, representation and steps must be positive".into());
        }
        let n = weights.shape()[0];
        if n < 4 {
            return Err(format!("{n} training models are too few to fit a probe"));
        }
        // Without text embeddings, labels get an axis each (one-hot) and the same cosine head
        // scores them, unless `head = "linear"`.
        let label_embeddings = match label_embeddings {
            None if c.head == HeadKind::Cosine && target.kind != TargetKind::Regression => {
                let n = target.labels.len();
                let eye: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
                Some(Tensor::from_slice(&eye, &[n, n]))
            }
            given => given,
        };
        let embeddings = label_embeddings.as_ref();
        let layer = match &c.layer {
            Some(l) => {
                if probing::layer_matrix(zoo, &weights, l).is_none() {
                    return Err(format!("`layer = \"{l}\"` is not a weight matrix of this zoo; matrices: {}", probing::matrix_layers(&zoo.layout).join(", ")));
                }
                l.clone()
            }
            None => choose_layer(zoo, &weights, &labels, target, embeddings, &c, seed)?,
        };
        log::message(&format!("probing layer {layer}"));
        let slice = LayerSlice::find(zoo, &layer).ok_or_else(|| format!("`{layer}` is not a weight matrix"))?;
        let x = slice.take(&weights);
        let (global, loss) = Expert::fit(&x, &labels, target, embeddings, &c, c.steps, seed, (0, c.steps));
        log::metric("train-loss", c.steps, loss);
        let mut experts = Vec::new();
        let mut others = Vec::new();
        if c.experts {
            let trees = probing::discover_trees(&weights);
            let count = trees.iter().max().map_or(0, |m| m + 1);
            log::message(&format!("experts: {count} trees found among {n} training models"));
            log::metric("trees", 0, count as f32);
            for t in 0..count {
                let members: Vec<usize> = (0..n).filter(|&i| trees[i] == t).collect();
                let centre = rows_of(&weights, &members).mean(0, true);
                if members.len() < c.min_expert_models || count == 1 {
                    others.push(centre);
                    continue;
                }
                let (xs, ys) = (rows_of(&x, &members), rows_of(&labels, &members));
                let (expert, steps, loss) = match c.expert_init {
                    // From the probe fitted on every tree, specialised on its own: it keeps what
                    // all trees share and needs fewer models of its own.
                    ExpertInit::Shared => {
                        let expert = global.copy();
                        let loss = expert.train(&xs, &ys, target, embeddings, &c, c.expert_steps, (0, c.expert_steps));
                        (expert, c.expert_steps, loss)
                    }
                    // The paper's: its own tree only, from a fresh start.
                    ExpertInit::Scratch => {
                        let (expert, loss) = Expert::fit(&xs, &ys, target, embeddings, &c, c.steps, seed.wrapping_add(1_000 + t as u64), (0, c.steps));
                        (expert, c.steps, loss)
                    }
                };
                log::metric(&format!("expert-{t}-train-loss"), steps, loss);
                experts.push((centre, expert));
            }
        }
        Ok(ProbeX { layer: slice, global, experts, others, embeddings: label_embeddings })
    }

    fn predict(&mut self, weights: Tensor, label_embeddings: Option<Tensor>) -> Result<Tensor, String> {
        let models = weights.shape()[0];
        let embeddings = label_embeddings.as_ref().or(self.embeddings.as_ref());
        let x = self.layer.take(&weights);
        let global = self.global.predict(&x, embeddings);
        if self.experts.is_empty() {
            return Ok(global);
        }
        // Route each model to the nearest tree centre; trees without an expert use the global probe.
        let centres: Vec<&Tensor> = self.experts.iter().map(|(c, _)| c).chain(self.others.iter()).collect();
        let centre_matrix = Tensor::cat(&centres, 0);
        let d = (weights.unsqueeze(1) - centre_matrix.unsqueeze(0)).square().sum(2, false); // models × trees
        let route: Vec<usize> = (d * -1.0).argmax(1).to_vec().iter().map(|&v| v as usize).collect();
        let mut out = global.clone();
        for (t, (_, expert)) in self.experts.iter().enumerate() {
            let mask: Vec<f32> = route.iter().map(|&r| if r == t { 1.0 } else { 0.0 }).collect();
            let mask = Tensor::from_slice(&mask, &[models, 1]);
            let prediction = expert.predict(&x, embeddings);
            out = &out + &(&mask * &(prediction - &out));
        }
        Ok(out)
    }
}

weightlab_sdk::export_probe!(ProbeX);
