//! Small classification datasets made in code, so tests need no package: Gaussian blobs, two
//! moons and two circles in 2-D, and 1-D signals. A quarter as many test examples as training examples are
//! drawn.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Split;

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // Box-Muller: enough for data generation, and stable across rand versions.
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn draw(n: usize, rng: &mut ChaCha8Rng, mut example: impl FnMut(&mut ChaCha8Rng, usize) -> ([f32; 2], usize)) -> Split {
    let mut split = Split::default();
    for i in 0..n {
        let (x, y) = example(rng, i);
        split.x.extend_from_slice(&x);
        split.y.push(y as f32);
    }
    split
}

/// `classes` Gaussian blobs with centres on a circle of radius 2 and deviation `noise`.
pub fn blobs(classes: usize, samples: usize, noise: f64, seed: u64) -> (Split, Split) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = noise as f32;
    let mut example = move |rng: &mut ChaCha8Rng, i: usize| {
        let c = i % classes;
        let angle = std::f32::consts::TAU * c as f32 / classes as f32;
        ([2.0 * angle.cos() + noise * normal(rng), 2.0 * angle.sin() + noise * normal(rng)], c)
    };
    let train = draw(samples, &mut rng, &mut example);
    let test = draw(samples.div_ceil(4), &mut rng, &mut example);
    (train, test)
}

/// Two interleaving half circles with Gaussian jitter `noise`.
pub fn moons(samples: usize, noise: f64, seed: u64) -> (Split, Split) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = noise as f32;
    let mut example = move |rng: &mut ChaCha8Rng, i: usize| {
        let c = i % 2;
        let t: f32 = rng.random_range(0.0..std::f32::consts::PI);
        let (x, y) = if c == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
        ([x + noise * normal(rng), y + noise * normal(rng)], c)
    };
    let train = draw(samples, &mut rng, &mut example);
    let test = draw(samples.div_ceil(4), &mut rng, &mut example);
    (train, test)
}

/// Two concentric circles: class c lies on radius c + 1, its radius jittered by `noise`.
pub fn circles(samples: usize, noise: f64, seed: u64) -> (Split, Split) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = noise as f32;
    let mut example = move |rng: &mut ChaCha8Rng, i: usize| {
        let c = i % 2;
        let t: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let r = (c + 1) as f32 + noise * normal(rng);
        ([r * t.cos(), r * t.sin()], c)
    };
    let train = draw(samples, &mut rng, &mut example);
    let test = draw(samples.div_ceil(4), &mut rng, &mut example);
    (train, test)
}

/// Samples per signal.
pub const SIGNAL_LENGTH: usize = 32;

/// Noisy sinusoids of random phase and amplitude; class c has a frequency in band c (1 to
/// `classes` cycles per signal, ± a quarter cycle), with Gaussian noise `noise`.
pub fn signals(classes: usize, samples: usize, noise: f64, seed: u64) -> (Split, Split) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = noise as f32;
    let draw = |n: usize, rng: &mut ChaCha8Rng| {
        let mut split = Split::default();
        for i in 0..n {
            let c = i % classes;
            let freq = (c + 1) as f32 + rng.random_range(-0.25..0.25);
            let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
            let amp: f32 = rng.random_range(0.5..1.5);
            for t in 0..SIGNAL_LENGTH {
                let x = std::f32::consts::TAU * freq * t as f32 / SIGNAL_LENGTH as f32 + phase;
                split.x.push(amp * x.sin() + noise * normal(rng));
            }
            split.y.push(c as f32);
        }
        split
    };
    let train = draw(samples, &mut rng);
    let test = draw(samples.div_ceil(4), &mut rng);
    (train, test)
}
