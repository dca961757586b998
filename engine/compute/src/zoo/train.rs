//! Batched zoo training: K models of one architecture train as one computation. Parameters are
//! one (K × P) tensor; each step gathers a different batch for every model (its own seeded
//! order), runs the batched forward pass, sums the K per-model mean losses (so each model's
//! gradient is exactly its own) and applies Adam or SGD to the whole tensor at once.

use burn::tensor::{Tensor, TensorData};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use weightlab_manifest::{Optimizer, TrainSpec, ZooSpec};

use super::batch::{DeviceSplit, per_model_loss};
use super::{Checkpoint, Side, Zoo, model_seed};
use crate::arch::Arch;
use crate::data::Dataset;
use crate::device;
use crate::eval;

/// Models trained together in one batched computation.
pub const MODELS_PER_BATCH: usize = 64;

/// Trains the zoo `spec` describes on `data`. `progress` (if any) advances by one per model-epoch.
/// Fails only when `continue.params` names no parameter of the architecture.
pub fn train_zoo(arch: &Arch, data: &Dataset, spec: &ZooSpec, progress: Option<&ProgressBar>) -> Result<Zoo, String> {
    let split = spec.split();
    let p = arch.layout().len();
    let mut kept: Vec<(Checkpoint, Vec<f32>)> = Vec::new();
    for start in (0..spec.models).step_by(MODELS_PER_BATCH) {
        let ids: Vec<usize> = (start..spec.models.min(start + MODELS_PER_BATCH)).collect();
        let seeds: Vec<u64> = ids.iter().map(|&i| model_seed(spec.seed, i)).collect();
        let mut trainer = Trainer::new(arch, data, &spec.train, &seeds);
        let mut snapshots: Vec<(usize, usize, Vec<f32>)> = Vec::new();
        for epoch in 1..=spec.train.epochs {
            trainer.epoch();
            let keep_epoch = spec.continuation.is_none() && epoch + spec.keep.last_epochs > spec.train.epochs;
            if keep_epoch {
                snapshots.push((epoch, 0, trainer.weights()));
            }
            if let Some(pb) = progress {
                pb.inc(ids.len() as u64);
            }
        }
        if let Some(c) = &spec.continuation {
            trainer.freeze_except(&c.params)?;
            trainer.restart_optimizer(c.lr.unwrap_or(spec.train.lr));
            for step in 1..=c.steps {
                trainer.step();
                if step % c.keep_every == 0 {
                    snapshots.push((spec.train.epochs, step, trainer.weights()));
                }
            }
        }
        for (epoch, step, flat) in snapshots {
            for (j, &model) in ids.iter().enumerate() {
                let checkpoint = Checkpoint {
                    model,
                    seed: seeds[j],
                    epoch,
                    step,
                    side: if model < split.train { Side::Train } else { Side::Heldout },
                    train_loss: f32::NAN,
                    train_accuracy: None,
                    test_loss: f32::NAN,
                    test_accuracy: None,
                    parent: None,
                    file: super::store::checkpoint_file(model, epoch, step),
                };
                kept.push((checkpoint, flat[j * p..(j + 1) * p].to_vec()));
            }
        }
    }
    // Stable order: by model, then epoch, then step.
    kept.sort_by_key(|(c, _)| (c.model, c.epoch, c.step));
    let (checkpoints, weights): (Vec<Checkpoint>, Vec<Vec<f32>>) = kept.into_iter().unzip();
    let mut zoo = Zoo { arch: arch.clone(), checkpoints, weights: weights.concat() };
    score_checkpoints(&mut zoo, data);
    Ok(zoo)
}

/// Fills in every checkpoint's train and test loss and accuracy (batched evaluation).
pub fn score_checkpoints(zoo: &mut Zoo, data: &Dataset) {
    let train = eval::evaluate(&zoo.arch, data, &data.train, &zoo.weights);
    let test = eval::evaluate(&zoo.arch, data, &data.test, &zoo.weights);
    for ((c, tr), te) in zoo.checkpoints.iter_mut().zip(train).zip(test) {
        c.train_loss = tr.loss;
        c.train_accuracy = tr.accuracy;
        c.test_loss = te.loss;
        c.test_accuracy = te.accuracy;
    }
}

/// Trains one batch of models (one per seed) and returns, for each of the last `keep_epochs`
/// epochs, (epoch, weights of all models stacked K × P).
pub fn train_models(arch: &Arch, data: &Dataset, recipe: &TrainSpec, seeds: &[u64], keep_epochs: usize, progress: Option<&ProgressBar>) -> Vec<(usize, Vec<f32>)> {
    let mut trainer = Trainer::new(arch, data, recipe, seeds);
    let mut kept = Vec::new();
    for epoch in 1..=recipe.epochs {
        trainer.epoch();
        if epoch + keep_epochs > recipe.epochs {
            kept.push((epoch, trainer.weights()));
        }
        if let Some(pb) = progress {
            pb.inc(seeds.len() as u64);
        }
    }
    kept
}

/// K models in training: their stacked parameters, optimizer state and data order.
pub struct Trainer<'a> {
    arch: &'a Arch,
    device: burn::tensor::Device,
    train: DeviceSplit,
    k: usize,
    batch: usize,
    rngs: Vec<ChaCha8Rng>,
    /// Each model's order of the training examples, reshuffled every epoch.
    order: Vec<Vec<i64>>,
    /// Position in the current epoch's order.
    cursor: usize,
    params: Tensor<2>,
    adam: Option<(Tensor<2>, Tensor<2>)>,
    t: i32,
    lr: f64,
    weight_decay: f64,
    /// 1 for parameters that train, 0 for frozen ones (continued training).
    mask: Option<Tensor<2>>,
}

impl<'a> Trainer<'a> {
    /// K freshly initialised models, one per seed (PyTorch's default initialisation).
    pub fn new(arch: &'a Arch, data: &Dataset, recipe: &TrainSpec, seeds: &[u64]) -> Self {
        let device = device::cpu();
        let k = seeds.len();
        let p = arch.layout().len();
        let mut rngs: Vec<ChaCha8Rng> = seeds.iter().map(|&s| ChaCha8Rng::seed_from_u64(s)).collect();
        let init: Vec<f32> = rngs.iter_mut().flat_map(|rng| arch.init(rng)).collect();
        let train = DeviceSplit::new(&data.train, data.features(), data.task, &device);
        let n = train.len;
        let params: Tensor<2> = Tensor::from_data(TensorData::new(init, [k, p]), &device);
        let adam = match recipe.optimizer {
            Optimizer::Adam => Some((params.zeros_like(), params.zeros_like())),
            Optimizer::Sgd => None,
        };
        Trainer {
            arch,
            device,
            batch: recipe.batch_size.min(n).max(1),
            order: vec![(0..n as i64).collect(); k],
            cursor: usize::MAX,
            train,
            k,
            rngs,
            params,
            adam,
            t: 0,
            lr: recipe.lr,
            weight_decay: recipe.weight_decay,
            mask: None,
        }
    }

    /// One pass over the training data (whole batches).
    pub fn epoch(&mut self) {
        self.reshuffle();
        for _ in 0..(self.train.len / self.batch).max(1) {
            self.step();
        }
    }

    fn reshuffle(&mut self) {
        for (o, rng) in self.order.iter_mut().zip(self.rngs.iter_mut()) {
            o.shuffle(rng);
        }
        self.cursor = 0;
    }

    /// One optimizer step on the next batch of every model.
    pub fn step(&mut self) {
        if self.cursor == usize::MAX || self.cursor + self.batch > self.train.len {
            self.reshuffle();
        }
        let (from, to) = (self.cursor, self.cursor + self.batch);
        self.cursor = to;
        let indices: Vec<i64> = self.order.iter().flat_map(|o| o[from..to].iter().copied()).collect();
        let (x, targets) = self.train.gather(&indices, self.k, &self.device);
        let tracked = self.params.clone().autodiff().require_grad();
        let loss = per_model_loss(self.arch.forward(&tracked, x), &targets).sum();
        let grads = loss.backward();
        let mut g = tracked.grad(&grads).expect("parameters require grad");
        if self.weight_decay > 0.0 {
            g = g + self.params.clone() * self.weight_decay;
        }
        if let Some(mask) = &self.mask {
            g = g * mask.clone();
        }
        self.t += 1;
        let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let params = self.params.clone();
        self.params = match self.adam.as_mut() {
            Some((m1, m2)) => {
                *m1 = m1.clone() * beta1 + g.clone() * (1.0 - beta1);
                *m2 = m2.clone() * beta2 + g.clone() * g * (1.0 - beta2);
                let step_size = self.lr * (1.0 - beta2.powi(self.t)).sqrt() / (1.0 - beta1.powi(self.t));
                params - m1.clone() * step_size / (m2.clone().sqrt() + eps * (1.0 - beta2.powi(self.t)).sqrt())
            }
            None => params - g * self.lr,
        };
    }

    /// From now on only parameters whose names start with one of `prefixes` change.
    pub fn freeze_except(&mut self, prefixes: &[String]) -> Result<(), String> {
        let layout = self.arch.layout();
        let mut mask = vec![0.0f32; layout.len()];
        for pre in prefixes {
            let matching: Vec<_> = layout.params.iter().filter(|p| p.name.starts_with(pre.as_str())).collect();
            if matching.is_empty() {
                let names: Vec<&str> = layout.params.iter().map(|p| p.name.as_str()).collect();
                return Err(format!("`continue.params`: `{pre}` names no parameter; the architecture has {}", names.join(", ")));
            }
            for p in matching {
                mask[p.range()].iter_mut().for_each(|m| *m = 1.0);
            }
        }
        self.mask = Some(Tensor::from_data(TensorData::new(mask, [1, layout.len()]), &self.device));
        Ok(())
    }

    /// Fresh optimizer state (continued training starts its own Adam), with learning rate `lr`.
    pub fn restart_optimizer(&mut self, lr: f64) {
        self.lr = lr;
        self.t = 0;
        if let Some((m1, m2)) = self.adam.as_mut() {
            *m1 = m1.zeros_like();
            *m2 = m2.zeros_like();
        }
    }

    /// The K models' weights now, stacked (K × P).
    pub fn weights(&self) -> Vec<f32> {
        self.params.to_data().try_into_vec::<f32>().expect("f32 parameters")
    }
}
