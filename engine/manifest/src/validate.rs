//! Checks that need more than one section: references between sections, splits that cannot be
//! made, names used twice, architectures that do not fit their data. Each finding carries the
//! span of the key at fault and, for names, a did-you-mean.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::path;
use crate::spans::Spans;
use crate::suggest::suggest;
use crate::types::{DataSource, Manifest, PROBE_TARGETS, Role};

/// What the engine offers that a manifest may name: filled from the registries of the
/// pipeline (plugins found, metrics and plots declared), so the manifest crate needs none of
/// their code.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Names of the built-in plugins.
    pub plugins: Vec<String>,
    /// Keys of the metric registry (`[evaluate] metrics`).
    pub metrics: Vec<String>,
    /// Ids of the plot registry (`[report] plots`).
    pub plots: Vec<String>,
    /// The plugin names in folders a manifest adds (`[experiment] plugin_path`): the engine
    /// says how it finds plugins, so this crate never scans a folder itself.
    pub plugins_in: fn(&[PathBuf]) -> Vec<String>,
}

impl Default for Catalog {
    /// Nothing known: no plugins, metrics or plots, and no plugin in any folder.
    fn default() -> Self {
        Self { plugins: Vec::new(), metrics: Vec::new(), plots: Vec::new(), plugins_in: |_| Vec::new() }
    }
}

/// What the validator needs to know about the world outside the manifest.
pub struct Context<'a> {
    /// Folder that relative paths in the manifest are resolved against.
    pub base_dir: &'a Path,
    pub catalog: &'a Catalog,
}

/// The folders a manifest's `[experiment] plugin_path` names, resolved against `base_dir`.
fn manifest_plugin_dirs(doc: &serde_json::Value, base_dir: &Path) -> Vec<PathBuf> {
    doc.pointer("/experiment/plugin_path").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()).map(|d| base_dir.join(d)).collect()
}

/// Why `name` cannot be one folder's name (`None`: it can): an experiment's name becomes the
/// folder `reports/<name>`, so it must not climb out of `reports/`, be absolute, or carry
/// characters that act on a terminal or a shell script.
pub fn unsafe_name(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty".into());
    }
    if name == "." || name == ".." || name.contains(['/', '\\']) {
        return Some(format!("\"{}\" is not a single folder name", name.escape_default()));
    }
    if name.chars().any(char::is_control) {
        return Some(format!("\"{}\" holds control characters", name.escape_default()));
    }
    if name.len() > 128 {
        return Some(format!("is {} bytes long (at most 128)", name.len()));
    }
    None
}

/// Why the relative path `p` would lead outside the folder it is relative to (`None`: it stays
/// inside): an absolute path, a `..` component, or control characters.
pub fn escaping_path(p: &Path) -> Option<String> {
    use std::path::Component;
    let shown = p.display().to_string().escape_default().to_string();
    if p.components().any(|c| matches!(c, Component::RootDir | Component::Prefix(_))) {
        return Some(format!("\"{shown}\" is absolute"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Some(format!("\"{shown}\" climbs out with `..`"));
    }
    if p.to_string_lossy().chars().any(char::is_control) {
        return Some(format!("\"{shown}\" holds control characters"));
    }
    None
}

/// True when a `plugin = "…"` value names a file rather than a built-in plugin.
pub fn is_plugin_path(plugin: &str) -> bool {
    plugin.ends_with(".wasm") || plugin.contains('/')
}

/// Checks the names one section uses to refer to another (a zoo's dataset, a method's zoo
/// and plugin, method names), on the parsed document: they run even when the schema pass found
/// other problems, so one pass reports them all.
pub fn references(doc: &serde_json::Value, spans: &Spans, ctx: &Context) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let names = |section: &str| -> Vec<String> { doc.get(section).and_then(|v| v.as_object()).map(|o| o.keys().cloned().collect()).unwrap_or_default() };
    let (data_names, zoo_names) = (names("data"), names("zoo"));
    for (name, zoo) in doc.get("zoo").and_then(|v| v.as_object()).into_iter().flatten() {
        if let Some(data) = zoo.get("data").and_then(|v| v.as_str()).filter(|d| !data_names.iter().any(|n| n == d)) {
            out.push(Diagnostic::new(format!("zoo `{name}` refers to dataset `{data}`, which is not defined"), spans.value(&path!["zoo", name.as_str(), "data"])).with_help(Some(suggest(
                data,
                "datasets",
                &data_names,
            ))));
        }
    }
    let plugin_dirs = manifest_plugin_dirs(doc, ctx.base_dir);
    for (i, dir) in plugin_dirs.iter().enumerate() {
        if !dir.is_dir() {
            out.push(Diagnostic::new(format!("`experiment.plugin_path`: folder `{}` does not exist", dir.display()), spans.value(&path!["experiment", "plugin_path", i])));
        }
    }
    let mut known = ctx.catalog.plugins.clone();
    known.extend((ctx.catalog.plugins_in)(&plugin_dirs));
    let mut seen = BTreeSet::new();
    for (i, method) in doc.get("method").and_then(|v| v.as_array()).into_iter().flatten().enumerate() {
        let at = |key: &str| spans.value(&path!["method", i, key]);
        let text = |key: &str| method.get(key).and_then(|v| v.as_str());
        let name = text("name").unwrap_or_default();
        if text("name").is_some_and(|n| n.trim().is_empty()) {
            out.push(Diagnostic::new("method name is empty", at("name")));
        } else if text("name").is_some() && !seen.insert(name) {
            out.push(Diagnostic::new(format!("two methods are named `{name}`"), at("name")).with_help(Some("names identify methods in tables and the report; make them unique".into())));
        }
        if let Some(zoo) = text("zoo").filter(|z| !zoo_names.iter().any(|n| n == z)) {
            out.push(Diagnostic::new(format!("method `{name}` refers to zoo `{zoo}`, which is not defined"), at("zoo")).with_help(Some(suggest(zoo, "zoos", &zoo_names))));
        }
        for (j, source) in method.get("zoos").and_then(|v| v.as_array()).into_iter().flatten().enumerate() {
            if let Some(zoo) = source.as_str().filter(|z| !zoo_names.iter().any(|n| n == z)) {
                out.push(
                    Diagnostic::new(format!("method `{name}` learns from zoo `{zoo}`, which is not defined"), spans.value(&path!["method", i, "zoos", j]))
                        .with_help(Some(suggest(zoo, "zoos", &zoo_names))),
                );
            }
        }
        if let Some(dir) = text("import") {
            let full = ctx.base_dir.join(dir);
            if text("plugin").is_some() {
                out.push(
                    Diagnostic::new(format!("method `{name}` names both a `plugin` and an `import` folder"), at("import"))
                        .with_help(Some("a method's samples come from its plugin or from a folder of state_dicts: keep one".into())),
                );
            } else if !full.is_dir() {
                out.push(Diagnostic::new(format!("method `{name}`: import folder `{}` does not exist", full.display()), at("import")));
            }
            for key in ["config", "target", "role", "sha256", "zoos", "embed_labels", "unseen_classes", "wrong_condition", "shuffle_labels", "samples"] {
                if method.get(key).is_some() {
                    out.push(Diagnostic::new(format!("method `{name}`: `{key}` is for plugins; imported samples are the files of `import`"), at(key)).with_help(Some(format!("remove `{key}`"))));
                }
            }
            continue;
        }
        match text("plugin") {
            None if method.get("plugin").is_none() => {
                out.push(
                    Diagnostic::new(format!("method `{name}` names no `plugin`"), spans.value(&path!["method", i]))
                        .with_help(Some("add `plugin = \"noise\"` (see `weightlab plugins`), or `import = \"folder/\"` for state_dicts made elsewhere".into())),
                );
            }
            Some(plugin) if is_plugin_path(plugin) => {
                let full = ctx.base_dir.join(plugin);
                if !full.is_file() {
                    out.push(
                        Diagnostic::new(format!("method `{name}`: plugin file `{}` does not exist", full.display()), at("plugin"))
                            .with_help(Some("build it with `weightlab plugin build <crate-dir>`".into())),
                    );
                }
            }
            Some(plugin) if !known.iter().any(|p| p == plugin) => {
                out.push(Diagnostic::new(format!("method `{name}`: unknown plugin `{plugin}`"), at("plugin")).with_help(Some(suggest(
                    plugin,
                    "plugins found (built-in, `experiment.plugin_path`, WEIGHTLAB_PLUGIN_PATH; or give a path to a .wasm file)",
                    &known,
                ))));
            }
            _ => {}
        }
    }
    out
}

/// A probe's target, label embeddings and unseen classes against its zoo.
fn probe_checks(m: &Manifest, i: usize, spans: &Spans) -> Vec<Diagnostic> {
    let method = &m.method[i];
    let name = &method.name;
    let at = |key: &str| spans.value(&path!["method", i, key]);
    let mut out = Vec::new();
    let Some(target) = &method.target else {
        if method.role == Some(Role::Probe) {
            out.push(
                Diagnostic::new(format!("method `{name}` is a probe but names no `target`"), at("role"))
                    .with_help(Some(format!("say what it predicts: `target = \"classes\"` (one of {})", PROBE_TARGETS.join(", ")))),
            );
        }
        if method.embed_labels.is_some() || !method.unseen_classes.is_empty() {
            out.push(Diagnostic::new(format!("method `{name}`: `embed_labels` and `unseen_classes` are for probes (set `target`)"), at("embed_labels")));
        }
        return out;
    };
    if matches!(method.role, Some(Role::Generator | Role::Baseline)) {
        out.push(Diagnostic::new(format!("method `{name}` has a `target`, which only probes have, but says role = \"{}\"", method.role.map_or("", Role::name)), at("target")));
    }
    if !PROBE_TARGETS.contains(&target.as_str()) {
        out.push(Diagnostic::new(format!("method `{name}`: unknown probe target `{target}`"), at("target")).with_help(Some(suggest(target, "targets", PROBE_TARGETS))));
        return out;
    }
    let Some(zoo) = m.zoo.get(&method.zoo) else {
        return out;
    };
    let tree = zoo.tree.as_ref();
    let varies = match target.as_str() {
        "classes" | "parent" => tree.is_some(),
        "lr" => tree.and_then(|t| t.lr.as_ref()).is_some_and(|c| c.varies()),
        "epochs" => tree.is_some_and(|t| t.epochs.varies()),
        _ => true,
    };
    if !varies {
        let help = match target.as_str() {
            "classes" | "parent" => "give the zoo a model tree: `tree = { roots = 3, classes = 2 }`".to_string(),
            t => format!("give the zoo's tree a list, e.g. `tree.{t} = [..]`, cycled over its children"),
        };
        out.push(Diagnostic::new(format!("method `{name}`: zoo `{}` has no `{target}` label: it does not vary between its models", method.zoo), at("target")).with_help(Some(help)));
    }
    if method.embed_labels.is_some() && target != "classes" {
        out.push(Diagnostic::new(format!("method `{name}`: `embed_labels` needs `target = \"classes\"` (class names are what is embedded)"), at("embed_labels")));
    }
    if !method.unseen_classes.is_empty() {
        if method.embed_labels.is_none() {
            out.push(
                Diagnostic::new(format!("method `{name}`: `unseen_classes` are scored zero-shot, which needs `embed_labels`"), at("unseen_classes"))
                    .with_help(Some("add `embed_labels = \"minilm\"`".into())),
            );
        }
        // Data read from files has its classes counted when read (the data stage checks then).
        let Some(classes) = m.data.get(&zoo.data).and_then(|d| d.source.descriptor().class_count(d)) else { return out };
        if let Some(bad) = method.unseen_classes.iter().find(|&&c| c >= classes) {
            out.push(Diagnostic::new(format!("method `{name}`: unseen class {bad} does not exist (the dataset has {classes} classes)"), at("unseen_classes")));
        }
        if method.unseen_classes.len() >= classes {
            out.push(Diagnostic::new(format!("method `{name}`: every class is unseen: nothing is left to learn from"), at("unseen_classes")));
        }
    }
    out
}

/// Checks across sections on the typed manifest: splits, sizes, what fits which data. Names
/// that refer across sections are checked by [`references`].
pub fn validate(m: &Manifest, spans: &Spans, ctx: &Context) -> Vec<Diagnostic> {
    let mut out = Vec::new();

    if m.experiment.seeds.is_empty() {
        out.push(Diagnostic::new("`seeds` is empty: every method needs at least one seed", spans.value(&path!["experiment", "seeds"])).with_help(Some("for example `seeds = [0, 1, 2]`".into())));
    }
    let unique_seeds: BTreeSet<_> = m.experiment.seeds.iter().collect();
    if unique_seeds.len() != m.experiment.seeds.len() {
        out.push(Diagnostic::new("`seeds` lists a seed twice", spans.value(&path!["experiment", "seeds"])));
    }

    if let Some(problem) = unsafe_name(&m.experiment.name) {
        out.push(
            Diagnostic::new(format!("`experiment.name` {problem}: it names the output folder `reports/<name>`"), spans.value(&path!["experiment", "name"]))
                .with_help(Some("use letters, digits, spaces and `-_.`, e.g. `name = \"memorization\"`".into())),
        );
    }
    if let Some(o) = &m.experiment.output
        && let Some(problem) = escaping_path(o)
    {
        out.push(
            Diagnostic::new(format!("`experiment.output` {problem}: a manifest writes only below its own folder"), spans.value(&path!["experiment", "output"]))
                .with_help(Some("give a relative folder such as `output = \"reports/mine\"`, or choose any folder with `--output` on the command line".into())),
        );
    }

    if let Some(c) = &m.cluster {
        let values = [("partition", c.partition.as_deref()), ("time", c.time.as_deref()), ("mem", c.mem.as_deref())];
        for (key, value) in values.into_iter().filter_map(|(k, v)| Some((k, v?))) {
            if let Some(problem) = crate::cluster::value_problem(key, value) {
                out.push(Diagnostic::new(format!("`cluster.{key}`: {problem}"), spans.value(&path!["cluster", key])));
            }
        }
        for (i, line) in c.sbatch.iter().enumerate() {
            if let Some(problem) = crate::cluster::value_problem("sbatch", line) {
                out.push(Diagnostic::new(format!("`cluster.sbatch`: {problem}"), spans.value(&path!["cluster", "sbatch", i])));
            }
        }
    }

    if let Err(e) = crate::types::parse_device(&m.experiment.device) {
        out.push(Diagnostic::new(format!("`experiment.device`: {e}"), spans.value(&path!["experiment", "device"])).with_help(Some("`--device` on the command line overrides it".into())));
    }

    for (name, data) in &m.data {
        for (key, v) in [("train_subset", data.train_subset), ("test_subset", data.test_subset)] {
            if v == Some(0) {
                out.push(Diagnostic::new(format!("`data.{name}.{key}` is 0: no examples would be left"), spans.value(&path!["data", name.as_str(), key])));
            }
        }
        let source = data.source.descriptor();
        if !source.procedural {
            let wants_file = data.source == DataSource::Tensors;
            match &data.path {
                Some(p) => {
                    let full = ctx.base_dir.join(p);
                    let (ok, what) = if wants_file { (full.is_file(), "file") } else { (full.is_dir(), "folder") };
                    if !ok {
                        out.push(Diagnostic::new(format!("`data.{name}.path`: {what} `{}` does not exist", full.display()), spans.value(&path!["data", name.as_str(), "path"])));
                    }
                }
                None if source.from_files => out.push(
                    Diagnostic::new(format!("`data.{name}`: `{}` data is read from your files, and `path` is missing", source.name), spans.value(&path!["data", name.as_str()]))
                        .with_help(Some(if wants_file { "add `path = \"data.npz\"` (relative to this manifest)".into() } else { "add `path = \"folder/\"` (relative to this manifest)".into() })),
                ),
                None => {}
            }
            if data.source == DataSource::ImageFolder && data.size.is_none_or(|[h, w]| h == 0 || w == 0) {
                out.push(
                    Diagnostic::new(format!("`data.{name}`: `image-folder` data needs `size`, the height and width images are resized to"), spans.value(&path!["data", name.as_str()]))
                        .with_help(Some("add `size = [32, 32]`".into())),
                );
            }
            if data.source == DataSource::ImageFolder && !matches!(data.channels, 1 | 3) {
                out.push(Diagnostic::new(
                    format!("`data.{name}.channels` = {}: images are read as 1 (grey) or 3 (RGB) channels", data.channels),
                    spans.value(&path!["data", name.as_str(), "channels"]),
                ));
            }
            if source.from_files && data.tasks.is_some() {
                out.push(
                    Diagnostic::new(
                        format!("`data.{name}.tasks`: task families are made from built-in sources; `{}` data is used as it is", source.name),
                        spans.value(&path!["data", name.as_str(), "tasks"]),
                    )
                    .with_help(Some("remove `tasks`".into())),
                );
            }
        } else if data.samples < 8 {
            out.push(Diagnostic::new(format!("`data.{name}.samples` = {} is too small to split into train and test", data.samples), spans.value(&path!["data", name.as_str(), "samples"])));
        }
        if !(0.0..0.9).contains(&data.validation) {
            out.push(
                Diagnostic::new(format!("`data.{name}.validation` = {} must be a fraction in [0, 0.9)", data.validation), spans.value(&path!["data", name.as_str(), "validation"]))
                    .with_help(Some("the default, 0.1, keeps a tenth of the training examples for validation".into())),
            );
        }
        if data.shapes == 0 || (data.shapes > 1 && data.source != DataSource::SdfShapes) {
            out.push(
                Diagnostic::new(
                    format!("`data.{name}.shapes` = {} is only meaningful for `sdf-shapes` data, with at least 1 shape", data.shapes),
                    spans.value(&path!["data", name.as_str(), "shapes"]),
                )
                .with_help(Some("remove `shapes`, or use `source = \"sdf-shapes\"`".into())),
            );
        }
        if data.family.is_some() && data.source != DataSource::SdfShapes {
            out.push(
                Diagnostic::new(format!("`data.{name}.family` is only meaningful for `sdf-shapes` data"), spans.value(&path!["data", name.as_str(), "family"]))
                    .with_help(Some("remove `family`, or use `source = \"sdf-shapes\"`".into())),
            );
        }
        if data.shapes > 1 && (data.train_subset.is_some() || data.test_subset.is_some()) {
            out.push(Diagnostic::new(
                format!("`data.{name}`: `train_subset`/`test_subset` cannot split a many-shape dataset; set `samples` (points per shape) instead"),
                spans.value(&path!["data", name.as_str(), "shapes"]),
            ));
        }
        if let Some(tasks) = data.tasks.as_ref().filter(|_| !source.from_files) {
            task_checks(name, data, tasks, spans, &mut out);
        }
        if matches!(data.source, DataSource::Blobs | DataSource::Signals) && data.classes < 2 {
            out.push(Diagnostic::new(format!("`data.{name}.classes` must be at least 2"), spans.value(&path!["data", name.as_str(), "classes"])));
        }
    }

    for (name, zoo) in &m.zoo {
        let at = |key: &str| spans.value(&path!["zoo", name.as_str(), key]);
        if let Some(data) = m.data.get(&zoo.data) {
            let (source, arch) = (data.source.descriptor(), zoo.arch.descriptor());
            if let Err(needs) = (arch.fits)(source.task, &(source.input_shape)(data)) {
                out.push(Diagnostic::new(format!("zoo `{name}`: architecture `{}` cannot be trained on `{}` data", arch.name, source.name), at("arch")).with_help(Some(needs.to_string())));
            }
        }
        if zoo.models == 0 && zoo.import.is_none() {
            out.push(Diagnostic::new(format!("zoo `{name}` has 0 models"), at("models")));
        }
        if zoo.split.is_some() && m.data.get(&zoo.data).is_some_and(|d| d.tasks.is_some()) {
            out.push(
                Diagnostic::new(format!("zoo `{name}`: its data `{}` is a task family, whose tasks split the models (training, held-out and out-of-distribution tasks)", zoo.data), at("split"))
                    .with_help(Some(format!("remove `split`; set `heldout` and `ood` in `data.{}.tasks`", zoo.data))),
            );
        }
        if let Some(split) = &zoo.split {
            if split.train == 0 {
                out.push(Diagnostic::new(format!("zoo `{name}`: the split leaves no training models for the methods"), at("split")));
            }
            if zoo.import.is_none() && split.train + split.heldout > zoo.models {
                out.push(
                    Diagnostic::new(
                        format!("zoo `{name}`: split of {} train + {} held-out models needs {} models, but the zoo has {}", split.train, split.heldout, split.train + split.heldout, zoo.models),
                        at("split"),
                    )
                    .with_help(Some(format!("raise `models` to {} or shrink the split", split.train + split.heldout))),
                );
            }
        }
        if zoo.train.epochs == 0 && zoo.import.is_none() {
            out.push(Diagnostic::new(format!("zoo `{name}`: `train.epochs` is 0"), spans.value(&path!["zoo", name.as_str(), "train", "epochs"])));
        }
        if zoo.train.batch_size == 0 {
            out.push(Diagnostic::new(format!("zoo `{name}`: `train.batch_size` is 0"), spans.value(&path!["zoo", name.as_str(), "train", "batch_size"])));
        }
        if !(zoo.train.lr > 0.0 && zoo.train.lr.is_finite()) {
            out.push(Diagnostic::new(format!("zoo `{name}`: `train.lr` must be a positive number"), spans.value(&path!["zoo", name.as_str(), "train", "lr"])));
        }
        if zoo.keep.last_epochs == 0 || (zoo.import.is_none() && zoo.keep.last_epochs > zoo.train.epochs) {
            out.push(
                Diagnostic::new(
                    format!("zoo `{name}`: `keep.last_epochs` = {} but training runs {} epochs", zoo.keep.last_epochs, zoo.train.epochs),
                    spans.value(&path!["zoo", name.as_str(), "keep", "last_epochs"]),
                )
                .with_help(Some(format!("use a value from 1 to {}", zoo.train.epochs.max(1)))),
            );
        }
        if let Some(c) = &zoo.continuation {
            let at = |key: &str| spans.value(&path!["zoo", name.as_str(), "continue", key]);
            if c.params.is_empty() {
                out.push(
                    Diagnostic::new(format!("zoo `{name}`: `continue.params` is empty: name the parameters that keep training"), at("params"))
                        .with_help(Some("for example `params = [\"layers.1\"]`".into())),
                );
            }
            if c.steps == 0 || c.keep_every == 0 || c.keep_every > c.steps {
                out.push(Diagnostic::new(format!("zoo `{name}`: continued training keeps no snapshot ({} steps, one every {})", c.steps, c.keep_every), at("steps")));
            }
            if zoo.import.is_some() {
                out.push(Diagnostic::new(format!("zoo `{name}`: `continue` trains further, so it cannot be combined with `import`"), at("params")));
            }
        }
        if let Some(tree) = &zoo.tree {
            let at = |key: &str| spans.value(&path!["zoo", name.as_str(), "tree", key]);
            // `None` when the data is not known or its classes are read from files later.
            let classes = m.data.get(&zoo.data).filter(|d| !d.source.descriptor().from_files).map(|d| d.source.descriptor().class_count(d).unwrap_or(0));
            if tree.roots == 0 {
                out.push(Diagnostic::new(format!("zoo `{name}`: a model tree needs at least one root"), at("roots")));
            }
            let epochs = tree.epochs.values();
            if epochs.is_empty() || epochs.contains(&0) {
                out.push(Diagnostic::new(format!("zoo `{name}`: `tree.epochs` is 0 or empty: children would equal their root"), at("epochs")));
            }
            if let Some(lr) = &tree.lr {
                let lrs = lr.values();
                if lrs.is_empty() || lrs.iter().any(|v| !(*v >= 0.0 && v.is_finite())) {
                    out.push(Diagnostic::new(format!("zoo `{name}`: `tree.lr` must hold numbers ≥ 0 (0: children stay copies of their root, a control)"), at("lr")));
                }
            }
            match classes {
                Some(0) => out.push(Diagnostic::new(format!("zoo `{name}`: model trees fine-tune on class subsets, so they need classification data"), at("classes"))),
                Some(n) if tree.classes == 0 || tree.classes > n => out.push(
                    Diagnostic::new(format!("zoo `{name}`: `tree.classes` = {} but the dataset has {n} classes", tree.classes), at("classes")).with_help(Some(format!("use a value from 1 to {n}"))),
                ),
                _ => {}
            }
            if zoo.import.is_some() || zoo.continuation.is_some() {
                out.push(Diagnostic::new(format!("zoo `{name}`: `tree` cannot be combined with `import` or `continue`"), at("roots")));
            }
        }
        if let Some(import) = &zoo.import {
            let full = ctx.base_dir.join(import);
            if !full.is_dir() {
                out.push(Diagnostic::new(format!("zoo `{name}`: import folder `{}` does not exist", full.display()), at("import")));
            }
        }
    }

    for (i, method) in m.method.iter().enumerate() {
        let at = |key: &str| spans.value(&path!["method", i, key]);
        if method.samples == 0 {
            out.push(Diagnostic::new(format!("method `{}` samples 0 models", method.name), at("samples")));
        }
        let l = &method.limits;
        if !(l.timeout_secs > 0.0 && l.timeout_secs.is_finite()) || l.memory_mib == 0 || l.tensor_memory_mib == 0 || l.fuel == 0 {
            out.push(Diagnostic::new(format!("method `{}`: every limit must be positive", method.name), at("limits")));
        }
        out.extend(probe_checks(m, i, spans));
        out.extend(generation_checks(m, i, spans));
    }
    out.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
    out
}

/// A task family must be one the source can make.
fn task_checks(name: &str, data: &crate::DataSpec, tasks: &crate::TasksSpec, spans: &Spans, out: &mut Vec<Diagnostic>) {
    let at = |key: &str| spans.value(&path!["data", name, "tasks", key]);
    let source = data.source.descriptor();
    if source.task != crate::descriptors::TaskKind::Classification {
        out.push(Diagnostic::new(
            format!("`data.{name}.tasks`: task families are classification tasks, and `{}` is not a classification source", source.name),
            spans.value(&path!["data", name, "tasks"]),
        ));
        return;
    }
    if tasks.train() == 0 {
        out.push(
            Diagnostic::new(format!("`data.{name}.tasks`: {} tasks with {} held-out and {} out-of-distribution leave no training task", tasks.count, tasks.heldout, tasks.ood), at("count"))
                .with_help(Some(format!("raise `count` above {}", tasks.heldout + tasks.ood))),
        );
    }
    if tasks.shots == 0 {
        out.push(Diagnostic::new(format!("`data.{name}.tasks.shots` is 0: a task's support set would be empty"), at("shots")));
    }
    let classes = source.class_count(data).unwrap_or(0);
    match tasks.family {
        crate::TaskFamily::Rotate => {
            if (source.input_shape)(data) != [2] {
                out.push(
                    Diagnostic::new(format!("`data.{name}.tasks`: the `rotate` family rotates 2-D inputs, and `{}` inputs are {:?}", source.name, (source.input_shape)(data)), at("family"))
                        .with_help(Some("use a 2-D source (blobs, moons, circles), or `family = \"classes\"`".into())),
                );
            }
        }
        crate::TaskFamily::Classes => {
            // As the loader does: without a list, OOD tasks use the last two classes.
            let novel = tasks.novel_classes.clone().unwrap_or_else(|| if tasks.ood > 0 { (classes.saturating_sub(2)..classes).collect() } else { Vec::new() });
            if tasks.ways < 2 || tasks.ways > classes {
                out.push(Diagnostic::new(format!("`data.{name}.tasks.ways` = {} must be between 2 and the source's {classes} classes", tasks.ways), at("ways")));
            } else if let Some(c) = novel.iter().find(|&&c| c >= classes) {
                out.push(Diagnostic::new(format!("`data.{name}.tasks.novel_classes`: class {c} does not exist (the source has {classes})"), at("novel_classes")));
            } else if classes.saturating_sub(novel.len()) < tasks.ways {
                out.push(Diagnostic::new(
                    format!("`data.{name}.tasks`: without the novel classes {novel:?}, {} classes are left for {}-way training tasks", classes - novel.len(), tasks.ways),
                    at("novel_classes"),
                ));
            }
            if tasks.per_class < 4 {
                out.push(Diagnostic::new(format!("`data.{name}.tasks.per_class` = {} is too few examples to split into train, validation and test", tasks.per_class), at("per_class")));
            }
        }
    }
}

/// Several source zoos and the wrong-condition control against the method's zoo.
fn generation_checks(m: &Manifest, i: usize, spans: &Spans) -> Vec<Diagnostic> {
    let method = &m.method[i];
    let at = |key: &str| spans.value(&path!["method", i, key]);
    let mut out = Vec::new();
    let data_of = |zoo: &str| m.zoo.get(zoo).map(|z| z.data.clone());
    if !method.zoos.is_empty() {
        if method.is_probe() {
            out.push(Diagnostic::new(format!("method `{}`: probes learn from one zoo; `zoos` is for generators", method.name), at("zoos")));
        }
        if let Some(target) = data_of(&method.zoo) {
            for (j, z) in method.zoos.iter().enumerate() {
                if let Some(d) = data_of(z).filter(|d| *d != target) {
                    out.push(
                        Diagnostic::new(
                            format!("method `{}`: zoo `{z}` is trained on `{d}`, the method's zoo `{}` on `{target}`", method.name, method.zoo),
                            spans.value(&path!["method", i, "zoos", j]),
                        )
                        .with_help(Some("the zoos a method learns from share one dataset (or task family), so their tasks line up".into())),
                    );
                }
            }
        }
    }
    if method.wrong_condition && m.zoo.get(&method.zoo).and_then(|z| m.data.get(&z.data)).is_none_or(|d| d.tasks.is_none()) {
        out.push(
            Diagnostic::new(format!("method `{}`: `wrong_condition` needs a zoo on a task family (`[data.*] tasks`)", method.name), at("wrong_condition"))
                .with_help(Some("conditions exist only for task families".into())),
        );
    }
    out
}
