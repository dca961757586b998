//! Slurm job scripts for a run: one job array per dependency level of the plan, each level's
//! array starting when the one before has finished (`--dependency=afterok`), then a merge job
//! that checks the store and renders the report. Every task runs `weightlab run --level L` and
//! takes its shard from `SLURM_ARRAY_TASK_ID`; all write into one stage store on the shared
//! file system. Levels already in the store get no job.
//!
//! A manifest may be shared, so everything that reaches a script is treated as hostile: each
//! `#SBATCH` value was held to a strict pattern when the manifest loaded
//! ([`weightlab_manifest::cluster`]), names and comments are reduced to plain characters, and
//! the command's words are shell-quoted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use weightlab_manifest::{ClusterSpec, StageKind};

use crate::Run;

/// One job to submit: its script and what it runs.
pub struct Job {
    /// `level-<L>` or `merge`: the script's file stem.
    pub name: String,
    pub script: String,
    /// Array tasks (0: a single job).
    pub tasks: usize,
    /// Stages still to run in this job.
    pub stages: usize,
}

/// Where a run's jobs live and what they run with.
pub struct Target<'a> {
    /// The manifest, the output folder, the `weightlab` binary and the folder jobs start in,
    /// all absolute.
    pub manifest: &'a Path,
    pub output: &'a Path,
    /// The stage store every task uses.
    pub store: &'a Path,
    pub exe: &'a Path,
    pub cwd: &'a Path,
    /// The run's `--set` overrides, passed on to every task.
    pub sets: &'a [String],
}

/// The first character of `path` that an `#SBATCH --output=` line cannot carry (Slurm splits
/// those lines at blanks and quotes), if any.
pub fn unsafe_char(path: &Path) -> Option<char> {
    path.to_string_lossy().chars().find(|c| c.is_whitespace() || c.is_control() || "'\"\\$`#".contains(*c))
}

/// The jobs of `run` on `cluster`: one per level with stages still to run, then the merge.
pub fn jobs(run: &Run, cluster: &ClusterSpec, target: &Target) -> Vec<Job> {
    let name = &run.loaded.manifest.experiment.name;
    let fingerprint = run.plan.fingerprint();
    let logs = target.output.join("slurm").join("logs");
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
        let mut command = vec![
            target.exe.display().to_string(),
            "run".into(),
            target.manifest.display().to_string(),
            "--output".into(),
            target.output.display().to_string(),
            "--store".into(),
            target.store.display().to_string(),
            "--level".into(),
            level.to_string(),
        ];
        for set in target.sets {
            command.extend(["--set".to_string(), set.clone()]);
        }
        command.extend(["--expect-plan".to_string(), fingerprint.clone()]);
        let what = describe(run, &stages);
        let header = format!("level {level} of `{name}`: {} ({what}) over {}", plural(stages.len(), "stage"), plural(tasks, "array task"));
        let script = script(cluster, &format!("wl-{name}-L{level}"), &header, Some(tasks), &logs.join(format!("level-{level}-%a.out")), target.cwd, &command);
        jobs.push(Job { name: format!("level-{level}"), script, tasks, stages: pending });
    }
    let command = vec![target.exe.display().to_string(), "merge".into(), target.output.display().to_string()];
    let header = format!("merge `{name}`: check every stage is stored, render the report");
    let merge_cluster = ClusterSpec { gpus: None, ..cluster.clone() };
    jobs.push(Job { name: "merge".into(), script: script(&merge_cluster, &format!("wl-{name}-merge"), &header, None, &logs.join("merge.out"), target.cwd, &command), tasks: 0, stages: 0 });
    jobs
}

/// The folder a run's job scripts and logs go to.
pub fn dir(output: &Path) -> PathBuf {
    output.join("slurm")
}

/// What a level holds, e.g. "2 zoo parts, 12 methods".
fn describe(run: &Run, stages: &[usize]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for &i in stages {
        let kind = run.plan.stages[i].kind.names().1;
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
pub fn script(c: &ClusterSpec, job: &str, header: &str, tasks: Option<usize>, log: &Path, cwd: &Path, command: &[String]) -> String {
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
pub fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// A shell word: as is when plain, else in single quotes.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_and_names_reduced() {
        assert_eq!(quote("plain/path-1.toml"), "plain/path-1.toml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's $(rm -rf ~)"), r"'it'\''s $(rm -rf ~)'");
        assert_eq!(quote(""), "''");
        let c = ClusterSpec { partition: Some("cpu".into()), ..ClusterSpec::default() };
        let command = ["weightlab".to_string(), "run".into(), "x; touch /tmp/pwned".into()];
        let s = script(&c, "wl-a b$(x)", "line\nbreak", Some(3), Path::new("/o/l-%a.out"), Path::new("/w d"), &command);
        assert!(s.contains("#SBATCH --job-name=wl-a_b__x_\n"), "{s}");
        assert!(s.contains("# weightlab: line break\n"), "{s}");
        assert!(s.contains("#SBATCH --array=0-2\n#SBATCH --output=/o/l-%a.out\n"), "{s}");
        assert!(s.contains("cd '/w d'\nexec weightlab run 'x; touch /tmp/pwned'\n"), "{s}");
        assert_eq!(unsafe_char(Path::new("/a/b c")), Some(' '));
        assert_eq!(unsafe_char(Path::new("/a/b_c")), None);
    }
}
