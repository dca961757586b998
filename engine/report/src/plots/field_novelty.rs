use crate::svg;

use super::{Figure, Plot, Tables};

pub const FIELD_NOVELTY: Plot = Plot {
    id: "field-novelty",
    description: "Neural fields: SDF error vs. Chamfer distance of the surface to the nearest training field's, one colour per method.",
    needs: &["loss", "nn_chamfer"],
    tables: &["samples"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let series = t.series_by_method(zoo, &|r| Some((r.metric("nn_chamfer")?, r.metric("loss")?)).filter(|(x, y)| x.is_finite() && y.is_finite()));
        (!series.is_empty()).then(|| Figure {
            caption: "Each point is one field: its SDF error (lower is better) against the Chamfer distance between its surface and the nearest training field's surface. A copied shape sits at 0; held-out fields show how far a genuinely new shape of the family lies.".into(),
            svg: svg::scatter(&format!("Shape quality vs. shape novelty{suffix}"), "Chamfer distance to the nearest training shape", "test SDF error (MSE)", &series),
        })
    },
};
