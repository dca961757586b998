//! Host tensor operations computed by weightlab's own kernels (`weightlab-kernels`) instead of
//! libtorch's: the 1-D convolutions of the weight autoencoders (p-diff, FLoWN), which libtorch's
//! oneDNN kernels run at 10–80 GFLOP/s on long rows of few channels, and the SiLU between them
//! ([`silu`]); on by default ([`enabled`]).
//! Also the seeded draws behind `randn` and `rand` ([`draw`]), always: split over libtorch's
//! threads, from a counter-based generator (`weightlab_kernels::random`).
//! Plugins see no difference but speed: the same operation, the
//! same shapes and errors, values within float rounding of libtorch's, and gradients through
//! libtorch's autograd — the output joins the graph through a small C++ node
//! (`csrc/native_autograd.cpp`) whose backward pass calls back into [`backward`] here.
//!
//! Taken only where the kernels apply (CPU, float32, one group, dilation 1, a stride no longer
//! than the kernel, sizes libtorch accepts); everything else runs on libtorch. The native
//! backward is not itself differentiable (plugins cannot ask for second derivatives).

use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;

use tch::{Device, Kind, TchError, Tensor};
use weightlab_kernels::conv1d::{Conv1d, ConvTranspose1d, bias_grad};

/// The variable that turns the native kernels off (`0`, `off`, `false`): libtorch for all (to
/// compare, or should a kernel misbehave).
pub const SWITCH: &str = "WEIGHTLAB_NATIVE_KERNELS";

/// Whether the host routes operations to the native kernels (read once per process): unless
/// [`SWITCH`] says otherwise.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| !matches!(std::env::var(SWITCH).as_deref(), Ok("0" | "off" | "false")))
}

/// The operations whose backward pass [`backward`] computes (the node's `op` code).
const CONV1D: i64 = 1;
const CONV_TRANSPOSE1D: i64 = 2;
const SILU: i64 = 3;

type BackwardFn = unsafe extern "C" fn(
    op: i64,
    params: *const i64,
    n_params: i64,
    saved: *const *mut c_void,
    n: i64,
    grad: *const c_void,
    needs: *const bool,
    grads: *mut *mut c_void,
    err: *mut c_char,
    err_len: i64,
) -> c_int;

type TaskFn = unsafe extern "C" fn(ctx: *mut c_void, i: i64);

unsafe extern "C" {
    fn wl_parallel_for(n: i64, task: TaskFn, ctx: *mut c_void, err: *mut c_char, err_len: i64) -> c_int;
    fn wl_native_attach(out: *const c_void, inputs: *const *mut c_void, n: i64, op: i64, params: *const i64, n_params: i64, backward: BackwardFn, err: *mut c_char, err_len: i64) -> *mut c_void;
}

fn error(message: impl Into<String>) -> TchError {
    TchError::Torch(message.into())
}

/// Whether `t` is a CPU float32 tensor of `dims` dimensions.
fn plain(t: &Tensor, dims: usize) -> bool {
    t.device() == Device::Cpu && t.kind() == Kind::Float && t.dim() == dims
}

/// A CPU float32 tensor's values, contiguous (a copy only when it was not).
struct Values(Tensor);

impl Values {
    fn of(t: &Tensor) -> Result<Self, TchError> {
        Ok(Values(t.f_detach()?.f_contiguous()?))
    }

    fn slice(&self) -> &[f32] {
        let n = self.0.numel();
        if n == 0 {
            return &[];
        }
        // SAFETY: a contiguous CPU float32 tensor holds `numel` floats at its data pointer,
        // alive as long as `self.0`.
        unsafe { std::slice::from_raw_parts(self.0.data_ptr() as *const f32, n) }
    }
}

/// A new CPU float32 tensor of `shape`, filled by `fill`.
fn made(shape: &[i64], fill: impl FnOnce(&mut [f32])) -> Result<Tensor, TchError> {
    let t = Tensor::f_empty(shape, (Kind::Float, Device::Cpu))?;
    let n = t.numel();
    let values: &mut [f32] = if n == 0 {
        &mut []
    } else {
        // SAFETY: a fresh contiguous float32 tensor of `n` elements, owned here.
        unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n) }
    };
    fill(values);
    Ok(t)
}

/// The kernels' parts split over libtorch's own threads, which stay ready (spinning) between
/// libtorch's operations: threads of our own beside them would fight them for the cores.
fn on_libtorch_threads(parts: usize, task: &(dyn Fn(usize) + Sync)) {
    struct Job<'a> {
        task: &'a (dyn Fn(usize) + Sync),
        panicked: std::sync::atomic::AtomicBool,
    }
    unsafe extern "C" fn trampoline(ctx: *mut c_void, i: i64) {
        // SAFETY: `ctx` is the `Job` below, alive until `wl_parallel_for` returns.
        let job = unsafe { &*(ctx as *const Job) };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.task)(i as usize))).is_err() {
            job.panicked.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let job = Job { task, panicked: false.into() };
    let mut err = [0 as c_char; 256];
    // SAFETY: the trampoline gets `job` for the duration of the call and never unwinds.
    let rc = unsafe { wl_parallel_for(parts as i64, trampoline, &job as *const Job as *mut c_void, err.as_mut_ptr(), err.len() as i64) };
    if rc != 0 {
        // libtorch could not run the parts (it says why): run them here, in order.
        (0..parts).for_each(task);
    }
    assert!(!job.panicked.load(std::sync::atomic::Ordering::Relaxed), "a native kernel panicked on a libtorch thread");
}

/// Values per part of an elementwise kernel ([`in_parts`]): big enough that a part outweighs
/// handing it to a thread, small enough that a batch of noise or a layer's activations split
/// over the cores.
const PART: usize = 1 << 15;

/// `fill(start, part)` for consecutive parts of `out` ([`PART`] values each, the first at
/// `start`), on libtorch's threads. Each value is computed from its index alone, so the result
/// is the same whatever the threads.
fn in_parts(out: &mut [f32], fill: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() <= PART {
        return fill(0, out);
    }
    let parts: Vec<std::sync::Mutex<&mut [f32]>> = out.chunks_mut(PART).map(std::sync::Mutex::new).collect();
    let task = |i: usize| fill(i * PART, &mut parts[i].lock().unwrap_or_else(|e| e.into_inner()));
    on_libtorch_threads(parts.len(), &task);
}

/// A new CPU float32 tensor of `shape` holding values `0..` of `seed`'s standard normal
/// (`normal`) or uniform stream (`weightlab_kernels::random`), computed in parts on libtorch's
/// threads: the same values whatever the threads, as every value depends on its index only.
pub fn draw(shape: &[i64], seed: u64, normal: bool) -> Result<Tensor, TchError> {
    made(shape, |out| in_parts(out, |start, part| if normal { weightlab_kernels::random::normal(seed, start as u64, part) } else { weightlab_kernels::random::uniform(seed, start as u64, part) }))
}

/// libtorch's `silu(x)` by the native kernel (`weightlab_kernels::activation`: one pass each way,
/// within float rounding of libtorch's), joined to `x`'s graph; `None` for tensors it does
/// not take (other than CPU float32), which libtorch computes.
pub fn silu(x: &Tensor) -> Option<Result<Tensor, TchError>> {
    if x.device() != Device::Cpu || x.kind() != Kind::Float {
        return None;
    }
    Some((|| {
        let xv = Values::of(x)?;
        let xs = xv.slice();
        let out = made(&x.size(), |y| in_parts(y, |start, part| weightlab_kernels::activation::silu(&xs[start..], part)))?;
        attach(out, &[x], SILU, &[])
    })())
}

/// Threads for the kernels: libtorch's intra-op count, on its pool ([`on_libtorch_threads`]).
fn threads() -> usize {
    weightlab_kernels::conv1d::set_runner(on_libtorch_threads);
    usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1)
}

/// `out` joined to the autograd graph of `inputs` (op `op`, integer `params`), when any of them
/// requires a gradient; else `out` itself.
fn attach(out: Tensor, inputs: &[&Tensor], op: i64, params: &[i64]) -> Result<Tensor, TchError> {
    if !inputs.iter().any(|t| t.requires_grad()) {
        return Ok(out);
    }
    let pointers = tensor_pointers(inputs.iter().copied());
    let mut err = [0 as c_char; 512];
    // SAFETY: every pointer is a live tensor for the call; the C++ side copies what it keeps
    // and returns a new tensor (owned by the caller) or null with a message.
    let joined =
        unsafe { wl_native_attach(out.as_ptr() as *const c_void, pointers.as_ptr(), pointers.len() as i64, op, params.as_ptr(), params.len() as i64, backward, err.as_mut_ptr(), err.len() as i64) };
    if joined.is_null() {
        return Err(error(format!("joining the autograd graph: {}", c_message(&err))));
    }
    // SAFETY: a new `at::Tensor*` whose ownership passes to the returned tensor.
    Ok(unsafe { Tensor::from_ptr(joined.cast()) })
}

/// The `at::Tensor*` of each tensor, as the C++ side (`csrc/`) takes a list of them.
pub(crate) fn tensor_pointers<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> Vec<*mut c_void> {
    tensors.into_iter().map(|t| t.as_ptr() as *mut c_void).collect()
}

/// The message the C++ side wrote into `err` (NUL-terminated within it; empty if not).
pub(crate) fn c_message(err: &[c_char]) -> String {
    // SAFETY: `c_char` and `u8` have the same size and alignment; the slice stays borrowed.
    let bytes = unsafe { std::slice::from_raw_parts(err.as_ptr().cast::<u8>(), err.len()) };
    std::ffi::CStr::from_bytes_until_nul(bytes).map(|m| m.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A native operation's kernels, whichever convolution it is.
trait Kernel {
    /// The output's shape: batch, channels, positions.
    fn out_shape(&self) -> [i64; 3];
    fn forward(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]);
    fn backward_data(&self, dy: &[f32], weight: &[f32], dx: &mut [f32]);
    fn backward_weight(&self, dy: &[f32], x: &[f32], dw: &mut [f32]);
}

/// [`Kernel`] for the kernels' convolution types, which have these methods of their own.
macro_rules! kernel_of {
    ($($conv:ty),*) => {$(
        impl Kernel for $conv {
            fn out_shape(&self) -> [i64; 3] {
                [self.n as i64, self.co as i64, self.out_len() as i64]
            }
            fn forward(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
                <$conv>::forward(self, x, weight, bias, y)
            }
            fn backward_data(&self, dy: &[f32], weight: &[f32], dx: &mut [f32]) {
                <$conv>::backward_data(self, dy, weight, dx)
            }
            fn backward_weight(&self, dy: &[f32], x: &[f32], dw: &mut [f32]) {
                <$conv>::backward_weight(self, dy, x, dw)
            }
        }
    )*};
}
kernel_of!(Conv1d, ConvTranspose1d);

/// The kernels of operation `op` (with its integer `params`) on an input of sizes `xs` and a
/// weight of sizes `ws`, or `None` where they do not apply. A stride past the kernel is left to
/// libtorch: it would make phase rows no tap reads (a hostile plugin's way to large buffers
/// the budget does not see).
fn kernel(op: i64, params: &[i64], xs: &[i64], ws: &[i64]) -> Option<Box<dyn Kernel>> {
    let size = |v: i64| usize::try_from(v).ok();
    let (&[n, ci, len], &[w0, w1, k]) = (xs, ws) else { return None };
    match (op, params) {
        (CONV1D, &[stride, padding]) => {
            let conv = Conv1d::new(size(n)?, size(ci)?, size(w0)?, size(k)?, size(stride)?, size(padding)?, size(len)?)?;
            (conv.stride <= conv.k && size(w1)? == conv.ci).then(|| Box::new(Conv1d { threads: threads(), ..conv }) as Box<dyn Kernel>)
        }
        (CONV_TRANSPOSE1D, &[stride, padding, output_padding]) => {
            let conv = ConvTranspose1d::new(size(n)?, size(ci)?, size(w1)?, size(k)?, size(stride)?, size(padding)?, size(output_padding)?, size(len)?)?;
            (conv.stride <= conv.k && size(w0)? == conv.ci).then(|| Box::new(ConvTranspose1d { threads: threads(), ..conv }) as Box<dyn Kernel>)
        }
        _ => None,
    }
}

/// Operation `op` by the native kernels (whether or not [`enabled`]: the caller asks), joined
/// to the graph of its inputs, or `None` where the kernels do not apply (then libtorch computes
/// it, and says what is wrong with the sizes).
fn native(op: i64, params: &[i64], x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Option<Result<Tensor, TchError>> {
    if !plain(x, 3) || !plain(weight, 3) || bias.is_some_and(|b| !plain(b, 1)) {
        return None;
    }
    let kernel = kernel(op, params, &x.size(), &weight.size())?;
    if bias.is_some_and(|b| b.size()[0] != kernel.out_shape()[1]) {
        return None;
    }
    Some((|| {
        let (xv, wv) = (Values::of(x)?, Values::of(weight)?);
        let bv = bias.map(Values::of).transpose()?;
        let out = made(&kernel.out_shape(), |y| kernel.forward(xv.slice(), wv.slice(), bv.as_ref().map(Values::slice), y))?;
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        attach(out, &inputs, op, params)
    })())
}

/// libtorch's `conv1d(x, weight, bias, stride, padding)` by the native kernels ([`native`]).
pub fn conv1d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: i64, padding: i64) -> Option<Result<Tensor, TchError>> {
    native(CONV1D, &[stride, padding], x, weight, bias)
}

/// libtorch's `conv_transpose1d(x, weight, bias, stride, padding, output_padding)` by the native
/// kernels ([`native`]).
pub fn conv_transpose1d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: i64, padding: i64, output_padding: i64) -> Option<Result<Tensor, TchError>> {
    native(CONV_TRANSPOSE1D, &[stride, padding, output_padding], x, weight, bias)
}

/// SiLU's input gradient (for [`backward`]).
fn silu_grads(saved: &[&Tensor], needs: &[bool], grad: &Tensor) -> Result<Vec<Option<Tensor>>, TchError> {
    let (&[x], &[need]) = (saved, needs) else { return Err(error(format!("native silu: {} saved inputs", saved.len()))) };
    let (xv, gv) = (Values::of(x)?, Values::of(grad)?);
    let (xs, gs) = (xv.slice(), gv.slice());
    if gs.len() != xs.len() {
        return Err(error("native silu: the gradient's size differs from the input's"));
    }
    let dx = need.then(|| made(&x.size(), |dx| in_parts(dx, |start, part| weightlab_kernels::activation::silu_backward(&gs[start..], &xs[start..], part)))).transpose()?;
    Ok(vec![dx])
}

/// A convolution's input, weight and bias gradients (for [`backward`]).
fn conv_grads(op: i64, params: &[i64], saved: &[&Tensor], needs: &[bool], grad: &Tensor) -> Result<Vec<Option<Tensor>>, TchError> {
    let n = saved.len();
    let (&[x, w, ..], &[need_x, need_w, ..]) = (saved, needs) else { return Err(error(format!("native operation {op}: {n} saved inputs"))) };
    let (xs, ws) = (x.size(), w.size());
    let (xv, wv, gv) = (Values::of(x)?, Values::of(w)?, Values::of(grad)?);
    let (gs, size) = (grad.size(), |v: i64| usize::try_from(v).unwrap_or(0));
    let kernel = kernel(op, params, &xs, &ws).ok_or_else(|| error(format!("native operation {op} with parameters {params:?}: the sizes changed or it is unknown")))?;
    let mut out: Vec<Option<Tensor>> = (0..n).map(|_| None).collect();
    if need_x {
        out[0] = Some(made(&xs, |dx| kernel.backward_data(gv.slice(), wv.slice(), dx))?);
    }
    if need_w {
        out[1] = Some(made(&ws, |dw| kernel.backward_weight(gv.slice(), xv.slice(), dw))?);
    }
    if n == 3 && needs[2] {
        out[2] = Some(made(&[gs[1]], |db| bias_grad(gv.slice(), size(gs[1]), size(gs[2]), db))?);
    }
    Ok(out)
}

/// The gradients of one native operation (called by the C++ node's backward pass): for each
/// saved input `i` with `needs[i]`, a new tensor in `grads[i]`. Never unwinds into C++.
unsafe extern "C" fn backward(
    op: i64,
    params: *const i64,
    n_params: i64,
    saved: *const *mut c_void,
    n: i64,
    grad: *const c_void,
    needs: *const bool,
    grads: *mut *mut c_void,
    err: *mut c_char,
    err_len: i64,
) -> c_int {
    let run = || -> Result<Vec<Option<Tensor>>, TchError> {
        let n = usize::try_from(n).map_err(|_| error("negative input count"))?;
        // SAFETY: the C++ node passes `n` live tensors, `n` flags, `n_params` integers and the
        // output gradient, valid for the call; ManuallyDrop leaves them to their owner.
        let (saved, needs, params, grad) = unsafe {
            let saved: Vec<ManuallyDrop<Tensor>> = std::slice::from_raw_parts(saved, n).iter().map(|&p| ManuallyDrop::new(Tensor::from_ptr(p.cast()))).collect();
            (
                saved,
                std::slice::from_raw_parts(needs, n).to_vec(),
                std::slice::from_raw_parts(params, usize::try_from(n_params).unwrap_or(0)).to_vec(),
                ManuallyDrop::new(Tensor::from_ptr(grad as *mut c_void as *mut _)),
            )
        };
        if !grad.defined() {
            return Ok((0..n).map(|_| None).collect());
        }
        let saved: Vec<&Tensor> = saved.iter().map(|t| &**t).collect();
        match op {
            SILU => silu_grads(&saved, &needs, &grad),
            _ => conv_grads(op, &params, &saved, &needs, &grad),
        }
    };
    let message = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(tensors)) => {
            for (i, t) in tensors.into_iter().enumerate() {
                if let Some(mut t) = t {
                    // SAFETY: `grads` has room for `n` pointers; the C++ side takes ownership
                    // of the `at::Tensor*` (and deletes it), so the Rust handle is forgotten.
                    unsafe { *grads.add(i) = t.as_mut_ptr() as *mut c_void };
                    std::mem::forget(t);
                }
            }
            return 0;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "panicked".to_string(),
    };
    let bytes = message.as_bytes();
    let len = bytes.len().min(usize::try_from(err_len).unwrap_or(0).saturating_sub(1));
    // SAFETY: `err` has room for `err_len` bytes; the message is cut to leave the NUL.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), err as *mut u8, len);
        *err.add(len) = 0;
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_the_stream_whatever_the_parts() {
        for normal in [true, false] {
            let t = draw(&[3, 40_000], 5, normal).expect("drawn");
            let mut expected = vec![0.0f32; 120_000];
            if normal {
                weightlab_kernels::random::normal(5, 0, &mut expected);
            } else {
                weightlab_kernels::random::uniform(5, 0, &mut expected);
            }
            assert_eq!(Vec::<f32>::try_from(t.flatten(0, -1)).expect("floats"), expected, "normal: {normal}");
        }
    }

    fn seeded(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    /// The native value and gradients against libtorch's, for one operation.
    fn compare(what: &str, native: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor, libtorch: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor, shapes: [&[i64]; 3]) {
        // The same values for both (copies: the global seed is shared with other tests).
        let a: Vec<Tensor> = shapes.iter().enumerate().map(|(i, s)| seeded(s, 10 + i as i64).set_requires_grad(true)).collect();
        let b: Vec<Tensor> = a.iter().map(|t| t.detach().copy().set_requires_grad(true)).collect();
        let (ya, yb) = (native(&a[0], &a[1], &a[2]), libtorch(&b[0], &b[1], &b[2]));
        assert_eq!(ya.size(), yb.size(), "{what}: output shape");
        let close = |p: &Tensor, q: &Tensor, part: &str| {
            let scale = q.abs().max().double_value(&[]).max(1.0);
            let diff = (p - q).abs().max().double_value(&[]);
            assert!(diff <= 1e-4 * scale, "{what}: {part} differs from libtorch's by {diff} (scale {scale})");
        };
        close(&ya, &yb, "value");
        // A loss that weighs every output differently, so every gradient entry is checked.
        let weights = seeded(&ya.size(), 99);
        (&ya * &weights).sum(Kind::Float).backward();
        (&yb * &weights).sum(Kind::Float).backward();
        for (i, name) in ["input gradient", "weight gradient", "bias gradient"].iter().enumerate() {
            close(&a[i].grad(), &b[i].grad(), name);
        }
    }

    #[test]
    fn convolutions_match_libtorch_in_value_and_gradients() {
        for (n, ci, co, k, s, p, len) in [(200i64, 16i64, 16i64, 4i64, 2i64, 1i64, 256i64), (3, 1, 16, 4, 2, 1, 64), (2, 3, 5, 3, 1, 1, 17), (2, 2, 3, 3, 3, 0, 14), (1, 4, 6, 5, 2, 4, 7)] {
            let native = |x: &Tensor, w: &Tensor, b: &Tensor| conv1d(x, w, Some(b), s, p).expect("the native kernels take it").expect("runs");
            let libtorch = |x: &Tensor, w: &Tensor, b: &Tensor| x.conv1d(w, Some(b), [s], [p], [1], 1);
            compare(&format!("conv1d {n}×{ci}×{len}, kernel {k}, stride {s}, padding {p}"), native, libtorch, [&[n, ci, len], &[co, ci, k], &[co]]);
        }
        for (n, ci, co, k, s, p, op, len) in [(200i64, 16i64, 16i64, 4i64, 2i64, 1i64, 0i64, 128i64), (2, 3, 5, 3, 2, 1, 1, 7), (2, 2, 3, 5, 3, 2, 2, 6)] {
            let native = |x: &Tensor, w: &Tensor, b: &Tensor| conv_transpose1d(x, w, Some(b), s, p, op).expect("the native kernels take it").expect("runs");
            let libtorch = |x: &Tensor, w: &Tensor, b: &Tensor| x.conv_transpose1d(w, Some(b), [s], [p], [op], 1, [1]);
            compare(&format!("conv_transpose1d {n}×{ci}×{len}, kernel {k}, stride {s}, padding {p}, output padding {op}"), native, libtorch, [&[n, ci, len], &[ci, co, k], &[co]]);
        }
    }

    #[test]
    fn silu_matches_libtorch_in_value_and_gradient() {
        // Large enough to split over threads, with values where SiLU saturates and a
        // non-contiguous input (a transpose).
        for shape in [&[200i64, 16, 1024][..], &[3, 5], &[0, 4]] {
            let a = (seeded(shape, 7) * 8.0).set_requires_grad(true);
            let b = a.detach().copy().set_requires_grad(true);
            let (ya, yb) = (silu(&a).expect("taken").expect("runs"), b.silu());
            let close = |p: &Tensor, q: &Tensor, what: &str| {
                let diff = if p.numel() == 0 { 0.0 } else { (p - q).abs().max().double_value(&[]) };
                assert!(diff <= 1e-5, "{shape:?}: the {what} differs from libtorch's by {diff}");
            };
            close(&ya, &yb, "value");
            let weights = seeded(shape, 99);
            (&ya * &weights).sum(Kind::Float).backward();
            (&yb * &weights).sum(Kind::Float).backward();
            close(&a.grad(), &b.grad(), "gradient");
        }
        let x = seeded(&[6, 4], 3).set_requires_grad(true);
        let t = x.transpose(0, 1);
        let (ya, yb) = (silu(&t).expect("taken").expect("runs"), t.silu());
        assert!((&ya - &yb).abs().max().double_value(&[]) <= 1e-6, "a transposed input");
        assert!(silu(&seeded(&[4], 1).to_kind(Kind::Double)).is_none(), "float64 is libtorch's");
        assert!(!silu(&seeded(&[4], 1)).expect("taken").expect("runs").requires_grad(), "no graph without gradients");
    }

    #[test]
    fn what_the_kernels_do_not_take_is_left_to_libtorch() {
        let x = seeded(&[2, 3, 8], 1);
        assert!(conv1d(&x, &seeded(&[4, 2, 3], 2), None, 1, 0).is_none(), "channel mismatch: libtorch's error");
        assert!(conv1d(&x, &seeded(&[4, 3, 9], 2), None, 1, 0).is_none(), "kernel longer than the input");
        assert!(conv1d(&x, &seeded(&[4, 3, 2], 2), None, 3, 0).is_none(), "stride past the kernel");
        assert!(conv_transpose1d(&x, &seeded(&[3, 4, 2], 2), None, 3, 0, 0).is_none(), "stride past the kernel");
        assert!(conv1d(&x.to_kind(Kind::Double), &seeded(&[4, 3, 3], 2).to_kind(Kind::Double), None, 1, 0).is_none(), "float64");
        assert!(conv_transpose1d(&x, &seeded(&[3, 4, 4], 2), None, 2, 1, 2).is_none(), "output padding not below the stride");
        // Without gradients the result is a plain tensor.
        let y = conv1d(&x, &seeded(&[4, 3, 3], 2), None, 1, 1).expect("taken").expect("runs");
        assert_eq!(y.size(), [2, 4, 8]);
        assert!(!y.requires_grad());
    }
}
