use std::collections::BTreeMap;

use crate::svg::{self, Series};

use super::{Figure, Plot, Tables};

pub const TRAINING_CURVES: Plot = Plot {
    id: "training-curves",
    description: "Training curves logged by plugins during fit (first seed).",
    needs: &[],
    tables: &["training_log"],
    per_zoo: false,
    render: |t: &Tables, _zoo: &str, _suffix: &str| {
        let first_seed = t.logs.iter().map(|l| l.seed).min()?;
        let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for l in t.logs.iter().filter(|l| l.seed == first_seed) {
            groups.entry(format!("{}: {}", l.source, l.name)).or_default().push((l.step as f64, l.value));
        }
        let series: Vec<Series> = groups.into_iter().map(|(name, points)| Series::new(name, points)).collect();
        Some(Figure { caption: "Metrics logged by the plugins during fit (first seed).".into(), svg: svg::lines("Training curves", "step", "value", &series) })
    },
};
