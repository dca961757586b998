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
        let mut plugin = Plugin::load(&runtime, "bench-autoencoder", &path, Limits { timeout: Duration::from_secs(3600), ..Limits::default() }, 0)?;
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
        let mut plugin = Plugin::load(&runtime, "pdiff", &path, Limits { timeout: Duration::from_secs(3600), ..Limits::default() }, 0)?;
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
        // conv 8@5x5 (24² outputs), conv 6@5x5 over 8 channels (8²), conv 4@2x2 over 6 (3²), FC 36→20→10.
        _ => 2.0 * (24 * 24 * 8 * 25 + 8 * 8 * 6 * 200 + 3 * 3 * 4 * 24 + 36 * 20 + 20 * 10) as f64,
    }
}

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
    for (kind, arch_spec) in [("mlp", ArchSpec::Mlp { hidden: vec![args.mlp_hidden], activation: Default::default() }), ("cnn", ArchSpec::CnnS {})] {
        if args.arch != "both" && args.arch != kind {
            continue;
        }
        let arch = weightlab_compute::Arch::new(&arch_spec, &data);
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
        let cell = |s: f64| format!("{:.1} m/s {:>5.1} GF/s", args.models as f64 / s, gflop / s);
        let kind = if kind == "mlp" { format!("mlp-{}", args.mlp_hidden) } else { kind.to_string() };
        println!("{kind:<7} {:>20} {:>20} {:>20} {:>20}  {:>8.2}x {:>8.2}x {:>8.2}x", cell(w), cell(l), cell(v), cell(b), l / w, v / w, b / w);
        println!("        {gflop:.1} GFLOP of training; weightlab at {:.0} % of the SGEMM ceiling, hand-batched PyTorch at {:.0} %", 100.0 * gflop / w / ceiling, 100.0 * gflop / b / ceiling);
    }
    Ok(0)
}
