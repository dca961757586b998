//! The rows of each table, as plain serde structs (stages store them as JSON in their folders;
//! the report stage gathers them into tables). Column names are the field names.

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::table::{Table, TableError, read_parquet};

/// Method name of a zoo's training checkpoints in the tables (scored leave-one-out).
pub const TRAIN_REFERENCE: &str = "train (leave-one-out)";
/// Method name of a zoo's held-out models in the tables.
pub const HELDOUT_REFERENCE: &str = "held-out";

/// Seeds are u64; tables store them as i64 with the same bits (pandas has no u64 default).
fn u64_bits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(i128::deserialize(d)? as u64)
}

/// JSON has no NaN: a missing float is written as null and read back as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One evaluated model: a method's sample, or a training / held-out checkpoint as reference.
/// Its metric values are keyed by the metric registry's keys (`weightlab_pipeline::metrics`):
/// one column each in the `samples` table. A metric that does not apply (accuracy of a
/// neural field) or was not asked for is absent; one that was computed but is not finite is
/// stored as NaN, so summaries can count it instead of dropping it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// Method name, or `train (leave-one-out)` / `held-out` for the zoo's own models.
    pub method: String,
    /// `generator`, `baseline` or `reference`.
    pub role: String,
    pub zoo: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    /// Index of the sample within its method and seed (or model index for references).
    pub sample: usize,
    /// Index (in the zoo's training checkpoints) of the nearest checkpoint in weight space.
    pub nn_index: i64,
    /// First two principal components of the weights (within the zoo), for the PCA plot.
    #[serde(deserialize_with = "f64_or_nan")]
    pub pc1: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub pc2: f64,
    /// The file the model was read from (imported samples: `[[method]] import`); empty otherwise.
    #[serde(default)]
    pub file: String,
    /// Metric key → value.
    #[serde(flatten)]
    pub metrics: std::collections::BTreeMap<String, f64>,
}

impl SampleRow {
    /// The value of metric `key`, if it was computed for this model.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).copied()
    }
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
    /// The failed method's role (`generator`, `baseline`, `probe`): the manifest's, else its
    /// plugin's — what the report's summary shows for a method that has no samples to say it.
    /// Empty for other stages, or when unknown.
    #[serde(default)]
    pub role: String,
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

/// One parameter value of a scored model or of its nearest training checkpoint: the cells of
/// the report's parameter heatmap (Zeng et al. 2025 show samples beside their nearest
/// checkpoints this way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterRow {
    pub zoo: String,
    pub method: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    pub sample: usize,
    /// `model` (the scored model) or `nearest` (its nearest training checkpoint by L2).
    pub source: String,
    /// Index in the flat weight vector.
    pub parameter: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
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
    /// The task the sample was generated for and fine-tuned on (task families).
    #[serde(default)]
    pub task: Option<i64>,
    /// Its group: `heldout` or `ood` (task families); empty otherwise.
    #[serde(default)]
    pub group: String,
    pub accuracy: Option<f64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
}

/// A probe's prediction of one label of one held-out model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    pub zoo: String,
    pub method: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    /// `classes`, `parent`, `test-accuracy`, `lr`, …
    pub target: String,
    /// The held-out model.
    pub model: usize,
    /// The label scored (class or parent name; "" for regression).
    pub label: String,
    /// `seen` (a training label), `unseen` (withheld from training, scored zero-shot), or ""
    /// for regression.
    pub label_set: String,
    /// 0/1 for labels, the value for regression.
    #[serde(deserialize_with = "f64_or_nan")]
    pub truth: f64,
    /// The probe's score (labels) or prediction (regression).
    #[serde(deserialize_with = "f64_or_nan")]
    pub prediction: f64,
}

/// One metric of one probe run (a method and seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeScoreRow {
    pub zoo: String,
    pub method: String,
    pub plugin: String,
    #[serde(deserialize_with = "u64_bits")]
    pub seed: u64,
    pub target: String,
    /// A key of the probe-metric registry (`accuracy`, `map`, `r2`, …).
    pub metric: String,
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
    /// What a probe that reads nothing from the weights scores in expectation (a random
    /// ranking's mAP, k/labels for top-k accuracy, 1/labels for one label; 0 for R² and τ).
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub chance: f64,
}

/// Model trees found from weights alone, against the true trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeRow {
    pub zoo: String,
    /// Models clustered (tree children, training and held-out).
    pub models: usize,
    pub true_trees: usize,
    pub found_trees: usize,
    /// Adjusted Rand index of the found trees against the true ones.
    #[serde(deserialize_with = "f64_or_nan")]
    pub ari: f64,
}

/// One task of a task family (`[data.*] tasks`), as a zoo on it records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub zoo: String,
    pub task: usize,
    /// `train`, `heldout` or `ood`.
    pub group: String,
    /// The source classes behind labels 0, 1, …, comma-separated.
    pub classes: String,
    /// Rotation in degrees (`rotate` family).
    pub angle: Option<f64>,
    /// The instruction text conditional generators get embedded.
    pub instruction: String,
}

/// One value of a task's condition: `kind` is `support` (set encoding) or `instruction` (text
/// embedding); the vector of a task and kind is its rows in `dim` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionRow {
    pub zoo: String,
    pub task: usize,
    pub kind: String,
    pub dim: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
}

/// One value of a cached text embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRow {
    /// The text model, e.g. `all-MiniLM-L6-v2`.
    pub model: String,
    pub text: String,
    pub dim: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
}

/// One swept value of one variant (`[data.*]`, `[zoo.*]` or `[[method]]` entry expanded from a
/// sweep): a variant has a row per swept key it takes, its own and its dependencies'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRow {
    /// `data`, `zoo` or `method`.
    pub section: String,
    /// The variant's name, as in every other table: `noise[sigma=0.05]`.
    pub name: String,
    /// The entry it was expanded from: `noise`.
    pub base: String,
    /// The swept key as written: `method.noise.config.sigma`.
    pub key: String,
    /// Its short label in names: `sigma`.
    pub label: String,
    /// The value as names show it.
    pub value: String,
    /// The value as a number (booleans 0/1), when it is one.
    pub number: Option<f64>,
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
    /// Where the run's stages were computed, recorded by each stage as it finished: one
    /// "<device, threads> on <host>" per distinct place, `; `-separated (empty in runs made
    /// before weightlab recorded it).
    #[serde(default)]
    pub compute: String,
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
    let columns = df.get_columns();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut map = serde_json::Map::new();
        for column in columns {
            let v = match column.get(i).map_err(|e| e.to_string())? {
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
            map.insert(column.name().to_string(), v);
        }
        out.push(serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| format!("row {i}: {e}"))?);
    }
    Ok(out)
}

/// Rows of `<dir>/<table>.parquet` (written by [`table_of`]); `None` when the file is absent.
pub fn read_table<T: serde::de::DeserializeOwned>(dir: &Path, table: &str) -> Result<Option<Vec<T>>, TableError> {
    let path = dir.join(format!("{table}.parquet"));
    if !path.is_file() {
        return Ok(None);
    }
    rows_of(&read_parquet(&path)?).map(Some).map_err(|reason| TableError::Rows { path, reason })
}

/// The `samples` table of `dir` (written by [`samples_table`]); `None` when it is absent.
pub fn read_samples(dir: &Path) -> Result<Option<Vec<SampleRow>>, TableError> {
    let path = dir.join("samples.parquet");
    if !path.is_file() {
        return Ok(None);
    }
    samples_of(&read_parquet(&path)?).map(Some).map_err(|reason| TableError::Rows { path, reason })
}

/// Identity columns of the `samples` table; every other column is a metric.
const SAMPLE_COLUMNS: [&str; 9] = ["method", "role", "zoo", "seed", "sample", "nn_index", "pc1", "pc2", "file"];

/// The `samples` table: identity columns, then one `f64` column per metric key (null where a
/// metric was not computed for a row, NaN where it was computed and is not finite). Written
/// directly rather than through JSON, which has no NaN.
pub fn samples_table(rows: &[SampleRow], metric_order: &[&str]) -> Table {
    let mut keys: Vec<&str> = metric_order.iter().copied().filter(|k| rows.iter().any(|r| r.metrics.contains_key(*k))).collect();
    for r in rows {
        for k in r.metrics.keys() {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    let text = |f: fn(&SampleRow) -> &str| rows.iter().map(|r| f(r).to_string()).collect();
    let mut table = Table::new()
        .str("method", text(|r| &r.method))
        .str("role", text(|r| &r.role))
        .str("zoo", text(|r| &r.zoo))
        .i64("seed", rows.iter().map(|r| Some(r.seed as i64)).collect())
        .i64("sample", rows.iter().map(|r| Some(r.sample as i64)).collect())
        .i64("nn_index", rows.iter().map(|r| Some(r.nn_index)).collect())
        .f64("pc1", rows.iter().map(|r| Some(r.pc1)).collect())
        .f64("pc2", rows.iter().map(|r| Some(r.pc2)).collect())
        .str("file", text(|r| &r.file));
    for k in keys {
        table = table.f64(k, rows.iter().map(|r| r.metrics.get(k).copied()).collect());
    }
    table
}

/// Reads a `samples` table back (the inverse of [`samples_table`]; NaN stays NaN, null becomes
/// an absent metric). Tables written before the metric registry had the same columns.
pub fn samples_of(df: &polars::prelude::DataFrame) -> Result<Vec<SampleRow>, String> {
    use polars::prelude::DataType;
    if df.height() == 0 {
        return Ok(Vec::new());
    }
    let column = |name: &str, dtype: DataType| df.column(name).and_then(|c| c.cast(&dtype)).map_err(|e| format!("column `{name}`: {e}"));
    let strings =
        |name: &str| -> Result<Vec<String>, String> { Ok(column(name, DataType::String)?.str().map_err(|e| e.to_string())?.into_iter().map(|v| v.unwrap_or_default().to_string()).collect()) };
    let ints = |name: &str| -> Result<Vec<i64>, String> { Ok(column(name, DataType::Int64)?.i64().map_err(|e| e.to_string())?.into_iter().map(|v| v.unwrap_or(-1)).collect()) };
    let floats = |name: &str| -> Result<Vec<Option<f64>>, String> { Ok(column(name, DataType::Float64)?.f64().map_err(|e| e.to_string())?.into_iter().collect()) };
    let (method, role, zoo) = (strings("method")?, strings("role")?, strings("zoo")?);
    let (seed, sample, nn_index) = (ints("seed")?, ints("sample")?, ints("nn_index")?);
    let (pc1, pc2) = (floats("pc1")?, floats("pc2")?);
    // Tables written before imported samples have no `file` column.
    let file = if df.get_column_names().iter().any(|n| n.as_str() == "file") { strings("file")? } else { vec![String::new(); df.height()] };
    let metric_columns: Vec<(String, Vec<Option<f64>>)> =
        df.get_column_names().iter().map(|n| n.to_string()).filter(|n| !SAMPLE_COLUMNS.contains(&n.as_str())).map(|n| floats(&n).map(|v| (n, v))).collect::<Result<_, _>>()?;
    Ok((0..df.height())
        .map(|i| SampleRow {
            method: method[i].clone(),
            role: role[i].clone(),
            zoo: zoo[i].clone(),
            seed: seed[i] as u64,
            sample: sample[i].max(0) as usize,
            nn_index: nn_index[i],
            pc1: pc1[i].unwrap_or(f64::NAN),
            pc2: pc2[i].unwrap_or(f64::NAN),
            file: file[i].clone(),
            metrics: metric_columns.iter().filter_map(|(k, v)| v[i].map(|x| (k.clone(), x))).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(method: &str, seed: u64, metrics: &[(&str, f64)]) -> SampleRow {
        SampleRow {
            method: method.into(),
            role: "baseline".into(),
            zoo: "z".into(),
            seed,
            sample: 3,
            nn_index: 7,
            pc1: 0.5,
            pc2: -1.0,
            file: String::new(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn samples_round_trip_through_parquet_with_nan_and_absent_metrics() {
        let rows = vec![sample("a", u64::MAX, &[("accuracy", 0.5), ("loss", f64::NAN)]), sample("b", 1, &[("loss", 2.0)])];
        let dir = tempfile::tempdir().unwrap();
        samples_table(&rows, &["accuracy", "loss"]).write(dir.path(), "samples").unwrap();
        let back = read_samples(dir.path()).unwrap().expect("written");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].seed, u64::MAX, "seeds keep their 64 bits");
        assert_eq!(back[0].metric("accuracy"), Some(0.5));
        assert!(back[0].metric("loss").is_some_and(f64::is_nan), "NaN must survive, not become missing");
        assert_eq!(back[1].metric("accuracy"), None, "a metric not computed stays absent");
        assert_eq!((back[1].method.as_str(), back[1].nn_index, back[1].pc2), ("b", 7, -1.0));
    }

    #[test]
    fn other_tables_round_trip_through_json_columns() {
        let rows = vec![
            FailureRow { stage: "method \"x\" seed 0".into(), method: "x".into(), reason: "time limit".into(), seconds: 1.5, peak_rss_mib: Some(400.0), role: "generator".into() },
            FailureRow { stage: "zoo z".into(), method: String::new(), reason: "bad".into(), seconds: 0.25, peak_rss_mib: None, role: String::new() },
        ];
        let dir = tempfile::tempdir().unwrap();
        table_of(&rows).write(dir.path(), "failures").unwrap();
        let back: Vec<FailureRow> = read_table(dir.path(), "failures").unwrap().expect("written");
        assert_eq!(back, rows);
        assert_eq!(read_table::<FailureRow>(dir.path(), "absent").unwrap(), None);
    }
}
