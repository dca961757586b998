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
        anyhow::ensure!(target.is_dir(), "{}: no such output folder or manifest", target.display());
        target.to_path_buf()
    };
    if !history::print_table(&folder) {
        return Ok(0);
    }
    output::result("Newest", &folder.join("report.html").display().to_string());
    Ok(0)
}
