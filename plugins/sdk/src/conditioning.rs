//! Task conditions for conditional generators (D2NWG, IGPG, FLoWN): pick the kind a method
//! conditions on, standardise it with the training rows' statistics, and hand the same
//! transformation to `sample`, so a new task's condition lands where the training tasks' did.

use crate::probing::Standardize;
use crate::{Condition, JsonSchema, Problem, Tensor, ZooPlan};

/// Which of the host's task conditions a generator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionKind {
    /// The set encoding of the task's support examples (D2NWG, FLoWN).
    Support,
    /// The text embedding of the task's instruction (IGPG).
    Instruction,
}

impl ConditionKind {
    fn pick(self, c: &Condition) -> Option<&Tensor> {
        match self {
            ConditionKind::Support => c.support.as_ref(),
            ConditionKind::Instruction => c.instruction.as_ref(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ConditionKind::Support => "support",
            ConditionKind::Instruction => "instruction",
        }
    }
}

/// A condition kind, fitted on the training checkpoints' rows.
pub struct TaskCondition {
    pub kind: ConditionKind,
    /// Width of one condition row.
    pub dim: usize,
    standardize: Standardize,
}

impl TaskCondition {
    /// Fits on the training rows of `kind` in `condition`; returns the standardised rows
    /// (checkpoints × dim). Fails with a clear reason when the host gave no such condition
    /// (the zoo's data is not a task family, or the text model is missing).
    pub fn fit(condition: &Condition, kind: ConditionKind) -> Result<(Self, Tensor), String> {
        let rows = kind.pick(condition).ok_or_else(|| missing(kind))?;
        let standardize = Standardize::fit(rows);
        let dim = rows.shape().get(1).copied().unwrap_or(0);
        Ok((TaskCondition { kind, dim, standardize: standardize.clone() }, standardize.apply(rows)))
    }

    /// The standardised condition of a target task, repeated for `n` samples (n × dim).
    pub fn prepare(&self, condition: &Condition, n: usize) -> Result<Tensor, String> {
        let row = self.kind.pick(condition).ok_or_else(|| missing(self.kind))?;
        let shape = row.shape();
        if shape != [1, self.dim] && shape != [n, self.dim] {
            return Err(format!("{} condition has shape {shape:?}; expected [1, {}]", self.kind.name(), self.dim));
        }
        Ok(self.standardize.apply(row).expand(&[n, self.dim]))
    }
}

/// Indices (n, as a tensor) of the rows of `rows` (standardised conditions, rows × dim)
/// nearest to `target` (1 × dim), nearest first, cycling when `n` exceeds the rows: the
/// training checkpoints of the most similar task.
pub fn nearest_rows(rows: &Tensor, target: &Tensor, n: usize) -> Tensor {
    let distances = (rows - target).square().sum(1, false).to_vec();
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
    let picked: Vec<f32> = (0..n).map(|i| order[i % order.len().max(1)] as f32).collect();
    Tensor::from_slice(&picked, &[n])
}

/// The problem, found before training, of conditioning on `kind` (the config key `condition`)
/// on a zoo whose data is not a task family: the host will give no conditions.
pub fn check(zoo: &ZooPlan, kind: ConditionKind) -> Option<Problem> {
    (!zoo.task_family).then(|| {
        Problem::at("condition", format!("conditions on the `{}` of each checkpoint's task, and zoo `{}` learns one dataset, not a task family: give its data `[data.*] tasks`", kind.name(), zoo.name))
    })
}

fn missing(kind: ConditionKind) -> String {
    format!(
        "needs `{}` task conditions, and the host gave none: train the zoo on a task family (`[data.*] tasks`){}",
        kind.name(),
        if kind == ConditionKind::Instruction { " with the text model installed (`make` sets it up)" } else { "" }
    )
}
