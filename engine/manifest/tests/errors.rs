//! Every kind of manifest mistake is reported with file:line:col, the line with a caret under
//! the mistake, and a suggestion where one makes sense.

use std::path::Path;

use weightlab_manifest::{Catalog, LoadError, load_str};

const GOOD: &str = r#"[experiment]
name = "t"
seeds = [0, 1]

[data.fmnist]
source = "blobs"

[zoo.cnn]
data = "fmnist"
arch = { kind = "mlp", hidden = [8] }
models = 8
split = { train = 6, heldout = 2 }

[[method]]
name = "copy"
plugin = "copy"
zoo = "cnn"
"#;

fn plugins() -> Catalog {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    Catalog { plugins: names(&["copy", "noise", "average"]), metrics: names(&["accuracy", "nn_l2", "novelty"]), plots: names(&["accuracy-novelty", "weight-pca"]), ..Catalog::default() }
}

/// Loads `text` and returns the rendered error.
fn error_of(text: &str) -> String {
    match load_str(Path::new("exp.toml"), text, &[], Path::new("."), &plugins()) {
        Ok(_) => panic!("manifest should not validate:\n{text}"),
        Err(LoadError::Invalid(e)) => e.to_string(),
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

/// Asserts the rendered error points at `line:col`, shows that line, and says `needle`.
fn assert_points(rendered: &str, line: usize, col: usize, needle: &str) {
    assert!(rendered.contains(&format!("exp.toml:{line}:{col}")), "expected exp.toml:{line}:{col} in:\n{rendered}");
    assert!(rendered.contains('^'), "no caret in:\n{rendered}");
    assert!(rendered.contains(needle), "expected `{needle}` in:\n{rendered}");
}

#[test]
fn the_good_manifest_validates() {
    let loaded = load_str(Path::new("exp.toml"), GOOD, &[], Path::new("."), &plugins()).unwrap();
    assert_eq!(loaded.manifest.zoo["cnn"].models, 8);
    assert_eq!(loaded.manifest.method[0].samples, 16, "default applied");
}

#[test]
fn toml_syntax_error() {
    let e = error_of(&GOOD.replace("models = 8", "models = = 8"));
    assert_points(&e, 11, 10, "models = = 8");
}

#[test]
fn unknown_key_with_did_you_mean() {
    let e = error_of(&GOOD.replace("models = 8", "modles = 8"));
    assert_points(&e, 11, 1, "did you mean `models`?");
    assert!(e.contains("unknown key `modles` in `zoo.cnn`"), "{e}");
}

#[test]
fn a_long_value_is_measured_or_cut_not_quoted_whole() {
    let long = "c".repeat(5000);
    let e = error_of(&GOOD.replace("name = \"copy\"", &format!("name = \"{long}\"")));
    assert_points(&e, 15, 8, "`method[0].name` is 5000 characters long (at most 256)");
    let e = error_of(&GOOD.replace("seeds = [0, 1]", &format!("seeds = \"{long}\"")));
    assert_points(&e, 3, 9, "is not of type");
    assert!(e.len() < 1000 && e.contains('…'), "{e}");
    let e = error_of(&GOOD.replace("hidden = [8]", "hidden = [0]"));
    assert_points(&e, 10, 34, "0 is less than the minimum of 1");
}

#[test]
fn wrong_type() {
    let e = error_of(&GOOD.replace("models = 8", "models = \"eight\""));
    assert_points(&e, 11, 10, "`zoo.cnn.models`: \"eight\" is not of type \"integer\"");
}

/// TOML has `nan` and `inf`; JSON, which the schema checks and plugins read, has neither
/// (they used to be refused as "null is not of type number").
#[test]
fn nan_and_infinity_are_refused_by_name_where_they_are_written() {
    let e = error_of(&GOOD.replace("models = 8", "models = 8\ntrain = { lr = nan }").replace("plugin = \"copy\"", "plugin = \"copy\"\nconfig = { sigma = -inf }"));
    assert_points(&e, 12, 16, "`zoo.cnn.train.lr`: NaN is not a finite number");
    assert_points(&e, 18, 20, "`method[0].config.sigma`: -inf is not a finite number");
    assert!(!e.contains("null"), "{e}");
}

#[test]
fn unknown_enum_value_with_did_you_mean() {
    let e = error_of(&GOOD.replace("source = \"blobs\"", "source = \"fashion-mnst\""));
    assert_points(&e, 6, 10, "did you mean `fashion-mnist`?");
}

#[test]
fn reference_to_missing_dataset() {
    let e = error_of(&GOOD.replace("data = \"fmnist\"", "data = \"fmnst\""));
    assert_points(&e, 9, 8, "did you mean `fmnist`?");
    assert!(e.contains("dataset `fmnst`, which is not defined"), "{e}");
}

#[test]
fn reference_to_missing_zoo() {
    let e = error_of(&GOOD.replace("zoo = \"cnn\"", "zoo = \"cn\""));
    assert_points(&e, 17, 7, "did you mean `cnn`?");
}

#[test]
fn unknown_plugin() {
    let e = error_of(&GOOD.replace("plugin = \"copy\"", "plugin = \"noice\""));
    assert_points(&e, 16, 10, "did you mean `noise`?");
}

#[test]
fn missing_plugin_file() {
    let e = error_of(&GOOD.replace("plugin = \"copy\"", "plugin = \"build/mine.wasm\""));
    assert_points(&e, 16, 10, "does not exist");
}

#[test]
fn impossible_split() {
    let e = error_of(&GOOD.replace("split = { train = 6, heldout = 2 }", "split = { train = 6, heldout = 4 }"));
    assert_points(&e, 12, 9, "needs 10 models, but the zoo has 8");
}

#[test]
fn duplicate_method_names_and_several_errors_at_once() {
    let text = format!("{GOOD}\n[[method]]\nname = \"copy\"\nplugin = \"copy\"\nzoo = \"nope\"\n");
    let e = error_of(&text);
    assert!(e.contains("two methods are named `copy`"), "{e}");
    assert!(e.contains("zoo `nope`, which is not defined"), "{e}");
    assert_eq!(e.matches("error:").count(), 2, "{e}");
}

#[test]
fn overrides_apply_before_validation() {
    let loaded = load_str(Path::new("exp.toml"), GOOD, &["zoo.cnn.models=12".into(), "method.copy.samples=3".into()], Path::new("."), &plugins()).unwrap();
    assert_eq!(loaded.manifest.zoo["cnn"].models, 12);
    assert_eq!(loaded.manifest.method[0].samples, 3);
    let e = match load_str(Path::new("exp.toml"), GOOD, &["zoo.cnn.models=4".into()], Path::new("."), &plugins()) {
        Err(LoadError::Invalid(e)) => e.to_string(),
        _ => panic!("split no longer fits"),
    };
    assert!(e.contains("split of 6 train + 2 held-out"), "{e}");
}

#[test]
fn every_schema_error_at_once() {
    // An unknown key, a wrong type, a misspelt architecture option and a missing key, in
    // different sections: all four reported in one pass, in source order.
    let text = GOOD.replace("seeds = [0, 1]", "seeds = [0, 1]\ncolour = \"red\"").replace("models = 8", "models = \"eight\"").replace("hidden = [8]", "hiden = [8]").replace("zoo = \"cnn\"\n", "");
    let e = error_of(&text);
    assert_eq!(e.matches("error:").count(), 4, "{e}");
    assert!(e.contains("unknown key `colour` in `experiment`"), "{e}");
    assert!(e.contains("is not of type \"integer\""), "{e}");
    assert!(e.contains("unknown key `hiden` in `zoo.cnn.arch`") && e.contains("did you mean `hidden`?"), "{e}");
    assert!(e.contains("`method[0]` is missing the required key `zoo`"), "{e}");
    let (colour, hiden, eight) = (e.find("colour").unwrap(), e.find("hiden").unwrap(), e.find("eight").unwrap());
    assert!(colour < hiden && hiden < eight, "source order:\n{e}");
}

#[test]
fn broken_references_are_reported_with_schema_errors() {
    // A wrong type elsewhere does not hide an unknown plugin, a missing zoo or a duplicate name.
    let text = format!("{}\n[[method]]\nname = \"copy\"\nplugin = \"noice\"\nzoo = \"cn\"\n", GOOD.replace("models = 8", "models = \"eight\""));
    let e = error_of(&text);
    assert_eq!(e.matches("error:").count(), 4, "{e}");
    for needle in ["is not of type \"integer\"", "two methods are named `copy`", "did you mean `noise`?", "did you mean `cnn`?"] {
        assert!(e.contains(needle), "`{needle}` missing:\n{e}");
    }
}

#[test]
fn unknown_metric_and_plot_with_did_you_mean() {
    let text = format!("{GOOD}\n[evaluate]\nmetrics = [\"accuracy\", \"novelti\"]\n[report]\nplots = [\"weight_pca\"]\n");
    let e = error_of(&text);
    assert_points(&e, 20, 24, "did you mean `novelty`?");
    assert!(e.contains("did you mean `weight-pca`?"), "{e}");
}

#[test]
fn model_tree_asking_for_more_classes_than_the_data_has() {
    let text = GOOD.replace("models = 8\n", "models = 8\ntree = { roots = 2, classes = 9 }\n");
    let rendered = error_of(&text);
    assert_points(&rendered, 12, 31, "`tree.classes` = 9 but the dataset has 4 classes");
    assert!(rendered.contains("use a value from 1 to 4"), "{rendered}");
}

#[test]
fn shapes_on_data_that_has_none() {
    let text = GOOD.replace("source = \"blobs\"\n", "source = \"blobs\"\nshapes = 3\n");
    assert_points(&error_of(&text), 7, 10, "`data.fmnist.shapes` = 3 is only meaningful for `sdf-shapes` data");
}

#[test]
fn probe_targets_are_checked_against_the_zoo() {
    // A typo in the target, with a suggestion.
    let text = format!("{GOOD}target = \"clases\"\n");
    assert_points(&error_of(&text), 18, 10, "unknown probe target `clases`");
    assert!(error_of(&text).contains("did you mean `classes`?"));
    // Classes need a model tree; a zoo without one has no such label.
    let text = format!("{GOOD}target = \"classes\"\n");
    let e = error_of(&text);
    assert_points(&e, 18, 10, "zoo `cnn` has no `classes` label");
    assert!(e.contains("tree = { roots = 3, classes = 2 }"), "{e}");
    // A hyper-parameter is a label only when the tree cycles a list of it.
    let tree = GOOD.replace("models = 8\n", "models = 8\ntree = { roots = 2, classes = 2, lr = 1e-3 }\n");
    assert!(error_of(&format!("{tree}target = \"lr\"\n")).contains("has no `lr` label: it does not vary"));
    let cycled = GOOD.replace("models = 8\n", "models = 8\ntree = { roots = 2, classes = 2, lr = [1e-3, 3e-3], epochs = [1, 2] }\n");
    for target in ["classes", "parent", "lr", "epochs", "test-accuracy"] {
        let loaded = load_str(Path::new("exp.toml"), &format!("{cycled}target = \"{target}\"\n"), &[], Path::new("."), &plugins());
        assert!(loaded.is_ok_and(|l| l.manifest.method[0].is_probe()), "{target}");
    }
    // A probe must say what it predicts; zero-shot needs embeddings.
    assert_points(&error_of(&format!("{GOOD}role = \"probe\"\n")), 18, 8, "is a probe but names no `target`");
    let e = error_of(&format!("{cycled}target = \"classes\"\nunseen_classes = [3, 7]\n"));
    assert!(e.contains("needs `embed_labels`") && e.contains("unseen class 7 does not exist (the dataset has 4 classes)"), "{e}");
}

#[test]
fn task_family_mistakes_are_located() {
    // A rotation family needs 2-D inputs: located at the family.
    let signals = GOOD.replace("source = \"blobs\"", "source = \"signals\"\ntasks = { family = \"rotate\", count = 8, heldout = 2 }");
    let e = error_of(&signals);
    assert_points(&e, 7, 20, "the `rotate` family rotates 2-D inputs");
    // A family splits the zoo by task: `split` is refused with a way out.
    let split = GOOD.replace("source = \"blobs\"", "source = \"blobs\"\ntasks = { family = \"rotate\", count = 8, heldout = 2 }");
    let e = error_of(&split);
    assert_points(&e, 13, 9, "whose tasks split the models");
    assert!(e.contains("remove `split`"), "{e}");
    // More held-out and OOD tasks than tasks.
    let none_left = GOOD.replace("source = \"blobs\"", "source = \"blobs\"\ntasks = { family = \"rotate\", count = 4, heldout = 2, ood = 2 }").replace("split = { train = 6, heldout = 2 }\n", "");
    assert_points(&error_of(&none_left), 7, 38, "leave no training task");
    // The wrong-condition control off a task family.
    let control = GOOD.replace("zoo = \"cnn\"\n", "zoo = \"cnn\"\nwrong_condition = true\n");
    assert_points(&error_of(&control), 18, 19, "`wrong_condition` needs a zoo on a task family");
    // A source zoo that does not exist, with did-you-mean.
    let zoos = GOOD.replace("zoo = \"cnn\"\n", "zoo = \"cnn\"\nzoos = [\"cn\"]\n");
    let e = error_of(&zoos);
    assert_points(&e, 18, 9, "learns from zoo `cn`, which is not defined");
    assert!(e.contains("cnn"), "did-you-mean: {e}");
}

#[test]
fn an_unknown_tag_of_a_tagged_union_lists_the_variants() {
    let e = error_of(&GOOD.replace("kind = \"mlp\", hidden = [8]", "kind = \"cnn\""));
    assert!(e.contains("`zoo.cnn.arch.kind`: unknown value `cnn`") && e.contains("did you mean `cnn-s`?"), "{e}");
    let e = error_of(&GOOD.replace("kind = \"mlp\", hidden = [8]", "kind = \"sequential\", layers = [{ type = \"flatten\" }, { type = \"linaer\", out = 10 }]"));
    assert!(e.contains("`zoo.cnn.arch.layers[1].type`: unknown value `linaer`") && e.contains("did you mean `linear`?"), "{e}");
}
