//! `pdiff`: p-diff (Wang et al. 2024, "Neural Network Diffusion").
//!
//! 1. Normalise the training checkpoints (subtract the per-parameter mean, divide by the
//!    overall deviation) and pad them to a multiple of 16.
//! 2. Train a 1-D convolutional autoencoder on them: four stride-2 convolutions, a linear
//!    bottleneck to `latent_dim`, and the mirror image back. As in the paper, small noise is
//!    added to the input (`input_noise`, 0.001) and larger noise to the latent (`latent_noise`)
//!    during training, so the decoder maps a neighbourhood of each latent to good weights.
//! 3. Train a DDPM on the latents: T = 1000 steps, linear betas 1e-4 → 0.02, ε-prediction, an
//!    MLP denoiser with a sinusoidal timestep embedding.
//! 4. Sample: ancestral DDPM sampling from Gaussian noise, then decode.
//!
//! Like the paper, which generates only the parameters it kept training (the last normalisation
//! layers of a ResNet), it models only the coordinates that vary across the training checkpoints;
//! constant ones (frozen layers of a `continue` zoo) are copied from the checkpoints. Differences
//! from the official code, to fit CPU budgets: the denoiser is an MLP rather than a 1-D conv
//! U-Net, and the autoencoder has no instance norm.

use weightlab_sdk::diffusion::Ddpm;
use weightlab_sdk::nn::{Act, Mlp, timestep_embedding};
use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::{AutoencoderTraining, LatentSpace, with_permuted_copies};

/// Configuration of `pdiff`; defaults follow the paper where it applies.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Size of the autoencoder's latent code.
    #[schemars(range(min = 1))]
    latent_dim: usize,
    /// Channels of the convolutional encoder/decoder.
    #[schemars(range(min = 1))]
    channels: usize,
    /// Autoencoder training steps (full batch of checkpoints).
    ae_steps: usize,
    /// DDPM training steps.
    ddpm_steps: usize,
    /// Noise added to the normalised input weights while training the autoencoder.
    input_noise: f32,
    /// Noise added to the latent code while training the autoencoder.
    latent_noise: f32,
    /// Diffusion steps T.
    #[schemars(range(min = 1))]
    timesteps: usize,
    /// Learning rate of both stages (AdamW).
    lr: f32,
    /// Hidden width of the denoiser MLP.
    hidden: usize,
    /// Permutation augmentation (an ablation; p-diff itself trains without it): this many
    /// copies of each training checkpoint with its hidden units randomly reordered join the
    /// training set of both stages. 0: off. On a zoo where only some layers vary, the copies
    /// make the reordered frozen layers vary too.
    permutations: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { latent_dim: 64, channels: 16, ae_steps: 1000, ddpm_steps: 1000, input_noise: 0.001, latent_noise: 0.1, timesteps: 1000, lr: 1e-3, hidden: 256, permutations: 0 }
    }
}

struct PDiff {
    config: Config,
    space: LatentSpace,
    denoiser: Mlp,
    ddpm: Ddpm,
}

const TEMB: usize = 32;

impl PDiff {
    fn denoise(&self, z: &Tensor, t: &Tensor) -> Tensor {
        let emb = timestep_embedding(t, TEMB);
        self.denoiser.forward(&Tensor::cat(&[z, &emb], 1))
    }
}

impl Method for PDiff {
    type Config = Config;

    fn describe() -> About {
        About::generator(
            "pdiff",
            env!("CARGO_PKG_VERSION"),
            "p-diff (Wang et al. 2024): a 1-D convolutional autoencoder over flattened weights, trained with input and latent noise, and a DDPM (T=1000, linear betas 1e-4..0.02) on its latents.",
        )
    }

    fn check(zoo: &ZooPlan, _config: &Config) -> Vec<Problem> {
        zoo.needs_checkpoints(2).into_iter().collect()
    }

    fn fit(zoo: &Zoo, weights: Tensor, _condition: Condition, config: Config, seed: u64) -> Result<Self, String> {
        if weights.shape()[0] < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        let weights = with_permuted_copies(zoo, &weights, config.permutations, seed.wrapping_add(77))?;
        if config.latent_dim == 0 || config.channels == 0 || config.timesteps == 0 {
            return Err("latent_dim, channels and timesteps must be positive".into());
        }
        let total = config.ae_steps + config.ddpm_steps;
        // Stage 1: autoencoder with input and latent noise; the DDPM works on its standardised
        // latents.
        let training =
            AutoencoderTraining { channels: config.channels, latent_dim: config.latent_dim, steps: config.ae_steps, lr: config.lr, input_noise: config.input_noise, latent_noise: config.latent_noise };
        let (space, z0) = LatentSpace::fit(&weights, &training, seed, (0, total))?;

        // Stage 2: DDPM on the latents.
        let d = config.latent_dim;
        let denoiser = Mlp::new(&[d + TEMB, config.hidden, config.hidden, d], Act::Silu, seed.wrapping_mul(104_729));
        let opt = Optimizer::new(OptimizerKind::Adamw, &denoiser.params(), config.lr, 2e-6);
        let ddpm = Ddpm::linear(config.timesteps, 1e-4, 0.02);
        let me = PDiff { config, space, denoiser, ddpm };
        for step in 0..me.config.ddpm_steps {
            let (zt, t, eps) = me.ddpm.noised(&z0, seed.wrapping_add(1_000_003 * (step as u64 + 1)));
            let loss = me.denoise(&zt, &t).mse(&eps);
            opt.step_on(&loss);
            if step % 50 == 0 || step + 1 == me.config.ddpm_steps {
                log::metric("ddpm-loss", step, loss.item());
                log::progress(me.config.ae_steps + step, total);
            }
        }
        Ok(me)
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: &Condition) -> Result<Tensor, String> {
        let z = self.ddpm.sample(&[n, self.config.latent_dim], seed, |z, t| self.denoise(z, t));
        Ok(self.space.decode(&z))
    }
}

weightlab_sdk::export_method!(PDiff);
