//! The one place that picks where tensors live: libtorch on the CPU, or on a CUDA GPU when
//! `[experiment] device` (or `--device`) asks for one and libtorch sees it.

use std::sync::OnceLock;

use burn::tensor::Device;
use weightlab_manifest::DeviceSpec;

/// The device this process computes on, chosen once by [`select`] (the CPU until then).
static CHOSEN: OnceLock<tch::Device> = OnceLock::new();

/// What [`select`] chose, and anything worth telling the user about the choice.
#[derive(Debug, Clone)]
pub struct Selection {
    pub device: tch::Device,
    pub note: Option<String>,
}

/// Chooses this process's device: `None` is `auto` (the first CUDA device if libtorch sees
/// one, else the CPU with a note). Asking for CUDA where libtorch sees none is refused with
/// the reason. The first successful choice holds for the process.
pub fn select(spec: Option<DeviceSpec>) -> Result<Selection, String> {
    // Counting GPUs loads libtorch's CUDA half: only when one may be used.
    let gpus = if matches!(spec, Some(DeviceSpec::Cpu)) { 0 } else { cuda_devices() };
    let (device, note) = match spec {
        Some(DeviceSpec::Cpu) => (tch::Device::Cpu, None),
        Some(DeviceSpec::Cuda(n)) if n < gpus => (tch::Device::Cuda(n), None),
        Some(DeviceSpec::Cuda(n)) if gpus > 0 => return Err(format!("cuda:{n} asked for, but libtorch sees {gpus} CUDA device(s) (cuda:0 to cuda:{})", gpus - 1)),
        Some(DeviceSpec::Cuda(_)) => {
            return Err(format!("CUDA asked for, but libtorch sees no CUDA device on this machine (PyTorch {TORCH} {}): use \"cpu\", or \"auto\" to take a GPU only where there is one", build()));
        }
        None if gpus > 0 => (tch::Device::Cuda(0), Some(format!("device auto: cuda:0 (of {gpus})"))),
        None => (tch::Device::Cpu, Some("device auto: no CUDA device here, computing on the CPU".into())),
    };
    let chosen = *CHOSEN.get_or_init(|| device);
    if chosen != device {
        return Err(format!("this process already computes on {chosen:?}"));
    }
    Ok(Selection { device, note })
}

/// How many CUDA devices libtorch sees (0 without a driver or GPU). Loads libtorch's CUDA
/// half first (see [`load_cuda`]).
pub fn cuda_devices() -> usize {
    if load_cuda().is_err() {
        return 0;
    }
    if tch::Cuda::is_available() { tch::Cuda::device_count().max(0) as usize } else { 0 }
}

/// Loads `libtorch_cuda.so`, once. PyTorch splits libtorch into a CPU and a CUDA library, and
/// the CUDA one registers itself when loaded; the `weightlab` binary does not link it (see
/// `engine/cli/src/cuda_on_demand.cpp`: burn-tch would otherwise pull it into every process),
/// so without this libtorch never sees a GPU. Loading it only when a GPU may be used keeps
/// every CPU process (and plugin worker) from mapping the CUDA libraries at start.
pub fn load_cuda() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let candidates: Vec<String> = option_env!("LIBTORCH").map(|dir| format!("{dir}/lib/libtorch_cuda.so")).into_iter().chain(["libtorch_cuda.so".to_string()]).collect();
            let mut reasons = Vec::new();
            for path in &candidates {
                let c = std::ffi::CString::new(path.as_str()).map_err(|e| e.to_string())?;
                // SAFETY: dlopen with a NUL-terminated path; the handle is kept for the process.
                let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
                if !handle.is_null() {
                    return Ok(());
                }
                // SAFETY: dlerror returns a thread-local message or null.
                let err = unsafe { libc::dlerror() };
                reasons.push(if err.is_null() { format!("{path}: not loadable") } else { unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned() });
            }
            Err(reasons.join("; "))
        })
        .clone()
}

/// Whether the libtorch in use carries CUDA.
fn build() -> String {
    match load_cuda() {
        Ok(()) => "carries CUDA (libtorch_cuda.so loaded), but no NVIDIA driver or GPU answers".into(),
        Err(e) => format!("has no loadable CUDA library, a CPU-only build: {e}"),
    }
}

/// The libtorch device as tch names it.
pub fn tch_device() -> tch::Device {
    CHOSEN.get().copied().unwrap_or(tch::Device::Cpu)
}

/// The chosen device as burn names it (burn marks its LibTorch backend deprecated in favour
/// of its own CPU backends; we keep libtorch because batched small-model training runs at
/// PyTorch parity on it, see FACTS/benches).
#[allow(deprecated)]
pub fn current() -> Device {
    match tch_device() {
        tch::Device::Cuda(n) => Device::libtorch_cuda(n),
        _ => Device::libtorch(),
    }
}

/// What computes, for the report's provenance: the backend stack and the device.
pub fn description() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match tch_device() {
        tch::Device::Cuda(n) => format!("libtorch (PyTorch {TORCH}) via burn 0.22's tch backend, CUDA device {n}"),
        _ => format!("libtorch (PyTorch {TORCH}) via burn 0.22's tch backend, CPU, {cores} cores, {} threads", tch::get_num_threads()),
    }
}

/// The PyTorch release whose libtorch the set-up installs (`engine/scripts/setup.sh`).
pub const TORCH: &str = "2.9.0";
