// Keeps libtorch's CUDA half out of every process that does not ask for a GPU.
//
// burn-tch 0.22 keeps a reference to `dummy_cuda_dependency` in a `#[used]` static of every
// binary that links it: a C++ function that calls `at::cuda::getCurrentCUDABlasHandle()` and
// `at::cuda::warp_size()`, there so that the linker must resolve those two names and so keeps
// `libtorch_cuda.so` as a needed library. Linked that way, each `weightlab` process and each
// plugin worker maps the CUDA libraries (about 4 GB of files) and runs their initialisers,
// which register every CUDA kernel with libtorch's dispatcher, before `main` — and the same
// registrations are undone at exit: on the machines here about half of a short command's CPU
// time (a test run starts hundreds of such processes).
//
// The two functions are defined here and linked whole into the binary (see `../build.rs`),
// so the linker resolves burn-tch's references to them without `libtorch_cuda.so` and
// `--as-needed` leaves it out. Nothing calls them. When a GPU is asked for,
// `weightlab_compute::device::load_cuda` loads the library, whose kernels register then. The
// stand-ins are hidden (a definition in an executable that a linked shared library also
// defines is otherwise exported), so once the library is loaded its own calls reach its own
// functions, never these. `tests/tests/install.rs` checks both.

struct cublasContext;

namespace at {
namespace cuda {
__attribute__((visibility("hidden"))) cublasContext *getCurrentCUDABlasHandle() { return nullptr; }
__attribute__((visibility("hidden"))) int warp_size() { return 0; }
} // namespace cuda
} // namespace at
