//! Compiles `csrc/native_autograd.cpp`, the autograd node through which the host's native
//! kernels join libtorch's graph, against the libtorch the set-up installed (`LIBTORCH`, as
//! for `torch-sys`).
//!
//! The compiled library is kept in the target folder under a hash of everything that goes into
//! it (the source, the compiler and its flags, the libtorch). Cargo runs this script again in
//! every fresh clone (a package's folder is part of its fingerprint) and for `clippy` (another
//! compiler wrapper); libtorch's autograd headers are some 250,000 lines, 13 s of CPU each time.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

const SOURCE: &str = "csrc/native_autograd.cpp";
const LIB: &str = "weightlab_native_autograd";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Some(root) = std::env::var_os("LIBTORCH").map(PathBuf::from) else {
        panic!("LIBTORCH is not set: run `make setup` (it writes .cargo/config.toml), or point LIBTORCH at a libtorch or at PyTorch's `torch` folder");
    };
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
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
        .file(SOURCE);

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let archive = format!("lib{LIB}.a");
    let cached = cache_dir(&out).map(|dir| dir.join(format!("{:016x}-{archive}", key(&build, &root))));
    match cached.as_deref().filter(|c| c.is_file()) {
        Some(hit) if std::fs::copy(hit, out.join(&archive)).is_ok() => {
            // What `compile` prints, for the library it would have written.
            println!("cargo:rustc-link-search=native={}", out.display());
            println!("cargo:rustc-link-lib=static={LIB}");
            println!("cargo:rustc-link-lib=stdc++");
        }
        _ => {
            build.compile(LIB);
            if let Some(cached) = cached {
                // Another build may be storing the same key: write aside, then rename.
                let part = cached.with_extension(format!("{}.part", std::process::id()));
                if std::fs::copy(out.join(&archive), &part).is_ok() {
                    let _ = std::fs::rename(&part, &cached);
                }
                let _ = std::fs::remove_file(&part);
            }
        }
    }
    // The OpenMP runtime libtorch uses (its own libgomp.so.1, found first through the rpath).
    println!("cargo:rustc-link-lib=gomp");
}

/// `<target>/<profile>/native-cache`: OUT_DIR is `<target>/<profile>/build/<package>-<hash>/out`.
fn cache_dir(out: &Path) -> Option<PathBuf> {
    let dir = out.ancestors().nth(3)?.join("native-cache");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// A hash of what the compiled library depends on: the source, the compiler (its `--version`),
/// its arguments and the libtorch (its folder and version file). Not the clone's folder.
fn key(build: &cc::Build, root: &Path) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    std::fs::read(SOURCE).expect("the C++ source").hash(&mut h);
    let compiler = build.get_compiler();
    compiler.path().hash(&mut h);
    compiler.args().hash(&mut h);
    std::process::Command::new(compiler.path()).arg("--version").output().map(|o| o.stdout).unwrap_or_default().hash(&mut h);
    root.hash(&mut h);
    std::fs::read(root.join("version.py")).unwrap_or_default().hash(&mut h);
    h.finish()
}
