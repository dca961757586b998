//! Fashion-MNIST from the IDX files that Debian's `dataset-fashion-mnist` installs.
//! Pixels are scaled to [0, 1] and standardised with the training set's mean and deviation
//! (0.2860, 0.3530). The training set is shuffled with the dataset seed so that a subset is a
//! random sample; the test set keeps its official order.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::{DataError, Split};

/// Where the Debian package puts the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The classes' names, in label order (from the dataset's documentation).
pub const CLASS_NAMES: [&str; 10] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const MEAN: f32 = 0.2860;
const STD: f32 = 0.3530;

/// Loads (train, test).
pub fn load(dir: &Path, seed: u64) -> Result<(Split, Split), DataError> {
    let mut train = split(dir, "train")?;
    let test = split(dir, "t10k")?;
    shuffle(&mut train, 784, seed);
    Ok((train, test))
}

fn split(dir: &Path, prefix: &str) -> Result<Split, DataError> {
    let images = read_idx(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")), 3)?;
    let labels = read_idx(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), 1)?;
    let x = images.iter().map(|&p| (p as f32 / 255.0 - MEAN) / STD).collect();
    let y = labels.iter().map(|&l| l as f32).collect();
    Ok(Split { x, y })
}

/// Reads an IDX file of unsigned bytes with `dims` dimensions; returns its payload.
fn read_idx(path: &Path, dims: usize) -> Result<Vec<u8>, DataError> {
    let (sizes, payload) = super::files::read_idx(path)?;
    if sizes.len() != dims {
        return Err(DataError::Format { path: path.to_path_buf(), reason: format!("holds {}-dimensional data, expected {dims} dimensions", sizes.len()) });
    }
    Ok(payload)
}

/// Shuffles examples in place with a seeded permutation.
pub(crate) fn shuffle(split: &mut Split, features: usize, seed: u64) {
    let mut order: Vec<usize> = (0..split.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let mut x = Vec::with_capacity(split.x.len());
    let mut y = Vec::with_capacity(split.y.len());
    for i in order {
        x.extend_from_slice(&split.x[i * features..(i + 1) * features]);
        y.push(split.y[i]);
    }
    *split = Split { x, y };
}
