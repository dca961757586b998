//! Fuzzing, within `make test`'s budget: every input a stranger controls is mutated from real
//! examples (the committed manifests, a built plugin, a zoo checkpoint, the SDK's schemas) and
//! fed to the code that reads it, a fixed number of times from fixed seeds, so a failure
//! reproduces. What must hold: nothing panics, nothing hangs (a watchdog ends the binary), and
//! no moment holds more than 1 GiB (this binary's allocator refuses beyond that, which aborts
//! with a message naming the limit).
//!
//! Targets: manifests (TOML, `extends` chains, `--set` overrides, sweeps), plugins' metadata
//! sections, safetensors imports, and describe payloads (config schemas, then configs checked
//! against them). `WEIGHTLAB_FUZZ_ITERS` multiplies the iterations for a longer campaign.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Live heap bytes of this test binary may not exceed this.
const LIMIT: usize = 1 << 30;

struct Bounded;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts, and refuses requests over the limit.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if live > LIMIT {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let msg = b"fuzz: an allocation would take this process over 1 GiB; the inputs being fuzzed are in $TMPDIR/weightlab-fuzz-failures/current-*\n";
            // SAFETY: writing a static buffer to stderr allocates nothing.
            unsafe { libc_write(msg) };
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same layout as asked for.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

unsafe extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
}

/// # Safety
/// Writes `msg` to fd 2.
unsafe fn libc_write(msg: &[u8]) {
    // SAFETY: a valid buffer and length.
    unsafe { write(2, msg.as_ptr(), msg.len()) };
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

fn iterations(base: usize) -> usize {
    base * std::env::var("WEIGHTLAB_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// Ends the whole binary if a target runs past `limit` (a hang is a failure, not a wait).
fn watchdog(target: &'static str, limit: Duration) -> std::sync::mpsc::Sender<()> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
            eprintln!("fuzz target `{target}` hung: still running after {limit:?}");
            std::process::exit(101);
        }
    });
    done
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Pieces that mean something to the formats fuzzed, spliced into inputs.
const TOKENS: &[&str] = &[
    "{ sweep = [",
    "]",
    "}",
    "\"",
    "\n",
    "=",
    "[[method]]\n",
    "[zoo.z]\n",
    "extends = [\"a.toml\"]\n",
    "1e309",
    "-1",
    "18446744073709551616",
    "99999999",
    "[[[[[[[[[[[[[[[[",
    "{ a = { b = { c = { d = {",
    "\u{1b}]0;x\u{7}",
    "../../",
    "\"$ref\": \"#\"",
    "\"allOf\": [",
    "{\"$ref\":\"#/$defs/a\"}",
    "null",
    "\u{0}",
    "sweep",
    "models = 100000000",
];

/// A mutation of `input`: byte flips, cuts, duplications and token splices.
fn mutate(input: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..6) {
        let at = if out.is_empty() { 0 } else { rng.random_range(0..out.len()) };
        match rng.random_range(0..6) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.random_range(0..8),
            1 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
            2 if !out.is_empty() => {
                let len = rng.random_range(0..(out.len() - at).min(64) + 1);
                out.drain(at..at + len);
            }
            3 if !out.is_empty() => {
                let len = rng.random_range(0..(out.len() - at).min(256) + 1);
                let piece: Vec<u8> = out[at..at + len].to_vec();
                let to = rng.random_range(0..out.len());
                out.splice(to..to, piece);
            }
            4 => out.truncate(at),
            _ if !out.is_empty() => out[at] = rng.random(),
            _ => {}
        }
    }
    out
}

/// Runs `f` on `input`; a panic fails the test with the input that caused it. The input is
/// written first to `current-<target>`, so an abort (the allocator's refusal) leaves it behind.
fn survive<T>(target: &str, input: &[u8], f: impl FnOnce() -> T) -> Option<T> {
    let dir = std::env::temp_dir().join("weightlab-fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("current-{target}")), input);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            let file = dir.join(format!("{target}-{:016x}", fnv1a(input)));
            let _ = std::fs::write(&file, input);
            panic!("fuzz target `{target}` panicked; the input is saved in {}", file.display());
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn corpus_manifests() -> Vec<String> {
    let mut out = Vec::new();
    for dir in [root().join("experiments"), root().join("experiments/shared")] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                out.push(std::fs::read_to_string(e.path()).expect("a committed manifest"));
            }
        }
    }
    assert!(out.len() >= 5, "the committed manifests are the corpus");
    out
}

#[test]
fn manifests_sets_sweeps_and_extends() {
    let done = watchdog("manifests", Duration::from_secs(300));
    let corpus = corpus_manifests();
    let catalog = weightlab_pipeline::catalog();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let keys = ["experiment.seeds", "zoo.mlp.models", "method.0.config.sigma", "method.noise.samples", "data.fmnist.train_subset", "experiment.max_variants", "a.b.c.d.e"];
    let values = ["[1, 2]", "{ sweep = [1, 2, 3] }", "\"x\"", "-1", "1e400", "{ a = 1 }", "[[[", "0"];
    for i in 0..iterations(4000) {
        let base = corpus[rng.random_range(0..corpus.len())].as_bytes();
        let text = String::from_utf8_lossy(&mutate(base, &mut rng)).into_owned();
        let sets: Vec<String> = (0..rng.random_range(0..3)).map(|_| format!("{}={}", keys[rng.random_range(0..keys.len())], values[rng.random_range(0..values.len())])).collect();
        // Half the time through a file that the mutated one `extends` (and that may extend it back).
        let path = if i % 2 == 0 {
            let top = dir.path().join("top.toml");
            let base_text = String::from_utf8_lossy(&mutate(corpus[rng.random_range(0..corpus.len())].as_bytes(), &mut rng)).into_owned();
            std::fs::write(dir.path().join("a.toml"), if rng.random_bool(0.2) { format!("extends = [\"top.toml\"]\n{base_text}") } else { base_text }).unwrap();
            std::fs::write(&top, format!("extends = [\"a.toml\"]\n{text}")).unwrap();
            top
        } else {
            dir.path().join("exp.toml")
        };
        let raw = if i % 2 == 0 { std::fs::read_to_string(&path).unwrap() } else { text.clone() };
        survive("manifest", raw.as_bytes(), || {
            if let Ok(loaded) = weightlab_manifest::load_str(&path, &raw, &sets, dir.path(), &catalog) {
                // A manifest that loads plans without trouble too.
                let _ = weightlab_manifest::Plan::new(&loaded.manifest, &|_| "0".repeat(64), &Vec::<String>::new());
            }
        });
    }
    let _ = done.send(());
    eprintln!("manifests: peak heap {} MiB", PEAK.load(Ordering::Relaxed) >> 20);
}

#[test]
fn metadata_sections_of_components() {
    let done = watchdog("metadata", Duration::from_secs(300));
    let component = std::fs::read(root().join("plugins/dist/copy.wasm")).expect("plugins are built before the tests (make test)");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let meta = weightlab_host::metadata::Metadata {
        name: "copy".into(),
        version: "0.1.0".into(),
        role: "baseline".into(),
        abi: weightlab_host::ABI_VERSION.into(),
        about: "x".into(),
        config_schema: serde_json::json!({ "type": "object" }),
        built_with: "cargo".into(),
    };
    let stamped = weightlab_host::metadata::embed(&component, &meta).expect("stamps");
    for _ in 0..iterations(1000) {
        let input = mutate(if rng.random_bool(0.5) { &stamped } else { &component }, &mut rng);
        survive("metadata", &input, || {
            let _ = weightlab_host::metadata::read(&input);
            let _ = weightlab_host::metadata::wit_versions(&input);
            let _ = weightlab_host::metadata::for_loading(&input);
        });
        // A section whose JSON is a mutation of a valid one.
        let json = mutate(&serde_json::to_vec(&meta).unwrap(), &mut rng);
        if let Ok(m) = serde_json::from_slice::<weightlab_host::metadata::Metadata>(&json)
            && let Ok(bytes) = weightlab_host::metadata::embed(&component, &m)
        {
            survive("metadata-json", &json, || weightlab_host::metadata::read(&bytes).map(|m| m.map(|m| assert!(m.about.len() <= weightlab_host::untrusted::ABOUT_BYTES + 64))));
        }
    }
    let _ = done.send(());
}

#[test]
fn safetensors_imports() {
    let done = watchdog("safetensors", Duration::from_secs(300));
    let arch = weightlab_compute::Arch::Mlp { sizes: vec![4, 8, 3], activation: weightlab_manifest::Activation::Relu };
    let layout = arch.layout();
    let flat: Vec<f32> = (0..layout.len()).map(|i| i as f32 * 0.1).collect();
    let valid = weightlab_compute::zoo::store::to_safetensors(&layout, &flat, None);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..iterations(10000) {
        let mut input = mutate(&valid, &mut rng);
        // Now and then a header that claims huge tensors.
        if rng.random_bool(0.1) && input.len() > 8 {
            let claimed = rng.random_range(0..u64::MAX);
            input[..8].copy_from_slice(&claimed.to_le_bytes());
        }
        survive("safetensors", &input, || weightlab_compute::zoo::store::from_safetensors(&layout, &input).map(|w| assert_eq!(w.len(), layout.len())));
    }
    let _ = done.send(());
}

/// A random JSON Schema-shaped value `depth` deep, with references among a few definitions.
fn schema(rng: &mut ChaCha8Rng, depth: usize) -> serde_json::Value {
    use serde_json::json;
    if depth == 0 || rng.random_bool(0.3) {
        return match rng.random_range(0..6) {
            0 => json!({ "type": "number", "minimum": rng.random_range(-5..5) }),
            1 => json!({ "$ref": format!("#/$defs/d{}", rng.random_range(0..4)) }),
            2 => json!({ "$ref": "#" }),
            3 => json!({ "enum": ["a", "b", 1] }),
            4 => json!(rng.random_bool(0.5)),
            _ => json!({ "type": ["string", "null"], "maxLength": 8 }),
        };
    }
    fn children(rng: &mut ChaCha8Rng, depth: usize) -> Vec<serde_json::Value> {
        let n = rng.random_range(1..4);
        (0..n).map(|_| schema(rng, depth - 1)).collect()
    }
    match rng.random_range(0..5) {
        0 => json!({ "allOf": children(rng, depth) }),
        1 => json!({ "anyOf": children(rng, depth) }),
        2 => json!({ "type": "object", "properties": { "a": schema(rng, depth - 1), "b": schema(rng, depth - 1) }, "additionalProperties": false }),
        3 => json!({ "type": "array", "items": schema(rng, depth - 1), "maxItems": 4 }),
        _ => json!({ "not": schema(rng, depth - 1) }),
    }
}

#[test]
fn describe_payloads_schemas_and_configs() {
    let done = watchdog("schemas", Duration::from_secs(300));
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let configs = [serde_json::json!({}), serde_json::json!({ "a": 1, "b": [1, 2] }), serde_json::json!({ "a": { "a": { "a": "x" } } }), serde_json::json!([[[[1]]]]), serde_json::json!("s")];
    let mut accepted = 0;
    for _ in 0..iterations(6000) {
        let depth = rng.random_range(1..7);
        let mut value = schema(&mut rng, depth);
        if let serde_json::Value::Object(map) = &mut value {
            let defs: serde_json::Map<String, serde_json::Value> = (0..4).map(|i| (format!("d{i}"), schema(&mut rng, 3))).collect();
            map.insert("$defs".into(), defs.into());
        }
        // Half as a describe payload's text, mutated: what a plugin hands over is bytes.
        let text = serde_json::to_vec(&value).unwrap();
        let text = if rng.random_bool(0.5) { mutate(&text, &mut rng) } else { text };
        survive("schema", &text, || {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) else { return };
            let description =
                weightlab_host::Description { name: "f".into(), version: "1.0.0".into(), role: weightlab_host::Role::Baseline, about: String::new(), config_schema: value.clone(), abi: String::new() };
            if description.checked().is_ok()
                && let Ok(v) = weightlab_pipeline::config_check::validator(&value)
            {
                accepted += 1;
                for c in &configs {
                    let _ = v.iter_errors(c).count();
                }
            }
        });
    }
    let _ = done.send(());
    eprintln!("schemas: {accepted} of the generated schemas were inside the subset and validated configs");
    assert!(accepted > 100, "the generator reaches the validator, not only the refusals");
}

#[test]
fn the_allocator_limit_is_live() {
    // The limit this binary runs under is real: asking for more is refused.
    let layout = Layout::from_size_align(LIMIT + 1, 8).unwrap();
    // SAFETY: a plain allocation request; a null result is not used.
    let p = unsafe { ALLOCATOR.alloc(layout) };
    assert!(p.is_null());
}
