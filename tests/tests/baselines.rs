//! The six built-in baselines on a real Fashion-MNIST zoo, checked against what each must do:
//! `copy` reproduces training checkpoints exactly, `noise` with σ = 0 equals `copy`,
//! `random-init` is at chance, `interpolate` lies on segments between checkpoints (the
//! interpolation test's control), and the zoo itself is far above chance.

use weightlab_e2e::{column, experiment, strings, weightlab};

const MANIFEST: &str = r#"extends = ["$FIXTURES/fmnist.toml"]

[experiment]
name = "baselines"
seeds = [0, 1]

[zoo.mlp]
data = "fmnist"
arch = { kind = "mlp", hidden = [16] }
models = 16
train = { lr = 3e-3, epochs = 2, batch_size = 64 }
split = { train = 12, heldout = 4 }

[[method]]
name = "copy"
plugin = "copy"
zoo = "mlp"
samples = 12

[[method]]
name = "copy permuted"
plugin = "copy"
zoo = "mlp"
samples = 12
config = { permute = true }

[[method]]
name = "noise 0"
plugin = "noise"
zoo = "mlp"
samples = 8
config = { sigma = 0.0 }

[[method]]
name = "noise 0.05"
plugin = "noise"
zoo = "mlp"
samples = 8
config = { sigma = 0.05 }

[[method]]
name = "noise relative"
plugin = "noise"
zoo = "mlp"
samples = 8
config = { sigma = 0.5, relative = true }

[[method]]
name = "average"
plugin = "average"
zoo = "mlp"
samples = 8
config = { k = 4 }

[[method]]
name = "average k=16"
plugin = "average"
zoo = "mlp"
zoos = ["mlp"]
samples = 8
config = { k = 16 }

[[method]]
name = "interpolate"
plugin = "interpolate"
zoo = "mlp"
samples = 8

[[method]]
name = "gaussian"
plugin = "gaussian"
zoo = "mlp"
samples = 8

[[method]]
name = "random-init"
plugin = "random-init"
zoo = "mlp"
samples = 8
"#;

fn mean(v: &[Option<f64>]) -> f64 {
    let xs: Vec<f64> = v.iter().flatten().copied().collect();
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn baselines_behave_as_specified() {
    // Where the manifest says how many training checkpoints a method gets, `k ≥` that count is
    // refused before anything runs, at its line.
    let (dir, path) = experiment(&MANIFEST.replace("zoos = [\"mlp\"]\n", ""));
    let checked = weightlab(dir.path(), &["validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`k` = 16, but zoo `mlp` gives the method 12 training checkpoints"), "{stderr}");
    // Learning from a list of zoos, the count is the plugin's to check, in `fit`.
    let (dir, path) = experiment(MANIFEST);
    let run = weightlab(dir.path(), &["run", path.to_str().unwrap(), "-o", "out"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let out = dir.path().join("out");
    // `average` with k ≥ the 12 training checkpoints would return one vector every time: it
    // refuses, alone, and the run exits 1 with everything else done.
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let failed = strings(&out, "failures", "method");
    assert!(failed.iter().all(|m| m == "average k=16") && failed.len() == 2, "only `average k=16` fails, once per seed: {failed:?}");
    let reasons = strings(&out, "failures", "reason");
    assert!(reasons[0].contains("k = 16 but the zoo has 12 training checkpoints"), "{}", reasons[0]);

    // The zoo is far above chance (10 classes).
    let zoo_acc = column(&out, "zoo", None, "test_accuracy");
    assert!(mean(&zoo_acc) > 0.7, "zoo accuracy {}", mean(&zoo_acc));

    // copy: distance 0, novelty 0, and each sample's accuracy is exactly its source checkpoint's.
    let copy_l2 = column(&out, "samples", Some("copy"), "nn_l2");
    assert_eq!(copy_l2.len(), 24);
    assert!(copy_l2.iter().all(|d| *d == Some(0.0)), "{copy_l2:?}");
    assert!(column(&out, "samples", Some("copy"), "novelty").iter().all(|n| *n == Some(0.0)));
    let copy_acc = column(&out, "samples", Some("copy"), "accuracy");
    let copy_src = column(&out, "samples", Some("copy"), "nn_index");
    let train_acc = column(&out, "samples", Some("train (leave-one-out)"), "accuracy");
    for (acc, src) in copy_acc.iter().zip(&copy_src) {
        assert_eq!(*acc, train_acc[src.unwrap() as usize], "copy reproduces its checkpoint's accuracy");
    }
    // Every training checkpoint appears once per seed (12 samples of 12 checkpoints).
    let mut seen: Vec<i64> = copy_src.iter().take(12).map(|v| v.unwrap() as i64).collect();
    seen.sort();
    assert_eq!(seen, (0..12).collect::<Vec<_>>());

    // copy with its hidden units permuted (the SDK's UnitPermutation, which permutation
    // augmentation uses): the same functions — accuracy and predictions of the checkpoints,
    // novelty 0 — far away in raw weight space, at distance 0 once aligned (weight matching).
    let permuted_acc = column(&out, "samples", Some("copy permuted"), "accuracy");
    let sorted = |mut v: Vec<Option<f64>>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    };
    assert_eq!(sorted(permuted_acc.clone()), sorted(copy_acc.clone()), "a permuted copy computes its checkpoint's function");
    assert!(column(&out, "samples", Some("copy permuted"), "novelty").iter().all(|n| *n == Some(0.0)));
    let raw = column(&out, "samples", Some("copy permuted"), "nn_l2");
    assert!(raw.iter().all(|d| d.unwrap() > 1.0), "permuted copies are far in raw L2: {raw:?}");
    let aligned = column(&out, "samples", Some("copy permuted"), "nn_l2_aligned");
    assert!(aligned.iter().all(|d| d.unwrap() < 1e-4), "aligned distance sees through the permutation: {aligned:?}");
    // The parameter heatmap pairs it with that checkpoint, units matched: the rows agree.
    let shown: Vec<weightlab_results::ParameterRow> = weightlab_results::rows::read_table(&out, "parameters").unwrap().unwrap();
    let of =
        |source: &str| shown.iter().filter(|r| r.method == "copy permuted" && r.source == source).map(|r| ((r.seed, r.sample, r.parameter), r.value)).collect::<std::collections::BTreeMap<_, _>>();
    let (model, nearest) = (of("model"), of("nearest"));
    assert!(!model.is_empty() && model.len() == nearest.len());
    assert!(model.iter().all(|(k, v)| (v - nearest[k]).abs() < 1e-5), "a permuted copy's heatmap rows are its checkpoint's once aligned");

    // noise with sigma 0 is copy.
    assert!(column(&out, "samples", Some("noise 0"), "nn_l2").iter().all(|d| *d == Some(0.0)));

    // noise 0.05 moves away from the checkpoints but keeps most of their accuracy.
    let n05 = column(&out, "samples", Some("noise 0.05"), "nn_l2");
    assert!(n05.iter().all(|d| d.unwrap() > 0.1), "{n05:?}");
    let n05_acc = mean(&column(&out, "samples", Some("noise 0.05"), "accuracy"));
    assert!(n05_acc > 0.4 && n05_acc <= mean(&copy_acc) + 0.02, "noise accuracy {n05_acc}");
    // Relative noise scales each tensor's noise by that tensor's spread, so its distance to the
    // source checkpoint is about σ·‖w − layer means‖ ≈ σ·‖w‖ = 0.5‖w‖; absolute noise of the
    // same σ would be 0.5·√P ≈ ‖w‖ here. Independent checkpoints are ~√2‖w‖ apart, so the
    // nearest one is the source.
    let norm = mean(&column(&out, "samples", Some("train (leave-one-out)"), "weight_norm"));
    let relative = mean(&column(&out, "samples", Some("noise relative"), "nn_l2"));
    let ratio = relative / norm;
    assert!((0.3..0.65).contains(&ratio), "relative noise moved {relative:.3} from checkpoints of norm {norm:.3}: ratio {ratio:.3}, expected ≈ 0.5");

    // random-init is at chance and novel.
    let rand_acc = mean(&column(&out, "samples", Some("random-init"), "accuracy"));
    assert!(rand_acc < 0.2, "random-init accuracy {rand_acc}");
    assert!(mean(&column(&out, "samples", Some("random-init"), "novelty")) > 0.5);

    // The interpolation test: `interpolate` (k = 2, a point on a segment between two
    // checkpoints) is an interpolation by construction, at distance ≈ 0 from one; copies and
    // isotropic noise are not interpolations.
    let interp = column(&out, "samples", Some("interpolate"), "nn_interp");
    assert!(interp.iter().all(|d| d.unwrap() < 1e-4), "interpolations lie on segments: {interp:?}");
    assert!(column(&out, "samples", Some("interpolate"), "interpolation").iter().all(|x| *x == Some(1.0)));
    for m in ["copy", "noise 0.05", "random-init"] {
        let share = mean(&column(&out, "samples", Some(m), "interpolation"));
        assert_eq!(share, 0.0, "{m} is not an interpolation of two checkpoints");
    }
    let noise_interp = column(&out, "samples", Some("noise 0.05"), "nn_interp");
    assert!(noise_interp.iter().zip(&n05).all(|(i, d)| i.unwrap() <= d.unwrap() && i.unwrap() > 0.5 * d.unwrap()), "{noise_interp:?} vs {n05:?}");

    // The report's figures beside it: summary.csv holds the summary table's numbers (the mean
    // over seeds of each seed's mean), and frontier.csv every method against the frontier the
    // three noise methods trace — copy is noise with σ = 0, so it sits on the frontier.
    let csv = |name: &str| -> Vec<std::collections::HashMap<String, String>> {
        let text = std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
        lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_string)).collect()).collect()
    };
    let summary = csv("summary.csv");
    // A method that failed in every seed still has its role (its plugin's: the manifest gives none).
    let average = summary.iter().find(|r| r["method"] == "average k=16").expect("the failed method in summary.csv");
    assert!(average["role"] == "baseline" && average["status"].starts_with("failed"), "{average:?}");
    // …and the code it ran is in the report's provenance, by hash, as a bug report needs.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let failed_code = html.split("average (failed; sha256 ").nth(1).unwrap_or_else(|| panic!("no provenance of the failed method's plugin"));
    assert!(failed_code.len() > 64 && failed_code[..64].bytes().all(|b| b.is_ascii_hexdigit()) && failed_code[64..].starts_with(')'), "{}", &failed_code[..80.min(failed_code.len())]);
    let copy_row = summary.iter().find(|r| r["method"] == "copy").expect("copy in summary.csv");
    let seeds = column(&out, "samples", Some("copy"), "seed");
    let seed_means: Vec<f64> = (0..2)
        .map(|seed| {
            let acc: Vec<f64> = copy_acc.iter().zip(&seeds).filter(|(_, s)| **s == Some(seed as f64)).map(|(a, _)| a.unwrap()).collect();
            acc.iter().sum::<f64>() / acc.len() as f64
        })
        .collect();
    let expected = (seed_means[0] + seed_means[1]) / 2.0;
    assert!((copy_row["accuracy"].parse::<f64>().unwrap() - expected).abs() < 1e-12, "{copy_row:?} vs {expected}");
    let frontier = csv("frontier.csv");
    let copy_on = frontier.iter().find(|r| r["method"] == "copy" && r["axis"] == "novelty").expect("copy against the noise frontier");
    // Copies have novelty 0, where the curve is σ = 0's point: noise 0's mean accuracy (its 8
    // random checkpoints per seed, not copy's 12), and the margin is the difference.
    let value = |row: &std::collections::HashMap<String, String>, key: &str| row[key].parse::<f64>().unwrap();
    let noise0 = summary.iter().find(|r| r["method"] == "noise 0").expect("noise 0 in summary.csv");
    assert_eq!((value(copy_on, "position"), copy_on["seeds_in_range"].as_str()), (0.0, "2"), "{copy_on:?}");
    assert_eq!(copy_on["quality"], "accuracy");
    assert!((value(copy_on, "noise_value") - value(noise0, "accuracy")).abs() < 1e-12, "{copy_on:?} {noise0:?}");
    assert!((value(copy_on, "margin") - (value(copy_row, "accuracy") - value(noise0, "accuracy"))).abs() < 1e-12, "{copy_on:?}");
    assert!(!frontier.iter().any(|r| r["method"].starts_with("noise")), "noise methods make the frontier");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Against the noise frontier") && report.contains("frontier-table") && report.contains("id=\"plot-frontier-mlp-novelty\""));

    // average, interpolate and gaussian make new weights (not copies), and different ones.
    for m in ["average", "interpolate", "gaussian"] {
        let d = column(&out, "samples", Some(m), "nn_l2");
        assert_eq!(d.len(), 16, "{m}");
        assert!(d.iter().all(|x| x.unwrap() > 1e-3 && x.unwrap().is_finite()), "{m}: {d:?}");
        let mut norms: Vec<f64> = column(&out, "samples", Some(m), "weight_norm").into_iter().flatten().collect();
        norms.sort_by(f64::total_cmp);
        norms.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        assert!(norms.len() >= 8, "{m} returns the same few vectors: {norms:?}");
    }
}
