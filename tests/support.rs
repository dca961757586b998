//! Helpers for the end-to-end tests: find the `weightlab` binary next to the test executable,
//! run it, and make temporary experiment folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "cdp.rs"]
pub mod cdp;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The plugin ABI version of `plugins/wit` (its `package weightlab:plugin@…` line).
pub fn abi_version() -> String {
    let wit = std::fs::read_to_string(root().join("plugins/wit/weightlab.wit")).expect("plugins/wit/weightlab.wit");
    wit.lines().find_map(|l| l.trim().strip_prefix("package weightlab:plugin@")).expect("package line").trim_end_matches(';').to_string()
}

/// Builds tests/hostile (a plugin that misbehaves on request) for wasm32-wasip2 and returns
/// the component's path.
pub fn build_hostile() -> PathBuf {
    let manifest = root().join("tests/hostile/Cargo.toml");
    let status = Command::new(env!("CARGO")).args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"]).arg(&manifest).current_dir(root()).status().expect("cargo runs");
    assert!(status.success(), "building the hostile plugin failed");
    let meta = Command::new(env!("CARGO")).args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"]).arg(&manifest).current_dir(root()).output().expect("cargo metadata runs");
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).expect("cargo metadata prints JSON");
    PathBuf::from(meta["target_directory"].as_str().expect("a target directory")).join("wasm32-wasip2/release/hostile.wasm")
}

/// The `weightlab` binary built alongside the tests: `cargo test --workspace` (what
/// `make test` runs) builds it next to the test's own `deps/` folder.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target profile dir");
    let bin = dir.join("weightlab");
    assert!(bin.is_file(), "{} is not built: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// Runs `weightlab <args>` in `cwd`; returns the output.
pub fn weightlab(cwd: &Path, args: &[&str]) -> Output {
    command(cwd, args).output().expect("run weightlab")
}

/// The `weightlab` command with `args` in `cwd`, finding the built plugins, not yet started.
pub fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    // Each run keeps its stages in its own folder (`WEIGHTLAB_STORE=run`): tests that count
    // what ran and what was cached must not see each other's stages in a shared store.
    c.args(args).current_dir(cwd).env("WEIGHTLAB_PLUGIN_DIR", root().join("plugins/dist")).env("WEIGHTLAB_STORE", "run");
    c
}

/// Like [`weightlab`], with one compute thread (libtorch's and the engine's), for heavy runs
/// that go side by side: two runs of two threads each on two cores spin against each other
/// and each takes several times as long, while with one thread each they share the machine
/// (two contract runs: 6.6 s side by side, 9.4 s one after the other with two threads).
pub fn weightlab_beside(cwd: &Path, args: &[&str]) -> Output {
    command(cwd, args).env("OMP_NUM_THREADS", "1").env("MKL_NUM_THREADS", "1").output().expect("run weightlab")
}

/// Runs the manifest `manifest` into `out` (both relative to `cwd`) as two shards side by side
/// in one stage store, one compute thread each (`run --jobs 2`: as a cluster would, on this
/// machine's two cores), merged into the report. A run whose methods are independent stages
/// finishes in about half the time; what it computes is what one process computes with one
/// thread.
pub fn weightlab_sharded(cwd: &Path, manifest: &str, out: &str) -> Output {
    command(cwd, &["run", manifest, "-o", out, "--jobs", "2"]).env("OMP_NUM_THREADS", "1").env("MKL_NUM_THREADS", "1").output().expect("run weightlab")
}

/// Runs and asserts success, returning stderr + stdout as text.
pub fn weightlab_ok(cwd: &Path, args: &[&str]) -> String {
    succeeded(weightlab(cwd, args), args)
}

/// [`weightlab_ok`] with one compute thread (see [`weightlab_beside`]).
pub fn weightlab_ok_beside(cwd: &Path, args: &[&str]) -> String {
    succeeded(weightlab_beside(cwd, args), args)
}

fn succeeded(out: Output, args: &[&str]) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "weightlab {args:?} failed ({:?}):\n{text}", out.status);
    text
}

/// The first line of a manifest built on `tests/fixtures/blobs.toml` (a blobs dataset and a
/// six-model MLP zoo `mlp`); it must come before the manifest's first table.
pub const BLOBS_ZOO: &str = "extends = [\"$FIXTURES/blobs.toml\"]\n";

/// `manifest` with `$FIXTURES` replaced by the path of `tests/fixtures/`.
pub fn with_fixtures(manifest: &str) -> String {
    manifest.replace("$FIXTURES", &root().join("tests/fixtures").to_string_lossy())
}

/// A temporary folder holding `manifest` as `exp.toml`; `$FIXTURES` in it stands for the
/// shared manifests in `tests/fixtures/` (`extends = ["$FIXTURES/fmnist.toml"]`).
pub fn experiment(manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("exp.toml");
    std::fs::write(&path, with_fixtures(manifest)).expect("write manifest");
    (dir, path)
}

/// Reads `samples.parquet` of a run as (method, column) values.
pub fn column(run_dir: &Path, table: &str, method: Option<&str>, name: &str) -> Vec<Option<f64>> {
    let df = weightlab_results::read_parquet(&run_dir.join(format!("{table}.parquet"))).expect("table readable");
    let values: Vec<Option<f64>> = df.column(name).expect("column").cast(&weightlab_results::table::DataType::Float64).expect("numeric").f64().expect("f64").into_iter().collect();
    match method {
        None => values,
        Some(m) => {
            let methods: Vec<String> = df.column("method").expect("method column").str().expect("str").into_iter().map(|v| v.unwrap_or_default().to_string()).collect();
            values.into_iter().zip(methods).filter(|(_, mm)| mm == m).map(|(v, _)| v).collect()
        }
    }
}

/// Runs `weightlab <args>` in `cwd` and returns its output with the peak resident memory, in
/// MiB, of the run and every worker process it started and waited for (`wait4`'s rusage).
// The child is reaped with `wait4` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn weightlab_peak_rss(cwd: &Path, args: &[&str]) -> (Output, u64) {
    use std::os::unix::process::ExitStatusExt;
    let child = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env("WEIGHTLAB_PLUGIN_DIR", root().join("plugins/dist"))
        .env("WEIGHTLAB_STORE", "run")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run weightlab");
    let pid = child.id() as libc::pid_t;
    // Drain the pipes in threads; reap with wait4 to read the rusage.
    let (mut out_pipe, mut err_pipe) = (child.stdout.expect("stdout"), child.stderr.expect("stderr"));
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out_pipe, &mut v).ok();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err_pipe, &mut v).ok();
        v
    });
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    let output = Output { status: std::process::ExitStatus::from_raw(status), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    (output, usage.ru_maxrss as u64 / 1024)
}

/// Reads a string column of a table.
pub fn strings(run_dir: &Path, table: &str, name: &str) -> Vec<String> {
    let df = weightlab_results::read_parquet(&run_dir.join(format!("{table}.parquet"))).expect("table readable");
    df.column(name).expect("column").str().expect("str").into_iter().map(|v| v.unwrap_or_default().to_string()).collect()
}

/// The stage folders of two runs that differ: names only one run has, and files (any but
/// `stage.json`, which records wall times) whose bytes differ. Empty when the runs computed
/// exactly the same thing.
pub fn stage_differences(a: &Path, b: &Path) -> Vec<String> {
    fn names(run: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(run.join("stages"))
            .map(|d| d.flatten().filter(|e| e.path().join("stage.json").is_file()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
    fn files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("stage folder").flatten() {
            if e.path().is_dir() {
                files(root, &e.path(), out);
            } else if e.path() != root.join("stage.json") {
                out.push(e.path().strip_prefix(root).expect("inside").to_path_buf());
            }
        }
    }
    let (na, nb) = (names(a), names(b));
    let mut diffs: Vec<String> = na.iter().filter(|n| !nb.contains(n)).map(|n| format!("only in {}: {n}", a.display())).collect();
    diffs.extend(nb.iter().filter(|n| !na.contains(n)).map(|n| format!("only in {}: {n}", b.display())));
    for n in na.iter().filter(|n| nb.contains(n)) {
        let (da, db) = (a.join("stages").join(n), b.join("stages").join(n));
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        files(&da, &da, &mut fa);
        files(&db, &db, &mut fb);
        fa.sort();
        fb.sort();
        if fa != fb {
            diffs.push(format!("{n}: different files"));
            continue;
        }
        diffs.extend(fa.iter().filter(|f| std::fs::read(da.join(f)).ok() != std::fs::read(db.join(f)).ok()).map(|f| format!("{n}/{}: different bytes", f.display())));
    }
    diffs
}

/// The finished stage folders of a run with what identifies their one writing: the inode and
/// modification time of `stage.json` (a stage computed again gets a new folder). A killed
/// process's `<stage>.partial-<host>-<pid>` folder is not finished, though it may hold a
/// `stage.json` already: the next run removes it, as the store counts it (`StageStore::finished`).
pub fn finished_stages(run: &Path) -> std::collections::BTreeMap<String, (u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(run.join("stages"))
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().contains(".partial"))
                .filter_map(|e| {
                    let meta = std::fs::metadata(e.path().join("stage.json")).ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), (meta.ino(), meta.modified().ok()?)))
                })
                .collect()
        })
        .unwrap_or_default()
}
