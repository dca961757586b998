//! Per-plugin limits, in depth. Defaults stop runaway plugins while leaving room for real
//! training.
//!
//! In the plugin's own process ([`crate::worker`]), for a clear message:
//! - wall clock: epoch interruption while guest code runs (a ticker thread advances the epoch
//!   every [`crate::runtime::TICK`]), and a watchdog thread for a guest blocked outside its
//!   own code (WASI poll/sleep, one long host op), which reports and ends the worker;
//! - CPU: wasmtime fuel (≈ guest instructions) per call;
//! - guest memory: `StoreLimits` caps linear memory;
//! - host tensor memory: every op is checked against the cap before libtorch allocates
//!   ([`crate::budget`]).
//!
//! From outside, as the guarantee: the worker runs under an OS data-segment limit
//! (`RLIMIT_DATA`, [`Limits::os_memory_bytes`]) and the parent kills it once a call is past
//! its deadline by more than [`KILL_MARGIN`].

use std::time::Duration;

/// Memory a worker process needs besides the plugin's caps: libtorch, wasmtime, the compiled
/// component, the zoo's weights and the samples (measured: see the README's sandbox section).
pub const WORKER_BASE_BYTES: u64 = 1 << 30;

/// How long after a call's deadline the parent kills a worker that has not stopped by itself.
pub const KILL_MARGIN: Duration = Duration::from_secs(3);

/// Limits of one plugin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Wall-clock deadline of each call (describe, fit, sample).
    pub timeout: Duration,
    pub fuel: u64,
    /// Cap on the plugin's linear memory.
    pub memory_bytes: usize,
    /// Cap on the host tensor memory it holds (graph, gradients and optimiser state included).
    pub tensor_bytes: u64,
    /// OS limit on the worker process's data segment; `None`: the caps plus [`WORKER_BASE_BYTES`].
    pub os_memory: Option<u64>,
}

impl Limits {
    /// The worker's OS memory limit in bytes.
    pub fn os_memory_bytes(&self) -> u64 {
        self.os_memory.unwrap_or_else(|| (self.memory_bytes as u64).saturating_add(self.tensor_bytes).saturating_add(WORKER_BASE_BYTES))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(600), fuel: 50_000_000_000, memory_bytes: 256 << 20, tensor_bytes: 4 << 30, os_memory: None }
    }
}

/// The plugin call in progress in this process, with its deadline: what a watchdog thread
/// reads to stop a call that is past its deadline while the guest is blocked outside its own
/// code (in a WASI poll, or inside one long host operation), where epoch interruption cannot
/// reach it. One process runs one plugin call at a time (see [`crate::worker`]).
#[derive(Debug, Clone)]
pub struct CallInProgress {
    pub call: &'static str,
    pub timeout: Duration,
    pub deadline: std::time::Instant,
    pub activity: crate::state::Activity,
}

static IN_PROGRESS: std::sync::Mutex<Option<CallInProgress>> = std::sync::Mutex::new(None);

/// Records the call starting now (`None`: no call running).
pub fn set_in_progress(call: Option<CallInProgress>) {
    if let Ok(mut slot) = IN_PROGRESS.lock() {
        *slot = call;
    }
}

/// The call running now, if any.
pub fn in_progress() -> Option<CallInProgress> {
    IN_PROGRESS.lock().ok().and_then(|slot| slot.clone())
}
