//! What `weightlab plan` shows, as data: the stages a run would execute in order, each with its
//! level, key and whether the store has it already, and what the sweeps expanded into — for the
//! text listing and for `--json` (a stable shape CI scripts read: see docs/src/cli.md).

use serde::Serialize;

use crate::executor::Run;

/// A run's plan.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub experiment: String,
    pub output: std::path::PathBuf,
    /// The stages in execution order.
    pub stages: Vec<PlannedStage>,
    pub cached: usize,
    pub to_run: usize,
    /// Sweeps: each axis's keys and values (several keys on one axis are zipped), and the
    /// variants they expanded into.
    pub axes: Vec<Vec<SweptKey>>,
    pub variants: Vec<PlannedVariant>,
    pub max_variants: usize,
}

/// One stage of a plan.
#[derive(Debug, Serialize)]
pub struct PlannedStage {
    /// `zoo mlp`, `method "p-diff" seed 0`, …
    pub stage: String,
    /// Stages of one level depend only on lower levels.
    pub level: usize,
    /// Content key: 16 hex digits.
    pub key: String,
    pub cached: bool,
    /// A method stage that draws its samples from the fit of an earlier one (a
    /// `wrong_condition` control beside its method): that stage's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares_fit_with: Option<String>,
}

impl PlannedStage {
    /// What the listing says after the key: the fit the stage shares, if it does.
    pub fn note(&self) -> String {
        self.shares_fit_with.as_ref().map(|w| format!("  (fit shared with {w})")).unwrap_or_default()
    }
}

/// One swept key of a sweep axis.
#[derive(Debug, Serialize)]
pub struct SweptKey {
    pub key: String,
    pub values: Vec<String>,
}

/// One entry a sweep expanded into.
#[derive(Debug, Serialize)]
pub struct PlannedVariant {
    /// `data`, `zoo` or `method`.
    pub section: String,
    pub name: String,
    pub base: String,
}

impl Run {
    /// What this run would do with the store it uses now.
    pub fn plan_view(&self) -> PlanView {
        let levels = self.plan.levels();
        // The first stage of each shared fit, in plan order: the one the others draw from.
        let mut first: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
        let stages: Vec<PlannedStage> = self
            .plan
            .stages
            .iter()
            .zip(levels)
            .map(|(stage, level)| {
                let shares_fit_with = stage.fit.as_deref().and_then(|f| match first.get(f) {
                    Some(label) => Some(label.clone()),
                    None => {
                        first.insert(f, stage.label());
                        None
                    }
                });
                PlannedStage { stage: stage.label(), level, key: stage.key.clone(), cached: self.store.is_done(stage), shares_fit_with }
            })
            .collect();
        let cached = stages.iter().filter(|s| s.cached).count();
        let expansion = &self.loaded.expansion;
        PlanView {
            experiment: self.loaded.manifest.experiment.name.clone(),
            output: self.output.clone(),
            to_run: stages.len() - cached,
            cached,
            stages,
            axes: expansion.axes.iter().map(|a| a.sites.iter().map(|s| SweptKey { key: s.key.clone(), values: s.values.iter().map(weightlab_manifest::sweep::display).collect() }).collect()).collect(),
            variants: expansion.variants.iter().map(|v| PlannedVariant { section: v.section.clone(), name: v.name.clone(), base: v.base.clone() }).collect(),
            max_variants: self.loaded.manifest.experiment.max_variants,
        }
    }
}
