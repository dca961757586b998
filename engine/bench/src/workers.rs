//! `weightlab bench workers`: what starting a plugin worker costs, forked from the engine's
//! fork server against started with exec (`weightlab_host::spawn`), side by side in one
//! process: the same `describe` jobs of the built-in `copy` plugin, one after another each way,
//! the two ways interleaved.

use std::time::Instant;

use anyhow::{Result, bail};
use weightlab_host::{Limits, spawn, worker};

use crate::record::{Record, figure};
use crate::references::builtin_plugin;
use crate::{BenchWorkersArgs, cores, median};

pub fn workers(args: &BenchWorkersArgs) -> Result<i32> {
    if !spawn::fork_server_running() {
        bail!("this process has no fork server to compare with exec (is {}=0 set?)", spawn::OFF_VAR);
    }
    let mut record = Record::default();
    record.machine();
    record.line(format!("plugin workers: {} describe jobs of `copy` one after another, forked from the fork server and started with exec, {} repeats, {} cores", args.jobs, args.repeats, cores()));
    let code = builtin_plugin("copy")?;
    let exe = weightlab_pipeline::calls::worker_exe()?;
    let (mut forked, mut exec) = (Vec::new(), Vec::new());
    for r in 0..args.repeats {
        for (fork, times) in [(true, &mut forked), (false, &mut exec)] {
            spawn::use_fork_server(fork);
            let t = Instant::now();
            let described = (0..args.jobs).try_for_each(|_| worker::describe(&exe, "copy", &code, Limits::default()).map(drop));
            spawn::use_fork_server(true);
            described?;
            times.push(t.elapsed().as_secs_f64() / args.jobs.max(1) as f64 * 1e3);
        }
        record.line(format!("  repeat {}: forked {:.1} ms, exec {:.1} ms per worker", r + 1, forked[r], exec[r]));
    }
    let (f, e) = (median(forked), median(exec));
    record.line(format!("median: forked {f:.1} ms, exec {e:.1} ms per worker → forked/exec = {:.3}", f / e));
    record.row(&[("bench", "workers".to_string()), ("jobs", args.jobs.to_string()), ("repeats", args.repeats.to_string()), ("forked_ms", figure(f)), ("exec_ms", figure(e)), ("ratio", figure(f / e))]);
    record.save(&args.out)?;
    Ok(0)
}
