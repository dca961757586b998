//! One module per stage kind, each returning the stage's typed record ([`crate::records`]).
//! Every stage but the report is a function of explicit inputs that the executor assembles
//! from the run's caches (datasets, zoos and their parts, zoo frames, task conditions, the
//! plugins' code read once), so a stage is tested on small inputs without a manifest, a store
//! or a plugin (`evaluate`'s tests). The report reads the whole run (`report.rs`).

pub(crate) mod data;
pub(crate) mod evaluate;
pub mod method;
pub(crate) mod probe;
pub(crate) mod reference;
mod report;
pub(crate) mod zoo;

pub use report::{stamp, utc};

/// Method name of a zoo's training checkpoints in the tables (scored leave-one-out).
pub const TRAIN_REFERENCE: &str = "train (leave-one-out)";
/// Method name of a zoo's held-out models in the tables.
pub const HELDOUT_REFERENCE: &str = "held-out";
