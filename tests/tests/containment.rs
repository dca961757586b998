//! Containment, round two: the edges of the sandbox. What a plugin says about itself (its
//! config schema, name, about), the files around a plugin (the component on disk, the compiled
//! cache), the text that leaves the engine (Slurm scripts, terminal output, output paths) and
//! run folders from elsewhere are hostile input: each case here takes down, fools or escapes
//! the engine without the guard it tests (see docs/src/threat-model.md).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use weightlab_e2e::{BLOBS_ZOO, build_hostile, column, command, experiment, root, strings, weightlab, weightlab_peak_rss, with_fixtures};

/// The marker the hostile plugin reads its describe mode from (tests/hostile/src/lib.rs).
const MARKER: &[u8; 32] = b"describe=honest.................";

/// The hostile component with its describe mode set to `mode`.
fn hostile_describing(mode: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(build_hostile()).expect("hostile.wasm");
    let mut patch = format!("describe={mode}").into_bytes();
    assert!(patch.len() <= MARKER.len(), "mode `{mode}` fits the marker");
    patch.resize(MARKER.len(), b'.');
    let at: Vec<usize> = bytes.windows(MARKER.len()).enumerate().filter(|(_, w)| w == MARKER).map(|(i, _)| i).collect();
    assert_eq!(at.len(), 1, "the marker appears once in the component");
    bytes[at[0]..at[0] + MARKER.len()].copy_from_slice(&patch);
    bytes
}

fn with_plugin(mode_of_config: &str) -> String {
    format!("{BLOBS_ZOO}[experiment]\nname = \"edges\"\n\n[[method]]\nname = \"p\"\nplugin = \"p.wasm\"\nzoo = \"mlp\"\nsamples = 4\nconfig = {{ mode = \"{mode_of_config}\" }}\n")
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn recursive_config_schemas_are_refused_before_any_validator_grows() {
    for (mode, says) in [("schema-self", "must name a local definition"), ("schema-cycle", "refers back to itself")] {
        let (dir, _) = experiment(&with_plugin("ok"));
        std::fs::write(dir.path().join("p.wasm"), hostile_describing(mode)).unwrap();
        // `validate` loads the plugin and would build a validator from its schema.
        let (out, peak_mib) = weightlab_peak_rss(dir.path(), &["validate", "exp.toml"]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{mode}: {all}");
        assert!(all.contains(says), "{mode}: the error says why: {all}");
        assert!(peak_mib < 1024, "{mode}: validate peaked at {peak_mib} MiB");
        // `run` fails that method alone, with the reason, and stays bounded too.
        let (out, peak_mib) = weightlab_peak_rss(dir.path(), &["run", "exp.toml", "-o", "out"]);
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", text(&out));
        assert!(peak_mib < 1536, "{mode}: run peaked at {peak_mib} MiB");
        let reasons = strings(&dir.path().join("out"), "failures", "reason");
        assert!(reasons.iter().any(|r| r.contains(says)), "{mode}: {reasons:?}");
        // The contract harness says which clause failed.
        let out = weightlab(dir.path(), &["-q", "plugin", "test", "p.wasm", "--config", "{ mode = \"ok\" }"]);
        assert_eq!(out.status.code(), Some(1), "{mode}");
        assert!(text(&out).contains("FAIL  loads and describes itself") && text(&out).contains(says), "{mode}: {}", text(&out));
    }
}

#[test]
fn what_a_plugin_says_about_itself_is_cut_and_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("found");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("huge.wasm"), hostile_describing("huge-about")).unwrap();
    std::fs::write(plugins.join("escapes.wasm"), hostile_describing("escapes")).unwrap();
    let out = command(dir.path(), &["plugins"]).env("WEIGHTLAB_PLUGIN_PATH", &plugins).output().unwrap();
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    assert!(listed.contains("huge") && listed.contains("escapes"), "{listed}");
    assert!(!listed.contains('\x1b') && !listed.contains('\r') && !listed.contains('\u{202e}'), "escape sequences reached the terminal: {listed:?}");
    assert!(listed.len() < 64 << 10, "a 60 MiB `about` is not printed: {} bytes", listed.len());
    // A run of each: the plugin's text is bounded and clean in every output.
    for plugin in ["huge", "escapes"] {
        let manifest = with_plugin("ok").replace("plugin = \"p.wasm\"", &format!("plugin = \"found/{plugin}.wasm\""));
        std::fs::write(dir.path().join("exp.toml"), with_fixtures(&manifest)).unwrap();
        let out = weightlab(dir.path(), &["run", "exp.toml", "-o", plugin]);
        let all = text(&out);
        assert!(out.status.success(), "{plugin}: {all}");
        assert!(!all.contains("\x1b]") && !all.contains("\x1b[2J") && !all.contains('\r'), "{plugin}: escapes reached the terminal: {all:?}");
        let run = dir.path().join(plugin);
        let report = std::fs::read_to_string(run.join("report.html")).unwrap();
        assert!(!report.contains('\x1b') && report.len() < 4 << 20, "{plugin}: report of {} bytes", report.len());
        assert_eq!(column(&run, "samples", Some("p"), "accuracy").len(), 4, "{plugin}: its samples are kept");
    }
}

#[test]
fn a_stderr_flood_costs_the_engine_no_memory() {
    // The worker prints a libtorch warning per call, 1,200,000 times (about 280 MB); the
    // engine keeps only the tail it needs for crash reports. Read whole (as before), the flood
    // took the run from about 520 MiB to 1016 MiB.
    let (dir, _) = experiment(&with_plugin("stderr-flood"));
    std::fs::copy(build_hostile(), dir.path().join("p.wasm")).unwrap();
    let (out, peak_mib) = weightlab_peak_rss(dir.path(), &["run", "exp.toml", "-o", "out"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = dir.path().join("out");
    assert_eq!(column(&run, "samples", Some("p"), "accuracy").len(), 4);
    eprintln!("peak resident memory of the run and its workers: {peak_mib} MiB");
    assert!(peak_mib < 800, "the flood grew the engine to {peak_mib} MiB");
}

#[test]
fn a_plugin_swapped_after_validation_is_not_what_runs() {
    let copy = std::fs::read(root().join("plugins/dist/copy.wasm")).expect("the built copy plugin");
    let pinned = sha256(&copy);
    // A zoo that takes a few seconds to train: the window between validation and the method.
    let manifest = format!(
        "[experiment]\nname = \"swap\"\n\n[data.blobs]\nsource = \"blobs\"\nsamples = 2048\n\n\
         [zoo.mlp]\ndata = \"blobs\"\narch = {{ kind = \"mlp\", hidden = [64, 64] }}\nmodels = 64\ntrain = {{ epochs = 8, batch_size = 16 }}\n\n\
         [[method]]\nname = \"pinned\"\nplugin = \"p.wasm\"\nzoo = \"mlp\"\nsamples = 4\nsha256 = \"{pinned}\"\n"
    );
    let (dir, _) = experiment(&manifest);
    let plugin = dir.path().join("p.wasm");
    std::fs::write(&plugin, &copy).unwrap();
    let mut child = command(dir.path(), &["run", "exp.toml", "-o", "out"]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    // The pin was checked and the plugin read once the zoo starts training: swap it then.
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.contains("Training") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("Training"), "the run started training: {seen}");
    std::fs::write(&plugin, std::fs::read(build_hostile()).unwrap()).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the run used the bytes it validated:\n{seen}{rest}");
    let run = dir.path().join("out");
    assert_eq!(column(&run, "samples", Some("pinned"), "nn_l2").iter().map(|d| d.unwrap()).fold(0.0, f64::max), 0.0, "copy's samples are training checkpoints");
    let recorded = strings(&run, "runs", "plugins").concat();
    assert!(recorded.contains(&pinned), "the run records the pinned hash: {recorded}");
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The compiled-component cache entries under `cache`.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for engine in std::fs::read_dir(cache.join("components")).unwrap().flatten() {
        out.extend(std::fs::read_dir(engine.path()).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")));
    }
    out.sort();
    out
}

#[test]
fn swapped_or_forged_compiled_components_are_never_run() {
    let manifest = format!(
        "{BLOBS_ZOO}[experiment]\nname = \"cache\"\n\n[[method]]\nname = \"copy\"\nplugin = \"copy\"\nzoo = \"mlp\"\nsamples = 4\n\n\
         [[method]]\nname = \"noise\"\nplugin = \"noise\"\nzoo = \"mlp\"\nsamples = 4\nconfig = {{ sigma = 0.5 }}\n"
    );
    let (dir, _) = experiment(&manifest);
    let cache = dir.path().join("cache");
    let run = |out: &str| {
        let o = command(dir.path(), &["run", "exp.toml", "-o", out]).env("WEIGHTLAB_CACHE", &cache).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        column(&dir.path().join(out), "samples", Some("copy"), "nn_l2")
    };
    assert_eq!(run("a"), vec![Some(0.0); 4], "copy's samples are training checkpoints");
    let found = entries(&cache);
    assert_eq!(found.len(), 2, "one entry per plugin: {found:?}");
    // Swap the two entries: each now holds the other plugin's native code under its name.
    let (a, b) = (std::fs::read(&found[0]).unwrap(), std::fs::read(&found[1]).unwrap());
    std::fs::write(&found[0], &b).unwrap();
    std::fs::write(&found[1], &a).unwrap();
    assert_eq!(run("b"), vec![Some(0.0); 4], "the swapped entries were not run: copy still copies");
    let rewritten = std::fs::read(&found[0]).unwrap();
    assert_eq!(rewritten[8..40], a[8..40], "the entry was compiled again from the plugin's own bytes");
    // A forged entry (right header, wrong tag) is not run either.
    let mut forged = std::fs::read(&found[0]).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    std::fs::write(&found[0], &forged).unwrap();
    assert_eq!(run("c"), vec![Some(0.0); 4]);
}

#[test]
fn cluster_values_cannot_inject_commands_into_job_scripts() {
    let base = "[experiment]\nname = \"slurm\"\n\n[data.blobs]\nsource = \"blobs\"\nsamples = 64\n[zoo.z]\ndata = \"blobs\"\narch = { kind = \"mlp\" }\nmodels = 2\ntrain = { epochs = 1 }\n";
    let cases = [
        ("[cluster]\npartition = \"gpu\\ntouch /tmp/weightlab-pwned\"\n", "exp.toml:14", "partition"),
        ("[cluster]\ntime = \"1:00:00\\nid\"\n", "exp.toml:14", "time"),
        ("[cluster]\nsbatch = [\"--qos=high\\necho pwned\"]\n", "exp.toml:14", "sbatch"),
        ("[cluster]\nsbatch = [\"--export=LD_PRELOAD=/tmp/x.so\"]\n", "exp.toml:14", "not an sbatch option a manifest may set"),
        ("[cluster]\nmem = \"16G; curl x\"\n", "exp.toml:14", "mem"),
    ];
    for (cluster, at, says) in cases {
        let (dir, _) = experiment(&format!("{base}\n{cluster}"));
        let out = weightlab(dir.path(), &["submit", "--slurm", "exp.toml", "--dry-run"]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cluster}: {all}");
        assert!(all.contains(at) && all.contains(says), "{cluster}: located error expected at {at}: {all}");
        assert!(!dir.path().join("reports").exists(), "{cluster}: no script was written");
    }
    // The command line's values are held to the same patterns.
    let (dir, _) = experiment(base);
    let out = weightlab(dir.path(), &["submit", "--slurm", "exp.toml", "--dry-run", "--partition", "gpu\nrm -rf ~"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // An experiment name with a newline is refused where it is written.
    let (dir, _) = experiment(&base.replace("name = \"slurm\"", "name = \"x\\n#SBATCH --wrap=id\""));
    let out = weightlab(dir.path(), &["submit", "--slurm", "exp.toml", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("exp.toml:2") && text(&out).contains("control characters"), "{}", text(&out));
    // A good manifest still writes scripts, every #SBATCH line one option.
    let (dir, _) = experiment(&format!("{base}\n[cluster]\npartition = \"gpu\"\nsbatch = [\"--account=lab\"]\n"));
    let out = weightlab(dir.path(), &["submit", "--slurm", "exp.toml", "--dry-run", "-o", "out"]);
    assert!(out.status.success(), "{}", text(&out));
    let script = std::fs::read_to_string(dir.path().join("out/slurm/merge.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --partition=gpu\n") && script.contains("#SBATCH --account=lab\n"), "{script}");
}

#[test]
fn output_paths_stay_inside_their_root() {
    let base = "[experiment]\nname = \"ok\"\n\n[data.blobs]\nsource = \"blobs\"\nsamples = 64\n[zoo.z]\ndata = \"blobs\"\narch = { kind = \"mlp\" }\nmodels = 2\ntrain = { epochs = 1 }\n";
    for (from, to, says) in [
        ("name = \"ok\"", "name = \"../../escaped\"", "is not a single folder name"),
        ("name = \"ok\"", "name = \"/tmp/escaped\"", "is not a single folder name"),
        ("name = \"ok\"", "name = \"ok\"\noutput = \"/tmp/escaped\"", "is absolute"),
        ("name = \"ok\"", "name = \"ok\"\noutput = \"runs/../../escaped\"", "climbs out"),
    ] {
        let (dir, _) = experiment(&base.replace(from, to));
        let out = weightlab(dir.path(), &["validate", "exp.toml"]);
        assert_eq!(out.status.code(), Some(2), "{to}: {}", text(&out));
        assert!(text(&out).contains("exp.toml:") && text(&out).contains(says), "{to}: {}", text(&out));
        let out = weightlab(dir.path(), &["run", "exp.toml"]);
        assert_eq!(out.status.code(), Some(2), "{to}");
        assert!(!dir.path().join("reports").exists() && !Path::new("/tmp/escaped").exists(), "{to}: nothing was written");
    }
}

#[test]
fn merge_follows_no_link_out_of_a_run_folder() {
    let (dir, _) = experiment(&format!("{BLOBS_ZOO}[experiment]\nname = \"links\"\n\n[[method]]\nname = \"copy\"\nplugin = \"copy\"\nzoo = \"mlp\"\nsamples = 2\n"));
    let out = weightlab(dir.path(), &["run", "exp.toml", "-o", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    let stages = dir.path().join("a/stages");
    let method = std::fs::read_dir(&stages).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("method-")).unwrap().path();
    // A stage holding a link to a file outside the run folder.
    std::os::unix::fs::symlink("/etc/passwd", method.join("passwd")).unwrap();
    let out = weightlab(dir.path(), &["merge", "a", "-o", "b"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("symbolic link") && text(&out).contains("passwd"), "{}", text(&out));
    let copied = walk(&dir.path().join("b"));
    assert!(copied.iter().all(|p| !p.ends_with("passwd")), "nothing of /etc was copied: {copied:?}");
    // A whole stage folder that is a link to a folder outside the run folder.
    std::fs::remove_file(method.join("passwd")).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("stage.json"), b"{}").unwrap();
    std::fs::write(elsewhere.join("secret.txt"), b"not for the store").unwrap();
    std::os::unix::fs::symlink(&elsewhere, stages.join("method-0000000000000000")).unwrap();
    let out = weightlab(dir.path(), &["merge", "a", "-o", "c"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    let copied = walk(&dir.path().join("c"));
    assert!(copied.iter().all(|p| !p.ends_with("secret.txt")), "the linked folder was not copied: {copied:?}");
    // A FIFO in a stage: refused at once, not read (reading it would hang).
    std::fs::remove_file(stages.join("method-0000000000000000")).unwrap();
    let fifo = std::ffi::CString::new(method.join("log.fifo").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let out = weightlab(dir.path(), &["merge", "a", "-o", "d"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("FIFO"), "{}", text(&out));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if std::fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false) {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn a_fifo_in_an_import_folder_is_refused_instead_of_hanging() {
    // Imported state_dicts are read before anything runs (`preflight`): a FIFO among them is
    // refused there, located at the zoo's `import`, without blocking on it.
    let (dir, _) = experiment(&format!(
        "{BLOBS_ZOO}[experiment]\nname = \"fifo\"\n\n[zoo.imported]\ndata = \"blobs\"\narch = {{ kind = \"mlp\", hidden = [8] }}\nimport = \"imported\"\n\n\
         [[method]]\nname = \"copy\"\nplugin = \"copy\"\nzoo = \"mlp\"\nsamples = 2\n\n\
         [[method]]\nname = \"copy imported\"\nplugin = \"copy\"\nzoo = \"imported\"\nsamples = 2\n"
    ));
    std::fs::create_dir_all(dir.path().join("imported")).unwrap();
    let fifo = std::ffi::CString::new(dir.path().join("imported/model_0.safetensors").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let mut child = command(dir.path(), &["run", "exp.toml", "-o", "out"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("the run hung on the FIFO");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("model_0.safetensors") && stderr.contains("FIFO") && stderr.contains("exp.toml:"), "{stderr}");
    assert!(!dir.path().join("out/stages").exists(), "nothing ran: {stderr}");
}
