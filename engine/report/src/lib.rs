//! The self-contained HTML report: one file, CSS inline, plots as inline SVG.
//!
//! - [`svg`]: scatter, histogram and line plots as SVG text, with axes, ticks and legends.
//! - [`metrics`]: how a column of the summary shows its metric (label, direction, digits), as
//!   the pipeline's metric registry declares it; the report marks "best" from the direction
//!   alone, with no metric-specific code.
//! - [`plots`]: the plot registry — each plot an id, the metrics and tables it draws from, and
//!   a function from the run's rows to a caption and an SVG.
//! - [`render`]: the report context and the minijinja rendering (built-in or user template).

pub mod metrics;
pub mod plots;
pub mod render;
pub mod svg;

/// `s` escaped for HTML text and quoted attributes: what the report, its plots and
/// `weightlab serve` put around every name a run or a plugin chose.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub use render::{Ablation, Failure, PlotSet, ReportContext, Row, ScoreRow, ScoreTable, TreeDiscovery, VariantLine, ranks_of, render};
