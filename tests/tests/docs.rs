//! Every TOML snippet of the manual (`docs/src/*.md`) and the README is a manifest that
//! validates, as rustdoc runs every code block: a snippet that drifts from the engine fails
//! here. A fence's info string may say more after `toml`:
//! - `base=<path>`: the snippet adds to that manifest (it is validated with `extends` on it);
//! - `tested=<test file>`: the snippet needs files another test makes (a plugin it builds), and
//!   that test reads this page — checked here.
//!
//! Snippets are validated in a folder of their own, where the folders they import (`my-zoo/`,
//! `my-samples/`: small state_dicts of the declared network) are made first.

use std::path::{Path, PathBuf};

use weightlab_e2e::{root, weightlab};

/// One fenced TOML block: where it starts, its info string's attributes, its text.
struct Snippet {
    file: PathBuf,
    line: usize,
    attributes: Vec<(String, String)>,
    text: String,
}

impl Snippet {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn snippets(file: &Path) -> Vec<Snippet> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut found = Vec::new();
    let mut open: Option<Snippet> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    if words.next() == Some("toml") {
                        let attributes = words.map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or_else(|| (w.to_string(), String::new()))).collect();
                        open = Some(Snippet { file: file.to_path_buf(), line: i + 1, attributes, text: String::new() });
                    } else if !info.is_empty() || line == "```" {
                        // Another language's block: skip to its end.
                        open = Some(Snippet { file: PathBuf::new(), line: 0, attributes: Vec::new(), text: String::new() });
                    }
                }
            }
            Some(snippet) if line.starts_with("```") => {
                if snippet.line > 0 {
                    found.push(open.take().expect("an open block"));
                }
                open = None;
            }
            Some(snippet) => {
                snippet.text.push_str(line);
                snippet.text.push('\n');
            }
        }
    }
    assert!(open.is_none(), "{}: a code block is not closed", file.display());
    found
}

#[test]
fn every_manifest_snippet_in_the_docs_validates() {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs/src")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "md")).collect();
    pages.sort();
    pages.push(root().join("README.md"));
    let (mut validated, mut elsewhere, mut failures) = (0, 0, Vec::new());
    for page in &pages {
        for snippet in snippets(page) {
            let at = format!("{}:{}", snippet.file.strip_prefix(root()).unwrap_or(&snippet.file).display(), snippet.line);
            if let Some(test) = snippet.attribute("tested") {
                let source = std::fs::read_to_string(root().join(test)).unwrap_or_else(|e| panic!("{at}: tested={test}: {e}"));
                let page_path = snippet.file.strip_prefix(root()).unwrap().display().to_string();
                assert!(source.contains(&page_path), "{at}: says it is tested by {test}, which does not read {page_path}");
                elsewhere += 1;
                continue;
            }
            let mut text = String::new();
            if let Some(base) = snippet.attribute("base") {
                let base = root().join(base);
                assert!(base.is_file(), "{at}: base={} does not exist", base.display());
                text.push_str(&format!("extends = [{:?}]\n", base.display().to_string()));
            }
            text.push_str(&snippet.text);
            let dir = tempfile::tempdir().unwrap();
            fixtures(dir.path());
            let file = dir.path().join("snippet.toml");
            std::fs::write(&file, &text).unwrap();
            let out = weightlab(dir.path(), &["validate", file.to_str().unwrap()]);
            if out.status.success() {
                validated += 1;
            } else {
                failures.push(format!("{at}:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
            }
        }
    }
    assert!(failures.is_empty(), "{} snippet(s) do not validate:\n\n{}", failures.len(), failures.join("\n"));
    assert!(validated >= 5 && elsewhere >= 2, "{validated} snippets validated, {elsewhere} tested elsewhere: the docs lost their examples?");
}

/// The folders the manual's snippets import: 25 state_dicts of its `flatten → linear 10` network
/// on 28×28 images (`my-zoo/`), and 4 more (`my-samples/`).
fn fixtures(dir: &Path) {
    for (folder, count) in [("my-zoo", 25), ("my-samples", 4)] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        for i in 0..count {
            let tensors = [("1.weight", vec![10, 784]), ("1.bias", vec![10])];
            std::fs::write(dir.join(folder).join(format!("model_{i:02}.safetensors")), safetensors(&tensors, i as f32)).unwrap();
        }
    }
}

/// A safetensors file of F32 tensors `(name, shape)`, every value `value / 1000`.
fn safetensors(tensors: &[(&str, Vec<usize>)], value: f32) -> Vec<u8> {
    let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let start = data.len();
        data.extend(std::iter::repeat_n((value / 1000.0).to_le_bytes(), n).flatten());
        header.insert(name.to_string(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [start, data.len()] }));
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend(data);
    bytes
}

/// Every figure the docs quote from a committed run (`<!--wl RUN … COLUMN-->0.730<!--/wl-->`)
/// equals its `summary.csv` / `frontier.csv` at the precision written; `make figures` rewrites
/// them after a rerun. A hand edit of any quoted figure fails here — checked on the first one.
#[test]
fn every_figure_the_docs_quote_equals_its_committed_summary() {
    use weightlab_results::figures::{self, Tables};
    let root = root();
    let mut tables = Tables::of_repository(&root);
    let mut problems = Vec::new();
    let mut quoted: Vec<(PathBuf, figures::Marker)> = Vec::new();
    for file in figures::doc_files(&root) {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        match figures::markers(&text) {
            Ok(found) => quoted.extend(found.into_iter().map(|m| (file.clone(), m))),
            Err(found) => problems.extend(found.into_iter().map(|p| format!("{}:{}: {}", file.display(), p.line, p.message))),
        }
        problems.extend(figures::check(&text, &mut tables).into_iter().map(|p| format!("{}:{}: {} (run `make figures` after a rerun)", file.display(), p.line, p.message)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let files: std::collections::BTreeSet<&PathBuf> = quoted.iter().map(|(f, _)| f).collect();
    assert!(quoted.len() >= 20 && files.len() >= 3, "the findings quote their figures through markers: {} in {files:?}", quoted.len());
    let (file, first) = &quoted[0];
    let text = std::fs::read_to_string(file).unwrap();
    // The last digit moved by one: the same precision, another figure.
    let written = first.written.trim();
    let nudged = match written.chars().last() {
        Some(d) if d.is_ascii_digit() => format!("{}{}", &written[..written.len() - 1], (d.to_digit(10).unwrap_or(0) + 1) % 10),
        _ => format!("{written}x"),
    };
    let edited = format!("{}{nudged}{}", &text[..first.span.start], &text[first.span.end..]);
    assert!(!figures::check(&edited, &mut tables).is_empty(), "{}:{}: editing {} into {nudged} by hand went unnoticed", file.display(), first.line, first.written);
}
