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

use weightlab_sdk::nn::{Act, Conv1d, ConvTranspose1d, Linear, Mlp, timestep_embedding};
use weightlab_sdk::prelude::*;

/// Configuration of `pdiff`; defaults follow the paper where it applies.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Size of the autoencoder's latent code.
    #[serde(default = "d_latent_dim")]
    latent_dim: usize,
    /// Channels of the convolutional encoder/decoder.
    #[serde(default = "d_channels")]
    channels: usize,
    /// Autoencoder training steps (full batch of checkpoints).
    #[serde(default = "d_steps")]
    ae_steps: usize,
    /// DDPM training steps.
    #[serde(default = "d_steps")]
    ddpm_steps: usize,
    /// Noise added to the normalised input weights while training the autoencoder.
    #[serde(default = "d_input_noise")]
    input_noise: f32,
    /// Noise added to the latent code while training the autoencoder.
    #[serde(default = "d_latent_noise")]
    latent_noise: f32,
    /// Diffusion steps T.
    #[serde(default = "d_timesteps")]
    timesteps: usize,
    /// Learning rate of both stages (AdamW).
    #[serde(default = "d_lr")]
    lr: f32,
    /// Hidden width of the denoiser MLP.
    #[serde(default = "d_hidden")]
    hidden: usize,
}

fn d_latent_dim() -> usize {
    64
}
fn d_channels() -> usize {
    16
}
fn d_steps() -> usize {
    1000
}
fn d_input_noise() -> f32 {
    0.001
}
fn d_latent_noise() -> f32 {
    0.1
}
fn d_timesteps() -> usize {
    1000
}
fn d_lr() -> f32 {
    1e-3
}
fn d_hidden() -> usize {
    256
}

/// The convolutional autoencoder over the flat (padded) parameter vector.
struct Autoencoder {
    down: Vec<Conv1d>,
    to_latent: Linear,
    from_latent: Linear,
    up: Vec<ConvTranspose1d>,
    channels: usize,
    reduced: usize,
}

impl Autoencoder {
    fn new(padded: usize, channels: usize, latent: usize, seed: u64) -> Self {
        let chans = [1, channels, channels, channels, channels];
        let down = (0..4).map(|i| Conv1d::new(chans[i], chans[i + 1], 4, 2, 1, seed + 10 * i as u64)).collect();
        let up = (0..4).rev().map(|i| ConvTranspose1d::new(chans[i + 1], if i == 0 { channels } else { chans[i] }, 4, 2, 1, seed + 100 + 10 * i as u64)).collect();
        let reduced = padded / 16;
        Autoencoder {
            down,
            to_latent: Linear::new(channels * reduced, latent, seed + 200),
            from_latent: Linear::new(latent, channels * reduced, seed + 300),
            up,
            channels,
            reduced,
        }
    }

    /// (N × padded) → (N × latent), bounded to (−1, 1) so that the latent noise has a fixed
    /// meaning relative to the codes' range.
    fn encode(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0] as i64;
        let mut h = x.unsqueeze(1);
        for conv in &self.down {
            h = conv.forward(&h).silu();
        }
        self.to_latent.forward(&h.reshape(&[n, -1])).tanh()
    }

    /// (N × latent) → (N × padded)
    fn decode(&self, z: &Tensor) -> Tensor {
        let n = z.shape()[0] as i64;
        let mut h = self.from_latent.forward(z).reshape(&[n, self.channels as i64, self.reduced as i64]);
        for (i, conv) in self.up.iter().enumerate() {
            h = conv.forward(&h);
            if i + 1 < self.up.len() {
                h = h.silu();
            }
        }
        // The last layer keeps `channels` outputs; their mean is the reconstruction.
        h.mean(1, false)
    }

    fn params(&self) -> Vec<&Tensor> {
        self.down
            .iter()
            .flat_map(Conv1d::params)
            .chain(self.to_latent.params())
            .chain(self.from_latent.params())
            .chain(self.up.iter().flat_map(ConvTranspose1d::params))
            .collect()
    }
}

struct PDiff {
    config: Config,
    mean: Tensor,
    scale: f32,
    /// Runs of coordinates (start, len, varying) covering the flat vector in order.
    runs: Vec<(usize, usize, bool)>,
    /// Number of varying coordinates (what the autoencoder sees).
    p: usize,
    padded: usize,
    ae: Autoencoder,
    denoiser: Mlp,
    betas: Vec<f32>,
    alpha_bars: Vec<f32>,
    latent_mean: Tensor,
    latent_std: Tensor,
    /// Mean of the full flat vectors (supplies the constant coordinates).
    full_mean: Tensor,
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

    fn fit(zoo: &Zoo, weights: Tensor, config: Config, seed: u64) -> Result<Self, String> {
        let shape = weights.shape();
        let rows = shape[0];
        if rows < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        if config.latent_dim == 0 || config.channels == 0 || config.timesteps == 0 {
            return Err("latent_dim, channels and timesteps must be positive".into());
        }
        let _ = zoo;
        let mean = weights.mean(0, true);
        // Coordinates that vary across checkpoints, as runs over the flat vector.
        let spread = weights.std(0, false).to_vec();
        let top = spread.iter().cloned().fold(0.0f32, f32::max);
        let mut runs: Vec<(usize, usize, bool)> = Vec::new();
        for (i, s) in spread.iter().enumerate() {
            let varying = *s > top * 1e-6;
            match runs.last_mut() {
                Some((_, len, v)) if *v == varying => *len += 1,
                _ => runs.push((i, 1, varying)),
            }
        }
        let parts: Vec<Tensor> = runs.iter().filter(|r| r.2).map(|&(start, len, _)| weights.narrow(1, start, len)).collect();
        if parts.is_empty() {
            return Err("all training checkpoints are identical: nothing to model".into());
        }
        let weights = Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1);
        let p = weights.shape()[1];
        log::message(&format!("modelling {p} varying parameters of {}", spread.len()));
        let padded = p.div_ceil(16) * 16;
        let varying_mean = weights.mean(0, true);
        let centred = &weights - &varying_mean;
        let scale = centred.square().mean_all().sqrt().item().max(1e-8);
        let mut x = centred * (1.0 / scale);
        if padded > p {
            x = Tensor::cat(&[&x, &Tensor::zeros(&[rows, padded - p])], 1);
        }

        // Stage 1: autoencoder.
        let ae = Autoencoder::new(padded, config.channels, config.latent_dim, seed.wrapping_mul(7919));
        let opt = Optimizer::new(OptimizerKind::Adamw, &ae.params(), config.lr, 2e-6);
        for step in 0..config.ae_steps {
            let noisy = &x + &(Tensor::randn(&[rows, padded], seed ^ (step as u64) << 20) * config.input_noise);
            let z = ae.encode(&noisy);
            let z = &z + &(Tensor::randn(&z.shape(), seed ^ (step as u64) << 21 ^ 1) * config.latent_noise);
            let loss = ae.decode(&z).mse(&x);
            opt.step_on(&loss);
            if step % 50 == 0 || step + 1 == config.ae_steps {
                log::metric("ae-loss", step, loss.item());
                log::progress(step, config.ae_steps + config.ddpm_steps);
            }
        }
        // The DDPM works on standardised latents (per dimension), then maps back.
        let codes = ae.encode(&x).detach();
        let latent_mean = codes.mean(0, true);
        let latent_std = (codes.std(0, true) + 1e-4).detach();
        let latents = (&codes - &latent_mean) / &latent_std;

        // Stage 2: DDPM on the latents.
        let t_max = config.timesteps;
        let betas: Vec<f32> = (0..t_max).map(|i| 1e-4 + (0.02 - 1e-4) * i as f32 / (t_max.max(2) - 1) as f32).collect();
        let mut alpha_bars = Vec::with_capacity(t_max);
        let mut prod = 1.0f32;
        for b in &betas {
            prod *= 1.0 - b;
            alpha_bars.push(prod);
        }
        let sqrt_ab = Tensor::from_slice(&alpha_bars.iter().map(|a| a.sqrt()).collect::<Vec<_>>(), &[t_max]);
        let sqrt_1mab = Tensor::from_slice(&alpha_bars.iter().map(|a| (1.0 - a).sqrt()).collect::<Vec<_>>(), &[t_max]);
        let d = config.latent_dim;
        let denoiser = Mlp::new(&[d + TEMB, config.hidden, config.hidden, d], Act::Silu, seed.wrapping_mul(104_729));
        let opt = Optimizer::new(OptimizerKind::Adamw, &denoiser.params(), config.lr, 2e-6);
        let me = PDiff { config, mean: varying_mean, scale, runs, p, padded, ae, denoiser, betas, alpha_bars, latent_mean, latent_std, full_mean: mean };
        for step in 0..me.config.ddpm_steps {
            let s = seed.wrapping_add(1_000_003 * (step as u64 + 1));
            let t = Tensor::randint(t_max, rows, s);
            let eps = Tensor::randn(&[rows, d], s + 1);
            let zt = &latents * &sqrt_ab.index_select(0, &t).unsqueeze(1) + &eps * &sqrt_1mab.index_select(0, &t).unsqueeze(1);
            let loss = me.denoise(&zt, &t).mse(&eps);
            opt.step_on(&loss);
            if step % 50 == 0 || step + 1 == me.config.ddpm_steps {
                log::metric("ddpm-loss", step, loss.item());
                log::progress(me.config.ae_steps + step, me.config.ae_steps + me.config.ddpm_steps);
            }
        }
        Ok(me)
    }

    fn sample(&mut self, n: usize, seed: u64, _condition: Option<Tensor>) -> Result<Tensor, String> {
        let d = self.config.latent_dim;
        let mut z = Tensor::randn(&[n, d], seed);
        for t in (0..self.config.timesteps).rev() {
            let (beta, ab) = (self.betas[t], self.alpha_bars[t]);
            let eps = self.denoise(&z, &Tensor::full(&[n], t as f32)).detach();
            // x_{t-1} = (x_t − β/√(1−ᾱ) ε) / √(1−β) + σ z, σ² = β (DDPM's simple choice).
            let mean = (&z - &(eps * (beta / (1.0 - ab).sqrt()))) * (1.0 / (1.0 - beta).sqrt());
            z = if t > 0 { mean + Tensor::randn(&[n, d], seed.wrapping_add(t as u64 + 1)) * beta.sqrt() } else { mean };
        }
        let codes = &(&z * &self.latent_std) + &self.latent_mean;
        let decoded = self.ae.decode(&codes).detach();
        let flat = if self.padded > self.p { decoded.narrow(1, 0, self.p) } else { decoded };
        let generated = &(flat * self.scale) + &self.mean;
        // Reassemble the full vectors: generated runs in place, constant runs from the mean.
        let mut offset = 0;
        let parts: Vec<Tensor> = self
            .runs
            .iter()
            .map(|&(start, len, varying)| {
                if varying {
                    offset += len;
                    generated.narrow(1, offset - len, len)
                } else {
                    self.full_mean.narrow(1, start, len).expand(&[n, len])
                }
            })
            .collect();
        Ok(Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1))
    }
}

weightlab_sdk::export_method!(PDiff);
