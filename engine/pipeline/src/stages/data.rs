//! Data stage: load or generate a dataset and record its identity.

use crate::error::Result;
use crate::executor::Run;
use crate::output;
use crate::records::DataRecord;

impl Run {
    pub(crate) fn run_data(&mut self, name: &str) -> Result<DataRecord> {
        output::status("Loading", &format!("data {name}"));
        let d = self.dataset(name)?;
        Ok(DataRecord { hash: d.hash.clone(), train: d.train.len(), validation: d.validation.len(), test: d.test.len(), input_shape: d.input_shape.clone() })
    }
}
