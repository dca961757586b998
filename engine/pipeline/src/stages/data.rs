//! Data stage: load or generate a dataset and record its identity.

use weightlab_compute::Dataset;

use crate::output;
use crate::records::DataRecord;

/// The record of dataset `name` (loaded by the executor, which keeps it for the run).
pub(crate) fn run(name: &str, data: &Dataset) -> DataRecord {
    output::status("Loading", &format!("data {name}"));
    DataRecord { hash: data.hash.clone(), train: data.train.len(), validation: data.validation.len(), test: data.test.len(), input_shape: data.input_shape.clone() }
}

#[cfg(test)]
mod tests {
    /// The record is the dataset's identity and sizes.
    #[test]
    fn the_record_names_the_data_and_its_splits() {
        let (data, _, _) = crate::stages::testing::tiny(4);
        let record = super::run("blobs", &data);
        assert_eq!((record.train, record.validation, record.test), (data.train.len(), data.validation.len(), data.test.len()));
        assert_eq!((record.hash.as_str(), record.input_shape.as_slice()), (data.hash.as_str(), &[2usize][..]));
    }
}
