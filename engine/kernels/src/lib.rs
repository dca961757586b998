//! weightlab's hand-written CPU kernels, shared by the zoo engines and metrics
//! (`weightlab-compute`) and the plugin host (`weightlab-host`).
//!
//! - [`simd`]: the vector width kernels run at, chosen per CPU by measurement, and
//!   [`multiversion!`] to compile a loop once per width.
//! - [`gemm`]: small matrix products with a fixed order of summation (the same bits on every
//!   CPU and thread count).
//! - [`conv1d`]: 1-D convolutions and their gradients as those products, for the generators'
//!   weight autoencoders (p-diff, FLoWN), where libtorch's kernels are slow on long rows of
//!   few channels.
//! - [`activation`]: a vectorizable exponential, SiLU and its gradient in one pass each (the
//!   autoencoders' activations), GELU's (the declared networks').
//! - [`random`]: seeded uniform and normal draws from a counter-based generator, any range of
//!   a stream on any thread (the plugins' `randn` and `rand`).

pub mod activation;
pub mod conv1d;
pub mod gemm;
pub mod halving;
pub mod random;
pub mod simd;
