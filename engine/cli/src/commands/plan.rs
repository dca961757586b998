use crate::cli::RunArgs;
use weightlab_pipeline::{Run, output};

/// `weightlab plan`: the stages in order, each marked cached or to run.
pub fn plan(args: &RunArgs) -> anyhow::Result<i32> {
    let loaded = match super::load_manifest(&args.manifest, &args.overrides.all()) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let mut run = Run::new(loaded, args.output.clone())?;
    if let Some(store) = args.store(&run.output) {
        run.use_store(store);
    }
    // Names come from the manifest, which may be someone else's: printed without control characters.
    let say = |line: String| println!("{}", output::plain(&line));
    say(format!("plan for `{}` → {}", run.loaded.manifest.experiment.name, run.output.display()));
    let expansion = &run.loaded.expansion;
    if !expansion.is_empty() {
        let count = |section: &str| expansion.variants.iter().filter(|v| v.section == section).count();
        say(format!(
            "sweeps: {} {} → {} variants ({} datasets, {} zoos, {} methods; cap {})",
            expansion.axes.len(),
            if expansion.axes.len() == 1 { "axis" } else { "axes" },
            expansion.variants.len(),
            count("data"),
            count("zoo"),
            count("method"),
            run.loaded.manifest.experiment.max_variants
        ));
        for (a, axis) in expansion.axes.iter().enumerate() {
            for site in &axis.sites {
                let values: Vec<String> = site.values.iter().map(weightlab_manifest::sweep::display).collect();
                let zipped = if axis.sites.len() > 1 { " (zipped)" } else { "" };
                say(format!("  axis {a}: {} = [{}]{zipped}", site.key, values.join(", ")));
            }
        }
        for v in &expansion.variants {
            say(format!("  {:<7} {}", v.section, v.name));
        }
    }
    let mut to_run = 0;
    let levels = run.plan.levels();
    say(format!("  {:<7} {:<5} {:<48} key", "", "level", "stage"));
    for (stage, level) in run.plan.stages.iter().zip(&levels) {
        let cached = run.store.is_done(stage);
        if !cached {
            to_run += 1;
        }
        let mark = if cached { "cached" } else { "run" };
        say(format!("  {mark:<7} {level:<5} {:<48} {}", stage.label(), stage.key));
    }
    say(format!("{} stages, {} cached, {} to run", run.plan.stages.len(), run.plan.stages.len() - to_run, to_run));
    Ok(0)
}
