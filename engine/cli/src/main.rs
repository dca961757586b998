//! `weightlab`: run weight-space experiments described by TOML manifests.

mod cli;
mod commands;

use clap::Parser;
use weightlab_pipeline::output;

fn main() {
    weightlab_pipeline::start_process();
    // `--help`, `--version` and usage errors end here too, without libtorch's destructors.
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        weightlab_host::worker::exit_now(e.exit_code())
    });
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
