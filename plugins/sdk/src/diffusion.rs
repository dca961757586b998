//! Denoising diffusion (DDPM, Ho et al. 2020) as p-diff, HyperDiffusion and G.pt use it:
//! linear betas, ancestral sampling with σ² = β. The denoiser predicts the noise ε (p-diff) or
//! the clean sample x₀ (G.pt, and HyperDiffusion's `START_X`): see [`Prediction`].

use crate::Tensor;

/// A DDPM noise schedule of `T` steps.
pub struct Ddpm {
    pub betas: Vec<f32>,
    pub alpha_bars: Vec<f32>,
    sqrt_ab: Tensor,
    sqrt_1mab: Tensor,
}

impl Ddpm {
    /// Linear betas from `beta_start` to `beta_end` over `steps` (the papers: 1e-4 → 0.02, 1000).
    pub fn linear(steps: usize, beta_start: f32, beta_end: f32) -> Self {
        let betas: Vec<f32> = (0..steps).map(|i| beta_start + (beta_end - beta_start) * i as f32 / (steps.max(2) - 1) as f32).collect();
        let mut alpha_bars = Vec::with_capacity(steps);
        let mut prod = 1.0f32;
        for b in &betas {
            prod *= 1.0 - b;
            alpha_bars.push(prod);
        }
        let sqrt_ab = Tensor::from_slice(&alpha_bars.iter().map(|a| a.sqrt()).collect::<Vec<_>>(), &[steps]);
        let sqrt_1mab = Tensor::from_slice(&alpha_bars.iter().map(|a| (1.0 - a).sqrt()).collect::<Vec<_>>(), &[steps]);
        Ddpm { betas, alpha_bars, sqrt_ab, sqrt_1mab }
    }

    /// The linear schedule of OpenAI's diffusion code (improved/guided diffusion, which G.pt's
    /// and HyperDiffusion's code build on): Ho et al.'s 1e-4 → 0.02 for 1,000 steps, scaled by
    /// 1000 / `steps` for other lengths, so the forward process always ends in (nearly) pure
    /// noise. [`Ddpm::linear`] with the fixed range at `steps` = 200 ends at √ᾱ_T ≈ 0.37:
    /// training never sees less than 37 % signal, while sampling starts from pure noise.
    pub fn linear_scaled(steps: usize) -> Self {
        let scale = 1000.0 / steps.max(1) as f32;
        Self::linear(steps, 1e-4 * scale, (0.02 * scale).min(0.999))
    }

    /// √ᾱ_T: how much of the data the last training timestep still holds (sampling assumes 0).
    pub fn terminal_signal(&self) -> f32 {
        self.alpha_bars.last().map_or(1.0, |a| a.sqrt())
    }

    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// A training example for data `x0` (N × D): random timesteps t (N), the noise ε and the
    /// noised x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε. Train the denoiser to predict ε from (x_t, t).
    pub fn noised(&self, x0: &Tensor, seed: u64) -> (Tensor, Tensor, Tensor) {
        let shape = x0.shape();
        let n = shape[0];
        let t = Tensor::randint(self.steps(), n, seed);
        let eps = Tensor::randn(&shape, seed.wrapping_add(1));
        let mut scale_shape = vec![n as i64];
        scale_shape.extend(std::iter::repeat_n(1, shape.len() - 1));
        let a = self.sqrt_ab.index_select(0, &t).reshape(&scale_shape);
        let b = self.sqrt_1mab.index_select(0, &t).reshape(&scale_shape);
        let xt = &(x0 * &a) + &(&eps * &b);
        (xt, t, eps)
    }

    /// Ancestral sampling of `shape` from Gaussian noise; `denoise(x_t, t)` predicts ε.
    pub fn sample(&self, shape: &[usize], seed: u64, denoise: impl Fn(&Tensor, &Tensor) -> Tensor) -> Tensor {
        self.sample_clipped(shape, seed, None, denoise)
    }

    /// Ancestral sampling with a denoiser that predicts the clean sample x₀ (clamped to
    /// [−clip, clip]); each step draws from the posterior q(x_{t−1} | x_t, x̂₀).
    pub fn sample_x0(&self, shape: &[usize], seed: u64, clip: f32, predict: impl Fn(&Tensor, &Tensor) -> Tensor) -> Tensor {
        let n = shape[0];
        let mut x = Tensor::randn(shape, seed);
        for t in (0..self.steps()).rev() {
            let x0 = predict(&x, &Tensor::full(&[n], t as f32)).detach().clamp(-clip, clip);
            let mean = self.posterior_mean(&x, &x0, t);
            x = if t > 0 { mean + Tensor::randn(shape, seed.wrapping_add(t as u64 + 1)) * self.betas[t].sqrt() } else { mean };
        }
        x
    }

    /// Mean of q(x_{t−1} | x_t, x₀).
    fn posterior_mean(&self, x: &Tensor, x0: &Tensor, t: usize) -> Tensor {
        let (beta, ab) = (self.betas[t], self.alpha_bars[t]);
        let ab_prev = if t > 0 { self.alpha_bars[t - 1] } else { 1.0 };
        &(x0 * (ab_prev.sqrt() * beta / (1.0 - ab))) + &(x * ((1.0 - beta).sqrt() * (1.0 - ab_prev) / (1.0 - ab)))
    }

    /// Ancestral sampling; with `clip = Some(c)` every step goes through the predicted clean
    /// sample x̂₀ = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t clamped to [−c, c] and the posterior mean
    /// q(x_{t−1} | x_t, x̂₀), as image DDPMs clip to the pixel range. Without it an imperfect
    /// ε-predictor lets samples grow by up to 1/√ᾱ_T (about 12× for T = 500); with it they stay
    /// in the data's range.
    pub fn sample_clipped(&self, shape: &[usize], seed: u64, clip: Option<f32>, denoise: impl Fn(&Tensor, &Tensor) -> Tensor) -> Tensor {
        let n = shape[0];
        let mut x = Tensor::randn(shape, seed);
        for t in (0..self.steps()).rev() {
            let (beta, ab) = (self.betas[t], self.alpha_bars[t]);
            let eps = denoise(&x, &Tensor::full(&[n], t as f32)).detach();
            let mean = match clip {
                // x_{t-1} = (x_t − β/√(1−ᾱ) ε) / √(1−β) + σ z, σ² = β.
                None => (&x - &(eps * (beta / (1.0 - ab).sqrt()))) * (1.0 / (1.0 - beta).sqrt()),
                Some(c) => {
                    let x0 = ((&x - &(eps * (1.0 - ab).sqrt())) * (1.0 / ab.sqrt())).clamp(-c, c);
                    self.posterior_mean(&x, &x0, t)
                }
            };
            x = if t > 0 { mean + Tensor::randn(shape, seed.wrapping_add(t as u64 + 1)) * beta.sqrt() } else { mean };
        }
        x
    }
}

/// A DDPM directly on (normalised) flat weights with a [`crate::nn::TokenDenoiser`]: the
/// shared core of the HyperDiffusion-style and G.pt-style generators.
pub struct WeightDiffusion {
    pub normalizer: crate::weights::Normalizer,
    pub denoiser: crate::nn::TokenDenoiser,
    pub ddpm: Ddpm,
    tokens: Tokenizer,
    /// Largest |value| of the normalised training weights: the sampler's clip range.
    clip: f32,
    prediction: Prediction,
}

/// Per-layer tokens as in HyperDiffusion and G.pt: each parameter tensor of the layout (its
/// varying coordinates) is cut into chunks of `token_size`, the last chunk of each padded with
/// zeros, so no token mixes two layers.
struct Tokenizer {
    /// For each token position (tokens × token_size), the varying column it holds, or the
    /// padding column (index `varying`, always zero).
    gather: Tensor,
    /// For each varying column, its token position: maps tokens back.
    scatter: Tensor,
    count: usize,
}

impl Tokenizer {
    fn new(layout: &[crate::Param], normalizer: &crate::weights::Normalizer, token_size: usize) -> Self {
        let columns = normalizer.varying_columns();
        let pad = normalizer.varying;
        let mut gather: Vec<usize> = Vec::new();
        let chunk = |cols: &[usize], gather: &mut Vec<usize>| {
            for piece in cols.chunks(token_size) {
                gather.extend(piece);
                gather.extend(std::iter::repeat_n(pad, token_size - piece.len()));
            }
        };
        let mut covered = 0;
        for param in layout {
            let numel: usize = param.shape.iter().map(|&d| d as usize).product();
            let start = param.offset as usize;
            let cols: Vec<usize> = (start..(start + numel).min(columns.len())).filter_map(|i| columns[i]).collect();
            covered += cols.len();
            chunk(&cols, &mut gather);
        }
        if covered != pad {
            // No usable layout (e.g. a bare vector): fixed-size chunks of the whole vector.
            gather.clear();
            chunk(&(0..pad).collect::<Vec<_>>(), &mut gather);
        }
        let mut scatter = vec![0usize; pad];
        for (position, &col) in gather.iter().enumerate() {
            if col < pad {
                scatter[col] = position;
            }
        }
        let as_tensor = |v: &[usize]| Tensor::from_slice(&v.iter().map(|&i| i as f32).collect::<Vec<_>>(), &[v.len()]);
        Tokenizer { count: gather.len() / token_size.max(1), gather: as_tensor(&gather), scatter: as_tensor(&scatter) }
    }

    /// (N × varying) → (N × tokens·token_size), zeros in the padding.
    fn tokenize(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0];
        Tensor::cat(&[x, &Tensor::zeros(&[n, 1])], 1).index_select(1, &self.gather)
    }

    /// (N × tokens·token_size) → (N × varying).
    fn detokenize(&self, t: &Tensor) -> Tensor {
        t.index_select(1, &self.scatter)
    }
}

/// The DDPM noise schedule of a [`WeightDiffusion`] (see [`WeightDiffusionConfig::schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// β from 1e-4 to 0.02 over T steps ([`Ddpm::linear`]).
    #[default]
    Fixed,
    /// β from 1e-4 to 0.02 scaled by 1000 / T ([`Ddpm::linear_scaled`]).
    Scaled,
}

/// What the denoiser is trained to output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Prediction {
    /// The noise ε (Ho et al.; p-diff).
    Epsilon,
    /// The clean weights x₀ (G.pt; HyperDiffusion's `model_mean_type: START_X`).
    Sample,
}

/// Configuration of a [`WeightDiffusion`]: the `hyperdiffusion` and `gpt` plugins' config.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightDiffusionConfig {
    /// Weights per token (a layer spans several tokens). Keep it ≤ `dim`: the denoiser must be
    /// able to pass a token's noise through its width.
    #[serde(default = "d_token")]
    pub token_size: usize,
    /// Transformer width.
    #[serde(default = "d_dim")]
    pub dim: usize,
    /// Transformer blocks.
    #[serde(default = "d_depth")]
    pub depth: usize,
    /// Attention heads.
    #[serde(default = "d_heads")]
    pub heads: usize,
    /// Diffusion steps T.
    #[serde(default = "d_timesteps")]
    pub timesteps: usize,
    /// Noise schedule: `fixed` (β from 1e-4 to 0.02 over the T steps, whatever T) or `scaled`
    /// (the same range scaled by 1000 / T, as OpenAI's diffusion code that G.pt and
    /// HyperDiffusion build on does: the forward process ends in pure noise for any T). With
    /// `fixed` and few steps the last timestep still holds much of the signal (√ᾱ_T ≈ 0.37 at
    /// T = 200, 0.08 at 500), so sampling from pure noise starts off the training distribution.
    #[serde(default)]
    pub schedule: Schedule,
    /// What the denoiser predicts: `sample` (x₀, as G.pt and HyperDiffusion do) or `epsilon`.
    #[serde(default = "d_prediction")]
    pub prediction: Prediction,
    /// Training steps.
    #[serde(default = "d_steps")]
    pub steps: usize,
    /// Peak learning rate (AdamW), decayed to 0 over `steps` on a cosine.
    #[serde(default = "d_lr")]
    pub lr: f32,
    /// Checkpoints per training step.
    #[serde(default = "d_batch")]
    pub batch: usize,
    /// Conditioned models only (`gpt`): the test accuracy to prompt with when sampling (test
    /// loss, negated, for neural fields). Default: the best of the training checkpoints, as
    /// G.pt prompts with the best loss.
    #[serde(default)]
    pub target: Option<f32>,
}

fn d_token() -> usize {
    64
}
fn d_dim() -> usize {
    128
}
fn d_depth() -> usize {
    2
}
fn d_heads() -> usize {
    4
}
fn d_timesteps() -> usize {
    500
}
fn d_prediction() -> Prediction {
    Prediction::Sample
}
fn d_steps() -> usize {
    1000
}
fn d_lr() -> f32 {
    1e-3
}
fn d_batch() -> usize {
    64
}

impl WeightDiffusion {
    /// Trains on `weights` (N × P); `conditions` (N × 1), if given, are what each checkpoint
    /// is conditioned on (G.pt: its metric).
    pub fn fit(layout: &[crate::Param], weights: &Tensor, conditions: Option<&Tensor>, c: &WeightDiffusionConfig, seed: u64) -> Result<Self, String> {
        if c.token_size == 0 || c.dim == 0 || c.depth == 0 || c.heads == 0 || !c.dim.is_multiple_of(c.heads) || c.timesteps == 0 {
            return Err(format!("token_size, dim, depth, heads and timesteps must be positive, and dim ({}) a multiple of heads ({})", c.dim, c.heads));
        }
        let (normalizer, x) = crate::weights::Normalizer::fit(weights)?;
        let tokenizer = Tokenizer::new(layout, &normalizer, c.token_size);
        let x = tokenizer.tokenize(&x);
        crate::log::message(&format!("{} varying parameters as {} per-layer tokens of {}", normalizer.varying, tokenizer.count, c.token_size));
        let denoiser = crate::nn::TokenDenoiser::new(tokenizer.count, c.token_size, c.dim, c.depth, c.heads, conditions.is_some(), seed.wrapping_mul(7919));
        let ddpm = match c.schedule {
            Schedule::Fixed => Ddpm::linear(c.timesteps, 1e-4, 0.02),
            Schedule::Scaled => Ddpm::linear_scaled(c.timesteps),
        };
        crate::log::metric("terminal-signal", 0, ddpm.terminal_signal());
        crate::log::message(&format!("noise schedule: {} steps, the last still holds √ᾱ_T = {:.3} of the signal", c.timesteps, ddpm.terminal_signal()));
        let opt = crate::Optimizer::new(crate::OptimizerKind::Adamw, &denoiser.params(), c.lr, 1e-5);
        let rows = x.shape()[0];
        let clip = x.abs().max(0, false).max(0, false).item();
        for step in 0..c.steps {
            let s = seed.wrapping_add(1_000_003 * (step as u64 + 1));
            // A minibatch of checkpoints (all of them when the zoo is small).
            let (xb, cb) = if rows > c.batch {
                let idx = Tensor::choose(rows, c.batch, s ^ 0x5EED);
                (x.index_select(0, &idx), conditions.map(|v| v.index_select(0, &idx)))
            } else {
                (x.detach(), conditions.map(Tensor::detach))
            };
            let (xt, t, eps) = ddpm.noised(&xb, s);
            let target = match c.prediction {
                Prediction::Epsilon => eps,
                Prediction::Sample => xb,
            };
            let loss = denoiser.forward(&xt, &t, cb.as_ref()).mse(&target);
            // Cosine decay to zero: the last steps refine the prediction near t = 0, which the
            // final sampling step returns as is.
            opt.set_lr(c.lr * 0.5 * (1.0 + (std::f32::consts::PI * step as f32 / c.steps as f32).cos()));
            opt.step_on(&loss);
            if step % 50 == 0 || step + 1 == c.steps {
                crate::log::metric("ddpm-loss", step, loss.item());
                crate::log::progress(step, c.steps);
            }
        }
        Ok(WeightDiffusion { normalizer, denoiser, ddpm, tokens: tokenizer, clip, prediction: c.prediction })
    }

    /// `n` flat weight vectors (n × P); `condition` (n × 1) for a conditioned model.
    pub fn sample(&self, n: usize, seed: u64, condition: Option<&Tensor>) -> Tensor {
        let width = self.tokens.count * self.denoiser.token_size;
        let denoise = |x: &Tensor, t: &Tensor| self.denoiser.forward(x, t, condition);
        let x = match self.prediction {
            Prediction::Epsilon => self.ddpm.sample_clipped(&[n, width], seed, Some(self.clip), denoise),
            Prediction::Sample => self.ddpm.sample_x0(&[n, width], seed, self.clip, denoise),
        };
        self.normalizer.restore(&self.tokens.detokenize(&x))
    }
}
