//! The one place that picks where tensors live: libtorch on the CPU.

use burn::tensor::Device;

/// The libtorch CPU device (burn marks its LibTorch backend deprecated in favour of its own
/// CPU backends; we keep libtorch because batched small-model training runs at PyTorch parity
/// on it, see FACTS/benches).
#[allow(deprecated)]
pub fn cpu() -> Device {
    Device::libtorch()
}

/// What computes, for the report's provenance: the backend stack and the device.
pub fn description() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("libtorch (PyTorch {TORCH}) via burn 0.22's tch backend, CPU, {cores} cores")
}

/// The PyTorch release whose libtorch the set-up installs (`engine/scripts/setup.sh`).
pub const TORCH: &str = "2.9.0";
