//! `weightlab-stamp FILE.wasm…`: describes each built component that has no metadata section
//! in a worker process and writes the description into it (what `weightlab plugin stamp`
//! does). `make` stamps the built-in plugins with this small binary because the `weightlab`
//! binary embeds those very files: stamping with it would compile the engine twice.

use std::path::PathBuf;
use std::process::ExitCode;

use weightlab_host::metadata::{self, Metadata};
use weightlab_host::worker;
use weightlab_host::{Limits, PluginCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // This binary is its own plugin worker, as `weightlab` is.
    if args.first().map(String::as_str) == Some(worker::WORKER_ARG) {
        worker::exit_now(worker::serve());
    }
    if args.is_empty() {
        eprintln!("usage: weightlab-stamp FILE.wasm…");
        return ExitCode::from(2);
    }
    for file in args.iter().map(PathBuf::from) {
        if let Err(e) = stamp(&file) {
            eprintln!("error: stamping {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn stamp(file: &std::path::Path) -> Result<(), String> {
    let code = PluginCode::read(file).map_err(|e| e.to_string())?;
    if metadata::read(&code.bytes).map_err(|e| e.to_string())?.is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this binary to start a worker: {e}"))?;
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let description = worker::describe(&exe, &name, &code, Limits::default()).map_err(|e| e.to_string())?;
    metadata::stamp(&code, &Metadata::described(&description, "cargo")).map_err(|e| e.to_string())
}
