//! The manifest `weightlab init` writes.

/// The manifest `weightlab init` writes: small enough to run in a minute on a laptop, with the
/// next things a researcher changes named in comments.
const STARTER: &str = r#"# A weightlab experiment: `weightlab validate {file}`, then `weightlab run {file}`.
# Every key, its type and default: `weightlab schema`; the manual: `make docs`.

[experiment]
name = "{name}"
seeds = [0, 1]                      # every method runs once per seed; reports aggregate over seeds

[data.fmnist]
source = "fashion-mnist"            # or your own: "idx", "tensors" (.npz/.safetensors), "image-folder", "cifar10"
train_subset = 4000
test_subset = 1000

[zoo.mlp]
data = "fmnist"
arch = { kind = "mlp", hidden = [32] }  # or { kind = "sequential", layers = [...] }, or import = "my-zoo/"
models = 12
train = { lr = 3e-3, epochs = 2, batch_size = 64 }
split = { train = 10, heldout = 2 }   # methods learn from 10 models; 2 stay aside as "new" models

[[method]]
name = "noise"                      # Zeng et al.'s baseline: training weights + Gaussian noise
plugin = "noise"                    # `weightlab plugins` lists every plugin; `weightlab plugin inspect noise` its options
zoo = "mlp"
samples = 8
config = { sigma = 0.01 }

[[method]]
name = "copy"                       # the training checkpoints themselves: the memorization ceiling
plugin = "copy"
zoo = "mlp"
samples = 8
"#;

/// The starter manifest for experiment `name`, saying to validate and run `file`.
pub fn starter(name: &str, file: &str) -> String {
    STARTER.replace("{name}", name).replace("{file}", file)
}
