//! Zeng et al.'s central comparison as a result: the *noise frontier*. Adding Gaussian noise
//! of growing σ to the training checkpoints traces a curve of accuracy against novelty (or
//! against distance to the training set); a generator that merely memorises sits on or below
//! it, one that generalises sits above it — better accuracy at equal novelty.
//!
//! Quality is accuracy where a zoo's models have one (classifiers), else the loss (neural
//! fields: the SDF error, lower is better) — HyperDiffusion against noise at matched distance.
//! A margin is always "better than noise by": positive is better, whichever the direction.
//!
//! The curve is the noise methods' points (per method: the mean over seeds of each seed's
//! mean), joined by straight lines in order of novelty, and starts where noise of σ = 0 is:
//! at the training checkpoints themselves — position 0 (a copy has novelty 0 and distance 0)
//! and their mean accuracy. Each other method is placed against it
//! seed by seed: its margin at a seed is its accuracy minus the curve's at its novelty, and the
//! margins over seeds give a mean and a 95 % t-interval. A seed whose novelty lies outside the
//! range the noise sweep covers has no margin (the curve is not extrapolated).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aggregate::over_seeds;
use crate::rows::SampleRow;

/// Where a method sits against the noise frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Better than noise at an equal position: the interval of the margin is above 0.
    Above,
    /// The interval of the margin contains 0.
    On,
    /// Worse than noise at an equal position: the interval is below 0.
    Below,
    /// One seed in range: a margin, no interval, no verdict.
    OneSeed,
    /// Its novelty lies outside the noise sweep's range at every seed.
    OutOfRange,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Above => "above the frontier",
            Verdict::On => "on the frontier",
            Verdict::Below => "below the frontier",
            Verdict::OneSeed => "one seed: no interval",
            Verdict::OutOfRange => "outside the noise sweep's range",
        }
    }
}

/// One method placed against its zoo's noise frontier on one axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontierRow {
    pub zoo: String,
    pub method: String,
    pub role: String,
    /// The metric on the x axis (`novelty`, `nn_l2_aligned`, `nn_chamfer`).
    pub axis: String,
    /// The quality metric on the y axis: `accuracy` (higher is better) or `loss` (lower).
    pub quality: String,
    pub higher_is_better: bool,
    /// The method's mean over seeds on the axis, and its quality.
    pub x: f64,
    pub value: f64,
    /// The frontier's quality at `x`, when `x` is within the sweep's range.
    pub noise_value: Option<f64>,
    /// Mean over seeds of how much better than the frontier at the seed's x the method is
    /// (value − frontier, negated for a loss), and its 95 % t-interval.
    pub margin: Option<f64>,
    pub ci95: Option<f64>,
    /// Seeds with a margin (their x in range), of `seeds`.
    pub seeds_in_range: u32,
    pub seeds: u32,
    pub verdict: Verdict,
    /// The noise sweep's range on the axis and its number of points.
    pub range: (f64, f64),
    pub points: u32,
}

/// Each seed's mean (x, quality) of `method` in `zoo`, over samples that have both.
fn per_seed(rows: &[SampleRow], zoo: &str, method: &str, axis: &str, quality: &str) -> BTreeMap<u64, (f64, f64)> {
    let mut sums: BTreeMap<u64, (f64, f64, u32)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.zoo == zoo && r.method == method) {
        if let (Some(x), Some(a)) = (r.metric(axis), r.metric(quality))
            && x.is_finite()
            && a.is_finite()
        {
            let s = sums.entry(r.seed).or_default();
            *s = (s.0 + x, s.1 + a, s.2 + 1);
        }
    }
    sums.into_iter().map(|(seed, (x, a, n))| (seed, (x / n as f64, a / n as f64))).collect()
}

/// The piecewise-linear curve through `points` (sorted by x) at `x`; `None` outside them.
fn at(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if x < first.0 || x > last.0 {
        return None;
    }
    let i = points.partition_point(|p| p.0 < x);
    if i == 0 {
        return Some(first.1);
    }
    let (a, b) = (points[i - 1], points[i.min(points.len() - 1)]);
    Some(if b.0 > a.0 { a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0) } else { a.1.max(b.1) })
}

/// The quality metric of a zoo's models: `accuracy` when any has one, else `loss`; and
/// whether higher is better.
fn quality_of(rows: &[SampleRow], zoo: &str) -> (&'static str, bool) {
    if rows.iter().any(|r| r.zoo == zoo && r.metric("accuracy").is_some_and(f64::is_finite)) { ("accuracy", true) } else { ("loss", false) }
}

/// The noise frontier of one zoo on one axis: its quality metric and the curve's points
/// (sorted by x).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub quality: &'static str,
    pub higher_is_better: bool,
    pub points: Vec<(f64, f64)>,
}

/// The curve the `noise` methods trace in `zoo` on `axis`: per noise method the mean over
/// seeds of each seed's mean (x, quality), and (0, the mean quality of the rows of
/// `checkpoints`) for σ = 0 when the zoo has them. `None` below two points.
pub fn curve(rows: &[SampleRow], zoo: &str, noise: &[&str], checkpoints: &str, axis: &str) -> Option<Curve> {
    let (quality, higher_is_better) = quality_of(rows, zoo);
    let mut points: Vec<(f64, f64)> = noise
        .iter()
        .filter_map(|m| {
            let seeds = per_seed(rows, zoo, m, axis, quality);
            (!seeds.is_empty()).then(|| {
                let n = seeds.len() as f64;
                (seeds.values().map(|v| v.0).sum::<f64>() / n, seeds.values().map(|v| v.1).sum::<f64>() / n)
            })
        })
        .collect();
    let anchor: Vec<f64> = rows.iter().filter(|r| r.zoo == zoo && r.method == checkpoints).filter_map(|r| r.metric(quality)).filter(|a| a.is_finite()).collect();
    if !anchor.is_empty() && !points.iter().any(|p| p.0 == 0.0) {
        points.push((0.0, anchor.iter().sum::<f64>() / anchor.len() as f64));
    }
    if points.len() < 2 {
        return None;
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    Some(Curve { quality, higher_is_better, points })
}

/// Every method of `placed` (name, role) against the frontier the `noise` methods trace in
/// its zoo, on `axis`, starting at (0, the mean quality of the rows of `checkpoints`: the
/// training checkpoints, σ = 0) when the zoo has them. Zoos with fewer than two points get no
/// rows.
pub fn noise_frontier(rows: &[SampleRow], noise: &[&str], checkpoints: &str, placed: &[(&str, &str)], axis: &str) -> Vec<FrontierRow> {
    let zoos: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.zoo.as_str()).collect();
    let mut out = Vec::new();
    for zoo in zoos {
        let Some(Curve { quality, higher_is_better, points }) = curve(rows, zoo, noise, checkpoints, axis) else {
            continue;
        };
        let sign = if higher_is_better { 1.0 } else { -1.0 };
        let range = (points[0].0, points[points.len() - 1].0);
        for &(method, role) in placed {
            let seeds = per_seed(rows, zoo, method, axis, quality);
            if seeds.is_empty() {
                continue;
            }
            let n = seeds.len() as f64;
            let (x, value) = (seeds.values().map(|v| v.0).sum::<f64>() / n, seeds.values().map(|v| v.1).sum::<f64>() / n);
            let margins: Vec<f64> = seeds.values().filter_map(|&(x, a)| at(&points, x).map(|f| sign * (a - f))).collect();
            let (margin, ci95) = match over_seeds(&margins) {
                _ if margins.is_empty() => (None, None),
                (mean, _, ci) => (Some(mean), ci),
            };
            let verdict = match (margin, ci95) {
                (None, _) => Verdict::OutOfRange,
                (Some(_), None) => Verdict::OneSeed,
                (Some(m), Some(ci)) if m - ci > 0.0 => Verdict::Above,
                (Some(m), Some(ci)) if m + ci < 0.0 => Verdict::Below,
                _ => Verdict::On,
            };
            out.push(FrontierRow {
                zoo: zoo.to_string(),
                method: method.to_string(),
                role: role.to_string(),
                axis: axis.to_string(),
                quality: quality.to_string(),
                higher_is_better,
                x,
                value,
                noise_value: at(&points, x),
                margin,
                ci95,
                seeds_in_range: margins.len() as u32,
                seeds: seeds.len() as u32,
                verdict,
                range,
                points: points.len() as u32,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, seed: u64, novelty: f64, accuracy: f64) -> SampleRow {
        SampleRow {
            method: method.into(),
            role: "x".into(),
            zoo: "z".into(),
            seed,
            sample: 0,
            nn_index: 0,
            pc1: 0.0,
            pc2: 0.0,
            file: String::new(),
            metrics: BTreeMap::from([("novelty".to_string(), novelty), ("accuracy".to_string(), accuracy)]),
        }
    }

    /// Noise along accuracy = 0.9 − novelty for novelty in [0, 0.5].
    fn noise_rows() -> Vec<SampleRow> {
        [("n0", 0.0), ("n1", 0.1), ("n3", 0.3), ("n5", 0.5)].iter().flat_map(|&(m, x)| (0..3).map(move |s| row(m, s, x, 0.9 - x))).collect()
    }

    #[test]
    fn methods_above_on_below_and_outside_the_frontier() {
        let mut rows = noise_rows();
        for s in 0..3 {
            let jitter = [0.0, 0.01, -0.01][s as usize];
            rows.push(row("better", s, 0.2, 0.75 + jitter)); // frontier 0.7 at 0.2: +0.05
            rows.push(row("same", s, 0.2, 0.70 + 2.0 * jitter));
            rows.push(row("worse", s, 0.4, 0.40 + jitter)); // frontier 0.5: −0.1
            rows.push(row("far", s, 0.8, 0.1));
        }
        rows.push(row("lonely", 0, 0.25, 0.7));
        let placed = [("better", "generator"), ("same", "generator"), ("worse", "baseline"), ("far", "generator"), ("lonely", "generator")];
        let out = noise_frontier(&rows, &["n0", "n1", "n3", "n5"], "train", &placed, "novelty");
        let get = |m: &str| out.iter().find(|r| r.method == m).unwrap();
        assert_eq!(get("better").verdict, Verdict::Above, "{:?}", get("better"));
        assert!((get("better").margin.unwrap() - 0.05).abs() < 1e-12);
        assert!((get("better").noise_value.unwrap() - 0.7).abs() < 1e-12, "interpolated between σ values");
        assert_eq!(get("same").verdict, Verdict::On);
        assert_eq!(get("worse").verdict, Verdict::Below);
        assert!((get("worse").margin.unwrap() + 0.1).abs() < 1e-12);
        assert_eq!((get("far").verdict, get("far").margin, get("far").seeds_in_range), (Verdict::OutOfRange, None, 0));
        assert_eq!(get("lonely").verdict, Verdict::OneSeed);
        assert_eq!((get("better").range, get("better").points), ((0.0, 0.5), 4));
    }

    #[test]
    fn the_curve_starts_at_the_training_checkpoints() {
        // One noise level, and the checkpoints (σ = 0) at accuracy 0.9: a generator at novelty
        // 0.1 is placed on the line between them.
        let mut rows = vec![row("n3", 0, 0.3, 0.6), row("n3", 1, 0.3, 0.6), row("g", 0, 0.1, 0.85), row("g", 1, 0.1, 0.85)];
        rows.extend([0.88, 0.92].map(|a| row("train", 0, 0.05, a)));
        let out = noise_frontier(&rows, &["n3"], "train", &[("g", "generator")], "novelty");
        assert!((out[0].noise_value.unwrap() - 0.8).abs() < 1e-12, "{:?}", out[0]);
        assert_eq!((out[0].verdict, out[0].points), (Verdict::Above, 2));
        // Without the checkpoints, one noise level is no curve.
        assert!(noise_frontier(&rows[..4], &["n3"], "train", &[("g", "generator")], "novelty").is_empty());
    }

    #[test]
    fn fields_are_placed_by_their_loss_and_a_lower_loss_is_better() {
        // No accuracy (neural fields): noise along loss = x, a method at x = 0.2 with loss 0.1
        // is better than noise (0.2) by 0.1.
        let field = |method: &str, seed: u64, x: f64, loss: f64| SampleRow { metrics: BTreeMap::from([("nn_l2_aligned".to_string(), x), ("loss".to_string(), loss)]), ..row(method, seed, 0.0, 0.0) };
        let mut rows: Vec<SampleRow> = [("n1", 0.1), ("n3", 0.3)].iter().flat_map(|&(m, x)| (0..3).map(move |s| field(m, s, x, x))).collect();
        rows.extend((0..3).map(|s| field("g", s, 0.2, 0.1 + 0.001 * s as f64)));
        let out = noise_frontier(&rows, &["n1", "n3"], "train", &[("g", "generator")], "nn_l2_aligned");
        assert_eq!((out[0].quality.as_str(), out[0].higher_is_better, out[0].verdict), ("loss", false, Verdict::Above), "{:?}", out[0]);
        assert!((out[0].margin.unwrap() - 0.099).abs() < 1e-9, "{:?}", out[0]);
    }
}
