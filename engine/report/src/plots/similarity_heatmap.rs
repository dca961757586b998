use std::collections::BTreeMap;

use crate::svg::{self, RowGroup};

use super::{Figure, Plot, Tables};

/// Samples shown per method.
const MAX_ROWS_PER_METHOD: usize = 16;

pub const SIMILARITY_HEATMAP: Plot = Plot {
    id: "similarity-heatmap",
    description: "Heatmap of each model's similarity to each training checkpoint (IoU of test errors; weight cosine for neural fields), one block of rows per method, first seed.",
    needs: &[],
    tables: &["similarity"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let (groups, kind) = groups(t, zoo);
        let what = if kind == "weight-cosine" { "cosine similarity of the weights" } else { "IoU of test errors" };
        // The similarity table holds the first checkpoints only; say how many of how many.
        let shown = t.similarity.iter().filter(|r| r.zoo == zoo).map(|r| r.checkpoint + 1).max().unwrap_or(0);
        let total = t.samples.iter().filter(|r| r.zoo == zoo && r.method == weightlab_results::TRAIN_REFERENCE).map(|r| (r.seed, r.sample)).collect::<std::collections::BTreeSet<_>>().len();
        let columns = if total > shown {
            format!("the first {shown} of the zoo's {total} training checkpoints (a copy of a later one shows no dark cell here)")
        } else {
            format!("each of the {shown} training checkpoints")
        };
        (!groups.is_empty()).then(|| Figure {
            caption: format!("Each row is one model (first seed, up to {MAX_ROWS_PER_METHOD} per method); the columns are {columns}; colour = {what}. A memorizing method shows one dark cell per row, like the training models' own block (whose diagonal is each model itself)."),
            svg: svg::heatmap(&format!("Similarity to training checkpoints{suffix}"), "training checkpoint", "model (grouped by method)", &groups),
        })
    },
};

/// Heatmap rows of one zoo: references first, then methods in manifest order; first seed of
/// each method; at most [`MAX_ROWS_PER_METHOD`] samples each.
fn groups(t: &Tables, zoo: &str) -> (Vec<RowGroup>, String) {
    let rows: Vec<_> = t.similarity.iter().filter(|r| r.zoo == zoo).collect();
    let mut first_seed: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rows {
        let s = first_seed.entry(r.method.as_str()).or_insert(r.seed);
        *s = (*s).min(r.seed);
    }
    // (rank, method) → sample → (checkpoint, similarity) cells
    type Cells = BTreeMap<usize, Vec<(usize, f64)>>;
    let mut by_method: BTreeMap<(usize, String), Cells> = BTreeMap::new();
    for r in rows.iter().filter(|r| first_seed.get(r.method.as_str()) == Some(&r.seed)) {
        let rank = match r.method.as_str() {
            weightlab_results::TRAIN_REFERENCE => 0,
            weightlab_results::HELDOUT_REFERENCE => 1,
            m => (t.position)(m).saturating_add(2),
        };
        by_method.entry((rank, r.method.clone())).or_default().entry(r.sample).or_default().push((r.checkpoint, r.similarity));
    }
    let kind = rows.first().map(|r| r.kind.clone()).unwrap_or_default();
    let groups = by_method
        .into_iter()
        .map(|((_, name), samples)| {
            let rows = samples
                .into_values()
                .take(MAX_ROWS_PER_METHOD)
                .map(|mut cells| {
                    cells.sort_by_key(|c| c.0);
                    cells.into_iter().map(|c| c.1).collect()
                })
                .collect();
            RowGroup { name, rows }
        })
        .collect();
    (groups, kind)
}
