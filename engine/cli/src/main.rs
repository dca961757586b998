//! `weightlab`: run weight-space experiments described by TOML manifests.

mod cli;
mod commands;

use clap::Parser;
use weightlab_pipeline::output;

fn main() {
    weightlab_pipeline::start_process();
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
