use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use weightlab_manifest::Shard;
use weightlab_pipeline::{Run, RunInfo, Schedule, output};

use crate::cli::{RunArgs, ScheduleArgs};

/// `weightlab run`: execute what is not cached (this shard's part, with `--shard`); exit 1 if
/// any stage failed.
pub fn run(args: &RunArgs, schedule: &ScheduleArgs) -> anyhow::Result<i32> {
    let loaded = match super::load_manifest(&args.manifest, &args.overrides.all()) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plugins = weightlab_pipeline::plugins::Plugins::resolve(&loaded);
    if let Err(code) = weightlab_pipeline::config_check::check_methods(&loaded, &plugins, false).map_err(|_| super::INVALID) {
        return Ok(code);
    }
    let Ok(datasets) = weightlab_pipeline::preflight::check(&loaded) else { return Ok(super::INVALID) };
    let shard = match schedule.shard {
        Some(s) => Some(s),
        None => Shard::from_env(|k| std::env::var(k).ok()).map_err(|e| anyhow::anyhow!("the scheduler's shard variables: {e}"))?,
    };
    let mut run = Run::with_plugins(loaded, plugins, args.output.clone())?;
    run.adopt_datasets(datasets);
    if let Err(e) = run.select_device() {
        output::error(&e.to_string());
        return Ok(super::INVALID);
    }
    if let Some(expected) = &schedule.expect_plan {
        let actual = run.plan.fingerprint();
        if &actual != expected {
            output::error(&format!(
                "the plan of {} is {actual}, not the {expected} it was submitted with: the manifest, a plugin or weightlab changed since `weightlab submit`; submit again",
                args.manifest.display()
            ));
            return Ok(super::INVALID);
        }
    }
    let schedule = Schedule { shard, level: schedule.level, merge: false, wait: Duration::from_secs(schedule.wait) };
    let summary = run.execute_scheduled(&schedule)?;
    Ok(if summary.failed == 0 { 0 } else { 1 })
}

/// `weightlab merge`: bring the stage stores of `runs` into one, check it against the plan
/// and render the report.
pub fn merge(runs: &[PathBuf], output_dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let first = &runs[0];
    let info = RunInfo::read(first).with_context(|| format!("{} is not a run folder (it has no run.json)", first.display()))?;
    let saved = first.join("manifest.toml");
    let text = weightlab_manifest::files::read_manifest(&saved).with_context(|| format!("reading {}", saved.display()))?;
    let loaded = match weightlab_manifest::load_str(&info.manifest, &text, &[], &info.base_dir, &weightlab_pipeline::catalog()) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{e}");
            return Ok(super::INVALID);
        }
    };
    let out = output_dir.unwrap_or_else(|| first.clone());
    let mut run = Run::new(loaded, Some(out.clone()))?;
    let fingerprint = run.plan.fingerprint();
    for dir in runs {
        let other = RunInfo::read(dir).with_context(|| format!("{} is not a run folder (it has no run.json)", dir.display()))?;
        if other.plan != fingerprint {
            output::error(&format!("{} ran plan {}, {} ran plan {fingerprint}: they come from different manifests, plugins or weightlab versions", dir.display(), other.plan, first.display()));
            return Ok(1);
        }
    }
    let merged = weightlab_pipeline::merge::combine(runs, &run.store)?;
    output::status("Merged", &format!("{} run folder(s): {} stage(s) copied, {} computed more than once (identical)", runs.len(), merged.copied, merged.duplicates));
    if out != *first {
        for file in ["manifest.toml", "run.json"] {
            std::fs::copy(first.join(file), out.join(file)).with_context(|| format!("copying {file} into {}", out.display()))?;
        }
    }
    let summary = run.execute_scheduled(&Schedule { merge: true, ..Schedule::default() })?;
    Ok(if summary.failed == 0 && summary.missing == 0 { 0 } else { 1 })
}
