//! Metrics, messages and progress from a plugin; the host stores them in the run's
//! `training_log` table and shows them in the report.

use crate::bindings::weightlab::plugin::log as raw;

/// Records a scalar metric at a step, e.g. `log::metric("ae-loss", step, loss.item())`.
pub fn metric(name: &str, step: usize, value: f32) {
    raw::metric(name, step as u32, value)
}

/// Records a line of text.
pub fn message(text: &str) {
    raw::message(text)
}

/// Reports progress of the current call (`done` of `total`).
pub fn progress(done: usize, total: usize) {
    raw::progress(done as u32, total as u32)
}
