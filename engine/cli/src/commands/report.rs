use std::path::PathBuf;

use weightlab_pipeline::output;

/// `weightlab report`: re-render from finished run folders, without recomputing.
pub fn report(runs: &[PathBuf], output_dir: Option<PathBuf>, template: Option<PathBuf>) -> anyhow::Result<i32> {
    let out = output_dir.unwrap_or_else(|| runs[0].clone());
    let path = weightlab_pipeline::report::render_runs(runs, &out, template.as_deref())?;
    output::status("Report", &path.display().to_string());
    Ok(0)
}

/// `weightlab export`: a method's samples as PyTorch state_dicts.
pub fn export(run: &std::path::Path, method: &str, to: &std::path::Path) -> anyhow::Result<i32> {
    match weightlab_pipeline::export::export(run, method, to) {
        Ok(done) => {
            output::status("Exported", &format!("{} samples of \"{method}\" ({} seed(s)) to {}", done.files.len(), done.seeds, to.display()));
            Ok(0)
        }
        Err(e) => {
            output::error(&e.to_string());
            Ok(super::INVALID)
        }
    }
}

/// `weightlab runs`: the history of an output folder.
pub fn runs(target: &std::path::Path) -> anyhow::Result<i32> {
    use weightlab_pipeline::history;
    let folder = if target.is_file() {
        let loaded = match super::load_manifest(target, &[]) {
            Ok(l) => l,
            Err(code) => return Ok(code),
        };
        weightlab_pipeline::Run::new(loaded, None)?.output
    } else {
        target.to_path_buf()
    };
    let entries = history::entries(&folder);
    if entries.is_empty() {
        println!("{} has no run history yet (a run of weightlab that keeps one writes {}/history/)", folder.display(), folder.display());
        return Ok(0);
    }
    println!("{:<28} {:<10} {:>9}  accuracy (mean of samples) · changes against the run before", "run", "status", "seconds");
    let mut previous: Option<String> = None;
    for entry in entries.iter().map(|e| history::summary(e)) {
        let changes = match &previous {
            None => "(first)".to_string(),
            Some(before) => {
                let d = history::diff(before, &entry.manifest);
                if d.is_empty() { "(same manifest)".to_string() } else { d.join("  ") }
            }
        };
        let line = format!("{:<28} {:<10} {:>9.1}  {} · {changes}", entry.id, entry.status, entry.seconds, entry.accuracy);
        println!("{}", output::plain(&line).replace('\n', " "));
        previous = Some(entry.manifest);
    }
    output::result("Newest", &folder.join("report.html").display().to_string());
    Ok(0)
}
