//! Data stage: load or generate a dataset and record its identity.

use weightlab_compute::Dataset;

use crate::output;
use crate::records::DataRecord;

/// The record of dataset `name` (loaded by the executor, which keeps it for the run).
pub(crate) fn run(name: &str, data: &Dataset) -> DataRecord {
    output::status("Loading", &format!("data {name}"));
    DataRecord { hash: data.hash.clone(), train: data.train.len(), validation: data.validation.len(), test: data.test.len(), input_shape: data.input_shape.clone() }
}
