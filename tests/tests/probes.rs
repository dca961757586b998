//! Probes end to end on a real Fashion-MNIST model-tree zoo: three roots, children fine-tuned on
//! class pairs with cycled learning rates. Checks that would catch a broken probe: the trees are
//! found from weights alone, probes read classes, trees and learning rates far above chance,
//! shuffled labels and a zoo whose weights carry no class both drive every probe to chance,
//! oracle one-hot label embeddings give the text-aligned probe an ordinary probe's figures, and
//! every metric equals scikit-learn's / SciPy's on the stored predictions. The native MiniLM
//! embeddings equal sentence-transformers' run offline in PyTorch.

use std::path::Path;
use std::sync::Mutex;

use weightlab_e2e::{experiment, weightlab_ok};
use weightlab_results::rows::read_table;
use weightlab_results::{ProbeScoreRow, TreeRow};

/// The runs train zoos and fit probes on both cores: one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

const HEADER: &str = r#"extends = ["$FIXTURES/fmnist.toml"]

[experiment]
name = "probes"
seeds = [0, 1]

"#;

/// A model tree; `lr` is the children's fine-tuning learning rate list.
fn zoo(name: &str, lr: &str) -> String {
    format!(
        "[zoo.{name}]\ndata = \"fmnist\"\narch = {{ kind = \"mlp\", hidden = [16] }}\nmodels = 48\ntrain = {{ lr = 3e-3, epochs = 2, batch_size = 64 }}\n\
         tree = {{ roots = 3, classes = 2, epochs = [1, 2], lr = {lr} }}\nsplit = {{ train = 36, heldout = 12 }}\n"
    )
}

fn probe(name: &str, plugin: &str, zoo: &str, target: &str, extra: &str) -> String {
    format!("[[method]]\nname = \"{name}\"\nplugin = \"{plugin}\"\nzoo = \"{zoo}\"\ntarget = \"{target}\"\n{extra}\n")
}

/// (value, chance) of `metric` for `method`, averaged over seeds.
fn score(scores: &[ProbeScoreRow], method: &str, metric: &str) -> (f64, f64) {
    let rows: Vec<&ProbeScoreRow> = scores.iter().filter(|s| s.method == method && s.metric == metric).collect();
    assert!(!rows.is_empty(), "no {metric} for {method}");
    let n = rows.len() as f64;
    (rows.iter().map(|s| s.value).sum::<f64>() / n, rows.iter().map(|s| s.chance).sum::<f64>() / n)
}

fn scores(run: &Path) -> Vec<ProbeScoreRow> {
    read_table(run, "probe_scores").expect("readable").expect("a probe_scores table")
}

#[test]
fn probes_read_what_the_weights_hold_and_nothing_else() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let mut manifest = String::from(HEADER);
    manifest += &zoo("tree", "[1e-3, 3e-3]");
    // The control: fine-tuning with learning rate 0 leaves every child a copy of its root, so
    // its weights carry nothing about the classes it was "trained" on.
    manifest += &zoo("frozen", "0.0");
    for (plugin, config) in [("probex", ""), ("flat", ""), ("weight-stats", "")] {
        manifest += &probe(plugin, plugin, "tree", "classes", config);
        manifest += &probe(&format!("{plugin} shuffled"), plugin, "tree", "classes", "shuffle_labels = true");
        manifest += &probe(&format!("{plugin} frozen"), plugin, "frozen", "classes", "");
    }
    manifest += &probe("probex tree", "probex", "tree", "parent", "");
    manifest += &probe("probex lr", "probex", "tree", "lr", "");
    // Tree experts, fine-tuned from the shared probe (the default) and from scratch (the paper).
    manifest += &probe("probex experts", "probex", "tree", "classes", "config = { experts = true }");
    manifest += &probe("probex experts scratch", "probex", "tree", "classes", "config = { experts = true, expert_init = \"scratch\" }");
    manifest += &probe("oracle", "probex", "tree", "classes", "embed_labels = \"one-hot\"");
    manifest += &probe("minilm zero-shot", "probex", "tree", "classes", "embed_labels = \"minilm\"\nunseen_classes = [8, 9]");
    let (dir, _) = experiment(&manifest);
    weightlab_ok(dir.path(), &["run", "exp.toml", "-o", "out"]);
    let run = dir.path().join("out");
    let s = scores(&run);

    // Trees from weights alone.
    let trees: Vec<TreeRow> = read_table(&run, "trees").unwrap().expect("a trees table");
    let tree = trees.iter().find(|t| t.zoo == "tree").expect("the tree zoo");
    assert_eq!((tree.models, tree.true_trees), (48, 3));
    assert!(tree.ari >= 0.95, "tree discovery ARI {}", tree.ari);

    // Every probe reads the training classes far above chance, and nothing from shuffled
    // labels or from weights that never learned the classes.
    for plugin in ["probex", "flat", "weight-stats"] {
        let (map, chance) = score(&s, plugin, "map");
        eprintln!("{plugin}: mAP {map:.3} (chance {chance:.3})");
        if plugin != "weight-stats" {
            assert!(map > chance + 0.3, "{plugin} mAP {map} vs chance {chance}");
        }
        for control in ["shuffled", "frozen"] {
            let (map, chance) = score(&s, &format!("{plugin} {control}"), "map");
            eprintln!("{plugin} {control}: mAP {map:.3} (chance {chance:.3})");
            assert!((map - chance).abs() < 0.15, "{plugin} {control}: mAP {map} should sit at chance {chance}");
        }
    }
    // ProbeX (one layer, learned probes) beats the probe on the whole flattened weights.
    assert!(score(&s, "probex", "map").0 > score(&s, "flat", "map").0 + 0.05, "ProbeX should beat the flat probe");
    let (acc, chance) = score(&s, "probex tree", "accuracy");
    assert!(acc > 0.9 && chance < 0.4, "tree accuracy {acc} (chance {chance})");
    let (r2, _) = score(&s, "probex lr", "r2");
    let (tau, _) = score(&s, "probex lr", "kendall_tau");
    eprintln!("lr: R² {r2:.3}, τ {tau:.3}");
    assert!(r2 > 0.1 && tau > 0.3, "learning rate from weights: R² {r2}, τ {tau}");

    // Experts either way read the classes; each trained one logs its loss, scratch ones over
    // the full `steps` (400), shared ones over `expert_steps` (200).
    for (name, steps) in [("probex experts", 200), ("probex experts scratch", 400)] {
        let (map, chance) = score(&s, name, "map");
        eprintln!("{name}: mAP {map:.3} (chance {chance:.3})");
        assert!(map > chance + 0.3, "{name} mAP {map} vs chance {chance}");
        let logs: Vec<weightlab_results::LogRow> = read_table(&run, "training_log").unwrap().unwrap();
        let experts = logs.iter().filter(|l| l.source == name && l.name.starts_with("expert-") && l.step == steps).count();
        assert!(experts >= 3, "{name}: {experts} experts logged at step {steps}");
    }

    // Oracle one-hot embeddings passed through the host: the text-aligned head (cosine with each
    // label's embedding) then sees what ProbeX's default head builds for itself.
    let (oracle, _) = score(&s, "oracle", "map");
    let (plain, _) = score(&s, "probex", "map");
    eprintln!("oracle one-hot: mAP {oracle:.3} (plain ProbeX {plain:.3})");
    assert!(oracle > 0.85 && oracle > plain - 0.05, "oracle mAP {oracle} vs plain {plain}");
    // MiniLM zero-shot: reported, good or bad, beside its chance level.
    let (zero_shot, chance) = score(&s, "minilm zero-shot", "zero_shot_map");
    eprintln!("MiniLM zero-shot mAP on unseen classes {zero_shot:.3} (chance {chance:.3})");
    assert!(zero_shot.is_finite() && chance.is_finite());
    // What the plugins logged is kept: ProbeX says which layer it chose on validation models.
    assert!(weightlab_e2e::strings(&run, "messages", "text").iter().any(|t| t.starts_with("probing layer")), "probe logs reach the messages table");
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(report.contains("Model trees found from weights alone") && report.contains("Zero-shot mAP"), "report has the probe section");
    assert!(report.contains("id=\"plot-probe-tree-classes\"") && report.contains("id=\"plot-probe-tree-lr\""), "per-label AP and predicted-vs-true plots");

    // The stored predictions rescored by scikit-learn and SciPy give the same figures.
    let python = std::env::var("WEIGHTLAB_TORCH_PYTHON").unwrap_or_else(|_| format!("{}/.cache/weightlab/torch-2.9.0/bin/python", std::env::var("HOME").unwrap_or_default()));
    let check = weightlab_e2e::root().join("tests/probe_metrics.py");
    let out = std::process::Command::new(&python).arg(&check).arg(&run).output().expect("python runs");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn native_minilm_equals_sentence_transformers() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let texts = ["a photo of a t-shirt/top", "a photo of a ankle boot", "Generate weights for a 5-way classifier of shoes and bags."];
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["embed"];
    args.extend(texts);
    let ours: Vec<Vec<f64>> = serde_json::from_str(&weightlab_ok(dir.path(), &args)).expect("a JSON array");
    let python = std::env::var("WEIGHTLAB_TORCH_PYTHON").unwrap_or_else(|_| format!("{}/.cache/weightlab/torch-2.9.0/bin/python", std::env::var("HOME").unwrap_or_default()));
    let out = std::process::Command::new(&python)
        .arg(weightlab_e2e::root().join("tests/minilm_reference.py"))
        .arg(serde_json::to_string(&texts).unwrap())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).expect("JSON from the reference");
    assert_eq!(ours.len(), reference.len());
    for ((a, b), text) in ours.iter().zip(&reference).zip(texts) {
        assert_eq!(a.len(), 384);
        let cosine = a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|y| y * y).sum::<f64>().sqrt());
        eprintln!("{text:?}: cosine {cosine:.7}");
        assert!(cosine >= 0.9999, "{text:?}: cosine {cosine} with sentence-transformers");
    }
}
