//! Embeds the Rust plugin SDK (`plugins/sdk`, the crates it depends on, and the WIT) in the
//! binary, so `weightlab plugin new` writes plugins that depend on a copy of the SDK in the
//! cache folder — not on the clone the binary was built in, which may move or be deleted.
//! The SDK's manifest inherits from the plugins' workspace; the copy gets a standalone one.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    // Read when the script runs (not `env!`, fixed when it was compiled): a build script binary
    // can be reused by a checkout in another folder sharing the target directory.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../..");
    let plugins = root.join("plugins");
    for watched in ["plugins/Cargo.toml", "plugins/sdk", "plugins/shared", "plugins/wit/weightlab.wit", "engine/trees", "engine/symmetry"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = standalone_manifest(&plugins);
    std::fs::write(out.join("sdk-Cargo.toml"), manifest).expect("writing the SDK's manifest");

    // (path in the copy, file to embed)
    let mut files: Vec<(String, PathBuf)> = vec![("sdk/Cargo.toml".into(), out.join("sdk-Cargo.toml")), ("wit/weightlab.wit".into(), plugins.join("wit/weightlab.wit"))];
    for (folder, source) in [("sdk", plugins.join("sdk")), ("trees", root.join("engine/trees")), ("symmetry", root.join("engine/symmetry"))] {
        if folder != "sdk" {
            files.push((format!("{folder}/Cargo.toml"), source.join("Cargo.toml")));
        }
        let mut sources: Vec<PathBuf> =
            std::fs::read_dir(source.join("src")).expect("the SDK's sources").filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "rs")).collect();
        sources.sort();
        for file in sources {
            let name = file.file_name().expect("a file name").to_string_lossy().into_owned();
            files.push((format!("{folder}/src/{name}"), file));
        }
    }
    let mut code = String::from("/// The Rust plugin SDK's files, embedded at build time: (path in the copy, bytes).\npub const SDK_FILES: &[(&str, &[u8])] = &[\n");
    for (path, file) in &files {
        let file = file.canonicalize().expect("an SDK file");
        writeln!(code, "    ({path:?}, include_bytes!({:?})),", file.display().to_string()).expect("writing to a string");
    }
    code.push_str("];\n");
    std::fs::write(out.join("sdk_files.rs"), code).expect("writing the SDK file list");

    pinned_clock(&out);
}

/// Compiles `src/pinned_clock.c`, the clock a reproducible Python build is preloaded with, into
/// a shared library the binary embeds (Linux on x86-64, where builds are pinned; see
/// `src/pinned.rs`). A C compiler is there wherever Rust links: it is the linker.
fn pinned_clock(out: &Path) {
    let source = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("src/pinned_clock.c");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-env-changed=CC");
    let library = out.join("pinned_clock.so");
    let target = (std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default(), std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default());
    if target != ("linux".to_string(), "x86_64".to_string()) {
        std::fs::write(&library, b"").expect("writing an empty placeholder");
        return;
    }
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler `{compiler}` for {}: {e}", source.display()));
    assert!(status.success(), "`{compiler}` could not compile {}", source.display());
}

/// `plugins/sdk/Cargo.toml` with what it inherits from `plugins/Cargo.toml` written out, and the
/// engine crates it depends on as sibling folders of the copy.
fn standalone_manifest(plugins: &Path) -> String {
    let read = |p: PathBuf| -> toml::Table { std::fs::read_to_string(&p).expect("a Cargo.toml").parse().expect("a valid Cargo.toml") };
    let workspace = read(plugins.join("Cargo.toml"));
    let mut sdk = read(plugins.join("sdk/Cargo.toml"));
    let inherited = |table: &toml::Table, key: &str| table.get("workspace").and_then(|w| w.get(key)).and_then(|v| v.as_table()).cloned().unwrap_or_default();
    let (package, dependencies) = (inherited(&workspace, "package"), inherited(&workspace, "dependencies"));
    if let Some(toml::Value::Table(p)) = sdk.get_mut("package") {
        for (key, value) in p.iter_mut() {
            if value.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
                *value = package.get(key).cloned().unwrap_or_else(|| panic!("plugins/Cargo.toml has no workspace.package.{key}"));
            }
        }
    }
    if let Some(toml::Value::Table(d)) = sdk.get_mut("dependencies") {
        for (name, value) in d.iter_mut() {
            if value.get("workspace").and_then(|w| w.as_bool()) != Some(true) {
                continue;
            }
            *value = match name.strip_prefix("weightlab-") {
                Some(local) => toml::Value::Table(toml::Table::from_iter([("path".to_string(), toml::Value::String(format!("../{local}")))])),
                None => dependencies.get(name).cloned().unwrap_or_else(|| panic!("plugins/Cargo.toml has no workspace.dependencies.{name}")),
            };
        }
    }
    let text = toml::to_string(&sdk).expect("a TOML table");
    format!("# weightlab's Rust plugin SDK, written by `weightlab plugin new` from the copy in its binary.\n{text}")
}
