//! A plugin that misbehaves in the way its config asks, to test the sandbox:
//! `loop` spins forever, `alloc` grows its memory without bound, `panic` panics, `nan`
//! returns NaN weights, `shape` returns the wrong shape, `file` tries to read a file,
//! `tensors` allocates host tensors without bound, `ok` behaves (returns training checkpoints).

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

impl Method for Hostile {
    type Config = Config;

    fn describe() -> About {
        About::baseline("hostile", "0.0.1", "Misbehaves on purpose (sandbox tests).")
    }

    fn fit(_zoo: &Zoo, weights: Tensor, config: Config, _seed: u64) -> Result<Self, String> {
        Ok(Hostile { weights, mode: config.mode })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: Option<Tensor>) -> Result<Tensor, String> {
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
            _ => Ok(self.weights.index_select(0, &Tensor::arange(n.min(self.weights.shape()[0])))),
        }
    }
}

weightlab_sdk::export_method!(Hostile);
