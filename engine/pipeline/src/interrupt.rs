//! Ctrl-C (SIGINT) and SIGTERM (a scheduler's time limit, `kill`) during a run. Every finished
//! stage is already whole in the stage store — each is committed by a rename — so the run can
//! end at once; what it owes the researcher is to say so: how many stages are kept, that the
//! same command goes on from there, and a progress file that reads `interrupted` rather than a
//! `running` whose process is gone.
//!
//! A stage cut off is not recorded as failed. A terminal's Ctrl-C reaches the plugin worker as
//! well (same process group), and the worker dying of it would otherwise read as the plugin's
//! fault and be stored as that stage's failure.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Set from inside the signal handler itself, before any thread can observe a worker's death.
static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Whether this process has been told to stop. Once true, nothing more is recorded: the
/// thread [`end_runs_cleanly`] started owns the rest of the process's life.
pub fn interrupted() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Waits for the process to end, when it has been interrupted: a stage that fails because
/// its worker died of the same Ctrl-C must not be recorded as failed. Returns at once otherwise.
pub fn hold_if_interrupted() {
    while interrupted() {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Whether `signal` was ignored when this process started (`nohup`, a background job of a
/// non-interactive shell): then it stays ignored, as the shell meant it to be.
fn ignored(signal: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// From now on, SIGINT and SIGTERM end this run of `output` with a word rather than silently:
/// the progress file marks the run (and the stages it was in) `interrupted`, a line says what is
/// kept, and the process exits with 128 + the signal's number, as a shell expects.
pub fn end_runs_cleanly(output: &Path) {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    let signals: Vec<i32> = [SIGINT, SIGTERM].into_iter().filter(|&s| !ignored(s)).collect();
    for &signal in &signals {
        // A second Ctrl-C ends the process at once, should the first's few writes hang (a
        // stalled network file system). It must be registered before the flag it reads.
        let second = signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(flag));
        if let Err(e) = second.and_then(|_| signal_hook::flag::register(signal, Arc::clone(flag))) {
            crate::output::detail(&format!("cannot watch for signal {signal}: {e}"));
            return;
        }
    }
    let Ok(mut incoming) = signal_hook::iterator::Signals::new(&signals) else { return };
    let output = output.to_path_buf();
    std::thread::spawn(move || {
        if let Some(signal) = incoming.forever().next() {
            // A shard of `run --jobs` leaves the word to the run that started it.
            if crate::side_by_side::started_by_jobs().is_none() {
                crate::output::notice("Interrupted", &said(&output));
            }
            // `_exit`: no atexit handlers or static destructors racing the compute threads
            // still running; there is nothing to flush (stages are committed by renames,
            // stderr is unbuffered).
            // SAFETY: _exit ends the process; it touches no memory of ours.
            unsafe { libc::_exit(128 + signal) }
        }
    });
}

/// Marks the progress file interrupted (when it is this process's) and says what is kept.
fn said(output: &Path) -> String {
    let again = "the same `weightlab run` goes on from there";
    match crate::progress::mark_interrupted(output) {
        Some(progress) => format!("{}; {again}", progress.kept()),
        None => format!("the stages finished so far are kept; {again}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_held_or_marked_before_a_signal() {
        assert!(!interrupted());
        hold_if_interrupted();
        assert!(!ignored(SIGTERM), "a test process does not start with SIGTERM ignored");
    }
}
