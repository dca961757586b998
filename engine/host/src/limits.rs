//! Per-plugin limits. Defaults stop runaway plugins while leaving room for real training.
//!
//! - wall clock: epoch interruption; a ticker thread advances the engine's epoch every
//!   [`crate::runtime::TICK`], and each call gets a deadline in ticks;
//! - CPU: wasmtime fuel (≈ guest instructions) per call; host tensor ops cost no fuel, so the
//!   wall-clock deadline bounds those;
//! - guest memory: `StoreLimits` caps linear memory;
//! - host tensor memory: every tensor the plugin creates is charged (see [`crate::tensors`]).

use std::time::Duration;

/// Limits of one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub timeout: Duration,
    pub fuel: u64,
    pub memory_bytes: usize,
    pub tensor_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(600), fuel: 50_000_000_000, memory_bytes: 256 << 20, tensor_bytes: 4 << 30 }
    }
}
