//! An installed binary: `weightlab` copied alone into an empty folder, far from the source
//! tree, runs the quickstart with the plugins embedded in it.

use std::process::Command;

use weightlab_e2e::{binary, column, root};

#[test]
fn a_copied_binary_runs_the_quickstart_with_its_embedded_plugins() {
    let copied = Copied::new();
    let (tmp, cache) = (&copied.tmp, copied.cache());
    let cmd = |args: &[&str]| run_copied(&mut copied.command(args));

    // The built-in plugins come from the binary, unpacked under the cache, not the source tree.
    let listed = cmd(&["plugins"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    for name in ["pdiff", "copy", "noise", "average", "random-init"] {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
        assert!(line.contains(&cache.join("plugins").display().to_string()), "{name} should be unpacked from the binary: {line}");
        assert!(!line.contains(&root().display().to_string()), "{name} found in the source tree: {line}");
    }

    let manifest = root().join("experiments/quickstart.toml");
    let out = tmp.path().join("out");
    // At a smaller scale (what is tested is where the plugins come from; `make quickstart` runs
    // the whole study): 100 snapshots, shorter p-diff training.
    let sets = ["--set", "zoo.snapshots.continue.steps=100", "--set", "method.p-diff.config.ae_steps=200", "--set", "method.p-diff.config.ddpm_steps=200"];
    let mut args = vec!["run", manifest.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"];
    args.extend(sets);
    let run = cmd(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("Report") && stderr.contains(&out.join("report.html").display().to_string()), "a quiet run still says where its report is: {stderr}");
    assert_eq!(column(&out, "samples", Some("p-diff"), "accuracy").len(), 32, "16 samples × 2 seeds");
    assert!(out.join("report.html").is_file());
}

/// The built-in plugins name no folder of the machine that built them (panic locations are
/// written with fixed prefixes), so one commit gives the same plugin bytes — and plugin hashes,
/// stage keys, pins and plan fingerprints — in any clone on any machine.
#[test]
fn built_in_plugins_name_no_folder_of_the_build_machine() {
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let folders = [root().display().to_string(), cargo_home];
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("plugins/dist")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wasm") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for folder in &folders {
            let found = bytes.windows(folder.len()).any(|w| w == folder.as_bytes());
            assert!(!found, "{} holds the build folder {folder}: its bytes depend on where it was built", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} built-in plugins found");
}

/// A copy of the binary alone in a folder of its own (`bin/weightlab`), run from that folder
/// with a cache of its own and none of the variables that would point it back at the source
/// tree (built plugins, plugin paths, bench references).
struct Copied {
    tmp: tempfile::TempDir,
    exe: std::path::PathBuf,
}

impl Copied {
    fn new() -> Copied {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("weightlab");
        std::fs::copy(binary(), &exe).unwrap();
        Copied { tmp, exe }
    }

    fn cache(&self) -> std::path::PathBuf {
        self.tmp.path().join("cache")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(args).current_dir(self.tmp.path()).env_remove("WEIGHTLAB_PLUGIN_DIR").env_remove("WEIGHTLAB_PLUGIN_PATH").env_remove("WEIGHTLAB_BENCHES").env("WEIGHTLAB_CACHE", self.cache());
        c
    }

    /// Runs `args`: stdout when it succeeds, else a failure showing stderr.
    fn ok(&self, args: &[&str]) -> String {
        let out = run_copied(&mut self.command(args));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {}\n{text}", String::from_utf8_lossy(&out.stderr));
        text
    }
}

/// `weightlab bench` from a copied binary: its PyTorch references and benchmark plugins come
/// from the binary, not from the source tree it was built in. (The declared networks' bench is
/// the next test, so that the two run side by side.)
#[test]
fn a_copied_binary_benchmarks_against_its_embedded_references() {
    let copied = Copied::new();
    let tmp = &copied.tmp;
    let cmd = |args: &[&str]| copied.ok(args);
    // Workers forked from the fork server against started with exec, side by side.
    let workers = cmd(&["bench", "workers", "--jobs", "2", "--repeats", "1"]);
    let ratio = workers.lines().find_map(|l| l.split("forked/exec = ").nth(1)).and_then(|r| r.trim().parse::<f64>().ok());
    assert!(ratio.is_some_and(|r| r > 0.0), "{workers}");
    let boundary = cmd(&["bench", "plugin", "--rows", "4", "--params", "32", "--hidden", "8", "--steps", "3", "--repeats", "1"]);
    assert!(boundary.contains("plugin/native = ") && boundary.contains("plugin/pytorch = "), "{boundary}");
    let pdiff = cmd(&["bench", "pdiff", "--rows", "8", "--params", "64", "--steps", "2", "--repeats", "1"]);
    assert!(pdiff.contains("plugin/pytorch = "), "{pdiff}");
    let flown = cmd(&["bench", "flown", "--rows", "8", "--params", "64", "--steps", "2", "--repeats", "1"]);
    assert!(flown.contains("plugin/pytorch = ") && flown.contains("FLoWN fit"), "{flown}");
    let hyperreps = cmd(&["bench", "hyperreps", "--rows", "8", "--params", "64", "--steps", "2", "--repeats", "1"]);
    assert!(hyperreps.contains("plugin/pytorch = ") && hyperreps.contains("Hyper-Representations fit"), "{hyperreps}");
    let d2nwg = cmd(&["bench", "d2nwg", "--rows", "8", "--params", "64", "--steps", "2", "--repeats", "1"]);
    assert!(d2nwg.contains("plugin/pytorch = ") && d2nwg.contains("D2NWG fit"), "{d2nwg}");
    // A `--save` folder that cannot be made fails at once, before anything is measured.
    std::fs::write(tmp.path().join("a-file"), "").unwrap();
    let started = std::time::Instant::now();
    let out = run_copied(&mut copied.command(&["bench", "generators", "--save", "a-file/inside"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--save a-file/inside: cannot make that folder"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty() && started.elapsed().as_secs() < 30, "nothing measured first");
    // `--save`: what was printed, and the figures as the table the docs quote from, every row
    // naming the machine. `--isa avx2`: both sides limited to AVX2 (every CPU the tests run
    // on has it), said in the header and in the rows.
    let igpg = cmd(&["bench", "igpg", "--rows", "8", "--params", "64", "--chunk", "8", "--steps", "2", "--repeats", "1", "--save", "saved/igpg", "--isa", "avx2"]);
    assert!(igpg.contains("plugin/pytorch = ") && igpg.contains("IGPG fit"), "{igpg}");
    assert!(igpg.contains("kernels at avx2 (asked for by WEIGHTLAB_SIMD)") && igpg.contains("ISA limited to avx2 on both sides") && igpg.contains("MKL_ENABLE_INSTRUCTIONS=AVX2"), "{igpg}");
    let saved = tmp.path().join("saved/igpg");
    let output = std::fs::read_to_string(saved.join("output.txt")).unwrap();
    assert!(output.lines().next().is_some_and(|l| l.starts_with("CPU ")) && igpg.starts_with(&output), "output.txt is what was printed:\n{output}\n---\n{igpg}");
    let mut summary = csv::Reader::from_path(saved.join("summary.csv")).unwrap();
    let header: Vec<String> = summary.headers().unwrap().iter().map(str::to_string).collect();
    let rows: Vec<csv::StringRecord> = summary.records().map(Result::unwrap).collect();
    let cell = |row: &csv::StringRecord, column: &str| row.get(header.iter().position(|h| h == column).unwrap_or_else(|| panic!("no {column} in {header:?}"))).unwrap_or_default().to_string();
    assert_eq!(rows.len(), 1, "one row per fit");
    assert!(!cell(&rows[0], "cpu").is_empty() && cell(&rows[0], "isa").contains("AVX") && !cell(&rows[0], "kernels").is_empty(), "{header:?} {rows:?}");
    assert_eq!(cell(&rows[0], "bench"), "igpg");
    assert_eq!(cell(&rows[0], "isa_limit"), "avx2");
    let ratio: f64 = cell(&rows[0], "ratio").parse().unwrap();
    let (plugin, torch): (f64, f64) = (cell(&rows[0], "plugin_s").parse().unwrap(), cell(&rows[0], "pytorch_s").parse().unwrap());
    // The times are kept to 0.1 ms, so a run of milliseconds gives their ratio to about 1 %.
    assert!(ratio > 0.0 && (ratio - plugin / torch).abs() <= 0.02 * ratio + 1e-4, "ratio {ratio} vs {plugin} / {torch}");
    let diffusion = cmd(&["bench", "diffusion", "--rows", "8", "--params", "100", "--steps", "2", "--repeats", "1"]);
    assert!(diffusion.contains("plugin/pytorch = ") && diffusion.lines().next().is_some_and(|l| l.starts_with("CPU ")), "{diffusion}");
}

/// Declared networks on the native engine against their PyTorch references, from a copied
/// binary: a line per network, its name first and models/s second; two networks in one call
/// (a comma list), and a name that is no network refused before anything is measured.
#[test]
fn a_copied_binary_benchmarks_declared_networks_against_its_embedded_references() {
    let copied = Copied::new();
    let started = std::time::Instant::now();
    let out = run_copied(&mut copied.command(&["bench", "zoo", "--arch", "resnet-small,lenet6"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("`lenet6` is not a network") && stderr.contains("lenet5-gelu-dropout, resnet-small"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty() && started.elapsed().as_secs() < 30, "nothing measured first");
    let zoo = copied.ok(&["bench", "zoo", "--arch", "resnet-small,lenet5-gelu-dropout", "--models", "2", "--train", "64", "--repeats", "1"]);
    assert_eq!(zoo.matches("ceiling: ").count(), 1, "one ceiling measurement for both networks:\n{zoo}");
    for arch in ["resnet-small", "lenet5-gelu-dropout"] {
        let line = zoo.lines().find(|l| l.starts_with(&format!("{arch} "))).unwrap_or_else(|| panic!("{zoo}"));
        let rate: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        // Three ratios last (vs loop, vmap, hand-batched): a number with an x, or n/a where a
        // reference does not apply (vmap over BatchNorm).
        let ratios: Vec<&str> = line.split_whitespace().rev().take(3).collect();
        let ratio = |r: &str| r.strip_suffix('x').and_then(|v| v.parse::<f64>().ok());
        assert!(rate > 0.0 && ratios.iter().all(|&r| r == "n/a" || ratio(r).is_some()) && ratio(ratios[0]).is_some(), "{line}");
    }
}

/// Runs a command whose program was just copied into place. While one test thread copies a
/// binary (its file open for writing), another may fork to start a process, and the child holds
/// that descriptor until it execs: starting the copy then fails with "text file busy" (ETXTBSY)
/// for a moment. That is the test harness's race, not weightlab's, so it is retried.
fn run_copied(c: &mut Command) -> std::process::Output {
    for _ in 0..50 {
        match c.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => std::thread::sleep(std::time::Duration::from_millis(100)),
            other => return other.unwrap(),
        }
    }
    c.output().unwrap()
}

/// libtorch's CUDA half is loaded on demand (`engine/cli/src/cuda_on_demand.cpp`): the binary
/// does not need `libtorch_cuda.so`, so a CPU process and every plugin worker start without
/// mapping the CUDA libraries, and the two stand-ins are not exported, so they never shadow
/// the real functions once the library is loaded. (That the library still loads when a
/// GPU is asked for is checked in `cli.rs`, where `--device cuda` reports it loaded.)
#[test]
fn the_binary_loads_libtorchs_cuda_half_only_when_a_gpu_is_asked_for() {
    let readelf = |args: &[&str]| {
        let out = Command::new("readelf").args(args).arg(binary()).output().expect("readelf (binutils, installed with gcc) runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let needed = readelf(&["-d", "-W"]);
    assert!(needed.contains("libtorch_cpu.so"), "the binary links libtorch: {needed}");
    assert!(!needed.contains("libtorch_cuda.so"), "the binary needs libtorch_cuda.so at start: {needed}");
    let exported = readelf(&["--dyn-syms", "-W"]);
    assert!(!exported.contains("_ZN2at4cuda"), "the CUDA stand-ins are exported: {exported}");
}
