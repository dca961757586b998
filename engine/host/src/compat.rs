//! Plugins built against older WIT versions keep running.
//!
//! Every released `weightlab:plugin` version is frozen under `plugins/wit/frozen/`. Between
//! 0.1 and today only three interfaces changed — `zoo` (checkpoint figures, classes, tasks,
//! sources), `method` (conditions) and `probe` (targets) — while `tensors`, `log` and `types` are
//! the same functions and types in every version. So the host adapts an old plugin in two
//! steps:
//!
//! 1. **Imports.** Its imports of the unchanged interfaces are relabelled to this host's
//!    version ([`relabel`]: the version string inside the component's import and instance
//!    names, same length, nothing else touched), so they link to the one host implementation.
//! 2. **Exports.** Its `method` or `probe` export is called through bindings generated from its
//!    frozen WIT ([`Legacy`]), and the host turns today's zoo description into the old record:
//!    0.1 plugins receive the validation figures under the old `test-accuracy`/`test-loss`
//!    names (they never see the test split), pre-0.3 plugins no classes or tasks, pre-0.4
//!    plugins no conditions and only zoos of one architecture. Pre-0.5 plugins have no
//!    `check`: they find nothing before training (their schema still holds).
//!
//! Probes before 0.3 never ran (the probe world had no targets), so they are refused.

use wasmparser::{Parser, Payload};
use wasmtime::Store;
use wasmtime::component::{Component, Linker, Resource};

use crate::plugin::ZooView;
use crate::state::PluginState;
use crate::tensors::TensorEntry;

/// Older versions this host runs (major.minor), oldest first.
pub const SUPPORTED: &[&str] = &["0.1", "0.2", "0.3", "0.4"];

/// Interfaces whose functions and types are the same in every version.
const UNCHANGED: &[&str] = &["tensors", "log", "types"];

/// The frozen version this host runs for a plugin built against `version`, if any.
pub fn supported(version: &str) -> Option<&'static str> {
    let mut parts = version.split('.');
    let minor = format!("{}.{}", parts.next()?, parts.next()?);
    SUPPORTED.iter().find(|v| **v == minor).copied()
}

/// Whether this host runs a plugin built against WIT `version` (`None`: a component that uses
/// no weightlab:plugin interface), and how, in words.
pub fn runs_here(version: Option<&str>) -> String {
    match version {
        None => "no: it uses no weightlab:plugin interface".to_string(),
        Some(v) if crate::abi::compatible(crate::ABI_VERSION, v) => "yes".to_string(),
        Some(v) if supported(v).is_some() => format!("yes, through the adapter for {v} (this host implements {})", crate::ABI_VERSION),
        Some(_) => format!("no: this host runs {} and {}", crate::ABI_VERSION, SUPPORTED.join(", ")),
    }
}

/// The component with its imports of the unchanged interfaces at `from` relabelled to `to`.
/// Only names in import and instance sections change (core modules' import module names and the
/// instantiation arguments that feed them, the component's own imports); both versions must be
/// spelled with the same number of bytes, so no offset moves.
pub fn relabel(bytes: &[u8], from: &str, to: &str) -> Result<Vec<u8>, String> {
    if from.len() != to.len() {
        return Err(format!("cannot adapt WIT {from} to {to}: the version strings differ in length"));
    }
    let mut ranges = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ComponentImportSection(r) => ranges.push(r.range()),
            Payload::ImportSection(r) => ranges.push(r.range()),
            Payload::InstanceSection(r) => ranges.push(r.range()),
            Payload::ComponentInstanceSection(r) => ranges.push(r.range()),
            _ => {}
        }
    }
    let mut out = bytes.to_vec();
    for name in UNCHANGED {
        let (old, new) = (format!("weightlab:plugin/{name}@{from}"), format!("weightlab:plugin/{name}@{to}"));
        for range in &ranges {
            let section = &mut out[range.clone()];
            let mut at = 0;
            while let Some(i) = section[at..].windows(old.len()).position(|w| w == old.as_bytes()) {
                section[at + i..at + i + old.len()].copy_from_slice(new.as_bytes());
                at += i + old.len();
            }
        }
    }
    Ok(out)
}

/// Bindings of one frozen WIT version's world, whose unchanged interfaces are today's (the
/// version is spelled out in each literal: `bindgen!` takes literals only).
macro_rules! frozen {
    ($module:ident, $path:literal, $world:literal, $tensors:literal, $log:literal, $types:literal) => {
        #[doc = concat!("Bindings of `", $path, "` (world `", $world, "`).")]
        pub mod $module {
            wasmtime::component::bindgen!({
                path: $path,
                world: $world,
                imports: { default: trappable },
                with: {
                    $tensors: crate::bindings::weightlab::plugin::tensors,
                    $log: crate::bindings::weightlab::plugin::log,
                    $types: crate::bindings::weightlab::plugin::types,
                },
                anyhow: true,
            });
        }
    };
}

frozen!(v0_1, "../../plugins/wit/frozen/0.1.0", "generator", "weightlab:plugin/tensors@0.1.0", "weightlab:plugin/log@0.1.0", "weightlab:plugin/types@0.1.0");
frozen!(v0_2, "../../plugins/wit/frozen/0.2.0", "generator", "weightlab:plugin/tensors@0.2.0", "weightlab:plugin/log@0.2.0", "weightlab:plugin/types@0.2.0");
frozen!(v0_3, "../../plugins/wit/frozen/0.3.0", "generator", "weightlab:plugin/tensors@0.3.0", "weightlab:plugin/log@0.3.0", "weightlab:plugin/types@0.3.0");
frozen!(v0_3_probe, "../../plugins/wit/frozen/0.3.0", "probe-plugin", "weightlab:plugin/tensors@0.3.0", "weightlab:plugin/log@0.3.0", "weightlab:plugin/types@0.3.0");
frozen!(v0_4, "../../plugins/wit/frozen/0.4.0", "generator", "weightlab:plugin/tensors@0.4.0", "weightlab:plugin/log@0.4.0", "weightlab:plugin/types@0.4.0");
frozen!(v0_4_probe, "../../plugins/wit/frozen/0.4.0", "probe-plugin", "weightlab:plugin/tensors@0.4.0", "weightlab:plugin/log@0.4.0", "weightlab:plugin/types@0.4.0");

/// Defines the type-only `zoo` interface of every supported version (an old plugin imports it
/// for its record types; it has no functions).
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    for version in SUPPORTED {
        linker.instance(&format!("weightlab:plugin/zoo@{version}.0"))?;
    }
    Ok(())
}

/// The exports of a plugin built against an older version.
pub enum Legacy {
    V0_1(v0_1::Generator),
    V0_2(v0_2::Generator),
    V0_3(v0_3::Generator),
    V0_3Probe(v0_3_probe::ProbePlugin),
    V0_4(v0_4::Generator),
    V0_4Probe(v0_4_probe::ProbePlugin),
}

type Tensor = Resource<TensorEntry>;
type Description = crate::bindings::weightlab::plugin::types::Description;

impl Legacy {
    /// Instantiates `component` (already relabelled) built against `version` (a [`SUPPORTED`]
    /// entry).
    pub fn instantiate(version: &str, probe: bool, store: &mut Store<PluginState>, component: &Component, linker: &Linker<PluginState>) -> wasmtime::Result<Self> {
        Ok(match (version, probe) {
            ("0.1", false) => Legacy::V0_1(v0_1::Generator::instantiate(store, component, linker)?),
            ("0.2", false) => Legacy::V0_2(v0_2::Generator::instantiate(store, component, linker)?),
            ("0.3", false) => Legacy::V0_3(v0_3::Generator::instantiate(store, component, linker)?),
            ("0.3", true) => Legacy::V0_3Probe(v0_3_probe::ProbePlugin::instantiate(store, component, linker)?),
            ("0.4", false) => Legacy::V0_4(v0_4::Generator::instantiate(store, component, linker)?),
            ("0.4", true) => Legacy::V0_4Probe(v0_4_probe::ProbePlugin::instantiate(store, component, linker)?),
            (v, true) => wasmtime::bail!("is a probe built against WIT {v}, before probes could run (0.3.0); rebuild it against plugins/wit"),
            (v, false) => wasmtime::bail!("WIT {v} is not a version this host adapts"),
        })
    }

    pub fn is_probe(&self) -> bool {
        matches!(self, Legacy::V0_3Probe(_) | Legacy::V0_4Probe(_))
    }

    pub fn describe(&self, s: &mut Store<PluginState>) -> wasmtime::Result<Description> {
        match self {
            Legacy::V0_1(g) => g.weightlab_plugin_method().call_describe(s),
            Legacy::V0_2(g) => g.weightlab_plugin_method().call_describe(s),
            Legacy::V0_3(g) => g.weightlab_plugin_method().call_describe(s),
            Legacy::V0_3Probe(p) => p.weightlab_plugin_probe().call_describe(s),
            Legacy::V0_4(g) => g.weightlab_plugin_method().call_describe(s),
            Legacy::V0_4Probe(p) => p.weightlab_plugin_probe().call_describe(s),
        }
    }

    /// `method.fit` as the old version has it: before 0.4 without conditions and on zoos of one
    /// architecture only.
    pub fn fit(&self, s: &mut Store<PluginState>, zoo: &ZooView, weights: &Tensor, condition: &Condition, config: &str, seed: u64) -> wasmtime::Result<Result<(), String>> {
        if zoo.sources.len() > 1 && !matches!(self, Legacy::V0_4(_)) {
            return Ok(Err("learns from one architecture (it was built before WIT 0.4.0, which brought zoos of several); rebuild it against plugins/wit".into()));
        }
        let w = crate::tensors::borrow(weights);
        match self {
            Legacy::V0_1(g) => g.weightlab_plugin_method().call_fit(s, &zoo_v0_1(zoo), w, config, seed),
            Legacy::V0_2(g) => g.weightlab_plugin_method().call_fit(s, &zoo_v0_2(zoo), w, config, seed),
            Legacy::V0_3(g) => g.weightlab_plugin_method().call_fit(s, &zoo_v0_3(zoo), w, config, seed),
            Legacy::V0_4(g) => g.weightlab_plugin_method().call_fit(s, &zoo_v0_4(zoo), w, condition_v0_4(condition), config, seed),
            Legacy::V0_3Probe(_) | Legacy::V0_4Probe(_) => unreachable!("the caller checks the role"),
        }
    }

    /// `method.sample` as the old version has it (before 0.4, its reserved condition left
    /// empty).
    pub fn sample(&self, s: &mut Store<PluginState>, n: u32, seed: u64, condition: &Condition) -> wasmtime::Result<Result<Tensor, String>> {
        match self {
            Legacy::V0_1(g) => g.weightlab_plugin_method().call_sample(s, n, seed, None),
            Legacy::V0_2(g) => g.weightlab_plugin_method().call_sample(s, n, seed, None),
            Legacy::V0_3(g) => g.weightlab_plugin_method().call_sample(s, n, seed, None),
            Legacy::V0_4(g) => g.weightlab_plugin_method().call_sample(s, n, seed, condition_v0_4(condition)),
            Legacy::V0_3Probe(_) | Legacy::V0_4Probe(_) => unreachable!("the caller checks the role"),
        }
    }

    /// `probe.fit` of 0.3 and 0.4 (the same call as today's, on their zoo records).
    #[allow(clippy::too_many_arguments)]
    pub fn fit_probe(
        &self,
        s: &mut Store<PluginState>,
        zoo: &ZooView,
        weights: &Tensor,
        labels: &Tensor,
        target: &crate::ProbeTarget,
        embeddings: Option<&Tensor>,
        config: &str,
        seed: u64,
    ) -> wasmtime::Result<Result<(), String>> {
        let (w, y, e) = (crate::tensors::borrow(weights), crate::tensors::borrow(labels), embeddings.map(crate::tensors::borrow));
        match self {
            Legacy::V0_3Probe(plugin) => {
                use v0_3_probe::exports::weightlab::plugin::probe as p;
                let target = target_record!(p, target);
                plugin.weightlab_plugin_probe().call_fit(s, &zoo_v0_3_probe(zoo), w, y, &target, e, config, seed)
            }
            Legacy::V0_4Probe(plugin) => {
                use v0_4_probe::exports::weightlab::plugin::probe as p;
                let target = target_record!(p, target);
                plugin.weightlab_plugin_probe().call_fit(s, &zoo_v0_4_probe(zoo), w, y, &target, e, config, seed)
            }
            _ => unreachable!("the caller checks the role"),
        }
    }

    pub fn predict(&self, s: &mut Store<PluginState>, weights: &Tensor, embeddings: Option<&Tensor>) -> wasmtime::Result<Result<Tensor, String>> {
        let (w, e) = (crate::tensors::borrow(weights), embeddings.map(crate::tensors::borrow));
        match self {
            Legacy::V0_3Probe(plugin) => plugin.weightlab_plugin_probe().call_predict(s, w, e),
            Legacy::V0_4Probe(plugin) => plugin.weightlab_plugin_probe().call_predict(s, w, e),
            _ => unreachable!("the caller checks the role"),
        }
    }
}

/// Today's probe target in the types of the frozen `probe` module `$p`.
macro_rules! target_record {
    ($p:ident, $target:expr) => {
        $p::Target {
            name: $target.name.clone(),
            kind: match $target.kind {
                crate::TargetKind::MultiLabel => $p::TargetKind::MultiLabel,
                crate::TargetKind::SingleLabel => $p::TargetKind::SingleLabel,
                crate::TargetKind::Regression => $p::TargetKind::Regression,
            },
            labels: $target.labels.clone(),
        }
    };
}
use target_record;

/// The conditions of a call: task id and borrowed support and instruction tensors.
pub struct Condition<'a> {
    pub task: Option<u32>,
    pub support: Option<&'a Tensor>,
    pub instruction: Option<&'a Tensor>,
}

fn condition_v0_4(c: &Condition) -> v0_4::exports::weightlab::plugin::method::Condition {
    v0_4::exports::weightlab::plugin::method::Condition { task: c.task, support: c.support.map(crate::tensors::borrow), instruction: c.instruction.map(crate::tensors::borrow) }
}

/// One conversion per frozen `zoo` record: today's fields, spelled in that version's types
/// (`$checkpoint` and `$zoo` add the fields the version has beyond 0.1's).
macro_rules! zoo_record {
    ($name:ident, $($m:ident)::+, |$c:ident| { $($field:ident: $value:expr),* $(,)? }, |$z:ident| { $($zfield:ident: $zvalue:expr),* $(,)? }) => {
        fn $name($z: &ZooView) -> $($m)::+::ZooInfo {
            use $($m)::+ as m;
            m::ZooInfo {
                name: $z.name.clone(),
                arch: $z.arch.clone(),
                layout: $z.layout.iter().map(|p| m::Param { name: p.name.clone(), shape: p.shape.clone(), offset: p.offset }).collect(),
                parameters: $z.parameters,
                checkpoints: $z
                    .checkpoints
                    .iter()
                    .map(|$c| m::Checkpoint { model: $c.model, epoch: $c.epoch, seed: $c.seed, train_accuracy: $c.train_accuracy, parent: $c.parent, $($field: $value),* })
                    .collect(),
                dataset: $z.dataset.clone(),
                classes: $z.classes,
                $($zfield: $zvalue),*
            }
        }
    };
}

// 0.1 named the validation figures test figures; a plugin sees no test split in any version.
zoo_record!(zoo_v0_1, v0_1::weightlab::plugin::zoo, |c| { test_accuracy: c.validation_accuracy, test_loss: c.validation_loss }, |z| {});
zoo_record!(zoo_v0_2, v0_2::weightlab::plugin::zoo, |c| { validation_accuracy: c.validation_accuracy, validation_loss: c.validation_loss }, |z| {});
zoo_record!(
    zoo_v0_3,
    v0_3::weightlab::plugin::zoo,
    |c| { validation_accuracy: c.validation_accuracy, validation_loss: c.validation_loss, classes: c.classes.clone(), task: c.task },
    |z| { class_names: z.class_names.clone() }
);
/// The 0.4 `source` records of a zoo (this zoo alone when it has no others).
macro_rules! sources_v0_4 {
    ($($m:ident)::+, $z:expr) => {
        $z.source_list()
            .into_iter()
            .map(|s| $($m)::+::Source {
                zoo: s.zoo,
                arch: s.arch,
                layout: s.layout.iter().map(|p| $($m)::+::Param { name: p.name.clone(), shape: p.shape.clone(), offset: p.offset }).collect(),
                parameters: s.parameters,
            })
            .collect()
    };
}

zoo_record!(
    zoo_v0_4,
    v0_4::weightlab::plugin::zoo,
    |c| { validation_accuracy: c.validation_accuracy, validation_loss: c.validation_loss, classes: c.classes.clone(), task: c.task, source: c.source },
    |z| { class_names: z.class_names.clone(), sources: sources_v0_4!(v0_4::weightlab::plugin::zoo, z) }
);
zoo_record!(
    zoo_v0_4_probe,
    v0_4_probe::weightlab::plugin::zoo,
    |c| { validation_accuracy: c.validation_accuracy, validation_loss: c.validation_loss, classes: c.classes.clone(), task: c.task, source: c.source },
    |z| { class_names: z.class_names.clone(), sources: sources_v0_4!(v0_4_probe::weightlab::plugin::zoo, z) }
);
zoo_record!(
    zoo_v0_3_probe,
    v0_3_probe::weightlab::plugin::zoo,
    |c| { validation_accuracy: c.validation_accuracy, validation_loss: c.validation_loss, classes: c.classes.clone(), task: c.task },
    |z| { class_names: z.class_names.clone() }
);

#[cfg(test)]
mod tests {
    use super::supported;

    #[test]
    fn adapts_each_frozen_minor() {
        assert_eq!(supported("0.1.0"), Some("0.1"));
        assert_eq!(supported("0.3.2"), Some("0.3"));
        assert_eq!(supported("0.4.0"), Some("0.4"));
        assert_eq!(supported("0.5.0"), None);
        assert_eq!(supported("1.0.0"), None);
        assert_eq!(supported("x"), None);
    }
}
