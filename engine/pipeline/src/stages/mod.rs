//! One module per stage kind; each adds the `impl Run` method that runs it and returns the
//! stage's typed record ([`crate::records`]).

mod data;
mod evaluate;
pub mod method;
pub(crate) mod probe;
pub(crate) mod reference;
mod report;
mod zoo;

pub use report::{stamp, utc};

/// Method name of a zoo's training checkpoints in the tables (scored leave-one-out).
pub const TRAIN_REFERENCE: &str = "train (leave-one-out)";
/// Method name of a zoo's held-out models in the tables.
pub const HELDOUT_REFERENCE: &str = "held-out";
