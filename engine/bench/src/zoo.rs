//! `weightlab bench zoo`: batched zoo training against PyTorch (`benches/zoo.py`).

use std::time::Instant;

use anyhow::Result;

use weightlab_compute::arch::bench_nets::{DECLARED, declared};

use crate::record::{Record, figure};
use crate::references::{Scripts, require_python};
use crate::{BenchZooArgs, cores, median};

/// Multiply-add FLOPs (2 per MAC) of one example's forward pass.
fn forward_flops(kind: &str, mlp_hidden: usize) -> f64 {
    2.0 * match kind {
        // 784 → hidden → 10.
        "mlp" => 784 * mlp_hidden + mlp_hidden * 10,
        // LeNet-5: conv 6@5x5 padded (28² outputs), conv 16@5x5 over 6 (10²), FC 400→120→84→10.
        "lenet5" | "lenet5-gelu-dropout" => 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10,
        // ResNet-small: stem 8@3x3 (28²); block 1, two 8@3x3 over 8 (14²); block 2, 16@3x3 over
        // 8 and over 16 and the 1x1 shortcut (7²); FC 16→10.
        "resnet-small" => 28 * 28 * 8 * 9 + 2 * 14 * 14 * 8 * 72 + 7 * 7 * 16 * (72 + 144 + 8) + 16 * 10,
        // CNN-s: conv 8@5x5 (24² outputs), conv 6@5x5 over 8 channels (8²), conv 4@2x2 over 6 (3²), FC 36→20→10.
        _ => 24 * 24 * 8 * 25 + 8 * 8 * 6 * 200 + 3 * 3 * 4 * 24 + 36 * 20 + 20 * 10,
    } as f64
}

/// The networks `--arch` names, in the table's order: a name, `both` (the two presets), `all`,
/// or several of these separated by commas (one run, one ceiling measurement).
fn wanted<'a>(arch: &str, names: &[&'a str]) -> Result<Vec<&'a str>> {
    let mut chosen = Vec::new();
    for part in arch.split(',').map(str::trim) {
        let picked: Vec<&str> = match part {
            "all" => names.to_vec(),
            "both" => names.iter().copied().filter(|n| matches!(*n, "mlp" | "cnn")).collect(),
            _ => names.iter().copied().filter(|n| *n == part).collect(),
        };
        if picked.is_empty() {
            anyhow::bail!("--arch {arch}: `{part}` is not a network; expected one of {}, both (mlp and cnn), all, or several separated by commas", names.join(", "));
        }
        chosen.extend(picked);
    }
    Ok(names.iter().copied().filter(|n| chosen.contains(n)).collect())
}

/// `weightlab bench zoo`: batched zoo training against PyTorch's per-model loop, vmap and a
/// hand-batched version, with GFLOP/s against the machine's SGEMM rate.
pub fn zoo(args: &BenchZooArgs) -> Result<i32> {
    use weightlab_manifest::{ArchSpec, DataSpec, TrainSpec};
    // A wrong `--arch` fails at once, before anything is loaded or measured.
    let mut archs = vec![("mlp", ArchSpec::Mlp { hidden: vec![args.mlp_hidden], activation: Default::default() }), ("cnn", ArchSpec::CnnS {})];
    for &(name, text) in DECLARED {
        archs.push((name, declared(text).map_err(anyhow::Error::msg)?));
    }
    let names: Vec<&str> = archs.iter().map(|(kind, _)| *kind).collect();
    let wanted = wanted(&args.arch, &names)?;
    archs.retain(|(kind, _)| wanted.contains(kind));
    let spec: DataSpec = toml::from_str(&format!("source = \"fashion-mnist\"\ntrain_subset = {}\ntest_subset = 100", args.train))?;
    let data = weightlab_compute::data::load(&spec, std::path::Path::new("."))?;
    let recipe = TrainSpec { epochs: args.epochs, batch_size: args.batch, lr: 1e-3, ..TrainSpec::default() };
    let py = require_python()?;
    let scripts = Scripts::new()?;
    let mut record = Record::default();
    record.line(format!("{} models, {} Fashion-MNIST examples, {} epoch(s), batch {}, Adam; {} cores; median of {} runs", args.models, args.train, args.epochs, args.batch, cores(), args.repeats));
    let ceiling = scripts.measure(&py, "zoo.py", &["mlp", "1", "1", "1", "1", "sgemm"].map(String::from), &[])?;
    record.machine();
    record.line(format!("ceiling: this machine's SGEMM (2048², PyTorch, best of 10) runs at {ceiling:.0} GFLOP/s"));
    record.line(format!("{:<12} {:>20} {:>20} {:>20} {:>20}  {:>9} {:>9} {:>9}", "arch", "weightlab", "torch loop", "torch vmap", "torch hand-batched", "vs loop", "vs vmap", "vs batch"));
    for (kind, arch_spec) in archs {
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
                let reference = [kind.to_string(), args.models.to_string(), args.train.to_string(), args.epochs.to_string(), args.batch.to_string(), mode.to_string(), args.mlp_hidden.to_string()];
                out.push(scripts.measure(&py, "zoo.py", &reference, &[])?);
            }
        }
        let (w, l, v, b) = (median(ours), median(looped), median(vmapped), median(batched));
        // Training FLOPs: forward + backward ≈ 3 × the forward's multiply-adds × 2, per example
        // seen (every model sees `steps × batch` examples per epoch).
        let forward = forward_flops(kind, args.mlp_hidden);
        let examples = (args.train / args.batch * args.batch * args.epochs * args.models) as f64;
        let gflop = 3.0 * forward * examples / 1e9;
        // A reference that does not apply (vmap over BatchNorm) is NaN.
        let cell = |s: f64| if s.is_nan() { "n/a".to_string() } else { format!("{:.1} m/s {:>5.1} GF/s", args.models as f64 / s, gflop / s) };
        let kind = if kind == "mlp" { format!("mlp-{}", args.mlp_hidden) } else { kind.to_string() };
        let ratio = |s: f64| if s.is_nan() { "n/a".to_string() } else { format!("{:.2}x", s / w) };
        record.line(format!("{kind:<12} {:>20} {:>20} {:>20} {:>20}  {:>9} {:>9} {:>9}", cell(w), cell(l), cell(v), cell(b), ratio(l), ratio(v), ratio(b)));
        record.line(format!(
            "             {gflop:.1} GFLOP of training; weightlab at {:.0} % of the SGEMM ceiling, hand-batched PyTorch at {:.0} %",
            100.0 * gflop / w / ceiling,
            100.0 * gflop / b / ceiling
        ));
        let rate = |s: f64| figure(args.models as f64 / s);
        record.row(&[
            ("arch", kind.clone()),
            ("models", args.models.to_string()),
            ("repeats", args.repeats.to_string()),
            ("sgemm_gflops", figure(ceiling)),
            ("weightlab", rate(w)),
            ("weightlab_gflops", figure(gflop / w)),
            ("loop", rate(l)),
            ("vmap", rate(v)),
            ("batched", rate(b)),
            ("vs_loop", figure(l / w)),
            ("vs_vmap", figure(v / w)),
            ("vs_batched", figure(b / w)),
            ("weightlab_ceiling_pct", figure(100.0 * gflop / w / ceiling)),
            ("batched_ceiling_pct", figure(100.0 * gflop / b / ceiling)),
        ]);
    }
    record.save(&args.out)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::wanted;

    const NAMES: [&str; 5] = ["mlp", "cnn", "lenet5", "lenet5-gelu-dropout", "resnet-small"];

    #[test]
    fn arch_names_a_network_the_presets_all_or_a_comma_list_in_table_order() {
        assert_eq!(wanted("cnn", &NAMES).unwrap(), ["cnn"]);
        assert_eq!(wanted("both", &NAMES).unwrap(), ["mlp", "cnn"]);
        assert_eq!(wanted("all", &NAMES).unwrap(), NAMES);
        assert_eq!(wanted("resnet-small, mlp,resnet-small", &NAMES).unwrap(), ["mlp", "resnet-small"]);
        let e = wanted("mlp,lenet6", &NAMES).unwrap_err().to_string();
        assert!(e.contains("`lenet6` is not a network") && e.contains("mlp, cnn, lenet5"), "{e}");
    }
}
