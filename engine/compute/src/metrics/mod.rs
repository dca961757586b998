//! Memorization metrics (Zeng et al. 2025): how close a model is to the training set, in weight
//! space ([`distance`], [`interpolation`]) and in behaviour ([`novelty`]); scores of probes' predictions and
//! model-tree discovery ([`probing`]).

pub mod distance;
pub mod interpolation;
pub mod novelty;
pub mod pca;
pub mod probing;
pub mod surface;

pub use distance::{Nearest, cosine, nearest, nearest_aligned};
pub use interpolation::{Segment, nearest_interpolation};
pub use novelty::{Behaviour, behaviour, ensemble_accuracy, error_iou};
pub use pca::Pca;
