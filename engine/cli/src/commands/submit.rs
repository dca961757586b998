//! `weightlab submit --slurm`: one Slurm job array per dependency level of the plan, each
//! level's array starting when the one before has finished (`--dependency=afterok`), then a
//! merge job that checks the store and renders the report. Every task runs
//! `weightlab run --level L` and takes its shard from `SLURM_ARRAY_TASK_ID`; all write into one
//! stage store on the shared file system. Levels already in the store are not submitted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use weightlab_manifest::{ClusterSpec, StageKind};
use weightlab_pipeline::{Run, output};

use crate::cli::SubmitArgs;

/// One job to submit: its script and what it runs.
struct Job {
    name: String,
    script: String,
    /// Array tasks (0: a single job).
    tasks: usize,
    stages: usize,
}

pub fn submit(args: &SubmitArgs) -> anyhow::Result<i32> {
    let loaded = match super::load_manifest(&args.run.manifest, &args.run.overrides.all()) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plugins = weightlab_pipeline::plugins::Plugins::resolve(&loaded);
    if let Err(code) = weightlab_pipeline::config_check::check_methods(&loaded, &plugins, false).map_err(|_| super::INVALID) {
        return Ok(code);
    }
    if weightlab_pipeline::preflight::check(&loaded).is_err() {
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
    let run = Run::with_plugins(loaded, plugins, args.run.output.clone())?;
    std::fs::create_dir_all(&run.output).with_context(|| format!("creating {}", run.output.display()))?;
    let out = absolute(&run.output)?;
    // Paths go into `#SBATCH --output=` lines, which Slurm splits at blanks and quotes.
    if let Some(bad) = out.to_string_lossy().chars().find(|c| c.is_whitespace() || c.is_control() || "'\"\\$`#".contains(*c)) {
        output::error(&format!("the output folder {} holds {:?}, which an #SBATCH line cannot carry: choose another with --output", out.display(), bad));
        return Ok(super::INVALID);
    }
    let manifest = absolute(&args.run.manifest)?;
    let exe = std::env::current_exe().context("finding the weightlab binary")?;
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let name = &run.loaded.manifest.experiment.name;
    let fingerprint = run.plan.fingerprint();
    let slurm_dir = out.join("slurm");
    std::fs::create_dir_all(slurm_dir.join("logs")).with_context(|| format!("creating {}", slurm_dir.display()))?;

    let levels = run.plan.levels();
    let top = levels.iter().copied().max().unwrap_or(0);
    let mut jobs = Vec::new();
    for level in 0..=top {
        let stages: Vec<usize> = (0..run.plan.stages.len()).filter(|&i| levels[i] == level && run.plan.stages[i].kind != StageKind::Report).collect();
        let pending = stages.iter().filter(|&&i| !run.store.is_done(&run.plan.stages[i])).count();
        if pending == 0 {
            continue;
        }
        // Every shard must own a stage of the level: never more tasks than stages.
        let tasks = cluster.shards.clamp(1, stages.len());
        let mut command = vec![exe.display().to_string(), "run".into(), manifest.display().to_string(), "--output".into(), out.display().to_string(), "--level".into(), level.to_string()];
        for set in &args.run.overrides.all() {
            command.extend(["--set".to_string(), set.clone()]);
        }
        command.extend(["--expect-plan".to_string(), fingerprint.clone()]);
        let what = describe(&run, &stages);
        let header = format!("level {level} of `{name}`: {} ({what}) over {}", plural(stages.len(), "stage"), plural(tasks, "array task"));
        let script = script(&cluster, &format!("wl-{name}-L{level}"), &header, Some(tasks), &slurm_dir.join("logs").join(format!("level-{level}-%a.out")), &cwd, &command);
        jobs.push(Job { name: format!("level-{level}"), script, tasks, stages: pending });
    }
    let command = vec![exe.display().to_string(), "merge".into(), out.display().to_string()];
    let header = format!("merge `{name}`: check every stage is stored, render the report");
    let merge_cluster = ClusterSpec { gpus: None, ..cluster.clone() };
    jobs.push(Job { name: "merge".into(), script: script(&merge_cluster, &format!("wl-{name}-merge"), &header, None, &slurm_dir.join("logs").join("merge.out"), &cwd, &command), tasks: 0, stages: 0 });

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

/// What a level holds, e.g. "2 zoo parts, 12 methods".
fn describe(run: &Run, stages: &[usize]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for &i in stages {
        let kind = match run.plan.stages[i].kind {
            StageKind::Data { .. } => "dataset",
            StageKind::ZooPart { .. } => "zoo part",
            StageKind::Zoo { .. } => "zoo",
            StageKind::Reference { .. } => "reference",
            StageKind::Method { .. } => "method",
            StageKind::Evaluate { .. } => "evaluation",
            StageKind::Probe { .. } => "probe",
            StageKind::Report => "report",
        };
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts.iter().map(|(k, n)| plural(*n, k)).collect::<Vec<_>>().join(", ")
}

/// An sbatch script running `command` (one array task per shard when `tasks` is given). Every
/// value in an `#SBATCH` line was checked against a strict pattern
/// ([`weightlab_manifest::cluster`]), the job name and comment are reduced to plain
/// characters, and the command's words are shell-quoted.
fn script(c: &ClusterSpec, job: &str, header: &str, tasks: Option<usize>, log: &Path, cwd: &Path, command: &[String]) -> String {
    let job: String = job.chars().map(|ch| if ch.is_ascii_alphanumeric() || "-_.".contains(ch) { ch } else { '_' }).collect();
    let header: String = header.chars().map(|ch| if ch.is_control() { ' ' } else { ch }).collect();
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "# weightlab: {header}");
    let _ = writeln!(s, "#SBATCH --job-name={job}");
    if let Some(n) = tasks {
        let _ = writeln!(s, "#SBATCH --array=0-{}", n - 1);
    }
    let _ = writeln!(s, "#SBATCH --output={}", log.display());
    let _ = writeln!(s, "#SBATCH --ntasks=1");
    if let Some(p) = &c.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(t) = &c.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    if let Some(n) = c.cpus {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={n}");
    }
    if let Some(m) = &c.mem {
        let _ = writeln!(s, "#SBATCH --mem={m}");
    }
    if let Some(g) = c.gpus {
        let _ = writeln!(s, "#SBATCH --gpus-per-task={g}");
    }
    for extra in &c.sbatch {
        let _ = writeln!(s, "#SBATCH {extra}");
    }
    s.push_str("set -euo pipefail\n");
    // libtorch's OpenMP threads spin while they wait: more threads than the task's CPUs
    // slow every task sharing the node many times over.
    s.push_str("export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\" MKL_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
    let _ = writeln!(s, "cd {}", quote(&cwd.display().to_string()));
    let _ = writeln!(s, "exec {}", command.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "));
    s
}

/// "1 stage", "3 stages".
fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// A shell word: as is when plain, else in single quotes.
fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
