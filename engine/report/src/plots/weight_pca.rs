use crate::svg;

use super::{Figure, Plot, Tables};

pub const WEIGHT_PCA: Plot = Plot {
    id: "weight-pca",
    description: "2-D PCA of training, held-out and generated weights.",
    needs: &[],
    tables: &["samples"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let series = t.series_by_method(zoo, &|r| Some((r.pc1, r.pc2)));
        (!series.is_empty()).then(|| Figure {
            caption: "Weights projected on the first two principal components of the training checkpoints.".into(),
            svg: svg::scatter(&format!("Weights, PCA of training checkpoints{suffix}"), "PC 1", "PC 2", &series),
        })
    },
};
