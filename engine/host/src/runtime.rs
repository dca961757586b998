//! The wasmtime runtime shared by every plugin of a run: one engine with fuel and epoch
//! interruption, a disk cache of compiled components (a component compiles once per machine),
//! and a linker with only what plugins may use: weightlab's interfaces and a WASI that has no
//! files, network, environment or clock beyond what wasmtime-wasi's empty context gives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::{CacheConfig, Config, Engine};

use crate::state::PluginState;

/// How often the epoch advances; deadlines are counted in these ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine and linker, made once per process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: std::sync::Arc<Linker<PluginState>>,
}

impl Runtime {
    /// A runtime caching compiled components under `cache_dir` (none: no disk cache).
    pub fn new(cache_dir: Option<&Path>) -> Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(true).epoch_interruption(true).wasm_component_model(true);
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating component cache {}", dir.display()))?;
            let mut cache = CacheConfig::new();
            cache.with_directory(dir);
            config.cache(Some(wasmtime::Cache::new(cache)?));
        }
        let engine = Engine::new(&config)?;
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
        Ok(Self { engine, linker: std::sync::Arc::new(linker) })
    }

    /// The default cache folder: `$WEIGHTLAB_CACHE/components` or `~/.cache/weightlab/components`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("WEIGHTLAB_CACHE") {
            return Some(PathBuf::from(dir).join("components"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/weightlab/components"))
    }

    /// Compiles (or fetches from the cache) the component at `path`.
    pub fn compile(&self, path: &Path) -> Result<Component> {
        let bytes = std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        self.compile_bytes(&bytes, path)
    }

    /// Compiles (or fetches from the cache) a component read from `path`.
    pub fn compile_bytes(&self, bytes: &[u8], path: &Path) -> Result<Component> {
        Component::new(&self.engine, bytes).map_err(anyhow::Error::from).with_context(|| format!("{} is not a valid WebAssembly component", path.display()))
    }
}
