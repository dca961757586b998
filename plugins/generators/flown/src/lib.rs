//! `flown`: FLoWN (Saragih et al. 2025, "Flow to Learn: Flow Matching on Neural Network
//! Parameters"): conditional flow matching in the latent space of a weight autoencoder.
//!
//! 1. Normalise the checkpoints and train p-diff's 1-D convolutional autoencoder on them (FLoWN
//!    builds on p-diff's autoencoder, with its input and latent noise).
//! 2. Train a velocity network on the standardised latents with straight-line flow matching:
//!    x_t = (1 − t) x0 + t x1, x0 ~ N(0, I), regress x1 − x0. The network sees the latent, the
//!    time and a context embedding. On a task family the context is the task's support set:
//!    the host's set encoding (class means of `shots` examples per class), standardised and
//!    refined by a set encoder (an MLP trained with the velocity network), so `sample` can
//!    target a task it never saw. On an ordinary zoo it is the dataset descriptor (a fixed
//!    random embedding of the zoo's dataset identity and class count).
//! 3. Sample: integrate the ODE from the prior with `ode_steps` Euler or Heun steps, decode.
//!    With zero steps the prior draw is returned unchanged (then decoded).
//!
//! FLoWN's few-shot use — generated weights as an initialisation, fine-tuned for a few steps —
//! is measured natively by `[evaluate] finetune_steps` (on a task family: on the target task's
//! support set), beside `random-init` and the other transfer baselines.

use weightlab_sdk::conditioning::{ConditionKind, TaskCondition};
use weightlab_sdk::flow::{self, Solver};
use weightlab_sdk::nn::{Act, Mlp, timestep_embedding};
use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::{AutoencoderTraining, LatentSpace};

/// Configuration of `flown`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Size of the autoencoder's latent code.
    #[schemars(range(min = 1))]
    latent_dim: usize,
    /// Channels of the convolutional encoder/decoder.
    #[schemars(range(min = 1))]
    channels: usize,
    /// Autoencoder training steps.
    ae_steps: usize,
    /// Flow-matching training steps.
    flow_steps: usize,
    /// Noise on the autoencoder's input during training.
    input_noise: f32,
    /// Noise on the latent during autoencoder training.
    latent_noise: f32,
    /// ODE steps when sampling (0 returns the prior draw).
    ode_steps: usize,
    /// ODE solver: `euler` or `heun`.
    solver: Solver,
    /// Hidden width of the velocity network.
    #[schemars(range(min = 1))]
    hidden: usize,
    /// Size of the context (dataset descriptor) embedding.
    context_dim: usize,
    /// Learning rate of both stages (AdamW).
    lr: f32,
    /// On a task family: the task condition to use (`support`: the set encoding, FLoWN's
    /// context set; `instruction`: the text embedding).
    condition: ConditionKind,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            latent_dim: 64,
            channels: 16,
            ae_steps: 1000,
            flow_steps: 1000,
            input_noise: 0.001,
            latent_noise: 0.1,
            ode_steps: 50,
            solver: Solver::Heun,
            hidden: 256,
            context_dim: 16,
            lr: 1e-3,
            condition: ConditionKind::Support,
        }
    }
}

const TEMB: usize = 32;

struct Flown {
    config: Config,
    space: LatentSpace,
    velocity: Mlp,
    context: Context,
}

/// Where the context embedding comes from.
enum Context {
    /// The zoo's dataset descriptor (1 × context_dim), the same for every row.
    Descriptor(Tensor),
    /// A task condition refined by a set encoder trained with the velocity network.
    Task { condition: TaskCondition, encoder: Mlp },
}

impl Flown {
    fn velocity(&self, z: &Tensor, t: &Tensor, context: &Tensor) -> Tensor {
        // Times in [0, 1] are scaled up so the sinusoidal embedding resolves them.
        let emb = timestep_embedding(&(t * 1000.0), TEMB);
        self.velocity.forward(&Tensor::cat(&[z, &emb, context], 1))
    }

    /// The context rows (n × context_dim) for a condition: encoded, or the descriptor.
    fn context(&self, condition: Option<&Tensor>, n: usize) -> Tensor {
        match (&self.context, condition) {
            (Context::Descriptor(d), _) => d.expand(&[n, self.config.context_dim]),
            (Context::Task { encoder, .. }, Some(c)) => encoder.forward(c),
            (Context::Task { .. }, None) => Tensor::zeros(&[n, self.config.context_dim]),
        }
    }
}

/// A fixed embedding of a dataset descriptor: Gaussian features seeded by its identity.
fn descriptor_embedding(zoo: &Zoo, dim: usize) -> Tensor {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in zoo.dataset.bytes().chain(zoo.classes.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    Tensor::randn(&[1, dim], h)
}

impl Method for Flown {
    type Config = Config;

    fn describe() -> About {
        About::generator(
            "flown",
            env!("CARGO_PKG_VERSION"),
            "FLoWN (Saragih et al. 2025): conditional flow matching (straight paths, Euler/Heun ODE sampling) in the latent space of a p-diff-style weight autoencoder, conditioned on the task's support set (set encoding refined by a learned encoder) on task families, else on a dataset-descriptor embedding.",
        )
    }

    fn check(zoo: &ZooPlan, _config: &Config) -> Vec<Problem> {
        zoo.needs_checkpoints(2).into_iter().collect()
    }

    fn fit(zoo: &Zoo, weights: Tensor, condition: Condition, config: Config, seed: u64) -> Result<Self, String> {
        let rows = weights.shape()[0];
        if rows < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        if config.latent_dim == 0 || config.channels == 0 || config.hidden == 0 {
            return Err("latent_dim, channels and hidden must be positive".into());
        }
        let total = config.ae_steps + config.flow_steps;
        let training =
            AutoencoderTraining { channels: config.channels, latent_dim: config.latent_dim, steps: config.ae_steps, lr: config.lr, input_noise: config.input_noise, latent_noise: config.latent_noise };
        let (space, z1) = LatentSpace::fit(&weights, &training, seed, (0, total))?;

        let d = config.latent_dim;
        let velocity = Mlp::new(&[d + TEMB + config.context_dim, config.hidden, config.hidden, d], Act::Silu, seed.wrapping_mul(104_729));
        // On a task family each checkpoint's context is its task's condition.
        let (context, conditions) = if condition.is_empty() {
            // One descriptor for every checkpoint: a constant input, so the flow is unconditional.
            log::message("no task family: the context is one fixed descriptor of the zoo's dataset for every checkpoint, so FLoWN runs unconditionally here (conditioning needs `[data.*] tasks`)");
            (Context::Descriptor(descriptor_embedding(zoo, config.context_dim)), None)
        } else {
            let (task, rows_std) = TaskCondition::fit(&condition, config.condition)?;
            let encoder = Mlp::new(&[task.dim, config.hidden, config.context_dim], Act::Silu, seed.wrapping_mul(7_919));
            log::message(&format!("conditioned on each checkpoint's task ({:?} condition, {} wide, refined by a set encoder)", config.condition, task.dim));
            (Context::Task { condition: task, encoder }, Some(rows_std))
        };
        let mut params = velocity.params();
        if let Context::Task { encoder, .. } = &context {
            params.extend(encoder.params());
        }
        let opt = Optimizer::new(OptimizerKind::Adamw, &params, config.lr, 2e-6);
        drop(params);
        let me = Flown { config, space, velocity, context };
        let fixed = conditions.is_none().then(|| me.context(None, rows));
        for step in 0..me.config.flow_steps {
            let (zt, t, target) = flow::training_pair(&z1, seed.wrapping_add(1_000_003 * (step as u64 + 1)));
            // The encoder trains with the velocity network, so its output is recomputed each step.
            let ctx = match &fixed {
                Some(c) => c.clone(),
                None => me.context(conditions.as_ref(), rows),
            };
            let loss = me.velocity(&zt, &t, &ctx).mse(&target);
            opt.step_on(&loss);
            if step % 50 == 0 || step + 1 == me.config.flow_steps {
                log::metric("flow-loss", step, loss.item());
                log::progress(me.config.ae_steps + step, total);
            }
        }
        Ok(me)
    }

    fn sample(&mut self, n: usize, seed: u64, condition: &Condition) -> Result<Tensor, String> {
        let d = self.config.latent_dim;
        let context = match &self.context {
            Context::Task { condition: task, .. } => {
                let rows = task.prepare(condition, n)?;
                self.context(Some(&rows), n).detach()
            }
            Context::Descriptor(_) => self.context(None, n),
        };
        let prior = Tensor::randn(&[n, d], seed);
        let z = flow::integrate(prior, self.config.ode_steps, self.config.solver, |z, t| self.velocity(z, t, &context));
        // How far the samples moved from the prior, in the standardised latent space: a prior
        // draw has per-dimension std 1; data latents are standardised to std 1 as well, but sit
        // on the data's (lower-dimensional) support.
        let v = z.to_vec();
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
        log::metric("sample-latent-mean", self.config.ode_steps, mean);
        log::metric("sample-latent-std", self.config.ode_steps, std);
        Ok(self.space.decode(&z))
    }
}

weightlab_sdk::export_method!(Flown);
