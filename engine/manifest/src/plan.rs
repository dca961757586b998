//! From a manifest to a plan: the stages of a run in dependency order, each with a content key
//! (a hash of its own manifest section, the keys of the stages it consumes and the code version).
//!
//! A stage's output is stored under its key, so a rerun skips every stage whose key is already
//! stored and a change to one section reruns only that section's stages and what depends on them.
//! Keys never depend on the order stages happen to run in, so sharded runs can merge.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::types::Manifest;

/// Bump when a stage's stored output changes meaning, to invalidate old caches (2: evaluate
/// stages store similarity, fine-tuning and ensemble results; 3: a validation subset is split
/// off the training data, and methods run in worker processes; 4: typed stage records, tables
/// in stage folders, reference stages, registry metrics; 5: WIT 0.3 (checkpoint classes and
/// tasks), model-tree discovery in reference stages, probe stages; 6: WIT 0.4 (task
/// conditions, several source zoos), per-task accuracy, task tables in zoo stages; 7: zoos
/// trained in units of work, each its own stage; 8: MLP zoos trained by the hand-written
/// backward and fused Adam — the same arithmetic in another order, so other bits; 9: CNN-s
/// zoos trained by the hand-written per-image engine, likewise; 10: unit costs of the aligned
/// distance from a Gram kernel, outgoing weights first — a near-tie between matchings can
/// resolve the other way; 11: MLP zoos on the CPU trained model by model with the products in
/// the register-tiled kernel, likewise other bits).
const STAGE_FORMAT: u32 = 11;

/// What a stage does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StageKind {
    /// Load or generate dataset `name`.
    Data { name: String },
    /// Train unit `part` (of `parts`) of zoo `name`: a fixed group of its models
    /// ([`crate::ZooSpec::units`]), scored, stored as a zoo of its own.
    ZooPart { name: String, part: usize, parts: usize },
    /// Zoo `name`: its parts put together (or the zoo imported), indexed and described.
    Zoo { name: String },
    /// Score zoo `zoo`'s own training (leave-one-out) and held-out models: the reference rows
    /// and the predictions every evaluation of that zoo compares against.
    Reference { zoo: String },
    /// Run method number `index` with one seed: fit on its zoo and sample.
    Method { index: usize, name: String, seed: u64 },
    /// Compute the metrics of that method's samples.
    Evaluate { index: usize, name: String, seed: u64 },
    /// Run probe number `index` with one seed: fit on its zoo's training models, predict the
    /// held-out ones and score the predictions.
    Probe { index: usize, name: String, seed: u64 },
    /// Aggregate every table and render the report.
    Report,
}

/// One unit of work.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub kind: StageKind,
    /// Content key: 16 hex digits of a SHA-256.
    pub key: String,
    /// Indices (into [`Plan::stages`]) of the stages this one consumes.
    pub deps: Vec<usize>,
    /// Method stages with the same `fit` fit the same model and differ only in what they
    /// sample (a method and its `wrong_condition` control, the same method with another
    /// `samples`, or listed twice): a process that runs several of them fits once and draws
    /// each one's samples from that fit, the bits a job of its own would give. `None` for a
    /// stage that shares with none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit: Option<String>,
}

impl StageKind {
    /// The kind's word in stage folder names (`zoopart`) and in prose (`zoo part`).
    pub fn names(&self) -> (&'static str, &'static str) {
        match self {
            StageKind::Data { .. } => ("data", "dataset"),
            StageKind::ZooPart { .. } => ("zoopart", "zoo part"),
            StageKind::Zoo { .. } => ("zoo", "zoo"),
            StageKind::Reference { .. } => ("reference", "reference"),
            StageKind::Method { .. } => ("method", "method"),
            StageKind::Evaluate { .. } => ("evaluate", "evaluation"),
            StageKind::Probe { .. } => ("probe", "probe"),
            StageKind::Report => ("report", "report"),
        }
    }
}

impl Stage {
    /// A short human label such as `zoo cnn` or `method "noise σ=0.05" seed 1`.
    pub fn label(&self) -> String {
        match &self.kind {
            StageKind::Data { name } => format!("data {name}"),
            StageKind::ZooPart { name, part, parts } => format!("zoo {name} part {}/{parts}", part + 1),
            StageKind::Zoo { name } => format!("zoo {name}"),
            StageKind::Reference { zoo } => format!("reference {zoo}"),
            StageKind::Method { name, seed, .. } => format!("method \"{name}\" seed {seed}"),
            StageKind::Evaluate { name, seed, .. } => format!("evaluate \"{name}\" seed {seed}"),
            StageKind::Probe { name, seed, .. } => format!("probe \"{name}\" seed {seed}"),
            StageKind::Report => "report".to_string(),
        }
    }

    /// The folder name a stage's output is stored under: kind + key.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.kind.names().0, self.key)
    }
}

/// Every stage of a run, dependencies before dependents.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stages: Vec<Stage>,
}

impl Plan {
    /// Builds the plan. `plugin_identity` returns what identifies a plugin's code (a hash of
    /// its component), so that a rebuilt plugin reruns its method stages. `metrics` are the
    /// metric keys evaluation computes (`[evaluate] metrics` resolved against the registry):
    /// they, not the way the manifest spells them, key the reference and evaluate stages.
    pub fn new(m: &Manifest, plugin_identity: &dyn Fn(&str) -> String, metrics: &[String]) -> Plan {
        let mut stages: Vec<Stage> = Vec::new();
        let push = |stages: &mut Vec<Stage>, kind: StageKind, parts: &[&dyn erased::Part], deps: Vec<usize>| {
            let mut h = Sha256::new();
            h.update(format!("weightlab {} stage-format {STAGE_FORMAT}\n", env!("CARGO_PKG_VERSION")));
            // A method's position in the manifest is not what it computes: inserting a method
            // (or a sweep value) before it must not rerun it.
            let mut identity = serde_json::to_value(&kind).expect("serialisable");
            if let Some(o) = identity.as_object_mut() {
                o.remove("index");
            }
            h.update(identity.to_string());
            for part in parts {
                h.update(b"\n");
                h.update(part.json());
            }
            for d in &deps {
                h.update(b"\ndep ");
                h.update(&stages[*d].key);
            }
            let key = hex::encode(&h.finalize()[..8]);
            stages.push(Stage { kind, key, deps, fit: None });
            stages.len() - 1
        };

        let mut data_idx = std::collections::BTreeMap::new();
        for (name, spec) in &m.data {
            let i = push(&mut stages, StageKind::Data { name: name.clone() }, &[spec], vec![]);
            data_idx.insert(name.clone(), i);
        }
        let mut zoo_idx = std::collections::BTreeMap::new();
        let mut reference_idx = std::collections::BTreeMap::new();
        for (name, spec) in &m.zoo {
            let data_dep: Vec<usize> = data_idx.get(&spec.data).map(|d| vec![*d]).unwrap_or_default();
            let units = spec.units();
            let mut parts = Vec::new();
            let mut roots = Vec::new();
            for (part, unit) in units.iter().enumerate() {
                let mut deps = data_dep.clone();
                if unit.needs_roots() {
                    deps.extend(&roots);
                }
                let kind = StageKind::ZooPart { name: name.clone(), part, parts: units.len() };
                let p = push(&mut stages, kind, &[spec, unit], deps);
                if !unit.needs_roots() {
                    roots.push(p);
                }
                parts.push(p);
            }
            let deps = data_dep.into_iter().chain(parts).collect();
            let i = push(&mut stages, StageKind::Zoo { name: name.clone() }, &[spec], deps);
            zoo_idx.insert(name.clone(), i);
            let r = push(&mut stages, StageKind::Reference { zoo: name.clone() }, &[&metrics], vec![i]);
            reference_idx.insert(name.clone(), r);
        }
        let mut eval_stages = Vec::new();
        for (index, method) in m.method.iter().enumerate() {
            let plugin = plugin_identity(&method.source_key());
            // Imported samples are the same files whatever the seed: one stage, at the first seed.
            let seeds = if method.is_imported() { &m.experiment.seeds[..m.experiment.seeds.len().min(1)] } else { &m.experiment.seeds[..] };
            for &seed in seeds {
                let zoo = zoo_idx.get(&method.zoo).copied();
                // A method learning from several zoos needs them all.
                let deps = zoo.into_iter().chain(method.zoos.iter().filter_map(|z| zoo_idx.get(z).copied())).collect::<Vec<_>>();
                if method.is_probe() {
                    let what = (&method.plugin, &plugin, &method.config, &method.target, &method.embed_labels, &method.unseen_classes, method.shuffle_labels);
                    eval_stages.push(push(&mut stages, StageKind::Probe { index, name: method.name.clone(), seed }, &[&what], deps));
                    continue;
                }
                // The display name and limits do not change what is computed.
                let what = (&method.source_key(), &plugin, &method.role, method.samples, &method.config, method.wrong_condition, &method.zoos);
                let mi = push(&mut stages, StageKind::Method { index, name: method.name.clone(), seed }, &[&what], deps.clone());
                // What the fit depends on: all of the above but what is drawn from it (the
                // conditions, how many samples), and the limits the one job runs under.
                let fit = (&method.source_key(), &plugin, &method.role, &method.config, &method.zoos, &method.zoo, &method.limits, seed);
                let mut h = Sha256::new();
                h.update(serde_json::to_string(&fit).expect("manifest sections serialise"));
                for d in &deps {
                    h.update(b"\ndep ");
                    h.update(&stages[*d].key);
                }
                // Imported samples have no fit.
                stages[mi].fit = (!method.is_imported()).then(|| hex::encode(&h.finalize()[..8]));
                let mut edeps = vec![mi];
                edeps.extend(reference_idx.get(&method.zoo).copied());
                let what = (metrics, &m.evaluate.finetune_steps);
                let ei = push(&mut stages, StageKind::Evaluate { index, name: method.name.clone(), seed }, &[&what], edeps);
                eval_stages.push(ei);
            }
        }
        let mut report_deps: Vec<usize> = zoo_idx.values().chain(reference_idx.values()).copied().collect();
        report_deps.extend(eval_stages);
        push(&mut stages, StageKind::Report, &[&m.report, &m.experiment], report_deps);
        // A fit no other stage shares is nobody's business.
        let mut count = std::collections::BTreeMap::new();
        for f in stages.iter().filter_map(|s| s.fit.clone()) {
            *count.entry(f).or_insert(0usize) += 1;
        }
        for s in &mut stages {
            if s.fit.as_ref().is_some_and(|f| count[f] < 2) {
                s.fit = None;
            }
        }
        Plan { stages }
    }
}

impl Plan {
    /// Each stage's dependency level: 0 for stages that need nothing, else one more than the
    /// deepest stage it needs. Stages of one level never need each other, so a level is what
    /// one Slurm job array runs.
    pub fn levels(&self) -> Vec<usize> {
        let mut levels: Vec<usize> = Vec::with_capacity(self.stages.len());
        for s in &self.stages {
            levels.push(s.deps.iter().map(|&d| levels[d] + 1).max().unwrap_or(0));
        }
        levels
    }

    /// The shard (of `shards`) that runs each stage: the stages of each level are dealt out
    /// round-robin in plan order, so every shard gets a share of every level. The report is
    /// no shard's (`None`): `weightlab merge` renders it once every shard is done. Stages
    /// that share a fit ([`Stage::fit`]) go to the shard that got the first of them,
    /// and an evaluation goes with its method: a shard then never waits for another's method
    /// to evaluate it, nor fits a model twice.
    pub fn shards(&self, shards: usize) -> Vec<Option<usize>> {
        let levels = self.levels();
        let mut dealt = vec![0usize; levels.iter().max().map_or(0, |l| l + 1)];
        let mut fits: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        let mut owners: Vec<Option<usize>> = Vec::with_capacity(self.stages.len());
        for (stage, &level) in self.stages.iter().zip(&levels) {
            let owner = match &stage.kind {
                StageKind::Report => None,
                StageKind::Evaluate { .. } if stage.deps.first().is_some_and(|&m| owners[m].is_some()) => owners[stage.deps[0]],
                _ => match stage.fit.as_deref().and_then(|f| fits.get(f)) {
                    Some(&shard) => Some(shard),
                    None => {
                        dealt[level] += 1;
                        let shard = (dealt[level] - 1) % shards.max(1);
                        if let Some(f) = stage.fit.as_deref() {
                            fits.insert(f, shard);
                        }
                        Some(shard)
                    }
                },
            };
            owners.push(owner);
        }
        owners
    }

    /// One hex digest of every stage key: two processes with the same fingerprint run the
    /// same plan (same manifest, same plugins, same weightlab).
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for s in &self.stages {
            h.update(&s.key);
            h.update(b"\n");
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// A shard of a run: `index` of `count`, from `--shard i/n` or a scheduler's array variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// Parses `i/n` (0-based i < n).
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: a shard is written i/n, e.g. 0/4"))?;
        let index: usize = i.trim().parse().map_err(|_| format!("`{s}`: `{i}` is not a shard number"))?;
        let count: usize = n.trim().parse().map_err(|_| format!("`{s}`: `{n}` is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("`{s}`: the shard number must be below the count (shards are numbered from 0)"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The shard a scheduler assigned through the environment: Slurm job arrays
    /// (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`) or Kubernetes Indexed Jobs
    /// (`JOB_COMPLETION_INDEX` with `WEIGHTLAB_SHARDS`, as a Job's `completions`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, String> {
        let pair = |i: &str, n: &str| -> Result<Option<Shard>, String> {
            match (var(i), var(n)) {
                (Some(a), Some(b)) => format!("{a}/{b}").parse().map(Some).map_err(|e| format!("{i}/{n}: {e}")),
                (Some(_), None) => Err(format!("{i} is set but {n} is not")),
                _ => Ok(None),
            }
        };
        match pair("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")? {
            Some(s) => Ok(Some(s)),
            None => pair("JOB_COMPLETION_INDEX", "WEIGHTLAB_SHARDS"),
        }
    }
}

/// Object-safe "serialise me to canonical JSON" for hashing heterogeneous sections.
mod erased {
    pub trait Part {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Part for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("manifest sections serialise")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(extra: &str) -> Manifest {
        let text = format!(
            "[experiment]\nname = \"t\"\nseeds = [0, 1]\n[data.d]\nsource = \"blobs\"\n[zoo.z]\ndata = \"d\"\narch = {{ kind = \"mlp\" }}\n\
             [[method]]\nname = \"a\"\nplugin = \"copy\"\nzoo = \"z\"\n[[method]]\nname = \"b\"\nplugin = \"noise\"\nzoo = \"z\"\n{extra}"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn keys_are_stable_and_changes_propagate_only_downstream() {
        let id = |p: &str| format!("hash-of-{p}");
        let metrics = vec!["accuracy".to_string()];
        let a = Plan::new(&manifest(""), &id, &metrics);
        let b = Plan::new(&manifest(""), &id, &metrics);
        let keys = |p: &Plan| p.stages.iter().map(|s| (s.label(), s.key.clone())).collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b));
        let c = Plan::new(&manifest("config = { sigma = 0.1 }"), &id, &metrics);
        let changed: Vec<String> = a.stages.iter().zip(&c.stages).filter(|(x, y)| x.key != y.key).map(|(x, _)| x.label()).collect();
        assert_eq!(changed, vec!["method \"b\" seed 0", "evaluate \"b\" seed 0", "method \"b\" seed 1", "evaluate \"b\" seed 1", "report",]);
        // Fewer metrics rescore the references and reevaluate, and nothing upstream.
        let d = Plan::new(&manifest(""), &id, &["accuracy".to_string(), "novelty".to_string()]);
        let changed: Vec<String> = a.stages.iter().zip(&d.stages).filter(|(x, y)| x.key != y.key).map(|(x, _)| x.label()).collect();
        assert!(changed.iter().all(|l| l.starts_with("evaluate") || l.starts_with("reference") || l == "report"), "{changed:?}");
        assert!(changed.contains(&"reference z".to_string()));
        // The report's plots change only the report.
        let e = Plan::new(&manifest("[report]\nplots = [\"weight-pca\"]"), &id, &metrics);
        let changed: Vec<String> = a.stages.iter().zip(&e.stages).filter(|(x, y)| x.key != y.key).map(|(x, _)| x.label()).collect();
        assert_eq!(changed, vec!["report"]);
    }

    #[test]
    fn zoos_split_into_units_and_levels_and_shards_cover_the_plan() {
        let id = |p: &str| format!("hash-of-{p}");
        let metrics = vec!["accuracy".to_string()];
        let m = manifest("[zoo.t]\ndata = \"d\"\narch = { kind = \"mlp\" }\nmodels = 130\ntree = { roots = 70, epochs = [1, 2] }\n");
        let plan = Plan::new(&m, &id, &metrics);
        let labels: Vec<String> = plan.stages.iter().map(Stage::label).collect();
        // 70 roots: two units; 130 children in two recipe groups (the first child of each
        // root gets 1 epoch, the second 2: 70 and 60 children): three units.
        for part in 1..=5 {
            assert!(labels.contains(&format!("zoo t part {part}/5")), "{labels:?}");
        }
        let levels = plan.levels();
        let level = |label: &str| levels[labels.iter().position(|l| l == label).unwrap()];
        assert_eq!((level("data d"), level("zoo t part 1/5"), level("zoo t part 3/5"), level("zoo t"), level("method \"a\" seed 0"), level("evaluate \"a\" seed 0")), (0, 1, 2, 3, 3, 4));
        for (i, s) in plan.stages.iter().enumerate() {
            assert!(s.deps.iter().all(|&d| levels[d] < levels[i]), "{} needs a stage of its own level", s.label());
        }
        // Every stage but the report belongs to exactly one of three shards, each gets work.
        let shards = plan.shards(3);
        assert_eq!(shards.iter().filter(|s| s.is_none()).count(), 1);
        for k in 0..3 {
            assert!(shards.contains(&Some(k)));
        }
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err() && "x/3".parse::<Shard>().is_err() && "1".parse::<Shard>().is_err());
        let env = |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")])), Ok(Some(Shard { index: 1, count: 4 })));
        assert_eq!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0"), ("WEIGHTLAB_SHARDS", "2")])), Ok(Some(Shard { index: 0, count: 2 })));
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
        assert_eq!(Shard::from_env(env(&[])), Ok(None));
    }

    #[test]
    fn a_method_its_wrong_condition_control_and_another_sample_count_share_a_fit_and_a_shard() {
        let id = |p: &str| format!("hash-of-{p}");
        let metrics = vec!["accuracy".to_string()];
        let control = |name: &str, extra: &str| format!("[[method]]\nname = \"{name}\"\nplugin = \"copy\"\nzoo = \"z\"\n{extra}\n");
        let extra = control("a wrong", "wrong_condition = true") + &control("a other", "wrong_condition = true\nconfig = { k = 2 }") + &control("a more", "samples = 50");
        let plan = Plan::new(&manifest(&extra), &id, &metrics);
        let fit = |label: &str| plan.stages.iter().find(|s| s.label() == label).unwrap_or_else(|| panic!("no stage {label}")).fit.clone();
        // Same plugin, config and seed: one fit; another config, another seed or plugin: none.
        assert!(fit("method \"a\" seed 0").is_some());
        assert_eq!(fit("method \"a\" seed 0"), fit("method \"a wrong\" seed 0"));
        assert_eq!(fit("method \"a\" seed 0"), fit("method \"a more\" seed 0"), "another sample count draws from the same fit");
        assert_ne!(fit("method \"a\" seed 0"), fit("method \"a wrong\" seed 1"));
        assert_eq!((fit("method \"a other\" seed 0"), fit("method \"b\" seed 0"), fit("evaluate \"a\" seed 0")), (None, None, None));
        // Keys stay apart (each stage stores its own samples) and the pair lands in one shard.
        let key = |label: &str| plan.stages.iter().find(|s| s.label() == label).map(|s| s.key.clone());
        assert_ne!(key("method \"a\" seed 0"), key("method \"a wrong\" seed 0"));
        let at = |label: &str| plan.stages.iter().position(|s| s.label() == label).unwrap();
        for shards in 2..5 {
            let dealt = plan.shards(shards);
            for seed in 0..2 {
                assert_eq!(dealt[at(&format!("method \"a\" seed {seed}"))], dealt[at(&format!("method \"a wrong\" seed {seed}"))], "{shards} shards");
                // An evaluation runs where its samples were drawn.
                for name in ["a", "a wrong", "a other", "b"] {
                    assert_eq!(dealt[at(&format!("method \"{name}\" seed {seed}"))], dealt[at(&format!("evaluate \"{name}\" seed {seed}"))], "{shards} shards");
                }
            }
        }
        // Without the control nothing shares.
        assert!(Plan::new(&manifest(""), &id, &metrics).stages.iter().all(|s| s.fit.is_none()));
    }
}
