//! The rows of each table, as plain serde structs (stages store them as JSON in their folders;
//! the report stage gathers them into tables). Column names are the field names.

use serde::{Deserialize, Serialize};

use crate::table::Table;

/// One evaluated model: a method's sample, or a training / held-out checkpoint as reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// Method name, or `train` / `held-out` for the zoo's own models.
    pub method: String,
    /// `generator`, `baseline` or `reference`.
    pub role: String,
    pub zoo: String,
    pub seed: u64,
    /// Index of the sample within its method and seed (or model index for references).
    pub sample: usize,
    pub accuracy: Option<f64>,
    pub loss: f64,
    /// L2 distance to the nearest training checkpoint (self excluded for training models).
    pub nn_l2: f64,
    pub nn_cosine: f64,
    /// Index (in the zoo's training checkpoints) of that nearest checkpoint.
    pub nn_index: i64,
    /// 1 − max IoU of wrong test predictions with any training checkpoint.
    pub novelty: Option<f64>,
    /// Agreement of predictions with the behaviourally closest training checkpoint.
    pub agreement: Option<f64>,
    /// First two principal components of the weights (within the zoo), for the PCA plot.
    pub pc1: f64,
    pub pc2: f64,
}

/// One metric logged by a plugin or by zoo training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub source: String,
    pub seed: u64,
    pub name: String,
    pub step: u64,
    pub value: f64,
}

/// One failed stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRow {
    pub stage: String,
    pub method: String,
    pub reason: String,
}

/// One zoo checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooRow {
    pub zoo: String,
    pub model: usize,
    pub seed: u64,
    pub epoch: usize,
    pub side: String,
    pub parent: Option<i64>,
    pub train_loss: f64,
    pub train_accuracy: Option<f64>,
    pub test_loss: f64,
    pub test_accuracy: Option<f64>,
    pub file: String,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub experiment: String,
    pub manifest_hash: String,
    pub seeds: String,
    pub weightlab_version: String,
    pub git_commit: String,
    pub plugins: String,
    pub started: String,
    pub finished: String,
    pub seconds: f64,
    pub status: String,
}

/// Builds a table from rows through their JSON form, so every row type needs no hand-written
/// column code: numbers become f64/i64 columns, everything else strings.
pub fn table_of<T: Serialize>(rows: &[T]) -> Table {
    let values: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .filter_map(|r| match serde_json::to_value(r) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect();
    let Some(first) = values.first() else { return Table::new() };
    let mut table = Table::new();
    for key in first.keys() {
        let col: Vec<&serde_json::Value> = values.iter().map(|m| m.get(key).unwrap_or(&serde_json::Value::Null)).collect();
        let integral = col.iter().all(|v| v.is_null() || v.is_i64() || v.is_u64());
        let numeric = col.iter().all(|v| v.is_null() || v.is_number());
        table = if numeric && integral && col.iter().any(|v| !v.is_null()) {
            table.i64(key, col.iter().map(|v| v.as_i64().or_else(|| v.as_u64().map(|u| u as i64))).collect())
        } else if numeric {
            table.f64(key, col.iter().map(|v| v.as_f64()).collect())
        } else {
            table.str(key, col.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| if v.is_null() { String::new() } else { v.to_string() })).collect())
        };
    }
    table
}
