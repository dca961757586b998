//! What metrics are computed from: a set of models (n × P) scored against a zoo's training
//! checkpoints. Each expensive ingredient — test-set evaluation, nearest checkpoints,
//! behavioural comparison — is computed on first use and shared, so a metric that is not
//! asked for costs nothing and two metrics that need the same thing pay for it once.

use std::cell::OnceCell;

use weightlab_compute::arch::align::Aligner;
use weightlab_compute::data::Task;
use weightlab_compute::eval::{self, ModelScore};
use weightlab_compute::metrics::{self, Behaviour, Nearest, Segment, surface};
use weightlab_compute::{Arch, Dataset};

/// Models to score and what they are compared with.
pub struct Scoring<'a> {
    pub arch: &'a Arch,
    pub data: &'a Dataset,
    /// The scored models, back to back (n × P).
    pub models: &'a [f32],
    /// Parameters per model.
    pub p: usize,
    /// The zoo's training checkpoints (checkpoints × P).
    pub train: &'a [f32],
    /// Test predictions of the training checkpoints; `None` when the scored models *are* the
    /// training checkpoints, compared with each other leaving each one out.
    pub reference_predictions: Option<&'a [Vec<u8>]>,
    /// The task each model is scored on (task families: a sample's target task); `None`: the
    /// one it fits best (one task unless the dataset has several).
    pub tasks: Option<Vec<usize>>,
    scores: OnceCell<Vec<ModelScore>>,
    predictions: OnceCell<Vec<Vec<u8>>>,
    labels: OnceCell<Vec<u8>>,
    nearest: OnceCell<Vec<Nearest>>,
    nearest_aligned: OnceCell<Vec<Nearest>>,
    nearest_interpolation: OnceCell<Vec<Segment>>,
    behaviour: OnceCell<Option<Vec<Behaviour>>>,
    nearest_shape: OnceCell<Option<Vec<(usize, f64)>>>,
}

impl<'a> Scoring<'a> {
    pub fn new(arch: &'a Arch, data: &'a Dataset, models: &'a [f32], train: &'a [f32], reference_predictions: Option<&'a [Vec<u8>]>) -> Self {
        let p = arch.layout().len();
        Self {
            arch,
            data,
            models,
            p,
            train,
            reference_predictions,
            tasks: None,
            scores: OnceCell::new(),
            predictions: OnceCell::new(),
            labels: OnceCell::new(),
            nearest: OnceCell::new(),
            nearest_aligned: OnceCell::new(),
            nearest_interpolation: OnceCell::new(),
            behaviour: OnceCell::new(),
            nearest_shape: OnceCell::new(),
        }
    }

    /// Scores model i on task `tasks[i]` (a sample's target task).
    pub fn on_tasks(mut self, tasks: Option<Vec<usize>>) -> Self {
        self.tasks = tasks;
        self
    }

    /// Number of scored models.
    pub fn len(&self) -> usize {
        self.models.len() / self.p.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Leave-one-out: the scored models are the training checkpoints themselves.
    pub fn leave_one_out(&self) -> bool {
        self.reference_predictions.is_none()
    }

    pub fn classification(&self) -> bool {
        matches!(self.data.task, Task::Classification { .. })
    }

    /// Loss, accuracy and predictions of every model on the test split.
    pub fn scores(&self) -> &[ModelScore] {
        self.scores.get_or_init(|| eval::evaluate_on(self.arch, self.data, &self.data.test, self.models, self.tasks.as_deref()))
    }

    /// Test predictions of every model.
    pub fn predictions(&self) -> &[Vec<u8>] {
        self.predictions.get_or_init(|| self.scores().iter().map(|s| s.predictions.clone()).collect())
    }

    /// Test labels as class indices.
    pub fn labels(&self) -> &[u8] {
        self.labels.get_or_init(|| self.data.test.y.iter().map(|&y| y as u8).collect())
    }

    /// Neural fields: 3-D points in, one signed distance out.
    pub fn field(&self) -> bool {
        matches!(self.data.task, Task::Regression) && self.data.features() == 3
    }

    /// Whether `metric` can be computed for these models.
    pub fn applies(&self, applies: super::Applies) -> bool {
        match applies {
            super::Applies::Any => true,
            super::Applies::Classification => self.classification(),
            super::Applies::OneTask => self.classification() && self.data.groups <= 1,
            super::Applies::Field => self.field(),
        }
    }

    /// Neural fields: each model's nearest training field by the Chamfer distance of their
    /// surfaces, and that distance.
    pub fn nearest_shape(&self) -> Option<&[(usize, f64)]> {
        self.nearest_shape
            .get_or_init(|| {
                self.field().then(|| {
                    let models = surface::surfaces(self.arch, self.models);
                    let train = if self.leave_one_out() { models.clone() } else { surface::surfaces(self.arch, self.train) };
                    surface::nearest_chamfer(&models, &train, self.leave_one_out())
                })
            })
            .as_deref()
    }

    /// Each model's nearest training checkpoint in weight space.
    pub fn nearest(&self) -> &[Nearest] {
        self.nearest.get_or_init(|| metrics::nearest(self.models, self.train, self.p, self.leave_one_out()))
    }

    /// The same after aligning hidden units to each checkpoint (Zeng et al.'s distance).
    pub fn nearest_aligned(&self) -> &[Nearest] {
        self.nearest_aligned.get_or_init(|| metrics::nearest_aligned(self.models, self.train, self.p, self.leave_one_out(), &Aligner::new(self.arch)))
    }

    /// Each model's nearest point on a segment between two training checkpoints.
    pub fn nearest_interpolation(&self) -> &[Segment] {
        self.nearest_interpolation.get_or_init(|| metrics::nearest_interpolation(self.models, self.train, self.p, self.leave_one_out()))
    }

    /// Behavioural comparison with the training checkpoints (classifiers only).
    pub fn behaviour(&self) -> Option<&[Behaviour]> {
        self.behaviour
            .get_or_init(|| {
                self.classification().then(|| {
                    let predictions = self.predictions();
                    let reference = self.reference_predictions.unwrap_or(predictions);
                    metrics::behaviour(predictions, reference, self.labels(), self.leave_one_out())
                })
            })
            .as_deref()
    }
}
