//! Data stage: load or generate a dataset and record its identity.

use anyhow::Result;

use crate::executor::Run;
use crate::output;

impl Run {
    pub(crate) fn run_data(&mut self, name: &str) -> Result<serde_json::Value> {
        output::status("Loading", &format!("data {name}"));
        let d = self.dataset(name)?;
        Ok(serde_json::json!({ "hash": d.hash, "train": d.train.len(), "test": d.test.len(), "input_shape": d.input_shape }))
    }
}
