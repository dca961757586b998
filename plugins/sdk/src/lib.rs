//! # weightlab-sdk: write a weightlab method plugin in Rust
//!
//! A method (generator or baseline) learns from the training checkpoints of a model zoo and
//! samples new flat weight vectors. It runs sandboxed as a WebAssembly component; its tensors
//! live in the host (libtorch), so the math is native and the plugin only holds handles.
//!
//! A complete plugin — Gaussian noise added to training checkpoints:
//!
//! ```ignore
//! use weightlab_sdk::prelude::*;
//!
//! /// Configuration, checked by the host against the derived JSON Schema before `fit`.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// Standard deviation of the noise.
//!     #[serde(default = "default_sigma")]
//!     sigma: f32,
//! }
//! fn default_sigma() -> f32 { 0.01 }
//!
//! struct Noise { weights: Tensor, sigma: f32 }
//!
//! impl Method for Noise {
//!     type Config = Config;
//!     fn describe() -> About {
//!         About::baseline("noise", env!("CARGO_PKG_VERSION"), "Training checkpoints plus Gaussian noise.")
//!     }
//!     fn fit(_zoo: &Zoo, weights: Tensor, config: Config, _seed: u64) -> Result<Self, String> {
//!         Ok(Noise { weights, sigma: config.sigma })
//!     }
//!     fn sample(&mut self, n: usize, seed: u64, _condition: Option<Tensor>) -> Result<Tensor, String> {
//!         let rows = Tensor::randint(self.weights.shape()[0], n, seed);
//!         let picked = self.weights.index_select(0, &rows);
//!         Ok(&picked + &(Tensor::randn(&picked.shape(), seed + 1) * self.sigma))
//!     }
//! }
//!
//! weightlab_sdk::export_method!(Noise);
//! ```
//!
//! Build it with `weightlab plugin build <crate dir>` (or `cargo build --release --target
//! wasm32-wasip2`) and name the `.wasm` file in a manifest: `plugin = "path/to/noise.wasm"`.
//!
//! Errors: a host operation that cannot be done (mismatched shapes, tensor memory cap) traps
//! the plugin and the host reports which operation failed; return `Err(String)` from `fit` or
//! `sample` for problems you detect yourself.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "generator",
        pub_export_macro: true,
        export_macro_name: "__export_generator",
        default_bindings_module: "weightlab_sdk::bindings",
    });
}

pub mod diffusion;
pub mod flow;
pub mod log;
pub mod nn;
pub mod weights;
mod tensor;

pub use schemars::{self, JsonSchema};
pub use serde::{self, Deserialize};
pub use tensor::{Optimizer, OptimizerKind, Tensor};

use bindings::weightlab::plugin::{types, zoo};

/// The zoo a method learns from: architecture, flat layout, checkpoint metadata.
pub type Zoo = zoo::ZooInfo;
/// One named tensor of the flat layout.
pub type Param = zoo::Param;
/// Metadata of one training checkpoint (figures from the training and validation data only).
pub type Checkpoint = zoo::Checkpoint;

/// How good checkpoint `i` of `zoo` is, for selecting or conditioning on checkpoints: its
/// validation accuracy, or minus its validation loss where there is no accuracy (regression);
/// 0 for a row without metadata. Never a test-set figure: plugins do not see any.
pub fn checkpoint_quality(zoo: &Zoo, i: usize) -> f32 {
    zoo.checkpoints.get(i).map_or(0.0, |c| c.validation_accuracy.unwrap_or(-c.validation_loss))
}

/// What a plugin says about itself (everything but the config schema, which is derived).
pub struct About {
    pub name: String,
    pub version: String,
    pub role: types::Role,
    pub about: String,
}

impl About {
    pub fn generator(name: &str, version: &str, about: &str) -> Self {
        Self { name: name.into(), version: version.into(), role: types::Role::Generator, about: about.into() }
    }
    pub fn baseline(name: &str, version: &str, about: &str) -> Self {
        Self { name: name.into(), version: version.into(), role: types::Role::Baseline, about: about.into() }
    }
}

/// A generator or baseline. Implement it and call [`export_method!`].
pub trait Method: Sized + 'static {
    /// The `config` table of the manifest, deserialised from JSON.
    type Config: serde::de::DeserializeOwned + JsonSchema;
    fn describe() -> About;
    /// Learns from `weights` (checkpoints × parameters).
    fn fit(zoo: &Zoo, weights: Tensor, config: Self::Config, seed: u64) -> Result<Self, String>;
    /// Returns `n` new flat weight vectors (n × parameters).
    fn sample(&mut self, n: usize, seed: u64, condition: Option<Tensor>) -> Result<Tensor, String>;
}

/// Glue between the generated bindings and [`Method`]; used by [`export_method!`].
#[doc(hidden)]
pub mod glue {
    use std::any::Any;
    use std::cell::RefCell;

    use super::*;

    thread_local! {
        static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    pub fn describe<M: Method>() -> types::Description {
        let about = M::describe();
        let schema = schemars::schema_for!(M::Config);
        types::Description {
            name: about.name,
            version: about.version,
            role: about.role,
            about: about.about,
            config_schema: serde_json::to_string(&schema).unwrap_or_else(|_| "{}".into()),
        }
    }

    pub fn fit<M: Method>(zoo: Zoo, weights: &bindings::weightlab::plugin::tensors::Tensor, config: String, seed: u64) -> Result<(), String> {
        let config: M::Config = serde_json::from_str(&config).map_err(|e| format!("config: {e}"))?;
        let method = M::fit(&zoo, Tensor::borrowed(weights), config, seed)?;
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(method)));
        Ok(())
    }

    pub fn sample<M: Method>(n: u32, seed: u64, condition: Option<&bindings::weightlab::plugin::tensors::Tensor>) -> Result<bindings::weightlab::plugin::tensors::Tensor, String> {
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let method = state
                .as_mut()
                .and_then(|b| b.downcast_mut::<M>())
                .ok_or_else(|| "sample called before fit".to_string())?;
            method.sample(n as usize, seed, condition.map(Tensor::borrowed)).map(Tensor::into_raw)
        })
    }
}

/// Exports a [`Method`] implementation as the plugin's `method` interface.
#[macro_export]
macro_rules! export_method {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __WeightlabExport;

        impl $crate::bindings::exports::weightlab::plugin::method::Guest for __WeightlabExport {
            fn describe() -> $crate::bindings::weightlab::plugin::types::Description {
                $crate::glue::describe::<$ty>()
            }
            fn fit(
                zoo: $crate::Zoo,
                weights: &$crate::bindings::weightlab::plugin::tensors::Tensor,
                config: ::std::string::String,
                seed: u64,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::glue::fit::<$ty>(zoo, weights, config, seed)
            }
            fn sample(
                n: u32,
                seed: u64,
                condition: ::std::option::Option<&$crate::bindings::weightlab::plugin::tensors::Tensor>,
            ) -> ::std::result::Result<$crate::bindings::weightlab::plugin::tensors::Tensor, ::std::string::String> {
                $crate::glue::sample::<$ty>(n, seed, condition)
            }
        }

        $crate::bindings::__export_generator!(__WeightlabExport with_types_in $crate::bindings);
    };
}

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::log;
    pub use crate::nn;
    pub use crate::{diffusion, flow, weights};
    pub use crate::{About, Checkpoint, JsonSchema, checkpoint_quality, Method, Optimizer, OptimizerKind, Param, Tensor, Zoo};
    pub use serde::Deserialize;
}
