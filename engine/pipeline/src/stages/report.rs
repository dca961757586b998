//! Report stage: gather the tables every finished stage stored into the run's tables, then
//! render `report.html` from them. It runs at the end of every run, also when some stages
//! failed (they are listed in the report), and `weightlab report` re-renders it.

use std::path::Path;

use weightlab_manifest::{Loaded, Plan, StageKind};
use weightlab_results::rows::{read_samples, read_table, samples_table, table_of};
use weightlab_results::{FailureRow, FinetuneRow, LogRow, MessageRow, ParameterRow, ProbeRow, ProbeScoreRow, RunRow, SampleRow, SimilarityRow, TreeRow, VariantRow, ZooRow};

use crate::error::{Error, Result, format, io};
use crate::metrics::Metric;
use crate::output;
use crate::records::{MethodLog, MethodRecord, ProbeRecord};
use crate::store::StageStore;

/// Where a run's finished stages were computed, as each recorded it: the distinct places in
/// plan order, `; `-separated.
pub(crate) fn computed_on(plan: &Plan, store: &StageStore) -> String {
    let mut places: Vec<String> = Vec::new();
    for stage in plan.stages.iter().filter(|s| s.kind != StageKind::Report) {
        if let Some(place) = store.computed_on(stage)
            && !places.contains(&place)
        {
            places.push(place);
        }
    }
    places.join("; ")
}

/// What the report stage reads besides the finished stages: the run as the executor knows it.
pub(crate) struct Inputs<'a> {
    pub loaded: &'a Loaded,
    pub plan: &'a Plan,
    pub store: &'a StageStore,
    pub metrics: &'a [&'static Metric],
    pub failures: &'a [FailureRow],
    /// The plugins as this run resolved them: the provenance of methods that failed.
    pub plugins: &'a crate::plugins::Plugins,
    /// (stage label, seconds, cached), in plan order.
    pub timings: &'a [(String, f64, bool)],
    pub started: std::time::SystemTime,
    /// The manifest's report template, if it names one.
    pub template: Option<&'a Path>,
}

/// Gathers every finished stage's tables into the run's tables in `out` (with `runs` and
/// `stages.json`), renders `report.html` from them in memory and keeps the run in the
/// output folder's history.
pub(crate) fn run(inputs: &Inputs, out: &Path) -> Result<()> {
    let Inputs { loaded, plan, store, metrics, failures, plugins: resolved, timings, started, template } = *inputs;
    let mut samples: Vec<SampleRow> = Vec::new();
    let mut similarity: Vec<SimilarityRow> = Vec::new();
    let mut parameters: Vec<ParameterRow> = Vec::new();
    let mut finetune: Vec<FinetuneRow> = Vec::new();
    let mut logs: Vec<LogRow> = Vec::new();
    let mut messages: Vec<MessageRow> = Vec::new();
    let mut zoo_rows: Vec<ZooRow> = Vec::new();
    let mut probes: Vec<ProbeRow> = Vec::new();
    let mut probe_scores: Vec<ProbeScoreRow> = Vec::new();
    let mut trees: Vec<TreeRow> = Vec::new();
    let mut plugins: Vec<String> = Vec::new();
    for stage in &plan.stages {
        if !store.is_done(stage) {
            // A method that failed has no record to say which code it ran: the bytes this run
            // resolved for its plugin do (what a bug report about the failure needs).
            if let StageKind::Method { index, .. } | StageKind::Probe { index, .. } = &stage.kind
                && failures.iter().any(|f| f.stage == stage.label())
                && let Some(method) = loaded.manifest.method.get(*index)
                && method.import.is_none()
            {
                let plugin = format!("{} (failed; sha256 {})", method.plugin, resolved.identity(&method.plugin));
                if !plugins.contains(&plugin) {
                    plugins.push(plugin);
                }
            }
            continue;
        }
        let dir = store.dir(stage);
        match &stage.kind {
            StageKind::Zoo { .. } => zoo_rows.extend(read_table::<ZooRow>(&dir, "zoo")?.into_iter().flatten()),
            StageKind::Reference { .. } | StageKind::Evaluate { .. } => {
                trees.extend(read_table::<TreeRow>(&dir, "trees")?.into_iter().flatten());
                samples.extend(read_samples(&dir)?.ok_or_else(|| Error::Unfinished(format!("{} has no samples table", stage.label())))?);
                similarity.extend(read_table::<SimilarityRow>(&dir, "similarity")?.into_iter().flatten());
                parameters.extend(read_table::<ParameterRow>(&dir, "parameters")?.into_iter().flatten());
                finetune.extend(read_table::<FinetuneRow>(&dir, "finetune")?.into_iter().flatten());
            }
            StageKind::Method { name, seed, .. } => {
                read_log(&dir, name, *seed, &mut logs, &mut messages)?;
                let plugin = store.record::<MethodRecord>(stage)?.provenance();
                if !plugins.contains(&plugin) {
                    plugins.push(plugin);
                }
            }
            StageKind::Probe { name, seed, .. } => {
                read_log(&dir, name, *seed, &mut logs, &mut messages)?;
                probes.extend(read_table::<ProbeRow>(&dir, "probes")?.into_iter().flatten());
                probe_scores.extend(read_table::<ProbeScoreRow>(&dir, "probe_scores")?.into_iter().flatten());
                let plugin = store.record::<ProbeRecord>(stage)?.provenance();
                if !plugins.contains(&plugin) {
                    plugins.push(plugin);
                }
            }
            StageKind::Data { .. } | StageKind::ZooPart { .. } | StageKind::Report => {}
        }
    }

    let keys: Vec<&str> = metrics.iter().map(|m| m.key).collect();
    samples_table(&samples, &keys).write(out, "samples")?;
    table_of(&zoo_rows).write(out, "zoo")?;
    let variants = variant_rows(&loaded.expansion);
    for (name, table) in [
        ("similarity", table_of(&similarity)),
        ("parameters", table_of(&parameters)),
        ("finetune", table_of(&finetune)),
        ("probes", table_of(&probes)),
        ("probe_scores", table_of(&probe_scores)),
        ("trees", table_of(&trees)),
        ("variants", table_of(&variants)),
        ("training_log", table_of(&logs)),
        ("messages", table_of(&messages)),
        ("failures", table_of(failures)),
    ] {
        if table.is_empty() {
            // A table of an earlier run that this one did not produce would mislead.
            for ext in ["parquet", "arrow"] {
                let _ = std::fs::remove_file(out.join(format!("{name}.{ext}")));
            }
        } else {
            table.write(out, name)?;
        }
    }
    let finished = std::time::SystemTime::now();
    let seconds = finished.duration_since(started).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let run = RunRow {
        experiment: loaded.manifest.experiment.name.clone(),
        manifest_hash: manifest_hash(&loaded.text),
        seeds: format!("{:?}", loaded.manifest.experiment.seeds),
        weightlab_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("WEIGHTLAB_GIT").to_string(),
        plugins: plugins.join(", "),
        started: utc(started),
        finished: utc(finished),
        seconds,
        status: if failures.is_empty() { "ok".into() } else { format!("{} failed", failures.len()) },
        compute: computed_on(plan, store),
    };
    table_of(std::slice::from_ref(&run)).write(out, "runs")?;

    let stages: Vec<(String, f64, bool)> = timings.to_vec();
    let path = out.join("stages.json");
    // Replaced by a rename, never written in place: the history's links keep the old one.
    crate::store::write_atomic(&path, &serde_json::to_vec_pretty(&stages).map_err(format(&path))?)?;
    // Rendered from the tables just gathered, not read back from the files just written.
    let tables = crate::report::RunTables {
        manifest: loaded.manifest.clone(),
        expansion: loaded.expansion.clone(),
        manifest_text: loaded.text.clone(),
        run,
        samples,
        similarity,
        parameters,
        finetune,
        logs,
        failures: failures.to_vec(),
        zoo: zoo_rows,
        probe_scores,
        probes,
        trees,
        stages,
    };
    let folder = out.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    crate::report::render(std::slice::from_ref(&tables), &[folder], out, template)?;
    let entry = crate::history::archive(out, &stamp(started), &plan.fingerprint())?;
    output::detail(&format!("kept in the run history as {}", entry.display()));
    Ok(())
}

/// Adds what a method or probe stage's plugin logged (`log.json`) to the run's tables; a stage
/// without one (a probe stored before probes kept their logs) adds nothing.
fn read_log(dir: &std::path::Path, name: &str, seed: u64, logs: &mut Vec<LogRow>, messages: &mut Vec<MessageRow>) -> Result<()> {
    let path = dir.join("log.json");
    if !path.is_file() {
        return Ok(());
    }
    let log: MethodLog = serde_json::from_slice(&crate::store::read_file(&path).map_err(io("reading", &path))?).map_err(format(&path))?;
    messages.extend(log.messages.into_iter().map(|text| MessageRow { source: name.to_string(), seed, text }));
    logs.extend(log.metrics.into_iter().map(|m| LogRow { source: name.to_string(), seed, name: m.name, step: m.step as u64, value: m.value.map_or(f64::NAN, f64::from) }));
    Ok(())
}

/// A row per variant and swept key it takes.
fn variant_rows(expansion: &weightlab_manifest::sweep::Expansion) -> Vec<VariantRow> {
    expansion
        .variants
        .iter()
        .flat_map(|v| {
            v.params.iter().map(|p| VariantRow {
                section: v.section.clone(),
                name: v.name.clone(),
                base: v.base.clone(),
                key: p.key.clone(),
                label: p.label.clone(),
                value: p.display(),
                number: p.number(),
            })
        })
        .collect()
}

fn manifest_hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// "YYYY-MM-DD HH:MM:SS UTC" of a time (civil date from days since the epoch, Howard
/// Hinnant's algorithm, to avoid a date crate for one line of provenance).
pub fn utc(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// [`utc`] as a file name, to the millisecond: "YYYYMMDDTHHMMSS.mmmZ". History entries sort by
/// it, and two runs of a small manifest start within the same second.
pub fn stamp(t: std::time::SystemTime) -> String {
    let millis = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_millis()).unwrap_or(0);
    utc(t).replace(" UTC", &format!(".{millis:03}Z")).replace(['-', ':'], "").replace(' ', "T")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use weightlab_manifest::plan::Plan;

    use super::{Inputs, run};
    use crate::store::StageStore;

    /// With nothing finished yet the report stage still writes every table (empty), the run's
    /// provenance, and a report that names the experiment — what a user opening the folder of
    /// a run that failed early sees.
    #[test]
    fn a_run_with_no_finished_stage_still_gets_its_tables_and_report() {
        let text = "[experiment]\nname = \"unit\"\n[data.b]\nsource = \"blobs\"\n[zoo.z]\ndata = \"b\"\narch = { kind = \"mlp\" }\nmodels = 4\n";
        let loaded = weightlab_manifest::load_str(Path::new("unit.toml"), text, &[], Path::new("."), &crate::catalog()).unwrap();
        let metrics = crate::metrics::selected(None);
        let keys: Vec<String> = metrics.iter().map(|m| m.key.to_string()).collect();
        let plan = Plan::new(&loaded.manifest, &|_| "none".to_string(), &keys);
        let out = tempfile::tempdir().unwrap();
        let store = StageStore::new(out.path());
        let inputs =
            Inputs { loaded: &loaded, plan: &plan, store: &store, metrics: &metrics, failures: &[], plugins: &Default::default(), timings: &[], started: std::time::SystemTime::now(), template: None };
        run(&inputs, out.path()).unwrap();
        for table in ["samples", "zoo", "runs"] {
            assert!(out.path().join(format!("{table}.parquet")).is_file(), "{table}.parquet");
        }
        let runs = weightlab_results::read_table::<weightlab_results::RunRow>(out.path(), "runs").unwrap().unwrap();
        assert_eq!(runs.len(), 1);
        let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
        assert!(html.contains("unit") && html.contains("</html>"), "the report names the experiment");
    }
}
