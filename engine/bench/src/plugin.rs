//! `weightlab bench plugin`: the cost of the WebAssembly boundary. The same autoencoder training
//! loop runs (1) as the `bench-autoencoder` plugin, (2) natively through the same host tensor
//! API, (3) in PyTorch (`benches/autoencoder.py`, same torch install), interleaved, several
//! times; the medians and their ratios are printed.

use std::time::{Duration, Instant};

use anyhow::Result;
use weightlab_host::{Limits, ParamView, Plugin, Runtime, ZooView};

use crate::record::{Record, figure};
use crate::references::{Scripts, bench_plugin, builtin_plugin, python, require_python};
use crate::{BenchDiffusionArgs, BenchFitArgs, BenchGeneratorsArgs, BenchIgpgArgs, BenchPluginArgs, cores, median};

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
    let code = bench_plugin("bench-autoencoder")?;
    let scripts = Scripts::new()?;
    let weights: Vec<f32> = (0..rows * p).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.2).collect();
    let runtime = Runtime::new(Runtime::default_cache_dir().as_deref())?;
    let view = bench_zoo(p);
    let config = serde_json::json!({ "steps": steps, "hidden": hidden });
    let py = python();
    let mut record = Record::default();
    record.machine();
    record.line(format!("autoencoder {rows}×{p} → {hidden} → {p}, {steps} Adam steps, {} repeats, {} cores", args.repeats, cores()));
    let (mut wasm, mut native, mut torch) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..args.repeats {
        let mut plugin = Plugin::load(&runtime, "bench-autoencoder", &code, Limits { timeout: Duration::from_secs(3600), ..Limits::default() }, 0)?;
        let t = Instant::now();
        plugin.fit(&view, &weights, &Default::default(), &config, 0)?;
        wasm.push(t.elapsed().as_secs_f64());
        native.push(weightlab_host::bench::native_autoencoder(&weights, rows, p, steps, hidden)?.as_secs_f64());
        if let Some(py) = &py {
            torch.push(scripts.measure(py, "autoencoder.py", &[rows, p, hidden, steps].map(|v| v.to_string()), &[])?);
        }
        record.line(format!("  repeat {}: plugin {:.3}s, native {:.3}s{}", r + 1, wasm[r], native[r], torch.get(r).map(|t| format!(", pytorch {t:.3}s")).unwrap_or_default()));
    }
    let (w, n) = (median(wasm), median(native));
    record.line(format!("median: plugin {w:.3}s, native {n:.3}s → plugin/native = {:.3}", w / n));
    let t = median(torch);
    if t.is_nan() {
        record.line("        (no PyTorch reference: torch venv not found)");
    } else {
        record.line(format!("        pytorch {t:.3}s → plugin/pytorch = {:.3}, native/pytorch = {:.3}", w / t, n / t));
    }
    record.row(&[
        ("bench", "plugin".into()),
        ("repeats", args.repeats.to_string()),
        ("plugin_s", figure(w)),
        ("native_s", figure(n)),
        ("pytorch_s", figure(t)),
        ("plugin_native", figure(w / n)),
        ("plugin_pytorch", figure(w / t)),
    ]);
    record.save(&args.out)?;
    Ok(0)
}

/// `weightlab bench pdiff`: the `pdiff` plugin's fit (autoencoder + latent DDPM, `steps` each)
/// against `benches/pdiff.py`, the same training in PyTorch, interleaved.
pub fn pdiff(args: &BenchFitArgs) -> Result<i32> {
    run(&[pdiff_fit(args)], &args.out)
}

fn pdiff_fit(args: &BenchFitArgs) -> Fit {
    let steps = args.steps;
    let about = format!("p-diff fit: {} checkpoints × {} parameters, {steps} autoencoder + {steps} DDPM steps", args.rows, args.params);
    Fit::on(args, "pdiff", "pdiff.py", about, serde_json::json!({ "ae_steps": steps, "ddpm_steps": steps }), 2, None)
}

/// `weightlab bench flown`: FLoWN's fit on an ordinary zoo (p-diff's autoencoder, then flow
/// matching in its latent space with a dataset descriptor as the context) as the `flown`
/// plugin, against `benches/flown.py`, interleaved.
pub fn flown(args: &BenchFitArgs) -> Result<i32> {
    run(&[flown_fit(args)], &args.out)
}

fn flown_fit(args: &BenchFitArgs) -> Fit {
    let steps = args.steps;
    let about = format!("FLoWN fit: {} checkpoints × {} parameters, {steps} autoencoder + {steps} flow-matching steps", args.rows, args.params);
    Fit::on(args, "flown", "flown.py", about, serde_json::json!({ "ae_steps": steps, "flow_steps": steps }), 2, None)
}

/// `weightlab bench hyperreps`: Hyper-Representations' fit with its defaults (the MLP
/// autoencoder over the flat weights, then the checkpoints' latents for the KDE) as the
/// `hyperreps` plugin, against `benches/hyperreps.py`, interleaved.
pub fn hyperreps(args: &BenchFitArgs) -> Result<i32> {
    run(&[hyperreps_fit(args)], &args.out)
}

fn hyperreps_fit(args: &BenchFitArgs) -> Fit {
    let about = format!("Hyper-Representations fit: {} checkpoints × {} parameters, {} autoencoder steps (MLP, 256 wide, latent 32)", args.rows, args.params, args.steps);
    Fit::on(args, "hyperreps", "hyperreps.py", about, serde_json::json!({ "steps": args.steps }), 1, None)
}

/// `weightlab bench d2nwg`: D2NWG's fit with its defaults (the weight VAE, then the latent DDPM
/// conditioned on each checkpoint's task through a set encoder; 10 synthetic tasks) as the
/// `d2nwg` plugin, against `benches/d2nwg.py`, interleaved.
pub fn d2nwg(args: &BenchFitArgs) -> Result<i32> {
    run(&[d2nwg_fit(args)], &args.out)
}

fn d2nwg_fit(args: &BenchFitArgs) -> Fit {
    let steps = args.steps;
    let about = format!("D2NWG fit: {} checkpoints × {} parameters of 10 tasks, {steps} VAE + {steps} conditional DDPM steps", args.rows, args.params);
    Fit::on(args, "d2nwg", "d2nwg.py", about, serde_json::json!({ "vae_steps": steps, "diffusion_steps": steps }), 2, Some((10, 64)))
}

/// `weightlab bench igpg`: IGPG's fit with its defaults but tokens of `args.chunk` parameters
/// and the support-set condition (the bench has no instruction embeddings; both are one
/// linear map into the prefix), as the `igpg` plugin, against `benches/igpg.py`, interleaved.
pub fn igpg(args: &BenchIgpgArgs) -> Result<i32> {
    run(&[igpg_fit(args)], &args.out)
}

fn igpg_fit(args: &BenchIgpgArgs) -> Fit {
    let (rows, p, steps, chunk) = (args.rows, args.params, args.steps, args.chunk);
    let about = format!(
        "IGPG fit: {rows} checkpoints × {p} parameters of 10 tasks as {} tokens of {chunk}, {steps} VQ-VAE steps (codebook 512) + {steps} causal-transformer steps (2 × 64, 4 heads)",
        p.div_ceil(chunk.max(1))
    );
    let config = serde_json::json!({ "vq_steps": steps, "ar_steps": steps, "chunk": chunk, "condition": "support" });
    Fit { about, plugin: "igpg", config, script: "igpg.py", script_args: vec![rows, p, steps, chunk], rows, p, steps: 2 * steps, repeats: args.repeats, support: Some((10, 64)) }
}

/// `weightlab bench diffusion`: the weight-space DDPM that HyperDiffusion and G.pt train (the
/// Rust SDK's `WeightDiffusion`: a transformer over weight tokens), as the `hyperdiffusion`
/// plugin, against `benches/diffusion.py`, interleaved.
pub fn diffusion(args: &BenchDiffusionArgs) -> Result<i32> {
    run(&[diffusion_fit(args)], &args.out)
}

fn diffusion_fit(args: &BenchDiffusionArgs) -> Fit {
    let (rows, p, steps) = (args.rows, args.params, args.steps);
    let (token, dim, depth, heads, batch) = (64, 128, 2, 4, 64);
    let about =
        format!("HyperDiffusion / G.pt fit: {rows} checkpoints × {p} parameters as {} tokens of {token}, transformer {depth} × {dim} ({heads} heads), batch {batch}, {steps} steps", p.div_ceil(token));
    let config = serde_json::json!({ "steps": steps, "timesteps": 500, "token_size": token, "dim": dim, "depth": depth, "heads": heads, "batch": batch });
    Fit { about, plugin: "hyperdiffusion", config, script: "diffusion.py", script_args: vec![rows, p, steps, token, dim, depth, heads, batch], rows, p, steps, repeats: args.repeats, support: None }
}

/// `weightlab bench generators`: every generator bench with its own defaults (and `args`'
/// repeats), one after the other, into one record.
pub fn generators(args: &BenchGeneratorsArgs) -> Result<i32> {
    use clap::Parser;
    /// A bench's arguments as its command line's defaults give them.
    #[derive(Parser)]
    struct Defaults<T: clap::Args> {
        #[command(flatten)]
        args: T,
    }
    let fit = |s: &[&str]| Defaults::<BenchFitArgs>::try_parse_from(s).map(|d| d.args);
    let repeats = args.repeats.to_string();
    let base = ["bench", "--repeats", &repeats];
    let fits = [
        pdiff_fit(&fit(&base)?),
        flown_fit(&fit(&base)?),
        hyperreps_fit(&fit(&base)?),
        d2nwg_fit(&fit(&base)?),
        igpg_fit(&Defaults::<BenchIgpgArgs>::try_parse_from(base)?.args),
        diffusion_fit(&Defaults::<BenchDiffusionArgs>::try_parse_from(base)?.args),
    ];
    run(&fits, &args.out)
}

/// Runs `fits` one after the other against their references into one record (the CPU line
/// first), saved where `out` says.
fn run(fits: &[Fit], out: &crate::SaveArgs) -> Result<i32> {
    let mut record = Record::default();
    record.machine();
    let native = if weightlab_host::native::enabled() { "on (the default)" } else { "off" };
    record.line(format!("host native kernels ({}): {native}", weightlab_host::native::SWITCH));
    for fit in fits {
        fit_against_pytorch(fit, &mut record)?;
    }
    record.save(out)?;
    Ok(0)
}

/// A built-in generator's fit and its PyTorch reference, timed side by side.
struct Fit {
    /// What is trained (the header line, before the repeats and cores).
    about: String,
    plugin: &'static str,
    config: serde_json::Value,
    script: &'static str,
    script_args: Vec<usize>,
    rows: usize,
    p: usize,
    /// Optimiser steps in one fit (for the time per step).
    steps: usize,
    repeats: usize,
    /// For generators of task families: each checkpoint's task condition, as (tasks, width)
    /// of synthetic support-set encodings (checkpoint i belongs to task i mod tasks).
    support: Option<(usize, usize)>,
}

impl Fit {
    /// A fit of `stages` stages of `args.steps` steps on `args`' checkpoints, whose reference
    /// takes `ROWS PARAMS STEPS`.
    fn on(args: &BenchFitArgs, plugin: &'static str, script: &'static str, about: String, config: serde_json::Value, stages: usize, support: Option<(usize, usize)>) -> Self {
        let (rows, p, steps) = (args.rows, args.params, args.steps);
        Fit { about, plugin, config, script, script_args: vec![rows, p, steps], rows, p, steps: stages * steps, repeats: args.repeats, support }
    }
}

/// Prints `fit.about`, then runs `fit.plugin`'s fit on synthetic checkpoints and
/// `benches/<fit.script>` in turn, `fit.repeats` times; prints each repeat, the medians per
/// step and their ratio, and adds them to `record` as a row (`bench` = the plugin).
fn fit_against_pytorch(fit: &Fit, record: &mut Record) -> Result<()> {
    record.line(format!("{}, {} repeats, {} cores", fit.about, fit.repeats, cores()));
    let code = builtin_plugin(fit.plugin)?;
    let py = require_python()?;
    let scripts = Scripts::new()?;
    let (rows, p) = (fit.rows, fit.p);
    // Checkpoints around a common point, like snapshots of continued training.
    let weights: Vec<f32> = (0..rows * p).map(|i| ((i % p * 7919 % 1000) as f32 / 1000.0 - 0.5) + ((i * 104_729 % 997) as f32 / 997.0 - 0.5) * 0.1).collect();
    let runtime = Runtime::new(Runtime::default_cache_dir().as_deref())?;
    let script_args: Vec<String> = fit.script_args.iter().map(usize::to_string).collect();
    let support: Vec<f32> = match fit.support {
        Some((tasks, width)) => (0..rows * width).map(|i| ((i / width % tasks * 7 + i % width * 13) % 23) as f32 / 23.0 - 0.5).collect(),
        None => Vec::new(),
    };
    let conditions = weightlab_host::Conditions { task: None, support: fit.support.map(|(_, width)| (&support[..], width)), instruction: None };
    let (mut ours, mut torch) = (Vec::new(), Vec::new());
    for r in 0..fit.repeats {
        let mut plugin = Plugin::load(&runtime, fit.plugin, &code, Limits { timeout: Duration::from_secs(3600), ..Limits::default() }, 0)?;
        let t = Instant::now();
        plugin.fit(&bench_zoo(p), &weights, &conditions, &fit.config, 0)?;
        ours.push(t.elapsed().as_secs_f64());
        torch.push(scripts.measure(&py, fit.script, &script_args, &[])?);
        record.line(format!("  repeat {}: plugin {:.3}s, pytorch {:.3}s", r + 1, ours[r], torch[r]));
    }
    let (w, t) = (median(ours), median(torch));
    let per_step = |s: f64| s / fit.steps.max(1) as f64 * 1e3;
    record.line(format!("median: plugin {w:.3}s ({:.2} ms/step), pytorch {t:.3}s ({:.2} ms/step) → plugin/pytorch = {:.3}", per_step(w), per_step(t), w / t));
    record.row(&[
        ("bench", fit.plugin.to_string()),
        ("rows", rows.to_string()),
        ("params", p.to_string()),
        ("steps", fit.steps.to_string()),
        ("repeats", fit.repeats.to_string()),
        ("plugin_s", figure(w)),
        ("pytorch_s", figure(t)),
        ("plugin_ms_per_step", figure(per_step(w))),
        ("pytorch_ms_per_step", figure(per_step(t))),
        ("ratio", figure(w / t)),
    ]);
    Ok(())
}
