//! The self-contained HTML report: one file, CSS inline, plots as inline SVG.
//!
//! - [`svg`]: scatter, histogram and line plots as SVG text, with axes, ticks and legends.
//! - [`metrics`]: each metric declared once (label, direction, format); the report ranks and
//!   highlights from these declarations, with no metric-specific code.
//! - [`render`]: the report context and the minijinja rendering (built-in or user template).

pub mod metrics;
pub mod render;
pub mod svg;

pub use render::{Failure, PlotSet, ReportContext, Row, render};
