/// `weightlab schema`: the manifest JSON Schema on stdout.
pub fn schema() -> anyhow::Result<i32> {
    print!("{}", weightlab_pipeline::schema_json());
    Ok(0)
}

/// `weightlab init`: writes the starter manifest to `path`.
pub fn init(path: &std::path::Path, name: Option<&str>) -> anyhow::Result<i32> {
    use anyhow::Context;
    if path.exists() {
        anyhow::bail!("{} exists: give another path", path.display());
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "experiment".into());
    let name = name.map(str::to_string).unwrap_or(stem);
    if let Some(problem) = weightlab_manifest::validate::unsafe_name(&name) {
        anyhow::bail!("experiment name `{name}`: {problem}");
    }
    let text = weightlab_author::starter(&name, &path.display().to_string());
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    weightlab_pipeline::output::result("Created", &format!("{} — `weightlab run {}` runs it (about a minute)", path.display(), path.display()));
    Ok(0)
}
