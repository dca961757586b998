//! Every number a run produces, as tables that polars and pandas read directly.
//!
//! - [`rows`]: the row types of each table (`samples`, `zoo`, `training_log`, `failures`, `runs`).
//! - [`table`]: column building and atomic writes of Arrow IPC (`.arrow`) and Parquet files.
//! - [`aggregate`]: aggregation over samples and seeds: mean, sd, 95 % t-interval, non-finite counts, rank.
//! - [`frontier`]: every method against the accuracy–novelty curve of added noise (Zeng et al.).
//! - [`figures`]: numbers quoted in the docs, checked against (and refreshed from) the committed
//!   `summary.csv` / `frontier.csv` of the runs they come from.

pub mod aggregate;
pub mod figures;
pub mod frontier;
pub mod rows;
pub mod table;

pub use aggregate::{Aggregation, MethodSummary, Stat, summarize};
pub use frontier::{Curve, FrontierRow, Verdict, curve, noise_frontier};
pub use polars::prelude::DataFrame;
pub use rows::*;
pub use table::{Table, TableError, read_parquet, write_csv};
