//! Compiles `csrc/native_autograd.cpp`, the autograd node through which the host's native
//! kernels join libtorch's graph, against the libtorch the set-up installed (`LIBTORCH`, as
//! for `torch-sys`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/native_autograd.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Some(root) = std::env::var_os("LIBTORCH").map(std::path::PathBuf::from) else {
        panic!("LIBTORCH is not set: run `make setup` (it writes .cargo/config.toml), or point LIBTORCH at a libtorch or at PyTorch's `torch` folder");
    };
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        // `at::parallel_for` is a header template: without OpenMP here it runs serially.
        .flag("-fopenmp")
        .file("csrc/native_autograd.cpp")
        .compile("weightlab_native_autograd");
    // The OpenMP runtime libtorch uses (its own libgomp.so.1, found first through the rpath).
    println!("cargo:rustc-link-lib=gomp");
}
