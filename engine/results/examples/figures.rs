//! Checks — or with `--write` rewrites — every figure the docs quote from a committed run
//! (`<!--wl RUN … COLUMN-->0.730<!--/wl-->`, see `weightlab_results::figures`).
//!
//! ```text
//! make figures                     # = cargo run --release -p weightlab-results --example figures -- --write
//! cargo run --release -p weightlab-results --example figures            # check only
//! ```
//!
//! Files: `README.md`, every Markdown file under `docs/src`, `plugins` and `reports`; figures
//! come from `reports/<run>/summary.csv` (or `<run>/frontier.csv`) and, for `bench:NAME`, from
//! `benches/results/NAME/summary.csv`.

use std::path::Path;

use weightlab_results::figures::{self, Tables};

fn main() -> std::process::ExitCode {
    let write = std::env::args().any(|a| a == "--write");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut tables = Tables::of_repository(&root);
    let (mut failed, mut quoted, mut rewritten) = (false, 0, 0);
    for file in figures::doc_files(&root) {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let shown = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        quoted += figures::markers(&text).map_or(0, |m| m.len());
        let problems = if write {
            let (new, problems) = figures::refresh(&text, &mut tables);
            if new != text {
                if let Err(e) = std::fs::write(&file, new) {
                    eprintln!("{shown}: cannot write: {e}");
                    failed = true;
                }
                rewritten += 1;
            }
            problems
        } else {
            figures::check(&text, &mut tables)
        };
        for p in problems {
            eprintln!("{shown}:{}: {}", p.line, p.message);
            failed = true;
        }
    }
    println!("{quoted} quoted figures{}", if write { format!(", {rewritten} files rewritten") } else { String::new() });
    if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}
