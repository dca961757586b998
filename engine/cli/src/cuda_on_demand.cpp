// Keeps libtorch's CUDA half out of every process that does not ask for a GPU.
//
// burn-tch 0.22 puts `dummy_cuda_dependency` in the `.init_array` of every binary that links
// it: a C++ function that calls `at::cuda::getCurrentCUDABlasHandle()` and
// `at::cuda::warp_size()`, so that the linker keeps `libtorch_cuda.so`. Linked that way, each
// `weightlab` process and each plugin worker maps the CUDA libraries (about 4 GB of files) and
// registers every CUDA kernel with the dispatcher before `main`: 0.3 s of CPU per process on a
// machine without a GPU (a test run starts hundreds of them), and on a machine with one it
// would create a CUDA context and a cuBLAS handle in every process.
//
// The two functions are defined here and linked whole into the binary (see `../build.rs`),
// so the linker resolves burn-tch's references to them without `libtorch_cuda.so` and
// `--as-needed` leaves it out; the start-up call then does nothing.
// When a GPU is asked for, `weightlab_compute::device::load_cuda` loads the library, whose
// kernels register then. The stand-ins are hidden (a definition in an executable that a
// linked shared library also defines is otherwise exported), so once the library is loaded its
// own calls reach its own functions, never these. `tests/tests/install.rs` checks both.

struct cublasContext;

namespace at {
namespace cuda {
__attribute__((visibility("hidden"))) cublasContext *getCurrentCUDABlasHandle() { return nullptr; }
__attribute__((visibility("hidden"))) int warp_size() { return 0; }
} // namespace cuda
} // namespace at
