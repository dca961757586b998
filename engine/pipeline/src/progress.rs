//! A run's progress, on disk while it runs: `progress.json` in the output folder names the
//! process, and each of its stages as pending, running, done, cached, failed or skipped. It is
//! rewritten (atomically) as stages start and finish, so `weightlab serve` can show a run in
//! progress live; a run whose process is gone is shown as interrupted, not running.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file's name in an output folder.
pub const FILE: &str = "progress.json";

/// The largest progress file read back (a run folder may come from elsewhere).
const MAX_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// The process running the stages.
    pub pid: u32,
    pub host: String,
    /// "YYYY-MM-DD HH:MM:SS UTC".
    pub started: String,
    pub updated: String,
    /// `running` until the process ends its stages, then `finished`; `interrupted` when a
    /// signal ended it (Ctrl-C, SIGTERM).
    pub state: String,
    /// (stage label, state) in plan order: `pending`, `running`, `done`, `cached`, `failed`,
    /// `skipped`, `interrupted`.
    pub stages: Vec<(String, String)>,
}

impl Progress {
    pub fn new(labels: impl IntoIterator<Item = String>) -> Self {
        let now = crate::stages::utc(std::time::SystemTime::now());
        Progress { pid: std::process::id(), host: hostname(), started: now.clone(), updated: now, state: "running".into(), stages: labels.into_iter().map(|l| (l, "pending".to_string())).collect() }
    }

    /// Sets stage `i`'s state and writes the file (a failed write only warns: progress is a
    /// view, never a reason to stop a run).
    pub fn set(&mut self, output: &Path, i: usize, state: &str) {
        if let Some(stage) = self.stages.get_mut(i) {
            stage.1 = state.to_string();
        }
        self.write(output);
    }

    /// Marks the run as finished and writes the file.
    pub fn finish(&mut self, output: &Path) {
        self.state = "finished".into();
        self.write(output);
    }

    fn write(&mut self, output: &Path) {
        let _one = WRITING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // After a signal the interrupting thread owns the file: a stage cut off must not be
        // written over it as failed.
        if !crate::interrupt::interrupted() {
            self.save(output);
        }
    }

    fn save(&mut self, output: &Path) {
        self.updated = crate::stages::utc(std::time::SystemTime::now());
        let path = output.join(FILE);
        let written = serde_json::to_vec(self).map_err(std::io::Error::other).and_then(|bytes| crate::store::write_atomic(&path, &bytes).map_err(std::io::Error::other));
        if let Err(e) = written {
            crate::output::detail(&format!("cannot write {}: {e}", path.display()));
        }
    }

    /// Stages per state: (done or cached, failed or skipped, total).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |states: &[&str]| self.stages.iter().filter(|(_, s)| states.contains(&s.as_str())).count();
        (count(&["done", "cached"]), count(&["failed", "skipped"]), self.stages.len())
    }

    /// `4 of 7 stages finished and kept` (`, 1 failed or skipped` when some were): how far a
    /// run got, as an interrupted run says it and `weightlab runs` shows it.
    pub fn kept(&self) -> String {
        let (kept, failed, total) = self.counts();
        let failed = if failed > 0 { format!(", {failed} failed or skipped") } else { String::new() };
        format!("{kept} of {total} stages finished and kept{failed}")
    }

    /// Whether the run is still going: it says so and its process is alive on this host.
    pub fn is_live(&self) -> bool {
        self.state == "running" && self.host == hostname() && Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// This machine's name (a pid means something only on the host that wrote it).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// One writer of a progress file at a time: the run's thread and, after Ctrl-C, the
/// interrupting one (which must read the run's last write and write after it).
static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Marks the run this process is writing into `output`, and the stages it was in, as
/// interrupted — after the run's last write, and as the file's last — and returns it; `None`
/// when the folder's progress file is not this process's.
pub fn mark_interrupted(output: &Path) -> Option<Progress> {
    let _one = WRITING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut progress = read(output).filter(|p| p.pid == std::process::id())?;
    progress.state = "interrupted".into();
    for stage in progress.stages.iter_mut().filter(|(_, s)| s == "running") {
        stage.1 = "interrupted".into();
    }
    progress.save(output);
    Some(progress)
}

/// The progress file of output folder `output`, if it has a readable one.
pub fn read(output: &Path) -> Option<Progress> {
    let bytes = weightlab_manifest::files::read_regular(&output.join(FILE), MAX_BYTES).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_written_as_stages_move_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Progress::new(["zoo z".to_string(), "method \"m\" seed 0".to_string(), "report".to_string()]);
        p.set(dir.path(), 0, "cached");
        p.set(dir.path(), 1, "running");
        let back = read(dir.path()).unwrap();
        assert_eq!(back.stages[1].1, "running");
        assert!(back.is_live(), "this process is alive");
        assert_eq!(back.counts(), (1, 0, 3));
        p.set(dir.path(), 1, "failed");
        p.finish(dir.path());
        let back = read(dir.path()).unwrap();
        assert!(!back.is_live());
        assert_eq!(back.counts(), (1, 1, 3));
        // Interrupted: the run and the stage it was in say so; stages done stay done.
        p.set(dir.path(), 1, "running");
        let marked = mark_interrupted(dir.path()).expect("this process's run");
        assert_eq!((marked.state.as_str(), marked.stages[1].1.as_str(), marked.stages[0].1.as_str()), ("interrupted", "interrupted", "cached"));
        assert_eq!(read(dir.path()).unwrap(), marked, "written");
        p.set(dir.path(), 1, "failed");
        // A process that is gone is not running, whatever the file says.
        let gone = Progress { pid: u32::MAX - 1, state: "running".into(), ..back };
        assert!(!gone.is_live());
    }
}
