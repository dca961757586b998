//! The native compute core of weightlab, on libtorch through burn's `tch` backend.
//!
//! - [`data`]: Fashion-MNIST from the Debian package, procedural 2-D data, an SDF neural-field task.
//! - [`arch`]: architectures with their canonical flat parameter layout and batched forward pass.
//! - [`finetune`]: few-shot transfer of given weights (fine-tune k steps, score).
//! - [`zoo`]: batched training of model zoos, checkpoint storage (safetensors + index), import/export.
//! - [`eval`]: scoring flat weight vectors (loss, accuracy, predictions), batched.
//! - [`metrics`]: memorization metrics: nearest training checkpoint, behavioural novelty; probe
//!   scores and model-tree discovery.
//! - [`text`]: offline sentence embeddings (all-MiniLM-L6-v2) of class names and instructions.
//! - [`device`]: where tensors live.
//! - `gemm`, `simd`: the hand-written kernels' small matrix products and per-CPU compilation
//!   (from `weightlab-kernels`).

pub mod arch;
pub mod data;
pub mod device;
pub mod eval;
pub mod finetune;
pub mod memory;
pub mod metrics;
pub mod text;
pub mod zoo;

/// The hand-written kernels' matrix products and per-CPU vector widths live in their own crate
/// (the plugin host uses them too); re-exported so `crate::gemm` and `simd` read as before.
use weightlab_kernels::gemm;
pub use weightlab_kernels::simd;

pub use arch::{Arch, Layout};
pub use data::Dataset;
pub use zoo::{Checkpoint, Side, Zoo};
