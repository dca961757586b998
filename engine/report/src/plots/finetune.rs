use std::collections::BTreeMap;

use crate::svg::{self, Series};

use super::{Figure, Plot, Tables};

pub const FINETUNE: Plot = Plot {
    id: "finetune",
    description: "Test accuracy (or SDF error) against fine-tuning steps, per method; it needs `[evaluate] finetune_steps`.",
    needs: &[],
    tables: &["finetune"],
    per_zoo: true,
    render: |t: &Tables, zoo: &str, suffix: &str| {
        let accuracy = t.finetune.iter().any(|r| r.accuracy.is_some());
        // Mean test accuracy (or SDF loss) of each method's fine-tuned samples per step count.
        // On a task family, one line per method and task group (held-out, out-of-distribution).
        let mut groups: BTreeMap<(usize, String), BTreeMap<usize, (f64, usize)>> = BTreeMap::new();
        for r in t.finetune.iter().filter(|r| r.zoo == zoo) {
            let v = if accuracy { r.accuracy.unwrap_or(f64::NAN) } else { r.loss };
            let name = match r.group.as_str() {
                "" => r.method.clone(),
                "heldout" => format!("{} · in-dist.", r.method),
                g => format!("{} · {}", r.method, g.to_uppercase()),
            };
            let cell = groups.entry(((t.position)(&r.method), name)).or_default().entry(r.steps).or_insert((0.0, 0));
            cell.0 += v;
            cell.1 += 1;
        }
        let series: Vec<Series> = groups.into_iter().map(|((_, name), by_step)| Series::new(name, by_step.into_iter().map(|(k, (sum, n))| (k as f64, sum / n.max(1) as f64)).collect())).collect();
        let y = if accuracy { "mean test accuracy" } else { "mean SDF error (MSE)" };
        (!series.is_empty()).then(|| Figure {
            caption: "Few-shot transfer: every sample fine-tuned with the zoo's recipe for the given number of steps (fresh Adam), averaged over samples and seeds; on a task family, on its target task's support set (`shots` per class), scored on that task, with held-out (in-distribution) and out-of-distribution tasks apart. A generator worth using as an initialisation stays above random-init.".into(),
            svg: svg::lines(&format!("Fine-tuning from each method's samples{suffix}"), "fine-tuning steps", y, &series),
        })
    },
};
