//! Datasets from the user's files, written here byte by byte: CIFAR-10 binary batches, image
//! folders, plain (not gzipped) IDX pairs and safetensors arrays with regression targets —
//! shapes, scaling, channel order and labels as the formats define them.

use std::path::Path;

use weightlab_compute::data::{self, Task};
use weightlab_manifest::DataSpec;

fn load(spec: &str, dir: &Path) -> Result<data::Dataset, data::DataError> {
    let spec: DataSpec = toml::from_str(spec).expect("data spec");
    data::load(&spec, dir)
}

#[test]
fn cifar10_batches_are_channel_major_images_with_their_labels() {
    let dir = tempfile::tempdir().unwrap();
    // Record i: label i % 10, red plane i, green 100, blue 200.
    let record = |i: u8| -> Vec<u8> { std::iter::once(i % 10).chain(std::iter::repeat_n(i, 1024)).chain(std::iter::repeat_n(100, 1024)).chain(std::iter::repeat_n(200, 1024)).collect() };
    for b in 1..=5u8 {
        std::fs::write(dir.path().join(format!("data_batch_{b}.bin")), (0..4).flat_map(|j| record(b * 4 + j)).collect::<Vec<u8>>()).unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), (0..3).flat_map(record).collect::<Vec<u8>>()).unwrap();
    let d = load("source = \"cifar10\"\npath = \".\"\nvalidation = 0.0", dir.path()).unwrap();
    assert_eq!((d.input_shape.clone(), d.task, d.train.len(), d.test.len()), (vec![3, 32, 32], Task::Classification { classes: 10 }, 20, 3));
    assert_eq!(d.class_names[3], "cat");
    // The test split keeps the file's order: example 2 has label 2, red 2/255, then green, blue.
    let x = &d.test.x[2 * 3072..3 * 3072];
    assert_eq!((d.test.y[2], x[0], x[1024], x[2048]), (2.0, 2.0 / 255.0, 100.0 / 255.0, 200.0 / 255.0));
    std::fs::write(dir.path().join("test_batch.bin"), [0u8; 100]).unwrap();
    let e = load("source = \"cifar10\"\npath = \".\"", dir.path()).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("not a whole number of CIFAR-10 records"), "{e}");
}

#[test]
fn image_folders_are_resized_and_labelled_by_sorted_folder_names() {
    let dir = tempfile::tempdir().unwrap();
    for (split, n) in [("train", 3), ("test", 1)] {
        for (class, colour) in [("cats", [255u8, 0, 0]), ("dogs", [0, 0, 255])] {
            let folder = dir.path().join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                image::RgbImage::from_pixel(10, 7, image::Rgb(colour)).save(folder.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    let d = load("source = \"image-folder\"\npath = \".\"\nsize = [4, 5]\nchannels = 3\nvalidation = 0.0", dir.path()).unwrap();
    assert_eq!((d.input_shape.clone(), d.task, d.train.len(), d.test.len()), (vec![3, 4, 5], Task::Classification { classes: 2 }, 6, 2));
    assert_eq!(d.class_names, ["cats", "dogs"]);
    // Test example 1 is a blue dog: red plane 0, blue plane 1.
    let x = &d.test.x[60..120];
    assert_eq!((d.test.y[1], x[0], x[40]), (1.0, 0.0, 1.0));
    // What file managers leave in folders is not an image, and not read.
    std::fs::write(dir.path().join("train/cats/.DS_Store"), [0u8, 1, 2]).unwrap();
    std::fs::write(dir.path().join("train/dogs/Thumbs.db"), [0u8, 1, 2]).unwrap();
    // Nor is a notebook's checkpoint folder a class.
    std::fs::create_dir_all(dir.path().join("train/.ipynb_checkpoints")).unwrap();
    let grey = load("source = \"image-folder\"\npath = \".\"\nsize = [4, 5]\nchannels = 1", dir.path()).unwrap();
    assert_eq!((grey.input_shape.clone(), grey.train.len() + grey.validation.len()), (vec![1, 4, 5], 6));
    assert_eq!(grey.class_names, ["cats", "dogs"]);
    // A small file that inflates to a 60,000² bitmap is refused, not decoded.
    let bomb = dir.path().join("train/dogs/bomb.png");
    image::GrayImage::new(1, 1).save(&bomb).unwrap();
    let mut bytes = std::fs::read(&bomb).unwrap();
    // IHDR's width and height (bytes 16..24), and the chunk's CRC over its type and data.
    bytes[16..24].copy_from_slice(&[0, 0, 0xea, 0x60, 0, 0, 0xea, 0x60]);
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    std::fs::write(&bomb, bytes).unwrap();
    let e = load("source = \"image-folder\"\npath = \".\"\nsize = [4, 5]", dir.path()).unwrap_err().to_string();
    assert!(e.contains("bomb.png") && e.contains("decodes to a larger image than weightlab reads"), "{e}");
    std::fs::remove_file(&bomb).unwrap();
    std::fs::write(dir.path().join("test/cats/broken.png"), b"not a png").unwrap();
    let e = load("source = \"image-folder\"\npath = \".\"\nsize = [4, 5]", dir.path()).unwrap_err().to_string();
    assert!(e.contains("broken.png") && e.contains("not a readable image"), "{e}");
}

fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(payload);
    out
}

#[test]
fn plain_idx_pairs_load_as_single_channel_images() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("train-images-idx3-ubyte"), idx(&[4, 2, 3], &(0..24).collect::<Vec<u8>>())).unwrap();
    std::fs::write(p.join("train-labels-idx1-ubyte"), idx(&[4], &[0, 1, 2, 1])).unwrap();
    std::fs::write(p.join("t10k-images-idx3-ubyte"), idx(&[1, 2, 3], &[255; 6])).unwrap();
    std::fs::write(p.join("t10k-labels-idx1-ubyte"), idx(&[1], &[2])).unwrap();
    let d = load("source = \"idx\"\npath = \".\"\nvalidation = 0.0", p).unwrap();
    assert_eq!((d.input_shape.clone(), d.task, d.test.x.clone()), (vec![1, 2, 3], Task::Classification { classes: 3 }, vec![1.0; 6]));
    std::fs::write(p.join("t10k-labels-idx1-ubyte"), idx(&[2], &[2, 2])).unwrap();
    let e = load("source = \"idx\"\npath = \".\"", p).unwrap_err().to_string();
    assert!(e.contains("t10k-labels-idx1-ubyte") && e.contains("expected (N, height, width) images and N labels"), "{e}");
}

#[test]
fn float_targets_in_safetensors_make_a_regression_task() {
    use safetensors::tensor::{Dtype, TensorView};
    let dir = tempfile::tempdir().unwrap();
    let floats = |n: usize| -> Vec<u8> { (0..n).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect() };
    let (xtr, ytr, xte, yte) = (floats(10 * 3), floats(10), floats(4 * 3), floats(4));
    let views = vec![
        ("x_train", TensorView::new(Dtype::F32, vec![10, 3], &xtr).unwrap()),
        ("y_train", TensorView::new(Dtype::F32, vec![10], &ytr).unwrap()),
        ("x_test", TensorView::new(Dtype::F32, vec![4, 3], &xte).unwrap()),
        ("y_test", TensorView::new(Dtype::F32, vec![4, 1], &yte).unwrap()),
    ];
    std::fs::write(dir.path().join("d.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
    let d = load("source = \"tensors\"\npath = \"d.safetensors\"\nvalidation = 0.0", dir.path()).unwrap();
    assert_eq!((d.input_shape.clone(), d.task, d.test.y.clone()), (vec![3], Task::Regression, vec![0.0, 0.5, 1.0, 1.5]));
}
