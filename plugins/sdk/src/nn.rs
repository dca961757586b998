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
        Linear {
            weight: Tensor::uniform(&[outputs, inputs], -bound, bound, seed).parameter(),
            bias: Tensor::uniform(&[outputs], -bound, bound, seed.wrapping_add(1)).parameter(),
        }
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
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h);
            if i + 1 < self.layers.len() {
                h = match self.act {
                    Act::Relu => h.relu(),
                    Act::Silu => h.silu(),
                    Act::Gelu => h.gelu(),
                    Act::Tanh => h.tanh(),
                };
            }
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
        Conv1d {
            weight: Tensor::uniform(&[cout, cin, kernel], -bound, bound, seed).parameter(),
            bias: Tensor::uniform(&[cout], -bound, bound, seed.wrapping_add(1)).parameter(),
            stride,
            padding,
        }
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
