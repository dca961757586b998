//! Model-tree discovery and the adjusted Rand index, in plain Rust with no dependencies, so the
//! engine (the report's discovery table) and probe plugins compiled to WebAssembly (ProbeX's
//! tree experts) run the same code.

/// Model trees found from pairwise distances alone: models fine-tuned from one root stay close
/// to it, and roots trained from different initialisations are far apart. Single-linkage
/// clustering of `distances` (n × n, row-major, e.g. L2 between weight vectors), cut where the
/// merge distance jumps most (the largest ratio between consecutive minimum-spanning-tree
/// edges above the median); one tree when no edge is at least twice the one before. Returns a tree id per
/// model, numbered by first appearance.
pub fn discover(distances: &[f64], n: usize) -> Vec<usize> {
    if n < 2 {
        return vec![0; n];
    }
    let dist = |a: usize, b: usize| distances[a * n + b];
    // Prim's minimum spanning tree on the complete graph (O(n²) distances).
    let mut in_tree = vec![false; n];
    let mut best = vec![(f64::INFINITY, 0usize); n];
    let mut edges: Vec<(f64, usize, usize)> = Vec::with_capacity(n - 1);
    let mut current = 0;
    in_tree[0] = true;
    for _ in 1..n {
        for j in 0..n {
            if !in_tree[j] {
                let d = dist(current, j);
                if d < best[j].0 {
                    best[j] = (d, current);
                }
            }
        }
        let next = (0..n).filter(|&j| !in_tree[j]).min_by(|&a, &b| best[a].0.total_cmp(&best[b].0)).unwrap_or(0);
        edges.push((best[next].0, best[next].1, next));
        in_tree[next] = true;
        current = next;
    }
    let mut lengths: Vec<f64> = edges.iter().map(|e| e.0).collect();
    lengths.sort_by(f64::total_cmp);
    // The cut: just below the first edge of the largest jump. Edges inside trees are the
    // majority (n − trees of n − 1), so the jump is looked for above the median edge: the
    // small edges inside a tree can differ by large ratios without meaning anything.
    let mut cut = f64::INFINITY;
    let mut largest = 2.0;
    for w in lengths[(lengths.len() - 1) / 2..].windows(2) {
        let ratio = w[1] / w[0].max(1e-12);
        if ratio >= largest {
            largest = ratio;
            cut = w[1];
        }
    }
    // Components of the edges below the cut (union-find).
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while parent[r] != r {
            r = parent[r];
        }
        parent[i] = r;
        r
    }
    for &(d, a, b) in &edges {
        if d < cut {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            parent[ra] = rb;
        }
    }
    let mut ids = std::collections::HashMap::new();
    (0..n)
        .map(|i| {
            let root = find(&mut parent, i);
            let next = ids.len();
            *ids.entry(root).or_insert(next)
        })
        .collect()
}

/// Adjusted Rand index of two partitions (1: identical, about 0: as by chance; Hubert & Arabie).
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len().min(b.len());
    let pairs = |k: f64| k * (k - 1.0) / 2.0;
    let mut table: std::collections::HashMap<(usize, usize), f64> = std::collections::HashMap::new();
    let (mut rows, mut cols): (std::collections::HashMap<usize, f64>, std::collections::HashMap<usize, f64>) = Default::default();
    for i in 0..n {
        *table.entry((a[i], b[i])).or_default() += 1.0;
        *rows.entry(a[i]).or_default() += 1.0;
        *cols.entry(b[i]).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|&k| pairs(k)).sum();
    let (sum_a, sum_b): (f64, f64) = (rows.values().map(|&k| pairs(k)).sum(), cols.values().map(|&k| pairs(k)).sum());
    let expected = sum_a * sum_b / pairs(n as f64);
    let max = (sum_a + sum_b) / 2.0;
    if max == expected { 1.0 } else { (index - expected) / (max - expected) }
}

/// Euclidean distances between the rows of `features` (rows × `dim`), n × n row-major.
pub fn euclidean(features: &[f32], dim: usize) -> Vec<f64> {
    let n = features.len() / dim.max(1);
    let row = |i: usize| &features[i * dim..(i + 1) * dim];
    let mut d = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = row(i).iter().zip(row(j)).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
            d[i * n + j] = v;
            d[j * n + i] = v;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_are_found_and_ari_scores_them() {
        // Three roots far apart, children near them.
        let roots = [[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut features = Vec::new();
        let mut truth = Vec::new();
        for i in 0..15 {
            let r = i % 3;
            features.extend([roots[r][0] + (i as f32 * 0.37).sin() * 0.3, roots[r][1] + (i as f32 * 0.91).cos() * 0.3]);
            truth.push(r);
        }
        let found = discover(&euclidean(&features, 2), 15);
        assert_eq!(adjusted_rand_index(&found, &truth), 1.0);
        // Points evenly spread on a line: no jump, one tree.
        let line: Vec<f32> = (0..12).flat_map(|i| [i as f32, 0.0]).collect();
        assert!(discover(&euclidean(&line, 2), 12).iter().all(|&t| t == 0));
        // ARI of a partition against itself relabelled is 1; against an unrelated one, near 0.
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 3, 3]), 1.0);
        assert!(adjusted_rand_index(&[0, 1, 0, 1, 0, 1], &[0, 0, 0, 1, 1, 1]).abs() < 0.3);
        // sklearn.metrics.adjusted_rand_score([0,0,0,1,1,1], [0,0,1,1,2,2]) = 0.24242424242424246
        assert!((adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]) - 0.242_424_242_424_242_46).abs() < 1e-12);
    }
}
