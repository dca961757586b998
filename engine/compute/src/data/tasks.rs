//! Task families: many classification tasks made from one source (`[data.*] tasks`), the data
//! conditional generators (D2NWG, IGPG, FLoWN) learn to generate weights *for*.
//!
//! A family becomes an ordinary grouped [`Dataset`](super::Dataset): task t is group t, a contiguous block of
//! equal size in every split, with labels `0 .. ways`. So zoo training (model i learns task
//! i mod count), scoring on a model's own task and fine-tuning reuse the many-shape machinery.
//! Task ids are stable: the training tasks first, then the held-out, then the
//! out-of-distribution ones.
//!
//! What a task *is* reaches a method in two forms, both computed here or from here:
//! [`support_encoding`] (a fixed feature extractor's class means over k support examples
//! per class) and [`TaskInfo::description`] (the instruction text the pipeline embeds).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use weightlab_manifest::{DataSpec, TaskFamily, TasksSpec};

use super::{DataError, Split, procedural};

/// Where a task sits in the family's split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskGroup {
    /// Its models are what methods learn from.
    Train,
    /// Same distribution as the training tasks, never seen by a method.
    Heldout,
    /// Out of distribution: an arc of rotations or classes no training task has.
    Ood,
}

impl TaskGroup {
    pub fn name(self) -> &'static str {
        match self {
            TaskGroup::Train => "train",
            TaskGroup::Heldout => "heldout",
            TaskGroup::Ood => "ood",
        }
    }
}

/// One task of a family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Stable id: its group in the dataset, and `task` in the zoo table.
    pub id: usize,
    pub group: TaskGroup,
    /// The source classes behind labels 0, 1, … (`classes` family); every source class in
    /// order for `rotate`.
    pub classes: Vec<usize>,
    /// Rotation in degrees (`rotate` family).
    pub angle: Option<f32>,
    /// The instruction: what the task is, in words (embedded as text for IGPG).
    pub description: String,
}

/// The tasks of `spec` in id order: training, held-out, out-of-distribution.
pub fn plan(spec: &TasksSpec, source_classes: usize, class_names: &[String], source_name: &str, seed: u64) -> Vec<TaskInfo> {
    let train = spec.train();
    let group_of = |id: usize| {
        if id < train {
            TaskGroup::Train
        } else if id < train + spec.heldout {
            TaskGroup::Heldout
        } else {
            TaskGroup::Ood
        }
    };
    let name_of = |c: usize| class_names.get(c).cloned().unwrap_or_else(|| format!("class {c}"));
    match spec.family {
        TaskFamily::Rotate => {
            let angles = rotation_angles(spec);
            let classes: Vec<usize> = (0..source_classes).collect();
            angles
                .into_iter()
                .enumerate()
                .map(|(id, angle)| TaskInfo {
                    id,
                    group: group_of(id),
                    classes: classes.clone(),
                    angle: Some(angle),
                    description: format!("classify {source_classes} classes of {source_name} points rotated by {angle:.0} degrees"),
                })
                .collect()
        }
        TaskFamily::Classes => {
            let novel = novel_classes(spec, source_classes);
            let seen: Vec<usize> = (0..source_classes).filter(|c| !novel.contains(c)).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7A5C_F00D);
            let mut taken: std::collections::BTreeSet<Vec<usize>> = std::collections::BTreeSet::new();
            (0..spec.count)
                .map(|id| {
                    let group = group_of(id);
                    let mut classes = Vec::new();
                    // Distinct subsets while there are enough of them; repeats after that.
                    for attempt in 0..200 {
                        classes = if group == TaskGroup::Ood && !novel.is_empty() {
                            // At least one novel class, the rest from anywhere.
                            let mut pool: Vec<usize> = (0..source_classes).collect();
                            pool.shuffle(&mut rng);
                            let first = novel[id % novel.len()];
                            let mut set = vec![first];
                            set.extend(pool.into_iter().filter(|&c| c != first).take(spec.ways - 1));
                            set
                        } else {
                            let mut pool = seen.clone();
                            pool.shuffle(&mut rng);
                            pool.truncate(spec.ways);
                            pool
                        };
                        classes.sort_unstable();
                        if !taken.contains(&classes) || attempt == 199 {
                            break;
                        }
                    }
                    taken.insert(classes.clone());
                    let names: Vec<String> = classes.iter().map(|&c| name_of(c)).collect();
                    TaskInfo { id, group, classes, angle: None, description: format!("classify {}", names.join(", ")) }
                })
                .collect()
        }
    }
}

/// Classes only out-of-distribution tasks use: as given, else the last two (none without
/// out-of-distribution tasks).
pub fn novel_classes(spec: &TasksSpec, source_classes: usize) -> Vec<usize> {
    match &spec.novel_classes {
        Some(set) => set.clone(),
        None if spec.ood > 0 => (source_classes.saturating_sub(2)..source_classes).collect(),
        None => Vec::new(),
    }
}

/// Angles (degrees) of the `rotate` family in id order. All `count` angles are evenly spaced
/// over the circle; the out-of-distribution tasks take the last `ood` of them (one arc), the
/// held-out ones are spread evenly among the rest, and the training tasks are what is left.
fn rotation_angles(spec: &TasksSpec) -> Vec<f32> {
    let step = 360.0 / spec.count.max(1) as f32;
    let inside = spec.count - spec.ood;
    let heldout: Vec<usize> = (0..spec.heldout).map(|h| ((h as f32 + 0.5) * inside as f32 / spec.heldout as f32) as usize).collect();
    let train = (0..inside).filter(|j| !heldout.contains(j));
    let ood = inside..spec.count;
    train.chain(heldout.iter().copied()).chain(ood).map(|j| j as f32 * step).collect()
}

/// The examples of every task, each split holding the tasks' blocks back to back (equal
/// sizes), labels renumbered to the task's classes. `base` is the source's own (train, test).
pub fn examples(data: &DataSpec, spec: &TasksSpec, tasks: &[TaskInfo], base: impl Fn(u64) -> Result<(Split, Split), DataError>, features: usize) -> Result<(Split, Split), DataError> {
    let (mut train, mut test) = (Split::default(), Split::default());
    match spec.family {
        TaskFamily::Rotate => {
            for task in tasks {
                // Each task draws its own examples, then rotates them.
                let (tr, te) = base(data.seed ^ (task.id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))?;
                let angle = task.angle.unwrap_or(0.0).to_radians();
                for (from, to) in [(&tr, &mut train), (&te, &mut test)] {
                    to.x.extend(rotate(&from.x, angle));
                    to.y.extend_from_slice(&from.y);
                }
            }
        }
        TaskFamily::Classes => {
            let (tr, te) = base(data.seed)?;
            let per_test = (spec.per_class / 4).max(1);
            for (from, to, per) in [(&tr, &mut train, spec.per_class), (&te, &mut test, per_test)] {
                for task in tasks {
                    append_task(from, to, &task.classes, per, features).map_err(|reason| DataError::Shape { source_name: "tasks", reason })?;
                }
            }
        }
    }
    Ok((train, test))
}

/// Appends `per` examples of each class of `classes` (labels 0 .. ways, round-robin over the
/// classes, so any contiguous part of the block holds every class).
fn append_task(from: &Split, to: &mut Split, classes: &[usize], per: usize, features: usize) -> Result<(), String> {
    let of_class: Vec<Vec<usize>> = classes.iter().map(|&c| (0..from.len()).filter(|&i| from.y[i] as usize == c).take(per).collect()).collect();
    if let Some((c, have)) = classes.iter().zip(&of_class).find(|(_, v)| v.len() < per) {
        return Err(format!("class {c} has {} examples; `per_class` asks for {per} (raise `train_subset`/`test_subset` or lower `per_class`)", have.len()));
    }
    for k in 0..per {
        for (label, rows) in of_class.iter().enumerate() {
            let i = rows[k];
            to.x.extend_from_slice(&from.x[i * features..(i + 1) * features]);
            to.y.push(label as f32);
        }
    }
    Ok(())
}

/// 2-D points rotated by `angle` radians.
fn rotate(x: &[f32], angle: f32) -> Vec<f32> {
    let (s, c) = angle.sin_cos();
    x.chunks_exact(2).flat_map(|p| [c * p[0] - s * p[1], s * p[0] + c * p[1]]).collect()
}

/// Draws the base examples of a procedural 2-D source with `seed` (the rotate family).
pub fn procedural_base(data: &DataSpec, seed: u64) -> (Split, Split) {
    use weightlab_manifest::DataSource;
    match data.source {
        DataSource::Moons => procedural::moons(data.samples, data.noise, seed),
        DataSource::Circles => procedural::circles(data.samples, data.noise, seed),
        _ => procedural::blobs(data.classes, data.samples, data.noise, seed),
    }
}

/// Features the fixed extractor keeps: inputs of at most this many values pass unchanged;
/// images are average-pooled down to at most 8 × 8.
const POOLED: usize = 64;

/// The fixed feature extractor of set encodings: the input itself when small, else an
/// average-pooled image (or, for other shapes, means over equal runs of values).
pub fn features(x: &[f32], input_shape: &[usize]) -> Vec<f32> {
    if x.len() <= POOLED {
        return x.to_vec();
    }
    if let [channels, h, w] = *input_shape {
        let f = h.div_ceil(8).max(w.div_ceil(8));
        let (ph, pw) = (h / f, w / f);
        let mut out = vec![0.0f32; ph * pw];
        for c in 0..channels {
            for i in 0..ph * f {
                for j in 0..pw * f {
                    out[(i / f) * pw + j / f] += x[c * h * w + i * w + j];
                }
            }
        }
        let scale = (channels * f * f) as f32;
        return out.into_iter().map(|v| v / scale).collect();
    }
    let run = x.len().div_ceil(POOLED);
    x.chunks(run).map(|c| c.iter().sum::<f32>() / c.len() as f32).collect()
}

/// Training examples of `task` that form its support set: the first `shots` of each label in
/// its block (indices into the training split). Also what few-shot fine-tuning trains on.
pub fn support(data: &super::Dataset, task: usize, shots: usize) -> Vec<usize> {
    let range = data.group_range(data.train.len(), task);
    let ways = data.outputs();
    let mut taken = vec![0usize; ways];
    range
        .filter(|&i| {
            let c = data.train.y[i] as usize;
            let keep = c < ways && taken[c] < shots;
            if keep {
                taken[c] += 1;
            }
            keep
        })
        .collect()
}

/// The set encoding of `task`: for each label in order, the mean of the fixed features of its
/// support examples, concatenated (labels × pooled features). Label order matters: the encoding
/// says which class is which output.
pub fn support_encoding(data: &super::Dataset, task: usize, shots: usize) -> Vec<f32> {
    let features = data.features();
    let ways = data.outputs();
    let mut sums: Vec<Vec<f32>> = Vec::new();
    let mut counts = vec![0usize; ways];
    for i in support(data, task, shots) {
        let f = self::features(&data.train.x[i * features..(i + 1) * features], &data.input_shape);
        if sums.is_empty() {
            sums = vec![vec![0.0; f.len()]; ways];
        }
        let c = data.train.y[i] as usize;
        sums[c].iter_mut().zip(&f).for_each(|(s, v)| *s += v);
        counts[c] += 1;
    }
    sums.into_iter().zip(counts).flat_map(|(s, n)| s.into_iter().map(move |v| v / n.max(1) as f32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(family: TaskFamily, count: usize, heldout: usize, ood: usize) -> TasksSpec {
        TasksSpec { family, count, heldout, ood, ways: 3, novel_classes: None, per_class: 8, shots: 2 }
    }

    #[test]
    fn rotation_groups_are_disjoint_and_ood_is_one_arc() {
        let s = spec(TaskFamily::Rotate, 16, 4, 4);
        let angles = rotation_angles(&s);
        assert_eq!(angles.len(), 16);
        let mut sorted = angles.clone();
        sorted.sort_by(f32::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), 16, "every task its own angle");
        // The last four (ood) are the four largest angles: one arc.
        assert!(angles[12..].iter().all(|&a| a >= 270.0), "{angles:?}");
        assert!(angles[..12].iter().all(|&a| a < 270.0));
    }

    #[test]
    fn class_tasks_keep_novel_classes_out_of_distribution() {
        let s = TasksSpec { ways: 3, ..spec(TaskFamily::Classes, 20, 4, 4) };
        let names: Vec<String> = (0..10).map(|c| format!("c{c}")).collect();
        let tasks = plan(&s, 10, &names, "x", 0);
        for t in &tasks {
            let novel = t.classes.iter().any(|&c| c >= 8);
            assert_eq!(novel, t.group == TaskGroup::Ood, "{t:?}");
            assert_eq!(t.classes.len(), 3);
        }
        assert!(tasks[0].description.starts_with("classify c"));
    }
}
