//! # weightlab-sdk: write a weightlab method plugin in Rust
//!
//! A method (generator or baseline) learns from the training checkpoints of a model zoo and
//! samples new flat weight vectors ([`Method`], [`export_method!`]); a probe learns to predict a
//! property of models from their weights ([`Probe`], [`export_probe!`], helpers in
//! [`probing`]). It runs sandboxed as a WebAssembly component; its tensors
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
//!     fn fit(_zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
//!         Ok(Noise { weights, sigma: config.sigma })
//!     }
//!     fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
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
//! wasm32-wasip2`), check it with `weightlab plugin test <wasm>`, and name the `.wasm` file in a
//! manifest: `plugin = "path/to/noise.wasm"`. The author's guide, `docs/src/plugins.md` in the
//! weightlab repository, walks through it: the trait, the tensor API, limits, testing, pinning
//! and versions.
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

/// Bindings of the `probe-plugin` world. The interfaces it shares with the method worlds are
/// those of [`bindings`], so a [`Tensor`] is the same type in every role.
#[doc(hidden)]
pub mod probe_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "probe-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_probe",
        default_bindings_module: "weightlab_sdk::probe_bindings",
        with: {
            "weightlab:plugin/tensors@0.5.0": crate::bindings::weightlab::plugin::tensors,
            "weightlab:plugin/log@0.5.0": crate::bindings::weightlab::plugin::log,
            "weightlab:plugin/zoo@0.5.0": crate::bindings::weightlab::plugin::zoo,
            "weightlab:plugin/types@0.5.0": crate::bindings::weightlab::plugin::types,
        },
    });
}

pub mod conditioning;
pub mod diffusion;
pub mod flow;
pub mod log;
pub mod nn;
pub mod probing;
mod tensor;
pub mod weights;

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
/// What the manifest says of the zoo before anything trains: what [`Method::check`] and
/// [`Probe::check`] see (the training checkpoints counted, when known, not listed).
pub type ZooPlan = zoo::ZooPlan;
/// A mistake [`Method::check`] found in a config.
pub type Problem = zoo::Problem;

impl Problem {
    /// A problem with config key `key` (the host points at its line in the manifest).
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        Problem { key: Some(key.to_string()), message: message.into() }
    }

    /// A problem with the config as a whole.
    pub fn config(message: impl Into<String>) -> Self {
        Problem { key: None, message: message.into() }
    }
}

impl ZooPlan {
    /// The problem of a zoo with fewer than `least` training checkpoints, when the manifest
    /// says how many it will have.
    pub fn needs_checkpoints(&self, least: u32) -> Option<Problem> {
        self.checkpoints.filter(|&n| n < least).map(|n| Problem::config(format!("needs at least {least} training checkpoints; the zoo will have {n}")))
    }
}

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
    pub fn probe(name: &str, version: &str, about: &str) -> Self {
        Self { name: name.into(), version: version.into(), role: types::Role::Probe, about: about.into() }
    }
}

/// What a probe predicts: its name, kind and label names (see [`TargetKind`]).
pub type Target = probe_bindings::exports::weightlab::plugin::probe::Target;
/// Multi-label (labels are 0/1 per label), single-label (a label index per model) or
/// regression (a value per model); predictions are a score per label, or a value.
pub type TargetKind = probe_bindings::exports::weightlab::plugin::probe::TargetKind;

/// A probe: learns to predict a property of models from their weights. Implement it and call
/// [`export_probe!`].
pub trait Probe: Sized + 'static {
    /// The `config` table of the manifest, deserialised from JSON.
    type Config: serde::de::DeserializeOwned + JsonSchema;
    fn describe() -> About;
    /// The mistakes in `config` for this zoo and `target`, found before anything trains
    /// (`weightlab validate` and `run` call it). `target.labels` is empty where the labels
    /// show only after training. Default: none.
    fn check(_zoo: &ZooPlan, _target: &Target, _config: &Self::Config) -> Vec<Problem> {
        Vec::new()
    }
    /// Learns from `weights` (models × parameters) and `labels`: models × labels of 0/1
    /// (multi-label), models × 1 label indices (single-label) or models × 1 values
    /// (regression). `label_embeddings` (labels × dim) come when the manifest asks for them.
    fn fit(zoo: &Zoo, weights: Tensor, labels: Tensor, target: &Target, label_embeddings: Option<Tensor>, config: Self::Config, seed: u64) -> Result<Self, String>;
    /// Scores (models × labels) or values (models × 1) for `weights`. With `label_embeddings`,
    /// score the labels they embed, which may include labels never seen in `fit`.
    fn predict(&mut self, weights: Tensor, label_embeddings: Option<Tensor>) -> Result<Tensor, String>;
}

/// What a task is, for conditional generators: given when the zoo's data is a task family
/// (`[data.*] tasks`), empty otherwise. In [`Method::fit`] each tensor has one row per training
/// checkpoint; in [`Method::sample`], one row for the target task.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// The task id (`checkpoint.task`); in `sample`, a task no training checkpoint learned.
    pub task: Option<u32>,
    /// Set encoding of the task's support examples (rows × labels·features): per label, the
    /// mean of a fixed feature extractor's features over the support examples.
    pub support: Option<Tensor>,
    /// Text embedding (all-MiniLM-L6-v2, rows × 384) of the task's instruction.
    pub instruction: Option<Tensor>,
}

impl Condition {
    /// Whether nothing is known about the task (an ordinary zoo).
    pub fn is_empty(&self) -> bool {
        self.support.is_none() && self.instruction.is_none()
    }

    fn borrowed(c: bindings::exports::weightlab::plugin::method::Condition<'_>) -> Self {
        Condition { task: c.task, support: c.support.map(Tensor::borrowed), instruction: c.instruction.map(Tensor::borrowed) }
    }
}

/// A generator or baseline. Implement it and call [`export_method!`].
pub trait Method: Sized + 'static {
    /// The `config` table of the manifest, deserialised from JSON.
    type Config: serde::de::DeserializeOwned + JsonSchema;
    /// Whether the method learns from checkpoints of several architectures (`zoo.sources`, the
    /// weights zero-padded to the widest). Methods that do not are refused such zoos with a
    /// clear reason before `fit`.
    const MIXED_ARCHITECTURES: bool = false;
    fn describe() -> About;
    /// The mistakes in `config` for the zoo `fit` will get (its size, layout, data), found
    /// before anything trains: `weightlab validate` and `run` call it for every method, after
    /// the config satisfied the schema. Say what depends on the zoo here (`k` below
    /// `zoo.checkpoints`, a layer name the layout has); what the config alone can break
    /// belongs in the schema. Default: none.
    fn check(_zoo: &ZooPlan, _config: &Self::Config) -> Vec<Problem> {
        Vec::new()
    }
    /// Learns from `weights` (checkpoints × parameters); `condition` holds each checkpoint's
    /// task (empty off task families: unconditional methods ignore it).
    fn fit(zoo: &Zoo, weights: Tensor, condition: Condition, config: Self::Config, seed: u64) -> Result<Self, String>;
    /// Returns `n` new flat weight vectors (n × parameters) for the task `condition` describes.
    fn sample(&mut self, n: usize, seed: u64, condition: &Condition) -> Result<Tensor, String>;
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
        description(M::describe(), schemars::schema_for!(M::Config))
    }

    pub fn describe_probe<P: Probe>() -> types::Description {
        description(P::describe(), schemars::schema_for!(P::Config))
    }

    fn description(about: About, schema: schemars::Schema) -> types::Description {
        types::Description { name: about.name, version: about.version, role: about.role, about: about.about, config_schema: serde_json::to_string(&schema).unwrap_or_else(|_| "{}".into()) }
    }

    /// A config the host hands over: JSON that satisfies the schema, so a failure here is a
    /// schema the type does not match.
    fn parsed<C: serde::de::DeserializeOwned>(config: &str) -> Result<C, Problem> {
        serde_json::from_str(config).map_err(|e| Problem::config(format!("config: {e}")))
    }

    pub fn check<M: Method>(zoo: ZooPlan, config: String) -> Vec<Problem> {
        let mut problems = Vec::new();
        if zoo.sources.len() > 1 && !M::MIXED_ARCHITECTURES {
            problems.push(Problem::config(mixed_architectures(&zoo.sources)));
        }
        match parsed::<M::Config>(&config) {
            Ok(config) => problems.extend(M::check(&zoo, &config)),
            Err(p) => problems.push(p),
        }
        problems
    }

    pub fn check_probe<P: Probe>(zoo: ZooPlan, target: Target, config: String) -> Vec<Problem> {
        match parsed::<P::Config>(&config) {
            Ok(config) => P::check(&zoo, &target, &config),
            Err(p) => vec![p],
        }
    }

    fn mixed_architectures(sources: &[zoo::Source]) -> String {
        let names: Vec<String> = sources.iter().map(|s| format!("{} ({} parameters)", s.zoo, s.parameters)).collect();
        format!("learns from one architecture, and was given {} (`zoos` is for methods such as igpg)", names.join(", "))
    }

    pub fn fit<M: Method>(
        zoo: Zoo,
        weights: &bindings::weightlab::plugin::tensors::Tensor,
        condition: bindings::exports::weightlab::plugin::method::Condition<'_>,
        config: String,
        seed: u64,
    ) -> Result<(), String> {
        let config: M::Config = serde_json::from_str(&config).map_err(|e| format!("config: {e}"))?;
        if zoo.sources.len() > 1 && !M::MIXED_ARCHITECTURES {
            return Err(mixed_architectures(&zoo.sources));
        }
        let method = M::fit(&zoo, Tensor::borrowed(weights), Condition::borrowed(condition), config, seed)?;
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(method)));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn fit_probe<P: Probe>(
        zoo: Zoo,
        weights: &bindings::weightlab::plugin::tensors::Tensor,
        labels: &bindings::weightlab::plugin::tensors::Tensor,
        target: Target,
        label_embeddings: Option<&bindings::weightlab::plugin::tensors::Tensor>,
        config: String,
        seed: u64,
    ) -> Result<(), String> {
        let config: P::Config = serde_json::from_str(&config).map_err(|e| format!("config: {e}"))?;
        let probe = P::fit(&zoo, Tensor::borrowed(weights), Tensor::borrowed(labels), &target, label_embeddings.map(Tensor::borrowed), config, seed)?;
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(probe)));
        Ok(())
    }

    pub fn predict<P: Probe>(
        weights: &bindings::weightlab::plugin::tensors::Tensor,
        label_embeddings: Option<&bindings::weightlab::plugin::tensors::Tensor>,
    ) -> Result<bindings::weightlab::plugin::tensors::Tensor, String> {
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let probe = state.as_mut().and_then(|b| b.downcast_mut::<P>()).ok_or_else(|| "predict called before fit".to_string())?;
            probe.predict(Tensor::borrowed(weights), label_embeddings.map(Tensor::borrowed)).map(Tensor::into_raw)
        })
    }

    pub fn sample<M: Method>(n: u32, seed: u64, condition: bindings::exports::weightlab::plugin::method::Condition<'_>) -> Result<bindings::weightlab::plugin::tensors::Tensor, String> {
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let method = state.as_mut().and_then(|b| b.downcast_mut::<M>()).ok_or_else(|| "sample called before fit".to_string())?;
            method.sample(n as usize, seed, &Condition::borrowed(condition)).map(Tensor::into_raw)
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
            fn check(zoo: $crate::ZooPlan, config: ::std::string::String) -> ::std::vec::Vec<$crate::Problem> {
                $crate::glue::check::<$ty>(zoo, config)
            }
            fn fit(
                zoo: $crate::Zoo,
                weights: &$crate::bindings::weightlab::plugin::tensors::Tensor,
                condition: $crate::bindings::exports::weightlab::plugin::method::Condition<'_>,
                config: ::std::string::String,
                seed: u64,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::glue::fit::<$ty>(zoo, weights, condition, config, seed)
            }
            fn sample(
                n: u32,
                seed: u64,
                condition: $crate::bindings::exports::weightlab::plugin::method::Condition<'_>,
            ) -> ::std::result::Result<$crate::bindings::weightlab::plugin::tensors::Tensor, ::std::string::String> {
                $crate::glue::sample::<$ty>(n, seed, condition)
            }
        }

        $crate::bindings::__export_generator!(__WeightlabExport with_types_in $crate::bindings);
    };
}

/// Exports a [`Probe`] implementation as the plugin's `probe` interface.
#[macro_export]
macro_rules! export_probe {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __WeightlabProbeExport;

        impl $crate::probe_bindings::exports::weightlab::plugin::probe::Guest for __WeightlabProbeExport {
            fn describe() -> $crate::bindings::weightlab::plugin::types::Description {
                $crate::glue::describe_probe::<$ty>()
            }
            fn check(zoo: $crate::ZooPlan, target: $crate::Target, config: ::std::string::String) -> ::std::vec::Vec<$crate::Problem> {
                $crate::glue::check_probe::<$ty>(zoo, target, config)
            }
            fn fit(
                zoo: $crate::Zoo,
                weights: &$crate::bindings::weightlab::plugin::tensors::Tensor,
                labels: &$crate::bindings::weightlab::plugin::tensors::Tensor,
                target: $crate::Target,
                label_embeddings: ::std::option::Option<&$crate::bindings::weightlab::plugin::tensors::Tensor>,
                config: ::std::string::String,
                seed: u64,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::glue::fit_probe::<$ty>(zoo, weights, labels, target, label_embeddings, config, seed)
            }
            fn predict(
                weights: &$crate::bindings::weightlab::plugin::tensors::Tensor,
                label_embeddings: ::std::option::Option<&$crate::bindings::weightlab::plugin::tensors::Tensor>,
            ) -> ::std::result::Result<$crate::bindings::weightlab::plugin::tensors::Tensor, ::std::string::String> {
                $crate::glue::predict::<$ty>(weights, label_embeddings)
            }
        }

        $crate::probe_bindings::__export_probe!(__WeightlabProbeExport with_types_in $crate::probe_bindings);
    };
}

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::log;
    pub use crate::nn;
    pub use crate::{About, Checkpoint, Condition, JsonSchema, Method, Optimizer, OptimizerKind, Param, Probe, Problem, Target, TargetKind, Tensor, Zoo, ZooPlan, checkpoint_quality};
    pub use crate::{conditioning, diffusion, flow, probing, weights};
    pub use serde::Deserialize;
}
