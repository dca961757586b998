//! A 2-D principal-component view of weight vectors, fitted on a zoo's training checkpoints
//! (through the small N×N Gram matrix, since N models ≪ P parameters), so that training,
//! held-out and generated models can be drawn in one picture.

/// The first two principal axes of a set of rows.
#[derive(Debug, Clone)]
pub struct Pca {
    mean: Vec<f64>,
    axes: Vec<Vec<f64>>,
}

impl Pca {
    /// Fits on `rows` (n × p, row-major).
    pub fn fit(rows: &[f32], p: usize) -> Pca {
        let n = rows.len() / p.max(1);
        let mut mean = vec![0.0; p];
        for r in rows.chunks_exact(p) {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64 / n as f64;
            }
        }
        let centred: Vec<Vec<f64>> = rows.chunks_exact(p).map(|r| r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect()).collect();
        let mut gram = vec![vec![0.0; n]; n];
        for i in 0..n {
            for j in 0..=i {
                let d: f64 = centred[i].iter().zip(&centred[j]).map(|(a, b)| a * b).sum();
                gram[i][j] = d;
                gram[j][i] = d;
            }
        }
        let mut axes = Vec::new();
        for k in 0..2.min(n) {
            // Power iteration from a fixed start, deflating earlier eigenvectors.
            let mut u: Vec<f64> = (0..n).map(|i| 1.0 + ((i * 7 + k * 3) % 5) as f64 * 0.1).collect();
            let mut lambda = 0.0;
            for _ in 0..200 {
                let mut w: Vec<f64> = (0..n).map(|i| gram[i].iter().zip(&u).map(|(g, x)| g * x).sum()).collect();
                let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm < 1e-300 {
                    break;
                }
                w.iter_mut().for_each(|x| *x /= norm);
                lambda = norm;
                u = w;
            }
            let mut axis = vec![0.0; p];
            for (ui, row) in u.iter().zip(&centred) {
                for (a, v) in axis.iter_mut().zip(row) {
                    *a += ui * v;
                }
            }
            let norm = axis.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            axis.iter_mut().for_each(|x| *x /= norm);
            for i in 0..n {
                for j in 0..n {
                    gram[i][j] -= lambda * u[i] * u[j];
                }
            }
            axes.push(axis);
        }
        while axes.len() < 2 {
            axes.push(vec![0.0; p]);
        }
        Pca { mean, axes }
    }

    /// Coordinates of each row on the two axes.
    pub fn project(&self, rows: &[f32]) -> Vec<(f64, f64)> {
        let p = self.mean.len();
        rows.chunks_exact(p)
            .map(|r| {
                let dot = |axis: &[f64]| r.iter().zip(&self.mean).zip(axis).map(|((&v, m), a)| (v as f64 - m) * a).sum::<f64>();
                (dot(&self.axes[0]), dot(&self.axes[1]))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_direction_of_largest_spread() {
        // Points spread along (1, 1, 0), a little along (0, 0, 1), uncorrelated.
        let rows: Vec<f32> = [(-2.0f32, 0.1f32), (-1.0, -0.1), (1.0, -0.1), (2.0, 0.1)].iter().flat_map(|&(t, z)| [t, t, z]).collect();
        let pca = Pca::fit(&rows, 3);
        let proj = pca.project(&rows);
        let spread1: f64 = proj.iter().map(|p| p.0 * p.0).sum();
        let spread2: f64 = proj.iter().map(|p| p.1 * p.1).sum();
        assert!(spread1 > 100.0 * spread2, "{spread1} vs {spread2}");
        assert!((proj[3].0.abs() - 8f64.sqrt()).abs() < 1e-6);
    }
}
