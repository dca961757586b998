//! `weightlab`: run weight-space experiments described by TOML manifests.

mod cli;
mod commands;

use clap::Parser;
use weightlab_pipeline::output;

fn main() {
    // A method's worker process (see weightlab_host::worker): not a user-facing command.
    if std::env::args().nth(1).as_deref() == Some(weightlab_host::worker::WORKER_ARG) {
        weightlab_host::worker::exit_now(weightlab_pipeline::serve_worker());
    }
    // Before any thread of ours allocates: tensor-sized blocks from the heap, not one mmap each.
    weightlab_host::worker::tune_allocator();
    let cli = cli::Cli::parse();
    output::init(cli.verbosity());
    output::init_color(&cli.color);
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            output::error(&format!("{e:#}"));
            1
        }
    };
    weightlab_host::worker::exit_now(code);
}
