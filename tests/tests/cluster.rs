//! Beyond one process: shards sharing one stage store (started apart, or by `run --jobs`) merge
//! into exactly what one process computes, and a run killed (SIGKILL, worker processes
//! included) at random moments resumes without redoing or losing a finished stage; killing
//! `run --jobs` ends its shards too.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weightlab_e2e::{experiment, finished_stages, stage_differences, weightlab_ok};

/// A zoo of 150 models (three units of work), a model tree (roots, then children in two
/// recipe groups), and methods on both, over two seeds: 24 stages at six levels.
const MANIFEST: &str = r#"[experiment]
name = "cluster"
seeds = [0, 1]

[data.blobs]
source = "blobs"
classes = 4
samples = 512

[zoo.mlp]
data = "blobs"
arch = { kind = "mlp", hidden = [16] }
models = 150
train = { lr = 0.01, epochs = 3, batch_size = 32 }
split = { train = 140, heldout = 10 }

[zoo.tree]
data = "blobs"
arch = { kind = "mlp", hidden = [8] }
models = 12
train = { lr = 0.01, epochs = 2, batch_size = 32 }
tree = { roots = 2, classes = 2, epochs = [1, 2] }
split = { train = 10, heldout = 2 }

[[method]]
name = "copy"
plugin = "copy"
zoo = "mlp"
samples = 8

[[method]]
name = "noise"
plugin = "noise"
zoo = "mlp"
samples = 8
config = { sigma = 0.02 }

[[method]]
name = "average"
plugin = "average"
zoo = "tree"
samples = 4
config = { k = 3 }
"#;

/// `weightlab` with one compute thread: libtorch's reductions sum in an order that depends on
/// the thread count, so processes compared bit for bit use the same count (as `weightlab
/// submit` sets it from the CPUs of a task).
fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut c = weightlab_e2e::command(cwd, args);
    c.env("OMP_NUM_THREADS", "1").env("MKL_NUM_THREADS", "1");
    c
}

fn run_ok(cwd: &Path, args: &[&str]) -> String {
    let out = command(cwd, args).output().expect("run weightlab");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "weightlab {args:?} failed ({:?}):\n{text}", out.status);
    text
}

#[test]
fn three_shards_in_one_store_merge_into_what_one_process_computes() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    let plan = weightlab_ok(dir.path(), &["plan", p, "-o", "single"]);
    for part in ["zoo mlp part 1/3", "zoo mlp part 3/3", "zoo tree part 1/3", "zoo tree part 3/3"] {
        assert!(plan.contains(part), "the zoos are split into units of work: {part}\n{plan}");
    }
    let stages: usize = plan.lines().find_map(|l| l.strip_suffix(" to run")?.split(" stages,").next()?.parse().ok()).expect("a stage count");
    let all_but_report = format!("1 ran, {} merged, 0 failed", stages - 1);
    run_ok(dir.path(), &["run", p, "-o", "single"]);

    // Three shards at once, one store; each waits for what another computes.
    let shards: Vec<_> =
        (0..3).map(|i| command(dir.path(), &["run", p, "-o", "sharded", "--shard", &format!("{i}/3")]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start a shard")).collect();
    for (i, shard) in shards.into_iter().enumerate() {
        let out = shard.wait_with_output().expect("shard");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "shard {i}/3 failed:\n{text}");
        assert!(text.contains(&format!("Shard {i}/3")) || text.contains(&format!("{i}/3:")), "{text}");
        assert!(text.contains("`weightlab merge sharded` renders the report once every shard is done"), "a shard says how its run is finished:\n{text}");
    }
    assert!(!dir.path().join("sharded/report.html").exists(), "shards leave the report to merge");
    let merged = run_ok(dir.path(), &["merge", "sharded"]);
    assert!(merged.contains(&all_but_report), "{merged}");
    assert!(dir.path().join("sharded/report.html").is_file());
    let diffs = stage_differences(&dir.path().join("single"), &dir.path().join("sharded"));
    assert!(diffs.is_empty(), "sharded and single-process runs differ:\n{}", diffs.join("\n"));

    // `--jobs 3`: the same three shards started by one command on this machine, then merged.
    let jobs = run_ok(dir.path(), &["run", p, "-o", "jobs", "--jobs", "3"]);
    assert!(jobs.contains("Running 3 shards side by side, 1 compute thread(s) each") && jobs.contains("[2/3]") && jobs.contains(&all_but_report), "{jobs}");
    // The command merges itself: its shards do not send the user to `weightlab merge`, and
    // one store has nothing to copy.
    assert!(!jobs.contains("weightlab merge") && !jobs.contains("Merged"), "{jobs}");
    let diffs = stage_differences(&dir.path().join("single"), &dir.path().join("jobs"));
    assert!(diffs.is_empty(), "--jobs 3 and a single process differ:\n{}", diffs.join("\n"));
    let both = command(dir.path(), &["run", p, "-o", "jobs", "--jobs", "2", "--shard", "0/2"]).output().expect("run");
    assert!(!both.status.success() && String::from_utf8_lossy(&both.stderr).contains("--jobs runs the shards itself"), "{}", String::from_utf8_lossy(&both.stderr));

    // Levels one at a time into separate folders, merged: the same again; a level run
    // before its inputs exist is refused.
    let early = command(dir.path(), &["run", p, "-o", "levels", "--level", "2"]).output().expect("run");
    let text = String::from_utf8_lossy(&early.stderr);
    assert!(!early.status.success() && text.contains("which has not finished"), "{text}");
    std::fs::remove_dir_all(dir.path().join("levels")).unwrap();
    let top = plan.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok()).max().unwrap();
    for level in 0..top {
        run_ok(dir.path(), &["run", p, "-o", "levels", "--level", &level.to_string()]);
    }
    let merged = run_ok(dir.path(), &["merge", "levels", "-o", "into"]);
    assert!(merged.contains(&all_but_report), "{merged}");
    let diffs = stage_differences(&dir.path().join("single"), &dir.path().join("into"));
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    // A store missing a stage is not a result: merge says which and exits 1.
    let gone = std::fs::read_dir(dir.path().join("into/stages")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("method-")).unwrap().path();
    std::fs::remove_dir_all(&gone).unwrap();
    let out = command(dir.path(), &["merge", "into"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is missing: no run or shard stored it") && text.contains("1 missing"), "{text}");
}

/// Two zoos: `x` in two units of work (the second dealt to shard 1 of 2), `y` in one (shard 0).
const TWO_ZOOS: &str = r#"[experiment]
name = "ready"
seeds = [0]

[data.blobs]
source = "blobs"
classes = 4
samples = 256

[zoo.x]
data = "blobs"
arch = { kind = "mlp", hidden = [8] }
models = 100
train = { lr = 0.01, epochs = 1, batch_size = 32 }

[zoo.y]
data = "blobs"
arch = { kind = "mlp", hidden = [8] }
models = 10
train = { lr = 0.01, epochs = 1, batch_size = 32 }
"#;

/// A shard runs what it can before it waits for another: shard 0 of 2, alone, trains zoo `y`
/// (all its own, later in plan order) before it waits for the unit of zoo `x` that shard 1
/// would train — and that wait ends, after `--wait`, in a failure naming the unit.
#[test]
fn a_shard_runs_what_it_can_before_it_waits_for_another() {
    let (dir, path) = experiment(TWO_ZOOS);
    let out = command(dir.path(), &["run", path.to_str().unwrap(), "-o", "alone", "--shard", "0/2", "--wait", "2"]).output().expect("run weightlab");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    let at = |what: &str| text.find(what).unwrap_or_else(|| panic!("no `{what}` in:\n{text}"));
    assert!(at("Training zoo y") < at("Waiting for zoo x part 2/2 (another shard's)"), "{text}");
    assert!(text.contains("waited 2s for zoo x part 2/2, which another shard runs"), "{text}");
    assert!(dir.path().join("alone/stages").read_dir().unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("zoo-")), "zoo y is stored");
}

/// xorshift64*: the kill moments, from a seed printed for reruns.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn a_run_killed_at_random_moments_resumes_without_redoing_or_losing_a_stage() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    let started = Instant::now();
    run_ok(dir.path(), &["run", p, "-o", "reference"]);
    let whole = started.elapsed();

    let seed =
        std::env::var("WEIGHTLAB_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    eprintln!("kill moments from seed {seed} (WEIGHTLAB_KILL_SEED={seed} repeats them); an uninterrupted run takes {whole:.1?}");
    let mut state = seed;
    let out = dir.path().join("killed");
    let (mut kills, mut attempts) = (0, 0);
    while kills < 6 && attempts < 20 {
        attempts += 1;
        let before = finished_stages(&out);
        // A whole process group: the run and its plugin workers die together.
        let mut child = {
            use std::os::unix::process::CommandExt;
            command(dir.path(), &["-q", "run", p, "-o", "killed"]).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().expect("start the run")
        };
        // Anywhere up to 90 % of an uninterrupted run (the resumed run has less left to do, so
        // late moments may let it finish: then it starts over on a fresh folder).
        let after = Duration::from_millis(200 + next(&mut state) % (whole.as_millis() as u64 * 9 / 10).max(1));
        let deadline = Instant::now() + after;
        while Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let finished = child.try_wait().expect("wait").is_some();
        if !finished {
            // SAFETY: kill(2) on the process group this test started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            kills += 1;
        }
        let _ = child.wait();
        let now = finished_stages(&out);
        for (name, id) in &before {
            assert_eq!(now.get(name), Some(id), "kill {kills} at {after:?}: finished stage {name} was lost or computed again");
        }
        eprintln!("attempt {attempts}, {kills} kills, after {after:?}: {} → {} finished stages", before.len(), now.len());
        if finished {
            // The run got to its end first: start over on a fresh folder for more kills.
            if kills < 6 {
                std::fs::remove_dir_all(&out).expect("remove the finished run");
            }
        }
    }
    assert!(kills >= 3, "only {kills} kills landed while the run was working");
    let before = finished_stages(&out);
    let last = run_ok(dir.path(), &["run", p, "-o", "killed"]);
    let now = finished_stages(&out);
    for (name, id) in &before {
        assert_eq!(now.get(name), Some(id), "the final run computed {name} again");
    }
    assert!(last.contains(&format!(" ran, {} cached, 0 failed", before.len())), "the last run reused every finished stage ({}):\n{last}", before.len());
    let leftovers: Vec<String> = std::fs::read_dir(out.join("stages")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".partial")).collect();
    assert!(leftovers.is_empty(), "temporary folders of killed runs were not cleaned up: {leftovers:?}");
    let diffs = stage_differences(&dir.path().join("reference"), &out);
    assert!(diffs.is_empty(), "the resumed run differs from an uninterrupted one:\n{}", diffs.join("\n"));
    eprintln!("survived {kills} kills; {} stages were finished before the last run, which ran only the rest", before.len());
}

/// The processes whose command line mentions `needle` (this test's folder).
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .filter(|c| c.contains(needle) && c.contains("--shard"))
        .collect()
}

#[test]
fn a_killed_jobs_run_takes_its_shards_with_it() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    let needle = dir.path().join("jobs").to_string_lossy().into_owned();
    // Quiet shards (a shard that prints to its killed parent's pipe would die of that alone)
    // on a zoo that trains for a minute (4,000 epochs).
    let mut parent =
        command(dir.path(), &["-q", "run", p, "-o", &needle, "--jobs", "2", "--set", "zoo.mlp.train.epochs=4000"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start the run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_mentioning(&needle).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(processes_mentioning(&needle).len() >= 2, "both shards run");
    std::thread::sleep(Duration::from_millis(300));
    parent.kill().expect("kill the command");
    let _ = parent.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_mentioning(&needle).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_mentioning(&needle), Vec::<String>::new(), "shards outlived the command that started them");
}
