//! The wasmtime runtime shared by every plugin of a run: one engine with fuel and epoch
//! interruption, a disk cache of compiled components (a component compiles once per machine;
//! see [`crate::compiled`] for how a cached entry is tied to the bytes it was compiled from)
//! and of compiled functions (a new component compiles only the functions no earlier one had),
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
    /// Compiled functions on disk (Cranelift's incremental cache), verified before use.
    functions: Option<std::sync::Arc<crate::compiled::Functions>>,
}

impl Runtime {
    /// A runtime caching compiled components and functions under `cache_dir` (none: no disk
    /// cache).
    pub fn new(cache_dir: Option<&Path>) -> Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(true).epoch_interruption(true).wasm_component_model(true);
        // One key for both caches (read once): without a usable one, nothing is cached.
        let not_cached = |e: anyhow::Error| eprintln!("weightlab: compiled code is not cached: {e:#}");
        let keyed = cache_dir.and_then(|dir| crate::compiled::user_key().map(|key| (dir, key)).map_err(not_cached).ok());
        let functions = keyed.and_then(|(dir, key)| crate::compiled::Functions::open(dir, key).map_err(not_cached).ok()).map(std::sync::Arc::new);
        if let Some(functions) = &functions {
            config.enable_incremental_compilation(functions.clone())?;
        }
        let engine = Engine::new(&config)?;
        let cache = keyed.and_then(|(dir, key)| crate::compiled::Cache::open(dir, &engine, key).map_err(not_cached).ok());
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
        Ok(Self { engine, linker: std::sync::Arc::new(linker), cache, functions })
    }

    /// Functions this runtime took from the function cache so far (0 without one).
    pub fn cached_functions(&self) -> usize {
        self.functions.as_ref().map_or(0, |f| f.hits())
    }

    /// Trims the compiled-code caches under `cache_dir` ([`crate::compiled::collect`]): other
    /// engine builds' compiled components, and this build's components and functions unused
    /// for `unused`.
    pub fn collect_compiled(&self, cache_dir: &Path, unused: std::time::Duration, dry_run: bool) -> Result<crate::compiled::Collected> {
        crate::compiled::collect(cache_dir, &crate::compiled::build_folder(&self.engine), unused, dry_run)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Files under `dir` whose names end with `ext` (or, with `""`, every file).
    fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p, ext));
            } else if p.to_string_lossy().ends_with(ext) {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn a_component_compiles_from_cached_functions() {
        // A built-in plugin (`make` builds them before the tests).
        let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist/copy.wasm")).expect("plugins/dist/copy.wasm: run `make build`");
        let dir = tempfile::tempdir().unwrap();
        let compile = || {
            let runtime = Runtime::new(Some(dir.path())).unwrap();
            runtime.compile(&bytes, "copy").unwrap();
            runtime.cached_functions()
        };
        // A component's identical functions (trampolines, small helpers) already share entries.
        let first = compile();
        let entries = files(&dir.path().join("functions"), "");
        assert!(entries.len() > 10, "each compiled function is stored: {}", entries.len());

        // Without the whole component's entry, its functions come from the function cache. (Not
        // quite all: a few functions get another key in each compile.)
        let components = files(dir.path(), ".cwasm");
        assert_eq!(components.len(), 1);
        std::fs::remove_file(&components[0]).unwrap();
        let second = compile();
        assert!(second > first && second * 4 >= entries.len() * 3, "{second} functions taken from {} entries (first compile: {first})", entries.len());
    }
}
