//! Few-shot transfer: how good are models as a starting point? Each model is fine-tuned for a
//! few optimizer steps with a zoo's recipe (fresh Adam, its batch size and learning rate), all
//! models batched, and scored after each requested step count. FLoWN and D2NWG report exactly
//! this against random initialisation.

use weightlab_manifest::TrainSpec;

use crate::arch::Arch;
use crate::data::Dataset;
use crate::eval::{self, ModelScore};
use crate::zoo::model_seed;
use crate::zoo::train::{MODELS_PER_BATCH, Trainer};

/// Scores of `weights` (n × P) on the test split after each of `steps` (ascending or not)
/// fine-tuning steps: one `Vec<ModelScore>` (n entries) per entry of `steps`, in that order.
/// With `targets` (task families), model i trains on the support set of task `targets[i]`
/// (`data.shots` examples per class: few-shot) and is scored on that task; otherwise, on a
/// many-shape dataset, each model keeps training on the shape it fits best at the start.
pub fn finetune(arch: &Arch, data: &Dataset, recipe: &TrainSpec, weights: &[f32], steps: &[usize], seed: u64, targets: Option<&[usize]>) -> Vec<Vec<ModelScore>> {
    let p = arch.layout().len();
    let n = weights.len() / p.max(1);
    let mut sorted: Vec<usize> = steps.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    // Which shape each model continues on: only many-shape datasets need a scoring pass first.
    let tasks: Vec<usize> = match targets {
        Some(t) => t.to_vec(),
        None if data.groups > 1 => eval::evaluate(arch, data, &data.test, weights).iter().map(|s| s.task.unwrap_or(0)).collect(),
        None => vec![0; n],
    };
    let few_shot = targets.is_some() && !data.tasks.is_empty();
    let mut at: Vec<Vec<ModelScore>> = vec![Vec::with_capacity(n); sorted.len()];
    for first in (0..n).step_by(MODELS_PER_BATCH) {
        let ids: Vec<usize> = (first..n.min(first + MODELS_PER_BATCH)).collect();
        let seeds: Vec<u64> = ids.iter().map(|&i| model_seed(seed, i)).collect();
        let pools: Vec<Vec<i64>> = ids
            .iter()
            .map(|&i| {
                if few_shot {
                    return crate::data::tasks::support(data, tasks[i], data.shots).into_iter().map(|j| j as i64).collect();
                }
                let r = data.group_range(data.train.len(), tasks[i]);
                (r.start as i64..r.end as i64).collect()
            })
            .collect();
        let mut trainer = Trainer::with_pools(arch, data, recipe, &seeds, pools);
        trainer.set_weights(weights[first * p..(first + ids.len()) * p].to_vec());
        let mut done = 0;
        for (k, &target) in sorted.iter().enumerate() {
            while done < target {
                trainer.step();
                done += 1;
            }
            let batch_tasks: Vec<usize> = ids.iter().map(|&i| tasks[i]).collect();
            at[k].extend(eval::evaluate_on(arch, data, &data.test, &trainer.weights(), Some(&batch_tasks)));
        }
    }
    steps.iter().map(|s| at[sorted.iter().position(|t| t == s).unwrap_or(0)].clone()).collect()
}
