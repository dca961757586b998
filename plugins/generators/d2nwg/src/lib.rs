//! `d2nwg`: D2NWG (Soro et al. 2025, "Diffusion-based Neural Network Weights Generation"):
//! weights generated *for a dataset* by latent diffusion conditioned on a set encoding of it.
//!
//! 1. A weight VAE: the normalised varying weights go through an MLP encoder to a Gaussian
//!    posterior (mean and log-variance), a reparameterised draw through an MLP decoder back;
//!    loss = reconstruction MSE + `kl` × KL(q(z|w) ‖ N(0, I)), the posterior's deviation capped
//!    at 0.1 and the KL weight annealed from 0 over the first half (against posterior collapse). The posterior means of the
//!    training checkpoints, standardised, are the diffusion model's data.
//! 2. A DDPM in that latent space (linear betas, ε-prediction) whose denoiser sees the noised
//!    latent, the timestep and the task's condition: the host's set encoding of the task's
//!    support examples, refined by a set-encoder MLP trained with the denoiser (the paper
//!    trains a Set Transformer on the raw examples; the host's class means already summarise
//!    them). With `guidance` > 0 the condition is dropped for `drop` of the training rows and
//!    sampling uses classifier-free guidance: ε = (1 + w) ε(z, c) − w ε(z, ∅).
//! 3. Sample: ancestral sampling for the target task's condition, decode, restore.
//!
//! Without task conditions (an ordinary zoo) the method refuses with a clear reason.

use weightlab_sdk::conditioning::{ConditionKind, TaskCondition};
use weightlab_sdk::diffusion::Ddpm;
use weightlab_sdk::nn::{Act, Mlp, timestep_embedding};
use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::{Normalizer, Standardizer};

/// Configuration of `d2nwg`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Size of the VAE's latent code.
    #[schemars(range(min = 1))]
    latent_dim: usize,
    /// Hidden width of the VAE, the denoiser and the set encoder.
    #[schemars(range(min = 1))]
    hidden: usize,
    /// VAE training steps.
    vae_steps: usize,
    /// Weight of the KL term (β of a β-VAE).
    kl: f32,
    /// Denoiser training steps.
    diffusion_steps: usize,
    /// Diffusion timesteps T (linear betas 1e-4 → 0.02).
    #[schemars(range(min = 1))]
    timesteps: usize,
    /// Width of the condition embedding the set encoder produces.
    context_dim: usize,
    /// Classifier-free guidance weight w (0: plain conditional sampling).
    guidance: f32,
    /// Fraction of training rows whose condition is dropped (learns ε(z, ∅) for guidance).
    drop: f32,
    /// Which task condition to use.
    condition: ConditionKind,
    /// Learning rate (AdamW) of both stages.
    lr: f32,
}

impl Default for Config {
    fn default() -> Self {
        Self { latent_dim: 16, hidden: 256, vae_steps: 2000, kl: 1e-4, diffusion_steps: 2000, timesteps: 200, context_dim: 32, guidance: 0.0, drop: 0.1, condition: ConditionKind::Support, lr: 1e-3 }
    }
}

const TEMB: usize = 32;

/// Largest posterior standard deviation of the weight VAE.
const MAX_STD: f32 = 0.1;

struct D2nwg {
    config: Config,
    normalizer: Normalizer,
    decoder: Mlp,
    latents: Standardizer,
    ddpm: Ddpm,
    denoiser: Mlp,
    encoder: Mlp,
    condition: TaskCondition,
}

impl D2nwg {
    /// Predicted noise for latents `z` at timesteps `t` with condition embeddings `c`.
    fn eps(&self, z: &Tensor, t: &Tensor, c: &Tensor) -> Tensor {
        self.denoiser.forward(&Tensor::cat(&[z, &timestep_embedding(t, TEMB), c], 1))
    }
}

/// Trains the weight VAE on `x` (rows × varying); returns the decoder and the posterior means.
fn train_vae(x: &Tensor, c: &Config, seed: u64, total: usize) -> (Mlp, Tensor) {
    let (rows, p, d) = (x.shape()[0], x.shape()[1], c.latent_dim);
    let encoder = Mlp::new(&[p, c.hidden, 2 * d], Act::Silu, seed.wrapping_mul(31));
    let decoder = Mlp::new(&[d, c.hidden, p], Act::Silu, seed.wrapping_mul(37));
    let params: Vec<&Tensor> = encoder.params().into_iter().chain(decoder.params()).collect();
    let opt = Optimizer::new(OptimizerKind::Adamw, &params, c.lr, 2e-6);
    for step in 0..c.vae_steps {
        let h = encoder.forward(x);
        // The posterior's deviation starts small (log-variance offset −6) and is capped at
        // `MAX_STD`: the reconstruction barely constrains it, so under Adam even a tiny KL weight
        // would drive it to 1, the noise would swamp the code, and the posterior would collapse.
        let (mu, logvar) = (h.narrow(1, 0, d), h.narrow(1, d, d).affine(1.0, -6.0).clamp(-12.0, 2.0 * MAX_STD.ln()));
        let z = &mu + &(&(logvar.affine(0.5, 0.0).exp()) * &Tensor::randn(&[rows, d], seed.wrapping_add(step as u64 * 7 + 1)));
        let recon = decoder.forward(&z).mse(x);
        // KL(N(mu, σ²) ‖ N(0, 1)) per dimension, averaged.
        let kl = (&(&mu.square() + &logvar.exp()) - &logvar).affine(0.5, -0.5).mean_all();
        // KL annealing: its weight rises from 0 over the first half, so the decoder learns to use
        // the code before the KL term can pull the posterior onto the prior.
        let warmup = (2.0 * step as f32 / c.vae_steps.max(1) as f32).min(1.0);
        let loss = &recon + &(kl.affine(c.kl * warmup, 0.0));
        opt.step_on(&loss);
        if step % 100 == 0 || step + 1 == c.vae_steps {
            log::metric("vae-reconstruction", step, recon.item());
            log::metric("vae-kl", step, kl.item());
            log::progress(step, total);
        }
    }
    let mu = encoder.forward(x).narrow(1, 0, d).detach();
    (decoder, mu)
}

impl Method for D2nwg {
    type Config = Config;

    fn describe() -> About {
        About::generator(
            "d2nwg",
            env!("CARGO_PKG_VERSION"),
            "D2NWG (Soro et al. 2025): a weight VAE (KL-regularised) and a latent DDPM conditioned on the task's support-set encoding (refined by a learned set encoder), with optional classifier-free guidance; samples weights for unseen tasks.",
        )
    }

    fn check(zoo: &ZooPlan, config: &Config) -> Vec<Problem> {
        zoo.needs_checkpoints(2).into_iter().chain(conditioning::check(zoo, config.condition)).collect()
    }

    fn fit(_zoo: &Zoo, weights: Tensor, condition: Condition, config: Config, seed: u64) -> Result<Self, String> {
        let rows = weights.shape()[0];
        if rows < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        if config.latent_dim == 0 || config.hidden == 0 || config.timesteps == 0 {
            return Err("latent_dim, hidden and timesteps must be positive".into());
        }
        let (task, cond_rows) = TaskCondition::fit(&condition, config.condition)?;
        let total = config.vae_steps + config.diffusion_steps;
        let (normalizer, x) = Normalizer::fit(&weights)?;
        let (decoder, mu) = train_vae(&x, &config, seed, total);
        let (latents, z0) = Standardizer::fit(&mu);

        let d = config.latent_dim;
        let denoiser = Mlp::new(&[d + TEMB + config.context_dim, config.hidden, config.hidden, d], Act::Silu, seed.wrapping_mul(41));
        let encoder = Mlp::new(&[task.dim, config.hidden, config.context_dim], Act::Silu, seed.wrapping_mul(43));
        let params: Vec<&Tensor> = denoiser.params().into_iter().chain(encoder.params()).collect();
        let opt = Optimizer::new(OptimizerKind::Adamw, &params, config.lr, 2e-6);
        drop(params);
        let ddpm = Ddpm::linear(config.timesteps, 1e-4, 0.02);
        let me = D2nwg { ddpm, denoiser, encoder, condition: task, decoder, latents, normalizer, config };
        log::message(&format!("VAE latent {d}-d; denoiser conditioned on {:?} ({} wide); guidance {}", me.config.condition, me.condition.dim, me.config.guidance));
        for step in 0..me.config.diffusion_steps {
            let s = seed.wrapping_add(1_000_003 * (step as u64 + 1));
            let (zt, t, eps) = me.ddpm.noised(&z0, s);
            let mut c = me.encoder.forward(&cond_rows);
            if me.config.guidance > 0.0 {
                // Drop the condition of some rows: the same network learns ε(z, ∅).
                let keep = Tensor::rand(&[rows, 1], s.wrapping_add(5)).greater(&Tensor::full(&[1, 1], me.config.drop));
                c = &c * &keep;
            }
            let loss = me.eps(&zt, &t, &c).mse(&eps);
            opt.step_on(&loss);
            if step % 100 == 0 || step + 1 == me.config.diffusion_steps {
                log::metric("diffusion-loss", step, loss.item());
                log::progress(me.config.vae_steps + step, total);
            }
        }
        Ok(me)
    }

    fn sample(&mut self, n: usize, seed: u64, condition: &Condition) -> Result<Tensor, String> {
        let c = self.encoder.forward(&self.condition.prepare(condition, n)?).detach();
        let none = Tensor::zeros(&c.shape());
        let w = self.config.guidance;
        let z = self.ddpm.sample(&[n, self.config.latent_dim], seed, |z, t| {
            let conditional = self.eps(z, t, &c);
            if w > 0.0 { &conditional.affine(1.0 + w, 0.0) - &self.eps(z, t, &none).affine(w, 0.0) } else { conditional }
        });
        let x = self.decoder.forward(&self.latents.restore(&z));
        Ok(self.normalizer.restore(&x))
    }
}

weightlab_sdk::export_method!(D2nwg);
