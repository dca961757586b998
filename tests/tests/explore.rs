//! The report as something to explore, in a real browser (headless Chromium over the DevTools
//! protocol, `tests/cdp.rs`): on the quickstart's report a p-diff point's tooltip names its
//! method, seed, sample and metrics; the summary sorts by novelty; a legend entry hides a method
//! in every plot and shows it again; every plot and sortable table offers a download.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::json;
use weightlab_e2e::cdp::Browser;
use weightlab_e2e::{root, weightlab_ok};

/// The quickstart at a smaller scale (as `slurm.rs`): 100 snapshots, shorter p-diff training.
const SETS: [&str; 3] = ["zoo.snapshots.continue.steps=100", "method.p-diff.config.ae_steps=200", "method.p-diff.config.ddpm_steps=200"];

/// The runs the tests of this file share, in one folder: `a`, the quickstart (2 seeds), and
/// `b`, the same with a third seed — through one stage store, so `b` computes only seed 2.
struct Runs {
    _dir: tempfile::TempDir,
    folder: PathBuf,
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (folder, store) = (dir.path().join("runs"), dir.path().join("store"));
        let manifest = root().join("experiments/quickstart.toml");
        for (name, extra) in [("a", None), ("b", Some("experiment.seeds=[0, 1, 2]"))] {
            let mut args = vec!["run".to_string(), manifest.display().to_string(), "-o".into(), folder.join(name).display().to_string(), "--store".into(), store.display().to_string(), "-q".into()];
            for set in SETS.iter().copied().chain(extra) {
                args.extend(["--set".to_string(), set.to_string()]);
            }
            weightlab_ok(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Runs { _dir: dir, folder }
    })
}

fn quickstart() -> PathBuf {
    runs().folder.join("a")
}

#[test]
fn the_report_explains_points_sorts_tables_and_hides_methods_in_a_browser() {
    let report = quickstart().join("report.html");
    let mut page = Browser::launch(1400, 1000);
    page.open(&format!("file://{}", report.display()));

    // Hover a p-diff point of the accuracy–novelty plot: the tooltip says what it is.
    let plot = "#plot-accuracy-novelty-snapshots";
    let (x, y) = page.centre(&format!("{plot} .series[data-name=\"p-diff\"] circle"));
    page.hover(x, y);
    page.wait_for("!document.getElementById('wl-tip').hidden", std::time::Duration::from_secs(5));
    let tip = page.eval("document.getElementById('wl-tip').innerText").as_str().unwrap_or_default().to_string();
    let row = page.eval(&format!("(() => {{ const c = document.elementFromPoint({x}, {y}); return JSON.parse(document.getElementById('wl-points').textContent).rows[+c.dataset.i]; }})()"));
    assert_eq!(row[0], json!("p-diff"), "{row}");
    let accuracy = row[4][0].as_f64().expect("the point has an accuracy");
    for part in ["p-diff".to_string(), format!("seed {}", row[2]), format!("sample {}", row[3]), format!("Test accuracy: {accuracy:.3}"), "Novelty: ".into()] {
        assert!(tip.contains(&part), "tooltip lacks `{part}`:\n{tip}");
    }

    // Sort the summary by novelty (ascending, then descending): rows follow, missing values last.
    let column = page.eval("[...document.querySelectorAll('#summary-table thead th')].findIndex(th => th.textContent.startsWith('Novelty'))").as_i64().expect("a novelty column");
    assert!(column > 0);
    let values = |page: &mut Browser| -> Vec<Option<f64>> {
        let cells = page.eval(&format!("[...document.querySelectorAll('#summary-table tbody tr')].map(r => r.cells[{column}].textContent.trim())"));
        cells.as_array().unwrap().iter().map(|c| c.as_str().unwrap().split_whitespace().next().and_then(|v| v.parse().ok())).collect()
    };
    let header = format!("#summary-table thead th:nth-child({})", column + 1);
    for descending in [false, true] {
        let (x, y) = page.centre(&header);
        page.click(x, y);
        let got = values(&mut page);
        let present: Vec<f64> = got.iter().flatten().copied().collect();
        assert!(present.len() >= 5, "{got:?}");
        assert!(got.iter().skip_while(|v| v.is_some()).all(Option::is_none), "missing values last: {got:?}");
        let mut sorted = present.clone();
        sorted.sort_by(|a, b| if descending { b.total_cmp(a) } else { a.total_cmp(b) });
        assert_eq!(present, sorted, "sorted {}", if descending { "descending" } else { "ascending" });
    }

    // Hide `copy` from its legend entry: its points leave every plot; others stay; a second
    // click brings them back.
    let visible = "(name) => [...document.querySelectorAll('.series')].filter(s => s.dataset.name === name && getComputedStyle(s).display !== 'none').length";
    let count = |page: &mut Browser, name: &str| page.eval(&format!("({visible})({})", json!(name))).as_i64().unwrap_or(-1);
    let before = (count(&mut page, "copy"), count(&mut page, "p-diff"));
    assert!(before.0 >= 3 && before.1 >= 3, "copy and p-diff are drawn in several plots: {before:?}");
    let (x, y) = page.centre(&format!("{plot} .legend-item[data-name=\"copy\"]"));
    page.click(x, y);
    assert_eq!((count(&mut page, "copy"), count(&mut page, "p-diff")), (0, before.1), "hidden everywhere, the others kept");
    let (x, y) = page.centre(&format!("{plot} .legend-item[data-name=\"copy\"]"));
    page.click(x, y);
    assert_eq!(count(&mut page, "copy"), before.0);

    // Every plot offers its SVG, every sortable table its CSV; the plots take the page's width.
    let (figures, svg_tools) = (page.eval("document.querySelectorAll('figure svg').length"), page.eval("[...document.querySelectorAll('figure .tool')].filter(b => b.textContent === 'SVG').length"));
    assert_eq!(figures, svg_tools);
    assert_eq!(page.eval("document.querySelectorAll('table.sortable').length"), page.eval("[...document.querySelectorAll('.tool')].filter(b => b.textContent === 'CSV').length"));
    let width = page.eval("document.querySelector('figure svg').getBoundingClientRect().width").as_f64().unwrap_or(0.0);
    assert!(width > 560.0, "a plot is {width}px wide in a 1400px window");
}

/// The Python package (`python/weightlab`, this clone's): `open_run` reads the tables with
/// the metric declarations, `summary()` equals the report's `summary.csv`, and a p-diff
/// sample from `samples_as_state_dicts` loaded into a PyTorch module scores weightlab's
/// accuracy on the same test images.
#[test]
fn the_python_package_reads_a_run_into_pandas_and_pytorch() {
    let run = quickstart();
    let script = r#"
import gzip, sys, numpy as np, pandas as pd, torch
import weightlab as wl
run = wl.open_run(sys.argv[1])
s = run.samples
assert s.attrs["metrics"]["accuracy"].direction == "higher" and s.attrs["metrics"]["novelty"].direction == "none", s.attrs["metrics"]
assert run.metrics["nn_l2"].label == "NN distance (L2)", run.metrics["nn_l2"]

# summary() recomputes the report's summary from the samples.
mine = run.summary()
written = pd.read_csv(run.path / "summary.csv")
assert list(mine.method) == list(written.method), (list(mine.method), list(written.method))
checked = 0
for column in written.columns[6:]:
    a, b = mine[column].to_numpy(float), written[column].to_numpy(float)
    assert np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True), (column, a, b)
    checked += 1
assert checked >= 10, checked

# A generated model in PyTorch: the first 2,000 official test images, standardised as the engine does.
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:2000]
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8)[:2000]
x = torch.tensor((x.astype(np.float32) / 255.0 - 0.2860) / 0.3530)
class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(784, 32), torch.nn.Linear(32, 10)])
    def forward(self, x):
        return self.layers[1](torch.relu(self.layers[0](x)))
model, n = Mlp(), 0
for info, state_dict in run.samples_as_state_dicts("p-diff", seed=1):
    model.load_state_dict(state_dict)
    with torch.no_grad():
        acc = (model(x).argmax(1).numpy() == y).mean()
    assert abs(acc - info["accuracy"]) < 1e-6, (info["sample"], acc, info["accuracy"])
    n += 1
assert n == 16, n
print("ok", checked, n)
"#;
    let python = std::env::var("WEIGHTLAB_TORCH_PYTHON").expect("WEIGHTLAB_TORCH_PYTHON is set by the set-up (.cargo/config.toml)");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&run)
        .env("PYTHONPATH", root().join("python"))
        .env("WEIGHTLAB", weightlab_e2e::binary())
        .env("WEIGHTLAB_PLUGIN_DIR", root().join("plugins/dist"))
        .output()
        .expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("ok"), "{text}");
}

/// `weightlab serve` on the two runs: the list shows both; selecting both and comparing gives
/// one table with a column per run whose figures are their summaries'; each method keeps its
/// colour from one report to the other; a run in progress shows its stages, updated live.
#[test]
fn serve_lists_runs_compares_them_and_follows_a_run_in_progress() {
    use std::io::BufRead;
    let folder = &runs().folder;
    // A run in progress: this test's own process, as far as the progress file is concerned.
    let live = folder.join("c");
    std::fs::create_dir_all(&live).unwrap();
    let mut progress = weightlab_pipeline::progress::Progress::new(["zoo snapshots".to_string(), "method \"p-diff\" seed 0".to_string(), "report".to_string()]);
    progress.set(&live, 0, "done");
    progress.set(&live, 1, "running");

    let mut server = weightlab_e2e::command(folder, &["serve", folder.to_str().unwrap(), "--bind", "127.0.0.1:0"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let address = lines.find_map(|l| l.ok()?.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string)).expect("serve prints its address");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);

    let mut page = Browser::launch(1400, 1000);
    page.open(&address);
    let listed = page.eval("[...document.querySelectorAll('#runs tbody tr')].map(r => r.cells[1].textContent + ' | ' + r.cells[3].textContent)");
    let listed: Vec<String> = listed.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for (run, status) in [("a", "ok"), ("b", "ok"), ("c", "running 1/3")] {
        assert!(listed.iter().any(|l| l == &format!("{run} | {status}")), "{run} ({status}) not listed: {listed:?}");
    }

    // Select a and b, compare.
    for run in ["a", "b"] {
        let (x, y) = page.centre(&format!("#runs input[value=\"{run}\"]"));
        page.click(x, y);
    }
    let (x, y) = page.centre("#compare");
    page.click(x, y);
    page.wait_for("location.pathname === '/compare' && document.readyState === 'complete' && !!document.getElementById('compare-table')", std::time::Duration::from_secs(30));
    let header = page.eval("[...document.querySelectorAll('#compare-table thead th')].map(h => h.textContent)");
    assert_eq!(header, json!(["Zoo", "Method", "Role", "a", "b"]));
    let copy = page.eval("[...document.querySelectorAll('#compare-table tbody tr')].find(r => r.cells[1].textContent === 'copy').cells[3].textContent + ' | ' + [...document.querySelectorAll('#compare-table tbody tr')].find(r => r.cells[1].textContent === 'copy').cells[4].textContent");
    let expected: Vec<String> = ["a", "b"]
        .iter()
        .map(|run| {
            let text = std::fs::read_to_string(folder.join(run).join("summary.csv")).unwrap();
            let mut rows = text.lines().map(|l| l.split(',').collect::<Vec<_>>());
            let header = rows.next().unwrap();
            let row = rows.find(|r| r[1] == "copy").unwrap();
            let col = |k: &str| header.iter().position(|h| *h == k).unwrap();
            format!("{:.3} ± {:.3}", row[col("accuracy")].parse::<f64>().unwrap(), row[col("accuracy_ci95")].parse::<f64>().unwrap())
        })
        .collect();
    assert_eq!(copy, json!(expected.join(" | ")));
    let seeds = page.eval("document.getElementById('combined').src");
    assert!(seeds.as_str().unwrap_or_default().contains("/compare/report?run=a&run=b"), "{seeds}");

    // One colour per method across reports (and two methods apart).
    let mut fills = Vec::new();
    for run in ["a", "b"] {
        page.open(&format!("{address}report?run={run}"));
        fills.push(page.eval("['copy', 'p-diff'].map(n => [...document.querySelectorAll('.series')].find(s => s.dataset.name === n).querySelector('circle').getAttribute('fill'))"));
    }
    assert_eq!(fills[0], fills[1], "a method keeps its colour across reports");
    assert_ne!(fills[0][0], fills[0][1]);

    // The run in progress: its stages, then — without a reload by the test — their next state.
    page.open(&format!("{address}run?run=c"));
    let states = page.eval("[...document.querySelectorAll('#stages tbody tr')].map(r => r.cells[1].textContent)");
    assert_eq!(states, json!(["done", "running", "pending"]));
    progress.set(&live, 1, "done");
    progress.set(&live, 2, "running");
    page.wait_for(
        "(() => { const t = document.getElementById('stages'); return !!t && [...t.tBodies[0].rows].map(r => r.cells[1].textContent).join() === 'done,done,running'; })()",
        std::time::Duration::from_secs(20),
    );
}
