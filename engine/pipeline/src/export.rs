//! `weightlab export`: a method's samples as state_dicts that PyTorch loads as is
//! (`model.load_state_dict(safetensors.torch.load_file(path))`), with the zoo's architecture's
//! names and shapes — so a generated model can be fine-tuned, inspected or shipped outside
//! weightlab.

use std::path::{Path, PathBuf};

use weightlab_manifest::StageKind;

use crate::error::{Error, Result, io};
use crate::executor::{Run, RunInfo};

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    pub seeds: usize,
}

/// Longest method name kept whole in a file name (file names have at most 255 bytes).
const STEM_CHARS: usize = 100;

/// `method` made file-safe (ASCII letters, digits, `-`, `_`); a longer name is cut and told
/// apart from others cut alike by a hash of the whole.
fn file_stem(method: &str) -> String {
    let safe: String = method.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if safe.len() <= STEM_CHARS {
        return safe;
    }
    format!("{}-{}", &safe[..STEM_CHARS], &weightlab_host::code::sha256_hex(method.as_bytes())[..12])
}

/// Writes every finished sample of method `method` in the run folder `run_dir` into `to`, one
/// file per sample: `<method>-seed<S>-<NNNN>.safetensors` (the method's name made file-safe).
pub fn export(run_dir: &Path, method: &str, to: &Path) -> Result<Exported> {
    let info = RunInfo::read(run_dir)?;
    let saved = run_dir.join("manifest.toml");
    let text = weightlab_manifest::files::read_manifest(&saved).map_err(io("reading", &saved))?;
    let loaded = weightlab_manifest::load_str(&info.manifest, &text, &[], &info.base_dir, &crate::catalog())?;
    let names: Vec<String> = loaded.manifest.method.iter().map(|m| m.name.clone()).collect();
    let index = names.iter().position(|n| n == method).ok_or_else(|| Error::Unknown {
        what: "method",
        name: method.to_string(),
        hint: weightlab_manifest::suggest::suggest(method, "methods of this run", &names),
    })?;
    if loaded.manifest.method[index].is_probe() {
        return Err(Error::NotApplicable { method: method.to_string(), reason: "is a probe: it predicts properties of models and has no samples to export".into() });
    }
    let zoo_name = loaded.manifest.method[index].zoo.clone();
    let mut run = Run::new(loaded, Some(run_dir.to_path_buf()))?;
    if let Ok(info) = crate::RunInfo::read(run_dir) {
        run.use_store(info.store_of(run_dir));
    }
    let layout = weightlab_compute::zoo::store::read_layout(&run.stage_dir(|k| matches!(k, StageKind::Zoo { name } if *name == zoo_name))?)?;
    std::fs::create_dir_all(to).map_err(io("creating", to))?;
    let stem = file_stem(method);
    let mut files = Vec::new();
    let mut seeds = 0;
    for stage in run.plan.stages.iter().filter(|s| matches!(s.kind, StageKind::Method { index: i, .. } if i == index)) {
        let StageKind::Method { seed, .. } = stage.kind else { continue };
        if !run.store.is_done(stage) {
            crate::output::warn(&format!("{} has not finished: its samples are not exported", stage.label()));
            continue;
        }
        let (n, samples) = crate::stages::method::read_samples(&run.store.dir(stage))?;
        let p = layout.len();
        if samples.len() != n * p {
            return Err(Error::Format { path: run.store.dir(stage), reason: format!("{n} samples of {} values do not match the zoo's {p} parameters", samples.len() / n.max(1)) });
        }
        seeds += 1;
        for (i, flat) in samples.chunks_exact(p.max(1)).enumerate() {
            let path = to.join(format!("{stem}-seed{seed}-{i:04}.safetensors"));
            std::fs::write(&path, weightlab_compute::zoo::store::to_safetensors(&layout, flat, None)).map_err(io("writing", &path))?;
            files.push(path);
        }
    }
    if seeds == 0 {
        return Err(Error::Unfinished(format!("method `{method}` has no finished samples in {}", run_dir.display())));
    }
    Ok(Exported { files, seeds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_name_becomes_a_short_safe_file_stem() {
        assert_eq!(file_stem("noise σ=0.01"), "noise___0_01");
        assert_eq!(file_stem("../../etc/x"), "______etc_x");
        let (a, b) = (file_stem(&"c".repeat(5000)), file_stem(&"c".repeat(5001)));
        assert!(a.len() < 120 && a.starts_with("ccc") && a != b, "{a} {b}");
    }
}
