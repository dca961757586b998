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
pub fn train_zoo(arch: &Arch, data: &Dataset, spec: &ZooSpec, progress: Option<&ProgressBar>) -> Zoo {
    let split = spec.split();
    let p = arch.layout().len();
    let mut kept: Vec<(Checkpoint, Vec<f32>)> = Vec::new();
    for start in (0..spec.models).step_by(MODELS_PER_BATCH) {
        let ids: Vec<usize> = (start..spec.models.min(start + MODELS_PER_BATCH)).collect();
        let seeds: Vec<u64> = ids.iter().map(|&i| model_seed(spec.seed, i)).collect();
        for (epoch, flat) in train_models(arch, data, &spec.train, &seeds, spec.keep.last_epochs, progress) {
            for (j, &model) in ids.iter().enumerate() {
                let checkpoint = Checkpoint {
                    model,
                    seed: seeds[j],
                    epoch,
                    side: if model < split.train { Side::Train } else { Side::Heldout },
                    train_loss: f32::NAN,
                    train_accuracy: None,
                    test_loss: f32::NAN,
                    test_accuracy: None,
                    parent: None,
                    file: super::store::checkpoint_file(model, epoch),
                };
                kept.push((checkpoint, flat[j * p..(j + 1) * p].to_vec()));
            }
        }
    }
    // Stable order: by model, then epoch.
    kept.sort_by_key(|(c, _)| (c.model, c.epoch));
    let (checkpoints, weights): (Vec<Checkpoint>, Vec<Vec<f32>>) = kept.into_iter().unzip();
    let mut zoo = Zoo { arch: arch.clone(), checkpoints, weights: weights.concat() };
    score_checkpoints(&mut zoo, data);
    zoo
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
    let device = device::cpu();
    let k = seeds.len();
    let p = arch.layout().len();
    let mut rngs: Vec<ChaCha8Rng> = seeds.iter().map(|&s| ChaCha8Rng::seed_from_u64(s)).collect();
    let init: Vec<f32> = rngs.iter_mut().flat_map(|rng| arch.init(rng)).collect();

    let train = DeviceSplit::new(&data.train, data.features(), data.task, &device);
    let n = train.len;
    let b = recipe.batch_size.min(n).max(1);
    let steps = (n / b).max(1);

    let mut params: Tensor<2> = Tensor::from_data(TensorData::new(init, [k, p]), &device);
    let mut adam = match recipe.optimizer {
        Optimizer::Adam => Some((params.zeros_like(), params.zeros_like())),
        Optimizer::Sgd => None,
    };
    let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    let mut t = 0i32;
    let mut kept = Vec::new();
    let mut order: Vec<Vec<i64>> = vec![(0..n as i64).collect(); k];
    for epoch in 1..=recipe.epochs {
        for (m, rng) in rngs.iter_mut().enumerate() {
            order[m].shuffle(rng);
        }
        for step in 0..steps {
            let indices: Vec<i64> = order.iter().flat_map(|o| o[step * b..(step + 1) * b].iter().copied()).collect();
            let (x, targets) = train.gather(&indices, k, &device);
            let tracked = params.clone().autodiff().require_grad();
            let loss = per_model_loss(arch.forward(&tracked, x), &targets).sum();
            let grads = loss.backward();
            let mut g = tracked.grad(&grads).expect("parameters require grad");
            if recipe.weight_decay > 0.0 {
                g = g + params.clone() * recipe.weight_decay;
            }
            t += 1;
            params = match adam.as_mut() {
                Some((m1, m2)) => {
                    *m1 = m1.clone() * beta1 + g.clone() * (1.0 - beta1);
                    *m2 = m2.clone() * beta2 + g.clone() * g * (1.0 - beta2);
                    let step_size = recipe.lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
                    params - m1.clone() * step_size / (m2.clone().sqrt() + eps * (1.0 - beta2.powi(t)).sqrt())
                }
                None => params - g * recipe.lr,
            };
        }
        if epoch + keep_epochs > recipe.epochs {
            let flat = params.to_data().try_into_vec::<f32>().expect("f32 parameters");
            kept.push((epoch, flat));
        }
        if let Some(pb) = progress {
            pb.inc(k as u64);
        }
    }
    kept
}
