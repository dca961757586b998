use crate::cli::RunArgs;
use weightlab_pipeline::Run;

/// `weightlab run`: execute what is not cached; exit 1 if any stage failed.
pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let loaded = match super::load_manifest(&args.manifest, &args.overrides.sets) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    if let Err(code) = weightlab_pipeline::config_check::check_methods(&loaded, false).map_err(|_| super::INVALID) {
        return Ok(code);
    }
    let mut run = Run::new(loaded, args.output.clone())?;
    let summary = run.execute()?;
    Ok(if summary.failed == 0 { 0 } else { 1 })
}
