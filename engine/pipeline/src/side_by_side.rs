//! `weightlab run --jobs N`: a run as N shards side by side on this machine, each a
//! `weightlab run --shard i/N` process with its share of the cores, into one stage store — then
//! merged, as a cluster's shards are. Small models and small GEMMs use one core better than
//! two or sixty-four: several stages at a time on a few threads each keep a machine busier than
//! one stage at a time on all of them. The shards run what is ready first and wait for one
//! another's inputs (see `Run::execute_scheduled`); what each computes is what one process
//! with as many threads computes.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Result, io};
use crate::output;

/// How the shards are started.
pub struct Shards<'a> {
    /// The `weightlab` binary.
    pub exe: &'a Path,
    pub manifest: &'a Path,
    pub output: &'a Path,
    /// `--store`, when the run names one (else the shards find the same store as this process).
    pub store: Option<&'a Path>,
    /// The run's `--set` overrides.
    pub sets: &'a [String],
    /// `--wait`: how long a shard waits for another's stage.
    pub wait: u64,
}

/// Set in the shards' environment to the pid of the process that started them, which merges
/// (no shard needs to say how its run is finished) and whose end ends them.
const STARTED_BY_JOBS: &str = "WEIGHTLAB_STARTED_BY_JOBS";

/// The process that started this one as a shard of `run --jobs`, if one did.
pub fn started_by_jobs() -> Option<i32> {
    std::env::var(STARTED_BY_JOBS).ok()?.trim().parse().ok()
}

/// Called first by a shard of `run --jobs`: it ends when the command that started it ends
/// (killed, or interrupted), rather than computing on, or waiting for the other shards, alone.
pub fn end_with_parent() {
    if let Some(parent) = started_by_jobs() {
        weightlab_host::spawn::die_with(parent);
    }
}

/// Compute threads per shard: `omp` (`OMP_NUM_THREADS`) when it is a count, else `cores`
/// shared out — at least one.
fn threads(jobs: usize, cores: usize, omp: Option<&str>) -> usize {
    omp.and_then(|v| v.trim().parse().ok()).filter(|&t| t > 0).unwrap_or((cores / jobs.max(1)).max(1))
}

/// Runs `jobs` shards side by side, each with [`threads`] compute threads, their status
/// lines forwarded to this process's stderr as `[i/N] …`; returns once all have ended, with
/// whether every one succeeded (a shard with a failed stage exits 1: the merge lists it).
pub fn run(shards: &Shards, jobs: usize) -> Result<bool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads(jobs, cores, std::env::var("OMP_NUM_THREADS").ok().as_deref()).to_string();
    output::status("Running", &format!("{jobs} shards side by side, {threads} compute thread(s) each"));
    let mut children: Vec<(std::process::Child, std::thread::JoinHandle<()>)> = Vec::new();
    for i in 0..jobs {
        let mut command = Command::new(shards.exe);
        command.arg("run").arg(shards.manifest).arg("--output").arg(shards.output).args(["--shard", &format!("{i}/{jobs}"), "--wait", &shards.wait.to_string()]);
        if let Some(store) = shards.store {
            command.arg("--store").arg(store);
        }
        for set in shards.sets {
            command.args(["--set", set]);
        }
        // The shards say as much as this process does (their errors always).
        match output::verbosity() {
            output::Verbosity::Quiet => command.arg("--quiet"),
            output::Verbosity::Normal => &mut command,
            output::Verbosity::Verbose => command.arg("--verbose"),
        };
        command
            .env("OMP_NUM_THREADS", &threads)
            .env("MKL_NUM_THREADS", &threads)
            .env(STARTED_BY_JOBS, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                // No shard runs without the others: those started already are stopped.
                for (mut started, _) in children {
                    let _ = started.kill();
                    let _ = started.wait();
                }
                return Err(io("starting a shard with", shards.exe)(e));
            }
        };
        let stderr = child.stderr.take();
        let forward = std::thread::spawn(move || {
            for line in stderr.into_iter().flat_map(|s| std::io::BufReader::new(s).lines().map_while(std::result::Result::ok)) {
                eprintln!("[{i}/{jobs}] {line}");
            }
        });
        children.push((child, forward));
    }
    let mut all_ok = true;
    for (mut child, forward) in children {
        all_ok &= child.wait().is_ok_and(|s| s.success());
        let _ = forward.join();
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_that_cannot_start_is_an_error_naming_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("no-such-weightlab");
        let shards = Shards { exe: &exe, manifest: Path::new("m.toml"), output: dir.path(), store: None, sets: &[], wait: 1 };
        let e = run(&shards, 2).expect_err("there is no binary to start");
        let text = e.to_string();
        assert!(text.contains("starting a shard with") && text.contains("no-such-weightlab"), "{text}");
    }

    #[test]
    fn shards_share_the_cores_unless_told_how_many_threads() {
        assert_eq!(threads(2, 8, None), 4);
        assert_eq!(threads(3, 8, None), 2);
        assert_eq!(threads(16, 8, None), 1, "never fewer than one thread");
        assert_eq!(threads(2, 8, Some(" 3 ")), 3, "OMP_NUM_THREADS wins");
        assert_eq!(threads(2, 8, Some("0")), 4, "a count of none is ignored");
        assert_eq!(threads(2, 8, Some("many")), 4, "so is a word");
    }
}
