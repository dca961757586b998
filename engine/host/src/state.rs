//! What a plugin's store holds: its resource table (tensors, optimisers), a WASI context with
//! nothing in it but virtual clocks and seeded randomness, its limits, and what it logged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_wasi::SeedableRng;
use wasmtime::ResourceLimiter;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::budget::Budget;

/// One record of `log.metric`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricRecord {
    pub name: String,
    pub step: u32,
    /// Kept as logged, NaN and infinities included (sent as text between processes: JSON has
    /// no NaN, and a number it cannot hold must not lose the job's samples).
    #[serde(with = "non_finite_as_text")]
    pub value: f32,
}

/// `f32` in JSON with NaN and the infinities as the strings `"NaN"`, `"inf"`, `"-inf"`.
mod non_finite_as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_nan() => s.serialize_str("NaN"),
            f32::INFINITY => s.serialize_str("inf"),
            f32::NEG_INFINITY => s.serialize_str("-inf"),
            v => s.serialize_f32(v),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Number(f32),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::Number(v) => v,
            Wire::Text(t) if t == "inf" => f32::INFINITY,
            Wire::Text(t) if t == "-inf" => f32::NEG_INFINITY,
            Wire::Text(_) => f32::NAN,
        })
    }
}

/// What a plugin logged, held to the caps of [`log_caps`] and cleaned as plugin text (see
/// [`crate::untrusted`]): the parent applies it to what a worker reports, whatever the worker
/// did.
pub fn bounded_log(metrics: Vec<MetricRecord>, messages: Vec<String>) -> (Vec<MetricRecord>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut kept = Vec::with_capacity(metrics.len().min(log_caps::METRIC_RECORDS));
    for m in metrics.into_iter().take(log_caps::METRIC_RECORDS) {
        let name = crate::untrusted::line(&m.name, log_caps::METRIC_NAME_BYTES);
        if !names.contains(&name) {
            if names.len() >= log_caps::METRIC_NAMES {
                continue;
            }
            names.push(name.clone());
        }
        kept.push(MetricRecord { name, ..m });
    }
    let mut total = 0usize;
    let mut out = Vec::new();
    for text in messages {
        if total >= log_caps::MESSAGES_TOTAL_BYTES + 4096 {
            break;
        }
        let text = crate::untrusted::text(&text, log_caps::MESSAGE_BYTES);
        total += text.len();
        out.push(text);
    }
    (kept, out)
}

/// Byte caps on what a plugin can make the host keep: its log and its stderr.
pub mod log_caps {
    /// Longest message kept; longer ones are cut (and say so).
    pub const MESSAGE_BYTES: usize = 4 << 10;
    /// All messages together.
    pub const MESSAGES_TOTAL_BYTES: usize = 1 << 20;
    /// Longest metric name kept.
    pub const METRIC_NAME_BYTES: usize = 128;
    /// Metric records kept (each at most a name and two numbers).
    pub const METRIC_RECORDS: usize = 200_000;
    /// Distinct metric names kept: each becomes a curve in the report; records of further names
    /// are dropped (and a message says so).
    pub const METRIC_NAMES: usize = 64;
    /// The plugin's stderr (panic messages land there).
    pub const STDERR_BYTES: usize = 64 << 10;
}

/// Which host operation the plugin is inside right now, for the watchdog's message when a
/// deadline passes while the guest is blocked outside its own code.
#[derive(Debug, Clone, Default)]
pub struct Activity(Arc<Mutex<Option<&'static str>>>);

impl Activity {
    /// Runs `f` as host operation `op`.
    pub fn during<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> T {
        self.set(Some(op));
        let out = f();
        self.set(None);
        out
    }

    fn set(&self, op: Option<&'static str>) {
        if let Ok(mut a) = self.0.lock() {
            *a = op;
        }
    }

    /// The host operation running now, if any.
    pub fn current(&self) -> Option<&'static str> {
        self.0.lock().ok().and_then(|a| *a)
    }
}

/// A clock that starts at a fixed point and moves 1 µs per reading: a plugin can measure
/// "time" (e.g. for a progress estimate), but what it reads never depends on the machine.
#[derive(Default)]
struct VirtualClock(std::sync::atomic::AtomicU64);

impl VirtualClock {
    fn tick(&self) -> u64 {
        self.0.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed)
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.tick()
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self) -> Duration {
        // 2020-01-01T00:00:00Z plus the readings so far.
        Duration::from_secs(1_577_836_800) + Duration::from_nanos(self.tick())
    }
}

/// Per-store data of a plugin instance.
pub struct PluginState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    pub(crate) limits: StoreLimits,
    /// Host tensor memory held by the plugin, and its cap.
    pub(crate) budget: Budget,
    /// The host operation in progress (read by the worker's watchdog).
    pub(crate) activity: Activity,
    /// Metrics and messages the plugin logged (capped, see [`log_caps`]).
    pub metrics: Vec<MetricRecord>,
    metric_names: std::collections::HashSet<String>,
    metric_names_capped: bool,
    pub messages: Vec<String>,
    messages_bytes: usize,
    /// Called on `log.progress(done, total)`.
    pub(crate) on_progress: Option<Box<dyn FnMut(u32, u32) + Send>>,
    /// What the plugin wrote to stderr (panic messages end up here).
    pub(crate) stderr: MemoryOutputPipe,
}

impl PluginState {
    /// A store's data; `seed` seeds the plugin's WASI randomness (so reruns are identical).
    pub(crate) fn new(limits: StoreLimits, tensor_cap: u64, seed: u64) -> Self {
        let stderr = MemoryOutputPipe::new(log_caps::STDERR_BYTES);
        // No preopened directories, no environment, no arguments, no network; clocks are
        // virtual and randomness is seeded: the plugin can compute and log, nothing else, and
        // it computes the same thing every time.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(VirtualClock::default())
            .monotonic_clock(VirtualClock::default())
            .secure_random(rand_wasi::rngs::StdRng::seed_from_u64(seed))
            .insecure_random(rand_wasi::rngs::StdRng::seed_from_u64(seed ^ 0x5EED_5EED))
            .insecure_random_seed(u128::from(seed) << 1)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            table: ResourceTable::new(),
            wasi,
            limits,
            budget: Budget::new(tensor_cap),
            activity: Activity::default(),
            metrics: Vec::new(),
            metric_names: std::collections::HashSet::new(),
            metric_names_capped: false,
            messages: Vec::new(),
            messages_bytes: 0,
            on_progress: None,
            stderr,
        }
    }

    /// The plugin's stderr so far, as text (e.g. a Rust panic message).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_string()
    }

    /// The most host tensor memory the plugin held at once, in bytes.
    pub fn peak_tensor_bytes(&self) -> u64 {
        self.budget.peak()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl ResourceLimiter for PluginState {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.memory_growing(current, desired, maximum)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

impl crate::bindings::weightlab::plugin::zoo::Host for PluginState {}
impl crate::bindings::weightlab::plugin::types::Host for PluginState {}

impl crate::bindings::weightlab::plugin::log::Host for PluginState {
    fn metric(&mut self, name: String, step: u32, value: f32) -> anyhow::Result<()> {
        if self.metrics.len() >= log_caps::METRIC_RECORDS {
            return Ok(());
        }
        let name = crate::untrusted::line(&name, log_caps::METRIC_NAME_BYTES);
        if !self.metric_names.contains(&name) {
            if self.metric_names.len() >= log_caps::METRIC_NAMES {
                if !std::mem::replace(&mut self.metric_names_capped, true) {
                    self.message(format!("[metrics of further names dropped: the log keeps {} metric names]", log_caps::METRIC_NAMES))?;
                }
                return Ok(());
            }
            self.metric_names.insert(name.clone());
        }
        self.metrics.push(MetricRecord { name, step, value });
        Ok(())
    }

    fn message(&mut self, text: String) -> anyhow::Result<()> {
        if self.messages_bytes >= log_caps::MESSAGES_TOTAL_BYTES {
            return Ok(());
        }
        let text = crate::untrusted::text(&text, log_caps::MESSAGE_BYTES.min(log_caps::MESSAGES_TOTAL_BYTES - self.messages_bytes));
        self.messages_bytes += text.len();
        self.messages.push(text);
        if self.messages_bytes >= log_caps::MESSAGES_TOTAL_BYTES {
            self.messages.push(format!("[further messages dropped: the log keeps {} KiB]", log_caps::MESSAGES_TOTAL_BYTES >> 10));
        }
        Ok(())
    }

    fn progress(&mut self, done: u32, total: u32) -> anyhow::Result<()> {
        if let Some(f) = self.on_progress.as_mut() {
            f(done, total);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_log_is_held_to_the_caps_whatever_the_worker_sent() {
        let metrics: Vec<MetricRecord> = (0..1000).map(|i| MetricRecord { name: format!("m\x1b[2J{i}"), step: 0, value: f32::NAN }).collect();
        let messages = vec!["x".repeat(1 << 20), "\x1b]52;c;eA==\x07ok".into()];
        let (metrics, messages) = bounded_log(metrics, messages);
        assert_eq!(metrics.len(), log_caps::METRIC_NAMES);
        assert!(metrics.iter().all(|m| !m.name.contains('\x1b') && m.value.is_nan()));
        assert!(messages[0].len() <= log_caps::MESSAGE_BYTES + 40 && messages[1] == "]52;c;eA==ok");
        let wire = serde_json::to_string(&MetricRecord { name: "loss".into(), step: 1, value: f32::INFINITY }).unwrap();
        assert_eq!(serde_json::from_str::<MetricRecord>(&wire).unwrap().value, f32::INFINITY, "{wire}");
    }
}
