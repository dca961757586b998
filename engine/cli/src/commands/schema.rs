/// `weightlab schema`: the manifest JSON Schema on stdout.
pub fn schema() -> anyhow::Result<i32> {
    print!("{}", weightlab_manifest::schema::manifest_schema_json());
    Ok(0)
}
