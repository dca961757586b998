//! Scores of a probe's predictions (what a model's weights say about it). Model-tree discovery
//! lives in the `weightlab-trees` crate, shared with the probe plugins.
//!
//! Conventions: a score matrix is row-major `rows × cols`, one row per model and one column per
//! label, higher = more likely. Functions return NaN when a figure is undefined (no positive
//! example of a label, constant truth), never a made-up 0.

/// Average precision of one label: Σₙ (Rₙ − Rₙ₋₁) Pₙ over the distinct score thresholds, from
/// the highest down (sklearn's `average_precision_score`; models with tied scores enter
/// together, so a constant score gets the positives' share). NaN when no model is positive.
pub fn average_precision(scores: &[f32], truth: &[bool]) -> f64 {
    let positives = truth.iter().filter(|t| **t).count();
    if positives == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut hits, mut ap, mut recall) = (0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        // Everything tied with order[i] crosses the threshold at once.
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            hits += usize::from(truth[order[j]]);
            j += 1;
        }
        let r = hits as f64 / positives as f64;
        ap += (r - recall) * hits as f64 / j as f64;
        recall = r;
        i = j;
    }
    ap
}

/// Expected average precision of a random ranking of `n` models with `positives` positive
/// (no ties): Σᵢ E[i / Rᵢ] / positives, where Rᵢ, the rank of the i-th positive, has
/// P(Rᵢ = r) = C(r−1, i−1)·C(n−r, positives−i) / C(n, positives). Above the positives' share
/// when they are few: the chance level mAP must be compared with. NaN with no positive.
pub fn random_average_precision(n: usize, positives: usize) -> f64 {
    if positives == 0 || positives > n {
        return f64::NAN;
    }
    // ln C(a, b) through ln Γ sums (exact enough for n in the thousands).
    let ln_fact: Vec<f64> = std::iter::once(0.0)
        .chain((1..=n).scan(0.0, |acc, k| {
            *acc += (k as f64).ln();
            Some(*acc)
        }))
        .collect();
    let ln_choose = |a: usize, b: usize| ln_fact[a] - ln_fact[b] - ln_fact[a - b];
    let total = ln_choose(n, positives);
    let mut sum = 0.0;
    for i in 1..=positives {
        for r in i..=n - (positives - i) {
            let p = (ln_choose(r - 1, i - 1) + ln_choose(n - r, positives - i) - total).exp();
            sum += p * i as f64 / r as f64;
        }
    }
    sum / positives as f64
}

/// Column `c` of a `cols`-column matrix.
fn column<T: Copy>(m: &[T], cols: usize, c: usize) -> Vec<T> {
    m.iter().skip(c).step_by(cols.max(1)).copied().collect()
}

/// Mean average precision over the labels `columns` that have a positive model (macro mAP).
/// `truth` holds 0/1 per cell.
pub fn mean_average_precision(scores: &[f32], truth: &[f32], cols: usize, columns: &[usize]) -> f64 {
    let aps: Vec<f64> =
        columns.iter().map(|&c| average_precision(&column(scores, cols, c), &column(truth, cols, c).iter().map(|t| *t > 0.5).collect::<Vec<_>>())).filter(|ap| ap.is_finite()).collect();
    if aps.is_empty() { f64::NAN } else { aps.iter().sum::<f64>() / aps.len() as f64 }
}

/// Multi-label accuracy: per model with k true labels among `columns`, the fraction of them
/// among its k highest-scored labels in `columns`; averaged over models with at least one.
pub fn top_k_accuracy(scores: &[f32], truth: &[f32], cols: usize, columns: &[usize]) -> f64 {
    let rows = scores.len() / cols.max(1);
    let mut total = 0.0;
    let mut counted = 0;
    for r in 0..rows {
        let row = |m: &[f32], c: usize| m[r * cols + c];
        let k = columns.iter().filter(|&&c| row(truth, c) > 0.5).count();
        if k == 0 {
            continue;
        }
        let mut ranked = columns.to_vec();
        ranked.sort_by(|&a, &b| row(scores, b).total_cmp(&row(scores, a)));
        total += ranked[..k].iter().filter(|&&c| row(truth, c) > 0.5).count() as f64 / k as f64;
        counted += 1;
    }
    if counted == 0 { f64::NAN } else { total / counted as f64 }
}

/// Single-label accuracy: the share of models whose highest-scored label is `truth[r]`.
pub fn argmax_accuracy(scores: &[f32], truth: &[f32], cols: usize) -> f64 {
    let rows = truth.len();
    if rows == 0 || cols == 0 {
        return f64::NAN;
    }
    let correct = (0..rows)
        .filter(|&r| {
            let row = &scores[r * cols..(r + 1) * cols];
            let best = (0..cols).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
            best as f32 == truth[r]
        })
        .count();
    correct as f64 / rows as f64
}

/// Coefficient of determination 1 − SS_res / SS_tot; NaN when the truth is constant.
pub fn r_squared(predicted: &[f32], truth: &[f32]) -> f64 {
    let n = truth.len() as f64;
    let mean = truth.iter().map(|&t| t as f64).sum::<f64>() / n;
    let ss_tot: f64 = truth.iter().map(|&t| (t as f64 - mean).powi(2)).sum();
    let ss_res: f64 = predicted.iter().zip(truth).map(|(&p, &t)| (p as f64 - t as f64).powi(2)).sum();
    if ss_tot <= 0.0 { f64::NAN } else { 1.0 - ss_res / ss_tot }
}

/// Kendall's τ-b between predictions and truth (ties in either are accounted for, as in
/// scipy's `kendalltau`); NaN when either is constant.
pub fn kendall_tau(predicted: &[f32], truth: &[f32]) -> f64 {
    let n = predicted.len().min(truth.len());
    let (mut concordant, mut discordant, mut tie_p, mut tie_t) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dp = (predicted[i] - predicted[j]).signum() * f32::from(predicted[i] != predicted[j]);
            let dt = (truth[i] - truth[j]).signum() * f32::from(truth[i] != truth[j]);
            match (dp == 0.0, dt == 0.0) {
                (true, true) => {}
                (true, false) => tie_p += 1,
                (false, true) => tie_t += 1,
                (false, false) if dp == dt => concordant += 1,
                (false, false) => discordant += 1,
            }
        }
    }
    let denominator = (((concordant + discordant + tie_p) as f64) * ((concordant + discordant + tie_t) as f64)).sqrt();
    if denominator == 0.0 { f64::NAN } else { (concordant - discordant) as f64 / denominator }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_matches_hand_computed_values() {
        // Ranked: 0.9 (pos), 0.8 (neg), 0.7 (pos): AP = (1/1 + 2/3) / 2.
        let ap = average_precision(&[0.9, 0.8, 0.7], &[true, false, true]);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!(average_precision(&[0.1, 0.2], &[false, false]).is_nan());
        // A perfect ranking scores 1; a constant score, the positives' share.
        assert_eq!(average_precision(&[0.9, 0.1], &[true, false]), 1.0);
        assert!((average_precision(&[0.5; 4], &[true, false, false, true]) - 0.5).abs() < 1e-12);
        // sklearn.metrics.average_precision_score([1, 0, 1, 0, 1], [0.8, 0.8, 0.3, 0.5, 0.1])
        // = 0.5333… (the tie at 0.8: precision 1/2 at recall 1/3; then 1/2 at 2/3, 3/5 at 1).
        let ap = average_precision(&[0.8, 0.8, 0.3, 0.5, 0.1], &[true, false, true, false, true]);
        assert!((ap - (1.0 / 3.0 * 0.5 + 1.0 / 3.0 * 0.5 + 1.0 / 3.0 * 0.6)).abs() < 1e-12, "{ap}");
    }

    #[test]
    fn random_ranking_ap_is_exact() {
        // n = 3, one positive at rank 1, 2 or 3: (1 + 1/2 + 1/3) / 3.
        assert!((random_average_precision(3, 1) - (1.0 + 0.5 + 1.0 / 3.0) / 3.0).abs() < 1e-12);
        // Everything positive: precision 1 everywhere.
        assert!((random_average_precision(5, 5) - 1.0).abs() < 1e-12);
        // Many models: close to the positives' share.
        assert!((random_average_precision(2000, 400) - 0.2).abs() < 0.01);
    }

    #[test]
    fn multi_label_scores() {
        // Two models, three labels; model 0 trained on {0, 1}, model 1 on {2}.
        let truth = [1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let perfect = [0.9, 0.8, 0.1, 0.2, 0.1, 0.7];
        assert_eq!(top_k_accuracy(&perfect, &truth, 3, &[0, 1, 2]), 1.0);
        assert_eq!(mean_average_precision(&perfect, &truth, 3, &[0, 1, 2]), 1.0);
        let half = [0.9, 0.1, 0.8, 0.2, 0.1, 0.7];
        assert_eq!(top_k_accuracy(&half, &truth, 3, &[0, 1, 2]), 0.75);
        assert_eq!(argmax_accuracy(&[0.1, 0.9, 0.8, 0.2], &[1.0, 1.0], 2), 0.5);
    }

    #[test]
    fn regression_scores() {
        let truth = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(r_squared(&truth, &truth), 1.0);
        assert!((r_squared(&[2.5; 4], &truth)).abs() < 1e-12);
        assert_eq!(kendall_tau(&[10.0, 20.0, 30.0, 40.0], &truth), 1.0);
        assert_eq!(kendall_tau(&[4.0, 3.0, 2.0, 1.0], &truth), -1.0);
        // scipy.stats.kendalltau([1, 2, 2, 3], [1, 2, 3, 4]) = 0.9128709291752769
        assert!((kendall_tau(&[1.0, 2.0, 2.0, 3.0], &truth) - 0.912_870_929_175_276_9).abs() < 1e-9);
        assert!(kendall_tau(&[1.0; 4], &truth).is_nan());
    }
}
