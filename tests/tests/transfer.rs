//! Conditional generation end to end on a procedural task family: 4-class Gaussian blobs rotated
//! by 64 evenly spaced angles — 48 training tasks, 8 held-out ones between them and 8
//! out-of-distribution ones in one unseen arc — one MLP per task from a shared initialisation.
//! Checks that would catch a broken conditional generator: FLoWN, D2NWG and IGPG given the
//! target task's condition are far above random initialisation zero-shot, and fall clearly when
//! given another task's condition; IGPG's samples differ from task to task; the VQ-VAE's
//! reconstructions keep the accuracy of the checkpoints they encode (within 0.01); IGPG learns
//! from two architectures at once and samples one of them well, while a method that cannot is
//! refused with a reason and the run goes on; the zoo records every model's task and the task
//! tables and conditions are stored.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use weightlab_e2e::{experiment, stage_differences, weightlab, weightlab_ok_beside, weightlab_sharded};
use weightlab_results::rows::{read_samples, read_table};
use weightlab_results::{ConditionRow, FinetuneRow, TaskRow, ZooRow};

/// The run keeps both cores busy (two shards): one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

const MANIFEST: &str = r#"[experiment]
name = "transfer"
seeds = [0]

[data.rot]
source = "blobs"
classes = 4
samples = 256
noise = 0.5
tasks = { family = "rotate", count = 64, heldout = 8, ood = 8, shots = 5 }

[zoo.rot]
data = "rot"
arch = { kind = "mlp", hidden = [16] }
models = 64
shared_init = true
train = { optimizer = "adam", lr = 1e-2, epochs = 20, batch_size = 32 }

[zoo.narrow]
data = "rot"
arch = { kind = "mlp", hidden = [8] }
models = 64
shared_init = true
train = { optimizer = "adam", lr = 1e-2, epochs = 20, batch_size = 32 }

[evaluate]
finetune_steps = [0, 5]
"#;

fn method(name: &str, plugin: &str, extra: &str) -> String {
    format!("[[method]]\nname = \"{name}\"\nplugin = \"{plugin}\"\nzoo = \"rot\"\nsamples = 2\n{extra}\n")
}

/// Mean accuracy of `method`'s samples after `steps` fine-tuning steps, over the target tasks of
/// `group` (or all).
fn accuracy(rows: &[FinetuneRow], method: &str, steps: usize, group: Option<&str>) -> f64 {
    let v: Vec<f64> = rows.iter().filter(|r| r.method == method && r.steps == steps && group.is_none_or(|g| r.group == g)).filter_map(|r| r.accuracy).collect();
    assert!(!v.is_empty(), "no fine-tuning rows for {method} at {steps} steps");
    v.iter().sum::<f64>() / v.len() as f64
}

fn zoo_stage(run: &Path) -> PathBuf {
    std::fs::read_dir(run.join("stages")).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("zoo-"))).expect("a zoo stage")
}

#[test]
fn conditional_generators_follow_their_condition() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let mut manifest = String::from(MANIFEST);
    let flown = "config = { ae_steps = 600, flow_steps = 800, latent_dim = 16 }";
    let d2nwg = "config = { vae_steps = 800, diffusion_steps = 1000 }";
    // IGPG's transformer fits are most of this file's time; at 400 steps its zero-shot accuracy
    // on held-out tasks is already 0.97 (floor: random init + 0.4).
    let igpg = "config = { condition = \"support\", vq_steps = 800, ar_steps = 400 }";
    for (name, plugin, config) in [("FLoWN", "flown", flown), ("D2NWG", "d2nwg", d2nwg), ("IGPG", "igpg", igpg)] {
        manifest += &method(name, plugin, config);
        manifest += &method(&format!("{name} wrong"), plugin, &format!("wrong_condition = true\n{config}"));
    }
    // Several architectures: IGPG learns from MLPs of widths 8 and 16 and samples width 16;
    // a method that cannot is refused with a reason.
    manifest += &method("IGPG mixed", "igpg", "zoos = [\"narrow\", \"rot\"]\nconfig = { condition = \"support\", chunk = 4, codebook = 256, vq_steps = 600, ar_steps = 300 }");
    manifest += &method("nearest-task", "nearest-task", "");
    // The tokeniser alone: reconstructions of the checkpoints nearest the target (by the same
    // condition nearest-task uses), beside those checkpoints themselves.
    manifest += &method("IGPG reconstruct", "igpg", "config = { condition = \"support\", output = \"reconstruct\", vq_steps = 800, ar_steps = 1 }");
    manifest += &method("random-init", "random-init", "");
    // A method that cannot is refused before anything trains, at its entry (its plugin's check).
    let refused = manifest.clone() + &method("FLoWN mixed", "flown", "zoos = [\"narrow\", \"rot\"]");
    let (dir, path) = experiment(&refused);
    let out = weightlab(dir.path(), &["validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("plugin `flown` config: learns from one architecture, and was given narrow (60 parameters), rot (116 parameters)"), "{stderr}");
    let (dir, _) = experiment(&manifest);
    // Two shards side by side: the methods are independent stages, dealt in manifest order (a
    // control goes with its method: they share a fit). The order above gives one shard IGPG
    // and its control (one fit) and FLoWN's, the other IGPG mixed, the tokeniser and D2NWG's:
    // about 28 and 24 seconds of fitting.
    let out = weightlab_sharded(dir.path(), "exp.toml", "out");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let run = dir.path().join("out");

    // The zoo: one model per task, split by task.
    let zoo: Vec<ZooRow> = read_table::<ZooRow>(&run, "zoo").unwrap().expect("a zoo table").into_iter().filter(|r| r.zoo == "rot").collect();
    let tasks: std::collections::BTreeSet<i64> = zoo.iter().filter_map(|r| r.task).collect();
    assert_eq!(tasks.len(), 64, "every task has its model");
    assert_eq!(zoo.iter().filter(|r| r.side == "train").count(), 48);
    assert!(zoo.iter().filter(|r| r.side == "heldout").all(|r| r.task.is_some_and(|t| t >= 48)));
    let stage = zoo_stage(&run);
    let task_rows: Vec<TaskRow> = read_table(&stage, "tasks").unwrap().expect("a tasks table");
    assert_eq!(task_rows.iter().filter(|t| t.group == "ood").count(), 8);
    assert!(task_rows.iter().filter(|t| t.group == "ood").all(|t| t.angle.is_some_and(|a| a >= 315.0)), "OOD tasks are one arc");
    let conditions: Vec<ConditionRow> = read_table(&stage, "conditions").unwrap().expect("a conditions table");
    assert_eq!(conditions.iter().filter(|c| c.kind == "support" && c.task == 0).count(), 8, "4 class means of 2-D inputs");
    assert_eq!(conditions.iter().filter(|c| c.kind == "instruction" && c.task == 0).count(), 384, "a MiniLM embedding per task");

    let ft: Vec<FinetuneRow> = read_table(&run, "finetune").unwrap().expect("a finetune table");
    assert!(ft.iter().filter(|r| r.method == "FLoWN").all(|r| r.group == "heldout" || r.group == "ood"));
    let random = accuracy(&ft, "random-init", 0, None);
    let mut report = vec![format!("random-init {random:.3}")];
    for name in ["FLoWN", "D2NWG", "IGPG"] {
        let right = accuracy(&ft, name, 0, Some("heldout"));
        let ood = accuracy(&ft, name, 0, Some("ood"));
        let wrong = accuracy(&ft, &format!("{name} wrong"), 0, None);
        report.push(format!("{name}: held-out {right:.3}, OOD {ood:.3}, wrong condition {wrong:.3}"));
        assert!(right >= random + 0.4, "{name} zero-shot on held-out tasks {right:.3} vs random init {random:.3}");
        assert!(right >= wrong + 0.3, "{name}: a wrong task's condition should cost accuracy ({right:.3} vs {wrong:.3})");
    }
    // IGPG gives each task its own weights: its samples' nearest checkpoints differ by task.
    let samples = read_samples(&run).unwrap().expect("a samples table");
    let nearest: std::collections::BTreeSet<i64> = samples.iter().filter(|s| s.method == "IGPG").map(|s| s.nn_index).collect();
    assert!(nearest.len() >= 6, "IGPG's samples for 16 tasks sit near only {} checkpoints", nearest.len());
    let mixed = accuracy(&ft, "IGPG mixed", 0, Some("heldout"));
    report.push(format!("IGPG from widths 8 and 16, sampling 16: held-out {mixed:.3}"));
    assert!(mixed >= random + 0.4, "IGPG on mixed architectures {mixed:.3} vs random init {random:.3}");
    // The tokeniser keeps what the weights do.
    let (recon, original) = (accuracy(&ft, "IGPG reconstruct", 0, None), accuracy(&ft, "nearest-task", 0, None));
    report.push(format!("VQ-VAE reconstruction {recon:.3} vs the checkpoints {original:.3}"));
    assert!((recon - original).abs() <= 0.01, "VQ-VAE reconstructions {recon:.3} vs the checkpoints {original:.3}");
    // Fine-tuning from random init learns: the transfer table is not flat.
    assert!(accuracy(&ft, "random-init", 5, None) > random, "five fine-tuning steps should help random init");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Transfer: weights for new tasks") && html.contains("OOD · zero-shot"), "the report has a transfer table");
    println!("{}", report.join("\n"));
}

/// A wrong-condition control beside its method shares the method's fit, and so does the same
/// method with another sample count: one worker fits once and draws every one's samples — and
/// each method's stage holds the bits (samples and log) a job of its own gives, as the same run
/// with those stages computed alone shows. FLoWN logs metrics while it samples: each log keeps
/// its own draw's.
#[test]
fn a_wrong_condition_control_shares_its_methods_fit_and_gets_the_same_bits() {
    let small = MANIFEST.replace("count = 64, heldout = 8, ood = 8", "count = 16, heldout = 2, ood = 2").replace("models = 64", "models = 16").replace("epochs = 20", "epochs = 5");
    let mut manifest = small;
    for (name, plugin, config) in [("D2NWG", "d2nwg", "config = { vae_steps = 100, diffusion_steps = 100 }"), ("FLoWN", "flown", "config = { ae_steps = 100, flow_steps = 100, latent_dim = 8 }")] {
        manifest += &method(name, plugin, config);
        manifest += &method(&format!("{name} wrong"), plugin, &format!("wrong_condition = true\n{config}"));
    }
    manifest += &method("FLoWN 3", "flown", "config = { ae_steps = 100, flow_steps = 100, latent_dim = 8 }").replace("samples = 2", "samples = 3");
    let (dir, _) = experiment(&manifest);
    let plan = weightlab_ok_beside(dir.path(), &["plan", "exp.toml", "-o", "shared"]);
    assert!(plan.contains("method \"FLoWN wrong\" seed 0") && plan.contains("(fit shared with method \"FLoWN\" seed 0)"), "{plan}");
    let json: serde_json::Value = serde_json::from_str(&weightlab_ok_beside(dir.path(), &["plan", "exp.toml", "-o", "shared", "--json", "-q"])).expect("plan --json");
    let shared_with = |name: &str| json["stages"].as_array().unwrap().iter().find(|s| s["stage"] == format!("method \"{name}\" seed 0")).map(|s| s["shares_fit_with"].clone());
    assert_eq!((shared_with("FLoWN 3"), shared_with("FLoWN")), (Some(serde_json::json!("method \"FLoWN\" seed 0")), Some(serde_json::Value::Null)));
    let shared = weightlab_ok_beside(dir.path(), &["run", "exp.toml", "-o", "shared", "-v"]);
    for (name, from) in [("D2NWG wrong", "D2NWG"), ("FLoWN wrong", "FLoWN"), ("FLoWN 3", "FLoWN")] {
        assert!(shared.contains(&format!("method \"{name}\" seed 0 drew its samples from the fit of method \"{from}\" seed 0")), "{shared}");
    }
    let stage = |run: &Path, name: &str| -> PathBuf {
        std::fs::read_dir(run.join("stages"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::read_to_string(p.join("stage.json")).is_ok_and(|t| t.contains(&format!("\"stage\": \"method \\\"{name}\\\" seed 0\""))))
            .unwrap_or_else(|| panic!("no stage of {name} in {}", run.display()))
    };
    let record = std::fs::read_to_string(stage(&dir.path().join("shared"), "FLoWN 3").join("stage.json")).unwrap();
    assert!(record.contains("\"fit_shared_with\": \"FLoWN\"") && record.contains("\"samples\": 3"), "{record}");
    // The same run with the sharing stages computed alone: their methods are stored already,
    // so each runs in a job of its own.
    let status = std::process::Command::new("cp").args(["-r", "shared", "alone"]).current_dir(dir.path()).status().unwrap();
    assert!(status.success());
    for name in ["D2NWG wrong", "FLoWN wrong", "FLoWN 3"] {
        std::fs::remove_dir_all(stage(&dir.path().join("alone"), name)).unwrap();
    }
    let alone = weightlab_ok_beside(dir.path(), &["run", "exp.toml", "-o", "alone", "-v"]);
    assert!(alone.contains("Running method \"FLoWN wrong\" and \"FLoWN 3\" (flown) seed 0") && alone.contains("Running method \"D2NWG wrong\" (d2nwg)"), "{alone}");
    let differences = stage_differences(&dir.path().join("shared"), &dir.path().join("alone"));
    assert!(differences.is_empty(), "a control sharing its method's fit stored other bits than alone: {differences:?}");
}
