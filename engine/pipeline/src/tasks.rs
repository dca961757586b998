//! Conditions of a task family: what conditional generators are told about each task. Two
//! kinds, both computed natively from training-split data: the set encoding of the task's
//! support examples ([`weightlab_compute::data::tasks::support_encoding`]) and the MiniLM
//! embedding of its instruction (its classes or rotation, and the architecture; through
//! [`crate::text`], so each text is embedded once per machine). The zoo stage stores both as
//! Arrow/Parquet tables (`tasks`, `conditions`) beside its checkpoints; later stages read them
//! back from there.

use std::path::Path;

use weightlab_compute::data::tasks::{self, TaskGroup, TaskInfo};
use weightlab_compute::{Arch, Dataset};
use weightlab_results::rows::{read_table, table_of};
use weightlab_results::{ConditionRow, TaskRow};

use crate::error::Result;
use crate::output;

/// Per-task conditions of one zoo, rows in task-id order.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConditions {
    pub tasks: Vec<TaskInfo>,
    /// Set encodings: tasks × `support_dim`.
    pub support: Vec<f32>,
    pub support_dim: usize,
    /// Instruction embeddings: tasks × `instruction_dim` (0 when MiniLM is not installed).
    pub instruction: Vec<f32>,
    pub instruction_dim: usize,
    pub instructions: Vec<String>,
}

/// The instruction text of a task for a zoo of `arch` (of kind `kind`, e.g. `mlp`): what to classify, and the network.
fn instruction(task: &TaskInfo, arch: &Arch, kind: &str) -> String {
    let layout = arch.layout();
    let sizes: Vec<String> = layout.params.iter().filter(|p| p.shape.len() >= 2).map(|p| format!("{}x{}", p.shape[0], p.shape[1..].iter().product::<usize>())).collect();
    format!("{}; network {kind} with layers {}", task.description, sizes.join(", "))
}

impl TaskConditions {
    /// The conditions of a zoo of `arch` on `data`; `None` unless `data` is a task family.
    /// Without the text model the instructions are left out, with a warning.
    pub fn compute(data: &Dataset, arch: &Arch, kind: &str) -> Option<Self> {
        if data.tasks.is_empty() {
            return None;
        }
        let support: Vec<Vec<f32>> = data.tasks.iter().map(|t| tasks::support_encoding(data, t.id, data.shots)).collect();
        let support_dim = support.first().map_or(0, Vec::len);
        let instructions: Vec<String> = data.tasks.iter().map(|t| instruction(t, arch, kind)).collect();
        let (instruction, instruction_dim) = match crate::text::embeddings(&instructions) {
            Ok(e) => (e.values, e.dim),
            Err(e) => {
                output::warn(&format!("task instructions are not embedded ({e}); methods get set encodings only"));
                (Vec::new(), 0)
            }
        };
        Some(Self { tasks: data.tasks.clone(), support: support.concat(), support_dim, instruction, instruction_dim, instructions })
    }

    /// Rows of both kinds for the given task ids, stacked.
    pub fn rows(&self, ids: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let take = |values: &[f32], dim: usize| ids.iter().flat_map(|&t| values.get(t * dim..(t + 1) * dim).unwrap_or_default().iter().copied()).collect::<Vec<f32>>();
        (take(&self.support, self.support_dim), take(&self.instruction, self.instruction_dim))
    }

    /// Ids of the tasks methods sample for: held-out, then out-of-distribution.
    pub fn targets(&self) -> Vec<usize> {
        self.tasks.iter().filter(|t| t.group != TaskGroup::Train).map(|t| t.id).collect()
    }

    /// The group of task `id` (`heldout`, `ood`, `train`).
    pub fn group(&self, id: usize) -> &'static str {
        self.tasks.get(id).map_or("", |t| t.group.name())
    }

    /// Writes the `tasks` and `conditions` tables of zoo `zoo` into `dir`.
    pub fn write(&self, zoo: &str, dir: &Path) -> Result<()> {
        let rows: Vec<TaskRow> = self
            .tasks
            .iter()
            .zip(&self.instructions)
            .map(|(t, text)| TaskRow {
                zoo: zoo.to_string(),
                task: t.id,
                group: t.group.name().to_string(),
                classes: t.classes.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
                angle: t.angle.map(f64::from),
                instruction: text.clone(),
            })
            .collect();
        table_of(&rows).write(dir, "tasks")?;
        let mut values = Vec::new();
        for (kind, all, dim) in [("support", &self.support, self.support_dim), ("instruction", &self.instruction, self.instruction_dim)] {
            for (task, row) in all.chunks(dim.max(1)).enumerate() {
                values.extend(row.iter().enumerate().map(|(d, &v)| ConditionRow { zoo: zoo.to_string(), task, kind: kind.to_string(), dim: d, value: v as f64 }));
            }
        }
        table_of(&values).write(dir, "conditions")?;
        Ok(())
    }

    /// Reads the conditions a zoo stage stored in `dir` (task information from `data`); `None`
    /// when it stored none.
    pub fn read(data: &Dataset, dir: &Path) -> Result<Option<Self>> {
        let Some(rows) = read_table::<ConditionRow>(dir, "conditions")? else { return Ok(None) };
        let texts: Vec<TaskRow> = read_table(dir, "tasks")?.unwrap_or_default();
        let n = data.tasks.len();
        let gather = |kind: &str| {
            let dim = rows.iter().filter(|r| r.kind == kind).map(|r| r.dim + 1).max().unwrap_or(0);
            let mut values = vec![0.0f32; n * dim];
            for r in rows.iter().filter(|r| r.kind == kind && r.task < n) {
                values[r.task * dim + r.dim] = r.value as f32;
            }
            (values, dim)
        };
        let ((support, support_dim), (instruction, instruction_dim)) = (gather("support"), gather("instruction"));
        let instructions = texts.into_iter().map(|t| t.instruction).collect();
        Ok(Some(Self { tasks: data.tasks.clone(), support, support_dim, instruction, instruction_dim, instructions }))
    }
}
