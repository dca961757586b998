//! Where finished stages live: `<store>/<kind>-<key>/`, in a store shared by every run of the
//! machine (`~/.cache/weightlab/stages`, [`resolve`]) — so a zoo is trained once whatever the
//! output folder — except each run's report stage, which lives in its run folder
//! (`<output>/stages/`) beside the tables it wrote. A stage writes into a temporary
//! folder of its own process that is renamed into place only when complete, with `stage.json`
//! inside, so a crash (even kill -9) never leaves a half-written stage that a rerun would
//! trust, and several processes (shards) can share one store: the first to finish a stage
//! wins, the others drop their copy. `stage.json` holds the stage's typed record (see
//! [`crate::records`]); a failed stage leaves `<kind>-<key>.failed.json`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weightlab_manifest::Stage;
use weightlab_results::FailureRow;

use crate::error::{Result, format, io};

/// Writes one tensor (`shape`, raw little-endian `bytes` of `dtype`) as a safetensors file.
pub(crate) fn write_tensor(path: &Path, name: &str, dtype: safetensors::Dtype, shape: Vec<usize>, bytes: &[u8]) -> Result<()> {
    let view = safetensors::tensor::TensorView::new(dtype, shape, bytes).map_err(format(path))?;
    std::fs::write(path, safetensors::serialize([(name, view)], None).map_err(format(path))?).map_err(io("writing", path))
}

/// Largest stage file read back (a run folder may come from elsewhere: it is read as data,
/// regular files only, bounded).
const MAX_STAGE_FILE_BYTES: u64 = 8 << 30;

/// Reads a file of a stage store or run folder: a regular file (never a FIFO or a device) of
/// bounded size.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    weightlab_manifest::files::read_regular(path, MAX_STAGE_FILE_BYTES)
}

/// Reads tensor `name` of a safetensors file: its shape and raw little-endian bytes.
pub(crate) fn read_tensor(path: &Path, name: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_file(path).map_err(io("reading", path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(format(path))?;
    let t = st.tensor(name).map_err(format(path))?;
    Ok((t.shape().to_vec(), t.data().to_vec()))
}

/// Writes a file whole or not at all (a temporary file of this process, then a rename), so a
/// kill leaves the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", process_tag()));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        // Half a file on a full disk holds space and reads as litter: gone with the error.
        let _ = std::fs::remove_file(&tmp);
        return Err(io("writing", path)(e));
    }
    std::fs::rename(&tmp, path).map_err(io("writing", path))
}

pub struct StageStore {
    root: PathBuf,
    /// The run folder's own stages (the report stage); the same as `root` for a store kept in
    /// the run folder.
    run_root: PathBuf,
    /// When each of this process's temporary folders was begun: a stage's wall time.
    begun: std::sync::Mutex<std::collections::HashMap<PathBuf, std::time::Instant>>,
}

/// What `stage.json` holds.
#[derive(Serialize, serde::Deserialize)]
struct StageFile<T> {
    stage: String,
    key: String,
    /// Wall time from the stage's start to its commit, in whichever process ran it.
    #[serde(default)]
    seconds: Option<f64>,
    /// Where it was computed: the host, and the compute device and threads of the process
    /// that ran it (a sharded run's stages may come from many machines).
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    compute: Option<String>,
    /// The run folder of the run that computed it (a shared store serves many).
    #[serde(default)]
    output: Option<PathBuf>,
    summary: T,
}

/// This process's tag in temporary folder names: host and process id, so that processes
/// sharing a store (shards on a cluster's shared file system) never touch each other's work.
fn process_tag() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "host".into())
}

impl StageStore {
    /// The store kept in the run folder `output` (`<output>/stages`).
    pub fn new(output: &Path) -> Self {
        Self { root: output.join("stages"), run_root: output.join("stages"), begun: Default::default() }
    }

    /// The store `--store` names for a run into `output`: a folder, or `run` for the output
    /// folder's own `stages/`.
    pub fn named(flag: &Path, output: &Path) -> Self {
        let root = if flag == Path::new("run") { output.join("stages") } else { flag.to_path_buf() };
        Self::shared(&root, output)
    }

    /// The store at `root` alone (`weightlab gc`).
    pub fn at(root: &Path) -> Self {
        Self { root: root.to_path_buf(), run_root: root.to_path_buf(), begun: Default::default() }
    }

    /// The store at `root`, with run folder `output` for the report stage.
    pub fn shared(root: &Path, output: &Path) -> Self {
        Self { root: root.to_path_buf(), run_root: output.join("stages"), begun: Default::default() }
    }

    /// Where stage `stage` lives: the shared root, or the run folder for the report.
    fn root_of(&self, stage: &Stage) -> &Path {
        if stage.kind == weightlab_manifest::StageKind::Report { &self.run_root } else { &self.root }
    }

    /// The folder of a finished stage.
    pub fn dir(&self, stage: &Stage) -> PathBuf {
        self.root_of(stage).join(stage.dir_name())
    }

    pub fn is_done(&self, stage: &Stage) -> bool {
        self.dir(stage).join("stage.json").is_file()
    }

    /// A fresh, empty temporary folder to build the stage's output in, private to this
    /// process: `<stage>.partial-<host>-<pid>`.
    pub fn begin(&self, stage: &Stage) -> Result<PathBuf> {
        let tmp = self.root_of(stage).join(format!("{}.partial-{}", stage.dir_name(), process_tag()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io("removing the stale", &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
        if let Ok(mut begun) = self.begun.lock() {
            begun.insert(tmp.clone(), std::time::Instant::now());
        }
        Ok(tmp)
    }

    /// Removes this process's unfinished folder of `stage`, if there is one: what a stage that
    /// failed had written so far (a zoo's checkpoints, a method's samples) would otherwise hold
    /// its disk space until a later run's cleanup — on a full disk, the space the failure
    /// record and the report need.
    pub fn abandon(&self, stage: &Stage) {
        let tmp = self.root_of(stage).join(format!("{}.partial-{}", stage.dir_name(), process_tag()));
        if let Ok(mut begun) = self.begun.lock() {
            begun.remove(&tmp);
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }

    /// Marks the stage complete: writes `stage.json` with its record and renames the folder
    /// into place — only if no other process finished the same stage first (then this copy is
    /// dropped: a stage's output depends only on its key). Clears a failure recorded earlier.
    pub fn commit<T: Serialize>(&self, stage: &Stage, tmp: &Path, record: &T) -> Result<PathBuf> {
        self.commit_timed(stage, tmp, record, None)
    }

    /// [`StageStore::commit`] recording `seconds` as the stage's time (by default: since
    /// [`StageStore::begin`]) — a stage computed with another gives its own share.
    pub fn commit_timed<T: Serialize>(&self, stage: &Stage, tmp: &Path, record: &T, seconds: Option<f64>) -> Result<PathBuf> {
        let since_begun = self.begun.lock().ok().and_then(|mut b| b.remove(tmp)).map(|t| t.elapsed().as_secs_f64());
        let seconds = seconds.or(since_begun);
        let output = std::path::absolute(self.run_root.parent().unwrap_or(&self.run_root)).ok();
        let file = StageFile { stage: stage.label(), key: stage.key.clone(), seconds, host: Some(hostname()), compute: Some(weightlab_compute::device::description()), output, summary: record };
        let path = tmp.join("stage.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&file).map_err(format(&path))?).map_err(io("writing", &path))?;
        let dir = self.dir(stage);
        // rename(2) of a folder onto an existing non-empty folder fails: the first one wins.
        if let Err(e) = std::fs::rename(tmp, &dir) {
            if !self.is_done(stage) {
                return Err(io("moving into place", &dir)(e));
            }
            std::fs::remove_dir_all(tmp).map_err(io("removing the duplicate", tmp))?;
        }
        self.clear_failure(stage);
        Ok(dir)
    }

    /// The record a finished stage stored.
    pub fn record<T: DeserializeOwned>(&self, stage: &Stage) -> Result<T> {
        let path = self.dir(stage).join("stage.json");
        let bytes = read_file(&path).map_err(io("reading", &path))?;
        let file: StageFile<T> = serde_json::from_slice(&bytes).map_err(|e| crate::Error::Format { path: path.clone(), reason: format!("not a {} record: {e}", stage.label()) })?;
        Ok(file.summary)
    }

    /// A finished stage's `stage.json` without its record, and its path.
    fn header(&self, stage: &Stage) -> Option<(StageFile<serde::de::IgnoredAny>, PathBuf)> {
        let path = self.dir(stage).join("stage.json");
        let file = serde_json::from_slice(&read_file(&path).ok()?).ok()?;
        Some((file, path))
    }

    /// When a finished stage started and how long it ran (in whichever process ran it), if
    /// it recorded that.
    pub fn timing(&self, stage: &Stage) -> Option<(std::time::SystemTime, f64)> {
        let (file, path) = self.header(stage)?;
        let seconds = file.seconds?;
        let finished = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        Some((finished.checked_sub(std::time::Duration::from_secs_f64(seconds))?, seconds))
    }

    /// The run folder whose run computed a finished stage, if it recorded that and it is not
    /// this store's run folder: a stage another run left in the shared store.
    pub fn computed_for_another(&self, stage: &Stage) -> Option<PathBuf> {
        let (file, _) = self.header(stage)?;
        let mine = std::path::absolute(self.run_root.parent()?).ok()?;
        file.output.filter(|o| *o != mine)
    }

    /// Where a finished stage was computed, "<compute> on <host>", if it recorded that.
    pub fn computed_on(&self, stage: &Stage) -> Option<String> {
        let (file, _) = self.header(stage)?;
        Some(format!("{} on {}", file.compute?, file.host.unwrap_or_else(|| "an unnamed host".into())))
    }

    fn failure_path(&self, stage: &Stage) -> PathBuf {
        self.root_of(stage).join(format!("{}.failed.json", stage.dir_name()))
    }

    /// Records that the stage failed (`<stage>.failed.json`, written whole or not at all), so
    /// that other shards skip what depends on it and the report lists it.
    pub fn fail(&self, stage: &Stage, failure: &FailureRow) -> Result<()> {
        let root = self.root_of(stage);
        std::fs::create_dir_all(root).map_err(io("creating", root))?;
        let path = self.failure_path(stage);
        write_atomic(&path, &serde_json::to_vec_pretty(failure).map_err(format(&path))?)
    }

    /// The failure recorded for a stage that has not finished, if any.
    pub fn failure(&self, stage: &Stage) -> Option<FailureRow> {
        if self.is_done(stage) {
            return None;
        }
        let bytes = read_file(&self.failure_path(stage)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The failure recorded for a stage that has not finished, if it was recorded at `since`
    /// or later (an older one belongs to an earlier attempt, which may be retried now).
    pub fn failure_since(&self, stage: &Stage, since: std::time::SystemTime) -> Option<FailureRow> {
        let written = std::fs::metadata(self.failure_path(stage)).and_then(|m| m.modified()).ok()?;
        (written >= since).then(|| self.failure(stage)).flatten()
    }

    /// Forgets a recorded failure (the stage is about to be retried).
    pub fn clear_failure(&self, stage: &Stage) {
        let _ = std::fs::remove_file(self.failure_path(stage));
    }

    /// Removes temporary folders that processes of this host left behind when they were
    /// killed (their process is gone); other hosts' folders are left to them.
    pub fn remove_stale(&self) -> Result<usize> {
        let prefix = format!("-{}-", hostname());
        let mut removed = 0;
        let roots: &[&PathBuf] = if self.root == self.run_root { &[&self.root] } else { &[&self.root, &self.run_root] };
        for entry in roots.iter().filter_map(|r| std::fs::read_dir(r).ok()).flat_map(|e| e.flatten()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((_, tag)) = name.split_once(".partial") else { continue };
            // `.partial` alone is the pre-shard layout; `.partial-<host>-<pid>` ours if the host matches.
            let stale = match tag.strip_prefix(&prefix) {
                Some(pid) => pid.parse::<u32>().is_ok_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()),
                None => tag.is_empty(),
            };
            if stale {
                std::fs::remove_dir_all(entry.path()).map_err(io("removing the stale", &entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The names of the finished stage folders in this store.
    pub fn finished(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut names: Vec<String> =
            entries.flatten().filter(|e| e.path().join("stage.json").is_file()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.contains(".partial")).collect();
        names.sort();
        names
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The root of the stage store a run with output folder `output` uses: `explicit` (`--store`),
/// else `WEIGHTLAB_STORE` (`run`: the run folder's own `stages/`, as before stores were
/// shared), else the machine's shared store `stages/` in the cache folder (`WEIGHTLAB_CACHE`,
/// default `~/.cache/weightlab`); the run folder's own when no cache folder can be had.
pub fn resolve(output: &Path, explicit: Option<&Path>) -> PathBuf {
    let per_run = output.join("stages");
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    match std::env::var_os("WEIGHTLAB_STORE") {
        Some(v) if v == "run" => return per_run,
        Some(v) if !v.is_empty() => return PathBuf::from(v),
        _ => {}
    }
    weightlab_host::cache_dir().map(|c| c.join("stages")).unwrap_or(per_run)
}

/// What one run folder refers to in a shared store (`<store>/refs/<hash>.json`), for
/// `weightlab gc`.
#[derive(Serialize, serde::Deserialize)]
struct Reference {
    output: PathBuf,
    stages: Vec<String>,
}

/// What `weightlab gc` did (or, dry, would do).
#[derive(Debug, Default)]
pub struct Collected {
    pub removed: Vec<String>,
    pub bytes: u64,
    pub kept: usize,
    /// Run folders that no longer exist or no longer use this store.
    pub forgotten: Vec<PathBuf>,
}

impl StageStore {
    /// Records that run folder `output` refers to `stages` of this store (a shared one), so
    /// `weightlab gc` keeps them while the folder exists.
    pub fn refer(&self, output: &Path, stages: &[&Stage]) -> Result<()> {
        if self.root == self.run_root {
            return Ok(());
        }
        let output = std::path::absolute(output).map_err(io("resolving", output))?;
        use sha2::Digest;
        let name = hex::encode(&sha2::Sha256::digest(output.to_string_lossy().as_bytes())[..8]);
        let refs = self.root.join("refs");
        std::fs::create_dir_all(&refs).map_err(io("creating", &refs))?;
        let reference = Reference { output, stages: stages.iter().filter(|s| s.kind != weightlab_manifest::StageKind::Report).map(|s| s.dir_name()).collect() };
        let path = refs.join(format!("{name}.json"));
        write_atomic(&path, &serde_json::to_vec_pretty(&reference).map_err(format(&path))?)
    }

    /// Removes the finished stages (and failure records) of this store that no existing run
    /// folder refers to; `dry` only says what it would remove. A run folder is forgotten when
    /// it is gone or its `run.json` names another store.
    pub fn collect(&self, dry: bool) -> Result<Collected> {
        let mut done = Collected::default();
        let mut kept = std::collections::BTreeSet::new();
        let refs = self.root.join("refs");
        for entry in std::fs::read_dir(&refs).into_iter().flatten().flatten() {
            let Ok(reference) = serde_json::from_slice::<Reference>(&read_file(&entry.path()).unwrap_or_default()) else { continue };
            let uses_me = crate::executor::RunInfo::read(&reference.output).ok().and_then(|i| i.store).is_some_and(|s| same_path(&s, &self.root));
            if uses_me {
                kept.extend(reference.stages);
            } else {
                done.forgotten.push(reference.output);
                if !dry {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        for entry in std::fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stage = name.strip_suffix(".failed.json").unwrap_or(&name).to_string();
            if name == "refs" || name.contains(".partial") || kept.contains(&stage) {
                done.kept += usize::from(!name.ends_with(".failed.json") && name != "refs" && !name.contains(".partial"));
                continue;
            }
            done.bytes += size_of(&entry.path());
            if !dry {
                let removed = if entry.path().is_dir() { std::fs::remove_dir_all(entry.path()) } else { std::fs::remove_file(entry.path()) };
                removed.map_err(io("removing", &entry.path()))?;
            }
            done.removed.push(name);
        }
        Ok(done)
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `weightlab gc`: removes the stages of the store at `root` that no run folder refers to
/// ([`StageStore::collect`]), then trims the compiled-code caches — compiled components of other
/// engine builds, and this build's compiled components and functions unused for `unused`
/// (`weightlab_host::compiled::collect`) — and prints what went (with `dry`: would go).
pub fn gc(root: &Path, unused: std::time::Duration, dry: bool) -> Result<()> {
    let done = StageStore::at(root).collect(dry)?;
    done.forgotten.iter().for_each(|f| crate::output::detail(&format!("forgot {} (gone, or using another store)", f.display())));
    let verb = if dry { "Would remove" } else { "Removed" };
    let forgotten = if done.forgotten.is_empty() { String::new() } else { format!("; {} run folder(s) gone or moved to another store", done.forgotten.len()) };
    crate::output::result(verb, &format!("{} stage(s) ({:.1} MB) from {}; {} kept{forgotten}", done.removed.len(), done.bytes as f64 / 1e6, root.display(), done.kept));
    let Some(dir) = weightlab_host::Runtime::default_cache_dir() else { return Ok(()) };
    match weightlab_host::Runtime::new(Some(&dir)).and_then(|runtime| runtime.collect_compiled(&dir, unused, dry)) {
        Ok(c) => {
            let days = (unused.as_secs_f64() / 864.0).round() / 100.0;
            crate::output::result(verb, &format!("{} compiled file(s) ({:.1} MB) from {} (of other builds, or unused for {days} days)", c.files, c.bytes as f64 / 1e6, dir.display()));
        }
        Err(e) => crate::output::warn(&format!("the compiled-code cache {} was not trimmed: {e:#}", dir.display())),
    }
    Ok(())
}

/// Bytes under `path` (symlinks not followed).
fn size_of(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| size_of(&e.path())).sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weightlab_manifest::StageKind;

    /// `/dev/full` refuses every write with ENOSPC: a full disk, without needing one.
    fn full_disk_at(path: &Path) {
        std::os::unix::fs::symlink("/dev/full", path).unwrap();
    }

    #[test]
    fn a_write_refused_by_a_full_disk_leaves_nothing_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress.json");
        full_disk_at(&path.with_extension(format!("tmp-{}", process_tag())));
        let e = write_atomic(&path, b"{}").unwrap_err();
        assert!(crate::error::storage_hint(&e).contains("the disk (or your quota) is full"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the temporary file is gone");
        assert!(crate::error::storage_hint(&io("reading", &path)(std::io::Error::from_raw_os_error(libc::ENOENT))).is_empty());
        assert!(!crate::error::storage_hint(&io("writing", &path)(std::io::Error::from_raw_os_error(libc::EDQUOT))).is_empty(), "a quota counts");
        assert!(crate::error::storage_hint(&io("writing", &path)(std::io::Error::from_raw_os_error(libc::EROFS))).contains("read-only"));
        assert!(crate::error::storage_hint(&io("writing", &path)(std::io::Error::from_raw_os_error(libc::EACCES))).contains("you may not write there"));
    }

    #[test]
    fn a_failed_stage_leaves_no_unfinished_folder_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = StageStore::at(dir.path());
        let stage = Stage { kind: StageKind::Data { name: "d".into() }, key: "0123456789abcdef".into(), deps: vec![], fit: None };
        let tmp = store.begin(&stage).unwrap();
        std::fs::write(tmp.join("x.safetensors"), vec![0u8; 1 << 20]).unwrap();
        store.abandon(&stage);
        assert!(!tmp.exists() && !store.is_done(&stage));
        store.abandon(&stage); // nothing to remove: no error
    }
}
