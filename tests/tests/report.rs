//! The run's tables and report: pandas and polars read every table; the report is well-formed,
//! self-contained, and renders in headless Chromium with every plot's axes and legend; a run
//! killed with SIGKILL leaves only complete files and a rerun finishes the rest.

use std::path::Path;
use std::process::Command;

// The tests run side by side, each run with one compute thread.
use weightlab_e2e::{binary, experiment, root, weightlab_ok_beside as weightlab_ok};

const MANIFEST: &str = r#"[experiment]
name = "report"
description = "End-to-end report test."
seeds = [0, 1]

[data.fmnist]
source = "fashion-mnist"
train_subset = 4000
test_subset = 1000

[zoo.mlp]
data = "fmnist"
arch = { kind = "mlp", hidden = [16] }
models = 12
train = { lr = 3e-3, epochs = 2, batch_size = 64 }
split = { train = 8, heldout = 4 }

[[method]]
name = "copy"
plugin = "copy"
zoo = "mlp"
samples = 8

[[method]]
name = "noise σ=0.05"
plugin = "noise"
zoo = "mlp"
samples = 8
config = { sigma = 0.05 }

[[method]]
name = "random-init"
plugin = "random-init"
zoo = "mlp"
samples = 8

[evaluate]
finetune_steps = [0, 30]
"#;

fn python() -> String {
    std::env::var("WEIGHTLAB_TORCH_PYTHON").expect("WEIGHTLAB_TORCH_PYTHON is set by the set-up (.cargo/config.toml)")
}

fn run_python(script: &str, args: &[&Path]) -> String {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python check failed:\n{text}");
    text
}

#[test]
fn tables_open_in_pandas_and_polars() {
    let (dir, path) = experiment(MANIFEST);
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let script = r#"
import sys, pathlib, pandas, polars, pyarrow.ipc
run = pathlib.Path(sys.argv[1])
expected = {"samples", "zoo", "runs", "similarity", "finetune"}
seen = set()
for f in sorted(run.glob("*.parquet")):
    a = pandas.read_parquet(f)
    b = polars.read_parquet(f)
    c = polars.read_ipc(f.with_suffix(".arrow"))
    d = pyarrow.ipc.open_file(f.with_suffix(".arrow")).read_all().to_pandas()
    assert len(a) == b.height == c.height == len(d) > 0, f
    seen.add(f.stem)
    print(f.stem, len(a))
assert expected <= seen, seen
s = pandas.read_parquet(run / "samples.parquet")
assert set(s["method"]) >= {"copy", "noise σ=0.05", "random-init", "train (leave-one-out)", "held-out"}, set(s["method"])
assert (s[s.method == "copy"].nn_l2 == 0).all()
# Heatmap cells: a copy's errors are exactly its source checkpoint's; random-init shares few.
sim = pandas.read_parquet(run / "similarity.parquet")
best = sim.groupby(["method", "seed", "sample"]).similarity.max()
assert (best["copy"] == 1.0).all(), best["copy"]
assert best["random-init"].max() < 0.9, best["random-init"]
train = sim[sim.method == "train (leave-one-out)"]
assert (train[train["sample"] == train.checkpoint].similarity == 1.0).all()
# Few-shot transfer: copies start at their accuracy; random init learns but stays behind.
ft = pandas.read_parquet(run / "finetune.parquet").groupby(["method", "steps"]).accuracy.mean()
copy_samples = s[s.method == "copy"].accuracy.mean()
assert abs(ft["copy"][0] - copy_samples) < 1e-6, (ft["copy"][0], copy_samples)
assert ft["random-init"][30] > ft["random-init"][0] + 0.2, ft["random-init"]
assert ft["copy"][30] > ft["random-init"][30], ft
print("ok")
"#;
    let out = run_python(script, &[&dir.path().join("out")]);
    assert!(out.contains("ok"), "{out}");
}

/// Headless Chromium, or None (with the reason printed) where it is not installed.
fn chromium() -> Option<String> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(c.to_string());
        }
    }
    None
}

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

#[test]
fn report_is_self_contained_and_renders_in_chromium() {
    let (dir, path) = experiment(MANIFEST);
    weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let report = dir.path().join("out/report.html");
    let html = std::fs::read_to_string(&report).unwrap();

    // Self-contained: no scripts, stylesheets, images or fonts from elsewhere.
    for bad in ["src=\"http", "href=\"http", "url(http", "@import", "<script src", "<link "] {
        assert!(!html.contains(bad), "external reference `{bad}` in the report");
    }
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"), "no URLs besides the SVG namespace");
    // Well-formed: every non-void tag closes, in order.
    let check = r#"
import sys, html.parser
VOID = {"meta", "br", "img", "input", "link", "hr", "circle", "line", "path", "rect"}
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.stack = []
    def handle_starttag(s, tag, attrs):
        if tag not in VOID: s.stack.append((tag, s.getpos()))
    def handle_startendtag(s, tag, attrs): pass
    def handle_endtag(s, tag):
        if tag in VOID: return
        assert s.stack and s.stack[-1][0] == tag, f"</{tag}> at {s.getpos()} closes {s.stack[-1] if s.stack else None}"
        s.stack.pop()
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); p.close()
assert not p.stack, f"unclosed: {p.stack[:5]}"
print("well-formed")
"#;
    run_python(check, &[&report]);

    // The summary table lists every method; the accuracy-novelty plot is there with axes and legend.
    for m in ["copy", "noise σ=0.05", "random-init", "held-out"] {
        assert!(html.contains(&format!("<td class=\"text\">{m}</td>")), "summary row for {m}");
    }
    for id in ["plot-accuracy-novelty-mlp", "plot-nn-distance-mlp", "plot-weight-pca-mlp"] {
        let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("{id} missing"));
        let figure = &html[start..start + html[start..].find("</figure>").unwrap()];
        assert!(figure.contains("class=\"axis x-axis\"") && figure.contains("class=\"axis y-axis\"") && figure.contains("class=\"legend\""), "{id} lacks axes or legend");
        assert!(figure.contains("class=\"series\""), "{id} has no data");
    }

    // `make test` installs Debian's chromium (engine/scripts/setup.sh): a missing browser is a
    // failed test, not a skipped one.
    let browser = chromium().expect("chromium is not installed: run `make test` (its set-up installs Debian's chromium) or `apt-get install chromium`");
    let shots = root().join("target-test-output");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", report.display());
    let dom = Command::new(&browser).args(chromium_args(profile.path())).arg("--dump-dom").arg(&url).output().unwrap();
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {log}");
    assert!(dom_text.contains("summary-table") && dom_text.matches("<svg").count() >= 3, "rendered DOM lacks the table or plots");
    let console_errors: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("Uncaught"))).collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
    let shot = shots.join("report.png");
    let status = Command::new(&browser).args(chromium_args(profile.path())).arg(format!("--screenshot={}", shot.display())).arg("--window-size=1200,2400").arg(&url).output().unwrap();
    assert!(status.status.success() && shot.is_file(), "screenshot failed");
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000, "screenshot is not blank");
}

#[test]
fn a_killed_run_leaves_only_complete_files_and_a_rerun_finishes() {
    let (dir, path) = experiment(&MANIFEST.replace("models = 12", "models = 48").replace("epochs = 2", "epochs = 4"));
    let mut child = Command::new(binary())
        .args(["run", path.to_str().unwrap(), "-o", "out", "-q"])
        .current_dir(dir.path())
        .env("WEIGHTLAB_PLUGIN_DIR", root().join("plugins/dist"))
        .env("WEIGHTLAB_STORE", "run")
        .spawn()
        .unwrap();
    // Kill as soon as the first stage is committed (the zoo trains for several seconds more),
    // so the run is interrupted mid-work with something on disk to check.
    let out = dir.path().join("out");
    let committed = || std::fs::read_dir(out.join("stages")).into_iter().flatten().flatten().filter(|e| e.path().join("stage.json").is_file()).count();
    let started = std::time::Instant::now();
    while committed() == 0 && started.elapsed() < std::time::Duration::from_secs(120) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before any stage was committed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(committed() > 0, "no stage committed within 2 minutes");
    assert!(child.try_wait().unwrap().is_none(), "the run must still be working when it is killed");
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    assert!(!out.join("report.html").exists(), "killed before the end, so no report yet");
    // Every stage folder that claims to be complete is; every table file opens.
    if let Ok(entries) = std::fs::read_dir(out.join("stages")) {
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            // A killed process's temporary folder (`<stage>.partial-<host>-<pid>`), or a file.
            if name.contains(".partial") || !p.is_dir() {
                continue;
            }
            assert!(p.join("stage.json").is_file(), "{name} is in place without stage.json");
        }
    }
    for f in walk(&out).into_iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")) {
        weightlab_results::read_parquet(&f).unwrap_or_else(|e| panic!("{} is not a complete table: {e}", f.display()));
    }
    let text = weightlab_ok(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    assert!(text.contains("0 failed"), "{text}");
    let plan = weightlab_ok(dir.path(), &["plan", path.to_str().unwrap(), "-o", "out"]);
    assert!(plan.contains(", 0 to run"), "{plan}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

#[test]
fn report_command_rerenders_and_compares_runs_without_recomputing() {
    let (dir, path) = experiment(MANIFEST);
    let p = path.to_str().unwrap();
    weightlab_ok(dir.path(), &["run", p, "-o", "a"]);
    weightlab_ok(dir.path(), &["run", p, "-o", "b", "--set", "method.1.config.sigma=0.1"]);
    let stages_before = walk(&dir.path().join("a/stages")).len();
    // The run renders from the tables it has just gathered; re-rendered from the files it
    // wrote, the report is the same, byte for byte but for the time it was generated.
    let undated = |html: String| match (html.find("· generated "), html.find(" UTC</p>")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &html[..a], &html[b..]),
        _ => html,
    };
    let rendered_by_run = undated(std::fs::read_to_string(dir.path().join("a/report.html")).unwrap());
    std::fs::remove_file(dir.path().join("a/report.html")).unwrap();
    // Re-rendered by a process with other compute settings (as on another machine): the report
    // keeps where the run's stages were computed (one thread each), not the renderer's.
    let rerender = weightlab_e2e::command(dir.path(), &["report", "a"]).env("OMP_NUM_THREADS", "2").env("MKL_NUM_THREADS", "2").output().unwrap();
    assert!(rerender.status.success(), "{}", String::from_utf8_lossy(&rerender.stderr));
    assert!(dir.path().join("a/report.html").is_file(), "re-rendered in place");
    assert!(undated(std::fs::read_to_string(dir.path().join("a/report.html")).unwrap()) == rendered_by_run, "the re-rendered report differs from the run's");
    let html = std::fs::read_to_string(dir.path().join("a/report.html")).unwrap();
    assert!(
        html.contains(", 1 threads on ") && !html.contains(", 2 threads"),
        "the run's compute, not the renderer's: {}",
        &html[html.find("compute").unwrap_or(0)..][..400.min(html.len() - html.find("compute").unwrap_or(0))]
    );
    assert_eq!(walk(&dir.path().join("a/stages")).len(), stages_before, "nothing recomputed");
    // Two runs side by side, with a user template.
    let templates = dir.path().join("tpl");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("report.html.j2"), "<html><body><h1>{{ title }}</h1>{% for r in rows %}<p>{{ r.method }}</p>{% endfor %}</body></html>").unwrap();
    weightlab_ok(dir.path(), &["report", "a", "b", "-o", "both", "--template", "tpl"]);
    let html = std::fs::read_to_string(dir.path().join("both/report.html")).unwrap();
    assert!(html.contains("<h1>a vs b</h1>"), "{html}");
    for m in ["a: copy", "b: copy", "a: noise σ=0.05", "b: noise σ=0.05"] {
        assert!(html.contains(&format!("<p>{m}</p>")), "{m} missing: {html}");
    }
}

#[test]
fn a_failed_zoo_is_reported_and_the_other_zoo_still_runs() {
    // Zoo `broken` continues training parameters its architecture does not have: its stage
    // fails at run time, its reference and methods are skipped, zoo `mlp` and its method
    // finish, and the report says what happened to `broken` instead of leaving it out. (A
    // broken imported file is refused before anything runs: see tests/byo.rs.)
    let manifest = MANIFEST.replace(
        "[[method]]\nname = \"copy\"",
        "[zoo.broken]\ndata = \"fmnist\"\narch = { kind = \"mlp\", hidden = [16] }\nmodels = 2\ntrain = { epochs = 1 }\ncontinue = { params = [\"no-such-layer\"], steps = 2 }\n\n[[method]]\nname = \"copy broken\"\nplugin = \"copy\"\nzoo = \"broken\"\nsamples = 2\n\n[[method]]\nname = \"copy\"",
    );
    let (dir, path) = experiment(&manifest);
    let out = weightlab_e2e::weightlab(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let run = dir.path().join("out");
    let stages = weightlab_e2e::strings(&run, "failures", "stage");
    assert_eq!(stages, ["zoo broken part 1/1"], "only the zoo's training failed; its dependents were skipped: {stderr}");
    assert_eq!(weightlab_e2e::column(&run, "samples", Some("copy"), "accuracy").len(), 16, "the other zoo's methods ran");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Zoo <b>broken</b>: no checkpoints — its stage failed:"), "the report names the failed zoo");
    assert!(html.contains("copy broken") && html.contains("failed: not run (a stage it needs failed)"), "its method is listed as not run");
}
