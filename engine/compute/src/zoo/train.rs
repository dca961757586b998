//! Batched zoo training: K models of one architecture train as one computation. Parameters are
//! one (K × P) tensor; each step gathers a different batch for every model (its own seeded
//! order), runs the batched forward pass, sums the K per-model mean losses (so each model's
//! gradient is exactly its own) and applies Adam or SGD to the whole tensor at once.

use burn::tensor::{Tensor, TensorData};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use weightlab_manifest::{Optimizer, TrainSpec, ZooSpec, ZooUnit};

use super::batch::{DeviceSplit, per_model_loss};
use super::{Checkpoint, Side, Zoo, model_seed};
use crate::arch::Arch;
use crate::data::Dataset;
use crate::device;
use crate::eval;

/// Models trained together in one batched computation (a zoo's unit of work).
pub const MODELS_PER_BATCH: usize = weightlab_manifest::MODELS_PER_UNIT;

/// Trains the zoo `spec` describes on `data`, unit after unit ([`train_unit`], then
/// [`assemble`]). `progress` (if any) advances by one per model-epoch. Fails only when
/// `continue.params` names no parameter of the architecture or a tree child has no data.
///
/// On a many-shape dataset (`data.groups > 1`) model i learns shape i mod groups. With
/// `spec.tree`, the zoo is a model tree: roots pre-trained on everything, then children
/// fine-tuned from them on class subsets.
pub fn train_zoo(arch: &Arch, data: &Dataset, spec: &ZooSpec, progress: Option<&ProgressBar>) -> Result<Zoo, String> {
    let mut parts: Vec<Zoo> = Vec::new();
    for unit in spec.units() {
        let roots: Vec<&Zoo> = if unit.needs_roots() { parts.iter().filter(|p| p.checkpoints.iter().all(|c| c.parent.is_none())).collect() } else { Vec::new() };
        let part = train_unit(arch, data, spec, &unit, &roots, progress)?;
        parts.push(part);
    }
    Ok(assemble(arch, spec, parts))
}

/// Trains one unit of work of the zoo (see [`ZooSpec::units`]) and scores its checkpoints: a
/// zoo of its own, in training order. A tree's children need the units holding the roots
/// (`roots`, in any order). The result depends only on the spec and the unit, never on what
/// else runs, so units can be trained on different machines and put together with
/// [`assemble`].
pub fn train_unit(arch: &Arch, data: &Dataset, spec: &ZooSpec, unit: &ZooUnit, roots: &[&Zoo], progress: Option<&ProgressBar>) -> Result<Zoo, String> {
    // Refused before anything is allocated: a network too large for the machine fails here,
    // with its sizes, rather than aborting the engine (`crate::memory`).
    let needs = unit_memory(arch, spec, unit);
    if let Some(why) = crate::memory::refuse(needs.bytes()) {
        return Err(format!(
            "training {} model(s) of {} parameters at once {why} (weights, gradients, optimiser state and {} kept checkpoint(s) per model, and a batch of {} examples' activations): declare a smaller network",
            needs.models, needs.parameters, needs.kept, needs.batch
        ));
    }
    let kept = match unit {
        ZooUnit::Models { start, end } => train_models_unit(arch, data, spec, *start..*end, progress)?,
        ZooUnit::Children { ids, lr, epochs } => {
            let tree = spec.tree.as_ref().ok_or("children need a `tree`")?;
            // Roots were trained as models 0..roots; their last epoch is what children start from.
            let root_weights = (0..tree.roots)
                .map(|r| {
                    roots
                        .iter()
                        .find_map(|z| z.checkpoints.iter().position(|c| c.model == r && c.epoch == spec.train.epochs).map(|i| z.weights_of(i).to_vec()))
                        .ok_or_else(|| format!("root {r} of the tree has not been trained"))
                })
                .collect::<Result<Vec<_>, String>>()?;
            train_children(arch, data, spec, tree, ids, *lr, *epochs, &root_weights, progress)?
        }
    };
    let (checkpoints, weights): (Vec<Checkpoint>, Vec<Vec<f32>>) = kept.into_iter().unzip();
    let mut zoo = Zoo { arch: arch.clone(), checkpoints, weights: weights.concat() };
    if let Some(why) = diverged(&zoo) {
        let lr = match unit {
            ZooUnit::Models { .. } => spec.train.lr,
            ZooUnit::Children { lr, .. } => *lr,
        };
        let lr = if (1e-4..1e6).contains(&lr.abs()) { lr.to_string() } else { format!("{lr:e}") };
        return Err(format!("{why}: lower the learning rate (now {lr}) or check the data — methods and metrics need finite weights"));
    }
    score_checkpoints(&mut zoo, data);
    Ok(zoo)
}

/// Which models of `zoo` hold a NaN or infinite weight, and from which checkpoint on: such a
/// zoo fails its stage here rather than every method that reads it later.
pub fn diverged(zoo: &Zoo) -> Option<String> {
    let mut first: std::collections::BTreeMap<usize, &Checkpoint> = std::collections::BTreeMap::new();
    for (i, c) in zoo.checkpoints.iter().enumerate() {
        if zoo.weights_of(i).iter().any(|v| !v.is_finite()) {
            first
                .entry(c.model)
                .and_modify(|f| {
                    if (c.epoch, c.step) < (f.epoch, f.step) {
                        *f = c
                    }
                })
                .or_insert(c);
        }
    }
    if first.is_empty() {
        return None;
    }
    let models = zoo.checkpoints.iter().map(|c| c.model).collect::<std::collections::BTreeSet<_>>().len();
    let named: Vec<String> = first.values().take(5).map(|c| if c.step > 0 { format!("model {} from step {}", c.model, c.step) } else { format!("model {} from epoch {}", c.model, c.epoch) }).collect();
    let more = if first.len() > named.len() { format!(", and {} more", first.len() - named.len()) } else { String::new() };
    Some(format!("{} of {models} model(s) diverged — their weights hold NaN or infinite values ({}{more})", first.len(), named.join(", ")))
}

/// Checkpoints of each model zoo `spec` keeps.
fn kept_per_model(spec: &ZooSpec) -> usize {
    let kept = match &spec.continuation {
        Some(c) => c.steps / c.keep_every.max(1),
        None => spec.keep.last_epochs.min(spec.train.epochs),
    };
    kept.max(1)
}

/// What training `unit` of zoo `spec` holds in memory at once.
fn unit_memory(arch: &Arch, spec: &ZooSpec, unit: &ZooUnit) -> crate::memory::Training {
    crate::memory::Training { models: unit.len(), parameters: arch.layout().len(), kept: kept_per_model(spec), batch: spec.train.batch_size, activations: arch.activations() }
}

/// Why this machine cannot put trained zoo `spec` together — its parts' checkpoints and the
/// assembled zoo, both in memory — when it cannot (`crate::memory`).
pub fn refuse_assembly(arch: &Arch, spec: &ZooSpec) -> Option<String> {
    let checkpoints = models_trained(spec).saturating_mul(kept_per_model(spec));
    let parameters = arch.layout().len();
    let bytes = (checkpoints as u64).saturating_mul(parameters as u64).saturating_mul(4 * 2);
    crate::memory::refuse(bytes).map(|why| format!("putting its {checkpoints} checkpoints of {parameters} parameters together {why}: train fewer models or keep fewer checkpoints"))
}

/// Puts a zoo's trained units together: a tree's roots get side `root` and ids after the
/// children (so child ids `0..models` and the split keep their meaning); checkpoints are
/// ordered by model, then epoch, then step.
pub fn assemble(arch: &Arch, spec: &ZooSpec, parts: Vec<Zoo>) -> Zoo {
    let p = arch.layout().len();
    let mut kept: Vec<(Checkpoint, &[f32])> = Vec::new();
    for part in &parts {
        for (c, w) in part.checkpoints.iter().zip(part.weights.chunks_exact(p)) {
            let mut c = c.clone();
            if spec.tree.is_some() && c.parent.is_none() {
                c.side = Side::Root;
                c.model += spec.models;
                c.file = super::store::checkpoint_file(c.model, c.epoch, c.step);
            }
            kept.push((c, w));
        }
    }
    kept.sort_by_key(|(c, _)| (c.model, c.epoch, c.step));
    let weights = kept.iter().flat_map(|(_, w)| w.iter().copied()).collect();
    Zoo { arch: arch.clone(), checkpoints: kept.into_iter().map(|(c, _)| c).collect(), weights }
}

/// Trains models `ids` from scratch (a tree's roots `ids`) as one batch, with the zoo's
/// recipe and `continue` phase; returns the checkpoints it keeps, unscored.
fn train_models_unit(arch: &Arch, data: &Dataset, spec: &ZooSpec, ids: std::ops::Range<usize>, progress: Option<&ProgressBar>) -> Result<Vec<(Checkpoint, Vec<f32>)>, String> {
    let split = spec.split();
    let ids: Vec<usize> = ids.collect();
    let seeds: Vec<u64> = ids.iter().map(|&i| model_seed(spec.seed, i)).collect();
    let pools: Vec<Vec<i64>> = ids.iter().map(|&i| group_pool(data, i)).collect();
    let mut trainer = Trainer::with_pools(arch, data, &spec.train, &seeds, pools);
    if spec.shared_init {
        let first = arch.init(&mut ChaCha8Rng::seed_from_u64(model_seed(spec.seed, 0)));
        trainer.set_weights(first.repeat(ids.len()));
    }
    let mut snapshots: Vec<(usize, usize, Vec<f32>)> = Vec::new();
    for epoch in 1..=spec.train.epochs {
        trainer.epoch();
        let keep_epoch = spec.continuation.is_none() && spec.tree.is_none() && epoch + spec.keep.last_epochs > spec.train.epochs;
        if keep_epoch || (spec.tree.is_some() && epoch == spec.train.epochs) {
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
    let mut kept = Vec::new();
    for (epoch, step, flat) in snapshots {
        for (j, &model) in ids.iter().enumerate() {
            let side = match data.tasks.get(model % data.groups.max(1)) {
                // A task family splits by task: models of held-out and out-of-distribution
                // tasks are held out.
                Some(task) if task.group != crate::data::tasks::TaskGroup::Train => Side::Heldout,
                Some(_) => Side::Train,
                None if model < split.train => Side::Train,
                None => Side::Heldout,
            };
            let mut checkpoint = Checkpoint::new(model, seeds[j], epoch, step, side);
            checkpoint.task = (data.groups > 1).then_some(model % data.groups);
            kept.push((checkpoint, model_weights(&flat, j, arch)));
        }
    }
    kept.sort_by_key(|(c, _)| (c.model, c.epoch, c.step));
    Ok(kept)
}

/// Seeds dropout's stream apart from the models' own.
const DROPOUT_STREAM: u64 = 0xD50F_0A7E_D00D_0001;

/// 1 for each value of a tensor that trains (named as `trains` says, and not a buffer), 0 elsewhere.
fn trainable_mask(layout: &crate::arch::Layout, trains: impl Fn(&str) -> bool) -> Vec<f32> {
    let mut mask = vec![0.0f32; layout.len()];
    for p in layout.params.iter().filter(|p| !p.buffer && trains(&p.name)) {
        mask[p.range()].fill(1.0);
    }
    mask
}

/// Number of models `spec` trains in all (a tree's roots included), for progress bars.
pub fn models_trained(spec: &ZooSpec) -> usize {
    spec.models + spec.tree.as_ref().map_or(0, |t| t.roots)
}

/// Model-epochs of training `spec` asks for, for progress bars.
pub fn model_epochs(spec: &ZooSpec) -> usize {
    match &spec.tree {
        Some(t) => t.roots * spec.train.epochs + (0..spec.models).map(|c| t.recipe_of(c, spec.train.lr).1).sum::<usize>(),
        None => spec.models * spec.train.epochs,
    }
}

/// Training examples model `model` learns from: its shape's block on a many-shape dataset,
/// everything otherwise.
fn group_pool(data: &Dataset, model: usize) -> Vec<i64> {
    let range = data.group_range(data.train.len(), model % data.groups.max(1));
    (range.start as i64..range.end as i64).collect()
}

/// Row `j` of K stacked models.
fn model_weights(flat: &[f32], j: usize, arch: &Arch) -> Vec<f32> {
    let p = arch.layout().len();
    flat[j * p..(j + 1) * p].to_vec()
}

/// Fine-tunes tree children `ids` (all with one recipe: `lr`, `epochs`) as one batch: child c
/// starts from root c mod roots (`root_weights`) and trains on a subset of `tree.classes`
/// classes drawn with its seed. Returns their kept checkpoints, unscored, with parents (root
/// ids as [`assemble`] numbers them), classes and recipes. Fails when a child's classes have
/// no training examples.
#[allow(clippy::too_many_arguments)]
fn train_children(
    arch: &Arch,
    data: &Dataset,
    spec: &ZooSpec,
    tree: &weightlab_manifest::TreeSpec,
    ids: &[usize],
    lr: f64,
    epochs: usize,
    root_weights: &[Vec<f32>],
    progress: Option<&ProgressBar>,
) -> Result<Vec<(Checkpoint, Vec<f32>)>, String> {
    let split = spec.split();
    let classes = data.outputs();
    let mut recipe = spec.train.clone();
    recipe.epochs = epochs;
    recipe.lr = lr;
    let seeds: Vec<u64> = ids.iter().map(|&i| model_seed(spec.seed ^ TREE_STREAM, i)).collect();
    let subsets: Vec<Vec<usize>> = seeds.iter().map(|&s| class_subset(s, classes, tree.classes)).collect();
    let pools: Vec<Vec<i64>> = subsets.iter().map(|set| data.train.y.iter().enumerate().filter(|(_, y)| set.contains(&(**y as usize))).map(|(i, _)| i as i64).collect()).collect();
    if let Some(j) = pools.iter().position(Vec::is_empty) {
        return Err(format!("`tree`: child {} fine-tunes on classes {:?}, which have no training examples (raise `train_subset`)", ids[j], subsets[j]));
    }
    let mut trainer = Trainer::with_pools(arch, data, &recipe, &seeds, pools);
    trainer.set_weights(ids.iter().flat_map(|&i| root_weights[i % tree.roots].iter().copied()).collect());
    let mut children = Vec::new();
    for epoch in 1..=epochs {
        trainer.epoch();
        if epoch + spec.keep.last_epochs > epochs {
            let flat = trainer.weights();
            for (j, &model) in ids.iter().enumerate() {
                let side = if model < split.train { Side::Train } else { Side::Heldout };
                let mut c = Checkpoint::new(model, seeds[j], spec.train.epochs + epoch, 0, side);
                c.parent = Some(spec.models + model % tree.roots);
                c.classes = Some(subsets[j].clone());
                c.finetune = Some(super::Finetune { lr: recipe.lr, epochs });
                children.push((c, model_weights(&flat, j, arch)));
            }
        }
        if let Some(pb) = progress {
            pb.inc(ids.len() as u64);
        }
    }
    children.sort_by_key(|(c, _)| (c.model, c.epoch));
    Ok(children)
}

/// Seeds of tree children come from their own stream, apart from the roots'.
const TREE_STREAM: u64 = 0x7EE5_7EE5_7EE5_7EE5;

/// `n` of `classes` classes, sorted, drawn with `seed`.
fn class_subset(seed: u64, classes: usize, n: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0C1A_55E5);
    let mut all: Vec<usize> = (0..classes).collect();
    all.shuffle(&mut rng);
    let mut subset = all[..n.min(classes)].to_vec();
    subset.sort_unstable();
    subset
}

/// Fills in every checkpoint's train, validation and test loss and accuracy (batched evaluation).
/// Models of a many-shape zoo are scored on their own shape; tree children's accuracies count
/// the classes they were fine-tuned on (their losses cover the whole split).
pub fn score_checkpoints(zoo: &mut Zoo, data: &Dataset) {
    let tasks: Option<Vec<usize>> = (data.groups > 1).then(|| zoo.checkpoints.iter().map(|c| c.task.unwrap_or(c.model)).collect());
    // Each model's own task is all a checkpoint's figures need; its predictions only for a
    // tree child's accuracy on its classes.
    let own_only = zoo.checkpoints.iter().all(|c| c.classes.is_none());
    let score = |split: &crate::data::Split| {
        (!split.is_empty()).then(|| match tasks.as_deref() {
            Some(tasks) if own_only => eval::evaluate_own_groups(&zoo.arch, data, split, &zoo.weights, tasks),
            _ => eval::evaluate_on(&zoo.arch, data, split, &zoo.weights, tasks.as_deref()),
        })
    };
    let (train, validation, test) = (score(&data.train), score(&data.validation), score(&data.test));
    for (i, c) in zoo.checkpoints.iter_mut().enumerate() {
        // A tree child's accuracy counts the classes it was fine-tuned on.
        let classes = c.classes.clone();
        let figures = |scores: &Option<Vec<eval::ModelScore>>, split: &crate::data::Split| match scores.as_ref().map(|s| &s[i]) {
            Some(s) => (
                s.loss,
                match &classes {
                    Some(set) => eval::subset_accuracy(&s.predictions, &split.y, set),
                    None => s.accuracy,
                },
            ),
            None => (f32::NAN, None),
        };
        (c.train_loss, c.train_accuracy) = figures(&train, &data.train);
        (c.validation_loss, c.validation_accuracy) = figures(&validation, &data.validation);
        (c.test_loss, c.test_accuracy) = figures(&test, &data.test);
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
    /// The preset a declared network is exactly (same flat layout and function), whose native
    /// engines then train it: `[linear, relu, linear]` is an MLP with other names.
    native: Option<Arch>,
    device: burn::tensor::Device,
    k: usize,
    batch: usize,
    rngs: Vec<ChaCha8Rng>,
    /// Each model's order of its training examples (its pool), reshuffled every epoch.
    order: Vec<Vec<i64>>,
    /// Each model's position in its current order.
    cursor: Vec<usize>,
    engine: Engine<'a>,
    /// Why a declared network is not on a native engine, when it is not.
    note: Option<String>,
}

/// Why a zoo of `arch` on `data` will train on the autodiff tape on this CPU, when a declared
/// network does (a layer the native engine lacks, a regression target); `None` otherwise, and
/// on GPUs, where the tape is the fast path.
pub fn tape_reason(arch: &Arch, data: &Dataset) -> Option<String> {
    (device::tch_device() == tch::Device::Cpu).then(|| super::net::tape_reason(arch, &data.train, data.task)).flatten()
}

/// Which engines may train a zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// The fastest that applies: on the CPU the hand-written per-model engines (MLPs, CNN-s),
    /// on GPUs K-batched tensors for MLPs; the autodiff tape otherwise.
    Fastest,
    /// K-batched libtorch tensors with the backward written out for MLPs (what GPUs use, here
    /// on any device), the tape for other architectures.
    Batched,
    /// The autodiff tape for every architecture.
    Tape,
}

/// How the K models compute a step. (One per trainer, so the variants' sizes do not matter.)
#[allow(clippy::large_enum_variant)]
enum Engine<'a> {
    /// Any architecture: burn's autodiff over the flat (K × P) parameters, Adam as tensor ops.
    Tape {
        train: DeviceSplit,
        params: Tensor<2>,
        adam: Option<(Tensor<2>, Tensor<2>)>,
        t: i32,
        lr: f64,
        weight_decay: f64,
        /// 1 for parameters that train, 0 for frozen ones (continued training) and buffers
        /// (BatchNorm's running statistics, which follow the batch statistics instead).
        mask: Option<Tensor<2>>,
        /// Dropout's draws (seeded by the first model's seed, so a unit's bits are fixed).
        rng: ChaCha8Rng,
    },
    /// MLPs on the CPU: one model at a time through an epoch, products in the register-tiled
    /// kernel, the backward written out ([`super::dense`]).
    Dense(super::dense::DenseZoo<'a>),
    /// MLPs elsewhere (GPUs): per-layer K-batched tensors, the backward written out, Adam
    /// fused ([`super::mlp`]).
    Mlp { train: super::mlp::TchSplit, zoo: super::mlp::MlpZoo },
    /// CNN-s on the CPU: per-image loops written out, threads over models ([`super::cnn`]).
    Cnn(super::cnn::CnnZoo<'a>),
    /// Declared networks on the CPU: every layer's backward written out, threads over models
    /// ([`super::net`]).
    Net(super::net::NetZoo<'a>),
}

impl<'a> Trainer<'a> {
    /// K freshly initialised models, one per seed (PyTorch's default initialisation), each
    /// learning from the whole training split.
    pub fn new(arch: &'a Arch, data: &'a Dataset, recipe: &TrainSpec, seeds: &[u64]) -> Self {
        let all: Vec<i64> = (0..data.train.len() as i64).collect();
        Self::with_pools(arch, data, recipe, seeds, vec![all; seeds.len()])
    }

    /// Like [`Trainer::new`], but model j learns only from the training examples in `pools[j]`
    /// (its shape of a many-shape dataset, or its class subset in a model tree). An epoch is as
    /// many steps as the smallest pool allows.
    pub fn with_pools(arch: &'a Arch, data: &'a Dataset, recipe: &TrainSpec, seeds: &[u64], pools: Vec<Vec<i64>>) -> Self {
        Self::with_engine(arch, data, recipe, seeds, pools, EngineChoice::Fastest)
    }

    /// [`Trainer::with_pools`] with the engines `choice` allows (tests check one against
    /// another).
    pub fn with_engine(arch: &'a Arch, data: &'a Dataset, recipe: &TrainSpec, seeds: &[u64], pools: Vec<Vec<i64>>, choice: EngineChoice) -> Self {
        assert_eq!(pools.len(), seeds.len(), "one pool per model");
        let device = device::current();
        let k = seeds.len();
        let p = arch.layout().len();
        let mut rngs: Vec<ChaCha8Rng> = seeds.iter().map(|&s| ChaCha8Rng::seed_from_u64(s)).collect();
        // Sized once: collected from a `flat_map`, the K × P vector would grow by doubling.
        let mut init = Vec::with_capacity(k * p);
        for rng in &mut rngs {
            init.extend(arch.init(rng));
        }
        let n = pools.iter().map(Vec::len).min().unwrap_or(0);
        let tch_device = device::tch_device();
        let native_arch = match arch {
            Arch::Sequential(net) => net.as_mlp().map(|(sizes, activation)| Arch::Mlp { sizes, activation }),
            _ => None,
        };
        let engine_arch = native_arch.as_ref().unwrap_or(arch);
        let mlp =
            || super::mlp::MlpZoo::new(engine_arch, recipe, &init, k, tch_device).map(|zoo| Engine::Mlp { train: super::mlp::TchSplit::new(&data.train, data.features(), data.task, tch_device), zoo });
        let cpu = tch_device == tch::Device::Cpu;
        let dense = || cpu.then(|| super::dense::DenseZoo::new(engine_arch, recipe, &init, k, &data.train, data.task)).flatten().map(Engine::Dense);
        let cnn = || cpu.then(|| super::cnn::CnnZoo::new(engine_arch, recipe, &init, k, &data.train, data.task)).flatten().map(Engine::Cnn);
        // A declared network the native engine cannot take is trained on the tape; `note` says why.
        let mut note = None;
        let mut net = || match arch {
            Arch::Sequential(_) if cpu => {
                super::net::NetZoo::new(arch, recipe, &init, seeds, &data.train, data.task).map(Engine::Net).map_err(|why| note = Some(format!("trained on the autodiff tape: {why}"))).ok()
            }
            _ => None,
        };
        let native = match choice {
            EngineChoice::Fastest => dense().or_else(mlp).or_else(cnn).or_else(&mut net),
            EngineChoice::Batched => mlp(),
            EngineChoice::Tape => None,
        };
        let engine = match native {
            Some(engine) => engine,
            None => {
                let params: Tensor<2> = Tensor::from_data(TensorData::new(init, [k, p]), &device);
                let adam = match recipe.optimizer {
                    Optimizer::Adam => Some((params.zeros_like(), params.zeros_like())),
                    Optimizer::Sgd => None,
                };
                let train = DeviceSplit::new(&data.train, data.features(), data.task, &device);
                let layout = arch.layout();
                let mask = layout.has_buffers().then(|| Tensor::from_data(TensorData::new(trainable_mask(&layout, |_| true), [1, p]), &device));
                let rng = ChaCha8Rng::seed_from_u64(seeds.first().copied().unwrap_or(0) ^ DROPOUT_STREAM);
                Engine::Tape { train, params, adam, t: 0, lr: recipe.lr, weight_decay: recipe.weight_decay, mask, rng }
            }
        };
        Trainer { arch, native: native_arch, device, batch: recipe.batch_size.min(n).max(1), order: pools, cursor: vec![usize::MAX; k], k, rngs, engine, note }
    }

    /// One pass over the training data (whole batches of the smallest pool).
    pub fn epoch(&mut self) {
        for j in 0..self.k {
            self.reshuffle(j);
        }
        let smallest = self.order.iter().map(Vec::len).min().unwrap_or(0);
        let steps = (smallest / self.batch).max(1);
        if let Engine::Dense(_) = self.engine {
            // The whole epoch in one call: each model takes all its steps while in cache.
            let batches: Vec<Vec<i64>> = (0..steps).map(|_| self.next_batch()).collect();
            if let Engine::Dense(zoo) = &mut self.engine {
                zoo.steps(&batches);
            }
            return;
        }
        for _ in 0..steps {
            self.step();
        }
    }

    fn reshuffle(&mut self, j: usize) {
        self.order[j].shuffle(&mut self.rngs[j]);
        self.cursor[j] = 0;
    }

    /// The next batch of every model (K·B example indices, model-major).
    fn next_batch(&mut self) -> Vec<i64> {
        let mut indices: Vec<i64> = Vec::with_capacity(self.k * self.batch);
        for j in 0..self.k {
            if self.cursor[j] == usize::MAX || self.cursor[j] + self.batch > self.order[j].len() {
                self.reshuffle(j);
            }
            let from = self.cursor[j];
            // A pool smaller than a batch repeats its examples.
            indices.extend((from..from + self.batch).map(|i| self.order[j][i % self.order[j].len()]));
            self.cursor[j] = from + self.batch;
        }
        indices
    }

    /// One optimizer step on the next batch of every model.
    pub fn step(&mut self) {
        let indices = self.next_batch();
        let (arch, k, device) = (self.arch, self.k, &self.device);
        match &mut self.engine {
            Engine::Dense(zoo) => zoo.steps(&[indices]),
            Engine::Mlp { train, zoo } => zoo.step(train, &indices),
            Engine::Cnn(zoo) => zoo.step(&indices),
            Engine::Net(zoo) => zoo.step(&indices),
            Engine::Tape { train, params, adam, t, lr, weight_decay, mask, rng } => {
                let (x, targets) = train.gather(&indices, k, device);
                let tracked = params.clone().autodiff().require_grad();
                let (out, batch_stats) = match arch {
                    Arch::Sequential(net) => net.forward_train(&tracked, x, rng),
                    _ => (arch.forward(&tracked, x), Vec::new()),
                };
                let loss = per_model_loss(out, &targets).sum();
                let grads = loss.backward();
                let mut g = tracked.grad(&grads).expect("parameters require grad");
                if *weight_decay > 0.0 {
                    g = g + params.clone() * *weight_decay;
                }
                if let Some(mask) = mask {
                    g = g * mask.clone();
                }
                *t += 1;
                let (beta1, beta2) = (super::adam::BETA1, super::adam::BETA2);
                let old = params.clone();
                *params = match adam.as_mut() {
                    Some((m1, m2)) => {
                        *m1 = m1.clone() * beta1 + g.clone() * (1.0 - beta1);
                        *m2 = m2.clone() * beta2 + g.clone() * g * (1.0 - beta2);
                        let (step_size, eps) = super::adam::corrected(*lr, *t);
                        old - m1.clone() * step_size / (m2.clone().sqrt() + eps)
                    }
                    None => old - g * *lr,
                };
                if !batch_stats.is_empty() {
                    *params = crate::arch::Network::fold_running(params.clone(), batch_stats);
                }
            }
        }
    }

    /// Why these models train on the tape although they are a declared network (see
    /// [`tape_reason`]).
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Which engine trains the models: `dense`, `mlp`, `cnn`, `net` or `tape`.
    pub fn engine(&self) -> &'static str {
        match self.engine {
            Engine::Tape { .. } => "tape",
            Engine::Dense(_) => "dense",
            Engine::Mlp { .. } => "mlp",
            Engine::Cnn(_) => "cnn",
            Engine::Net(_) => "net",
        }
    }

    /// From now on only parameters whose names start with one of `prefixes` change.
    pub fn freeze_except(&mut self, prefixes: &[String]) -> Result<(), String> {
        let layout = self.arch.layout();
        let mut ranges = Vec::new();
        for pre in prefixes {
            let matching: Vec<_> = layout.params.iter().filter(|p| p.name.starts_with(pre.as_str())).collect();
            if matching.is_empty() {
                let names: Vec<&str> = layout.params.iter().map(|p| p.name.as_str()).collect();
                return Err(format!("`continue.params`: `{pre}` names no parameter; the architecture has {}", names.join(", ")));
            }
            ranges.extend(matching.into_iter().filter(|p| !p.buffer).map(|p| p.range()));
        }
        let mask = trainable_mask(&layout, |name| prefixes.iter().any(|pre| name.starts_with(pre.as_str())));
        match &mut self.engine {
            Engine::Tape { mask: slot, .. } => *slot = Some(Tensor::from_data(TensorData::new(mask, [1, layout.len()]), &self.device)),
            Engine::Mlp { zoo, .. } => zoo.freeze(|name| prefixes.iter().any(|pre| name.starts_with(pre.as_str()))),
            Engine::Dense(zoo) => zoo.models.freeze(ranges),
            Engine::Cnn(zoo) => zoo.models.freeze(ranges),
            Engine::Net(zoo) => zoo.models.freeze(ranges),
        }
        Ok(())
    }

    /// Fresh optimizer state (continued training starts its own Adam), with learning rate `lr`.
    pub fn restart_optimizer(&mut self, lr: f64) {
        match &mut self.engine {
            Engine::Tape { adam, t, lr: slot, .. } => {
                *slot = lr;
                *t = 0;
                if let Some((m1, m2)) = adam.as_mut() {
                    *m1 = m1.zeros_like();
                    *m2 = m2.zeros_like();
                }
            }
            Engine::Mlp { zoo, .. } => zoo.restart_optimizer(lr),
            Engine::Dense(zoo) => zoo.models.restart_optimizer(lr),
            Engine::Cnn(zoo) => zoo.models.restart_optimizer(lr),
            Engine::Net(zoo) => zoo.models.restart_optimizer(lr),
        }
    }

    /// Replaces the K models' weights (stacked K × P), e.g. with their parents' to fine-tune.
    pub fn set_weights(&mut self, flat: Vec<f32>) {
        let p = self.arch.layout().len();
        match &mut self.engine {
            Engine::Tape { params, .. } => *params = Tensor::from_data(TensorData::new(flat, [self.k, p]), &self.device),
            Engine::Mlp { zoo, .. } => zoo.set_weights(self.native.as_ref().unwrap_or(self.arch), &flat),
            Engine::Dense(zoo) => zoo.models.set_weights(&flat),
            Engine::Cnn(zoo) => zoo.models.set_weights(&flat),
            Engine::Net(zoo) => zoo.models.set_weights(&flat),
        }
    }

    /// The K models' weights now, stacked (K × P).
    pub fn weights(&self) -> Vec<f32> {
        match &self.engine {
            Engine::Tape { params, .. } => params.to_data().try_into_vec::<f32>().expect("f32 parameters"),
            Engine::Mlp { zoo, .. } => zoo.weights(self.native.as_ref().unwrap_or(self.arch)),
            Engine::Dense(zoo) => zoo.models.weights(),
            Engine::Cnn(zoo) => zoo.models.weights(),
            Engine::Net(zoo) => zoo.models.weights(),
        }
    }
}
