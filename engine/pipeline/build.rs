//! Embeds the built-in plugins (`plugins/dist/*.wasm`, built by `make plugins`) in the binary,
//! so a `weightlab` copied or installed anywhere still has them. Without a `plugins/dist`
//! (a plain `cargo build` before `make plugins`) nothing is embedded and the engine says so
//! when a manifest names a built-in plugin.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not fixed when it was compiled (see engine/author/build.rs).
    let dist = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../../plugins/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut plugins: Vec<(String, String)> = std::fs::read_dir(&dist)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p.canonicalize().ok()?.to_string_lossy().into_owned())))
        .collect();
    plugins.sort();
    let mut code = String::from("/// Built-in plugins embedded at build time: (name, component bytes).\npub const EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (name, path) in &plugins {
        writeln!(code, "    ({name:?}, include_bytes!({path:?})),").expect("writing to a string");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_plugins.rs");
    std::fs::write(out, code).expect("writing the embedded plugin list");
    println!("cargo:rustc-env=WEIGHTLAB_GIT={}", git_commit(&dist.join("../..")));
}

/// The commit the engine is built from (`-dirty` with uncommitted changes to tracked files),
/// or `unknown` outside a git checkout: what a run's provenance names as the code that ran.
fn git_commit(root: &Path) -> String {
    // `--no-optional-locks`: `git status` would otherwise refresh the index's file times and
    // write it back, and the index is watched below — every cargo command after a build
    // (clippy, the test build) then ran this script again and recompiled the pipeline crate
    // and everything above it (about a minute of each fresh-clone `make test`).
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("--no-optional-locks")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for watched in ["HEAD", "index", "logs/HEAD"] {
            println!("cargo:rerun-if-changed={}", Path::new(&dir).join(watched).display());
        }
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{commit}-dirty") } else { commit }
}
