//! `weightlab bench metrics`: the evaluation stage's cost as the zoo grows.

use std::time::Instant;

use anyhow::{Context, Result};

use crate::BenchMetricsArgs;
use crate::record::{Record, figure};

/// `weightlab bench metrics`: what the evaluation stage of a memorization study costs when n
/// generated models meet n training checkpoints. The checkpoints are 16 Fashion-MNIST MLPs
/// trained for an epoch, each repeated with small noise; the generated models are those with
/// more noise and their hidden units permuted (so alignment has work to do). The training
/// checkpoints' test predictions come from the zoo stage in a run and are made untimed here.
pub fn metrics(args: &BenchMetricsArgs) -> Result<i32> {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    use weightlab_compute::{eval, metrics};
    use weightlab_manifest::{ArchSpec, DataSpec, TrainSpec};
    let spec: DataSpec = toml::from_str(&format!("source = \"fashion-mnist\"\ntrain_subset = 2000\ntest_subset = {}", args.test))?;
    let data = weightlab_compute::data::load(&spec, std::path::Path::new("."))?;
    let arch = weightlab_compute::Arch::new(&ArchSpec::Mlp { hidden: vec![args.hidden], activation: Default::default() }, &data).expect("a preset always fits");
    let p = arch.layout().len();
    let recipe = TrainSpec { epochs: 1, ..TrainSpec::default() };
    let base = weightlab_compute::zoo::train::train_models(&arch, &data, &recipe, &(0..16).collect::<Vec<u64>>(), 1, None).pop().map(|(_, w)| w).context("training the base models")?;
    let noisy = |n: usize, sigma: f32, seed: u64, permute: bool| -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let normal = rand_distr::Normal::new(0.0f32, sigma).expect("a valid σ");
        (0..n)
            .flat_map(|i| {
                let k = (i * 7 + seed as usize) % 16;
                let mut w: Vec<f32> = base[k * p..(k + 1) * p].iter().map(|v| v + normal.sample(&mut rng)).collect();
                if permute {
                    w = arch.permute_hidden(&w, seed + i as u64);
                }
                w
            })
            .collect()
    };
    let labels: Vec<u8> = data.test.y.iter().map(|&y| y as u8).collect();
    let mut record = Record::default();
    record.machine();
    record.line(format!(
        "n generated MLPs 784→{}→10 ({p} parameters) against n training checkpoints, {} Fashion-MNIST test examples; {} threads",
        args.hidden,
        data.test.len(),
        tch::get_num_threads()
    ));
    record.line(format!("{:>6} {:>10} {:>10} {:>13} {:>11} {:>10} {:>9}   {:>9}", "n", "accuracy", "nn (raw)", "nn (aligned)", "nn (interp)", "novelty", "total", "(setup)"));
    let mut rows: Vec<(usize, [f64; 6])> = Vec::new();
    for &n in &args.sizes {
        let setup = Instant::now();
        let reference = noisy(n, 0.01, 1, false);
        let generated = noisy(n, 0.02, 2, true);
        let reference_predictions: Vec<Vec<u8>> = eval::evaluate(&arch, &data, &data.test, &reference).into_iter().map(|s| s.predictions).collect();
        let setup = setup.elapsed().as_secs_f64();
        let timed = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        };
        let mut predictions = Vec::new();
        let accuracy = timed(&mut || predictions = eval::evaluate(&arch, &data, &data.test, &generated).into_iter().map(|s| s.predictions).collect());
        let raw = timed(&mut || drop(metrics::nearest(&generated, &reference, p, false)));
        let aligner = weightlab_compute::arch::align::Aligner::new(&arch);
        let measured_aligned = rows.iter().rev().find(|(m, _)| *m <= args.aligned_max).map(|(m, t)| (*m, t[2]));
        let (aligned, estimated) = match measured_aligned {
            Some((m, t)) if n > args.aligned_max => (t * (n as f64 / m as f64).powi(2), true),
            _ => (timed(&mut || drop(metrics::nearest_aligned(&generated, &reference, p, false, &aligner))), false),
        };
        // Every segment between two of the n checkpoints: n·n(n−1)/2 estimates.
        let interp = timed(&mut || drop(metrics::nearest_interpolation(&generated, &reference, p, false)));
        let novelty = timed(&mut || drop(metrics::behaviour(&predictions, &reference_predictions, &labels, false)));
        let total = accuracy + raw + aligned + interp + novelty;
        let aligned_cell = if estimated { format!("~{aligned:.0}s (n²)") } else { format!("{aligned:.2}s") };
        record.line(format!("{n:>6} {accuracy:>9.2}s {raw:>9.2}s {aligned_cell:>13} {interp:>10.2}s {novelty:>9.2}s {total:>8.2}s   {setup:>8.1}s"));
        if estimated {
            record.line(format!("{:>6} without the aligned distance: {:.2}s", "", total - aligned));
        }
        record.row(&[
            ("n", n.to_string()),
            ("accuracy_s", figure(accuracy)),
            ("nn_raw_s", figure(raw)),
            ("nn_aligned_s", figure(aligned)),
            ("nn_aligned_estimated", estimated.to_string()),
            ("nn_interp_s", figure(interp)),
            ("novelty_s", figure(novelty)),
            ("total_s", figure(total)),
        ]);
        rows.push((n, [accuracy, raw, aligned, interp, novelty, total]));
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.0 > first.0
    {
        let growth: Vec<String> = ["accuracy", "nn (raw)", "nn (aligned)", "nn (interp)", "novelty", "total"]
            .iter()
            .enumerate()
            .map(|(k, name)| format!("{name} n^{:.2}", (last.1[k] / first.1[k]).ln() / (last.0 as f64 / first.0 as f64).ln()))
            .collect();
        record.line(format!("growth from n = {} to {}: {}", first.0, last.0, growth.join(", ")));
    }
    record.save(&args.out)?;
    Ok(0)
}
