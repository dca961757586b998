//! The declared networks `weightlab bench zoo` trains beside PyTorch (`--arch NAME`, the names
//! of [`DECLARED`]), written as a manifest's `[zoo]` table writes them, so the bench and the
//! `train_zoo` example time the same networks (`benches/zoo.py` builds them in PyTorch).

/// LeNet-5 with BatchNorm: conv 6@5×5 (padding 2), BatchNorm, ReLU, max-pool 2, conv 16@5×5,
/// ReLU, max-pool 2, linear 400→120→84→10.
pub const LENET5: &str = r#"arch = { kind = "sequential", layers = [
  { type = "conv2d", out = 6, kernel = 5, padding = 2 }, { type = "batchnorm2d" }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "conv2d", out = 16, kernel = 5 }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "flatten" }, { type = "linear", out = 120 }, { type = "relu" }, { type = "linear", out = 84 }, { type = "relu" }, { type = "linear", out = 10 },
] }"#;
/// [`LENET5`] with GELU instead of ReLU in its classifier and dropout 0.2 after each of its two
/// hidden linear layers: the layers the declared engine took from the tape in session 35.
pub const LENET5_GELU_DROPOUT: &str = r#"arch = { kind = "sequential", layers = [
  { type = "conv2d", out = 6, kernel = 5, padding = 2 }, { type = "batchnorm2d" }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "conv2d", out = 16, kernel = 5 }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "flatten" }, { type = "linear", out = 120 }, { type = "gelu" }, { type = "dropout", p = 0.2 },
  { type = "linear", out = 84 }, { type = "gelu" }, { type = "dropout", p = 0.2 }, { type = "linear", out = 10 },
] }"#;
/// A stem conv with BatchNorm and max-pooling, then two residual blocks with BatchNorm, the
/// second widening to 16 channels through a 1×1 conv shortcut.
pub const RESNET_SMALL: &str = r#"arch = { kind = "sequential", layers = [
  { type = "conv2d", out = 8, kernel = 3, padding = 1, bias = false }, { type = "batchnorm2d" }, { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "residual", layers = [ { type = "conv2d", out = 8, kernel = 3, padding = 1, bias = false }, { type = "batchnorm2d" }, { type = "relu" },
                                  { type = "conv2d", out = 8, kernel = 3, padding = 1, bias = false }, { type = "batchnorm2d" } ] },
  { type = "relu" }, { type = "maxpool2d", kernel = 2 },
  { type = "residual", layers = [ { type = "conv2d", out = 16, kernel = 3, padding = 1, bias = false }, { type = "batchnorm2d" }, { type = "relu" },
                                  { type = "conv2d", out = 16, kernel = 3, padding = 1, bias = false }, { type = "batchnorm2d" } ],
                       shortcut = [ { type = "conv2d", out = 16, kernel = 1, bias = false }, { type = "batchnorm2d" } ] },
  { type = "relu" }, { type = "adaptive_avgpool2d" }, { type = "flatten" }, { type = "linear", out = 10 },
] }"#;

/// The `arch` of a `[zoo]` table written as `text` (one of the networks above).
/// Every declared bench network by the name `--arch` and `benches/zoo.py` know it by.
pub const DECLARED: &[(&str, &str)] = &[("lenet5", LENET5), ("lenet5-gelu-dropout", LENET5_GELU_DROPOUT), ("resnet-small", RESNET_SMALL)];

/// The declared bench network called `name`, parsed; `None` for a name [`DECLARED`] lacks.
pub fn named(name: &str) -> Option<Result<weightlab_manifest::ArchSpec, String>> {
    DECLARED.iter().find(|(n, _)| *n == name).map(|(_, text)| declared(text))
}

pub fn declared(text: &str) -> Result<weightlab_manifest::ArchSpec, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    table.get("arch").cloned().ok_or("no `arch` in a declared network")?.try_into().map_err(|e: toml::de::Error| e.to_string())
}
