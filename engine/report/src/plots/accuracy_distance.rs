//! A plot added the registry's way (this file and one line in `REGISTRY`): test accuracy
//! against the distance to the nearest training checkpoint — the weight-space view of the
//! memorization trade-off that the accuracy-novelty plot shows in behaviour.

use crate::svg;

use super::{Figure, Plot, Tables};

pub const ACCURACY_DISTANCE: Plot = Plot {
    id: "accuracy-distance",
    description: "Accuracy vs. L2 distance to the nearest training checkpoint, one colour per method.",
    needs: &["accuracy", "nn_l2"],
    tables: &["samples"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let series = t.series_by_method(zoo, &|r| Some((r.metric("nn_l2")?, r.metric("accuracy")?)));
        (!series.is_empty()).then(|| Figure {
            caption: "Each point is one model: test accuracy against its L2 distance to the nearest training checkpoint. Exact copies sit at distance 0 — a copy with its hidden units permuted does not (see the aligned distance); the held-out models show how far a genuinely new model of the zoo lies.".into(),
            svg: svg::scatter(&format!("Accuracy vs. distance to the training set{suffix}"), "L2 distance to nearest training checkpoint", "test accuracy", &series),
        })
    },
};
