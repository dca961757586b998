//! What the engine knows about each dataset source and architecture, declared once beside its
//! manifest type (`DataSource::descriptor`, `ArchSpec::descriptor` in [`crate::types`]) and
//! read by both validation and the compute core: input shape, classes or regression, which
//! architectures fit which data, and the name plugins see.

use crate::types::DataSpec;

/// What a model learns from a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Targets are class indices; the count comes from the spec.
    Classification,
    /// One real target per example (e.g. a signed distance).
    Regression,
}

/// A dataset source.
#[derive(Debug, Clone, Copy)]
pub struct SourceDescriptor {
    /// Its `source = "…"` value.
    pub name: &'static str,
    pub task: TaskKind,
    /// Shape of one input.
    pub input_shape: fn(&DataSpec) -> Vec<usize>,
    /// Number of classes (classification sources).
    pub classes: fn(&DataSpec) -> usize,
    /// Generated from `samples`, `noise` and `seed` (rather than read from files).
    pub procedural: bool,
    /// Read from files the user names, whose shapes and classes are known only once they are
    /// read (`input_shape` and `classes` say nothing then).
    pub from_files: bool,
}

impl SourceDescriptor {
    /// A source read from the user's files (`path`).
    pub const fn from_files(name: &'static str) -> Self {
        SourceDescriptor { name, task: TaskKind::Classification, input_shape: |_| Vec::new(), classes: |_| 0, procedural: false, from_files: true }
    }

    /// Classes of the data `spec` describes; `None` for regression.
    /// Unknown (`None`) for data read from the user's files until they are read.
    pub fn class_count(&self, spec: &DataSpec) -> Option<usize> {
        (self.task == TaskKind::Classification && !self.from_files).then(|| (self.classes)(spec))
    }
}

/// An architecture.
#[derive(Debug, Clone, Copy)]
pub struct ArchDescriptor {
    /// Its `kind = "…"` value.
    pub name: &'static str,
    /// What plugins see as the zoo's `arch`.
    pub plugin_arch: &'static str,
    /// Whether it can learn from data of this task and input shape; `Err` says what it needs.
    pub fits: fn(TaskKind, &[usize]) -> Result<(), &'static str>,
}
