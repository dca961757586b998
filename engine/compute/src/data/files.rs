//! Datasets read from the user's files: arrays (`.npz`, `.safetensors`), IDX pairs, image
//! folders and CIFAR-10's binary batches. Each loader returns the examples as they are stored
//! (pixels scaled to [0, 1] where the format holds bytes), the shape of one example and what
//! the targets are; [`super::load`] then cuts subsets and the validation split as for every
//! source. Nothing is downloaded, and every error names the file, the array and what was
//! expected. Files are bounded in size, and an archive's declared sizes are checked before
//! anything is inflated.

use std::io::Read;
use std::path::{Path, PathBuf};

use weightlab_manifest::{DataSource, DataSpec};

use super::{DataError, Split, Task};

/// Largest data file read (CIFAR-10's batches are 30 MB each; ImageNet-scale data is not what
/// weightlab's zoos train on).
const MAX_FILE_BYTES: u64 = 8 << 30;

/// What a file source holds.
pub struct FileData {
    pub task: Task,
    pub shape: Vec<usize>,
    pub train: Split,
    pub test: Split,
    /// One name per class (folder names, CIFAR-10's label names); empty for regression.
    pub class_names: Vec<String>,
}

fn format(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Format { path: path.to_path_buf(), reason: reason.into() }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

/// Refuses to read `path` into `bytes` of memory this process cannot have, before reading it:
/// a dataset larger than the machine fails its stage (or `validate`) with both sizes instead of
/// aborting the engine (`crate::memory`).
fn room(path: &Path, bytes: u64) -> Result<(), DataError> {
    match crate::memory::refuse(bytes) {
        Some(why) => Err(format(path, format!("holding its examples as 32-bit floats {why}: read a smaller dataset"))),
        None => Ok(()),
    }
}

/// Loads the data of a file source (`tensors`, `idx`, `image-folder`, `cifar10`).
pub fn load(spec: &DataSpec, base_dir: &Path) -> Result<FileData, DataError> {
    let path = base_dir.join(spec.path.as_ref().ok_or_else(|| format(base_dir, "the manifest names no `path` for this dataset"))?);
    match spec.source {
        DataSource::Tensors => tensors(&path),
        DataSource::Idx => idx(&path),
        DataSource::Cifar10 => cifar10(&path),
        DataSource::ImageFolder => image_folder(&path, spec.size.unwrap_or([32, 32]), spec.channels),
        other => Err(format(&path, format!("`{}` is not read from files", other.descriptor().name))),
    }
}

/// One array as values and shape, with whether it held integers.
struct Array {
    shape: Vec<usize>,
    values: Vec<f32>,
    integer: bool,
}

const ARRAYS: [&str; 4] = ["x_train", "y_train", "x_test", "y_test"];

/// `.npz` (numpy's `np.savez`) or `.safetensors` with `x_train`, `y_train`, `x_test`, `y_test`.
fn tensors(path: &Path) -> Result<FileData, DataError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut arrays = match ext {
        "npz" => read_npz(path)?,
        "safetensors" => read_safetensors(path)?,
        _ => return Err(format(path, "expected a `.npz` (numpy.savez) or `.safetensors` file")),
    };
    let mut take = |name: &str| {
        arrays.remove(name).ok_or_else(|| DataError::Array { path: path.to_path_buf(), array: name.to_string(), reason: "is missing: the file must hold x_train, y_train, x_test and y_test".into() })
    };
    let (x_train, y_train, x_test, y_test) = (take("x_train")?, take("y_train")?, take("x_test")?, take("y_test")?);
    let array_err = |array: &str, reason: String| DataError::Array { path: path.to_path_buf(), array: array.to_string(), reason };
    for (name, x) in [("x_train", &x_train), ("x_test", &x_test)] {
        if x.integer {
            return Err(array_err(name, "holds integers; inputs must be float32 (scale them as your model expects, e.g. x / 255)".into()));
        }
        if x.shape.len() < 2 || x.shape[1..].contains(&0) {
            return Err(array_err(name, format!("has shape {:?}; expected (examples, …) with at least one value per example", x.shape)));
        }
        finite(x).map_err(|reason| array_err(name, reason))?;
    }
    if x_train.shape[1..] != x_test.shape[1..] {
        return Err(array_err("x_test", format!("has examples of shape {:?}, but x_train's are {:?}", &x_test.shape[1..], &x_train.shape[1..])));
    }
    for (name, y, x) in [("y_train", &y_train, &x_train), ("y_test", &y_test, &x_test)] {
        let per_example = y.shape.get(1..).map_or(1, |s| s.iter().product::<usize>());
        if y.shape.is_empty() || y.shape[0] != x.shape[0] || per_example != 1 {
            return Err(array_err(name, format!("has shape {:?}; expected ({},): one target per example of {}", y.shape, x.shape[0], name.replace('y', "x"))));
        }
    }
    if y_train.integer != y_test.integer {
        return Err(array_err("y_test", "holds another kind of target than y_train (integer class labels in one, floats in the other)".into()));
    }
    let task = if y_train.integer {
        let bad = y_train.values.iter().chain(&y_test.values).find(|v| **v < 0.0);
        if let Some(v) = bad {
            return Err(array_err("y_train", format!("holds the label {v}; class labels are 0, 1, 2, …")));
        }
        let classes = y_train.values.iter().chain(&y_test.values).fold(0.0f32, |m, v| m.max(*v)) as usize + 1;
        if classes < 2 {
            return Err(array_err("y_train", "holds a single class; classification needs at least two".into()));
        }
        Task::Classification { classes }
    } else {
        for (name, y) in [("y_train", &y_train), ("y_test", &y_test)] {
            finite(y).map_err(|reason| array_err(name, reason))?;
        }
        Task::Regression
    };
    let class_names = match task {
        Task::Classification { classes } => (0..classes).map(|c| format!("class {c}")).collect(),
        Task::Regression => Vec::new(),
    };
    Ok(FileData { task, shape: x_train.shape[1..].to_vec(), train: Split { x: x_train.values, y: y_train.values }, test: Split { x: x_test.values, y: y_test.values }, class_names })
}

/// A NaN or infinite input trains every model of a zoo into NaN weights without a word (and an
/// infinite target does the same to a regression): refused with where the first one is.
fn finite(a: &Array) -> Result<(), String> {
    let bad = a.values.iter().filter(|v| !v.is_finite()).count();
    let Some(first) = a.values.iter().position(|v| !v.is_finite()) else { return Ok(()) };
    let inner = a.shape.get(1..).unwrap_or(&[]);
    let per_example = inner.iter().product::<usize>().max(1);
    let (example, mut rest) = (first / per_example, first % per_example);
    // The position within the example, as numpy indexes it: x[5, 0, 3, 4] is (0, 3, 4).
    let mut position = vec![0; inner.len()];
    for (p, &n) in position.iter_mut().zip(inner).rev() {
        (*p, rest) = (rest % n.max(1), rest / n.max(1));
    }
    let at = match position.as_slice() {
        [] | [_] if per_example == 1 => format!("example {example}"),
        [p] => format!("example {example}, value {p}"),
        _ => format!("example {example}, position ({})", position.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let range = if a.values[first].is_infinite() { " — or a float64 beyond float32's range" } else { "" };
    Err(format!("holds {bad} NaN or infinite value(s) (the first, {}, at {at}{range}): models trained on them end as NaN; drop or impute those examples", a.values[first]))
}

fn read_npz(path: &Path) -> Result<std::collections::HashMap<String, Array>, DataError> {
    // Declared sizes first: a crafted archive must not inflate without end.
    let file = weightlab_manifest::files::open_regular(path).map_err(io(path))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format(path, format!("not a numpy .npz archive: {e}")))?;
    let mut total = 0u64;
    for i in 0..zip.len() {
        total += zip.by_index(i).map_err(|e| format(path, format!("not a numpy .npz archive: {e}")))?.size();
    }
    if total > MAX_FILE_BYTES {
        return Err(format(path, format!("its arrays hold {total} bytes, more than weightlab reads ({MAX_FILE_BYTES})")));
    }
    // The arrays as read, then as floats: at least their bytes again.
    room(path, total.saturating_mul(2))?;
    let mut out = std::collections::HashMap::new();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| format(path, format!("not a numpy .npz archive: {e}")))?;
        // Only the four arrays are read; anything else the file holds is left alone.
        let Some(name) = entry.name().strip_suffix(".npy").filter(|n| ARRAYS.contains(n)).map(str::to_string) else { continue };
        let size = entry.size();
        let array = read_npy(std::io::BufReader::new(entry.take(size))).map_err(|reason| DataError::Array { path: path.to_path_buf(), array: name.clone(), reason })?;
        out.insert(name, array);
    }
    Ok(out)
}

/// One `.npy` array of any numeric dtype (either byte order), in C or Fortran order, as
/// float32 values in C order. Object arrays are refused: weightlab never unpickles.
fn read_npy(reader: impl Read) -> Result<Array, String> {
    let npy = npyz::NpyFile::new(reader).map_err(|e| format!("is not a readable .npy array: {e}"))?;
    let dtype = npy.dtype().descr();
    if npy.header().uses_pickled_array() {
        return Err("holds Python objects (dtype object), and weightlab never unpickles: save numeric arrays (`np.asarray(x, dtype=np.float32)`)".into());
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == npyz::Order::Fortran;
    let wrong = |e: std::io::Error| format!("is cut short or damaged: {e}");
    // Each dtype numpy writes for numbers, tried in turn (`try_data` hands the file back).
    macro_rules! as_f32 {
        ($npy:expr, $integer:expr, $($t:ty => $f:expr),+) => {{
            let npy = $npy;
            $(
                let npy = match npy.try_data::<$t>() {
                    Ok(data) => {
                        let values = data.map(|v| v.map($f)).collect::<Result<Vec<f32>, _>>().map_err(wrong)?;
                        return Ok(Array { values: if fortran { c_order(&values, &shape) } else { values }, shape, integer: $integer });
                    }
                    Err(npy) => npy,
                };
            )+
            npy
        }};
    }
    let npy = as_f32!(npy, false, f32 => |v: f32| v, f64 => |v: f64| v as f32, half::f16 => |v: half::f16| v.to_f32());
    let npy = as_f32!(npy, true, i64 => |v: i64| v as f32, i32 => |v: i32| v as f32, i16 => |v: i16| v as f32, i8 => |v: i8| v as f32, u8 => |v: u8| v as f32, u16 => |v: u16| v as f32, u32 => |v: u32| v as f32, u64 => |v: u64| v as f32);
    drop(npy);
    Err(format!("has dtype {dtype}; expected float32 inputs and integer or float targets"))
}

/// `values` stored in Fortran order (first index fastest) for `shape`, rearranged into C order.
fn c_order(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(values.len());
    // Fortran strides: 1, n0, n0·n1, …
    let strides: Vec<usize> = shape
        .iter()
        .scan(1usize, |acc, &n| {
            let s = *acc;
            *acc *= n;
            Some(s)
        })
        .collect();
    let mut index = vec![0usize; shape.len()];
    for _ in 0..values.len() {
        out.push(values[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        // The next C-order index: the last axis moves fastest.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

fn read_safetensors(path: &Path) -> Result<std::collections::HashMap<String, Array>, DataError> {
    use safetensors::{Dtype, SafeTensors};
    let bytes = weightlab_manifest::files::read_regular(path, MAX_FILE_BYTES).map_err(io(path))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format(path, format!("not a safetensors file: {e}")))?;
    let values: usize = st.tensors().iter().map(|(_, v)| v.shape().iter().product::<usize>()).sum();
    room(path, (values as u64).saturating_mul(4))?;
    let mut out = std::collections::HashMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let (values, integer): (Vec<f32>, bool) = match view.dtype() {
            Dtype::F32 => (data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(), false),
            Dtype::F64 => (data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(), false),
            Dtype::F16 => (data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(), false),
            Dtype::BF16 => (data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(), false),
            Dtype::I64 => (data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(), true),
            Dtype::I32 => (data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(), true),
            Dtype::U8 => (data.iter().map(|&b| b as f32).collect(), true),
            other if ARRAYS.contains(&name.as_str()) => {
                return Err(DataError::Array {
                    path: path.to_path_buf(),
                    array: name,
                    reason: format!("has dtype {other:?}; expected F32 (or F64, F16, BF16) inputs and I64/I32/U8 labels or float targets"),
                });
            }
            _ => continue,
        };
        out.insert(name, Array { shape: view.shape().to_vec(), values, integer });
    }
    Ok(out)
}

/// Reads an IDX file (gzipped or not) of unsigned bytes; returns its sizes and payload.
pub(crate) fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let mut raw = Vec::new();
    weightlab_manifest::files::open_regular(path).map_err(io(path))?.take(MAX_FILE_BYTES).read_to_end(&mut raw).map_err(io(path))?;
    let mut bytes = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        // Bounded: a crafted archive must not inflate without end.
        flate2::read::GzDecoder::new(&raw[..]).take(MAX_FILE_BYTES).read_to_end(&mut bytes).map_err(io(path))?;
    } else {
        bytes = raw;
    }
    if bytes.len() < 4 || bytes[0..2] != [0, 0] || bytes[2] != 0x08 || !(1..=4).contains(&bytes[3]) {
        return Err(format(path, "not an IDX file of unsigned bytes (its magic number is not 0x0000 08 0N)"));
    }
    let dims = bytes[3] as usize;
    if bytes.len() < 4 + 4 * dims {
        return Err(format(path, "its IDX header is cut short"));
    }
    let sizes: Vec<usize> = (0..dims).map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize).collect();
    let header = 4 + 4 * dims;
    let expected = sizes.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    if expected != Some(bytes.len() - header) {
        return Err(format(path, format!("its IDX header says {sizes:?} values, the file holds {}", bytes.len() - header)));
    }
    Ok((sizes, bytes.split_off(header)))
}

/// The first `<prefix>-<kind>` of `prefixes` (each tried as is and gzipped) that exists in `dir`.
fn find(dir: &Path, prefixes: &[&str], kind: &str) -> Result<PathBuf, DataError> {
    prefixes
        .iter()
        .flat_map(|p| [dir.join(format!("{p}-{kind}")), dir.join(format!("{p}-{kind}.gz"))])
        .find(|p| p.is_file())
        .ok_or_else(|| format(dir, format!("no `{}-{kind}` (or `.gz`) in this folder", prefixes[0])))
}

/// IDX pairs: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-…` (or `test-…`).
fn idx(dir: &Path) -> Result<FileData, DataError> {
    let split = |prefixes: &[&str]| -> Result<(Vec<usize>, Split), DataError> {
        let images = find(dir, prefixes, "images-idx3-ubyte")?;
        let labels = find(dir, prefixes, "labels-idx1-ubyte")?;
        let (isz, pixels) = read_idx(&images)?;
        room(&images, (pixels.len() as u64).saturating_mul(4))?;
        let (lsz, y) = read_idx(&labels)?;
        if isz.len() != 3 || lsz.len() != 1 || isz[0] != lsz[0] {
            return Err(format(&labels, format!("{} holds {isz:?} images and this file {lsz:?} labels: expected (N, height, width) images and N labels", images.display())));
        }
        Ok((vec![1, isz[1], isz[2]], Split { x: pixels.iter().map(|&p| p as f32 / 255.0).collect(), y: y.iter().map(|&l| l as f32).collect() }))
    };
    let (shape, train) = split(&["train"])?;
    let (test_shape, test) = split(&["t10k", "test"])?;
    if shape != test_shape {
        return Err(format(dir, format!("training images are {shape:?}, test images {test_shape:?}")));
    }
    let classes = train.y.iter().chain(&test.y).fold(0.0f32, |m, v| m.max(*v)) as usize + 1;
    Ok(FileData { task: Task::Classification { classes }, shape, train, test, class_names: (0..classes).map(|c| format!("class {c}")).collect() })
}

/// CIFAR-10's names, in label order (the dataset's `batches.meta.txt`).
const CIFAR10_CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// CIFAR-10's binary version: records of one label byte and 3,072 pixel bytes (R, G, B planes).
fn cifar10(dir: &Path) -> Result<FileData, DataError> {
    const RECORD: usize = 1 + 3 * 32 * 32;
    let read = |names: &[String]| -> Result<Split, DataError> {
        let mut split = Split::default();
        for name in names {
            let path = dir.join(name);
            let bytes = weightlab_manifest::files::read_regular(&path, MAX_FILE_BYTES).map_err(io(&path))?;
            if bytes.is_empty() || bytes.len() % RECORD != 0 {
                return Err(format(&path, format!("{} bytes is not a whole number of CIFAR-10 records ({RECORD} bytes: a label, then 32×32 R, G and B planes)", bytes.len())));
            }
            for record in bytes.chunks_exact(RECORD) {
                if record[0] > 9 {
                    return Err(format(&path, format!("a record has label {}; CIFAR-10's are 0–9", record[0])));
                }
                split.y.push(record[0] as f32);
                split.x.extend(record[1..].iter().map(|&p| p as f32 / 255.0));
            }
        }
        Ok(split)
    };
    let train = read(&(1..=5).map(|i| format!("data_batch_{i}.bin")).collect::<Vec<_>>())?;
    let test = read(&["test_batch.bin".to_string()])?;
    Ok(FileData { task: Task::Classification { classes: 10 }, shape: vec![3, 32, 32], train, test, class_names: CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect() })
}

/// `train/<class>/*` and `test/<class>/*` images, resized to `size` with `channels` channels.
fn image_folder(dir: &Path, [height, width]: [usize; 2], channels: usize) -> Result<FileData, DataError> {
    let classes_in = |split: &Path| -> Result<Vec<String>, DataError> {
        let mut names: Vec<String> = std::fs::read_dir(split)
            .map_err(io(split))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir() && !file_manager_litter(&e.path()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    };
    let classes = classes_in(&dir.join("train"))?;
    if classes.len() < 2 {
        return Err(format(&dir.join("train"), format!("holds {} class folders; classification needs at least two (`train/<class>/*.png`)", classes.len())));
    }
    let test_classes = classes_in(&dir.join("test"))?;
    if let Some(extra) = test_classes.iter().find(|c| !classes.contains(c)) {
        return Err(format(&dir.join("test").join(extra), "is a class with no training images (test classes must be training classes)"));
    }
    let listed = |split: &str| -> Result<Vec<(usize, Vec<PathBuf>)>, DataError> {
        let mut out = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let folder = dir.join(split).join(class);
            if !folder.is_dir() {
                continue;
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder).map_err(io(&folder))?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && !file_manager_litter(p)).collect();
            files.sort();
            out.push((label, files));
        }
        Ok(out)
    };
    let (train_files, test_files) = (listed("train")?, listed("test")?);
    let images = train_files.iter().chain(&test_files).map(|(_, f)| f.len()).sum::<usize>() as u64;
    room(dir, [channels, height, width, 4].iter().fold(images, |a, &b| a.saturating_mul(b as u64)))?;
    let read_split = |split: &str, listed: Vec<(usize, Vec<PathBuf>)>| -> Result<Split, DataError> {
        let mut out = Split::default();
        for (label, files) in listed {
            for file in files {
                let bytes = weightlab_manifest::files::read_regular(&file, 256 << 20).map_err(io(&file))?;
                let img = image::load_from_memory(&bytes).map_err(|e| match e {
                    // The decoder's default limit (512 MiB) keeps a small file that inflates to a
                    // huge bitmap from taking the machine's memory.
                    image::ImageError::Limits(_) => format(&file, "decodes to a larger image than weightlab reads (512 MiB of pixels): resize it first"),
                    e => format(&file, format!("not a readable image: {e}")),
                })?;
                let img = img.resize_exact(width as u32, height as u32, image::imageops::FilterType::Triangle);
                // Channel-major (C, H, W), as PyTorch's ToTensor lays images out.
                let planes: Vec<Vec<f32>> = if channels == 1 {
                    vec![img.to_luma8().pixels().map(|p| p.0[0] as f32 / 255.0).collect()]
                } else {
                    let rgb = img.to_rgb8();
                    (0..3).map(|c| rgb.pixels().map(|p| p.0[c] as f32 / 255.0).collect()).collect()
                };
                out.x.extend(planes.into_iter().flatten());
                out.y.push(label as f32);
            }
        }
        if out.is_empty() {
            return Err(format(&dir.join(split), "holds no images"));
        }
        Ok(out)
    };
    let (train, test) = (read_split("train", train_files)?, read_split("test", test_files)?);
    Ok(FileData { task: Task::Classification { classes: classes.len() }, shape: vec![channels, height, width], train, test, class_names: classes })
}

/// What file managers and notebooks leave in folders (`.DS_Store`, `Thumbs.db`, `desktop.ini`,
/// `.ipynb_checkpoints/` and any other hidden entry): neither an image nor a class, and not the
/// user's mistake.
fn file_manager_litter(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    name.starts_with('.') || name.eq_ignore_ascii_case("Thumbs.db") || name.eq_ignore_ascii_case("desktop.ini")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `.npy` file as numpy writes one: magic, version 1.0, the header dict padded to 64 bytes.
    fn npy(descr: &str, fortran: bool, shape: &[usize], payload: &[u8]) -> Vec<u8> {
        let dims: String = shape.iter().map(|d| format!("{d}, ")).collect();
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': ({}), }}", if fortran { "True" } else { "False" }, dims.trim_end());
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(payload);
        bytes
    }

    #[test]
    fn npy_arrays_are_read_in_either_order_and_byte_order_as_numpy_indexes_them() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column (Fortran order), as float64.
        let payload: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = read_npy(&npy("<f8", true, &[2, 3], &payload)[..]).unwrap();
        assert_eq!((a.shape.as_slice(), a.values.as_slice(), a.integer), (&[2, 3][..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..], false));
        // Three axes in Fortran order: x[i, j, k] at i + 2j + 4k.
        let values: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let a = read_npy(&npy("<f4", true, &[2, 2, 2], &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())[..]).unwrap();
        assert_eq!(a.values, [0.0, 4.0, 2.0, 6.0, 1.0, 5.0, 3.0, 7.0]);
        // Big-endian 32-bit labels.
        let a = read_npy(&npy(">i4", false, &[3], &[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1])[..]).unwrap();
        assert_eq!((a.values.as_slice(), a.integer), (&[2.0, 0.0, 1.0][..], true));
        // Half precision widens exactly.
        let a = read_npy(&npy("<f2", false, &[2], &[0x00, 0x3c, 0x00, 0xc0])[..]).unwrap();
        assert_eq!(a.values, [1.0, -2.0]);
    }

    #[test]
    fn npy_arrays_of_objects_or_other_kinds_are_refused_by_name() {
        let e = read_npy(&npy("|O", false, &[2], &[0x80, 0x04])[..]).err().unwrap();
        assert!(e.contains("Python objects") && e.contains("never unpickles"), "{e}");
        let e = read_npy(&npy("|b1", false, &[2], &[0, 1])[..]).err().unwrap();
        assert!(e.contains("has dtype '|b1'") && e.contains("expected float32 inputs"), "{e}");
        let e = read_npy(&npy("<f4", false, &[4], &[0, 0, 128, 63])[..]).err().unwrap();
        assert!(e.contains("cut short"), "{e}");
    }

    #[test]
    fn non_finite_inputs_are_refused_at_their_example_and_position() {
        let mut values = vec![0.0; 2 * 2 * 3];
        values[9] = f32::INFINITY;
        let e = finite(&Array { shape: vec![2, 2, 3], values, integer: false }).unwrap_err();
        assert!(e.starts_with("holds 1 NaN or infinite value(s) (the first, inf, at example 1, position (1, 0)") && e.contains("float64 beyond float32's range"), "{e}");
        let e = finite(&Array { shape: vec![3], values: vec![0.0, f32::NAN, f32::NAN], integer: false }).unwrap_err();
        assert!(e.starts_with("holds 2 NaN or infinite value(s) (the first, NaN, at example 1)"), "{e}");
        assert!(finite(&Array { shape: vec![2, 1], values: vec![1.0, 2.0], integer: false }).is_ok());
    }

    #[test]
    fn a_dataset_larger_than_the_machine_is_refused_with_its_file_and_both_sizes() {
        let e = room(Path::new("huge/images"), u64::MAX).expect_err("no machine has 16 EiB");
        let text = e.to_string();
        assert!(text.contains("huge/images") && text.contains("needs at least") && text.contains("is available") && text.contains("read a smaller dataset"), "{text}");
        assert!(room(Path::new("small"), 1024).is_ok());
    }
}
