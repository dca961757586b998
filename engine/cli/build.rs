//! Compiles the stand-ins of `src/cuda_on_demand.cpp` (why: that file) into the
//! `weightlab` binary. Whole-archive: the linker must have them before it meets burn-tch's
//! references to the functions, which it would otherwise resolve to libtorch_cuda.so.
fn main() {
    println!("cargo:rerun-if-changed=src/cuda_on_demand.cpp");
    cc::Build::new().cpp(true).file("src/cuda_on_demand.cpp").link_lib_modifier("+whole-archive").compile("cuda_on_demand");
}
