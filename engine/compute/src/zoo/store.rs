//! Zoo storage on disk, in formats PyTorch reads directly:
//!
//! ```text
//! <zoo dir>/checkpoints/model-0003-epoch-05.safetensors   one state_dict per checkpoint
//! <zoo dir>/zoo.json                                      architecture and checkpoint index
//! ```
//! (The run's Arrow/Parquet zoo table is written from the same index by the results crate.)
//! `safetensors.torch.load_file` gives back a state_dict with the layout's names and shapes.
//! Import turns any folder of such files into a zoo; export writes one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::{Checkpoint, Side, Zoo};
use crate::arch::{Arch, Layout};

/// Why a zoo could not be stored or loaded.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// The file name of a checkpoint inside the zoo folder.
pub fn checkpoint_file(model: usize, epoch: usize, step: usize) -> String {
    match step {
        0 => format!("checkpoints/model-{model:04}-epoch-{epoch:03}.safetensors"),
        _ => format!("checkpoints/model-{model:04}-epoch-{epoch:03}-step-{step:05}.safetensors"),
    }
}

/// What `zoo.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    layout: Layout,
    checkpoints: Vec<Checkpoint>,
}

/// Encodes one flat vector as a safetensors state_dict.
/// A BatchNorm's `num_batches_tracked` (PyTorch's int64 scalar) is written as 0 beside its
/// running statistics, so `load_state_dict` finds every key it expects; it changes no output
/// (it only matters with `momentum=None`).
pub fn to_safetensors(layout: &Layout, flat: &[f32], metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
        layout.unflatten(flat).into_iter().map(|(name, shape, values)| (name, Dtype::F32, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
    for p in &layout.params {
        if let Some(module) = p.name.strip_suffix(".running_var") {
            tensors.push((format!("{module}.num_batches_tracked"), Dtype::I64, Vec::new(), 0i64.to_le_bytes().to_vec()));
        }
    }
    let views: Vec<(String, TensorView)> = tensors.iter().map(|(name, dtype, shape, bytes)| (name.clone(), TensorView::new(*dtype, shape.clone(), bytes).expect("shape matches bytes"))).collect();
    canonical_header(safetensors::serialize(views, metadata).expect("f32 tensors serialise"))
}

/// The same safetensors file with its header's keys in sorted order. `safetensors` writes the
/// metadata from a `HashMap`, whose order changes from process to process; a checkpoint must be
/// the same bytes wherever it is computed (sharded runs are checked against local ones). The
/// header keeps its length (same JSON, other order; the padding is kept), so the data offsets
/// hold.
fn canonical_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize) else { return bytes };
    let Some(header) = bytes.get(8..8 + len) else { return bytes };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else { return bytes };
    let sorted = sort_keys(value).to_string();
    if sorted.len() > len {
        return bytes;
    }
    let mut padded = sorted.into_bytes();
    padded.resize(len, b' ');
    bytes[8..8 + len].copy_from_slice(&padded);
    bytes
}

/// A JSON value with every object's keys in sorted order (whatever map `serde_json` uses).
fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().collect())
        }
        other => other,
    }
}

/// Decodes a safetensors state_dict into a flat vector of `layout`.
pub fn from_safetensors(layout: &Layout, bytes: &[u8]) -> Result<Vec<f32>, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    if let Some(prefix) = wrapper_prefix(layout, &st.names()) {
        return Err(format!(
            "every tensor's name starts with `{prefix}` (a wrapper module's: nn.DataParallel writes `module.`, Lightning `model.`), which the architecture's names do not: strip it once, `{{k.removeprefix('{prefix}'): v for k, v in state_dict.items()}}`"
        ));
    }
    let mut decoded: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    for (name, view) in st.tensors() {
        // PyTorch's BatchNorm counter: an integer the flat vector does not hold.
        if name.strip_suffix(".num_batches_tracked").is_some_and(|m| layout.get(&format!("{m}.running_var")).is_some()) {
            continue;
        }
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect(),
            Dtype::F64 => view.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
            // Half precision widens to f32 exactly: generators often write their models so.
            Dtype::F16 => view.data().chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::BF16 => view.data().chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            other => {
                return Err(format!("tensor `{name}` has dtype {other:?}; weights are read from F32, F64, F16 and BF16"));
            }
        };
        // A NaN weight poisons every distance and metric computed from the model.
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            return Err(format!("tensor `{name}` holds {bad} NaN or infinite value(s) (the first, {}, at index {at}): its model diverged or was damaged", values[at]));
        }
        decoded.insert(name, (view.shape().to_vec(), values));
    }
    let mut extra: Vec<&String> = decoded.keys().filter(|k| layout.get(k).is_none()).collect();
    extra.sort();
    if !extra.is_empty() {
        let shown: Vec<String> = extra.iter().take(5).map(|n| format!("`{n}`")).collect();
        return Err(format!("tensor{} {} {} not part of the architecture", if extra.len() > 1 { "s" } else { "" }, shown.join(", "), if extra.len() > 1 { "are" } else { "is" }));
    }
    layout.flatten(|name| decoded.get(name).map(|(s, v)| (s.as_slice(), v.as_slice())))
}

/// The prefix every name of a state_dict carries when its model was saved inside a wrapper
/// (`module.0.weight` for `0.weight`), if stripping it gives the layout's names; `None` when
/// the names fit as they are or differ otherwise.
fn wrapper_prefix(layout: &Layout, names: &[&str]) -> Option<String> {
    let first = &layout.params.first()?.name;
    let prefix = names.iter().find_map(|n| n.strip_suffix(first.as_str()).filter(|p| p.ends_with('.')))?;
    let fits = |n: &&str| n.strip_prefix(prefix).is_some_and(|rest| layout.get(rest).is_some() || rest.ends_with(".num_batches_tracked"));
    (!names.iter().any(|n| layout.get(n).is_some()) && names.iter().all(fits)).then(|| prefix.to_string())
}

/// Writes the zoo into `dir`: one safetensors file per checkpoint, then `zoo.json` last, so a
/// folder with an index is always complete.
pub fn save(zoo: &Zoo, dir: &Path) -> Result<(), StoreError> {
    let layout = zoo.layout();
    std::fs::create_dir_all(dir.join("checkpoints")).map_err(io(dir))?;
    for (i, c) in zoo.checkpoints.iter().enumerate() {
        let meta =
            HashMap::from([("model".to_string(), c.model.to_string()), ("epoch".to_string(), c.epoch.to_string()), ("step".to_string(), c.step.to_string()), ("seed".to_string(), c.seed.to_string())]);
        let path = dir.join(&c.file);
        std::fs::write(&path, to_safetensors(&layout, zoo.weights_of(i), Some(meta))).map_err(io(&path))?;
    }
    let index = Index { layout, checkpoints: zoo.checkpoints.clone() };
    let path = dir.join("zoo.json");
    let tmp = dir.join("zoo.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&index).expect("index serialises")).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(())
}

/// The layout of a zoo written by [`save`] (names and shapes of its state_dicts).
pub fn read_layout(dir: &Path) -> Result<Layout, StoreError> {
    let path = dir.join("zoo.json");
    let text = weightlab_manifest::files::read_regular(&path, 256 << 20).map_err(io(&path))?;
    let index: Index = serde_json::from_slice(&text).map_err(|e| StoreError::Format { path: path.clone(), reason: e.to_string() })?;
    Ok(index.layout)
}

/// Reads a zoo written by [`save`].
pub fn load(arch: &Arch, dir: &Path) -> Result<Zoo, StoreError> {
    let path = dir.join("zoo.json");
    let text = weightlab_manifest::files::read_regular(&path, 256 << 20).map_err(io(&path))?;
    let index: Index = serde_json::from_slice(&text).map_err(|e| StoreError::Format { path: path.clone(), reason: e.to_string() })?;
    if index.layout != arch.layout() {
        return Err(StoreError::Format { path, reason: "stored layout differs from the manifest's architecture".into() });
    }
    let mut weights = Vec::with_capacity(index.checkpoints.len() * index.layout.len());
    for c in &index.checkpoints {
        // The index may come from a run folder made elsewhere: its file names stay inside `dir`.
        let inside = !c.file.is_empty() && std::path::Path::new(&c.file).components().all(|p| matches!(p, std::path::Component::Normal(_)));
        if !inside {
            return Err(StoreError::Format { path: path.clone(), reason: format!("checkpoint file {:?} is not a relative path inside the zoo's folder", c.file) });
        }
        let file = dir.join(&c.file);
        let bytes = weightlab_manifest::files::read_regular(&file, MAX_CHECKPOINT_BYTES).map_err(io(&file))?;
        weights.extend(from_safetensors(&index.layout, &bytes).map_err(|reason| StoreError::Format { path: file, reason })?);
    }
    Ok(Zoo { arch: arch.clone(), checkpoints: index.checkpoints, weights })
}

/// Largest checkpoint file read (a model of a billion parameters in f32 is 4 GB).
pub const MAX_CHECKPOINT_BYTES: u64 = 4 << 30;

/// Extensions of pickled PyTorch files, which weightlab never opens (unpickling runs code).
const PICKLE_EXTENSIONS: [&str; 4] = ["pt", "pth", "bin", "ckpt"];

/// The state_dict files of `dir` in file-name order: every `*.safetensors` file. A pickled
/// PyTorch file is refused with the one line that converts it (weightlab never unpickles); a
/// folder with no state_dicts is refused too.
pub fn state_dict_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map_err(io(dir))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    if let Some(pickle) = files.iter().find(|p| p.extension().and_then(|x| x.to_str()).is_some_and(|x| PICKLE_EXTENSIONS.contains(&x))) {
        return Err(StoreError::Format {
            path: pickle.clone(),
            reason: "is a pickled PyTorch file, which weightlab never opens (unpickling runs code); convert it once with \
                     `safetensors.torch.save_file(torch.load(f, weights_only=True), f.rsplit('.', 1)[0] + '.safetensors')` and remove it"
                .into(),
        });
    }
    files.retain(|p| p.extension().is_some_and(|x| x == "safetensors"));
    if files.is_empty() {
        return Err(StoreError::Format { path: dir.to_path_buf(), reason: "holds no .safetensors files (one state_dict per file)".into() });
    }
    Ok(files)
}

/// Reads state_dict `file` as a flat vector of `arch`, naming the layer a mismatched tensor
/// belongs to.
pub fn read_state_dict(arch: &Arch, file: &Path) -> Result<Vec<f32>, StoreError> {
    let bytes = weightlab_manifest::files::read_regular(file, MAX_CHECKPOINT_BYTES).map_err(io(file))?;
    parse_state_dict(arch, file, &bytes)
}

/// [`read_state_dict`] on bytes read already (`file` names them in messages).
pub fn parse_state_dict(arch: &Arch, file: &Path, bytes: &[u8]) -> Result<Vec<f32>, StoreError> {
    from_safetensors(&arch.layout(), bytes).map_err(|reason| {
        let tensor = reason.split('`').nth(1).unwrap_or("");
        let layer = match arch {
            Arch::Sequential(net) => net.describe(tensor).map(|d| format!(" ({d})")).unwrap_or_default(),
            _ => String::new(),
        };
        StoreError::Format { path: file.to_path_buf(), reason: format!("{reason}{layer}") }
    })
}

/// Imports the state_dicts of `dir` ([`state_dict_files`], in file-name order) as one
/// checkpoint each. The first `train` files form the training side, the next `heldout` are
/// held out (all the rest when `None`); more files than that are left out. Accuracy and loss
/// are unknown until evaluated (NaN). Each checkpoint's `file` is its file name.
pub fn import(arch: &Arch, dir: &Path, train: usize, heldout: Option<usize>) -> Result<Zoo, StoreError> {
    let mut files = state_dict_files(dir)?;
    let wanted = heldout.map_or(files.len(), |h| train + h);
    if files.len() < wanted {
        return Err(StoreError::Format {
            path: dir.to_path_buf(),
            reason: format!("holds {} state_dicts, and the split asks for {train} training and {} held-out models", files.len(), wanted - train),
        });
    }
    files.truncate(wanted);
    // Every file holds the architecture's parameters (checked as it is read): what the zoo
    // will hold is known before the first is read (`crate::memory`).
    let parameters = arch.layout().len();
    if let Some(why) = crate::memory::refuse((wanted as u64).saturating_mul(parameters as u64).saturating_mul(4)) {
        return Err(StoreError::Format { path: dir.to_path_buf(), reason: format!("holding its {wanted} state_dicts of {parameters} parameters {why}: import fewer") });
    }
    let mut checkpoints = Vec::new();
    let mut weights = Vec::new();
    weights
        .try_reserve_exact(wanted.saturating_mul(parameters))
        .map_err(|e| StoreError::Format { path: dir.to_path_buf(), reason: format!("holding its {wanted} state_dicts of {parameters} parameters: {e}") })?;
    for (model, file) in files.iter().enumerate() {
        weights.extend(read_state_dict(arch, file)?);
        let mut checkpoint = Checkpoint::new(model, 0, 0, 0, if model < train { Side::Train } else { Side::Heldout });
        checkpoint.file = file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        checkpoints.push(checkpoint);
    }
    Ok(Zoo { arch: arch.clone(), checkpoints, weights })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_the_same_bytes_however_its_metadata_map_is_ordered() {
        let arch = Arch::Mlp { sizes: vec![3, 4, 2], activation: weightlab_manifest::Activation::Relu };
        let layout = arch.layout();
        let flat: Vec<f32> = (0..layout.len()).map(|i| i as f32 * 0.5).collect();
        let meta = || Some(HashMap::from([("model".to_string(), "3".to_string()), ("epoch".into(), "2".into()), ("step".into(), "0".into()), ("seed".into(), "77".into())]));
        // Every HashMap draws its own hash keys: many encodings, one byte string.
        let first = to_safetensors(&layout, &flat, meta());
        for _ in 0..20 {
            assert_eq!(to_safetensors(&layout, &flat, meta()), first);
        }
        assert_eq!(from_safetensors(&layout, &first).unwrap(), flat);
        let st = SafeTensors::deserialize(&first).unwrap();
        assert_eq!(st.names().len(), 4);
        let (_, metadata) = SafeTensors::read_metadata(&first).unwrap();
        assert_eq!(metadata.metadata().as_ref().and_then(|m| m.get("seed")).map(String::as_str), Some("77"));
    }

    /// A state_dict saved from inside nn.DataParallel: the prefix is named, with the fix.
    #[test]
    fn a_wrapper_modules_prefix_is_named_with_the_line_that_strips_it() {
        let arch = Arch::Mlp { sizes: vec![3, 4, 2], activation: weightlab_manifest::Activation::Relu };
        let layout = arch.layout();
        let flat: Vec<f32> = (0..layout.len()).map(|i| i as f32).collect();
        let renamed = Layout { params: layout.params.iter().map(|p| crate::arch::ParamSpec { name: format!("module.{}", p.name), ..p.clone() }).collect() };
        let e = from_safetensors(&layout, &to_safetensors(&renamed, &flat, None)).unwrap_err();
        assert!(e.starts_with("every tensor's name starts with `module.`") && e.contains("k.removeprefix('module.')"), "{e}");
        // Names that differ otherwise are not taken for a wrapper.
        let other = Layout { params: layout.params.iter().map(|p| crate::arch::ParamSpec { name: format!("net.{}x", p.name), ..p.clone() }).collect() };
        let e = from_safetensors(&layout, &to_safetensors(&other, &flat, None)).unwrap_err();
        assert!(e.contains("not part of the architecture"), "{e}");
    }

    /// A state_dict as a generator in half precision writes it: the values widen exactly; one
    /// NaN anywhere refuses the file, naming the tensor.
    #[test]
    fn half_precision_weights_widen_exactly_and_nan_weights_are_refused() {
        use safetensors::tensor::TensorView;
        let arch = Arch::Mlp { sizes: vec![2, 1], activation: weightlab_manifest::Activation::Relu };
        let weight = [half::bf16::from_f32(0.5), half::bf16::from_f32(-3.0)].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        let bias = half::f16::from_f32(0.25).to_le_bytes().to_vec();
        let file = |weight: &[u8]| {
            let tensors = [("layers.0.weight", TensorView::new(Dtype::BF16, vec![1, 2], weight).unwrap()), ("layers.0.bias", TensorView::new(Dtype::F16, vec![1], &bias).unwrap())];
            safetensors::serialize(tensors, None).unwrap()
        };
        assert_eq!(from_safetensors(&arch.layout(), &file(&weight)).unwrap(), [0.5, -3.0, 0.25]);
        let nan = [half::bf16::from_f32(0.5), half::bf16::NAN].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        let e = from_safetensors(&arch.layout(), &file(&nan)).unwrap_err();
        assert!(e.contains("tensor `layers.0.weight` holds 1 NaN or infinite value(s) (the first, NaN, at index 1)"), "{e}");
    }
}
