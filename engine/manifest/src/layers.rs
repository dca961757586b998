//! Layers of a declared network (`arch = { kind = "sequential", layers = [...] }`): what a
//! researcher writes as `nn.Sequential(*layers)` in PyTorch, as data. Widths and input shapes
//! are not written: they follow from the dataset (`weightlab_compute::arch::sequential` infers
//! them and names the layer where a shape does not fit). Parameter names are PyTorch's: the
//! layer's index in the sequence, then the module's own names (`0.weight`, `1.running_mean`,
//! `3.layers.0.weight` inside a residual block).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One layer of a `sequential` network, `type = "…"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// `nn.Linear(in, out)` on flat inputs (`weight` [out, in], `bias` [out]); `in` is inferred.
    Linear {
        /// Output features.
        #[schemars(range(min = 1, max = 1_000_000))]
        out: usize,
        /// Whether it has a bias.
        #[serde(default = "yes")]
        bias: bool,
    },
    /// `nn.Conv2d(in, out, kernel, stride, padding)` on (channels, height, width) inputs
    /// (`weight` [out, in, kernel, kernel], `bias` [out]).
    Conv2d {
        /// Output channels.
        #[schemars(range(min = 1, max = 100_000))]
        out: usize,
        /// Square kernel size.
        #[schemars(range(min = 1, max = 1_000))]
        kernel: usize,
        #[serde(default = "one")]
        #[schemars(range(min = 1, max = 1_000))]
        stride: usize,
        /// Zero padding on every side.
        #[serde(default)]
        #[schemars(range(max = 1_000))]
        padding: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    /// `nn.BatchNorm1d(features)` on flat inputs: batch statistics while training, running
    /// statistics (momentum 0.1, eps 1e-5) in evaluation; `weight`, `bias`, `running_mean`,
    /// `running_var` and `num_batches_tracked` in the state_dict.
    Batchnorm1d {},
    /// `nn.BatchNorm2d(channels)` on (channels, height, width) inputs, as `batchnorm1d` per channel.
    Batchnorm2d {},
    /// `nn.LayerNorm(features)` on flat inputs (eps 1e-5; `weight`, `bias`).
    Layernorm {},
    /// `nn.MaxPool2d(kernel, stride)`; stride defaults to the kernel, as in PyTorch.
    Maxpool2d {
        #[schemars(range(min = 1, max = 1_000))]
        kernel: usize,
        #[serde(default)]
        #[schemars(range(min = 1, max = 1_000))]
        stride: Option<usize>,
    },
    /// `nn.AvgPool2d(kernel, stride)`; stride defaults to the kernel.
    Avgpool2d {
        #[schemars(range(min = 1, max = 1_000))]
        kernel: usize,
        #[serde(default)]
        #[schemars(range(min = 1, max = 1_000))]
        stride: Option<usize>,
    },
    /// `nn.AdaptiveAvgPool2d(1)`: the mean of each channel (output 1×1).
    AdaptiveAvgpool2d {},
    /// `nn.Flatten()`: (channels, height, width) → channels·height·width, channel-major.
    Flatten {},
    /// `nn.Dropout(p)`: zeroes inputs with probability `p` while training; identity in evaluation.
    Dropout {
        #[serde(default = "half")]
        #[schemars(range(min = 0.0, max = 0.99))]
        p: f64,
    },
    /// `nn.ReLU()`
    Relu {},
    /// `nn.GELU()` (the exact, erf form).
    Gelu {},
    /// `nn.Tanh()`
    Tanh {},
    /// `nn.Sigmoid()`
    Sigmoid {},
    /// `nn.SiLU()`
    Silu {},
    /// `nn.LeakyReLU(negative_slope)`
    LeakyRelu {
        #[serde(default = "default_slope")]
        negative_slope: f64,
    },
    /// sin(w0 · x), as in SIREN neural fields (a module with no parameters in PyTorch).
    Sine {
        #[serde(default = "default_w0")]
        w0: f64,
    },
    /// `layers(x) + shortcut(x)`: a module whose submodules `layers` and `shortcut` are each an
    /// `nn.Sequential` (names `3.layers.0.weight`, `3.shortcut.0.weight`); the shortcut is the
    /// identity when absent.
    Residual {
        #[schemars(length(min = 1, max = 1_000))]
        layers: Vec<LayerSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 1_000))]
        shortcut: Option<Vec<LayerSpec>>,
    },
}

impl LayerSpec {
    /// The `type = "…"` value, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::Batchnorm1d {} => "batchnorm1d",
            LayerSpec::Batchnorm2d {} => "batchnorm2d",
            LayerSpec::Layernorm {} => "layernorm",
            LayerSpec::Maxpool2d { .. } => "maxpool2d",
            LayerSpec::Avgpool2d { .. } => "avgpool2d",
            LayerSpec::AdaptiveAvgpool2d {} => "adaptive_avgpool2d",
            LayerSpec::Flatten {} => "flatten",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Relu {} => "relu",
            LayerSpec::Gelu {} => "gelu",
            LayerSpec::Tanh {} => "tanh",
            LayerSpec::Sigmoid {} => "sigmoid",
            LayerSpec::Silu {} => "silu",
            LayerSpec::LeakyRelu { .. } => "leaky_relu",
            LayerSpec::Sine { .. } => "sine",
            LayerSpec::Residual { .. } => "residual",
        }
    }

    /// Layers in all, nested ones included (bounds the work a shared manifest can ask for).
    pub fn count(layers: &[LayerSpec]) -> usize {
        layers
            .iter()
            .map(|l| match l {
                LayerSpec::Residual { layers, shortcut } => 1 + Self::count(layers) + shortcut.as_deref().map_or(0, Self::count),
                _ => 1,
            })
            .sum()
    }
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn half() -> f64 {
    0.5
}
fn default_slope() -> f64 {
    0.01
}
fn default_w0() -> f64 {
    30.0
}
