use std::path::PathBuf;

use weightlab_pipeline::output;

/// `weightlab validate`: every manifest is checked — its own keys and the files it extends,
/// its sweeps expanded, then every plugin it names is loaded and each method's config checked
/// against the plugin's schema; all errors are printed. `print` writes each effective manifest
/// to stdout.
pub fn validate(manifests: &[PathBuf], print: bool, sets: &[String]) -> anyhow::Result<i32> {
    let mut code = 0;
    for path in manifests {
        let loaded = match super::load_manifest(path, sets) {
            Ok(l) => l,
            Err(c) => {
                code = c;
                continue;
            }
        };
        if print {
            print!("{}", loaded.text);
            if !loaded.text.ends_with('\n') {
                println!();
            }
        }
        match weightlab_pipeline::config_check::before_run(&loaded, &weightlab_pipeline::plugins::Plugins::resolve(&loaded), true).map(drop) {
            Ok(()) => {
                let sweeps = match loaded.expansion.variants.len() {
                    0 => String::new(),
                    n => format!(" ({n} variants from {} sweep {})", loaded.expansion.axes.len(), if loaded.expansion.axes.len() == 1 { "axis" } else { "axes" }),
                };
                output::status("Valid", &format!("{}{sweeps}", path.display()));
            }
            Err(_) => code = super::INVALID,
        }
    }
    Ok(code)
}
