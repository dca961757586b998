//! The wasmtime runtime shared by every plugin of a run: one engine with fuel and epoch
//! interruption, a disk cache of compiled components (a component compiles once per machine;
//! see [`crate::compiled`] for how a cached entry is tied to the bytes it was compiled from),
//! and a linker with only what plugins may use: weightlab's interfaces and a WASI that has no
//! files, network, environment or clock beyond what wasmtime-wasi's empty context gives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::state::PluginState;

/// How often the epoch advances; deadlines are counted in these ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine and linker, made once per process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: std::sync::Arc<Linker<PluginState>>,
    /// Compiled components on disk, verified before use; `None`: compile every time.
    cache: Option<crate::compiled::Cache>,
}

impl Runtime {
    /// A runtime caching compiled components under `cache_dir` (none: no disk cache).
    pub fn new(cache_dir: Option<&Path>) -> Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(true).epoch_interruption(true).wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let cache = match cache_dir {
            Some(dir) => crate::compiled::Cache::open(dir, &engine).map_err(|e| eprintln!("weightlab: compiled components are not cached: {e}")).ok(),
            None => None,
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        crate::bindings::Generator::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(&mut linker, |s| s)?;
        crate::compat::add_to_linker(&mut linker)?;
        let ticker = engine.weak();
        std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })?;
        Ok(Self { engine, linker: std::sync::Arc::new(linker), cache })
    }

    /// The default cache folder: `<cache>/components` ([`crate::cache_dir`]).
    pub fn default_cache_dir() -> Option<PathBuf> {
        crate::cache_dir().map(|c| c.join("components"))
    }

    /// Compiles `bytes` (or takes its compiled form from the cache, once verified); `what`
    /// names the plugin in errors.
    pub fn compile(&self, bytes: &[u8], what: &str) -> Result<Component> {
        let compile = || Component::new(&self.engine, bytes).map_err(anyhow::Error::from).with_context(|| format!("{what} is not a valid WebAssembly component"));
        match &self.cache {
            Some(cache) => cache.get_or_compile(&self.engine, bytes, compile),
            None => compile(),
        }
    }
}
