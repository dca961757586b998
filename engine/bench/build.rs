//! Embeds the PyTorch references (`benches/*.py`) and the benchmark plugins
//! (`plugins/dist/bench/*.wasm`, built by `make plugins`) in the binary, so `weightlab bench`
//! runs from a copied or installed binary, far from the source tree.

use std::fmt::Write;
use std::path::Path;

/// (file name, canonical path) of the files in `dir` ending in `.ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<(String, String)> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p.canonicalize().ok()?.to_string_lossy().into_owned())))
        .collect();
    found.sort();
    found
}

fn main() {
    // Read when the script runs, not fixed when it was compiled (see engine/author/build.rs).
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../..");
    let mut code = String::new();
    for (constant, kind, dir, ext) in [("SCRIPTS", "str", root.join("benches"), "py"), ("PLUGINS", "[u8]", root.join("plugins/dist/bench"), "wasm")] {
        let include = if ext == "py" { "include_str" } else { "include_bytes" };
        writeln!(code, "pub const {constant}: &[(&str, &{kind})] = &[").expect("writing to a string");
        for (name, path) in files(&dir, ext) {
            writeln!(code, "    ({name:?}, {include}!({path:?})),").expect("writing to a string");
        }
        code.push_str("];\n");
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(out, code).expect("writing the embedded file list");
}
