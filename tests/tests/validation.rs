//! One validation pass finds everything that can be known before anything runs: the manifest's
//! own mistakes, every plugin config that breaks its plugin's declared bounds — including
//! bounds relative to the zoo (`average`'s k against the training checkpoints, its default
//! included) — and what each plugin's own `check` finds for the zoo it will get (its layout,
//! size and data), each at its line, in source order, exit 2, nothing trained.

use weightlab_e2e::{experiment, weightlab};

const SIX: &str = r#"[experiment]
name = "six"
sedes = [0]

[data.b]
source = "blobs"
samples = 256
bogus = 1

[zoo.z]
data = "b"
arch = { kind = "mlp", hidden = [8] }
models = 10
split = { train = 8, heldout = 2 }

[zoo.y]
data = "b"
arch = { kind = "cnn" }

[[method]]
name = "noise"
plugin = "noise"
zoo = "z"
config = { sigma = -1 }

[[method]]
name = "average"
plugin = "average"
zoo = "z"

[[method]]
name = "copy"
plugin = "copy"
zoo = "zz"
"#;

/// The `error:` lines and their `-->` locations, in order.
fn errors(stderr: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = stderr.lines().collect();
    lines.iter().enumerate().filter(|(_, l)| l.starts_with("error: ")).map(|(i, l)| (l.to_string(), lines.get(i + 1).map_or(String::new(), |n| n.trim().to_string()))).collect()
}

#[test]
fn manifest_and_plugin_config_errors_come_in_one_pass_before_anything_runs() {
    let (dir, path) = experiment(SIX);
    for command in ["validate", "run"] {
        let out = weightlab(dir.path(), &[command, path.to_str().unwrap(), "-o", "out"][..if command == "validate" { 2 } else { 4 }]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        let found = errors(&stderr);
        let expected = [
            ("unknown key `sedes`", ":3:1"),
            ("unknown key `bogus`", ":8:1"),
            ("`zoo.y.arch.kind`: unknown value `cnn`", ":18:17"),
            ("plugin `noise` config: `sigma`: -1 is less than the minimum of 0", ":24:20"),
            ("plugin `average` config: `k` is 16 by default, but zoo `z` gives the method 8 training checkpoints", ":26:1"),
            ("method `copy` refers to zoo `zz`", ":34:7"),
        ];
        assert_eq!(found.len(), expected.len(), "{command}: {stderr}");
        for ((line, at), (message, place)) in found.iter().zip(expected) {
            assert!(line.contains(message) && at.ends_with(place), "{command}: expected `{message}` at {place}, got `{line}` {at}\n{stderr}");
        }
        assert!(stderr.contains("did you mean `cnn-s`?") && stderr.contains("set `k` below 8"), "{stderr}");
        assert!(!dir.path().join("out").exists(), "{command}: nothing may run");
    }
    // An explicit bound breaks the same way; a config within bounds validates.
    let fixed = SIX.replace("sedes", "seeds").replace("bogus = 1\n", "").replace("kind = \"cnn\" }", "kind = \"mlp\", hidden = [4] }").replace("zoo = \"zz\"", "zoo = \"z\"");
    let k16 = fixed.replace("sigma = -1", "sigma = 0.1").replace("name = \"average\"\nplugin = \"average\"\nzoo = \"z\"", "name = \"average\"\nplugin = \"average\"\nzoo = \"z\"\nconfig = { k = 16 }");
    let (dir, path) = experiment(&k16);
    let out = weightlab(dir.path(), &["validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`k` = 16, but zoo `z` gives the method 8 training checkpoints") && stderr.contains(":29:16"), "{stderr}");
    let good = k16.replace("k = 16", "k = 4");
    let (dir, path) = experiment(&good);
    let out = weightlab(dir.path(), &["validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

const CHECKED: &str = r#"[experiment]
name = "checked"
seeds = [0]

[data.b]
source = "blobs"
samples = 256

[zoo.z]
data = "b"
arch = { kind = "mlp", hidden = [8] }
models = 6

[[method]]
name = "d2nwg"
plugin = "d2nwg"
zoo = "z"

[[method]]
name = "igpg"
plugin = "igpg"
zoo = "z"
config = { dim = 30, heads = 4 }

[[method]]
name = "probex"
plugin = "probex"
zoo = "z"
target = "test-accuracy"
config = { layer = "layers.2.weight" }
"#;

#[test]
fn plugins_check_their_configs_against_the_zoo_they_will_get_before_anything_trains() {
    let (dir, path) = experiment(CHECKED);
    for command in ["validate", "run"] {
        let out = weightlab(dir.path(), &[command, path.to_str().unwrap(), "-o", "out"][..if command == "validate" { 2 } else { 4 }]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        let expected = [
            // A conditional generator on a zoo without tasks: the missing key points at the entry.
            ("plugin `d2nwg` config: `condition`: conditions on the `support` of each checkpoint's task, and zoo `z` learns one dataset, not a task family", ":14:1"),
            ("plugin `igpg` config: `condition`: conditions on the `instruction`", ":23:10"),
            ("plugin `igpg` config: `dim`: dim = 30 is not a multiple of heads = 4", ":23:18"),
            // The layout comes from the architecture and the data's declared shapes.
            ("plugin `probex` config: `layer`: `layers.2.weight` is not a weight matrix of zoo `z`; its matrices: layers.0.weight, layers.1.weight", ":30:20"),
        ];
        let found = errors(&stderr);
        assert_eq!(found.len(), expected.len(), "{command}: {stderr}");
        for ((line, at), (message, place)) in found.iter().zip(expected) {
            assert!(line.contains(message) && at.ends_with(place), "{command}: expected `{message}` at {place}, got `{line}` {at}\n{stderr}");
        }
        assert!(!dir.path().join("out").exists(), "{command}: nothing may run");
    }
    // Fixed: a layer the layout has, heads dividing dim, conditional generators left out.
    let fixed = CHECKED.replace("layers.2.weight", "layers.1.weight").replace("heads = 4", "heads = 5");
    let fixed = fixed.split("[[method]]").filter(|m| !m.contains("\"d2nwg\"") && !m.contains("\"igpg\"")).collect::<Vec<_>>().join("[[method]]");
    let (dir, path) = experiment(&fixed);
    let out = weightlab(dir.path(), &["validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
