//! Text embeddings for the pipeline (probe label names; task instructions for conditioning):
//! all-MiniLM-L6-v2 run natively by [`weightlab_compute::text`], each text embedded once per
//! machine and cached as an Arrow/Parquet table (`<cache>/embeddings/minilm.parquet`, one row
//! per text and dimension) so reruns and other stages do not load the model again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use weightlab_compute::text::{self, TextEncoder};
use weightlab_results::EmbeddingRow;
use weightlab_results::rows::{read_table, table_of};

use crate::error::Result;

/// The model name recorded with every cached row.
pub const MODEL: &str = "all-MiniLM-L6-v2";

/// Embeddings of some texts: texts × `dim`, row-major, unit length.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub values: Vec<f32>,
    pub dim: usize,
}

/// Where the cache table lives: `$WEIGHTLAB_CACHE/embeddings` or `~/.cache/weightlab/embeddings`.
fn cache_dir() -> Option<PathBuf> {
    Some(weightlab_host::cache_dir()?.join("embeddings"))
}

/// The MiniLM embeddings of `texts`, from the cache where present; new ones are computed and
/// added to it. A cache that cannot be read or written is skipped, never fatal.
pub fn embeddings(texts: &[String]) -> Result<Embeddings> {
    let dir = cache_dir();
    let mut known: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let cached: Vec<EmbeddingRow> = dir.as_ref().and_then(|d| read_table(d, "minilm").ok().flatten()).unwrap_or_default();
    for r in cached.iter().filter(|r| r.model == MODEL) {
        let v = known.entry(r.text.clone()).or_insert_with(|| vec![0.0; text::DIM]);
        if let Some(slot) = v.get_mut(r.dim) {
            *slot = r.value as f32;
        }
    }
    let missing: Vec<String> = texts.iter().filter(|t| !known.contains_key(*t)).cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if !missing.is_empty() {
        let encoder = TextEncoder::load(&text::default_model_dir())?;
        let values = encoder.embed(&missing)?;
        for (t, v) in missing.iter().zip(values.chunks(text::DIM)) {
            known.insert(t.clone(), v.to_vec());
        }
        if let Some(dir) = dir {
            let rows: Vec<EmbeddingRow> =
                known.iter().flat_map(|(t, v)| v.iter().enumerate().map(move |(dim, &value)| EmbeddingRow { model: MODEL.into(), text: t.clone(), dim, value: value as f64 })).collect();
            let _ = table_of(&rows).write(&dir, "minilm");
        }
    }
    Ok(Embeddings { values: texts.iter().flat_map(|t| known[t].iter().copied()).collect(), dim: text::DIM })
}
