//! Aggregation over samples and seeds: per method, each metric is first reduced over a seed's
//! samples (mean, or max for "best of" metrics), then summarised over seeds as mean, sample
//! standard deviation and a 95 % Student-t interval (t₀.₉₇₅ with seeds − 1 degrees of freedom
//! × sd / √seeds). With one seed there is no interval: the summary says so instead of "± 0".
//! Values that are not finite (a diverged model's loss) are counted per metric and left out of
//! the mean, never dropped silently.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rows::SampleRow;

/// How a metric's per-sample values become one value per seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    /// Mean over the seed's samples.
    Mean,
    /// Best (largest) sample of the seed.
    Max,
}

/// One metric of one method, over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Mean over seeds of the per-seed values.
    pub mean: f64,
    /// Sample standard deviation over seeds (`None` with one seed).
    pub sd: Option<f64>,
    /// Half-width of the 95 % t-interval of the mean (`None` with one seed).
    pub ci95: Option<f64>,
    /// Seeds with a finite value.
    pub seeds: u32,
    /// Samples whose value was not finite (left out of the mean).
    pub non_finite: u32,
}

/// One method's aggregated metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodSummary {
    pub method: String,
    pub role: String,
    pub zoo: String,
    pub seeds: u32,
    pub samples: u32,
    /// One entry per metric asked for, in that order; `None` where no sample has the metric.
    pub metrics: Vec<Option<Stat>>,
    /// Highest test accuracy of any sample (any seed).
    pub best_accuracy: Option<f64>,
    /// Rank by the mean of the ranking metric within the zoo (1 = best); 0 for references.
    pub rank: u32,
}

impl Stat {
    /// The summary of one value per seed (only finite ones), with `non_finite` values left out;
    /// NaN when no seed has a value.
    pub fn of_seeds(per_seed: &[f64], non_finite: u32) -> Self {
        let (mean, sd, ci95) = if per_seed.is_empty() { (f64::NAN, None, None) } else { over_seeds(per_seed) };
        Stat { mean, sd, ci95, seeds: per_seed.len() as u32, non_finite }
    }
}

/// t₀.₉₇₅ quantiles of Student's t for 1–30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
    2.048, 2.045, 2.042,
];

/// The 0.975 quantile of Student's t with `df` degrees of freedom (tabulated to 30, then the
/// Cornish–Fisher expansion around the normal quantile, accurate to 1e-3 there).
pub fn t975(df: u32) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T975[df as usize - 1],
        _ => {
            let (z, n) = (1.959_964_f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * n) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
        }
    }
}

/// Mean, sd and 95 % t-interval half-width of `values` (one per seed).
pub fn over_seeds(values: &[f64]) -> (f64, Option<f64>, Option<f64>) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None, None);
    }
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    (mean, Some(sd), Some(t975(n as u32 - 1) * sd / (n as f64).sqrt()))
}

/// Aggregates sample rows into one summary per (zoo, method, role), sorted by zoo and method.
/// `metrics` lists the metric keys with their per-seed aggregation; `rank_by` names the metric
/// (higher is better) methods are ranked by within their zoo.
pub fn summarize(rows: &[SampleRow], metrics: &[(&str, Aggregation)], rank_by: Option<&str>) -> Vec<MethodSummary> {
    // (zoo, method, role) → seed → rows
    let mut groups: BTreeMap<(&str, &str, &str), BTreeMap<u64, Vec<&SampleRow>>> = BTreeMap::new();
    for r in rows {
        groups.entry((&r.zoo, &r.method, &r.role)).or_default().entry(r.seed).or_default().push(r);
    }
    let mut out: Vec<MethodSummary> = groups
        .into_iter()
        .map(|((zoo, method, role), seeds)| {
            let stats = metrics
                .iter()
                .map(|&(key, aggregation)| {
                    let mut per_seed = Vec::new();
                    let (mut non_finite, mut present) = (0u32, false);
                    for samples in seeds.values() {
                        let values: Vec<f64> = samples.iter().filter_map(|r| r.metric(key)).collect();
                        present |= !values.is_empty();
                        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
                        non_finite += (values.len() - finite.len()) as u32;
                        if !finite.is_empty() {
                            per_seed.push(match aggregation {
                                Aggregation::Mean => finite.iter().sum::<f64>() / finite.len() as f64,
                                Aggregation::Max => finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            });
                        }
                    }
                    if !present {
                        return None;
                    }
                    Some(Stat::of_seeds(&per_seed, non_finite))
                })
                .collect();
            let all = seeds.values().flatten();
            let best_accuracy = all.clone().filter_map(|r| r.metric("accuracy")).filter(|v| v.is_finite()).reduce(f64::max);
            MethodSummary { method: method.to_string(), role: role.to_string(), zoo: zoo.to_string(), seeds: seeds.len() as u32, samples: all.count() as u32, metrics: stats, best_accuracy, rank: 0 }
        })
        .collect();
    // Rank the methods (not the zoo's own reference models) within each zoo.
    if let Some(column) = rank_by.and_then(|k| metrics.iter().position(|(m, _)| *m == k)) {
        let key = |s: &MethodSummary| s.metrics[column].map(|m| m.mean).filter(|v| v.is_finite()).unwrap_or(f64::NEG_INFINITY);
        let mut order: Vec<usize> = (0..out.len()).filter(|&i| out[i].role != "reference").collect();
        order.sort_by(|&a, &b| out[a].zoo.cmp(&out[b].zoo).then(key(&out[b]).total_cmp(&key(&out[a]))));
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
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, role: &str, seed: u64, sample: usize, acc: f64, loss: Option<f64>) -> SampleRow {
        let mut metrics = BTreeMap::from([("accuracy".to_string(), acc)]);
        if let Some(l) = loss {
            metrics.insert("loss".into(), l);
        }
        SampleRow { method: method.into(), role: role.into(), zoo: "z".into(), seed, sample, nn_index: 0, pc1: 0.0, pc2: 0.0, file: String::new(), metrics }
    }

    const METRICS: [(&str, Aggregation); 2] = [("accuracy", Aggregation::Mean), ("loss", Aggregation::Mean)];

    #[test]
    fn t_quantiles_match_the_tables() {
        assert_eq!(t975(1), 12.706);
        assert_eq!(t975(2), 4.303);
        // R: qt(0.975, c(40, 120)) = 2.021075, 1.979930
        assert!((t975(40) - 2.021075).abs() < 2e-3, "{}", t975(40));
        assert!((t975(120) - 1.979930).abs() < 1e-3);
        assert!(t975(0).is_nan());
    }

    #[test]
    fn two_seeds_give_a_t_interval_not_a_normal_one() {
        // Seed means 0.6 and 0.8: mean 0.7, sd 0.1414, t(1) = 12.706 → half-width 1.2706.
        let rows = [row("m", "baseline", 0, 0, 0.5, None), row("m", "baseline", 0, 1, 0.7, None), row("m", "baseline", 1, 0, 0.8, None)];
        let s = &summarize(&rows, &METRICS, Some("accuracy"))[0];
        let acc = s.metrics[0].unwrap();
        assert!((acc.mean - 0.7).abs() < 1e-12);
        assert!((acc.sd.unwrap() - 0.02f64.sqrt()).abs() < 1e-12);
        assert!((acc.ci95.unwrap() - 12.706 * 0.1).abs() < 1e-9, "{:?}", acc.ci95);
        assert_eq!((s.seeds, s.samples, acc.seeds), (2, 3, 2));
        assert_eq!(s.metrics[1], None, "loss is in no row");
        assert_eq!(s.best_accuracy, Some(0.8));
    }

    #[test]
    fn one_seed_has_no_interval() {
        let rows = [row("train", "reference", 0, 0, 0.9, None), row("train", "reference", 0, 1, 0.7, None)];
        let acc = summarize(&rows, &METRICS, None)[0].metrics[0].unwrap();
        assert!((acc.mean - 0.8).abs() < 1e-12);
        assert_eq!((acc.sd, acc.ci95), (None, None), "a single seed must not read as ± 0");
    }

    #[test]
    fn non_finite_values_are_counted_not_dropped_silently() {
        let rows = [row("m", "generator", 0, 0, 0.5, Some(f64::NAN)), row("m", "generator", 0, 1, 0.5, Some(1.0)), row("m", "generator", 1, 0, 0.5, Some(f64::INFINITY))];
        let loss = summarize(&rows, &METRICS, None)[0].metrics[1].unwrap();
        assert_eq!(loss.non_finite, 2);
        assert_eq!(loss.seeds, 1, "seed 1 has no finite loss");
        assert_eq!(loss.mean, 1.0);
        let all_bad = [row("m", "generator", 0, 0, 0.5, Some(f64::NAN))];
        let loss = summarize(&all_bad, &METRICS, None)[0].metrics[1].unwrap();
        assert!(loss.mean.is_nan() && loss.non_finite == 1, "a metric with no finite value is shown as such");
    }

    #[test]
    fn max_aggregation_and_ranking() {
        let rows = [row("a", "baseline", 0, 0, 0.2, None), row("a", "baseline", 0, 1, 0.9, None), row("b", "generator", 0, 0, 0.6, None), row("ref", "reference", 0, 0, 1.0, None)];
        let out = summarize(&rows, &[("accuracy", Aggregation::Max)], Some("accuracy"));
        let get = |m: &str| out.iter().find(|s| s.method == m).unwrap();
        assert_eq!(get("a").metrics[0].unwrap().mean, 0.9);
        assert_eq!((get("a").rank, get("b").rank, get("ref").rank), (1, 2, 0));
    }
}
