//! Finding the runs under a folder and what the list shows of each.

use std::path::{Path, PathBuf};

use weightlab_pipeline::progress::{self, Progress};
use weightlab_results::{FailureRow, RunRow};

/// How deep under the served folder run folders are looked for (`reports/<name>/history/<id>`).
const MAX_DEPTH: usize = 5;
/// The most run folders listed.
const MAX_RUNS: usize = 2000;

/// One run folder, as the list shows it.
#[derive(Debug, Clone)]
pub struct RunEntry {
    /// Its path relative to the served folder (`/`-separated): its identity in URLs.
    pub id: String,
    pub path: PathBuf,
    pub experiment: String,
    /// `running 12/40`, `ok`, `failed`, `interrupted`, …
    pub status: String,
    pub date: String,
    pub manifest: String,
    pub commit: String,
    pub failures: usize,
    pub has_report: bool,
    pub progress: Option<Progress>,
}

impl RunEntry {
    pub fn is_live(&self) -> bool {
        self.progress.as_ref().is_some_and(Progress::is_live)
    }
}

fn is_run(dir: &Path) -> bool {
    dir.join("run.json").is_file() || dir.join(progress::FILE).is_file()
}

/// Every run folder under `root` as (id, path): depth-first, sorted by path; `stages` folders
/// are not entered. Only the folder walk: nothing of a run is read.
fn run_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if found.len() >= MAX_RUNS {
            break;
        }
        if depth > 0 && is_run(&dir) {
            let id = dir.strip_prefix(root).unwrap_or(&dir).components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
            found.push((id, dir.clone()));
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(children) = std::fs::read_dir(&dir) else { continue };
        let mut subdirs: Vec<PathBuf> = children
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != "stages" && !n.to_string_lossy().starts_with('.')))
            .collect();
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev().map(|p| (p, depth + 1)));
    }
    found
}

/// Every run folder under `root` with what the list shows of it.
pub fn discover(root: &Path) -> Vec<RunEntry> {
    run_dirs(root).into_iter().map(|(id, dir)| entry(id, &dir)).collect()
}

fn entry(id: String, dir: &Path) -> RunEntry {
    let run: Option<RunRow> = weightlab_results::rows::read_table::<RunRow>(dir, "runs").ok().flatten().and_then(|r| r.into_iter().next());
    let info = weightlab_pipeline::RunInfo::read(dir).ok();
    let progress = progress::read(dir);
    let failures = weightlab_results::rows::read_table::<FailureRow>(dir, "failures").ok().flatten().map_or(0, |f| f.len());
    let status = match (&progress, &run) {
        (Some(p), _) if p.is_live() => {
            let (done, failed, total) = p.counts();
            format!("running {done}/{total}{}", if failed > 0 { format!(", {failed} failed") } else { String::new() })
        }
        (_, Some(r)) => r.status.clone(),
        // A signal marked it so, or its process is gone without a word (killed).
        (Some(p), None) if p.state == "running" || p.state == "interrupted" => "interrupted".into(),
        _ => "unknown".into(),
    };
    RunEntry {
        id,
        path: dir.to_path_buf(),
        experiment: run.as_ref().map(|r| r.experiment.clone()).unwrap_or_default(),
        status,
        date: run.as_ref().map(|r| r.finished.clone()).or_else(|| progress.as_ref().map(|p| p.updated.clone())).unwrap_or_default(),
        manifest: info.map(|i| i.manifest.display().to_string()).unwrap_or_default(),
        commit: run.as_ref().map(|r| r.git_commit.clone()).unwrap_or_default(),
        failures,
        has_report: dir.join("report.html").is_file(),
        progress,
    }
}

/// The discovered run with id `id` (never a path built from the request); only its own
/// tables are read.
pub fn find(root: &Path, id: &str) -> Option<RunEntry> {
    run_dirs(root).into_iter().find(|(i, _)| i == id).map(|(id, dir)| entry(id, &dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_found_below_the_folder_but_not_inside_stage_stores() {
        let dir = tempfile::tempdir().unwrap();
        for run in ["a", "nested/b", "a/history/20260101T000000Z-x", "a/stages/c"] {
            std::fs::create_dir_all(dir.path().join(run)).unwrap();
            std::fs::write(dir.path().join(run).join("run.json"), "{}").unwrap();
        }
        let ids: Vec<String> = discover(dir.path()).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["a", "a/history/20260101T000000Z-x", "nested/b"]);
        assert!(find(dir.path(), "../etc").is_none());
    }
}
