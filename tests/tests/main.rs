//! The end-to-end tests, one module per subject, in one test binary: one build and one link
//! instead of one per file, and the harness's threads take the next test of any file while a
//! test of another waits on its processes (a Slurm cluster, a FIFO, a Python build). Heavy tests
//! still take a file's lock (`HEAVY`, `ONE_AT_A_TIME`) where two of that file would fight over
//! the cores. One file's tests: `cargo test --release --workspace --test e2e transfer::`.

mod abi;
mod baselines;
mod byo;
mod cli;
mod cluster;
mod containment;
mod contract;
mod docs;
mod explore;
mod generators;
mod hostile;
mod install;
mod plugin_authors;
mod plugin_template;
mod probes;
mod report;
mod settings;
mod slurm;
mod store;
mod transfer;
mod validation;
