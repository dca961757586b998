//! Sweeps: any value of a `[data.*]`, `[zoo.*]` or `[[method]]` entry (plugin config
//! included) may be replaced by `{ sweep = [a, b, …] }` or by a range
//! `{ sweep = { from, to, steps, scale = "linear" | "log" } }`. Expansion happens on the
//! document, after `extends` and `--set` and before the schema, so every variant is validated
//! like a hand-written entry.
//!
//! Each sweep is an *axis*; `[sweep] zip = [["a.b", "c.d"]]` makes several sweeps one axis
//! (their values go together). An entry varies over the axes of its own sweeps and of the
//! entries it refers to — a method over its zoo's, a zoo over its dataset's — so sweeping a
//! zoo fans out the methods that use it, and two sweeps in one entry form a grid. Each variant
//! is an entry of its own, named after its values (`noise[sigma=0.05]`), referring to its
//! dependencies' variants; its stage keys hash its content, so adding a value to a sweep runs
//! only the new variants.

use std::collections::BTreeMap;

use serde::Serialize;
use toml::{Table, Value};

use crate::diagnostic::Diagnostic;
use crate::spans::{Renames, Seg, Spans};
use crate::suggest::suggest;

/// The sections whose entries may hold sweeps (their references: [`references`]).
const SECTIONS: [&str; 3] = ["data", "zoo", "method"];

/// Most steps a `{ from, to, steps }` range takes.
const MAX_RANGE_STEPS: usize = 10_000;

/// Default of `[experiment] max_variants`.
pub const DEFAULT_MAX_VARIANTS: usize = 64;

/// What a manifest's sweeps expanded into.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Expansion {
    /// The axes: one per sweep, or per zip group.
    pub axes: Vec<Axis>,
    /// Every entry that varies, in manifest order (datasets, zoos, then methods).
    pub variants: Vec<Variant>,
    /// How expanded paths map back to the written ones (for error locations).
    #[serde(skip)]
    pub renames: Renames,
}

impl Expansion {
    /// True when the manifest holds no sweep.
    pub fn is_empty(&self) -> bool {
        self.axes.is_empty()
    }

    /// Number of grid points: the product of the axes' lengths.
    pub fn grid(&self) -> usize {
        self.axes.iter().map(|a| a.len()).product()
    }

    /// The variant named `name` in `section`.
    pub fn variant(&self, section: &str, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.section == section && v.name == name)
    }
}

/// A set of swept keys whose values go together (one key, or a zip group).
#[derive(Debug, Clone, Serialize)]
pub struct Axis {
    pub sites: Vec<Site>,
}

impl Axis {
    pub fn len(&self) -> usize {
        self.sites.first().map_or(0, |s| s.values.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One swept key.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// The key as written: `method.noise.config.sigma` (entries of `[[method]]` by name).
    pub key: String,
    /// Its last key (`sigma`); a variant's names lengthen it when two of its keys share one.
    pub label: String,
    /// Its values, in order.
    pub values: Vec<Value>,
    #[serde(skip)]
    path: Vec<Seg>,
    /// The same key with the method's index instead of its name (`method.0.config.sigma`).
    #[serde(skip)]
    alias: String,
}

/// An entry of the expanded manifest that stands for one point of its sweeps.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    /// `data`, `zoo` or `method`.
    pub section: String,
    /// Its name in the expanded manifest: `noise[sigma=0.05]`.
    pub name: String,
    /// The entry it was expanded from: `noise`.
    pub base: String,
    /// The swept values it takes, its own and its dependencies'.
    pub params: Vec<Param>,
}

/// One swept key's value in a variant.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub key: String,
    /// How the variant's name shows the key: the last key, longer when two would read the same.
    pub label: String,
    pub value: Value,
}

impl Param {
    /// The value as a number, for plots (booleans as 0/1).
    pub fn number(&self) -> Option<f64> {
        match &self.value {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Boolean(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// The value as it appears in names.
    pub fn display(&self) -> String {
        display(&self.value)
    }
}

/// Expands every sweep of `doc`. `spans` locates problems in the written document.
pub fn expand(doc: &Table, spans: &Spans) -> Result<(Table, Expansion), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut sites = Vec::new();
    for (section, value) in doc {
        let allowed = SECTIONS.contains(&section.as_str());
        find_sites(value, &mut vec![Seg::Key(section.clone())], allowed, doc, spans, &mut sites, &mut errors);
    }
    if sites.is_empty() && errors.is_empty() {
        if doc.get("sweep").is_some_and(|s| s.get("zip").is_some()) {
            errors.push(Diagnostic::new("`[sweep] zip` names keys, but the manifest holds no sweep", spans.value(&crate::path!["sweep", "zip"])));
            return Err(errors);
        }
        let renames = Renames { methods: (0..doc.get("method").and_then(|m| m.as_array()).map_or(0, |a| a.len())).collect(), ..Default::default() };
        return Ok((doc.clone(), Expansion { renames, ..Default::default() }));
    }
    let axes = make_axes(doc, sites, spans, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let cap = doc.get("experiment").and_then(|e| e.get("max_variants")).and_then(|v| v.as_integer()).map_or(DEFAULT_MAX_VARIANTS, |c| c.max(0) as usize);
    let mut expander = Expander { doc, axes: &axes, cap, count: 0, done: BTreeMap::new() };
    let cap_error = |count: usize| {
        let at = spans.value(&crate::path!["experiment", "max_variants"]).or_else(|| spans.value(&axes[0].sites[0].path));
        vec![
            Diagnostic::new(format!("the sweeps expand to {count} or more variants, above `[experiment] max_variants` = {cap}"), at)
                .with_help(Some("sweep fewer values, or raise `max_variants` if you mean it".to_string())),
        ]
    };
    let mut out = doc.clone();
    let mut expansion = Expansion { axes: axes.clone(), ..Default::default() };
    for section in ["data", "zoo"] {
        let Some(entries) = doc.get(section).and_then(|s| s.as_table()) else { continue };
        let mut new = Table::new();
        for (name, entry) in entries {
            let variants = expander.entry(section, name).map_err(cap_error)?;
            match variants {
                None => {
                    new.insert(name.clone(), entry.clone());
                }
                Some(list) => {
                    for v in list {
                        expansion.renames.entries.insert((section.to_string(), v.name.clone()), name.clone());
                        expansion.variants.push(Variant { section: section.into(), name: v.name.clone(), base: name.clone(), params: v.params.clone() });
                        new.insert(v.name.clone(), Value::Table(v.table.clone()));
                    }
                }
            }
        }
        out.insert(section.to_string(), Value::Table(new));
    }
    if let Some(methods) = doc.get("method").and_then(|m| m.as_array()) {
        let mut new = Vec::new();
        for (i, entry) in methods.iter().enumerate() {
            let name = entry.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
            match expander.entry("method", &i.to_string()).map_err(cap_error)? {
                None => {
                    new.push(entry.clone());
                    expansion.renames.methods.push(i);
                }
                Some(list) => {
                    for v in list {
                        expansion.variants.push(Variant { section: "method".into(), name: v.name.clone(), base: name.clone(), params: v.params.clone() });
                        new.push(Value::Table(v.table.clone()));
                        expansion.renames.methods.push(i);
                    }
                }
            }
        }
        out.insert("method".to_string(), Value::Array(new));
    }
    Ok((out, expansion))
}

/// Collects the sweep tables under `value`, refusing them outside the sections that allow them.
fn find_sites(value: &Value, path: &mut Vec<Seg>, allowed: bool, doc: &Table, spans: &Spans, sites: &mut Vec<Site>, errors: &mut Vec<Diagnostic>) {
    match value {
        Value::Table(t) if t.contains_key("sweep") => match site(t, path, allowed, doc, spans) {
            Ok(s) => sites.push(s),
            Err(d) => errors.push(d),
        },
        Value::Table(t) => {
            for (k, v) in t {
                path.push(Seg::Key(k.clone()));
                find_sites(v, path, allowed, doc, spans, sites, errors);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                find_sites(v, path, allowed, doc, spans, sites, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Reads one `{ sweep = … }` table.
fn site(t: &Table, path: &[Seg], allowed: bool, doc: &Table, spans: &Spans) -> Result<Site, Diagnostic> {
    let at = spans.value(path);
    let fail = |message: String, help: &str| Err(Diagnostic::new(message, at.clone()).with_help((!help.is_empty()).then(|| help.to_string())));
    let key = written_key(path, doc, true);
    if !allowed {
        return fail(
            format!("`{key}` is swept, but sweeps are allowed only in `[data.*]`, `[zoo.*]` and `[[method]]` entries"),
            "seeds already repeat every method stage; list them in `[experiment] seeds`",
        );
    }
    if path.len() < 3 {
        return fail(format!("`{key}` is swept as a whole; sweep one of its keys"), "");
    }
    if matches!(path.last(), Some(Seg::Key(k)) if k == "name") {
        return fail(format!("`{key}` is swept, but names are not swept"), "variants are named after their values");
    }
    if let Some(extra) = t.keys().find(|k| *k != "sweep") {
        return fail(format!("`{key}`: a sweep table holds only `sweep`, not `{extra}`"), "write `{ sweep = [..] }` or `{ sweep = { from, to, steps, scale } }`");
    }
    let values = match &t["sweep"] {
        Value::Array(list) if list.is_empty() => return fail(format!("`{key}`: the sweep lists no value"), ""),
        Value::Array(list) => {
            if let Some((_, v)) = list.iter().enumerate().find(|(i, v)| list[..*i].contains(v)) {
                return fail(format!("`{key}`: the sweep lists {} twice", display(v)), "");
            }
            list.clone()
        }
        Value::Table(range) => match range_values(range) {
            Ok(values) => values,
            Err((message, help)) => return fail(format!("`{key}`: {message}"), help),
        },
        _ => return fail(format!("`{key}`: `sweep` is a list of values or a range table"), "`{ sweep = [0.01, 0.1] }` or `{ sweep = { from = 0.01, to = 1.0, steps = 5, scale = \"log\" } }`"),
    };
    let label = key.rsplit('.').next().unwrap_or_default().to_string();
    Ok(Site { key, label, values, path: path.to_vec(), alias: written_key(path, doc, false) })
}

/// The values of `{ from, to, steps, scale }`: evenly spaced, or evenly spaced in log scale;
/// integers when both ends are.
fn range_values(range: &Table) -> Result<Vec<Value>, (String, &'static str)> {
    const HELP: &str = "a range is `{ from = 0.01, to = 1.0, steps = 5, scale = \"log\" }` (scale defaults to linear)";
    if let Some(extra) = range.keys().find(|k| !["from", "to", "steps", "scale"].contains(&k.as_str())) {
        return Err((format!("unknown range key `{extra}`"), HELP));
    }
    let number = |k: &str| range.get(k).and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)));
    let (Some(from), Some(to)) = (number("from"), number("to")) else {
        return Err(("a range needs numbers `from` and `to`".into(), HELP));
    };
    let steps = match range.get("steps").and_then(|s| s.as_integer()) {
        // Bounded before anything is drawn: `[experiment] max_variants` is checked only on
        // the expansion, and a billion steps would not fit in memory to get there.
        Some(s) if s > MAX_RANGE_STEPS as i64 => return Err((format!("a range takes at most {MAX_RANGE_STEPS} steps, not {s}"), HELP)),
        Some(s) if s >= 2 => s as usize,
        _ => return Err(("a range needs `steps`, an integer of at least 2".into(), HELP)),
    };
    let log = match range.get("scale").map(|s| s.as_str()) {
        None | Some(Some("linear")) => false,
        Some(Some("log")) => true,
        _ => return Err(("`scale` is \"linear\" or \"log\"".into(), HELP)),
    };
    if log && (from <= 0.0 || to <= 0.0) {
        return Err(("a log range needs `from` and `to` above zero".into(), HELP));
    }
    let at = |i: usize| {
        let t = i as f64 / (steps - 1) as f64;
        if log { (from.ln() + t * (to.ln() - from.ln())).exp() } else { from + t * (to - from) }
    };
    let integers = range.get("from").is_some_and(|v| v.is_integer()) && range.get("to").is_some_and(|v| v.is_integer());
    let points: Vec<f64> = (0..steps).map(at).collect();
    let values: Vec<Value> = match integers {
        true => points.iter().map(|x| Value::Integer(x.round() as i64)).collect(),
        // The fewest significant digits (at least 3) that keep the values apart: names read
        // `sigma=0.0197`, not `sigma=0.01974350486`, and 0.1 + 2 × 0.1 is 0.3.
        false => (3..=12)
            .map(|digits| points.iter().map(|x| significant(*x, digits)).collect::<Vec<_>>())
            .find(|v| distinct(v.iter().map(|x| x.to_bits() as i64)))
            .unwrap_or(points)
            .into_iter()
            .map(Value::Float)
            .collect(),
    };
    if !distinct(values.iter().map(|v| v.as_integer().unwrap_or_else(|| v.as_float().map_or(0, |f| f.to_bits() as i64)))) {
        return Err(("this integer range repeats values; take fewer steps or a wider range".into(), HELP));
    }
    Ok(values)
}

/// Whether no two of `keys` are equal (sorted, not compared pairwise: a range may be long).
fn distinct(keys: impl Iterator<Item = i64>) -> bool {
    let mut keys: Vec<i64> = keys.collect();
    keys.sort_unstable();
    keys.windows(2).all(|w| w[0] != w[1])
}

/// `x` rounded to `digits` significant digits.
fn significant(x: f64, digits: usize) -> f64 {
    format!("{x:.prec$e}", prec = digits - 1).parse().unwrap_or(x)
}

/// `method.noise.config.sigma` (by name) or `method.0.config.sigma` (by index).
fn written_key(path: &[Seg], doc: &Table, by_name: bool) -> String {
    let mut parts = Vec::new();
    for (n, seg) in path.iter().enumerate() {
        parts.push(match seg {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) if n == 1 && by_name => doc.get("method").and_then(|m| m.get(*i)).and_then(|m| m.get("name")).and_then(|n| n.as_str()).map_or(i.to_string(), str::to_string),
            Seg::Index(i) => i.to_string(),
        });
    }
    parts.join(".")
}

/// Short labels for the swept keys of one variant: the last key of each, lengthened towards
/// the entry (`config.seed`, `mlp.seed`) only while two of them would read the same.
fn short_labels(keys: &[&str]) -> Vec<String> {
    // Below the section: `noise.config.sigma`, `mlp.models`.
    let parts: Vec<Vec<&str>> = keys.iter().map(|k| k.split('.').skip(1).collect()).collect();
    let mut depth = vec![1usize; keys.len()];
    loop {
        let labels: Vec<String> = parts.iter().zip(&depth).map(|(p, d)| p[p.len().saturating_sub(*d)..].join(".")).collect();
        let mut changed = false;
        for i in 0..keys.len() {
            if (0..keys.len()).any(|j| j != i && labels[j] == labels[i]) && depth[i] < parts[i].len() {
                depth[i] += 1;
                changed = true;
            }
        }
        if !changed {
            return labels;
        }
    }
}

/// One axis per sweep, except the keys `[sweep] zip` groups, which share one.
fn make_axes(doc: &Table, sites: Vec<Site>, spans: &Spans, errors: &mut Vec<Diagnostic>) -> Vec<Axis> {
    let mut group_of: Vec<Option<usize>> = vec![None; sites.len()];
    let zip = doc.get("sweep").and_then(|s| s.get("zip")).and_then(|z| z.as_array()).cloned().unwrap_or_default();
    let keys: Vec<String> = sites.iter().map(|s| s.key.clone()).collect();
    for (g, group) in zip.iter().enumerate() {
        let members = group.as_array().cloned().unwrap_or_default();
        let mut lens = Vec::new();
        for (k, key) in members.iter().enumerate() {
            let at = spans.value(&crate::path!["sweep", "zip", g, k]);
            let Some(key) = key.as_str() else {
                errors.push(Diagnostic::new("`[sweep] zip` lists groups of keys, as strings", at));
                continue;
            };
            let Some(i) = sites.iter().position(|s| s.key == key || s.alias == key) else {
                errors.push(Diagnostic::new(format!("`[sweep] zip` names `{key}`, which is not swept"), at).with_help(Some(suggest(key, "swept keys", &keys))));
                continue;
            };
            if group_of[i].is_some_and(|other| other != g) {
                errors.push(Diagnostic::new(format!("`{key}` is in two zip groups"), at));
                continue;
            }
            group_of[i] = Some(g);
            lens.push((key.to_string(), sites[i].values.len()));
        }
        if lens.iter().any(|(_, n)| *n != lens[0].1) {
            let listed: Vec<String> = lens.iter().map(|(k, n)| format!("`{k}` has {n}")).collect();
            errors.push(Diagnostic::new(format!("zipped sweeps need as many values each: {}", listed.join(", ")), spans.value(&crate::path!["sweep", "zip", g])));
        }
    }
    let mut axes: Vec<Axis> = Vec::new();
    let mut axis_of_group: BTreeMap<usize, usize> = BTreeMap::new();
    for (site, group) in sites.into_iter().zip(group_of) {
        match group.and_then(|g| axis_of_group.get(&g).copied()) {
            Some(a) => axes[a].sites.push(site),
            None => {
                if let Some(g) = group {
                    axis_of_group.insert(g, axes.len());
                }
                axes.push(Axis { sites: vec![site] });
            }
        }
    }
    axes
}

/// One point of an entry's sweeps.
#[derive(Debug, Clone)]
struct Point {
    /// Axis → value index, for every axis the entry varies over.
    assign: BTreeMap<usize, usize>,
    name: String,
    table: Table,
    params: Vec<Param>,
}

struct Expander<'a> {
    doc: &'a Table,
    axes: &'a [Axis],
    cap: usize,
    count: usize,
    /// (section, name or method index) → its points, or `None` when it does not vary.
    done: BTreeMap<(String, String), Option<Vec<Point>>>,
}

impl Expander<'_> {
    /// The points of entry `id` of `section` (a name; a method's index), or `None` when it
    /// does not vary. `Err` carries the count reached when it passes the cap.
    fn entry(&mut self, section: &str, id: &str) -> Result<Option<Vec<Point>>, usize> {
        if let Some(done) = self.done.get(&(section.to_string(), id.to_string())) {
            return Ok(done.clone());
        }
        let entry = match section {
            "method" => id.parse::<usize>().ok().and_then(|i| self.doc.get("method").and_then(|m| m.get(i))),
            _ => self.doc.get(section).and_then(|s| s.get(id)),
        };
        let Some(Value::Table(entry)) = entry else { return Ok(None) };
        let prefix: Seg = match section {
            "method" => Seg::Index(id.parse().unwrap_or(0)),
            _ => Seg::Key(id.to_string()),
        };
        let own: Vec<usize> = (0..self.axes.len()).filter(|&a| self.axes[a].sites.iter().any(|s| s.path[0] == Seg::Key(section.into()) && s.path[1] == prefix)).collect();
        let base = match section {
            "method" => entry.get("name").and_then(|n| n.as_str()).unwrap_or(id).to_string(),
            _ => id.to_string(),
        };
        // Every combination of the entry's own axes, first axis slowest.
        let mut combos: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new()];
        for &a in &own {
            combos = combos.into_iter().flat_map(|c| (0..self.axes[a].len()).map(move |v| with(&c, a, v))).collect();
            if combos.len() > self.cap {
                return Err(combos.len());
            }
        }
        let mut points = Vec::new();
        for combo in combos {
            let mut table = entry.clone();
            let mut params = Vec::new();
            for (&a, &v) in &combo {
                for s in self.axes[a].sites.iter().filter(|s| s.path[0] == Seg::Key(section.into()) && s.path[1] == prefix) {
                    replace(&mut table, &s.path[2..], s.values[v].clone());
                    params.push(Param { key: s.key.clone(), label: s.label.clone(), value: s.values[v].clone() });
                }
            }
            let mut partial = vec![Point { assign: combo, name: String::new(), table, params }];
            for (key, target) in references(section) {
                partial = self.follow(partial, key, target)?;
            }
            points.extend(partial);
            if points.len() > self.cap {
                return Err(points.len());
            }
        }
        let varies = points.iter().any(|p| !p.assign.is_empty());
        let result = if varies {
            for p in &mut points {
                let labels = short_labels(&p.params.iter().map(|q| q.key.as_str()).collect::<Vec<_>>());
                for (q, label) in p.params.iter_mut().zip(labels) {
                    q.label = label;
                }
                let labels: Vec<String> = p.params.iter().map(|q| format!("{}={}", q.label, q.display())).collect();
                p.name = format!("{base}[{}]", labels.join(","));
                if section == "method" {
                    p.table.insert("name".into(), Value::String(p.name.clone()));
                }
            }
            self.count += points.len();
            if self.count > self.cap {
                return Err(self.count);
            }
            Some(points)
        } else {
            None
        };
        self.done.insert((section.to_string(), id.to_string()), result.clone());
        Ok(result)
    }

    /// Points with reference `key` (to a `target` entry) bound to each compatible variant of
    /// the entry it names.
    fn follow(&mut self, points: Vec<Point>, key: &str, target: &str) -> Result<Vec<Point>, usize> {
        let mut out = Vec::new();
        for p in points {
            let mut bound = vec![p.clone()];
            let names: Vec<(Option<usize>, String)> = match p.table.get(key) {
                Some(Value::String(s)) => vec![(None, s.clone())],
                Some(Value::Array(list)) => list.iter().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (Some(i), s.to_string()))).collect(),
                _ => vec![],
            };
            for (slot, name) in names {
                let Some(variants) = self.entry(target, &name)? else { continue };
                let mut next = Vec::new();
                for b in bound {
                    for v in variants.iter().filter(|v| v.assign.iter().all(|(a, i)| b.assign.get(a).is_none_or(|j| j == i))) {
                        let mut b = b.clone();
                        b.assign.extend(v.assign.clone());
                        for q in &v.params {
                            if !b.params.iter().any(|o| o.key == q.key) {
                                b.params.push(q.clone());
                            }
                        }
                        let reference = Value::String(v.name.clone());
                        match (slot, b.table.get_mut(key)) {
                            (Some(i), Some(Value::Array(list))) => list[i] = reference,
                            _ => {
                                b.table.insert(key.into(), reference);
                            }
                        }
                        next.push(b);
                    }
                }
                bound = next;
                if bound.len() > self.cap {
                    return Err(bound.len());
                }
            }
            out.extend(bound);
        }
        Ok(out)
    }
}

/// The keys through which an entry of `section` refers to entries of another section.
fn references(section: &str) -> &'static [(&'static str, &'static str)] {
    match section {
        "zoo" => &[("data", "data")],
        "method" => &[("zoo", "zoo"), ("zoos", "zoo")],
        _ => &[],
    }
}

fn with(map: &BTreeMap<usize, usize>, k: usize, v: usize) -> BTreeMap<usize, usize> {
    let mut m = map.clone();
    m.insert(k, v);
    m
}

/// Sets the value at `path` (below an entry) to `value`.
fn replace(table: &mut Table, path: &[Seg], value: Value) {
    let Some((first, rest)) = path.split_first() else { return };
    let Seg::Key(k) = first else { return };
    let Some(slot) = table.get_mut(k) else { return };
    replace_in(slot, rest, value);
}

fn replace_in(slot: &mut Value, path: &[Seg], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *slot = value;
        return;
    };
    let next = match (first, slot) {
        (Seg::Key(k), Value::Table(t)) => t.get_mut(k),
        (Seg::Index(i), Value::Array(a)) => a.get_mut(*i),
        _ => None,
    };
    if let Some(next) = next {
        replace_in(next, rest, value);
    }
}

/// A value as variant names show it: numbers and booleans as written, strings bare, lists
/// and tables compact.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        // `1.0`, not `1`: an integer and a float are different values (and stage keys).
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.1}"),
        // 1e300 and 1e-300 as such, not as 300 digits (a variant's name holds it).
        Value::Float(f) => Some(f.to_string()).filter(|s| s.len() <= 24).unwrap_or_else(|| format!("{f:e}")),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(display).collect::<Vec<_>>().join(",")),
        Value::Table(t) => format!("{{{}}}", t.iter().map(|(k, v)| format!("{k}={}", display(v))).collect::<Vec<_>>().join(",")),
    }
}
