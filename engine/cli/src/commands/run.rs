use std::path::PathBuf;
use std::time::Duration;

use weightlab_manifest::Shard;
use weightlab_pipeline::side_by_side::Shards;
use weightlab_pipeline::{Run, Schedule, output};

use crate::cli::{RunArgs, ScheduleArgs};

/// `weightlab run`: execute what is not cached (this shard's part, with `--shard`); exit 1 if
/// any stage failed.
pub fn run(args: &RunArgs, schedule: &ScheduleArgs) -> anyhow::Result<i32> {
    weightlab_pipeline::side_by_side::end_with_parent();
    let loaded = match super::load_manifest(&args.manifest, &args.overrides.all()) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plugins = weightlab_pipeline::plugins::Plugins::resolve(&loaded);
    let Ok(datasets) = weightlab_pipeline::config_check::before_run(&loaded, &plugins, false) else { return Ok(super::INVALID) };
    let shard = match schedule.shard {
        Some(s) => Some(s),
        None => Shard::from_env(|k| std::env::var(k).ok()).map_err(|e| anyhow::anyhow!("the scheduler's shard variables: {e}"))?,
    };
    let mut run = Run::with_plugins(loaded, plugins, args.output.clone())?;
    if let Some(store) = args.store(&run.output) {
        run.use_store(store);
    }
    run.adopt_datasets(datasets);
    if let Err(e) = run.select_device() {
        // Located at the manifest's `device`: printed as the manifest's other diagnostics are.
        if let weightlab_pipeline::Error::Manifest(m) = &e {
            eprint!("{m}")
        } else {
            output::error(&e.to_string())
        }
        return Ok(super::INVALID);
    }
    if let Some(why) = schedule.expect_plan.as_deref().and_then(|expected| run.plan_changed(expected, &args.manifest)) {
        output::error(&why);
        return Ok(super::INVALID);
    }
    weightlab_pipeline::interrupt::end_runs_cleanly(&run.output);
    if schedule.jobs > 1 {
        anyhow::ensure!(shard.is_none() && schedule.level.is_none(), "--jobs runs the shards itself: leave out --shard, --level and the scheduler's shard variables");
        let sets = args.overrides.all();
        let shards = Shards { exe: &std::env::current_exe()?, manifest: &args.manifest, output: &run.output, store: args.store.as_deref(), sets: &sets, wait: schedule.wait };
        weightlab_pipeline::side_by_side::run(&shards, schedule.jobs as usize)?;
        return merge(&[run.output.clone()], None);
    }
    let schedule = Schedule { shard, level: schedule.level, merge: false, wait: Duration::from_secs(schedule.wait), merge_hint: weightlab_pipeline::side_by_side::started_by_jobs().is_none() };
    let summary = run.execute_scheduled(&schedule)?;
    Ok(if summary.failed == 0 { 0 } else { 1 })
}

/// `weightlab merge`: bring the stage stores of `runs` into one, check it against the plan
/// and render the report.
pub fn merge(runs: &[PathBuf], output_dir: Option<PathBuf>) -> anyhow::Result<i32> {
    match weightlab_pipeline::merge::runs(runs, output_dir) {
        Ok(summary) => Ok(if summary.failed == 0 && summary.missing == 0 { 0 } else { 1 }),
        // The saved manifest no longer loads: its located diagnostics, as `validate` prints them.
        Err(weightlab_pipeline::Error::Load(e)) => {
            eprint!("{e}");
            Ok(super::INVALID)
        }
        Err(e) => Err(e.into()),
    }
}

/// `weightlab gc`: remove the stages no run folder refers to, and compiled code unused lately.
pub fn gc(store: Option<PathBuf>, dry_run: bool, unused_days: f64) -> anyhow::Result<i32> {
    let root = weightlab_pipeline::store::resolve(std::path::Path::new("."), store.as_deref());
    let Some(unused) = std::time::Duration::try_from_secs_f64(unused_days * 86_400.0).ok().filter(|_| unused_days.is_finite()) else {
        anyhow::bail!("--unused-days {unused_days}: give a number of days, 0 or more");
    };
    weightlab_pipeline::store::gc(&root, unused, dry_run)?;
    Ok(0)
}
