//! Runs method plugins: WebAssembly components on wasmtime, sandboxed and limited, whose
//! tensors live here in libtorch.
//!
//! - [`runtime`]: the wasmtime engine (compiled-component cache, epoch ticker) and loading.
//! - [`plugin`]: one loaded plugin: describe, fit, sample (methods) or fit, predict (probes),
//!   with failures as [`PluginError`].
//! - [`limits`]: per-plugin limits: deadline, fuel, memory, host tensor memory, OS memory.
//! - [`budget`] and [`shapes`]: host tensor memory accounted before libtorch allocates.
//! - [`worker`]: each plugin job in its own process, killed on its deadline.
//! - [`code`]: a plugin's component bytes, read once and hashed: what workers are handed.
//! - [`compiled`]: the disk cache of compiled components, each entry verified before use.
//! - [`untrusted`] and [`config_schema`]: plugin text bounded and cleaned, config schemas
//!   held to a subset that cannot recurse or reach out.
//! - [`abi`]: which WIT versions are compatible (semver).
//! - [`compat`]: adapters that run plugins built against older frozen WIT versions.
//! - [`metadata`]: a built plugin's description in a custom section, read without running it.
//! - [`native`]: operations on weightlab's own kernels where libtorch's are slow (1-D convolutions).
//! - [`tensors`]: the `tensors` interface on libtorch.
//! - [`state`]: per-store data and the `log` interface.
//! - [`bench`]: the native side of the plugin-overhead benchmark.

pub mod abi;
pub mod bench;
pub mod budget;
pub mod code;
pub mod compat;
pub mod compiled;
pub mod config_schema;
pub mod fused_adam;
pub mod limits;
pub mod metadata;
pub mod native;
pub mod plugin;
pub mod runtime;
pub mod shapes;
pub mod spawn;
pub mod state;
pub mod tensors;
pub mod untrusted;
pub mod worker;

pub use code::PluginCode;
pub use limits::Limits;
pub use plugin::{CheckpointView, Conditions, Description, ParamView, Plugin, PluginError, ProbeTarget, Problem, Role, SourceView, TargetKind, ZooPlan, ZooView, role_name};
pub use runtime::Runtime;

/// Generated bindings of `plugins/wit` (world `generator`; `baseline` exports the same).
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit",
        world: "generator",
        imports: { default: trappable },
        with: {
            "weightlab:plugin/tensors.tensor": crate::tensors::TensorEntry,
            "weightlab:plugin/tensors.optimizer": crate::tensors::OptimizerEntry,
        },
        anyhow: true,
    });
}

/// Generated bindings of the `probe-plugin` world; the interfaces it shares with the method
/// worlds (tensors, log, zoo, types) are the ones in [`bindings`], so one host implementation
/// serves every role.
pub mod probe_bindings {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit",
        world: "probe-plugin",
        imports: { default: trappable },
        with: {
            "weightlab:plugin/tensors": crate::bindings::weightlab::plugin::tensors,
            "weightlab:plugin/log": crate::bindings::weightlab::plugin::log,
            "weightlab:plugin/zoo": crate::bindings::weightlab::plugin::zoo,
            "weightlab:plugin/types": crate::bindings::weightlab::plugin::types,
        },
        anyhow: true,
    });
}

/// The ABI version this host implements (the `weightlab:plugin` package version).
pub const ABI_VERSION: &str = "0.5.0";

pub use weightlab_manifest::files::cache_dir;
