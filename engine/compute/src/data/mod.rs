//! Datasets: where models learn and are evaluated. Every dataset becomes the same plain
//! [`Dataset`] (flat `f32` inputs, targets, shapes), with a content hash as its identity.

pub mod fashion_mnist;
pub mod files;
pub mod procedural;
pub mod sdf;
pub mod tasks;

use sha2::{Digest, Sha256};
use weightlab_manifest::{DataSource, DataSpec};

/// What the targets mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Targets are class indices `0..classes` (stored as `f32`).
    Classification { classes: usize },
    /// Targets are one real value per example (e.g. a signed distance).
    Regression,
}

/// Examples of one split, row-major: `x` holds `len × features` values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Moves the last `fraction` of each of `groups` equal contiguous blocks into a new split
    /// (the validation subset), keeping the blocks equal and contiguous in both.
    pub fn split_off(&mut self, fraction: f64, groups: usize, features: usize) -> Split {
        let groups = groups.max(1);
        let block = self.len() / groups;
        let take = ((block as f64 * fraction).round() as usize).min(block.saturating_sub(1));
        let (mut kept, mut taken) = (Split::default(), Split::default());
        for g in 0..groups {
            let (start, cut, end) = (g * block, g * block + block - take, (g + 1) * block);
            kept.x.extend_from_slice(&self.x[start * features..cut * features]);
            kept.y.extend_from_slice(&self.y[start..cut]);
            taken.x.extend_from_slice(&self.x[cut * features..end * features]);
            taken.y.extend_from_slice(&self.y[cut..end]);
        }
        *self = kept;
        taken
    }

    /// Keeps the first `n` examples.
    pub fn truncate(&mut self, n: usize, features: usize) {
        let n = n.min(self.len());
        self.x.truncate(n * features);
        self.y.truncate(n);
    }
}

/// A dataset in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub task: Task,
    /// Shape of one input, e.g. `[1, 28, 28]` or `[2]`.
    pub input_shape: Vec<usize>,
    /// What models train on.
    pub train: Split,
    /// Split off the training data (`[data.*] validation`): models do not train on it, and
    /// the checkpoint figures methods see are computed on it.
    pub validation: Split,
    /// Where samples are scored; nothing computed on it reaches a method.
    pub test: Split,
    /// Number of tasks the examples fall into (shapes of a many-shape neural-field dataset):
    /// both splits hold `groups` equal contiguous blocks, and model i of a zoo learns block
    /// i mod `groups`. 1 for ordinary datasets.
    pub groups: usize,
    /// Content hash (16 hex digits) of the shapes and the training and validation values: the
    /// dataset's identity as methods see it (the test split does not enter it).
    pub hash: String,
    /// A name per class (what text embeddings embed); empty for regression.
    pub class_names: Vec<String>,
    /// The tasks of a task family (`[data.*] tasks`), one per group; empty otherwise.
    pub tasks: Vec<tasks::TaskInfo>,
    /// Support examples per class of a task family's tasks.
    pub shots: usize,
}

impl Dataset {
    /// Number of input values per example.
    pub fn features(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Number of outputs a model needs: classes, or 1 for regression.
    pub fn outputs(&self) -> usize {
        match self.task {
            Task::Classification { classes } => classes,
            Task::Regression => 1,
        }
    }

    /// Examples of group `g` in a split of `len` examples: a contiguous range.
    pub fn group_range(&self, len: usize, g: usize) -> std::ops::Range<usize> {
        let n = len / self.groups.max(1);
        g * n..(g + 1) * n
    }

    fn new(task: Task, input_shape: Vec<usize>, train: Split, validation: Split, test: Split, groups: usize) -> Self {
        let mut h = Sha256::new();
        h.update(format!("{task:?} {input_shape:?} {} {} {groups}", train.len(), validation.len()));
        for split in [&train, &validation] {
            for v in split.x.iter().chain(&split.y) {
                h.update(v.to_le_bytes());
            }
        }
        let hash = hex::encode(&h.finalize()[..8]);
        let class_names = match task {
            Task::Classification { classes } => (0..classes).map(|c| format!("class {c}")).collect(),
            Task::Regression => Vec::new(),
        };
        Self { task, input_shape, train, validation, test, groups, hash, class_names, tasks: Vec::new(), shots: 0 }
    }
}

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read `{}`: {source}{}", path.display(), install_hint(path))]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("`{path}`: {reason}")]
    Format { path: std::path::PathBuf, reason: String },
    #[error("data source `{source_name}`: {reason}")]
    Shape { source_name: &'static str, reason: String },
    #[error("`{path}`: array `{array}` {reason}")]
    Array { path: std::path::PathBuf, array: String, reason: String },
}

/// Where a missing file comes from, for the files weightlab knows the package of.
fn install_hint(path: &std::path::Path) -> &'static str {
    if path.starts_with(fashion_mnist::DEFAULT_DIR) { " (Fashion-MNIST comes from the Debian package `dataset-fashion-mnist`; `make quickstart` installs it)" } else { "" }
}

/// What a dataset's declaration says before any example is read or drawn: enough to lay out
/// the models that learn it and to tell a plugin's `check` what it will get.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub input_shape: Vec<usize>,
    pub task: Task,
    /// As [`Dataset::class_names`].
    pub class_names: Vec<String>,
}

impl Declared {
    /// Number of outputs a model needs: classes, or 1 for regression.
    pub fn outputs(&self) -> usize {
        match self.task {
            Task::Classification { classes } => classes,
            Task::Regression => 1,
        }
    }

    /// What `dataset` says of itself.
    pub fn of(dataset: &Dataset) -> Self {
        Declared { input_shape: dataset.input_shape.clone(), task: dataset.task, class_names: dataset.class_names.clone() }
    }
}

/// The names of a source's own classes (before a task family regroups them).
fn source_class_names(spec: &DataSpec) -> Vec<String> {
    match (spec.source, spec.source.descriptor().class_count(spec)) {
        (DataSource::FashionMnist, _) => fashion_mnist::CLASS_NAMES.iter().map(|n| n.to_string()).collect(),
        (_, Some(classes)) => (0..classes).map(|c| format!("class {c}")).collect(),
        (_, None) => Vec::new(),
    }
}

/// [`Declared`] for a source that is not read from the user's files (those say their shapes
/// only once read: [`load`]).
pub fn declared(spec: &DataSpec) -> Option<Declared> {
    let source = spec.source.descriptor();
    if source.from_files {
        return None;
    }
    let input_shape = (source.input_shape)(spec);
    let names = source_class_names(spec);
    let positions = |n: usize| (0..n).map(|c| format!("class {c}")).collect::<Vec<_>>();
    Some(match &spec.tasks {
        Some(family) if family.family == weightlab_manifest::TaskFamily::Classes => Declared { input_shape, task: Task::Classification { classes: family.ways }, class_names: positions(family.ways) },
        Some(_) => Declared { input_shape, task: Task::Classification { classes: names.len() }, class_names: names },
        None => match source.class_count(spec) {
            Some(classes) => Declared { input_shape, task: Task::Classification { classes }, class_names: if names.is_empty() { positions(classes) } else { names } },
            None => Declared { input_shape, task: Task::Regression, class_names: Vec::new() },
        },
    })
}

/// Loads or generates the dataset a manifest section describes. Relative paths resolve against
/// `base_dir`.
pub fn load(spec: &DataSpec, base_dir: &std::path::Path) -> Result<Dataset, DataError> {
    // Task and input shape are the source's declared ones (`DataSource::descriptor`); each arm
    // here only produces the examples.
    let source = spec.source.descriptor();
    if source.from_files {
        return load_files(spec, base_dir);
    }
    let shape = (source.input_shape)(spec);
    let task = match source.class_count(spec) {
        Some(classes) => Task::Classification { classes },
        None => Task::Regression,
    };
    let features: usize = shape.iter().product();
    if let Some(why) = crate::memory::refuse(procedural_bytes(spec, features)) {
        return Err(DataError::Shape { source_name: source.name, reason: format!("generating its examples as 32-bit floats {why}: ask for fewer examples, shapes or tasks") });
    }
    // The source's own examples, drawn with `seed` (procedural) and cut to the subsets.
    let draw = |seed: u64| -> Result<(Split, Split), DataError> {
        let (mut train, mut test) = match spec.source {
            DataSource::FashionMnist => {
                let dir = spec.path.as_ref().map(|p| base_dir.join(p)).unwrap_or_else(|| fashion_mnist::DEFAULT_DIR.into());
                fashion_mnist::load(&dir, seed)?
            }
            DataSource::Blobs => procedural::blobs(spec.classes, spec.samples, spec.noise, seed),
            DataSource::Moons => procedural::moons(spec.samples, spec.noise, seed),
            DataSource::Circles => procedural::circles(spec.samples, spec.noise, seed),
            DataSource::Signals => procedural::signals(spec.classes, spec.samples, spec.noise, seed),
            DataSource::SdfShapes => sdf::many_shape_points(spec.samples, spec.shapes.max(1), seed, spec.family),
            DataSource::Tensors | DataSource::Idx | DataSource::ImageFolder | DataSource::Cifar10 => unreachable!("file sources are loaded by `load_files`"),
        };
        // Subsets apply to ungrouped data only (validation refuses them with several shapes).
        if spec.source != DataSource::SdfShapes {
            if let Some(n) = spec.train_subset {
                train.truncate(n, features);
            }
            if let Some(n) = spec.test_subset {
                test.truncate(n, features);
            }
        }
        Ok((train, test))
    };
    let source_names = source_class_names(spec);
    let (task, groups, family, (train, test)) = match &spec.tasks {
        Some(family) => {
            let planned = tasks::plan(family, source_names.len(), &source_names, source.name, spec.seed);
            let ways = if family.family == weightlab_manifest::TaskFamily::Classes { family.ways } else { source_names.len() };
            let examples = match family.family {
                weightlab_manifest::TaskFamily::Rotate => tasks::examples(spec, family, &planned, |seed| Ok(tasks::procedural_base(spec, seed)), features)?,
                weightlab_manifest::TaskFamily::Classes => tasks::examples(spec, family, &planned, draw, features)?,
            };
            (Task::Classification { classes: ways }, family.count, Some((planned, family.shots)), examples)
        }
        None => {
            let groups = if spec.source == DataSource::SdfShapes { spec.shapes.max(1) } else { 1 };
            (task, groups, None, draw(spec.seed)?)
        }
    };
    let (mut train, test) = (train, test);
    // The declared shape is authoritative: a loader that disagrees with it is a bug to report,
    // not a model to train on misaligned rows.
    for split in [&train, &test] {
        if split.x.len() != split.len() * features {
            return Err(DataError::Shape { source_name: source.name, reason: format!("examples have {} values, the source declares input shape {shape:?}", split.x.len() / split.len().max(1)) });
        }
    }
    let validation = train.split_off(spec.validation, groups, features);
    let mut dataset = Dataset::new(task, shape, train, validation, test, groups);
    match family {
        Some((planned, shots)) => {
            // Labels name a task's classes only within the task: the dataset's are positions.
            if spec.tasks.as_ref().is_some_and(|f| f.family == weightlab_manifest::TaskFamily::Rotate) {
                dataset.class_names = source_names;
            }
            dataset.tasks = planned;
            dataset.shots = shots;
        }
        None if !source_names.is_empty() => dataset.class_names = source_names,
        None => {}
    }
    Ok(dataset)
}

/// A lower bound of the bytes a procedural dataset of `features` inputs per example holds
/// (its training and test examples, inputs and target), known before any is drawn: a
/// manifest asking for more than the machine has fails its stage with both sizes
/// (`crate::memory`) instead of aborting the engine.
fn procedural_bytes(spec: &DataSpec, features: usize) -> u64 {
    // Test examples are a quarter of the training ones.
    let examples = |train: u64| train.saturating_add(train / 4);
    let per_example = (features as u64).saturating_add(1).saturating_mul(4);
    let base = match spec.source {
        DataSource::SdfShapes => (spec.shapes.max(1) as u64).saturating_mul(spec.samples as u64),
        _ => spec.samples as u64,
    };
    let train = match &spec.tasks {
        None => base,
        Some(t) => match t.family {
            weightlab_manifest::TaskFamily::Rotate => (t.count as u64).saturating_mul(base),
            weightlab_manifest::TaskFamily::Classes => (t.count as u64).saturating_mul(t.ways as u64).saturating_mul(t.per_class.min(spec.samples) as u64),
        },
    };
    examples(train).saturating_mul(per_example)
}

/// A dataset from the user's files ([`files`]): the training examples shuffled with `seed` (so
/// a subset is a random sample; the test split keeps the file's order), cut to the subsets,
/// then the validation split taken off.
fn load_files(spec: &DataSpec, base_dir: &std::path::Path) -> Result<Dataset, DataError> {
    let files::FileData { task, shape, mut train, mut test, class_names } = files::load(spec, base_dir)?;
    let features: usize = shape.iter().product();
    fashion_mnist::shuffle(&mut train, features, spec.seed);
    if let Some(n) = spec.train_subset {
        train.truncate(n, features);
    }
    if let Some(n) = spec.test_subset {
        test.truncate(n, features);
    }
    if train.len() < 2 || test.is_empty() {
        return Err(DataError::Shape {
            source_name: spec.source.descriptor().name,
            reason: format!("{} training and {} test examples are too few to train and score a model", train.len(), test.len()),
        });
    }
    let validation = train.split_off(spec.validation, 1, features);
    let mut dataset = Dataset::new(task, shape, train, validation, test, 1);
    if !class_names.is_empty() {
        dataset.class_names = class_names;
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Procedural data no machine holds (here 100,000 shapes of 10 million points) fails with
    /// both sizes before a point is drawn; it used to abort the engine out of memory.
    #[test]
    fn procedural_data_larger_than_the_machine_is_refused_before_it_is_drawn() {
        let spec: DataSpec = toml::from_str("source = \"sdf-shapes\"\nshapes = 100000\nsamples = 10000000").expect("data spec");
        let Err(e) = load(&spec, std::path::Path::new(".")) else { panic!("no machine holds 20 TB") };
        let e = e.to_string();
        assert!(e.starts_with("data source `sdf-shapes`: generating its examples as 32-bit floats needs at least") && e.contains("ask for fewer examples, shapes or tasks"), "{e}");
        let small: DataSpec = toml::from_str("source = \"blobs\"\nsamples = 64").expect("data spec");
        assert!(procedural_bytes(&small, 2) < 4096 && load(&small, std::path::Path::new(".")).is_ok());
    }
}
