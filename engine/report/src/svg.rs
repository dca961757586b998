//! Minimal SVG plotting: enough for the report's scatter, histogram, line and heatmap plots, with axes,
//! tick labels, axis titles and a legend. Output is plain SVG text for inline embedding.

use std::fmt::Write;

use crate::escape;

/// Colours of series (colour-blind friendly).
pub const PALETTE: [&str; 10] = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999", "#882255"];

thread_local! {
    /// The colours of the report being rendered: name → palette slot ([`assign_colours`]).
    static ASSIGNED: std::cell::RefCell<std::collections::HashMap<String, usize>> = std::cell::RefCell::new(std::collections::HashMap::new());
}

/// A name's own palette slot: FNV-1a of its bytes (the same in every report and process).
fn preferred(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % PALETTE.len() as u64) as usize
}

/// Gives each of `names` (the methods of one report, most important first) a colour for every
/// plot of that report: its own slot when free, else the next free one, in the order given — so
/// a method keeps its colour from plot to plot and from report to report (among the same
/// methods), the first ten never share one, and with more than ten (a noise sweep) the ones
/// given first keep theirs. Names not given fall back to their own slot.
pub fn assign_colours<'a>(names: impl IntoIterator<Item = &'a str>) {
    let mut names: Vec<&str> = names.into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    let mut taken = [false; PALETTE.len()];
    let mut slots = std::collections::HashMap::new();
    for name in names {
        let first = preferred(name);
        let slot = (0..PALETTE.len()).map(|k| (first + k) % PALETTE.len()).find(|&s| !taken[s]).unwrap_or(first);
        taken[slot] = true;
        slots.insert(name.to_string(), slot);
    }
    ASSIGNED.with(|a| *a.borrow_mut() = slots);
}

/// The series name of the noise frontier's curve: drawn in a neutral dark grey, apart from
/// every method's colour.
pub const FRONTIER: &str = "noise frontier";

/// The colour of series `name` ([`assign_colours`]).
pub fn colour_of(name: &str) -> &'static str {
    if name == FRONTIER {
        return "#444444";
    }
    PALETTE[ASSIGNED.with(|a| a.borrow().get(name).copied()).unwrap_or_else(|| preferred(name))]
}

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 52.0;

/// A named set of points.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Per point, the index of its row in the report's table of points (`data-i` on the mark,
    /// which the report's script looks up for its tooltip); empty when points have no row.
    pub ids: Vec<usize>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), points, ids: Vec::new() }
    }
}

/// "Nice" tick positions covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 * span {
        out.push(if t.abs() < 1e-12 * step { 0.0 } else { t });
        t += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 0.01 && v.abs() < 10_000.0) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

struct Frame {
    /// Range of x — of log10(x) on a log axis.
    x: (f64, f64),
    y: (f64, f64),
    log_x: bool,
    /// No x tick left of this (axis units): a histogram's zero bin sits there.
    tick_floor: f64,
}

impl Frame {
    fn fit(points: impl Iterator<Item = (f64, f64)>) -> Frame {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let pad = |a: f64, b: f64| {
            let d = if b > a { (b - a) * 0.05 } else { a.abs().max(1.0) * 0.05 };
            (a - d, b + d)
        };
        Frame { x: pad(x0, x1), y: pad(y0, y1), log_x: false, tick_floor: f64::NEG_INFINITY }
    }
    /// A frame whose x axis is logarithmic (x values must be positive).
    fn fit_log_x(points: impl Iterator<Item = (f64, f64)>) -> Frame {
        Frame { log_x: true, ..Frame::fit(points.map(|(x, y)| (x.log10(), y))) }
    }
    fn px(&self, x: f64) -> f64 {
        let x = if self.log_x { x.log10() } else { x };
        LEFT + (x - self.x.0) / (self.x.1 - self.x.0) * (W - LEFT - RIGHT)
    }
    /// Tick positions on the x axis (in data units).
    fn x_ticks(&self) -> Vec<f64> {
        let from = self.x.0.max(self.tick_floor);
        if self.log_x && self.x.1 - from >= 2.0 {
            // Whole decades read best on a wide log axis.
            return (from.ceil() as i32..=self.x.1.floor() as i32).map(|e| 10f64.powi(e)).collect();
        }
        let t = ticks(from, self.x.1);
        if self.log_x { t.into_iter().map(|e| 10f64.powf(e)).collect() } else { t }
    }
    fn py(&self, y: f64) -> f64 {
        H - BOTTOM - (y - self.y.0) / (self.y.1 - self.y.0) * (H - TOP - BOTTOM)
    }
}

fn axes(svg: &mut String, f: &Frame, title: &str, xlabel: &str, ylabel: &str) {
    let _ = write!(svg, r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"#, t = escape(title));
    let _ = write!(svg, r#"<text class="plot-title" x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#, (LEFT + W - RIGHT) / 2.0, escape(title));
    let _ = write!(svg, r##"<g class="axis x-axis"><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/>"##, b = H - BOTTOM, r = W - RIGHT);
    for t in f.x_ticks() {
        let x = f.px(t);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b2}" stroke="#333"/><text x="{x:.1}" y="{ty}" text-anchor="middle" font-size="11">{}</text>"##,
            fmt_tick(t),
            b = H - BOTTOM,
            b2 = H - BOTTOM + 5.0,
            ty = H - BOTTOM + 18.0
        );
    }
    let _ = write!(svg, r#"<text class="axis-label" x="{}" y="{}" text-anchor="middle" font-size="13">{}</text></g>"#, (LEFT + W - RIGHT) / 2.0, H - 10.0, escape(xlabel));
    let _ = write!(svg, r##"<g class="axis y-axis"><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#333"/>"##, b = H - BOTTOM);
    for t in ticks(f.y.0, f.y.1) {
        let y = f.py(t);
        let _ = write!(
            svg,
            r##"<line x1="{l2}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#333"/><line x1="{LEFT}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#eee"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11">{}</text>"##,
            fmt_tick(t),
            l2 = LEFT - 5.0,
            r = W - RIGHT,
            tx = LEFT - 8.0,
            ty = y + 4.0
        );
    }
    let _ = write!(svg, r#"<text class="axis-label" transform="translate(16 {}) rotate(-90)" text-anchor="middle" font-size="13">{}</text></g>"#, (TOP + H - BOTTOM) / 2.0, escape(ylabel));
}

fn legend(svg: &mut String, names: &[&str], line: bool) {
    let _ = write!(svg, r#"<g class="legend">"#);
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 8.0 + 18.0 * i as f64;
        let x = W - RIGHT + 14.0;
        let c = colour_of(name);
        let _ = write!(svg, r#"<g class="legend-item" data-name="{}">"#, escape(name));
        if line {
            let _ = write!(svg, r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{c}" stroke-width="2"/>"#, x + 14.0);
        } else {
            let _ = write!(svg, r#"<circle cx="{}" cy="{y}" r="5" fill="{c}"/>"#, x + 7.0);
        }
        let _ = write!(svg, r#"<text x="{}" y="{}" font-size="12">{}</text></g>"#, x + 20.0, y + 4.0, escape(name));
    }
    let _ = write!(svg, "</g>");
}

/// A scatter plot, one colour per series.
pub fn scatter(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let f = Frame::fit(series.iter().flat_map(|s| s.points.iter().copied()));
    let mut svg = String::new();
    axes(&mut svg, &f, title, xlabel, ylabel);
    for s in series {
        let c = colour_of(&s.name);
        let _ = write!(svg, r#"<g class="series" data-name="{}">"#, escape(&s.name));
        for (j, &(x, y)) in s.points.iter().enumerate().filter(|(_, (x, y))| x.is_finite() && y.is_finite()) {
            let id = s.ids.get(j).map_or(String::new(), |i| format!(r#" data-i="{i}""#));
            let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{c}" fill-opacity="0.45" stroke="{c}" stroke-width="1"{id}/>"#, f.px(x), f.py(y));
        }
        let _ = write!(svg, "</g>");
    }
    legend(&mut svg, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), false);
    svg.push_str("</svg>");
    svg
}

/// A scatter plot with the diagonal y = x dashed across it (predictions against the truth).
pub fn scatter_diagonal(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let mut svg = scatter(title, xlabel, ylabel, series);
    let f = Frame::fit(series.iter().flat_map(|s| s.points.iter().copied()));
    let (lo, hi) = (f.x.0.max(f.y.0), f.x.1.min(f.y.1));
    if hi > lo {
        let line = format!(r##"<line class="diagonal" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#777" stroke-dasharray="4 3"/>"##, f.px(lo), f.py(lo), f.px(hi), f.py(hi));
        let end = svg.rfind("</svg>").unwrap_or(svg.len());
        svg.insert_str(end, &line);
    }
    svg
}

/// Overlaid histograms (as step outlines) of each series' x values, with `bins` shared bins.
/// Values that span 30× or more (distances from copies at 0.02 to new models at 13) get a
/// logarithmic axis, with exact zeros (copies) in a bin of their own at its left, labelled 0 —
/// on a linear axis they would all share the first bar.
pub fn histogram(title: &str, xlabel: &str, series: &[Series], bins: usize) -> String {
    let values: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).filter(|v| v.is_finite()).collect();
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let positive = values.iter().copied().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let log = lo >= 0.0 && positive.is_finite() && hi / positive >= 30.0;
    // Bin edges in axis units (log10 of the value on a log axis).
    let (lo, hi) = if log {
        (positive.log10(), hi.log10())
    } else if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (lo.min(0.0), lo.max(0.0) + 1.0)
    };
    let width = (hi - lo) / bins as f64;
    let zeros = log && values.contains(&0.0);
    let counts: Vec<(Vec<f64>, f64)> = series
        .iter()
        .map(|s| {
            let (mut c, mut zero) = (vec![0.0; bins], 0.0);
            let n = s.points.len().max(1) as f64;
            for &(v, _) in s.points.iter().filter(|p| p.0.is_finite()) {
                if log && v <= 0.0 {
                    zero += 1.0 / n;
                    continue;
                }
                let v = if log { v.log10() } else { v };
                let b = (((v - lo) / width).max(0.0) as usize).min(bins - 1);
                c[b] += 1.0 / n;
            }
            (c, zero)
        })
        .collect();
    let top = counts.iter().flat_map(|(c, z)| c.iter().chain([z])).fold(0.0f64, |a, &b| a.max(b));
    // The zero bin sits one bin-width apart, left of the first.
    let left = if zeros { lo - 2.0 * width } else { lo };
    let mut f = Frame::fit([(left, 0.0), (hi, top)].into_iter());
    f.log_x = log;
    if zeros {
        f.tick_floor = lo - 0.5 * width;
    }
    let px = |x: f64| if log { f.px(10f64.powf(x)) } else { f.px(x) };
    let mut svg = String::new();
    axes(&mut svg, &f, title, if log { format!("{xlabel} (log scale)") } else { xlabel.to_string() }.as_str(), "fraction of models");
    if zeros {
        let x = px(lo - 1.5 * width);
        let _ = write!(svg, r#"<text x="{x:.1}" y="{}" text-anchor="middle" font-size="11" font-weight="bold">0</text>"#, H - BOTTOM + 18.0);
    }
    for (i, (c, zero)) in counts.iter().enumerate() {
        let colour = colour_of(&series[i].name);
        let mut d = String::new();
        if zeros && *zero > 0.0 {
            let (x0, x1) = (px(lo - 2.0 * width), px(lo - width));
            let _ = write!(d, "M{x0:.1},{b:.1} L{x0:.1},{h:.1} L{x1:.1},{h:.1} L{x1:.1},{b:.1} ", b = f.py(0.0), h = f.py(*zero));
        }
        let _ = write!(d, "M{:.1},{:.1}", px(lo), f.py(0.0));
        for (b, &h) in c.iter().enumerate() {
            let (x0, x1) = (lo + b as f64 * width, lo + (b + 1) as f64 * width);
            let _ = write!(d, " L{:.1},{:.1} L{:.1},{:.1}", px(x0), f.py(h), px(x1), f.py(h));
        }
        let _ = write!(d, " L{:.1},{:.1}", px(hi), f.py(0.0));
        let _ = write!(svg, r#"<path class="series" data-name="{}" d="{d}" fill="{colour}" fill-opacity="0.15" stroke="{colour}" stroke-width="2"/>"#, escape(&series[i].name));
    }
    legend(&mut svg, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), true);
    svg.push_str("</svg>");
    svg
}

/// Line plot, one line per series (points sorted by x).
pub fn lines(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let f = Frame::fit(series.iter().flat_map(|s| s.points.iter().copied()));
    let mut svg = String::new();
    axes(&mut svg, &f, title, xlabel, ylabel);
    for s in series {
        let c = colour_of(&s.name);
        let mut pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let d = polyline(&f, pts.iter().copied());
        let _ = write!(svg, r#"<path class="series" data-name="{}" d="{d}" fill="none" stroke="{c}" stroke-width="2"/>"#, escape(&s.name));
    }
    legend(&mut svg, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), true);
    svg.push_str("</svg>");
    svg
}

/// The SVG path data of a line through `points` (in data units), in order.
fn polyline(f: &Frame, points: impl Iterator<Item = (f64, f64)>) -> String {
    let d: Vec<String> = points.enumerate().map(|(j, (x, y))| format!("{}{:.1},{:.1}", if j == 0 { "M" } else { "L" }, f.px(x), f.py(y))).collect();
    d.join(" ")
}

/// A line with a 95 % interval at each point: (x, mean, half-width).
#[derive(Debug, Clone)]
pub struct IntervalSeries {
    pub name: String,
    pub points: Vec<(f64, f64, Option<f64>)>,
}

/// Lines through the means with an error bar per point (e.g. a metric over seeds against a swept
/// parameter); `log_x` for parameters swept in log scale (every x must be positive). `bounds`
/// clamps the bars to the metric's range (an accuracy's interval does not run past 1).
pub fn interval_lines(title: &str, xlabel: &str, ylabel: &str, series: &[IntervalSeries], log_x: bool, bounds: (f64, f64)) -> String {
    let clamp = |y: f64| y.clamp(bounds.0, bounds.1);
    let extent = series.iter().flat_map(|s| s.points.iter().flat_map(|&(x, m, h)| [(x, clamp(m - h.unwrap_or(0.0))), (x, clamp(m + h.unwrap_or(0.0)))]));
    let f = if log_x { Frame::fit_log_x(extent) } else { Frame::fit(extent) };
    let mut svg = String::new();
    axes(&mut svg, &f, title, xlabel, ylabel);
    for s in series {
        let c = colour_of(&s.name);
        let mut pts: Vec<(f64, f64, Option<f64>)> = s.points.iter().copied().filter(|(x, y, _)| x.is_finite() && y.is_finite()).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let d = polyline(&f, pts.iter().map(|&(x, y, _)| (x, y)));
        let _ = write!(svg, r#"<g class="series" data-name="{}"><path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>"#, escape(&s.name));
        for &(x, y, half) in &pts {
            let (px, py) = (f.px(x), f.py(y));
            if let Some(h) = half.filter(|h| h.is_finite()) {
                let (top, bottom) = (f.py(clamp(y + h)), f.py(clamp(y - h)));
                let _ = write!(
                    svg,
                    r#"<path d="M{px:.1},{top:.1} L{px:.1},{bottom:.1} M{:.1},{top:.1} L{:.1},{top:.1} M{:.1},{bottom:.1} L{:.1},{bottom:.1}" stroke="{c}" stroke-width="1.2"/>"#,
                    px - 4.0,
                    px + 4.0,
                    px - 4.0,
                    px + 4.0
                );
            }
            let _ = write!(svg, r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{c}"/>"#);
        }
        svg.push_str("</g>");
    }
    legend(&mut svg, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), true);
    svg.push_str("</svg>");
    svg
}

/// A block of heatmap rows sharing a label (one method's samples).
#[derive(Debug, Clone)]
pub struct RowGroup {
    pub name: String,
    /// One row per model; values in [0, 1], NaN for missing.
    pub rows: Vec<Vec<f64>>,
}

/// How a heatmap maps values to colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colours {
    /// Values in [0, 1], white to dark blue (similarities).
    Unit,
    /// Signed values in [−limit, limit], blue through white to red (parameter values).
    Diverging { limit: f64 },
}

impl Colours {
    fn fill(&self, v: f64) -> String {
        match *self {
            Colours::Unit => {
                let v = v.clamp(0.0, 1.0);
                let (r, g, b) = (255.0 - v * 247.0, 255.0 - v * 207.0, 255.0 - v * 148.0);
                hex(r, g, b)
            }
            Colours::Diverging { limit } => {
                let t = (v / limit.max(f64::MIN_POSITIVE)).clamp(-1.0, 1.0);
                // Negative: towards (33, 102, 172); positive: towards (178, 24, 43).
                let (r, g, b) = if t < 0.0 { (255.0 + t * 222.0, 255.0 + t * 153.0, 255.0 + t * 83.0) } else { (255.0 - t * 77.0, 255.0 - t * 231.0, 255.0 - t * 212.0) };
                hex(r, g, b)
            }
        }
    }

    /// (position from the bottom in [0, 1], value) of the colour bar's labels.
    fn labels(&self) -> Vec<(f64, f64)> {
        match *self {
            Colours::Unit => vec![(1.0, 1.0), (0.5, 0.5), (0.0, 0.0)],
            Colours::Diverging { limit } => vec![(1.0, limit), (0.5, 0.0), (0.0, -limit)],
        }
    }

    /// The value at position `t` in [0, 1] of the colour bar, from the bottom.
    fn at(&self, t: f64) -> f64 {
        match *self {
            Colours::Unit => t,
            Colours::Diverging { limit } => (2.0 * t - 1.0) * limit,
        }
    }
}

/// A heatmap of values in [0, 1]: columns are reference models, rows are grouped (one block per
/// method, labelled on the y axis), with a colour-bar legend.
pub fn heatmap(title: &str, xlabel: &str, ylabel: &str, groups: &[RowGroup]) -> String {
    heatmap_with(title, xlabel, ylabel, groups, Colours::Unit)
}

/// `#rrggbb` of channels in [0, 255] (rounded): short, since a heatmap has many cells.
fn hex(r: f64, g: f64, b: f64) -> String {
    let c = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", c(r), c(g), c(b))
}

/// A heatmap with a chosen colour scale. Each row is a group scaled to cell units, so a cell is
/// `<rect x="j" …>` with no position arithmetic in its text: the memorization study's six
/// heatmaps (~60,000 cells) stay small enough for the report's size budget.
pub fn heatmap_with(title: &str, xlabel: &str, ylabel: &str, groups: &[RowGroup], colours: Colours) -> String {
    let columns = groups.iter().flat_map(|g| g.rows.iter().map(Vec::len)).max().unwrap_or(0).max(1);
    let total_rows: usize = groups.iter().map(|g| g.rows.len()).sum::<usize>().max(1);
    let (left, top, right, bottom) = (150.0, TOP, 90.0, BOTTOM);
    let height = (total_rows as f64 * 8.0).clamp(240.0, 900.0) + top + bottom;
    let (pw, ph) = (W - left - right, height - top - bottom);
    let (cw, ch) = (pw / columns as f64, ph / total_rows as f64);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot heatmap" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    let _ = write!(svg, r#"<text class="plot-title" x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#, left + pw / 2.0, escape(title));
    let colour = |v: f64| colours.fill(v);
    let mut y = top;
    let _ = write!(svg, r#"<g class="cells">"#);
    // Cells overlap by a hair, so no background shows between them.
    let (w, h) = (1.0 + 0.05 / cw, 1.0 + 0.05 / ch);
    for group in groups {
        for row in &group.rows {
            let _ = write!(svg, r#"<g transform="translate({left:.2} {y:.2}) scale({cw:.4} {ch:.4})">"#);
            for (j, &v) in row.iter().enumerate() {
                let fill = if v.is_finite() { colour(v) } else { "#ccc".to_string() };
                let _ = write!(svg, r#"<rect x="{j}" width="{w:.3}" height="{h:.3}" fill="{fill}"/>"#);
            }
            svg.push_str("</g>");
            y += ch;
        }
    }
    let _ = write!(svg, "</g>");
    // Axes: reference models along x, method blocks along y.
    let _ = write!(svg, r##"<g class="axis x-axis"><line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/>"##, b = top + ph, r = left + pw);
    for t in ticks(0.0, (columns - 1) as f64) {
        let x = left + (t + 0.5) * cw;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b2}" stroke="#333"/><text x="{x:.1}" y="{ty}" text-anchor="middle" font-size="11">{}</text>"##,
            fmt_tick(t),
            b = top + ph,
            b2 = top + ph + 5.0,
            ty = top + ph + 18.0
        );
    }
    let _ = write!(svg, r#"<text class="axis-label" x="{}" y="{}" text-anchor="middle" font-size="13">{}</text></g>"#, left + pw / 2.0, height - 10.0, escape(xlabel));
    let _ = write!(svg, r##"<g class="axis y-axis"><line x1="{left}" y1="{top}" x2="{left}" y2="{b}" stroke="#333"/>"##, b = top + ph);
    let mut y = top;
    for group in groups {
        let h = group.rows.len() as f64 * ch;
        let _ = write!(
            svg,
            r##"<line x1="{l2}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#333" stroke-width="0.5"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11">{}</text>"##,
            escape(&group.name),
            l2 = left - 5.0,
            r = left + pw,
            tx = left - 8.0,
            ty = y + h / 2.0 + 4.0
        );
        y += h;
    }
    let _ = write!(svg, r#"<text class="axis-label" transform="translate(14 {}) rotate(-90)" text-anchor="middle" font-size="13">{}</text></g>"#, top + ph / 2.0, escape(ylabel));
    // Colour bar.
    let (bx, bh) = (left + pw + 24.0, ph.min(200.0));
    let _ = write!(svg, r#"<g class="legend">"#);
    for k in 0..20 {
        let v = colours.at(1.0 - k as f64 / 19.0);
        let _ = write!(svg, r#"<rect x="{bx}" y="{:.1}" width="14" height="{:.2}" fill="{}"/>"#, top + k as f64 * bh / 20.0, bh / 20.0 + 0.05, colour(v));
    }
    for (position, value) in colours.labels() {
        let _ = write!(svg, r#"<text x="{}" y="{:.1}" font-size="11">{}</text>"#, bx + 18.0, top + (1.0 - position) * bh + 4.0, fmt_tick(value));
    }
    let _ = write!(svg, "</g></svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_keeps_its_colour_and_ten_never_share_one() {
        let methods = ["p-diff", "copy", "noise σ=0.01", "noise σ=0.05", "average k=4", "random-init", "held-out", "train (leave-one-out)", "G.pt", "FLoWN"];
        assign_colours(methods);
        let first: Vec<&str> = methods.iter().map(|m| colour_of(m)).collect();
        let mut distinct = first.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 10, "{first:?}");
        // Another report of the same methods (the report ranks them the same way): the same colours.
        assign_colours(methods);
        assert_eq!(methods.iter().map(|m| colour_of(m)).collect::<Vec<_>>(), first);
        // More methods than colours: those given first keep theirs, all ten distinct.
        assign_colours(methods.iter().copied().chain(["noise[sigma=0.1]", "noise[sigma=0.2]"]));
        assert_eq!(methods.iter().map(|m| colour_of(m)).collect::<Vec<_>>(), first);
        // A report of one of them alone: its own slot.
        assign_colours(["p-diff"]);
        assert_eq!(colour_of("p-diff"), PALETTE[preferred("p-diff")]);
    }

    #[test]
    fn distances_spanning_decades_get_a_log_axis_and_zeros_a_bin_of_their_own() {
        // The quickstart's case: copies at 0, p-diff at 0.02–0.08, held-out models at 13.
        let s = vec![Series::new("copy", vec![(0.0, 0.0); 8]), Series::new("p-diff", vec![(0.02, 0.0), (0.05, 0.0), (0.08, 0.0)]), Series::new("held-out", vec![(12.0, 0.0), (13.0, 0.0)])];
        let svg = histogram("t", "distance", &s, 24);
        assert!(svg.contains("distance (log scale)"), "log axis");
        assert!(svg.contains(">0</text>") && svg.contains(">0.1</text>") && svg.contains(">10</text>"), "a zero bin and decade ticks: {svg}");
        // The three groups fall in different bins: their outlines rise at different x.
        let rise = |name: &str| {
            let start = svg.find(&format!("data-name=\"{name}\" d=\"")).unwrap();
            let d = &svg[start..start + svg[start..].find("\" fill").unwrap()];
            let points: Vec<(f64, f64)> = d.split(['M', 'L']).filter_map(|p| p.trim().split_once(',')).map(|(x, y)| (x.parse().unwrap(), y.trim().parse().unwrap())).collect();
            let base = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            points.iter().find(|p| p.1 < base).map_or(f64::INFINITY, |p| p.0)
        };
        assert!(rise("copy") < rise("p-diff") && rise("p-diff") < rise("held-out"));
        // Values within a decade or so stay linear.
        assert!(!histogram("t", "d", &[Series::new("a", vec![(1.0, 0.0), (3.0, 0.0)])], 8).contains("log scale"));
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let t = ticks(0.13, 0.87);
        assert!(t.first().unwrap() >= &0.13 && t.last().unwrap() <= &0.87 && t.len() >= 3);
    }

    #[test]
    fn plots_have_axes_legend_and_escaped_names() {
        let s = vec![Series::new("noise σ<0.1>", vec![(0.1, 0.5), (0.2, 0.7)])];
        let svg = scatter("t", "x", "y", &s);
        assert!(svg.contains("class=\"axis x-axis\"") && svg.contains("class=\"legend\"") && svg.contains("noise σ&lt;0.1&gt;"));
        assert!(histogram("h", "x", &s, 10).contains("<path"));
        assert!(lines("l", "x", "y", &s).contains("<path"));
    }

    #[test]
    fn diverging_heatmaps_are_white_at_zero_and_label_both_signs() {
        let colours = Colours::Diverging { limit: 0.5 };
        assert_eq!(colours.fill(0.0), "#ffffff");
        assert_eq!((colours.fill(-0.5), colours.fill(0.5)), ("#2166ac".to_string(), "#b2182b".to_string()));
        assert_ne!(colours.fill(-0.5), colours.fill(0.5));
        let groups = [RowGroup { name: "m".into(), rows: vec![vec![-0.5, 0.0, 0.5]] }];
        let svg = heatmap_with("p", "x", "y", &groups, colours);
        assert!(svg.contains(">-0.5<") && svg.contains(">0.5<"), "{svg}");
    }
}
