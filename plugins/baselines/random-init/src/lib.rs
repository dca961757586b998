//! `random-init`: fresh models initialised as PyTorch does by default (every weight and bias
//! uniform in ±1/√fan_in of its layer). The floor: chance accuracy, maximal novelty.

use weightlab_sdk::prelude::*;

/// `random-init` takes no options.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {}

struct RandomInit {
    layout: Vec<Param>,
}

/// fan_in of each parameter: a weight's inputs (times kernel area); a bias uses the fan_in of
/// the weight before it.
fn fan_ins(layout: &[Param]) -> Vec<usize> {
    let mut last = 1;
    layout
        .iter()
        .map(|p| {
            if p.shape.len() >= 2 {
                last = p.shape[1..].iter().product::<u32>() as usize;
            }
            last
        })
        .collect()
}

impl Method for RandomInit {
    type Config = Config;

    fn describe() -> About {
        About::baseline("random-init", env!("CARGO_PKG_VERSION"), "Fresh PyTorch-style initialisation: the chance-accuracy floor.")
    }

    fn fit(zoo: &Zoo, _weights: Tensor, _condition: Condition, _config: Config, _seed: u64) -> Result<Self, String> {
        Ok(RandomInit { layout: zoo.layout.clone() })
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let parts: Vec<Tensor> = self
            .layout
            .iter()
            .zip(fan_ins(&self.layout))
            .enumerate()
            .map(|(i, (p, fan_in))| {
                let bound = 1.0 / (fan_in as f32).sqrt();
                let len = p.shape.iter().product::<u32>() as usize;
                Tensor::uniform(&[n, len], -bound, bound, seed.wrapping_mul(1009).wrapping_add(i as u64))
            })
            .collect();
        Ok(Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1))
    }
}

weightlab_sdk::export_method!(RandomInit);
