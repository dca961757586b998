use crate::cli::RunArgs;
use weightlab_pipeline::{Run, output};

/// `weightlab plan`: the stages in order, each marked cached or to run (as JSON with `json`).
pub fn plan(args: &RunArgs, json: bool) -> anyhow::Result<i32> {
    let loaded = match super::load_manifest(&args.manifest, &args.overrides.all()) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let mut run = Run::new(loaded, args.output.clone())?;
    if let Some(store) = args.store(&run.output) {
        run.use_store(store);
    }
    let plan = run.plan_view();
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(0);
    }
    // Names come from the manifest, which may be someone else's: printed without control characters.
    let say = |line: String| println!("{}", output::plain(&line));
    say(format!("plan for `{}` → {}", plan.experiment, plan.output.display()));
    if !plan.variants.is_empty() {
        let count = |section: &str| plan.variants.iter().filter(|v| v.section == section).count();
        let axes = plan.axes.len();
        say(format!(
            "sweeps: {axes} {} → {} variants ({} datasets, {} zoos, {} methods; cap {})",
            if axes == 1 { "axis" } else { "axes" },
            plan.variants.len(),
            count("data"),
            count("zoo"),
            count("method"),
            plan.max_variants
        ));
        for (a, axis) in plan.axes.iter().enumerate() {
            for site in axis {
                say(format!("  axis {a}: {} = [{}]{}", site.key, site.values.join(", "), if axis.len() > 1 { " (zipped)" } else { "" }));
            }
        }
        for v in &plan.variants {
            say(format!("  {:<7} {}", v.section, v.name));
        }
    }
    say(format!("  {:<7} {:<5} {:<48} key", "", "level", "stage"));
    for s in &plan.stages {
        say(format!("  {:<7} {:<5} {:<48} {}{}", if s.cached { "cached" } else { "run" }, s.level, s.stage, s.key, s.note()));
    }
    say(format!("{} stages, {} cached, {} to run", plan.stages.len(), plan.cached, plan.to_run));
    Ok(0)
}
