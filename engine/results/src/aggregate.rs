//! Aggregation over samples and seeds with polars: per method, the mean of each metric over a
//! seed's samples, then mean, standard deviation and a 95% interval over seeds (normal
//! approximation, 1.96·std/√seeds), plus best sample accuracy and a rank by mean accuracy.

use polars::prelude::*;
use serde::Serialize;

/// One method's aggregated metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodSummary {
    pub method: String,
    pub role: String,
    pub zoo: String,
    pub seeds: u32,
    pub samples: u32,
    /// (mean, std, ci95 half-width) over seeds of each of [`METRIC_COLUMNS`], in that order.
    pub metrics: Vec<Option<[f64; 3]>>,
    pub best_accuracy: Option<f64>,
    pub rank: u32,
}

impl MethodSummary {
    /// The aggregate of one column of [`METRIC_COLUMNS`].
    pub fn metric(&self, column: &str) -> Option<[f64; 3]> {
        METRIC_COLUMNS.iter().position(|c| *c == column).and_then(|i| self.metrics[i])
    }
}

/// The `samples` columns aggregated into the summary, in order (the report declares how each
/// is shown in `weightlab_report::metrics::METRICS`, in the same order).
pub const METRIC_COLUMNS: [&str; 6] = ["accuracy", "ensemble_accuracy", "loss", "nn_l2", "nn_l2_permuted", "novelty"];

/// Aggregates a `samples` frame into one summary per (zoo, method).
pub fn summarize(samples: &DataFrame) -> PolarsResult<Vec<MethodSummary>> {
    let metrics = METRIC_COLUMNS;
    // Tables written before a metric existed lack its column: aggregate it as missing.
    let mut frame = samples.clone().lazy();
    let present: Vec<String> = samples.get_column_names().iter().map(|n| n.to_string()).collect();
    for m in metrics.iter().filter(|m| !present.iter().any(|p| p == *m)) {
        frame = frame.with_column(lit(NULL).cast(DataType::Float64).alias(*m));
    }
    let per_seed = frame
        .group_by([col("zoo"), col("method"), col("role"), col("seed")])
        .agg(metrics.iter().map(|m| col(*m).mean().alias(*m)).chain([col("accuracy").max().alias("best"), len().alias("n")]).collect::<Vec<_>>());
    let mut aggs: Vec<Expr> = vec![len().alias("seeds"), col("n").sum().alias("samples"), col("best").max().alias("best_accuracy")];
    for m in metrics {
        aggs.push(col(m).mean().alias(format!("{m}_mean")));
        aggs.push(col(m).std(1).fill_null(lit(0.0)).alias(format!("{m}_std")));
    }
    let df = per_seed.group_by([col("zoo"), col("method"), col("role")]).agg(aggs).sort(["zoo", "method"], SortMultipleOptions::default()).collect()?;

    let text = |name: &str| -> PolarsResult<Vec<String>> { Ok(df.column(name)?.str()?.into_iter().map(|v| v.unwrap_or_default().to_string()).collect()) };
    let float = |name: &str| -> PolarsResult<Vec<Option<f64>>> { Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.into_iter().collect()) };
    let count = |name: &str| -> PolarsResult<Vec<u32>> { Ok(df.column(name)?.cast(&DataType::UInt32)?.u32()?.into_iter().map(|v| v.unwrap_or(0)).collect()) };
    let (zoo, method, role) = (text("zoo")?, text("method")?, text("role")?);
    let (seeds, samples_n, best) = (count("seeds")?, count("samples")?, float("best_accuracy")?);
    let triple = |m: &str| -> PolarsResult<Vec<Option<[f64; 3]>>> {
        let (mean, std) = (float(&format!("{m}_mean"))?, float(&format!("{m}_std"))?);
        Ok(mean
            .iter()
            .zip(&std)
            .zip(&seeds)
            .map(|((mean, std), &n)| {
                mean.filter(|v| v.is_finite()).map(|mean| {
                    let std = std.unwrap_or(0.0);
                    [mean, std, 1.96 * std / (n.max(1) as f64).sqrt()]
                })
            })
            .collect())
    };
    let columns: Vec<Vec<Option<[f64; 3]>>> = metrics.iter().map(|m| triple(m)).collect::<PolarsResult<_>>()?;
    let mut out: Vec<MethodSummary> = (0..df.height())
        .map(|i| MethodSummary {
            method: method[i].clone(),
            role: role[i].clone(),
            zoo: zoo[i].clone(),
            seeds: seeds[i],
            samples: samples_n[i],
            metrics: columns.iter().map(|c| c[i]).collect(),
            best_accuracy: best[i],
            rank: 0,
        })
        .collect();
    // Rank the methods (not the zoo's own reference models) by mean accuracy within each zoo.
    let mut order: Vec<usize> = (0..out.len()).filter(|&i| out[i].role != "reference").collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| out[i].metric("accuracy").map_or(f64::NEG_INFINITY, |a| a[0]);
        out[a].zoo.cmp(&out[b].zoo).then(key(b).total_cmp(&key(a)))
    });
    let mut last_zoo = String::new();
    let mut r = 0;
    for i in order {
        if out[i].zoo != last_zoo {
            last_zoo = out[i].zoo.clone();
            r = 0;
        }
        r += 1;
        out[i].rank = r;
    }
    Ok(out)
}
