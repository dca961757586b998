//! The manifest schema and the example manifests against this engine's registries.

use std::path::Path;

#[test]
fn committed_schema_matches_the_types_and_registries() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../manifest/weightlab.schema.json")).expect("weightlab.schema.json is committed");
    assert_eq!(committed, weightlab_pipeline::schema_json(), "regenerate with `weightlab schema > engine/manifest/weightlab.schema.json`");
    for key in weightlab_pipeline::metrics::keys().iter().chain(&weightlab_pipeline::plots::ids()) {
        assert!(committed.contains(&format!("\"{key}\"")), "the schema lists `{key}`");
    }
}

#[test]
fn example_manifests_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    // Every built-in plugin: the crates under plugins/baselines, plugins/generators and plugins/probes.
    let plugins: Vec<String> = ["baselines", "generators", "probes"]
        .iter()
        .flat_map(|kind| std::fs::read_dir(dir.join("../plugins").join(kind)).unwrap())
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let catalog = weightlab_manifest::Catalog { plugins, ..weightlab_pipeline::catalog() };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = weightlab_manifest::load(&path, &[], &catalog) {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "found {seen} example manifests");
}
