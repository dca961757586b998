use crate::svg;

use super::{Figure, Plot, Tables};

pub const ACCURACY_NOVELTY: Plot = Plot {
    id: "accuracy-novelty",
    description: "Accuracy vs. novelty of every sample, one colour per method.",
    needs: &["accuracy", "novelty"],
    tables: &["samples"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let series = t.series_by_method(zoo, &|r| Some((r.metric("novelty")?, r.metric("accuracy")?)));
        (!series.is_empty()).then(|| Figure {
            caption: "Each point is one model: test accuracy against novelty (1 − max IoU of its test errors with any training checkpoint). Memorizing methods sit at novelty ≈ 0; the question is which methods reach high accuracy at high novelty.".into(),
            svg: svg::scatter(&format!("Accuracy vs. novelty{suffix}"), "novelty", "test accuracy", &series),
        })
    },
};
