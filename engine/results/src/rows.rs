//! The rows of each table, as plain serde structs (stages store them as JSON in their folders;
//! the report stage gathers them into tables). Column names are the field names.

use serde::{Deserialize, Serialize};

use crate::table::Table;

/// Seeds are u64; tables store them as i64 with the same bits (pandas has no u64 default).
fn u64_bits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(i128::deserialize(d)? as u64)
}

/// JSON has no NaN: a missing float is written as null and read back as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One evaluated model: a method's sample, or a training / held-out checkpoint as reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// Method name, or `train` / `held-out` for the zoo's own models.
    pub method: String,
    /// `generator`, `baseline` or `reference`.
    pub role: String,
    pub zoo: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    /// Index of the sample within its method and seed (or model index for references).
    pub sample: usize,
    pub accuracy: Option<f64>,
    /// Accuracy of the majority vote of all samples of this method and seed (the same in each
    /// of its rows).
    #[serde(default)]
    pub ensemble_accuracy: Option<f64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
    /// L2 distance to the nearest training checkpoint (self excluded for training models).
    #[serde(deserialize_with = "f64_or_nan")]
    pub nn_l2: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub nn_cosine: f64,
    /// Index (in the zoo's training checkpoints) of that nearest checkpoint.
    pub nn_index: i64,
    /// Symmetry check: L2 distance to the nearest training checkpoint after each checkpoint's
    /// hidden units were randomly permuted (same functions, other weights).
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub nn_l2_permuted: f64,
    /// 1 − max IoU of wrong test predictions with any training checkpoint.
    pub novelty: Option<f64>,
    /// Agreement of predictions with the behaviourally closest training checkpoint.
    pub agreement: Option<f64>,
    /// First two principal components of the weights (within the zoo), for the PCA plot.
    #[serde(deserialize_with = "f64_or_nan")]
    pub pc1: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub pc2: f64,
}

/// One metric logged by a plugin or by zoo training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub source: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    pub name: String,
    pub step: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
}

/// One message a plugin logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRow {
    pub source: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    pub text: String,
}

/// One failed stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRow {
    pub stage: String,
    pub method: String,
    /// The cause in its first line, details after.
    pub reason: String,
    /// Wall time the stage ran before it failed.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub seconds: f64,
    /// Peak resident memory of the method's worker process, in MiB (method stages).
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
}

/// One zoo checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooRow {
    pub zoo: String,
    pub model: usize,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    pub epoch: usize,
    pub side: String,
    pub parent: Option<i64>,
    /// Classes a tree child was fine-tuned on, comma-separated ("" = all classes).
    #[serde(default)]
    pub classes: String,
    /// Shape learned on a many-shape neural-field dataset.
    #[serde(default)]
    pub task: Option<i64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_loss: f64,
    pub train_accuracy: Option<f64>,
    /// On the validation subset: the figures methods see.
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub validation_loss: f64,
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    /// On the test split: reported, never shown to a method.
    #[serde(deserialize_with = "f64_or_nan")]
    pub test_loss: f64,
    pub test_accuracy: Option<f64>,
    /// Step of continued training (0 for epoch checkpoints).
    pub step: usize,
    /// The training recipe (empty / NaN for imported zoos).
    pub optimizer: String,
    #[serde(deserialize_with = "f64_or_nan")]
    pub lr: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub file: String,
}

fn nan() -> f64 {
    f64::NAN
}

/// How alike one model is to one training checkpoint: the cells of the report's heatmap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityRow {
    pub zoo: String,
    pub method: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    pub sample: usize,
    /// Index among the zoo's training checkpoints.
    pub checkpoint: usize,
    /// IoU of test errors (classification) or cosine similarity of the weights (neural fields).
    #[serde(deserialize_with = "f64_or_nan")]
    pub similarity: f64,
    /// `error-iou` or `weight-cosine`.
    pub kind: String,
}

/// A sample after some steps of fine-tuning (few-shot transfer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneRow {
    pub zoo: String,
    pub method: String,
    pub role: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    pub sample: usize,
    /// Optimizer steps of fine-tuning (0: as generated).
    pub steps: usize,
    pub accuracy: Option<f64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
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
    #[serde(deserialize_with = "f64_or_nan")]
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
    let Some(first) = values.first() else {
        return Table::new();
    };
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

/// Reads rows back from a table written by [`table_of`] (the inverse mapping: numbers and
/// strings to the struct's fields; empty strings for optional text become `None`).
pub fn rows_of<T: serde::de::DeserializeOwned>(df: &polars::prelude::DataFrame) -> Result<Vec<T>, String> {
    use polars::prelude::AnyValue;
    let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let row = df.get_row(i).map_err(|e| e.to_string())?;
        let mut map = serde_json::Map::new();
        for (name, value) in names.iter().zip(row.0) {
            let v = match value {
                AnyValue::Null => serde_json::Value::Null,
                AnyValue::Boolean(b) => serde_json::Value::Bool(b),
                AnyValue::String(s) => serde_json::Value::String(s.to_string()),
                AnyValue::StringOwned(s) => serde_json::Value::String(s.to_string()),
                AnyValue::Float64(f) => serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number),
                AnyValue::Float32(f) => serde_json::Number::from_f64(f as f64).map_or(serde_json::Value::Null, serde_json::Value::Number),
                AnyValue::Int64(x) => serde_json::Value::from(x),
                AnyValue::Int32(x) => serde_json::Value::from(x),
                AnyValue::UInt64(x) => serde_json::Value::from(x),
                AnyValue::UInt32(x) => serde_json::Value::from(x),
                other => serde_json::Value::String(other.to_string()),
            };
            map.insert(name.clone(), v);
        }
        out.push(serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| format!("row {i}: {e}"))?);
    }
    Ok(out)
}
