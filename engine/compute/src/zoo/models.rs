//! K models' parameters and optimiser state as the hand-written CPU engines ([`super::cnn`],
//! [`super::dense`]) keep them: one flat (K × P) vector, Adam's moments beside it, the parts
//! that train, and the step count. An engine computes one model's gradient; this moves the
//! model and spreads models over threads.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use weightlab_manifest::{Optimizer, TrainSpec};

use super::adam;

/// How one step moves parameters once their gradient is known.
#[derive(Debug, Clone, Copy)]
pub(super) struct Update {
    adam: Option<adam::Step>,
    lr: f32,
    weight_decay: f32,
}

/// One model's parameters and moments, and the parts of them that train.
pub(super) struct Model<'a> {
    pub weights: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    trains: &'a [Range<usize>],
}

impl Model<'_> {
    /// Moves the parts that train by their gradient (in `grad`, a whole model's length).
    pub fn update(&mut self, grad: &[f32], u: &Update) {
        for r in self.trains {
            let (p, g) = (&mut self.weights[r.clone()], &grad[r.clone()]);
            match u.adam {
                Some(c) => adam::adam(p, g, &mut self.m[r.clone()], &mut self.v[r.clone()], c),
                None => adam::sgd(p, g, u.lr, u.weight_decay),
            }
        }
    }
}

/// K models in training.
pub(super) struct Models {
    k: usize,
    p: usize,
    /// K × P, each model's parameters in the layout's order.
    params: Vec<f32>,
    /// Adam's moments, K × P (unused by SGD).
    m: Vec<f32>,
    v: Vec<f32>,
    adam: bool,
    /// The parts of a model's vector that train (all of it unless frozen), in order.
    trains: Vec<Range<usize>>,
    t: i32,
    lr: f64,
    weight_decay: f64,
}

impl Models {
    /// K models of P parameters each, stacked in `flat`, trained by `recipe`'s optimiser.
    pub fn new(recipe: &TrainSpec, flat: &[f32], k: usize, p: usize) -> Self {
        Models {
            k,
            p,
            params: flat.to_vec(),
            m: vec![0.0; flat.len()],
            v: vec![0.0; flat.len()],
            adam: recipe.optimizer == Optimizer::Adam,
            trains: std::iter::once(0..p).collect(),
            t: 0,
            lr: recipe.lr,
            weight_decay: recipe.weight_decay,
        }
    }

    /// How many models.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Parameters per model.
    pub fn p(&self) -> usize {
        self.p
    }

    pub fn set_weights(&mut self, flat: &[f32]) {
        self.params.copy_from_slice(flat);
    }

    pub fn weights(&self) -> Vec<f32> {
        self.params.clone()
    }

    /// The parts of each model's vector that train.
    pub fn trains(&self) -> &[Range<usize>] {
        &self.trains
    }

    /// From now on only the parts of each model's vector in `ranges` change.
    pub fn freeze(&mut self, mut ranges: Vec<Range<usize>>) {
        ranges.sort_by_key(|r| r.start);
        ranges.dedup();
        self.trains = ranges;
    }

    /// Fresh optimiser state with learning rate `lr`.
    pub fn restart_optimizer(&mut self, lr: f64) {
        self.lr = lr;
        self.t = 0;
        self.m.iter_mut().for_each(|v| *v = 0.0);
        self.v.iter_mut().for_each(|v| *v = 0.0);
    }

    /// The updates of the next `steps` steps, counted as taken.
    pub fn updates(&mut self, steps: usize) -> Vec<Update> {
        let first = self.t;
        self.t += steps as i32;
        (1..=steps as i32).map(|s| Update { adam: self.adam.then(|| adam::Step::at(self.lr, self.weight_decay, first + s)), lr: self.lr as f32, weight_decay: self.weight_decay as f32 }).collect()
    }

    /// `train(work, j, model j)` for every model on as many threads as libtorch computes with,
    /// each thread with its own `work` from `init`, taking the next model whenever it finishes
    /// one: a core the host slows down takes fewer models instead of holding the others up
    /// (halves fixed in advance left one core idle for the length of the other's delay). Models
    /// are independent, so the bits depend neither on the thread count nor on which thread
    /// trains which model.
    pub fn each<W: Send>(&mut self, init: impl Fn() -> W + Sync, train: impl Fn(&mut W, usize, Model) + Sync) {
        self.each_with(&mut Vec::new(), init, train);
    }

    /// [`Models::each`] with the threads' `work` kept in `works` from one call to the next
    /// (made by `init` the first time), so a step allocates nothing.
    pub fn each_with<W: Send>(&mut self, works: &mut Vec<W>, init: impl Fn() -> W + Sync, train: impl Fn(&mut W, usize, Model) + Sync) {
        let (k, p) = (self.k, self.p);
        let threads = (tch::get_num_threads().max(1) as usize).min(k).max(1);
        while works.len() < threads {
            works.push(init());
        }
        let (trains, train) = (&self.trains[..], &train);
        let queue = Mutex::new(self.params.chunks_mut(p).zip(self.m.chunks_mut(p)).zip(self.v.chunks_mut(p)).enumerate());
        let queue = &queue;
        std::thread::scope(|s| {
            for work in works.iter_mut().take(threads) {
                s.spawn(move || {
                    loop {
                        // The lock is held for this statement only (and nothing in `next` panics).
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                        let Some((j, ((weights, m), v))) = next else { break };
                        train(work, j, Model { weights, m, v, trains });
                    }
                });
            }
        });
    }
}
