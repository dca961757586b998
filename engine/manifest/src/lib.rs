//! Experiment manifests: the TOML file a researcher writes to say what to run.
//!
//! - [`types`]: the sections of a manifest as plain serde types with defaults.
//! - [`layers`]: the layers of a declared (`sequential`) network.
//! - [`descriptors`]: what each dataset source and architecture is, for validation and compute.
//! - [`load`]: reading, composition, `--set` overrides, sweeps, parsing and validation in one call.
//! - [`cluster`]: what `[cluster]` values may hold (they become lines of job scripts).
//! - [`compose`]: `extends = [..]`, merging a manifest onto the files it builds on.
//! - [`sweep`]: `{ sweep = [..] }` values expanded into named variants.
//! - [`validate`]: checks across sections (references, splits, names).
//! - [`files`]: reading files others name: regular files only, never blocking on a FIFO.
//! - [`diagnostic`]: located errors rendered like rustc's (file:line:col, caret, help).
//! - [`spans`]: finds the source position of any key path.
//! - [`suggest`]: did-you-mean for near-miss names.
//! - [`overrides`]: `--set key.path=value`.
//! - [`schema`]: the JSON Schema generated from the types.
//! - [`plan`]: the stages a manifest turns into, each with a content key for caching.

pub mod cluster;
pub mod compose;
pub mod descriptors;
pub mod diagnostic;
pub mod files;
pub mod json;
pub mod layers;
pub mod load;
pub mod overrides;
pub mod plan;
pub mod schema;
pub mod spans;
pub mod suggest;
pub mod sweep;
pub mod types;
pub mod validate;

pub use diagnostic::{Diagnostic, Located, ManifestError, SourceMap};
pub use layers::LayerSpec;
pub use load::{Draft, LoadError, Loaded, draft, expand_text, load, load_str};
pub use plan::{Plan, Shard, Stage, StageKind};
pub use types::*;
pub use validate::Catalog;
