//! Preparing zoo weights for a generative model and mapping samples back.
//!
//! Generators model only the coordinates that vary across the training checkpoints (as p-diff
//! models only the parameters it kept training); constant coordinates (frozen layers of a
//! `continue` zoo) are copied back from the checkpoints. The varying part is centred on its
//! per-coordinate mean and divided by one overall scale, so every generator sees values of
//! order 1 and its samples map back exactly through [`Normalizer::restore`].

use crate::Tensor;

/// What [`Normalizer::fit`] learned from the training weights.
pub struct Normalizer {
    /// Runs of coordinates (start, len, varying) covering the flat vector in order.
    runs: Vec<(usize, usize, bool)>,
    /// Per-coordinate mean of the varying coordinates (1 × p).
    mean: Tensor,
    /// Overall deviation of the varying coordinates.
    scale: f32,
    /// Per-coordinate mean of the full vectors (1 × P): supplies the constant coordinates.
    full_mean: Tensor,
    /// Number of varying coordinates.
    pub varying: usize,
    /// Length of a full flat vector.
    pub parameters: usize,
}

impl Normalizer {
    /// Learns the normalisation from `weights` (N × P) and returns it with the normalised
    /// varying coordinates (N × varying). Fails when all checkpoints are identical.
    pub fn fit(weights: &Tensor) -> Result<(Normalizer, Tensor), String> {
        let parameters = weights.shape()[1];
        let full_mean = weights.mean(0, true);
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
        let varying_weights = Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1);
        let varying = varying_weights.shape()[1];
        let mean = varying_weights.mean(0, true);
        let centred = &varying_weights - &mean;
        let scale = centred.square().mean_all().sqrt().item().max(1e-8);
        let x = centred * (1.0 / scale);
        Ok((Normalizer { runs, mean, scale, full_mean, varying, parameters }, x))
    }

    /// Full flat vectors (N × P) from normalised varying coordinates (N × varying).
    pub fn restore(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0];
        let generated = &(x * self.scale) + &self.mean;
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
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1)
    }

    /// For every coordinate of the full vector, its column among the varying coordinates.
    pub fn varying_columns(&self) -> Vec<Option<usize>> {
        let mut out = vec![None; self.parameters];
        let mut next = 0;
        for &(start, len, varying) in &self.runs {
            if varying {
                for (k, slot) in out[start..start + len].iter_mut().enumerate() {
                    *slot = Some(next + k);
                }
                next += len;
            }
        }
        out
    }
}

/// Pads (N × p) with zero columns to (N × padded).
pub fn pad(x: &Tensor, padded: usize) -> Tensor {
    let [n, p] = [x.shape()[0], x.shape()[1]];
    if padded > p { Tensor::cat(&[x, &Tensor::zeros(&[n, padded - p])], 1) } else { x.detach() }
}

/// Standardises latents per dimension: (codes − mean) / std, keeping both to map back.
pub struct Standardizer {
    pub mean: Tensor,
    pub std: Tensor,
}

impl Standardizer {
    pub fn fit(codes: &Tensor) -> (Standardizer, Tensor) {
        let mean = codes.mean(0, true).detach();
        let std = (codes.std(0, true) + 1e-4).detach();
        let z = (codes - &mean) / &std;
        (Standardizer { mean, std }, z.detach())
    }
    pub fn restore(&self, z: &Tensor) -> Tensor {
        &(z * &self.std) + &self.mean
    }
}

/// p-diff's latent space, shared by `pdiff` and `flown`: normalised varying weights, padded to a
/// multiple of 16, compressed by a [`crate::nn::ConvAutoencoder`] trained with input and latent
/// noise; latents standardised per dimension. Generative models work on the standardised
/// latents; [`LatentSpace::decode`] maps them back to full flat weights.
pub struct LatentSpace {
    pub normalizer: Normalizer,
    padded: usize,
    ae: crate::nn::ConvAutoencoder,
    latents: Standardizer,
}

/// Sizes and training of a [`LatentSpace`]'s autoencoder.
pub struct AutoencoderTraining {
    pub channels: usize,
    pub latent_dim: usize,
    pub steps: usize,
    pub lr: f32,
    pub input_noise: f32,
    pub latent_noise: f32,
}

impl LatentSpace {
    /// Fits the space to `weights` (N × P) and returns it with the standardised training
    /// latents (N × latent_dim). `progress` is (steps done before, total steps) for logging.
    pub fn fit(weights: &Tensor, t: &AutoencoderTraining, seed: u64, progress: (usize, usize)) -> Result<(LatentSpace, Tensor), String> {
        let (normalizer, x) = Normalizer::fit(weights)?;
        crate::log::message(&format!("modelling {} varying parameters of {}", normalizer.varying, normalizer.parameters));
        let padded = normalizer.varying.div_ceil(16) * 16;
        let x = pad(&x, padded);
        let ae = crate::nn::ConvAutoencoder::new(padded, t.channels, t.latent_dim, seed.wrapping_mul(7919));
        ae.train(&x, t.steps, t.lr, t.input_noise, t.latent_noise, seed, progress);
        let (latents, z) = Standardizer::fit(&ae.encode(&x).detach());
        Ok((LatentSpace { normalizer, padded, ae, latents }, z))
    }

    /// Full flat weights (n × P) from standardised latents (n × latent_dim).
    pub fn decode(&self, z: &Tensor) -> Tensor {
        let decoded = self.ae.decode(&self.latents.restore(z)).detach();
        let p = self.normalizer.varying;
        let flat = if self.padded > p { decoded.narrow(1, 0, p) } else { decoded };
        self.normalizer.restore(&flat)
    }
}
