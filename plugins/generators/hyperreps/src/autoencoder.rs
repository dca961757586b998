//! The two autoencoders and their training: the CPU-scale MLP over the flat varying
//! coordinates, and the paper's transformer over per-unit tokens; both optionally with the
//! paper's contrastive term and permutation augmentation.

use crate::Reconstruct;
use crate::tokens::{PermutationPool, Tokens};
use weightlab_sdk::nn::{Act, Linear, Mlp, Transformer};
use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::Normalizer;

/// Sizes of the transformer autoencoder.
pub struct TransformerShape {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
}

/// The paper's autoencoder: per-unit tokens embedded by one shared linear map plus a learned
/// position, a transformer encoder whose output sequence is compressed linearly to the latent,
/// and the mirror image back (latent → a sequence of token embeddings → transformer → one shared
/// linear map back to token entries).
pub struct TokenAutoencoder {
    embed: Linear,
    position_in: Tensor,
    encoder: Transformer,
    to_latent: Linear,
    from_latent: Linear,
    position_out: Tensor,
    decoder: Transformer,
    head: Linear,
    count: usize,
    dim: usize,
}

impl TokenAutoencoder {
    fn new(tokens: &Tokens, shape: &TransformerShape, latent: usize, seed: u64) -> Self {
        let (count, dim) = (tokens.count, shape.dim);
        TokenAutoencoder {
            embed: Linear::new(tokens.size, dim, seed),
            position_in: (Tensor::randn(&[count, dim], seed.wrapping_add(1)) * 0.02).parameter(),
            encoder: Transformer::new(dim, shape.depth, shape.heads, seed.wrapping_add(2)),
            to_latent: Linear::new(count * dim, latent, seed.wrapping_add(3)),
            from_latent: Linear::new(latent, count * dim, seed.wrapping_add(4)),
            position_out: (Tensor::randn(&[count, dim], seed.wrapping_add(5)) * 0.02).parameter(),
            decoder: Transformer::new(dim, shape.depth, shape.heads, seed.wrapping_add(6)),
            head: Linear::new(dim, tokens.size, seed.wrapping_add(7)),
            count,
            dim,
        }
    }

    /// Token sequences (N × count × size) → latents (N × latent).
    fn encode(&self, tokens: &Tensor) -> Tensor {
        let n = tokens.shape()[0] as i64;
        let h = &self.embed.forward(tokens) + &self.position_in.unsqueeze(0);
        self.to_latent.forward(&self.encoder.forward(&h).reshape(&[n, -1]))
    }

    /// Latents (N × latent) → token sequences (N × count × size).
    fn decode(&self, z: &Tensor) -> Tensor {
        let n = z.shape()[0] as i64;
        let h = &self.from_latent.forward(z).reshape(&[n, self.count as i64, self.dim as i64]) + &self.position_out.unsqueeze(0);
        self.head.forward(&self.decoder.forward(&h))
    }

    fn params(&self) -> Vec<&Tensor> {
        let mut p = self.embed.params();
        p.push(&self.position_in);
        p.extend(self.encoder.params());
        p.extend(self.to_latent.params());
        p.extend(self.from_latent.params());
        p.push(&self.position_out);
        p.extend(self.decoder.params());
        p.extend(self.head.params());
        p
    }
}

/// An autoencoder over weights with its own normalisation ("model space": what it encodes and
/// what its decoder returns, N × p).
pub enum Coder {
    /// MLP encoder and decoder over the normalised varying coordinates.
    Mlp { normalizer: Normalizer, encoder: Mlp, decoder: Mlp },
    /// The transformer over per-unit tokens, per-tensor normalisation.
    Transformer { tokens: Tokens, net: TokenAutoencoder },
}

impl Coder {
    /// An MLP autoencoder; `weights` are what it trains on (model space follows from them).
    pub fn mlp(weights: &Tensor, hidden: usize, latent: usize, seed: u64) -> Result<(Coder, Tensor), String> {
        let (normalizer, x) = Normalizer::fit(weights)?;
        let p = normalizer.varying;
        let encoder = Mlp::new(&[p, hidden, hidden, latent], Act::Gelu, seed.wrapping_mul(31));
        let decoder = Mlp::new(&[latent, hidden, hidden, p], Act::Gelu, seed.wrapping_mul(37));
        Ok((Coder::Mlp { normalizer, encoder, decoder }, x))
    }

    /// The transformer autoencoder over the units of `layout`.
    pub fn transformer(layout: &[Param], weights: &Tensor, shape: &TransformerShape, latent: usize, seed: u64) -> Result<(Coder, Tensor), String> {
        let tokens = Tokens::new(layout, weights)?;
        let x = tokens.normalise(weights);
        log::message(&format!(
            "transformer autoencoder: {} tokens of {} entries (one per unit), width {}, depth {}; {} coordinates every checkpoint shares are copied, not modelled",
            tokens.count, tokens.size, shape.dim, shape.depth, tokens.constant
        ));
        let net = TokenAutoencoder::new(&tokens, shape, latent, seed.wrapping_mul(41));
        Ok((Coder::Transformer { tokens, net }, x))
    }

    /// Model space (N × p) → latents.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        match self {
            Coder::Mlp { encoder, .. } => encoder.forward(x),
            Coder::Transformer { tokens, net } => net.encode(&tokens.tokenise(x)),
        }
    }

    /// Latents → model space (N × p).
    pub fn decode(&self, z: &Tensor) -> Tensor {
        match self {
            Coder::Mlp { decoder, .. } => decoder.forward(z),
            Coder::Transformer { tokens, net } => tokens.flatten(&net.decode(z)),
        }
    }

    /// Model space → raw flat weights (N × P).
    pub fn restore(&self, x: &Tensor) -> Tensor {
        match self {
            Coder::Mlp { normalizer, .. } => normalizer.restore(x),
            Coder::Transformer { tokens, .. } => tokens.restore(x),
        }
    }

    pub fn params(&self) -> Vec<&Tensor> {
        match self {
            Coder::Mlp { encoder, decoder, .. } => encoder.params().into_iter().chain(decoder.params()).collect(),
            Coder::Transformer { net, .. } => net.params(),
        }
    }
}

/// How the autoencoder trains.
pub struct Training {
    pub steps: usize,
    pub lr: f32,
    pub input_noise: f32,
    /// Weight of the NT-Xent term (0: reconstruction only).
    pub contrastive: f32,
    pub temperature: f32,
    /// A reordering of every model's hidden units drawn at every step (the transformer's model
    /// space only: its normalisation commutes with reordering, the MLP's does not).
    pub permute: Option<PermutationPool>,
    /// With `permute`: the decoder's target is the permuted view or the original checkpoint.
    pub reconstruct: Reconstruct,
}

/// Trains `coder` on `x` (model space). Every step draws a view of each model — reordered when
/// `permute` is set, plus input noise — and asks the decoder for the clean model (reordered
/// like the view, or in its own order: `reconstruct`);
/// with `contrastive > 0` a second view joins, both are reconstructed, and NT-Xent pulls the
/// two views' projected latents together against every other model's.
pub fn train(coder: &Coder, x: &Tensor, training: &Training, latent: usize, seed: u64) {
    let projection = Mlp::new(&[latent, latent, latent], Act::Gelu, seed.wrapping_mul(43));
    let mut params = coder.params();
    if training.contrastive > 0.0 {
        params.extend(projection.params());
    }
    let opt = Optimizer::new(OptimizerKind::Adamw, &params, training.lr, 1e-5);
    let view = |step: usize, k: u64| -> (Tensor, Tensor) {
        let view_seed = seed ^ ((step as u64) << 20) ^ (k << 52);
        let clean = match &training.permute {
            Some(pool) => pool.permute(x, view_seed.wrapping_add(2)),
            None => x.clone(),
        };
        let noisy = &clean + &(Tensor::randn(&clean.shape(), view_seed.wrapping_add(1)) * training.input_noise);
        let target = if training.reconstruct == Reconstruct::Original { x.clone() } else { clean };
        (noisy, target)
    };
    for step in 0..training.steps {
        let (input, target) = view(step, 0);
        let z = coder.encode(&input);
        let reconstruction = coder.decode(&z).mse(&target);
        let loss = if training.contrastive > 0.0 {
            let (input_b, target_b) = view(step, 1);
            let z_b = coder.encode(&input_b);
            let both = &(&reconstruction + &coder.decode(&z_b).mse(&target_b)) * 0.5;
            let contrast = nt_xent(&projection.forward(&z), &projection.forward(&z_b), training.temperature);
            if step % 50 == 0 || step + 1 == training.steps {
                log::metric("nt-xent", step, contrast.item());
            }
            &both + &(contrast * training.contrastive)
        } else {
            reconstruction
        };
        opt.step_on(&loss);
        if step % 50 == 0 || step + 1 == training.steps {
            log::metric("ae-loss", step, loss.item());
            log::progress(step, training.steps);
        }
    }
}

/// NT-Xent (SimCLR's normalised temperature-scaled cross-entropy) between two views (N × d
/// each): row i of `a` should be most similar to row i of `b` among all 2N − 1 other rows.
pub fn nt_xent(a: &Tensor, b: &Tensor, temperature: f32) -> Tensor {
    let n = a.shape()[0];
    let z = Tensor::cat(&[a, b], 0);
    let z = &z * &z.square().sum(1, true).affine(1.0, 1e-8).pow(-0.5);
    // A row is never its own candidate: a large negative on the diagonal.
    let similarity = &(z.matmul(&z.transpose(0, 1)) * (1.0 / temperature)) + &(Tensor::eye(2 * n) * -1e4);
    let targets: Vec<f32> = (0..2 * n).map(|i| ((i + n) % (2 * n)) as f32).collect();
    similarity.cross_entropy(&Tensor::from_slice(&targets, &[2 * n]))
}
