//! Figures in prose that cannot drift from the results they quote.
//!
//! A number in the docs is written between two HTML comments naming where it comes from:
//!
//! ```text
//! G.pt reaches <!--wl memorization zoo=mlp method="G.pt" accuracy-->0.730<!--/wl--> accuracy
//! ```
//!
//! `memorization` is a committed run folder under `reports/`, read from its `summary.csv`
//! (`memorization/frontier` reads `frontier.csv`, `probing/scores` reads `scores.csv`);
//! `bench:NAME` is a committed benchmark under `benches/results/NAME/` (what `weightlab bench …
//! --save` wrote); the `key=value` pairs pick one row; the last word is the column. Markdown renders the comments as nothing, so the page reads "0.730".
//! [`check`] compares each written figure with the table, at the precision it is written in
//! (0.730 is three decimals; a leading `+` is kept); [`refresh`] rewrites them. A figure a
//! person edits by hand, or a rerun that moves one, makes the docs test fail until refreshed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const OPEN: &str = "<!--wl ";
const CLOSE: &str = "<!--/wl-->";

/// One quoted figure in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// 1-based line of the marker.
    pub line: usize,
    /// Byte range of the written figure in the text.
    pub span: std::ops::Range<usize>,
    /// `run` or `run/table`.
    pub source: String,
    pub filters: Vec<(String, String)>,
    pub column: String,
    pub written: String,
}

/// A figure that differs from its table, or a marker that cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Splits a marker's words, honouring double quotes (`method="noise (cnn)[sigma=0.02]"`).
fn words(spec: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut word, mut quoted) = (String::new(), false);
    for c in spec.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Every marker in `text`, or the problems of those that cannot be read.
pub fn markers(text: &str) -> Result<Vec<Marker>, Vec<Problem>> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find(OPEN) {
        let start = at + i;
        let line = text[..start].lines().count().max(1) + usize::from(text[..start].ends_with('\n'));
        let Some(head_end) = text[start..].find("-->").map(|j| start + j) else {
            problems.push(Problem { line, message: "a figure marker is not closed with `-->`".into() });
            break;
        };
        let Some(close) = text[head_end..].find(CLOSE).map(|j| head_end + j) else {
            problems.push(Problem { line, message: format!("a figure marker has no `{CLOSE}` after its figure") });
            break;
        };
        let mut parts = words(&text[start + OPEN.len()..head_end]);
        let span = head_end + 3..close;
        at = close + CLOSE.len();
        if parts.len() < 2 {
            problems.push(Problem { line, message: "a figure marker needs a run and a column: `<!--wl RUN KEY=VALUE… COLUMN-->`".into() });
            continue;
        }
        let column = parts.pop().unwrap_or_default();
        let source = parts.remove(0);
        let mut filters = Vec::new();
        for p in parts {
            match p.split_once('=') {
                Some((k, v)) => filters.push((k.to_string(), v.to_string())),
                None => problems.push(Problem { line, message: format!("`{p}` in a figure marker is not a KEY=VALUE filter") }),
            }
        }
        found.push(Marker { line, written: text[span.clone()].to_string(), span, source, filters, column });
    }
    if problems.is_empty() { Ok(found) } else { Err(problems) }
}

/// A CSV table read: its header and rows.
type Csv = (Vec<String>, Vec<Vec<String>>);

/// The committed tables figures are quoted from: `<root>/<run>/<table>.csv` and
/// `<benches>/<name>/<table>.csv` (sources `bench:<name>`), read once each.
#[derive(Debug, Default)]
pub struct Tables {
    root: PathBuf,
    benches: Option<PathBuf>,
    read: BTreeMap<String, Result<Csv, String>>,
}

/// The prefix of a source under the benchmarks' folder.
const BENCH: &str = "bench:";

impl Tables {
    /// Tables under `root` (a repository's `reports/`).
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_path_buf(), benches: None, read: BTreeMap::new() }
    }

    /// Tables of a repository: runs under `reports/`, benchmarks under `benches/results/`.
    pub fn of_repository(root: &Path) -> Self {
        Self { root: root.join("reports"), benches: Some(root.join("benches/results")), read: BTreeMap::new() }
    }

    fn table(&mut self, source: &str) -> Result<&Csv, String> {
        let (base, name) = match (source.strip_prefix(BENCH), &self.benches) {
            (Some(name), Some(benches)) => (benches.as_path(), name),
            (Some(_), None) => return Err(format!("{source}: no benchmarks folder to read it from")),
            (None, _) => (self.root.as_path(), source),
        };
        let (run, table) = name.split_once('/').unwrap_or((name, "summary"));
        let path = base.join(run).join(format!("{table}.csv"));
        self.read
            .entry(source.to_string())
            .or_insert_with(|| {
                let mut reader = csv::Reader::from_path(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let header = reader.headers().map_err(|e| format!("{}: {e}", path.display()))?.iter().map(str::to_string).collect();
                let rows = reader.records().map(|r| r.map(|r| r.iter().map(str::to_string).collect())).collect::<Result<_, _>>().map_err(|e| format!("{}: {e}", path.display()))?;
                Ok((header, rows))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The cell a marker names: exactly one row must match its filters.
    pub fn value(&mut self, marker: &Marker) -> Result<String, String> {
        let (header, rows) = self.table(&marker.source)?;
        let index = |key: &str| header.iter().position(|h| h == key).ok_or_else(|| format!("{} has no column `{key}` (it has {})", marker.source, header.join(", ")));
        let column = index(&marker.column)?;
        let filters: Vec<(usize, &str)> = marker.filters.iter().map(|(k, v)| index(k).map(|i| (i, v.as_str()))).collect::<Result<_, _>>()?;
        let matching: Vec<&Vec<String>> = rows.iter().filter(|r| filters.iter().all(|(i, v)| r.get(*i).is_some_and(|c| c == v))).collect();
        match matching.as_slice() {
            [row] => Ok(row.get(column).cloned().unwrap_or_default()),
            [] => Err(format!("no row of {} has {}", marker.source, describe(&marker.filters))),
            many => Err(format!("{} rows of {} have {}: add a filter", many.len(), marker.source, describe(&marker.filters))),
        }
    }
}

fn describe(filters: &[(String, String)]) -> String {
    if filters.is_empty() { "no filter".into() } else { filters.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(", ") }
}

/// `value` (a table cell) written as `like` is: a number with as many decimals as `like` has
/// (and its leading `+`, and `−` for a minus if `like` uses it); anything else as it is.
pub fn format_like(value: &str, like: &str) -> String {
    let Ok(v) = value.parse::<f64>() else {
        return value.to_string();
    };
    let digits = like.trim().split_once('.').map_or(0, |(_, frac)| frac.chars().take_while(char::is_ascii_digit).count());
    let mut out = format!("{v:.digits$}");
    if out.starts_with('-') && out.trim_start_matches(['-', '0', '.']).is_empty() {
        out.remove(0); // −0.000 reads as 0.000
    }
    if like.trim_start().starts_with('+') && !out.starts_with('-') {
        out.insert(0, '+');
    }
    if like.contains('−') {
        out = out.replacen('-', "−", 1);
    }
    out
}

/// Each figure of `text` that differs from its table (or cannot be found there).
pub fn check(text: &str, tables: &mut Tables) -> Vec<Problem> {
    let markers = match markers(text) {
        Ok(m) => m,
        Err(problems) => return problems,
    };
    markers
        .iter()
        .filter_map(|m| match tables.value(m) {
            Err(message) => Some(Problem { line: m.line, message }),
            Ok(value) => {
                let expected = format_like(&value, &m.written);
                (expected != m.written.trim()).then(|| Problem { line: m.line, message: format!("`{}` {} {} is {expected}, written {}", m.source, describe(&m.filters), m.column, m.written) })
            }
        })
        .collect()
}

/// `text` with every figure rewritten from its table (at the precision written), and the
/// problems of the markers that could not be.
pub fn refresh(text: &str, tables: &mut Tables) -> (String, Vec<Problem>) {
    let markers = match markers(text) {
        Ok(m) => m,
        Err(problems) => return (text.to_string(), problems),
    };
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut at = 0;
    for m in markers {
        out.push_str(&text[at..m.span.start]);
        match tables.value(&m) {
            Ok(value) => out.push_str(&format_like(&value, &m.written)),
            Err(message) => {
                problems.push(Problem { line: m.line, message });
                out.push_str(&m.written);
            }
        }
        at = m.span.end;
    }
    out.push_str(&text[at..]);
    (out, problems)
}

fn markdown_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() && !["target", "book", "dist", "node_modules"].contains(&name.as_str()) && !name.starts_with('.') {
            markdown_under(&path, out);
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The Markdown files of a repository that may quote figures: `README.md` and every `.md`
/// under `docs/src`, `plugins` and `reports`.
pub fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md")];
    for dir in ["docs/src", "plugins", "reports"] {
        markdown_under(&root.join(dir), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_source_reads_the_benchmarks_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("benches/results/gen-xeon")).unwrap();
        std::fs::create_dir_all(dir.path().join("reports")).unwrap();
        std::fs::write(dir.path().join("benches/results/gen-xeon/summary.csv"), "cpu,bench,ratio\nXeon,pdiff,0.9861\nXeon,igpg,1.0153\n").unwrap();
        let mut t = Tables::of_repository(dir.path());
        assert!(check("p-diff <!--wl bench:gen-xeon bench=pdiff ratio-->0.986<!--/wl-->, IGPG <!--wl bench:gen-xeon bench=igpg ratio-->1.02<!--/wl-->", &mut t).is_empty());
        let problems = check("<!--wl bench:gen-xeon bench=pdiff ratio-->0.969<!--/wl-->", &mut t);
        assert!(problems.len() == 1 && problems[0].message.contains("is 0.986, written 0.969"), "{problems:?}");
        // Without a benchmarks folder the source is an error, not a run called `bench:…`.
        let problems = check("<!--wl bench:gen-xeon bench=pdiff ratio-->0.986<!--/wl-->", &mut Tables::new(&dir.path().join("reports")));
        assert!(problems.len() == 1 && problems[0].message.contains("no benchmarks folder"), "{problems:?}");
    }

    fn tables() -> (tempfile::TempDir, Tables) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("study")).unwrap();
        std::fs::write(dir.path().join("study/summary.csv"), "zoo,method,accuracy,accuracy_ci95\nmlp,G.pt,0.73049,0.0121\nmlp,noise (mlp)[sigma=0.05],0.7,\ncnn,G.pt,0.5,\n").unwrap();
        std::fs::write(dir.path().join("study/frontier.csv"), "zoo,method,axis,margin,verdict\nmlp,G.pt,novelty,-0.0412,below\n").unwrap();
        let t = Tables::new(dir.path());
        (dir, t)
    }

    #[test]
    fn figures_are_checked_at_their_precision_and_refreshed() {
        let (_dir, mut t) = tables();
        let text = "G.pt: <!--wl study zoo=mlp method=G.pt accuracy-->0.730<!--/wl--> ± <!--wl study zoo=mlp method=G.pt accuracy_ci95-->0.01<!--/wl-->,\nmargin <!--wl study/frontier method=G.pt axis=novelty margin-->−0.04<!--/wl--> (<!--wl study/frontier method=G.pt verdict-->below<!--/wl-->); noise <!--wl study method=\"noise (mlp)[sigma=0.05]\" accuracy-->0.70<!--/wl-->";
        assert_eq!(check(text, &mut t), vec![]);
        let edited = text.replace("0.730", "0.735");
        let problems = check(&edited, &mut t);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("is 0.730, written 0.735"), "{problems:?}");
        let (fixed, problems) = refresh(&edited, &mut t);
        assert!(problems.is_empty());
        assert_eq!(fixed, text);
    }

    #[test]
    fn a_marker_that_names_no_single_row_or_no_column_is_a_problem() {
        let (_dir, mut t) = tables();
        let problems = check("a <!--wl study method=G.pt accuracy-->0.73<!--/wl-->\nb <!--wl study zoo=mlp method=G.pt nope-->1<!--/wl--> c <!--wl other x-->1<!--/wl-->", &mut t);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].message.contains("2 rows of study"), "{problems:?}");
        assert_eq!(problems[1].line, 2);
        assert!(problems[1].message.contains("no column `nope`"), "{problems:?}");
        assert!(problems[2].message.contains("cannot read"), "{problems:?}");
        assert!(markers("x <!--wl study accuracy-->1").is_err(), "unclosed");
    }

    #[test]
    fn numbers_take_the_written_form() {
        assert_eq!(format_like("0.0123", "+0.01"), "+0.01");
        assert_eq!(format_like("-0.0001", "0.000"), "0.000");
        assert_eq!(format_like("-0.26", "−0.1"), "−0.3");
        assert_eq!(format_like("12.345", "12"), "12");
        assert_eq!(format_like("above", "on"), "above");
    }
}
