//! Compares two run folders table by table, row by row: `samples` (matched on zoo, method,
//! seed and sample: every metric both have), `finetune` (also on steps) and `zoo` (on zoo,
//! model, epoch and step: the checkpoints' losses and accuracies), printing the largest
//! absolute difference of each column. Used to check that a refactor changed no number:
//!
//! `cargo run --release -p weightlab-pipeline --example compare_runs -- BEFORE_DIR AFTER_DIR`

use std::collections::{BTreeMap, BTreeSet};

use weightlab_results::rows::{read_samples, read_table};
use weightlab_results::{FinetuneRow, SampleRow, ZooRow};

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
    let finetune = |dir: &str| -> Result<Vec<FinetuneRow>, String> { Ok(read_table(std::path::Path::new(dir), "finetune").map_err(|e| e.to_string())?.unwrap_or_default()) };
    let rows =
        |v: Vec<FinetuneRow>| v.into_iter().map(|r| ((r.zoo, r.method, r.seed, r.sample, r.steps), vec![("finetune accuracy", r.accuracy.unwrap_or(f64::NAN)), ("finetune loss", r.loss)])).collect();
    report("finetune", rows(finetune(before)?), rows(finetune(after)?));
    let zoo = |dir: &str| -> Result<Vec<ZooRow>, String> { Ok(read_table(std::path::Path::new(dir), "zoo").map_err(|e| e.to_string())?.unwrap_or_default()) };
    let rows = |v: Vec<ZooRow>| {
        v.into_iter()
            .map(|r| {
                let columns = vec![("train_loss", r.train_loss), ("validation_loss", r.validation_loss), ("test_loss", r.test_loss), ("test_accuracy", r.test_accuracy.unwrap_or(f64::NAN))];
                ((r.zoo, r.model.to_string(), r.epoch as u64, r.step, 0), columns)
            })
            .collect()
    };
    report("zoo", rows(zoo(before)?), rows(zoo(after)?));
    Ok(())
}

type Key = (String, String, u64, usize, usize);

/// Matches rows by key and prints each column's largest absolute difference.
fn report(table: &str, a: BTreeMap<Key, Vec<(&'static str, f64)>>, b: BTreeMap<Key, Vec<(&'static str, f64)>>) {
    let mut worst: BTreeMap<&str, f64> = BTreeMap::new();
    let matched = a.iter().filter_map(|(k, x)| b.get(k).map(|y| (x, y))).inspect(|(x, y)| {
        for ((name, u), (_, v)) in x.iter().zip(y.iter()) {
            let d = if u.is_nan() && v.is_nan() { 0.0 } else { (u - v).abs() };
            let w = worst.entry(name).or_insert(0.0);
            *w = w.max(if d.is_nan() { f64::INFINITY } else { d });
        }
    });
    let n = matched.count();
    println!("{table}: {n} of {} rows matched ({} in the second run)", a.len(), b.len());
    for (k, d) in &worst {
        println!("  {k:<20} max |difference| {d:.3e}");
    }
}
