//! Where finished stages live: `<output>/stages/<kind>-<key>/`. A stage writes into a temporary
//! folder that is renamed into place only when complete, with `stage.json` inside, so a crash
//! (even kill -9) never leaves a half-written stage that a rerun would trust. `stage.json`
//! holds the stage's typed record (see [`crate::records`]).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weightlab_manifest::Stage;

use crate::error::{Result, format, io};

/// Writes one tensor (`shape`, raw little-endian `bytes` of `dtype`) as a safetensors file.
pub(crate) fn write_tensor(path: &Path, name: &str, dtype: safetensors::Dtype, shape: Vec<usize>, bytes: &[u8]) -> Result<()> {
    let view = safetensors::tensor::TensorView::new(dtype, shape, bytes).map_err(format(path))?;
    std::fs::write(path, safetensors::serialize([(name, view)], None).map_err(format(path))?).map_err(io("writing", path))
}

/// Reads tensor `name` of a safetensors file: its shape and raw little-endian bytes.
pub(crate) fn read_tensor(path: &Path, name: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(io("reading", path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(format(path))?;
    let t = st.tensor(name).map_err(format(path))?;
    Ok((t.shape().to_vec(), t.data().to_vec()))
}

pub struct StageStore {
    root: PathBuf,
}

/// What `stage.json` holds.
#[derive(Serialize, serde::Deserialize)]
struct StageFile<T> {
    stage: String,
    key: String,
    summary: T,
}

impl StageStore {
    pub fn new(output: &Path) -> Self {
        Self { root: output.join("stages") }
    }

    /// The folder of a finished stage.
    pub fn dir(&self, stage: &Stage) -> PathBuf {
        self.root.join(stage.dir_name())
    }

    pub fn is_done(&self, stage: &Stage) -> bool {
        self.dir(stage).join("stage.json").is_file()
    }

    /// A fresh, empty temporary folder to build the stage's output in.
    pub fn begin(&self, stage: &Stage) -> Result<PathBuf> {
        let tmp = self.root.join(format!("{}.partial", stage.dir_name()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io("removing the stale", &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
        Ok(tmp)
    }

    /// Marks the stage complete: writes `stage.json` with its record and moves the folder into
    /// place.
    pub fn commit<T: Serialize>(&self, stage: &Stage, tmp: &Path, record: &T) -> Result<PathBuf> {
        let file = StageFile { stage: stage.label(), key: stage.key.clone(), summary: record };
        let path = tmp.join("stage.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&file).map_err(format(&path))?).map_err(io("writing", &path))?;
        let dir = self.dir(stage);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io("replacing", &dir))?;
        }
        std::fs::rename(tmp, &dir).map_err(io("moving into place", &dir))?;
        Ok(dir)
    }

    /// The record a finished stage stored.
    pub fn record<T: DeserializeOwned>(&self, stage: &Stage) -> Result<T> {
        let path = self.dir(stage).join("stage.json");
        let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
        let file: StageFile<T> = serde_json::from_slice(&bytes).map_err(|e| crate::Error::Format { path: path.clone(), reason: format!("not a {} record: {e}", stage.label()) })?;
        Ok(file.summary)
    }
}
