//! `weightlab submit --slurm`: check the manifest, write the run's job scripts
//! ([`weightlab_pipeline::slurm`]) and hand them to `sbatch`, each level after the one before.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use weightlab_manifest::ClusterSpec;
use weightlab_pipeline::slurm::{self, plural};
use weightlab_pipeline::{Run, output};

use crate::cli::SubmitArgs;

pub fn submit(args: &SubmitArgs) -> anyhow::Result<i32> {
    let loaded = match super::load_manifest(&args.run.manifest, &args.run.overrides.all()) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plugins = weightlab_pipeline::plugins::Plugins::resolve(&loaded);
    if weightlab_pipeline::config_check::before_run(&loaded, &plugins, false).is_err() {
        return Ok(super::INVALID);
    }
    let cluster = resolve(loaded.manifest.cluster.clone().unwrap_or_default(), args);
    // The manifest's values were checked when it loaded; the command line's are checked here.
    let values = [("partition", cluster.partition.as_deref()), ("time", cluster.time.as_deref()), ("mem", cluster.mem.as_deref())];
    for (key, value) in values.into_iter().filter_map(|(k, v)| Some((k, v?))) {
        if let Some(problem) = weightlab_manifest::cluster::value_problem(key, value) {
            output::error(&format!("--{key}: {problem}"));
            return Ok(super::INVALID);
        }
    }
    let mut run = Run::with_plugins(loaded, plugins, args.run.output.clone())?;
    // Every task must reach the same store: `--store`, else the output folder's own (on the
    // file system the tasks share), never a per-node cache folder.
    let store = args.run.store(&run.output).unwrap_or_else(|| weightlab_pipeline::store::StageStore::new(&run.output));
    run.use_store(store);
    std::fs::create_dir_all(&run.output).with_context(|| format!("creating {}", run.output.display()))?;
    let out = absolute(&run.output)?;
    let store_root = absolute(run.store.root())?;
    if let Some(bad) = slurm::unsafe_char(&out) {
        output::error(&format!("the output folder {} holds {:?}, which an #SBATCH line cannot carry: choose another with --output", out.display(), bad));
        return Ok(super::INVALID);
    }
    let manifest = absolute(&args.run.manifest)?;
    let exe = std::env::current_exe().context("finding the weightlab binary")?;
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let sets = args.run.overrides.all();
    let jobs = slurm::jobs(&run, &cluster, &slurm::Target { manifest: &manifest, output: &out, store: &store_root, exe: &exe, cwd: &cwd, sets: &sets });
    let slurm_dir = slurm::dir(&out);
    std::fs::create_dir_all(slurm_dir.join("logs")).with_context(|| format!("creating {}", slurm_dir.display()))?;

    let mut paths = Vec::new();
    for job in &jobs {
        let path = slurm_dir.join(format!("{}.sbatch", job.name));
        std::fs::write(&path, &job.script).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    if args.dry_run {
        for (job, path) in jobs.iter().zip(&paths) {
            println!("# ---- {} ----", path.display());
            print!("{}", job.script);
        }
        output::status("Written", &format!("{} job scripts in {} (not submitted: --dry-run)", jobs.len(), slurm_dir.display()));
        return Ok(0);
    }
    let mut previous: Option<String> = None;
    let mut ids = Vec::new();
    for (job, path) in jobs.iter().zip(&paths) {
        let mut sbatch = Command::new("sbatch");
        sbatch.arg("--parsable");
        if let Some(id) = &previous {
            sbatch.arg(format!("--dependency=afterok:{id}"));
        }
        sbatch.arg(path);
        let result = sbatch.output().map_err(|e| anyhow::anyhow!("running sbatch: {e} (is this a Slurm login node? `--dry-run` writes and prints the scripts without submitting)"))?;
        if !result.status.success() {
            bail!("sbatch refused {}: {}", path.display(), String::from_utf8_lossy(&result.stderr).trim());
        }
        // `--parsable` prints `jobid` or `jobid;cluster`.
        let stdout = String::from_utf8_lossy(&result.stdout);
        let id = stdout.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() {
            bail!("sbatch printed no job id for {}", path.display());
        }
        let what = if job.tasks > 0 { format!("{} to run, {}", plural(job.stages, "stage"), plural(job.tasks, "array task")) } else { "merge and report".into() };
        output::status("Submitted", &format!("{:<8} job {id}: {what}", job.name));
        previous = Some(id.clone());
        ids.push(id);
    }
    std::fs::write(slurm_dir.join("jobs.txt"), ids.join("\n") + "\n").context("writing the job ids")?;
    output::status("Follow", &format!("squeue -j {}   (logs in {})", ids.join(","), slurm_dir.join("logs").display()));
    output::status("Report", &out.join("report.html").display().to_string());
    Ok(0)
}

/// The `[cluster]` table with the command line's flags on top.
fn resolve(mut c: ClusterSpec, args: &SubmitArgs) -> ClusterSpec {
    if let Some(s) = args.shards {
        c.shards = s;
    }
    c.partition = args.partition.clone().or(c.partition);
    c.time = args.time.clone().or(c.time);
    c.cpus = args.cpus.or(c.cpus);
    c.mem = args.mem.clone().or(c.mem);
    c.gpus = args.gpus.or(c.gpus);
    c
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
