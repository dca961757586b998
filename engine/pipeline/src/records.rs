//! What each stage records about itself in `stage.json`: plain serde types, written by the
//! stage that produced them and read back, typed, by the stages and the report that use them.
//! The bulky outputs (checkpoints, samples, tables) sit beside `stage.json` as files.

use serde::{Deserialize, Serialize};

/// A loaded or generated dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Content hash of the training and validation data (what methods see as the dataset).
    pub hash: String,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    pub input_shape: Vec<usize>,
}

/// A trained or imported zoo (`checkpoints/`, `zoo.parquet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooRecord {
    pub checkpoints: usize,
    pub parameters: usize,
    /// Mean test accuracy of the checkpoints (classifiers).
    pub mean_test_accuracy: Option<f64>,
    pub seconds: f64,
}

/// The zoo's own models scored (`samples.parquet`, `similarity.parquet`,
/// `predictions.safetensors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    /// Training checkpoints (scored leave-one-out) and held-out models.
    pub train: usize,
    pub heldout: usize,
    /// Metric keys computed.
    pub metrics: Vec<String>,
}

/// A method's fit and samples (`samples.safetensors`, `log.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodRecord {
    /// The plugin's own name, version and WIT ABI.
    pub plugin: String,
    pub version: String,
    pub abi: String,
    /// `generator` or `baseline`.
    pub role: String,
    /// Hash of the component's bytes.
    pub hash: String,
    /// Samples per target task (or in all, off task families).
    pub samples: usize,
    pub parameters: usize,
    pub fit_seconds: f64,
    pub sample_seconds: f64,
    pub peak_tensor_mib: f64,
    pub peak_rss_mib: Option<f64>,
    /// On a task family: the task each block of `samples` samples was generated for (and is
    /// scored on), in order; empty otherwise.
    #[serde(default)]
    pub targets: Vec<usize>,
    /// The method whose fit these samples were drawn from, when this stage shared it (a
    /// `wrong_condition` control run beside its method): `fit_seconds` is that one fit's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_shared_with: Option<String>,
}

impl MethodRecord {
    /// The target task of every sample (none off task families).
    pub fn sample_tasks(&self) -> Option<Vec<usize>> {
        (!self.targets.is_empty()).then(|| self.targets.iter().flat_map(|&t| std::iter::repeat_n(t, self.samples)).collect())
    }
}

/// A probe's fit on the training models and predictions on the held-out ones
/// (`probes.parquet`, `probe_scores.parquet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub plugin: String,
    pub version: String,
    pub abi: String,
    pub role: String,
    pub hash: String,
    pub target: String,
    pub train_models: usize,
    pub heldout_models: usize,
    pub fit_seconds: f64,
    pub predict_seconds: f64,
    pub peak_tensor_mib: f64,
    pub peak_rss_mib: Option<f64>,
}

impl MethodRecord {
    /// "name version (abi …, sha256 …)" for the report's provenance.
    pub fn provenance(&self) -> String {
        if self.role == crate::stages::method::IMPORTED_ROLE {
            return format!("imported state_dicts (sha256 {} of the files)", self.hash);
        }
        provenance(&self.plugin, &self.version, &self.abi, &self.hash)
    }
}

impl ProbeRecord {
    /// As [`MethodRecord::provenance`].
    pub fn provenance(&self) -> String {
        provenance(&self.plugin, &self.version, &self.abi, &self.hash)
    }
}

fn provenance(plugin: &str, version: &str, abi: &str, hash: &str) -> String {
    format!("{plugin} {version} (abi {abi}, sha256 {hash})")
}

/// What a plugin logged during fit (`log.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodLog {
    pub metrics: Vec<LoggedMetric>,
    pub messages: Vec<String>,
}

/// One `log.metric` call (`None`: the plugin logged a value that is not finite; JSON has no NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedMetric {
    pub name: String,
    pub step: u32,
    pub value: Option<f32>,
}

/// A method's samples scored (`samples.parquet`, `similarity.parquet`, `finetune.parquet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateRecord {
    pub samples: usize,
    /// Mean over the samples of each computed metric (finite values only).
    pub means: std::collections::BTreeMap<String, Option<f64>>,
}
