//! What a benchmark measured, kept for the docs to quote.
//!
//! A bench prints its lines as it goes; with `--save DIR` it also writes `DIR/output.txt` (the
//! lines as printed) and `DIR/summary.csv` (one row per measured thing, each with the CPU
//! model, its ISA, the kernels' width and the cores). The docs quote a figure from that table
//! (`<!--wl bench:NAME … COLUMN-->`, see `weightlab_results::figures`), so a performance figure
//! in the docs is the one a committed run printed, never one typed by hand, and rerunning the
//! bench with `--save` into the same folder is what updates it (`make figures`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

/// `--save DIR` and `--isa`, shared by every bench.
#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Also write what the bench prints to DIR/output.txt and its figures to DIR/summary.csv
    /// (the table the docs quote from; commit it under benches/results/).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Run both sides as a CPU with only this ISA would: weightlab's kernels, libtorch, MKL
    /// and oneDNN limited to it (an AVX-512 machine measuring what an AVX2-only one sees).
    #[arg(long, value_enum)]
    pub isa: Option<crate::isa::Isa>,
}

impl SaveArgs {
    /// Makes the folder (and checks it can be written) before the bench runs.
    pub fn prepare(&self) -> Result<()> {
        let Some(dir) = &self.save else { return Ok(()) };
        std::fs::create_dir_all(dir).with_context(|| format!("--save {}: cannot make that folder", dir.display()))?;
        let probe = dir.join(".weightlab-write-test");
        std::fs::write(&probe, b"").with_context(|| format!("--save {}: cannot write there", dir.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
}

/// The lines and rows of one bench run.
#[derive(Debug, Default)]
pub struct Record {
    lines: Vec<String>,
    columns: Vec<String>,
    rows: Vec<Vec<(String, String)>>,
}

impl Record {
    /// Prints `text` and keeps it for `output.txt`.
    pub fn line(&mut self, text: impl Into<String>) {
        let text = text.into();
        println!("{text}");
        let _ = std::io::stdout().flush();
        self.lines.push(text);
    }

    /// Prints and keeps the header lines on the machine ([`crate::isa::header`]).
    pub fn machine(&mut self) {
        for line in crate::isa::header() {
            self.line(line);
        }
    }

    /// A row of figures (`column`, value), after the machine's columns: `cpu`, `isa`,
    /// `kernels` (the width in use), `isa_limit` (`--isa`, or `none`) and `cores`.
    pub fn row(&mut self, cells: &[(&str, String)]) {
        let machine = [
            ("cpu", weightlab_compute::simd::cpu_model()),
            ("isa", weightlab_compute::simd::isa().to_string()),
            ("kernels", weightlab_compute::simd::level().0.name().to_string()),
            ("isa_limit", crate::isa::limit()),
            ("cores", crate::cores().to_string()),
        ];
        let row: Vec<(String, String)> = machine.into_iter().chain(cells.iter().cloned()).map(|(k, v)| (k.to_string(), v)).collect();
        for (column, _) in &row {
            if !self.columns.contains(column) {
                self.columns.push(column.clone());
            }
        }
        self.rows.push(row);
    }

    /// Writes `output.txt` and `summary.csv` into `save` (created if missing), when given.
    pub fn save(&self, save: &SaveArgs) -> Result<()> {
        let Some(dir) = &save.save else { return Ok(()) };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let output = dir.join("output.txt");
        std::fs::write(&output, self.lines.iter().map(|l| format!("{l}\n")).collect::<String>()).with_context(|| format!("writing {}", output.display()))?;
        let summary = dir.join("summary.csv");
        self.write_csv(&summary).with_context(|| format!("writing {}", summary.display()))?;
        println!("saved: {} and {}", output.display(), summary.display());
        Ok(())
    }

    fn write_csv(&self, path: &Path) -> Result<()> {
        let mut writer = csv::Writer::from_path(path)?;
        writer.write_record(&self.columns)?;
        for row in &self.rows {
            writer.write_record(self.columns.iter().map(|c| row.iter().find(|(k, _)| k == c).map_or("", |(_, v)| v.as_str())))?;
        }
        writer.flush()?;
        Ok(())
    }
}

/// `v` with four decimals: the precision the summaries keep (the docs round further).
pub fn figure(v: f64) -> String {
    if v.is_finite() { format!("{v:.4}") } else { String::new() }
}
