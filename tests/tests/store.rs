//! One stage store for every run of a machine: a zoo trained for one output folder is reused by
//! a run into another (which says so), run folders keep their own report, and `weightlab gc`
//! removes only the stages no existing run folder refers to.

use weightlab_e2e::{column, command, experiment};

const MANIFEST: &str = r#"[experiment]
name = "store"
seeds = [0]

[data.b]
source = "blobs"
samples = 256

[zoo.z]
data = "b"
arch = { kind = "mlp", hidden = [8] }
models = 6
train = { lr = 0.01, epochs = 2, batch_size = 32 }
split = { train = 4, heldout = 2 }

[[method]]
name = "noise"
plugin = "noise"
zoo = "z"
samples = 4
config = { sigma = 0.01 }
"#;

#[test]
fn runs_into_two_folders_share_their_stages_and_gc_keeps_what_a_folder_refers_to() {
    let (dir, path) = experiment(MANIFEST);
    let store = dir.path().join("store");
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["run", path.to_str().unwrap(), "-o", out];
        args.extend(extra);
        let o = command(dir.path(), &args).env("WEIGHTLAB_STORE", &store).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stderr}");
        stderr
    };
    let first = run("a", &[]);
    assert!(!first.contains("Reusing"), "{first}");
    assert!(store.join("refs").is_dir(), "the store knows which folders refer to it");
    assert!(!dir.path().join("a/stages").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("zoo-")), "the zoo lives in the store, not the run folder");

    // Another output folder: the trained zoo is reused, and the run says so.
    let second = run("b", &[]);
    assert!(second.contains("Reusing") && second.contains("zoo z") && second.contains(&dir.path().join("a").display().to_string()), "{second}");
    assert!(second.contains("0 failed") && second.contains("1 ran"), "only b's report is new: {second}");
    assert_eq!(column(&dir.path().join("a"), "samples", Some("noise"), "nn_l2"), column(&dir.path().join("b"), "samples", Some("noise"), "nn_l2"));
    assert!(dir.path().join("b/report.html").is_file());

    // A third folder with another σ adds its own method stage.
    run("c", &["--set", "method.noise.config.sigma=0.5"]);
    // gc trims the compiled-code cache too: another engine build's compiled plugin goes.
    let cache = tempfile::tempdir().unwrap();
    let foreign = cache.path().join("components/fedcba9876543210/plugin.cwasm");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::write(&foreign, [0u8; 1000]).unwrap();
    let gc = |dry: bool| {
        let mut args = vec!["gc"];
        if dry {
            args.push("--dry-run");
        }
        let o = command(dir.path(), &args).env("WEIGHTLAB_STORE", &store).env("WEIGHTLAB_CACHE", cache.path()).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let stages = || std::fs::read_dir(&store).unwrap().filter(|e| e.as_ref().unwrap().path().join("stage.json").is_file()).count();
    let all = stages();
    let first = gc(false);
    assert!(first.contains("0 stage(s)"), "every stage is referred to: {first}");
    assert!(first.contains("Removed 1 compiled file(s)") && !foreign.exists(), "{first}");
    assert_eq!(stages(), all);
    // Without folder c, its method and evaluation stages go; a and b keep the rest.
    std::fs::remove_dir_all(dir.path().join("c")).unwrap();
    let dry = gc(true);
    assert!(dry.contains("Would remove") && dry.contains(" 2 stage(s)"), "{dry}");
    assert_eq!(stages(), all, "a dry run removes nothing");
    let removed = gc(false);
    assert!(removed.contains("Removed") && removed.contains(" 2 stage(s)"), "{removed}");
    assert_eq!(stages(), all - 2);
    let again = run("b", &[]);
    assert!(again.contains("0 ran") || again.contains("1 ran"), "b is still whole: {again}");
    assert!(!again.contains("Training"), "{again}");
}

#[test]
fn a_rerun_with_another_setting_keeps_both_runs_each_with_its_report() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", p, "-o", "out"];
        args.extend(extra);
        let o = command(dir.path(), &args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[]);
    run(&["--set", "method.noise.config.sigma=0.5"]);
    run(&["--set", "method.noise.config.sigma=0.5"]);
    let history = dir.path().join("out/history");
    let mut entries: Vec<_> = std::fs::read_dir(&history).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert_eq!(entries.len(), 2, "two runs with new results, the third changed nothing: {entries:?}");
    for e in &entries {
        assert!(e.join("report.html").is_file() && e.join("manifest.toml").is_file() && e.join("samples.parquet").is_file(), "{e:?}");
    }
    let first = column(&entries[0], "samples", Some("noise"), "nn_l2");
    let second = column(&entries[1], "samples", Some("noise"), "nn_l2");
    assert_ne!(first, second, "each entry keeps its own results");
    assert_eq!(second, column(&dir.path().join("out"), "samples", Some("noise"), "nn_l2"), "the top holds the newest");
    assert!(std::fs::read_to_string(entries[0].join("manifest.toml")).unwrap().contains("sigma = 0.01"));

    let listing = command(dir.path(), &["runs", "out"]).output().unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("ok") && lines[0].contains("(first)") && lines[0].contains("noise 0."), "{text}");
    assert!(lines[1].contains("method.noise.config.sigma 0.01 → 0.5"), "{text}");
}

#[test]
fn a_manifest_writes_to_one_folder_whatever_the_current_directory() {
    let (dir, _) = experiment(MANIFEST);
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::create_dir_all(project.join("experiments/sub")).unwrap();
    std::fs::write(project.join("experiments/store.toml"), MANIFEST).unwrap();
    // `plan` says where a run would write: `plan for `store` → <folder>`.
    let output_from = |cwd: &std::path::Path, manifest: &str| {
        let out = command(cwd, &["plan", manifest]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        let folder = text.lines().find_map(|l| l.split("plan for `store` → ").nth(1)).unwrap_or_else(|| panic!("{text}")).trim().to_string();
        // Lexically normal: no `.` or `..` left.
        let mut normal = std::path::PathBuf::new();
        for part in cwd.join(&folder).components() {
            match part {
                std::path::Component::ParentDir => _ = normal.pop(),
                std::path::Component::CurDir => {}
                other => normal.push(other),
            }
        }
        normal
    };
    for (cwd, manifest) in [
        (project.clone(), "experiments/store.toml"),
        (project.join("experiments"), "store.toml"),
        (project.join("experiments/sub"), "../store.toml"),
        (dir.path().to_path_buf(), "project/experiments/store.toml"),
    ] {
        assert_eq!(output_from(&cwd, manifest), project.join("reports/store"), "from {}", cwd.display());
    }
    // Outside a repository, the manifest's own folder is its project.
    std::fs::create_dir_all(dir.path().join("loose")).unwrap();
    std::fs::write(dir.path().join("loose/store.toml"), MANIFEST).unwrap();
    let found = output_from(dir.path(), "loose/store.toml");
    assert_eq!(found, dir.path().join("loose/reports/store"));
}

/// Two runs writing one output folder at once would mix their manifests, tables and history
/// entries: the second is refused at once, and the folder is free again as soon as the first
/// ends — however it ends (here: killed).
#[test]
fn a_second_run_into_a_folder_being_written_is_refused_until_the_first_ends() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    let store = dir.path().join("store");
    // A zoo that trains for a minute, so the first run is still writing.
    let mut first = command(dir.path(), &["-q", "run", p, "-o", "out", "--set", "zoo.z.train.epochs=20000"]).env("WEIGHTLAB_STORE", &store).spawn().expect("start the first run");
    let progress = dir.path().join("out/progress.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !progress.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(progress.is_file(), "the first run started");
    let second = command(dir.path(), &["run", p, "-o", "out"]).env("WEIGHTLAB_STORE", &store).output().unwrap();
    let text = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{text}");
    assert!(text.contains("out is being written by another weightlab run") && text.contains("another output folder (`-o`)"), "{text}");
    let elsewhere = command(dir.path(), &["run", p, "-o", "other"]).env("WEIGHTLAB_STORE", &store).output().unwrap();
    assert!(elsewhere.status.success(), "another folder is free: {}", String::from_utf8_lossy(&elsewhere.stderr));
    first.kill().expect("kill the first run");
    let _ = first.wait();
    let again = command(dir.path(), &["run", p, "-o", "out"]).env("WEIGHTLAB_STORE", &store).output().unwrap();
    assert!(again.status.success(), "free once the first is gone: {}", String::from_utf8_lossy(&again.stderr));
}

/// Starts `weightlab run` of `manifest` into `out` in its own process group, as a shell starts
/// a job, with SIGINT at `sigint` (whatever this test inherited: a background `make test`
/// starts with SIGINT ignored), and returns it once its method is fitting.
fn started_in_method(dir: &std::path::Path, manifest: &str, out: &str, sigint: libc::sighandler_t) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut run = command(dir, &["run", manifest, "-o", out]);
    run.process_group(0).stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec only `signal`, which is async-signal-safe, is called.
    unsafe {
        run.pre_exec(move || {
            libc::signal(libc::SIGINT, sigint);
            Ok(())
        });
    }
    let mut run = run.spawn().expect("start the run");
    let progress = dir.join(out).join("progress.json");
    let in_method = || std::fs::read_to_string(&progress).is_ok_and(|t| t.contains(r#"["method \"noise\" seed 0","running"]"#));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !in_method() && std::time::Instant::now() < deadline {
        assert!(run.try_wait().unwrap().is_none(), "the run ended before its method started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(in_method(), "the method did not start within 2 minutes");
    // Long enough for the worker to be fitting (its autoencoder takes minutes).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // A run that does not end when told to fails its test, rather than hanging it.
    let group = run.id() as i32;
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(90));
        // SAFETY: kill sends a signal to the process group this test started; it touches no memory.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    });
    run
}

/// Ctrl-C in the middle of a method: the terminal's signal reaches the whole process group —
/// the engine and the plugin's worker — and the worker dying of it is no fault of the plugin.
/// The run says what it keeps and exits 130 as a shell expects; nothing is recorded as failed;
/// the progress file and `weightlab runs` say interrupted; the same command goes on from there.
/// A run started with SIGINT ignored (`nohup`, a script's background job) keeps ignoring it,
/// and SIGTERM (`kill`, a scheduler's time limit) ends it the same way, with 143.
#[test]
fn ctrl_c_during_a_method_says_what_is_kept_records_no_failure_and_the_rerun_goes_on() {
    let manifest = MANIFEST.replace("config = { sigma = 0.01 }", "").replace("plugin = \"noise\"", "plugin = \"pdiff\"\nconfig = { ae_steps = 100000, ddpm_steps = 0 }");
    let (dir, path) = experiment(&manifest);
    let p = path.to_str().unwrap();
    let run = started_in_method(dir.path(), p, "out", libc::SIG_DFL);
    // SAFETY: kill sends a signal to the process group this test started; it touches no memory.
    assert_eq!(unsafe { libc::kill(-(run.id() as i32), libc::SIGINT) }, 0);
    let ended = run.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(130), "{text}");
    assert!(text.contains("Interrupted 4 of 7 stages finished and kept; the same `weightlab run` goes on from there"), "{text}");
    assert!(!text.contains("failed"), "a cut-off stage is not a failure: {text}");
    let failures: Vec<_> = std::fs::read_dir(dir.path().join("out/stages")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".failed.json")).collect();
    assert!(failures.is_empty(), "recorded as failed: {failures:?}");
    let saved = std::fs::read_to_string(dir.path().join("out/progress.json")).unwrap();
    assert!(saved.contains(r#""state":"interrupted""#) && saved.contains(r#"["method \"noise\" seed 0","interrupted"]"#), "{saved}");
    let runs = weightlab_e2e::weightlab_ok(dir.path(), &["runs", "out"]);
    assert!(runs.contains("was interrupted: 4 of 7 stages finished and kept"), "{runs}");
    // The same command, with a fit that ends, goes on: the zoo is not trained again.
    let again = weightlab_e2e::weightlab_ok(dir.path(), &["run", p, "-o", "out", "--set", "method.noise.config.ae_steps=20"]);
    assert!(again.contains("0 failed") && !again.contains("Training zoo"), "{again}");

    // Started with SIGINT ignored: Ctrl-C changes nothing; SIGTERM to the engine alone ends it.
    let mut run = started_in_method(dir.path(), p, "background", libc::SIG_IGN);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(-(run.id() as i32), libc::SIGINT) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(run.try_wait().unwrap().is_none(), "SIGINT was ignored when the run started, and stays so");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGTERM) }, 0);
    let ended = run.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(143), "{text}");
    assert!(text.contains("Interrupted 4 of 7 stages finished and kept") && !text.contains("failed"), "{text}");
}
