//! What a plugin's store holds: its resource table (tensors, optimisers), an empty WASI
//! context, its limits, and what it logged.

use wasmtime::ResourceLimiter;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// One record of `log.metric`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricRecord {
    pub name: String,
    pub step: u32,
    pub value: f32,
}

/// Per-store data of a plugin instance.
pub struct PluginState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    pub(crate) limits: StoreLimits,
    /// Bytes of host tensors the plugin holds now, and its cap.
    pub(crate) tensor_bytes: u64,
    pub(crate) tensor_cap: u64,
    /// Metrics and messages the plugin logged.
    pub metrics: Vec<MetricRecord>,
    pub messages: Vec<String>,
    /// Called on `log.progress(done, total)`.
    pub(crate) on_progress: Option<Box<dyn FnMut(u32, u32) + Send>>,
    /// What the plugin wrote to stderr (panic messages end up here).
    pub(crate) stderr: MemoryOutputPipe,
}

impl PluginState {
    pub(crate) fn new(limits: StoreLimits, tensor_cap: u64) -> Self {
        let stderr = MemoryOutputPipe::new(64 * 1024);
        // No preopened directories, no environment, no arguments, no network: the plugin can
        // compute and log, nothing else.
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        Self {
            table: ResourceTable::new(),
            wasi,
            limits,
            tensor_bytes: 0,
            tensor_cap,
            metrics: Vec::new(),
            messages: Vec::new(),
            on_progress: None,
            stderr,
        }
    }

    /// The plugin's stderr so far, as text (e.g. a Rust panic message).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_string()
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
        if self.metrics.len() < 1_000_000 {
            self.metrics.push(MetricRecord { name, step, value });
        }
        Ok(())
    }

    fn message(&mut self, text: String) -> anyhow::Result<()> {
        if self.messages.len() < 10_000 {
            self.messages.push(text);
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
