//! Compares the `samples` tables of two run folders, row by row (matched on zoo, method, seed
//! and sample): for every metric both have, the largest absolute difference. Used to check
//! that a refactor changed no number:
//!
//! `cargo run --release -p weightlab-pipeline --example compare_runs -- BEFORE_DIR AFTER_DIR`

use std::collections::{BTreeMap, BTreeSet};

use weightlab_results::{SampleRow, rows::read_samples};

fn load(dir: &str) -> Result<Vec<SampleRow>, String> {
    read_samples(std::path::Path::new(dir)).map_err(|e| e.to_string())?.ok_or_else(|| format!("{dir} has no samples.parquet"))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [before, after] = args.as_slice() else {
        return Err("usage: compare_runs BEFORE_DIR AFTER_DIR".into());
    };
    let (a, b) = (load(before)?, load(after)?);
    let key = |r: &SampleRow| (r.zoo.clone(), r.method.clone(), r.seed, r.sample);
    let index: BTreeMap<_, &SampleRow> = b.iter().map(|r| (key(r), r)).collect();
    let mut worst: BTreeMap<String, f64> = BTreeMap::new();
    let (mut matched, mut missing) = (0, BTreeSet::new());
    for r in &a {
        let Some(o) = index.get(&key(r)) else {
            missing.insert((r.zoo.clone(), r.method.clone()));
            continue;
        };
        matched += 1;
        let fields = r.metrics.iter().map(|(k, v)| (k.clone(), *v, o.metric(k))).chain([
            ("pc1".into(), r.pc1, Some(o.pc1)),
            ("pc2".into(), r.pc2, Some(o.pc2)),
            ("nn_index".into(), r.nn_index as f64, Some(o.nn_index as f64)),
        ]);
        for (k, x, y) in fields {
            if let Some(y) = y {
                let d = if x.is_nan() && y.is_nan() { 0.0 } else { (x - y).abs() };
                let w = worst.entry(k).or_insert(0.0);
                *w = w.max(if d.is_nan() { f64::INFINITY } else { d });
            }
        }
    }
    println!("{matched} of {} rows matched ({} in the second run)", a.len(), b.len());
    for (zoo, method) in &missing {
        println!("  only in the first run: zoo {zoo}, method {method}");
    }
    for (k, d) in &worst {
        println!("  {k:<20} max |difference| {d:.3e}");
    }
    Ok(())
}
