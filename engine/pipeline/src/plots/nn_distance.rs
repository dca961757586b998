use weightlab_report::svg;

use super::{Figure, Plot, Tables};

pub const NN_DISTANCE: Plot = Plot {
    id: "nn-distance",
    description: "Distribution of nearest-neighbour distances, generated vs. training.",
    needs: &["nn_l2"],
    tables: &["samples"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let series = t.series_by_method(zoo, &|r| Some((r.metric("nn_l2")?, 0.0)));
        (!series.is_empty()).then(|| Figure {
            caption: "Distribution of the L2 distance from each model to its nearest training checkpoint. The training models' own leave-one-out distances show what \"a different model of the same zoo\" looks like.".into(),
            svg: svg::histogram(&format!("Nearest-neighbour distance{suffix}"), "L2 distance to nearest training checkpoint", &series, 24),
        })
    },
};
