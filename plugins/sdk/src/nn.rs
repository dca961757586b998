//! A small layer kit on the host's fused blocks. Layers hold their parameters as tensors made
//! with [`Tensor::parameter`]; `params()` lists them for an [`crate::Optimizer`].

use crate::Tensor;

/// Dense layer `y = x Wᵀ + b`, initialised like PyTorch's `nn.Linear` (uniform ±1/√in).
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(inputs: usize, outputs: usize, seed: u64) -> Self {
        let bound = 1.0 / (inputs as f32).sqrt();
        Linear { weight: Tensor::uniform(&[outputs, inputs], -bound, bound, seed).parameter(), bias: Tensor::uniform(&[outputs], -bound, bound, seed.wrapping_add(1)).parameter() }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
    pub fn params(&self) -> Vec<&Tensor> {
        vec![&self.weight, &self.bias]
    }
}

/// Layer normalisation over the last dimension with learned scale and shift.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl LayerNorm {
    pub fn new(size: usize) -> Self {
        LayerNorm { weight: Tensor::full(&[size], 1.0).parameter(), bias: Tensor::zeros(&[size]).parameter() }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(Some(&self.weight), Some(&self.bias), 1e-5)
    }
    pub fn params(&self) -> Vec<&Tensor> {
        vec![&self.weight, &self.bias]
    }
}

/// Activation between MLP layers.
#[derive(Debug, Clone, Copy)]
pub enum Act {
    Relu,
    Silu,
    Gelu,
    Tanh,
}

/// A multi-layer perceptron `sizes[0] → … → sizes[n]`, activation between layers.
pub struct Mlp {
    pub layers: Vec<Linear>,
    pub act: Act,
}

impl Mlp {
    pub fn new(sizes: &[usize], act: Act, seed: u64) -> Self {
        let layers = sizes.windows(2).enumerate().map(|(i, w)| Linear::new(w[0], w[1], seed.wrapping_add(2 * i as u64 + 17))).collect();
        Mlp { layers, act }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        // Never start from `x.clone()`: a clone is a detached handle, which would cut the
        // gradient to whatever computed `x` (a set encoder, the encoder before a decoder).
        let Some((first, rest)) = self.layers.split_first() else { return x.affine(1.0, 0.0) };
        let mut h = first.forward(x);
        for layer in rest {
            h = match self.act {
                Act::Relu => h.relu(),
                Act::Silu => h.silu(),
                Act::Gelu => h.gelu(),
                Act::Tanh => h.tanh(),
            };
            h = layer.forward(&h);
        }
        h
    }
    pub fn params(&self) -> Vec<&Tensor> {
        self.layers.iter().flat_map(Linear::params).collect()
    }
}

/// 1-D convolution over (N × C × L), PyTorch-initialised.
pub struct Conv1d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: usize,
    pub padding: usize,
}

impl Conv1d {
    pub fn new(cin: usize, cout: usize, kernel: usize, stride: usize, padding: usize, seed: u64) -> Self {
        let bound = 1.0 / ((cin * kernel) as f32).sqrt();
        Conv1d { weight: Tensor::uniform(&[cout, cin, kernel], -bound, bound, seed).parameter(), bias: Tensor::uniform(&[cout], -bound, bound, seed.wrapping_add(1)).parameter(), stride, padding }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv1d(&self.weight, Some(&self.bias), self.stride, self.padding)
    }
    pub fn params(&self) -> Vec<&Tensor> {
        vec![&self.weight, &self.bias]
    }
}

/// Transposed 1-D convolution over (N × C × L), PyTorch-initialised.
pub struct ConvTranspose1d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: usize,
    pub padding: usize,
}

impl ConvTranspose1d {
    pub fn new(cin: usize, cout: usize, kernel: usize, stride: usize, padding: usize, seed: u64) -> Self {
        let bound = 1.0 / ((cout * kernel) as f32).sqrt();
        ConvTranspose1d {
            weight: Tensor::uniform(&[cin, cout, kernel], -bound, bound, seed).parameter(),
            bias: Tensor::uniform(&[cout], -bound, bound, seed.wrapping_add(1)).parameter(),
            stride,
            padding,
        }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv_transpose1d(&self.weight, Some(&self.bias), self.stride, self.padding, 0)
    }
    pub fn params(&self) -> Vec<&Tensor> {
        vec![&self.weight, &self.bias]
    }
}

/// Sinusoidal embedding of diffusion timesteps (N) → (N × dim), as in DDPM/Transformers.
pub fn timestep_embedding(t: &Tensor, dim: usize) -> Tensor {
    let half = dim / 2;
    let freqs: Vec<f32> = (0..half).map(|i| (-(10_000f32.ln()) * i as f32 / half as f32).exp()).collect();
    let args = t.unsqueeze(1).matmul(&Tensor::from_slice(&freqs, &[1, half]));
    Tensor::cat(&[&args.sin(), &args.cos()], 1)
}

/// Multi-head self-attention over tokens (N × L × D) on the host's fused attention.
pub struct SelfAttention {
    pub qkv: Linear,
    pub out: Linear,
    pub heads: usize,
    /// Each token attends only to itself and earlier ones (autoregressive models).
    pub causal: bool,
}

impl SelfAttention {
    pub fn new(dim: usize, heads: usize, seed: u64) -> Self {
        assert!(heads > 0 && dim.is_multiple_of(heads), "attention width {dim} must be a multiple of {heads} heads");
        SelfAttention { qkv: Linear::new(dim, 3 * dim, seed), out: Linear::new(dim, dim, seed.wrapping_add(2)), heads, causal: false }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let s = x.shape();
        let (n, l, d) = (s[0] as i64, s[1] as i64, s[2] as i64);
        let h = self.heads as i64;
        let qkv = self.qkv.forward(x).reshape(&[n, l, 3, h, d / h]);
        // (N × L × H × Dh) → (N × H × L × Dh)
        let part = |i: usize| qkv.narrow(2, i, 1).reshape(&[n, l, h, d / h]).transpose(1, 2);
        let att = part(0).attention(&part(1), &part(2), self.causal);
        self.out.forward(&att.transpose(1, 2).reshape(&[n, l, d]))
    }
    pub fn params(&self) -> Vec<&Tensor> {
        self.qkv.params().into_iter().chain(self.out.params()).collect()
    }
}

/// A pre-norm transformer encoder block: x + attn(ln(x)), then x + mlp(ln(x)).
pub struct TransformerBlock {
    pub ln1: LayerNorm,
    pub attn: SelfAttention,
    pub ln2: LayerNorm,
    pub mlp: Mlp,
}

impl TransformerBlock {
    pub fn new(dim: usize, heads: usize, seed: u64) -> Self {
        TransformerBlock { ln1: LayerNorm::new(dim), attn: SelfAttention::new(dim, heads, seed), ln2: LayerNorm::new(dim), mlp: Mlp::new(&[dim, 4 * dim, dim], Act::Gelu, seed.wrapping_add(10)) }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = x + &self.attn.forward(&self.ln1.forward(x));
        &x + &self.mlp.forward(&self.ln2.forward(&x))
    }
    pub fn params(&self) -> Vec<&Tensor> {
        let mut p = self.ln1.params();
        p.extend(self.attn.params());
        p.extend(self.ln2.params());
        p.extend(self.mlp.params());
        p
    }
}

/// A stack of [`TransformerBlock`]s with a final layer norm.
pub struct Transformer {
    pub blocks: Vec<TransformerBlock>,
    pub ln: LayerNorm,
}

impl Transformer {
    pub fn new(dim: usize, depth: usize, heads: usize, seed: u64) -> Self {
        Transformer { blocks: (0..depth).map(|i| TransformerBlock::new(dim, heads, seed.wrapping_add(100 * i as u64))).collect(), ln: LayerNorm::new(dim) }
    }
    /// A decoder-only stack: every block attends causally (GPT-style autoregression).
    pub fn causal(dim: usize, depth: usize, heads: usize, seed: u64) -> Self {
        let mut t = Self::new(dim, depth, heads, seed);
        t.blocks.iter_mut().for_each(|b| b.attn.causal = true);
        t
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.blocks.first().map(|b| b.forward(x)).unwrap_or_else(|| x.affine(1.0, 0.0));
        for b in self.blocks.iter().skip(1) {
            h = b.forward(&h);
        }
        self.ln.forward(&h)
    }
    pub fn params(&self) -> Vec<&Tensor> {
        self.blocks.iter().flat_map(TransformerBlock::params).chain(self.ln.params()).collect()
    }
}

/// p-diff's autoencoder over a flat (padded) parameter vector: four stride-2 1-D convolutions,
/// a linear bottleneck to the latent, and the mirror image back. `padded` must be a multiple
/// of 16.
pub struct ConvAutoencoder {
    down: Vec<Conv1d>,
    to_latent: Linear,
    from_latent: Linear,
    up: Vec<ConvTranspose1d>,
    channels: usize,
    reduced: usize,
}

impl ConvAutoencoder {
    pub fn new(padded: usize, channels: usize, latent: usize, seed: u64) -> Self {
        let chans = [1, channels, channels, channels, channels];
        let down = (0..4).map(|i| Conv1d::new(chans[i], chans[i + 1], 4, 2, 1, seed + 10 * i as u64)).collect();
        let up = (0..4).rev().map(|i| ConvTranspose1d::new(chans[i + 1], if i == 0 { channels } else { chans[i] }, 4, 2, 1, seed + 100 + 10 * i as u64)).collect();
        let reduced = padded / 16;
        ConvAutoencoder { down, to_latent: Linear::new(channels * reduced, latent, seed + 200), from_latent: Linear::new(latent, channels * reduced, seed + 300), up, channels, reduced }
    }

    /// (N × padded) → (N × latent), bounded to (−1, 1) so that latent noise has a fixed
    /// meaning relative to the codes' range.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0] as i64;
        let mut h = x.unsqueeze(1);
        for conv in &self.down {
            h = conv.forward(&h).silu();
        }
        self.to_latent.forward(&h.reshape(&[n, -1])).tanh()
    }

    /// (N × latent) → (N × padded)
    pub fn decode(&self, z: &Tensor) -> Tensor {
        let n = z.shape()[0] as i64;
        let mut h = self.from_latent.forward(z).reshape(&[n, self.channels as i64, self.reduced as i64]);
        let (last, hidden) = self.up.split_last().expect("four layers");
        for conv in hidden {
            h = conv.forward(&h).silu();
        }
        // The last layer keeps `channels` outputs; their mean is the reconstruction. The layer
        // is linear, so that mean is one transposed convolution with the weights and bias
        // averaged over its outputs: the same function and the same gradients, computed on a
        // `channels`-th of the largest tensors of the step.
        let weight = last.weight.mean(1, true);
        let bias = last.bias.mean(0, true);
        h.conv_transpose1d(&weight, Some(&bias), last.stride, last.padding, 0).reshape(&[n, -1])
    }

    pub fn params(&self) -> Vec<&Tensor> {
        self.down.iter().flat_map(Conv1d::params).chain(self.to_latent.params()).chain(self.from_latent.params()).chain(self.up.iter().flat_map(ConvTranspose1d::params)).collect()
    }

    /// Trains the autoencoder on `x` (N × padded) for `steps` full-batch AdamW steps with
    /// p-diff's input noise and latent noise; logs `ae-loss`. Returns the last loss.
    pub fn train(&self, x: &Tensor, steps: usize, lr: f32, input_noise: f32, latent_noise: f32, seed: u64, progress: (usize, usize)) -> f32 {
        let opt = crate::Optimizer::new(crate::OptimizerKind::Adamw, &self.params(), lr, 2e-6);
        let shape = x.shape();
        let mut last = f32::NAN;
        for step in 0..steps {
            let noisy = x + &(Tensor::randn(&shape, seed ^ (step as u64) << 20) * input_noise);
            let z = self.encode(&noisy);
            let z = &z + &(Tensor::randn(&z.shape(), seed ^ (step as u64) << 21 ^ 1) * latent_noise);
            let loss = self.decode(&z).mse(x);
            opt.step_on(&loss);
            if step % 50 == 0 || step + 1 == steps {
                last = loss.item();
                crate::log::metric("ae-loss", step, last);
                crate::log::progress(progress.0 + step, progress.1);
            }
        }
        last
    }
}

/// One linear map per token: (N × tokens × inputs) → (N × tokens × outputs), token i through
/// its own weight. G.pt and HyperDiffusion project each parameter chunk with its own encoder
/// and decoder: a chunk of the first layer and one of the last have nothing in common.
pub struct TokenLinear {
    /// tokens × inputs × outputs
    pub weight: Tensor,
    /// tokens × outputs
    pub bias: Tensor,
}

impl TokenLinear {
    pub fn new(tokens: usize, inputs: usize, outputs: usize, seed: u64) -> Self {
        let bound = 1.0 / (inputs as f32).sqrt();
        TokenLinear { weight: Tensor::uniform(&[tokens, inputs, outputs], -bound, bound, seed).parameter(), bias: Tensor::uniform(&[tokens, outputs], -bound, bound, seed.wrapping_add(1)).parameter() }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        // (tokens × N × inputs) · (tokens × inputs × outputs), batched over tokens.
        &x.transpose(0, 1).matmul(&self.weight).transpose(0, 1) + &self.bias.unsqueeze(0)
    }

    pub fn params(&self) -> Vec<&Tensor> {
        vec![&self.weight, &self.bias]
    }
}

/// A transformer denoiser over weight tokens, as in HyperDiffusion and G.pt: the flat
/// (padded) vector is cut into `tokens` chunks of `token_size` in layout order (so large layers
/// span several tokens), each chunk is embedded by its own linear encoder, a learned position
/// embedding, the diffusion timestep's embedding and (optionally) a scalar condition's
/// embedding are added, and a transformer followed by per-token linear decoders predicts each
/// chunk (its noise or its clean value, as the diffusion is set up).
pub struct TokenDenoiser {
    pub embed: TokenLinear,
    pub position: Tensor,
    pub time: Mlp,
    pub condition: Option<Mlp>,
    pub transformer: Transformer,
    pub head: TokenLinear,
    pub tokens: usize,
    pub token_size: usize,
    time_dim: usize,
}

impl TokenDenoiser {
    /// `conditioned`: whether `forward` takes a scalar condition per row (G.pt's target metric).
    pub fn new(tokens: usize, token_size: usize, dim: usize, depth: usize, heads: usize, conditioned: bool, seed: u64) -> Self {
        let time_dim = 64;
        TokenDenoiser {
            embed: TokenLinear::new(tokens, token_size, dim, seed),
            position: (Tensor::randn(&[tokens, dim], seed.wrapping_add(1)) * 0.02).parameter(),
            time: Mlp::new(&[time_dim, dim, dim], Act::Silu, seed.wrapping_add(2)),
            condition: conditioned.then(|| Mlp::new(&[1, dim, dim], Act::Silu, seed.wrapping_add(3))),
            transformer: Transformer::new(dim, depth, heads, seed.wrapping_add(4)),
            head: TokenLinear::new(tokens, dim, token_size, seed.wrapping_add(5)),
            tokens,
            token_size,
            time_dim,
        }
    }

    /// x (N × tokens·token_size), t (N), condition (N × 1) → a prediction shaped like x.
    pub fn forward(&self, x: &Tensor, t: &Tensor, condition: Option<&Tensor>) -> Tensor {
        let n = x.shape()[0] as i64;
        let h = self.embed.forward(&x.reshape(&[n, self.tokens as i64, self.token_size as i64]));
        let mut extra = self.time.forward(&timestep_embedding(t, self.time_dim));
        if let (Some(mlp), Some(c)) = (&self.condition, condition) {
            extra = &extra + &mlp.forward(c);
        }
        let h = &(&h + &self.position.unsqueeze(0)) + &extra.unsqueeze(1);
        self.head.forward(&self.transformer.forward(&h)).reshape(&[n, -1])
    }

    pub fn params(&self) -> Vec<&Tensor> {
        let mut p = self.embed.params();
        p.push(&self.position);
        p.extend(self.time.params());
        if let Some(c) = &self.condition {
            p.extend(c.params());
        }
        p.extend(self.transformer.params());
        p.extend(self.head.params());
        p
    }
}
