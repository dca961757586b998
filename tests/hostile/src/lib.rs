//! A plugin that misbehaves in the way its config asks, to test the sandbox:
//! `loop` spins forever, `alloc` grows its memory without bound, `panic` panics, `nan`
//! returns NaN weights, `shape` returns the wrong shape, `file` tries to read a file,
//! `tensors` allocates host tensors without bound, `randn-huge` asks for a 10¹²-element
//! tensor, `randn-overflow` for one whose size overflows 64 bits, `zeros-big` and `broadcast`
//! for 4 GiB at once, `graph` builds an autograd chain dropping its handles, `log-flood` logs
//! 150 messages of 16 MiB, `sleep` sleeps 30 s, `attention` attends over 100,000 tokens,
//! `long-op` runs one multi-second matmul, `rust-oom` makes the host allocate past the
//! worker's OS limit, `entropy` mixes clock readings and WASI random bytes into its samples,
//! `echo` logs the checkpoint metadata it sees; `ok` behaves (returns training checkpoints).

use weightlab_sdk::prelude::*;


#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// What to do wrong.
    mode: String,
}

struct Hostile {
    weights: Tensor,
    mode: String,
}

/// What the plugin can learn of time and randomness from WASI, as one number.
fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let started = std::time::Instant::now();
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    log::message(&format!("wall clock {wall} ns since 1970"));
    wall ^ random ^ (started.elapsed().as_nanos() as u64).rotate_left(17)
}

impl Method for Hostile {
    type Config = Config;

    fn describe() -> About {
        About::baseline("hostile", "0.0.1", "Misbehaves on purpose (sandbox tests).")
    }

    fn fit(zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        if config.mode == "echo" {
            log::message(&format!("dataset {} arch {} classes {}", zoo.dataset, zoo.arch, zoo.classes));
            for (i, c) in zoo.checkpoints.iter().enumerate() {
                log::metric("validation-accuracy", i, c.validation_accuracy.unwrap_or(f32::NAN));
                log::metric("validation-loss", i, c.validation_loss);
                log::metric("train-accuracy", i, c.train_accuracy.unwrap_or(f32::NAN));
                log::metric("model", i, c.model as f32);
            }
        }
        Ok(Hostile { weights, mode: config.mode })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let p = self.weights.shape()[1];
        match self.mode.as_str() {
            "loop" => {
                let mut x: u64 = seed;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "nan" => Ok(Tensor::full(&[n, p], f32::NAN)),
            "shape" => Ok(Tensor::zeros(&[n, p + 1])),
            "file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => Err(format!("read a file it must not see: {} bytes", text.len())),
                Err(e) => Err(format!("could not open a file: {e}")),
            },
            "tensors" => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(Tensor::zeros(&[1024, 1024]));
                }
            }
            "randn-huge" => Ok(Tensor::randn(&[1_000_000, 1_000_000], 1)),
            "randn-overflow" => Ok(Tensor::randn(&[4_294_967_295, 4_294_967_295], 1)),
            "zeros-big" => Ok(Tensor::zeros(&[32768, 32768])),
            "broadcast" => Ok(&Tensor::zeros(&[32768, 1]) + &Tensor::zeros(&[1, 32768])),
            "graph" => {
                // Each step keeps only the newest handle; autograd keeps the rest alive.
                let mut x = Tensor::zeros(&[2048, 2048]).parameter();
                for _ in 0..40 {
                    x = x.affine(1.01, 0.0).tanh();
                }
                Ok(x.sum_all())
            }
            "log-flood" => {
                let big = "x".repeat(16 << 20);
                for _ in 0..150 {
                    log::message(&big);
                }
                Ok(self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0]))))
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(30));
                Err("slept through its deadline".into())
            }
            "attention" => {
                let q = Tensor::zeros(&[1, 100_000, 8]);
                Ok(q.attention(&q, &q, false))
            }
            "long-op" => {
                let a = Tensor::rand(&[6000, 6000], 1);
                Ok(a.matmul(&a).matmul(&a))
            }
            "rust-oom" => Ok(Tensor::randn(&[16384, 16384], 1)),
            "entropy" => {
                let e = entropy();
                let picked = self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0])));
                Ok(picked.affine(1.0, (e % 1000) as f32 * 1e-3))
            }
            _ => Ok(self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0])))),
        }
    }
}

weightlab_sdk::export_method!(Hostile);
