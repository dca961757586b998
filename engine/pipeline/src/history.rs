//! Run history: a run never overwrites another. The top of an output folder holds the newest
//! run's report and tables (what a reader opens, what tests and tools read); every run that
//! produced new results also leaves `history/<UTC time>-<plan>/` with its report, tables,
//! manifest and `run.json`. The entries are hard links to the files of their run — each of
//! those files is replaced by a rename, never written in place, so a later run's files are new
//! inodes and an entry keeps its own — which makes keeping every run nearly free.
//! `weightlab runs` lists the entries with status, time and what changed in the manifest.

use std::path::{Path, PathBuf};

use crate::error::{Result, io};

/// The history folder of an output folder.
pub const DIR: &str = "history";

/// Which files of a run folder an entry keeps: the report and the run's record; every table.
fn kept(name: &str) -> bool {
    matches!(name, "report.html" | "manifest.toml" | "run.json" | "stages.json") || name.ends_with(".parquet") || name.ends_with(".arrow")
}

/// Adds the run now at the top of `output` to its history as `<stamp>-<plan>`; an entry
/// already holding these very files (the same report file) is not added twice. Returns the
/// entry's folder.
pub fn archive(output: &Path, stamp: &str, plan: &str) -> Result<PathBuf> {
    let report = output.join("report.html");
    if let Some(existing) = holding(output, &report) {
        return Ok(existing);
    }
    let history = output.join(DIR);
    std::fs::create_dir_all(&history).map_err(io("creating", &history))?;
    // Entries a killed process left half-built (`.<id>.partial-<pid>`, its process gone).
    for entry in std::fs::read_dir(&history).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((_, pid)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".partial-"))
            && pid.parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let base = format!("{stamp}-{}", &plan[..plan.len().min(8)]);
    let mut id = base.clone();
    let mut n = 1;
    while history.join(&id).exists() {
        n += 1;
        id = format!("{base}-{n}");
    }
    // Built under a temporary name and renamed, so an entry is whole or absent.
    let tmp = history.join(format!(".{id}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
    for entry in std::fs::read_dir(output).map_err(io("reading", output))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !kept(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let (from, to) = (entry.path(), tmp.join(&name));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io("copying into the history", &from))?;
        }
    }
    let entry = history.join(&id);
    std::fs::rename(&tmp, &entry).map_err(io("moving into place", &entry))?;
    Ok(entry)
}

/// The entry whose report is the same file as `report` (hard-linked), if any.
fn holding(output: &Path, report: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(report).ok()?;
    entries(output).into_iter().find(|e| std::fs::metadata(e.join("report.html")).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino()))
}

/// The history entries of `output`, oldest first.
pub fn entries(output: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(output.join(DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().join("run.json").is_file())
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Keeps the run at the top of `output` before a new run replaces it, if the history does not
/// hold it yet (a folder written before weightlab kept histories, or a run whose archiving was
/// interrupted): named after its report's time.
pub fn keep_previous(output: &Path) -> Result<()> {
    let report = output.join("report.html");
    let Ok(meta) = std::fs::metadata(&report) else { return Ok(()) };
    if holding(output, &report).is_some() {
        return Ok(());
    }
    let stamp = meta.modified().map(crate::stages::stamp).unwrap_or_else(|_| "earlier".into());
    let plan = crate::RunInfo::read(output).map(|i| i.plan).unwrap_or_else(|_| "unknown".into());
    archive(output, &stamp, &plan).map(drop)
}

/// What changed in `new` against `old` (manifest texts), key by key: `data.fmnist.train_subset
/// 4000 → 1`, `+ method.copy`, `- zoo.cnn`. `[[method]]` entries are matched by name, as
/// `extends` merges them, so reordering methods is no change. Texts that are not TOML (an
/// entry from elsewhere) are compared line by line instead: `- old` / `+ new`.
pub fn diff(old: &str, new: &str) -> Vec<String> {
    let (Ok(a), Ok(b)) = (old.parse::<toml::Table>(), new.parse::<toml::Table>()) else { return line_diff(old, new) };
    let mut out = Vec::new();
    changes("", Some(&toml::Value::Table(a)), Some(&toml::Value::Table(b)), &mut out);
    out
}

/// The keys under `path` that differ between `old` and `new`: their children ([`keyed`]) in
/// `new`'s order, then what only `old` has.
fn changes(path: &str, old: Option<&toml::Value>, new: Option<&toml::Value>, out: &mut Vec<String>) {
    use toml::Value;
    let join = |key: &str| {
        let key = if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') { key.to_string() } else { format!("{key:?}") };
        if path.is_empty() { key } else { format!("{path}.{key}") }
    };
    match (old, new) {
        (Some(a), Some(b)) if a == b => {}
        (Some(a), Some(b)) => match (keyed(a), keyed(b)) {
            (Some(a_children), Some(b_children)) if std::mem::discriminant(a) == std::mem::discriminant(b) => {
                fn find<'v>(children: &[(String, &'v Value)], key: &str) -> Option<&'v Value> {
                    children.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
                }
                for (key, value) in &b_children {
                    changes(&join(key), find(&a_children, key), Some(value), out);
                }
                for (key, value) in a_children.iter().filter(|(k, _)| find(&b_children, k).is_none()) {
                    changes(&join(key), Some(value), None, out);
                }
            }
            _ => out.push(format!("{path} {} → {}", shown(a), shown(b))),
        },
        (None, Some(Value::Table(_))) => out.push(format!("+ {path}")),
        (None, Some(b)) => out.push(format!("+ {path} = {}", shown(b))),
        (Some(_), None) => out.push(format!("- {path}")),
        (None, None) => {}
    }
}

/// The children of a table (by key, in order) or of an array of tables that all have a `name`
/// (`[[method]]`, by name); `None` for anything else, which is compared whole.
fn keyed(value: &toml::Value) -> Option<Vec<(String, &toml::Value)>> {
    match value {
        toml::Value::Table(t) => Some(t.iter().map(|(k, v)| (k.clone(), v)).collect()),
        toml::Value::Array(items) => items.iter().map(|v| Some((v.get("name")?.as_str()?.to_string(), v))).collect::<Option<Vec<_>>>().filter(|v| !v.is_empty()),
        _ => None,
    }
}

/// A value as one short line of TOML (very large and very small numbers in exponent form).
fn shown(value: &toml::Value) -> String {
    let text = match value {
        toml::Value::Float(f) if *f != 0.0 && f.is_finite() && !(1e-4..1e6).contains(&f.abs()) => format!("{f:e}"),
        other => other.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
    };
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The lines only one of `old` and `new` has (comments and blank lines aside), as `- old` /
/// `+ new`, in order.
fn line_diff(old: &str, new: &str) -> Vec<String> {
    let significant = |t: &str| -> Vec<String> { t.lines().map(str::trim_end).filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).map(str::to_string).collect() };
    let (a, b) = (significant(old), significant(new));
    let mut out: Vec<String> = a.iter().filter(|l| !b.contains(l)).map(|l| format!("- {}", l.trim())).collect();
    out.extend(b.iter().filter(|l| !a.contains(l)).map(|l| format!("+ {}", l.trim())));
    out
}

/// What `weightlab runs` shows of one history entry.
pub struct Summary {
    /// The entry's folder name: `<UTC time>-<plan>`.
    pub id: String,
    /// `ok`, `2 failed`, or `?` when the entry has no runs table.
    pub status: String,
    pub seconds: f64,
    /// "copy 0.851, noise 0.803, …": mean test accuracy of each method's samples, or `-`.
    pub accuracy: String,
    /// The effective manifest it ran.
    pub manifest: String,
}

/// The summary of history entry `entry`.
pub fn summary(entry: &Path) -> Summary {
    let id = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let run = weightlab_results::rows::read_table::<weightlab_results::RunRow>(entry, "runs").ok().flatten().and_then(|r| r.into_iter().next());
    let (status, seconds) = run.map_or(("?".to_string(), f64::NAN), |r| (r.status, r.seconds));
    let manifest = crate::store::read_file(&entry.join("manifest.toml")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    Summary { id, status, seconds, accuracy: accuracy_by_method(entry), manifest }
}

/// "copy 0.851, noise 0.803, …" from a run's samples table (methods, not the zoo's own models).
fn accuracy_by_method(dir: &Path) -> String {
    let Ok(Some(rows)) = weightlab_results::rows::read_samples(dir) else { return "-".into() };
    let mut by: Vec<(String, f64, usize)> = Vec::new();
    for row in rows.iter().filter(|r| r.role != "reference") {
        let Some(a) = row.metrics.get("accuracy").copied().filter(|a| a.is_finite()) else { continue };
        match by.iter_mut().find(|(m, _, _)| *m == row.method) {
            Some((_, sum, n)) => {
                *sum += a;
                *n += 1;
            }
            None => by.push((row.method.clone(), a, 1)),
        }
    }
    if by.is_empty() {
        return "-".into();
    }
    let shown: Vec<String> = by.iter().take(4).map(|(m, s, n)| format!("{m} {:.3}", s / *n as f64)).collect();
    let more = if by.len() > 4 { format!(", … {} more", by.len() - 4) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// Prints the history of output folder `folder` as `weightlab runs` shows it: one line per run
/// (id, status, seconds, mean accuracy per method) with what changed in the manifest since the
/// run before. False when the folder has no history yet (which it says).
pub fn print_table(folder: &Path) -> bool {
    let entries = entries(folder);
    let unfinished = unfinished(folder);
    if entries.is_empty() {
        println!("{} has no run history yet (a run of weightlab that keeps one writes {}/history/)", folder.display(), folder.display());
        if let Some(line) = unfinished {
            println!("{line}");
        }
        return false;
    }
    println!("{:<32} {:<10} {:>9}  accuracy (mean of samples) · changes against the run before", "run", "status", "seconds");
    let mut previous: Option<String> = None;
    for entry in entries.iter().map(|e| summary(e)) {
        let changes = match &previous {
            None => "(first)".to_string(),
            Some(before) => {
                let d = diff(before, &entry.manifest);
                if d.is_empty() { "(same manifest)".to_string() } else { d.join("; ") }
            }
        };
        let line = format!("{:<32} {:<10} {:>9.1}  {} · {changes}", entry.id, entry.status, entry.seconds, entry.accuracy);
        println!("{}", crate::output::plain(&line).replace('\n', " "));
        previous = Some(entry.manifest);
    }
    if let Some(line) = unfinished {
        println!("{line}");
    }
    true
}

/// A line on the folder's latest run when it has not finished (and so is in no history entry):
/// still running, or interrupted, with how far it got.
fn unfinished(folder: &Path) -> Option<String> {
    let progress = crate::progress::read(folder).filter(|p| p.state != "finished")?;
    let line = if progress.is_live() {
        format!("A run started {} is in progress (process {}): {}", progress.started, progress.pid, progress.kept())
    } else {
        format!("The run started {} was interrupted: {}; running its manifest again goes on from there", progress.started, progress.kept())
    };
    Some(crate::output::plain(&line).replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_files_when_the_top_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let write = |name: &str, text: &str| crate::store::write_atomic(&out.join(name), text.as_bytes()).unwrap();
        write("report.html", "one");
        write("run.json", "{\"manifest\":\"m\",\"base_dir\":\".\",\"plan\":\"p1\"}");
        write("samples.parquet", "s1");
        let first = archive(out, "20261204T100000Z", "p1aaaaaaaaaa").unwrap();
        assert_eq!(archive(out, "20261204T100001Z", "p1aaaaaaaaaa").unwrap(), first, "the same run is kept once");
        write("report.html", "two");
        write("samples.parquet", "s2");
        let second = archive(out, "20261204T100000Z", "p2bbbbbbbbbb").unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(first.join("report.html")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(first.join("samples.parquet")).unwrap(), "s1");
        assert_eq!(std::fs::read_to_string(second.join("report.html")).unwrap(), "two");
        assert_eq!(entries(out), vec![first, second]);
        assert_eq!(diff("a = 1\nb = 2\n# c\n", "a = 1\nb = 3\n"), vec!["b 2 → 3"]);
    }

    #[test]
    fn changes_between_runs_are_named_by_key_and_methods_by_name() {
        let old = r#"[experiment]
name = "x"
seeds = [0, 1]

[data.fmnist]
source = "fashion-mnist"
train_subset = 4000

[zoo.mlp]
data = "fmnist"
split = { train = 10, heldout = 2 }

[[method]]
name = "noise"
plugin = "noise"
config = { sigma = 0.01 }

[[method]]
name = "copy"
plugin = "copy"
"#;
        // Methods reordered (no change), one config value, a dataset value, a split, a seed,
        // a method gone and one new, a new zoo.
        let new = r#"[experiment]
name = "x"
seeds = [0, 1, 2]

[data.fmnist]
source = "fashion-mnist"
train_subset = 1000

[zoo.mlp]
data = "fmnist"
split = { train = 8, heldout = 2 }

[zoo.cnn]
data = "fmnist"

[[method]]
name = "average k=3"
plugin = "average"

[[method]]
name = "noise"
plugin = "noise"
config = { sigma = 0.05 }
"#;
        assert_eq!(
            diff(old, new),
            vec![
                "data.fmnist.train_subset 4000 → 1000",
                "experiment.seeds [0, 1] → [0, 1, 2]",
                "+ method.\"average k=3\"",
                "method.noise.config.sigma 0.01 → 0.05",
                "- method.copy",
                "+ zoo.cnn",
                "zoo.mlp.split.train 10 → 8",
            ]
        );
        assert!(diff(old, old).is_empty());
        assert_eq!(diff("lr = 3e-3\nsigma = 0.5", "lr = 1e6\nsigma = 1e-30"), vec!["lr 0.003 → 1e6", "sigma 0.5 → 1e-30"]);
        assert_eq!(diff("not [toml", "not [toml either"), vec!["- not [toml", "+ not [toml either"], "line by line when not TOML");
    }

    #[test]
    fn a_folder_from_before_histories_is_kept_with_its_own_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let write = |name: &str, text: &str| crate::store::write_atomic(&out.join(name), text.as_bytes()).unwrap();
        write("report.html", "old report");
        write("manifest.toml", "sigma = 1");
        write("run.json", "{\"manifest\":\"m\",\"base_dir\":\".\",\"plan\":\"0123456789ab\"}");
        keep_previous(out).unwrap();
        keep_previous(out).unwrap();
        let kept = entries(out);
        assert_eq!(kept.len(), 1, "kept once: {kept:?}");
        assert!(kept[0].file_name().unwrap().to_string_lossy().ends_with("-01234567"), "{kept:?}");
        write("manifest.toml", "sigma = 2");
        assert_eq!(std::fs::read_to_string(kept[0].join("manifest.toml")).unwrap(), "sigma = 1", "a new run's files never reach an old entry");
    }
}
