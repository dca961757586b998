//! `weightlab`: run weight-space experiments described by TOML manifests.

mod cli;
mod commands;

use clap::Parser;
use weightlab_pipeline::output;

fn main() {
    // A method's worker process (see weightlab_host::worker): not a user-facing command.
    if std::env::args().nth(1).as_deref() == Some(weightlab_host::worker::WORKER_ARG) {
        // A worker of a run on a GPU computes there too: libtorch's CUDA half must be loaded.
        if weightlab_host::tensors::device_name().starts_with("cuda")
            && let Err(e) = weightlab_compute::device::load_cuda()
        {
            eprintln!("the worker cannot load libtorch's CUDA library: {e}");
            std::process::exit(1);
        }
        std::process::exit(weightlab_host::worker::serve());
    }
    // Before any thread of ours allocates: tensor-sized blocks from the heap, not one mmap each.
    weightlab_host::worker::tune_allocator();
    let cli = cli::Cli::parse();
    output::init(cli.verbosity());
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            output::error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code);
}
