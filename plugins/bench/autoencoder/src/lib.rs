//! The plugin half of `weightlab bench plugin`: an MLP autoencoder (P → hidden → P, tanh,
//! Adam) trained for `steps` full-batch steps on the zoo's weights, op for op the same as
//! `weightlab_host::bench::native_autoencoder`.

use weightlab_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    steps: usize,
    hidden: usize,
}

struct Bench {
    out: Tensor,
}

impl Method for Bench {
    type Config = Config;

    fn describe() -> About {
        About::baseline("bench-autoencoder", env!("CARGO_PKG_VERSION"), "Benchmark: autoencoder training loop.")
    }

    fn fit(_zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, _seed: u64) -> Result<Self, String> {
        let p = weights.shape()[1];
        let w1 = Tensor::randn(&[config.hidden, p], 1).affine(0.01, 0.0).parameter();
        let b1 = Tensor::zeros(&[config.hidden]).parameter();
        let w2 = Tensor::randn(&[p, config.hidden], 2).affine(0.01, 0.0).parameter();
        let b2 = Tensor::zeros(&[p]).parameter();
        let opt = Optimizer::adam(&[&w1, &b1, &w2, &b2], 1e-3);
        for _ in 0..config.steps {
            let h = weights.linear(&w1, Some(&b1)).tanh();
            let y = h.linear(&w2, Some(&b2));
            let loss = y.mse(&weights);
            opt.step_on(&loss);
        }
        Ok(Bench { out: weights.linear(&w1, Some(&b1)).tanh().linear(&w2, Some(&b2)).detach() })
    }

    fn sample(&mut self, n: usize, _seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        Ok(self.out.narrow(0, 0, n))
    }
}

weightlab_sdk::export_method!(Bench);
