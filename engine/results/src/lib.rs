//! Every number a run produces, as tables that polars and pandas read directly.
//!
//! - [`rows`]: the row types of each table (`samples`, `zoo`, `training_log`, `failures`, `runs`).
//! - [`table`]: column building and atomic writes of Arrow IPC (`.arrow`) and Parquet files.
//! - [`aggregate`]: polars aggregation over samples and seeds: mean, std, 95% interval, rank.

pub mod aggregate;
pub mod rows;
pub mod table;

pub use aggregate::{MethodSummary, summarize};
pub use polars::prelude::DataFrame;
pub use rows::*;
pub use table::{Table, TableError, read_parquet};
