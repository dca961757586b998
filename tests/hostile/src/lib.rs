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
//! Round two: `stderr-flood` makes libtorch print a warning per call in a loop, `nan-metric`
//! logs NaN and infinite metrics and returns good samples, `many-metrics` logs 200,000
//! distinct metric names, `long-reason` fails with a 60 MiB reason, `escape-reason` fails with
//! terminal escape sequences, `empty-reduce` and `empty-linear` ask for outputs of 10¹⁰
//! elements from inputs of none.
//!
//! What it says in `describe` is chosen by [`DESCRIBE`], a marker the tests patch in the built
//! component (same length): `honest`, `schema-self` (`{"allOf":[{"$ref":"#"}]}`),
//! `schema-cycle` (two `$defs` referring to each other), `huge-about` (a 60 MiB `about`) and
//! `escapes` (terminal escapes in its name, version and about).

use weightlab_sdk::prelude::*;

/// The describe mode; tests overwrite `honest` in the component's data (padded with `.`).
#[used]
static DESCRIBE: [u8; 32] = *b"describe=honest.................";

fn describe_mode() -> String {
    // SAFETY: a volatile read of a static we own, so the compiler keeps the bytes in the data
    // section (where the tests patch them) instead of folding the comparison away.
    let bytes = unsafe { std::ptr::read_volatile(&DESCRIBE) };
    String::from_utf8_lossy(&bytes).trim_start_matches("describe=").trim_end_matches('.').to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// What to do wrong.
    mode: String,
}

impl JsonSchema for Config {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Config".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = match describe_mode().as_str() {
            "schema-self" => serde_json::json!({ "allOf": [{ "$ref": "#" }] }),
            "schema-cycle" => serde_json::json!({ "$ref": "#/$defs/a", "$defs": { "a": { "$ref": "#/$defs/b" }, "b": { "allOf": [{ "$ref": "#/$defs/a" }] } } }),
            _ => serde_json::json!({ "type": "object", "properties": { "mode": { "type": "string", "description": "What to do wrong." } }, "required": ["mode"], "additionalProperties": false }),
        };
        serde_json::from_value(value).expect("a schema object")
    }
}

struct Hostile {
    weights: Tensor,
    mode: String,
    /// Calls of `sample` so far (what the `stateful` mode's samples depend on).
    draws: usize,
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
        match describe_mode().as_str() {
            "huge-about" => About::baseline("hostile", "0.0.1", &"about ".repeat(10 << 20)),
            "escapes" => About::baseline("\x1b]0;pwned\x07hostile\x1b[2J", "0.0.1\x1b[31m", "\x1b]52;c;cHduZWQ=\x07\r\x1b[1A   Finished all ok\u{202e}"),
            _ => About::baseline("hostile", "0.0.1", "Misbehaves on purpose (sandbox tests)."),
        }
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
        Ok(Hostile { weights, mode: config.mode, draws: 0 })
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
                // One product must outlast the deadline and the watchdog's grace (1.3 s) on any
                // CPU: 6000² (0.43 TFLOP) ended within it on 2 AVX-512 cores near their peak,
                // and the late call was then stopped in the guest. 8000²: 1 TFLOP, 256 MiB.
                let a = Tensor::rand(&[8000, 8000], 1);
                Ok(a.matmul(&a).matmul(&a))
            }
            // A host operation that builds its values in Rust (randperm's order: 1 GiB of f32)
            // past the worker's OS limit: the allocation fails there and the worker aborts.
            // (`randn` now draws straight into libtorch's memory, whose failure is an error.)
            "rust-oom" => Ok(Tensor::randperm(268_435_456, 1).reshape(&[16384, 16384])),
            "stderr-flood" => {
                // std over one element has no degrees of freedom: libtorch warns on each call.
                let one = Tensor::zeros(&[1, 4]);
                for _ in 0..1_200_000 {
                    std::hint::black_box(one.std(0, false));
                }
                Ok(self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0]))))
            }
            // Samples that depend on what was sampled before: a second draw from the same fit
            // differs from the first.
            "stateful" => {
                self.draws += 1;
                Ok(self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0]))).affine(self.draws as f32, 0.0))
            }
            "nan-metric" => {
                log::metric("loss", 0, f32::NAN);
                log::metric("loss", 1, f32::INFINITY);
                log::metric("loss", 2, 0.5);
                Ok(self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0]))))
            }
            "many-metrics" => {
                for i in 0..200_000 {
                    log::metric(&format!("metric-{i}"), 0, 1.0);
                }
                Ok(self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0]))))
            }
            "long-reason" => Err("reason ".repeat(9 << 20)),
            "escape-reason" => Err("\x1b]0;pwned\x07\x1b[2J\x1b[H\r   Finished all ok\x1b]52;c;cHduZWQ=\x07\u{9b}31m".into()),
            "empty-reduce" => Ok(Tensor::zeros(&[0, 100_000, 100_000]).sum(0, false)),
            "empty-linear" => Ok(Tensor::zeros(&[100_000, 0]).linear(&Tensor::zeros(&[100_000, 0]), None)),
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
