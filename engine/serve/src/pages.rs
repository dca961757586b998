//! The pages: the list of runs, a run (its report, or its stages while it runs), and runs
//! compared. Everything a run folder says is escaped.

use std::path::Path;

use weightlab_report::escape;

use crate::compare;
use crate::runs::{self, RunEntry};

/// The largest report served.
const MAX_REPORT_BYTES: u64 = 256 << 20;

/// A response: status, content type, body.
pub struct Page {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Page {
    fn html(body: String) -> Page {
        Page { status: 200, content_type: "text/html; charset=utf-8", body: body.into_bytes() }
    }

    pub fn error(status: u16, message: &str) -> Page {
        Page {
            status,
            content_type: "text/html; charset=utf-8",
            body: layout("weightlab serve", &format!("<p class=\"fail\">{}</p><p><a href=\"/\">All runs</a></p>", escape(message)), false).into_bytes(),
        }
    }

    pub fn into_response(self) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let header = tiny_http::Header::from_bytes("Content-Type", self.content_type).expect("a valid header");
        let nosniff = tiny_http::Header::from_bytes("X-Content-Type-Options", "nosniff").expect("a valid header");
        tiny_http::Response::from_data(self.body).with_status_code(self.status).with_header(header).with_header(nosniff)
    }
}

fn query_value(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

fn layout(title: &str, body: &str, refresh: bool) -> String {
    let refresh = if refresh { r#"<meta http-equiv="refresh" content="2">"# } else { "" };
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">{refresh}<title>{t}</title><style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: min(96vw, 1600px); padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: .92rem; }} th, td {{ border-bottom: 1px solid #e3e3e3; padding: .35rem .6rem; text-align: left; }}
th {{ background: #f6f6f6; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }} .fail {{ color: #b00020; }} .sub {{ color: #666; }}
.running {{ color: #0b57d0; font-weight: bold; }} .bar {{ background: #eee; height: .6rem; border-radius: 3px; }} .bar > div {{ background: #0b57d0; height: 100%; border-radius: 3px; }}
iframe {{ width: 100%; height: 80vh; border: 1px solid #ddd; }}
</style></head><body><h1>{t}</h1>{body}</body></html>"#,
        t = escape(title)
    )
}

/// Answers a GET of `url` (path and query).
pub fn answer(root: &Path, url: &str) -> Page {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let selected = || -> Result<Vec<RunEntry>, Page> {
        params.iter().filter(|(k, _)| k == "run").map(|(_, id)| runs::find(root, id).ok_or_else(|| Page::error(404, &format!("no run `{id}` under this folder")))).collect()
    };
    match path {
        "/" => index(root),
        "/run" => match param("run").and_then(|id| runs::find(root, id)) {
            Some(run) => run_page(&run),
            None => Page::error(404, "no such run under this folder"),
        },
        "/report" => match param("run").and_then(|id| runs::find(root, id)) {
            Some(run) => serve_report(&run.path.join("report.html")),
            None => Page::error(404, "no such run under this folder"),
        },
        "/compare" => match selected() {
            Ok(runs) if runs.len() >= 2 => compare_page(&runs, param("metric")),
            Ok(_) => Page::error(400, "select two runs or more to compare"),
            Err(page) => page,
        },
        "/compare/report" => match selected() {
            Ok(runs) if runs.len() >= 2 => match compare::combined_report(&runs) {
                Ok(path) => serve_report(&path),
                Err(reason) => Page::error(500, &format!("cannot render the runs together: {reason}")),
            },
            Ok(_) => Page::error(400, "select two runs or more to compare"),
            Err(page) => page,
        },
        _ => Page::error(404, "no such page"),
    }
}

fn serve_report(path: &Path) -> Page {
    match weightlab_manifest::files::read_regular(path, MAX_REPORT_BYTES) {
        Ok(body) => Page { status: 200, content_type: "text/html; charset=utf-8", body },
        Err(e) => Page::error(404, &format!("no report yet ({e})")),
    }
}

fn index(root: &Path) -> Page {
    let all = runs::discover(root);
    let live = all.iter().any(RunEntry::is_live);
    let mut body = format!("<p class=\"sub\">{} runs under <code>{}</code>. Select two or more to compare them side by side.</p>", all.len(), escape(&root.display().to_string()));
    body.push_str("<form action=\"/compare\" method=\"get\"><table id=\"runs\"><thead><tr><th></th><th>Run</th><th>Experiment</th><th>Status</th><th>Date</th><th>Manifest</th><th>Commit</th><th>Failures</th></tr></thead><tbody>");
    for r in &all {
        let status = if r.is_live() {
            format!("<span class=\"running\">{}</span>", escape(&r.status))
        } else if r.status == "ok" {
            "ok".into()
        } else {
            format!("<span class=\"fail\">{}</span>", escape(&r.status))
        };
        let failures = if r.failures > 0 { format!("<span class=\"fail\">{}</span>", r.failures) } else { "0".into() };
        body.push_str(&format!(
            "<tr><td><input type=\"checkbox\" name=\"run\" value=\"{id}\"></td><td><a href=\"/run?run={q}\">{id}</a></td><td>{exp}</td><td>{status}</td><td>{date}</td><td><code>{manifest}</code></td><td><code>{commit}</code></td><td class=\"num\">{failures}</td></tr>",
            id = escape(&r.id),
            q = query_value(&r.id),
            exp = escape(&r.experiment),
            date = escape(&r.date),
            manifest = escape(&r.manifest),
            commit = escape(&r.commit),
        ));
    }
    body.push_str("</tbody></table><p><button type=\"submit\" id=\"compare\">Compare selected runs</button></p></form>");
    Page::html(layout("weightlab runs", &body, live))
}

fn run_page(run: &RunEntry) -> Page {
    let q = query_value(&run.id);
    let mut body =
        format!("<p><a href=\"/\">All runs</a> · status <b>{}</b>{}</p>", escape(&run.status), if run.has_report { format!(" · <a href=\"/report?run={q}\">report</a>") } else { String::new() });
    match &run.progress {
        Some(p) if run.is_live() || !run.has_report => {
            let (done, failed, total) = p.counts();
            let share = if total > 0 { 100.0 * (done + failed) as f64 / total as f64 } else { 0.0 };
            body.push_str(&format!(
                "<p>{done} of {total} stages done, {failed} failed or skipped · started {} · updated {}</p><div class=\"bar\"><div style=\"width:{share:.1}%\"></div></div>",
                escape(&p.started),
                escape(&p.updated)
            ));
            body.push_str("<table id=\"stages\"><thead><tr><th>Stage</th><th>State</th></tr></thead><tbody>");
            for (label, state) in &p.stages {
                let class = match state.as_str() {
                    "running" => "running",
                    "failed" | "skipped" | "interrupted" => "fail",
                    _ => "",
                };
                body.push_str(&format!("<tr><td>{}</td><td class=\"{class}\">{}</td></tr>", escape(label), escape(state)));
            }
            body.push_str("</tbody></table>");
            Page::html(layout(&format!("Run {}", run.id), &body, run.is_live()))
        }
        _ if run.has_report => {
            body.push_str(&format!("<iframe src=\"/report?run={q}\" title=\"report\"></iframe>"));
            Page::html(layout(&format!("Run {}", run.id), &body, false))
        }
        _ => Page::error(404, "this run has neither a report nor progress to show"),
    }
}

fn compare_page(runs: &[RunEntry], metric: Option<&str>) -> Page {
    let c = compare::compare(runs, metric);
    let ids: String = runs.iter().map(|r| format!("run={}", query_value(&r.id))).collect::<Vec<_>>().join("&");
    let mut body = "<p><a href=\"/\">All runs</a> · metric: ".to_string();
    let links: Vec<String> =
        c.metrics.iter().map(|m| if *m == c.metric { format!("<b>{}</b>", escape(m)) } else { format!("<a href=\"/compare?{ids}&metric={}\">{}</a>", query_value(m), escape(m)) }).collect();
    body.push_str(&links.join(" · "));
    body.push_str("</p><p class=\"sub\">Mean ± half-width of the 95% t-interval over seeds, from each run's <code>summary.csv</code>.</p>");
    body.push_str("<table id=\"compare-table\"><thead><tr><th>Zoo</th><th>Method</th><th>Role</th>");
    for r in runs {
        body.push_str(&format!("<th>{}</th>", escape(&r.id)));
    }
    body.push_str("</tr></thead><tbody>");
    for (zoo, method, role, cells) in &c.rows {
        body.push_str(&format!("<tr><td>{}</td><td>{}</td><td>{}</td>", escape(zoo), escape(method), escape(role)));
        for cell in cells {
            body.push_str(&format!("<td class=\"num\">{}</td>", cell.as_deref().map_or("–".to_string(), escape)));
        }
        body.push_str("</tr>");
    }
    body.push_str(&format!("</tbody></table><h2>Together: every plot with the runs overlaid</h2><iframe id=\"combined\" src=\"/compare/report?{ids}\" title=\"the runs' report together\"></iframe>"));
    Page::html(layout(&format!("Compare {}", runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(" · ")), &body, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_run_folder_says_is_escaped_and_unknown_runs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("<script>x</script>");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("run.json"), "{}").unwrap();
        let page = String::from_utf8(answer(dir.path(), "/").body).unwrap();
        assert!(!page.contains("<script>x") && page.contains("&lt;script&gt;x"), "{page}");
        assert_eq!(answer(dir.path(), "/report?run=..%2F..%2Fetc").status, 404);
        assert_eq!(answer(dir.path(), "/compare?run=a").status, 404);
    }
}
