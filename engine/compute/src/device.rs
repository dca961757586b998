//! The one place that picks where tensors live: libtorch on the CPU.

use burn::tensor::Device;

/// The libtorch CPU device (burn marks its LibTorch backend deprecated in favour of its own
/// CPU backends; we keep libtorch because batched small-model training runs at PyTorch parity
/// on it, see FACTS/benches).
#[allow(deprecated)]
pub fn cpu() -> Device {
    Device::libtorch()
}
