//! Bringing the stage stores of sharded runs into one. Stage folders are named by content key,
//! so merging is copying what is missing; a stage that two stores both hold must be the same
//! computation's output, and is checked to be identical (its `stage.json`, which records wall
//! times, aside).
//!
//! A run folder may come from elsewhere (another user's shard, a copied archive): only regular
//! files and folders are merged. A symbolic link, a FIFO or a device anywhere in a stage is
//! refused with its path, never followed — a link to `/etc/passwd` must not copy that file
//! into the store.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};
use crate::executor::{Run, RunInfo, Schedule, Summary};
use crate::output;
use crate::store::StageStore;

/// `weightlab merge`: brings the stage stores of the run folders `runs` into one (the first
/// run's, or `output`'s), checks that every stage of their plan is there — stored or recorded
/// as failed — and renders the report. The runs must have run one plan: the first run's saved
/// manifest is the one rebuilt, and a run of another plan is refused rather than mixed in.
pub fn runs(runs: &[PathBuf], output: Option<PathBuf>) -> Result<Summary> {
    let first = runs.first().ok_or_else(|| Error::Internal("a merge of no run folders".into()))?;
    let info = run_folder(first)?;
    let saved = first.join("manifest.toml");
    let text = weightlab_manifest::files::read_manifest(&saved).map_err(io("reading", &saved))?;
    let loaded = weightlab_manifest::load_str(&info.manifest, &text, &[], &info.base_dir, &crate::catalog())?;
    let out = output.unwrap_or_else(|| first.clone());
    let mut run = Run::new(loaded, Some(out.clone()))?;
    run.use_store(target_store(&info, first, &out));
    let fingerprint = run.plan.fingerprint();
    let mut sources = Vec::new();
    for dir in runs {
        let other = run_folder(dir)?;
        if other.plan != fingerprint {
            return Err(Error::Mismatch(format!(
                "{} ran plan {}, {} ran plan {fingerprint}: they come from different manifests, plugins or weightlab versions",
                dir.display(),
                other.plan,
                first.display()
            )));
        }
        sources.push(other.store_of(dir));
    }
    let merged = combine(&sources, &run.store)?;
    // Shards of one store (`run --jobs`, a cluster's shared store) have nothing to copy.
    let line = format!("{} run folder(s): {} stage(s) copied, {} computed more than once (identical)", runs.len(), merged.copied, merged.duplicates);
    if merged.copied + merged.duplicates > 0 || runs.len() > 1 {
        output::status("Merged", &line);
    } else {
        output::detail(&line);
    }
    adopt(&info, first, &out, run.store.root())?;
    run.execute_scheduled(&Schedule { merge: true, ..Schedule::default() })
}

/// The provenance of run folder `dir`, or why it is not one.
fn run_folder(dir: &Path) -> Result<RunInfo> {
    RunInfo::read(dir).map_err(|e| Error::Format { path: dir.to_path_buf(), reason: format!("not a run folder of weightlab ({e})") })
}

/// What [`combine`] did.
#[derive(Debug, Default)]
pub struct Merged {
    /// Stage folders (and failure records) copied into the target store.
    pub copied: usize,
    /// Stages held by more than one store, identical.
    pub duplicates: usize,
}

/// Makes `out` the merged run folder of `first` (whose run.json is `info`), unless it is
/// `first`: its saved manifest, and a run.json naming the store its stages are now in (`store`).
pub fn adopt(info: &RunInfo, first: &Path, out: &Path, store: &Path) -> Result<()> {
    if out == first {
        return Ok(());
    }
    std::fs::create_dir_all(out).map_err(io("creating", out))?;
    let manifest = out.join("manifest.toml");
    std::fs::copy(first.join("manifest.toml"), &manifest).map_err(io("copying the saved manifest into", &manifest))?;
    let merged = RunInfo { store: Some(std::path::absolute(store).map_err(io("resolving", store))?), ..info.clone() };
    let path = out.join("run.json");
    crate::store::write_atomic(&path, &serde_json::to_vec_pretty(&merged).map_err(crate::error::format(&path))?)
}

/// The store a merge of runs whose first is `first` (with `info`) writes into, for output
/// folder `out`: a shared store serves the merged run as it is; shards that kept their stages
/// in their own folders are copied into `out`'s.
pub fn target_store(info: &RunInfo, first: &Path, out: &Path) -> StageStore {
    let first_store = info.store_of(first);
    if std::path::absolute(first_store.root()).ok() == std::path::absolute(first.join("stages")).ok() { StageStore::new(out) } else { info.store_of(out) }
}

/// Copies every finished stage (and failure record) of the runs in `runs` that `target` lacks
/// into it. Fails when two runs hold different outputs for one stage.
pub fn combine(runs: &[StageStore], target: &StageStore) -> Result<Merged> {
    let mut merged = Merged::default();
    std::fs::create_dir_all(target.root()).map_err(io("creating", target.root()))?;
    // Every run's stages are checked before anything is copied, the target's own included
    // (its stages are read in place to render the report).
    for run in runs.iter().chain([target]) {
        for name in run.finished() {
            let stage = run.root().join(&name);
            if kind(&stage)? == Kind::Folder {
                files(&stage, &stage)?;
            }
        }
    }
    for source in runs {
        if same_folder(source.root(), target.root()) {
            continue;
        }
        for name in source.finished() {
            let (from, to) = (source.root().join(&name), target.root().join(&name));
            kind(&from)?;
            if to.join("stage.json").is_file() {
                if let Some(file) = first_difference(&from, &to)? {
                    return Err(Error::Format { path: from.join(&file), reason: format!("differs from {}: the same stage computed twice gave different outputs", to.join(&file).display()) });
                }
                merged.duplicates += 1;
                continue;
            }
            // Copied under a temporary name and renamed, like a stage being committed.
            let tmp = target.root().join(format!("{name}.partial-merge-{}", std::process::id()));
            if let Err(e) = copy_tree(&from, &tmp) {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &to).map_err(io("moving into place", &to))?;
            merged.copied += 1;
        }
        let Ok(entries) = std::fs::read_dir(source.root()) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stage) = name.strip_suffix(".failed.json") else { continue };
            if !target.root().join(stage).join("stage.json").is_file() && !target.root().join(&name).exists() {
                if kind(&entry.path())? != Kind::File {
                    return Err(refused(&entry.path(), "is a folder"));
                }
                std::fs::copy(entry.path(), target.root().join(&name)).map_err(io("copying", &entry.path()))?;
                merged.copied += 1;
            }
        }
    }
    Ok(merged)
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What a merged path may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Folder,
}

fn refused(path: &Path, what: &str) -> Error {
    Error::Format { path: path.to_path_buf(), reason: format!("{what}: merge takes only regular files and folders from a run folder, and follows no links") }
}

/// Whether `path` itself (not what a link points to) is a regular file or a folder; anything
/// else is refused.
fn kind(path: &Path) -> Result<Kind> {
    let meta = std::fs::symlink_metadata(path).map_err(io("reading", path))?;
    let t = meta.file_type();
    match () {
        _ if t.is_symlink() => Err(refused(path, "is a symbolic link")),
        _ if t.is_dir() => Ok(Kind::Folder),
        _ if t.is_file() => Ok(Kind::File),
        _ => Err(refused(path, "is not a regular file (a FIFO, socket or device)")),
    }
}

/// Copies folder `from` to `to` (which must not exist), recursively; refuses links and special
/// files (see the module docs).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io("creating", to))?;
    for entry in std::fs::read_dir(from).map_err(io("reading", from))?.flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        match kind(&src)? {
            Kind::Folder => copy_tree(&src, &dst)?,
            Kind::File => {
                std::fs::copy(&src, &dst).map_err(io("copying", &src))?;
            }
        }
    }
    Ok(())
}

/// The first file (relative path) whose bytes differ between two stage folders, `stage.json`
/// aside; `None` when they hold the same files with the same bytes.
pub fn first_difference(a: &Path, b: &Path) -> Result<Option<String>> {
    let (fa, fb) = (files(a, a)?, files(b, b)?);
    if fa != fb {
        let only = fa.iter().filter(|f| !fb.contains(f)).chain(fb.iter().filter(|f| !fa.contains(f))).next().cloned();
        return Ok(only.or_else(|| Some(".".into())));
    }
    for f in fa {
        let (x, y) = (crate::store::read_file(&a.join(&f)).map_err(io("reading", &a.join(&f)))?, crate::store::read_file(&b.join(&f)).map_err(io("reading", &b.join(&f)))?);
        if x != y {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// Files under `dir` relative to `root`, sorted, `stage.json` at the top aside.
fn files(root: &Path, dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("reading", dir))?.flatten() {
        let path = entry.path();
        if kind(&path)? == Kind::Folder {
            out.extend(files(root, &path)?);
        } else if dir != root || entry.file_name() != "stage.json" {
            out.push(path.strip_prefix(root).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default());
        }
    }
    out.sort();
    Ok(out)
}
