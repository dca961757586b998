use std::collections::BTreeMap;

use crate::svg::{self, Colours, RowGroup};

use super::{Figure, Plot, Tables};

pub const PARAMETER_HEATMAP: Plot = Plot {
    id: "parameter-heatmap",
    description: "Parameter values of the first models of each method beside their nearest training checkpoints' (the parameters that vary most across the zoo), first seed — Zeng et al.'s side-by-side view.",
    needs: &[],
    tables: &["parameters"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let (groups, columns, limit) = groups(t, zoo);
        (!groups.is_empty()).then(|| Figure {
            caption: format!(
                "Rows come in pairs: a model (first seed), then its nearest training checkpoint — by the aligned distance when it was computed, the model's hidden units then matched to that checkpoint's, else by raw L2; columns are the {columns} parameters that vary most across the training checkpoints; colour = value. A pair of identical rows is a copy; the training models' own block pairs each checkpoint with its nearest other checkpoint, and the held-out block shows how far an independently trained model is."
            ),
            svg: svg::heatmap_with(&format!("Parameter values beside the nearest checkpoint{suffix}"), "parameter (most varying across the zoo)", "model, then its nearest checkpoint", &groups, Colours::Diverging { limit }),
        })
    },
};

/// Rows of one zoo: references first, then methods in manifest order; first seed; for each
/// stored sample its own row then its nearest checkpoint's. Also the column count and the
/// largest |value| (the colour scale's limit).
fn groups(t: &Tables, zoo: &str) -> (Vec<RowGroup>, usize, f64) {
    let rows: Vec<_> = t.parameters.iter().filter(|r| r.zoo == zoo).collect();
    let mut first_seed: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rows {
        let s = first_seed.entry(r.method.as_str()).or_insert(r.seed);
        *s = (*s).min(r.seed);
    }
    // (rank, method) → (sample, model before nearest) → (parameter, value) cells
    type Cells = BTreeMap<(usize, bool), Vec<(usize, f64)>>;
    let mut by_method: BTreeMap<(usize, String), Cells> = BTreeMap::new();
    let mut limit = 0.0f64;
    for r in rows.iter().filter(|r| first_seed.get(r.method.as_str()) == Some(&r.seed)) {
        let rank = match r.method.as_str() {
            weightlab_results::TRAIN_REFERENCE => 0,
            weightlab_results::HELDOUT_REFERENCE => 1,
            m => (t.position)(m).saturating_add(2),
        };
        if r.value.is_finite() {
            limit = limit.max(r.value.abs());
        }
        by_method.entry((rank, r.method.clone())).or_default().entry((r.sample, r.source != "model")).or_default().push((r.parameter, r.value));
    }
    let mut columns = 0;
    let groups = by_method
        .into_iter()
        .map(|((_, name), cells)| {
            let rows = cells
                .into_values()
                .map(|mut cells| {
                    cells.sort_by_key(|c| c.0);
                    columns = columns.max(cells.len());
                    cells.into_iter().map(|c| c.1).collect()
                })
                .collect();
            RowGroup { name, rows }
        })
        .collect();
    (groups, columns, limit)
}
