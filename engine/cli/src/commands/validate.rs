use std::path::PathBuf;

use weightlab_pipeline::output;

/// `weightlab validate`: each manifest checked in one pass (`weightlab_pipeline::validation`),
/// every error printed (as JSON with `json`); `print` writes each effective manifest to stdout.
pub fn validate(manifests: &[PathBuf], print: bool, json: bool, sets: &[String]) -> anyhow::Result<i32> {
    let results: Vec<_> = manifests.iter().map(|path| weightlab_pipeline::validation::validate(path, sets)).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    for v in results.iter().filter(|_| !json) {
        if let (true, Some(text)) = (print, &v.text) {
            print!("{text}{}", if text.ends_with('\n') { "" } else { "\n" });
        }
        v.warnings.iter().for_each(|w| output::warn(w));
        // The located errors come first, rendered with their lines; then those without a place.
        let located = v.rendered.as_ref().map_or(0, |r| r.diagnostics.len());
        v.errors.iter().skip(located).for_each(|e| output::error(&e.message));
        if let Some(rendered) = &v.rendered {
            eprint!("{rendered}");
        }
        if v.valid {
            let sweeps = match v.variants {
                0 => String::new(),
                n => format!(" ({n} variants from {} sweep {})", v.axes, if v.axes == 1 { "axis" } else { "axes" }),
            };
            output::status("Valid", &format!("{}{sweeps}", v.manifest.display()));
        }
    }
    Ok(if results.iter().all(|v| v.valid) { 0 } else { super::INVALID })
}
