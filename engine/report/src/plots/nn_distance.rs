use crate::svg;

use super::{Figure, Plot, Tables};

pub const NN_DISTANCE: Plot = Plot {
    id: "nn-distance",
    description: "Distribution of nearest-neighbour distances, generated vs. training.",
    needs: &["nn_l2"],
    tables: &["samples"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| histogram(t, zoo, suffix, "nn_l2", ""),
};

pub const NN_DISTANCE_ALIGNED: Plot = Plot {
    id: "nn-distance-aligned",
    description: "Distribution of nearest-neighbour distances after aligning hidden units (Zeng et al.'s G.pt analysis), generated vs. training.",
    needs: &["nn_l2_aligned"],
    tables: &["samples"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| histogram(t, zoo, suffix, "nn_l2_aligned", ", hidden units aligned"),
};

fn histogram(t: &Tables, zoo: &str, suffix: &str, key: &str, what: &str) -> Option<Figure> {
    let series = t.series_by_method(zoo, &|r| Some((r.metric(key)?, 0.0)));
    (!series.is_empty()).then(|| Figure {
        caption: format!("Distribution of the L2 distance from each model to its nearest training checkpoint{what}. The training models' own leave-one-out distances show what \"a different model of the same zoo\" looks like; held-out models, how far an independently trained one lies."),
        svg: svg::histogram(&format!("Nearest-neighbour distance{what}{suffix}"), &format!("L2 distance to nearest training checkpoint{what}"), &series, 24),
    })
}
