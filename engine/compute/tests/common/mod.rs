//! What the compute core's test files share.

use weightlab_compute::zoo::train::{self, EngineChoice};
use weightlab_compute::{Arch, Dataset};

/// K models trained `steps` steps by `engine` and by the autodiff tape, from the same
/// initialisation and data order: the largest difference of any weight, relative to the
/// largest weight.
pub fn engines_differ(engine: EngineChoice, data: &Dataset, arch: &Arch, recipe: &weightlab_manifest::TrainSpec, freeze: Option<&str>, steps: usize) -> f32 {
    let seeds = [3u64, 5, 8];
    let pools = vec![(0..data.train.len() as i64).collect::<Vec<_>>(); seeds.len()];
    let mut native = train::Trainer::with_engine(arch, data, recipe, &seeds, pools.clone(), engine);
    let mut tape = train::Trainer::with_engine(arch, data, recipe, &seeds, pools, EngineChoice::Tape);
    for trainer in [&mut native, &mut tape] {
        for _ in 0..steps {
            trainer.step();
        }
        if let Some(prefix) = freeze {
            trainer.freeze_except(&[prefix.to_string()]).unwrap();
            trainer.restart_optimizer(recipe.lr / 2.0);
            for _ in 0..steps {
                trainer.step();
            }
        }
    }
    let (a, b) = (native.weights(), tape.weights());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max) / scale
}
