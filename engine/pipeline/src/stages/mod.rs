//! One module per stage kind, each returning the stage's typed record ([`crate::records`]).
//! Every stage is a function of explicit inputs that the executor assembles from the run's
//! caches (datasets, zoos and their parts, zoo frames, task conditions, the plugins' code read
//! once), so a stage is tested on small inputs without a manifest, a store or a plugin
//! (`evaluate`'s and `method`'s tests). The report stage gathers every finished stage's tables,
//! writes the run's tables and renders them from memory ([`crate::report::render`]); `weightlab
//! report` renders the same from the files, byte for byte (`tests/tests/report.rs`).

pub(crate) mod data;
pub(crate) mod evaluate;
pub mod method;
pub(crate) mod probe;
pub(crate) mod reference;
pub(crate) mod report;
pub(crate) mod zoo;

pub use report::{stamp, utc};

pub use weightlab_results::{HELDOUT_REFERENCE, TRAIN_REFERENCE};

/// Small inputs for the stages' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use weightlab_compute::{Arch, Dataset, Zoo};
    use weightlab_manifest::{DataSpec, ZooSpec};

    /// Six 2-`hidden`-3 MLPs on Gaussian blobs (4 for training, 2 held out), trained for three
    /// epochs: a zoo in a fraction of a second.
    pub fn tiny(hidden: usize) -> (Dataset, Zoo, ZooSpec) {
        let data: DataSpec = toml::from_str("source = \"blobs\"\nclasses = 3\nsamples = 150\nnoise = 0.5").unwrap();
        let text = format!("data = \"blobs\"\narch = {{ kind = \"mlp\", hidden = [{hidden}] }}\nmodels = 6\ntrain = {{ epochs = 3, batch_size = 16 }}\nsplit = {{ train = 4, heldout = 2 }}");
        let zoo: ZooSpec = toml::from_str(&text).unwrap();
        let data = weightlab_compute::data::load(&data, Path::new(".")).unwrap();
        let arch = Arch::new(&zoo.arch, &data).unwrap();
        let trained = weightlab_compute::zoo::train::train_zoo(&arch, &data, &zoo, None).unwrap();
        (data, trained, zoo)
    }
}
