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
            output::error(&format!("{}{}", chain(&e), weightlab_pipeline::error::storage_hint(e.as_ref())));
            1
        }
    };
    weightlab_host::worker::exit_now(code);
}

/// An error and its causes, joined by `: ` — each cause once: library errors often say their
/// source already (`reading x: No such file or directory`), and anyhow's `{:#}` would repeat it.
fn chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1).map(ToString::to_string) {
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}
