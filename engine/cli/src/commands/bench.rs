//! `weightlab bench plugin`: the cost of the WebAssembly boundary. The same autoencoder training
//! loop runs (1) as the `bench-autoencoder` plugin, (2) natively through the same host tensor
//! API, (3) in PyTorch (`benches/autoencoder.py`, same torch install), interleaved, several
//! times; the medians and their ratios are printed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use weightlab_host::{Limits, ParamView, Plugin, Runtime, ZooView};

use crate::cli::BenchPluginArgs;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn python() -> Option<String> {
    std::env::var("WEIGHTLAB_TORCH_PYTHON").ok().or_else(|| {
        let home = std::env::var("HOME").ok()?;
        let p = PathBuf::from(home).join(".cache/weightlab/torch-2.9.0/bin/python");
        p.is_file().then(|| p.display().to_string())
    })
}

/// A zoo view of `rows` checkpoints of `p` parameters for benchmark plugins.
fn bench_zoo(p: usize) -> ZooView {
    ZooView {
        name: "bench".into(),
        arch: "none".into(),
        layout: vec![ParamView { name: "w".into(), shape: vec![p as u32], offset: 0 }],
        parameters: p as u32,
        checkpoints: Vec::new(),
        dataset: String::new(),
        classes: 0,
        class_names: Vec::new(),
        sources: Vec::new(),
    }
}

pub fn plugin(args: &BenchPluginArgs) -> Result<i32> {
    let (rows, p, hidden, steps) = (args.rows, args.params, args.hidden, args.steps);
    let path = weightlab_pipeline::plugins::source_dist_dir().join("bench/bench-autoencoder.wasm");
    if !path.is_file() {
        return Err(anyhow!("{} is missing: run `make plugins`", path.display()));
    }
    let weights: Vec<f32> = (0..rows * p).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.2).collect();
    let runtime = Runtime::new(Runtime::default_cache_dir().as_deref())?;
    let view = bench_zoo(p);
    let config = serde_json::json!({ "steps": steps, "hidden": hidden });
    let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/autoencoder.py"));
    let py = python();
    println!("autoencoder {rows}×{p} → {hidden} → {p}, {steps} Adam steps, {} repeats, {} cores", args.repeats, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let (mut wasm, mut native, mut torch) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..args.repeats {
        let mut plugin = Plugin::load(&runtime, "bench-autoencoder", &weightlab_host::PluginCode::read(&path)?, Limits { timeout: Duration::from_secs(3600), ..Limits::default() }, 0)?;
        let t = Instant::now();
        plugin.fit(&view, &weights, &Default::default(), &config, 0)?;
        wasm.push(t.elapsed().as_secs_f64());
        native.push(weightlab_host::bench::native_autoencoder(&weights, rows, p, steps, hidden)?.as_secs_f64());
        if let Some(py) = &py {
            let out = Command::new(py).arg(&script).args([rows, p, hidden, steps].map(|v| v.to_string())).output().context("running benches/autoencoder.py")?;
            let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|_| anyhow!("benches/autoencoder.py failed: {}", String::from_utf8_lossy(&out.stderr)))?;
            torch.push(secs);
        }
        println!("  repeat {}: plugin {:.3}s, native {:.3}s{}", r + 1, wasm[r], native[r], torch.get(r).map(|t| format!(", pytorch {t:.3}s")).unwrap_or_default());
    }
    let (w, n) = (median(wasm), median(native));
    println!("median: plugin {w:.3}s, native {n:.3}s → plugin/native = {:.3}", w / n);
    if !torch.is_empty() {
        let t = median(torch);
        println!("        pytorch {t:.3}s → plugin/pytorch = {:.3}, native/pytorch = {:.3}", w / t, n / t);
    } else {
        println!("        (no PyTorch reference: torch venv not found)");
    }
    Ok(0)
}

/// `weightlab bench pdiff`: the `pdiff` plugin's fit (autoencoder + latent DDPM, `steps` each)
/// against `benches/pdiff.py`, the same training in PyTorch, interleaved.
pub fn pdiff(args: &crate::cli::BenchPdiffArgs) -> Result<i32> {
    let path = weightlab_pipeline::plugins::source_dist_dir().join("pdiff.wasm");
    if !path.is_file() {
        return Err(anyhow!("{} is missing: run `make plugins`", path.display()));
    }
    let py = python().ok_or_else(|| anyhow!("the torch venv is missing: run `make`"))?;
    let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/pdiff.py"));
    let (rows, p, steps) = (args.rows, args.params, args.steps);
    // Checkpoints around a common point, like snapshots of continued training.
    let weights: Vec<f32> = (0..rows * p).map(|i| ((i % p * 7919 % 1000) as f32 / 1000.0 - 0.5) + ((i * 104_729 % 997) as f32 / 997.0 - 0.5) * 0.1).collect();
    let runtime = Runtime::new(Runtime::default_cache_dir().as_deref())?;
    let config = serde_json::json!({ "ae_steps": steps, "ddpm_steps": steps });
    println!(
        "p-diff fit: {rows} checkpoints × {p} parameters, {steps} autoencoder + {steps} DDPM steps, {} repeats, {} cores",
        args.repeats,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let (mut ours, mut torch) = (Vec::new(), Vec::new());
    for r in 0..args.repeats {
        let mut plugin = Plugin::load(&runtime, "pdiff", &weightlab_host::PluginCode::read(&path)?, Limits { timeout: Duration::from_secs(3600), ..Limits::default() }, 0)?;
        let t = Instant::now();
        plugin.fit(&bench_zoo(p), &weights, &Default::default(), &config, 0)?;
        ours.push(t.elapsed().as_secs_f64());
        let out = Command::new(&py).arg(&script).args([rows, p, steps].map(|v| v.to_string())).output().context("running benches/pdiff.py")?;
        let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|_| anyhow!("benches/pdiff.py failed: {}", String::from_utf8_lossy(&out.stderr)))?;
        torch.push(secs);
        println!("  repeat {}: plugin {:.3}s, pytorch {:.3}s", r + 1, ours[r], torch[r]);
    }
    let (w, t) = (median(ours), median(torch));
    let per_step = |s: f64| s / (2 * steps) as f64 * 1e3;
    println!("median: plugin {w:.3}s ({:.2} ms/step), pytorch {t:.3}s ({:.2} ms/step) → plugin/pytorch = {:.3}", per_step(w), per_step(t), w / t);
    Ok(0)
}

/// Multiply-add FLOPs (2 per MAC) of one example's forward pass.
fn forward_flops(arch: &weightlab_manifest::ArchSpec, mlp_hidden: usize) -> f64 {
    match arch {
        // 784 → hidden → 10.
        weightlab_manifest::ArchSpec::Mlp { .. } => 2.0 * (784 * mlp_hidden + mlp_hidden * 10) as f64,
        // LeNet-5: conv 6@5x5 padded (28² outputs), conv 16@5x5 over 6 (10²), FC 400→120→84→10.
        weightlab_manifest::ArchSpec::Sequential { .. } => 2.0 * (28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10) as f64,
        // conv 8@5x5 (24² outputs), conv 6@5x5 over 8 channels (8²), conv 4@2x2 over 6 (3²), FC 36→20→10.
        _ => 2.0 * (24 * 24 * 8 * 25 + 8 * 8 * 6 * 200 + 3 * 3 * 4 * 24 + 36 * 20 + 20 * 10) as f64,
    }
}

/// LeNet-5 with BatchNorm, declared as a manifest does (`--arch lenet5`): a declared network
/// trains on the autodiff tape.
const LENET5: &str = r#"arch = { kind = "sequential", layers = [
  { type = "conv2d", out = 6, kernel = 5, padding = 2 }, { type = "batchnorm2d" }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "conv2d", out = 16, kernel = 5 }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "flatten" }, { type = "linear", out = 120 }, { type = "relu" }, { type = "linear", out = 84 }, { type = "relu" }, { type = "linear", out = 10 },
] }"#;

/// `weightlab bench zoo`: batched zoo training against PyTorch's per-model loop, vmap and a
/// hand-batched version, with GFLOP/s against the machine's SGEMM rate.
pub fn zoo(args: &crate::cli::BenchZooArgs) -> Result<i32> {
    use weightlab_manifest::{ArchSpec, DataSpec, TrainSpec};
    let spec: DataSpec = toml::from_str(&format!("source = \"fashion-mnist\"\ntrain_subset = {}\ntest_subset = 100", args.train))?;
    let data = weightlab_compute::data::load(&spec, std::path::Path::new("."))?;
    let recipe = TrainSpec { epochs: args.epochs, batch_size: args.batch, lr: 1e-3, ..TrainSpec::default() };
    let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/zoo.py"));
    let py = python().ok_or_else(|| anyhow!("the torch venv is missing: run `make`"))?;
    println!(
        "{} models, {} Fashion-MNIST examples, {} epoch(s), batch {}, Adam; {} cores; median of {} runs",
        args.models,
        args.train,
        args.epochs,
        args.batch,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.repeats
    );
    let sgemm = |py: &str| -> Result<f64> {
        let o = Command::new(py).arg(&script).args(["mlp", "1", "1", "1", "1", "sgemm"]).output()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().map_err(|_| anyhow!("benches/zoo.py sgemm failed: {}", String::from_utf8_lossy(&o.stderr)))
    };
    let ceiling = sgemm(&py)?;
    println!("ceiling: this machine's SGEMM (2048², PyTorch, best of 10) runs at {ceiling:.0} GFLOP/s");
    println!("{:<7} {:>20} {:>20} {:>20} {:>20}  {:>9} {:>9} {:>9}", "arch", "weightlab", "torch loop", "torch vmap", "torch hand-batched", "vs loop", "vs vmap", "vs batch");
    let lenet: ArchSpec = toml::from_str::<toml::Table>(LENET5)?.get("arch").cloned().ok_or_else(|| anyhow!("LeNet-5's declaration"))?.try_into()?;
    for (kind, arch_spec) in [("mlp", ArchSpec::Mlp { hidden: vec![args.mlp_hidden], activation: Default::default() }), ("cnn", ArchSpec::CnnS {}), ("lenet5", lenet)] {
        // `both` is the two presets; a declared network is asked for by name.
        if !(args.arch == kind || (args.arch == "both" && kind != "lenet5")) {
            continue;
        }
        let arch = weightlab_compute::Arch::new(&arch_spec, &data).expect("a preset always fits");
        let seeds: Vec<u64> = (0..args.models as u64).collect();
        let (mut ours, mut looped, mut vmapped, mut batched) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.repeats {
            let t = Instant::now();
            for chunk in seeds.chunks(weightlab_compute::zoo::train::MODELS_PER_BATCH) {
                weightlab_compute::zoo::train::train_models(&arch, &data, &recipe, chunk, 1, None);
            }
            ours.push(t.elapsed().as_secs_f64());
            for (mode, out) in [("loop", &mut looped), ("vmap", &mut vmapped), ("batched", &mut batched)] {
                // glibc's default mmap threshold costs small-tensor code an mmap and page
                // faults per step; give PyTorch the heap settings our workers use.
                let o = Command::new(&py)
                    .arg(&script)
                    .args([kind.to_string(), args.models.to_string(), args.train.to_string(), args.epochs.to_string(), args.batch.to_string(), mode.to_string(), args.mlp_hidden.to_string()])
                    .env("MALLOC_MMAP_THRESHOLD_", (32u64 << 20).to_string())
                    .env("MALLOC_TRIM_THRESHOLD_", (256u64 << 20).to_string())
                    .output()?;
                let secs: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().map_err(|_| anyhow!("benches/zoo.py {mode} failed: {}", String::from_utf8_lossy(&o.stderr)))?;
                out.push(secs);
            }
        }
        let (w, l, v, b) = (median(ours), median(looped), median(vmapped), median(batched));
        // Training FLOPs: forward + backward ≈ 3 × the forward's multiply-adds × 2, per example
        // seen (every model sees `steps × batch` examples per epoch).
        let forward = forward_flops(&arch_spec, args.mlp_hidden);
        let examples = (args.train / args.batch * args.batch * args.epochs * args.models) as f64;
        let gflop = 3.0 * forward * examples / 1e9;
        // A reference that does not apply (vmap over BatchNorm) is NaN.
        let cell = |s: f64| if s.is_nan() { "n/a".to_string() } else { format!("{:.1} m/s {:>5.1} GF/s", args.models as f64 / s, gflop / s) };
        let kind = if kind == "mlp" { format!("mlp-{}", args.mlp_hidden) } else { kind.to_string() };
        println!("{kind:<7} {:>20} {:>20} {:>20} {:>20}  {:>8.2}x {:>8.2}x {:>8.2}x", cell(w), cell(l), cell(v), cell(b), l / w, v / w, b / w);
        println!("        {gflop:.1} GFLOP of training; weightlab at {:.0} % of the SGEMM ceiling, hand-batched PyTorch at {:.0} %", 100.0 * gflop / w / ceiling, 100.0 * gflop / b / ceiling);
    }
    Ok(0)
}

/// `weightlab bench metrics`: what the evaluation stage of a memorization study costs when n
/// generated models meet n training checkpoints. The checkpoints are 16 Fashion-MNIST MLPs
/// trained for an epoch, each repeated with small noise; the generated models are those with
/// more noise and their hidden units permuted (so alignment has work to do). The training
/// checkpoints' test predictions come from the zoo stage in a run and are made untimed here.
pub fn metrics(args: &crate::cli::BenchMetricsArgs) -> Result<i32> {
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
    println!("n generated MLPs 784→{}→10 ({p} parameters) against n training checkpoints, {} Fashion-MNIST test examples; {} threads", args.hidden, data.test.len(), tch::get_num_threads());
    println!("{:>6} {:>10} {:>10} {:>13} {:>10} {:>9}   {:>9}", "n", "accuracy", "nn (raw)", "nn (aligned)", "novelty", "total", "(setup)");
    let mut rows: Vec<(usize, [f64; 5])> = Vec::new();
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
        let novelty = timed(&mut || drop(metrics::behaviour(&predictions, &reference_predictions, &labels, false)));
        let total = accuracy + raw + aligned + novelty;
        let aligned_cell = if estimated { format!("~{aligned:.0}s (n²)") } else { format!("{aligned:.2}s") };
        println!("{n:>6} {accuracy:>9.2}s {raw:>9.2}s {aligned_cell:>13} {novelty:>9.2}s {total:>8.2}s   {setup:>8.1}s");
        if estimated {
            println!("{:>6} without the aligned distance: {:.2}s", "", total - aligned);
        }
        rows.push((n, [accuracy, raw, aligned, novelty, total]));
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.0 > first.0
    {
        let growth: Vec<String> = ["accuracy", "nn (raw)", "nn (aligned)", "novelty", "total"]
            .iter()
            .enumerate()
            .map(|(k, name)| format!("{name} n^{:.2}", (last.1[k] / first.1[k]).ln() / (last.0 as f64 / first.0 as f64).ln()))
            .collect();
        println!("growth from n = {} to {}: {}", first.0, last.0, growth.join(", "));
    }
    Ok(0)
}
