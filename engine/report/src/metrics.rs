//! How the summary table shows a metric: the report side of a metric registry entry
//! (`weightlab_pipeline::metrics`), plain data so custom templates can use it.

use serde::Serialize;

/// One column of the summary table.
#[derive(Debug, Clone, Serialize)]
pub struct MetricColumn {
    /// Key in the `samples` table.
    pub key: String,
    pub label: String,
    pub unit: String,
    /// `higher`, `lower` or `none` (a trade-off axis: no "best" is marked).
    pub direction: String,
    /// Decimal places.
    pub digits: usize,
    pub help: String,
}
