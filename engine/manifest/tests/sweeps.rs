//! Sweeps and composition: expansion into named variants (lists, ranges, log ranges, zip,
//! grids, fan-out through references), the cap, stage keys that let an added value run only
//! the new variant, `extends` with overrides, and errors located in the file that holds them.
//! None of it needs libtorch.

use std::path::Path;

use weightlab_manifest::{Catalog, LoadError, Loaded, Plan, load, load_str};

const BASE: &str = r#"[experiment]
name = "t"
seeds = [0, 1]

[data.blobs]
source = "blobs"

[zoo.mlp]
data = "blobs"
arch = { kind = "mlp", hidden = [8] }
models = 8

[[method]]
name = "noise"
plugin = "noise"
zoo = "mlp"
config = { sigma = 0.01 }

[[method]]
name = "copy"
plugin = "copy"
zoo = "mlp"
"#;

fn catalog() -> Catalog {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    Catalog { plugins: names(&["copy", "noise", "average"]), metrics: names(&["accuracy", "novelty"]), plots: names(&["weight-pca"]), ..Catalog::default() }
}

fn load_text(text: &str, sets: &[&str]) -> Result<Loaded, LoadError> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load_str(Path::new("exp.toml"), text, &sets, Path::new("."), &catalog())
}

fn ok(text: &str, sets: &[&str]) -> Loaded {
    load_text(text, sets).unwrap_or_else(|e| panic!("should load:\n{e}"))
}

fn error_of(text: &str, sets: &[&str]) -> String {
    match load_text(text, sets) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn method_names(l: &Loaded) -> Vec<String> {
    l.manifest.method.iter().map(|m| m.name.clone()).collect()
}

fn sigma(l: &Loaded, i: usize) -> f64 {
    l.manifest.method[i].config["sigma"].as_float().unwrap()
}

#[test]
fn a_list_sweep_expands_into_named_variants_in_place() {
    let l = ok(&BASE.replace("sigma = 0.01", "sigma = { sweep = [0.01, 0.05, 0.1] }"), &[]);
    assert_eq!(method_names(&l), ["noise[sigma=0.01]", "noise[sigma=0.05]", "noise[sigma=0.1]", "copy"]);
    assert_eq!((sigma(&l, 0), sigma(&l, 1), sigma(&l, 2)), (0.01, 0.05, 0.1));
    assert_eq!(l.expansion.axes.len(), 1);
    assert_eq!(l.expansion.variants.len(), 3);
    let v = l.expansion.variant("method", "noise[sigma=0.05]").unwrap();
    assert_eq!((v.base.as_str(), v.params[0].key.as_str(), v.params[0].number()), ("noise", "method.noise.config.sigma", Some(0.05)));
    // The effective manifest keeps the sweep as written.
    assert!(l.text.contains("sweep = [0.01, 0.05, 0.1]"));
}

#[test]
fn ranges_linear_log_and_integer() {
    let l = ok(&BASE.replace("sigma = 0.01", "sigma = { sweep = { from = 0.1, to = 0.5, steps = 5 } }"), &[]);
    assert_eq!((0..5).map(|i| sigma(&l, i)).collect::<Vec<_>>(), [0.1, 0.2, 0.3, 0.4, 0.5], "no 0.30000000000000004");
    assert_eq!(method_names(&l)[2], "noise[sigma=0.3]");
    let l = ok(&BASE.replace("sigma = 0.01", "sigma = { sweep = { from = 0.001, to = 1.0, steps = 4, scale = \"log\" } }"), &[]);
    assert_eq!((0..4).map(|i| sigma(&l, i)).collect::<Vec<_>>(), [0.001, 0.01, 0.1, 1.0]);
    // Extreme values name their variants in exponent form, not in 300 digits.
    let l = ok(&BASE.replace("sigma = 0.01", "sigma = { sweep = { from = 1e-300, to = 1e300, steps = 3, scale = \"log\" } }"), &[]);
    assert_eq!(method_names(&l)[..3], ["noise[sigma=1e-300]", "noise[sigma=1.0]", "noise[sigma=1e300]"]);
    let l = ok(&BASE.replace("models = 8", "models = { sweep = { from = 10, to = 1000, steps = 3, scale = \"log\" } }"), &[]);
    let zoos: Vec<(&str, usize)> = l.expansion.variants.iter().filter(|v| v.section == "zoo").map(|v| (v.name.as_str(), l.manifest.zoo[&v.name].models)).collect();
    assert_eq!(zoos, [("mlp[models=10]", 10), ("mlp[models=100]", 100), ("mlp[models=1000]", 1000)], "integer ends give integers");
}

#[test]
fn sweeping_a_zoo_fans_out_its_methods_and_two_sweeps_form_a_grid() {
    let text = BASE.replace("models = 8", "models = { sweep = [8, 16] }").replace("sigma = 0.01", "sigma = { sweep = [0.01, 0.1] }");
    let l = ok(&text, &[]);
    assert_eq!(method_names(&l), ["noise[sigma=0.01,models=8]", "noise[sigma=0.01,models=16]", "noise[sigma=0.1,models=8]", "noise[sigma=0.1,models=16]", "copy[models=8]", "copy[models=16]"]);
    assert_eq!(l.manifest.method[1].zoo, "mlp[models=16]");
    assert_eq!(l.manifest.zoo["mlp[models=16]"].models, 16);
    assert_eq!(l.expansion.grid(), 4);
    assert_eq!(l.expansion.variants.len(), 2 + 6, "2 zoos and 6 methods");
    // A sweep in the dataset reaches zoos and methods.
    let l = ok(&BASE.replace("source = \"blobs\"", "source = \"blobs\"\nnoise = { sweep = [0.1, 0.5] }"), &[]);
    assert_eq!(l.manifest.zoo["mlp[noise=0.5]"].data, "blobs[noise=0.5]");
    assert_eq!(method_names(&l), ["noise[noise=0.1]", "noise[noise=0.5]", "copy[noise=0.1]", "copy[noise=0.5]"]);
}

#[test]
fn zip_varies_keys_together_even_across_entries() {
    let text = format!(
        "{}\n[sweep]\nzip = [[\"method.noise.config.sigma\", \"zoo.mlp.models\"]]\n",
        BASE.replace("models = 8", "models = { sweep = [8, 16, 32] }").replace("sigma = 0.01", "sigma = { sweep = [0.01, 0.05, 0.1] }")
    );
    let l = ok(&text, &[]);
    assert_eq!(&method_names(&l)[..3], ["noise[sigma=0.01,models=8]", "noise[sigma=0.05,models=16]", "noise[sigma=0.1,models=32]"]);
    assert_eq!(l.manifest.method[2].zoo, "mlp[models=32]");
    assert_eq!(l.expansion.grid(), 3);
    // Methods by index work too; lengths must agree.
    let bad = text.replace("[8, 16, 32]", "[8, 16]").replace("method.noise.config.sigma", "method.0.config.sigma");
    let e = error_of(&bad, &[]);
    assert!(e.contains("zipped sweeps need as many values each") && e.contains("has 3") && e.contains("has 2"), "{e}");
    let e = error_of(&text.replace("\"zoo.mlp.models\"", "\"zoo.mlp.model\""), &[]);
    assert!(e.contains("`zoo.mlp.model`, which is not swept") && e.contains("did you mean `zoo.mlp.models`?"), "{e}");
}

#[test]
fn sweeps_from_the_command_line() {
    let l = ok(BASE, &["method.noise.config.sigma={ sweep = [0.2, 0.4] }"]);
    assert_eq!(&method_names(&l)[..2], ["noise[sigma=0.2]", "noise[sigma=0.4]"]);
}

#[test]
fn the_cap_refuses_large_expansions() {
    let text = BASE.replace("sigma = 0.01", "sigma = { sweep = { from = 0.01, to = 1.0, steps = 30 } }").replace("models = 8", "models = { sweep = [8, 16, 32] }");
    let e = error_of(&text, &[]);
    assert!(e.contains("above `[experiment] max_variants` = 64"), "{e}");
    let raised = text.replace("seeds = [0, 1]", "seeds = [0, 1]\nmax_variants = 200");
    let l = ok(&raised, &[]);
    assert_eq!(l.expansion.variants.len(), 3 + 90 + 3);
    let e = error_of(&raised.replace("max_variants = 200", "max_variants = 50"), &[]);
    assert!(e.contains("exp.toml:4:16"), "points at the cap:\n{e}");
}

#[test]
fn sweep_mistakes_are_located() {
    let cases = [
        ("sigma = { sweep = [] }", "lists no value", "exp.toml:17:20"),
        ("sigma = { sweep = [0.1, 0.1] }", "lists 0.1 twice", "exp.toml:17:20"),
        ("sigma = { sweep = { from = 0.0, to = 1.0, steps = 3, scale = \"log\" } }", "log range needs", "exp.toml:17:20"),
        ("sigma = { sweep = { from = 0.1, to = 1.0 } }", "needs `steps`", "exp.toml:17:20"),
        ("sigma = { sweep = [0.1], values = 2 }", "holds only `sweep`", "exp.toml:17:20"),
        ("sigma = { sweep = \"0.1\" }", "list of values or a range", "exp.toml:17:20"),
        // Refused before a billion values are drawn (that aborted the engine out of memory).
        ("sigma = { sweep = { from = 0.1, to = 1.0, steps = 1000000000 } }", "a range takes at most 10000 steps, not 1000000000", "exp.toml:17:20"),
    ];
    for (replacement, needle, at) in cases {
        let e = error_of(&BASE.replace("sigma = 0.01", replacement), &[]);
        assert!(e.contains(needle) && e.contains(at), "{replacement}: expected `{needle}` at {at}:\n{e}");
    }
    let e = error_of(&BASE.replace("seeds = [0, 1]", "seeds = { sweep = [[0], [1]] }"), &[]);
    assert!(e.contains("sweeps are allowed only in") && e.contains("exp.toml:3:9"), "{e}");
    let e = error_of(&BASE.replace("name = \"copy\"", "name = { sweep = [\"a\", \"b\"] }"), &[]);
    assert!(e.contains("names are not swept"), "{e}");
    // A value a sweep gives is validated like a written one, at the sweep.
    let e = error_of(&BASE.replace("models = 8", "models = { sweep = [8, \"many\"] }"), &[]);
    assert!(e.contains("exp.toml:11:10") && e.contains("\"integer\""), "{e}");
    assert_eq!(e.matches("error:").count(), 1, "one report per place:\n{e}");
}

#[test]
fn adding_a_value_changes_only_the_new_variants_keys() {
    let keys = |text: &str| {
        let l = ok(text, &[]);
        let plan = Plan::new(&l.manifest, &|p| format!("hash-of-{p}"), &["accuracy".to_string()]);
        plan.stages.iter().map(|s| (s.label(), s.key.clone())).collect::<std::collections::BTreeMap<_, _>>()
    };
    let two = keys(&BASE.replace("sigma = 0.01", "sigma = { sweep = [0.01, 0.05] }"));
    let three = keys(&BASE.replace("sigma = 0.01", "sigma = { sweep = [0.01, 0.05, 0.1] }"));
    let new: Vec<&String> = three.iter().filter(|(label, key)| two.get(*label) != Some(key)).map(|(label, _)| label).collect();
    assert_eq!(
        new,
        ["evaluate \"noise[sigma=0.1]\" seed 0", "evaluate \"noise[sigma=0.1]\" seed 1", "method \"noise[sigma=0.1]\" seed 0", "method \"noise[sigma=0.1]\" seed 1", "report"],
        "only the new variant (and the report) is new"
    );
    // The unswept copy, after the sweep in the method list, keeps its keys too.
    assert_eq!(two["method \"copy\" seed 0"], three["method \"copy\" seed 0"]);
}

/// Writes `files` into a fresh folder and returns it.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn extends_merges_tables_and_methods_by_name() {
    let top = r#"extends = ["base.toml", "more.toml"]

[experiment]
seeds = [3]

[zoo.mlp]
models = 12

[[method]]
name = "noise"
config = { sigma = 0.2 }

[[method]]
name = "avg"
plugin = "average"
zoo = "mlp"
"#;
    let more = "[data.blobs]\nsamples = 500\n";
    let dir = folder(&[("base.toml", BASE), ("more.toml", more), ("top.toml", top)]);
    let l = load(&dir.path().join("top.toml"), &[], &catalog()).unwrap_or_else(|e| panic!("{e}"));
    let m = &l.manifest;
    assert_eq!((m.experiment.name.as_str(), m.experiment.seeds.as_slice()), ("t", &[3u64][..]), "keys override, tables merge");
    assert_eq!((m.zoo["mlp"].models, m.zoo["mlp"].arch.descriptor().name), (12, "mlp"));
    assert_eq!(m.data["blobs"].samples, 500);
    assert_eq!(method_names(&l), ["noise", "copy", "avg"], "merged by name, new names appended");
    assert_eq!((m.method[0].plugin.as_str(), sigma(&l, 0)), ("noise", 0.2));
    // The effective manifest is one document without `extends`, and loads alone the same way.
    assert!(!l.text.contains("extends") && l.text.contains("average"), "{}", l.text);
    let again = ok(&l.text, &[]);
    assert_eq!(method_names(&again), method_names(&l));
}

#[test]
fn errors_point_into_the_file_that_holds_the_line() {
    let top = "extends = [\"bases/base.toml\"]\n\n[zoo.mlp]\nmodels = 12\n";
    let bad_base = BASE.replace("plugin = \"copy\"", "plugin = \"cpy\"");
    let dir = folder(&[("bases/base.toml", &bad_base), ("top.toml", top)]);
    let e = load(&dir.path().join("top.toml"), &[], &catalog()).unwrap_err().to_string();
    assert!(e.contains("bases/base.toml:21:10") && e.contains("did you mean `copy`?"), "{e}");
    // A bad value in the top file points there, though the key's table is in the base.
    std::fs::write(dir.path().join("bases/base.toml"), BASE).unwrap();
    std::fs::write(dir.path().join("top.toml"), top.replace("models = 12", "models = \"twelve\"")).unwrap();
    let e = load(&dir.path().join("top.toml"), &[], &catalog()).unwrap_err().to_string();
    assert!(e.contains("top.toml:4:10"), "{e}");
    // A value given by --set points at --set.
    let e = load(&dir.path().join("top.toml"), &["zoo.mlp.models=\"x\"".to_string()], &catalog()).unwrap_err().to_string();
    assert!(e.contains("--set:1:") && e.contains("\"x\""), "{e}");
    // A method sweep's bad value in the base points into the base, through the expansion.
    std::fs::write(dir.path().join("bases/base.toml"), BASE.replace("config = { sigma = 0.01 }", "config = { sigma = { sweep = [0.1] } }\nsamples = { sweep = [1, \"two\"] }")).unwrap();
    std::fs::write(dir.path().join("top.toml"), top).unwrap();
    let e = load(&dir.path().join("top.toml"), &[], &catalog()).unwrap_err().to_string();
    assert!(e.contains("bases/base.toml:18:11"), "{e}");
    // Missing files and cycles are located at the `extends` entry.
    std::fs::write(dir.path().join("top.toml"), "extends = [\"nope.toml\"]\n").unwrap();
    let e = load(&dir.path().join("top.toml"), &[], &catalog()).unwrap_err().to_string();
    assert!(e.contains("cannot read") && e.contains("top.toml:1:12"), "{e}");
    std::fs::write(dir.path().join("bases/base.toml"), format!("extends = [\"../top.toml\"]\n{BASE}")).unwrap();
    std::fs::write(dir.path().join("top.toml"), top).unwrap();
    let e = load(&dir.path().join("top.toml"), &[], &catalog()).unwrap_err().to_string();
    assert!(e.contains("forms a cycle") && e.contains("base.toml:1:12"), "{e}");
}

#[test]
fn labels_lengthen_only_where_one_variant_would_read_the_same_key_twice() {
    // Two methods sweeping a key of the same name keep the short label each.
    let text = format!(
        "{}\n[[method]]\nname = \"more\"\nplugin = \"noise\"\nzoo = \"mlp\"\nconfig = {{ sigma = {{ sweep = [0.5, 0.6] }} }}\n",
        BASE.replace("sigma = 0.01", "sigma = { sweep = [0.1, 0.2] }")
    );
    let l = ok(&text, &[]);
    assert_eq!(method_names(&l), ["noise[sigma=0.1]", "noise[sigma=0.2]", "copy", "more[sigma=0.5]", "more[sigma=0.6]"]);
    // One variant with `seed` swept in its config and in its zoo: both lengthened.
    let text = BASE.replace("models = 8", "models = 8\nseed = { sweep = [1, 2] }").replace("sigma = 0.01", "sigma = 0.01, seed = { sweep = [3, 4] }");
    let l = ok(&text, &[]);
    assert_eq!(method_names(&l)[0], "noise[config.seed=3,mlp.seed=1]");
    assert_eq!(method_names(&l).last().unwrap(), "copy[seed=2]");
}
