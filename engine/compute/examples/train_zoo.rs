//! Times weightlab's own training of a zoo on this machine, without the PyTorch references of
//! `weightlab bench zoo`: a quick loop for profiling an engine (`perf record` on this example).
//!
//! ```sh
//! cargo run --release -p weightlab-compute --example train_zoo -- cnn 64 3
//! ```
//! Arguments: the architecture (`mlp`, `cnn`, or a declared bench network: `lenet5`,
//! `lenet5-gelu-dropout`, `resnet-small`, as `bench_nets::DECLARED` names them), the number of models and of repeats,
//! and `tape` to train on the autodiff tape instead of the fastest engine; the zoo learns 2,000
//! Fashion-MNIST examples for one epoch in batches of 32 with Adam, as in the bench.

use std::time::Instant;

use weightlab_compute::arch::bench_nets::{DECLARED, named};
use weightlab_compute::zoo::train::{EngineChoice, MODELS_PER_BATCH, Trainer, train_models};
use weightlab_manifest::{ArchSpec, DataSpec, TrainSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().map(String::as_str).unwrap_or("cnn");
    let models: u64 = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(64);
    let repeats: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(3);
    let tape = args.get(3).is_some_and(|a| a == "tape");
    let spec: DataSpec = toml::from_str("source = \"fashion-mnist\"\ntrain_subset = 2000\ntest_subset = 100")?;
    let data = weightlab_compute::data::load(&spec, std::path::Path::new("."))?;
    let arch_spec = match kind {
        "mlp" => ArchSpec::Mlp { hidden: vec![32], activation: Default::default() },
        "cnn" => ArchSpec::CnnS {},
        other => match named(other) {
            Some(spec) => spec?,
            None => return Err(format!("{other}: expected mlp, cnn or one of {}", DECLARED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")).into()),
        },
    };
    let arch = weightlab_compute::Arch::new(&arch_spec, &data)?;
    let recipe = TrainSpec { epochs: 1, batch_size: 32, lr: 1e-3, ..TrainSpec::default() };
    let seeds: Vec<u64> = (0..models).collect();
    println!("{}", weightlab_compute::simd::describe());
    let mut times = Vec::new();
    // A digest of the trained weights' bits (FNV-1a), so a change meant to keep the bits can
    // be checked against the build before it.
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..repeats {
        let t = Instant::now();
        let mut trained = Vec::new();
        for chunk in seeds.chunks(MODELS_PER_BATCH) {
            if tape {
                let pools = vec![(0..data.train.len() as i64).collect::<Vec<_>>(); chunk.len()];
                let mut trainer = Trainer::with_engine(&arch, &data, &recipe, chunk, pools, EngineChoice::Tape);
                trainer.epoch();
                trained.push((1, trainer.weights()));
            } else {
                trained.extend(train_models(&arch, &data, &recipe, chunk, 1, None));
            }
        }
        times.push(t.elapsed().as_secs_f64());
        digest = 0xcbf2_9ce4_8422_2325;
        for value in trained.iter().flat_map(|(_, weights)| weights) {
            digest = (digest ^ u64::from(value.to_bits())).wrapping_mul(0x0100_0000_01b3);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!("{kind}: {models} models in {median:.3} s (median of {repeats}): {:.1} models/s; all runs {times:.3?}; weights' digest {digest:016x}", models as f64 / median);
    Ok(())
}
