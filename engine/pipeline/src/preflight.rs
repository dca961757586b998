//! Checks that need the user's files, made before any stage runs: datasets read from files
//! load, declared networks fit their data layer by layer, and imported state_dicts (zoos and
//! methods) have the architecture's tensors. Every problem is a located diagnostic — the
//! manifest key at fault, with the file, array, tensor or layer in the message — so a wrong
//! shape costs no training.

use weightlab_compute::{Arch, Dataset};
use weightlab_manifest::spans::Seg;
use weightlab_manifest::{ArchSpec, Diagnostic, Loaded, path};

/// The datasets the checks read, by name: the run takes them rather than reading them again.
pub type Read = std::collections::BTreeMap<String, Dataset>;

/// The problems the checks find, and the datasets they read (printed with the plugin-config
/// problems by [`crate::config_check::before_run`]).
pub fn diagnostics(loaded: &Loaded) -> (Vec<Diagnostic>, Read) {
    let m = &loaded.manifest;
    let spans = loaded.spans();
    let mut out = Vec::new();
    // Datasets that need reading: those from files, and those a declared network or an import
    // needs the shapes of.
    let needs_shapes = |name: &str| m.zoo.values().any(|z| z.data == name && (matches!(z.arch, ArchSpec::Sequential { .. }) || z.import.is_some()));
    let mut datasets: std::collections::BTreeMap<&str, Option<Dataset>> = std::collections::BTreeMap::new();
    for (name, spec) in &m.data {
        if !(spec.source.descriptor().from_files || needs_shapes(name)) {
            continue;
        }
        let loaded_data = match weightlab_compute::data::load(spec, &loaded.base_dir) {
            Ok(d) => Some(d),
            Err(e) => {
                let at = if spec.path.is_some() { spans.value(&path!["data", name.as_str(), "path"]) } else { spans.value(&path!["data", name.as_str()]) };
                out.push(Diagnostic::new(format!("`data.{name}`: {e}"), at));
                None
            }
        };
        datasets.insert(name, loaded_data);
    }
    let mut archs: std::collections::BTreeMap<&str, Arch> = std::collections::BTreeMap::new();
    for (name, zoo) in &m.zoo {
        let Some(Some(data)) = datasets.get(zoo.data.as_str()) else { continue };
        let arch = match Arch::new(&zoo.arch, data) {
            Ok(a) => a,
            Err(e) => {
                let at: Vec<Seg> = path!["zoo", name.as_str(), "arch"].into_iter().chain(e.at.iter().cloned()).collect();
                out.push(Diagnostic::new(format!("zoo `{name}`: {}", e.message), spans.value(&at)).with_help(Some(format!("the data `{}` gives examples of shape {:?}", zoo.data, data.input_shape))));
                continue;
            }
        };
        if let Some(Err(e)) = zoo.import.as_ref().map(|folder| read_all(&arch, &loaded.base_dir.join(folder))) {
            out.push(Diagnostic::new(format!("zoo `{name}`: {e}"), spans.value(&path!["zoo", name.as_str(), "import"])));
            continue;
        }
        archs.insert(name, arch);
    }
    for (i, method) in m.method.iter().enumerate() {
        let (Some(folder), Some(arch)) = (&method.import, archs.get(method.zoo.as_str())) else { continue };
        if let Err(e) = read_all(arch, &loaded.base_dir.join(folder)) {
            out.push(
                Diagnostic::new(format!("method `{}`: {e}", method.name), spans.value(&path!["method", i, "import"]))
                    .with_help(Some(format!("samples must be state_dicts of zoo `{}`'s architecture", method.zoo))),
            );
        }
    }
    let read = datasets.into_iter().filter_map(|(name, d)| Some((name.to_string(), d?))).collect();
    (out, read)
}

/// Reads every state_dict of `dir` against `arch` (the first problem wins).
fn read_all(arch: &Arch, dir: &std::path::Path) -> Result<(), weightlab_compute::zoo::store::StoreError> {
    for file in weightlab_compute::zoo::store::state_dict_files(dir)? {
        weightlab_compute::zoo::store::read_state_dict(arch, &file)?;
    }
    Ok(())
}
